//! Bulk cryptography a platform may run faster than this crate's portable code: AES-256-GCM
//! over envelope chunks and SHA-256 over blocks, the two operations whose cost grows with a
//! record's size.
//!
//! In WebAssembly there is no AES-NI or SHA-NI, but the host usually has both behind
//! WebCrypto (`crypto.subtle`, asynchronous, run on the host's own threads). A [`Vault`] given a
//! [`BulkCrypto`] ([`Vault::set_bulk_crypto`]) publishes and opens records through it; every
//! other decision stays in this crate: how the payload is cut, each chunk's nonce and last flag,
//! padding, the UnixFS layout, which digest each CID must have. The envelope and CIDs are the
//! same bytes either way (the tests seal through [`Portable`] and open without it, and back).
//!
//! [`Vault`]: crate::Vault
//! [`Vault::set_bulk_crypto`]: crate::Vault::set_bulk_crypto

use sha2::{Digest, Sha256};

use crate::envelope::{Chunk, TAG_LEN};
use crate::error::{Error, Result};
use crate::platform::MaybeSendSync;

/// AES-256-GCM and SHA-256, run by the platform (see the module documentation).
///
/// Each method works on many items at once, so that an implementation may run them
/// concurrently (WebCrypto runs each call on a thread of its own).
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait BulkCrypto: MaybeSendSync {
    /// Seals each chunk in place: AES-256-GCM under `key` with the chunk's nonce and no
    /// associated data, the ciphertext over `buf[offset..offset + len]` and the 16-byte tag in
    /// `buf[offset + len..offset + len + 16]`.
    async fn seal_chunks(&self, key: &[u8; 32], buf: &mut [u8], chunks: &[Chunk]) -> Result<()>;

    /// Opens each chunk in place (the inverse of [`BulkCrypto::seal_chunks`]): the plaintext
    /// replaces `buf[offset..offset + len]`. Returns the position in `chunks` of the first one
    /// that does not authenticate, if any (what the buffer then holds is discarded).
    async fn open_chunks(
        &self,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[Chunk],
    ) -> Result<Option<usize>>;

    /// The SHA-256 digest of each item, in order.
    async fn sha256_many(&self, items: &[&[u8]]) -> Result<Vec<[u8; 32]>>;
}

/// This crate's own code behind the [`BulkCrypto`] interface: the reference the platform's
/// implementations are tested against, and what runs when none is set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

/// The bytes of `chunk` and its tag in `buf`, or an error if it lies outside.
pub(crate) fn chunk_parts<'a>(
    buf: &'a mut [u8],
    chunk: &Chunk,
) -> Result<(&'a mut [u8], &'a mut [u8])> {
    let end = chunk
        .offset
        .checked_add(chunk.len)
        .and_then(|e| e.checked_add(TAG_LEN))
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| Error::InvalidInput("a chunk outside its buffer".into()))?;
    Ok(buf[chunk.offset..end].split_at_mut(chunk.len))
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BulkCrypto for Portable {
    async fn seal_chunks(&self, key: &[u8; 32], buf: &mut [u8], chunks: &[Chunk]) -> Result<()> {
        let cipher = crate::envelope::key::new_cipher(key);
        for c in chunks {
            let (body, tag) = chunk_parts(buf, c)?;
            tag.copy_from_slice(&crate::envelope::header::seal_in_place(
                &cipher,
                c.nonce,
                &[],
                body,
            ));
        }
        Ok(())
    }

    async fn open_chunks(
        &self,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[Chunk],
    ) -> Result<Option<usize>> {
        let cipher = crate::envelope::key::new_cipher(key);
        for (i, c) in chunks.iter().enumerate() {
            let (body, tag) = chunk_parts(buf, c)?;
            if crate::envelope::header::open_in_place(&cipher, c.nonce, &[], body, tag).is_err() {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    async fn sha256_many(&self, items: &[&[u8]]) -> Result<Vec<[u8; 32]>> {
        Ok(items.iter().map(|d| Sha256::digest(d).into()).collect())
    }
}
