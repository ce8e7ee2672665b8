//! `publish` (seal + CID + store) and `open_record` (fetch + verify + open) of 1 MiB and 1 GiB
//! records on a memory store, on one core and on both (a rayon pool of 1 and of 2 threads).
//! `publish_sealcid` publishes into a store that drops the record's data blocks (as
//! `ipfs add --only-hash` does), so it measures seal + CID alone.
//! Peer, same run: ring AES-256-GCM + ring SHA-256 over the same bytes on one core — the least
//! any sealed, content-addressed publish must do.
//!
//! `cargo bench -p medshare-benches --bench vault`

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medshare::cid::{Cid, RAW};
use medshare::envelope::Metadata;
use medshare::ledger::Policy;
use medshare::store::memory::MemoryStore;
use medshare::{BlockStore, Identity, Role, Store, Vault};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

const AUTHORITY: &str = include_str!("../../core/testdata/keys/authority-2048.pem");
const PATIENT: &str = include_str!("../../core/testdata/keys/patient-2048.pem");

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

/// Keeps the ledger, drops raw leaves (the record's data).
#[derive(Default)]
struct DropLeaves(MemoryStore);

#[async_trait::async_trait]
impl BlockStore for DropLeaves {
    async fn put(&self, cid: &Cid, data: &[u8]) -> medshare::Result<()> {
        if cid.codec() == RAW {
            return Ok(());
        }
        self.0.put(cid, data).await
    }
    async fn get(&self, cid: &Cid) -> medshare::Result<Option<Vec<u8>>> {
        self.0.get(cid).await
    }
    async fn has(&self, cid: &Cid) -> medshare::Result<bool> {
        self.0.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> medshare::Result<()> {
        self.0.delete(cid).await
    }
    async fn head(&self) -> medshare::Result<Option<Cid>> {
        self.0.head().await
    }
    async fn compare_and_swap_head(
        &self,
        expected: Option<&Cid>,
        new: Option<&Cid>,
    ) -> medshare::Result<()> {
        self.0.compare_and_swap_head(expected, new).await
    }
}

type StoreMaker = fn() -> Store;

fn fresh_vault(patient: &Identity) -> Vault {
    vault_on(Store::memory(), patient)
}

fn vault_on(store: Store, patient: &Identity) -> Vault {
    let authority = Identity::from_pkcs8_pem(Role::Authority, "a", AUTHORITY).unwrap();
    pollster::block_on(async {
        let mut v = Vault::create(store, "bench", authority, Policy::default())
            .await
            .unwrap();
        v.register(patient, None).await.unwrap();
        v
    })
}

fn meta(len: usize) -> Metadata {
    Metadata {
        name: "bench.bin".into(),
        media_type: "application/octet-stream".into(),
        size: len as u64,
    }
}

fn bench(c: &mut Criterion) {
    let patient = Identity::from_pkcs8_pem(Role::Patient, "p", PATIENT).unwrap();
    let mut g = c.benchmark_group("vault");
    g.sample_size(10);
    for len in [1usize << 20, 1 << 30] {
        let plain = data(len);
        g.throughput(Throughput::Bytes(len as u64));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Publish into a memory store, and into one that drops the data blocks (seal + CID).
            let stores: [(&str, StoreMaker); 2] = [
                ("publish", Store::memory),
                ("publish_sealcid", || Store::new(DropLeaves::default())),
            ];
            for (name, store) in stores {
                g.bench_function(
                    BenchmarkId::new(format!("{name}_{threads}core"), len),
                    |b| {
                        b.iter_batched(
                            || vault_on(store(), &patient),
                            |mut v| {
                                pool.install(|| {
                                    pollster::block_on(v.publish(
                                        &patient,
                                        plain.as_slice(),
                                        meta(len),
                                        &mut |_| {},
                                    ))
                                    .unwrap()
                                });
                                v
                            },
                            BatchSize::PerIteration,
                        )
                    },
                );
            }
            let mut v = fresh_vault(&patient);
            let record =
                pollster::block_on(v.publish(&patient, plain.as_slice(), meta(len), &mut |_| {}))
                    .unwrap();
            let mut out = Vec::with_capacity(len);
            g.bench_function(BenchmarkId::new(format!("open_{threads}core"), len), |b| {
                b.iter(|| {
                    out.clear();
                    pool.install(|| {
                        pollster::block_on(v.open_record(&patient, &record, &mut out)).unwrap()
                    })
                })
            });
        }
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());
        let mut buf = plain.clone();
        g.bench_function(BenchmarkId::new("ring_aes_gcm_plus_sha256", len), |b| {
            b.iter(|| {
                let mut tags = 0u8;
                for (i, piece) in buf.chunks_mut(1 << 20).enumerate() {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                    let tag = key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::empty(),
                            piece,
                        )
                        .unwrap();
                    let d = ring::digest::digest(&ring::digest::SHA256, piece);
                    tags ^= tag.as_ref()[0] ^ d.as_ref()[0];
                }
                tags
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
