//! Receipts: a transaction proven to someone who holds only the network's genesis CID, and
//! rollback protection: a vault never goes back to an older or different history.

mod common;

use common::chain::Chain;
use common::identity;
use medshare::ledger::receipt::{ProofHash, Receipt};
use medshare::ledger::{AuthorityChangeKind, Checkpoint, Policy, TxBody};
use medshare::{Error, GrantOptions, RecordId, Store, Vault};
use pollster::block_on;

fn rid(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

/// A chain with three authorities, a fourth added by vote, and grants around it.
fn chain_with_a_vote() -> (
    Chain,
    medshare::ledger::SignedTx,
    medshare::ledger::SignedTx,
) {
    let mut c = Chain::new(3, Policy::default());
    let (p, d) = (identity("patient"), identity("doctor"));
    c.push(vec![c.reg_patient(&p), c.reg_doctor(&d)]);
    c.push(vec![c.publish(&p, 2, rid(1), 1)]);
    let early = c.grant(&p, 3, rid(1), 1, &d, None);
    c.push(vec![early.clone()]);
    let newcomer = identity("authority4");
    let add = AuthorityChangeKind::Add {
        key: newcomer.public().to_spki_der().to_vec(),
        validator: None,
    };
    for i in 0..3 {
        let a = c.authorities[i].clone();
        c.push(vec![c.tx(
            &a,
            c.next_seq(&a),
            TxBody::AuthorityChange {
                change: add.clone(),
            },
        )]);
    }
    assert_eq!(c.state.authorities().len(), 4);
    c.authorities.push(newcomer);
    let late = c.grant(&p, 4, rid(1), 1, &d, Some(u64::MAX));
    c.push(vec![late.clone()]);
    (c, early, late)
}

#[test]
fn a_receipt_proves_a_transaction_with_nothing_but_the_genesis() {
    let (c, early, late) = chain_with_a_vote();
    let store = c.store();
    let vault = block_on(Vault::open(store, None, Some(&c.genesis.cid))).unwrap();
    for tx in [&early, &late] {
        let r = block_on(vault.receipt(&tx.cid)).unwrap();
        let text = r.to_json();
        // A few kilobytes: the transaction, a log-sized proof, the certificate, the votes.
        assert!(text.len() < 16 * 1024, "{} bytes", text.len());
        let facts = Receipt::from_json(&text)
            .unwrap()
            .verify(&c.genesis.cid)
            .unwrap();
        assert_eq!(facts.tx, tx.cid);
        assert_eq!(facts.kind, "Grant");
        assert_eq!(facts.record.as_deref(), Some(rid(1).to_string().as_str()));
        assert_eq!(facts.doctor, Some(identity("doctor").id()));
        assert_eq!(facts.purpose.as_deref(), Some("TREAT"));
        assert_eq!(facts.authorities, 4, "the vote was replayed");
        assert_eq!(facts.signers.len(), 4);
        assert_eq!(r.authority_votes.len(), 3);
    }
}

#[test]
fn a_tampered_receipt_is_refused() {
    let (c, early, _) = chain_with_a_vote();
    let vault = block_on(Vault::open(c.store(), None, Some(&c.genesis.cid))).unwrap();
    let good = block_on(vault.receipt(&early.cid)).unwrap();
    let g = c.genesis.cid;
    // Another network.
    let other = medshare::Cid::dag_cbor(b"another genesis");
    assert!(matches!(
        good.verify(&other),
        Err(Error::WrongGenesis { .. })
    ));
    // The proof of another leaf.
    let mut r = good.clone();
    r.transaction.index += 1;
    assert!(matches!(r.verify(&g), Err(Error::InvalidProof(_))));
    // A hash of the proof changed.
    let mut r = good.clone();
    r.transaction.proof[0] = ProofHash([7; 32]);
    assert!(matches!(r.verify(&g), Err(Error::InvalidProof(_))));
    // The transaction changed (another seq): not in the log.
    let mut r = good.clone();
    let other_tx = c.grant(
        &identity("patient"),
        9,
        rid(1),
        1,
        &identity("doctor"),
        None,
    );
    r.transaction.tx = other_tx.bytes;
    assert!(matches!(r.verify(&g), Err(Error::InvalidProof(_))));
    // A vote left out: the certificate's fourth signer is unknown, three of three still sign…
    // but a receipt that hides the votes cannot make up authorities: signatures by unknown
    // keys are ignored and the quorum is counted over the genesis authorities.
    let mut r = good.clone();
    r.authority_votes.clear();
    let facts = r.verify(&g).unwrap();
    assert_eq!(facts.authorities, 3);
    // A certificate signed by one authority only.
    let mut r = good.clone();
    let cp = medshare::ledger::Certificate::parse(&r.certificate).unwrap();
    r.certificate = medshare::ledger::Certificate {
        checkpoint: cp.checkpoint.clone(),
        signatures: cp.signatures[..1].to_vec(),
    }
    .to_note();
    assert!(matches!(r.verify(&g), Err(Error::InvalidProof(m)) if m.contains("1 of 4")));
    // Garbage and the wrong format.
    assert!(matches!(
        Receipt::from_json("{}"),
        Err(Error::InvalidProof(_))
    ));
    let text = good
        .to_json()
        .replace("medshare-receipt/1", "medshare-receipt/9");
    assert!(matches!(
        Receipt::from_json(&text),
        Err(Error::InvalidProof(m)) if m.contains("format")
    ));
}

#[test]
fn a_vault_never_goes_back_to_an_older_history() {
    block_on(async {
        let mut v = Vault::memory("rollback", Some(identity("authority")))
            .await
            .unwrap();
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        let r = v
            .publish_bytes(&p, b"v1", "a.txt", "text/plain")
            .await
            .unwrap();
        let old_head = v.head();
        let mut old_car = Vec::new();
        v.export_car(&mut old_car).await.unwrap();
        let d = identity("doctor");
        let e = medshare::Endorsement::sign(&identity("authority"), &v.genesis(), &d.id(), "GMC-1")
            .unwrap();
        v.register(&d, Some(&e)).await.unwrap();
        v.grant(&p, &r, &d.id(), GrantOptions::default())
            .await
            .unwrap();
        v.publish_bytes(&p, b"more", "b.txt", "text/plain")
            .await
            .unwrap();
        let trusted = v.trusted_checkpoint().await.unwrap().unwrap();
        assert_eq!(trusted, v.state().checkpoint());
        // The store's head is set back to the older certificate (a stale IPNS record, a
        // restored backup): syncing to it is refused, and the vault keeps its state.
        let height = v.height();
        match v.sync_to(&old_head).await {
            Err(Error::Rollback {
                trusted: t,
                offered,
            }) => assert!(t > offered),
            other => panic!("{other:?}"),
        }
        assert_eq!(v.height(), height);
        // An older CAR imported into this store: refused, nothing changes.
        let store = v.store().clone();
        match Vault::import_car(store.clone(), &old_car[..], None, u64::MAX / 2).await {
            Err(Error::Rollback { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(store.head().await.unwrap(), Some(v.head()));
        // A fresh vault over a store that was rolled back refuses to open it.
        store
            .compare_and_swap_head(Some(&v.head()), Some(&old_head))
            .await
            .unwrap();
        match Vault::open(store, None, None).await {
            Err(Error::Rollback { .. }) => {}
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_fork_is_detected_and_its_evidence_kept() {
    // Two histories of one network (same genesis), each certified, with logs of the same size.
    let nonce = [9; 16];
    let mut a = Chain::with_nonce(1, Policy::default(), nonce);
    let mut b = Chain::with_nonce(1, Policy::default(), nonce);
    assert_eq!(a.genesis.cid, b.genesis.cid);
    a.push(vec![a.reg_patient(&identity("patient"))]);
    b.push(vec![b.reg_patient(&identity("patient2"))]);
    block_on(async {
        let store = a.store();
        let mut v = Vault::open(store.clone(), None, Some(&a.genesis.cid))
            .await
            .unwrap();
        // The other history's objects arrive in the same store (a lying peer).
        let other = b.store();
        for cid in other.list().await.unwrap().unwrap() {
            store
                .put(&cid, &other.get(&cid).await.unwrap())
                .await
                .unwrap();
        }
        match v.sync_to(&b.state.head_pointer()).await {
            Err(Error::Fork {
                size,
                trusted,
                offered,
            }) => {
                assert_eq!(size, 1);
                assert_ne!(trusted, offered);
            }
            other => panic!("{other:?}"),
        }
        let evidence = store.get_meta("fork-evidence").await.unwrap().unwrap();
        let evidence: serde_json::Value = serde_json::from_slice(&evidence).unwrap();
        let last = evidence.as_array().unwrap().last().unwrap();
        assert!(last["offered"].as_str().unwrap().contains("\u{2014}"));
        assert!(last["trusted"].as_str().unwrap().starts_with("medshare/"));
        assert_eq!(v.height(), 1);
        let _ = Store::memory();
    });
}

#[test]
fn a_kept_checkpoint_protects_a_reader_whose_store_cannot_keep_one() {
    block_on(async {
        let mut v = Vault::memory("kept", Some(identity("authority")))
            .await
            .unwrap();
        let p = identity("patient");
        v.register(&p, None).await.unwrap();
        let mut old_car = Vec::new();
        v.export_car(&mut old_car).await.unwrap();
        v.publish_bytes(&p, b"v1", "a.txt", "text/plain")
            .await
            .unwrap();
        // What an app kept from its last session (JSON, as every binding returns it).
        let kept = v.trusted_checkpoint().await.unwrap().unwrap().to_json();
        let kept = Checkpoint::from_json(&kept).unwrap();
        // Next session, a fresh store fed the older chain (a stale gateway, an old CAR).
        let (mut stale, _) = Vault::import_car(Store::memory(), &old_car[..], None, u64::MAX / 2)
            .await
            .unwrap();
        let height = stale.height();
        match stale.trust_checkpoint(kept.clone()).await {
            Err(Error::Rollback { trusted, offered }) => {
                assert_eq!((trusted, offered), (kept.size, kept.size - 1))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(stale.height(), height);
        assert_eq!(
            stale.trusted_checkpoint().await.unwrap(),
            Some(kept.clone())
        );
        // The current chain contains it: accepted.
        let mut current = Vec::new();
        v.export_car(&mut current).await.unwrap();
        let (mut fresh, _) = Vault::import_car(Store::memory(), &current[..], None, u64::MAX / 2)
            .await
            .unwrap();
        fresh.trust_checkpoint(kept.clone()).await.unwrap();
        // Another network's checkpoint, and text that is not one.
        let other = Vault::memory("other", Some(identity("authority")))
            .await
            .unwrap();
        let foreign = other.state().checkpoint();
        assert!(matches!(
            fresh.trust_checkpoint(foreign).await,
            Err(Error::WrongGenesis { .. })
        ));
        assert!(matches!(
            Checkpoint::from_json(r#"{"size": 1}"#),
            Err(Error::InvalidInput(_))
        ));
    });
}

#[test]
fn another_history_at_the_trusted_height_is_a_fork_whatever_its_size() {
    // Same network; `a` certified one block of one transaction, `b` one block of two.
    let nonce = [7; 16];
    let mut a = Chain::with_nonce(1, Policy::default(), nonce);
    let mut b = Chain::with_nonce(1, Policy::default(), nonce);
    a.push(vec![a.reg_patient(&identity("patient"))]);
    let (p1, p2) = (
        b.reg_patient(&identity("patient")),
        b.reg_patient(&identity("patient2")),
    );
    b.push(vec![p1, p2]);
    block_on(async {
        let store = a.store();
        let v = Vault::open(store.clone(), None, Some(&a.genesis.cid))
            .await
            .unwrap();
        assert_eq!(v.trusted_checkpoint().await.unwrap().unwrap().size, 1);
        drop(v);
        let other = b.store();
        for cid in other.list().await.unwrap().unwrap() {
            store
                .put(&cid, &other.get(&cid).await.unwrap())
                .await
                .unwrap();
        }
        // The head is swapped to the longer log of the other history at the same height.
        store
            .compare_and_swap_head(Some(&a.state.head_pointer()), Some(&b.state.head_pointer()))
            .await
            .unwrap();
        match Vault::open(store.clone(), None, None).await {
            Err(Error::Fork { size: 1, .. }) => {}
            other => panic!("{:?}", other.map(|v| v.height())),
        }
        assert!(store.get_meta("fork-evidence").await.unwrap().is_some());
        // A reader of `b` handed `a`'s checkpoint (kept by an app) sees the fork too, although
        // its own checkpoint is larger.
        let mut reader = Vault::open(b.store(), None, None).await.unwrap();
        match reader.trust_checkpoint(a.state.checkpoint()).await {
            Err(Error::Fork { .. }) => {}
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_head_set_back_to_genesis_is_a_rollback() {
    block_on(async {
        let mut v = Vault::memory("genesis", Some(identity("authority")))
            .await
            .unwrap();
        v.register(&identity("patient"), None).await.unwrap();
        let store = v.store().clone();
        let genesis = v.genesis();
        store
            .compare_and_swap_head(Some(&v.head()), Some(&genesis))
            .await
            .unwrap();
        match Vault::open(store.clone(), None, None).await {
            Err(Error::Rollback {
                trusted: 1,
                offered: 0,
            }) => {}
            other => panic!("{:?}", other.map(|v| v.height())),
        }
        match v.verify().await {
            Err(Error::Rollback {
                trusted: 1,
                offered: 0,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(v.height(), 1, "the vault kept its state");
    });
}

#[test]
fn a_longer_history_that_does_not_descend_is_a_fork_on_sync_too() {
    let nonce = [5; 16];
    let mut a = Chain::with_nonce(1, Policy::default(), nonce);
    let mut b = Chain::with_nonce(1, Policy::default(), nonce);
    a.push(vec![a.reg_patient(&identity("patient"))]);
    b.push(vec![b.reg_patient(&identity("patient2"))]);
    b.push(vec![b.reg_patient(&identity("patient"))]);
    block_on(async {
        let store = a.store();
        let mut v = Vault::open(store.clone(), None, Some(&a.genesis.cid))
            .await
            .unwrap();
        let other = b.store();
        for cid in other.list().await.unwrap().unwrap() {
            store
                .put(&cid, &other.get(&cid).await.unwrap())
                .await
                .unwrap();
        }
        match v.sync_to(&b.state.head_pointer()).await {
            Err(Error::Fork { size: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(v.height(), 1);
        assert!(store.get_meta("fork-evidence").await.unwrap().is_some());
        // The same other history as a CAR, imported onto a fresh copy of `a`: a fork too.
        let mut car = Vec::new();
        Vault::open(b.store(), None, None)
            .await
            .unwrap()
            .export_car(&mut car)
            .await
            .unwrap();
        let copy = a.store();
        Vault::open(copy.clone(), None, None).await.unwrap();
        match Vault::import_car(copy.clone(), &car[..], None, u64::MAX / 2).await {
            Err(Error::Fork { size: 1, .. }) => {}
            other => panic!("{:?}", other.map(|(v, _)| v.height())),
        }
        assert_eq!(copy.head().await.unwrap(), Some(a.state.head_pointer()));
    });
}
