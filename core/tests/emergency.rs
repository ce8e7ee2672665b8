//! Break-glass emergency access, end to end on a four-authority chain in one process: k-1
//! shares open nothing, k open the record; who may ask; the patient's audit and FHIR trail; the
//! re-key that ends it; a malicious share named, not combined; reviews; every rule.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{identity, pattern};
use medshare::envelope::shares::KeyShare;
use medshare::ledger::{Endorsement, Policy, ReviewOutcome, SignedTx, Submission, Tx, TxBody};
use medshare::sequencer::{LocalSequencer, Sequencer};
use medshare::{
    Cid, Error, FhirScope, FhirVersion, GrantOptions, Identity, PublishOptions, Purpose, RecordId,
    Rule, Store, Vault,
};
use pollster::block_on;

const AUTHORITIES: [&str; 4] = ["authority", "authority2", "authority3", "authority4"];

struct World {
    v: Vault,
    seq: Arc<LocalSequencer>,
    clock: Arc<AtomicU64>,
    p: Identity,
    d: Identity,
    d2: Identity,
    record: RecordId,
    data: Vec<u8>,
}

fn auth(i: usize) -> Identity {
    identity(AUTHORITIES[i])
}

/// Four authorities (3 of 4 shares open a key); a patient with one record opted into
/// break-glass access; two registered doctors, neither granted.
async fn world() -> World {
    let store = Store::memory();
    let authorities: Vec<Identity> = AUTHORITIES.iter().map(|a| identity(a)).collect();
    let (seq, _) = LocalSequencer::create_with(
        store.clone(),
        "emergency-net",
        authorities,
        Policy::default(),
    )
    .await
    .unwrap();
    let now = Arc::new(AtomicU64::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    ));
    let c = now.clone();
    let seq = Arc::new(seq.with_clock(Arc::new(move || c.load(Ordering::SeqCst))));
    let mut v = Vault::open(store, Some(seq.clone() as Arc<dyn Sequencer>), None)
        .await
        .unwrap();
    let c = now.clone();
    v.set_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    let (p, d, d2) = (identity("patient"), identity("doctor"), identity("doctor2"));
    v.register(&p, None).await.unwrap();
    for (doc, lic) in [(&d, "GMC-1"), (&d2, "GMC-2")] {
        let e = Endorsement::sign(&auth(0), &v.genesis(), &doc.id(), lic).unwrap();
        v.register(doc, Some(&e)).await.unwrap();
    }
    let data = pattern(300_000);
    let record = v
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
    World {
        v,
        seq,
        clock: now,
        p,
        d,
        d2,
        record,
        data,
    }
}

async fn read(v: &Vault, who: &Identity, record: &RecordId) -> medshare::Result<Vec<u8>> {
    let mut out = Vec::new();
    v.open_record(who, record, &mut out).await?;
    Ok(out)
}

fn pending_detail(r: medshare::Result<Vec<u8>>) -> String {
    match r {
        Err(Error::EmergencyPending { detail, .. }) => detail,
        other => panic!(
            "expected EmergencyPending, got {:?}",
            other.map(|b| b.len())
        ),
    }
}

fn rejected(r: medshare::Result<impl std::fmt::Debug>, rule: Rule) -> String {
    match r {
        Err(Error::Rejected { rule: got, detail }) if got == rule => detail,
        other => panic!("expected a refusal by rule {rule}, got {other:?}"),
    }
}

/// Submits one raw transaction of `author` (built by hand: what a misbehaving party signs).
async fn submit_raw(w: &mut World, author: &Identity, body: TxBody) -> medshare::Result<Cid> {
    let tx = SignedTx::sign(
        Tx {
            genesis: w.v.genesis(),
            author: author.id(),
            seq: w.v.state().last_seq(&author.id()) + 1,
            time: w.clock.load(Ordering::SeqCst),
            body,
        },
        author,
    )?;
    let cid = tx.cid;
    w.seq.submit(&Submission { txs: vec![tx] }).await?;
    w.v.sync().await?;
    Ok(cid)
}

#[test]
fn k_minus_one_shares_open_nothing_and_k_open_the_record() {
    block_on(async {
        let mut w = world().await;
        let split = w.v.state().emergency_split(&w.record).unwrap();
        assert_eq!((split.threshold, split.shares.len()), (3, 4));
        // No grant, no request: nothing.
        assert!(matches!(
            read(&w.v, &w.d, &w.record).await,
            Err(Error::AccessDenied(_))
        ));
        let request =
            w.v.request_emergency(&w.d, &w.record, "unconscious, suspected anaphylaxis", None)
                .await
                .unwrap();
        let detail = pending_detail(read(&w.v, &w.d, &w.record).await);
        assert!(
            detail.contains("0 genuine share(s) of the 3 needed"),
            "{detail}"
        );
        w.v.release_share(&auth(0), &request).await.unwrap();
        w.v.release_share(&auth(1), &request).await.unwrap();
        let detail = pending_detail(read(&w.v, &w.d, &w.record).await);
        assert!(
            detail.contains("2 genuine share(s) of the 3 needed"),
            "{detail}"
        );
        w.v.release_share(&auth(2), &request).await.unwrap();
        assert_eq!(read(&w.v, &w.d, &w.record).await.unwrap(), w.data);
        let status = w.v.emergency_status(&w.d, &request).unwrap();
        assert!(status.open && status.shares.iter().all(|s| s.valid));
        // Another doctor holds no request: the shares are wrapped to the requester only.
        assert!(matches!(
            read(&w.v, &w.d2, &w.record).await,
            Err(Error::AccessDenied(_))
        ));
        // The justification: the patient, the doctor and the share holders read it.
        for who in [&w.p, &w.d, &auth(3)] {
            assert_eq!(
                w.v.emergency_justification(who, &request).unwrap(),
                "unconscious, suspected anaphylaxis"
            );
        }
        assert!(matches!(
            w.v.emergency_justification(&w.d2, &request),
            Err(Error::NotARecipient)
        ));
        // The patient sees all of it in her audit trail.
        let names: Vec<&str> =
            w.v.audit(&w.record)
                .unwrap()
                .iter()
                .map(|e| e.kind.name())
                .collect();
        assert_eq!(
            names,
            [
                "published",
                "emergency-enabled",
                "emergency",
                "share-released",
                "share-released",
                "share-released"
            ]
        );
        // Not reviewed yet: listed by `audit --emergency`.
        assert_eq!(w.v.emergencies(true).len(), 1);
        // The emergency doctor's access ends with the window, by the reader's clock.
        w.clock.fetch_add(25 * 3600, Ordering::SeqCst);
        let detail = pending_detail(read(&w.v, &w.d, &w.record).await);
        assert!(detail.contains("window"), "{detail}");
    })
}

#[test]
fn only_a_registered_doctor_may_break_the_glass() {
    block_on(async {
        let mut w = world().await;
        // A patient.
        let p2 = identity("patient2");
        w.v.register(&p2, None).await.unwrap();
        let d = rejected(
            w.v.request_emergency(&p2, &w.record, "I am a doctor, honestly", None)
                .await,
            Rule::Role,
        );
        assert!(d.contains("only a registered doctor"), "{d}");
        // An authority.
        rejected(
            w.v.request_emergency(&auth(0), &w.record, "on call", None)
                .await,
            Rule::Role,
        );
        // An unregistered doctor.
        let stranger = identity("doctor3072");
        rejected(
            w.v.request_emergency(&stranger, &w.record, "walked in", None)
                .await,
            Rule::UnknownAuthor,
        );
        // Another purpose than emergency treatment, and windows out of bounds (by hand: the
        // vault never builds them).
        let record = w.record;
        let body = |purpose, window| TxBody::EmergencyAccess {
            record,
            version: 1,
            purpose,
            justification: vec![0; 64],
            window,
        };
        let d2 = w.d2.clone();
        let r = submit_raw(&mut w, &d2, body(Purpose::Treatment, 3600)).await;
        assert!(rejected(r, Rule::Emergency).contains("ETREAT"));
        for window in [0, 299, 73 * 3600] {
            let r = submit_raw(&mut w, &d2, body(Purpose::EmergencyTreatment, window)).await;
            rejected(r, Rule::Emergency);
        }
        // A record its owner did not opt in.
        let plain =
            w.v.publish_bytes(&w.p, b"no break-glass", "n.txt", "text/plain")
                .await
                .unwrap();
        let d = rejected(
            w.v.request_emergency(&w.d, &plain, "please", None).await,
            Rule::Emergency,
        );
        assert!(d.contains("did not opt in"), "{d}");
        // One open request per doctor and version.
        w.v.request_emergency(&w.d, &w.record, "first", None)
            .await
            .unwrap();
        rejected(
            w.v.request_emergency(&w.d, &w.record, "second", None).await,
            Rule::Emergency,
        );
        // Nothing was released: the chain holds one request, no release.
        let e = &w.v.emergencies(false)[0];
        assert!(e.releases.is_empty());
        // At most four open requests per doctor.
        for i in 0..4 {
            let r =
                w.v.publish_with(
                    &w.p,
                    &b"x"[..],
                    medshare::Metadata {
                        name: format!("r{i}"),
                        media_type: "text/plain".into(),
                        size: 1,
                    },
                    PublishOptions { emergency: true },
                    &mut |_| {},
                )
                .await
                .unwrap();
            let asked = w.v.request_emergency(&w.d, &r, "mass casualty", None).await;
            if i < 3 {
                asked.unwrap();
            } else {
                let d = rejected(asked, Rule::Emergency);
                assert!(d.contains("4 emergency requests open"), "{d}");
            }
        }
    })
}

#[test]
fn a_split_follows_the_authorities() {
    block_on(async {
        let mut w = world().await;
        // Hospital 4 leaves (three of four vote).
        let change = medshare::ledger::AuthorityChangeKind::Remove {
            authority: auth(3).id(),
        };
        for i in 0..3 {
            w.v.vote_authority(&auth(i), change.clone()).await.unwrap();
        }
        assert_eq!(w.v.state().authorities().len(), 3);
        // Its share is out of reach; the three others (3 needed) still open the record.
        assert!(w.v.state().split_outdated(&w.record));
        let request =
            w.v.request_emergency(&w.d, &w.record, "overdose", None)
                .await
                .unwrap();
        rejected(w.v.release_share(&auth(3), &request).await, Rule::Role);
        for i in 0..3 {
            w.v.release_share(&auth(i), &request).await.unwrap();
        }
        assert_eq!(read(&w.v, &w.d, &w.record).await.unwrap(), w.data);
        // Hospital 3 leaves too: two holders are left of the three needed, and the ledger says
        // so to the next doctor who asks.
        let change = medshare::ledger::AuthorityChangeKind::Remove {
            authority: auth(2).id(),
        };
        for i in 0..3 {
            w.v.vote_authority(&auth(i), change.clone()).await.unwrap();
        }
        let d = rejected(
            w.v.request_emergency(&w.d2, &w.record, "trauma", None)
                .await,
            Rule::Emergency,
        );
        assert!(
            d.contains("only 2 of the authorities holding shares"),
            "{d}"
        );
        // The patient's next grant re-keys (the version was exposed too), split over the two
        // in effect, both needed.
        w.v.grant(&w.p, &w.record, &w.d2.id(), GrantOptions::default())
            .await
            .unwrap();
        let split = w.v.state().emergency_split(&w.record).unwrap();
        assert_eq!((split.threshold, split.shares.len()), (2, 2));
        assert!(!w.v.state().split_outdated(&w.record));
    })
}

#[test]
fn releases_follow_the_rules() {
    block_on(async {
        let mut w = world().await;
        let request =
            w.v.request_emergency(
                &w.d,
                &w.record,
                "cardiac arrest",
                Some(Duration::from_secs(600)),
            )
            .await
            .unwrap();
        // An authority releasing a share that is not its own.
        let a0 = auth(0);
        let e = w.v.state().emergency(&request).unwrap().clone();
        let idx_of_a1 = (e.holders.iter().position(|h| *h == auth(1).id()).unwrap() + 1) as u8;
        let r = submit_raw(
            &mut w,
            &a0,
            TxBody::ShareRelease {
                request,
                index: idx_of_a1,
                wrapped: vec![1; 256],
            },
        )
        .await;
        assert!(rejected(r, Rule::Emergency).contains("does not hold share"));
        // A doctor releasing.
        let d = w.d.clone();
        let r = submit_raw(
            &mut w,
            &d,
            TxBody::ShareRelease {
                request,
                index: 1,
                wrapped: vec![1; 256],
            },
        )
        .await;
        rejected(r, Rule::Role);
        // Twice the same share.
        w.v.release_share(&a0, &request).await.unwrap();
        rejected(w.v.release_share(&a0, &request).await, Rule::Emergency);
        // After the window (block time past it).
        w.clock.fetch_add(601, Ordering::SeqCst);
        let r = w.v.release_share(&auth(1), &request).await;
        assert!(rejected(r, Rule::Emergency).contains("window"));
        // Splits the rules refuse: a threshold of one, of a half, and a stranger's record.
        let info = w.v.record(&w.record).unwrap();
        let p = w.p.clone();
        let good = w.v.state().emergency_split(&w.record).unwrap();
        let record = w.record;
        for threshold in [1u8, 2] {
            let r = submit_raw(
                &mut w,
                &p,
                TxBody::EmergencyShares {
                    record,
                    version: info.version,
                    threshold,
                    shares: good.shares.clone(),
                },
            )
            .await;
            rejected(r, Rule::Emergency);
        }
        let d2 = w.d2.clone();
        let r = submit_raw(
            &mut w,
            &d2,
            TxBody::EmergencyShares {
                record,
                version: info.version,
                threshold: 3,
                shares: good.shares.clone(),
            },
        )
        .await;
        rejected(r, Rule::NotOwner);
    })
}

#[test]
fn a_malicious_share_is_named_not_combined() {
    block_on(async {
        let mut w = world().await;
        let request =
            w.v.request_emergency(&w.d, &w.record, "stroke", None)
                .await
                .unwrap();
        w.v.release_share(&auth(0), &request).await.unwrap();
        // Authority 2 releases a made-up share, correctly wrapped to the doctor.
        let e = w.v.state().emergency(&request).unwrap().clone();
        let a1 = auth(1);
        let index = (e.holders.iter().position(|h| *h == a1.id()).unwrap() + 1) as u8;
        let forged = KeyShare::from_parts(index, [0x42; 32], [0x17; 32]);
        let wrapped = forged.wrap_to_requester(w.d.public(), &request).unwrap();
        submit_raw(
            &mut w,
            &a1,
            TxBody::ShareRelease {
                request,
                index,
                wrapped,
            },
        )
        .await
        .unwrap();
        w.v.release_share(&auth(2), &request).await.unwrap();
        // Three released, two genuine: the wrong one is named and left out.
        let detail = pending_detail(read(&w.v, &w.d, &w.record).await);
        assert!(
            detail.contains("2 genuine share(s) of the 3 needed"),
            "{detail}"
        );
        assert!(
            detail.contains(&format!(
                "share {index} from {} fails its commitment",
                a1.id()
            )),
            "{detail}"
        );
        let status = w.v.emergency_status(&w.d, &request).unwrap();
        assert!(!status.open);
        assert_eq!(
            status
                .shares
                .iter()
                .filter(|s| !s.valid)
                .map(|s| s.index)
                .collect::<Vec<_>>(),
            [index]
        );
        // A fourth, genuine share: three genuine ones open the record.
        w.v.release_share(&auth(3), &request).await.unwrap();
        assert_eq!(read(&w.v, &w.d, &w.record).await.unwrap(), w.data);
    })
}

#[test]
fn the_record_is_rekeyed_and_the_emergency_key_opens_nothing_new() {
    block_on(async {
        let mut w = world().await;
        let request =
            w.v.request_emergency(&w.d, &w.record, "trauma bay", None)
                .await
                .unwrap();
        for i in 0..3 {
            w.v.release_share(&auth(i), &request).await.unwrap();
        }
        assert_eq!(read(&w.v, &w.d, &w.record).await.unwrap(), w.data);
        let before = w.v.record(&w.record).unwrap();
        assert!(w.v.state().exposed(&w.record));
        // A grant on the exposed version is refused by the chain (by hand)...
        let p = w.p.clone();
        let d2 = w.d2.id();
        let record = w.record;
        let r = submit_raw(
            &mut w,
            &p,
            TxBody::Grant {
                record,
                version: before.version,
                doctor: d2,
                wrapped_key: vec![0; 256],
                expires: None,
                purpose: Purpose::Treatment,
                note: None,
            },
        )
        .await;
        assert!(rejected(r, Rule::Rekey).contains("emergency"));
        // ...so the patient's next grant re-keys first, by itself.
        w.v.grant(&w.p, &w.record, &w.d2.id(), GrantOptions::default())
            .await
            .unwrap();
        let after = w.v.record(&w.record).unwrap();
        assert_eq!(after.version, before.version + 1);
        assert_ne!(after.commitment, before.commitment);
        assert!(!w.v.state().exposed(&w.record));
        // The new version is split again for break-glass, and the emergency doctor's shares
        // (for the old version) open nothing of it.
        let split = w.v.state().emergency_split(&w.record).unwrap();
        assert_eq!(split.threshold, 3);
        assert!(matches!(
            read(&w.v, &w.d, &w.record).await,
            Err(Error::AccessDenied(_))
        ));
        assert_eq!(read(&w.v, &w.d2, &w.record).await.unwrap(), w.data);
        // A late release for the old version is refused.
        let r = w.v.release_share(&auth(3), &request).await;
        assert!(matches!(r, Err(Error::EmergencyPending { .. })), "{r:?}");
        // `rekey` alone does the same.
        let v3 = w.v.rekey(&w.p, &w.record).await.unwrap();
        assert_eq!(v3, after.version + 1);
        assert_eq!(read(&w.v, &w.p, &w.record).await.unwrap(), w.data);
    })
}

#[test]
fn reviews_close_the_emergency_and_fhir_tells_it() {
    block_on(async {
        let mut w = world().await;
        let request =
            w.v.request_emergency(&w.d, &w.record, "sepsis", None)
                .await
                .unwrap();
        for i in 0..3 {
            w.v.release_share(&auth(i), &request).await.unwrap();
        }
        assert_eq!(w.v.emergencies(true)[0].request, request);
        // A doctor may not review, nor the authority that endorsed her (an independent one
        // does).
        let d = w.d.clone();
        rejected(
            w.v.review_emergency(&d, &request, ReviewOutcome::Justified)
                .await,
            Rule::Role,
        );
        let r =
            w.v.review_emergency(&auth(0), &request, ReviewOutcome::Justified)
                .await;
        assert!(rejected(r, Rule::Emergency).contains("endorsed the doctor"));
        w.v.review_emergency(&auth(3), &request, ReviewOutcome::Justified)
            .await
            .unwrap();
        assert!(w.v.emergencies(true).is_empty());
        let e = &w.v.emergencies(false)[0];
        let review = e.review.as_ref().unwrap();
        assert_eq!(
            (review.authority, review.outcome),
            (auth(3).id(), ReviewOutcome::Justified)
        );
        // Once only.
        let r =
            w.v.review_emergency(&auth(1), &request, ReviewOutcome::Unjustified)
                .await;
        assert!(rejected(r, Rule::Emergency).contains("reviewed already"));
        // The FHIR trail: the request is an emergency override started (DICOM 110127) for
        // ETREAT, the review one stopped (110128).
        for version in [FhirVersion::R4, FhirVersion::R5] {
            let bundle =
                w.v.fhir(&FhirScope::Record(w.record), version)
                    .await
                    .unwrap();
            let text = bundle.to_string();
            let events: Vec<&serde_json::Value> = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == "AuditEvent")
                .collect();
            let request_event = events
                .iter()
                .find(|e| e["id"] == request.to_string())
                .expect("an AuditEvent for the request");
            let s = request_event.to_string();
            assert!(s.contains("110127") && s.contains("ETREAT"), "{s}");
            assert!(text.contains("110128"), "no review event");
            // The justification never appears in clear.
            assert!(!text.contains("sepsis"));
        }
    })
}

#[test]
fn the_new_transactions_decode_strictly() {
    block_on(async {
        let mut w = world().await;
        let request =
            w.v.request_emergency(&w.d, &w.record, "anaphylaxis", None)
                .await
                .unwrap();
        w.v.release_share(&auth(0), &request).await.unwrap();
        let store = w.v.store().clone();
        // Every kind, as stored, decodes back to the same bytes.
        let audit = w.v.audit(&w.record).unwrap();
        for kind in ["emergency-enabled", "emergency", "share-released"] {
            let e = audit.iter().find(|e| e.kind.name() == kind).unwrap();
            let bytes = store.get(&e.tx).await.unwrap();
            assert_eq!(SignedTx::decode(&bytes).unwrap().bytes, bytes, "{kind}");
        }
        let a1 = auth(1);
        let review = SignedTx::sign(
            Tx {
                genesis: w.v.genesis(),
                author: a1.id(),
                seq: 9,
                time: 0,
                body: TxBody::Review {
                    request,
                    outcome: ReviewOutcome::Justified,
                },
            },
            &a1,
        )
        .unwrap();
        assert_eq!(SignedTx::decode(&review.bytes).unwrap().cid, review.cid);
        // An outcome outside the vocabulary, and a purpose code in another case: refused.
        let replace = |bytes: &[u8], from: &[u8], to: &[u8]| {
            let at = bytes.windows(from.len()).position(|x| x == from).unwrap();
            let mut b = bytes.to_vec();
            b[at..at + from.len()].copy_from_slice(to);
            b
        };
        let err =
            SignedTx::decode(&replace(&review.bytes, b"justified", b"justifies")).unwrap_err();
        assert!(err.contains("`outcome`"), "{err}");
        let e = audit.iter().find(|e| e.kind.name() == "emergency").unwrap();
        let asked = store.get(&e.tx).await.unwrap();
        let err = SignedTx::decode(&replace(&asked, b"ETREAT", b"etreat")).unwrap_err();
        assert!(
            err.contains("PurposeOfUse") || err.contains("canonical"),
            "{err}"
        );
        // More shares than one transaction may carry.
        let split = w.v.state().emergency_split(&w.record).unwrap();
        let many = SignedTx::assemble(
            Tx {
                genesis: w.v.genesis(),
                author: w.p.id(),
                seq: 99,
                time: 0,
                body: TxBody::EmergencyShares {
                    record: w.record,
                    version: 1,
                    threshold: 12,
                    shares: std::iter::repeat_n(split.shares[0].clone(), 17).collect(),
                },
            },
            vec![0; 256],
            None,
        );
        let err = SignedTx::decode(&many.bytes).unwrap_err();
        assert!(err.contains("too many `shares`"), "{err}");
    })
}
