//! Envelope seal/open throughput, side by side with ring's AES-256-GCM on the same bytes.
//!
//! `cargo bench -p medshare-benches --bench envelope`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medshare::RecordId;
use medshare::envelope::{Decryptor, Encryptor, Header, Metadata, SealOptions};
use medshare::{Identity, Role};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

const KEY: &str = include_str!("../../core/testdata/keys/patient-2048.pem");

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

fn bench(c: &mut Criterion) {
    let id = Identity::from_pkcs8_pem(Role::Patient, "bench", KEY).unwrap();
    let mut g = c.benchmark_group("envelope");
    g.sample_size(10);
    for len in [1usize << 20, 64 << 20] {
        let plain = data(len);
        let meta = Metadata {
            name: "b".into(),
            media_type: "application/octet-stream".into(),
            size: len as u64,
        };
        let record = RecordId::random().unwrap();
        g.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(len + len / 1000 + 4096);
        g.bench_with_input(BenchmarkId::new("medshare_seal", len), &plain, |b, p| {
            b.iter(|| {
                out.clear();
                let (mut s, header) =
                    Encryptor::new(&record, 1, &meta, &[id.public()], SealOptions::default())
                        .unwrap();
                out.extend_from_slice(&header);
                for piece in p.chunks(1 << 20) {
                    s.update(piece, &mut out).unwrap();
                }
                s.finish(&mut out).unwrap()
            })
        });
        // One sealed copy to open; the RSA unwrap is excluded (measured by the RSA benches).
        out.clear();
        let (mut s, header) =
            Encryptor::new(&record, 1, &meta, &[id.public()], SealOptions::default()).unwrap();
        out.extend_from_slice(&header);
        s.update(&plain, &mut out).unwrap();
        let dek = s.finish(&mut out).unwrap();
        let h = Header::parse(&out).unwrap();
        let mut back = Vec::with_capacity(len);
        g.bench_with_input(BenchmarkId::new("medshare_open", len), &out, |b, sealed| {
            b.iter(|| {
                back.clear();
                let mut o = Decryptor::new(&h, &dek).unwrap();
                for piece in sealed[h.len()..].chunks(1 << 20) {
                    o.update(piece, &mut back).unwrap();
                }
                o.finish().unwrap()
            })
        });
        // Peer: ring AES-256-GCM, same 64 KiB chunking, in place.
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
        let mut buf = plain.clone();
        g.bench_function(
            BenchmarkId::new("ring_aes256gcm_seal_64k_chunks", len),
            |b| {
                b.iter(|| {
                    for (i, chunk) in buf.chunks_mut(1 << 16).enumerate() {
                        let mut n = [0u8; 12];
                        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
                        let tag = key
                            .seal_in_place_separate_tag(
                                Nonce::assume_unique_for_key(n),
                                Aad::empty(),
                                chunk,
                            )
                            .unwrap();
                        let _ = std::hint::black_box(tag);
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
