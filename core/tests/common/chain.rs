//! Builds chains by hand for the rule tests: blocks, certificates and transactions signed with
//! real fixture keys, applied to a [`State`] or stored for a verifier to load.
#![allow(dead_code)]

use medshare::cid::Cid;
use medshare::envelope::DataKey;
use medshare::ledger::checkpoint::{Certificate, sign_share};
use medshare::ledger::{
    AuthorityKey, Block, CertificateObject, Endorsement, Genesis, GenesisBlock, Policy, SignedTx,
    State, Tx, TxBody,
};
use medshare::{Error, Identity, Purpose, RecordId, Rule, Store};

use super::identity;

pub struct Chain {
    pub authorities: Vec<Identity>,
    pub genesis: GenesisBlock,
    pub state: State,
    /// Every stored object: genesis, blocks, transactions, certificates.
    pub objects: Vec<(Cid, Vec<u8>)>,
    pub time: u64,
}

pub const T0: u64 = 1_700_000_000;

impl Chain {
    /// A network of `n` fixture authorities (1..=4) and `policy`.
    pub fn new(n: usize, policy: Policy) -> Chain {
        Chain::with_nonce(n, policy, [7; 16])
    }

    /// The same with another genesis nonce: another network with the same authorities.
    pub fn with_nonce(n: usize, policy: Policy, nonce: [u8; 16]) -> Chain {
        let names = ["authority", "authority2", "authority3", "authority4"];
        let authorities: Vec<Identity> = names[..n].iter().map(|a| identity(a)).collect();
        let genesis = GenesisBlock::new(Genesis {
            network: "test-net".into(),
            time: T0,
            nonce,
            authorities: authorities
                .iter()
                .map(|a| AuthorityKey {
                    key: a.public().clone(),
                    validator: None,
                })
                .collect(),
            policy,
        });
        let state = State::from_genesis(&genesis).unwrap();
        Chain {
            authorities,
            objects: vec![(genesis.cid, genesis.bytes.clone())],
            genesis,
            state,
            time: T0,
        }
    }

    /// A second chain sharing this one's history so far (to build a fork on).
    pub fn clone_for_fork(&self) -> Chain {
        let names = ["authority", "authority2", "authority3", "authority4"];
        Chain {
            authorities: names[..self.authorities.len()]
                .iter()
                .map(|a| identity(a))
                .collect(),
            genesis: self.genesis.clone(),
            state: self.state.clone(),
            objects: self.objects.clone(),
            time: self.time,
        }
    }

    pub fn one() -> Chain {
        Chain::new(1, Policy::default())
    }

    pub fn tx(&self, author: &Identity, seq: u64, body: TxBody) -> SignedTx {
        SignedTx::sign(
            Tx {
                genesis: self.genesis.cid,
                author: author.id(),
                seq,
                time: self.time,
                body,
            },
            author,
        )
        .unwrap()
    }

    pub fn next_seq(&self, who: &Identity) -> u64 {
        self.state.last_seq(&who.id()) + 1
    }

    pub fn reg_patient(&self, p: &Identity) -> SignedTx {
        self.tx(
            p,
            1,
            TxBody::RegisterPatient {
                key: p.public().clone(),
            },
        )
    }

    pub fn endorse(&self, d: &Identity, licence: &str) -> Endorsement {
        Endorsement::sign(&self.authorities[0], &self.genesis.cid, &d.id(), licence).unwrap()
    }

    pub fn reg_doctor(&self, d: &Identity) -> SignedTx {
        let e = self.endorse(d, "GMC-1");
        self.tx(
            d,
            1,
            TxBody::RegisterDoctor {
                key: d.public().clone(),
                licence: e.licence,
                authority: e.authority,
                endorsement: e.signature,
            },
        )
    }

    pub fn publish(&self, p: &Identity, seq: u64, record: RecordId, version: u32) -> SignedTx {
        let dek = DataKey::from_bytes([version as u8; 32]);
        self.tx(
            p,
            seq,
            TxBody::PublishRecord {
                record,
                version,
                content: Cid::v1(medshare::cid::RAW, &[version as u8; 3]),
                size: 1000,
                commitment: dek.commitment(&[0; 32]),
                owner_key: dek.wrap(p.public(), &record, version).unwrap(),
            },
        )
    }

    pub fn grant(
        &self,
        p: &Identity,
        seq: u64,
        record: RecordId,
        version: u32,
        d: &Identity,
        expires: Option<u64>,
    ) -> SignedTx {
        let dek = DataKey::from_bytes([version as u8; 32]);
        self.tx(
            p,
            seq,
            TxBody::Grant {
                record,
                version,
                doctor: d.id(),
                wrapped_key: dek.wrap(d.public(), &record, version).unwrap(),
                expires,
                purpose: Purpose::Treatment,
                note: None,
            },
        )
    }

    /// The next block for `txs` (not applied).
    pub fn block(&mut self, txs: &[SignedTx]) -> Block {
        self.time += 1;
        self.state.next_block(txs, self.time)
    }

    /// The certificate of the state's head signed by the first `k` authorities.
    pub fn certify_head(&self, state: &State, k: usize) -> CertificateObject {
        let cp = state.checkpoint();
        CertificateObject::new(Certificate {
            signatures: self.authorities[..k]
                .iter()
                .map(|a| sign_share(&cp, a).unwrap())
                .collect(),
            checkpoint: cp,
        })
    }

    /// Applies `txs` as the next block, certified by every authority.
    pub fn push(&mut self, txs: Vec<SignedTx>) -> Block {
        let block = self.block(&txs);
        self.state.apply_block(&block, &txs).unwrap();
        let cert = self.certify_head(&self.state, self.authorities.len());
        self.state.apply_certificate(&cert).unwrap();
        for t in &txs {
            self.objects.push((t.cid, t.bytes.clone()));
        }
        self.objects.push((block.cid, block.bytes.clone()));
        self.objects.push((cert.cid, cert.bytes.clone()));
        block
    }

    /// What applying `txs` as the next block does (on a copy).
    pub fn try_block(&mut self, txs: &[SignedTx]) -> Result<State, Error> {
        let block = self.block(txs);
        let mut s = self.state.clone();
        s.apply_block(&block, txs).map(|()| s)
    }

    /// A store holding every object, its head at the chain's head pointer.
    pub fn store(&self) -> Store {
        let store = Store::memory();
        pollster::block_on(async {
            for (cid, bytes) in &self.objects {
                store.put(cid, bytes).await.unwrap();
            }
            store
                .compare_and_swap_head(None, Some(&self.state.head_pointer()))
                .await
                .unwrap();
        });
        store
    }
}

/// The rule an error names.
pub fn rule_of(e: &Error) -> Rule {
    e.rule().unwrap_or_else(|| panic!("not a rule error: {e}"))
}

#[track_caller]
pub fn assert_rule<T: std::fmt::Debug>(r: Result<T, Error>, rule: Rule) {
    match r {
        Err(e) => assert_eq!(rule_of(&e), rule, "{e}"),
        Ok(v) => panic!("expected rule {rule}, got {v:?}"),
    }
}
