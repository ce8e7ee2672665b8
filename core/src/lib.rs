#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod car;
pub mod cbor;
pub mod cid;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod identity;
pub mod ledger;
pub mod limits;
pub mod store;
pub mod unixfs;
pub mod vault;

pub use crate::cid::Cid;
pub use crate::envelope::{DataKey, Metadata, RecordId};
pub use crate::error::{Error, Result};
pub use crate::identity::{Identity, IdentityId, PublicKey, Role};
pub use crate::store::{BlockStore, Store};
pub use crate::unixfs::Profile;
pub use crate::vault::Vault;

/// The root CID `ipfs add` prints for `data` under `profile` (see [`unixfs`]).
pub fn cid(data: &[u8], profile: Profile) -> Cid {
    unixfs::cid(data, profile)
}
