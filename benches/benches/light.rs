//! Light clients (`docs/FORMAT.md` §12): a state-map proof's size (printed) and the time to
//! verify it in maps of 10^4 and 10^6 entries, next to an RFC 6962 inclusion proof in a log of
//! the same size (the peer: what receipts and transparency logs verify); and the cost of one
//! entry's update at those sizes, next to appending one leaf to the log's frontier.
//!
//! `cargo bench -p medshare-benches --bench light`
//! The keys are SHA-256 outputs like the chain's (one per record or doctor), so the tree's depth
//! is what a chain with that many records and doctors would have.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use medshare::ledger::merkle::{Frontier, Hash, inclusion_proof, leaf_hash, verify_inclusion};
use medshare::ledger::smt::{StateMap, key, value_hash};

fn map(n: u64) -> StateMap {
    let mut m = StateMap::new();
    for i in 0..n {
        m.insert(
            &key("bench", &i.to_be_bytes()),
            &value_hash(&i.to_le_bytes()),
        );
    }
    m
}

fn bench(c: &mut Criterion) {
    let mut verify = c.benchmark_group("light/verify");
    let mut update = Vec::new();
    for n in [10_000u64, 1_000_000] {
        let m = map(n);
        let k = key("bench", &(n / 2).to_be_bytes());
        let v = value_hash(&(n / 2).to_le_bytes());
        let proof = m.prove(&k);
        let json = serde_json::to_string(&proof).unwrap();
        let absent = key("bench", b"absent");
        let none = m.prove(&absent);
        println!(
            "state map of {n}: proof of an entry {} siblings, {} bytes binary, {} bytes JSON; of an absence {} siblings",
            proof.siblings.len(),
            proof.siblings.len() * 32 + 64,
            json.len(),
            none.siblings.len()
        );
        let root = m.root();
        verify.bench_with_input(BenchmarkId::new("state-map", n), &n, |b, _| {
            b.iter(|| proof.verify(&root, &k, Some(&v)).unwrap())
        });
        // The peer: an inclusion proof in an RFC 6962 tree of as many leaves.
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::new();
        for l in &leaves {
            f.push(*l);
        }
        let index = n / 2;
        let ip = inclusion_proof(&leaves, index, n).unwrap();
        println!(
            "RFC 6962 log of {n}: inclusion proof {} hashes, {} bytes",
            ip.len(),
            ip.len() * 32
        );
        let log_root = f.root();
        verify.bench_with_input(BenchmarkId::new("rfc6962-inclusion", n), &n, |b, _| {
            b.iter(|| {
                verify_inclusion(&index.to_be_bytes(), index, n, &log_root, &ip).unwrap();
            })
        });
        update.push((n, m, f));
    }
    verify.finish();

    let mut g = c.benchmark_group("light/update");
    for (n, m, f) in &update {
        let k = key("bench", &(n / 3).to_be_bytes());
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::new("state-map-entry", n), n, |b, _| {
            b.iter_batched(
                || m.clone(),
                |mut m| {
                    i += 1;
                    m.insert(&k, &value_hash(&i.to_be_bytes()));
                    m.root()
                },
                criterion::BatchSize::SmallInput,
            )
        });
        g.bench_with_input(BenchmarkId::new("rfc6962-append", n), n, |b, _| {
            b.iter_batched(
                || f.clone(),
                |mut f| {
                    f.push([7; 32]);
                    f.root()
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
