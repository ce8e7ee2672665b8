//! The ledger: a chain of DAG-CBOR blocks and transactions, each block made final by a
//! certificate signed by more than two thirds of the authorities.
//!
//! Every object is a canonical DAG-CBOR map stored in the block store under its CIDv1, so the
//! chain is an IPLD DAG that anyone can fetch from the head and verify offline, given the
//! network's genesis CID. Transactions are signed by their authors (RSA-PSS), bind the genesis
//! CID and carry per-author sequence numbers. Blocks link their parent and the parent's
//! certificate, list their transactions, and commit to the whole transaction log (an RFC 6962
//! Merkle tree). A certificate is a C2SP signed-note checkpoint over that log, which is also what
//! receipts and light clients check.
//!
//! Layers: [`codec`] (objects and bytes), [`merkle`] (the log tree), [`checkpoint`]
//! (certificates), [`state`] (the replayed state and its queries), [`snapshot`] (the state kept
//! on disk so opening costs the blocks since), `apply` (one function per
//! transaction kind: the rules), [`chain`] (loading and verifying a chain from a store). The
//! byte layout is in `docs/FORMAT.md`.

pub mod chain;
pub mod checkpoint;
pub mod codec;
pub mod endorse;
pub mod light;
pub mod merkle;
pub mod receipt;
pub mod smt;
pub mod snapshot;
pub mod state;

mod apply;

pub use crate::rule::Rule;
pub use apply::VerifiedSignatures;
pub use chain::VerifyReport;
pub use checkpoint::{Certificate, Checkpoint};
pub use codec::{
    AuthorityChangeKind, AuthorityKey, Block, BlockHeader, CertificateObject, Genesis,
    GenesisBlock, Policy, ReviewOutcome, Rewrapped, SignedTx, Submission, Tx, TxBody, WrappedShare,
};
pub use endorse::Endorsement;
pub use receipt::{Receipt, ReceiptFacts};
pub use state::{
    Access, AccessGrant, AuditEvent, AuditKind, Authority, Emergency, EmergencySplit, KeyRef,
    RecordInfo, Release, ReviewInfo, State, ValidatorUpdate, WrappedKey,
};

use crate::cid::Cid;
use crate::identity::IdentityId;

/// Domain separation prefixes for every signature in the ledger.
pub(crate) mod domain {
    pub const TX: &[u8] = b"medshare/v2/tx\0";
    pub const ENDORSE: &[u8] = b"medshare/v2/endorse\0";
}

/// The bytes an authority signs to endorse a doctor's licence on one network.
pub fn endorsement_message(genesis: &Cid, doctor: &IdentityId, licence: &str) -> Vec<u8> {
    let g = genesis.to_bytes();
    let mut m = Vec::with_capacity(domain::ENDORSE.len() + g.len() + 38 + licence.len());
    m.extend_from_slice(domain::ENDORSE);
    m.extend_from_slice(&(g.len() as u16).to_be_bytes());
    m.extend_from_slice(&g);
    m.extend_from_slice(doctor.as_bytes());
    m.extend_from_slice(&(licence.len() as u32).to_be_bytes());
    m.extend_from_slice(licence.as_bytes());
    m
}
