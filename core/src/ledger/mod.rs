//! The ledger: a proof-of-authority chain of DAG-CBOR blocks and transactions.
//!
//! Every transaction and block is a canonical DAG-CBOR object stored in the block store under its
//! CIDv1, so the chain is an IPLD DAG that anyone can fetch from the head CID and verify offline.
//! Transactions are signed by their author (RSA-PSS) and carry a per-author sequence number;
//! blocks link their parent and their transactions, commit to the transactions with a Merkle
//! root, and are sealed (signed) by an authority named in the genesis block.
//!
//! [`State`] replays blocks and enforces every rule (see [`Rule`]); the byte layout is in
//! `docs/FORMAT.md`.

mod codec;
mod merkle;
mod state;

pub use codec::{Block, BlockHeader, Genesis, Policy, SignedTx, Tx, TxBody};
pub use merkle::merkle_root;
pub(crate) use state::verify_checks;
pub use state::{Access, AccessGrant, AuditEvent, AuditKind, RecordInfo, State};

use std::fmt;

/// The validation rule a block or transaction broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// Bytes are not canonical DAG-CBOR, or the object has missing/unknown/mistyped fields.
    Encoding,
    /// An object's bytes do not hash to the CID that links to it.
    Cid,
    /// Genesis block malformed (authorities, policy, height, parent).
    Genesis,
    /// Block names another network than the genesis.
    Network,
    /// Parent link is not the previous block.
    Parent,
    /// Height is not parent height + 1.
    Height,
    /// Timestamp earlier than the parent's.
    TimestampOrder,
    /// Timestamp later than now plus the allowed clock skew.
    TimestampFuture,
    /// Block sealed by someone outside the genesis authority set.
    Sealer,
    /// Sealer's signature does not verify.
    SealSignature,
    /// Merkle root does not match the transactions.
    MerkleRoot,
    /// A size or count limit of the policy is exceeded.
    Limits,
    /// Transaction author is not registered.
    UnknownAuthor,
    /// Transaction signature does not verify against the author's key at that height.
    TxSignature,
    /// Sequence number not strictly greater than the author's previous one (replay).
    Sequence,
    /// Registration is malformed: author is not the registered key, or key too weak.
    Registration,
    /// Identity is already registered.
    DuplicateRegistration,
    /// Doctor registration lacks a valid authority endorsement.
    Endorsement,
    /// Author's role may not do this (e.g. a doctor publishing).
    Role,
    /// Only a record's owner may publish, grant or revoke it.
    NotOwner,
    /// Record or version unknown, or version out of order.
    Version,
    /// Grantee is not a registered doctor.
    Grantee,
    /// Grant already expired when issued.
    Expiry,
    /// Revoke of a doctor that holds no grant on the record.
    NotGranted,
    /// Key rotation not co-signed by the new key, or the new key is unusable.
    KeyRotation,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Domain separation prefixes for every signature in the ledger.
pub(crate) mod domain {
    pub const TX: &[u8] = b"medshare/v1/tx\0";
    pub const BLOCK: &[u8] = b"medshare/v1/block\0";
    pub const ENDORSE: &[u8] = b"medshare/v1/endorse\0";
}

/// The bytes an authority signs to endorse a doctor's licence.
pub fn endorsement_message(doctor: &crate::IdentityId, licence: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain::ENDORSE.len() + 34 + licence.len());
    m.extend_from_slice(domain::ENDORSE);
    m.extend_from_slice(doctor.as_bytes());
    m.extend_from_slice(licence.as_bytes());
    m
}
