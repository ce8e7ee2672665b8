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
use medshare::envelope::RecordId;
use medshare::ledger::{Block, BlockHeader, Genesis, Policy, SignedTx, Tx, TxBody, merkle_root};
use medshare::{Identity, Role, Store, Vault};

use rayon::prelude::*;

const TXS_PER_BLOCK: usize = 10;

fn blocks() -> usize {
    std::env::var("MEDSHARE_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A chain of BLOCKS blocks of TXS_PER_BLOCK PublishRecord transactions each, in a memory store.
fn build(bits: usize) -> (Store, Identity) {
    let authority = Identity::generate(Role::Authority, "a", bits).unwrap();
    let patient = Identity::generate(Role::Patient, "p", bits).unwrap();
    let store = Store::memory();
    pollster::block_on(async {
        let t0 = 1_700_000_000;
        let g = Block::seal(
            BlockHeader {
                network: "bench".into(),
                height: 0,
                parent: None,
                time: t0,
                txs: vec![],
                merkle: merkle_root(&[]),
                sealer: authority.id(),
                genesis: Some(Genesis {
                    network: "bench".into(),
                    authorities: vec![authority.public().clone()],
                    policy: Policy::default(),
                }),
            },
            &authority,
        )
        .unwrap();
        store.put(&g.cid, &g.bytes).await.unwrap();
        let mut parent = g.cid;
        let mut seq = 0;
        for h in 1..=blocks() as u64 {
            let mut txs = Vec::new();
            if h == 1 {
                seq += 1;
                txs.push(
                    SignedTx::sign(
                        Tx {
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
                            wrapped_key: vec![7; bits / 8],
                        };
                        let tx = Tx {
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
            let cids: Vec<Cid> = txs.iter().map(|t| t.cid).collect();
            let b = Block::seal(
                BlockHeader {
                    network: "bench".into(),
                    height: h,
                    parent: Some(parent),
                    time: t0 + h,
                    merkle: merkle_root(&cids),
                    txs: cids,
                    sealer: authority.id(),
                    genesis: None,
                },
                &authority,
            )
            .unwrap();
            store.put(&b.cid, &b.bytes).await.unwrap();
            parent = b.cid;
        }
        store
            .compare_and_swap_head(None, Some(&parent))
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
                    pool.install(|| pollster::block_on(Vault::open(store.clone(), None)).unwrap())
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
