//! The validation rules of the ledger, by name. A leaf module: errors name the rule a block or
//! transaction broke, and the ledger enforces them (`docs/FORMAT.md` §6 lists each one).

use std::fmt;
use std::str::FromStr;

/// The validation rule a block or transaction broke.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum Rule {
    /// Bytes are not canonical DAG-CBOR, or the object has missing/unknown/mistyped fields.
    Encoding,
    /// An object's bytes do not hash to the CID that links to it.
    Cid,
    /// Genesis block malformed (authorities, policy, height, parent).
    Genesis,
    /// The object was signed for another network (its genesis CID is not this chain's).
    Network,
    /// Parent link is not the previous block.
    Parent,
    /// Height is not parent height + 1.
    Height,
    /// Timestamp earlier than the parent's.
    TimestampOrder,
    /// Timestamp later than the accepting party's clock plus the allowed skew (checked when a
    /// block is accepted, never when stored blocks are replayed).
    TimestampFuture,
    /// A block's certificate is missing, malformed, signed by a non-authority, or holds
    /// signatures from no more than two thirds of the authorities.
    Certificate,
    /// Merkle root or transaction-log root does not match the transactions.
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
    /// Identity (or key) is already registered.
    DuplicateRegistration,
    /// Doctor registration lacks a valid authority endorsement, or a licence.
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
    /// A revocation requires the record to be re-keyed (its next version published in the same
    /// block or submission), and it is not.
    Rekey,
    /// Key rotation not co-signed by the new key, or the new key is unusable.
    KeyRotation,
    /// An authority-set change is malformed, or not voted by an authority.
    AuthorityChange,
    /// Emergency access, share release or review breaks the break-glass protocol.
    Emergency,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: &'static [Rule] = &[
        Rule::Encoding,
        Rule::Cid,
        Rule::Genesis,
        Rule::Network,
        Rule::Parent,
        Rule::Height,
        Rule::TimestampOrder,
        Rule::TimestampFuture,
        Rule::Certificate,
        Rule::MerkleRoot,
        Rule::Limits,
        Rule::UnknownAuthor,
        Rule::TxSignature,
        Rule::Sequence,
        Rule::Registration,
        Rule::DuplicateRegistration,
        Rule::Endorsement,
        Rule::Role,
        Rule::NotOwner,
        Rule::Version,
        Rule::Grantee,
        Rule::Expiry,
        Rule::NotGranted,
        Rule::Rekey,
        Rule::KeyRotation,
        Rule::AuthorityChange,
        Rule::Emergency,
    ];

    /// The rule's name, as errors and the network's `CheckTx` answers print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Encoding => "Encoding",
            Rule::Cid => "Cid",
            Rule::Genesis => "Genesis",
            Rule::Network => "Network",
            Rule::Parent => "Parent",
            Rule::Height => "Height",
            Rule::TimestampOrder => "TimestampOrder",
            Rule::TimestampFuture => "TimestampFuture",
            Rule::Certificate => "Certificate",
            Rule::MerkleRoot => "MerkleRoot",
            Rule::Limits => "Limits",
            Rule::UnknownAuthor => "UnknownAuthor",
            Rule::TxSignature => "TxSignature",
            Rule::Sequence => "Sequence",
            Rule::Registration => "Registration",
            Rule::DuplicateRegistration => "DuplicateRegistration",
            Rule::Endorsement => "Endorsement",
            Rule::Role => "Role",
            Rule::NotOwner => "NotOwner",
            Rule::Version => "Version",
            Rule::Grantee => "Grantee",
            Rule::Expiry => "Expiry",
            Rule::NotGranted => "NotGranted",
            Rule::Rekey => "Rekey",
            Rule::KeyRotation => "KeyRotation",
            Rule::AuthorityChange => "AuthorityChange",
            Rule::Emergency => "Emergency",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rule {
    type Err = ();

    fn from_str(s: &str) -> Result<Rule, ()> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or(())
    }
}
