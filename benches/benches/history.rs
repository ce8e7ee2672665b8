//! Cost against history (issue 19, target 8): what opening a chain costs a command such as
//! `records --as D` or `identity list`, what one more grant costs, on chains of 10^3, 10^4
//! and 10^5 transactions in the filesystem store.
//!
//! * `open_query/snapshot`: `Vault::open` (from the store's snapshot, then the blocks after it)
//!   and the records a doctor holds grants on. The peer, `open_query/genesis`, is the same
//!   state verified from genesis ([`chain::load`]: what every open did before snapshots, and
//!   what `verify` still does).
//! * `grant`: one grant on an open vault (signed, certified, stored, the state and, every
//!   [`snapshot::INTERVAL`] blocks and transactions, the snapshot written), on a copy of the
//!   chain.
//! * `open_query/snapshot_behind`: as `open_query/snapshot`, with the snapshot 64 one-grant
//!   blocks behind the head (half an interval: what a command usually finds).
//!
//! * Space (target 9, printed, not timed): the bytes the store takes on disk (allocated
//!   filesystem blocks: the database, its log, the files) against the bytes of the blocks it
//!   holds, beside the peer: the same blocks one file each (the filesystem store's format 1),
//!   written in the same run to the same filesystem.
//!
//! `cargo bench -p medshare-benches --bench history` (`MEDSHARE_BENCH_TXS=1000,10000` for some
//! sizes). The chains are built once (10 transactions a block: registrations, then a record for
//! every nine grants, among 8 patients and 8 doctors; each record's content a 1,000-byte
//! block) and kept in `target/bench-history/`;
//! building 10^5 signs every transaction, about 1.5 min on 2 cores.

use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use medshare::cid::Cid;
use medshare::envelope::DataKey;
use medshare::ledger::checkpoint::{Certificate, sign_share};
use medshare::ledger::snapshot;
use medshare::ledger::{
    AuthorityKey, CertificateObject, Endorsement, Genesis, GenesisBlock, Policy, SignedTx, State,
    Tx, TxBody, chain,
};
use medshare::store::Block as StoredBlock;
use medshare::{GrantOptions, Identity, IdentityId, Purpose, RecordId, Role, Store, Vault};
use pollster::block_on;
use rayon::prelude::*;

const PASSPHRASE: &str = "bench history passphrase";
const PARTIES: usize = 8;
const TXS_PER_BLOCK: usize = 10;

fn sizes() -> Vec<usize> {
    std::env::var("MEDSHARE_BENCH_TXS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-history")
        .to_path_buf()
}

struct Fixture {
    store: PathBuf,
    authority: Identity,
    patient: Identity,
    doctor: IdentityId,
    record: RecordId,
}

fn identity(dir: &Path, role: Role, name: &str) -> Identity {
    let path = dir.join(format!("{name}.key"));
    if let Ok(id) = Identity::load(&path, PASSPHRASE) {
        return id;
    }
    let id = Identity::generate(role, name, 2048).unwrap();
    id.save(&path, PASSPHRASE).unwrap();
    id
}

/// The chain of `n` transactions, built once into `target/bench-history/<n>/`.
fn fixture(n: usize) -> Fixture {
    let root = cache_dir();
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let authority = identity(&keys, Role::Authority, "authority");
    let patients: Vec<Identity> = (0..PARTIES)
        .map(|i| identity(&keys, Role::Patient, &format!("patient{i}")))
        .collect();
    let doctors: Vec<Identity> = (0..PARTIES)
        .map(|i| identity(&keys, Role::Doctor, &format!("doctor{i}")))
        .collect();
    let dir = root.join(n.to_string());
    let done = dir.join("COMPLETE");
    let first_record = dir.join("record");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("building a chain of {n} transactions in {}", dir.display());
        let record = build(&dir.join("store"), n, &authority, &patients, &doctors);
        std::fs::write(&first_record, record.as_bytes()).unwrap();
        std::fs::write(&done, b"").unwrap();
    }
    let bytes: [u8; 16] = std::fs::read(&first_record).unwrap().try_into().unwrap();
    Fixture {
        store: dir.join("store"),
        authority,
        patient: patients[0].clone(),
        doctor: doctors[1].id(),
        record: RecordId::from_bytes(bytes),
    }
}

fn build(
    dir: &Path,
    n: usize,
    authority: &Identity,
    patients: &[Identity],
    doctors: &[Identity],
) -> RecordId {
    let store = Store::open_dir(dir).unwrap();
    // Block times start far enough back for a vault's clock to be past them all.
    let t0 = medshare::platform::now_secs() - 10_000_000;
    block_on(async {
        let g = GenesisBlock::new(Genesis {
            network: "bench-history".into(),
            time: t0,
            nonce: [0; 16],
            authorities: vec![AuthorityKey {
                key: authority.public().clone(),
                validator: None,
            }],
            policy: Policy::default(),
        });
        store.put(&g.cid, &g.bytes).await.unwrap();
        store
            .compare_and_swap_head(None, Some(&g.cid))
            .await
            .unwrap();
        let mut state = State::from_genesis(&g).unwrap();
        // Every transaction's author and body first (cheap); signed in parallel below.
        let mut authored: Vec<(&Identity, TxBody)> = Vec::with_capacity(n);
        for p in patients {
            authored.push((
                p,
                TxBody::RegisterPatient {
                    key: p.public().clone(),
                },
            ));
        }
        for d in doctors {
            let e = Endorsement::sign(authority, &g.cid, &d.id(), "GMC-bench").unwrap();
            authored.push((
                d,
                TxBody::RegisterDoctor {
                    key: d.public().clone(),
                    licence: e.licence,
                    authority: e.authority,
                    endorsement: e.signature,
                },
            ));
        }
        let dek = DataKey::from_bytes([7; 32]);
        let mut contents = Vec::new();
        let mut records: Vec<Vec<RecordId>> = vec![Vec::new(); patients.len()];
        let mut first = None;
        let mut i = 0usize;
        while authored.len() < n {
            let p = i % patients.len();
            if i.is_multiple_of(10) || records[p].is_empty() {
                let record = RecordId::random().unwrap();
                first.get_or_insert(record);
                records[p].push(record);
                // A small record: one raw block (as `ipfs add --raw-leaves` stores a small file).
                let mut content = vec![0u8; 1000];
                content[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let cid = Cid::v1(medshare::cid::RAW, &content);
                contents.push(StoredBlock { cid, data: content });
                let body = TxBody::PublishRecord {
                    record,
                    version: 1,
                    content: cid,
                    size: 1000,
                    commitment: [0; 32],
                    owner_key: dek.wrap(patients[p].public(), &record, 1).unwrap(),
                };
                authored.push((&patients[p], body));
            } else {
                let list = &records[p];
                let record = list[(i * 7919) % list.len()];
                let d = &doctors[(i / patients.len()) % doctors.len()];
                let body = TxBody::Grant {
                    record,
                    version: 1,
                    doctor: d.id(),
                    wrapped_key: dek.wrap(d.public(), &record, 1).unwrap(),
                    expires: i.is_multiple_of(3).then_some(t0 + 100_000_000),
                    purpose: Purpose::Treatment,
                    note: None,
                };
                authored.push((&patients[p], body));
            }
            i += 1;
        }
        let mut seqs = std::collections::HashMap::<IdentityId, u64>::new();
        let txs: Vec<Tx> = authored
            .iter()
            .map(|(who, body)| {
                let seq = seqs.entry(who.id()).or_insert(0);
                *seq += 1;
                Tx {
                    genesis: g.cid,
                    author: who.id(),
                    seq: *seq,
                    time: t0,
                    body: body.clone(),
                }
            })
            .collect();
        store.put_many(&contents).await.unwrap();
        let mut h = 0u64;
        for chunk in txs.chunks(TXS_PER_BLOCK * 100) {
            let signed: Vec<SignedTx> = chunk
                .par_iter()
                .zip(&authored[h as usize * TXS_PER_BLOCK..][..chunk.len()])
                .map(|(tx, (who, _))| SignedTx::sign(tx.clone(), who).unwrap())
                .collect();
            let mut out = Vec::new();
            for block_txs in signed.chunks(TXS_PER_BLOCK) {
                h += 1;
                let b = state.next_block(block_txs, t0 + h);
                state.apply_block(&b, block_txs).unwrap();
                let cp = state.checkpoint();
                let cert = CertificateObject::new(Certificate {
                    signatures: vec![sign_share(&cp, authority).unwrap()],
                    checkpoint: cp,
                });
                state.apply_certificate(&cert).unwrap();
                for t in block_txs {
                    out.push(StoredBlock {
                        cid: t.cid,
                        data: t.bytes.clone(),
                    });
                }
                out.push(StoredBlock {
                    cid: b.cid,
                    data: b.bytes.clone(),
                });
                out.push(StoredBlock {
                    cid: cert.cid,
                    data: cert.bytes.clone(),
                });
            }
            store.put_many(&out).await.unwrap();
        }
        store
            .compare_and_swap_head(Some(&g.cid), Some(&state.head_pointer()))
            .await
            .unwrap();
        first.unwrap()
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Bytes allocated on disk under `dir` (what `du` counts).
fn on_disk(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += m.blocks() * 512;
        if m.is_dir() {
            n += on_disk(&e.path());
        }
    }
    n
}

/// Target 9: the store's bytes on disk against its blocks' bytes, and the same blocks one file
/// each (format 1, the peer) on the same filesystem.
fn report_space(n: usize, store_dir: &Path) {
    let store = Store::open_dir(store_dir).unwrap();
    let all = block_on(store.list()).unwrap().unwrap();
    let peer = tempfile::tempdir_in(cache_dir()).unwrap();
    let mut data = 0u64;
    for cid in &all {
        let bytes = block_on(store.get(cid)).unwrap();
        data += bytes.len() as u64;
        let key = cid.storage_key();
        let shard = peer.path().join(&key[key.len() - 3..key.len() - 1]);
        std::fs::create_dir_all(&shard).unwrap();
        std::fs::write(shard.join(key), bytes).unwrap();
    }
    drop(store);
    let snapshot = std::fs::metadata(store_dir.join("SNAPSHOT"))
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.blocks() * 512
        })
        .unwrap_or(0);
    let total = on_disk(store_dir);
    let files = on_disk(peer.path());
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "space at {n} transactions: {} blocks, {:.1} MiB of data; the store {:.1} MiB on disk \
         ({:.2}x; {:.1} MiB without its snapshot: {:.2}x); one file per block (format 1) {:.1} MiB \
         ({:.2}x)",
        all.len(),
        mib(data),
        mib(total),
        total as f64 / data as f64,
        mib(total - snapshot),
        (total - snapshot) as f64 / data as f64,
        mib(files),
        files as f64 / data as f64,
    );
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("history");
    g.sample_size(10);
    for n in sizes() {
        let f = fixture(n);
        // The first open verifies from genesis and writes the snapshot the others start from.
        {
            let store = Store::open_dir(&f.store).unwrap();
            let v = block_on(Vault::open(store, None, None)).unwrap();
            eprintln!(
                "{n} transactions: height {}, opened {:?}, snapshot {} bytes",
                v.height(),
                v.opened(),
                std::fs::metadata(f.store.join("SNAPSHOT"))
                    .map(|m| m.len())
                    .unwrap_or(0)
            );
        }
        report_space(n, &f.store);
        g.bench_function(BenchmarkId::new("open_query/snapshot", n), |b| {
            b.iter(|| {
                let store = Store::open_dir(&f.store).unwrap();
                let v = block_on(Vault::open(store, None, None)).unwrap();
                // A chain shorter than a snapshot interval has none: it is verified whole.
                assert!(
                    !snapshot::due(v.state(), 0, 0)
                        || matches!(v.opened(), snapshot::Opened::Snapshot { .. })
                );
                v.records_granted_to(&f.doctor).len()
            })
        });
        g.bench_function(BenchmarkId::new("open_identities/snapshot", n), |b| {
            b.iter(|| {
                let store = Store::open_dir(&f.store).unwrap();
                let v = block_on(Vault::open(store, None, None)).unwrap();
                v.state().identities().len()
            })
        });
        g.bench_function(BenchmarkId::new("open_query/genesis", n), |b| {
            b.iter(|| {
                let store = Store::open_dir(&f.store).unwrap();
                let head = block_on(store.head()).unwrap().unwrap();
                let (state, _) = block_on(chain::load(&store, &head, None)).unwrap();
                state.records_granted_to(&f.doctor).len()
            })
        });
        // Grants append to a copy of the chain.
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&f.store, copy.path());
        // The copy's dirty pages would otherwise be written back by the first grants' syncfs.
        let _ = std::process::Command::new("sync").status();
        let store = Store::open_dir(copy.path()).unwrap();
        let mut v = block_on(Vault::open_local(store, f.authority.clone(), None)).unwrap();
        let options = GrantOptions {
            expires: None,
            purpose: Purpose::Treatment,
            note: None,
        };
        g.bench_function(BenchmarkId::new("grant", n), |b| {
            b.iter(|| block_on(v.grant(&f.patient, &f.record, &f.doctor, options.clone())).unwrap())
        });
        // The grants around a snapshot, one by one (printed, not timed by criterion): one
        // interval of one-grant blocks holds exactly one grant that makes a snapshot due.
        let mut times: Vec<std::time::Duration> = (0..snapshot::INTERVAL / 2 + 1)
            .map(|_| {
                let t = std::time::Instant::now();
                block_on(v.grant(&f.patient, &f.record, &f.doctor, options.clone())).unwrap();
                t.elapsed()
            })
            .collect();
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        eprintln!(
            "grants one by one at {n} transactions, {} of them: median {:.2?}, p90 {:.2?}, \
             the slowest three {:.2?} {:.2?} {:.2?}",
            times.len(),
            at(0.5),
            at(0.9),
            times[times.len() - 3],
            times[times.len() - 2],
            times[times.len() - 1],
        );
        // The usual case for a command: the snapshot half an interval behind the head (a
        // snapshot at the head, then 64 grants: 64 blocks of one transaction each). A snapshot
        // still being written on its own thread would land over this one: waited for first.
        v.wait_for_snapshot();
        let bytes = v.state().snapshot().unwrap();
        block_on(v.store().put_snapshot(&bytes)).unwrap();
        drop(v);
        let store = Store::open_dir(copy.path()).unwrap();
        let mut v = block_on(Vault::open_local(store, f.authority.clone(), None)).unwrap();
        for _ in 0..snapshot::INTERVAL / 4 {
            block_on(v.grant(&f.patient, &f.record, &f.doctor, options.clone())).unwrap();
        }
        drop(v);
        g.bench_function(BenchmarkId::new("open_query/snapshot_behind", n), |b| {
            b.iter(|| {
                let store = Store::open_dir(copy.path()).unwrap();
                let v = block_on(Vault::open(store, None, None)).unwrap();
                assert!(matches!(
                    v.opened(),
                    snapshot::Opened::Snapshot { replayed: 64, .. }
                ));
                v.records_granted_to(&f.doctor).len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
