//! The one error type of the crate.
//!
//! Every fallible operation returns [`Error`]. Variants name *what* went wrong so that callers (and
//! the bindings, which map each variant to a language-level exception) can react precisely; the
//! messages are written for an operator reading a log line.

use crate::cid::Cid;
use crate::ledger::Rule;

fn tx_note(tx: &Option<usize>) -> String {
    tx.map(|i| format!(", transaction {i}")).unwrap_or_default()
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in medshare.
#[derive(Debug, thiserror::Error)]
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

    // ---- envelope ----
    /// The envelope is not well formed (bad magic, bad lengths, bad field values).
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(String),
    /// The envelope was written by a format version this library does not read.
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    /// The identity trying to open an envelope is not among its recipients.
    #[error("this identity is not a recipient of the record")]
    NotARecipient,
    /// Unwrapping the data key failed: the wrapped key was made for another key, or for another
    /// (record, version) — the OAEP label does not match — or it was altered.
    #[error(
        "the wrapped data key could not be unwrapped (wrong key, wrong record/version label, or altered)"
    )]
    KeyUnwrap,
    /// A payload chunk (or the encrypted metadata) failed authentication: the ciphertext was
    /// altered, or chunks were swapped or reordered.
    #[error("chunk {index} failed authentication: ciphertext altered, swapped or reordered")]
    ChunkAuthentication {
        /// Index of the first chunk that failed (0-based); `u64::MAX` for the metadata block.
        index: u64,
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

    // ---- content addressing and storage ----
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
    /// A CID string or byte form could not be parsed, or uses an unsupported codec or hash.
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
    /// A dag-pb / UnixFS node could not be decoded.
    #[error("malformed UnixFS/dag-pb node: {0}")]
    MalformedNode(String),
    /// A CAR file could not be read.
    #[error("malformed CAR file: {0}")]
    MalformedCar(String),
    /// A block is not in the store.
    #[error("block {0} not found in the store")]
    NotFound(Cid),
    /// Another process (or handle) holds the store's lock.
    #[error("store is locked by another process: {0}")]
    StoreLocked(String),
    /// The store's head pointer was not what the caller expected (compare-and-swap lost a race).
    #[error("head pointer changed concurrently: expected {expected}, found {found}")]
    HeadConflict {
        /// What the caller expected (`none` for an empty store).
        expected: String,
        /// What the store holds (`none` for an empty store).
        found: String,
    },
    /// The store's on-disk state is damaged in a way medshare cannot repair by itself.
    #[error("store is corrupt: {0}")]
    StoreCorrupt(String),
    /// A store backend failed for a reason of its own (foreign stores, network stores).
    #[error("store backend error: {0}")]
    Backend(String),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    // ---- ledger and access ----
    /// A block or transaction of the chain breaks a validation rule.
    #[error("invalid chain at block {height}{}: rule {rule} broken: {detail}", tx_note(.tx))]
    InvalidChain {
        /// Height of the offending block (`u64::MAX` when the head block itself cannot be
        /// decoded, so its height is unknown; the detail then names its CID).
        height: u64,
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
    /// The reader's access to the record was revoked by its owner.
    #[error("access to record {0} was revoked by its owner")]
    AccessRevoked(String),
    /// The reader's grant on the record has expired.
    #[error("access to record {0} expired")]
    AccessExpired(String),
    /// The reader was never granted the record.
    #[error("no access to record {0}: it was never granted to this identity")]
    AccessDenied(String),
    /// No such record on the chain.
    #[error("unknown record {0}")]
    UnknownRecord(String),
    /// No such identity on the chain.
    #[error("unknown identity {0}: it is not registered on this chain")]
    UnknownIdentity(String),
    /// The operation needs an authority key to seal blocks, and this vault has none.
    #[error("this vault has no sealing authority: it can verify and read but not append")]
    ReadOnly,
    /// The store holds no chain yet (no head).
    #[error("the store holds no chain; initialise it first")]
    NoChain,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

impl Error {
    /// Every value [`Error::code`] can return, in declaration order.
    pub const CODES: &'static [&'static str] = &[
        "WeakKey",
        "UnsupportedKeySize",
        "InvalidKey",
        "WrongPassphrase",
        "BadSignature",
        "MalformedEnvelope",
        "UnsupportedVersion",
        "NotARecipient",
        "KeyUnwrap",
        "ChunkAuthentication",
        "Truncated",
        "TrailingData",
        "SizeMismatch",
        "RangeOutOfBounds",
        "TooLarge",
        "InvalidCid",
        "CidMismatch",
        "MalformedNode",
        "MalformedCar",
        "NotFound",
        "StoreLocked",
        "HeadConflict",
        "StoreCorrupt",
        "Backend",
        "Io",
        "InvalidChain",
        "Rejected",
        "AccessRevoked",
        "AccessExpired",
        "AccessDenied",
        "UnknownRecord",
        "UnknownIdentity",
        "ReadOnly",
        "NoChain",
        "Rng",
    ];

    /// A stable, machine-readable name for the error kind (the bindings expose it as `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::WeakKey { .. } => "WeakKey",
            Error::UnsupportedKeySize { .. } => "UnsupportedKeySize",
            Error::InvalidKey(_) => "InvalidKey",
            Error::WrongPassphrase => "WrongPassphrase",
            Error::BadSignature => "BadSignature",
            Error::MalformedEnvelope(_) => "MalformedEnvelope",
            Error::UnsupportedVersion(_) => "UnsupportedVersion",
            Error::NotARecipient => "NotARecipient",
            Error::KeyUnwrap => "KeyUnwrap",
            Error::ChunkAuthentication { .. } => "ChunkAuthentication",
            Error::Truncated => "Truncated",
            Error::TrailingData => "TrailingData",
            Error::SizeMismatch { .. } => "SizeMismatch",
            Error::RangeOutOfBounds { .. } => "RangeOutOfBounds",
            Error::TooLarge { .. } => "TooLarge",
            Error::InvalidCid(_) => "InvalidCid",
            Error::CidMismatch { .. } => "CidMismatch",
            Error::MalformedNode(_) => "MalformedNode",
            Error::MalformedCar(_) => "MalformedCar",
            Error::NotFound(_) => "NotFound",
            Error::StoreLocked(_) => "StoreLocked",
            Error::HeadConflict { .. } => "HeadConflict",
            Error::StoreCorrupt(_) => "StoreCorrupt",
            Error::Backend(_) => "Backend",
            Error::Io(_) => "Io",
            Error::InvalidChain { .. } => "InvalidChain",
            Error::Rejected { .. } => "Rejected",
            Error::AccessRevoked(_) => "AccessRevoked",
            Error::AccessExpired(_) => "AccessExpired",
            Error::AccessDenied(_) => "AccessDenied",
            Error::UnknownRecord(_) => "UnknownRecord",
            Error::UnknownIdentity(_) => "UnknownIdentity",
            Error::ReadOnly => "ReadOnly",
            Error::NoChain => "NoChain",
            Error::Rng => "Rng",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn codes_are_unique_and_listed() {
        let mut sorted = Error::CODES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), Error::CODES.len());
        for e in [
            Error::WrongPassphrase,
            Error::ReadOnly,
            Error::NoChain,
            Error::Rng,
            Error::AccessRevoked("x".into()),
            Error::ChunkAuthentication { index: 3 },
        ] {
            assert!(Error::CODES.contains(&e.code()), "{}", e.code());
        }
    }
}
