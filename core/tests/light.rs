//! Light clients (issue 17): access answers proven against a certificate's state root, checked
//! with nothing but the genesis block — and every way a node could lie to one refused.

mod common;

use common::chain::Chain;
use common::identity;
use medshare::ledger::light::{LightAnswer, StateAnswer, StateQuery, Verifier};
use medshare::ledger::{Policy, State, TxBody};
use medshare::{Error, Identity, RecordId};

fn rid(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

struct World {
    c: Chain,
    p: Identity,
    d: Identity,
    d2: Identity,
}

/// Four authorities; a patient with records 1 and 2, doctor 1 granted both, doctor 2 granted
/// record 1 until an expiry.
fn world() -> World {
    let mut c = Chain::new(4, Policy::default());
    let (p, d, d2) = (identity("patient"), identity("doctor"), identity("doctor2"));
    c.push(vec![c.reg_patient(&p), c.reg_doctor(&d), c.reg_doctor(&d2)]);
    c.push(vec![
        c.publish(&p, 2, rid(1), 1),
        c.publish(&p, 3, rid(2), 1),
    ]);
    c.push(vec![
        c.grant(&p, 4, rid(1), 1, &d, None),
        c.grant(&p, 5, rid(2), 1, &d, None),
        c.grant(&p, 6, rid(1), 1, &d2, Some(4_000_000_000)),
    ]);
    World { c, p, d, d2 }
}

/// What a node holding `state` (certified by the first `k` authorities) answers.
fn answer(c: &Chain, state: &State, k: usize, q: StateQuery) -> StateAnswer {
    let note = c.certify_head(state, k).certificate.to_note();
    state.prove(&q, &note)
}

fn ask(v: &mut Verifier, c: &Chain, q: StateQuery) -> medshare::Result<LightAnswer> {
    let a = answer(c, &c.state, 3, q);
    // Through JSON, as it travels.
    v.verify(&q, &StateAnswer::from_json(a.to_json().as_bytes())?)
}

#[test]
fn answers_are_the_chains() {
    let w = world();
    let mut v = Verifier::new(&w.c.genesis).unwrap();
    let LightAnswer::Record(Some(r1)) = ask(&mut v, &w.c, StateQuery::Record(rid(1))).unwrap()
    else {
        panic!("record 1 not found")
    };
    assert_eq!(r1.owner, w.p.id());
    assert_eq!(r1.version, 1);
    assert_eq!(r1.content, w.c.state.record(&rid(1)).unwrap().content);
    let full = w.c.state.access_list(&rid(1)).unwrap();
    assert_eq!(r1.grants.len(), 2);
    for (g, f) in r1.grants.iter().zip(&full) {
        assert_eq!(
            (g.doctor, g.version, g.purpose, g.granted_at, g.expires),
            (f.doctor, f.version, f.purpose, f.granted_at, f.expires)
        );
    }
    match ask(&mut v, &w.c, StateQuery::Doctor(w.d.id())).unwrap() {
        LightAnswer::Doctor(rs) => {
            let ids: Vec<_> = rs.iter().map(|r| r.record).collect();
            assert_eq!(ids, vec![rid(1), rid(2)]);
        }
        other => panic!("{other:?}"),
    }
    match ask(&mut v, &w.c, StateQuery::Doctor(w.d2.id())).unwrap() {
        LightAnswer::Doctor(rs) => {
            assert_eq!(rs.len(), 1);
            assert_eq!(rs[0].expires, Some(4_000_000_000));
        }
        other => panic!("{other:?}"),
    }
    // Absence is proven too.
    assert_eq!(
        ask(&mut v, &w.c, StateQuery::Record(rid(9))).unwrap(),
        LightAnswer::Record(None)
    );
    assert_eq!(
        ask(&mut v, &w.c, StateQuery::Doctor(w.p.id())).unwrap(),
        LightAnswer::Doctor(vec![])
    );
    assert_eq!(v.checkpoint().unwrap().height, w.c.state.height());
    // A whole answer of a four-authority network (certificate, authorities, entry, proofs).
    let size = answer(&w.c, &w.c.state, 4, StateQuery::Record(rid(1)))
        .to_json()
        .len();
    eprintln!("state answer, 4 authorities, 2 grants: {size} bytes of JSON");
    assert!(size < 8 * 1024, "{size} bytes");
}

#[test]
fn a_revocation_reaches_the_light_client() {
    let mut w = world();
    let mut v = Verifier::new(&w.c.genesis).unwrap();
    ask(&mut v, &w.c, StateQuery::Doctor(w.d.id())).unwrap();
    let revoke = w.c.tx(
        &w.p,
        7,
        TxBody::Revoke {
            record: rid(1),
            doctor: w.d.id(),
        },
    );
    let next = w.c.publish(&w.p, 8, rid(1), 2);
    w.c.push(vec![revoke, next]);
    match ask(&mut v, &w.c, StateQuery::Doctor(w.d.id())).unwrap() {
        LightAnswer::Doctor(rs) => {
            assert_eq!(rs.iter().map(|r| r.record).collect::<Vec<_>>(), [rid(2)]);
        }
        other => panic!("{other:?}"),
    }
    let LightAnswer::Record(Some(r1)) = ask(&mut v, &w.c, StateQuery::Record(rid(1))).unwrap()
    else {
        panic!()
    };
    assert_eq!(r1.version, 2);
    assert!(r1.grants.is_empty(), "{:?}", r1.grants);
}

fn invalid_proof(r: medshare::Result<LightAnswer>) -> String {
    match r {
        Err(Error::InvalidProof(m)) => m,
        other => panic!("expected InvalidProof, got {other:?}"),
    }
}

#[test]
fn lies_are_refused() {
    let w = world();
    let q = StateQuery::Record(rid(1));
    let good = answer(&w.c, &w.c.state, 3, q);
    let mut v = Verifier::new(&w.c.genesis).unwrap();

    // A grant hidden: the value changed by one byte.
    let mut a = good.clone();
    let value = a.entry.value.as_mut().unwrap();
    let n = value.len();
    value[n - 1] ^= 1;
    assert!(invalid_proof(v.verify(&q, &a)).contains("not the one claimed"));
    // ... and the proof's leaf changed to match it.
    let h = medshare::ledger::smt::value_hash(a.entry.value.as_ref().unwrap());
    a.entry.proof.leaf.as_mut().unwrap().1 = h;
    assert!(invalid_proof(v.verify(&q, &a)).contains("certified root"));

    // The record said absent.
    let mut a = good.clone();
    a.entry.value = None;
    assert!(invalid_proof(v.verify(&q, &a)).contains("present"));

    // Another record's entry offered for this one.
    let other = answer(&w.c, &w.c.state, 3, StateQuery::Record(rid(2)));
    let mut a = good.clone();
    a.entry = other.entry.clone();
    invalid_proof(v.verify(&q, &a));
    // An answer to another question.
    invalid_proof(v.verify(&q, &other));

    // Signed by two of four authorities only.
    let weak = answer(&w.c, &w.c.state, 2, q);
    assert!(invalid_proof(v.verify(&q, &weak)).contains("2 of 4 authorities signed"));

    // Authorities swapped for a set the node made up (the patient as sole authority).
    let mut a = good.clone();
    a.authorities.value = Some(vec![0xa0]);
    invalid_proof(v.verify(&q, &a));

    // Another network's client.
    let elsewhere = Chain::with_nonce(4, Policy::default(), [9; 16]);
    let mut v2 = Verifier::new(&elsewhere.genesis).unwrap();
    assert!(matches!(
        v2.verify(&q, &good),
        Err(Error::WrongGenesis { .. })
    ));

    // Nothing above moved the trust; the honest answer still verifies.
    assert!(v.checkpoint().is_none());
    v.verify(&q, &good).unwrap();
}

#[test]
fn a_doctors_records_must_rebuild_her_entry() {
    let w = world();
    let q = StateQuery::Doctor(w.d.id());
    let good = answer(&w.c, &w.c.state, 3, q);
    assert_eq!(good.records.as_ref().map(Vec::len), Some(2));
    let mut v = Verifier::new(&w.c.genesis).unwrap();

    // A record hidden.
    let mut a = good.clone();
    a.records.as_mut().unwrap().pop();
    assert_eq!(
        invalid_proof(v.verify(&q, &a)),
        "doctor entry: the entry counts 2 records, the answer sends 1"
    );
    // None sent at all.
    let mut a = good.clone();
    a.records = None;
    assert_eq!(
        invalid_proof(v.verify(&q, &a)),
        "doctor entry: the entry counts 2 records, the answer sends 0"
    );
    // Out of order.
    let mut a = good.clone();
    a.records.as_mut().unwrap().reverse();
    assert_eq!(
        invalid_proof(v.verify(&q, &a)),
        "doctor entry: the doctor's records are not sorted by record id"
    );
    // One swapped for a record she does not hold (doctor 2's grant on record 1, with an expiry).
    let other = answer(&w.c, &w.c.state, 3, StateQuery::Doctor(w.d2.id()));
    let mut a = good.clone();
    a.records.as_mut().unwrap()[0] = other.records.as_ref().unwrap()[0].clone();
    assert_eq!(
        invalid_proof(v.verify(&q, &a)),
        "doctor entry: the records sent do not make the entry's root"
    );
    // Not a record value.
    let mut a = good.clone();
    a.records.as_mut().unwrap()[1] = vec![0xa0];
    assert!(
        invalid_proof(v.verify(&q, &a)).starts_with("doctor entry: "),
        "an empty map is not a record"
    );
    assert!(v.checkpoint().is_none());
    match v.verify(&q, &good).unwrap() {
        LightAnswer::Doctor(rs) => assert_eq!(rs.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_grant_changes_one_path_of_the_doctors_tree() {
    // Thirty more records granted one block at a time: each block changed one path of her
    // tree, and the answer (all 32, sorted) still rebuilds the certified entry. (That the tree
    // built at once from a snapshot gives the same root is `tests/snapshot.rs`.)
    let mut w = world();
    for i in 10..40u8 {
        let seq = w.c.state.last_seq(&w.p.id());
        w.c.push(vec![w.c.publish(&w.p, seq + 1, rid(i), 1)]);
        let seq = w.c.state.last_seq(&w.p.id());
        let e = (i % 2 == 0).then_some(4_000_000_000 + u64::from(i));
        w.c.push(vec![w.c.grant(&w.p, seq + 1, rid(i), 1, &w.d, e)]);
    }
    let q = StateQuery::Doctor(w.d.id());
    let a = answer(&w.c, &w.c.state, 3, q);
    assert_eq!(a.records.as_ref().map(Vec::len), Some(32));
    let mut v = Verifier::new(&w.c.genesis).unwrap();
    match v.verify(&q, &a).unwrap() {
        LightAnswer::Doctor(rs) => {
            assert_eq!(rs.len(), 32);
            assert!(rs.windows(2).all(|p| p[0].record < p[1].record));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rollback_and_fork_are_refused_and_trust_survives_a_restart() {
    let mut w = world();
    let old = w.c.state.clone();
    let q = StateQuery::Doctor(w.d.id());
    let old_answer = answer(&w.c, &old, 4, q);

    // An alternative block at the same height with as many transactions: a fork.
    let mut fork = w.c.clone_for_fork();
    let t = fork.publish(&w.p, 7, rid(5), 1);
    fork.push(vec![t]);
    let t = w.c.publish(&w.p, 7, rid(6), 1);
    w.c.push(vec![t]);
    assert_eq!(fork.state.log_size(), w.c.state.log_size());

    let mut v = Verifier::new(&w.c.genesis).unwrap();
    ask(&mut v, &w.c, q).unwrap();
    match v.verify(&q, &old_answer) {
        Err(Error::Rollback { trusted, offered }) => {
            assert_eq!((trusted, offered), (w.c.state.log_size(), old.log_size()));
        }
        other => panic!("{other:?}"),
    }
    let forked = answer(&fork, &fork.state, 4, q);
    match v.verify(&q, &forked) {
        Err(Error::Fork { size, .. }) => assert_eq!(size, w.c.state.log_size()),
        other => panic!("{other:?}"),
    }

    // Kept and read back, the trust still refuses the old state.
    let json = v.to_json();
    let mut again = Verifier::from_json(&json, &w.c.genesis.cid).unwrap();
    assert_eq!(again.checkpoint(), v.checkpoint());
    assert!(matches!(
        again.verify(&q, &old_answer),
        Err(Error::Rollback { .. })
    ));
    again.verify(&q, &answer(&w.c, &w.c.state, 4, q)).unwrap();
    // For another network it is refused.
    let other = Chain::with_nonce(1, Policy::default(), [3; 16]);
    assert!(matches!(
        Verifier::from_json(&json, &other.genesis.cid),
        Err(Error::WrongGenesis { .. })
    ));
}

#[test]
fn the_state_root_is_certified_and_checked_on_replay() {
    let mut w = world();
    assert_eq!(w.c.state.checkpoint().state, w.c.state.state_root());
    let t = w.c.publish(&w.p, 7, rid(7), 1);
    let b = w.c.block(std::slice::from_ref(&t));
    let mut s = w.c.state.clone();
    s.apply_block(&b, &[t]).unwrap();
    assert_ne!(s.state_root(), w.c.state.state_root());
    // A certificate of the new head with another state root does not certify it.
    let mut cp = s.checkpoint();
    cp.state[0] ^= 1;
    let bad = medshare::ledger::CertificateObject::new(medshare::ledger::Certificate {
        signatures: w
            .c
            .authorities
            .iter()
            .map(|a| medshare::ledger::checkpoint::sign_share(&cp, a).unwrap())
            .collect(),
        checkpoint: cp,
    });
    match s.apply_certificate(&bad) {
        Err(Error::InvalidChain { detail, .. }) => {
            assert!(detail.contains("state root"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    s.apply_certificate(&w.c.certify_head(&s, 3)).unwrap();
}
