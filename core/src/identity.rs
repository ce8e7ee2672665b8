//! Participants and their RSA keys.
//!
//! An [`Identity`] is a private key with a [`Role`], a human label and an account id. The
//! account id ([`IdentityId`]) is the sha2-256 multihash of the *first* public key's SPKI DER
//! encoding, printed as multibase base32: it depends on that key only, never on the name, and it
//! stays the same when the key is rotated ([`Identity::rotated`]), so the ledger keeps knowing
//! the participant. Private keys leave memory only encrypted under a passphrase (PKCS#8 PBES2,
//! scrypt + AES-256-GCM) inside a versioned key file (see `docs/FORMAT.md`), and are zeroized
//! when dropped.

use std::fmt;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::str::FromStr;

use pkcs8::der::Decode;
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;
use sha2::Digest;
use zeroize::Zeroizing;

use crate::cid::{multibase_base32, multihash_sha256, parse_multibase_base32};
use crate::error::{Error, Result};
use crate::limits;

/// Default RSA modulus size for new identities.
pub const DEFAULT_KEY_BITS: usize = 3072;
/// Smallest RSA modulus medshare accepts.
pub const MIN_KEY_BITS: usize = 2048;
/// Largest RSA modulus medshare accepts (bigger keys make verification a denial-of-service lever).
pub const MAX_KEY_BITS: usize = 4096;

/// What a participant is on the network.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Owns records and decides who reads them.
    Patient,
    /// Reads the records patients grant; registered with an authority's endorsement.
    Doctor,
    /// Seals ledger blocks and endorses doctors (hospitals, regulators).
    Authority,
}

impl Role {
    /// Lower-case name (`patient`, `doctor`, `authority`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Doctor => "doctor",
            Role::Authority => "authority",
        }
    }

    /// The one-byte code used in binary formats.
    pub fn code(self) -> u8 {
        match self {
            Role::Patient => 1,
            Role::Doctor => 2,
            Role::Authority => 3,
        }
    }

    /// Inverse of [`Role::code`].
    pub fn from_code(code: u8) -> Option<Role> {
        match code {
            1 => Some(Role::Patient),
            2 => Some(Role::Doctor),
            3 => Some(Role::Authority),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        match s.to_ascii_lowercase().as_str() {
            "patient" => Ok(Role::Patient),
            "doctor" => Ok(Role::Doctor),
            "authority" => Ok(Role::Authority),
            _ => Err(Error::InvalidInput(format!(
                "unknown role `{s}` (patient, doctor or authority)"
            ))),
        }
    }
}

/// The id of a participant (its account, stable across key rotations), or of one key: the
/// sha2-256 multihash of an SPKI DER public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityId([u8; 34]);

impl serde::Serialize for IdentityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IdentityId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl IdentityId {
    /// The id of a public key given as SPKI DER.
    pub fn of_spki_der(der: &[u8]) -> IdentityId {
        IdentityId(multihash_sha256(&sha2::Sha256::digest(der).into()))
    }

    /// The 34 multihash bytes.
    pub fn as_bytes(&self) -> &[u8; 34] {
        &self.0
    }

    /// From the 34 multihash bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<IdentityId> {
        let arr: [u8; 34] = bytes.try_into().map_err(|_| {
            Error::InvalidKey("identity id must be a 34-byte sha2-256 multihash".into())
        })?;
        if arr[0] != 0x12 || arr[1] != 0x20 {
            return Err(Error::InvalidKey(
                "identity id must be a sha2-256 multihash".into(),
            ));
        }
        Ok(IdentityId(arr))
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&multibase_base32(&self.0))
    }
}

impl fmt::Debug for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityId({self})")
    }
}

impl FromStr for IdentityId {
    type Err = Error;

    fn from_str(s: &str) -> Result<IdentityId> {
        let bytes = parse_multibase_base32(s).ok_or_else(|| {
            Error::InvalidInput(format!(
                "`{s}` is not an identity id (multibase base32, b…)"
            ))
        })?;
        IdentityId::from_bytes(&bytes).map_err(|e| match e {
            Error::InvalidKey(why) => Error::InvalidInput(format!("`{s}`: {why}")),
            other => other,
        })
    }
}

/// RSA through AWS-LC (feature `aws-lc`, native targets): the same operations as the `rsa`
/// crate's, on keys parsed once.
#[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
mod aws {
    use aws_lc_rs::rsa::{
        OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
        PrivateDecryptingKey, PublicEncryptingKey,
    };
    use aws_lc_rs::signature::{
        ParsedPublicKey, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, RsaKeyPair,
    };
    use zeroize::Zeroizing;

    pub(super) struct Public {
        pss: ParsedPublicKey,
        oaep: OaepPublicEncryptingKey,
    }

    impl Public {
        pub(super) fn new(spki_der: &[u8]) -> Option<Public> {
            Some(Public {
                pss: ParsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, spki_der).ok()?,
                oaep: OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki_der).ok()?)
                    .ok()?,
            })
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            self.pss.verify_sig(message, signature).is_ok()
        }

        pub(super) fn oaep_wrap(&self, secret: &[u8], label: &[u8]) -> Option<Vec<u8>> {
            let mut out = vec![0u8; self.oaep.ciphertext_size()];
            let n = self
                .oaep
                .encrypt(&OAEP_SHA256_MGF1SHA256, secret, &mut out, Some(label))
                .ok()?
                .len();
            out.truncate(n);
            Some(out)
        }
    }

    pub(super) struct Private {
        sign: RsaKeyPair,
        oaep: OaepPrivateDecryptingKey,
    }

    impl Private {
        pub(super) fn new(pkcs8_der: &[u8]) -> Option<Private> {
            Some(Private {
                sign: RsaKeyPair::from_pkcs8(pkcs8_der).ok()?,
                oaep: OaepPrivateDecryptingKey::new(
                    PrivateDecryptingKey::from_pkcs8(pkcs8_der).ok()?,
                )
                .ok()?,
            })
        }

        pub(super) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
            let mut sig = vec![0u8; self.sign.public_modulus_len()];
            self.sign
                .sign(
                    &RSA_PSS_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .ok()?;
            Some(sig)
        }

        pub(super) fn oaep_unwrap(
            &self,
            wrapped: &[u8],
            label: &[u8],
        ) -> Option<Zeroizing<Vec<u8>>> {
            let mut out = Zeroizing::new(vec![0u8; self.oaep.min_output_size()]);
            let n = self
                .oaep
                .decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, Some(label))
                .ok()?
                .len();
            out.truncate(n);
            Some(out)
        }
    }
}

/// A participant's public key, with its id precomputed.
#[derive(Clone)]
pub struct PublicKey {
    key: rsa::PublicKey,
    spki_der: Vec<u8>,
    id: IdentityId,
    #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
    aws: Option<std::sync::Arc<aws::Public>>,
}

impl PublicKey {
    fn from_rsa(key: rsa::PublicKey) -> Result<PublicKey> {
        check_bits(key.size() * 8)?;
        let spki_der = key
            .to_public_key_der()
            .map_err(|e| Error::InvalidKey(format!("cannot encode public key: {e}")))?
            .into_vec();
        let id = IdentityId::of_spki_der(&spki_der);
        Ok(PublicKey {
            #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
            aws: aws::Public::new(&spki_der).map(std::sync::Arc::new),
            key,
            spki_der,
            id,
        })
    }

    /// Parses an SPKI DER public key. Keys under 2048 bits are refused with [`Error::WeakKey`].
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        if der.len() > limits::MAX_PUBLIC_KEY_DER {
            return Err(Error::TooLarge {
                what: "public key",
                size: der.len() as u64,
                limit: limits::MAX_PUBLIC_KEY_DER as u64,
            });
        }
        let key = rsa::PublicKey::from_public_key_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad SPKI DER: {e}")))?;
        let pk = PublicKey::from_rsa(key)?;
        if pk.spki_der != der {
            return Err(Error::InvalidKey(
                "SPKI DER is not in canonical form".into(),
            ));
        }
        Ok(pk)
    }

    /// Parses a PEM `PUBLIC KEY` (SPKI).
    pub fn from_pem(pem: &str) -> Result<PublicKey> {
        if pem.len() > 4 * limits::MAX_PUBLIC_KEY_DER {
            return Err(Error::TooLarge {
                what: "public key PEM",
                size: pem.len() as u64,
                limit: 4 * limits::MAX_PUBLIC_KEY_DER as u64,
            });
        }
        let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("bad PEM: {e}")))?;
        if label != "PUBLIC KEY" {
            return Err(Error::InvalidKey(format!(
                "expected a PUBLIC KEY PEM, found {label}"
            )));
        }
        PublicKey::from_spki_der(&der)
    }

    /// SPKI DER encoding.
    pub fn to_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// PEM `PUBLIC KEY` encoding.
    pub fn to_pem(&self) -> String {
        // Encoding a few hundred bytes to PEM cannot fail.
        pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki_der)
            .unwrap_or_default()
    }

    /// The participant id derived from this key.
    pub fn id(&self) -> IdentityId {
        self.id
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// Verifies an RSA-PSS (SHA-256, 32-byte salt) signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.key.size() {
            return Err(Error::BadSignature);
        }
        #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
        if let Some(a) = &self.aws {
            return if a.verify(message, signature) {
                Ok(())
            } else {
                Err(Error::BadSignature)
            };
        }
        self.key
            .pss_verify::<Sha256>(message, signature)
            .map_err(|_| Error::BadSignature)
    }

    /// Wraps a key with RSA-OAEP (SHA-256, MGF1-SHA-256) under `label`.
    pub(crate) fn oaep_wrap(&self, secret: &[u8], label: &[u8]) -> Result<Vec<u8>> {
        #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
        if let Some(a) = &self.aws {
            return a.oaep_wrap(secret, label).ok_or(Error::Rng);
        }
        let padding = rsa::Oaep::<Sha256>::new_with_label(label);
        self.key
            .encrypt(&mut getrandom::SysRng, padding, secret)
            .map_err(|_| Error::Rng)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {} bits)", self.id, self.bits())
    }
}

fn check_bits(bits: usize) -> Result<()> {
    if bits < MIN_KEY_BITS {
        return Err(Error::WeakKey {
            bits,
            min: MIN_KEY_BITS,
        });
    }
    if bits > MAX_KEY_BITS {
        return Err(Error::UnsupportedKeySize { bits });
    }
    Ok(())
}

/// A participant's private key with its role, display name and account id. Zeroized on drop
/// (every clone).
#[derive(Clone)]
pub struct Identity {
    role: Role,
    name: String,
    account: IdentityId,
    key: rsa::PrivateKey,
    public: PublicKey,
    #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
    aws: Option<std::sync::Arc<aws::Private>>,
}

const KEY_FILE_MAGIC: &[u8; 4] = b"MSID";
/// Version 2 adds the account id; version 1 files (account = the key's own id) still load.
const KEY_FILE_VERSION: u8 = 2;
const KEY_FILE_PEM_LABEL: &str = "MEDSHARE IDENTITY";
/// scrypt cost for new key files: N = 2^17, r = 8, p = 1 (128 MiB, ~0.3 s).
const SCRYPT_LOG_N: u8 = 17;
/// Largest scrypt memory (128 * r * N bytes) a key file may ask for when loading.
const SCRYPT_MAX_MEMORY: u64 = 256 << 20;

impl Identity {
    /// Generates a new identity. `bits` must be 2048, 3072 or 4096; smaller sizes are refused with
    /// [`Error::WeakKey`].
    pub fn generate(role: Role, name: &str, bits: usize) -> Result<Identity> {
        check_bits(bits)?;
        if !matches!(bits, 2048 | 3072 | 4096) {
            return Err(Error::UnsupportedKeySize { bits });
        }
        check_name(name)?;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|_| Error::Rng)?;
        Identity::from_private_key(role, name, key, None)
    }

    fn from_private_key(
        role: Role,
        name: &str,
        key: rsa::PrivateKey,
        account: Option<IdentityId>,
    ) -> Result<Identity> {
        let public = PublicKey::from_rsa(key.to_public_key())?;
        #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
        let aws = {
            key.to_pkcs8_der()
                .ok()
                .and_then(|der| aws::Private::new(der.as_bytes()))
                .map(std::sync::Arc::new)
        };
        Ok(Identity {
            role,
            name: name.to_owned(),
            account: account.unwrap_or(public.id),
            key,
            public,
            #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
            aws,
        })
    }

    /// A new key for the same participant: same account id, role and name, a fresh key of the
    /// same size. The ledger learns it from a `RotateKey` transaction signed by both keys
    /// ([`crate::Vault::rotate_key`]).
    pub fn rotated(&self) -> Result<Identity> {
        let bits = self.public.bits();
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|_| Error::Rng)?;
        Identity::from_private_key(self.role, &self.name, key, Some(self.account))
    }

    /// Builds an identity from an unencrypted PKCS#8 DER private key (for importing keys made
    /// elsewhere, and for test fixtures).
    pub fn from_pkcs8_der(role: Role, name: &str, der: &[u8]) -> Result<Identity> {
        check_name(name)?;
        let key = rsa::PrivateKey::from_pkcs8_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad PKCS#8: {e}")))?;
        Identity::from_private_key(role, name, key, None)
    }

    /// Builds an identity from an unencrypted PKCS#8 PEM (`PRIVATE KEY`).
    pub fn from_pkcs8_pem(role: Role, name: &str, pem: &str) -> Result<Identity> {
        check_name(name)?;
        if pem.trim().is_empty() {
            return Err(Error::InvalidKey("the PEM text is empty".into()));
        }
        let key = rsa::PrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::InvalidKey(format!("bad PKCS#8 PEM: {e}")))?;
        Identity::from_private_key(role, name, key, None)
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The display name (a local label; not part of the id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The account id: derived from the participant's first public key, unchanged by
    /// rotations. Transactions are authored by it.
    pub fn id(&self) -> IdentityId {
        self.account
    }

    /// The id of the current key (equal to [`Identity::id`] until the first rotation).
    pub fn key_id(&self) -> IdentityId {
        self.public.id
    }

    /// The public part.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` with RSA-PSS (SHA-256, 32-byte salt).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
        if let Some(a) = &self.aws {
            return a.sign(message).ok_or(Error::Rng);
        }
        self.key.pss_sign::<Sha256>(message).map_err(|_| Error::Rng)
    }

    /// Unwraps an RSA-OAEP-wrapped key made for this identity under `label`.
    pub(crate) fn oaep_unwrap(&self, wrapped: &[u8], label: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() != self.key.size() {
            return Err(Error::KeyUnwrap);
        }
        #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
        if let Some(a) = &self.aws {
            return a.oaep_unwrap(wrapped, label).ok_or(Error::KeyUnwrap);
        }
        let padding = rsa::Oaep::<Sha256>::new_with_label(label);
        self.key
            .decrypt(padding, wrapped)
            .map(Zeroizing::new)
            .map_err(|_| Error::KeyUnwrap)
    }

    /// The private key as unencrypted PKCS#8 DER: for handing it to a platform's own RSA
    /// (WebCrypto, in the npm package's [`crate::offload::Offload`]). Handle with care.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| Error::InvalidKey(format!("cannot encode key: {e}")))?;
        Ok(Zeroizing::new(der.as_bytes().to_vec()))
    }

    /// Encodes the identity as a passphrase-protected key file (PEM `MEDSHARE IDENTITY`; the
    /// layout is in `docs/FORMAT.md`).
    pub fn to_key_file(&self, passphrase: &str) -> Result<String> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| Error::InvalidKey(format!("cannot encode key: {e}")))?;
        let info = pkcs8::PrivateKeyInfoRef::from_der(der.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("cannot encode key: {e}")))?;
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut salt).map_err(|_| Error::Rng)?;
        getrandom::fill(&mut nonce).map_err(|_| Error::Rng)?;
        let scrypt =
            pkcs8::pkcs5::scrypt::Params::new(SCRYPT_LOG_N, 8, 1).map_err(|_| Error::Rng)?;
        let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256gcm(scrypt, &salt, nonce)
            .map_err(|e| Error::InvalidKey(format!("scrypt parameters: {e}")))?;
        let encrypted = info
            .encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("cannot encrypt key: {e}")))?;
        let mut body = Zeroizing::new(Vec::with_capacity(
            42 + self.name.len() + encrypted.as_bytes().len(),
        ));
        body.extend_from_slice(KEY_FILE_MAGIC);
        body.push(KEY_FILE_VERSION);
        body.push(self.role.code());
        body.extend_from_slice(self.account.as_bytes());
        body.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        body.extend_from_slice(self.name.as_bytes());
        body.extend_from_slice(encrypted.as_bytes());
        pkcs8::der::pem::encode_string(KEY_FILE_PEM_LABEL, LineEnding::LF, &body)
            .map_err(|e| Error::InvalidKey(format!("cannot armor key file: {e}")))
    }

    /// Decodes a key file made by [`Identity::to_key_file`].
    pub fn from_key_file(text: &str, passphrase: &str) -> Result<Identity> {
        if text.len() > limits::MAX_KEY_FILE {
            return Err(Error::TooLarge {
                what: "key file",
                size: text.len() as u64,
                limit: limits::MAX_KEY_FILE as u64,
            });
        }
        if text.trim().is_empty() {
            return Err(Error::InvalidKey("the key file is empty".into()));
        }
        let (label, body) = pkcs8::der::pem::decode_vec(text.as_bytes())
            .map_err(|e| Error::InvalidKey(format!("not a PEM key file: {e}")))?;
        let body = Zeroizing::new(body);
        if label != KEY_FILE_PEM_LABEL {
            return Err(Error::InvalidKey(format!(
                "expected a {KEY_FILE_PEM_LABEL} PEM, found {label}"
            )));
        }
        if body.len() < 8 || &body[..4] != KEY_FILE_MAGIC {
            return Err(Error::InvalidKey("not a medshare key file".into()));
        }
        let role = Role::from_code(body[5])
            .ok_or_else(|| Error::InvalidKey(format!("unknown role code {}", body[5])))?;
        let (account, rest) = match body[4] {
            1 => (None, &body[6..]),
            2 if body.len() >= 42 => (Some(IdentityId::from_bytes(&body[6..40])?), &body[40..]),
            2 => return Err(Error::InvalidKey("key file truncated".into())),
            v => {
                return Err(Error::InvalidKey(format!(
                    "unsupported key file version {v}"
                )));
            }
        };
        let name_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if rest.len() < name_len {
            return Err(Error::InvalidKey("key file truncated".into()));
        }
        let name = std::str::from_utf8(&rest[..name_len])
            .map_err(|_| Error::InvalidKey("name is not UTF-8".into()))?;
        check_name(name)?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&rest[name_len..])
            .map_err(|e| Error::InvalidKey(format!("bad encrypted PKCS#8: {e}")))?;
        check_kdf(&encrypted)?;
        let der = encrypted
            .decrypt(passphrase.as_bytes())
            .map_err(|_| Error::WrongPassphrase)?;
        let key =
            rsa::PrivateKey::from_pkcs8_der(der.as_bytes()).map_err(|_| Error::WrongPassphrase)?;
        Identity::from_private_key(role, name, key, account)
    }

    /// Writes the encrypted key file to a new file at `path` (mode 0600 on Unix). An existing
    /// file is never replaced (an `Io` error of kind `AlreadyExists`): a key file overwritten
    /// by mistake is a participant locked out of their records for good.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: impl AsRef<Path>, passphrase: &str) -> Result<()> {
        let text = Zeroizing::new(self.to_key_file(passphrase)?);
        crate::fsutil::write_new(path.as_ref(), text.as_bytes(), true).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} already exists; refusing to replace a key file",
                        path.as_ref().display()
                    ),
                ))
            } else {
                Error::Io(e)
            }
        })
    }

    /// Reads and decrypts a key file written by [`Identity::save`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: impl AsRef<Path>, passphrase: &str) -> Result<Identity> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path)?;
        if meta.len() > limits::MAX_KEY_FILE as u64 {
            return Err(Error::TooLarge {
                what: "key file",
                size: meta.len(),
                limit: limits::MAX_KEY_FILE as u64,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path)?);
        Identity::from_key_file(&text, passphrase)
    }
}

/// Refuses key files whose scrypt parameters would make loading a memory/CPU bomb, and anything
/// that is not PBES2 with scrypt and AES-256-GCM (what medshare writes, docs/FORMAT.md §2.1).
fn check_kdf(encrypted: &pkcs8::EncryptedPrivateKeyInfoRef<'_>) -> Result<()> {
    let pbes2 = encrypted
        .encryption_algorithm
        .pbes2()
        .ok_or_else(|| Error::InvalidKey("key file must use PBES2".into()))?;
    let scrypt = pbes2
        .kdf
        .scrypt()
        .ok_or_else(|| Error::InvalidKey("key file must use scrypt".into()))?;
    if !matches!(
        pbes2.encryption,
        pkcs8::pkcs5::pbes2::EncryptionScheme::Aes256Gcm { .. }
    ) {
        return Err(Error::InvalidKey(
            "key file must be encrypted with AES-256-GCM".into(),
        ));
    }
    let n: u64 = scrypt.cost_parameter;
    let r = u64::from(scrypt.block_size);
    let p = u64::from(scrypt.parallelization);
    // RFC 7914: N a power of two greater than 1, r and p at least 1.
    if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
        return Err(Error::InvalidKey(format!(
            "invalid scrypt parameters N={n}, r={r}, p={p}"
        )));
    }
    let memory = 128u64.saturating_mul(r).saturating_mul(n);
    if memory > SCRYPT_MAX_MEMORY || p > 4 {
        return Err(Error::InvalidKey(
            "scrypt parameters exceed the allowed cost".into(),
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.len() > limits::MAX_NAME {
        return Err(Error::TooLarge {
            what: "identity name",
            size: name.len() as u64,
            limit: limits::MAX_NAME as u64,
        });
    }
    Ok(())
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Identity")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("id", &self.account)
            .field("key", &self.public.id)
            .field("bits", &self.public.bits())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "aws-lc", not(target_arch = "wasm32")))]
mod aws_tests {
    use super::*;

    /// The AWS-LC backend is the one in use, and what it makes the `rsa` crate accepts (and the
    /// other way round): the same formats, whichever side signs or wraps.
    #[test]
    fn aws_lc_and_rustcrypto_agree() {
        let pem = include_str!("../testdata/keys/doctor-2048.pem");
        let id = Identity::from_pkcs8_pem(Role::Doctor, "d", pem).unwrap();
        assert!(id.aws.is_some() && id.public.aws.is_some());
        let msg = b"a transaction's signing bytes";
        let by_aws = id.sign(msg).unwrap();
        id.public
            .key
            .pss_verify::<Sha256>(msg, &by_aws)
            .expect("rsa crate verifies AWS-LC's signature");
        let by_rsa = id.key.pss_sign::<Sha256>(msg).unwrap();
        id.public.verify(msg, &by_rsa).unwrap();
        let mut bad = by_rsa.clone();
        bad[7] ^= 1;
        assert!(matches!(
            id.public.verify(msg, &bad),
            Err(Error::BadSignature)
        ));
        let wrapped = id.public.oaep_wrap(&[9; 32], b"label").unwrap();
        let plain = id
            .key
            .decrypt(
                rsa::Oaep::<Sha256>::new_with_label(b"label".to_vec()),
                &wrapped,
            )
            .unwrap();
        assert_eq!(plain, [9; 32]);
        assert_eq!(*id.oaep_unwrap(&wrapped, b"label").unwrap(), [9; 32]);
        assert!(matches!(
            id.oaep_unwrap(&wrapped, b"other label"),
            Err(Error::KeyUnwrap)
        ));
    }
}
