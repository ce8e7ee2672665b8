//! Python bindings of medshare: conversions and error mapping only; all logic is in the core.
//!
//! Long operations (seal, open, verify, CID) run with the GIL released, driven by a blocking
//! executor, so several Python threads use several cores.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::Mutex;

use medshare::envelope::{Metadata, RecordId};
use medshare::ledger::AuditKind;
use medshare::store::BlockStore;
use medshare::{Cid, IdentityId, Profile, Role, Store};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyType};

// ---- exceptions ----------------------------------------------------------------------------------

pyo3::create_exception!(
    _native,
    MedshareError,
    PyException,
    "Base class of every medshare error; `.code` names the kind."
);
pyo3::create_exception!(
    _native,
    IdentityError,
    MedshareError,
    "A key or identity problem."
);
pyo3::create_exception!(
    _native,
    IntegrityError,
    MedshareError,
    "Data failed an integrity check: altered, truncated, or not matching its CID."
);
pyo3::create_exception!(
    _native,
    AccessError,
    MedshareError,
    "The reader may not open the record."
);
pyo3::create_exception!(
    _native,
    LedgerError,
    MedshareError,
    "A ledger rule is broken."
);
pyo3::create_exception!(_native, StoreError, MedshareError, "A block store problem.");
pyo3::create_exception!(_native, WeakKey, IdentityError, "RSA key under 2048 bits.");
pyo3::create_exception!(
    _native,
    UnsupportedKeySize,
    IdentityError,
    "RSA key size not supported."
);
pyo3::create_exception!(
    _native,
    InvalidKey,
    IdentityError,
    "Key or key file could not be parsed."
);
pyo3::create_exception!(
    _native,
    WrongPassphrase,
    IdentityError,
    "The passphrase does not open the key file."
);
pyo3::create_exception!(
    _native,
    BadSignature,
    IdentityError,
    "A signature does not verify."
);
pyo3::create_exception!(
    _native,
    MalformedEnvelope,
    IntegrityError,
    "The envelope is not well formed."
);
pyo3::create_exception!(
    _native,
    UnsupportedVersion,
    IntegrityError,
    "Envelope format version not supported."
);
pyo3::create_exception!(
    _native,
    ChunkAuthentication,
    IntegrityError,
    "A chunk failed authentication (altered, swapped, reordered)."
);
pyo3::create_exception!(_native, Truncated, IntegrityError, "Data ends early.");
pyo3::create_exception!(_native, TrailingData, IntegrityError, "Data after the end.");
pyo3::create_exception!(
    _native,
    SizeMismatch,
    IntegrityError,
    "Size differs from the declared one."
);
pyo3::create_exception!(
    _native,
    CidMismatch,
    IntegrityError,
    "Bytes do not match their CID."
);
pyo3::create_exception!(
    _native,
    MalformedNode,
    IntegrityError,
    "A UnixFS/dag-pb node is malformed."
);
pyo3::create_exception!(
    _native,
    MalformedCar,
    IntegrityError,
    "A CAR file is malformed."
);
pyo3::create_exception!(
    _native,
    InvalidCid,
    MedshareError,
    "A CID could not be parsed."
);
pyo3::create_exception!(
    _native,
    TooLarge,
    MedshareError,
    "An input exceeds a size limit."
);
pyo3::create_exception!(
    _native,
    RangeOutOfBounds,
    MedshareError,
    "A byte range is outside the plaintext."
);
pyo3::create_exception!(
    _native,
    NotARecipient,
    AccessError,
    "The identity is not a recipient of the envelope."
);
pyo3::create_exception!(
    _native,
    KeyUnwrap,
    AccessError,
    "The wrapped key does not open with this key for this record version."
);
pyo3::create_exception!(
    _native,
    AccessRevoked,
    AccessError,
    "The owner revoked this reader's access."
);
pyo3::create_exception!(
    _native,
    AccessExpired,
    AccessError,
    "The reader's grant expired."
);
pyo3::create_exception!(
    _native,
    AccessDenied,
    AccessError,
    "The record was never granted to this reader."
);
pyo3::create_exception!(
    _native,
    UnknownRecord,
    LedgerError,
    "No such record on the chain."
);
pyo3::create_exception!(
    _native,
    UnknownIdentity,
    LedgerError,
    "No such identity on the chain."
);
pyo3::create_exception!(
    _native,
    InvalidChain,
    LedgerError,
    "The chain breaks a validation rule (`.rule`, `.height`, `.tx`)."
);
pyo3::create_exception!(
    _native,
    Rejected,
    LedgerError,
    "The ledger refused a new transaction (`.rule`)."
);
pyo3::create_exception!(
    _native,
    ReadOnly,
    LedgerError,
    "The vault has no sealing authority."
);
pyo3::create_exception!(_native, NoChain, LedgerError, "The store holds no chain.");
pyo3::create_exception!(
    _native,
    StoreLocked,
    StoreError,
    "Another process holds the store."
);
pyo3::create_exception!(
    _native,
    NotFound,
    StoreError,
    "A block is missing from the store."
);
pyo3::create_exception!(
    _native,
    HeadConflict,
    StoreError,
    "The head changed concurrently."
);
pyo3::create_exception!(
    _native,
    StoreCorrupt,
    StoreError,
    "The store's files are damaged."
);
pyo3::create_exception!(_native, BackendError, StoreError, "A store backend failed.");

fn exception_type<'py>(py: Python<'py>, e: &medshare::Error) -> Bound<'py, PyType> {
    use medshare::Error as E;
    match e {
        E::WeakKey { .. } => py.get_type::<WeakKey>(),
        E::UnsupportedKeySize { .. } => py.get_type::<UnsupportedKeySize>(),
        E::InvalidKey(_) => py.get_type::<InvalidKey>(),
        E::WrongPassphrase => py.get_type::<WrongPassphrase>(),
        E::BadSignature => py.get_type::<BadSignature>(),
        E::MalformedEnvelope(_) => py.get_type::<MalformedEnvelope>(),
        E::UnsupportedVersion(_) => py.get_type::<UnsupportedVersion>(),
        E::NotARecipient => py.get_type::<NotARecipient>(),
        E::KeyUnwrap => py.get_type::<KeyUnwrap>(),
        E::ChunkAuthentication { .. } => py.get_type::<ChunkAuthentication>(),
        E::Truncated => py.get_type::<Truncated>(),
        E::TrailingData => py.get_type::<TrailingData>(),
        E::SizeMismatch { .. } => py.get_type::<SizeMismatch>(),
        E::RangeOutOfBounds { .. } => py.get_type::<RangeOutOfBounds>(),
        E::TooLarge { .. } => py.get_type::<TooLarge>(),
        E::InvalidCid(_) => py.get_type::<InvalidCid>(),
        E::CidMismatch { .. } => py.get_type::<CidMismatch>(),
        E::MalformedNode(_) => py.get_type::<MalformedNode>(),
        E::MalformedCar(_) => py.get_type::<MalformedCar>(),
        E::NotFound(_) => py.get_type::<NotFound>(),
        E::StoreLocked(_) => py.get_type::<StoreLocked>(),
        E::HeadConflict { .. } => py.get_type::<HeadConflict>(),
        E::StoreCorrupt(_) => py.get_type::<StoreCorrupt>(),
        E::Backend(_) | E::Io(_) | E::Rng => py.get_type::<BackendError>(),
        E::InvalidChain { .. } => py.get_type::<InvalidChain>(),
        E::Rejected { .. } => py.get_type::<Rejected>(),
        E::AccessRevoked(_) => py.get_type::<AccessRevoked>(),
        E::AccessExpired(_) => py.get_type::<AccessExpired>(),
        E::AccessDenied(_) => py.get_type::<AccessDenied>(),
        E::UnknownRecord(_) => py.get_type::<UnknownRecord>(),
        E::UnknownIdentity(_) => py.get_type::<UnknownIdentity>(),
        E::ReadOnly => py.get_type::<ReadOnly>(),
        E::NoChain => py.get_type::<NoChain>(),
        _ => py.get_type::<MedshareError>(),
    }
}

/// The one conversion from core errors to Python exceptions: the class per kind, the core
/// message, and `.code` (plus `.rule`/`.height`/`.tx` for ledger errors).
fn err(e: medshare::Error) -> PyErr {
    Python::attach(|py| {
        let ty = exception_type(py, &e);
        let made = ty.call1((e.to_string(),)).and_then(|exc| {
            exc.setattr("code", e.code())?;
            match &e {
                medshare::Error::InvalidChain {
                    height, tx, rule, ..
                } => {
                    exc.setattr("rule", rule.to_string())?;
                    exc.setattr("height", *height)?;
                    exc.setattr("tx", *tx)?;
                }
                medshare::Error::Rejected { rule, .. } => exc.setattr("rule", rule.to_string())?,
                _ => {}
            }
            Ok(PyErr::from_value(exc))
        });
        made.unwrap_or_else(|e| e)
    })
}

fn value_err(msg: impl Into<String>) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(msg.into())
}

// ---- identities ------------------------------------------------------------------------------------

/// A participant's public key.
#[pyclass(frozen, module = "medshare._native")]
#[derive(Clone)]
struct PublicKey(medshare::PublicKey);

#[pymethods]
impl PublicKey {
    /// Parses a PEM `PUBLIC KEY`.
    #[staticmethod]
    fn from_pem(pem: &str) -> PyResult<Self> {
        medshare::PublicKey::from_pem(pem)
            .map(PublicKey)
            .map_err(err)
    }

    /// Parses SPKI DER.
    #[staticmethod]
    fn from_der(der: &[u8]) -> PyResult<Self> {
        medshare::PublicKey::from_spki_der(der)
            .map(PublicKey)
            .map_err(err)
    }

    #[getter]
    fn id(&self) -> String {
        self.0.id().to_string()
    }

    #[getter]
    fn bits(&self) -> usize {
        self.0.bits()
    }

    fn to_pem(&self) -> String {
        self.0.to_pem()
    }

    fn to_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.to_spki_der())
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> PyResult<()> {
        self.0.verify(message, signature).map_err(err)
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.0 == other.0
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.0.id().as_bytes()[2..10].try_into().unwrap_or_default())
    }

    fn __repr__(&self) -> String {
        format!("PublicKey(id='{}', bits={})", self.0.id(), self.0.bits())
    }
}

/// A participant: role, display name and RSA private key (never printed).
#[pyclass(frozen, module = "medshare._native")]
struct Identity(medshare::Identity);

fn parse_role(role: &str) -> PyResult<Role> {
    Role::from_str(role).map_err(|_| {
        value_err(format!(
            "role must be 'patient', 'doctor' or 'authority', not {role:?}"
        ))
    })
}

#[pymethods]
impl Identity {
    /// Generates a new key pair (2048, 3072 or 4096 bits).
    #[staticmethod]
    #[pyo3(signature = (role, bits = 3072, name = ""))]
    fn generate(py: Python<'_>, role: &str, bits: usize, name: &str) -> PyResult<Self> {
        let role = parse_role(role)?;
        py.detach(|| medshare::Identity::generate(role, name, bits))
            .map(Identity)
            .map_err(err)
    }

    /// Loads an encrypted key file written by `save` (or by the `medshare` CLI).
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf, passphrase: &str) -> PyResult<Self> {
        py.detach(|| medshare::Identity::load(&path, passphrase))
            .map(Identity)
            .map_err(err)
    }

    /// Imports an unencrypted PKCS#8 PEM private key.
    #[staticmethod]
    #[pyo3(signature = (role, pem, name = ""))]
    fn from_pkcs8_pem(role: &str, pem: &str, name: &str) -> PyResult<Self> {
        medshare::Identity::from_pkcs8_pem(parse_role(role)?, name, pem)
            .map(Identity)
            .map_err(err)
    }

    /// Decodes key-file text (see `to_key_file`).
    #[staticmethod]
    fn from_key_file(py: Python<'_>, text: &str, passphrase: &str) -> PyResult<Self> {
        py.detach(|| medshare::Identity::from_key_file(text, passphrase))
            .map(Identity)
            .map_err(err)
    }

    /// Writes the key encrypted under `passphrase` (scrypt + AES-256-GCM), mode 0600.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf, passphrase: &str) -> PyResult<()> {
        py.detach(|| self.0.save(&path, passphrase)).map_err(err)
    }

    /// The encrypted key file as text.
    fn to_key_file(&self, py: Python<'_>, passphrase: &str) -> PyResult<String> {
        py.detach(|| self.0.to_key_file(passphrase)).map_err(err)
    }

    fn public(&self) -> PublicKey {
        PublicKey(self.0.public().clone())
    }

    #[getter]
    fn id(&self) -> String {
        self.0.id().to_string()
    }

    #[getter]
    fn role(&self) -> &'static str {
        self.0.role().as_str()
    }

    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }

    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let sig = py.detach(|| self.0.sign(message)).map_err(err)?;
        Ok(PyBytes::new(py, &sig))
    }

    fn __repr__(&self) -> String {
        format!(
            "Identity(role='{}', name='{}', id='{}')",
            self.0.role(),
            self.0.name(),
            self.0.id()
        )
    }
}

// ---- results ---------------------------------------------------------------------------------------

/// Python-style repr of an optional number.
fn opt_num<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "None".to_owned(), ToString::to_string)
}

/// Python-style repr of an optional string.
fn opt_str(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(|| "None".to_owned(), |s| format!("'{s}'"))
}

/// A record as the chain knows it.
#[pyclass(frozen, get_all, module = "medshare._native")]
struct RecordInfo {
    record: String,
    owner: String,
    version: u32,
    content: String,
    size: u64,
    expires: Option<u64>,
    purpose: Option<String>,
}

#[pymethods]
impl RecordInfo {
    fn __repr__(&self) -> String {
        format!(
            "RecordInfo(record='{}', version={}, size={}, expires={}, purpose={})",
            self.record,
            self.version,
            self.size,
            opt_num(&self.expires),
            opt_str(&self.purpose)
        )
    }
}

impl From<medshare::ledger::RecordInfo> for RecordInfo {
    fn from(r: medshare::ledger::RecordInfo) -> Self {
        RecordInfo {
            record: r.record.to_string(),
            owner: r.owner.to_string(),
            version: r.version,
            content: r.content.to_string(),
            size: r.size,
            expires: r.grant.as_ref().and_then(|g| g.expires),
            purpose: r.grant.and_then(|g| g.purpose),
        }
    }
}

/// One entry of a record's audit trail.
#[pyclass(frozen, get_all, module = "medshare._native")]
struct AuditEvent {
    kind: &'static str,
    height: u64,
    block: String,
    time: u64,
    tx: String,
    author: String,
    version: Option<u32>,
    doctor: Option<String>,
    expires: Option<u64>,
    purpose: Option<String>,
}

#[pymethods]
impl AuditEvent {
    fn __repr__(&self) -> String {
        format!(
            "AuditEvent(kind='{}', height={}, time={}, version={}, doctor={})",
            self.kind,
            self.height,
            self.time,
            opt_num(&self.version),
            opt_str(&self.doctor)
        )
    }
}

impl From<medshare::ledger::AuditEvent> for AuditEvent {
    fn from(e: medshare::ledger::AuditEvent) -> Self {
        let (expires, purpose) = match &e.kind {
            AuditKind::Granted {
                expires, purpose, ..
            } => (*expires, purpose.clone()),
            _ => (None, None),
        };
        AuditEvent {
            kind: e.kind.name(),
            height: e.height,
            block: e.block.to_string(),
            time: e.time,
            tx: e.tx.to_string(),
            author: e.author.to_string(),
            version: e.kind.version(),
            doctor: e.kind.doctor().map(|d| d.to_string()),
            expires,
            purpose,
        }
    }
}

/// What `Vault.verify()` checked.
#[pyclass(frozen, get_all, module = "medshare._native")]
struct VerifyReport {
    blocks: u64,
    transactions: u64,
    head: String,
}

#[pymethods]
impl VerifyReport {
    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(blocks={}, transactions={}, head='{}')",
            self.blocks, self.transactions, self.head
        )
    }
}

/// What `Vault.revoke()` did.
#[pyclass(frozen, get_all, module = "medshare._native")]
struct RevokeReport {
    new_version: u32,
    remaining: Vec<String>,
    deleted_blocks: usize,
}

#[pymethods]
impl RevokeReport {
    fn __repr__(&self) -> String {
        let remaining: Vec<String> = self.remaining.iter().map(|d| format!("'{d}'")).collect();
        format!(
            "RevokeReport(new_version={}, remaining=[{}], deleted_blocks={})",
            self.new_version,
            remaining.join(", "),
            self.deleted_blocks
        )
    }
}

/// Decrypted record metadata.
#[pyclass(frozen, get_all, module = "medshare._native")]
struct RecordMetadata {
    name: String,
    media_type: String,
    size: u64,
}

#[pymethods]
impl RecordMetadata {
    fn __repr__(&self) -> String {
        format!(
            "RecordMetadata(name='{}', media_type='{}', size={})",
            self.name, self.media_type, self.size
        )
    }
}

// ---- Python-implemented stores ------------------------------------------------------------------------

/// A block store implemented by a Python object with `get`, `put`, `has`, `delete`, `head` and
/// `compare_and_swap_head` methods (CIDs as strings, blocks as bytes).
struct PyStore(Py<PyAny>);

impl PyStore {
    fn call<T>(
        &self,
        name: &str,
        args: impl for<'py> pyo3::call::PyCallArgs<'py>,
        f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> medshare::Result<T> {
        Python::attach(|py| {
            let r = self.0.bind(py).call_method1(name, args)?;
            f(&r)
        })
        .map_err(|e| medshare::Error::Backend(format!("Python store `{name}` failed: {e}")))
    }
}

fn opt_cid(v: &Bound<'_, PyAny>) -> PyResult<Option<Cid>> {
    if v.is_none() {
        return Ok(None);
    }
    let s: String = v.extract()?;
    Cid::from_str(&s)
        .map(Some)
        .map_err(|e| value_err(e.to_string()))
}

#[async_trait::async_trait]
impl BlockStore for PyStore {
    async fn put(&self, cid: &Cid, data: &[u8]) -> medshare::Result<()> {
        self.call("put", (cid.to_string(), data), |_| Ok(()))
    }

    async fn get(&self, cid: &Cid) -> medshare::Result<Option<Vec<u8>>> {
        self.call("get", (cid.to_string(),), |v| {
            if v.is_none() {
                Ok(None)
            } else {
                v.extract::<Vec<u8>>().map(Some)
            }
        })
    }

    async fn has(&self, cid: &Cid) -> medshare::Result<bool> {
        self.call("has", (cid.to_string(),), |v| v.is_truthy())
    }

    async fn delete(&self, cid: &Cid) -> medshare::Result<()> {
        self.call("delete", (cid.to_string(),), |_| Ok(()))
    }

    async fn head(&self) -> medshare::Result<Option<Cid>> {
        self.call("head", (), opt_cid)
    }

    async fn compare_and_swap_head(
        &self,
        expected: Option<&Cid>,
        new: Option<&Cid>,
    ) -> medshare::Result<()> {
        let swapped = self.call(
            "compare_and_swap_head",
            (expected.map(Cid::to_string), new.map(Cid::to_string)),
            |v| v.is_truthy(),
        )?;
        if swapped {
            Ok(())
        } else {
            let current = self.head_now()?;
            Err(medshare::store::head_conflict(expected, current.as_ref()))
        }
    }
}

impl PyStore {
    fn head_now(&self) -> medshare::Result<Option<Cid>> {
        self.call("head", (), opt_cid)
    }
}

/// Runs the core's store conformance suite against a Python store (each check gets a fresh store
/// from `factory()`); raises AssertionError naming the failed check.
#[pyfunction]
fn store_conformance(py: Python<'_>, factory: Py<PyAny>) -> PyResult<()> {
    let result = py.detach(|| {
        pollster::block_on(medshare::store::testsuite::run_all(|| {
            let obj = Python::attach(|py| factory.bind(py).call0().map(Bound::unbind));
            match obj {
                Ok(o) => Store::new(PyStore(o)),
                // A factory that fails yields a store whose every call fails: the suite reports it.
                Err(e) => Store::new(PyStore(Python::attach(|py| e.into_value(py).into_any()))),
            }
        }))
    });
    result.map_err(|f| pyo3::exceptions::PyAssertionError::new_err(f.to_string()))
}

// ---- I/O adapters over Python file objects ----------------------------------------------------------

struct PyReader(Py<PyAny>);

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            let chunk = self.0.bind(py).call_method1("read", (buf.len(),))?;
            let bytes = chunk.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes();
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok::<_, PyErr>(n)
        })
        .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

struct PyWriter(Py<PyAny>);

impl Write for PyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            self.0
                .bind(py)
                .call_method1("write", (PyBytes::new(py, buf),))
                .map(|_| buf.len())
        })
        .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---- the vault -------------------------------------------------------------------------------------

/// A medshare vault: the ledger and the records, over a store.
#[pyclass(module = "medshare._native")]
struct Vault {
    inner: Mutex<Option<medshare::Vault>>,
}

fn record_id(s: &str) -> PyResult<RecordId> {
    RecordId::from_str(s).map_err(err)
}

/// Accepts an Identity, a PublicKey or an id string.
fn identity_id(who: &Bound<'_, PyAny>) -> PyResult<IdentityId> {
    if let Ok(i) = who.cast::<Identity>() {
        return Ok(i.get().0.id());
    }
    if let Ok(k) = who.cast::<PublicKey>() {
        return Ok(k.get().0.id());
    }
    let s: String = who
        .extract()
        .map_err(|_| value_err("expected an Identity, a PublicKey or an id string"))?;
    IdentityId::from_str(&s).map_err(err)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `datetime` (aware or naive-as-local), `timedelta` from now, an int of unix seconds, or None.
fn expiry(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(secs) = v.extract::<u64>() {
        return Ok(Some(secs));
    }
    if v.hasattr("total_seconds")? {
        let d: f64 = v.call_method0("total_seconds")?.extract()?;
        if d <= 0.0 {
            return Err(value_err("expires must be in the future"));
        }
        return Ok(Some(now_secs() + d.ceil() as u64));
    }
    if v.hasattr("timestamp")? {
        let t: f64 = v.call_method0("timestamp")?.extract()?;
        return Ok(Some(t.max(0.0) as u64));
    }
    Err(value_err(
        "expires must be a datetime, a timedelta, unix seconds or None",
    ))
}

impl Vault {
    fn wrap(v: medshare::Vault) -> Self {
        Vault {
            inner: Mutex::new(Some(v)),
        }
    }

    /// Runs `f` on the vault with the GIL released.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut medshare::Vault) -> medshare::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self
                .inner
                .lock()
                .map_err(|_| medshare::Error::Backend("vault lock poisoned".into()))?;
            let v = guard
                .as_mut()
                .ok_or_else(|| medshare::Error::Backend("the vault is closed".into()))?;
            f(v)
        })
        .map_err(err)
    }
}

fn open_or_create(
    py: Python<'_>,
    store: Option<Store>,
    authority: Option<&Identity>,
    network: &str,
) -> PyResult<Vault> {
    let sealer = authority.map(|a| a.0.clone());
    py.detach(|| {
        pollster::block_on(async move {
            match store {
                Some(store) => medshare::Vault::open_or_create(store, network, sealer).await,
                None => match sealer {
                    Some(s) => {
                        medshare::Vault::open_or_create(Store::memory(), network, Some(s)).await
                    }
                    None => medshare::Vault::memory(network).await,
                },
            }
        })
    })
    .map(Vault::wrap)
    .map_err(err)
}

#[pymethods]
impl Vault {
    /// Opens the filesystem store at `path` (created if needed). An empty store gets a new chain
    /// sealed by `authority`, which is then required (`NoChain` without it).
    #[staticmethod]
    #[pyo3(signature = (path, authority = None, network = "medshare"))]
    fn open(
        py: Python<'_>,
        path: std::path::PathBuf,
        authority: Option<&Identity>,
        network: &str,
    ) -> PyResult<Self> {
        let store = py.detach(|| Store::open_dir(&path)).map_err(err)?;
        open_or_create(py, Some(store), authority, network)
    }

    /// A vault in memory (tests, short-lived tools); without `authority`, a fresh one is made.
    #[staticmethod]
    #[pyo3(signature = (authority = None, network = "medshare"))]
    fn memory(py: Python<'_>, authority: Option<&Identity>, network: &str) -> PyResult<Self> {
        open_or_create(py, None, authority, network)
    }

    /// A vault over a Python object implementing the block store methods (an empty store needs
    /// `authority` to start a chain).
    #[staticmethod]
    #[pyo3(signature = (store, authority = None, network = "medshare"))]
    fn with_store(
        py: Python<'_>,
        store: Py<PyAny>,
        authority: Option<&Identity>,
        network: &str,
    ) -> PyResult<Self> {
        open_or_create(py, Some(Store::new(PyStore(store))), authority, network)
    }

    /// Releases the store (and its lock). Further calls raise.
    fn close(&self) -> PyResult<()> {
        self.inner
            .lock()
            .map_err(|_| value_err("vault lock poisoned"))?
            .take();
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, _a: Py<PyAny>, _b: Py<PyAny>, _c: Py<PyAny>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }

    /// Registers an identity; doctors need `licence`, endorsed by the vault's authority.
    #[pyo3(signature = (identity, licence = None))]
    fn register(
        &self,
        py: Python<'_>,
        identity: &Identity,
        licence: Option<&str>,
    ) -> PyResult<String> {
        self.with(py, |v| pollster::block_on(v.register(&identity.0, licence)))
            .map(|c| c.to_string())
    }

    /// Publishes `data` (bytes, or a binary file object) as a new record owned by `patient`.
    #[pyo3(signature = (patient, data, media_type = "application/octet-stream", name = ""))]
    fn publish(
        &self,
        py: Python<'_>,
        patient: &Identity,
        data: &Bound<'_, PyAny>,
        media_type: &str,
        name: &str,
    ) -> PyResult<String> {
        if let Ok(b) = data.cast::<PyBytes>() {
            let bytes = b.as_bytes();
            return self
                .with(py, |v| {
                    pollster::block_on(v.publish_bytes(&patient.0, bytes, name, media_type))
                })
                .map(|r| r.to_string());
        }
        // A file object: its size from seek/tell, its bytes streamed in 1 MiB reads.
        let start: u64 = data.call_method0("tell")?.extract()?;
        let end: u64 = data.call_method1("seek", (0, 2))?.extract()?;
        data.call_method1("seek", (start,))?;
        let meta = Metadata {
            name: name.to_owned(),
            media_type: media_type.to_owned(),
            size: end - start,
        };
        let reader = PyReader(data.clone().unbind());
        self.with(py, move |v| {
            pollster::block_on(v.publish(&patient.0, reader, meta, &mut |_| {}))
        })
        .map(|r| r.to_string())
    }

    /// Lets `doctor` read the latest version of `record`, optionally until `expires`.
    #[pyo3(signature = (patient, record, doctor, expires = None, purpose = None))]
    fn grant(
        &self,
        py: Python<'_>,
        patient: &Identity,
        record: &str,
        doctor: &Bound<'_, PyAny>,
        expires: Option<&Bound<'_, PyAny>>,
        purpose: Option<&str>,
    ) -> PyResult<()> {
        let (record, doctor, expires) =
            (record_id(record)?, identity_id(doctor)?, expiry(expires)?);
        self.with(py, |v| {
            pollster::block_on(v.grant(&patient.0, &record, &doctor, expires, purpose))
        })
    }

    /// Revokes `doctor`: re-encrypts the record as a new version for the remaining readers.
    fn revoke(
        &self,
        py: Python<'_>,
        patient: &Identity,
        record: &str,
        doctor: &Bound<'_, PyAny>,
    ) -> PyResult<RevokeReport> {
        let (record, doctor) = (record_id(record)?, identity_id(doctor)?);
        let r = self.with(py, |v| {
            pollster::block_on(v.revoke(&patient.0, &record, &doctor))
        })?;
        Ok(RevokeReport {
            new_version: r.new_version,
            remaining: r.remaining.iter().map(ToString::to_string).collect(),
            deleted_blocks: r.deleted_blocks,
        })
    }

    /// Decrypts the latest version of `record` as `identity`: returns the bytes, or writes them
    /// to the binary file object `out` and returns None.
    #[pyo3(signature = (identity, record, out = None))]
    fn open_record<'py>(
        &self,
        py: Python<'py>,
        identity: &Identity,
        record: &str,
        out: Option<Py<PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let record = record_id(record)?;
        match out {
            Some(f) => {
                let w = PyWriter(f);
                self.with(py, move |v| {
                    pollster::block_on(v.open_record(&identity.0, &record, w))
                })?;
                Ok(None)
            }
            None => {
                // The envelope size bounds the plaintext: one allocation, no regrowth copies.
                let mut buf = Vec::with_capacity(self.with(py, |v| {
                    Ok(v.state().record(&record).map_or(0, |r| r.size.min(1 << 30)))
                })? as usize);
                self.with(py, |v| {
                    pollster::block_on(v.open_record(&identity.0, &record, &mut buf))
                })?;
                Ok(Some(PyBytes::new(py, &buf)))
            }
        }
    }

    /// Decrypts only the metadata (name, media type, size) of the latest version.
    fn metadata(
        &self,
        py: Python<'_>,
        identity: &Identity,
        record: &str,
    ) -> PyResult<RecordMetadata> {
        let record = record_id(record)?;
        let m = self.with(py, |v| {
            pollster::block_on(v.open_record(&identity.0, &record, std::io::sink()))
        })?;
        Ok(RecordMetadata {
            name: m.name,
            media_type: m.media_type,
            size: m.size,
        })
    }

    /// Records whose latest version `doctor` is granted.
    fn records_for(&self, py: Python<'_>, doctor: &Bound<'_, PyAny>) -> PyResult<Vec<RecordInfo>> {
        let id = identity_id(doctor)?;
        self.with(py, |v| Ok(v.records_for(&id)))
            .map(|l| l.into_iter().map(Into::into).collect())
    }

    /// The audit trail of `record`, oldest first.
    fn audit(&self, py: Python<'_>, record: &str) -> PyResult<Vec<AuditEvent>> {
        let record = record_id(record)?;
        self.with(py, |v| v.audit(&record))
            .map(|l| l.into_iter().map(Into::into).collect())
    }

    /// Re-verifies the whole chain from genesis.
    fn verify(&self, py: Python<'_>) -> PyResult<VerifyReport> {
        let r = self.with(py, |v| pollster::block_on(v.verify()))?;
        Ok(VerifyReport {
            blocks: r.blocks,
            transactions: r.transactions,
            head: r.head.to_string(),
        })
    }

    /// Applies blocks another writer appended to the store.
    fn sync(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |v| pollster::block_on(v.sync()))
    }

    #[getter]
    fn head(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |v| Ok(v.state().head().to_string()))
    }

    #[getter]
    fn height(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |v| Ok(v.state().height()))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.with(py, |v| Ok((v.state().height(), v.state().head()))) {
            Ok((h, c)) => format!("Vault(height={h}, head='{c}')"),
            Err(_) => "Vault(closed)".to_owned(),
        }
    }
}

/// The root CID `ipfs add` prints for `data` under `profile`.
#[pyfunction]
#[pyo3(signature = (data, profile = "unixfs-v1-2025"))]
fn cid(py: Python<'_>, data: &[u8], profile: &str) -> PyResult<String> {
    let profile = Profile::from_str(profile).map_err(err)?;
    Ok(py.detach(|| medshare::cid(data, profile)).to_string())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Identity>()?;
    m.add_class::<PublicKey>()?;
    m.add_class::<Vault>()?;
    m.add_class::<RecordInfo>()?;
    m.add_class::<AuditEvent>()?;
    m.add_class::<VerifyReport>()?;
    m.add_class::<RevokeReport>()?;
    m.add_class::<RecordMetadata>()?;
    m.add_function(wrap_pyfunction!(cid, m)?)?;
    m.add_function(wrap_pyfunction!(store_conformance, m)?)?;
    macro_rules! exc {
        ($($name:ident),*) => { $( m.add(stringify!($name), py.get_type::<$name>())?; )* };
    }
    exc!(
        MedshareError,
        IdentityError,
        IntegrityError,
        AccessError,
        LedgerError,
        StoreError,
        WeakKey,
        UnsupportedKeySize,
        InvalidKey,
        WrongPassphrase,
        BadSignature,
        MalformedEnvelope,
        UnsupportedVersion,
        ChunkAuthentication,
        Truncated,
        TrailingData,
        SizeMismatch,
        CidMismatch,
        MalformedNode,
        MalformedCar,
        InvalidCid,
        TooLarge,
        RangeOutOfBounds,
        NotARecipient,
        KeyUnwrap,
        AccessRevoked,
        AccessExpired,
        AccessDenied,
        UnknownRecord,
        UnknownIdentity,
        InvalidChain,
        Rejected,
        ReadOnly,
        NoChain,
        StoreLocked,
        NotFound,
        HeadConflict,
        StoreCorrupt,
        BackendError
    );
    Ok(())
}
