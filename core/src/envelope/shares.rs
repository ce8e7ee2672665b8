//! Threshold sharing of a data key, for break-glass emergency access (`docs/SECURITY.md`,
//! "Emergency access"; byte layout in `docs/FORMAT.md` §6.10).
//!
//! A record version's 32-byte data key is split with Shamir's scheme over GF(2^8) (the AES
//! field, polynomial `x^8 + x^4 + x^3 + x + 1`), byte by byte: any `k` of the `n` shares give the
//! key back, fewer give nothing about it. Share `i` (x = `i`, 1-based) is wrapped with RSA-OAEP
//! to the `i`-th authority, together with a random 32-byte salt, and the ledger carries a
//! commitment `SHA-256(domain || record || version || i || share || salt)` to each: the
//! patient signs it when she publishes the shares, so a share an authority later releases is
//! checked against it and a wrong one is named, never silently combined into a wrong key.
//!
//! The field arithmetic is constant-time (no table lookups indexed by secret bytes).

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cid::Cid;
use crate::envelope::key::DataKey;
use crate::error::{Error, Result};
use crate::identity::{Identity, PublicKey};
use crate::record::RecordId;

/// Most shares of one key (one per authority): what one `EmergencyShares` transaction holds
/// within the policy's object size at 4096-bit keys.
pub const MAX_SHARES: usize = 16;

const LABEL_SHARE: &[u8] = b"medshare/v3/emergency-share";
const LABEL_RELEASE: &[u8] = b"medshare/v3/emergency-release";
const DOMAIN_COMMIT: &[u8] = b"medshare/v3/emergency-commitment";

/// Multiplication in GF(2^8) modulo `x^8 + x^4 + x^3 + x + 1`, in constant time.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// The inverse in GF(2^8) (`a^254`; 0 for 0), in constant time.
fn inv(a: u8) -> u8 {
    // a^254 = a^(2+4+8+16+32+64+128)
    let mut result = 1u8;
    let mut sq = a;
    for _ in 0..7 {
        sq = mul(sq, sq);
        result = mul(result, sq);
    }
    result
}

/// One share of a data key: its x-coordinate (`index`, 1-based), its 32 bytes, and the salt its
/// commitment is made with. Zeroized on drop.
#[derive(Clone)]
pub struct KeyShare {
    /// The share's x-coordinate, 1 to 255 (the position of its authority, plus one).
    pub index: u8,
    value: Zeroizing<[u8; 32]>,
    salt: [u8; 32],
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyShare({}, ..)", self.index)
    }
}

impl KeyShare {
    /// A share from its parts (test vectors; a share decrypted elsewhere).
    pub fn from_parts(index: u8, value: [u8; 32], salt: [u8; 32]) -> KeyShare {
        KeyShare {
            index,
            value: Zeroizing::new(value),
            salt,
        }
    }

    /// The share's 32 bytes. Handle with care.
    pub fn expose(&self) -> &[u8; 32] {
        &self.value
    }

    /// The salt of its commitment.
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// The commitment the ledger carries for this share of `record`'s `version`.
    pub fn commitment(&self, record: &RecordId, version: u32) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN_COMMIT);
        h.update(record.as_bytes());
        h.update(version.to_be_bytes());
        h.update([self.index]);
        h.update(self.value.as_ref());
        h.update(self.salt);
        h.finalize().into()
    }

    /// Whether this share matches `expected` (constant-time comparison).
    pub fn matches(&self, record: &RecordId, version: u32, expected: &[u8; 32]) -> bool {
        let c = self.commitment(record, version);
        c.iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        let mut p = Zeroizing::new(Vec::with_capacity(64));
        p.extend_from_slice(self.value.as_ref());
        p.extend_from_slice(&self.salt);
        p
    }

    fn from_plaintext(index: u8, raw: &[u8]) -> Result<KeyShare> {
        if raw.len() != 64 {
            return Err(Error::KeyUnwrap);
        }
        let mut value = Zeroizing::new([0u8; 32]);
        value.copy_from_slice(&raw[..32]);
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&raw[32..]);
        Ok(KeyShare { index, value, salt })
    }

    /// Wraps the share to its authority (RSA-OAEP, labelled with the record version and index).
    pub fn wrap_to_authority(
        &self,
        authority: &PublicKey,
        record: &RecordId,
        version: u32,
    ) -> Result<Vec<u8>> {
        authority.oaep_wrap(&self.plaintext(), &share_label(record, version, self.index))
    }

    /// Unwraps share `index` of `record`'s `version` as its authority.
    pub fn unwrap_as_authority(
        authority: &Identity,
        wrapped: &[u8],
        record: &RecordId,
        version: u32,
        index: u8,
    ) -> Result<KeyShare> {
        let raw = authority.oaep_unwrap(wrapped, &share_label(record, version, index))?;
        KeyShare::from_plaintext(index, &raw)
    }

    /// Wraps the share to the doctor of the emergency request `request` (the request's
    /// transaction CID is in the label: a release answers one request only).
    pub fn wrap_to_requester(&self, doctor: &PublicKey, request: &Cid) -> Result<Vec<u8>> {
        doctor.oaep_wrap(&self.plaintext(), &release_label(request, self.index))
    }

    /// Unwraps a released share as the doctor who made `request`.
    pub fn unwrap_as_requester(
        doctor: &Identity,
        wrapped: &[u8],
        request: &Cid,
        index: u8,
    ) -> Result<KeyShare> {
        let raw = doctor.oaep_unwrap(wrapped, &release_label(request, index))?;
        KeyShare::from_plaintext(index, &raw)
    }
}

fn share_label(record: &RecordId, version: u32, index: u8) -> Vec<u8> {
    let mut l = LABEL_SHARE.to_vec();
    l.extend_from_slice(record.as_bytes());
    l.extend_from_slice(&version.to_be_bytes());
    l.push(index);
    l
}

fn release_label(request: &Cid, index: u8) -> Vec<u8> {
    let mut l = LABEL_RELEASE.to_vec();
    l.extend_from_slice(&request.to_bytes());
    l.push(index);
    l
}

/// Splits `key` into `n` shares (indices 1 to `n`), any `k` of which give it back.
/// `2 <= k <= n <= MAX_SHARES`: a threshold of one would let a single authority open the record.
pub fn split(key: &DataKey, k: usize, n: usize) -> Result<Vec<KeyShare>> {
    if k < 2 || k > n || n > MAX_SHARES {
        return Err(Error::InvalidInput(format!(
            "a {k}-of-{n} split: the threshold must be at least 2 and at most the number of shares (at most {MAX_SHARES})"
        )));
    }
    // coefficients[j][d]: the degree-d coefficient of byte j's polynomial (d = 0: the secret).
    let mut coefficients = Zeroizing::new(vec![[0u8; MAX_SHARES]; 32]);
    for (j, c) in coefficients.iter_mut().enumerate() {
        c[0] = key.expose()[j];
        getrandom::fill(&mut c[1..k]).map_err(|_| Error::Rng)?;
    }
    let mut shares = Vec::with_capacity(n);
    for i in 1..=n {
        let x = i as u8;
        let mut value = Zeroizing::new([0u8; 32]);
        for (j, c) in coefficients.iter().enumerate() {
            // Horner, highest degree first.
            let mut y = 0u8;
            for d in (0..k).rev() {
                y = mul(y, x) ^ c[d];
            }
            value[j] = y;
        }
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| Error::Rng)?;
        shares.push(KeyShare {
            index: x,
            value,
            salt,
        });
    }
    Ok(shares)
}

/// The key from `k` shares with distinct non-zero indices (Lagrange interpolation at 0).
/// Which shares are genuine is the caller's to check first ([`KeyShare::matches`]): any `k`
/// distinct shares interpolate to *some* key.
pub fn combine(shares: &[KeyShare]) -> Result<DataKey> {
    if shares.len() < 2 {
        return Err(Error::InvalidInput(
            "combining fewer than two shares".into(),
        ));
    }
    for (a, s) in shares.iter().enumerate() {
        if s.index == 0 || shares[..a].iter().any(|t| t.index == s.index) {
            return Err(Error::InvalidInput(
                "shares must have distinct, non-zero indices".into(),
            ));
        }
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for s in shares {
        // The Lagrange basis polynomial of s at 0: prod x_m / (x_m - x_s) (minus is xor).
        let mut num = 1u8;
        let mut den = 1u8;
        for t in shares.iter().filter(|t| t.index != s.index) {
            num = mul(num, t.index);
            den = mul(den, t.index ^ s.index);
        }
        let basis = mul(num, inv(den));
        for (j, k) in key.iter_mut().enumerate() {
            *k ^= mul(s.value[j], basis);
        }
    }
    Ok(DataKey::from_bytes(*key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic_matches_its_definition() {
        // FIPS-197 §4.2: {57} x {83} = {c1}, {57} x {13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
        }
        assert_eq!(inv(0), 0);
    }

    #[test]
    fn any_k_shares_give_the_key_and_k_minus_one_do_not() {
        let key = DataKey::generate().unwrap();
        let shares = split(&key, 3, 5).unwrap();
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let got = combine(&[shares[a].clone(), shares[b].clone(), shares[c].clone()])
                        .unwrap();
                    assert_eq!(got.expose(), key.expose());
                }
                let two = combine(&[shares[a].clone(), shares[b].clone()]).unwrap();
                assert_ne!(two.expose(), key.expose());
            }
        }
    }

    #[test]
    fn a_changed_share_fails_its_commitment() {
        let record = RecordId::from_bytes([7; 16]);
        let key = DataKey::generate().unwrap();
        let shares = split(&key, 2, 3).unwrap();
        let c = shares[0].commitment(&record, 1);
        assert!(shares[0].matches(&record, 1, &c));
        let mut bad: [u8; 32] = *shares[0].value;
        bad[0] ^= 1;
        let forged = KeyShare::from_parts(1, bad, shares[0].salt);
        assert!(!forged.matches(&record, 1, &c));
        assert!(!shares[0].matches(&record, 2, &c));
        assert!(!shares[1].matches(&record, 1, &c));
    }

    #[test]
    fn bad_parameters_are_refused() {
        let key = DataKey::generate().unwrap();
        assert!(split(&key, 1, 3).is_err());
        assert!(split(&key, 4, 3).is_err());
        assert!(split(&key, 2, MAX_SHARES + 1).is_err());
        let s = split(&key, 2, 2).unwrap();
        assert!(combine(&[s[0].clone(), s[0].clone()]).is_err());
        assert!(combine(&s[..1]).is_err());
    }
}
