//! Cryptography a platform may run faster than this crate's portable code: AES-256-GCM over
//! envelope chunks and SHA-256 over blocks (the operations whose cost grows with a record's
//! size), and the RSA private-key operations of its identities (PSS signatures, OAEP unwraps).
//!
//! In WebAssembly there is no AES-NI or SHA-NI and no 64-bit multiply into 128 bits, but the
//! host usually has all of these behind WebCrypto (`crypto.subtle`, asynchronous, native code on
//! the host's own threads). A [`Vault`] given an [`Offload`] ([`Vault::set_offload`]) publishes,
//! opens, signs and unwraps through it; every decision stays in this crate: how the payload is
//! cut, each chunk's nonce and last flag, padding, the UnixFS layout, which digest each CID must
//! have, which message is signed under which key, which label a key is unwrapped under. The
//! envelope, CIDs and signatures are the same either way (the tests seal through [`Portable`] and
//! open without it, and back).
//!
//! What the vault checks of the platform's answers: every signature against the author's public
//! key before it is used, an unwrapped data key against the key commitment before anything is
//! decrypted with it, one chunk of every publish step by opening it here, and every block read
//! against its CID. A platform that returned wrong digests on publish would make the record
//! unreadable (every read checks), never substitute it.
//!
//! [`Vault`]: crate::Vault
//! [`Vault::set_offload`]: crate::Vault::set_offload

use sha2::{Digest, Sha256};

use zeroize::{Zeroize, Zeroizing};

use crate::envelope::{Chunk, TAG_LEN};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::platform::MaybeSendSync;

/// AES-256-GCM, SHA-256 and RSA private-key operations, run by the platform (see the module
/// documentation).
///
/// The bulk methods work on many items at once, so that an implementation may run them
/// concurrently (WebCrypto runs each call on a thread of its own). The RSA methods may decline
/// (`Ok(None)`, their default), and this crate's code does the operation.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Offload: MaybeSendSync {
    /// Seals each chunk in place: AES-256-GCM under `key` with the chunk's nonce and no
    /// associated data, the ciphertext over `buf[offset..offset + len]` and the 16-byte tag in
    /// `buf[offset + len..offset + len + 16]`.
    async fn seal_chunks(&self, key: &[u8; 32], buf: &mut [u8], chunks: &[Chunk]) -> Result<()>;

    /// Opens each chunk in place (the inverse of [`Offload::seal_chunks`]): the plaintext
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

    /// `identity`'s RSA-PSS signature (SHA-256, MGF1-SHA-256, 32-byte salt) of `message`, or
    /// `None` to leave it to this crate.
    async fn sign(&self, identity: &Identity, message: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = (identity, message);
        Ok(None)
    }

    /// `wrapped` decrypted with `identity`'s key by RSA-OAEP (SHA-256, MGF1-SHA-256) under
    /// `label`, or `None` to leave it to this crate. One that does not decrypt is
    /// [`Error::KeyUnwrap`].
    async fn oaep_unwrap(
        &self,
        identity: &Identity,
        wrapped: &[u8],
        label: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let _ = (identity, wrapped, label);
        Ok(None)
    }
}

/// This crate's own code behind the [`Offload`] interface (every method answers): the
/// reference the platform's implementations are tested against.
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

/// `identity`'s RSA-PSS signature of `message`: through `offload` where it offers one (checked
/// against `identity`'s public key before it is returned), else by this crate's code.
pub async fn sign(
    offload: Option<&dyn Offload>,
    identity: &Identity,
    message: &[u8],
) -> Result<Vec<u8>> {
    if let Some(offload) = offload
        && let Some(sig) = offload.sign(identity, message).await?
    {
        identity.public().verify(message, &sig).map_err(|_| {
            Error::Backend("the platform's RSA-PSS signature does not verify".into())
        })?;
        return Ok(sig);
    }
    identity.sign(message)
}

/// The first block (16 bytes) of `chunk` in `buf`, kept before the platform seals or opens it
/// in place, to check its work with [`check_block`].
pub(crate) fn probe(buf: &[u8], chunk: &Chunk) -> Option<(Chunk, Zeroizing<Vec<u8>>)> {
    let end = chunk.offset.checked_add(chunk.len.min(16))?;
    Some((*chunk, Zeroizing::new(buf.get(chunk.offset..end)?.to_vec())))
}

/// Checks that the platform sealed (or opened) the probed chunk in `buf` under `key` and the
/// chunk's nonce: the block before and the block after differ by the AES-GCM keystream (block
/// `nonce || 2`). A platform that did nothing, or used another key or nonce, is caught before
/// what it sealed is stored, or what it opened is handed out. (Tags are the platform's to check:
/// a wrong one on publish makes the record unreadable, which every read reports.)
pub(crate) fn check_block(
    key: &[u8; 32],
    buf: &[u8],
    probe: &(Chunk, Zeroizing<Vec<u8>>),
    what: &str,
) -> Result<()> {
    use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit};
    let (chunk, before) = probe;
    let mut block = aes_gcm::aes::Block::default();
    block[..12].copy_from_slice(&chunk.nonce);
    block[12..].copy_from_slice(&2u32.to_be_bytes());
    aes_gcm::aes::Aes256::new(key.into()).encrypt_block(&mut block);
    let after = chunk
        .offset
        .checked_add(before.len())
        .and_then(|end| buf.get(chunk.offset..end));
    let right = after.is_some_and(|a| {
        a.iter()
            .zip(before.iter())
            .zip(block.iter())
            .all(|((a, b), k)| a ^ k == *b)
    });
    block.zeroize();
    if right {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "the platform's AES-GCM {what} chunk {} wrongly",
            chunk.index
        )))
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Offload for Portable {
    async fn seal_chunks(&self, key: &[u8; 32], buf: &mut [u8], chunks: &[Chunk]) -> Result<()> {
        let cipher = crate::envelope::key::Cipher::new(key);
        for c in chunks {
            let (body, tag) = chunk_parts(buf, c)?;
            tag.copy_from_slice(&cipher.seal_in_place(c.nonce, &[], body));
        }
        Ok(())
    }

    async fn open_chunks(
        &self,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[Chunk],
    ) -> Result<Option<usize>> {
        let cipher = crate::envelope::key::Cipher::new(key);
        for (i, c) in chunks.iter().enumerate() {
            let (body, tag) = chunk_parts(buf, c)?;
            if cipher.open_in_place(c.nonce, &[], body, tag).is_err() {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    async fn sha256_many(&self, items: &[&[u8]]) -> Result<Vec<[u8; 32]>> {
        Ok(items.iter().map(|d| Sha256::digest(d).into()).collect())
    }

    async fn sign(&self, identity: &Identity, message: &[u8]) -> Result<Option<Vec<u8>>> {
        identity.sign(message).map(Some)
    }

    async fn oaep_unwrap(
        &self,
        identity: &Identity,
        wrapped: &[u8],
        label: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        identity.oaep_unwrap(wrapped, label).map(Some)
    }
}
