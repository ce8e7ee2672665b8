//! The vault end to end: the story, access errors, revocation, expiry, rotation, clock skew,
//! imports, exports, garbage collection.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Rand, identity};
use medshare::envelope::Metadata;
use medshare::ledger::{Endorsement, Policy};
use medshare::sequencer::LocalSequencer;
use medshare::{Error, Expiry, GrantOptions, Identity, Purpose, Rule, Store, Vault};
use pollster::block_on;

const NOW: u64 = 1_900_000_000;

fn clock(at: u64) -> (Arc<AtomicU64>, medshare::sequencer::Clock) {
    let now = Arc::new(AtomicU64::new(at));
    let c = now.clone();
    (now, Arc::new(move || c.load(Ordering::SeqCst)))
}

async fn fresh() -> Vault {
    Vault::create(
        Store::memory(),
        "test-net",
        identity("authority"),
        Policy::default(),
    )
    .await
    .unwrap()
}

fn endorse(v: &Vault, d: &Identity, licence: &str) -> Endorsement {
    Endorsement::sign(&identity("authority"), &v.genesis(), &d.id(), licence).unwrap()
}

async fn with_people(v: &mut Vault) -> (Identity, Identity, Identity) {
    let (p, d1, d2) = (identity("patient"), identity("doctor"), identity("doctor2"));
    v.register(&p, None).await.unwrap();
    v.register(&d1, Some(&endorse(v, &d1, "GMC-1")))
        .await
        .unwrap();
    v.register(&d2, Some(&endorse(v, &d2, "GMC-2")))
        .await
        .unwrap();
    (p, d1, d2)
}

fn treat() -> GrantOptions {
    GrantOptions::default()
}

#[test]
fn full_story() {
    block_on(async {
        let mut v = fresh().await;
        let (p, d1, d2) = with_people(&mut v).await;
        let data = Rand::new(9).bytes(3 << 20);
        let r = v
            .publish_bytes(&p, &data, "scan.dcm", "application/dicom")
            .await
            .unwrap();
        let note = GrantOptions {
            note: Some("second opinion on the HIV follow-up".into()),
            purpose: Purpose::CoordinationOfCare,
            ..treat()
        };
        v.grant(&p, &r, &d1.id(), note).await.unwrap();
        v.grant(&p, &r, &d2.id(), treat()).await.unwrap();
        for who in [&p, &d1, &d2] {
            let mut out = Vec::new();
            let m = v.open_record(who, &r, &mut out).await.unwrap();
            assert_eq!(out, data);
            assert_eq!(m.media_type, "application/dicom");
        }
        // The free text travels encrypted: the owner and the doctor read it, the ledger holds a
        // purpose code only.
        assert_eq!(
            v.grant_note(&d1, &r, &d1.id()).await.unwrap().as_deref(),
            Some("second opinion on the HIV follow-up")
        );
        assert_eq!(
            v.grant_note(&p, &r, &d1.id()).await.unwrap().as_deref(),
            Some("second opinion on the HIV follow-up")
        );
        assert!(v.grant_note(&d2, &r, &d1.id()).await.is_err());
        assert_eq!(v.metadata(&d2, &r).await.unwrap().name, "scan.dcm");
        assert_eq!(v.records_granted_to(&d1.id()).len(), 1);
        let before = v.state().contents(&r)[0];
        let report = v.revoke(&p, &r, &d1.id()).await.unwrap();
        assert_eq!(report.new_version, 2);
        assert_eq!(report.remaining, vec![d2.id()]);
        assert!(report.deleted_blocks >= 4);
        assert!(!v.store().has(&before).await.unwrap());
        assert!(matches!(
            v.open_record(&d1, &r, &mut Vec::new()).await,
            Err(Error::AccessRevoked(_))
        ));
        let mut out = Vec::new();
        v.open_record(&d2, &r, &mut out).await.unwrap();
        assert_eq!(out, data);
        assert!(v.records_granted_to(&d1.id()).is_empty());
        let report = v.verify().await.unwrap();
        assert_eq!((report.blocks, report.height), (8, 7));
        let audit = v.audit(&r).unwrap();
        assert_eq!(audit.len(), 6, "{audit:#?}");
        assert_eq!(audit[1].kind.purpose(), Some(Purpose::CoordinationOfCare));
        // A second vault over the same store replays the same state.
        let reopened = Vault::open(v.store().clone(), None, Some(&v.genesis()))
            .await
            .unwrap();
        assert_eq!(reopened.head(), v.head());
    });
}

#[test]
fn access_errors() {
    block_on(async {
        let mut v = fresh().await;
        let (p, d1, d2) = with_people(&mut v).await;
        let r = v.publish_bytes(&p, b"x", "", "text/plain").await.unwrap();
        assert!(matches!(
            v.open_record(&d1, &r, &mut Vec::new()).await,
            Err(Error::AccessDenied(_))
        ));
        let unknown = medshare::RecordId::from_bytes([9; 16]);
        assert!(matches!(
            v.open_record(&p, &unknown, &mut Vec::new()).await,
            Err(Error::UnknownRecord(_))
        ));
        // Grant by someone who is not the owner: refused by the ledger, nothing written.
        let height = v.height();
        assert!(matches!(
            v.grant(&d1, &r, &d2.id(), treat()).await,
            Err(Error::Rejected {
                rule: Rule::Role | Rule::NotOwner,
                ..
            })
        ));
        assert_eq!(v.height(), height);
        // A doctor without an endorsement, or with an empty licence, is refused in core
        // (every binding goes through here).
        let d3 = identity("doctor3072");
        assert!(matches!(
            v.register(&d3, None).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            Endorsement::sign(&identity("authority"), &v.genesis(), &d3.id(), ""),
            Err(Error::InvalidInput(_))
        ));
        // An endorsement made for someone else, or another network.
        let other = endorse(&v, &d1, "GMC-3");
        assert!(matches!(
            v.register(&d3, Some(&other)).await,
            Err(Error::InvalidInput(_))
        ));
        let wrong_net = Endorsement::sign(
            &identity("authority"),
            &medshare::cid::Cid::dag_cbor(b"x"),
            &d3.id(),
            "L",
        )
        .unwrap();
        assert!(matches!(
            v.register(&d3, Some(&wrong_net)).await,
            Err(Error::InvalidInput(_))
        ));
        // Authorities are not registered.
        assert!(matches!(
            v.register(&identity("authority2"), None).await,
            Err(Error::Rejected {
                rule: Rule::Role,
                ..
            })
        ));
    });
}

#[test]
fn expiry_rekeys_at_the_next_write() {
    block_on(async {
        let mut v = fresh().await;
        let (now, c) = clock(NOW);
        v.set_clock(c);
        let (p, d1, d2) = with_people(&mut v).await;
        let r = v
            .publish_bytes(&p, b"lab results", "", "text/plain")
            .await
            .unwrap();
        let soon = GrantOptions {
            expires: Some(Expiry::After(Duration::from_secs(100))),
            ..treat()
        };
        v.grant(&p, &r, &d1.id(), soon).await.unwrap();
        assert_eq!(v.access_list(&r).unwrap()[0].expires, Some(NOW + 100));
        v.open_record(&d1, &r, &mut Vec::new()).await.unwrap();
        now.store(NOW + 100, Ordering::SeqCst);
        assert!(matches!(
            v.open_record(&d1, &r, &mut Vec::new()).await,
            Err(Error::AccessExpired(_))
        ));
        // A grant already expired when issued is refused.
        match v
            .grant(
                &p,
                &r,
                &d2.id(),
                GrantOptions {
                    expires: Some(Expiry::At(NOW)),
                    ..treat()
                },
            )
            .await
        {
            Err(Error::Rejected {
                rule: Rule::Expiry, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // An expiry far beyond the clock's range is an input error, not a wrapped time.
        assert!(matches!(
            v.grant(
                &p,
                &r,
                &d2.id(),
                GrantOptions {
                    expires: Some(Expiry::After(Duration::from_secs(u64::MAX))),
                    ..treat()
                }
            )
            .await,
            Err(Error::InvalidInput(_))
        ));
        // The next write (a grant to another doctor) re-keys the record first: the expired
        // doctor's key opens nothing from now on, even with its clock moved back.
        let version = v.record(&r).unwrap().version;
        v.grant(&p, &r, &d2.id(), treat()).await.unwrap();
        assert_eq!(v.record(&r).unwrap().version, version + 1);
        now.store(NOW, Ordering::SeqCst);
        assert!(matches!(
            v.open_record(&d1, &r, &mut Vec::new()).await,
            Err(Error::AccessDenied(_))
        ));
        let mut out = Vec::new();
        v.open_record(&d2, &r, &mut out).await.unwrap();
        assert_eq!(out, b"lab results");
    });
}

#[test]
fn rotation_keeps_the_account_and_rekeys() {
    block_on(async {
        let mut v = fresh().await;
        let (p, d1, _) = with_people(&mut v).await;
        let r = v
            .publish_bytes(&p, b"before rotation", "", "text/plain")
            .await
            .unwrap();
        let noted = GrantOptions {
            note: Some("see the echo first".into()),
            ..treat()
        };
        v.grant(&p, &r, &d1.id(), noted).await.unwrap();
        // The patient rotates: she can still read, grant and revoke as herself.
        let p2 = p.rotated().unwrap();
        let report = v.rotate_key(&p, &p2).await.unwrap();
        // The grant's note came through the re-key, readable with the new key and the doctor's.
        for reader in [&p2, &d1] {
            let note = v.grant_note(reader, &r, &d1.id()).await.unwrap();
            assert_eq!(note.as_deref(), Some("see the echo first"));
        }
        assert_eq!(report.rekeyed, vec![r]);
        let mut out = Vec::new();
        v.open_record(&p2, &r, &mut out).await.unwrap();
        assert_eq!(out, b"before rotation");
        // The retired key is refused by name before any unwrapping.
        let err = v.open_record(&p, &r, &mut Vec::new()).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidKey(m) if m.contains("retired by a key rotation")),
            "{err}"
        );
        let r2 = v
            .publish_bytes(&p2, b"after", "", "text/plain")
            .await
            .unwrap();
        assert!(v.open_record(&p, &r2, &mut Vec::new()).await.is_err());
        // The doctor keeps access through the re-key.
        v.open_record(&d1, &r, &mut Vec::new()).await.unwrap();
        // The doctor rotates too: his grants are re-wrapped, he keeps reading.
        let d1b = d1.rotated().unwrap();
        let report = v.rotate_key(&d1, &d1b).await.unwrap();
        assert_eq!((report.rewrapped, report.rekeyed.len()), (1, 0));
        v.open_record(&d1b, &r, &mut Vec::new()).await.unwrap();
        assert!(matches!(
            v.open_record(&d1, &r, &mut Vec::new()).await,
            Err(Error::InvalidKey(_))
        ));
        v.revoke(&p2, &r, &d1b.id()).await.unwrap();
        assert!(matches!(
            v.open_record(&d1b, &r, &mut Vec::new()).await,
            Err(Error::AccessRevoked(_))
        ));
        // A rotation to another account's key is refused.
        assert!(matches!(
            v.rotate_key(&p2, &d1b).await,
            Err(Error::InvalidInput(_))
        ));
        v.verify().await.unwrap();
    });
}

#[test]
fn a_fast_clock_does_not_brick_a_home_and_a_slow_reader_still_opens() {
    block_on(async {
        let store = Store::memory();
        let (fast_now, fast) = clock(NOW + 86_400);
        let seq =
            LocalSequencer::create(store.clone(), "n", identity("authority"), Policy::default())
                .await
                .unwrap();
        let mut v = Vault::open(
            store.clone(),
            Some(Arc::new(seq.0.with_clock(fast.clone()))),
            None,
        )
        .await
        .unwrap();
        v.set_clock(fast);
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        let r = v
            .publish_bytes(&p, b"sealed a day ahead", "", "text/plain")
            .await
            .unwrap();
        // Every later command on that home, with an honest clock, still works: open, verify,
        // export, write (the next block keeps the parent's time).
        let (_, honest) = clock(NOW);
        let mut v2 = Vault::open_local(store.clone(), identity("authority"), None)
            .await
            .unwrap();
        v2.set_clock(honest.clone());
        v2.open_record(&p, &r, &mut Vec::new()).await.unwrap();
        v2.verify().await.unwrap();
        v2.export_car(Vec::new()).await.unwrap();
        v2.publish_bytes(&p, b"later", "", "text/plain")
            .await
            .unwrap();
        // A replica ten minutes slow opens the honest chain.
        let (_, slow) = clock(NOW - 600);
        let mut ro = Vault::open(store.clone(), None, None).await.unwrap();
        ro.set_clock(slow);
        ro.verify().await.unwrap();
        let _ = fast_now;
        // But a replica *accepting* the day-ahead blocks now refuses them (TimestampFuture).
        let mut car = Vec::new();
        v2.export_car(&mut car).await.unwrap();
        match Vault::import_car(Store::memory(), &car[..], Some(&v2.genesis()), NOW).await {
            Err(Error::InvalidChain {
                rule: Rule::TimestampFuture,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        Vault::import_car(Store::memory(), &car[..], Some(&v2.genesis()), NOW + 86_400)
            .await
            .unwrap();
    });
}

#[test]
fn a_refused_import_leaves_nothing_and_revoked_content_never_comes_back() {
    block_on(async {
        let mut v = fresh().await;
        let (p, d1, _) = with_people(&mut v).await;
        let r = v
            .publish_bytes(&p, &Rand::new(3).bytes(3 << 20), "", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &r, &d1.id(), treat()).await.unwrap();
        let mut old_car = Vec::new();
        v.export_car(&mut old_car).await.unwrap();
        let old_root = v.state().contents(&r)[0];
        v.revoke(&p, &r, &d1.id()).await.unwrap();
        assert!(!v.store().has(&old_root).await.unwrap());
        let before = v.store().list().await.unwrap().unwrap().len();
        // Importing the CAR exported before the revocation is refused...
        assert!(
            Vault::import_car(v.store().clone(), &old_car[..], None, NOW)
                .await
                .is_err()
        );
        // ...and not one of its blocks stayed: the revoked envelope is not back.
        assert_eq!(v.store().list().await.unwrap().unwrap().len(), before);
        assert!(!v.store().has(&old_root).await.unwrap());
        // An empty store adopts a chain only of the expected network.
        let other = fresh().await;
        match Vault::import_car(Store::memory(), &old_car[..], Some(&other.genesis()), NOW).await {
            Err(Error::WrongGenesis { .. }) => {}
            other => panic!("{other:?}"),
        }
        // A good import into an empty store copies the chain and the current content only.
        let mut car = Vec::new();
        v.export_car(&mut car).await.unwrap();
        let (imported, report) =
            Vault::import_car(Store::memory(), &car[..], Some(&v.genesis()), NOW)
                .await
                .unwrap();
        assert_eq!(imported.head(), v.head());
        assert_eq!(report.applied, v.height() + 1);
        let mut out = Vec::new();
        imported.open_record(&p, &r, &mut out).await.unwrap();
    });
}

#[test]
fn one_damaged_record_does_not_hold_the_rest_hostage() {
    block_on(async {
        let mem = Arc::new(medshare::store::memory::MemoryStore::default());
        let store = Store::from_arc(mem.clone());
        let (mut v, p) = patient_vault(store).await;
        let bad = v
            .publish_bytes(&p, &Rand::new(1).bytes(2 << 20), "", "")
            .await
            .unwrap();
        let good = v.publish_bytes(&p, b"fine", "", "").await.unwrap();
        let root = v.record(&bad).unwrap().content;
        // Damage a leaf of the first record.
        let leaf = {
            let bytes = v.store().get(&root).await.unwrap();
            medshare::unixfs::pb::decode_node(&bytes).unwrap().links[1].cid
        };
        mem.corrupt(&leaf, b"damaged");
        let report = v.export_car(Vec::new()).await.unwrap();
        assert_eq!(report.damaged.len(), 1);
        assert_eq!(report.damaged[0].record, bad);
        let content = v.verify_content().await.unwrap();
        assert_eq!(content.missing.len(), 1);
        assert!(matches!(
            v.open_record(&p, &bad, &mut Vec::new()).await,
            Err(Error::CidMismatch { .. })
        ));
        v.open_record(&p, &good, &mut Vec::new()).await.unwrap();
        // Putting the good bytes back repairs it.
        let fresh_store = Store::memory();
        let _ = fresh_store;
    });
}

#[test]
fn gc_reclaims_what_interrupted_writes_left() {
    block_on(async {
        let mut v = fresh().await;
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        let r = v.publish_bytes(&p, b"kept", "", "").await.unwrap();
        // Blocks of a publish that never reached the chain (a killed process).
        let orphan = Rand::new(5).bytes(3 << 20);
        let mut blocks = Vec::new();
        let mut imp = medshare::unixfs::Importer::new(medshare::Profile::default());
        imp.push(&orphan, &mut blocks);
        imp.finish(&mut blocks);
        v.store().put_many(&blocks).await.unwrap();
        let report = v.gc().await.unwrap();
        assert_eq!(report.deleted, blocks.len());
        v.verify().await.unwrap();
        v.open_record(&p, &r, &mut Vec::new()).await.unwrap();
        assert_eq!(v.gc().await.unwrap().deleted, 0);
    });
}

#[test]
fn metadata_and_sizes() {
    block_on(async {
        let mut v = fresh().await;
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        let meta = Metadata {
            name: "a.json".into(),
            media_type: "application/fhir+json".into(),
            size: 3,
        };
        let r = v
            .publish(&p, &b"abc"[..], meta.clone(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(v.metadata(&p, &r).await.unwrap(), meta);
        // A reader that gives fewer bytes than declared is refused; nothing is published.
        let h = v.height();
        let short = Metadata { size: 10, ..meta };
        assert!(matches!(
            v.publish(&p, &b"abc"[..], short, &mut |_| {}).await,
            Err(Error::SizeMismatch { .. })
        ));
        assert_eq!(v.height(), h);
    });
}

/// The vault's futures are `Send` on native targets, so any executor (and uniffi) can drive them.
#[test]
fn vault_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    block_on(async {
        let mut v = fresh().await;
        let p = identity("patient");
        let f = v.register(&p, None);
        assert_send(&f);
        f.await.unwrap();
        let f = v.publish_bytes(&p, b"x", "", "");
        assert_send(&f);
        let r = f.await.unwrap();
        let mut out = Vec::new();
        let f = v.open_record(&p, &r, &mut out);
        assert_send(&f);
        f.await.unwrap();
        let f = v.verify();
        assert_send(&f);
        f.await.unwrap();
    });
}

#[test]
fn open_or_create_needs_an_authority_for_an_empty_store() {
    block_on(async {
        let store = Store::memory();
        assert!(matches!(
            Vault::open_or_create(store.clone(), "n", None).await,
            Err(Error::NoChain)
        ));
        let created = Vault::open_or_create(store.clone(), "n", Some(identity("authority")))
            .await
            .unwrap();
        let reopened = Vault::open_or_create(store, "n", None).await.unwrap();
        assert_eq!(reopened.head(), created.head());
        assert!(!reopened.is_writable());
        assert_eq!(Vault::memory("m", None).await.unwrap().height(), 0);
        // A sequencer whose authority is not the network's cannot write to it.
        let other = Vault::open_local(reopened.store().clone(), identity("authority2"), None).await;
        let mut other = other.unwrap();
        let p = identity("patient");
        assert!(matches!(
            other.register(&p, None).await,
            Err(Error::Rejected {
                rule: Rule::Certificate,
                ..
            })
        ));
    });
}

use medshare::store::BlockStore;

/// A memory store that watches its calls: how many reads run at once, and (when armed) a
/// write that fails.
struct Watched {
    inner: medshare::store::memory::MemoryStore,
    parallel: bool,
    /// What it says of `completes_when_polled` (its calls do finish when polled).
    polled: bool,
    /// Raw-leaf puts still allowed before they fail (`u64::MAX`: never).
    leaves_left: AtomicU64,
    reading: AtomicU64,
    most_reading: AtomicU64,
}

impl Watched {
    fn new(parallel: bool) -> Arc<Watched> {
        Watched::with(parallel, false)
    }

    fn with(parallel: bool, polled: bool) -> Arc<Watched> {
        Arc::new(Watched {
            inner: Default::default(),
            parallel,
            polled,
            leaves_left: AtomicU64::new(u64::MAX),
            reading: AtomicU64::new(0),
            most_reading: AtomicU64::new(0),
        })
    }
}

#[async_trait::async_trait]
impl medshare::store::BlockStore for Watched {
    fn parallel_io(&self) -> bool {
        self.parallel
    }
    fn completes_when_polled(&self) -> bool {
        self.polled
    }
    async fn put(&self, cid: &medshare::Cid, data: &[u8]) -> medshare::Result<()> {
        self.put_many(&[medshare::store::Block {
            cid: *cid,
            data: data.to_vec(),
        }])
        .await
    }
    async fn put_many(&self, blocks: &[medshare::store::Block]) -> medshare::Result<()> {
        for b in blocks {
            if b.cid.codec() == medshare::cid::RAW
                && self
                    .leaves_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err()
            {
                return Err(Error::Backend("the disk went away".into()));
            }
            self.inner.put(&b.cid, &b.data).await?;
        }
        Ok(())
    }
    async fn get(&self, cid: &medshare::Cid) -> medshare::Result<Option<Vec<u8>>> {
        let now = self.reading.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_reading.fetch_max(now, Ordering::SeqCst);
        if cid.codec() == medshare::cid::RAW {
            // Long enough that fetches started together overlap.
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = self.inner.get(cid).await;
        self.reading.fetch_sub(1, Ordering::SeqCst);
        got
    }
    async fn has(&self, cid: &medshare::Cid) -> medshare::Result<bool> {
        self.inner.has(cid).await
    }
    async fn delete(&self, cid: &medshare::Cid) -> medshare::Result<()> {
        self.inner.delete(cid).await
    }
    async fn head(&self) -> medshare::Result<Option<medshare::Cid>> {
        self.inner.head().await
    }
    async fn compare_and_swap_head(
        &self,
        e: Option<&medshare::Cid>,
        n: Option<&medshare::Cid>,
    ) -> medshare::Result<()> {
        self.inner.compare_and_swap_head(e, n).await
    }
}

const BIG: u64 = 12 << 20;

async fn publish_big(
    v: &mut Vault,
    p: &Identity,
    seed: u64,
) -> medshare::Result<medshare::RecordId> {
    let mut data = Vec::with_capacity(BIG as usize);
    Rand::new(seed).stream(BIG, |c| data.extend_from_slice(c));
    let meta = Metadata {
        name: "scan.dcm".into(),
        media_type: "application/dicom".into(),
        size: BIG,
    };
    v.publish(p, &data[..], meta, &mut |_| {}).await
}

/// A new embedded network on `store` with the fixture patient registered.
async fn patient_vault(store: Store) -> (Vault, Identity) {
    let mut v = Vault::create(store, "n", identity("authority"), Policy::default())
        .await
        .unwrap();
    let p = identity("patient");
    v.register(&p, None).await.unwrap();
    (v, p)
}

/// Where the store allows it, a read fetches a group of leaves at once while it decrypts the
/// previous group: on threads of its own for a network store (`parallel_io`), on the pool for
/// one whose calls finish when polled (the filesystem and memory stores). A store written in
/// another language (neither) sees one call at a time, and so does any store called from a
/// pool of one thread. Either way the record reads back whole.
#[test]
fn reads_fetch_ahead_only_where_the_store_allows() {
    for (allows, polled, pool) in [
        (true, false, 2),
        (false, true, 2),
        (false, false, 2),
        (true, false, 1),
        (false, true, 1),
    ] {
        let parallel = (allows || polled) && pool > 1;
        let watched = Watched::with(allows, polled);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(pool)
            .build()
            .unwrap();
        pool.install(|| {
            block_on(async {
                let store = Store::from_arc(watched.clone());
                let (mut v, p) = patient_vault(store).await;
                let r = publish_big(&mut v, &p, 7).await.unwrap();
                let mut out = Vec::new();
                v.open_record(&p, &r, &mut out).await.unwrap();
                let mut want = Vec::new();
                Rand::new(7).stream(BIG, |c| want.extend_from_slice(c));
                assert!(out == want, "the record read back differs");
                let most = watched.most_reading.load(Ordering::SeqCst);
                if parallel {
                    assert!(most > 1, "reads never overlapped");
                } else {
                    assert_eq!(most, 1);
                }
            })
        });
    }
}

/// Reading from the filesystem store on the pool (a leaf per task, the previous group
/// decrypting meanwhile) still stops at the first leaf that is damaged or gone, with its exact
/// error, and the record reads whole once it is put back.
#[test]
fn a_leaf_damaged_or_gone_on_disk_is_the_reads_exact_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        block_on(async {
            let store = Store::open_dir(dir.path()).unwrap();
            let (mut v, p) = patient_vault(store).await;
            let r = publish_big(&mut v, &p, 9).await.unwrap();
            let root = v.record(&r).unwrap().content;
            let links = {
                let bytes = v.store().get(&root).await.unwrap();
                medshare::unixfs::pb::decode_node(&bytes).unwrap().links
            };
            assert!(links.len() > 9, "{} leaves", links.len());
            let path = |cid: &medshare::Cid| {
                let key = cid.storage_key();
                dir.path()
                    .join("blocks")
                    .join(&key[key.len() - 3..key.len() - 1])
                    .join(&key)
            };
            let mut want = Vec::new();
            Rand::new(9).stream(BIG, |c| want.extend_from_slice(c));
            // The seventh leaf (second group: fresh buffers) and the tenth (third group: read
            // into the buffers of the first), each damaged, then gone.
            for leaf in [links[6].cid, links[9].cid] {
                let good = std::fs::read(path(&leaf)).unwrap();
                let mut bad = good.clone();
                bad[100] ^= 1;
                std::fs::write(path(&leaf), &bad).unwrap();
                match v.open_record(&p, &r, &mut Vec::new()).await {
                    Err(Error::CidMismatch { expected, .. }) => assert_eq!(expected, leaf),
                    other => panic!("expected CidMismatch, got {other:?}"),
                }
                std::fs::remove_file(path(&leaf)).unwrap();
                match v.open_record(&p, &r, &mut Vec::new()).await {
                    Err(Error::NotFound(cid)) => assert_eq!(cid, leaf),
                    other => panic!("expected NotFound, got {other:?}"),
                }
                std::fs::write(path(&leaf), &good).unwrap();
            }
            let mut out = Vec::new();
            v.open_record(&p, &r, &mut out).await.unwrap();
            assert!(out == want, "the record read back differs");
        })
    });
}

/// A write that fails during a publish is the publish's error, exactly; the head does not
/// move, and what the chain held before still reads.
#[test]
fn a_write_failing_during_a_publish_fails_it_and_moves_no_head() {
    {
        let watched = Watched::new(false);
        block_on(async {
            let store = Store::from_arc(watched.clone());
            let (mut v, p) = patient_vault(store).await;
            let first = v
                .publish_bytes(&p, b"earlier result", "a.txt", "text/plain")
                .await
                .unwrap();
            let head = v.head();
            // The 6th of the 12 leaves fails.
            watched.leaves_left.store(5, Ordering::SeqCst);
            match publish_big(&mut v, &p, 8).await {
                Err(Error::Backend(m)) => assert_eq!(m, "the disk went away"),
                other => panic!("expected the write's error, got {other:?}"),
            }
            assert_eq!(v.head(), head);
            assert_eq!(watched.inner.head().await.unwrap(), Some(head));
            watched.leaves_left.store(u64::MAX, Ordering::SeqCst);
            let mut out = Vec::new();
            v.open_record(&p, &first, &mut out).await.unwrap();
            assert_eq!(out, b"earlier result");
            // And the next publish goes through.
            publish_big(&mut v, &p, 9).await.unwrap();
        });
    }
}

#[test]
fn a_sized_open_makes_its_writer_from_the_metadata_first() {
    block_on(async {
        let mut v = fresh().await;
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        for data in [Vec::new(), b"short".to_vec(), Rand::new(4).bytes(3 << 20)] {
            let r = v
                .publish_bytes(&p, &data, "scan.dcm", "application/dicom")
                .await
                .unwrap();
            let (out, meta) = v
                .open_record_sized(
                    &p,
                    &r,
                    |m: &Metadata| {
                        assert_eq!(m.name, "scan.dcm");
                        Ok(Vec::with_capacity(m.size as usize))
                    },
                    &mut |_| {},
                )
                .await
                .unwrap();
            assert_eq!(meta.size, data.len() as u64);
            assert_eq!(out, data);
        }
        // A writer that cannot be made is the read's error, and nothing is written.
        let r = v.publish_bytes(&p, b"kept", "", "").await.unwrap();
        let err = v
            .open_record_sized(
                &p,
                &r,
                |_: &Metadata| -> medshare::Result<Vec<u8>> {
                    Err(Error::InvalidInput("no room".into()))
                },
                &mut |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid input: no room");
    });
}
