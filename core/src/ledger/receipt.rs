//! Receipts: a few kilobytes that prove one transaction (a grant, a revocation, a publication)
//! is in a network's certified log, to someone who holds neither the chain nor a node, only
//! the network's genesis CID.
//!
//! A receipt holds the transaction, its RFC 6962 inclusion proof in the transaction log, and
//! the certificate (a C2SP signed checkpoint) of a block whose log contains it. The verifier
//! learns the authorities from the genesis block (in the receipt, checked against the genesis
//! CID it is given) and from the authority votes since, each with its own inclusion proof in
//! the same log, replayed with the ledger's own voting rule; the certificate must then carry
//! signatures of more than two thirds of the authorities in effect. `docs/FORMAT.md` §11.

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::IdentityId;
use crate::ledger::checkpoint::Certificate;
use crate::ledger::codec::{GenesisBlock, SignedTx, TxBody};
use crate::ledger::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::ledger::state::State;

/// The `format` of a receipt.
pub const RECEIPT_FORMAT: &str = "medshare-receipt/1";
/// The largest receipt text accepted.
pub const MAX_RECEIPT: usize = 1 << 20;
/// At most this many authority votes in a receipt.
pub const MAX_VOTES: usize = 4096;

/// A transaction with its place in the log: leaf `index` and the inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenTx {
    /// The signed transaction's bytes (DAG-CBOR).
    #[serde(with = "crate::serde_util::b64")]
    pub tx: Vec<u8>,
    /// Its leaf index in the log.
    pub index: u64,
    /// Its RFC 6962 inclusion proof, leaf to root (base64 hashes).
    pub proof: Vec<ProofHash>,
}

/// One 32-byte hash of an inclusion proof (base64 in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ProofHash(#[serde(with = "crate::serde_util::b64_32")] pub Hash);

/// A self-contained proof of one transaction (JSON, `docs/FORMAT.md` §11).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`RECEIPT_FORMAT`].
    pub format: String,
    /// The network's genesis CID.
    pub genesis: Cid,
    /// The genesis block (names the first authorities).
    #[serde(with = "crate::serde_util::b64")]
    pub genesis_block: Vec<u8>,
    /// Every authority vote in the log up to the checkpoint, in log order.
    pub authority_votes: Vec<ProvenTx>,
    /// The transaction proven.
    pub transaction: ProvenTx,
    /// The certificate of the checkpoint the proofs lead to (signed note text).
    pub certificate: String,
}

/// What a verified receipt proves.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptFacts {
    /// The network.
    pub genesis: Cid,
    /// Its name.
    pub network: String,
    /// The transaction's CID.
    pub tx: Cid,
    /// Its type (`Grant`, `Revoke`, `PublishRecord`, …).
    pub kind: String,
    /// Its author (account id).
    pub author: IdentityId,
    /// The author's signing time (unix seconds, the author's clock).
    pub time: u64,
    /// The record concerned, if any.
    pub record: Option<String>,
    /// The doctor concerned (grants, revocations).
    pub doctor: Option<IdentityId>,
    /// The record version (publications, grants).
    pub version: Option<u32>,
    /// The purpose code (grants).
    pub purpose: Option<String>,
    /// The grant's expiry (grants).
    pub expires: Option<u64>,
    /// Its leaf index in the log.
    pub index: u64,
    /// The log size of the checkpoint.
    pub log_size: u64,
    /// The certified block the checkpoint ends at.
    pub height: u64,
    /// That block's CID.
    pub block: Cid,
    /// The authorities whose signatures verified.
    pub signers: Vec<IdentityId>,
    /// The authorities in effect at the checkpoint.
    pub authorities: usize,
}

impl Receipt {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses the JSON text (not verified: [`Receipt::verify`]).
    pub fn from_json(text: &str) -> Result<Receipt> {
        if text.len() > MAX_RECEIPT {
            return Err(Error::TooLarge {
                what: "receipt",
                size: text.len() as u64,
                limit: MAX_RECEIPT as u64,
            });
        }
        let r: Receipt = serde_json::from_str(text)
            .map_err(|e| Error::InvalidProof(format!("not a medshare receipt: {e}")))?;
        if r.format != RECEIPT_FORMAT {
            return Err(Error::InvalidProof(format!(
                "receipt format `{}`, this verifier reads {RECEIPT_FORMAT}",
                crate::text::escape(&r.format)
            )));
        }
        if r.authority_votes.len() > MAX_VOTES {
            return Err(Error::InvalidProof("too many authority votes".into()));
        }
        Ok(r)
    }

    /// Checks the receipt against the network `genesis` with nothing else: the genesis block,
    /// every authority vote (signature, inclusion, the voting rule), the certificate's quorum,
    /// and the transaction's inclusion. Returns what it proves.
    pub fn verify(&self, genesis: &Cid) -> Result<ReceiptFacts> {
        let bad = |why: String| Error::InvalidProof(format!("receipt: {why}"));
        if self.genesis != *genesis {
            return Err(Error::WrongGenesis {
                expected: *genesis,
                found: self.genesis,
            });
        }
        let g = GenesisBlock::decode(&self.genesis_block)
            .map_err(|e| bad(format!("genesis block: {e}")))?;
        if g.cid != *genesis {
            return Err(bad(format!(
                "the genesis block in it is {}, not {genesis}",
                g.cid
            )));
        }
        let cert = Certificate::parse(&self.certificate)?;
        let cp = &cert.checkpoint;
        if cp.genesis != *genesis {
            return Err(Error::WrongGenesis {
                expected: *genesis,
                found: cp.genesis,
            });
        }
        // Every vote is in the same log, in order, and the votes replay by the ledger's rule.
        let mut votes = Vec::with_capacity(self.authority_votes.len());
        let mut last = None;
        for v in &self.authority_votes {
            let stx = included(v, cp.size, &cp.root)?;
            if !matches!(stx.tx.body, TxBody::AuthorityChange { .. }) {
                return Err(bad(format!("{} is not an authority vote", stx.cid)));
            }
            if last.is_some_and(|l| v.index <= l) {
                return Err(bad("authority votes out of log order".into()));
            }
            last = Some(v.index);
            votes.push(stx);
        }
        let authorities = State::authorities_after_votes(&g, &votes)?;
        let signers = cert.verify(&authorities)?;
        let stx = included(&self.transaction, cp.size, &cp.root)?;
        if stx.tx.genesis != *genesis {
            return Err(Error::WrongGenesis {
                expected: *genesis,
                found: stx.tx.genesis,
            });
        }
        let (record, doctor, version, purpose, expires) = match &stx.tx.body {
            TxBody::PublishRecord {
                record, version, ..
            } => (Some(record.to_string()), None, Some(*version), None, None),
            TxBody::Grant {
                record,
                version,
                doctor,
                purpose,
                expires,
                ..
            } => (
                Some(record.to_string()),
                Some(*doctor),
                Some(*version),
                Some(purpose.code().to_owned()),
                *expires,
            ),
            TxBody::Revoke { record, doctor } => {
                (Some(record.to_string()), Some(*doctor), None, None, None)
            }
            _ => (None, None, None, None, None),
        };
        Ok(ReceiptFacts {
            genesis: *genesis,
            network: g.genesis.network.clone(),
            tx: stx.cid,
            kind: stx.tx.body.kind().to_owned(),
            author: stx.tx.author,
            time: stx.tx.time,
            record,
            doctor,
            version,
            purpose,
            expires,
            index: self.transaction.index,
            log_size: cp.size,
            height: cp.height,
            block: cp.block,
            signers,
            authorities: authorities.len(),
        })
    }
}

/// Decodes a proven transaction and checks its inclusion in the log of `size` with `root`.
fn included(p: &ProvenTx, size: u64, root: &Hash) -> Result<SignedTx> {
    let stx = SignedTx::decode(&p.tx)
        .map_err(|e| Error::InvalidProof(format!("receipt: transaction: {e}")))?;
    let proof: Vec<Hash> = p.proof.iter().map(|h| h.0).collect();
    verify_inclusion(&stx.cid.to_bytes(), p.index, size, root, &proof)?;
    Ok(stx)
}

/// The leaf hash of a transaction CID (what the log holds).
pub fn tx_leaf(cid: &Cid) -> Hash {
    leaf_hash(&cid.to_bytes())
}
