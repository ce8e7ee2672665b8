//! Ledger objects and their DAG-CBOR form (every field is in `docs/FORMAT.md` §6).
//!
//! Five kinds of object, each a canonical DAG-CBOR map with `"v": 4` ([`LEDGER_VERSION`]) and a `"type"`:
//! the genesis block, blocks, signed transactions, certificates (a signed checkpoint note) and
//! submissions (the signed transactions a client hands a sequencer, which commit together or not
//! at all). Decoding is strict: a missing, unknown or mistyped field is refused, and so is any
//! non-canonical encoding.

use std::collections::BTreeSet;

use crate::cbor::{self, Map, MapKey, Value, map};
use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityId, PublicKey};
use crate::ledger::checkpoint::Certificate;
use crate::ledger::domain;
use crate::ledger::merkle::Hash;
use crate::record::{Purpose, RecordId};

/// Object format version written in every ledger object (`"v": 4`; 4 changed the state map's
/// doctor entry, `docs/FORMAT.md` §12.2).
pub const LEDGER_VERSION: u64 = 4;

/// Network-wide rules fixed by the genesis block.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// Smallest RSA modulus any registered key may have.
    pub min_key_bits: u64,
    /// How far in the future (seconds) a block timestamp may be when a party accepts it.
    pub max_clock_skew_secs: u64,
    /// Most transactions per block.
    pub max_txs_per_block: u64,
    /// Largest encoded object (transaction, block, certificate), in bytes.
    pub max_object_bytes: u64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            min_key_bits: 2048,
            max_clock_skew_secs: 300,
            max_txs_per_block: 1000,
            max_object_bytes: 64 * 1024,
        }
    }
}

/// An authority named by the genesis block (or added by vote).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityKey {
    /// Its RSA key (signs certificates, endorses doctors).
    pub key: PublicKey,
    /// Its CometBFT validator key (ed25519, 32 bytes), on a network; none for a single
    /// embedded authority.
    pub validator: Option<[u8; 32]>,
}

/// The genesis block: the network, its authorities and its policy. It is not signed: parties
/// trust a network by its genesis CID, which every signed object binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Network name.
    pub network: String,
    /// Creation time, unix seconds.
    pub time: u64,
    /// 16 random bytes, so that two networks never share a genesis CID.
    pub nonce: [u8; 16],
    /// The first authorities.
    pub authorities: Vec<AuthorityKey>,
    /// Policy.
    pub policy: Policy,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxBody {
    /// A patient joins (self-signed by the registered key).
    RegisterPatient {
        /// The patient's public key.
        key: PublicKey,
    },
    /// A doctor joins, with an authority's endorsement of the licence.
    RegisterDoctor {
        /// The doctor's public key.
        key: PublicKey,
        /// Licence reference, as the endorsing authority knows it (never empty).
        licence: String,
        /// Endorsing authority.
        authority: IdentityId,
        /// The authority's signature over [`super::endorsement_message`].
        endorsement: Vec<u8>,
    },
    /// A new version of a record (version 1 creates the record).
    PublishRecord {
        /// Record id.
        record: RecordId,
        /// Version number, one more than the previous.
        version: u32,
        /// Root CID of the sealed envelope stored as UnixFS.
        content: Cid,
        /// Envelope size in bytes.
        size: u64,
        /// The envelope's commitment to its data key.
        commitment: [u8; 32],
        /// The version's data key wrapped to the owner's current key.
        owner_key: Vec<u8>,
    },
    /// A doctor may read a record version.
    Grant {
        /// Record id.
        record: RecordId,
        /// Version.
        version: u32,
        /// Grantee.
        doctor: IdentityId,
        /// The version's data key wrapped to the doctor's current key.
        wrapped_key: Vec<u8>,
        /// Unix time (seconds) from which the grant authorises nothing.
        expires: Option<u64>,
        /// Why (HL7 PurposeOfUse code, in clear).
        purpose: Purpose,
        /// A free-text note, encrypted to the owner and the doctor (nonce || AES-GCM).
        note: Option<Vec<u8>>,
    },
    /// A doctor may no longer read the record. The same block must publish the record's next
    /// version (rule `Rekey`).
    Revoke {
        /// Record id.
        record: RecordId,
        /// The doctor losing access.
        doctor: IdentityId,
    },
    /// The author's key is replaced (signed by the old key, co-signed by the new one). The
    /// account id stays.
    RotateKey {
        /// The new public key.
        new_key: PublicKey,
    },
    /// Data keys the author can open, wrapped again to the author's current key (after a
    /// rotation).
    Rewrap {
        /// (record, version, wrapped key) for each.
        keys: Vec<Rewrapped>,
    },
    /// An authority's vote to add or remove an authority; it takes effect when more than two
    /// thirds of the current authorities voted for the same change.
    AuthorityChange {
        /// The change.
        change: AuthorityChangeKind,
    },
    /// The owner opts a record version into break-glass access: its data key split `threshold`
    /// of `shares.len()`, share `i` (1-based) wrapped to the `i`-th authority.
    EmergencyShares {
        /// Record id.
        record: RecordId,
        /// Version (the latest).
        version: u32,
        /// How many shares open the key.
        threshold: u8,
        /// One per authority, in index order.
        shares: Vec<WrappedShare>,
    },
    /// A registered doctor breaks the glass on a record version (recorded before any share is
    /// released).
    EmergencyAccess {
        /// Record id.
        record: RecordId,
        /// Version (the latest).
        version: u32,
        /// Why: `ETREAT` (emergency treatment).
        purpose: Purpose,
        /// The doctor's justification, encrypted to the owner, the doctor and every authority
        /// holding a share.
        justification: Vec<u8>,
        /// How long (seconds from the block's time) shares may be released.
        window: u64,
    },
    /// An authority releases its share to the doctor of an emergency request.
    ShareRelease {
        /// The `EmergencyAccess` transaction.
        request: Cid,
        /// The share's index (1-based).
        index: u8,
        /// The share and its salt, wrapped to the requesting doctor.
        wrapped: Vec<u8>,
    },
    /// An authority's review of an emergency access, after the fact.
    Review {
        /// The `EmergencyAccess` transaction.
        request: Cid,
        /// The finding.
        outcome: ReviewOutcome,
    },
}

/// One share of a data key, as the ledger carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedShare {
    /// The authority holding it.
    pub authority: IdentityId,
    /// The share and its salt, wrapped to that authority.
    pub wrapped: Vec<u8>,
    /// The share's commitment ([`crate::envelope::shares::KeyShare::commitment`]).
    pub commitment: [u8; 32],
}

/// What a review found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReviewOutcome {
    /// The emergency access was justified.
    Justified,
    /// It was not (a matter for the hospital's privacy officer).
    Unjustified,
}

impl ReviewOutcome {
    /// `justified` or `unjustified`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Justified => "justified",
            ReviewOutcome::Unjustified => "unjustified",
        }
    }
}

impl std::fmt::Display for ReviewOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReviewOutcome {
    type Err = Error;
    fn from_str(s: &str) -> Result<ReviewOutcome> {
        match s {
            "justified" => Ok(ReviewOutcome::Justified),
            "unjustified" => Ok(ReviewOutcome::Unjustified),
            other => Err(Error::InvalidInput(format!(
                "a review is `justified` or `unjustified`, not `{}`",
                crate::text::escape(other)
            ))),
        }
    }
}

impl serde::Serialize for ReviewOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ReviewOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One re-wrapped data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrapped {
    /// Record.
    pub record: RecordId,
    /// Version.
    pub version: u32,
    /// The data key wrapped to the author's current key.
    pub wrapped_key: Vec<u8>,
}

/// What an authority vote changes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthorityChangeKind {
    /// A new authority (RSA key, optional validator key).
    Add {
        /// Its SPKI DER RSA key.
        key: Vec<u8>,
        /// Its CometBFT validator key.
        validator: Option<[u8; 32]>,
    },
    /// An authority leaves.
    Remove {
        /// Its id.
        authority: IdentityId,
    },
}

impl TxBody {
    /// The transaction type's name.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::RegisterPatient { .. } => "RegisterPatient",
            TxBody::RegisterDoctor { .. } => "RegisterDoctor",
            TxBody::PublishRecord { .. } => "PublishRecord",
            TxBody::Grant { .. } => "Grant",
            TxBody::Revoke { .. } => "Revoke",
            TxBody::RotateKey { .. } => "RotateKey",
            TxBody::Rewrap { .. } => "Rewrap",
            TxBody::AuthorityChange { .. } => "AuthorityChange",
            TxBody::EmergencyShares { .. } => "EmergencyShares",
            TxBody::EmergencyAccess { .. } => "EmergencyAccess",
            TxBody::ShareRelease { .. } => "ShareRelease",
            TxBody::Review { .. } => "Review",
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    /// The network (its genesis CID): a signature is valid on this network only.
    pub genesis: Cid,
    /// Author's account id (for registrations: the id of the key being registered).
    pub author: IdentityId,
    /// Per-author sequence number, strictly increasing from 1.
    pub seq: u64,
    /// Author's clock, unix seconds (informational).
    pub time: u64,
    /// What it does.
    pub body: TxBody,
}

/// A signed transaction with its encoding and CID.
#[derive(Clone, Debug)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// Author's RSA-PSS signature over [`SignedTx::signing_bytes`].
    pub sig: Vec<u8>,
    /// For `RotateKey`: the new key's signature over the same bytes.
    pub cosig: Option<Vec<u8>>,
    /// Canonical DAG-CBOR bytes.
    pub bytes: Vec<u8>,
    /// CIDv1 (dag-cbor) of `bytes`.
    pub cid: Cid,
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn int(i: u64) -> Value {
    Value::Int(i128::from(i))
}

fn into_map(v: Value) -> Map {
    match v {
        Value::Map(m) => m,
        _ => Map::new(),
    }
}

fn body_value(body: &TxBody) -> Value {
    match body {
        TxBody::RegisterPatient { key } => map([("key", bytes(key.to_spki_der()))]),
        TxBody::RegisterDoctor {
            key,
            licence,
            authority,
            endorsement,
        } => map([
            ("key", bytes(key.to_spki_der())),
            ("licence", Value::Text(licence.clone())),
            ("authority", bytes(authority.as_bytes())),
            ("endorsement", bytes(endorsement)),
        ]),
        TxBody::PublishRecord {
            record,
            version,
            content,
            size,
            commitment,
            owner_key,
        } => map([
            ("record", bytes(record.as_bytes())),
            ("version", int(u64::from(*version))),
            ("content", Value::Link(*content)),
            ("size", int(*size)),
            ("commitment", bytes(commitment)),
            ("owner_key", bytes(owner_key)),
        ]),
        TxBody::Grant {
            record,
            version,
            doctor,
            wrapped_key,
            expires,
            purpose,
            note,
        } => {
            let mut m = into_map(map([
                ("record", bytes(record.as_bytes())),
                ("version", int(u64::from(*version))),
                ("doctor", bytes(doctor.as_bytes())),
                ("wrapped_key", bytes(wrapped_key)),
                ("purpose", Value::Text(purpose.code().into())),
            ]));
            if let Some(e) = expires {
                m.insert("expires".into(), int(*e));
            }
            if let Some(n) = note {
                m.insert("note".into(), bytes(n));
            }
            Value::Map(m)
        }
        TxBody::Revoke { record, doctor } => map([
            ("record", bytes(record.as_bytes())),
            ("doctor", bytes(doctor.as_bytes())),
        ]),
        TxBody::RotateKey { new_key } => map([("new_key", bytes(new_key.to_spki_der()))]),
        TxBody::Rewrap { keys } => map([(
            "keys",
            Value::Array(
                keys.iter()
                    .map(|k| {
                        map([
                            ("record", bytes(k.record.as_bytes())),
                            ("version", int(u64::from(k.version))),
                            ("wrapped_key", bytes(&k.wrapped_key)),
                        ])
                    })
                    .collect(),
            ),
        )]),
        TxBody::AuthorityChange { change } => match change {
            AuthorityChangeKind::Add { key, validator } => {
                let mut m = into_map(map([
                    ("action", Value::Text("add".into())),
                    ("key", bytes(key)),
                ]));
                if let Some(v) = validator {
                    m.insert("validator".into(), bytes(v));
                }
                Value::Map(m)
            }
            AuthorityChangeKind::Remove { authority } => map([
                ("action", Value::Text("remove".into())),
                ("authority", bytes(authority.as_bytes())),
            ]),
        },
        TxBody::EmergencyShares {
            record,
            version,
            threshold,
            shares,
        } => map([
            ("record", bytes(record.as_bytes())),
            ("version", int(u64::from(*version))),
            ("threshold", int(u64::from(*threshold))),
            (
                "shares",
                Value::Array(
                    shares
                        .iter()
                        .map(|s| {
                            map([
                                ("authority", bytes(s.authority.as_bytes())),
                                ("wrapped", bytes(&s.wrapped)),
                                ("commitment", bytes(&s.commitment)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]),
        TxBody::EmergencyAccess {
            record,
            version,
            purpose,
            justification,
            window,
        } => map([
            ("record", bytes(record.as_bytes())),
            ("version", int(u64::from(*version))),
            ("purpose", Value::Text(purpose.code().into())),
            ("justification", bytes(justification)),
            ("window", int(*window)),
        ]),
        TxBody::ShareRelease {
            request,
            index,
            wrapped,
        } => map([
            ("request", Value::Link(*request)),
            ("index", int(u64::from(*index))),
            ("wrapped", bytes(wrapped)),
        ]),
        TxBody::Review { request, outcome } => map([
            ("request", Value::Link(*request)),
            ("outcome", Value::Text(outcome.as_str().into())),
        ]),
    }
}

fn tx_unsigned_value(tx: &Tx) -> Map {
    into_map(map([
        ("v", int(LEDGER_VERSION)),
        ("type", Value::Text(tx.body.kind().into())),
        ("genesis", Value::Link(tx.genesis)),
        ("author", bytes(tx.author.as_bytes())),
        ("seq", int(tx.seq)),
        ("time", int(tx.time)),
        ("body", body_value(&tx.body)),
    ]))
}

/// The domain prefix and the encoding of a transaction's unsigned map.
fn signed_message(unsigned: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain::TX.len() + 512);
    out.extend_from_slice(domain::TX);
    cbor::encode_into(unsigned, &mut out);
    out
}

impl SignedTx {
    /// The bytes a transaction's signatures cover: a domain prefix and the canonical encoding of
    /// the transaction without its signatures (which names the network's genesis).
    pub fn signing_bytes(tx: &Tx) -> Vec<u8> {
        signed_message(&Value::Map(tx_unsigned_value(tx)))
    }

    /// Signs `tx` as `author`.
    pub fn sign(tx: Tx, author: &Identity) -> Result<SignedTx> {
        let sig = author.sign(&SignedTx::signing_bytes(&tx))?;
        Ok(SignedTx::assemble(tx, sig, None))
    }

    /// Signs a `RotateKey` with the old key and co-signs it with the new one.
    pub fn sign_rotation(tx: Tx, old: &Identity, new: &Identity) -> Result<SignedTx> {
        let msg = SignedTx::signing_bytes(&tx);
        let sig = old.sign(&msg)?;
        let cosig = new.sign(&msg)?;
        Ok(SignedTx::assemble(tx, sig, Some(cosig)))
    }

    /// Builds the signed object from parts (no signing; tests forge objects with it).
    pub fn assemble(tx: Tx, sig: Vec<u8>, cosig: Option<Vec<u8>>) -> SignedTx {
        SignedTx::assemble_with(tx, sig, cosig, false).0
    }

    /// [`SignedTx::assemble`], and with `message` also [`SignedTx::signing_bytes`] from the
    /// same map (built once for both encodings).
    fn assemble_with(
        tx: Tx,
        sig: Vec<u8>,
        cosig: Option<Vec<u8>>,
        message: bool,
    ) -> (SignedTx, Option<Vec<u8>>) {
        let mut v = Value::Map(tx_unsigned_value(&tx));
        let message = message.then(|| signed_message(&v));
        if let Value::Map(m) = &mut v {
            m.insert("sig".into(), Value::Bytes(sig.clone()));
            if let Some(c) = &cosig {
                m.insert("cosig".into(), Value::Bytes(c.clone()));
            }
        }
        let bytes = cbor::encode(&v);
        let cid = Cid::dag_cbor(&bytes);
        let stx = SignedTx {
            tx,
            sig,
            cosig,
            bytes,
            cid,
        };
        (stx, message)
    }

    /// Decodes and checks the structure of a transaction (not its signature or semantics).
    pub fn decode(raw: &[u8]) -> Result<SignedTx, String> {
        SignedTx::decode_with(raw, false).map(|(stx, _)| stx)
    }

    /// [`SignedTx::decode`] and the transaction's [`SignedTx::signing_bytes`], computed
    /// together (what a chain's replay needs of every transaction).
    pub(crate) fn decode_with_message(raw: &[u8]) -> Result<(SignedTx, Vec<u8>), String> {
        let (stx, message) = SignedTx::decode_with(raw, true)?;
        Ok((stx, message.unwrap_or_default()))
    }

    fn decode_with(raw: &[u8], message: bool) -> Result<(SignedTx, Option<Vec<u8>>), String> {
        let v = cbor::decode(raw).map_err(|e| format!("not canonical DAG-CBOR: {}", e.0))?;
        let mut f = Fields::new(&v)?;
        f.check_v()?;
        let kind = f.text("type")?;
        let genesis = f.link("genesis")?;
        let author = f.id("author")?;
        let seq = f.int("seq")?;
        let time = f.int("time")?;
        let sig = f.bytes("sig")?;
        let cosig = f.opt_bytes("cosig")?;
        let mut b = Fields::new(f.get("body")?)?;
        let body = match kind.as_str() {
            "RegisterPatient" => TxBody::RegisterPatient { key: b.key("key")? },
            "RegisterDoctor" => TxBody::RegisterDoctor {
                key: b.key("key")?,
                licence: b.text("licence")?,
                authority: b.id("authority")?,
                endorsement: b.bytes("endorsement")?,
            },
            "PublishRecord" => TxBody::PublishRecord {
                record: b.record("record")?,
                version: b.version("version")?,
                content: b.link("content")?,
                size: b.int("size")?,
                commitment: b.hash("commitment")?,
                owner_key: b.bytes("owner_key")?,
            },
            "Grant" => TxBody::Grant {
                record: b.record("record")?,
                version: b.version("version")?,
                doctor: b.id("doctor")?,
                wrapped_key: b.bytes("wrapped_key")?,
                expires: b.opt_int("expires")?,
                purpose: b
                    .text("purpose")?
                    .parse()
                    .map_err(|_| "`purpose` is not a known PurposeOfUse code".to_owned())?,
                note: b.opt_bytes("note")?,
            },
            "Revoke" => TxBody::Revoke {
                record: b.record("record")?,
                doctor: b.id("doctor")?,
            },
            "RotateKey" => TxBody::RotateKey {
                new_key: b.key("new_key")?,
            },
            "Rewrap" => {
                let keys = match b.get("keys")? {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            let mut k = Fields::new(x)?;
                            let r = Rewrapped {
                                record: k.record("record")?,
                                version: k.version("version")?,
                                wrapped_key: k.bytes("wrapped_key")?,
                            };
                            k.finish()?;
                            Ok(r)
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                    _ => return Err("`keys` must be an array".into()),
                };
                TxBody::Rewrap { keys }
            }
            "AuthorityChange" => {
                let change = match b.text("action")?.as_str() {
                    "add" => {
                        let key = b.bytes("key")?;
                        PublicKey::from_spki_der(&key).map_err(|e| format!("`key`: {e}"))?;
                        AuthorityChangeKind::Add {
                            key,
                            validator: b.opt_hash("validator")?,
                        }
                    }
                    "remove" => AuthorityChangeKind::Remove {
                        authority: b.id("authority")?,
                    },
                    other => return Err(format!("unknown authority change `{other}`")),
                };
                TxBody::AuthorityChange { change }
            }
            "EmergencyShares" => {
                let record = b.record("record")?;
                let version = b.version("version")?;
                let threshold = b.small("threshold")?;
                let shares = match b.get("shares")? {
                    Value::Array(a) if a.len() <= crate::envelope::shares::MAX_SHARES => a
                        .iter()
                        .map(|x| {
                            let mut k = Fields::new(x)?;
                            let s = WrappedShare {
                                authority: k.id("authority")?,
                                wrapped: k.bytes("wrapped")?,
                                commitment: k.hash("commitment")?,
                            };
                            k.finish()?;
                            Ok(s)
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                    Value::Array(_) => return Err("too many `shares`".into()),
                    _ => return Err("`shares` must be an array".into()),
                };
                TxBody::EmergencyShares {
                    record,
                    version,
                    threshold,
                    shares,
                }
            }
            "EmergencyAccess" => TxBody::EmergencyAccess {
                record: b.record("record")?,
                version: b.version("version")?,
                purpose: b
                    .text("purpose")?
                    .parse()
                    .map_err(|_| "`purpose` is not a known PurposeOfUse code".to_owned())?,
                justification: b.bytes("justification")?,
                window: b.int("window")?,
            },
            "ShareRelease" => TxBody::ShareRelease {
                request: b.link("request")?,
                index: b.small("index")?,
                wrapped: b.bytes("wrapped")?,
            },
            "Review" => TxBody::Review {
                request: b.link("request")?,
                outcome: b
                    .text("outcome")?
                    .parse()
                    .map_err(|_| "`outcome` is `justified` or `unjustified`".to_owned())?,
            },
            other => return Err(format!("unknown transaction type `{other}`")),
        };
        b.finish()?;
        f.finish()?;
        if cosig.is_some() != matches!(body, TxBody::RotateKey { .. }) {
            return Err("cosig is present exactly on RotateKey".into());
        }
        let tx = Tx {
            genesis,
            author,
            seq,
            time,
            body,
        };
        // One transaction, one encoding: what the signature covers (a re-encoding of the
        // decoded fields) must be exactly these bytes, or a third party could change how a
        // field is written (a purpose code's case) and give a signed transaction another CID.
        // The re-encoding is then `raw` itself, so its bytes and CID are the object's.
        let (canonical, message) = SignedTx::assemble_with(tx, sig, cosig, message);
        if canonical.bytes != raw {
            return Err("a field is not in its canonical form".into());
        }
        Ok((canonical, message))
    }
}

/// A block's contents. Blocks are not signed: a [`Certificate`] over the block's checkpoint makes
/// it final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// The network's genesis block.
    pub genesis: Cid,
    /// Height (genesis = 0, so blocks start at 1).
    pub height: u64,
    /// Previous block (the genesis block for height 1).
    pub parent: Cid,
    /// The certificate of the previous block (none when the parent is genesis).
    pub parent_cert: Option<Cid>,
    /// Unix seconds (CometBFT's block time on a network).
    pub time: u64,
    /// Transactions, in order.
    pub txs: Vec<Cid>,
    /// Transactions in the log through this block.
    pub log_size: u64,
    /// RFC 6962 root of the log through this block.
    pub log_root: Hash,
}

/// A block with its encoding and CID.
#[derive(Clone, Debug)]
pub struct Block {
    /// Contents.
    pub header: BlockHeader,
    /// Canonical DAG-CBOR bytes.
    pub bytes: Vec<u8>,
    /// CIDv1 (dag-cbor).
    pub cid: Cid,
}

impl Block {
    /// Encodes a header.
    pub fn new(header: BlockHeader) -> Block {
        let h = &header;
        let bytes = cbor::encode(&map([
            ("v", int(LEDGER_VERSION)),
            ("type", Value::Text("block".into())),
            ("genesis", Value::Link(h.genesis)),
            ("height", int(h.height)),
            ("parent", Value::Link(h.parent)),
            (
                "parent_cert",
                h.parent_cert.map_or(Value::Null, Value::Link),
            ),
            ("time", int(h.time)),
            (
                "txs",
                Value::Array(h.txs.iter().map(|c| Value::Link(*c)).collect()),
            ),
            ("log_size", int(h.log_size)),
            ("log_root", bytes(&h.log_root)),
        ]));
        let cid = Cid::dag_cbor(&bytes);
        Block { header, bytes, cid }
    }

    /// Decodes and checks the structure of a block.
    pub fn decode(raw: &[u8]) -> Result<Block, String> {
        let v = cbor::decode(raw).map_err(|e| format!("not canonical DAG-CBOR: {}", e.0))?;
        let mut f = Fields::new(&v)?;
        f.check_v()?;
        if f.text("type")? != "block" {
            return Err("not a block".into());
        }
        let header = BlockHeader {
            genesis: f.link("genesis")?,
            height: f.int("height")?,
            parent: f.link("parent")?,
            parent_cert: match f.get("parent_cert")? {
                Value::Null => None,
                Value::Link(c) => Some(*c),
                _ => return Err("`parent_cert` must be a link or null".into()),
            },
            time: f.int("time")?,
            txs: match f.get("txs")? {
                Value::Array(a) => a
                    .iter()
                    .map(|x| match x {
                        Value::Link(c) => Ok(*c),
                        _ => Err("`txs` must be links".to_owned()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err("`txs` must be an array".into()),
            },
            log_size: f.int("log_size")?,
            log_root: f.hash("log_root")?,
        };
        f.finish()?;
        if header.height == 0 {
            return Err("a block's height starts at 1".into());
        }
        let canonical = Block::new(header);
        if canonical.bytes != raw {
            return Err("a field is not in its canonical form".into());
        }
        Ok(canonical)
    }
}

/// The genesis block with its encoding and CID.
#[derive(Clone, Debug)]
pub struct GenesisBlock {
    /// Contents.
    pub genesis: Genesis,
    /// Canonical DAG-CBOR bytes.
    pub bytes: Vec<u8>,
    /// CIDv1 (dag-cbor): the network's identity.
    pub cid: Cid,
}

impl GenesisBlock {
    /// Encodes a genesis.
    pub fn new(genesis: Genesis) -> GenesisBlock {
        let g = &genesis;
        let bytes = cbor::encode(&map([
            ("v", int(LEDGER_VERSION)),
            ("type", Value::Text("genesis".into())),
            ("network", Value::Text(g.network.clone())),
            ("time", int(g.time)),
            ("nonce", bytes(&g.nonce)),
            (
                "authorities",
                Value::Array(
                    g.authorities
                        .iter()
                        .map(|a| {
                            let mut m = into_map(map([("key", bytes(a.key.to_spki_der()))]));
                            if let Some(v) = &a.validator {
                                m.insert("validator".into(), bytes(v));
                            }
                            Value::Map(m)
                        })
                        .collect(),
                ),
            ),
            (
                "policy",
                map([
                    ("min_key_bits", int(g.policy.min_key_bits)),
                    ("max_clock_skew_secs", int(g.policy.max_clock_skew_secs)),
                    ("max_txs_per_block", int(g.policy.max_txs_per_block)),
                    ("max_object_bytes", int(g.policy.max_object_bytes)),
                ]),
            ),
        ]));
        let cid = Cid::dag_cbor(&bytes);
        GenesisBlock {
            genesis,
            bytes,
            cid,
        }
    }

    /// Decodes and checks the structure of a genesis block.
    pub fn decode(raw: &[u8]) -> Result<GenesisBlock, String> {
        let v = cbor::decode(raw).map_err(|e| format!("not canonical DAG-CBOR: {}", e.0))?;
        let mut f = Fields::new(&v)?;
        f.check_v()?;
        if f.text("type")? != "genesis" {
            return Err("not a genesis block".into());
        }
        let network = f.text("network")?;
        let time = f.int("time")?;
        let nonce: [u8; 16] = f
            .bytes("nonce")?
            .try_into()
            .map_err(|_| "`nonce` must be 16 bytes".to_owned())?;
        let authorities = match f.get("authorities")? {
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    let mut k = Fields::new(x)?;
                    let a = AuthorityKey {
                        key: k.key("key")?,
                        validator: k.opt_hash("validator")?,
                    };
                    k.finish()?;
                    Ok(a)
                })
                .collect::<Result<Vec<_>, String>>()?,
            _ => return Err("`authorities` must be an array".into()),
        };
        let mut p = Fields::new(f.get("policy")?)?;
        let policy = Policy {
            min_key_bits: p.int("min_key_bits")?,
            max_clock_skew_secs: p.int("max_clock_skew_secs")?,
            max_txs_per_block: p.int("max_txs_per_block")?,
            max_object_bytes: p.int("max_object_bytes")?,
        };
        p.finish()?;
        f.finish()?;
        let canonical = GenesisBlock::new(Genesis {
            network,
            time,
            nonce,
            authorities,
            policy,
        });
        if canonical.bytes != raw {
            return Err("a field is not in its canonical form".into());
        }
        Ok(canonical)
    }
}

/// A certificate as stored: `{"v": 4, "type": "certificate", "block": <link>, "note": <signed
/// note text>}`. The link repeats the block the note names, so that the chain is an IPLD DAG from
/// its head (what `ipfs dag export` walks).
#[derive(Clone, Debug)]
pub struct CertificateObject {
    /// The parsed certificate.
    pub certificate: Certificate,
    /// Canonical DAG-CBOR bytes.
    pub bytes: Vec<u8>,
    /// CIDv1 (dag-cbor).
    pub cid: Cid,
}

impl CertificateObject {
    /// Encodes a certificate.
    pub fn new(certificate: Certificate) -> CertificateObject {
        let bytes = cbor::encode(&map([
            ("v", int(LEDGER_VERSION)),
            ("type", Value::Text("certificate".into())),
            ("block", Value::Link(certificate.checkpoint.block)),
            ("note", Value::Text(certificate.to_note())),
        ]));
        let cid = Cid::dag_cbor(&bytes);
        CertificateObject {
            certificate,
            bytes,
            cid,
        }
    }

    /// Decodes a certificate object (signatures not checked).
    pub fn decode(raw: &[u8]) -> Result<CertificateObject, String> {
        let v = cbor::decode(raw).map_err(|e| format!("not canonical DAG-CBOR: {}", e.0))?;
        let mut f = Fields::new(&v)?;
        f.check_v()?;
        if f.text("type")? != "certificate" {
            return Err("not a certificate".into());
        }
        let block = f.link("block")?;
        let note = f.text("note")?;
        f.finish()?;
        let certificate = Certificate::parse(&note).map_err(|e| e.to_string())?;
        if certificate.checkpoint.block != block {
            return Err("the block link differs from the block the note names".into());
        }
        Ok(CertificateObject {
            certificate,
            bytes: raw.to_vec(),
            cid: Cid::dag_cbor(raw),
        })
    }
}

/// Signed transactions that commit together, in order, or not at all: what a client submits
/// to a sequencer (on a network: the bytes of one CometBFT transaction).
#[derive(Clone, Debug)]
pub struct Submission {
    /// The transactions.
    pub txs: Vec<SignedTx>,
}

/// Most transactions in one submission.
pub const MAX_SUBMISSION_TXS: usize = 256;

impl Submission {
    /// Encodes `{"v": 4, "type": "submission", "txs": [<signed tx bytes>…]}`.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&map([
            ("v", int(LEDGER_VERSION)),
            ("type", Value::Text("submission".into())),
            (
                "txs",
                Value::Array(self.txs.iter().map(|t| bytes(&t.bytes)).collect()),
            ),
        ]))
    }

    /// Decodes a submission (each transaction's structure checked; nothing else).
    pub fn decode(raw: &[u8]) -> Result<Submission> {
        let bad = |why: String| Error::Rejected {
            rule: crate::rule::Rule::Encoding,
            detail: why,
        };
        let v = cbor::decode(raw).map_err(|e| bad(format!("not canonical DAG-CBOR: {}", e.0)))?;
        let mut f = Fields::new(&v).map_err(bad)?;
        f.check_v().map_err(bad)?;
        if f.text("type").map_err(bad)? != "submission" {
            return Err(bad("not a submission".into()));
        }
        let txs = match f.get("txs").map_err(bad)? {
            Value::Array(a) if !a.is_empty() && a.len() <= MAX_SUBMISSION_TXS => a
                .iter()
                .map(|x| match x {
                    Value::Bytes(b) => SignedTx::decode(b).map_err(bad),
                    _ => Err(bad("`txs` must hold byte strings".into())),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => {
                return Err(bad(format!(
                    "`txs` must be an array of 1 to {MAX_SUBMISSION_TXS} transactions"
                )));
            }
        };
        f.finish().map_err(bad)?;
        Ok(Submission { txs })
    }
}

/// The `"type"` of a ledger object's bytes, if they are a ledger object at all.
pub fn object_type(raw: &[u8]) -> Option<String> {
    let v = cbor::decode(raw).ok()?;
    match v.as_map()?.get(&MapKey("type".into()))? {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

/// Typed access to a map's fields that notices unknown ones.
pub(crate) struct Fields<'a> {
    map: &'a Map,
    used: BTreeSet<&'a str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(v: &'a Value) -> Result<Fields<'a>, String> {
        let map = v.as_map().ok_or_else(|| "expected a map".to_owned())?;
        Ok(Fields {
            map,
            used: BTreeSet::new(),
        })
    }

    pub(crate) fn check_v(&mut self) -> Result<(), String> {
        if self.int("v")? != LEDGER_VERSION {
            return Err(format!(
                "unsupported ledger object version (this library reads {LEDGER_VERSION})"
            ));
        }
        Ok(())
    }

    pub(crate) fn hash(&mut self, k: &'static str) -> Result<[u8; 32], String> {
        self.bytes(k)?
            .try_into()
            .map_err(|_| format!("`{k}` must be 32 bytes"))
    }

    pub(crate) fn opt_hash(&mut self, k: &'static str) -> Result<Option<[u8; 32]>, String> {
        if self.map.contains_key(&MapKey(k.to_owned())) {
            self.hash(k).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn opt(&mut self, k: &'static str) -> Option<&'a Value> {
        let v = self.map.get(&MapKey(k.to_owned()))?;
        self.used.insert(k);
        Some(v)
    }

    pub(crate) fn get(&mut self, k: &'static str) -> Result<&'a Value, String> {
        self.opt(k).ok_or_else(|| format!("missing field `{k}`"))
    }

    pub(crate) fn int(&mut self, k: &'static str) -> Result<u64, String> {
        match self.get(k)? {
            Value::Int(i) => u64::try_from(*i).map_err(|_| format!("`{k}` out of range")),
            _ => Err(format!("`{k}` must be an unsigned integer")),
        }
    }

    pub(crate) fn opt_int(&mut self, k: &'static str) -> Result<Option<u64>, String> {
        if self.map.contains_key(&MapKey(k.to_owned())) {
            self.int(k).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn small(&mut self, k: &'static str) -> Result<u8, String> {
        u8::try_from(self.int(k)?).map_err(|_| format!("`{k}` out of range"))
    }

    pub(crate) fn version(&mut self, k: &'static str) -> Result<u32, String> {
        u32::try_from(self.int(k)?).map_err(|_| format!("`{k}` out of range"))
    }

    pub(crate) fn bytes(&mut self, k: &'static str) -> Result<Vec<u8>, String> {
        match self.get(k)? {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err(format!("`{k}` must be bytes")),
        }
    }

    pub(crate) fn opt_bytes(&mut self, k: &'static str) -> Result<Option<Vec<u8>>, String> {
        if self.map.contains_key(&MapKey(k.to_owned())) {
            self.bytes(k).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn text(&mut self, k: &'static str) -> Result<String, String> {
        match self.get(k)? {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(format!("`{k}` must be text")),
        }
    }

    pub(crate) fn link(&mut self, k: &'static str) -> Result<Cid, String> {
        match self.get(k)? {
            Value::Link(c) => Ok(*c),
            _ => Err(format!("`{k}` must be a link")),
        }
    }

    pub(crate) fn id(&mut self, k: &'static str) -> Result<IdentityId, String> {
        IdentityId::from_bytes(&self.bytes(k)?).map_err(|e| format!("`{k}`: {e}"))
    }

    pub(crate) fn record(&mut self, k: &'static str) -> Result<RecordId, String> {
        let b: [u8; 16] = self
            .bytes(k)?
            .try_into()
            .map_err(|_| format!("`{k}` must be 16 bytes"))?;
        Ok(RecordId::from_bytes(b))
    }

    pub(crate) fn key(&mut self, k: &'static str) -> Result<PublicKey, String> {
        PublicKey::from_spki_der(&self.bytes(k)?).map_err(|e| format!("`{k}`: {e}"))
    }

    pub(crate) fn finish(self) -> Result<(), String> {
        for k in self.map.keys() {
            if !self.used.contains(k.0.as_str()) {
                return Err(format!("unknown field `{}`", k.0));
            }
        }
        Ok(())
    }
}
