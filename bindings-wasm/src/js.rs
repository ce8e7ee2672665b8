//! The exported API. Every method converts its arguments, calls the core, and converts the
//! result or maps the error; nothing else.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::str::FromStr;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use medshare::envelope::{Metadata, RecordId};
use medshare::store::memory::MemoryStore;
use medshare::unixfs::Block;
use medshare::{BlockStore, Cid, IdentityId, Profile, Role, Store};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** A key's role on the chain. */
export type Role = "patient" | "doctor" | "authority";

/** A block store written in JavaScript. Every method may return a value or a Promise of it.
 * CIDs are passed as CIDv1 text; the vault hash-checks every block it reads back. */
export interface BlockStore {
  get(cid: string): Promise<Uint8Array | null | undefined> | Uint8Array | null | undefined;
  put(cid: string, data: Uint8Array): Promise<void> | void;
  has(cid: string): Promise<boolean> | boolean;
  delete(cid: string): Promise<void> | void;
  head(): Promise<string | null | undefined> | string | null | undefined;
  /** Sets the head to `next` only if it is `expected` now (null = no head); returns whether it did. */
  compareAndSwapHead(expected: string | null, next: string | null): Promise<boolean> | boolean;
}

export interface PublishOptions {
  /** File name, stored encrypted. */
  name?: string;
  /** Media type, stored encrypted (default application/octet-stream). */
  mediaType?: string;
  /** Called with the plaintext bytes sealed so far. */
  onProgress?: (bytes: number) => void;
}

export interface GrantOptions {
  /** Unix time (seconds) after which the grant no longer opens the record. */
  expires?: number;
  /** Why the doctor is granted access (recorded on the chain). */
  purpose?: string;
}

export interface OpenOptions {
  /** Called with the plaintext bytes decrypted so far. */
  onProgress?: (bytes: number) => void;
}
"#;

// ---------------------------------------------------------------------------------------------
// Errors: one `Error` subclass per core kind, defined in the package's errors.js and registered
// at load time; `code` is the core's stable `Error::code()`.

thread_local! {
    static ERROR_CLASSES: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// Called once by the package's entry module with `{ [code]: ErrorClass, MedshareError }`.
#[wasm_bindgen(js_name = "__registerErrorClasses", skip_typescript)]
pub fn register_error_classes(classes: JsValue) {
    ERROR_CLASSES.with(|c| *c.borrow_mut() = Some(classes));
}

fn set(target: &JsValue, key: &str, value: &JsValue) {
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

fn error(code: &str, message: &str) -> JsValue {
    let constructed = ERROR_CLASSES.with(|c| {
        let classes = c.borrow();
        let classes = classes.as_ref()?;
        let ctor = [code, "MedshareError"].iter().find_map(|k| {
            Reflect::get(classes, &JsValue::from_str(k))
                .ok()?
                .dyn_into::<Function>()
                .ok()
        })?;
        Reflect::construct(&ctor, &Array::of1(&JsValue::from_str(message))).ok()
    });
    let err = constructed.unwrap_or_else(|| {
        let e = js_sys::Error::new(message);
        e.set_name(&format!("{code}Error"));
        e.into()
    });
    set(&err, "code", &JsValue::from_str(code));
    err
}

fn js_err(e: medshare::Error) -> JsValue {
    let err = error(e.code(), &e.to_string());
    match &e {
        medshare::Error::InvalidChain {
            height, tx, rule, ..
        } => {
            // u64::MAX stands for "unknowable" (the block did not decode).
            if *height != u64::MAX {
                set(&err, "height", &JsValue::from_f64(*height as f64));
            }
            set(&err, "rule", &JsValue::from_str(&rule.to_string()));
            if let Some(tx) = tx {
                set(&err, "tx", &JsValue::from_str(&tx.to_string()));
            }
        }
        medshare::Error::Rejected { rule, .. } => {
            set(&err, "rule", &JsValue::from_str(&rule.to_string()));
        }
        medshare::Error::ChunkAuthentication { index } => {
            set(&err, "index", &JsValue::from_f64(*index as f64));
        }
        _ => {}
    }
    err
}

type JsResult<T> = std::result::Result<T, JsValue>;

fn message_of(v: &JsValue) -> String {
    match v.dyn_ref::<js_sys::Error>() {
        Some(e) => String::from(e.message()),
        None => v.as_string().unwrap_or_else(|| format!("{v:?}")),
    }
}

fn record_id(s: &str) -> JsResult<RecordId> {
    RecordId::from_str(s).map_err(js_err)
}

fn identity_id(s: &str) -> JsResult<IdentityId> {
    IdentityId::from_str(s).map_err(js_err)
}

fn option<T: JsCast>(options: &JsValue, key: &str) -> Option<T> {
    if options.is_undefined() || options.is_null() {
        return None;
    }
    Reflect::get(options, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.dyn_into::<T>().ok())
}

fn option_string(options: &JsValue, key: &str) -> Option<String> {
    option::<js_sys::JsString>(options, key).map(String::from)
}

fn progress_of(options: &JsValue) -> impl FnMut(u64) + use<> {
    let callback = option::<Function>(options, "onProgress");
    move |done| {
        if let Some(f) = &callback {
            // A throwing progress callback must not abort the operation half-way.
            let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(done as f64));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Giving the JS event loop its turn: long operations hand control back to the host at most
// every SLICE_MS of work, between blocks, so a page keeps painting and handling input.

const SLICE_MS: f64 = 16.0;

// A new task queued behind whatever the host already has waiting (timers, input, rendering):
// setImmediate in Node, a MessageChannel message in browsers and workers (no 4 ms clamp, unlike
// nested setTimeout), setTimeout elsewhere.
#[wasm_bindgen(inline_js = r#"
export function yieldToHost() {
  return new Promise((resolve) => {
    if (typeof setImmediate === "function") {
      setImmediate(resolve);
    } else if (typeof MessageChannel === "function") {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    } else {
      setTimeout(resolve, 0);
    }
  });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = yieldToHost)]
    fn yield_promise() -> Promise;
}

async fn yield_to_host() {
    let _ = JsFuture::from(yield_promise()).await;
}

/// Wraps a backend; yields to the host between blocks once a time slice is used up.
struct Host<S> {
    inner: S,
    last: Cell<f64>,
}

impl<S> Host<S> {
    fn new(inner: S) -> Self {
        Host {
            inner,
            last: Cell::new(js_sys::Date::now()),
        }
    }

    async fn breathe(&self) {
        if js_sys::Date::now() - self.last.get() >= SLICE_MS {
            yield_to_host().await;
            self.last.set(js_sys::Date::now());
        }
    }
}

#[async_trait::async_trait(?Send)]
impl<S: BlockStore> BlockStore for Host<S> {
    async fn put(&self, cid: &Cid, data: &[u8]) -> medshare::Result<()> {
        self.breathe().await;
        self.inner.put(cid, data).await
    }
    async fn put_many(&self, blocks: &[Block]) -> medshare::Result<()> {
        self.breathe().await;
        self.inner.put_many(blocks).await
    }
    async fn get(&self, cid: &Cid) -> medshare::Result<Option<Vec<u8>>> {
        self.breathe().await;
        self.inner.get(cid).await
    }
    async fn has(&self, cid: &Cid) -> medshare::Result<bool> {
        self.inner.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> medshare::Result<()> {
        self.inner.delete(cid).await
    }
    async fn head(&self) -> medshare::Result<Option<Cid>> {
        self.inner.head().await
    }
    async fn compare_and_swap_head(
        &self,
        expected: Option<&Cid>,
        new: Option<&Cid>,
    ) -> medshare::Result<()> {
        self.inner.compare_and_swap_head(expected, new).await
    }
}

// ---------------------------------------------------------------------------------------------
// Block stores written in JavaScript.

#[wasm_bindgen]
extern "C" {
    /// A JS object with get/put/has/delete/head/compareAndSwapHead (see `BlockStore`).
    #[wasm_bindgen(typescript_type = "BlockStore")]
    pub type JsStore;
    #[wasm_bindgen(method, catch)]
    fn get(this: &JsStore, cid: &str) -> JsResult<JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(this: &JsStore, cid: &str, data: Uint8Array) -> JsResult<JsValue>;
    #[wasm_bindgen(method, catch)]
    fn has(this: &JsStore, cid: &str) -> JsResult<JsValue>;
    #[wasm_bindgen(method, catch)]
    fn delete(this: &JsStore, cid: &str) -> JsResult<JsValue>;
    #[wasm_bindgen(method, catch)]
    fn head(this: &JsStore) -> JsResult<JsValue>;
    #[wasm_bindgen(method, catch, js_name = compareAndSwapHead)]
    fn compare_and_swap_head(this: &JsStore, expected: JsValue, next: JsValue)
    -> JsResult<JsValue>;

    /// `PublishOptions` (see the TypeScript section).
    #[wasm_bindgen(typescript_type = "PublishOptions")]
    pub type PublishOptions;
    /// `GrantOptions` (see the TypeScript section).
    #[wasm_bindgen(typescript_type = "GrantOptions")]
    pub type GrantOptions;
    /// `OpenOptions` (see the TypeScript section).
    #[wasm_bindgen(typescript_type = "OpenOptions")]
    pub type OpenOptions;
}

fn options<T: JsCast>(o: Option<T>) -> JsValue {
    o.map_or(JsValue::UNDEFINED, JsCast::unchecked_into)
}

struct JsBridge(JsStore);

async fn settle(op: &str, called: JsResult<JsValue>) -> medshare::Result<JsValue> {
    let failed =
        |e: JsValue| medshare::Error::Backend(format!("JS store {op}: {}", message_of(&e)));
    let value = called.map_err(failed)?;
    JsFuture::from(Promise::resolve(&value))
        .await
        .map_err(failed)
}

fn cid_text(v: &JsValue, op: &str) -> medshare::Result<Option<Cid>> {
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    let text = v.as_string().ok_or_else(|| {
        medshare::Error::Backend(format!(
            "JS store {op} returned neither a CID string nor null"
        ))
    })?;
    Cid::from_str(&text).map(Some)
}

#[async_trait::async_trait(?Send)]
impl BlockStore for JsBridge {
    async fn put(&self, cid: &Cid, data: &[u8]) -> medshare::Result<()> {
        settle("put", self.0.put(&cid.to_string(), Uint8Array::from(data)))
            .await
            .map(drop)
    }
    async fn get(&self, cid: &Cid) -> medshare::Result<Option<Vec<u8>>> {
        let v = settle("get", self.0.get(&cid.to_string())).await?;
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        let bytes = v.dyn_into::<Uint8Array>().map_err(|_| {
            medshare::Error::Backend("JS store get returned neither a Uint8Array nor null".into())
        })?;
        Ok(Some(bytes.to_vec()))
    }
    async fn has(&self, cid: &Cid) -> medshare::Result<bool> {
        Ok(settle("has", self.0.has(&cid.to_string()))
            .await?
            .is_truthy())
    }
    async fn delete(&self, cid: &Cid) -> medshare::Result<()> {
        settle("delete", self.0.delete(&cid.to_string()))
            .await
            .map(drop)
    }
    async fn head(&self) -> medshare::Result<Option<Cid>> {
        cid_text(&settle("head", self.0.head()).await?, "head")
    }
    async fn compare_and_swap_head(
        &self,
        expected: Option<&Cid>,
        new: Option<&Cid>,
    ) -> medshare::Result<()> {
        let text = |c: Option<&Cid>| c.map_or(JsValue::NULL, |c| JsValue::from_str(&c.to_string()));
        let swapped = settle(
            "compareAndSwapHead",
            self.0.compare_and_swap_head(text(expected), text(new)),
        )
        .await?;
        if swapped.is_truthy() {
            return Ok(());
        }
        let found = cid_text(&settle("head", self.0.head()).await?, "head")?;
        Err(medshare::store::head_conflict(expected, found.as_ref()))
    }
}

fn js_store(store: JsStore) -> Store {
    Store::new(Host::new(JsBridge(store)))
}

/// Runs the core's block-store conformance suite against stores made by `factory` (each call
/// must return a fresh, empty store). Rejects with the first failed check.
#[wasm_bindgen(js_name = storeConformance, unchecked_return_type = "Promise<void>")]
pub fn store_conformance(
    #[wasm_bindgen(unchecked_param_type = "() => BlockStore")] factory: Function,
) -> Promise {
    future_to_promise(async move {
        medshare::store::testsuite::run_all(|| {
            let made = factory.call0(&JsValue::NULL).unwrap_or(JsValue::UNDEFINED);
            Store::new(JsBridge(made.unchecked_into()))
        })
        .await
        .map_err(|f| error("Backend", &format!("store conformance: {f}")))?;
        Ok(JsValue::UNDEFINED)
    })
}

// ---------------------------------------------------------------------------------------------
// Identities

/// A patient's, doctor's or authority's RSA key pair. The private key never leaves this object
/// except as an encrypted key file (`toKeyFile`).
#[wasm_bindgen]
pub struct Identity(medshare::Identity);

fn parse_role(s: &str) -> JsResult<Role> {
    Role::from_str(s).map_err(js_err)
}

#[wasm_bindgen]
impl Identity {
    /// Generates a key pair: `bits` 2048, 3072 (default) or 4096. Takes a second or more for
    /// 3072 bits in a browser; run it in a Worker to keep a page responsive.
    pub fn generate(
        #[wasm_bindgen(unchecked_param_type = "Role")] role: &str,
        bits: Option<u32>,
        name: Option<String>,
    ) -> JsResult<Identity> {
        let bits = bits.map_or(medshare::identity::DEFAULT_KEY_BITS, |b| b as usize);
        medshare::Identity::generate(parse_role(role)?, name.as_deref().unwrap_or(""), bits)
            .map(Identity)
            .map_err(js_err)
    }

    /// Imports an encrypted key file (the text `toKeyFile` or the CLI writes).
    #[wasm_bindgen(js_name = fromKeyFile)]
    pub fn from_key_file(text: &str, passphrase: &str) -> JsResult<Identity> {
        medshare::Identity::from_key_file(text, passphrase)
            .map(Identity)
            .map_err(js_err)
    }

    /// Imports an unencrypted PKCS#8 PEM private key.
    #[wasm_bindgen(js_name = fromPkcs8Pem)]
    pub fn from_pkcs8_pem(
        #[wasm_bindgen(unchecked_param_type = "Role")] role: &str,
        pem: &str,
        name: Option<String>,
    ) -> JsResult<Identity> {
        medshare::Identity::from_pkcs8_pem(parse_role(role)?, name.as_deref().unwrap_or(""), pem)
            .map(Identity)
            .map_err(js_err)
    }

    /// Exports the key pair as an encrypted key file (scrypt + AES-256-GCM), as text.
    #[wasm_bindgen(js_name = toKeyFile)]
    pub fn to_key_file(&self, passphrase: &str) -> JsResult<String> {
        self.0.to_key_file(passphrase).map_err(js_err)
    }

    /// The identity id (multibase of the public key's multihash).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.0.id().to_string()
    }

    /// `patient`, `doctor` or `authority`.
    #[wasm_bindgen(getter, unchecked_return_type = "Role")]
    pub fn role(&self) -> String {
        self.0.role().as_str().to_owned()
    }

    /// The display name stored in the key file.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.0.name().to_owned()
    }

    /// Modulus size in bits.
    #[wasm_bindgen(getter)]
    pub fn bits(&self) -> u32 {
        self.0.public().bits() as u32
    }

    /// The public key as SPKI PEM.
    #[wasm_bindgen(getter, js_name = publicKeyPem)]
    pub fn public_key_pem(&self) -> String {
        self.0.public().to_pem()
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// A record a doctor can open, as the chain says at the head.
#[wasm_bindgen(getter_with_clone, inspectable)]
pub struct RecordInfo {
    /// Record id.
    pub record: String,
    /// The patient who owns it.
    pub owner: String,
    /// Latest version.
    pub version: u32,
    /// CID of the sealed envelope of that version.
    pub content: String,
    /// Envelope size in bytes.
    pub size: f64,
    /// Unix time (seconds) the grant expires, if it does.
    pub expires: Option<f64>,
    /// The grant's stated purpose.
    pub purpose: Option<String>,
}

/// One entry of a record's audit trail.
#[wasm_bindgen(getter_with_clone, inspectable)]
pub struct AuditEvent {
    /// `published`, `granted` or `revoked`.
    pub kind: String,
    /// Ledger block height.
    pub height: f64,
    /// Block time (unix seconds).
    pub time: f64,
    /// Transaction CID.
    pub tx: String,
    /// Who signed it.
    pub author: String,
    /// Record version concerned (published, granted).
    pub version: Option<u32>,
    /// Doctor concerned (granted, revoked).
    pub doctor: Option<String>,
}

/// What `verify` checked.
#[wasm_bindgen(getter_with_clone, inspectable)]
pub struct VerifyReport {
    /// Blocks verified, genesis included.
    pub blocks: f64,
    /// Transactions verified.
    pub transactions: f64,
    /// Head block CID.
    pub head: String,
}

/// What `revoke` did.
#[wasm_bindgen(getter_with_clone, inspectable)]
pub struct RevokeReport {
    /// The record's new version, re-encrypted under a new key.
    #[wasm_bindgen(js_name = newVersion)]
    pub new_version: u32,
    /// Doctors still granted on the new version.
    pub remaining: Vec<String>,
    /// Blocks of older versions deleted from the store.
    #[wasm_bindgen(js_name = deletedBlocks)]
    pub deleted_blocks: u32,
}

/// A record's decrypted metadata.
#[wasm_bindgen(getter_with_clone, inspectable)]
pub struct RecordMetadata {
    /// File name.
    pub name: String,
    /// Media type.
    #[wasm_bindgen(js_name = mediaType)]
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: f64,
}

/// Reads a JS `Uint8Array` piece by piece, so a large input is never copied whole into wasm
/// memory (and the copy never blocks the page in one go).
struct JsReader {
    data: Uint8Array,
    pos: u32,
}

impl std::io::Read for JsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.data.length() - self.pos;
        let n = left.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        self.data
            .subarray(self.pos, self.pos + n)
            .copy_to(&mut buf[..n as usize]);
        self.pos += n;
        Ok(n as usize)
    }
}

/// Collects plaintext as JS-side chunks (no wasm-memory copy of the whole record), joined once
/// into one `Uint8Array` at the end.
#[derive(Default)]
struct JsWriter {
    chunks: Vec<Uint8Array>,
    len: u32,
}

impl std::io::Write for JsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = u32::try_from(buf.len())
            .ok()
            .filter(|n| self.len.checked_add(*n).is_some())
            .ok_or_else(|| {
                std::io::Error::other("a record over 4 GiB does not fit a Uint8Array")
            })?;
        if n > 0 {
            self.chunks.push(Uint8Array::from(buf));
            self.len += n;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl JsWriter {
    fn join(self) -> Uint8Array {
        let out = Uint8Array::new_with_length(self.len);
        let mut at = 0;
        for c in self.chunks {
            out.set(&c, at);
            at += c.length();
        }
        out
    }
}

fn array<T: Into<JsValue>>(items: impl IntoIterator<Item = T>) -> JsValue {
    items.into_iter().map(Into::into).collect::<Array>().into()
}

// ---------------------------------------------------------------------------------------------
// The vault

/// A medshare vault: a chain and its records over a block store. Every method returns a
/// Promise; calls on one vault run one at a time, in call order.
#[wasm_bindgen]
pub struct Vault {
    inner: Rc<async_lock::Mutex<medshare::Vault>>,
}

fn vault_value(v: medshare::Result<medshare::Vault>) -> JsResult<JsValue> {
    Ok(Vault {
        inner: Rc::new(async_lock::Mutex::new(v.map_err(js_err)?)),
    }
    .into())
}

impl Vault {
    fn run<F, T>(&self, f: F) -> Promise
    where
        F: AsyncFnOnce(&mut medshare::Vault) -> JsResult<T> + 'static,
        T: Into<JsValue>,
    {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut guard = inner.lock().await;
            f(&mut guard).await.map(Into::into)
        })
    }
}

const NETWORK: &str = "medshare";

#[wasm_bindgen]
impl Vault {
    /// An in-memory vault whose new chain is sealed by a throwaway 2048-bit authority
    /// generated here (tests, demos). Use `openOrCreate` to keep the authority.
    #[wasm_bindgen(unchecked_return_type = "Promise<Vault>")]
    pub fn memory() -> Promise {
        future_to_promise(async move {
            let store = Store::new(Host::new(MemoryStore::default()));
            vault_value(
                match medshare::Identity::generate(Role::Authority, "vault-authority", 2048) {
                    Ok(a) => {
                        let policy = medshare::ledger::Policy::default();
                        medshare::Vault::create(store, NETWORK, a, policy).await
                    }
                    Err(e) => Err(e),
                },
            )
        })
    }

    /// A vault that can append, sealed by `authority`: opens the chain in `store` (which must
    /// name `authority` in its genesis), or creates one there if the store is empty. Without a
    /// store, a new memory store.
    #[wasm_bindgen(js_name = openOrCreate, unchecked_return_type = "Promise<Vault>")]
    pub fn open_or_create(authority: &Identity, store: Option<JsStore>) -> Promise {
        let authority = authority.0.clone();
        future_to_promise(async move {
            let store = match store {
                Some(s) => js_store(s),
                None => Store::new(Host::new(MemoryStore::default())),
            };
            vault_value(medshare::Vault::open_or_create(store, NETWORK, Some(authority)).await)
        })
    }

    /// A read-and-verify vault over the chain in a JavaScript block store (for example
    /// `openIndexedDbStore()` or a store fetching from the hospital's server). An empty store
    /// is `NoChain`.
    #[wasm_bindgen(js_name = withStore, unchecked_return_type = "Promise<Vault>")]
    pub fn with_store(store: JsStore) -> Promise {
        future_to_promise(async move {
            vault_value(medshare::Vault::open_or_create(js_store(store), NETWORK, None).await)
        })
    }

    /// Imports a CAR (from `exportCar`, `medshare export --car` or `ipfs dag export`) into
    /// `store` (default: a new memory store) and verifies its chain. An empty store adopts the
    /// chain; a store with a chain must be extended by it. The vault reads and verifies only.
    #[wasm_bindgen(js_name = importCar, unchecked_return_type = "Promise<Vault>")]
    pub fn import_car(car: Uint8Array, store: Option<JsStore>) -> Promise {
        let car = car.to_vec();
        future_to_promise(async move {
            let store = match store {
                Some(s) => js_store(s),
                None => Store::new(Host::new(MemoryStore::default())),
            };
            vault_value(
                medshare::Vault::import_car(store, car.as_slice())
                    .await
                    .map(|(v, _)| v),
            )
        })
    }

    /// Registers a patient or (endorsed by this vault's authority) a doctor. Resolves to the
    /// transaction CID.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn register(&self, identity: &Identity, licence: Option<String>) -> Promise {
        let identity = identity.0.clone();
        self.run(async move |v| {
            let cid = v.register(&identity, licence.as_deref()).await;
            Ok(cid.map_err(js_err)?.to_string())
        })
    }

    /// Seals `data` for `patient` and publishes it. Resolves to the new record id.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn publish(
        &self,
        patient: &Identity,
        data: Uint8Array,
        options: Option<PublishOptions>,
    ) -> Promise {
        let patient = patient.0.clone();
        let options = self::options(options);
        let meta = Metadata {
            name: option_string(&options, "name").unwrap_or_default(),
            media_type: option_string(&options, "mediaType")
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: u64::from(data.length()),
        };
        let data = JsReader { data, pos: 0 };
        let mut progress = progress_of(&options);
        self.run(async move |v| {
            let id = v.publish(&patient, data, meta, &mut progress).await;
            Ok(id.map_err(js_err)?.to_string())
        })
    }

    /// Grants `doctor` (an identity id) access to the latest version of `record`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn grant(
        &self,
        patient: &Identity,
        record: &str,
        doctor: &str,
        options: Option<GrantOptions>,
    ) -> Promise {
        let patient = patient.0.clone();
        let ids = record_id(record).and_then(|r| Ok((r, identity_id(doctor)?)));
        let options = self::options(options);
        let expires = option::<js_sys::Number>(&options, "expires").map(|n| n.value_of());
        let purpose = option_string(&options, "purpose");
        self.run(async move |v| {
            let (record, doctor) = ids?;
            let expires = match expires {
                Some(e) if !(e.is_finite() && e >= 0.0) => {
                    return Err(js_sys::TypeError::new(
                        "expires must be a unix time in seconds (a non-negative number)",
                    )
                    .into());
                }
                e => e.map(|e| e as u64),
            };
            v.grant(&patient, &record, &doctor, expires, purpose.as_deref())
                .await
                .map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Revokes `doctor`'s access: the record is re-encrypted under a new key for the remaining
    /// grantees, and the old version's blocks are deleted.
    #[wasm_bindgen(unchecked_return_type = "Promise<RevokeReport>")]
    pub fn revoke(&self, patient: &Identity, record: &str, doctor: &str) -> Promise {
        let patient = patient.0.clone();
        let ids = record_id(record).and_then(|r| Ok((r, identity_id(doctor)?)));
        self.run(async move |v| {
            let (record, doctor) = ids?;
            let r = v.revoke(&patient, &record, &doctor).await.map_err(js_err)?;
            Ok(RevokeReport {
                new_version: r.new_version,
                remaining: r.remaining.iter().map(ToString::to_string).collect(),
                deleted_blocks: r.deleted_blocks as u32,
            })
        })
    }

    /// Decrypts the latest version of `record` as `identity` (its owner, or a doctor with a
    /// live grant). Resolves to the plaintext.
    #[wasm_bindgen(js_name = openRecord, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn open_record(
        &self,
        identity: &Identity,
        record: &str,
        options: Option<OpenOptions>,
    ) -> Promise {
        let identity = identity.0.clone();
        let record = record_id(record);
        let mut progress = progress_of(&self::options(options));
        self.run(async move |v| {
            let record = record?;
            let mut out = JsWriter::default();
            v.open_record_with_progress(&identity, &record, &mut out, &mut progress)
                .await
                .map_err(js_err)?;
            Ok(out.join())
        })
    }

    /// The decrypted name, media type and size of `record`, as `identity` may see them.
    #[wasm_bindgen(unchecked_return_type = "Promise<RecordMetadata>")]
    pub fn metadata(&self, identity: &Identity, record: &str) -> Promise {
        let identity = identity.0.clone();
        let record = record_id(record);
        self.run(async move |v| {
            let record = record?;
            let m = v
                .open_record(&identity, &record, std::io::sink())
                .await
                .map_err(js_err)?;
            Ok(RecordMetadata {
                name: m.name,
                media_type: m.media_type,
                size: m.size as f64,
            })
        })
    }

    /// Records `doctor` (an identity id) may open now.
    #[wasm_bindgen(js_name = recordsFor, unchecked_return_type = "Promise<RecordInfo[]>")]
    pub fn records_for(&self, doctor: &str) -> Promise {
        let doctor = identity_id(doctor);
        self.run(async move |v| {
            let list = v.records_for(&doctor?);
            Ok(array(list.into_iter().map(|r| RecordInfo {
                record: r.record.to_string(),
                owner: r.owner.to_string(),
                version: r.version,
                content: r.content.to_string(),
                size: r.size as f64,
                expires: r.grant.as_ref().and_then(|g| g.expires).map(|e| e as f64),
                purpose: r.grant.and_then(|g| g.purpose),
            })))
        })
    }

    /// `record`'s audit trail, oldest first.
    #[wasm_bindgen(unchecked_return_type = "Promise<AuditEvent[]>")]
    pub fn audit(&self, record: &str) -> Promise {
        let record = record_id(record);
        self.run(async move |v| {
            let events = v.audit(&record?).map_err(js_err)?;
            Ok(array(events.into_iter().map(|e| AuditEvent {
                kind: e.kind.name().into(),
                height: e.height as f64,
                time: e.time as f64,
                tx: e.tx.to_string(),
                author: e.author.to_string(),
                version: e.kind.version(),
                doctor: e.kind.doctor().map(|d| d.to_string()),
            })))
        })
    }

    /// Re-verifies the whole chain from genesis: every signature, seal, link and rule.
    #[wasm_bindgen(unchecked_return_type = "Promise<VerifyReport>")]
    pub fn verify(&self) -> Promise {
        self.run(async move |v| {
            let r = v.verify().await.map_err(js_err)?;
            Ok(VerifyReport {
                blocks: r.blocks as f64,
                transactions: r.transactions as f64,
                head: r.head.to_string(),
            })
        })
    }

    /// Applies blocks another writer appended to the store since this vault last looked.
    /// Resolves to how many were applied.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn sync(&self) -> Promise {
        self.run(async move |v| Ok(v.sync().await.map_err(js_err)? as f64))
    }

    /// The chain and every current record version as a CARv1 file (`medshare import --car`,
    /// `ipfs dag import`).
    #[wasm_bindgen(js_name = exportCar, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_car(&self) -> Promise {
        self.run(async move |v| {
            let mut out = Vec::new();
            v.export_car(&mut out).await.map_err(js_err)?;
            Ok(Uint8Array::from(out.as_slice()))
        })
    }

    /// The head block's CID.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn head(&self) -> Promise {
        self.run(async move |v| Ok(v.state().head().to_string()))
    }
}

/// The root CID `ipfs add` prints for `data` under `profile` (`unixfs-v1-2025`, the default, or
/// `unixfs-v0-2015`).
#[wasm_bindgen]
pub fn cid(data: &[u8], profile: Option<String>) -> JsResult<String> {
    let profile = match profile {
        Some(p) => Profile::from_str(&p).map_err(js_err)?,
        None => Profile::default(),
    };
    Ok(medshare::cid(data, profile).to_string())
}

/// The stable error codes, one per core error kind (the `code` of every thrown error).
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    medshare::Error::CODES
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}
