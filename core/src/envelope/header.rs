//! The envelope header: format version, chunk size, record and version, salt, key commitment,
//! recipients and the encrypted metadata (docs/FORMAT.md §3.1).

use std::io::Read;

use zeroize::Zeroizing;

use crate::envelope::key::{Cipher, DataKey};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId};
use crate::limits;
use crate::record::RecordId;

/// Magic bytes opening every envelope.
pub const MAGIC: &[u8; 6] = b"MSHENV";
/// Current envelope format version.
pub const FORMAT_VERSION: u8 = 2;
/// Default chunk size exponent: 2^16 = 64 KiB of plaintext per chunk.
pub const DEFAULT_CHUNK_EXP: u8 = 16;
/// Smallest allowed chunk size exponent (4 KiB).
pub const MIN_CHUNK_EXP: u8 = 12;
/// Largest allowed chunk size exponent (1 MiB).
pub const MAX_CHUNK_EXP: u8 = 20;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// magic, version, chunk exponent, record, version, salt, commitment, recipient count.
pub(crate) const FIXED_HEADER_LEN: usize = 6 + 1 + 1 + 16 + 4 + 32 + 32 + 2;
const METADATA_PAD: usize = 256;
const MAX_METADATA_CT: usize = 4096;

/// Encrypted descriptive data of a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    /// Original file name (may be empty).
    pub name: String,
    /// Media type, e.g. `application/fhir+json`, `application/dicom`.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
}

impl Metadata {
    pub(crate) fn validate(&self) -> Result<()> {
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

    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
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

/// The number of payload bytes a plaintext of `size` bytes is padded to: the Padmé length
/// (Nikitin et al., PETS 2019) of `max(size, 256)`. The padding hides all but the top bits of
/// the size (at most 12.5% overhead: ≤ 6.25% from 256 B to 64 KiB, ≤ 3.2% up to 4 GiB, ≤ 1.6% beyond); docs/SECURITY.md says exactly
/// what an envelope's size still reveals.
pub fn padded_len(size: u64) -> u64 {
    let l = size.max(256);
    // E = floor(log2 L), S = floor(log2 E) + 1; the low E - S bits are rounded up.
    let e = 63 - u64::from(l.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let z = e - s;
    let mask = (1u64 << z) - 1;
    l.saturating_add(mask) & !mask
}

/// A recipient entry of the header: which key, and the DEK wrapped to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// The id of the recipient's key.
    pub recipient: IdentityId,
    /// RSA-OAEP ciphertext of the DEK (as long as the recipient's modulus).
    pub wrapped_key: Vec<u8>,
}

/// A parsed envelope header.
#[derive(Clone, Debug)]
pub struct Header {
    pub(crate) chunk_exp: u8,
    pub(crate) record: RecordId,
    pub(crate) version: u32,
    pub(crate) salt: [u8; 32],
    pub(crate) commitment: [u8; 32],
    pub(crate) stanzas: Vec<Stanza>,
    /// Offset of the metadata ciphertext within `raw`.
    pub(crate) meta_offset: usize,
    pub(crate) raw: Vec<u8>,
}

impl Header {
    /// Reads and parses a header from the start of an envelope.
    pub fn read_from<R: Read>(input: &mut R) -> Result<Header> {
        let mut raw = vec![0u8; FIXED_HEADER_LEN];
        read_exact_or_truncated(input, &mut raw)?;
        let fixed = parse_fixed(&raw)?;
        let mut stanzas = Vec::with_capacity(fixed.count);
        for _ in 0..fixed.count {
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
            chunk_exp: fixed.chunk_exp,
            record: fixed.record,
            version: fixed.version,
            salt: fixed.salt,
            commitment: fixed.commitment,
            stanzas,
            meta_offset,
            raw,
        })
    }

    /// Parses a header from the start of `bytes` ([`Error::Truncated`] if they end first).
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

    /// The commitment to the data key (also in the `PublishRecord` transaction).
    pub fn commitment(&self) -> &[u8; 32] {
        &self.commitment
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> usize {
        1 << self.chunk_exp
    }

    /// Recipient entries.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }

    /// Finds the stanza of `identity`'s current key and unwraps the DEK, then checks it
    /// against the header's key commitment.
    pub fn unwrap_key(&self, identity: &Identity) -> Result<DataKey> {
        let stanza = self
            .stanzas
            .iter()
            .find(|s| s.recipient == identity.key_id())
            .ok_or(Error::NotARecipient)?;
        let dek = DataKey::unwrap(identity, &stanza.wrapped_key, &self.record, self.version)?;
        self.check_key(&dek)?;
        Ok(dek)
    }

    /// [`Error::KeyCommitment`] unless `dek` is the key this header commits to.
    pub fn check_key(&self, dek: &DataKey) -> Result<()> {
        dek.check_commitment(&self.salt, &self.commitment)
    }

    /// Decrypts the metadata with `dek` (after checking the key commitment).
    pub fn metadata(&self, dek: &DataKey) -> Result<Metadata> {
        self.check_key(dek)?;
        self.decrypt_metadata(&dek.metadata_cipher(&self.salt))
    }

    pub(crate) fn decrypt_metadata(&self, cipher: &Cipher) -> Result<Metadata> {
        let (aad, ct) = self.raw.split_at(self.meta_offset);
        let (ct, tag) = ct.split_at(ct.len() - TAG_LEN);
        let mut buf = Zeroizing::new(ct.to_vec());
        cipher
            .open_in_place([0u8; 12], aad, &mut buf, tag)
            .map_err(|()| Error::ChunkAuthentication { chunk: None })?;
        Metadata::decode(&buf)
    }

    /// Number of payload chunks for a plaintext of `size` bytes (after padding).
    pub(crate) fn chunk_count(&self, size: u64) -> u64 {
        padded_len(size).div_ceil(self.chunk_size() as u64).max(1)
    }

    /// Length of the payload (all padded chunks with their tags) for `size` plaintext bytes.
    pub fn payload_len(&self, size: u64) -> u64 {
        padded_len(size) + self.chunk_count(size) * TAG_LEN as u64
    }

    /// Builds a header: the fixed fields, the stanzas and the metadata encrypted under `dek`.
    /// Deterministic (the caller gives the salt and the wrapped keys): test vectors use it.
    pub fn build(
        dek: &DataKey,
        salt: [u8; 32],
        chunk_exp: u8,
        stanzas: Vec<Stanza>,
        record: &RecordId,
        version: u32,
        metadata: &Metadata,
    ) -> Result<Header> {
        metadata.validate()?;
        if !(MIN_CHUNK_EXP..=MAX_CHUNK_EXP).contains(&chunk_exp) {
            return Err(Error::InvalidInput(format!(
                "chunk size exponent {chunk_exp} out of range ({MIN_CHUNK_EXP}..={MAX_CHUNK_EXP})"
            )));
        }
        if stanzas.is_empty() || stanzas.len() > limits::MAX_RECIPIENTS {
            return Err(Error::TooLarge {
                what: "recipient list",
                size: stanzas.len() as u64,
                limit: limits::MAX_RECIPIENTS as u64,
            });
        }
        let commitment = dek.commitment(&salt);
        let mut raw = Vec::with_capacity(FIXED_HEADER_LEN + stanzas.len() * 420 + 600);
        raw.extend_from_slice(MAGIC);
        raw.push(FORMAT_VERSION);
        raw.push(chunk_exp);
        raw.extend_from_slice(record.as_bytes());
        raw.extend_from_slice(&version.to_be_bytes());
        raw.extend_from_slice(&salt);
        raw.extend_from_slice(&commitment);
        raw.extend_from_slice(&(stanzas.len() as u16).to_be_bytes());
        for (i, s) in stanzas.iter().enumerate() {
            if stanzas[..i].iter().any(|o| o.recipient == s.recipient) {
                return Err(Error::InvalidInput("duplicate recipient".into()));
            }
            raw.extend_from_slice(s.recipient.as_bytes());
            raw.extend_from_slice(&(s.wrapped_key.len() as u16).to_be_bytes());
            raw.extend_from_slice(&s.wrapped_key);
        }
        let meta_plain = metadata.encode();
        raw.extend_from_slice(&((meta_plain.len() + TAG_LEN) as u32).to_be_bytes());
        let meta_offset = raw.len();
        let mut ct = meta_plain.to_vec();
        let tag = dek
            .metadata_cipher(&salt)
            .seal_in_place([0u8; 12], &raw, &mut ct);
        raw.extend_from_slice(&ct);
        raw.extend_from_slice(&tag);
        Ok(Header {
            chunk_exp,
            record: *record,
            version,
            salt,
            commitment,
            stanzas,
            meta_offset,
            raw,
        })
    }
}

struct Fixed {
    chunk_exp: u8,
    record: RecordId,
    version: u32,
    salt: [u8; 32],
    commitment: [u8; 32],
    count: usize,
}

fn parse_fixed(raw: &[u8]) -> Result<Fixed> {
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
    let mut commitment = [0u8; 32];
    commitment.copy_from_slice(&raw[60..92]);
    let count = usize::from(u16::from_be_bytes([raw[92], raw[93]]));
    if count == 0 || count > limits::MAX_RECIPIENTS {
        return Err(Error::MalformedEnvelope(format!(
            "recipient count {count} out of range"
        )));
    }
    Ok(Fixed {
        chunk_exp,
        record: RecordId::from_bytes(record),
        version,
        salt,
        commitment,
        count,
    })
}

pub(crate) fn read_exact_or_truncated<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated,
        _ => Error::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::padded_len;

    #[test]
    fn padme_rounds_up_by_at_most_twelve_percent() {
        assert_eq!(padded_len(0), 256);
        assert_eq!(padded_len(256), 256);
        assert_eq!(padded_len(257), 272);
        assert_eq!(padded_len(1000), 1024);
        let mut l = 300u64;
        while l < (1 << 40) {
            let p = padded_len(l);
            assert!(p >= l && (p - l) * 100 <= l * 12, "{l} -> {p}");
            assert_eq!(padded_len(p), p, "padding is idempotent at {l}");
            l = l * 3 / 2 + 7;
        }
    }
}
