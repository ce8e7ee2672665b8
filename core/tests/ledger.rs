//! One test per ledger rule: a forged or broken chain that must be rejected with exactly that
//! rule, checked both by full replay (`State`) and through a store (`Vault::open`, `sync`).

mod common;

use common::{identity, key};
use medshare::cid::Cid;
use medshare::envelope::RecordId;
use medshare::ledger::{
    Block, BlockHeader, Genesis, Policy, Rule, SignedTx, State, Tx, TxBody, endorsement_message,
    merkle_root,
};
use medshare::store::BlockStore;
use medshare::store::memory::MemoryStore;
use medshare::{Error, Identity, IdentityId, Role, Store, Vault};
use pollster::block_on;
use proptest::prelude::*;

const T0: u64 = 1_700_000_000;
const NOW: u64 = T0 + 1_000;

struct Chain {
    authority: Identity,
    state: State,
    blocks: Vec<Block>,
    txs: Vec<Vec<SignedTx>>,
}

fn genesis_with(policy: Policy) -> Chain {
    genesis_by(identity("authority"), policy)
}

fn genesis_by(authority: Identity, policy: Policy) -> Chain {
    let header = BlockHeader {
        network: "net".into(),
        height: 0,
        parent: None,
        time: T0,
        txs: vec![],
        merkle: merkle_root(&[]),
        sealer: authority.id(),
        genesis: Some(Genesis {
            network: "net".into(),
            authorities: vec![authority.public().clone()],
            policy,
        }),
    };
    let g = Block::seal(header, &authority).unwrap();
    let state = State::from_genesis(&g, NOW).unwrap();
    Chain {
        authority,
        state,
        blocks: vec![g],
        txs: vec![vec![]],
    }
}

impl Chain {
    fn new() -> Chain {
        genesis_with(Policy::default())
    }

    /// A correctly sealed next block holding `txs`, after `tweak` edits its header.
    fn block(&self, txs: &[SignedTx], tweak: impl FnOnce(&mut BlockHeader)) -> Block {
        let cids: Vec<Cid> = txs.iter().map(|t| t.cid).collect();
        let mut h = BlockHeader {
            network: "net".into(),
            height: self.state.height() + 1,
            parent: Some(self.state.head()),
            time: self.state.time() + 1,
            merkle: merkle_root(&cids),
            txs: cids,
            sealer: self.authority.id(),
            genesis: None,
        };
        tweak(&mut h);
        Block::seal(h, &self.authority).unwrap()
    }

    fn push(&mut self, txs: Vec<SignedTx>) {
        let b = self.block(&txs, |_| {});
        self.state.apply_block(&b, &txs, NOW).unwrap();
        self.blocks.push(b);
        self.txs.push(txs);
    }

    fn reject(&self, block: &Block, txs: &[SignedTx]) -> (Rule, Option<usize>) {
        match self.state.clone().apply_block(block, txs, NOW) {
            Err(Error::InvalidChain {
                rule, tx, height, ..
            }) => {
                assert_eq!(height, block.header.height);
                (rule, tx)
            }
            other => panic!("expected a rule violation, got {other:?}"),
        }
    }

    fn reject_txs(&self, txs: Vec<SignedTx>) -> (Rule, Option<usize>) {
        let b = self.block(&txs, |_| {});
        self.reject(&b, &txs)
    }
}

fn tx(author: &Identity, seq: u64, body: TxBody) -> SignedTx {
    SignedTx::sign(
        Tx {
            author: author.id(),
            seq,
            time: T0,
            body,
        },
        author,
    )
    .unwrap()
}

fn reg_patient(p: &Identity) -> SignedTx {
    tx(
        p,
        1,
        TxBody::RegisterPatient {
            key: p.public().clone(),
        },
    )
}

fn reg_doctor(d: &Identity, auth: &Identity) -> SignedTx {
    let endorsement = auth.sign(&endorsement_message(&d.id(), "L-1")).unwrap();
    tx(
        d,
        1,
        TxBody::RegisterDoctor {
            key: d.public().clone(),
            licence: "L-1".into(),
            authority: auth.id(),
            endorsement,
        },
    )
}

fn publish(p: &Identity, seq: u64, record: RecordId, version: u32) -> SignedTx {
    tx(
        p,
        seq,
        TxBody::PublishRecord {
            record,
            version,
            content: Cid::dag_cbor(b"c"),
            size: 10,
            wrapped_key: vec![1; 256],
        },
    )
}

fn grant(
    p: &Identity,
    seq: u64,
    record: RecordId,
    doctor: IdentityId,
    expires: Option<u64>,
) -> SignedTx {
    tx(
        p,
        seq,
        TxBody::Grant {
            record,
            version: 1,
            doctor,
            wrapped_key: vec![2; 256],
            expires,
            purpose: None,
        },
    )
}

/// A chain with a registered patient and doctor and one published record.
fn populated() -> (Chain, Identity, Identity, RecordId) {
    let mut c = Chain::new();
    let (p, d) = (identity("patient"), identity("doctor"));
    let r = RecordId::from_bytes([9; 16]);
    c.push(vec![
        reg_patient(&p),
        reg_doctor(&d, &c.authority.clone_for_test()),
    ]);
    c.push(vec![publish(&p, 2, r, 1)]);
    (c, p, d, r)
}

trait CloneForTest {
    fn clone_for_test(&self) -> Identity;
}

impl CloneForTest for Identity {
    fn clone_for_test(&self) -> Identity {
        Identity::from_pkcs8_pem(self.role(), self.name(), key(self.name())).unwrap()
    }
}

// ---- block rules ----------------------------------------------------------------------------

#[test]
fn rule_genesis() {
    let a = identity("authority");
    let mut h = BlockHeader {
        network: "net".into(),
        height: 0,
        parent: None,
        time: T0,
        txs: vec![],
        merkle: merkle_root(&[]),
        sealer: a.id(),
        genesis: Some(Genesis {
            network: "net".into(),
            authorities: vec![],
            policy: Policy::default(),
        }),
    };
    let b = Block::seal(h.clone(), &a).unwrap();
    assert!(matches!(
        State::from_genesis(&b, NOW),
        Err(Error::InvalidChain {
            height: 0,
            rule: Rule::Genesis,
            ..
        })
    ));
    h.genesis = None;
    let b = Block::seal(h, &a).unwrap();
    assert!(matches!(
        State::from_genesis(&b, NOW),
        Err(Error::InvalidChain {
            rule: Rule::Genesis,
            ..
        })
    ));
    // A second genesis section later on.
    let c = Chain::new();
    let g = c.blocks[0].header.genesis.clone();
    let b = c.block(&[], |h| h.genesis = g);
    assert_eq!(c.reject(&b, &[]), (Rule::Genesis, None));
}

#[test]
fn rule_network() {
    let c = Chain::new();
    let b = c.block(&[], |h| h.network = "other".into());
    assert_eq!(c.reject(&b, &[]), (Rule::Network, None));
}

#[test]
fn rule_parent() {
    let c = Chain::new();
    let b = c.block(&[], |h| h.parent = Some(Cid::dag_cbor(b"elsewhere")));
    assert_eq!(c.reject(&b, &[]), (Rule::Parent, None));
}

#[test]
fn rule_height() {
    let c = Chain::new();
    let b = c.block(&[], |h| h.height = 5);
    assert_eq!(c.reject(&b, &[]), (Rule::Height, None));
}

#[test]
fn rule_timestamp_order() {
    let c = Chain::new();
    let b = c.block(&[], |h| h.time = T0 - 1);
    assert_eq!(c.reject(&b, &[]), (Rule::TimestampOrder, None));
}

#[test]
fn rule_timestamp_future() {
    let c = Chain::new();
    let b = c.block(&[], |h| h.time = NOW + 301);
    assert_eq!(c.reject(&b, &[]), (Rule::TimestampFuture, None));
    let ok = c.block(&[], |h| h.time = NOW + 300);
    c.state.clone().apply_block(&ok, &[], NOW).unwrap();
}

#[test]
fn rule_sealer() {
    let c = Chain::new();
    let d = identity("doctor");
    let mut h = c.block(&[], |_| {}).header;
    h.sealer = d.id();
    let b = Block::seal(h, &d).unwrap();
    assert_eq!(c.reject(&b, &[]), (Rule::Sealer, None));
}

#[test]
fn rule_seal_signature() {
    let c = Chain::new();
    let b = c.block(&[], |_| {});
    let mut sig = b.sig.clone();
    sig[0] ^= 1;
    let forged = Block::assemble(b.header.clone(), sig);
    assert_eq!(c.reject(&forged, &[]), (Rule::SealSignature, None));
    // A valid signature by someone else under the authority's name.
    let other = Block::assemble(
        b.header.clone(),
        identity("doctor")
            .sign(&Block::signing_bytes(&b.header))
            .unwrap(),
    );
    assert_eq!(c.reject(&other, &[]), (Rule::SealSignature, None));
}

#[test]
fn rule_merkle_root() {
    let c = Chain::new();
    let t = reg_patient(&identity("patient"));
    let b = c.block(std::slice::from_ref(&t), |h| h.merkle = [0; 32]);
    assert_eq!(c.reject(&b, &[t]), (Rule::MerkleRoot, None));
}

#[test]
fn rule_limits() {
    let c = genesis_with(Policy {
        max_txs_per_block: 1,
        ..Policy::default()
    });
    let txs = vec![
        reg_patient(&identity("patient")),
        reg_patient(&identity("doctor2")),
    ];
    assert_eq!(c.reject_txs(txs), (Rule::Limits, None));
}

#[test]
fn rule_cid_links() {
    let c = Chain::new();
    let t = reg_patient(&identity("patient"));
    let b = c.block(std::slice::from_ref(&t), |_| {});
    // The block links one transaction; a different one is presented.
    assert_eq!(
        c.reject(&b, &[reg_patient(&identity("doctor2"))]),
        (Rule::Cid, None)
    );
}

// ---- transaction rules ------------------------------------------------------------------------

#[test]
fn rule_unknown_author() {
    let c = Chain::new();
    let p = identity("patient");
    assert_eq!(
        c.reject_txs(vec![publish(&p, 2, RecordId::from_bytes([1; 16]), 1)]),
        (Rule::UnknownAuthor, Some(0))
    );
}

#[test]
fn rule_tx_signature() {
    let (c, p, _, r) = populated();
    let good = publish(&p, 3, r, 2);
    let forged = SignedTx::assemble(
        good.tx.clone(),
        identity("doctor")
            .sign(&SignedTx::signing_bytes(&good.tx))
            .unwrap(),
        None,
    );
    assert_eq!(c.reject_txs(vec![forged]), (Rule::TxSignature, Some(0)));
    // Registration signed by another key than the one registered.
    let p2 = identity("doctor2");
    let t = Tx {
        author: p2.id(),
        seq: 1,
        time: T0,
        body: TxBody::RegisterPatient {
            key: p2.public().clone(),
        },
    };
    let bad = SignedTx::sign(t, &p).unwrap();
    assert_eq!(c.reject_txs(vec![bad]), (Rule::TxSignature, Some(0)));
}

#[test]
fn rule_sequence_replay() {
    let (c, p, d, r) = populated();
    // Replaying the publish of block 2 verbatim in a new block.
    let replay = c.txs[2][0].clone();
    assert_eq!(c.reject_txs(vec![replay]), (Rule::Sequence, Some(0)));
    // Same sequence twice in one block: the second is the offender.
    let g1 = grant(&p, 3, r, d.id(), None);
    let g2 = tx(
        &p,
        3,
        TxBody::Revoke {
            record: r,
            doctor: d.id(),
        },
    );
    assert_eq!(c.reject_txs(vec![g1, g2]), (Rule::Sequence, Some(1)));
}

#[test]
fn rule_registration() {
    let strong = Identity::from_pkcs8_pem(Role::Authority, "a3072", key("doctor3072")).unwrap();
    let c = genesis_by(
        strong,
        Policy {
            min_key_bits: 3072,
            ..Policy::default()
        },
    );
    assert_eq!(
        c.reject_txs(vec![reg_patient(&identity("patient"))]),
        (Rule::Registration, Some(0))
    );
    // Author field naming another id than the key's.
    let c = Chain::new();
    let p = identity("patient");
    let t = Tx {
        author: identity("doctor").id(),
        seq: 1,
        time: T0,
        body: TxBody::RegisterPatient {
            key: p.public().clone(),
        },
    };
    assert_eq!(
        c.reject_txs(vec![SignedTx::sign(t, &p).unwrap()]),
        (Rule::Registration, Some(0))
    );
}

#[test]
fn rule_duplicate_registration() {
    let (c, p, _, _) = populated();
    assert_eq!(
        c.reject_txs(vec![reg_patient(&p)]),
        (Rule::DuplicateRegistration, Some(0))
    );
}

#[test]
fn rule_endorsement() {
    let c = Chain::new();
    let d = identity("doctor2");
    // Endorsed by a non-authority.
    assert_eq!(
        c.reject_txs(vec![reg_doctor(&d, &identity("patient"))]),
        (Rule::Endorsement, Some(0))
    );
    // Endorsement for another licence than the one claimed.
    let endorsement = c
        .authority
        .sign(&endorsement_message(&d.id(), "L-1"))
        .unwrap();
    let t = tx(
        &d,
        1,
        TxBody::RegisterDoctor {
            key: d.public().clone(),
            licence: "L-2".into(),
            authority: c.authority.id(),
            endorsement,
        },
    );
    assert_eq!(c.reject_txs(vec![t]), (Rule::Endorsement, Some(0)));
}

#[test]
fn rule_role() {
    let (c, _, d, _) = populated();
    assert_eq!(
        c.reject_txs(vec![publish(&d, 2, RecordId::from_bytes([3; 16]), 1)]),
        (Rule::Role, Some(0))
    );
}

#[test]
fn rule_not_owner() {
    let (mut c, _, d, r) = populated();
    let p2 = identity("doctor3072");
    let p2 = Identity::from_pkcs8_pem(Role::Patient, "p2", key("doctor3072")).unwrap_or(p2);
    c.push(vec![reg_patient(&p2)]);
    assert_eq!(
        c.reject_txs(vec![grant(&p2, 2, r, d.id(), None)]),
        (Rule::NotOwner, Some(0))
    );
    assert_eq!(
        c.reject_txs(vec![publish(&p2, 2, r, 2)]),
        (Rule::NotOwner, Some(0))
    );
    assert_eq!(
        c.reject_txs(vec![tx(
            &p2,
            2,
            TxBody::Revoke {
                record: r,
                doctor: d.id()
            }
        )]),
        (Rule::NotOwner, Some(0))
    );
}

#[test]
fn rule_version() {
    let (c, p, d, r) = populated();
    assert_eq!(
        c.reject_txs(vec![publish(&p, 3, r, 3)]),
        (Rule::Version, Some(0))
    );
    assert_eq!(
        c.reject_txs(vec![publish(&p, 3, RecordId::from_bytes([4; 16]), 2)]),
        (Rule::Version, Some(0))
    );
    let t = tx(
        &p,
        3,
        TxBody::Grant {
            record: r,
            version: 9,
            doctor: d.id(),
            wrapped_key: vec![1; 256],
            expires: None,
            purpose: None,
        },
    );
    assert_eq!(c.reject_txs(vec![t]), (Rule::Version, Some(0)));
}

#[test]
fn rule_grantee() {
    let (c, p, _, r) = populated();
    assert_eq!(
        c.reject_txs(vec![grant(&p, 3, r, identity("doctor2").id(), None)]),
        (Rule::Grantee, Some(0))
    );
    // A patient is not a doctor.
    assert_eq!(
        c.reject_txs(vec![grant(&p, 3, r, p.id(), None)]),
        (Rule::Grantee, Some(0))
    );
}

#[test]
fn rule_expiry() {
    let (c, p, d, r) = populated();
    let block_time = c.state.time() + 1;
    assert_eq!(
        c.reject_txs(vec![grant(&p, 3, r, d.id(), Some(block_time))]),
        (Rule::Expiry, Some(0))
    );
}

#[test]
fn rule_not_granted() {
    let (c, p, d, r) = populated();
    assert_eq!(
        c.reject_txs(vec![tx(
            &p,
            3,
            TxBody::Revoke {
                record: r,
                doctor: d.id()
            }
        )]),
        (Rule::NotGranted, Some(0))
    );
}

#[test]
fn rule_key_rotation() {
    let (mut c, p, _, r) = populated();
    let new = Identity::from_pkcs8_pem(Role::Patient, "p", key("doctor3072")).unwrap();
    let t = Tx {
        author: p.id(),
        seq: 3,
        time: T0,
        body: TxBody::RotateKey {
            new_key: new.public().clone(),
        },
    };
    // Co-signed by the wrong key.
    let bad = SignedTx::sign_rotation(t.clone(), &p, &identity("doctor2")).unwrap();
    assert_eq!(c.reject_txs(vec![bad]), (Rule::KeyRotation, Some(0)));
    // Rotating to a key already registered to someone else.
    let taken = Tx {
        body: TxBody::RotateKey {
            new_key: identity("doctor").public().clone(),
        },
        ..t.clone()
    };
    assert_eq!(
        c.reject_txs(vec![
            SignedTx::sign_rotation(taken, &p, &identity("doctor")).unwrap()
        ]),
        (Rule::KeyRotation, Some(0))
    );
    // A proper rotation: afterwards the old key no longer signs for the patient.
    c.push(vec![SignedTx::sign_rotation(t, &p, &new).unwrap()]);
    assert_eq!(
        c.reject_txs(vec![publish(&p, 4, r, 2)]),
        (Rule::TxSignature, Some(0))
    );
    let by_new = SignedTx::sign(
        Tx {
            author: p.id(),
            seq: 4,
            time: T0,
            body: publish(&p, 4, r, 2).tx.body,
        },
        &new,
    )
    .unwrap();
    c.push(vec![by_new]);
}

// ---- through a store: encoding, CIDs, incremental import, tampering -----------------------------

fn store_chain(c: &Chain) -> (Store, std::sync::Arc<MemoryStore>) {
    let backend = std::sync::Arc::new(MemoryStore::default());
    let store = Store::from_arc(backend.clone());
    block_on(async {
        for (b, txs) in c.blocks.iter().zip(&c.txs) {
            for t in txs {
                store.put(&t.cid, &t.bytes).await.unwrap();
            }
            store.put(&b.cid, &b.bytes).await.unwrap();
        }
        store
            .compare_and_swap_head(None, Some(&c.blocks.last().unwrap().cid))
            .await
            .unwrap();
    });
    (store, backend)
}

fn open_err(store: Store) -> Error {
    match block_on(Vault::open(store, None)) {
        Ok(_) => panic!("a broken chain opened"),
        Err(e) => e,
    }
}

#[test]
fn well_formed_chain_opens() {
    let (c, ..) = populated();
    let (store, _) = store_chain(&c);
    let v = block_on(Vault::open(store, None)).unwrap();
    assert_eq!(v.state().height(), 2);
}

#[test]
fn rule_encoding_non_canonical_cbor() {
    let (c, ..) = populated();
    let (store, backend) = store_chain(&c);
    // Re-encode the head block with a non-minimal integer for "v" (1 as 0x18 0x01).
    let head = c.blocks.last().unwrap();
    let pos = head
        .bytes
        .windows(3)
        .position(|w| w == [0x61, b'v', 0x01])
        .unwrap();
    let mut bad = head.bytes[..pos + 2].to_vec();
    bad.extend_from_slice(&[0x18, 0x01]);
    bad.extend_from_slice(&head.bytes[pos + 3..]);
    let cid = Cid::dag_cbor(&bad);
    block_on(backend.put(&cid, &bad)).unwrap();
    block_on(store.compare_and_swap_head(Some(&head.cid), Some(&cid))).unwrap();
    match open_err(store) {
        // The head could not be decoded, so its height is unknown.
        Error::InvalidChain {
            rule: Rule::Encoding,
            height: u64::MAX,
            tx: None,
            detail,
        } => {
            assert!(detail.contains(&cid.to_string()), "{detail}");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn rule_encoding_of_a_transaction() {
    let (mut c, ..) = populated();
    // A sealed block linking an object that is canonical CBOR but not a transaction.
    let junk = vec![0xa1, 0x61, b'x', 0x01];
    let junk_cid = Cid::dag_cbor(&junk);
    let fake = SignedTx {
        bytes: junk.clone(),
        cid: junk_cid,
        ..reg_patient(&identity("doctor2"))
    };
    let b = c.block(std::slice::from_ref(&fake), |_| {});
    c.blocks.push(b);
    c.txs.push(vec![]);
    let (store, _) = store_chain(&c);
    block_on(store.put(&junk_cid, &junk)).unwrap();
    match open_err(store) {
        Error::InvalidChain {
            rule: Rule::Encoding,
            height: 3,
            tx: Some(0),
            ..
        } => {}
        e => panic!("{e:?}"),
    }
}

#[test]
fn rule_cid_of_a_transaction() {
    let (c, ..) = populated();
    let (store, backend) = store_chain(&c);
    let t = &c.txs[2][0];
    block_on(backend.delete(&t.cid)).unwrap();
    block_on(backend.put(&t.cid, &[0xa0])).unwrap();
    match open_err(store) {
        Error::InvalidChain {
            rule: Rule::Cid,
            height: 2,
            tx: Some(0),
            ..
        } => {}
        e => panic!("{e:?}"),
    }
}

#[test]
fn rule_cid_stored_bytes_differ() {
    let (c, ..) = populated();
    let (store, backend) = store_chain(&c);
    let b = &c.blocks[1];
    let mut bytes = b.bytes.clone();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    block_on(backend.delete(&b.cid)).unwrap();
    block_on(backend.put(&b.cid, &bytes)).unwrap();
    match open_err(store) {
        Error::InvalidChain {
            rule: Rule::Cid,
            height: 1,
            ..
        } => {}
        e => panic!("{e:?}"),
    }
}

#[test]
fn incremental_import_of_a_block_made_elsewhere() {
    block_on(async {
        let mut writer = Vault::create(
            Store::memory(),
            "n",
            identity("authority"),
            Policy::default(),
        )
        .await
        .unwrap();
        let mut reader = Vault::open(writer.store().clone(), None).await.unwrap();
        writer.register(&identity("patient"), None).await.unwrap();
        writer
            .register(&identity("doctor"), Some("L"))
            .await
            .unwrap();
        assert_eq!(reader.sync().await.unwrap(), 2);
        assert_eq!(reader.state().head(), writer.state().head());
        // A block forged elsewhere (sealed by a non-authority) is refused on import.
        let d = identity("doctor2");
        let t = reg_patient(&d);
        let h = BlockHeader {
            network: reader.state().genesis().network.clone(),
            height: reader.state().height() + 1,
            parent: Some(reader.state().head()),
            time: reader.state().time(),
            txs: vec![t.cid],
            merkle: merkle_root(&[t.cid]),
            sealer: d.id(),
            genesis: None,
        };
        let forged = Block::seal(h, &d).unwrap();
        let store = reader.store().clone();
        store.put(&t.cid, &t.bytes).await.unwrap();
        store.put(&forged.cid, &forged.bytes).await.unwrap();
        store
            .compare_and_swap_head(Some(&reader.state().head()), Some(&forged.cid))
            .await
            .unwrap();
        match reader.sync().await {
            Err(Error::InvalidChain {
                rule: Rule::Sealer,
                height: 3,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // The reader's state is unchanged by the refused block.
        assert_eq!(reader.state().height(), 2);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any single flipped byte in any stored block or transaction is detected on open.
    #[test]
    fn any_flipped_byte_is_detected(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (c, ..) = populated();
        let mut objects: Vec<(Cid, Vec<u8>)> = c.blocks.iter().map(|b| (b.cid, b.bytes.clone())).collect();
        for txs in &c.txs {
            objects.extend(txs.iter().map(|t| (t.cid, t.bytes.clone())));
        }
        let (cid, mut bytes) = objects[which.index(objects.len())].clone();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let (store, backend) = store_chain(&c);
        block_on(backend.delete(&cid)).unwrap();
        block_on(backend.put(&cid, &bytes)).unwrap();
        let detected = matches!(open_err(store), Error::InvalidChain { rule: Rule::Cid, .. });
        prop_assert!(detected);
    }
}

/// Signatures are verified in parallel batches, after the other rules; the error reported must
/// still be the first one in chain order. Here a forged transaction signature at height 70 comes
/// before a bad Merkle root at height 140, in a chain long enough for several batches.
#[test]
fn parallel_verification_reports_the_first_error_in_chain_order() {
    let (mut c, p, ..) = populated();
    for i in 0..150u32 {
        let r = RecordId::from_bytes([100 + i as u8; 16]);
        let seq = 3 + u64::from(i);
        c.push(vec![publish(&p, seq, r, 1)]);
    }
    // Forge the signature at height 70, then re-seal every block from there so the links and
    // seals stay valid; break the Merkle root of the block at height 140 on the way.
    let forged_height = 70usize;
    let t = &c.txs[forged_height][0];
    let forged = SignedTx::assemble(
        t.tx.clone(),
        identity("doctor")
            .sign(&SignedTx::signing_bytes(&t.tx))
            .unwrap(),
        None,
    );
    c.txs[forged_height][0] = forged;
    for h in forged_height..c.blocks.len() {
        let cids: Vec<Cid> = c.txs[h].iter().map(|t| t.cid).collect();
        let mut header = c.blocks[h].header.clone();
        header.parent = Some(c.blocks[h - 1].cid);
        header.merkle = if h == 140 {
            [0; 32]
        } else {
            merkle_root(&cids)
        };
        header.txs = cids;
        c.blocks[h] = Block::seal(header, &c.authority).unwrap();
    }
    let (store, _) = store_chain(&c);
    match open_err(store) {
        Error::InvalidChain {
            rule: Rule::TxSignature,
            height,
            tx: Some(0),
            ..
        } => assert_eq!(height, forged_height as u64),
        e => panic!("{e:?}"),
    }
}

/// `check_unsigned` (the vault's refusal before any work) skips only the transaction's own
/// signature: a doctor registration whose authority endorsement does not verify is refused.
#[test]
fn check_unsigned_still_checks_the_endorsement() {
    let c = Chain::new();
    let d = identity("doctor");
    let forged = identity("doctor2")
        .sign(&endorsement_message(&d.id(), "L-1"))
        .unwrap();
    let t = Tx {
        author: d.id(),
        seq: 1,
        time: T0,
        body: TxBody::RegisterDoctor {
            key: d.public().clone(),
            licence: "L-1".into(),
            authority: c.authority.id(),
            endorsement: forged,
        },
    };
    match c.state.check_unsigned(&t, T0 + 10) {
        Err(Error::Rejected {
            rule: Rule::Endorsement,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let good = reg_doctor(&d, &c.authority);
    c.state.check_unsigned(&good.tx, T0 + 10).unwrap();
}
