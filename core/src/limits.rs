//! Size limits applied to every input medshare parses or stores.
//!
//! Each limit is enforced where the data enters (parsers, stores, sealing) and reported as
//! [`crate::Error::TooLarge`].

/// Largest SPKI DER public key (a 4096-bit RSA key is about 550 bytes).
pub const MAX_PUBLIC_KEY_DER: usize = 1024;
/// Largest key file (PEM text).
pub const MAX_KEY_FILE: usize = 16 * 1024;
/// Longest identity display name, in bytes.
pub const MAX_NAME: usize = 256;
/// Longest record file name, in bytes.
pub const MAX_FILE_NAME: usize = 1024;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE: usize = 255;
/// Most recipients an envelope may carry.
pub const MAX_RECIPIENTS: usize = 1024;
/// Largest record plaintext (1 TiB).
pub const MAX_RECORD_SIZE: u64 = 1 << 40;
/// Largest block a store accepts or returns (kubo and bitswap refuse blocks over 2 MiB).
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;
/// Largest encrypted grant note on the ledger (nonce, text, tag), in bytes.
pub const MAX_GRANT_NOTE: usize = 4096;
/// Largest encrypted emergency justification on the ledger (one wrapped key per reader: the
/// owner, the doctor and up to 16 authorities at 4096 bits, then the text), in bytes.
pub const MAX_JUSTIFICATION: usize = 16 * 1024;
/// Longest window (seconds) during which an emergency request's shares may be released.
pub const MAX_EMERGENCY_WINDOW: u64 = 72 * 3600;
/// Shortest such window: time for every authority's node (or operator) to answer.
pub const MIN_EMERGENCY_WINDOW: u64 = 300;
/// Most emergency requests one doctor may have open at once (across records).
pub const MAX_OPEN_EMERGENCIES: usize = 4;

/// Largest chain-state snapshot read (`ledger::snapshot`; a state of about 10^7 transactions).
pub const MAX_SNAPSHOT: usize = 2 << 30;
