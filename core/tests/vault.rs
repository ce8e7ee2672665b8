//! The vault end to end: the full story, access errors, revocation semantics, expiry.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Rand, identity};
use medshare::ledger::{Policy, Rule};
use medshare::{Error, Identity, Store, Vault};
use pollster::block_on;

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

#[test]
fn full_story() {
    block_on(async {
        let mut v = fresh().await;
        let (p, d1, d2) = (identity("patient"), identity("doctor"), identity("doctor2"));
        v.register(&p, None).await.unwrap();
        v.register(&d1, Some("GMC-1")).await.unwrap();
        v.register(&d2, Some("GMC-2")).await.unwrap();
        let data = Rand::new(9).bytes(3 << 20);
        let r = v
            .publish_bytes(&p, &data, "scan.dcm", "application/dicom")
            .await
            .unwrap();
        v.grant(&p, &r, &d1.id(), None, Some("cardiology"))
            .await
            .unwrap();
        v.grant(&p, &r, &d2.id(), None, None).await.unwrap();
        for who in [&p, &d1, &d2] {
            let mut out = Vec::new();
            let m = v.open_record(who, &r, &mut out).await.unwrap();
            assert_eq!(out, data);
            assert_eq!(m.media_type, "application/dicom");
        }
        assert_eq!(v.records_for(&d1.id()).len(), 1);
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
        assert!(v.records_for(&d1.id()).is_empty());
        let report = v.verify().await.unwrap();
        assert_eq!(report.blocks, 8);
        let audit = v.audit(&r).unwrap();
        assert_eq!(audit.len(), 6, "{audit:#?}");
        // A second vault over the same store replays the same state.
        let reopened = Vault::open(v.store().clone(), None).await.unwrap();
        assert_eq!(reopened.state().head(), v.state().head());
    });
}

#[test]
fn access_errors() {
    block_on(async {
        let mut v = fresh().await;
        let (p, d1, d2) = (identity("patient"), identity("doctor"), identity("doctor2"));
        v.register(&p, None).await.unwrap();
        v.register(&d1, Some("GMC-1")).await.unwrap();
        let r = v
            .publish_bytes(&p, b"{}", "a.json", "application/fhir+json")
            .await
            .unwrap();
        assert!(matches!(
            v.open_record(&d1, &r, &mut Vec::new()).await,
            Err(Error::AccessDenied(_))
        ));
        // Grant to an unregistered doctor.
        match v.grant(&p, &r, &d2.id(), None, None).await {
            Err(Error::Rejected {
                rule: Rule::Grantee,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // Grant by a non-owner (the doctor tries to share it on).
        v.register(&d2, Some("GMC-2")).await.unwrap();
        match v.grant(&d1, &r, &d2.id(), None, None).await {
            Err(Error::Rejected {
                rule: Rule::NotOwner,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // Revoking a doctor who holds no grant.
        match v.revoke(&p, &r, &d2.id()).await {
            Err(Error::Rejected {
                rule: Rule::NotGranted,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // A doctor cannot publish.
        match v.publish_bytes(&d1, b"x", "", "").await {
            Err(Error::Rejected {
                rule: Rule::Role, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // An unregistered patient cannot publish.
        let stranger =
            Identity::from_pkcs8_pem(medshare::Role::Patient, "s", common::key("doctor3072"))
                .unwrap();
        match v.publish_bytes(&stranger, b"x", "", "").await {
            Err(Error::Rejected {
                rule: Rule::UnknownAuthor,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            v.open_record(&p, &medshare::RecordId::random().unwrap(), &mut Vec::new())
                .await,
            Err(Error::UnknownRecord(_))
        ));
        // Nothing refused reached the chain.
        assert_eq!(v.verify().await.unwrap().blocks, 5);
    });
}

#[test]
fn expired_grant() {
    block_on(async {
        let mut v = fresh().await;
        let now = Arc::new(AtomicU64::new(1_900_000_000));
        let clock = now.clone();
        v.set_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
        let (p, d) = (identity("patient"), identity("doctor"));
        v.register(&p, None).await.unwrap();
        v.register(&d, Some("L")).await.unwrap();
        let r = v.publish_bytes(&p, b"lab", "", "text/plain").await.unwrap();
        v.grant(&p, &r, &d.id(), Some(1_900_000_100), None)
            .await
            .unwrap();
        v.open_record(&d, &r, &mut Vec::new()).await.unwrap();
        now.store(1_900_000_100, Ordering::SeqCst);
        assert!(matches!(
            v.open_record(&d, &r, &mut Vec::new()).await,
            Err(Error::AccessExpired(_))
        ));
        // A grant that is already expired is refused.
        match v.grant(&p, &r, &d.id(), Some(1_900_000_050), None).await {
            Err(Error::Rejected {
                rule: Rule::Expiry, ..
            }) => {}
            other => panic!("{other:?}"),
        }
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
        assert_eq!(reopened.state().head(), created.state().head());
        assert_eq!(Vault::memory("m").await.unwrap().state().height(), 0);
    });
}
