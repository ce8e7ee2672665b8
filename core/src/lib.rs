#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cid;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod limits;
pub mod store;
pub mod unixfs;

pub use crate::cid::Cid;
pub use crate::envelope::{DataKey, Metadata, RecordId};
pub use crate::error::{Error, Result};
pub use crate::identity::{Identity, IdentityId, PublicKey, Role};
pub use crate::store::{BlockStore, Store};
pub use crate::unixfs::Profile;

/// The root CID `ipfs add` prints for `data` under `profile` (see [`unixfs`]).
pub fn cid(data: &[u8], profile: Profile) -> Cid {
    unixfs::cid(data, profile)
}
