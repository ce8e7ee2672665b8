//! The exported wasm API. Every function converts its arguments, calls the core, and converts
//! the result or maps the error; nothing else. The npm package's `api.js` wraps these classes
//! (checking every argument's type before it reaches wasm memory, accepting an `Identity`
//! wherever an id is taken); users never see the `Wasm…` names.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use medshare::envelope::Metadata;
use medshare::net::{Http, HttpRequest, HttpResponse};
use medshare::store::foreign::{Foreign, ForeignStore};
use medshare::store::memory::MemoryStore;
use medshare::store::{Block, BlockStore};
use medshare::{Cid, Expiry, GrantOptions, IdentityId, Profile, Purpose, RecordId, Role, Store};

// ---------------------------------------------------------------------------------------------
// Errors: one `Error` subclass per core code, defined in the package's errors.js and registered
// at load time; `code` is the core's code.

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
    set(&err, "category", &JsValue::from_str(e.category().as_str()));
    match &e {
        medshare::Error::InvalidChain {
            height, tx, rule, ..
        } => {
            if let Some(h) = height {
                set(&err, "height", &JsValue::from_f64(*h as f64));
            }
            set(&err, "rule", &JsValue::from_str(rule.as_str()));
            if let Some(tx) = tx {
                set(&err, "tx", &JsValue::from_f64(*tx as f64));
            }
        }
        medshare::Error::Rejected { rule, .. } => {
            set(&err, "rule", &JsValue::from_str(rule.as_str()))
        }
        medshare::Error::ChunkAuthentication { chunk: Some(i) } => {
            set(&err, "chunk", &JsValue::from_f64(*i as f64));
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

/// A core value as a plain JS object: its serde JSON with camelCase keys.
fn to_js<T: serde::Serialize>(v: &T) -> JsResult<JsValue> {
    fn camel(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        let mut out = String::with_capacity(k.len());
                        let mut up = false;
                        for c in k.chars() {
                            if c == '_' {
                                up = true;
                            } else if up {
                                out.extend(c.to_uppercase());
                                up = false;
                            } else {
                                out.push(c);
                            }
                        }
                        (out, camel(v))
                    })
                    .collect(),
            ),
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(camel).collect())
            }
            other => other,
        }
    }
    let value = serde_json::to_value(v).map_err(|e| JsValue::from_str(&e.to_string()))?;
    js_sys::JSON::parse(&camel(value).to_string())
}

fn progress_of(callback: Option<Function>) -> impl FnMut(u64) + use<> {
    move |done| {
        if let Some(f) = &callback {
            // A throwing progress callback must not abort the operation half-way.
            let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(done as f64));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The host: giving the JS event loop its turn, timers and fetch.

const SLICE_MS: f64 = 16.0;

#[wasm_bindgen(inline_js = r#"
// A new task queued behind whatever the host already has waiting (timers, input, rendering):
// setImmediate in Node, a MessageChannel message in browsers and workers (no 4 ms clamp),
// setTimeout elsewhere.
export function yieldToHost() {
  return new Promise((resolve) => {
    if (typeof setImmediate === "function") {
      setImmediate(resolve);
    } else if (typeof MessageChannel === "function") {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { channel.port1.close(); resolve(); };
      channel.port2.postMessage(null);
    } else {
      setTimeout(resolve, 0);
    }
  });
}
export function sleepMs(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
// One HTTP request with the host's fetch: resolves to { status, body } whatever the status;
// rejects with { kind: "timeout" | "unavailable", message } when there is no answer.
export async function httpRequest(method, url, headers, body, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const init = { method, headers: Object.fromEntries(headers), signal: controller.signal };
    if (body) init.body = body;
    const r = await fetch(url, init);
    const bytes = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, body: bytes };
  } catch (e) {
    const kind = controller.signal.aborted ? "timeout" : "unavailable";
    throw { kind, message: `${url}: ${e && e.message ? e.message : e}` };
  } finally {
    clearTimeout(timer);
  }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = yieldToHost)]
    fn yield_promise() -> Promise;
    #[wasm_bindgen(js_name = sleepMs)]
    fn sleep_ms(ms: f64) -> Promise;
    #[wasm_bindgen(js_name = httpRequest)]
    fn http_request(
        method: &str,
        url: &str,
        headers: Array,
        body: JsValue,
        timeout_ms: f64,
    ) -> Promise;
}

async fn yield_to_host() {
    let _ = JsFuture::from(yield_promise()).await;
}

// ---------------------------------------------------------------------------------------------
// WebCrypto: the host's AES-GCM, SHA-256 and RSA (native code on threads of its own) for
// publishing, opening, signing and unwrapping. What is sealed, signed or unwrapped, and how, is
// the core's (medshare::offload); this is the calls and the copies.

#[wasm_bindgen(inline_js = r#"
export function hasSubtle() {
  return typeof globalThis.crypto === "object" && globalThis.crypto !== null
    && typeof globalThis.crypto.subtle === "object" && globalThis.crypto.subtle !== null;
}
// AES-256-GCM of every chunk of `buf` in place, all at once: chunk i is buf[at[i], at[i] + len[i])
// (plus its 16-byte tag after it), under nonce[12 i, 12 i + 12). Resolves to the opened or
// sealed buffer and, when opening, the position of the first chunk that does not authenticate
// (or -1); rejects if WebCrypto fails otherwise.
export async function aesChunks(encrypt, rawKey, buf, at, len, nonce) {
  const subtle = globalThis.crypto.subtle;
  let settled;
  try {
    const key = await subtle.importKey("raw", rawKey, "AES-GCM", false, [encrypt ? "encrypt" : "decrypt"]);
    settled = await Promise.allSettled(Array.from(at, (start, i) => {
      const params = { name: "AES-GCM", iv: nonce.subarray(12 * i, 12 * i + 12) };
      if (encrypt) return subtle.encrypt(params, key, buf.subarray(start, start + len[i]));
      return subtle.decrypt(params, key, buf.subarray(start, start + len[i] + 16));
    }));
  } catch (e) {
    buf.fill(0); // it may hold plaintext
    throw e;
  }
  let failed = -1;
  let error = null;
  settled.forEach((r, i) => {
    if (r.status === "fulfilled") {
      const bytes = new Uint8Array(r.value);
      try {
        buf.set(bytes, at[i]);
      } catch (e) {
        if (error === null) error = e;
      }
      // An opened chunk is plaintext: not left in the host's heap until it is collected.
      if (!encrypt) bytes.fill(0);
    } else if (!encrypt && r.reason && r.reason.name === "OperationError") {
      if (failed < 0) failed = i;
    } else if (error === null) {
      error = r.reason;
    }
  });
  if (error !== null) {
    buf.fill(0);
    throw error;
  }
  return { buf, failed };
}
// An identity's private key (PKCS#8 DER, wiped here once imported) as two non-extractable
// CryptoKeys: RSA-PSS for signing, RSA-OAEP for unwrapping (SHA-256 and MGF1-SHA-256 both).
export async function rsaImport(pkcs8) {
  const subtle = globalThis.crypto.subtle;
  try {
    const [pss, oaep] = await Promise.all([
      subtle.importKey("pkcs8", pkcs8, { name: "RSA-PSS", hash: "SHA-256" }, false, ["sign"]),
      subtle.importKey("pkcs8", pkcs8, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"]),
    ]);
    return { pss, oaep };
  } finally {
    pkcs8.fill(0);
  }
}
export async function rsaSign(keys, message) {
  const sig = await globalThis.crypto.subtle.sign({ name: "RSA-PSS", saltLength: 32 }, keys.pss, message);
  return new Uint8Array(sig);
}
// The unwrapped bytes, or null if they do not decrypt under this key and label.
export async function rsaUnwrap(keys, wrapped, label) {
  try {
    return new Uint8Array(await globalThis.crypto.subtle.decrypt({ name: "RSA-OAEP", label }, keys.oaep, wrapped));
  } catch (e) {
    if (e && e.name === "OperationError") return null;
    throw e;
  }
}
// The SHA-256 digests of `items` (an array of byte arrays), concatenated.
export async function sha256Many(items) {
  const digests = await Promise.all(items.map((d) => globalThis.crypto.subtle.digest("SHA-256", d)));
  const out = new Uint8Array(32 * digests.length);
  digests.forEach((d, i) => out.set(new Uint8Array(d), 32 * i));
  return out;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = hasSubtle)]
    fn has_subtle() -> bool;
    #[wasm_bindgen(js_name = aesChunks)]
    fn aes_chunks(
        encrypt: bool,
        key: Uint8Array,
        buf: Uint8Array,
        at: Vec<u32>,
        len: Vec<u32>,
        nonce: Uint8Array,
    ) -> Promise;
    #[wasm_bindgen(js_name = sha256Many)]
    fn sha256_many(items: Array) -> Promise;
    #[wasm_bindgen(js_name = rsaImport)]
    fn rsa_import(pkcs8: Uint8Array) -> Promise;
    #[wasm_bindgen(js_name = rsaSign)]
    fn rsa_sign(keys: &JsValue, message: Uint8Array) -> Promise;
    #[wasm_bindgen(js_name = rsaUnwrap)]
    fn rsa_unwrap(keys: &JsValue, wrapped: Uint8Array, label: Uint8Array) -> Promise;
}

thread_local! {
    static WEB_CRYPTO: Cell<bool> = const { Cell::new(true) };
    /// Identities' keys imported into WebCrypto, by key id (`None`: the host would not import
    /// it, so this key stays in the portable code). Kept only while a JS `Identity` holding
    /// the key is alive, and at most `RSA_KEYS_KEPT` (the oldest goes first).
    static RSA_KEYS: RefCell<Vec<(IdentityId, Option<JsValue>)>> = const { RefCell::new(Vec::new()) };
    /// How many live JS `Identity` objects hold each key.
    static LIVE_KEYS: RefCell<Vec<(IdentityId, usize)>> = const { RefCell::new(Vec::new()) };
}

const RSA_KEYS_KEPT: usize = 16;

/// `identity`'s key as WebCrypto CryptoKeys, imported on first use; `None` if the host cannot.
async fn rsa_keys(identity: &medshare::Identity) -> Option<JsValue> {
    let id = identity.key_id();
    let known = RSA_KEYS.with(|k| {
        k.borrow()
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.clone())
    });
    if let Some(keys) = known {
        return keys;
    }
    let der = identity.to_pkcs8_der().ok()?;
    let keys = JsFuture::from(rsa_import(Uint8Array::from(&der[..])))
        .await
        .ok();
    // Kept for later calls only while a JS `Identity` holds the key (a vault's own copy of an
    // identity the page has freed, or an authority's, is imported for the call and dropped).
    let live = LIVE_KEYS.with(|l| l.borrow().iter().any(|(i, n)| *i == id && *n > 0));
    RSA_KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if live && !k.iter().any(|(i, _)| *i == id) {
            if k.len() >= RSA_KEYS_KEPT {
                k.remove(0);
            }
            k.push((id, keys.clone()));
        }
    });
    keys
}

/// A JS `Identity` now holds `identity`'s key.
fn hold_key(identity: medshare::Identity) -> WasmIdentity {
    let id = identity.key_id();
    LIVE_KEYS.with(|l| {
        let mut l = l.borrow_mut();
        match l.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => *n += 1,
            None => l.push((id, 1)),
        }
    });
    WasmIdentity(identity)
}

/// A JS `Identity` holding the key of `id` is gone; with the last one, its CryptoKeys go too.
fn release_key(id: &IdentityId) {
    let last = LIVE_KEYS.with(|l| {
        let mut l = l.borrow_mut();
        let Some(pos) = l.iter().position(|(i, _)| i == id) else {
            return true;
        };
        l[pos].1 = l[pos].1.saturating_sub(1);
        let last = l[pos].1 == 0;
        if last {
            l.swap_remove(pos);
        }
        last
    });
    if last {
        RSA_KEYS.with(|k| k.borrow_mut().retain(|(i, _)| i != id));
    }
}

/// Whether vaults seal, open and hash through WebCrypto (the default where the host has
/// `crypto.subtle`); `on = false` keeps them in the portable code. Returns whether WebCrypto is
/// used from now on.
#[wasm_bindgen(js_name = setWebCrypto)]
pub fn set_web_crypto(on: bool) -> bool {
    WEB_CRYPTO.with(|w| w.set(on));
    on && has_subtle()
}

fn web_crypto() -> Option<Arc<dyn medshare::offload::Offload>> {
    (WEB_CRYPTO.with(Cell::get) && has_subtle()).then(|| Arc::new(WebCrypto) as _)
}

/// The host's WebCrypto as the core's [`medshare::offload::Offload`].
struct WebCrypto;

fn webcrypto_err(e: JsValue) -> medshare::Error {
    medshare::Error::Backend(format!("WebCrypto: {}", message_of(&e)))
}

impl WebCrypto {
    async fn chunks(
        &self,
        encrypt: bool,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[medshare::envelope::Chunk],
    ) -> medshare::Result<Option<usize>> {
        let limit = |n: usize| {
            u32::try_from(n).map_err(|_| medshare::Error::TooLarge {
                what: "a buffer of chunks",
                size: n as u64,
                limit: u64::from(u32::MAX),
            })
        };
        let mut at = Vec::with_capacity(chunks.len());
        let mut len = Vec::with_capacity(chunks.len());
        let mut nonce = Vec::with_capacity(12 * chunks.len());
        for c in chunks {
            let end = c
                .offset
                .checked_add(c.len)
                .and_then(|e| e.checked_add(medshare::envelope::TAG_LEN));
            if end.is_none_or(|e| e > buf.len()) {
                return Err(medshare::Error::InvalidInput(
                    "a chunk outside its buffer".into(),
                ));
            }
            at.push(limit(c.offset)?);
            len.push(limit(c.len)?);
            nonce.extend_from_slice(&c.nonce);
        }
        let js_key = Uint8Array::from(&key[..]);
        let js_buf = Uint8Array::from(&*buf);
        let called = aes_chunks(
            encrypt,
            js_key.clone(),
            js_buf,
            at,
            len,
            Uint8Array::from(&nonce[..]),
        );
        let result = JsFuture::from(called).await;
        js_key.fill(0, 0, 32);
        let result = result.map_err(webcrypto_err)?;
        let out: Uint8Array = Reflect::get(&result, &"buf".into())
            .map_err(webcrypto_err)?
            .unchecked_into();
        let failed = Reflect::get(&result, &"failed".into())
            .map_err(webcrypto_err)?
            .as_f64()
            .unwrap_or(-1.0);
        if out.length() as usize != buf.len() {
            return Err(medshare::Error::Backend(
                "WebCrypto: a buffer of another length".into(),
            ));
        }
        out.copy_to(buf);
        if !encrypt {
            // The host's copy holds the opened plaintext (a sealed one is all ciphertext).
            out.fill(0, 0, out.length());
        }
        Ok((failed >= 0.0).then_some(failed as usize))
    }
}

#[async_trait::async_trait(?Send)]
impl medshare::offload::Offload for WebCrypto {
    async fn seal_chunks(
        &self,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[medshare::envelope::Chunk],
    ) -> medshare::Result<()> {
        self.chunks(true, key, buf, chunks).await.map(|_| ())
    }

    async fn open_chunks(
        &self,
        key: &[u8; 32],
        buf: &mut [u8],
        chunks: &[medshare::envelope::Chunk],
    ) -> medshare::Result<Option<usize>> {
        self.chunks(false, key, buf, chunks).await
    }

    async fn sign(
        &self,
        identity: &medshare::Identity,
        message: &[u8],
    ) -> medshare::Result<Option<Vec<u8>>> {
        let Some(keys) = rsa_keys(identity).await else {
            return Ok(None);
        };
        let sig = JsFuture::from(rsa_sign(&keys, Uint8Array::from(message)))
            .await
            .map_err(webcrypto_err)?;
        Ok(Some(sig.unchecked_into::<Uint8Array>().to_vec()))
    }

    async fn oaep_unwrap(
        &self,
        identity: &medshare::Identity,
        wrapped: &[u8],
        label: &[u8],
    ) -> medshare::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        let Some(keys) = rsa_keys(identity).await else {
            return Ok(None);
        };
        let called = rsa_unwrap(&keys, Uint8Array::from(wrapped), Uint8Array::from(label));
        let out = JsFuture::from(called).await.map_err(webcrypto_err)?;
        if out.is_null() {
            return Err(medshare::Error::KeyUnwrap);
        }
        let out: Uint8Array = out.unchecked_into();
        let key = zeroize::Zeroizing::new(out.to_vec());
        out.fill(0, 0, out.length());
        Ok(Some(key))
    }

    async fn sha256_many(&self, items: &[&[u8]]) -> medshare::Result<Vec<[u8; 32]>> {
        let js = items
            .iter()
            .map(|d| Uint8Array::from(*d))
            .collect::<Array>();
        let out: Uint8Array = JsFuture::from(sha256_many(js))
            .await
            .map_err(webcrypto_err)?
            .unchecked_into();
        let bytes = out.to_vec();
        if bytes.len() != 32 * items.len() {
            return Err(medshare::Error::Backend(
                "WebCrypto: digests of another length".into(),
            ));
        }
        Ok(bytes
            .chunks_exact(32)
            .map(|d| {
                let mut a = [0u8; 32];
                a.copy_from_slice(d);
                a
            })
            .collect())
    }
}

/// The browser's (or Node's) `fetch` as the core's HTTP client.
struct FetchHttp;

#[async_trait::async_trait(?Send)]
impl Http for FetchHttp {
    async fn send(&self, req: HttpRequest) -> medshare::Result<HttpResponse> {
        let headers: Array = req
            .headers
            .iter()
            .map(|(k, v)| JsValue::from(Array::of2(&JsValue::from_str(k), &JsValue::from_str(v))))
            .collect();
        let body = req
            .body
            .as_ref()
            .map_or(JsValue::UNDEFINED, |b| Uint8Array::from(&b[..]).into());
        let answer = JsFuture::from(http_request(
            req.method,
            &req.url,
            headers,
            body,
            req.timeout.as_millis() as f64,
        ))
        .await
        .map_err(|e| {
            let kind = Reflect::get(&e, &"kind".into())
                .ok()
                .and_then(|k| k.as_string());
            let msg = Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_else(|| message_of(&e));
            match kind.as_deref() {
                Some("timeout") => medshare::Error::Timeout(msg),
                _ => medshare::Error::Unavailable(msg),
            }
        })?;
        let status = Reflect::get(&answer, &"status".into())
            .ok()
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0) as u16;
        let body = Reflect::get(&answer, &"body".into())
            .ok()
            .and_then(|b| b.dyn_into::<Uint8Array>().ok())
            .map(|b| b.to_vec())
            .unwrap_or_default();
        if body.len() as u64 > req.max_response {
            return Err(medshare::Error::TooLarge {
                what: "HTTP answer",
                size: body.len() as u64,
                limit: req.max_response,
            });
        }
        Ok(HttpResponse { status, body })
    }

    async fn sleep(&self, d: Duration) {
        let _ = JsFuture::from(sleep_ms(d.as_millis() as f64)).await;
    }
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
    async fn pin(&self, root: &Cid) -> medshare::Result<()> {
        self.inner.pin(root).await
    }
    async fn unpin(&self, root: &Cid) -> medshare::Result<()> {
        self.inner.unpin(root).await
    }
    async fn list(&self) -> medshare::Result<Option<Vec<Cid>>> {
        self.inner.list().await
    }
    async fn get_meta(&self, key: &str) -> medshare::Result<Option<Vec<u8>>> {
        self.inner.get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: Option<&[u8]>) -> medshare::Result<()> {
        self.inner.put_meta(key, value).await
    }
}

// ---------------------------------------------------------------------------------------------
// Block stores written in JavaScript.

#[wasm_bindgen]
extern "C" {
    /// A JS object with get/put/has/delete/head/compareAndSwapHead.
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

fn opt_text(v: &JsValue, op: &str) -> medshare::Result<Option<String>> {
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    v.as_string().map(Some).ok_or_else(|| {
        medshare::Error::Backend(format!("JS store {op} returned neither a string nor null"))
    })
}

#[async_trait::async_trait(?Send)]
impl ForeignStore for JsBridge {
    async fn get(&self, cid: &str) -> medshare::Result<Option<Vec<u8>>> {
        let v = settle("get", self.0.get(cid)).await?;
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        let bytes = v.dyn_into::<Uint8Array>().map_err(|_| {
            medshare::Error::Backend("JS store get returned neither a Uint8Array nor null".into())
        })?;
        Ok(Some(bytes.to_vec()))
    }
    async fn put(&self, cid: &str, data: &[u8]) -> medshare::Result<()> {
        settle("put", self.0.put(cid, Uint8Array::from(data)))
            .await
            .map(drop)
    }
    async fn has(&self, cid: &str) -> medshare::Result<bool> {
        Ok(settle("has", self.0.has(cid)).await?.is_truthy())
    }
    async fn delete(&self, cid: &str) -> medshare::Result<()> {
        settle("delete", self.0.delete(cid)).await.map(drop)
    }
    async fn head(&self) -> medshare::Result<Option<String>> {
        opt_text(&settle("head", self.0.head()).await?, "head")
    }
    async fn compare_and_swap_head(
        &self,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> medshare::Result<bool> {
        let text = |c: Option<&str>| c.map_or(JsValue::NULL, JsValue::from_str);
        Ok(settle(
            "compareAndSwapHead",
            self.0.compare_and_swap_head(text(expected), text(new)),
        )
        .await?
        .is_truthy())
    }
}

fn js_store(store: JsStore) -> Store {
    Store::new(Host::new(Foreign(JsBridge(store))))
}

fn memory_store() -> Store {
    Store::new(Host::new(MemoryStore::default()))
}

/// Runs the core's block-store conformance suite against stores made by `factory`.
#[wasm_bindgen(js_name = storeConformance, skip_typescript)]
pub fn store_conformance(factory: Function) -> Promise {
    future_to_promise(async move {
        medshare::store::testsuite::run_all(|| {
            let made = factory.call0(&JsValue::NULL).unwrap_or(JsValue::UNDEFINED);
            Store::new(Foreign(JsBridge(made.unchecked_into())))
        })
        .await
        .map_err(|f| error("Backend", &format!("store conformance: {f}")))?;
        Ok(JsValue::UNDEFINED)
    })
}

// ---------------------------------------------------------------------------------------------
// Identities and endorsements

/// A key pair (wrapped by the package's `Identity`).
#[wasm_bindgen(skip_typescript)]
pub struct WasmIdentity(medshare::Identity);

impl Drop for WasmIdentity {
    fn drop(&mut self) {
        release_key(&self.0.key_id());
    }
}

#[wasm_bindgen]
impl WasmIdentity {
    pub fn generate(role: &str, bits: u32, name: &str) -> JsResult<WasmIdentity> {
        let role = Role::from_str(role).map_err(js_err)?;
        medshare::Identity::generate(role, name, bits as usize)
            .map(hold_key)
            .map_err(js_err)
    }

    #[wasm_bindgen(js_name = fromKeyFile)]
    pub fn from_key_file(text: &str, passphrase: &str) -> JsResult<WasmIdentity> {
        medshare::Identity::from_key_file(text, passphrase)
            .map(hold_key)
            .map_err(js_err)
    }

    #[wasm_bindgen(js_name = fromPkcs8Pem)]
    pub fn from_pkcs8_pem(role: &str, pem: &str, name: &str) -> JsResult<WasmIdentity> {
        let role = Role::from_str(role).map_err(js_err)?;
        medshare::Identity::from_pkcs8_pem(role, name, pem)
            .map(hold_key)
            .map_err(js_err)
    }

    #[wasm_bindgen(js_name = toKeyFile)]
    pub fn to_key_file(&self, passphrase: &str) -> JsResult<String> {
        self.0.to_key_file(passphrase).map_err(js_err)
    }

    pub fn rotated(&self) -> JsResult<WasmIdentity> {
        self.0.rotated().map(hold_key).map_err(js_err)
    }

    pub fn id(&self) -> String {
        self.0.id().to_string()
    }

    #[wasm_bindgen(js_name = keyId)]
    pub fn key_id(&self) -> String {
        self.0.key_id().to_string()
    }

    pub fn role(&self) -> String {
        self.0.role().as_str().to_owned()
    }

    pub fn name(&self) -> String {
        self.0.name().to_owned()
    }

    pub fn bits(&self) -> u32 {
        self.0.public().bits() as u32
    }

    #[wasm_bindgen(js_name = publicKeyPem)]
    pub fn public_key_pem(&self) -> String {
        self.0.public().to_pem()
    }
}

/// An authority's endorsement of a doctor (wrapped by the package's `Endorsement`).
#[wasm_bindgen(skip_typescript)]
pub struct WasmEndorsement(medshare::Endorsement);

#[wasm_bindgen]
impl WasmEndorsement {
    pub fn sign(
        authority: &WasmIdentity,
        genesis: &str,
        doctor: &str,
        licence: &str,
    ) -> JsResult<WasmEndorsement> {
        let genesis = medshare::parse_cid(genesis).map_err(js_err)?;
        medshare::Endorsement::sign(&authority.0, &genesis, &identity_id(doctor)?, licence)
            .map(WasmEndorsement)
            .map_err(js_err)
    }

    #[wasm_bindgen(js_name = fromText)]
    pub fn from_text(text: &str) -> JsResult<WasmEndorsement> {
        medshare::Endorsement::from_text(text)
            .map(WasmEndorsement)
            .map_err(js_err)
    }

    #[wasm_bindgen(js_name = toText)]
    pub fn to_text(&self) -> String {
        self.0.to_text()
    }

    pub fn doctor(&self) -> String {
        self.0.doctor.to_string()
    }

    pub fn licence(&self) -> String {
        self.0.licence.clone()
    }

    pub fn authority(&self) -> String {
        self.0.authority.to_string()
    }
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

/// Collects plaintext on the JS side (no wasm-memory copy of the whole record): straight into
/// one `Uint8Array` of the record's size when it is known first (`sized`), else as chunks
/// joined once at the end.
#[derive(Default)]
struct JsWriter {
    chunks: Vec<Uint8Array>,
    len: u32,
    /// The output allocated once, when the plaintext's size is known before the first byte.
    whole: Option<Uint8Array>,
}

fn too_large() -> std::io::Error {
    std::io::Error::other("a record over 4 GiB does not fit a Uint8Array")
}

impl std::io::Write for JsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = u32::try_from(buf.len()).map_err(|_| too_large())?;
        let end = self.len.checked_add(n).ok_or_else(too_large)?;
        if n == 0 {
            return Ok(0);
        }
        match &self.whole {
            Some(whole) if end <= whole.length() => whole.subarray(self.len, end).copy_from(buf),
            _ => {
                // More than announced (never, for an authenticated record): kept in pieces.
                if let Some(whole) = self.whole.take() {
                    self.chunks.push(whole.subarray(0, self.len));
                }
                self.chunks.push(Uint8Array::from(buf));
            }
        }
        self.len = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl JsWriter {
    /// A writer whose output is allocated once, `size` bytes.
    fn sized(size: u64) -> medshare::Result<JsWriter> {
        let size = u32::try_from(size).map_err(|_| medshare::Error::Io(too_large()))?;
        Ok(JsWriter {
            whole: Some(Uint8Array::new_with_length(size)),
            ..JsWriter::default()
        })
    }

    fn join(self) -> Uint8Array {
        if let Some(whole) = self.whole {
            return if self.len == whole.length() {
                whole
            } else {
                whole.slice(0, self.len)
            };
        }
        let out = Uint8Array::new_with_length(self.len);
        let mut at = 0;
        for c in self.chunks {
            out.set(&c, at);
            at += c.length();
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The vault

/// A medshare vault (wrapped by the package's `Vault`). Calls on one vault run one at a time.
#[wasm_bindgen(skip_typescript)]
pub struct WasmVault {
    inner: Rc<async_lock::Mutex<medshare::Vault>>,
}

fn vault_value(v: medshare::Result<medshare::Vault>) -> JsResult<JsValue> {
    Ok(WasmVault {
        inner: Rc::new(async_lock::Mutex::new(v.map_err(js_err)?)),
    }
    .into())
}

impl WasmVault {
    fn run<F>(&self, f: F) -> Promise
    where
        F: AsyncFnOnce(&mut medshare::Vault) -> JsResult<JsValue> + 'static,
    {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut guard = inner.lock().await;
            guard.set_offload(web_crypto());
            f(&mut guard).await
        })
    }
}

const NETWORK: &str = "medshare-local";

#[wasm_bindgen]
impl WasmVault {
    pub fn memory() -> Promise {
        future_to_promise(async move { vault_value(medshare::Vault::memory(NETWORK, None).await) })
    }

    #[wasm_bindgen(js_name = openOrCreate)]
    pub fn open_or_create(authority: &WasmIdentity, store: Option<JsStore>) -> Promise {
        let authority = authority.0.clone();
        future_to_promise(async move {
            let store = store.map_or_else(memory_store, js_store);
            vault_value(medshare::Vault::open_or_create(store, NETWORK, Some(authority)).await)
        })
    }

    #[wasm_bindgen(js_name = withStore)]
    pub fn with_store(store: JsStore) -> Promise {
        future_to_promise(async move {
            vault_value(medshare::Vault::open_or_create(js_store(store), NETWORK, None).await)
        })
    }

    /// A vault on a network: transactions to the validators' RPC, blocks through the kubo RPC
    /// (read and write) or trustless gateways (read-only), all with `fetch`.
    pub fn connect(
        nodes: Vec<String>,
        genesis: String,
        kubo: Option<String>,
        gateways: Vec<String>,
        timeout_ms: f64,
    ) -> Promise {
        future_to_promise(async move {
            let http: Arc<dyn Http> = Arc::new(FetchHttp);
            let genesis = medshare::parse_cid(&genesis).map_err(js_err)?;
            let store = match kubo {
                Some(url) => {
                    let c = medshare::store::kubo::KuboConfig::parse(&url).map_err(js_err)?;
                    Store::new(Host::new(medshare::store::kubo::KuboStore::with_http(
                        c,
                        http.clone(),
                    )))
                }
                None => Store::new(Host::new(
                    medshare::store::gateway::GatewayStore::new(gateways, http.clone())
                        .map_err(js_err)?,
                )),
            };
            let seq = medshare::sequencer::comet::CometSequencer::with_http(nodes, http)
                .map_err(js_err)?
                .with_timeout(Duration::from_millis(timeout_ms.max(1000.0) as u64));
            // The core takes an `Arc<dyn Sequencer>`; wasm32 has one thread, so nothing is shared.
            #[allow(clippy::arc_with_non_send_sync)]
            let seq = Arc::new(seq);
            vault_value(medshare::Vault::open(store, Some(seq), Some(&genesis)).await)
        })
    }

    #[wasm_bindgen(js_name = importCar)]
    pub fn import_car(car: Uint8Array, store: Option<JsStore>, genesis: Option<String>) -> Promise {
        let car = car.to_vec();
        future_to_promise(async move {
            let store = store.map_or_else(memory_store, js_store);
            let genesis = genesis
                .as_deref()
                .map(medshare::parse_cid)
                .transpose()
                .map_err(js_err)?;
            let now = medshare::platform::now_secs();
            vault_value(
                medshare::Vault::import_car(store, car.as_slice(), genesis.as_ref(), now)
                    .await
                    .map(|(v, _)| v),
            )
        })
    }

    #[wasm_bindgen(js_name = registerPatient)]
    pub fn register_patient(&self, identity: &WasmIdentity) -> Promise {
        let identity = identity.0.clone();
        self.run(async move |v| {
            Ok(v.register(&identity, None)
                .await
                .map_err(js_err)?
                .to_string()
                .into())
        })
    }

    #[wasm_bindgen(js_name = registerDoctor)]
    pub fn register_doctor(
        &self,
        identity: &WasmIdentity,
        endorsement: &WasmEndorsement,
    ) -> Promise {
        let identity = identity.0.clone();
        let e = endorsement.0.clone();
        self.run(async move |v| {
            Ok(v.register(&identity, Some(&e))
                .await
                .map_err(js_err)?
                .to_string()
                .into())
        })
    }

    pub fn publish(
        &self,
        patient: &WasmIdentity,
        data: Uint8Array,
        name: String,
        media_type: String,
        on_progress: Option<Function>,
        emergency: bool,
    ) -> Promise {
        let patient = patient.0.clone();
        let meta = Metadata {
            name,
            media_type,
            size: u64::from(data.length()),
        };
        let data = JsReader { data, pos: 0 };
        let mut progress = progress_of(on_progress);
        let options = medshare::PublishOptions { emergency };
        self.run(async move |v| {
            let id = v
                .publish_with(&patient, data, meta, options, &mut progress)
                .await;
            Ok(id.map_err(js_err)?.to_string().into())
        })
    }

    #[wasm_bindgen(js_name = enableEmergency)]
    pub fn enable_emergency(&self, patient: &WasmIdentity, record: &str) -> Promise {
        let patient = patient.0.clone();
        let record = record_id(record);
        self.run(async move |v| {
            let tx = v.enable_emergency(&patient, &record?).await;
            Ok(tx.map_err(js_err)?.to_string().into())
        })
    }

    #[wasm_bindgen(js_name = requestEmergency)]
    pub fn request_emergency(
        &self,
        doctor: &WasmIdentity,
        record: &str,
        justification: String,
        window_secs: Option<f64>,
    ) -> Promise {
        let doctor = doctor.0.clone();
        let record = record_id(record);
        let window = window_secs.map(|s| Duration::from_secs(s as u64));
        self.run(async move |v| {
            let tx = v
                .request_emergency(&doctor, &record?, &justification, window)
                .await;
            Ok(tx.map_err(js_err)?.to_string().into())
        })
    }

    #[wasm_bindgen(js_name = releaseShare)]
    pub fn release_share(&self, authority: &WasmIdentity, request: &str) -> Promise {
        let authority = authority.0.clone();
        let request = medshare::parse_cid(request).map_err(js_err);
        self.run(async move |v| {
            let tx = v.release_share(&authority, &request?).await;
            Ok(tx.map_err(js_err)?.to_string().into())
        })
    }

    #[wasm_bindgen(js_name = reviewEmergency)]
    pub fn review_emergency(
        &self,
        authority: &WasmIdentity,
        request: &str,
        outcome: &str,
    ) -> Promise {
        let authority = authority.0.clone();
        let args = medshare::parse_cid(request)
            .and_then(|r| Ok((r, medshare::ReviewOutcome::from_str(outcome)?)))
            .map_err(js_err);
        self.run(async move |v| {
            let (request, outcome) = args?;
            let tx = v.review_emergency(&authority, &request, outcome).await;
            Ok(tx.map_err(js_err)?.to_string().into())
        })
    }

    pub fn emergencies(&self, unreviewed: bool) -> Promise {
        self.run(async move |v| to_js(&v.emergencies(unreviewed)))
    }

    #[wasm_bindgen(js_name = emergencyStatus)]
    pub fn emergency_status(&self, doctor: &WasmIdentity, request: &str) -> Promise {
        let doctor = doctor.0.clone();
        let request = medshare::parse_cid(request).map_err(js_err);
        self.run(async move |v| to_js(&v.emergency_status(&doctor, &request?).map_err(js_err)?))
    }

    #[wasm_bindgen(js_name = emergencyJustification)]
    pub fn emergency_justification(&self, identity: &WasmIdentity, request: &str) -> Promise {
        let identity = identity.0.clone();
        let request = medshare::parse_cid(request).map_err(js_err);
        self.run(async move |v| {
            let j = v
                .emergency_justification(&identity, &request?)
                .map_err(js_err)?;
            Ok(JsValue::from_str(&j))
        })
    }

    pub fn rekey(&self, patient: &WasmIdentity, record: &str) -> Promise {
        let patient = patient.0.clone();
        let record = record_id(record);
        self.run(async move |v| {
            let version = v.rekey(&patient, &record?).await.map_err(js_err)?;
            Ok(JsValue::from_f64(f64::from(version)))
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn grant(
        &self,
        patient: &WasmIdentity,
        record: &str,
        doctor: &str,
        expires_at: Option<f64>,
        expires_in: Option<f64>,
        purpose: &str,
        note: Option<String>,
    ) -> Promise {
        let patient = patient.0.clone();
        let args = (|| -> JsResult<_> {
            let expires = match (expires_at, expires_in) {
                (Some(t), _) => Some(Expiry::At(t as u64)),
                (None, Some(s)) => Some(Expiry::After(Duration::from_secs(s as u64))),
                (None, None) => None,
            };
            let purpose = Purpose::from_str(purpose).map_err(js_err)?;
            Ok((
                record_id(record)?,
                identity_id(doctor)?,
                GrantOptions {
                    expires,
                    purpose,
                    note,
                },
            ))
        })();
        self.run(async move |v| {
            let (record, doctor, options) = args?;
            v.grant(&patient, &record, &doctor, options)
                .await
                .map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn revoke(&self, patient: &WasmIdentity, record: &str, doctor: &str) -> Promise {
        let patient = patient.0.clone();
        let ids = record_id(record).and_then(|r| Ok((r, identity_id(doctor)?)));
        self.run(async move |v| {
            let (record, doctor) = ids?;
            to_js(&v.revoke(&patient, &record, &doctor).await.map_err(js_err)?)
        })
    }

    #[wasm_bindgen(js_name = rotateKey)]
    pub fn rotate_key(&self, old: &WasmIdentity, new: &WasmIdentity) -> Promise {
        let (old, new) = (old.0.clone(), new.0.clone());
        self.run(async move |v| to_js(&v.rotate_key(&old, &new).await.map_err(js_err)?))
    }

    #[wasm_bindgen(js_name = openRecord)]
    pub fn open_record(
        &self,
        identity: &WasmIdentity,
        record: &str,
        on_progress: Option<Function>,
    ) -> Promise {
        let identity = identity.0.clone();
        let record = record_id(record);
        let mut progress = progress_of(on_progress);
        self.run(async move |v| {
            let record = record?;
            let sized = |m: &Metadata| JsWriter::sized(m.size);
            let (out, _) = v
                .open_record_sized(&identity, &record, sized, &mut progress)
                .await
                .map_err(js_err)?;
            Ok(out.join().into())
        })
    }

    pub fn metadata(&self, identity: &WasmIdentity, record: &str) -> Promise {
        let identity = identity.0.clone();
        let record = record_id(record);
        self.run(async move |v| to_js(&v.metadata(&identity, &record?).await.map_err(js_err)?))
    }

    #[wasm_bindgen(js_name = grantNote)]
    pub fn grant_note(&self, identity: &WasmIdentity, record: &str, doctor: &str) -> Promise {
        let identity = identity.0.clone();
        let ids = record_id(record).and_then(|r| Ok((r, identity_id(doctor)?)));
        self.run(async move |v| {
            let (record, doctor) = ids?;
            let note = v
                .grant_note(&identity, &record, &doctor)
                .await
                .map_err(js_err)?;
            Ok(note.map_or(JsValue::NULL, |n| JsValue::from_str(&n)))
        })
    }

    #[wasm_bindgen(js_name = recordsFor)]
    pub fn records_for(&self, who: &str) -> Promise {
        let who = identity_id(who);
        self.run(async move |v| to_js(&v.records_for(&who?).map_err(js_err)?))
    }

    pub fn record(&self, record: &str) -> Promise {
        let record = record_id(record);
        self.run(async move |v| to_js(&v.record(&record?).map_err(js_err)?))
    }

    #[wasm_bindgen(js_name = accessList)]
    pub fn access_list(&self, record: &str) -> Promise {
        let record = record_id(record);
        self.run(async move |v| to_js(&v.access_list(&record?).map_err(js_err)?))
    }

    pub fn audit(&self, record: &str) -> Promise {
        let record = record_id(record);
        self.run(async move |v| to_js(&v.audit(&record?).map_err(js_err)?))
    }

    pub fn verify(&self) -> Promise {
        self.run(async move |v| to_js(&v.verify().await.map_err(js_err)?))
    }

    /// `record` (with `patient` empty) or every record of `patient` as a FHIR Bundle (JSON text).
    pub fn fhir(&self, record: String, patient: String, version: String) -> Promise {
        let scope = if patient.is_empty() {
            record_id(&record).map(medshare::FhirScope::Record)
        } else {
            identity_id(&patient).map(medshare::FhirScope::Patient)
        };
        let version = version.parse::<medshare::FhirVersion>().map_err(js_err);
        self.run(async move |v| {
            let b = v.fhir(&scope?, version?).await.map_err(js_err)?;
            Ok(JsValue::from_str(&b.to_string()))
        })
    }

    /// A receipt of transaction `tx` (JSON text), checkable offline with `verifyReceipt`.
    pub fn receipt(&self, tx: String) -> Promise {
        let tx = medshare::parse_cid(&tx).map_err(js_err);
        self.run(async move |v| {
            let r = v.receipt(&tx?).await.map_err(js_err)?;
            Ok(JsValue::from_str(&r.to_json()))
        })
    }

    /// The largest checkpoint verified (JSON text), or null.
    #[wasm_bindgen(js_name = trustedCheckpoint)]
    pub fn trusted_checkpoint(&self) -> Promise {
        self.run(async move |v| {
            let cp = v.trusted_checkpoint().await.map_err(js_err)?;
            Ok(match cp {
                Some(c) => JsValue::from_str(&serde_json::to_string(&c).unwrap_or_default()),
                None => JsValue::NULL,
            })
        })
    }

    /// Trusts a checkpoint kept from an earlier session (the JSON `trustedCheckpoint` gave).
    #[wasm_bindgen(js_name = trustCheckpoint)]
    pub fn trust_checkpoint(&self, checkpoint: String) -> Promise {
        let cp = medshare::ledger::Checkpoint::from_json(&checkpoint).map_err(js_err);
        self.run(async move |v| {
            v.trust_checkpoint(cp?).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = verifyContent)]
    pub fn verify_content(&self) -> Promise {
        self.run(async move |v| to_js(&v.verify_content().await.map_err(js_err)?))
    }

    pub fn sync(&self) -> Promise {
        self.run(async move |v| Ok((v.sync().await.map_err(js_err)? as f64).into()))
    }

    #[wasm_bindgen(js_name = exportCar)]
    pub fn export_car(&self) -> Promise {
        self.run(async move |v| {
            let mut out = Vec::new();
            let report = v.export_car(&mut out).await.map_err(js_err)?;
            let result = js_sys::Object::new();
            set(&result, "car", &Uint8Array::from(out.as_slice()).into());
            set(&result, "report", &to_js(&report)?);
            Ok(result.into())
        })
    }

    pub fn head(&self) -> Promise {
        self.run(async move |v| Ok(v.head().to_string().into()))
    }

    pub fn genesis(&self) -> Promise {
        self.run(async move |v| Ok(v.genesis().to_string().into()))
    }

    pub fn height(&self) -> Promise {
        self.run(async move |v| Ok((v.height() as f64).into()))
    }
}

/// The root CID `ipfs add` prints for `data` under `profile`.
#[wasm_bindgen(skip_typescript)]
pub fn cid(data: &[u8], profile: &str) -> JsResult<String> {
    let profile = Profile::from_str(profile).map_err(js_err)?;
    Ok(medshare::cid(data, profile).to_string())
}

/// Opens a raw envelope as `identity`; returns the plaintext.
#[wasm_bindgen(js_name = openEnvelope, skip_typescript)]
pub fn open_envelope(identity: &WasmIdentity, envelope: &[u8]) -> JsResult<Vec<u8>> {
    let mut out = Vec::new();
    medshare::envelope::open(&identity.0, envelope, &mut out).map_err(js_err)?;
    Ok(out)
}

/// `[[code, category], …]` for every core error code.
#[wasm_bindgen(js_name = errorCatalog, skip_typescript)]
pub fn error_catalog() -> JsValue {
    medshare::ErrorCode::all()
        .map(|c| {
            JsValue::from(Array::of2(
                &JsValue::from_str(c.as_str()),
                &JsValue::from_str(c.category().as_str()),
            ))
        })
        .collect::<Array>()
        .into()
}

/// Checks a receipt (JSON text) offline against the network `genesis`; what it proves.
#[wasm_bindgen(js_name = verifyReceipt, skip_typescript)]
pub fn verify_receipt(receipt: &str, genesis: &str) -> JsResult<JsValue> {
    let genesis = medshare::parse_cid(genesis).map_err(js_err)?;
    let facts = medshare::ledger::Receipt::from_json(receipt)
        .and_then(|r| r.verify(&genesis))
        .map_err(js_err)?;
    to_js(&facts)
}

/// A light client (wrapped by the package's `LightClient`): proven answers about the access
/// state from a node, over `fetch`.
#[wasm_bindgen(skip_typescript)]
pub struct WasmLightClient {
    inner: Rc<medshare::sequencer::light::LightClient>,
}

#[wasm_bindgen]
impl WasmLightClient {
    pub fn connect(nodes: Vec<String>, genesis: String, trust: Option<String>) -> Promise {
        future_to_promise(async move {
            let http: Arc<dyn Http> = Arc::new(FetchHttp);
            let genesis = medshare::parse_cid(&genesis).map_err(js_err)?;
            let seq = medshare::sequencer::comet::CometSequencer::with_http(nodes, http)
                .map_err(js_err)?;
            let c =
                medshare::sequencer::light::LightClient::connect(seq, &genesis, trust.as_deref())
                    .await
                    .map_err(js_err)?;
            Ok(WasmLightClient { inner: Rc::new(c) }.into())
        })
    }

    #[wasm_bindgen(js_name = accessList)]
    pub fn access_list(&self, record: String) -> Promise {
        let c = self.inner.clone();
        future_to_promise(async move {
            let record: medshare::RecordId = record.parse().map_err(js_err)?;
            match c.access_list(&record).await.map_err(js_err)? {
                Some(a) => to_js(&a),
                None => Ok(JsValue::NULL),
            }
        })
    }

    #[wasm_bindgen(js_name = recordsOf)]
    pub fn records_of(&self, doctor: String) -> Promise {
        let c = self.inner.clone();
        future_to_promise(async move {
            let doctor: medshare::IdentityId = doctor.parse().map_err(js_err)?;
            to_js(&c.records_of(&doctor).await.map_err(js_err)?)
        })
    }

    pub fn checkpoint(&self) -> Option<String> {
        self.inner.checkpoint().map(|c| c.to_json())
    }

    pub fn trust(&self) -> String {
        self.inner.trust()
    }
}

/// `[[code, display], …]` for every purpose code.
#[wasm_bindgen(skip_typescript)]
pub fn purposes() -> JsValue {
    Purpose::ALL
        .iter()
        .map(|p| {
            JsValue::from(Array::of2(
                &JsValue::from_str(p.code()),
                &JsValue::from_str(p.display()),
            ))
        })
        .collect::<Array>()
        .into()
}
