//! Python bindings of medshare: conversions and error mapping only; all logic is in the core.
//!
//! * Errors become the classes of `medshare.errors` (defined in Python, so they pickle), found
//!   by the core's error code; the categories are the core's.
//! * Values (record summaries, audit events, reports) cross as the core's serde JSON and become
//!   the dataclasses of `medshare.types` (whose fields are the core's, checked by the tests).
//! * Long operations run with the GIL released, driven by a blocking executor, so several Python
//!   threads use several cores (and `medshare.aio` runs them off the event loop).

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medshare::envelope::Metadata;
use medshare::store::foreign::{Foreign, ForeignStore};
use medshare::{Expiry, GrantOptions, IdentityId, Profile, Purpose, RecordId, Role, Store};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

// ---- errors and values -----------------------------------------------------------------------

/// The one conversion from core errors to Python exceptions: the class of `medshare.errors`
/// named by the code, the core message, `.code`, and `.rule`/`.height`/`.tx` for ledger errors.
fn err(e: medshare::Error) -> PyErr {
    Python::attach(|py| {
        let made = (|| -> PyResult<PyErr> {
            let errors = py.import("medshare.errors")?;
            let class = errors
                .getattr(e.code())
                .or_else(|_| errors.getattr("MedshareError"))?;
            let exc = match &e {
                // An OSError subclass: (errno, message), so `.errno` is set as Python expects.
                medshare::Error::Io(io) => class.call1((io_errno(io), e.to_string()))?,
                _ => class.call1((e.to_string(),))?,
            };
            match &e {
                medshare::Error::InvalidChain {
                    height, tx, rule, ..
                } => {
                    exc.setattr("rule", rule.as_str())?;
                    exc.setattr("height", *height)?;
                    exc.setattr("tx", *tx)?;
                }
                medshare::Error::Rejected { rule, .. } => exc.setattr("rule", rule.as_str())?,
                medshare::Error::Rollback { trusted, offered } => {
                    exc.setattr("trusted", *trusted)?;
                    exc.setattr("offered", *offered)?;
                }
                _ => {}
            }
            Ok(PyErr::from_value(exc))
        })();
        made.unwrap_or_else(|e| e)
    })
}

fn io_errno(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind as K;
    e.raw_os_error().unwrap_or(match e.kind() {
        K::NotFound => 2,
        K::PermissionDenied => 13,
        K::AlreadyExists => 17,
        K::InvalidInput => 22,
        _ => 5,
    })
}

/// A core value as the `medshare.types` dataclass `kind` (built from its serde JSON).
fn value<'py, T: serde::Serialize>(
    py: Python<'py>,
    kind: &str,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.import("medshare.types")?
        .call_method1("from_json", (kind, json))
}

fn values<'py, T: serde::Serialize>(
    py: Python<'py>,
    kind: &str,
    v: &[T],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    v.iter().map(|x| value(py, kind, x)).collect()
}

fn type_err(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

// ---- identities ------------------------------------------------------------------------------

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

/// A participant: role, display name, account id and RSA private key (never printed).
#[pyclass(frozen, module = "medshare._native")]
struct Identity(medshare::Identity);

fn role(role: &Bound<'_, PyAny>) -> PyResult<Role> {
    let s: String = role
        .extract()
        .map_err(|_| type_err("role must be a str: 'patient', 'doctor' or 'authority'"))?;
    Role::from_str(&s).map_err(err)
}

fn text(v: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    v.extract::<String>()
        .map_err(|_| type_err(format!("{what} must be a str, not {}", type_name(v))))
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

#[pymethods]
impl Identity {
    /// Generates a new key pair (2048, 3072 or 4096 bits).
    #[staticmethod]
    #[pyo3(signature = (role, bits = 3072, name = ""))]
    fn generate(
        py: Python<'_>,
        role: &Bound<'_, PyAny>,
        bits: usize,
        name: &str,
    ) -> PyResult<Self> {
        let role = self::role(role)?;
        py.detach(|| medshare::Identity::generate(role, name, bits))
            .map(Identity)
            .map_err(err)
    }

    /// Loads an encrypted key file written by `save` (or by the `medshare` CLI).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf, passphrase: &str) -> PyResult<Self> {
        py.detach(|| medshare::Identity::load(&path, passphrase))
            .map(Identity)
            .map_err(err)
    }

    /// Imports an unencrypted PKCS#8 PEM private key.
    #[staticmethod]
    #[pyo3(signature = (role, pem, name = ""))]
    fn from_pkcs8_pem(
        role: &Bound<'_, PyAny>,
        pem: &Bound<'_, PyAny>,
        name: &str,
    ) -> PyResult<Self> {
        medshare::Identity::from_pkcs8_pem(self::role(role)?, name, &text(pem, "pem")?)
            .map(Identity)
            .map_err(err)
    }

    /// Decodes key-file text (see `to_key_file`).
    #[staticmethod]
    fn from_key_file(py: Python<'_>, text: &Bound<'_, PyAny>, passphrase: &str) -> PyResult<Self> {
        let t = self::text(text, "the key file text")?;
        py.detach(|| medshare::Identity::from_key_file(&t, passphrase))
            .map(Identity)
            .map_err(err)
    }

    /// Writes the key encrypted under `passphrase` (scrypt + AES-256-GCM), mode 0600, to a new
    /// file (an existing file is never replaced: `medshare.Io`, an OSError with errno EEXIST).
    fn save(&self, py: Python<'_>, path: PathBuf, passphrase: &str) -> PyResult<()> {
        py.detach(|| self.0.save(&path, passphrase)).map_err(err)
    }

    /// The encrypted key file as text.
    fn to_key_file(&self, py: Python<'_>, passphrase: &str) -> PyResult<String> {
        py.detach(|| self.0.to_key_file(passphrase)).map_err(err)
    }

    /// A new key for the same account (see `Vault.rotate_key`).
    fn rotated(&self, py: Python<'_>) -> PyResult<Identity> {
        py.detach(|| self.0.rotated()).map(Identity).map_err(err)
    }

    fn public(&self) -> PublicKey {
        PublicKey(self.0.public().clone())
    }

    /// The account id (stable across key rotations).
    #[getter]
    fn id(&self) -> String {
        self.0.id().to_string()
    }

    /// The id of the current key.
    #[getter]
    fn key_id(&self) -> String {
        self.0.key_id().to_string()
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
            medshare::text::escape(self.0.name()),
            self.0.id()
        )
    }
}

/// An authority's endorsement of a doctor's licence (made where the authority key is).
#[pyclass(frozen, module = "medshare._native")]
struct Endorsement(medshare::Endorsement);

#[pymethods]
impl Endorsement {
    /// `authority` endorses `doctor`'s `licence` on the network `genesis`.
    #[staticmethod]
    fn sign(
        authority: &Identity,
        genesis: &str,
        doctor: &Bound<'_, PyAny>,
        licence: &str,
    ) -> PyResult<Self> {
        let genesis = medshare::parse_cid(genesis).map_err(err)?;
        medshare::Endorsement::sign(&authority.0, &genesis, &identity_id(doctor)?, licence)
            .map(Endorsement)
            .map_err(err)
    }

    /// Parses the text form (`medshare endorse` writes it).
    #[staticmethod]
    fn from_text(text: &str) -> PyResult<Self> {
        medshare::Endorsement::from_text(text)
            .map(Endorsement)
            .map_err(err)
    }

    fn to_text(&self) -> String {
        self.0.to_text()
    }

    #[getter]
    fn doctor(&self) -> String {
        self.0.doctor.to_string()
    }

    #[getter]
    fn licence(&self) -> &str {
        &self.0.licence
    }

    #[getter]
    fn authority(&self) -> String {
        self.0.authority.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Endorsement(doctor='{}', licence='{}', authority='{}')",
            self.0.doctor,
            medshare::text::escape(&self.0.licence),
            self.0.authority
        )
    }
}

// ---- stores ----------------------------------------------------------------------------------

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

#[async_trait::async_trait]
impl ForeignStore for PyStore {
    async fn get(&self, cid: &str) -> medshare::Result<Option<Vec<u8>>> {
        self.call("get", (cid,), |v| {
            if v.is_none() {
                Ok(None)
            } else {
                v.extract::<Vec<u8>>().map(Some)
            }
        })
    }

    async fn put(&self, cid: &str, data: &[u8]) -> medshare::Result<()> {
        self.call("put", (cid, data), |_| Ok(()))
    }

    async fn has(&self, cid: &str) -> medshare::Result<bool> {
        self.call("has", (cid,), |v| v.is_truthy())
    }

    async fn delete(&self, cid: &str) -> medshare::Result<()> {
        self.call("delete", (cid,), |_| Ok(()))
    }

    async fn head(&self) -> medshare::Result<Option<String>> {
        self.call("head", (), |v| {
            if v.is_none() {
                Ok(None)
            } else {
                v.extract::<String>().map(Some)
            }
        })
    }

    async fn compare_and_swap_head(
        &self,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> medshare::Result<bool> {
        self.call("compare_and_swap_head", (expected, new), |v| v.is_truthy())
    }
}

/// A store argument: a path (the filesystem store), a `kubo=URL` string, a gateway URL list
/// (read-only), or an object with the store methods.
fn store_arg(py: Python<'_>, store: &Bound<'_, PyAny>) -> PyResult<Store> {
    if let Ok(s) = store.extract::<String>() {
        return py.detach(|| Store::open_spec(&s)).map_err(err);
    }
    if let Ok(p) = store.extract::<PathBuf>() {
        return py.detach(|| Store::open_dir(&p)).map_err(err);
    }
    for m in [
        "get",
        "put",
        "has",
        "delete",
        "head",
        "compare_and_swap_head",
    ] {
        if !store.hasattr(m)? {
            return Err(type_err(format!(
                "store must be a path, 'kubo=URL', a gateway URL or an object with get/put/has/delete/head/compare_and_swap_head (it has no `{m}`)"
            )));
        }
    }
    Ok(Store::new(Foreign(PyStore(store.clone().unbind()))))
}

/// Runs the core's store conformance suite against a Python store (each check gets a fresh
/// store from `factory()`); raises AssertionError naming the failed check.
#[pyfunction]
fn store_conformance(py: Python<'_>, factory: Py<PyAny>) -> PyResult<()> {
    let result = py.detach(|| {
        pollster::block_on(medshare::store::testsuite::run_all(|| {
            let obj = Python::attach(|py| factory.bind(py).call0().map(Bound::unbind));
            match obj {
                Ok(o) => Store::new(Foreign(PyStore(o))),
                // A factory that fails yields a store whose every call fails: the suite reports it.
                Err(e) => Store::new(Foreign(PyStore(Python::attach(|py| {
                    e.into_value(py).into_any()
                })))),
            }
        }))
    });
    result.map_err(|f| pyo3::exceptions::PyAssertionError::new_err(f.to_string()))
}

// ---- I/O adapters over Python file objects -----------------------------------------------------

struct PyReader(Py<PyAny>);

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            let chunk = self.0.bind(py).call_method1("read", (buf.len(),))?;
            let bytes = chunk
                .cast::<PyBytes>()
                .map_err(|_| type_err("the file object must be opened in binary mode ('rb')"))?
                .as_bytes();
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok::<_, PyErr>(n)
        })
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))
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

// ---- arguments -------------------------------------------------------------------------------

fn record_id(v: &Bound<'_, PyAny>) -> PyResult<RecordId> {
    let s: String = v
        .extract()
        .map_err(|_| type_err(format!("a record id is a str, not {}", type_name(v))))?;
    RecordId::from_str(&s).map_err(err)
}

/// Accepts an Identity, a PublicKey or an id string.
fn identity_id(who: &Bound<'_, PyAny>) -> PyResult<IdentityId> {
    if let Ok(i) = who.cast::<Identity>() {
        return Ok(i.get().0.id());
    }
    if let Ok(k) = who.cast::<PublicKey>() {
        return Ok(k.get().0.id());
    }
    let s: String = who.extract().map_err(|_| {
        type_err(format!(
            "expected an Identity, a PublicKey or an id str, not {}",
            type_name(who)
        ))
    })?;
    IdentityId::from_str(&s).map_err(err)
}

/// `datetime` (aware, or naive as local time), `timedelta` from now (by the vault's clock), an
/// int of unix seconds, or None.
fn expiry(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Expiry>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_err(
            "expires must be a datetime, a timedelta, unix seconds or None",
        ));
    }
    if let Ok(secs) = v.extract::<u64>() {
        return Ok(Some(Expiry::At(secs)));
    }
    if v.hasattr("total_seconds")? {
        let d: f64 = v.call_method0("total_seconds")?.extract()?;
        if !(d > 0.0 && d.is_finite()) {
            return Err(PyValueError::new_err("expires must be in the future"));
        }
        return Ok(Some(Expiry::After(Duration::from_secs_f64(d.ceil()))));
    }
    if v.hasattr("timestamp")? {
        let t: f64 = v.call_method0("timestamp")?.extract()?;
        return Ok(Some(Expiry::At(t.max(0.0) as u64)));
    }
    Err(type_err(
        "expires must be a datetime, a timedelta, unix seconds or None",
    ))
}

// ---- the vault -------------------------------------------------------------------------------

/// A medshare vault: the verified chain and the records, over a store and a sequencer.
#[pyclass(module = "medshare._native")]
struct Vault {
    inner: Mutex<Option<medshare::Vault>>,
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
                .ok_or_else(|| medshare::Error::InvalidInput("the vault is closed".into()))?;
            f(v)
        })
        .map_err(err)
    }

    /// A FHIR bundle as a Python dict (through `json.loads`).
    fn fhir<'py>(
        &self,
        py: Python<'py>,
        scope: medshare::FhirScope,
        version: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let version: medshare::FhirVersion = version.parse().map_err(err)?;
        let b = self.with(py, |v| pollster::block_on(v.fhir(&scope, version)))?;
        py.import("json")?.call_method1("loads", (b.to_string(),))
    }
}

fn open_or_create(
    py: Python<'_>,
    store: Store,
    authority: Option<&Identity>,
    network: &str,
) -> PyResult<Vault> {
    let authority = authority.map(|a| a.0.clone());
    py.detach(|| pollster::block_on(medshare::Vault::open_or_create(store, network, authority)))
        .map(Vault::wrap)
        .map_err(err)
}

#[pymethods]
impl Vault {
    /// Opens the filesystem store at `path` (created if needed). An empty store gets a new
    /// chain certified by `authority` (this process is then its sequencer); without an
    /// authority the vault reads and verifies only (`NoChain` for an empty store).
    #[staticmethod]
    #[pyo3(signature = (path, authority = None, network = "medshare-local"))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        authority: Option<&Identity>,
        network: &str,
    ) -> PyResult<Self> {
        let store = py.detach(|| Store::open_dir(&path)).map_err(err)?;
        open_or_create(py, store, authority, network)
    }

    /// A vault in memory (tests, short-lived tools) with its own sequencer: certified by
    /// `authority`, or by a fresh throwaway one.
    #[staticmethod]
    #[pyo3(signature = (authority = None, network = "medshare-local"))]
    fn memory(py: Python<'_>, authority: Option<&Identity>, network: &str) -> PyResult<Self> {
        let authority = authority.map(|a| a.0.clone());
        py.detach(|| pollster::block_on(medshare::Vault::memory(network, authority)))
            .map(Vault::wrap)
            .map_err(err)
    }

    /// A vault over `store`: a path, 'kubo=URL', a gateway URL, or an object implementing the
    /// store methods (an empty store needs `authority` to start a chain).
    #[staticmethod]
    #[pyo3(signature = (store, authority = None, network = "medshare-local"))]
    fn with_store(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        authority: Option<&Identity>,
        network: &str,
    ) -> PyResult<Self> {
        let store = store_arg(py, store)?;
        open_or_create(py, store, authority, network)
    }

    /// A vault on a medshare network: transactions go to the validators' RPC (`nodes`), blocks
    /// are read from and written to `store` ('kubo=URL', a path, or a store object), or read
    /// from trustless `gateways`. `genesis` names the network to accept.
    #[staticmethod]
    #[pyo3(signature = (nodes, genesis, store = None, gateways = None, timeout = 30.0))]
    fn connect(
        py: Python<'_>,
        nodes: Vec<String>,
        genesis: &str,
        store: Option<&Bound<'_, PyAny>>,
        gateways: Option<Vec<String>>,
        timeout: f64,
    ) -> PyResult<Self> {
        let genesis = medshare::parse_cid(genesis).map_err(err)?;
        let store = match (store, gateways) {
            (Some(s), _) => store_arg(py, s)?,
            (None, Some(g)) => Store::gateways(g).map_err(err)?,
            (None, None) => return Err(type_err("connect needs a store or gateways")),
        };
        let seq = medshare::sequencer::comet::CometSequencer::new(nodes)
            .map_err(err)?
            .with_timeout(Duration::from_secs_f64(timeout.max(1.0)));
        py.detach(|| {
            pollster::block_on(medshare::Vault::open(
                store,
                Some(Arc::new(seq)),
                Some(&genesis),
            ))
        })
        .map(Vault::wrap)
        .map_err(err)
    }

    /// Imports a CAR file (path or bytes) into `store`, verified before anything is stored;
    /// an empty store accepts only the network `genesis`.
    #[staticmethod]
    #[pyo3(signature = (store, car, genesis = None))]
    fn import_car(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        car: &Bound<'_, PyAny>,
        genesis: Option<&str>,
    ) -> PyResult<Self> {
        let store = store_arg(py, store)?;
        let genesis = genesis.map(medshare::parse_cid).transpose().map_err(err)?;
        let now = medshare::platform::now_secs();
        let result = if let Ok(b) = car.cast::<PyBytes>() {
            let bytes = b.as_bytes().to_vec();
            py.detach(|| {
                pollster::block_on(medshare::Vault::import_car(
                    store,
                    &bytes[..],
                    genesis.as_ref(),
                    now,
                ))
            })
        } else {
            let path: PathBuf = car
                .extract()
                .map_err(|_| type_err("car must be bytes or a path"))?;
            py.detach(|| {
                let f = std::fs::File::open(&path)?;
                pollster::block_on(medshare::Vault::import_car(
                    store,
                    std::io::BufReader::with_capacity(1 << 20, f),
                    genesis.as_ref(),
                    now,
                ))
            })
        };
        result.map(|(v, _)| Vault::wrap(v)).map_err(err)
    }

    /// Releases the store (and its lock). Further calls raise.
    fn close(&self) -> PyResult<()> {
        self.inner
            .lock()
            .map_err(|_| PyValueError::new_err("vault lock poisoned"))?
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

    /// Registers an identity; a doctor registers with an `Endorsement` (or its text).
    #[pyo3(signature = (identity, endorsement = None))]
    fn register(
        &self,
        py: Python<'_>,
        identity: &Identity,
        endorsement: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let e = match endorsement {
            None => None,
            Some(e) if e.is_none() => None,
            Some(e) => match e.cast::<Endorsement>() {
                Ok(e) => Some(e.get().0.clone()),
                Err(_) => {
                    Some(medshare::Endorsement::from_text(&text(e, "endorsement")?).map_err(err)?)
                }
            },
        };
        self.with(py, |v| {
            pollster::block_on(v.register(&identity.0, e.as_ref()))
        })
        .map(|c| c.to_string())
    }

    /// Publishes `data` (bytes, or a binary file object) as a new record owned by `patient`;
    /// with `emergency`, opted into break-glass access (its key split among the authorities).
    #[pyo3(signature = (patient, data, media_type = "application/octet-stream", name = "", emergency = false))]
    fn publish(
        &self,
        py: Python<'_>,
        patient: &Identity,
        data: &Bound<'_, PyAny>,
        media_type: &str,
        name: &str,
        emergency: bool,
    ) -> PyResult<String> {
        let options = medshare::PublishOptions { emergency };
        if let Ok(b) = data.cast::<PyBytes>() {
            let bytes = b.as_bytes();
            let meta = Metadata {
                name: name.to_owned(),
                media_type: media_type.to_owned(),
                size: bytes.len() as u64,
            };
            return self
                .with(py, |v| {
                    pollster::block_on(v.publish_with(
                        &patient.0,
                        bytes,
                        meta,
                        options,
                        &mut |_| {},
                    ))
                })
                .map(|r| r.to_string());
        }
        if !(data.hasattr("read")? && data.hasattr("seek")? && data.hasattr("tell")?) {
            return Err(type_err(format!(
                "data must be bytes or a binary file object opened with 'rb', not {}",
                type_name(data)
            )));
        }
        if data.is_instance(&py.import("io")?.getattr("TextIOBase")?)? {
            return Err(type_err(
                "data is a text file: open it in binary mode ('rb')",
            ));
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
            pollster::block_on(v.publish_with(&patient.0, reader, meta, options, &mut |_| {}))
        })
        .map(|r| r.to_string())
    }

    /// Opts the latest version of `record` into break-glass access (as its owner). Returns the
    /// transaction CID.
    fn enable_emergency(
        &self,
        py: Python<'_>,
        patient: &Identity,
        record: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let record = record_id(record)?;
        self.with(py, |v| {
            pollster::block_on(v.enable_emergency(&patient.0, &record))
        })
        .map(|c| c.to_string())
    }

    /// Breaks the glass: `doctor` asks for emergency access to `record` with a `justification`
    /// (encrypted to the patient, the doctor and the authorities); shares may be released for
    /// `window` seconds (default 24 h). Returns the request (its transaction CID).
    #[pyo3(signature = (doctor, record, justification, window = None))]
    fn request_emergency(
        &self,
        py: Python<'_>,
        doctor: &Identity,
        record: &Bound<'_, PyAny>,
        justification: &str,
        window: Option<u64>,
    ) -> PyResult<String> {
        let record = record_id(record)?;
        let window = window.map(std::time::Duration::from_secs);
        self.with(py, |v| {
            pollster::block_on(v.request_emergency(&doctor.0, &record, justification, window))
        })
        .map(|c| c.to_string())
    }

    /// Releases `authority`'s key share to the emergency request `request`.
    fn release_share(
        &self,
        py: Python<'_>,
        authority: &Identity,
        request: &str,
    ) -> PyResult<String> {
        let request = medshare::parse_cid(request).map_err(err)?;
        self.with(py, |v| {
            pollster::block_on(v.release_share(&authority.0, &request))
        })
        .map(|c| c.to_string())
    }

    /// Records `authority`'s review of the emergency access `request`: `outcome` is
    /// "justified" or "unjustified".
    fn review_emergency(
        &self,
        py: Python<'_>,
        authority: &Identity,
        request: &str,
        outcome: &str,
    ) -> PyResult<String> {
        let request = medshare::parse_cid(request).map_err(err)?;
        let outcome = medshare::ReviewOutcome::from_str(outcome).map_err(err)?;
        self.with(py, |v| {
            pollster::block_on(v.review_emergency(&authority.0, &request, outcome))
        })
        .map(|c| c.to_string())
    }

    /// Every emergency access on the chain, oldest first (`unreviewed`: those awaiting review).
    #[pyo3(signature = (unreviewed = false))]
    fn emergencies<'py>(
        &self,
        py: Python<'py>,
        unreviewed: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let l = self.with(py, |v| Ok(v.emergencies(unreviewed)))?;
        values(py, "Emergency", &l)
    }

    /// The emergency request `request` as its `doctor` sees it: every released share checked
    /// against its commitment, and whether the record opens.
    fn emergency_status<'py>(
        &self,
        py: Python<'py>,
        doctor: &Identity,
        request: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = medshare::parse_cid(request).map_err(err)?;
        let s = self.with(py, |v| v.emergency_status(&doctor.0, &request))?;
        value(py, "EmergencyStatus", &s)
    }

    /// The justification of `request`, as `identity` (the patient, the doctor or an authority).
    fn emergency_justification(
        &self,
        py: Python<'_>,
        identity: &Identity,
        request: &str,
    ) -> PyResult<String> {
        let request = medshare::parse_cid(request).map_err(err)?;
        self.with(py, |v| v.emergency_justification(&identity.0, &request))
    }

    /// Re-keys `record` (its next version under a new key): what ends an emergency access.
    /// Returns the new version.
    fn rekey(
        &self,
        py: Python<'_>,
        patient: &Identity,
        record: &Bound<'_, PyAny>,
    ) -> PyResult<u32> {
        let record = record_id(record)?;
        self.with(py, |v| pollster::block_on(v.rekey(&patient.0, &record)))
    }

    /// Lets `doctor` read the latest version of `record`, optionally until `expires`, for
    /// `purpose` (an HL7 PurposeOfUse code), with an encrypted free-text `note`.
    #[pyo3(signature = (patient, record, doctor, expires = None, purpose = "TREAT", note = None))]
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &self,
        py: Python<'_>,
        patient: &Identity,
        record: &Bound<'_, PyAny>,
        doctor: &Bound<'_, PyAny>,
        expires: Option<&Bound<'_, PyAny>>,
        purpose: &str,
        note: Option<String>,
    ) -> PyResult<()> {
        let (record, doctor, expires) =
            (record_id(record)?, identity_id(doctor)?, expiry(expires)?);
        let purpose = Purpose::from_str(purpose).map_err(err)?;
        let options = GrantOptions {
            expires,
            purpose,
            note,
        };
        self.with(py, |v| {
            pollster::block_on(v.grant(&patient.0, &record, &doctor, options))
        })
    }

    /// Revokes `doctor`: re-encrypts the record as a new version for the remaining readers.
    fn revoke<'py>(
        &self,
        py: Python<'py>,
        patient: &Identity,
        record: &Bound<'_, PyAny>,
        doctor: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (record, doctor) = (record_id(record)?, identity_id(doctor)?);
        let r = self.with(py, |v| {
            pollster::block_on(v.revoke(&patient.0, &record, &doctor))
        })?;
        value(py, "RevokeReport", &r)
    }

    /// Replaces `old`'s key by `new` (= `old.rotated()`); returns what was re-wrapped/re-keyed.
    fn rotate_key<'py>(
        &self,
        py: Python<'py>,
        old: &Identity,
        new: &Identity,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.with(py, |v| pollster::block_on(v.rotate_key(&old.0, &new.0)))?;
        value(py, "RotateReport", &r)
    }

    /// Decrypts the latest version of `record` as `identity`: returns the bytes, or writes them
    /// to `out` — a path (the file appears only once complete and authenticated) or a binary
    /// file object — and returns None.
    #[pyo3(signature = (identity, record, out = None))]
    fn open_record<'py>(
        &self,
        py: Python<'py>,
        identity: &Identity,
        record: &Bound<'_, PyAny>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let record = record_id(record)?;
        match out {
            Some(o) if o.hasattr("write")? => {
                let w = PyWriter(o.clone().unbind());
                self.with(py, move |v| {
                    pollster::block_on(v.open_record(&identity.0, &record, w))
                })?;
                Ok(None)
            }
            Some(o) => {
                let path: PathBuf = o
                    .extract()
                    .map_err(|_| type_err("out must be a path or a binary file object"))?;
                self.with(py, |v| {
                    pollster::block_on(v.open_record_to_path(
                        &identity.0,
                        &record,
                        &path,
                        &mut |_| {},
                    ))
                })?;
                Ok(None)
            }
            None => {
                let mut buf = Vec::new();
                self.with(py, |v| {
                    pollster::block_on(v.open_record(&identity.0, &record, &mut buf))
                })?;
                Ok(Some(PyBytes::new(py, &buf)))
            }
        }
    }

    /// The metadata (name, media type, size) of the latest version: only the envelope's
    /// header is read.
    fn metadata<'py>(
        &self,
        py: Python<'py>,
        identity: &Identity,
        record: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let record = record_id(record)?;
        let m = self.with(py, |v| pollster::block_on(v.metadata(&identity.0, &record)))?;
        value(py, "Metadata", &m)
    }

    /// The free-text note of `doctor`'s grant on `record`, as `identity` (the owner or that
    /// doctor); None if there is none.
    fn grant_note(
        &self,
        py: Python<'_>,
        identity: &Identity,
        record: &Bound<'_, PyAny>,
        doctor: &Bound<'_, PyAny>,
    ) -> PyResult<Option<String>> {
        let (record, doctor) = (record_id(record)?, identity_id(doctor)?);
        self.with(py, |v| {
            pollster::block_on(v.grant_note(&identity.0, &record, &doctor))
        })
    }

    /// What `who` can open: a patient's own records, a doctor's granted ones.
    fn records_for<'py>(
        &self,
        py: Python<'py>,
        who: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let id = identity_id(who)?;
        let l = self.with(py, |v| v.records_for(&id))?;
        values(py, "RecordInfo", &l)
    }

    /// A record's summary.
    fn record<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let record = record_id(record)?;
        let r = self.with(py, |v| v.record(&record))?;
        value(py, "RecordInfo", &r)
    }

    /// Current grants on `record`.
    fn access_list<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let record = record_id(record)?;
        let l = self.with(py, |v| v.access_list(&record))?;
        values(py, "AccessGrant", &l)
    }

    /// The audit trail of `record`, oldest first.
    fn audit<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let record = record_id(record)?;
        let l = self.with(py, |v| v.audit(&record))?;
        values(py, "AuditEvent", &l)
    }

    /// Re-verifies the whole chain from genesis; with `content`, also that every current
    /// record version's content is present (see `verify_content`).
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.with(py, |v| pollster::block_on(v.verify()))?;
        value(py, "VerifyReport", &r)
    }

    /// A receipt of transaction `tx` (JSON text): the transaction, its inclusion proof and
    /// the certificate, checkable offline with `medshare.verify_receipt`.
    fn receipt(&self, py: Python<'_>, tx: &str) -> PyResult<String> {
        let tx = medshare::parse_cid(tx).map_err(err)?;
        let r = self.with(py, |v| pollster::block_on(v.receipt(&tx)))?;
        Ok(r.to_json())
    }

    /// The largest checkpoint this vault (or its store) verified, as JSON (`None` before any).
    /// A head older than it is refused (`Rollback`), another one of its size too (`Fork`).
    fn trusted_checkpoint(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let cp = self.with(py, |v| pollster::block_on(v.trusted_checkpoint()))?;
        Ok(cp.map(|c| serde_json::to_string(&c).unwrap_or_default()))
    }

    /// Trusts `checkpoint` (the JSON `trusted_checkpoint` returned, kept from an earlier
    /// session): raises `Rollback`/`Fork` if this vault's chain does not contain it, and no
    /// later head may go back from it.
    fn trust_checkpoint(&self, py: Python<'_>, checkpoint: &str) -> PyResult<()> {
        let cp = medshare::ledger::Checkpoint::from_json(checkpoint).map_err(err)?;
        self.with(py, |v| pollster::block_on(v.trust_checkpoint(cp)))
    }

    /// What the ledger knows about `record` as an HL7 FHIR Bundle (a dict of FHIR JSON):
    /// Consent per grant, AuditEvent per transaction, Provenance per version (`docs/FHIR.md`).
    #[pyo3(signature = (record, version = "R5"))]
    fn fhir_record<'py>(
        &self,
        py: Python<'py>,
        record: &Bound<'_, PyAny>,
        version: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = medshare::FhirScope::Record(record_id(record)?);
        self.fhir(py, scope, version)
    }

    /// Every record `patient` owns as one HL7 FHIR Bundle (a dict of FHIR JSON).
    #[pyo3(signature = (patient, version = "R5"))]
    fn fhir_patient<'py>(
        &self,
        py: Python<'py>,
        patient: &Bound<'_, PyAny>,
        version: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scope = medshare::FhirScope::Patient(identity_id(patient)?);
        self.fhir(py, scope, version)
    }

    /// Checks that the content of every current record version is present and intact.
    fn verify_content<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.with(py, |v| pollster::block_on(v.verify_content()))?;
        value(py, "ContentReport", &r)
    }

    /// Applies blocks appended since this vault last looked.
    fn sync(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |v| pollster::block_on(v.sync()))
    }

    /// Deletes blocks nothing current needs (stores that can list their blocks).
    fn gc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.with(py, |v| pollster::block_on(v.gc()))?;
        value(py, "GcReport", &r)
    }

    /// Writes the chain and the current records as a CAR file (a path or a binary file object).
    fn export_car<'py>(
        &self,
        py: Python<'py>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = if out.hasattr("write")? {
            let w = PyWriter(out.clone().unbind());
            self.with(py, move |v| pollster::block_on(v.export_car(w)))?
        } else {
            let path: PathBuf = out
                .extract()
                .map_err(|_| type_err("out must be a path or a binary file object"))?;
            self.with(py, |v| {
                let mut o = medshare::fsutil::Output::create(&path)?;
                let r = pollster::block_on(v.export_car(std::io::BufWriter::new(o.file())))?;
                o.commit()?;
                Ok(r)
            })?
        };
        value(py, "ExportReport", &r)
    }

    /// The network's genesis CID.
    #[getter]
    fn genesis(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |v| Ok(v.genesis().to_string()))
    }

    /// The verified head (the latest block's certificate).
    #[getter]
    fn head(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |v| Ok(v.head().to_string()))
    }

    #[getter]
    fn height(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |v| Ok(v.height()))
    }

    /// How this vault opened its chain, as a dict: `{"from": "snapshot", "height", "transactions",
    /// "replayed"}` (the filesystem store's snapshot, then the blocks after it) or `{"from":
    /// "genesis"}`, with `"rejected"` (`invalid`, `other-network`, `off-chain`) when a snapshot
    /// was there and set aside.
    #[getter]
    fn opened<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.with(py, |v| {
            serde_json::to_string(&v.opened()).map_err(|e| medshare::Error::Backend(e.to_string()))
        })?;
        py.import("json")?.call_method1("loads", (text,))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.with(py, |v| Ok((v.height(), v.head()))) {
            Ok((h, c)) => format!("Vault(height={h}, head='{c}')"),
            Err(_) => "Vault(closed)".to_owned(),
        }
    }
}

/// The root CID `ipfs add` prints for `data` under `profile`.
#[pyfunction]
#[pyo3(signature = (data, profile = "unixfs-v1-2025"))]
fn cid(py: Python<'_>, data: &Bound<'_, PyAny>, profile: &str) -> PyResult<String> {
    let data = data
        .cast::<PyBytes>()
        .map_err(|_| type_err(format!("data must be bytes, not {}", type_name(data))))?
        .as_bytes();
    let profile = Profile::from_str(profile).map_err(err)?;
    Ok(py.detach(|| medshare::cid(data, profile)).to_string())
}

/// Opens a raw envelope (bytes) as `identity`; returns the plaintext.
#[pyfunction]
fn open_envelope<'py>(
    py: Python<'py>,
    identity: &Identity,
    envelope: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    py.detach(|| medshare::envelope::open(&identity.0, envelope, &mut out))
        .map_err(err)?;
    Ok(PyBytes::new(py, &out))
}

/// Checks a receipt (JSON text) offline against the network `genesis`; returns what it proves.
#[pyfunction]
fn verify_receipt<'py>(
    py: Python<'py>,
    receipt: &str,
    genesis: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let genesis = medshare::parse_cid(genesis).map_err(err)?;
    let facts = py
        .detach(|| medshare::ledger::Receipt::from_json(receipt)?.verify(&genesis))
        .map_err(err)?;
    value(py, "ReceiptFacts", &facts)
}

/// A light client of a medshare network: asks a node for a record's access list or a doctor's
/// records and believes only what is proven against a certificate of the authorities.
#[pyclass(frozen, module = "medshare._native")]
struct LightClient(medshare::sequencer::light::LightClient);

#[pymethods]
impl LightClient {
    /// Connects through the validators' RPC `nodes` to the network `genesis`; `trust` is what
    /// `trust()` returned in an earlier session (no node can then take the client back).
    #[staticmethod]
    #[pyo3(signature = (nodes, genesis, trust = None))]
    fn connect(
        py: Python<'_>,
        nodes: Vec<String>,
        genesis: &str,
        trust: Option<String>,
    ) -> PyResult<Self> {
        let genesis = medshare::parse_cid(genesis).map_err(err)?;
        let seq = medshare::sequencer::comet::CometSequencer::new(nodes).map_err(err)?;
        py.detach(|| {
            pollster::block_on(medshare::sequencer::light::LightClient::connect(
                seq,
                &genesis,
                trust.as_deref(),
            ))
        })
        .map(LightClient)
        .map_err(err)
    }

    /// `record`'s proven access list (a `RecordAccess`), or None if there is no such record.
    fn access_list<'py>(&self, py: Python<'py>, record: &str) -> PyResult<Bound<'py, PyAny>> {
        let record: RecordId = record.parse().map_err(err)?;
        let a = py
            .detach(|| pollster::block_on(self.0.access_list(&record)))
            .map_err(err)?;
        match a {
            Some(a) => value(py, "RecordAccess", &a),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The records `doctor` (an account id) can read, proven: a list of `DoctorRecord`.
    fn records_of<'py>(&self, py: Python<'py>, doctor: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let doctor: medshare::IdentityId = doctor.parse().map_err(err)?;
        let rs = py
            .detach(|| pollster::block_on(self.0.records_of(&doctor)))
            .map_err(err)?;
        values(py, "DoctorRecord", &rs)
    }

    /// The largest checkpoint verified so far (JSON), if any.
    fn checkpoint(&self) -> Option<String> {
        self.0.checkpoint().map(|c| c.to_json())
    }

    /// What this client trusts (JSON), to pass to `connect` next time.
    fn trust(&self) -> String {
        self.0.trust()
    }
}

/// Every error code of the core with its category: what `medshare.errors` must mirror.
#[pyfunction]
fn error_codes() -> Vec<(&'static str, &'static str)> {
    medshare::ErrorCode::all()
        .map(|c| (c.as_str(), c.category().as_str()))
        .collect()
}

/// Every purpose code with its display name.
#[pyfunction]
fn purposes() -> Vec<(&'static str, &'static str)> {
    Purpose::ALL
        .iter()
        .map(|p| (p.code(), p.display()))
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Identity>()?;
    m.add_class::<PublicKey>()?;
    m.add_class::<Endorsement>()?;
    m.add_class::<Vault>()?;
    m.add_class::<LightClient>()?;
    m.add_function(wrap_pyfunction!(cid, m)?)?;
    m.add_function(wrap_pyfunction!(open_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(purposes, m)?)?;
    m.add_function(wrap_pyfunction!(verify_receipt, m)?)?;
    m.add_function(wrap_pyfunction!(store_conformance, m)?)?;
    Ok(())
}
