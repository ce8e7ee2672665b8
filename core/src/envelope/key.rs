//! The data key of a record version: wrapping it to readers (RSA-OAEP), committing to it, and
//! deriving the envelope's working keys from it (HKDF-SHA256).
//!
//! Key schedule (docs/FORMAT.md §3.3): `prk = HKDF-Extract(salt, dek)`, then
//! `commitment = HKDF-Expand(prk, "medshare/v2/key-commitment", 32)`,
//! `metadata key = HKDF-Expand(prk, "medshare/v2/metadata", 32)` and
//! `payload key = HKDF-Expand(prk, "medshare/v2/payload" || SHA-256(header), 32)`.
//! The commitment is in the header and in the `PublishRecord` transaction; a reader compares it
//! before decrypting anything, so a publisher cannot hand two readers two different keys for one
//! version (AES-GCM alone is not key-committing).

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::AeadInOut;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::identity::{Identity, PublicKey};
use crate::record::RecordId;

const OAEP_LABEL_PREFIX: &[u8] = b"medshare/v2/dek";
const INFO_COMMITMENT: &[u8] = b"medshare/v2/key-commitment";
const INFO_METADATA: &[u8] = b"medshare/v2/metadata";
const INFO_PAYLOAD: &[u8] = b"medshare/v2/payload";

/// A record version's data encryption key (DEK). Zeroized on drop.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<DataKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(k.as_mut()).map_err(|_| Error::Rng)?;
        Ok(DataKey(k))
    }

    /// From raw bytes (test vectors; keys unwrapped by other means).
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(Zeroizing::new(bytes))
    }

    /// The raw key bytes. Handle with care.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps the key to `recipient` with RSA-OAEP-SHA256, labelled with (record, version).
    pub fn wrap(&self, recipient: &PublicKey, record: &RecordId, version: u32) -> Result<Vec<u8>> {
        recipient.oaep_wrap(self.0.as_ref(), &oaep_label(record, version))
    }

    /// Unwraps a key wrapped by [`DataKey::wrap`] for `identity` and the same (record, version).
    /// Any mismatch — other key, other record or version, altered bytes — is [`Error::KeyUnwrap`].
    pub fn unwrap(
        identity: &Identity,
        wrapped: &[u8],
        record: &RecordId,
        version: u32,
    ) -> Result<DataKey> {
        let raw = identity.oaep_unwrap(wrapped, &oaep_label(record, version))?;
        let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| Error::KeyUnwrap)?;
        Ok(DataKey(Zeroizing::new(arr)))
    }

    fn prk(&self, salt: &[u8; 32]) -> hkdf::Hkdf<Sha256> {
        hkdf::Hkdf::<Sha256>::new(Some(salt), self.expose())
    }

    /// The commitment to this key under `salt` (32 bytes, in the header and on the ledger).
    pub fn commitment(&self, salt: &[u8; 32]) -> [u8; 32] {
        let mut c = [0u8; 32];
        // 32 bytes is far below HKDF's output limit (255 * 32).
        let _ = self.prk(salt).expand(INFO_COMMITMENT, &mut c);
        c
    }

    /// Fails with [`Error::KeyCommitment`] unless this key's commitment under `salt` is
    /// `expected` (constant-time comparison).
    pub fn check_commitment(&self, salt: &[u8; 32], expected: &[u8; 32]) -> Result<()> {
        let actual = self.commitment(salt);
        let diff = actual
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(Error::KeyCommitment)
        }
    }

    pub(crate) fn metadata_cipher(&self, salt: &[u8; 32]) -> Cipher {
        let mut k = Zeroizing::new([0u8; 32]);
        let _ = self.prk(salt).expand(INFO_METADATA, k.as_mut());
        Cipher::new(&k)
    }

    /// The payload key (the AES-256-GCM key of every chunk) of an envelope with this header.
    pub(crate) fn payload_key(&self, salt: &[u8; 32], header: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        let hash = Sha256::digest(header);
        let _ = self
            .prk(salt)
            .expand_multi_info(&[INFO_PAYLOAD, &hash], k.as_mut());
        k
    }

    pub(crate) fn payload_cipher(&self, salt: &[u8; 32], header: &[u8]) -> Cipher {
        Cipher::new(&self.payload_key(salt, header))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// The OAEP label binding a wrapped DEK to one record version.
pub fn oaep_label(record: &RecordId, version: u32) -> Vec<u8> {
    let mut label = Vec::with_capacity(OAEP_LABEL_PREFIX.len() + 20);
    label.extend_from_slice(OAEP_LABEL_PREFIX);
    label.extend_from_slice(record.as_bytes());
    label.extend_from_slice(&version.to_be_bytes());
    label
}

/// An AES-256-GCM key, ready: AWS-LC's with the `aws-lc` feature on native targets (its
/// VAES/VPCLMULQDQ code; a profile of a 1 GiB open put the RustCrypto GHASH at 2.6× the time
/// of its AES), the RustCrypto `aes-gcm` crate otherwise. Both produce the same bytes (the
/// vectors run on both).
pub(crate) struct Cipher(Backend);

enum Backend {
    // With `aws-lc`, made only by the tests (as the reference AWS-LC is checked against).
    #[cfg_attr(all(feature = "aws-lc", not(target_arch = "wasm32")), allow(dead_code))]
    RustCrypto(Box<Aes256Gcm>),
    #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
}

impl Cipher {
    pub(crate) fn new(key: &[u8; 32]) -> Cipher {
        #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
        return match aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key) {
            Ok(k) => Cipher(Backend::AwsLc(aws_lc_rs::aead::LessSafeKey::new(k))),
            // Never silently another implementation (a `fips` build must stay in the module).
            Err(_) => unreachable!("AWS-LC accepts every 32-byte AES-256 key"),
        };
        #[cfg(not(all(feature = "aws-lc", not(target_arch = "wasm32"))))]
        {
            use aes_gcm::KeyInit;
            Cipher(Backend::RustCrypto(Box::new(Aes256Gcm::new(
                &(*key).into(),
            ))))
        }
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(crate) fn seal_in_place(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        match &self.0 {
            // Encryption fails only for inputs over 64 GiB; chunks and metadata are far smaller.
            Backend::RustCrypto(c) => {
                match c.encrypt_inout_detached(&nonce.into(), aad, buf.into()) {
                    Ok(tag) => tag.into(),
                    Err(_) => unreachable!("AES-GCM input within limits"),
                }
            }
            #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
            Backend::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                let tag = k.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    buf,
                );
                match tag.ok().and_then(|t| <[u8; 16]>::try_from(t.as_ref()).ok()) {
                    Some(tag) => tag,
                    None => unreachable!("AES-GCM input within limits"),
                }
            }
        }
    }

    /// Decrypts `buf` in place if `tag` authenticates it (with `aad`). On failure `buf` holds
    /// the ciphertext (RustCrypto checks the tag before decrypting) or zeros (AWS-LC clears its
    /// output), never plaintext.
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> std::result::Result<(), ()> {
        match &self.0 {
            Backend::RustCrypto(c) => {
                let tag = aes_gcm::Tag::try_from(tag).map_err(|_| ())?;
                c.decrypt_inout_detached(&nonce.into(), aad, buf.into(), &tag)
                    .map_err(|_| ())
            }
            #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
            Backend::AwsLc(k) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                if tag.len() != 16 {
                    return Err(());
                }
                k.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    tag,
                    buf,
                )
                .map(|_| ())
                .map_err(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Aes256Gcm, Backend, Cipher};
    use aes_gcm::KeyInit;
    use proptest::prelude::*;

    fn rustcrypto(key: &[u8; 32]) -> Cipher {
        Cipher(Backend::RustCrypto(Box::new(Aes256Gcm::new(
            &(*key).into(),
        ))))
    }

    proptest! {
        /// Whichever backend the build uses, it seals to the bytes and tag of the RustCrypto
        /// one, opens what that one sealed, and refuses a changed tag or ciphertext.
        #[test]
        fn the_backend_matches_rustcrypto(
            key: [u8; 32],
            nonce: [u8; 12],
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            flip in any::<usize>(),
        ) {
            let (ours, reference) = (Cipher::new(&key), rustcrypto(&key));
            #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
            prop_assert!(matches!(ours.0, Backend::AwsLc(_)));
            let (mut a, mut b) = (data.clone(), data.clone());
            let tag = ours.seal_in_place(nonce, &aad, &mut a);
            prop_assert_eq!(tag, reference.seal_in_place(nonce, &aad, &mut b));
            prop_assert_eq!(&a, &b);
            let mut opened = a.clone();
            prop_assert!(ours.open_in_place(nonce, &aad, &mut opened, &tag).is_ok());
            prop_assert_eq!(&opened, &data);
            let mut bad_tag = tag;
            bad_tag[flip % 16] ^= 1;
            prop_assert!(ours.open_in_place(nonce, &aad, &mut a.clone(), &bad_tag).is_err());
            prop_assert!(ours.open_in_place(nonce, &aad, &mut a.clone(), &tag[..15]).is_err());
            if !a.is_empty() {
                let mut bad = a.clone();
                bad[flip % a.len()] ^= 0x80;
                prop_assert!(ours.open_in_place(nonce, &aad, &mut bad, &tag).is_err());
            }
        }
    }
}
