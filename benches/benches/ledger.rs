//! Full chain verification throughput (blocks/s and transactions/s) for 2048- and 3072-bit keys.
//! The peer is the raw RSA-PSS verification rate of the same keys: verification cannot beat
//! (blocks + transactions) / that rate, so the ratio shows what the rest of validation costs.
//!
//! `cargo bench -p medshare-benches --bench ledger`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medshare::cid::Cid;
use medshare::envelope::RecordId;
use medshare::ledger::{Block, BlockHeader, Genesis, Policy, SignedTx, Tx, TxBody, merkle_root};
use medshare::{Identity, Role, Store, Vault};

const BLOCKS: usize = 100;
const TXS_PER_BLOCK: usize = 10;

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
        for h in 1..=BLOCKS as u64 {
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
            while txs.len() < TXS_PER_BLOCK {
                seq += 1;
                let body = TxBody::PublishRecord {
                    record: RecordId::random().unwrap(),
                    version: 1,
                    content: Cid::dag_cbor(&seq.to_be_bytes()),
                    size: 1000,
                    wrapped_key: vec![7; bits / 8],
                };
                txs.push(
                    SignedTx::sign(
                        Tx {
                            author: patient.id(),
                            seq,
                            time: t0,
                            body,
                        },
                        &patient,
                    )
                    .unwrap(),
                );
            }
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
    for bits in [2048usize, 3072] {
        let (store, id) = build(bits);
        g.throughput(Throughput::Elements((BLOCKS * TXS_PER_BLOCK) as u64));
        g.bench_function(BenchmarkId::new("medshare_verify_txs", bits), |b| {
            b.iter(|| pollster::block_on(Vault::open(store.clone(), None)).unwrap())
        });
        let sig = id.sign(b"message").unwrap();
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("rsa_pss_verify_ceiling", bits), |b| {
            b.iter(|| id.public().verify(b"message", &sig).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
