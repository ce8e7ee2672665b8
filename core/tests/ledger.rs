//! Every ledger rule, each broken by a hand-made block or transaction signed with real keys, and
//! the verifier that loads chains from a store.

mod common;

use common::chain::{Chain, T0, assert_rule, rule_of};
use common::identity;
use medshare::cid::Cid;
use medshare::ledger::checkpoint::{Certificate, sign_share};
use medshare::ledger::{
    AuthorityChangeKind, Block, BlockHeader, CertificateObject, Policy, SignedTx, State, Tx,
    TxBody, VerifiedSignatures, chain,
};
use medshare::{Error, Purpose, RecordId, Role, Rule, Store};

fn rid(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

/// A chain with a registered patient and doctor, and one record granted to the doctor.
fn populated() -> (Chain, medshare::Identity, medshare::Identity, RecordId) {
    let mut c = Chain::one();
    let (p, d) = (identity("patient"), identity("doctor"));
    c.push(vec![c.reg_patient(&p), c.reg_doctor(&d)]);
    let r = rid(1);
    c.push(vec![c.publish(&p, 2, r, 1)]);
    c.push(vec![c.grant(&p, 3, r, 1, &d, None)]);
    (c, p, d, r)
}

#[test]
fn a_well_formed_chain_applies_and_loads() {
    let (c, _, d, r) = populated();
    assert_eq!(c.state.height(), 3);
    assert_eq!(c.state.log_size(), 4);
    assert_eq!(c.state.records_granted_to(&d.id())[0].record, r);
    let store = c.store();
    let head = c.state.head_pointer();
    let (state, report) =
        pollster::block_on(chain::load(&store, &head, Some(&c.genesis.cid))).unwrap();
    assert_eq!(state.head(), c.state.head());
    assert_eq!(
        (report.blocks, report.transactions, report.height),
        (4, 4, 3)
    );
}

// ---- blocks ----------------------------------------------------------------------------------

#[test]
fn rule_genesis() {
    let mut c = Chain::one();
    let mut g = c.genesis.genesis.clone();
    g.authorities.clear();
    assert_rule(
        medshare::ledger::State::from_genesis(&medshare::ledger::GenesisBlock::new(g)),
        Rule::Genesis,
    );
    let mut g = c.genesis.genesis.clone();
    g.policy.min_key_bits = 1024;
    assert_rule(
        medshare::ledger::State::from_genesis(&medshare::ledger::GenesisBlock::new(g)),
        Rule::Genesis,
    );
    let mut g = c.genesis.genesis.clone();
    g.authorities.push(g.authorities[0].clone());
    assert_rule(
        medshare::ledger::State::from_genesis(&medshare::ledger::GenesisBlock::new(g)),
        Rule::Genesis,
    );
    // The genesis block takes no certificate.
    let cert = c.certify_head(&c.state, 1);
    assert_rule(c.state.clone().apply_certificate(&cert), Rule::Certificate);
    let _ = c.block(&[]);
}

#[test]
fn rule_network_binds_every_object_to_its_genesis() {
    let mut c = Chain::one();
    let other = Chain::with_nonce(1, Policy::default(), [8; 16]);
    let p = identity("patient");
    // A transaction signed for another network (the replay of issue 13.5).
    let foreign = other.reg_patient(&p);
    assert_rule(c.try_block(&[foreign]), Rule::Network);
    // A block naming another genesis.
    let txs = vec![c.reg_patient(&p)];
    let mut b = c.block(&txs);
    b.header.genesis = other.genesis.cid;
    let b = Block::new(b.header);
    assert_rule(c.state.clone().apply_block(&b, &txs), Rule::Network);
}

fn reblock(c: &mut Chain, txs: &[SignedTx], f: impl FnOnce(&mut BlockHeader)) -> Result<(), Error> {
    let b = c.block(txs);
    let mut h = b.header;
    f(&mut h);
    c.state.clone().apply_block(&Block::new(h), txs)
}

#[test]
fn rule_parent_height_order() {
    let (mut c, p, _, r) = populated();
    let txs = vec![c.publish(&p, 4, r, 2)];
    assert_rule(
        reblock(&mut c, &txs, |h| h.parent = Cid::dag_cbor(b"elsewhere")),
        Rule::Parent,
    );
    assert_rule(reblock(&mut c, &txs, |h| h.height += 1), Rule::Height);
    assert_rule(
        reblock(&mut c, &txs, |h| h.time = T0 - 1),
        Rule::TimestampOrder,
    );
}

#[test]
fn rule_timestamp_future_is_checked_on_acceptance_only() {
    let (mut c, p, _, r) = populated();
    let base = c.state.clone();
    // A block a day ahead of every clock: applying (replaying) it works...
    c.time += 86_400;
    c.push(vec![c.publish(&p, 4, r, 2)]);
    let store = c.store();
    let head = c.state.head_pointer();
    // ...a replica accepting it now refuses it,
    let now = T0 + 100;
    assert_rule(
        pollster::block_on(chain::extend(&store, &base, &head, now)),
        Rule::TimestampFuture,
    );
    // a replica whose clock is within the skew accepts it,
    pollster::block_on(chain::extend(&store, &base, &head, T0 + 86_400)).unwrap();
    // and a full load of the stored chain never looks at the clock.
    pollster::block_on(chain::load(&store, &head, None)).unwrap();
}

#[test]
fn rule_certificate_quorum() {
    let mut c = Chain::new(4, Policy::default());
    let p = identity("patient");
    let txs = vec![c.reg_patient(&p)];
    let b = c.block(&txs);
    let mut s = c.state.clone();
    s.apply_block(&b, &txs).unwrap();
    // 2 of 4 is not more than two thirds; 3 of 4 is.
    assert_rule(
        s.clone().apply_certificate(&c.certify_head(&s, 2)),
        Rule::Certificate,
    );
    s.clone().apply_certificate(&c.certify_head(&s, 3)).unwrap();
    // A share signed over another block's checkpoint (a Byzantine validator) poisons the
    // certificate, even next to a quorum of good shares.
    let mut wrong = s.checkpoint();
    wrong.block = Cid::dag_cbor(b"another block");
    let mut sigs: Vec<_> = c.authorities[..3]
        .iter()
        .map(|a| sign_share(&s.checkpoint(), a).unwrap())
        .collect();
    let mut bad = sign_share(&wrong, &c.authorities[3]).unwrap();
    bad.name = c.authorities[3].id().to_string();
    sigs.push(bad);
    let poisoned = CertificateObject::new(Certificate {
        checkpoint: s.checkpoint(),
        signatures: sigs,
    });
    assert_rule(s.clone().apply_certificate(&poisoned), Rule::Certificate);
    // A signature by a non-authority is ignored (2 real ones are still not a quorum).
    let stranger = identity("doctor");
    let mut sigs: Vec<_> = c.authorities[..2]
        .iter()
        .map(|a| sign_share(&s.checkpoint(), a).unwrap())
        .collect();
    sigs.push(sign_share(&s.checkpoint(), &stranger).unwrap());
    let cert = CertificateObject::new(Certificate {
        checkpoint: s.checkpoint(),
        signatures: sigs,
    });
    assert_rule(s.clone().apply_certificate(&cert), Rule::Certificate);
    // A certificate of another block, or of this block with another log, is refused.
    let mut other = s.checkpoint();
    other.size += 1;
    let cert = CertificateObject::new(Certificate {
        signatures: c
            .authorities
            .iter()
            .map(|a| sign_share(&other, a).unwrap())
            .collect(),
        checkpoint: other,
    });
    assert_rule(s.clone().apply_certificate(&cert), Rule::Certificate);
    // A block whose parent is not certified is refused.
    s.apply_certificate(&c.certify_head(&s, 4)).unwrap();
    let d = identity("doctor");
    let mut uncertified = s.clone();
    let txs = vec![c.reg_doctor(&d)];
    let b2 = uncertified.next_block(&txs, T0 + 5);
    uncertified.apply_block(&b2, &txs).unwrap();
    let txs3 = vec![c.reg_patient(&identity("patient2"))];
    let b3 = uncertified.next_block(&txs3, T0 + 6);
    assert_rule(
        uncertified.clone().apply_block(&b3, &txs3),
        Rule::Certificate,
    );
}

#[test]
fn a_chain_resigned_by_one_authority_is_refused_offline() {
    // Four authorities; one rogue hospital rewrites the last block (dropping a revocation) and
    // certifies the new history alone.
    let mut c = Chain::new(4, Policy::default());
    let (p, d) = (identity("patient"), identity("doctor"));
    c.push(vec![c.reg_patient(&p), c.reg_doctor(&d)]);
    c.push(vec![c.publish(&p, 2, rid(1), 1)]);
    let before = c.state.clone();
    c.push(vec![c.grant(&p, 3, rid(1), 1, &d, None)]);
    let store = c.store();
    let honest = c.state.head_pointer();
    pollster::block_on(chain::load(&store, &honest, None)).unwrap();
    // The forged branch from `before`: another grant, certified by authority 1 only.
    let txs = vec![c.grant(&p, 3, rid(1), 1, &d, Some(T0 + 999_999))];
    let forged = before.next_block(&txs, T0 + 10);
    let mut s = before.clone();
    s.apply_block(&forged, &txs).unwrap();
    let rogue = c.certify_head(&s, 1);
    pollster::block_on(async {
        for t in &txs {
            store.put(&t.cid, &t.bytes).await.unwrap();
        }
        store.put(&forged.cid, &forged.bytes).await.unwrap();
        store.put(&rogue.cid, &rogue.bytes).await.unwrap();
    });
    assert_rule(
        pollster::block_on(chain::load(&store, &rogue.cid, None)),
        Rule::Certificate,
    );
}

#[test]
fn rule_merkle_root_and_limits() {
    let (mut c, p, _, r) = populated();
    let txs = vec![c.publish(&p, 4, r, 2)];
    assert_rule(
        reblock(&mut c, &txs, |h| h.log_root[0] ^= 1),
        Rule::MerkleRoot,
    );
    assert_rule(reblock(&mut c, &txs, |h| h.log_size += 1), Rule::MerkleRoot);
    assert_rule(reblock(&mut c, &txs, |h| h.txs = vec![]), Rule::Limits);
    assert_rule(
        reblock(&mut c, &txs, |h| h.txs = vec![Cid::dag_cbor(b"x")]),
        Rule::Cid,
    );
    let mut tiny = Chain::new(
        1,
        Policy {
            max_txs_per_block: 1,
            ..Policy::default()
        },
    );
    let (p, d) = (identity("patient"), identity("doctor"));
    assert_rule(
        tiny.try_block(&[tiny.reg_patient(&p), tiny.reg_doctor(&d)]),
        Rule::Limits,
    );
}

// ---- transactions ----------------------------------------------------------------------------

#[test]
fn rule_unknown_author_signature_sequence() {
    let (mut c, p, d, r) = populated();
    let stranger = identity("patient2");
    assert_rule(
        c.try_block(&[c.publish(&stranger, 1, rid(9), 1)]),
        Rule::UnknownAuthor,
    );
    // Signed by the doctor's key in the patient's name.
    let tx = Tx {
        genesis: c.genesis.cid,
        author: p.id(),
        seq: 4,
        time: T0,
        body: TxBody::Revoke {
            record: r,
            doctor: d.id(),
        },
    };
    let forged = SignedTx::sign(tx, &d).unwrap();
    assert_rule(c.try_block(&[forged]), Rule::TxSignature);
    // A replayed (old) sequence number.
    assert_rule(c.try_block(&[c.publish(&p, 3, rid(2), 1)]), Rule::Sequence);
}

#[test]
fn rule_registration_and_duplicates() {
    let mut c = Chain::one();
    let (p, d) = (identity("patient"), identity("doctor"));
    // Author is not the registered key.
    let tx = c.tx(
        &p,
        1,
        TxBody::RegisterPatient {
            key: d.public().clone(),
        },
    );
    assert_rule(c.try_block(&[tx]), Rule::Registration);
    c.push(vec![c.reg_patient(&p)]);
    assert_rule(
        c.try_block(&[c.reg_patient(&p)]),
        Rule::DuplicateRegistration,
    );
    // A registration must start the sequence at 1.
    let tx = c.tx(
        &d,
        2,
        TxBody::RegisterPatient {
            key: d.public().clone(),
        },
    );
    assert_rule(c.try_block(&[tx]), Rule::Sequence);
}

#[test]
fn rule_endorsement() {
    let mut c = Chain::one();
    let d = identity("doctor");
    let reg = |c: &Chain, e: medshare::Endorsement| {
        c.tx(
            &d,
            1,
            TxBody::RegisterDoctor {
                key: d.public().clone(),
                licence: e.licence,
                authority: e.authority,
                endorsement: e.signature,
            },
        )
    };
    // Endorsed by someone who is not an authority.
    let fake =
        medshare::Endorsement::sign(&identity("authority2"), &c.genesis.cid, &d.id(), "GMC-1")
            .unwrap();
    assert_rule(c.try_block(&[reg(&c, fake)]), Rule::Endorsement);
    // Endorsed for another network (the same authority key on another genesis).
    let other = Chain::with_nonce(1, Policy::default(), [8; 16]);
    let e = other.endorse(&d, "GMC-1");
    assert_rule(c.try_block(&[reg(&c, e)]), Rule::Endorsement);
    // The licence changed after endorsement.
    let mut e = c.endorse(&d, "GMC-1");
    e.licence = "GMC-2".into();
    assert_rule(c.try_block(&[reg(&c, e)]), Rule::Endorsement);
    // An empty licence is never valid (issue 13.20).
    let mut e = c.endorse(&d, "GMC-1");
    e.licence = String::new();
    assert_rule(c.try_block(&[reg(&c, e)]), Rule::Endorsement);
    assert!(matches!(
        medshare::Endorsement::sign(&c.authorities[0], &c.genesis.cid, &d.id(), " "),
        Err(Error::InvalidInput(_))
    ));
    // A licence with a control character (which the text form could never carry).
    let mut e = c.endorse(&d, "GMC-1");
    e.licence = "GMC\u{1b}[2J".into();
    assert_rule(c.try_block(&[reg(&c, e)]), Rule::Endorsement);
    // The text form ends at the signature line.
    let text = c.endorse(&d, "GMC-1").to_text();
    assert!(medshare::Endorsement::from_text(&text).is_ok());
    assert!(matches!(
        medshare::Endorsement::from_text(&format!("{text}licence GMC-2\n")),
        Err(Error::InvalidInput(m)) if m.contains("after the signature")
    ));
    // The check holds when the author's own signature is not checked (a probe).
    let mut e = c.endorse(&d, "GMC-1");
    e.signature[5] ^= 1;
    assert_rule(
        c.state.check_unsigned(&reg(&c, e).tx, T0 + 1),
        Rule::Endorsement,
    );
}

#[test]
fn rules_of_records() {
    let (mut c, p, d, r) = populated();
    let p2 = identity("patient2");
    c.push(vec![c.reg_patient(&p2)]);
    // A doctor cannot publish.
    assert_rule(c.try_block(&[c.publish(&d, 2, rid(5), 1)]), Rule::Role);
    // Only the owner publishes, grants, revokes.
    assert_rule(c.try_block(&[c.publish(&p2, 2, r, 2)]), Rule::NotOwner);
    assert_rule(
        c.try_block(&[c.grant(&p2, 2, r, 1, &d, None)]),
        Rule::NotOwner,
    );
    // Versions in order; grants name the latest version.
    assert_rule(c.try_block(&[c.publish(&p, 4, r, 3)]), Rule::Version);
    assert_rule(c.try_block(&[c.publish(&p, 4, rid(6), 2)]), Rule::Version);
    c.push(vec![c.publish(&p, 4, r, 2)]);
    assert_rule(
        c.try_block(&[c.grant(&p, 5, r, 1, &d, None)]),
        Rule::Version,
    );
    // Grantees are registered doctors.
    assert_rule(
        c.try_block(&[c.grant(&p, 5, r, 2, &p2, None)]),
        Rule::Grantee,
    );
    assert_rule(
        c.try_block(&[c.grant(&p, 5, r, 2, &identity("doctor2"), None)]),
        Rule::Grantee,
    );
    // A grant that expired before it is issued.
    assert_rule(
        c.try_block(&[c.grant(&p, 5, r, 2, &d, Some(T0))]),
        Rule::Expiry,
    );
    // Revoking a doctor who holds nothing.
    let d2 = identity("doctor2");
    c.push(vec![c.reg_doctor(&d2)]);
    let revoke = c.tx(
        &p,
        5,
        TxBody::Revoke {
            record: r,
            doctor: d2.id(),
        },
    );
    assert_rule(c.try_block(&[revoke]), Rule::NotGranted);
}

#[test]
fn rule_rekey_a_revoke_must_publish_the_next_version() {
    let (mut c, p, d, r) = populated();
    let revoke = c.tx(
        &p,
        4,
        TxBody::Revoke {
            record: r,
            doctor: d.id(),
        },
    );
    // A bare revoke: the revoked doctor's key would still open the current version.
    assert_rule(c.try_block(std::slice::from_ref(&revoke)), Rule::Rekey);
    // Revoke and the next version together: accepted, and the doctor is revoked.
    let s = c.try_block(&[revoke, c.publish(&p, 5, r, 2)]).unwrap();
    assert!(matches!(
        s.access(&r, &d.id(), T0),
        Err(Error::AccessRevoked(_))
    ));
    // The same rule at submission time names it too.
    let revoke = c.tx(
        &p,
        4,
        TxBody::Revoke {
            record: r,
            doctor: d.id(),
        },
    );
    assert_rule(c.state.check_submission(&[revoke], T0 + 9), Rule::Rekey);
}

#[test]
fn rule_key_rotation_keeps_the_account() {
    let (mut c, p, _, r) = populated();
    let new = p.rotated().unwrap();
    assert_eq!(new.id(), p.id());
    assert_ne!(new.key_id(), p.key_id());
    let tx = Tx {
        genesis: c.genesis.cid,
        author: p.id(),
        seq: 4,
        time: T0,
        body: TxBody::RotateKey {
            new_key: new.public().clone(),
        },
    };
    // Not co-signed by the new key.
    let bad = SignedTx::assemble(
        tx.clone(),
        p.sign(&SignedTx::signing_bytes(&tx)).unwrap(),
        Some(vec![0; 256]),
    );
    assert_rule(c.try_block(&[bad]), Rule::KeyRotation);
    // A key already in use.
    let taken = Tx {
        body: TxBody::RotateKey {
            new_key: identity("doctor").public().clone(),
        },
        ..tx.clone()
    };
    assert_rule(
        c.try_block(&[SignedTx::sign_rotation(taken, &p, &identity("doctor")).unwrap()]),
        Rule::KeyRotation,
    );
    c.push(vec![SignedTx::sign_rotation(tx, &p, &new).unwrap()]);
    assert_eq!(c.state.identity(&p.id()).unwrap().1, new.public());
    // The old key signs nothing any more; the new key signs for the same account.
    assert_rule(
        c.try_block(&[c.publish(&p, 5, rid(3), 1)]),
        Rule::TxSignature,
    );
    c.push(vec![c.publish(&new, 5, rid(3), 1)]);
    assert_eq!(c.state.record(&rid(3)).unwrap().owner, p.id());
    assert_eq!(c.state.record(&r).unwrap().owner, p.id());
    // Authorities change by vote, not by rotation.
    let a = c.authorities[0].clone();
    let a2 = a.rotated().unwrap();
    let tx = c.tx(
        &a,
        1,
        TxBody::RotateKey {
            new_key: a2.public().clone(),
        },
    );
    let tx = SignedTx::sign_rotation(tx.tx, &a, &a2).unwrap();
    assert_rule(c.try_block(&[tx]), Rule::Role);
}

#[test]
fn authorities_change_by_vote() {
    let mut c = Chain::new(3, Policy::default());
    let newcomer = identity("authority4");
    let add = AuthorityChangeKind::Add {
        key: newcomer.public().to_spki_der().to_vec(),
        validator: Some([4; 32]),
    };
    let vote = |c: &Chain, i: usize| {
        let a = &c.authorities[i];
        c.tx(
            a,
            c.next_seq(a),
            TxBody::AuthorityChange {
                change: add.clone(),
            },
        )
    };
    // Only authorities vote.
    let p = identity("patient");
    c.push(vec![c.reg_patient(&p)]);
    let tx = c.tx(
        &p,
        2,
        TxBody::AuthorityChange {
            change: add.clone(),
        },
    );
    assert_rule(c.try_block(&[tx]), Rule::AuthorityChange);
    // 2 of 3 votes: not yet more than two thirds.
    c.push(vec![vote(&c, 0)]);
    assert_eq!(c.state.authorities().len(), 3);
    assert_rule(c.try_block(&[vote(&c, 0)]), Rule::AuthorityChange);
    c.push(vec![vote(&c, 1)]);
    assert_eq!(c.state.authorities().len(), 3);
    // The third vote carries it: the new authority is in effect, with its validator update.
    let v = vote(&c, 2);
    let b = c.block(std::slice::from_ref(&v));
    let mut s = c.state.clone();
    s.apply_block(&b, &[v]).unwrap();
    assert_eq!(s.authorities().len(), 4);
    assert_eq!(s.validator_updates()[0].validator, [4; 32]);
    // From this block on, certificates need more than two thirds of the new set (3 of 4):
    // the three old authorities suffice, two do not.
    assert_rule(
        s.clone().apply_certificate(&c.certify_head(&s, 2)),
        Rule::Certificate,
    );
    s.apply_certificate(&c.certify_head(&s, 3)).unwrap();
    assert_eq!(s.identity(&newcomer.id()).unwrap().0, Role::Authority);
}

// ---- stored chains ---------------------------------------------------------------------------

fn load_err(store: &Store, head: &Cid) -> Error {
    pollster::block_on(chain::load(store, head, None)).unwrap_err()
}

#[test]
fn rule_encoding_and_cid_of_stored_objects() {
    let (c, _, _, _) = populated();
    let head = c.state.head_pointer();
    // A transaction whose stored bytes are not what its CID names.
    let tx = c.objects.iter().find(|(cid, b)| {
        cid.codec() == medshare::cid::DAG_CBOR
            && medshare::ledger::codec::object_type(b).as_deref() == Some("Grant")
    });
    let (tx_cid, _) = tx.unwrap().clone();
    let mem = std::sync::Arc::new(medshare::store::memory::MemoryStore::default());
    let store = Store::from_arc(mem.clone());
    pollster::block_on(async {
        for (cid, bytes) in &c.objects {
            store.put(cid, bytes).await.unwrap();
        }
    });
    mem.corrupt(&tx_cid, b"\xa0");
    assert_eq!(rule_of(&load_err(&store, &head)), Rule::Cid);
    // Another valid, well-signed transaction of the chain in its place (it decodes; only its
    // hash tells): the same rule, naming the transaction and the bytes found in its place.
    let (other_cid, other) = c
        .objects
        .iter()
        .find(|(cid, b)| {
            *cid != tx_cid && cid.codec() == medshare::cid::DAG_CBOR && SignedTx::decode(b).is_ok()
        })
        .unwrap()
        .clone();
    mem.corrupt(&tx_cid, &other);
    match load_err(&store, &head) {
        Error::InvalidChain {
            rule: Rule::Cid,
            tx: Some(_),
            detail,
            ..
        } => assert_eq!(
            detail,
            format!("object {tx_cid} has the bytes of {other_cid}")
        ),
        e => panic!("expected rule Cid on the substituted transaction, got {e:?}"),
    }
    // A transaction that hashes right but is not canonical DAG-CBOR.
    let mut c2 = Chain::one();
    let p = identity("patient");
    let good = c2.reg_patient(&p);
    let mut bytes = good.bytes.clone();
    // Re-encode the first map header non-minimally (0xa8 -> 0xb8 0x08).
    assert_eq!(bytes[0] & 0xe0, 0xa0);
    let n = bytes[0] & 0x1f;
    bytes.splice(0..1, [0xb8, n]);
    assert!(SignedTx::decode(&bytes).is_err());
    let bad_cid = Cid::dag_cbor(&bytes);
    let mut h = c2.block(&[good]).header;
    h.txs = vec![bad_cid];
    let b = Block::new(h);
    let store = c2.store();
    pollster::block_on(async {
        store.put(&bad_cid, &bytes).await.unwrap();
        store.put(&b.cid, &b.bytes).await.unwrap();
    });
    let mut s = c2.state.clone();
    // A hand-made certificate for the block (whose log root is computed over the good tx).
    let _ = s.apply_block(&b, &[]);
    let cp = medshare::ledger::Checkpoint {
        genesis: c2.genesis.cid,
        size: 1,
        root: b.header.log_root,
        height: 1,
        block: b.cid,
        state: [0; 32],
    };
    let cert = CertificateObject::new(Certificate {
        signatures: vec![sign_share(&cp, &c2.authorities[0]).unwrap()],
        checkpoint: cp,
    });
    pollster::block_on(store.put(&cert.cid, &cert.bytes)).unwrap();
    assert_eq!(rule_of(&load_err(&store, &cert.cid)), Rule::Encoding);
}

#[test]
fn wrong_genesis_is_named() {
    let (c, _, _, _) = populated();
    let store = c.store();
    let other = Chain::new(2, Policy::default());
    let e = pollster::block_on(chain::load(
        &store,
        &c.state.head_pointer(),
        Some(&other.genesis.cid),
    ))
    .unwrap_err();
    assert!(
        matches!(e, Error::WrongGenesis { expected, found } if expected == other.genesis.cid && found == c.genesis.cid)
    );
}

#[test]
fn incremental_extension_verifies_only_the_new_blocks() {
    let (mut c, p, d, r) = populated();
    let base = c.state.clone();
    c.push(vec![c.publish(&p, 4, r, 2)]);
    c.push(vec![c.grant(&p, 5, r, 2, &d, Some(T0 + 1_000_000))]);
    let store = c.store();
    let (s, n) = pollster::block_on(chain::extend(
        &store,
        &base,
        &c.state.head_pointer(),
        T0 + 100,
    ))
    .unwrap();
    assert_eq!((n, s.head()), (2, c.state.head()));
    // Offering the base's own head is a no-op; offering an older head is refused.
    let (_, n) =
        pollster::block_on(chain::extend(&store, &s, &c.state.head_pointer(), T0)).unwrap();
    assert_eq!(n, 0);
    assert_rule(
        pollster::block_on(chain::extend(&store, &s, &base.head_pointer(), T0)),
        Rule::Parent,
    );
}

#[test]
fn submissions_apply_all_or_nothing() {
    let (c, p, d, r) = populated();
    // The second transaction breaks a rule: the whole submission is refused, nothing applied.
    let ok = c.publish(&p, 4, rid(8), 1);
    let bad = c.grant(&p, 5, r, 7, &d, None);
    let e = c
        .state
        .check_submission(&[ok.clone(), bad], T0 + 5)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Rejected {
            rule: Rule::Version,
            ..
        }
    ));
    assert!(c.state.record(&rid(8)).is_none());
    c.state.check_submission(&[ok], T0 + 5).unwrap();
    let _ = Purpose::Treatment;
}

/// A node's memo of signature checks (`accept_submission_with`) skips only work: every verdict
/// is the one `accept_submission` gives, a failed check (or any check of a refused submission)
/// is never remembered, and a key rotated since a check passed makes the same transaction fail.
#[test]
fn remembered_signature_checks_give_the_same_verdicts() {
    // One transaction submitted on a copy of `state`, through `memo`.
    fn submit(state: &State, tx: &SignedTx, memo: &mut VerifiedSignatures) -> Result<(), Error> {
        state
            .clone()
            .accept_submission_with(std::slice::from_ref(tx), T0 + 5, memo)
    }
    let (mut c, p, d, _) = populated();
    let mut memo = VerifiedSignatures::new(16);
    let first = c.publish(&p, 4, rid(8), 1);
    let second = c.publish(&p, 5, rid(9), 1);
    let both = [first.clone(), second.clone()];
    let mut st = c.state.clone();
    st.accept_submission_with(&both, T0 + 5, &mut memo).unwrap();
    assert_eq!((memo.len(), memo.hits()), (2, 0));
    // Met again (a re-check, then a proposal): same result, no verification.
    let mut again = c.state.clone();
    again
        .accept_submission_with(&both, T0 + 5, &mut memo)
        .unwrap();
    assert_eq!((memo.len(), memo.hits()), (2, 2));
    assert_eq!(again.state_root(), st.state_root());
    // Signed by the doctor in the patient's name: refused with the rule accept_submission
    // names, every time, and never remembered.
    let forged = SignedTx::sign(first.tx.clone(), &d).unwrap();
    for _ in 0..2 {
        let plain = c
            .state
            .clone()
            .accept_submission(std::slice::from_ref(&forged), T0 + 5);
        assert_rule(plain, Rule::TxSignature);
        assert_rule(submit(&c.state, &forged, &mut memo), Rule::TxSignature);
        assert_eq!((memo.len(), memo.hits()), (2, 2));
    }
    // A submission that breaks a rule after its signatures passed (a replayed sequence
    // number): none of its checks are kept.
    let replayed = c.publish(&p, 3, rid(12), 1);
    assert_rule(submit(&c.state, &replayed, &mut memo), Rule::Sequence);
    assert_eq!((memo.len(), memo.hits()), (2, 2));
    // The patient rotates their key at sequence 4: `second`, remembered as valid under the old
    // key, is now refused.
    let new = p.rotated().unwrap();
    let rotate = Tx {
        genesis: c.genesis.cid,
        author: p.id(),
        seq: 4,
        time: T0,
        body: TxBody::RotateKey {
            new_key: new.public().clone(),
        },
    };
    c.push(vec![SignedTx::sign_rotation(rotate, &p, &new).unwrap()]);
    assert_rule(submit(&c.state, &second, &mut memo), Rule::TxSignature);
    // Bounded: the oldest entry goes first, and is then verified again.
    let mut small = VerifiedSignatures::new(1);
    let (a, b) = (
        c.publish(&new, 5, rid(10), 1),
        c.publish(&new, 5, rid(11), 1),
    );
    for tx in [&a, &b, &a] {
        submit(&c.state, tx, &mut small).unwrap();
        assert_eq!(small.len(), 1);
    }
    assert_eq!(small.hits(), 0);
}

#[test]
fn a_transaction_has_one_encoding() {
    // A third party rewriting a field's form (the purpose code's case) would keep the
    // signature valid over the re-encoded fields but give the transaction another CID: refused.
    let (c, p, d, r) = populated();
    let tx = c.grant(&p, 4, r, 1, &d, None);
    assert!(SignedTx::decode(&tx.bytes).is_ok());
    let at = tx
        .bytes
        .windows(5)
        .position(|w| w == b"TREAT")
        .expect("the purpose code is in the bytes");
    let mut bytes = tx.bytes.clone();
    bytes[at..at + 5].copy_from_slice(b"treat");
    let err = SignedTx::decode(&bytes).unwrap_err();
    assert!(err.contains("canonical"), "{err}");
    let _ = Purpose::Treatment;
}
