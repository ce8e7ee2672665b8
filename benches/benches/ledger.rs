//! Full chain verification throughput (transactions/s) for 2048- and 3072-bit keys, on one core
//! and on both (a rayon pool of 1 and of 2 threads). The peer is the raw RSA-PSS verification
//! rate of the same key with the same threads: verification cannot beat (blocks + transactions)
//! / that rate, so the ratio shows what the rest of validation costs.
//!
//! `cargo bench -p medshare-benches --bench ledger`
//! The chain has 1,000 blocks of 10 transactions; `MEDSHARE_BENCH_BLOCKS=10000` for 100,000
//! (building it signs every transaction: about 90 s at 2048 bits on 2 cores), and
//! `MEDSHARE_BENCH_BITS=2048` (or 3072) for one key size.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medshare::cid::Cid;
use medshare::envelope::DataKey;
use medshare::ledger::checkpoint::{Certificate, sign_share};
use medshare::ledger::{
    AuthorityKey, CertificateObject, Genesis, GenesisBlock, Policy, SignedTx, State, Tx, TxBody,
};
use medshare::{Identity, RecordId, Role, Store, Vault};

use rayon::prelude::*;

const TXS_PER_BLOCK: usize = 10;

fn blocks() -> usize {
    std::env::var("MEDSHARE_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A chain of BLOCKS certified blocks of TXS_PER_BLOCK PublishRecord transactions each, in a
/// memory store.
fn build(bits: usize) -> (Store, Identity) {
    let authority = Identity::generate(Role::Authority, "a", bits).unwrap();
    let patient = Identity::generate(Role::Patient, "p", bits).unwrap();
    let store = Store::memory();
    pollster::block_on(async {
        let t0 = 1_700_000_000;
        let g = GenesisBlock::new(Genesis {
            network: "bench".into(),
            time: t0,
            nonce: [0; 16],
            authorities: vec![AuthorityKey {
                key: authority.public().clone(),
                validator: None,
            }],
            policy: Policy::default(),
        });
        store.put(&g.cid, &g.bytes).await.unwrap();
        let mut state = State::from_genesis(&g).unwrap();
        let wrapped = DataKey::from_bytes([7; 32])
            .wrap(patient.public(), &RecordId::from_bytes([0; 16]), 1)
            .unwrap();
        let mut seq = 0;
        for h in 1..=blocks() as u64 {
            let mut txs = Vec::new();
            if h == 1 {
                seq += 1;
                txs.push(
                    SignedTx::sign(
                        Tx {
                            genesis: g.cid,
                            author: patient.id(),
                            seq,
                            time: t0,
                            body: TxBody::RegisterPatient {
                                key: patient.public().clone(),
                            },
                        },
                        &patient,
                    )
                    .unwrap(),
                );
            }
            let first = seq + 1;
            let count = (TXS_PER_BLOCK - txs.len()) as u64;
            seq += count;
            txs.extend(
                (first..first + count)
                    .into_par_iter()
                    .map(|seq| {
                        let body = TxBody::PublishRecord {
                            record: RecordId::random().unwrap(),
                            version: 1,
                            content: Cid::dag_cbor(&seq.to_be_bytes()),
                            size: 1000,
                            commitment: [0; 32],
                            owner_key: wrapped.clone(),
                        };
                        let tx = Tx {
                            genesis: g.cid,
                            author: patient.id(),
                            seq,
                            time: t0,
                            body,
                        };
                        SignedTx::sign(tx, &patient).unwrap()
                    })
                    .collect::<Vec<_>>(),
            );
            for t in &txs {
                store.put(&t.cid, &t.bytes).await.unwrap();
            }
            let b = state.next_block(&txs, t0 + h);
            state.apply_block(&b, &txs).unwrap();
            let cp = state.checkpoint();
            let cert = CertificateObject::new(Certificate {
                signatures: vec![sign_share(&cp, &authority).unwrap()],
                checkpoint: cp,
            });
            state.apply_certificate(&cert).unwrap();
            store.put(&b.cid, &b.bytes).await.unwrap();
            store.put(&cert.cid, &cert.bytes).await.unwrap();
        }
        store
            .compare_and_swap_head(None, Some(&state.head_pointer()))
            .await
            .unwrap();
    });
    (store, authority)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger_verify");
    g.sample_size(10);
    let n = blocks();
    let sizes: Vec<usize> = match std::env::var("MEDSHARE_BENCH_BITS") {
        Ok(v) => v.split(',').filter_map(|b| b.trim().parse().ok()).collect(),
        Err(_) => vec![2048, 3072],
    };
    for bits in sizes {
        let (store, id) = build(bits);
        let sig = id.sign(b"message").unwrap();
        let batch: Vec<u32> = (0..256).collect();
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let label = |what: &str| BenchmarkId::new(format!("{what}_{threads}core"), bits);
            g.throughput(Throughput::Elements((n * TXS_PER_BLOCK) as u64));
            g.bench_function(label("medshare_verify_txs"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        pollster::block_on(Vault::open(store.clone(), None, None)).unwrap()
                    })
                })
            });
            g.throughput(Throughput::Elements(batch.len() as u64));
            g.bench_function(label("rsa_pss_verify_ceiling"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        batch
                            .par_iter()
                            .for_each(|_| id.public().verify(b"message", &sig).unwrap())
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
