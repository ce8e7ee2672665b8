//! The one error type of the crate.
//!
//! Every fallible operation returns [`Error`]. Variants name *what* went wrong so that callers (and
//! the bindings, which map each variant to a language-level exception) can react precisely; the
//! messages are written for an operator reading a log line. Each variant has a stable code
//! ([`Error::code`], the variant's name) and belongs to one [`Category`]. The list of codes,
//! [`ErrorCode`], is derived from the enum itself, so it cannot miss a variant; every binding's
//! tests compare their exception classes against it.

use std::fmt;

use crate::cid::{Cid, CidError};
use crate::rule::Rule;

fn tx_note(tx: &Option<usize>) -> String {
    tx.map(|i| format!(", transaction {i}")).unwrap_or_default()
}

fn height_note(h: &Option<u64>) -> String {
    h.map_or_else(|| "at its head".to_owned(), |h| format!("at block {h}"))
}

fn chunk_note(c: &Option<u64>) -> String {
    c.map_or_else(|| "the metadata".to_owned(), |i| format!("chunk {i}"))
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in medshare.
#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(ErrorCode),
    derive(
        strum::EnumIter,
        strum::IntoStaticStr,
        strum::EnumString,
        Hash,
        PartialOrd,
        Ord
    ),
    doc = "The stable code of every [`Error`] variant (its name), derived from the enum so the list is complete."
)]
#[non_exhaustive]
pub enum Error {
    // ---- keys and identities ----
    /// An RSA key is smaller than the minimum size (2048 bits).
    #[error("RSA key of {bits} bits is too weak: at least {min} bits are required")]
    WeakKey {
        /// Size of the offending key.
        bits: usize,
        /// Smallest accepted size.
        min: usize,
    },
    /// An RSA key size that medshare does not generate or accept (above 4096 bits, or not one of
    /// 2048/3072/4096 when generating).
    #[error("unsupported RSA key size {bits}: use 2048, 3072 or 4096 bits")]
    UnsupportedKeySize {
        /// The requested or found size.
        bits: usize,
    },
    /// A key or key file could not be parsed.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The passphrase does not decrypt the key file.
    #[error("wrong passphrase, or the key file is damaged")]
    WrongPassphrase,
    /// A signature does not verify against the claimed key.
    #[error("signature verification failed")]
    BadSignature,

    // ---- integrity: envelopes, CIDs, DAGs, CARs, checkpoints ----
    /// The envelope is not well formed (bad magic, bad lengths, bad field values).
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(String),
    /// The envelope was written by a format version this library does not read.
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    /// Unwrapping the data key failed: the wrapped key was made for another key, or for another
    /// (record, version) — the OAEP label does not match — or it was altered.
    #[error(
        "the wrapped data key could not be unwrapped (wrong key, wrong record/version label, or altered)"
    )]
    KeyUnwrap,
    /// The unwrapped data key is not the one the envelope (and the ledger) commit to: the
    /// publisher gave this reader a different key than the others. Nothing was decrypted.
    #[error(
        "the data key does not match the envelope's key commitment: this reader was given a different key than the record was published with"
    )]
    KeyCommitment,
    /// A payload chunk (or the encrypted metadata) failed authentication: the ciphertext was
    /// altered, or chunks were swapped or reordered.
    #[error("{} failed authentication: ciphertext altered, swapped or reordered", chunk_note(.chunk))]
    ChunkAuthentication {
        /// Index of the first chunk that failed (0-based); `None` for the metadata.
        chunk: Option<u64>,
    },
    /// The ciphertext ends before its final chunk.
    #[error("envelope is truncated: the final chunk is missing")]
    Truncated,
    /// Bytes follow the final chunk of the envelope.
    #[error("unexpected data after the final chunk of the envelope")]
    TrailingData,
    /// The number of plaintext bytes differs from the declared size.
    #[error("size mismatch: declared {expected} bytes, found {actual}")]
    SizeMismatch {
        /// Declared size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// A CID's binary form could not be parsed, or uses an unsupported codec or hash.
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    /// Bytes do not hash to the CID they were stored or fetched under.
    #[error("content does not match its CID: expected {expected}, got {actual}")]
    CidMismatch {
        /// The CID that was asked for.
        expected: Cid,
        /// The CID of the bytes actually received.
        actual: Cid,
    },
    /// A dag-pb / UnixFS node could not be decoded, or a DAG breaks a walk limit.
    #[error("malformed UnixFS/dag-pb node: {0}")]
    MalformedNode(String),
    /// A CAR file could not be read.
    #[error("malformed CAR file: {0}")]
    MalformedCar(String),
    /// A checkpoint, receipt or proof is malformed or does not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// Someone offered an older state than one already verified (a smaller log, or a different
    /// log of the same size): the caller keeps its state.
    #[error(
        "rollback refused: offered a log of {offered} transactions, {trusted} already verified"
    )]
    Rollback {
        /// Log size (transactions) of the checkpoint already verified.
        trusted: u64,
        /// Log size of what was offered.
        offered: u64,
    },
    /// Two valid checkpoints of the same log size with different roots, both signed by a
    /// quorum of the authorities: the network forked. Both checkpoints are the evidence.
    #[error("fork detected: two certified checkpoints of {size} transactions differ")]
    Fork {
        /// The log size at which the checkpoints disagree.
        size: u64,
        /// The checkpoint already trusted (signed note text).
        trusted: String,
        /// The conflicting checkpoint (signed note text).
        offered: String,
    },

    // ---- access ----
    /// The identity trying to open an envelope is not among its recipients.
    #[error("this identity is not a recipient of the record")]
    NotARecipient,
    /// The reader's access to the record was revoked by its owner.
    #[error("access to record {0} was revoked by its owner")]
    AccessRevoked(String),
    /// The reader's grant on the record has expired.
    #[error("access to record {0} expired")]
    AccessExpired(String),
    /// The reader was never granted the record.
    #[error("no access to record {0}: it was never granted to this identity")]
    AccessDenied(String),
    /// A doctor's emergency access is not open (yet): fewer genuine shares released than the
    /// threshold, a share that fails its commitment, or the window is over.
    #[error("emergency access to record {record} is not open: {detail}")]
    EmergencyPending {
        /// The record.
        record: String,
        /// Why (shares released and needed, any share that fails its commitment).
        detail: String,
    },
    /// No such record on the chain.
    #[error("unknown record {0}")]
    UnknownRecord(String),
    /// No such identity on the chain.
    #[error("unknown identity {0}: it is not registered on this chain")]
    UnknownIdentity(String),

    // ---- ledger ----
    /// A block or transaction of the chain breaks a validation rule.
    #[error("invalid chain {}{}: rule {rule} broken: {detail}", height_note(.height), tx_note(.tx))]
    InvalidChain {
        /// Height of the offending block (`None` when the head itself cannot be decoded, so
        /// its height is unknown; the detail then names its CID).
        height: Option<u64>,
        /// Index of the offending transaction within the block, if the fault is in one.
        tx: Option<usize>,
        /// The rule broken.
        rule: Rule,
        /// What exactly was wrong.
        detail: String,
    },
    /// A new transaction was refused because it breaks a ledger rule; nothing was written.
    #[error("refused by the ledger: rule {rule}: {detail}")]
    Rejected {
        /// The rule the transaction would break.
        rule: Rule,
        /// What exactly was wrong.
        detail: String,
    },
    /// The chain offered is not the expected network's (another genesis).
    #[error("wrong network: expected genesis {expected}, found {found}")]
    WrongGenesis {
        /// The genesis CID the caller trusts.
        expected: Cid,
        /// The genesis CID of what was offered.
        found: Cid,
    },
    /// This vault cannot append: it has no sequencer (read-only replica).
    #[error("this vault is read-only: it has no sequencer to submit transactions to")]
    ReadOnly,
    /// The store holds no chain yet (no head).
    #[error("the store holds no chain; initialise it first")]
    NoChain,

    // ---- storage ----
    /// A block is not in the store.
    #[error("block {0} not found in the store")]
    NotFound(Cid),
    /// Another process (or handle) holds the store's lock.
    #[error("store is locked by another process: {0}")]
    StoreLocked(String),
    /// The store's head pointer was not what the caller expected (compare-and-swap lost a race).
    #[error("head pointer changed concurrently: expected {}, found {}", show(.expected), show(.found))]
    HeadConflict {
        /// What the caller expected (`None` for an empty store).
        expected: Option<Cid>,
        /// What the store holds (`None` for an empty store).
        found: Option<Cid>,
    },
    /// The store's on-disk state is damaged in a way medshare cannot repair by itself.
    #[error("store is corrupt: {0}")]
    StoreCorrupt(String),
    /// A store backend failed for a reason of its own (foreign stores, network stores), or the
    /// platform's crypto did ([`crate::offload`]: WebCrypto in the npm package).
    #[error("store backend error: {0}")]
    Backend(String),

    // ---- network ----
    /// A node or gateway did not answer in time, or a transaction was not committed in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A node or gateway could not be reached, or answered something that is not its protocol.
    #[error("network unavailable: {0}")]
    Unavailable(String),

    // ---- invalid input ----
    /// An argument is malformed: a record or identity id, a role, a profile name, a purpose
    /// code, a duration, a CID typed by a user.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An input exceeds a size limit.
    #[error("{what} is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A requested byte range lies outside the plaintext.
    #[error("byte range {start}..{end} is outside the plaintext of {size} bytes")]
    RangeOutOfBounds {
        /// Range start.
        start: u64,
        /// Range end (exclusive).
        end: u64,
        /// Plaintext size.
        size: u64,
    },

    // ---- I/O ----
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

fn show(c: &Option<Cid>) -> String {
    c.map_or_else(|| "none".to_owned(), |c| c.to_string())
}

/// What kind of failure an error is; every binding groups its exception classes this way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Category {
    /// Keys, key files, signatures.
    Identity,
    /// Data that is not what it claims to be: envelopes, CIDs, DAGs, CARs, proofs, rollbacks.
    Integrity,
    /// Who may read what.
    Access,
    /// Ledger rules and chain state.
    Ledger,
    /// Block stores.
    Store,
    /// Nodes, gateways, timeouts.
    Network,
    /// A caller's malformed or oversized argument.
    InvalidInput,
    /// The operating system (files, randomness).
    Io,
}

impl Category {
    /// Every category.
    pub const ALL: &'static [Category] = &[
        Category::Identity,
        Category::Integrity,
        Category::Access,
        Category::Ledger,
        Category::Store,
        Category::Network,
        Category::InvalidInput,
        Category::Io,
    ];

    /// The category's name (`Identity`, `Integrity`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Identity => "Identity",
            Category::Integrity => "Integrity",
            Category::Access => "Access",
            Category::Ledger => "Ledger",
            Category::Store => "Store",
            Category::Network => "Network",
            Category::InvalidInput => "InvalidInput",
            Category::Io => "Io",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        <ErrorCode as strum::IntoEnumIterator>::iter()
    }

    /// The code's name (the variant's name).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The category the code belongs to.
    pub fn category(self) -> Category {
        use ErrorCode as C;
        match self {
            C::WeakKey | C::UnsupportedKeySize | C::InvalidKey | C::WrongPassphrase => {
                Category::Identity
            }
            C::BadSignature => Category::Identity,
            C::MalformedEnvelope
            | C::UnsupportedVersion
            | C::KeyUnwrap
            | C::KeyCommitment
            | C::ChunkAuthentication
            | C::Truncated
            | C::TrailingData
            | C::SizeMismatch
            | C::InvalidCid
            | C::CidMismatch
            | C::MalformedNode
            | C::MalformedCar
            | C::InvalidProof
            | C::Rollback
            | C::Fork => Category::Integrity,
            C::NotARecipient
            | C::AccessRevoked
            | C::AccessExpired
            | C::AccessDenied
            | C::EmergencyPending
            | C::UnknownRecord
            | C::UnknownIdentity => Category::Access,
            C::InvalidChain | C::Rejected | C::WrongGenesis | C::ReadOnly | C::NoChain => {
                Category::Ledger
            }
            C::NotFound | C::StoreLocked | C::HeadConflict | C::StoreCorrupt | C::Backend => {
                Category::Store
            }
            C::Timeout | C::Unavailable => Category::Network,
            C::InvalidInput | C::TooLarge | C::RangeOutOfBounds => Category::InvalidInput,
            C::Io | C::Rng => Category::Io,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// A stable, machine-readable name for the error kind (the bindings expose it as `code`).
    pub fn code(&self) -> &'static str {
        ErrorCode::from(self).as_str()
    }

    /// The error's kind as a value.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from(self)
    }

    /// The error's category.
    pub fn category(&self) -> Category {
        ErrorCode::from(self).category()
    }

    /// The ledger rule concerned, for `InvalidChain` and `Rejected`.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Error::InvalidChain { rule, .. } | Error::Rejected { rule, .. } => Some(*rule),
            _ => None,
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(why: impl Into<String>) -> Error {
        Error::InvalidInput(why.into())
    }

    /// Shorthand for [`Error::Rejected`].
    pub fn rejected(rule: Rule, detail: impl Into<String>) -> Error {
        Error::Rejected {
            rule,
            detail: detail.into(),
        }
    }
}

impl From<CidError> for Error {
    fn from(e: CidError) -> Error {
        match e {
            CidError::Invalid(why) => Error::InvalidCid(why),
            CidError::Mismatch { expected, actual } => Error::CidMismatch { expected, actual },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let codes: Vec<ErrorCode> = ErrorCode::all().collect();
        let mut names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), codes.len());
        for c in codes {
            assert_eq!(c.as_str().parse::<ErrorCode>().unwrap(), c);
        }
        assert_eq!(Error::Rng.code(), "Rng");
        assert_eq!(
            Error::ChunkAuthentication { chunk: None }.to_string(),
            "the metadata failed authentication: ciphertext altered, swapped or reordered"
        );
        assert_eq!(
            Error::InvalidInput("x".into()).category(),
            Category::InvalidInput
        );
    }
}
