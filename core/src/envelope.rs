//! The sealed record envelope: chunked AES-256-GCM STREAM with RSA-OAEP key wrapping.
//!
//! One envelope holds one version of one record. A fresh 256-bit data key (DEK) is drawn per
//! version; it is wrapped with RSA-OAEP-SHA256 to every recipient under a label that binds it to
//! (record id, version), so a wrapped key cannot be replayed onto another record or version.
//! Metadata (file name, media type, size) is encrypted; the payload is split into chunks of
//! `2^e` bytes, each sealed with AES-256-GCM under a key derived by HKDF-SHA256 from the DEK, a
//! random salt and the hash of the whole header, with the nonce `counter (11 bytes) || last flag`.
//! Because the (authenticated) metadata fixes the plaintext size, the number and size of chunks
//! is known before the first chunk is read: truncation, extension, reordering and chunk swapping
//! are all detected, and any byte range can be decrypted alone.
//!
//! The byte layout is documented in `docs/FORMAT.md`.
//!
//! Two interfaces are offered: [`seal`] / [`open`] / [`open_range`] over `Read`/`Write`/`Seek`,
//! and the push-style [`Sealer`] / [`Opener`] that a caller feeds buffers to (used where the
//! bytes come from, or go to, an asynchronous store). Both use constant memory.

use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::str::FromStr;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::cid::{multibase_base32, parse_multibase_base32};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, PublicKey};
use crate::limits;

/// Magic bytes opening every envelope.
pub const MAGIC: &[u8; 6] = b"MSHENV";
/// Current envelope format version.
pub const FORMAT_VERSION: u8 = 1;
/// Default chunk size exponent: 2^16 = 64 KiB of plaintext per chunk.
pub const DEFAULT_CHUNK_EXP: u8 = 16;
/// Smallest allowed chunk size exponent (4 KiB).
pub const MIN_CHUNK_EXP: u8 = 12;
/// Largest allowed chunk size exponent (1 MiB).
pub const MAX_CHUNK_EXP: u8 = 20;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

const FIXED_HEADER_LEN: usize = 6 + 1 + 1 + 16 + 4 + 32 + 2;
const METADATA_PAD: usize = 256;
const MAX_METADATA_CT: usize = 4096;
const OAEP_LABEL_PREFIX: &[u8] = b"medshare/v1/dek";
const HKDF_INFO_METADATA: &[u8] = b"medshare/v1/metadata";
const HKDF_INFO_PAYLOAD: &[u8] = b"medshare/v1/payload";

/// The id of a record: 16 random bytes, printed as multibase base32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 16]);

impl RecordId {
    /// A fresh random record id.
    pub fn random() -> Result<RecordId> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|_| Error::Rng)?;
        Ok(RecordId(b))
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> RecordId {
        RecordId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&multibase_base32(&self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({self})")
    }
}

impl FromStr for RecordId {
    type Err = Error;

    fn from_str(s: &str) -> Result<RecordId> {
        parse_multibase_base32(s)
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
            .map(RecordId)
            .ok_or_else(|| Error::MalformedEnvelope(format!("`{s}` is not a record id")))
    }
}

/// Encrypted descriptive data of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Original file name (may be empty).
    pub name: String,
    /// Media type, e.g. `application/fhir+json`, `application/dicom`.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
}

impl Metadata {
    fn validate(&self) -> Result<()> {
        if self.name.len() > limits::MAX_FILE_NAME {
            return Err(Error::TooLarge {
                what: "file name",
                size: self.name.len() as u64,
                limit: limits::MAX_FILE_NAME as u64,
            });
        }
        if self.media_type.len() > limits::MAX_MEDIA_TYPE {
            return Err(Error::TooLarge {
                what: "media type",
                size: self.media_type.len() as u64,
                limit: limits::MAX_MEDIA_TYPE as u64,
            });
        }
        if self.size > limits::MAX_RECORD_SIZE {
            return Err(Error::TooLarge {
                what: "record",
                size: self.size,
                limit: limits::MAX_RECORD_SIZE,
            });
        }
        Ok(())
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let raw_len = 8 + 2 + self.name.len() + 2 + self.media_type.len();
        let padded = raw_len.div_ceil(METADATA_PAD) * METADATA_PAD;
        let mut out = Zeroizing::new(Vec::with_capacity(padded + TAG_LEN));
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&(self.media_type.len() as u16).to_be_bytes());
        out.extend_from_slice(self.media_type.as_bytes());
        out.resize(padded, 0);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Metadata> {
        let bad = |why: &str| Error::MalformedEnvelope(format!("metadata: {why}"));
        let mut r = bytes;
        let size = u64::from_be_bytes(
            take(&mut r, 8)
                .ok_or_else(|| bad("truncated"))?
                .try_into()
                .map_err(|_| bad("size"))?,
        );
        let name = take_str16(&mut r).ok_or_else(|| bad("bad name"))?;
        let media_type = take_str16(&mut r).ok_or_else(|| bad("bad media type"))?;
        if r.iter().any(|&b| b != 0) {
            return Err(bad("non-zero padding"));
        }
        let m = Metadata {
            name,
            media_type,
            size,
        };
        m.validate()?;
        Ok(m)
    }
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn take_str16(r: &mut &[u8]) -> Option<String> {
    let len = take(r, 2)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    String::from_utf8(take(r, len)?.to_vec()).ok()
}

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

/// A recipient entry of the header: who, and the DEK wrapped to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// The recipient's identity id.
    pub recipient: IdentityId,
    /// RSA-OAEP ciphertext of the DEK (as long as the recipient's modulus).
    pub wrapped_key: Vec<u8>,
}

/// A parsed envelope header.
#[derive(Clone, Debug)]
pub struct Header {
    chunk_exp: u8,
    record: RecordId,
    version: u32,
    salt: [u8; 32],
    stanzas: Vec<Stanza>,
    /// Offset of the metadata ciphertext within `raw`.
    meta_offset: usize,
    raw: Vec<u8>,
}

impl Header {
    /// Reads and parses a header from the start of an envelope.
    pub fn read_from<R: Read>(input: &mut R) -> Result<Header> {
        let mut raw = vec![0u8; FIXED_HEADER_LEN];
        read_exact_or_truncated(input, &mut raw)?;
        let (chunk_exp, record, version, salt, count) = parse_fixed(&raw)?;
        let mut stanzas = Vec::with_capacity(count);
        for _ in 0..count {
            let start = raw.len();
            raw.resize(start + 36, 0);
            read_exact_or_truncated(input, &mut raw[start..])?;
            let recipient = IdentityId::from_bytes(&raw[start..start + 34])
                .map_err(|_| Error::MalformedEnvelope("bad recipient id".into()))?;
            let len = usize::from(u16::from_be_bytes([raw[start + 34], raw[start + 35]]));
            if !(256..=512).contains(&len) {
                return Err(Error::MalformedEnvelope(format!(
                    "wrapped key length {len} out of range"
                )));
            }
            let at = raw.len();
            raw.resize(at + len, 0);
            read_exact_or_truncated(input, &mut raw[at..])?;
            if stanzas.iter().any(|s: &Stanza| s.recipient == recipient) {
                return Err(Error::MalformedEnvelope("duplicate recipient".into()));
            }
            stanzas.push(Stanza {
                recipient,
                wrapped_key: raw[at..].to_vec(),
            });
        }
        let at = raw.len();
        raw.resize(at + 4, 0);
        read_exact_or_truncated(input, &mut raw[at..])?;
        let meta_len =
            u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]) as usize;
        if !(METADATA_PAD + TAG_LEN..=MAX_METADATA_CT).contains(&meta_len)
            || !(meta_len - TAG_LEN).is_multiple_of(METADATA_PAD)
        {
            return Err(Error::MalformedEnvelope(format!(
                "metadata length {meta_len} invalid"
            )));
        }
        let meta_offset = raw.len();
        raw.resize(meta_offset + meta_len, 0);
        read_exact_or_truncated(input, &mut raw[meta_offset..])?;
        Ok(Header {
            chunk_exp,
            record,
            version,
            salt,
            stanzas,
            meta_offset,
            raw,
        })
    }

    /// Parses a header from the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        Header::read_from(&mut &bytes[..])
    }

    /// Header length in bytes (the payload starts here).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Always false: a header is never empty. (Provided for API symmetry with `len`.)
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The encoded header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The record this envelope is a version of.
    pub fn record(&self) -> RecordId {
        self.record
    }

    /// The record version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> usize {
        1 << self.chunk_exp
    }

    /// Recipient entries.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }

    /// Finds `identity`'s stanza and unwraps the DEK.
    pub fn unwrap_key(&self, identity: &Identity) -> Result<DataKey> {
        let stanza = self
            .stanzas
            .iter()
            .find(|s| s.recipient == identity.id())
            .ok_or(Error::NotARecipient)?;
        DataKey::unwrap(identity, &stanza.wrapped_key, &self.record, self.version)
    }

    fn keys(&self, dek: &DataKey) -> Result<Keys> {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&self.salt), dek.expose());
        let mut meta_key = Zeroizing::new([0u8; 32]);
        hk.expand(HKDF_INFO_METADATA, meta_key.as_mut())
            .map_err(|_| Error::Rng)?;
        let mut payload_key = Zeroizing::new([0u8; 32]);
        let header_hash = Sha256::digest(&self.raw);
        hk.expand_multi_info(&[HKDF_INFO_PAYLOAD, &header_hash], payload_key.as_mut())
            .map_err(|_| Error::Rng)?;
        Ok(Keys {
            metadata: new_cipher(&meta_key),
            payload: new_cipher(&payload_key),
        })
    }

    /// Decrypts the metadata with `dek`.
    pub fn metadata(&self, dek: &DataKey) -> Result<Metadata> {
        self.decrypt_metadata(&self.keys(dek)?)
    }

    fn decrypt_metadata(&self, keys: &Keys) -> Result<Metadata> {
        let (aad, ct) = self.raw.split_at(self.meta_offset);
        let (ct, tag) = ct.split_at(ct.len() - TAG_LEN);
        let mut buf = Zeroizing::new(ct.to_vec());
        open_in_place(&keys.metadata, [0u8; 12], aad, &mut buf, tag)
            .map_err(|()| Error::ChunkAuthentication { index: u64::MAX })?;
        Metadata::decode(&buf)
    }

    /// Number of payload chunks for a plaintext of `size` bytes.
    fn chunk_count(&self, size: u64) -> u64 {
        size.div_ceil(self.chunk_size() as u64).max(1)
    }

    /// Length of the payload (all chunks with their tags) for a plaintext of `size` bytes.
    pub fn payload_len(&self, size: u64) -> u64 {
        size + self.chunk_count(size) * TAG_LEN as u64
    }
}

fn parse_fixed(raw: &[u8]) -> Result<(u8, RecordId, u32, [u8; 32], usize)> {
    if &raw[..6] != MAGIC {
        return Err(Error::MalformedEnvelope(
            "not a medshare envelope (bad magic)".into(),
        ));
    }
    if raw[6] != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(raw[6]));
    }
    let chunk_exp = raw[7];
    if !(MIN_CHUNK_EXP..=MAX_CHUNK_EXP).contains(&chunk_exp) {
        return Err(Error::MalformedEnvelope(format!(
            "chunk size exponent {chunk_exp} out of range"
        )));
    }
    let mut record = [0u8; 16];
    record.copy_from_slice(&raw[8..24]);
    let version = u32::from_be_bytes([raw[24], raw[25], raw[26], raw[27]]);
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&raw[28..60]);
    let count = usize::from(u16::from_be_bytes([raw[60], raw[61]]));
    if count == 0 || count > limits::MAX_RECIPIENTS {
        return Err(Error::MalformedEnvelope(format!(
            "recipient count {count} out of range"
        )));
    }
    Ok((chunk_exp, RecordId(record), version, salt, count))
}

fn read_exact_or_truncated<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated,
        _ => Error::Io(e),
    })
}

struct Keys {
    metadata: Aes256Gcm,
    payload: Aes256Gcm,
}

fn new_cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&(*key).into())
}

fn seal_in_place(cipher: &Aes256Gcm, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    // Encryption fails only for inputs over 64 GiB; chunks and metadata are far smaller.
    match cipher.encrypt_inout_detached(&nonce.into(), aad, buf.into()) {
        Ok(tag) => tag.into(),
        Err(_) => unreachable!("AES-GCM input within limits"),
    }
}

fn open_in_place(
    cipher: &Aes256Gcm,
    nonce: [u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), ()> {
    let tag = aes_gcm::Tag::try_from(tag).map_err(|_| ())?;
    cipher
        .decrypt_inout_detached(&nonce.into(), aad, buf.into(), &tag)
        .map_err(|_| ())
}

fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Options for sealing.
#[derive(Clone, Copy, Debug)]
pub struct SealOptions {
    /// Chunk size exponent (`2^e` plaintext bytes per chunk), 12..=20.
    pub chunk_exp: u8,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            chunk_exp: DEFAULT_CHUNK_EXP,
        }
    }
}

/// Push-style sealing: feed plaintext, collect ciphertext.
///
/// ```
/// # use medshare::envelope::*;
/// # fn demo(recipient: &medshare::PublicKey) -> medshare::Result<()> {
/// let meta = Metadata { name: "a.txt".into(), media_type: "text/plain".into(), size: 5 };
/// let (mut sealer, mut out) = Sealer::new(&RecordId::random()?, 1, &meta, &[recipient], SealOptions::default())?;
/// sealer.update(b"hello", &mut out)?;
/// let dek = sealer.finish(&mut out)?;
/// # let _ = dek; Ok(()) }
/// ```
pub struct Sealer {
    cipher: Aes256Gcm,
    dek: DataKey,
    chunk_size: usize,
    declared: u64,
    seen: u64,
    index: u64,
    buf: Zeroizing<Vec<u8>>,
}

impl Sealer {
    /// Starts an envelope for `record`/`version` with a fresh DEK wrapped to every recipient.
    /// Returns the sealer and the header bytes (the start of the envelope).
    pub fn new(
        record: &RecordId,
        version: u32,
        metadata: &Metadata,
        recipients: &[&PublicKey],
        options: SealOptions,
    ) -> Result<(Sealer, Vec<u8>)> {
        Sealer::with_key(
            DataKey::generate()?,
            record,
            version,
            metadata,
            recipients,
            options,
        )
    }

    /// Like [`Sealer::new`] with a caller-chosen DEK and a fresh salt.
    pub fn with_key(
        dek: DataKey,
        record: &RecordId,
        version: u32,
        metadata: &Metadata,
        recipients: &[&PublicKey],
        options: SealOptions,
    ) -> Result<(Sealer, Vec<u8>)> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| Error::Rng)?;
        let stanzas = recipients
            .iter()
            .map(|pk| {
                Ok(Stanza {
                    recipient: pk.id(),
                    wrapped_key: dek.wrap(pk, record, version)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Sealer::from_parts(dek, salt, stanzas, record, version, metadata, options)
    }

    /// Fully deterministic construction (DEK, salt and wrapped keys given); used for test vectors.
    pub fn from_parts(
        dek: DataKey,
        salt: [u8; 32],
        stanzas: Vec<Stanza>,
        record: &RecordId,
        version: u32,
        metadata: &Metadata,
        options: SealOptions,
    ) -> Result<(Sealer, Vec<u8>)> {
        metadata.validate()?;
        if !(MIN_CHUNK_EXP..=MAX_CHUNK_EXP).contains(&options.chunk_exp) {
            return Err(Error::MalformedEnvelope(format!(
                "chunk size exponent {} out of range",
                options.chunk_exp
            )));
        }
        if stanzas.is_empty() || stanzas.len() > limits::MAX_RECIPIENTS {
            return Err(Error::TooLarge {
                what: "recipient list",
                size: stanzas.len() as u64,
                limit: limits::MAX_RECIPIENTS as u64,
            });
        }
        let mut raw = Vec::with_capacity(FIXED_HEADER_LEN + stanzas.len() * 420 + 600);
        raw.extend_from_slice(MAGIC);
        raw.push(FORMAT_VERSION);
        raw.push(options.chunk_exp);
        raw.extend_from_slice(record.as_bytes());
        raw.extend_from_slice(&version.to_be_bytes());
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(&(stanzas.len() as u16).to_be_bytes());
        for (i, s) in stanzas.iter().enumerate() {
            if stanzas[..i].iter().any(|o| o.recipient == s.recipient) {
                return Err(Error::MalformedEnvelope("duplicate recipient".into()));
            }
            raw.extend_from_slice(s.recipient.as_bytes());
            raw.extend_from_slice(&(s.wrapped_key.len() as u16).to_be_bytes());
            raw.extend_from_slice(&s.wrapped_key);
        }
        let meta_plain = metadata.encode();
        raw.extend_from_slice(&((meta_plain.len() + TAG_LEN) as u32).to_be_bytes());
        let meta_offset = raw.len();
        // Keys depend on the final header hash, which includes the metadata ciphertext; the
        // metadata key does not, so encrypt metadata first, then derive the payload key.
        let mut header = Header {
            chunk_exp: options.chunk_exp,
            record: *record,
            version,
            salt,
            stanzas,
            meta_offset,
            raw,
        };
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), dek.expose());
        let mut meta_key = Zeroizing::new([0u8; 32]);
        hk.expand(HKDF_INFO_METADATA, meta_key.as_mut())
            .map_err(|_| Error::Rng)?;
        let meta_cipher = new_cipher(&meta_key);
        let mut ct = meta_plain.to_vec();
        let tag = seal_in_place(&meta_cipher, [0u8; 12], &header.raw, &mut ct);
        header.raw.extend_from_slice(&ct);
        header.raw.extend_from_slice(&tag);
        let keys = header.keys(&dek)?;
        let chunk_size = header.chunk_size();
        let sealer = Sealer {
            cipher: keys.payload,
            dek,
            chunk_size,
            declared: metadata.size,
            seen: 0,
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(chunk_size + TAG_LEN)),
        };
        Ok((sealer, header.raw))
    }

    /// Encrypts `plaintext`, appending complete chunks to `out`. A full chunk is held back until
    /// more input (or `finish`) shows whether it is the last one.
    pub fn update(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.seen += plaintext.len() as u64;
        if self.seen > self.declared {
            return Err(Error::SizeMismatch {
                expected: self.declared,
                actual: self.seen,
            });
        }
        while !plaintext.is_empty() {
            if self.buf.len() == self.chunk_size {
                self.emit(false, out)?;
            }
            if self.buf.is_empty() && plaintext.len() > self.chunk_size {
                // A whole chunk with more input after it, so not the last one: sealed straight
                // from the input into `out`, without passing through the chunk buffer.
                let (chunk, rest) = plaintext.split_at(self.chunk_size);
                let start = out.len();
                out.extend_from_slice(chunk);
                let nonce = chunk_nonce(self.index, false);
                let tag = seal_in_place(&self.cipher, nonce, &[], &mut out[start..]);
                out.extend_from_slice(&tag);
                self.index += 1;
                plaintext = rest;
                continue;
            }
            let n = (self.chunk_size - self.buf.len()).min(plaintext.len());
            self.buf.extend_from_slice(&plaintext[..n]);
            plaintext = &plaintext[n..];
        }
        Ok(())
    }

    fn emit(&mut self, last: bool, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        self.buf.zeroize();
        self.buf.clear();
        let tag = seal_in_place(
            &self.cipher,
            chunk_nonce(self.index, last),
            &[],
            &mut out[start..],
        );
        out.extend_from_slice(&tag);
        self.index += 1;
        Ok(())
    }

    /// Writes the final chunk and returns the DEK (so the caller can wrap it to more recipients).
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<DataKey> {
        if self.seen != self.declared {
            return Err(Error::SizeMismatch {
                expected: self.declared,
                actual: self.seen,
            });
        }
        self.emit(true, out)?;
        Ok(self.dek.clone())
    }
}

/// Push-style opening: feed ciphertext (after the header), collect plaintext.
pub struct Opener {
    cipher: Aes256Gcm,
    metadata: Metadata,
    chunk_size: usize,
    chunks: u64,
    index: u64,
    remaining: u64,
    buf: Vec<u8>,
}

impl Opener {
    /// Prepares to decrypt the payload of `header` with `dek`; checks the metadata.
    pub fn new(header: &Header, dek: &DataKey) -> Result<Opener> {
        let keys = header.keys(dek)?;
        let metadata = header.decrypt_metadata(&keys)?;
        let chunk_size = header.chunk_size();
        Ok(Opener {
            cipher: keys.payload,
            chunks: header.chunk_count(metadata.size),
            remaining: header.payload_len(metadata.size),
            metadata,
            chunk_size,
            index: 0,
            buf: Vec::with_capacity(chunk_size + TAG_LEN),
        })
    }

    /// The decrypted metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn current_chunk_len(&self) -> usize {
        if self.index + 1 == self.chunks {
            // The last chunk holds what is left.
            let before = (self.chunks - 1) * self.chunk_size as u64;
            (self.metadata.size - before) as usize + TAG_LEN
        } else {
            self.chunk_size + TAG_LEN
        }
    }

    /// Decrypts `ciphertext`, appending plaintext of every completed chunk to `out`.
    pub fn update(&mut self, mut ciphertext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if ciphertext.len() as u64 > self.remaining {
            return Err(Error::TrailingData);
        }
        self.remaining -= ciphertext.len() as u64;
        while !ciphertext.is_empty() {
            let len = self.current_chunk_len();
            if self.buf.is_empty() && ciphertext.len() >= len {
                // A whole chunk in the input: decrypted straight into `out`. If it does not
                // authenticate, what was written is wiped and removed.
                let (chunk, rest) = ciphertext.split_at(len);
                let (body, tag) = chunk.split_at(len - TAG_LEN);
                let last = self.index + 1 == self.chunks;
                let start = out.len();
                out.extend_from_slice(body);
                if open_in_place(
                    &self.cipher,
                    chunk_nonce(self.index, last),
                    &[],
                    &mut out[start..],
                    tag,
                )
                .is_err()
                {
                    out[start..].zeroize();
                    out.truncate(start);
                    return Err(Error::ChunkAuthentication { index: self.index });
                }
                self.index += 1;
                ciphertext = rest;
                continue;
            }
            let want = self.current_chunk_len() - self.buf.len();
            let n = want.min(ciphertext.len());
            self.buf.extend_from_slice(&ciphertext[..n]);
            ciphertext = &ciphertext[n..];
            if self.buf.len() == self.current_chunk_len() {
                self.decrypt_chunk(out)?;
            }
        }
        Ok(())
    }

    fn decrypt_chunk(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let last = self.index + 1 == self.chunks;
        let split = self.buf.len() - TAG_LEN;
        let (body, tag) = self.buf.split_at_mut(split);
        open_in_place(&self.cipher, chunk_nonce(self.index, last), &[], body, tag)
            .map_err(|()| Error::ChunkAuthentication { index: self.index })?;
        out.extend_from_slice(body);
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Checks that the whole payload was seen.
    pub fn finish(self, _out: &mut Vec<u8>) -> Result<Metadata> {
        // `update` decrypts every chunk as soon as it is complete, so all bytes seen means all
        // chunks (the final one included) were authenticated.
        if self.remaining != 0 {
            return Err(Error::Truncated);
        }
        Ok(self.metadata)
    }
}

/// Result of [`seal`].
#[derive(Debug)]
pub struct Sealed {
    /// The DEK of this version (wrap it to later grantees).
    pub key: DataKey,
    /// Total envelope length written.
    pub len: u64,
}

const IO_BUF: usize = 1 << 20;

/// Seals `input` (exactly `metadata.size` bytes) into `output` for `recipients`.
pub fn seal<R: Read, W: Write>(
    record: &RecordId,
    version: u32,
    metadata: &Metadata,
    recipients: &[&PublicKey],
    mut input: R,
    mut output: W,
) -> Result<Sealed> {
    let (mut sealer, header) = Sealer::new(
        record,
        version,
        metadata,
        recipients,
        SealOptions::default(),
    )?;
    output.write_all(&header)?;
    let mut len = header.len() as u64;
    let mut inbuf = Zeroizing::new(vec![0u8; IO_BUF]);
    let mut out = Vec::with_capacity(IO_BUF + IO_BUF / 256);
    loop {
        let n = read_some(&mut input, &mut inbuf)?;
        if n == 0 {
            break;
        }
        sealer.update(&inbuf[..n], &mut out)?;
        output.write_all(&out)?;
        len += out.len() as u64;
        out.clear();
    }
    let key = sealer.finish(&mut out)?;
    output.write_all(&out)?;
    len += out.len() as u64;
    output.flush()?;
    Ok(Sealed { key, len })
}

fn read_some<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<usize> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
    }
}

/// Opens an envelope as `identity` (which must be a recipient), writing the plaintext.
pub fn open<R: Read, W: Write>(identity: &Identity, mut input: R, output: W) -> Result<Metadata> {
    let header = Header::read_from(&mut input)?;
    let dek = header.unwrap_key(identity)?;
    open_payload(&header, &dek, input, output)
}

/// Opens an envelope with an already unwrapped DEK (e.g. from a ledger grant).
pub fn open_with_key<R: Read, W: Write>(
    dek: &DataKey,
    mut input: R,
    output: W,
) -> Result<Metadata> {
    let header = Header::read_from(&mut input)?;
    open_payload(&header, dek, input, output)
}

fn open_payload<R: Read, W: Write>(
    header: &Header,
    dek: &DataKey,
    mut input: R,
    mut output: W,
) -> Result<Metadata> {
    let mut opener = Opener::new(header, dek)?;
    let mut inbuf = vec![0u8; IO_BUF];
    let mut out = Zeroizing::new(Vec::with_capacity(IO_BUF));
    loop {
        let n = read_some(&mut input, &mut inbuf)?;
        if n == 0 {
            break;
        }
        opener.update(&inbuf[..n], &mut out)?;
        output.write_all(&out)?;
        out.zeroize();
        out.clear();
    }
    let meta = opener.finish(&mut out)?;
    output.write_all(&out)?;
    output.flush()?;
    Ok(meta)
}

/// Decrypts only the plaintext bytes `start..start+len` of an envelope, reading just the chunks
/// that hold them. Returns the metadata.
pub fn open_range<R: Read + Seek, W: Write>(
    dek: &DataKey,
    mut input: R,
    start: u64,
    len: u64,
    mut output: W,
) -> Result<Metadata> {
    input.seek(SeekFrom::Start(0))?;
    let header = Header::read_from(&mut input)?;
    let keys = header.keys(dek)?;
    let meta = header.decrypt_metadata(&keys)?;
    let end =
        start
            .checked_add(len)
            .filter(|&e| e <= meta.size)
            .ok_or(Error::RangeOutOfBounds {
                start,
                end: start.saturating_add(len),
                size: meta.size,
            })?;
    let total = input.seek(SeekFrom::End(0))?;
    let expected = header.len() as u64 + header.payload_len(meta.size);
    if total < expected {
        return Err(Error::Truncated);
    }
    if total > expected {
        return Err(Error::TrailingData);
    }
    if len == 0 {
        return Ok(meta);
    }
    let cs = header.chunk_size() as u64;
    let chunks = header.chunk_count(meta.size);
    let first = start / cs;
    let last_needed = (end - 1) / cs;
    input.seek(SeekFrom::Start(
        header.len() as u64 + first * (cs + TAG_LEN as u64),
    ))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(cs as usize + TAG_LEN));
    for index in first..=last_needed {
        let is_last = index + 1 == chunks;
        let plain_len = if is_last { meta.size - index * cs } else { cs };
        buf.resize(plain_len as usize + TAG_LEN, 0);
        read_exact_or_truncated(&mut input, &mut buf)?;
        let (body, tag) = buf.split_at_mut(plain_len as usize);
        open_in_place(&keys.payload, chunk_nonce(index, is_last), &[], body, tag)
            .map_err(|()| Error::ChunkAuthentication { index })?;
        let chunk_start = index * cs;
        let from = start.max(chunk_start) - chunk_start;
        let to = end.min(chunk_start + plain_len) - chunk_start;
        output.write_all(&body[from as usize..to as usize])?;
    }
    output.flush()?;
    Ok(meta)
}
