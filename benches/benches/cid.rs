//! UnixFS root CID throughput for both profiles, next to plain SHA-256 (sha2 and ring) over the
//! same bytes, which bounds it from above.
//!
//! `cargo bench -p medshare-benches --bench cid`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medshare::{Profile, unixfs};
use sha2::Digest;

fn bench(c: &mut Criterion) {
    let len = 256usize << 20;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut g = c.benchmark_group("cid");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(len as u64));
    for profile in [Profile::UnixfsV1_2025, Profile::UnixfsV0_2015] {
        g.bench_with_input(
            BenchmarkId::new(format!("medshare_{profile}"), len),
            &data,
            |b, d| b.iter(|| unixfs::cid(d, profile)),
        );
    }
    g.bench_with_input(
        BenchmarkId::new("sha2_sha256_1mib_pieces", len),
        &data,
        |b, d| {
            b.iter(|| {
                d.chunks(1 << 20)
                    .map(|p| sha2::Sha256::digest(p)[0])
                    .fold(0u8, |a, x| a ^ x)
            })
        },
    );
    g.bench_with_input(
        BenchmarkId::new("ring_sha256_1mib_pieces", len),
        &data,
        |b, d| {
            b.iter(|| {
                d.chunks(1 << 20)
                    .map(|p| ring::digest::digest(&ring::digest::SHA256, p).as_ref()[0])
                    .fold(0u8, |a, x| a ^ x)
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
