//! Content identifiers (CIDs) as IPFS defines them, restricted to what medshare produces and
//! accepts: sha2-256 multihashes under the `raw`, `dag-pb` and `dag-cbor` codecs.
//!
//! * CIDv1 text form: multibase base32 lower-case (prefix `b`), as `ipfs add --cid-version 1` prints.
//! * CIDv0 text form: base58btc of the bare multihash (`Qm…`), as legacy `ipfs add` prints.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Why bytes or text are not a CID medshare accepts, or why bytes do not match their CID. The
/// crate's [`crate::Error`] wraps it (`InvalidCid`, `CidMismatch`); this module depends on
/// nothing else of the crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidError {
    /// Not a CID medshare accepts (text, bytes, codec, hash).
    Invalid(String),
    /// Bytes do not hash to the CID they were stored or fetched under.
    Mismatch {
        /// The CID that was asked for.
        expected: Cid,
        /// The CID of the bytes actually received.
        actual: Cid,
    },
}

impl fmt::Display for CidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidError::Invalid(why) => write!(f, "invalid CID: {why}"),
            CidError::Mismatch { expected, actual } => {
                write!(
                    f,
                    "content does not match its CID: expected {expected}, got {actual}"
                )
            }
        }
    }
}

impl std::error::Error for CidError {}

type Result<T, E = CidError> = std::result::Result<T, E>;

/// Multicodec code of raw bytes.
pub const RAW: u64 = 0x55;
/// Multicodec code of dag-pb (UnixFS nodes).
pub const DAG_PB: u64 = 0x70;
/// Multicodec code of DAG-CBOR (ledger blocks and transactions).
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

const BASE32_LOWER: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

/// A CID: version, content codec and the sha2-256 digest of the block's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    version: Version,
    codec: u64,
    digest: [u8; 32],
}

/// CID version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// CIDv0: implicit dag-pb codec, base58btc text (`Qm…`).
    V0,
    /// CIDv1: explicit codec, base32 text (`b…`).
    V1,
}

impl Cid {
    /// CIDv1 of `data` under `codec`.
    pub fn v1(codec: u64, data: &[u8]) -> Cid {
        Cid::v1_from_digest(codec, Sha256::digest(data).into())
    }

    /// CIDv1 from an already computed sha2-256 digest.
    pub fn v1_from_digest(codec: u64, digest: [u8; 32]) -> Cid {
        Cid {
            version: Version::V1,
            codec,
            digest,
        }
    }

    /// CIDv0 (dag-pb) of `data`.
    pub fn v0(data: &[u8]) -> Cid {
        Cid::v0_from_digest(Sha256::digest(data).into())
    }

    /// CIDv0 from an already computed sha2-256 digest.
    pub fn v0_from_digest(digest: [u8; 32]) -> Cid {
        Cid {
            version: Version::V0,
            codec: DAG_PB,
            digest,
        }
    }

    /// CIDv1 of a DAG-CBOR object's bytes.
    pub fn dag_cbor(data: &[u8]) -> Cid {
        Cid::v1(DAG_CBOR, data)
    }

    /// The CID of `data` under the same version and codec as `self` (used to check fetched bytes).
    pub fn same_kind_of(&self, data: &[u8]) -> Cid {
        Cid {
            version: self.version,
            codec: self.codec,
            digest: Sha256::digest(data).into(),
        }
    }

    /// Checks that `data` hashes to this CID.
    pub fn verify(&self, data: &[u8]) -> Result<()> {
        let actual = self.same_kind_of(data);
        if actual.digest == self.digest {
            Ok(())
        } else {
            Err(CidError::Mismatch {
                expected: *self,
                actual,
            })
        }
    }

    /// Checks that data whose SHA-256 digest is `digest` has this CID (the digest computed
    /// elsewhere: [`crate::offload::Offload::sha256_many`]).
    pub fn verify_digest(&self, digest: &[u8; 32]) -> Result<()> {
        if *digest == self.digest {
            Ok(())
        } else {
            Err(CidError::Mismatch {
                expected: *self,
                actual: Cid {
                    digest: *digest,
                    ..*self
                },
            })
        }
    }

    /// The same CID in version 1 (a CIDv0 becomes the dag-pb CIDv1 of the same multihash).
    pub fn to_v1(&self) -> Cid {
        Cid {
            version: Version::V1,
            ..*self
        }
    }

    /// The CID version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The multicodec of the content.
    pub fn codec(&self) -> u64 {
        self.codec
    }

    /// The sha2-256 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The multihash bytes (`0x12 0x20` followed by the digest).
    pub fn multihash(&self) -> [u8; 34] {
        multihash_sha256(&self.digest)
    }

    /// Binary form (what dag-pb links and DAG-CBOR tag 42 carry, without the 0x00 prefix).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36);
        if self.version == Version::V1 {
            put_varint(&mut out, 1);
            put_varint(&mut out, self.codec);
        }
        out.extend_from_slice(&self.multihash());
        out
    }

    /// Parses the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Cid> {
        if bytes.len() == 34 && bytes[0] == 0x12 && bytes[1] == 0x20 {
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&bytes[2..]);
            return Ok(Cid::v0_from_digest(digest));
        }
        let mut rest = bytes;
        let version = take_varint(&mut rest)?;
        if version != 1 {
            return Err(CidError::Invalid(format!(
                "unsupported CID version {version}"
            )));
        }
        let codec = take_varint(&mut rest)?;
        if !matches!(codec, RAW | DAG_PB | DAG_CBOR) {
            return Err(CidError::Invalid(format!("unsupported codec 0x{codec:x}")));
        }
        let hash = take_varint(&mut rest)?;
        let len = take_varint(&mut rest)?;
        if hash != SHA2_256 || len != 32 || rest.len() != 32 {
            return Err(CidError::Invalid(
                "only 32-byte sha2-256 multihashes are supported".into(),
            ));
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(rest);
        Ok(Cid::v1_from_digest(codec, digest))
    }

    /// A key that is equal for the v0 and v1 forms of the same bytes (the multihash, base32):
    /// block stores index blocks by it, as IPFS blockstores do.
    pub fn storage_key(&self) -> String {
        BASE32_LOWER.encode(&self.multihash()).to_ascii_lowercase()
    }
}

/// The multihash of a sha2-256 digest.
pub fn multihash_sha256(digest: &[u8; 32]) -> [u8; 34] {
    let mut out = [0u8; 34];
    out[0] = 0x12;
    out[1] = 0x20;
    out[2..].copy_from_slice(digest);
    out
}

/// Multibase base32 lower-case (prefix `b`) text of arbitrary bytes.
pub fn multibase_base32(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(1 + bytes.len() * 8 / 5 + 1);
    s.push('b');
    s.push_str(&BASE32_LOWER.encode(bytes).to_ascii_lowercase());
    s
}

/// Parses multibase base32 lower-case text (prefix `b`).
pub fn parse_multibase_base32(s: &str) -> Option<Vec<u8>> {
    let body = s.strip_prefix('b')?;
    if body.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    BASE32_LOWER
        .decode(body.to_ascii_uppercase().as_bytes())
        .ok()
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Version::V0 => f.write_str(&bs58::encode(self.multihash()).into_string()),
            Version::V1 => f.write_str(&multibase_base32(&self.to_bytes())),
        }
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(s: &str) -> Result<Cid> {
        if s.len() > 128 {
            return Err(CidError::Invalid("too long".into()));
        }
        if s.len() == 46 && s.starts_with("Qm") {
            let bytes = bs58::decode(s)
                .into_vec()
                .map_err(|e| CidError::Invalid(format!("bad base58: {e}")))?;
            return Cid::from_bytes(&bytes);
        }
        let bytes = parse_multibase_base32(s).ok_or_else(|| {
            CidError::Invalid(format!(
                "`{s}` is neither a CIDv0 (Qm…) nor a base32 CIDv1 (b…)"
            ))
        })?;
        Cid::from_bytes(&bytes)
    }
}

impl serde::Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Cid, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lossless: every medshare CID is an IPFS CID (`cid` 0.11, the type rust-ipfs, iroh-car,
/// forest and atrium use).
impl From<Cid> for ::cid::Cid {
    fn from(c: Cid) -> ::cid::Cid {
        // A sha2-256 multihash of 32 bytes always fits the 64-byte multihash.
        let mh = ::cid::multihash::Multihash::<64>::wrap(SHA2_256, &c.digest).unwrap_or_default();
        match c.version {
            Version::V0 => {
                ::cid::Cid::new_v0(mh).unwrap_or_else(|_| ::cid::Cid::new_v1(DAG_PB, mh))
            }
            Version::V1 => ::cid::Cid::new_v1(c.codec, mh),
        }
    }
}

/// Accepts exactly the CIDs medshare produces: sha2-256 under `raw`, `dag-pb` or `dag-cbor`.
/// Anything else (another hash, another codec) is [`CidError::Invalid`], since medshare could
/// not check such a block.
impl TryFrom<::cid::Cid> for Cid {
    type Error = CidError;

    fn try_from(c: ::cid::Cid) -> Result<Cid> {
        Cid::from_bytes(&c.to_bytes())
    }
}

impl TryFrom<&::cid::Cid> for Cid {
    type Error = CidError;

    fn try_from(c: &::cid::Cid) -> Result<Cid> {
        Cid::from_bytes(&c.to_bytes())
    }
}

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint (minimal encoding, at most 9 bytes as multiformats requires).
pub fn take_varint(input: &mut &[u8]) -> Result<u64> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let Some((&b, rest)) = input.split_first() else {
            return Err(CidError::Invalid("truncated varint".into()));
        };
        *input = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(CidError::Invalid("non-minimal varint".into()));
            }
            return Ok(value);
        }
    }
    Err(CidError::Invalid("varint too long".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubo_documented_hello() {
        // `echo "hello IPFS" | ipfs add -q --cid-version 1` (kubo's docs)
        let cid = Cid::v1(RAW, b"hello IPFS\n");
        assert_eq!(
            cid.to_string(),
            "bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"
        );
    }

    #[test]
    fn text_and_binary_round_trip() {
        for cid in [
            Cid::v1(RAW, b"x"),
            Cid::v1(DAG_PB, b"x"),
            Cid::dag_cbor(b"x"),
            Cid::v0(b"x"),
        ] {
            assert_eq!(cid.to_string().parse::<Cid>().unwrap(), cid);
            assert_eq!(Cid::from_bytes(&cid.to_bytes()).unwrap(), cid);
        }
        assert_eq!(
            Cid::v0(b"x").storage_key(),
            Cid::v1(DAG_PB, b"x").storage_key()
        );
    }

    #[test]
    fn bad_text_is_rejected() {
        for bad in [
            "",
            "b",
            "Qm",
            "bafyB",
            "zzz",
            "bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxs",
        ] {
            assert!(
                matches!(bad.parse::<Cid>(), Err(CidError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn mismatch_is_named() {
        let cid = Cid::v1(RAW, b"a");
        match cid.verify(b"b") {
            Err(CidError::Mismatch { expected, actual }) => {
                assert_eq!(expected, cid);
                assert_eq!(actual, Cid::v1(RAW, b"b"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod ecosystem {
    use super::*;

    #[test]
    fn converts_losslessly_to_and_from_the_cid_crate() {
        for ours in [
            Cid::v1(RAW, b"x"),
            Cid::v1(DAG_PB, b"x"),
            Cid::dag_cbor(b"x"),
            Cid::v0(b"x"),
        ] {
            let theirs: ::cid::Cid = ours.into();
            assert_eq!(theirs.to_string(), ours.to_string());
            assert_eq!(Cid::try_from(theirs).unwrap(), ours);
        }
        let blake = ::cid::Cid::new_v1(
            RAW,
            ::cid::multihash::Multihash::<64>::wrap(0x1e, &[0; 32]).unwrap(),
        );
        assert!(matches!(Cid::try_from(blake), Err(CidError::Invalid(_))));
    }
}
