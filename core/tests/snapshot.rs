//! State snapshots: a chain reopened from its snapshot is the chain verified from genesis, byte
//! for byte, at every height a snapshot can be taken; a damaged, foreign, forged or stale
//! snapshot is refused with its exact error and the chain is verified from genesis instead;
//! rollback protection still holds; `verify` never reads one.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{identity, pattern};
use medshare::ledger::snapshot::{self, Opened, Rejected};
use medshare::ledger::{
    AuthorityChangeKind, Block, Endorsement, Policy, ReviewOutcome, State, chain,
};
use medshare::sequencer::{LocalSequencer, Sequencer};
use medshare::{
    Cid, Error, Expiry, GrantOptions, Identity, PublishOptions, Purpose, RecordId, Store, Vault,
};
use pollster::block_on;

const AUTHORITIES: [&str; 4] = ["authority", "authority2", "authority3", "authority4"];
/// The clock the chains start at: the genesis block takes the system's time.
fn t0() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60
}

/// A chain of more than two snapshot intervals with every kind of state: patients, endorsed
/// doctors, records (one opted into break-glass access), grants with notes and expiries,
/// revocations, a key rotation, an emergency access released and reviewed, a pending
/// authority vote. Returns the store's directory, the head pointer after every block, the
/// records and the final vault.
struct Built {
    dir: tempfile::TempDir,
    heads: Vec<Cid>,
    a: RecordId,
    b: RecordId,
}

/// The chain is built once per test binary; each test works on its own copy of the store.
fn build() -> Built {
    static ONCE: std::sync::OnceLock<Built> = std::sync::OnceLock::new();
    let b = ONCE.get_or_init(build_once);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(b.dir.path(), dir.path());
    Built {
        dir,
        heads: b.heads.clone(),
        a: b.a,
        b: b.b,
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn build_once() -> Built {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let t0 = t0();
        let clock = Arc::new(AtomicU64::new(t0));
        let authorities: Vec<Identity> = AUTHORITIES.iter().map(|a| identity(a)).collect();
        let (seq, _) =
            LocalSequencer::create_with(store.clone(), "snapshots", authorities, Policy::default())
                .await
                .unwrap();
        let c = clock.clone();
        let seq = Arc::new(seq.with_clock(Arc::new(move || c.fetch_add(1, Ordering::SeqCst))));
        let mut v = Vault::open(store, Some(seq as Arc<dyn Sequencer>), None)
            .await
            .unwrap();
        let c = clock.clone();
        v.set_clock(Arc::new(move || c.load(Ordering::SeqCst)));
        let (p, p2, d, d2) = (
            identity("patient"),
            identity("patient2"),
            identity("doctor"),
            identity("doctor2"),
        );
        let a0 = identity(AUTHORITIES[0]);
        v.register(&p, None).await.unwrap();
        v.register(&p2, None).await.unwrap();
        for (doc, lic) in [(&d, "GMC-1"), (&d2, "GMC-2")] {
            let e = Endorsement::sign(&a0, &v.genesis(), &doc.id(), lic).unwrap();
            v.register(doc, Some(&e)).await.unwrap();
        }
        let data = pattern(70_000);
        let a = v
            .publish_with(
                &p,
                &data[..],
                medshare::Metadata {
                    name: "allergies.pdf".into(),
                    media_type: "application/pdf".into(),
                    size: data.len() as u64,
                },
                PublishOptions { emergency: true },
                &mut |_| {},
            )
            .await
            .unwrap();
        let b = v
            .publish_bytes(&p2, b"blood group: O-", "blood.txt", "text/plain")
            .await
            .unwrap();
        v.grant(
            &p2,
            &b,
            &d.id(),
            GrantOptions {
                expires: Some(Expiry::At(t0 + 86_400)),
                purpose: Purpose::CoordinationOfCare,
                note: Some("referral".into()),
            },
        )
        .await
        .unwrap();
        let request = v
            .request_emergency(&d2, &a, "unconscious", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        for a in &AUTHORITIES[..3] {
            v.release_share(&identity(a), &request).await.unwrap();
        }
        v.review_emergency(
            &identity(AUTHORITIES[2]),
            &request,
            ReviewOutcome::Justified,
        )
        .await
        .unwrap();
        v.vote_authority(
            &a0,
            AuthorityChangeKind::Remove {
                authority: identity(AUTHORITIES[3]).id(),
            },
        )
        .await
        .unwrap();
        let p2b = p2.rotated().unwrap();
        v.rotate_key(&p2, &p2b).await.unwrap();
        // Grants and revocations (one block each) up to past two snapshot intervals.
        let mut i = 0u64;
        while v.height() + v.state().log_size() < 2 * snapshot::INTERVAL + 40 {
            if i % 3 == 2 {
                v.revoke(&p2b, &b, &d.id()).await.unwrap();
            } else {
                let options = GrantOptions {
                    expires: i.is_multiple_of(2).then_some(Expiry::At(t0 + 1000 + i)),
                    purpose: Purpose::Treatment,
                    note: None,
                };
                v.grant(&p2b, &b, &d.id(), options).await.unwrap();
            }
            i += 1;
        }
        // The head pointer after every block: walk back through the certificates.
        let store = v.store().clone();
        let mut at = v.head();
        let mut heads = Vec::new();
        loop {
            heads.push(at);
            match chain::fetch_head(&store, &at).await.unwrap() {
                chain::Head::Genesis(_) => break,
                chain::Head::Certified(c) => {
                    let raw = store.get(&c.certificate.checkpoint.block).await.unwrap();
                    let block = Block::decode(&raw).unwrap();
                    at = block.header.parent_cert.unwrap_or(block.header.parent);
                }
            }
        }
        heads.reverse();
        drop(v);
        Built { dir, heads, a, b }
    })
}

fn full(store: &Store, head: &Cid) -> State {
    block_on(chain::load(store, head, None)).unwrap().0
}

fn corrupt_detail(r: medshare::Result<State>) -> String {
    match r {
        Err(Error::StoreCorrupt(d)) => d,
        Err(e) => panic!("expected StoreCorrupt, got {e:?}"),
        Ok(s) => panic!("a bad snapshot loaded (height {})", s.height()),
    }
}

/// Replaces the checksum trailer so the file passes it (a forged snapshot).
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - snapshot::CHECKSUM;
    let crc = crc32fast::hash(&bytes[..n]).to_le_bytes();
    bytes[n..].copy_from_slice(&crc);
}

fn replace_first(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the snapshot");
    bytes[at..at + from.len()].copy_from_slice(to);
}

#[test]
fn snapshots_reopen_the_chain_that_genesis_replay_gives() {
    let built = build();
    let store = Store::open_dir(built.dir.path()).unwrap();
    let head = *built.heads.last().unwrap();
    let whole = full(&store, &head);
    let expected = whole.snapshot().unwrap();

    // The vault kept one at the last interval it crossed; reopening starts from it and
    // verifies less than an interval of blocks and transactions after it.
    let v = block_on(Vault::open(store.clone(), None, None)).unwrap();
    let Opened::Snapshot {
        height,
        transactions,
        replayed,
    } = v.opened()
    else {
        panic!("opened {:?}", v.opened());
    };
    assert!(height > snapshot::INTERVAL / 2 && height + replayed == whole.height());
    assert!(!snapshot::due(&whole, height, transactions));
    assert_eq!(v.state().snapshot().unwrap(), expected);
    assert_eq!(v.state().state_root(), whole.state_root());
    assert_eq!(v.records_owned_by(&identity("patient").id()).len(), 1);
    for r in [&built.a, &built.b] {
        assert_eq!(v.audit(r).unwrap(), whole.audit(r).unwrap());
    }
    assert_eq!(v.state().emergencies(false), whole.emergencies(false));
    drop(v);

    // From every height a snapshot can be taken: load it, extend to the head, and the state
    // is the one verified from genesis, byte for byte; a snapshot round-trips exactly.
    for (h, at) in built.heads.iter().enumerate().skip(1).step_by(19) {
        let s = full(&store, at);
        assert_eq!(s.height(), h as u64);
        let bytes = s.snapshot().unwrap();
        let base = block_on(snapshot::load(&store, &bytes, None)).unwrap();
        assert_eq!(base.snapshot().unwrap(), bytes, "round trip at height {h}");
        let (after, n) = block_on(chain::extend(&store, &base, &head, u64::MAX)).unwrap();
        assert_eq!(n, whole.height() - h as u64);
        assert_eq!(
            after.snapshot().unwrap(),
            expected,
            "extended from height {h}"
        );
    }
    // The genesis block has no certificate: nothing to snapshot there.
    assert!(full(&store, &built.heads[0]).snapshot().is_none());
}

#[test]
fn a_bad_snapshot_is_refused_and_the_chain_verified_from_genesis() {
    let built = build();
    let store = Store::open_dir(built.dir.path()).unwrap();
    let head = *built.heads.last().unwrap();
    let whole = full(&store, &head);
    let expected = whole.snapshot().unwrap();
    let good = block_on(store.get_snapshot()).unwrap().unwrap();
    let load = |bytes: &[u8]| block_on(snapshot::load(&store, bytes, None));

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let sha = "snapshot: its checksum does not match (a damaged or torn file)";
    assert_eq!(corrupt_detail(load(&flipped)), sha);
    assert_eq!(corrupt_detail(load(&good[..good.len() / 2])), sha);
    let format = "snapshot: not a medshare snapshot of format 2";
    assert_eq!(corrupt_detail(load(b"")), format);
    // Format 1 (wrapped keys copied into the snapshot) and a later format are both set aside.
    for other in [b"medshare-snapshot/1\n", b"medshare-snapshot/3\n"] {
        let mut v = good.clone();
        replace_first(&mut v, b"medshare-snapshot/2\n", other);
        reseal(&mut v);
        assert_eq!(corrupt_detail(load(&v)), format);
    }
    let mut trailing = good[..good.len() - snapshot::CHECKSUM].to_vec();
    trailing.push(0);
    trailing.extend_from_slice(&[0; snapshot::CHECKSUM]);
    reseal(&mut trailing);
    assert_eq!(
        corrupt_detail(load(&trailing)),
        "snapshot: 1 bytes after the state"
    );

    // A forged snapshot with a valid checksum: record B's latest content swapped for its first
    // version's. Its access state no longer has the certified state root.
    let base = load(&good).unwrap();
    let latest = base.record(&built.b).unwrap().content.to_bytes();
    let first = base.audit(&built.b).unwrap()[0]
        .kind
        .content()
        .unwrap()
        .to_bytes();
    assert_ne!(latest, first);
    let mut forged = good.clone();
    replace_first(&mut forged, &latest, &first);
    reseal(&mut forged);
    let detail = corrupt_detail(load(&forged));
    assert!(
        detail.starts_with("snapshot: does not match its certificate:")
            && detail.ends_with("the certificate's state root is not the chain's"),
        "{detail}"
    );
    // Another network's snapshot, asked for this one.
    let other = Cid::dag_cbor(b"another network");
    match block_on(snapshot::load(&store, &good, Some(&other))) {
        Err(Error::WrongGenesis { expected, found }) => {
            assert_eq!((expected, found), (other, whole.genesis_cid()));
        }
        r => panic!("expected WrongGenesis, got {:?}", r.map(|s| s.height())),
    }

    // Each bad one on disk: the vault verifies from genesis, says why, gets the same state,
    // and replaces the snapshot at once (the next open uses it). Nothing stored is lost.
    for bad in [flipped, forged, b"".to_vec()] {
        block_on(store.put_snapshot(&bad)).unwrap();
        let v = block_on(Vault::open(store.clone(), None, None)).unwrap();
        assert_eq!(
            v.opened(),
            Opened::Genesis {
                rejected: Some(Rejected::Invalid)
            }
        );
        assert_eq!(v.state().snapshot().unwrap(), expected);
        drop(v);
        let v = block_on(Vault::open(store.clone(), None, None)).unwrap();
        assert_eq!(
            v.opened(),
            Opened::Snapshot {
                height: whole.height(),
                transactions: whole.log_size(),
                replayed: 0
            }
        );
    }
    // One that cannot even be read (a directory where the file should be): the same.
    let path = built.dir.path().join("SNAPSHOT");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let v = block_on(Vault::open(store.clone(), None, None)).unwrap();
    assert_eq!(
        v.opened(),
        Opened::Genesis {
            rejected: Some(Rejected::Invalid)
        }
    );
    assert_eq!(v.state().snapshot().unwrap(), expected);
    drop(v);
    std::fs::remove_dir(&path).unwrap();

    // `verify` never reads it: a damaged snapshot does not fail a full verification.
    let mut damaged = good.clone();
    damaged[mid] ^= 0x01;
    block_on(store.put_snapshot(&damaged)).unwrap();
    let mut v = block_on(Vault::open(store.clone(), None, None)).unwrap();
    let report = block_on(v.verify()).unwrap();
    assert_eq!(report.blocks, whole.height() + 1);
}

/// Audit trails stay in the snapshot's bytes until read. One damaged under a good checksum (a
/// cache written wrong, or tampered with: trails are not certified) loads; reading that trail
/// is refused with what is wrong, everything else reads, and no snapshot is written from it.
#[test]
fn a_damaged_audit_trail_is_found_when_read() {
    let built = build();
    let store = Store::open_dir(built.dir.path()).unwrap();
    let head = *built.heads.last().unwrap();
    let good = block_on(store.get_snapshot()).unwrap().unwrap();
    let base = block_on(snapshot::load(&store, &good, None)).unwrap();
    let whole = full(&store, &head);
    assert_eq!(
        base.audit(&built.b).unwrap()[..],
        whole.audit(&built.b).unwrap()[..base.audit(&built.b).unwrap().len()]
    );
    // Record B's first event names its publication's transaction: make that CID's version 7.
    // In B's trail it starts at byte 9: the event count (2 bytes: B has some 300 events), the
    // first event's height (1), block reference (1) and time (5).
    let published = base.audit(&built.b).unwrap()[0].tx.to_bytes();
    let mut bad = good.clone();
    let mut changed = published.clone();
    changed[0] = 7;
    replace_first(&mut bad, &published, &changed);
    reseal(&mut bad);
    let state = block_on(snapshot::load(&store, &bad, None)).unwrap();
    match state.audit(&built.b) {
        Err(Error::StoreCorrupt(detail)) => assert_eq!(
            detail,
            format!(
                "snapshot: the audit trail of record {} does not decode (CID at byte 9: {}): remove the store's SNAPSHOT file and the chain is verified from genesis",
                built.b,
                medshare::Cid::from_bytes(&changed).unwrap_err()
            )
        ),
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
    assert_eq!(
        state.audit(&built.a).unwrap(),
        base.audit(&built.a).unwrap()
    );
    assert_eq!(
        state.record(&built.b).unwrap(),
        base.record(&built.b).unwrap()
    );
    assert_eq!(state.snapshot(), None);
    assert!(base.snapshot().is_some());
}

#[test]
fn a_snapshot_ahead_of_the_head_does_not_hide_a_rollback() {
    let built = build();
    let store = Store::open_dir(built.dir.path()).unwrap();
    let head = *built.heads.last().unwrap();
    // The head moved back to a block before the snapshot (a restored backup, a tampered HEAD).
    let older = built.heads[20];
    block_on(store.compare_and_swap_head(Some(&head), Some(&older))).unwrap();
    match block_on(Vault::open(store.clone(), None, None)) {
        Err(Error::Rollback { .. }) => {}
        r => panic!("expected Rollback, got {:?}", r.map(|v| v.opened())),
    }
    // The snapshot's head is not on that chain: it is set aside, not extended.
    let bytes = block_on(store.get_snapshot()).unwrap().unwrap();
    let base = block_on(snapshot::load(&store, &bytes, None)).unwrap();
    assert!(base.height() > 20);
    let r = block_on(chain::extend(&store, &base, &older, u64::MAX));
    assert!(
        matches!(r, Err(Error::InvalidChain { .. })),
        "{:?}",
        r.map(|x| x.1)
    );
    let (state, opened) = block_on(snapshot::load_chain(&store, &older, None)).unwrap();
    assert_eq!(
        opened,
        Opened::Genesis {
            rejected: Some(Rejected::OffChain)
        }
    );
    assert_eq!(state.height(), 20);
}

/// Snapshots are encoded and written on a thread of their own (native targets): the grant that
/// makes one due does not wait for it, `wait_for_snapshot` does, and dropping the vault does
/// too, so the store reopens at once (its lock released, no write left half done) from the
/// snapshot of the height that made it due.
#[test]
fn a_snapshot_written_in_the_background_is_whole_when_the_vault_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (p, d) = (identity("patient"), identity("doctor"));
    let (last, r) = block_on(async {
        let store = Store::open_dir(dir.path()).unwrap();
        let a0 = identity(AUTHORITIES[0]);
        let mut v = Vault::create(store.clone(), "background", a0.clone(), Policy::default())
            .await
            .unwrap();
        v.register(&p, None).await.unwrap();
        let e = Endorsement::sign(&a0, &v.genesis(), &d.id(), "GMC-1").unwrap();
        v.register(&d, Some(&e)).await.unwrap();
        let r = v
            .publish_bytes(&p, b"blood group: O-", "blood.txt", "text/plain")
            .await
            .unwrap();
        // Each grant is a block of one transaction: two units of work towards the interval.
        let mut due_at = None;
        while due_at.is_none() {
            v.grant(&p, &r, &d.id(), GrantOptions::default())
                .await
                .unwrap();
            if snapshot::due(v.state(), 0, 0) {
                due_at = Some(v.height());
            }
        }
        let due_at = due_at.unwrap();
        v.wait_for_snapshot();
        let written = snapshot::load(&store, &store.get_snapshot().await.unwrap().unwrap(), None)
            .await
            .unwrap();
        assert_eq!(written.height(), due_at);
        // Another interval's worth, then drop the vault right after the grant that made the
        // next one due, with its snapshot likely still being written.
        let mut next = None;
        while next.is_none() {
            v.grant(&p, &r, &d.id(), GrantOptions::default())
                .await
                .unwrap();
            if snapshot::due(v.state(), due_at, written.log_size()) {
                next = Some(v.height());
            }
        }
        drop(v);
        drop(store);
        (next.unwrap(), r)
    });
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "left in tmp/: {leftovers:?}");
    let store = Store::open_dir(dir.path()).expect("the dropped vault released its store");
    let v = block_on(Vault::open(store, None, None)).unwrap();
    assert_eq!(
        v.opened(),
        Opened::Snapshot {
            height: last,
            transactions: v.state().log_size(),
            replayed: 0,
        }
    );
    assert_eq!(v.height(), last);

    // The doctor's wrapped key is not in the snapshot: her grant names the transaction that
    // carries it, read from the store when she opens the record.
    let grant = v.access_list(&r).unwrap().pop().unwrap();
    assert_eq!(grant.key.index, 0);
    let mut out = Vec::new();
    block_on(v.open_record(&d, &r, &mut out)).unwrap();
    assert_eq!(out, b"blood group: O-");
    // A snapshot naming another transaction for that key (its checksum made good: a cache
    // written wrong, or tampered with) loads, since wrapped keys are not certified, but the
    // doctor's read is refused with the transaction named; the owner still reads the record.
    let published = v.audit(&r).unwrap()[0].tx;
    drop(v);
    let path = dir.path().join("SNAPSHOT");
    let mut bytes = std::fs::read(&path).unwrap();
    replace_first(&mut bytes, &grant.key.tx.to_bytes(), &published.to_bytes());
    reseal(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let v = block_on(Vault::open(
        Store::open_dir(dir.path()).unwrap(),
        None,
        None,
    ))
    .unwrap();
    assert!(matches!(v.opened(), Opened::Snapshot { replayed: 0, .. }));
    match block_on(v.open_record(&d, &r, Vec::new())) {
        Err(Error::StoreCorrupt(detail)) => assert_eq!(
            detail,
            format!(
                "the chain state names transaction {published} (key 0) for {}'s key to record {r} version 1, and it carries no such key",
                d.id()
            )
        ),
        other => panic!("expected StoreCorrupt, got {other:?}"),
    }
    let mut out = Vec::new();
    block_on(v.open_record(&p, &r, &mut out)).unwrap();
    assert_eq!(out, b"blood group: O-");
}
