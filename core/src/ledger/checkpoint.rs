//! Certificates: the C2SP `tlog-checkpoint` signed notes that make a block final.
//!
//! A checkpoint names the network (origin `medshare/<genesis CID>`), the size and RFC 6962 root
//! of the transaction log, the block it ends at and the root of the state map after it (two
//! extension lines: light clients prove access entries against it). The authorities sign
//! its text with RSA-PSS; a block is final once more than two thirds of the authorities in
//! effect after it have signed its checkpoint. So one object is both the block's quorum
//! certificate and a transparency-log checkpoint that any signed-note verifier can read
//! (`golang.org/x/mod/sumdb/note` opens it, given an RSA-PSS verifier for the key type).
//!
//! ```text
//! medshare/bafyrei…genesis
//! 42
//! 3q2+7w8xYyQ…=
//! block 17 bafyrei…block
//! state 9f3Kq1…=
//!
//! — bciq…authority-1 <base64(key id (4 bytes) || RSA-PSS signature)>
//! — bciq…authority-2 …
//! ```
//!
//! A signature's key id is `SHA-256(name || 0x0A || 0xff || "rsa-pss-sha256\n" || SPKI DER)[:4]`
//! (type `0xff`: a signature type without a registered byte, followed by its identifier, as the
//! signed-note specification recommends). Signatures from unknown keys are ignored, as the
//! specification requires; a signature from a known key that does not verify makes the whole
//! certificate invalid.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, PublicKey};
use crate::ledger::merkle::Hash;

const RSA_PSS_TYPE: &[u8] = b"\xffrsa-pss-sha256\n";
const EM_DASH: &str = "\u{2014}";
/// Most signature lines a certificate may carry.
pub const MAX_SIGNATURES: usize = 100;
/// Largest certificate note, in bytes.
pub const MAX_NOTE: usize = 64 * 1024;

/// What a certificate certifies.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The network's genesis block.
    pub genesis: Cid,
    /// Transactions in the log.
    pub size: u64,
    /// RFC 6962 root of the log (base64 in the note).
    #[serde(with = "crate::serde_util::b64_32")]
    pub root: Hash,
    /// Height of the block the log ends at.
    pub height: u64,
    /// That block.
    pub block: Cid,
    /// Root of the state map after that block ([`crate::ledger::smt`]; base64 in the note).
    #[serde(with = "crate::serde_util::b64_32")]
    pub state: Hash,
}

impl Checkpoint {
    /// Parses the JSON form (`{"genesis", "size", "root", "height", "block", "state"}`, as
    /// [`Checkpoint::to_json`] writes it and `trusted_checkpoint` returns it in every binding).
    pub fn from_json(text: &str) -> Result<Checkpoint> {
        if text.len() > 4096 {
            return Err(Error::TooLarge {
                what: "checkpoint",
                size: text.len() as u64,
                limit: 4096,
            });
        }
        serde_json::from_str(text).map_err(|e| Error::InvalidInput(format!("checkpoint: {e}")))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The origin line: `medshare/<genesis CID>`.
    pub fn origin(&self) -> String {
        format!("medshare/{}", self.genesis)
    }

    /// The note text the authorities sign (ends with a newline).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\nblock {} {}\nstate {}\n",
            self.origin(),
            self.size,
            data_encoding::BASE64.encode(&self.root),
            self.height,
            self.block,
            data_encoding::BASE64.encode(&self.state)
        )
    }

    /// Parses a note text made by [`Checkpoint::body`] (exactly: anything else is refused).
    pub fn parse_body(text: &str) -> Result<Checkpoint> {
        let bad = |why: &str| Error::InvalidProof(format!("checkpoint: {why}"));
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("text does not end with a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root, block, state] = lines[..] else {
            return Err(bad("expected 5 lines"));
        };
        let genesis: Cid = origin
            .strip_prefix("medshare/")
            .ok_or_else(|| bad("origin is not medshare/<genesis CID>"))?
            .parse()
            .map_err(|_| bad("origin does not name a genesis CID"))?;
        if size != "0" && size.starts_with('0') {
            return Err(bad("tree size has leading zeroes"));
        }
        let size: u64 = size.parse().map_err(|_| bad("bad tree size"))?;
        let hash = |b64: &str| -> Option<Hash> {
            data_encoding::BASE64
                .decode(b64.as_bytes())
                .ok()
                .and_then(|b| b.try_into().ok())
        };
        let root = hash(root).ok_or_else(|| bad("root is not a base64 SHA-256 hash"))?;
        let state = state
            .strip_prefix("state ")
            .and_then(hash)
            .ok_or_else(|| bad("bad state line"))?;
        let mut parts = block.split(' ');
        let (Some("block"), Some(height), Some(cid), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("bad block line"));
        };
        if height != "0" && height.starts_with('0') {
            return Err(bad("block height has leading zeroes"));
        }
        let cp = Checkpoint {
            genesis,
            size,
            root,
            height: height.parse().map_err(|_| bad("bad block height"))?,
            block: cid.parse().map_err(|_| bad("bad block CID"))?,
            state,
        };
        if cp.body() != text {
            return Err(bad("not in canonical form"));
        }
        Ok(cp)
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name (an authority's identity id).
    pub name: String,
    /// The first four bytes of the key's hash ([`key_id`]).
    pub key_id: [u8; 4],
    /// The signature.
    pub sig: Vec<u8>,
}

impl NoteSignature {
    fn line(&self) -> String {
        let mut b = self.key_id.to_vec();
        b.extend_from_slice(&self.sig);
        format!(
            "{EM_DASH} {} {}\n",
            self.name,
            data_encoding::BASE64.encode(&b)
        )
    }
}

/// The signed-note key id of an authority's RSA key under `name`.
pub fn key_id(name: &str, key: &PublicKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(RSA_PSS_TYPE);
    h.update(key.to_spki_der());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// An authority's share of a certificate: its signature over the checkpoint's text.
pub fn sign_share(checkpoint: &Checkpoint, authority: &Identity) -> Result<NoteSignature> {
    Ok(share(
        authority,
        authority.sign(checkpoint.body().as_bytes())?,
    ))
}

/// The signature line of `authority` carrying `sig`, its signature of a checkpoint's body.
pub fn share(authority: &Identity, sig: Vec<u8>) -> NoteSignature {
    let name = authority.id().to_string();
    NoteSignature {
        key_id: key_id(&name, authority.public()),
        sig,
        name,
    }
}

/// A checkpoint with its signatures: the certificate of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// What is certified.
    pub checkpoint: Checkpoint,
    /// Signature lines, in note order.
    pub signatures: Vec<NoteSignature>,
}

/// Is `n` signatures more than two thirds of `of` authorities?
pub fn is_quorum(n: usize, of: usize) -> bool {
    of > 0 && n * 3 > of * 2
}

impl Certificate {
    /// The whole signed note.
    pub fn to_note(&self) -> String {
        let mut s = self.checkpoint.body();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.line());
        }
        s
    }

    /// Parses a signed note (signatures not checked yet: [`Certificate::verify`]).
    pub fn parse(note: &str) -> Result<Certificate> {
        let bad = |why: &str| Error::InvalidProof(format!("certificate note: {why}"));
        if note.len() > MAX_NOTE {
            return Err(Error::TooLarge {
                what: "certificate",
                size: note.len() as u64,
                limit: MAX_NOTE as u64,
            });
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("control characters"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
        let checkpoint = Checkpoint::parse_body(body)?;
        let sigs = sigs
            .strip_suffix('\n')
            .ok_or_else(|| bad("signatures do not end with a newline"))?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            let rest = line
                .strip_prefix(EM_DASH)
                .and_then(|r| r.strip_prefix(' '))
                .ok_or_else(|| bad("signature line does not start with an em dash"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("signature line has no signature"))?;
            if name.is_empty() || name.contains('+') || b64.contains(' ') {
                return Err(bad("bad key name"));
            }
            let raw = data_encoding::BASE64
                .decode(b64.as_bytes())
                .map_err(|_| bad("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(bad("signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                sig: raw[4..].to_vec(),
            });
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
        }
        let cert = Certificate {
            checkpoint,
            signatures,
        };
        if cert.to_note() != note {
            return Err(bad("not in canonical form"));
        }
        Ok(cert)
    }

    /// Checks the signatures against `authorities` (the set in effect after the certified
    /// block): signatures from keys that are not authorities are ignored; a signature from an
    /// authority's key that does not verify, or a second one from the same authority, makes the
    /// certificate invalid; more than two thirds of the authorities must have signed. Returns
    /// the signers.
    pub fn verify(&self, authorities: &BTreeMap<IdentityId, PublicKey>) -> Result<Vec<IdentityId>> {
        let signers = self.signers(authorities)?;
        if !is_quorum(signers.len(), authorities.len()) {
            return Err(Error::InvalidProof(format!(
                "certificate of block {}: {} of {} authorities signed; more than two thirds must",
                self.checkpoint.height,
                signers.len(),
                authorities.len()
            )));
        }
        Ok(signers)
    }

    /// The members of `authorities` whose signatures are on the note and verify (no quorum
    /// asked); a bad or second signature by one of them is an error, as in
    /// [`Certificate::verify`].
    pub fn signers(
        &self,
        authorities: &BTreeMap<IdentityId, PublicKey>,
    ) -> Result<Vec<IdentityId>> {
        let body = self.checkpoint.body();
        let mut signers: Vec<IdentityId> = Vec::new();
        for s in &self.signatures {
            let Some((id, key)) = authorities
                .iter()
                .find(|(id, k)| id.to_string() == s.name && key_id(&s.name, k) == s.key_id)
            else {
                continue;
            };
            if signers.contains(id) {
                return Err(Error::InvalidProof(format!(
                    "certificate of block {}: two signatures by {id}",
                    self.checkpoint.height
                )));
            }
            key.verify(body.as_bytes(), &s.sig).map_err(|_| {
                Error::InvalidProof(format!(
                    "certificate of block {}: the signature of {id} does not verify",
                    self.checkpoint.height
                ))
            })?;
            signers.push(*id);
        }
        Ok(signers)
    }
}
