//! Ledger objects and their DAG-CBOR form (field names and types are in `docs/FORMAT.md`).

use std::collections::BTreeSet;

use crate::cbor::{self, Map, MapKey, Value, map};
use crate::cid::Cid;
use crate::envelope::RecordId;
use crate::error::Result;
use crate::identity::{Identity, IdentityId, PublicKey};
use crate::ledger::domain;

/// Object format version written in every block and transaction (`"v": 1`).
pub const LEDGER_VERSION: i128 = 1;

/// Network-wide rules fixed by the genesis block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Smallest RSA modulus any registered key may have.
    pub min_key_bits: u64,
    /// How far in the future (seconds) a block timestamp may be, against the verifier's clock.
    pub max_clock_skew_secs: u64,
    /// Most transactions per block.
    pub max_txs_per_block: u64,
    /// Largest encoded transaction or block, in bytes.
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

/// Contents of the genesis block: the network and its authorities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Network name (every block repeats it).
    pub network: String,
    /// Authorities allowed to seal blocks and endorse doctors.
    pub authorities: Vec<PublicKey>,
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
        /// Licence reference, as the endorsing authority knows it.
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
        /// The version's DEK wrapped to the owner.
        wrapped_key: Vec<u8>,
    },
    /// A doctor may read a record version.
    Grant {
        /// Record id.
        record: RecordId,
        /// Version.
        version: u32,
        /// Grantee.
        doctor: IdentityId,
        /// The version's DEK wrapped to the doctor.
        wrapped_key: Vec<u8>,
        /// Unix time (seconds) after which the grant authorises nothing.
        expires: Option<u64>,
        /// Free-text purpose (e.g. "second opinion").
        purpose: Option<String>,
    },
    /// A doctor may no longer read the record.
    Revoke {
        /// Record id.
        record: RecordId,
        /// The doctor losing access.
        doctor: IdentityId,
    },
    /// The author's key is replaced (signed by the old key, co-signed by the new one).
    RotateKey {
        /// The new public key.
        new_key: PublicKey,
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
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    /// Author's identity id (for registrations: the id of the key being registered).
    pub author: IdentityId,
    /// Per-author sequence number, strictly increasing from 1.
    pub seq: u64,
    /// Author's clock, unix seconds.
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

fn tx_unsigned_value(tx: &Tx) -> Map {
    let body = match &tx.body {
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
            wrapped_key,
        } => map([
            ("record", bytes(record.as_bytes())),
            ("version", int(u64::from(*version))),
            ("content", Value::Link(*content)),
            ("size", int(*size)),
            ("wrapped_key", bytes(wrapped_key)),
        ]),
        TxBody::Grant {
            record,
            version,
            doctor,
            wrapped_key,
            expires,
            purpose,
        } => {
            let mut m = map([
                ("record", bytes(record.as_bytes())),
                ("version", int(u64::from(*version))),
                ("doctor", bytes(doctor.as_bytes())),
                ("wrapped_key", bytes(wrapped_key)),
            ]);
            if let Value::Map(m) = &mut m {
                if let Some(e) = expires {
                    m.insert("expires".into(), int(*e));
                }
                if let Some(p) = purpose {
                    m.insert("purpose".into(), Value::Text(p.clone()));
                }
            }
            m
        }
        TxBody::Revoke { record, doctor } => map([
            ("record", bytes(record.as_bytes())),
            ("doctor", bytes(doctor.as_bytes())),
        ]),
        TxBody::RotateKey { new_key } => map([("new_key", bytes(new_key.to_spki_der()))]),
    };
    let Value::Map(m) = map([
        ("v", Value::Int(LEDGER_VERSION)),
        ("type", Value::Text(tx.body.kind().into())),
        ("author", bytes(tx.author.as_bytes())),
        ("seq", int(tx.seq)),
        ("time", int(tx.time)),
        ("body", body),
    ]) else {
        unreachable!("map() builds a map")
    };
    m
}

impl SignedTx {
    /// The bytes a transaction's signatures cover: a domain prefix and the canonical encoding of
    /// the transaction without its signatures.
    pub fn signing_bytes(tx: &Tx) -> Vec<u8> {
        let mut out = domain::TX.to_vec();
        out.extend_from_slice(&cbor::encode(&Value::Map(tx_unsigned_value(tx))));
        out
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

    /// Builds the signed object from parts (no signing; used by tests forging objects).
    pub fn assemble(tx: Tx, sig: Vec<u8>, cosig: Option<Vec<u8>>) -> SignedTx {
        let mut m = tx_unsigned_value(&tx);
        m.insert("sig".into(), Value::Bytes(sig.clone()));
        if let Some(c) = &cosig {
            m.insert("cosig".into(), Value::Bytes(c.clone()));
        }
        let bytes = cbor::encode(&Value::Map(m));
        let cid = Cid::dag_cbor(&bytes);
        SignedTx {
            tx,
            sig,
            cosig,
            bytes,
            cid,
        }
    }

    /// Decodes and checks the structure of a transaction (not its signature or semantics).
    pub fn decode(raw: &[u8]) -> Result<SignedTx, String> {
        let v = cbor::decode(raw).map_err(|e| format!("not canonical DAG-CBOR: {}", e.0))?;
        let mut f = Fields::new(&v)?;
        if f.int("v")? != LEDGER_VERSION as u64 {
            return Err("unsupported transaction version".into());
        }
        let kind = f.text("type")?;
        let author = IdentityId::from_bytes(&f.bytes("author")?).map_err(|e| e.to_string())?;
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
                wrapped_key: b.bytes("wrapped_key")?,
            },
            "Grant" => TxBody::Grant {
                record: b.record("record")?,
                version: b.version("version")?,
                doctor: b.id("doctor")?,
                wrapped_key: b.bytes("wrapped_key")?,
                expires: b.opt_int("expires")?,
                purpose: b.opt_text("purpose")?,
            },
            "Revoke" => TxBody::Revoke {
                record: b.record("record")?,
                doctor: b.id("doctor")?,
            },
            "RotateKey" => TxBody::RotateKey {
                new_key: b.key("new_key")?,
            },
            other => return Err(format!("unknown transaction type `{other}`")),
        };
        b.finish()?;
        f.finish()?;
        if cosig.is_some() != matches!(body, TxBody::RotateKey { .. }) {
            return Err("cosig is present exactly on RotateKey".into());
        }
        let tx = SignedTx {
            tx: Tx {
                author,
                seq,
                time,
                body,
            },
            sig,
            cosig,
            bytes: raw.to_vec(),
            cid: Cid::dag_cbor(raw),
        };
        Ok(tx)
    }
}

/// A block's contents, everything but the seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Network name.
    pub network: String,
    /// Height (genesis = 0).
    pub height: u64,
    /// Previous block (none for genesis).
    pub parent: Option<Cid>,
    /// Unix seconds.
    pub time: u64,
    /// Transactions, in order.
    pub txs: Vec<Cid>,
    /// [`super::merkle_root`] of `txs`.
    pub merkle: [u8; 32],
    /// The sealing authority.
    pub sealer: IdentityId,
    /// Present on the genesis block only.
    pub genesis: Option<Genesis>,
}

/// A sealed block with its encoding and CID.
#[derive(Clone, Debug)]
pub struct Block {
    /// Contents.
    pub header: BlockHeader,
    /// The sealer's RSA-PSS signature over [`Block::signing_bytes`].
    pub sig: Vec<u8>,
    /// Canonical DAG-CBOR bytes.
    pub bytes: Vec<u8>,
    /// CIDv1 (dag-cbor).
    pub cid: Cid,
}

fn header_value(h: &BlockHeader) -> Map {
    let Value::Map(mut m) = map([
        ("v", Value::Int(LEDGER_VERSION)),
        ("network", Value::Text(h.network.clone())),
        ("height", int(h.height)),
        ("parent", h.parent.map_or(Value::Null, Value::Link)),
        ("time", int(h.time)),
        (
            "txs",
            Value::Array(h.txs.iter().map(|c| Value::Link(*c)).collect()),
        ),
        ("merkle", bytes(&h.merkle)),
        ("sealer", bytes(h.sealer.as_bytes())),
    ]) else {
        unreachable!("map() builds a map")
    };
    if let Some(g) = &h.genesis {
        m.insert(
            "genesis".into(),
            map([
                (
                    "authorities",
                    Value::Array(
                        g.authorities
                            .iter()
                            .map(|k| bytes(k.to_spki_der()))
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
            ]),
        );
    }
    m
}

impl Block {
    /// The bytes the seal covers.
    pub fn signing_bytes(h: &BlockHeader) -> Vec<u8> {
        let mut out = domain::BLOCK.to_vec();
        out.extend_from_slice(&cbor::encode(&Value::Map(header_value(h))));
        out
    }

    /// Seals `header` as `sealer`.
    pub fn seal(header: BlockHeader, sealer: &Identity) -> Result<Block> {
        let sig = sealer.sign(&Block::signing_bytes(&header))?;
        Ok(Block::assemble(header, sig))
    }

    /// Builds the block object from parts (no signing).
    pub fn assemble(header: BlockHeader, sig: Vec<u8>) -> Block {
        let mut m = header_value(&header);
        m.insert("sig".into(), Value::Bytes(sig.clone()));
        let bytes = cbor::encode(&Value::Map(m));
        let cid = Cid::dag_cbor(&bytes);
        Block {
            header,
            sig,
            bytes,
            cid,
        }
    }

    /// Decodes and checks the structure of a block (not its signature or semantics).
    pub fn decode(raw: &[u8]) -> Result<Block, String> {
        let v = cbor::decode(raw).map_err(|e| format!("not canonical DAG-CBOR: {}", e.0))?;
        let mut f = Fields::new(&v)?;
        if f.int("v")? != LEDGER_VERSION as u64 {
            return Err("unsupported block version".into());
        }
        let network = f.text("network")?;
        let height = f.int("height")?;
        let parent = match f.get("parent")? {
            Value::Null => None,
            Value::Link(c) => Some(*c),
            _ => return Err("parent must be a link or null".into()),
        };
        let time = f.int("time")?;
        let txs = match f.get("txs")? {
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::Link(c) => Ok(*c),
                    _ => Err("txs must be links".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err("txs must be an array".into()),
        };
        let merkle: [u8; 32] = f
            .bytes("merkle")?
            .try_into()
            .map_err(|_| "merkle must be 32 bytes".to_owned())?;
        let sealer = f.id("sealer")?;
        let sig = f.bytes("sig")?;
        let genesis = match f.opt("genesis") {
            None => None,
            Some(g) => {
                let mut g = Fields::new(g)?;
                let authorities = match g.get("authorities")? {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            Value::Bytes(b) => {
                                PublicKey::from_spki_der(b).map_err(|e| e.to_string())
                            }
                            _ => Err("authority keys must be bytes".to_owned()),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => return Err("authorities must be an array".into()),
                };
                let mut p = Fields::new(g.get("policy")?)?;
                let policy = Policy {
                    min_key_bits: p.int("min_key_bits")?,
                    max_clock_skew_secs: p.int("max_clock_skew_secs")?,
                    max_txs_per_block: p.int("max_txs_per_block")?,
                    max_object_bytes: p.int("max_object_bytes")?,
                };
                p.finish()?;
                g.finish()?;
                Some(Genesis {
                    network: network.clone(),
                    authorities,
                    policy,
                })
            }
        };
        f.finish()?;
        let header = BlockHeader {
            network,
            height,
            parent,
            time,
            txs,
            merkle,
            sealer,
            genesis,
        };
        Ok(Block {
            header,
            sig,
            bytes: raw.to_vec(),
            cid: Cid::dag_cbor(raw),
        })
    }
}

/// Typed access to a map's fields that notices unknown ones.
struct Fields<'a> {
    map: &'a Map,
    used: BTreeSet<&'a str>,
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value) -> Result<Fields<'a>, String> {
        let map = v.as_map().ok_or_else(|| "expected a map".to_owned())?;
        Ok(Fields {
            map,
            used: BTreeSet::new(),
        })
    }

    fn opt(&mut self, k: &'static str) -> Option<&'a Value> {
        let v = self.map.get(&MapKey(k.to_owned()))?;
        self.used.insert(k);
        Some(v)
    }

    fn get(&mut self, k: &'static str) -> Result<&'a Value, String> {
        self.opt(k).ok_or_else(|| format!("missing field `{k}`"))
    }

    fn int(&mut self, k: &'static str) -> Result<u64, String> {
        match self.get(k)? {
            Value::Int(i) => u64::try_from(*i).map_err(|_| format!("`{k}` out of range")),
            _ => Err(format!("`{k}` must be an unsigned integer")),
        }
    }

    fn opt_int(&mut self, k: &'static str) -> Result<Option<u64>, String> {
        if self.map.contains_key(&MapKey(k.to_owned())) {
            self.int(k).map(Some)
        } else {
            Ok(None)
        }
    }

    fn version(&mut self, k: &'static str) -> Result<u32, String> {
        u32::try_from(self.int(k)?).map_err(|_| format!("`{k}` out of range"))
    }

    fn bytes(&mut self, k: &'static str) -> Result<Vec<u8>, String> {
        match self.get(k)? {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err(format!("`{k}` must be bytes")),
        }
    }

    fn opt_bytes(&mut self, k: &'static str) -> Result<Option<Vec<u8>>, String> {
        if self.map.contains_key(&MapKey(k.to_owned())) {
            self.bytes(k).map(Some)
        } else {
            Ok(None)
        }
    }

    fn text(&mut self, k: &'static str) -> Result<String, String> {
        match self.get(k)? {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(format!("`{k}` must be text")),
        }
    }

    fn opt_text(&mut self, k: &'static str) -> Result<Option<String>, String> {
        if self.map.contains_key(&MapKey(k.to_owned())) {
            self.text(k).map(Some)
        } else {
            Ok(None)
        }
    }

    fn link(&mut self, k: &'static str) -> Result<Cid, String> {
        match self.get(k)? {
            Value::Link(c) => Ok(*c),
            _ => Err(format!("`{k}` must be a link")),
        }
    }

    fn id(&mut self, k: &'static str) -> Result<IdentityId, String> {
        IdentityId::from_bytes(&self.bytes(k)?).map_err(|e| format!("`{k}`: {e}"))
    }

    fn record(&mut self, k: &'static str) -> Result<RecordId, String> {
        let b: [u8; 16] = self
            .bytes(k)?
            .try_into()
            .map_err(|_| format!("`{k}` must be 16 bytes"))?;
        Ok(RecordId::from_bytes(b))
    }

    fn key(&mut self, k: &'static str) -> Result<PublicKey, String> {
        PublicKey::from_spki_der(&self.bytes(k)?).map_err(|e| format!("`{k}`: {e}"))
    }

    fn finish(self) -> Result<(), String> {
        for k in self.map.keys() {
            if !self.used.contains(k.0.as_str()) {
                return Err(format!("unknown field `{}`", k.0));
            }
        }
        Ok(())
    }
}
