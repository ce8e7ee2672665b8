//! Light clients: answers about the access state proven against a certificate, so a client
//! holding only the genesis block and the last checkpoint it verified can ask a node "what is
//! R's access list?" or "which records can doctor D read?" without downloading the chain.
//!
//! After every block the state keeps a [`smt::StateMap`] with three kinds of entries (values are
//! canonical DAG-CBOR, `docs/FORMAT.md` §12):
//!
//! * `record` — per record: owner, latest version, its content, and the grants on it;
//! * `doctor` — per doctor: every record whose latest version she holds a grant on (absent when
//!   none);
//! * `authorities` — the authorities in effect (one entry).
//!
//! Its root is the `state` line of the block's checkpoint, so more than two thirds of the
//! authorities sign it with the block. A node answers a query with the certificate of its
//! latest certified block, the authorities entry and the entry asked for, each with its proof
//! ([`StateAnswer`]); the client's [`Verifier`] checks the certificate against the authorities
//! it trusts, both proofs against the certified root, and the checkpoint against the largest
//! one it verified before (an older one is a `Rollback`, a different one of the same size a
//! `Fork`).

use std::collections::{BTreeMap, BTreeSet};

use crate::cbor::{self, Value};
use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::identity::{IdentityId, PublicKey};
use crate::ledger::codec::{Fields, GenesisBlock};
use crate::ledger::merkle::Hash;
use crate::ledger::smt::{self, Proof};
use crate::ledger::state::State;
use crate::ledger::{Certificate, Checkpoint};
use crate::record::{Purpose, RecordId};

/// Format tag of a [`StateAnswer`].
pub const ANSWER_FORMAT: &str = "medshare-state-proof/2";
/// Largest state answer accepted, in bytes of JSON (what fits, base64-encoded, in a node's
/// RPC answer under the HTTP client's 4 MiB limit).
pub const MAX_ANSWER: usize = 2 * 1024 * 1024;

const RECORD: &str = "medshare/state/record";
const DOCTOR: &str = "medshare/state/doctor";
const AUTHORITIES: &str = "medshare/state/authorities";
const DOCTOR_RECORD: &str = "medshare/state/doctor-record";

fn record_key(r: &RecordId) -> Hash {
    smt::key(RECORD, r.as_bytes())
}

fn doctor_key(d: &IdentityId) -> Hash {
    smt::key(DOCTOR, d.as_bytes())
}

/// A record's key in a doctor's own tree (the `root` of her entry).
fn doctor_record_key(r: &RecordId) -> Hash {
    smt::key(DOCTOR_RECORD, r.as_bytes())
}

fn authorities_key() -> Hash {
    smt::key(AUTHORITIES, b"")
}

/// What a light client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum StateQuery {
    /// A record's access list.
    Record(RecordId),
    /// The records a doctor can read.
    Doctor(IdentityId),
}

impl StateQuery {
    /// Its key in the state map.
    pub(crate) fn key(&self) -> Hash {
        match self {
            StateQuery::Record(r) => record_key(r),
            StateQuery::Doctor(d) => doctor_key(d),
        }
    }
}

/// One grant as the state map holds it (no wrapped key, no note).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProvenGrant {
    /// Grantee.
    pub doctor: IdentityId,
    /// Version granted.
    pub version: u32,
    /// Stated purpose.
    pub purpose: Purpose,
    /// Height of the granting block.
    pub granted_at: u64,
    /// Expiry, unix seconds.
    pub expires: Option<u64>,
}

/// A record's access list, proven.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordAccess {
    /// The record.
    pub record: RecordId,
    /// Its owner.
    pub owner: IdentityId,
    /// Latest version.
    pub version: u32,
    /// That version's content root.
    pub content: Cid,
    /// Grants on that version, by doctor id.
    pub grants: Vec<ProvenGrant>,
}

/// One record a doctor can read, proven.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DoctorRecord {
    /// The record.
    pub record: RecordId,
    /// The (latest) version granted.
    pub version: u32,
    /// Expiry of the grant, unix seconds.
    pub expires: Option<u64>,
}

/// What a verified answer says, at which checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LightAnswer {
    /// A record's access list (`None`: no such record on the chain).
    Record(Option<RecordAccess>),
    /// The records a doctor holds a grant on (empty: none), sorted by record id.
    Doctor(Vec<DoctorRecord>),
}

// ---- values ----------------------------------------------------------------------------------

fn record_value(state: &State, id: &RecordId) -> Option<Vec<u8>> {
    use cbor::write as w;
    let r = state.records.get(id)?;
    let v = r.versions.last()?;
    // Canonical key order: shorter keys first, then bytewise.
    let mut out = Vec::with_capacity(128 + 96 * v.grants.len());
    w::map(&mut out, 5);
    w::text(&mut out, "owner");
    w::bytes(&mut out, r.owner.as_bytes());
    w::text(&mut out, "grants");
    w::array(&mut out, v.grants.len());
    for g in v.grants.values() {
        w::map(&mut out, if g.expires.is_some() { 5 } else { 4 });
        w::text(&mut out, "doctor");
        w::bytes(&mut out, g.doctor.as_bytes());
        if let Some(e) = g.expires {
            w::text(&mut out, "expires");
            w::uint(&mut out, e);
        }
        w::text(&mut out, "granted");
        w::uint(&mut out, g.granted_at);
        w::text(&mut out, "purpose");
        w::text(&mut out, g.purpose.code());
        w::text(&mut out, "version");
        w::uint(&mut out, g.version.into());
    }
    w::text(&mut out, "record");
    w::bytes(&mut out, id.as_bytes());
    w::text(&mut out, "content");
    w::link(&mut out, &v.content);
    w::text(&mut out, "version");
    w::uint(&mut out, r.versions.len() as u64);
    Some(out)
}

/// One record in a doctor's tree: `{record, version, expires?}`, if her grant is on the
/// record's latest version.
fn doctor_record_value(state: &State, doctor: &IdentityId, id: &RecordId) -> Option<Vec<u8>> {
    use cbor::write as w;
    let r = state.records.get(id)?;
    let g = r.versions.last()?.grants.get(doctor)?;
    let mut out = Vec::with_capacity(64);
    w::map(&mut out, if g.expires.is_some() { 3 } else { 2 });
    w::text(&mut out, "record");
    w::bytes(&mut out, id.as_bytes());
    if let Some(e) = g.expires {
        w::text(&mut out, "expires");
        w::uint(&mut out, e);
    }
    w::text(&mut out, "version");
    w::uint(&mut out, g.version.into());
    Some(out)
}

#[cfg(test)]
mod values {
    //! The direct encodings above against the same maps built as [`Value`]s and encoded by
    //! the canonical encoder.
    use super::*;

    fn reference_record(state: &State, id: &RecordId) -> Option<Vec<u8>> {
        let r = state.records.get(id)?;
        let v = r.versions.last()?;
        let grants = v
            .grants
            .values()
            .map(|g| {
                let mut m = cbor::Map::new();
                m.insert("doctor".into(), Value::Bytes(g.doctor.as_bytes().to_vec()));
                m.insert("version".into(), Value::Int(g.version.into()));
                m.insert("purpose".into(), Value::Text(g.purpose.code().into()));
                m.insert("granted".into(), Value::Int(g.granted_at.into()));
                if let Some(e) = opt_int(g.expires) {
                    m.insert("expires".into(), e);
                }
                Value::Map(m)
            })
            .collect();
        Some(cbor::encode(&cbor::map([
            ("record", Value::Bytes(id.as_bytes().to_vec())),
            ("owner", Value::Bytes(r.owner.as_bytes().to_vec())),
            ("version", Value::Int(r.versions.len() as i128)),
            ("content", Value::Link(v.content)),
            ("grants", Value::Array(grants)),
        ])))
    }

    fn reference_doctor_record(state: &State, d: &IdentityId, id: &RecordId) -> Option<Vec<u8>> {
        let g = state.records.get(id)?.versions.last()?.grants.get(d)?;
        let mut m = cbor::Map::new();
        m.insert("record".into(), Value::Bytes(id.as_bytes().to_vec()));
        m.insert("version".into(), Value::Int(g.version.into()));
        if let Some(e) = opt_int(g.expires) {
            m.insert("expires".into(), e);
        }
        Some(cbor::encode(&Value::Map(m)))
    }

    fn opt_int(v: Option<u64>) -> Option<Value> {
        v.map(|x| Value::Int(x.into()))
    }

    /// Every record and grant of a state encodes as the reference does.
    fn check(state: &State) {
        for (id, r) in state.records.iter() {
            assert_eq!(record_value(state, id), reference_record(state, id));
            for v in r.versions.iter() {
                for d in v.grants.keys() {
                    assert_eq!(
                        doctor_record_value(state, d, id),
                        reference_doctor_record(state, d, id)
                    );
                }
            }
        }
    }

    use proptest::prelude::*;

    /// (doctor, version, expires, granted at, purpose index)
    type Grant = (u8, u32, Option<u64>, u64, usize);

    fn state_with(records: &[(u8, u64, Vec<Grant>)]) -> State {
        let a = crate::Identity::from_pkcs8_pem(
            crate::Role::Authority,
            "a",
            include_str!("../../testdata/keys/authority-2048.pem"),
        )
        .unwrap();
        let g = crate::ledger::GenesisBlock::new(crate::ledger::Genesis {
            network: "values".into(),
            time: 0,
            nonce: [0; 16],
            authorities: vec![crate::ledger::AuthorityKey {
                key: a.public().clone(),
                validator: None,
            }],
            policy: crate::ledger::Policy::default(),
        });
        let mut state = State::from_genesis(&g).unwrap();
        for (n, size, grants) in records {
            let mut version = crate::ledger::state::VersionState {
                content: crate::Cid::dag_cbor(&[*n]),
                size: *size,
                commitment: [0; 32],
                owner_key: Vec::new(),
                grants: imbl::OrdMap::new(),
                emergency: None,
                exposed: false,
            };
            for (d, v, expires, at, purpose) in grants {
                let doctor = IdentityId::of_spki_der(&[*d]);
                version.grants.insert(
                    doctor,
                    std::sync::Arc::new(crate::ledger::AccessGrant {
                        doctor,
                        version: *v,
                        expires: *expires,
                        purpose: Purpose::ALL[purpose % Purpose::ALL.len()],
                        note: None,
                        granted_at: *at,
                        key: crate::ledger::KeyRef {
                            tx: crate::Cid::dag_cbor(&[*n, *d]),
                            index: 0,
                        },
                    }),
                );
            }
            let versions = (0..=(*size % 30))
                .map(|_| std::sync::Arc::new(version.clone()))
                .collect();
            state.records.insert(
                RecordId::from_bytes([*n; 16]),
                crate::ledger::state::RecordState {
                    owner: a.id(),
                    versions,
                    revoked: imbl::OrdMap::new(),
                    audit: Default::default(),
                },
            );
        }
        state
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn direct_encodings_are_the_canonical_ones(
            records in proptest::collection::vec(
                (any::<u8>(), any::<u64>(), proptest::collection::vec(
                    (any::<u8>(), any::<u32>(), proptest::option::of(any::<u64>()), any::<u64>(), any::<usize>()),
                    0..6,
                )),
                0..8,
            )
        ) {
            check(&state_with(&records));
        }
    }
}

/// A doctor's entry: `{doctor, records: count, root}`, the root of her own tree of the records
/// she holds a grant on, so a grant changes one path of it, not a list of all her records.
fn doctor_value(state: &State, doctor: &IdentityId) -> Option<Vec<u8>> {
    let (count, root) = state.doctor_roots.get(doctor)?;
    Some(cbor::encode(&cbor::map([
        ("doctor", Value::Bytes(doctor.as_bytes().to_vec())),
        ("records", Value::Int((*count).into())),
        ("root", Value::Bytes(root.to_vec())),
    ])))
}

/// A doctor's tree built from the state: every record whose latest version she holds a grant
/// on.
fn doctor_tree(state: &State, doctor: &IdentityId) -> smt::StateMap {
    let ids: Vec<RecordId> = state
        .granted
        .get(doctor)
        .map(|set| set.iter().copied().collect())
        .unwrap_or_default();
    // Her leaves are computed on every core (~11,000 records at 10^5 transactions).
    let leaves = crate::platform::par_map(&ids, |r| {
        let v = doctor_record_value(state, doctor, r)?;
        Some((doctor_record_key(r), smt::value_hash(&v)))
    })
    .into_iter()
    .flatten()
    .collect();
    smt::StateMap::from_leaves(leaves)
}

/// The records of a doctor's tree, sorted by record id (what a node sends with her entry).
fn doctor_records(state: &State, doctor: &IdentityId) -> Vec<Vec<u8>> {
    state
        .granted
        .get(doctor)
        .map(|set| {
            set.iter()
                .filter_map(|r| doctor_record_value(state, doctor, r))
                .collect()
        })
        .unwrap_or_default()
}

fn authorities_value(state: &State) -> Vec<u8> {
    let list = state
        .authorities
        .values()
        .map(|a| Value::Bytes(a.key.to_spki_der().to_vec()))
        .collect();
    cbor::encode(&cbor::map([("authorities", Value::Array(list))]))
}

fn decode_map(bytes: &[u8], what: &str) -> Result<Value> {
    cbor::decode(bytes).map_err(|e| Error::InvalidProof(format!("{what} entry: {}", e.0)))
}

fn array<'a>(f: &mut Fields<'a>, k: &'static str) -> std::result::Result<&'a [Value], String> {
    match f.get(k)? {
        Value::Array(a) => Ok(a),
        _ => Err(format!("`{k}` must be an array")),
    }
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<RecordAccess> {
    let v = decode_map(bytes, "record")?;
    let parse = || -> std::result::Result<RecordAccess, String> {
        let mut f = Fields::new(&v)?;
        let mut grants = Vec::new();
        for g in array(&mut f, "grants")? {
            let mut gf = Fields::new(g)?;
            grants.push(ProvenGrant {
                doctor: gf.id("doctor")?,
                version: gf.version("version")?,
                purpose: gf
                    .text("purpose")?
                    .parse()
                    .map_err(|_| "`purpose` is not a PurposeOfUse code".to_owned())?,
                granted_at: gf.int("granted")?,
                expires: gf.opt_int("expires")?,
            });
            gf.finish()?;
        }
        let out = RecordAccess {
            record: f.record("record")?,
            owner: f.id("owner")?,
            version: f.version("version")?,
            content: f.link("content")?,
            grants,
        };
        f.finish()?;
        Ok(out)
    };
    parse().map_err(|e| Error::InvalidProof(format!("record entry: {e}")))
}

/// A doctor's entry (`doctor`, record count, tree root) checked against the records sent
/// with it: they must be hers, sorted by record id, and rebuild exactly that tree.
pub(crate) fn decode_doctor(
    bytes: &[u8],
    records: &[Vec<u8>],
) -> Result<(IdentityId, Vec<DoctorRecord>)> {
    let v = decode_map(bytes, "doctor")?;
    let parse = || -> std::result::Result<(IdentityId, Vec<DoctorRecord>), String> {
        let mut f = Fields::new(&v)?;
        let doctor = f.id("doctor")?;
        let count = f.int("records")?;
        let root: Hash = f
            .bytes("root")?
            .try_into()
            .map_err(|_| "`root` must be 32 bytes".to_owned())?;
        f.finish()?;
        if count != records.len() as u64 {
            return Err(format!(
                "the entry counts {count} records, the answer sends {}",
                records.len()
            ));
        }
        let mut out: Vec<DoctorRecord> = Vec::with_capacity(records.len());
        let mut leaves = Vec::with_capacity(records.len());
        for raw in records {
            let r = cbor::decode(raw).map_err(|e| format!("a record of the doctor: {}", e.0))?;
            let mut rf = Fields::new(&r)?;
            let rec = DoctorRecord {
                record: rf.record("record")?,
                version: rf.version("version")?,
                expires: rf.opt_int("expires")?,
            };
            rf.finish()?;
            if out.last().is_some_and(|p| p.record >= rec.record) {
                return Err("the doctor's records are not sorted by record id".into());
            }
            leaves.push((doctor_record_key(&rec.record), smt::value_hash(raw)));
            out.push(rec);
        }
        if smt::StateMap::from_leaves(leaves).root() != root {
            return Err("the records sent do not make the entry's root".into());
        }
        Ok((doctor, out))
    };
    parse().map_err(|e| Error::InvalidProof(format!("doctor entry: {e}")))
}

pub(crate) fn decode_authorities(bytes: &[u8]) -> Result<BTreeMap<IdentityId, PublicKey>> {
    let v = decode_map(bytes, "authorities")?;
    let parse = || -> std::result::Result<BTreeMap<IdentityId, PublicKey>, String> {
        let mut f = Fields::new(&v)?;
        let mut out = BTreeMap::new();
        for k in array(&mut f, "authorities")? {
            let Value::Bytes(der) = k else {
                return Err("an authority must be an SPKI DER key".into());
            };
            let key = PublicKey::from_spki_der(der).map_err(|e| e.to_string())?;
            out.insert(key.id(), key);
        }
        f.finish()?;
        if out.is_empty() {
            return Err("no authority".into());
        }
        Ok(out)
    };
    parse().map_err(|e| Error::InvalidProof(format!("authorities entry: {e}")))
}

// ---- the state's side ------------------------------------------------------------------------

impl State {
    /// This state with its authorities entry set (genesis).
    pub(crate) fn with_authorities_entry(mut self) -> State {
        let v = authorities_value(&self);
        self.state_map
            .insert(&authorities_key(), &smt::value_hash(&v));
        self
    }

    /// The doctors holding a grant on `record`'s latest version.
    pub(crate) fn grantees(&self, record: &RecordId) -> BTreeSet<IdentityId> {
        self.records
            .get(record)
            .and_then(|r| r.versions.last())
            .map(|v| v.grants.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Brings the state map up to date after a block: the entries of the records it touched
    /// (with the doctors that held a grant on them before it), of every doctor whose grants
    /// changed, and of the authorities if they changed.
    pub(crate) fn refresh_state_map(
        &mut self,
        touched: BTreeMap<RecordId, BTreeSet<IdentityId>>,
        authorities: bool,
    ) {
        let mut doctors = BTreeSet::new();
        for (record, before) in touched {
            let key = record_key(&record);
            match record_value(self, &record) {
                Some(v) => self.state_map.insert(&key, &smt::value_hash(&v)),
                None => self.state_map.remove(&key),
            }
            let mut concerned = before;
            concerned.extend(self.grantees(&record));
            let leaf = doctor_record_key(&record);
            for d in concerned {
                if !self.doctor_maps.contains_key(&d) {
                    // Not built yet (a state from a snapshot): built from the state as it is
                    // now, this block's changes included; the updates below then change nothing.
                    let tree = doctor_tree(self, &d);
                    self.doctor_maps.insert(d, tree);
                }
                let value = doctor_record_value(self, &d, &record);
                let tree = self.doctor_maps.entry(d).or_default();
                match value {
                    Some(v) => tree.insert(&leaf, &smt::value_hash(&v)),
                    None => tree.remove(&leaf),
                }
                doctors.insert(d);
            }
        }
        for d in doctors {
            let key = doctor_key(&d);
            match self.doctor_maps.get(&d).filter(|t| !t.is_empty()) {
                Some(tree) => {
                    self.doctor_roots
                        .insert(d, (tree.len() as u64, tree.root()));
                }
                None => {
                    self.doctor_maps.remove(&d);
                    self.doctor_roots.remove(&d);
                }
            }
            match doctor_value(self, &d) {
                Some(v) => self.state_map.insert(&key, &smt::value_hash(&v)),
                None => self.state_map.remove(&key),
            }
        }
        if authorities {
            let v = authorities_value(self);
            self.state_map
                .insert(&authorities_key(), &smt::value_hash(&v));
        }
    }

    /// The whole state map recomputed from the records, the doctors' grants and the
    /// authorities, without changing the state (a state loaded from a snapshot: the loader
    /// checks its indexes meanwhile, installs the map with [`State::set_state_map`], then checks
    /// the certificate against the root).
    pub(crate) fn computed_state_map(&self) -> smt::StateMap {
        // The records' entries are recomputed (on every core); the doctors' entries are the
        // (count, root) pairs kept with the state, their trees built when a block changes them.
        let ids: Vec<RecordId> = self.records.keys().copied().collect();
        let mut leaves: Vec<(Hash, Hash)> = crate::platform::par_map(&ids, |id| {
            record_value(self, id).map(|v| (record_key(id), smt::value_hash(&v)))
        })
        .into_iter()
        .flatten()
        .collect();
        for d in self.doctor_roots.keys() {
            if let Some(v) = doctor_value(self, d) {
                leaves.push((doctor_key(d), smt::value_hash(&v)));
            }
        }
        leaves.push((authorities_key(), smt::value_hash(&authorities_value(self))));
        smt::StateMap::from_leaves(leaves)
    }

    /// Installs `map`, computed by [`State::computed_state_map`] on this very state.
    pub(crate) fn set_state_map(&mut self, map: smt::StateMap) {
        self.doctor_maps = imbl::HashMap::new();
        self.state_map = map;
    }

    /// Root of the state map (what the checkpoint's `state` line holds).
    pub fn state_root(&self) -> Hash {
        self.state_map.root()
    }

    /// The answer to `query` on this state, proven against `certificate` (this state's head
    /// certificate, signed note text). What a node sends a light client.
    pub fn prove(&self, query: &StateQuery, certificate: &str) -> StateAnswer {
        let value = match query {
            StateQuery::Record(r) => record_value(self, r),
            StateQuery::Doctor(d) => doctor_value(self, d),
        };
        let records = match query {
            StateQuery::Doctor(d) if value.is_some() => Some(doctor_records(self, d)),
            _ => None,
        };
        StateAnswer {
            format: ANSWER_FORMAT.into(),
            certificate: certificate.to_owned(),
            records,
            authorities: ProvenEntry {
                proof: self.state_map.prove(&authorities_key()),
                value: Some(authorities_value(self)),
            },
            query: *query,
            entry: ProvenEntry {
                proof: self.state_map.prove(&query.key()),
                value,
            },
        }
    }
}

// ---- the client's side -----------------------------------------------------------------------

/// A state-map entry (its DAG-CBOR value, or none) with its proof.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEntry {
    /// The entry's value (base64 DAG-CBOR), or null if the key is absent.
    #[serde(with = "crate::serde_util::b64_opt")]
    pub value: Option<Vec<u8>>,
    /// Its proof against the checkpoint's state root.
    pub proof: Proof,
}

/// A node's answer to a light client (JSON, `docs/FORMAT.md` §12).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateAnswer {
    /// [`ANSWER_FORMAT`].
    pub format: String,
    /// The certificate (signed note) of the node's latest certified block.
    pub certificate: String,
    /// The authorities entry, proven.
    pub authorities: ProvenEntry,
    /// What was asked.
    pub query: StateQuery,
    /// The entry asked for, proven.
    pub entry: ProvenEntry,
    /// For a doctor present in the map: the records of her tree (base64 DAG-CBOR values,
    /// sorted by record id), which must rebuild the root her entry holds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::b64_vec_opt"
    )]
    pub records: Option<Vec<Vec<u8>>>,
}

impl StateAnswer {
    /// Parses the JSON form (at most [`MAX_ANSWER`] bytes).
    pub fn from_json(text: &[u8]) -> Result<StateAnswer> {
        if text.len() > MAX_ANSWER {
            return Err(Error::TooLarge {
                what: "state answer",
                size: text.len() as u64,
                limit: MAX_ANSWER as u64,
            });
        }
        serde_json::from_slice(text).map_err(|e| Error::InvalidProof(format!("state answer: {e}")))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a light client trusts: the network, the authorities it last verified, and the largest
/// checkpoint it verified (its rollback floor). Kept by the caller between sessions
/// ([`Verifier::to_json`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    genesis: Cid,
    authorities: BTreeMap<IdentityId, PublicKey>,
    checkpoint: Option<Certificate>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierJson {
    format: String,
    genesis: Cid,
    /// SPKI DER keys, base64.
    authorities: Vec<String>,
    /// The signed note of the largest checkpoint verified.
    checkpoint: Option<String>,
}

const VERIFIER_FORMAT: &str = "medshare-light-trust/1";

impl Verifier {
    /// A verifier that trusts `genesis` (its authorities) and nothing after it yet.
    pub fn new(genesis: &GenesisBlock) -> Result<Verifier> {
        let state = State::from_genesis(genesis)?;
        Ok(Verifier {
            genesis: genesis.cid,
            authorities: state.authority_keys(),
            checkpoint: None,
        })
    }

    /// The network.
    pub fn genesis(&self) -> Cid {
        self.genesis
    }

    /// The largest checkpoint verified so far.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref().map(|c| &c.checkpoint)
    }

    /// The authorities trusted now.
    pub fn authorities(&self) -> Vec<IdentityId> {
        self.authorities.keys().copied().collect()
    }

    /// Checks `answer` and, if it holds, moves the trust forward to its checkpoint.
    ///
    /// The certificate must be signed by more than two thirds of the authorities its state
    /// names, and — if they are not the ones trusted — by more than two thirds of the trusted
    /// ones too (a change is followed only on the word of a quorum the client already trusts). Its log may not be smaller than the largest one verified
    /// before (`Rollback`), nor differ from it at the same size (`Fork`). Both entries must be
    /// proven against its state root, and the entry must be the one asked for.
    pub fn verify(&mut self, query: &StateQuery, answer: &StateAnswer) -> Result<LightAnswer> {
        if answer.format != ANSWER_FORMAT {
            return Err(Error::InvalidProof(format!(
                "state answer format {:?}, expected {ANSWER_FORMAT}",
                crate::text::escape(&answer.format)
            )));
        }
        if answer.query != *query {
            return Err(Error::InvalidProof(
                "the answer is about something else than the question".into(),
            ));
        }
        let cert = Certificate::parse(&answer.certificate)?;
        let cp = &cert.checkpoint;
        if cp.genesis != self.genesis {
            return Err(Error::WrongGenesis {
                expected: self.genesis,
                found: cp.genesis,
            });
        }
        let auth_bytes = answer
            .authorities
            .value
            .as_deref()
            .ok_or_else(|| Error::InvalidProof("the answer names no authorities".into()))?;
        answer.authorities.proof.verify(
            &cp.state,
            &authorities_key(),
            Some(&smt::value_hash(auth_bytes)),
        )?;
        let proven = decode_authorities(auth_bytes)?;
        cert.verify(&proven)?;
        if proven != self.authorities {
            // A change is believed only on the word of a quorum of the authorities already
            // trusted: a set the node made up, signed by its own keys (or by keys of
            // authorities voted out long ago), convinces nobody.
            let vouching = cert.signers(&self.authorities)?.len();
            if !crate::ledger::checkpoint::is_quorum(vouching, self.authorities.len()) {
                return Err(Error::InvalidProof(format!(
                    "certificate of block {}: the authorities changed and {vouching} of the {} trusted ones signed; more than two thirds must (a client that fell behind a larger change must verify the chain)",
                    cp.height,
                    self.authorities.len()
                )));
            }
        }
        if let Some(trusted) = &self.checkpoint {
            let t = &trusted.checkpoint;
            if cp.size < t.size {
                return Err(Error::Rollback {
                    trusted: t.size,
                    offered: cp.size,
                });
            }
            if cp.size == t.size && cp != t {
                return Err(Error::Fork {
                    size: cp.size,
                    trusted: trusted.to_note(),
                    offered: answer.certificate.clone(),
                });
            }
        }
        let entry = &answer.entry;
        let hash = entry.value.as_deref().map(smt::value_hash);
        entry.proof.verify(&cp.state, &query.key(), hash.as_ref())?;
        let out = match (query, entry.value.as_deref()) {
            (StateQuery::Record(_), None) => LightAnswer::Record(None),
            (StateQuery::Record(r), Some(v)) => {
                let a = decode_record(v)?;
                if a.record != *r {
                    return Err(Error::InvalidProof("the entry names another record".into()));
                }
                LightAnswer::Record(Some(a))
            }
            (StateQuery::Doctor(_), None) => LightAnswer::Doctor(Vec::new()),
            (StateQuery::Doctor(d), Some(v)) => {
                let sent = answer.records.as_deref().unwrap_or_default();
                let (doctor, records) = decode_doctor(v, sent)?;
                if doctor != *d {
                    return Err(Error::InvalidProof("the entry names another doctor".into()));
                }
                LightAnswer::Doctor(records)
            }
        };
        self.authorities = proven;
        self.checkpoint = Some(cert);
        Ok(out)
    }

    /// The trust as JSON, to keep between sessions.
    pub fn to_json(&self) -> String {
        let j = VerifierJson {
            format: VERIFIER_FORMAT.into(),
            genesis: self.genesis,
            authorities: self
                .authorities
                .values()
                .map(|k| data_encoding::BASE64.encode(k.to_spki_der()))
                .collect(),
            checkpoint: self.checkpoint.as_ref().map(Certificate::to_note),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// Reads trust written by [`Verifier::to_json`]; it must be for `genesis`. The checkpoint's
    /// signatures are checked again against the authorities it names.
    pub fn from_json(text: &str, genesis: &Cid) -> Result<Verifier> {
        if text.len() > 1024 * 1024 {
            return Err(Error::TooLarge {
                what: "light-client trust",
                size: text.len() as u64,
                limit: 1024 * 1024,
            });
        }
        let bad = |e: String| Error::InvalidInput(format!("light-client trust: {e}"));
        let j: VerifierJson = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if j.format != VERIFIER_FORMAT {
            return Err(bad(format!("format is not {VERIFIER_FORMAT}")));
        }
        if j.genesis != *genesis {
            return Err(Error::WrongGenesis {
                expected: *genesis,
                found: j.genesis,
            });
        }
        let mut authorities = BTreeMap::new();
        for a in &j.authorities {
            let der = data_encoding::BASE64
                .decode(a.as_bytes())
                .map_err(|_| bad("an authority key is not base64".into()))?;
            let key = PublicKey::from_spki_der(&der)?;
            authorities.insert(key.id(), key);
        }
        if authorities.is_empty() {
            return Err(bad("no authority".into()));
        }
        let checkpoint = match &j.checkpoint {
            None => None,
            Some(note) => {
                let cert = Certificate::parse(note)?;
                if cert.checkpoint.genesis != *genesis {
                    return Err(Error::WrongGenesis {
                        expected: *genesis,
                        found: cert.checkpoint.genesis,
                    });
                }
                cert.verify(&authorities)?;
                Some(cert)
            }
        };
        Ok(Verifier {
            genesis: j.genesis,
            authorities,
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Identity, Role};
    use crate::ledger::checkpoint::sign_share;
    use crate::ledger::{AuthorityKey, Genesis, Policy};

    fn authority(name: &str) -> Identity {
        let pem = std::fs::read_to_string(format!(
            "{}/testdata/keys/{name}-2048.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        Identity::from_pkcs8_pem(Role::Authority, name, &pem).unwrap()
    }

    /// Two of four genesis authorities (say, keys of authorities long voted out) make up a
    /// network of their own: a state whose authorities entry names only them, certified by
    /// both. A quorum of the set it names, but not of the set the client trusts: refused.
    #[test]
    fn a_made_up_authority_set_convinces_nobody() {
        let keys: Vec<Identity> = ["authority", "authority2", "authority3", "authority4"]
            .iter()
            .map(|n| authority(n))
            .collect();
        let genesis = GenesisBlock::new(Genesis {
            network: "light".into(),
            time: 1_700_000_000,
            nonce: [1; 16],
            authorities: keys
                .iter()
                .map(|a| AuthorityKey {
                    key: a.public().clone(),
                    validator: None,
                })
                .collect(),
            policy: Policy::default(),
        });
        let mut state = State::from_genesis(&genesis).unwrap();
        let two = cbor::encode(&cbor::map([(
            "authorities",
            Value::Array(
                keys[..2]
                    .iter()
                    .map(|a| Value::Bytes(a.public().to_spki_der().to_vec()))
                    .collect(),
            ),
        )]));
        state
            .state_map
            .insert(&authorities_key(), &smt::value_hash(&two));
        let cp = state.checkpoint();
        let cert = Certificate {
            signatures: keys[..2]
                .iter()
                .map(|a| sign_share(&cp, a).unwrap())
                .collect(),
            checkpoint: cp,
        };
        let q = StateQuery::Record(RecordId::from_bytes([1; 16]));
        let mut answer = state.prove(&q, &cert.to_note());
        answer.authorities.value = Some(two);
        let mut v = Verifier::new(&genesis).unwrap();
        match v.verify(&q, &answer) {
            Err(Error::InvalidProof(m)) => assert!(m.contains("2 of the 4 trusted"), "{m}"),
            other => panic!("a made-up authority set was believed: {other:?}"),
        }
        assert!(v.checkpoint().is_none());
    }
}
