#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// On wasm32 there are no threads: the `Arc`s shared with native code hold values that are not
// `Send` there (JS objects), which is what this lint points at.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

// Layers, bottom up (no module imports one above it; `tests/layers.rs` checks):
//   platform, limits, rule, text, serde_util, fsutil       leaves
//   cid                                                     content identifiers
//   cbor, error                                             DAG-CBOR and the error type
//   identity, record                                        keys, ids, purpose codes
//   envelope (header, key, stream)                          the sealed record format
//   net                                                     the HTTP client trait
//   store, unixfs, car                                      content-addressed storage
//   ledger (codec, merkle, checkpoint, state, apply, chain) the chain and its rules
//   sequencer                                               where transactions go
//   vault                                                   what applications hold
//   fhir                                                    HL7 FHIR export of a vault

pub mod car;
pub mod cbor;
pub mod cid;
pub mod envelope;
pub mod error;
pub mod fhir;
#[cfg(not(target_arch = "wasm32"))]
pub mod fsutil;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
pub mod identity;
pub mod ledger;
pub mod limits;
pub mod net;
pub mod offload;
pub mod platform;
pub mod record;
pub mod rule;
pub mod sequencer;
pub mod serde_util;
pub mod store;
pub mod text;
pub mod unixfs;
pub mod vault;

pub use crate::cid::Cid;
pub use crate::envelope::{DataKey, Metadata};
pub use crate::error::{Category, Error, ErrorCode, Result};
pub use crate::fhir::{FhirScope, FhirVersion};
pub use crate::identity::{Identity, IdentityId, PublicKey, Role};
pub use crate::ledger::ReviewOutcome;
pub use crate::ledger::{Endorsement, Policy};
pub use crate::record::{Purpose, RecordId};
pub use crate::rule::Rule;
pub use crate::sequencer::{LocalSequencer, Sequencer};
pub use crate::store::{BlockStore, Store};
pub use crate::unixfs::Profile;
pub use crate::vault::{Expiry, GrantOptions, PublishOptions, Vault};

/// The root CID `ipfs add` prints for `data` under `profile` (see [`unixfs`]).
pub fn cid(data: &[u8], profile: Profile) -> Cid {
    unixfs::cid(data, profile)
}

/// Parses a CID typed by someone: anything malformed is [`Error::InvalidInput`] (a CID found in
/// stored data that does not parse is [`Error::InvalidCid`] instead).
pub fn parse_cid(s: &str) -> Result<Cid> {
    s.trim().parse().map_err(|e: crate::cid::CidError| {
        Error::InvalidInput(format!("`{}`: {e}", text::escape(s)))
    })
}

/// The workspace README's Rust examples compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadme;
