//! A block store backed by a real IPFS node (kubo) over its HTTP RPC API.
//!
//! Blocks go through `/api/v0/block/put|get|stat|rm` with the CID's codec and sha2-256, so kubo
//! stores them under exactly the CIDs medshare computes, and `ipfs cat <root>` returns a
//! published envelope byte for byte. Batches of record blocks go as one CAR stream through
//! `/api/v0/dag/import`. Ledger objects are pinned directly, one by one; the root of every
//! current record version is pinned recursively ([`BlockStore::pin`]) and unpinned when the
//! version is retired, so `ipfs repo gc` never removes a readable record and always removes a
//! revoked one. An optional bearer token is sent on every call (pinning services front kubo
//! that way).
//!
//! **Head pointer.** The head lives in the node's MFS at `<namespace>/HEAD` (default
//! `/medshare/HEAD`). Compare-and-swap holds a lock that is a directory in MFS
//! (`<namespace>/LOCK`, created with `files/mkdir` without `parents`, which fails if it exists),
//! so writers in several processes, or on several machines, sharing one node never interleave.
//! A lock older than 30 s is taken to be left by a crashed writer and broken. With
//! [`KuboConfig::publish_key`] every new head is also published under that IPNS key; a replica
//! on another node sets [`KuboConfig::follow`] to the IPNS name, reads the head from IPNS and
//! fetches the blocks through IPFS (bitswap), verifying everything.
//!
//! Calls go through [`crate::net::Http`] (natively the `http` feature's client, in a browser
//! `fetch`), time out, and are retried a few times when the node cannot be reached; a node that
//! is down or answers garbage gives [`Error::Backend`] naming the node and the call. Every
//! block fetched is hash-checked by [`crate::Store`] like any other backend's.

use std::sync::Arc;
use std::time::Duration;

use crate::cid::{Cid, DAG_CBOR, DAG_PB, RAW};
use crate::error::{Error, Result};
use crate::net::{Http, HttpRequest, query_escape};
use crate::store::{Block, BlockStore, head_conflict};

/// How to reach a kubo node.
#[derive(Clone, Debug)]
pub struct KuboConfig {
    /// RPC base URL, e.g. `http://127.0.0.1:5001`.
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer …`, if any.
    pub token: Option<String>,
    /// Timeout of one call (a block fetch from the network included).
    pub timeout: Duration,
    /// Attempts on connection failures (1 = no retry).
    pub attempts: u32,
    /// MFS directory holding `HEAD` and `LOCK`.
    pub namespace: String,
    /// The name of a key in the node's keystore under which every new head is also published
    /// to IPNS, so replicas on other nodes can find it.
    pub publish_key: Option<String>,
    /// Replica side: an IPNS name (`k51…`) to read the head from, instead of the local MFS file.
    /// Such a store is read-only for the head (compare-and-swap refuses).
    pub follow: Option<String>,
}

impl KuboConfig {
    /// Defaults for `url`: no token, 60 s timeout, 3 attempts, `/medshare`.
    pub fn new(url: &str) -> KuboConfig {
        KuboConfig {
            url: url.trim_end_matches('/').to_owned(),
            token: None,
            timeout: Duration::from_secs(60),
            attempts: 3,
            namespace: "/medshare".into(),
            publish_key: None,
            follow: None,
        }
    }

    /// Parses `URL[,ipns-key=NAME][,follow=IPNS-NAME][,namespace=/PATH]` (the CLI's
    /// `--store kubo=…` and the bindings' store strings).
    pub fn parse(spec: &str) -> Result<KuboConfig> {
        let mut parts = spec.split(',');
        let url = parts.next().unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "kubo RPC URL `{}` is not an http(s) URL",
                crate::text::escape(url)
            )));
        }
        let mut c = KuboConfig::new(url);
        for opt in parts {
            match opt.split_once('=') {
                Some(("ipns-key", k)) => c.publish_key = Some(k.to_owned()),
                Some(("follow", n)) => c.follow = Some(n.to_owned()),
                Some(("namespace", n)) if n.starts_with('/') => c.namespace = n.to_owned(),
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "unknown kubo store option `{}` (ipns-key=NAME, follow=IPNS-NAME, namespace=/PATH)",
                        crate::text::escape(opt)
                    )));
                }
            }
        }
        Ok(c)
    }
}

/// The kubo RPC store.
pub struct KuboStore {
    config: KuboConfig,
    http: Arc<dyn Http>,
    /// The `dag/import`s data blocks are streaming into (native targets).
    #[cfg(not(target_arch = "wasm32"))]
    streams: std::sync::Mutex<stream::Streams>,
}

/// Imports still open when the store goes are finished (their errors have no one to go to: a
/// caller that needs the blocks flushes first, as the vault does before it pins and moves the
/// head; blocks of a publish that failed half-way are sent too, unpinned).
impl Drop for KuboStore {
    fn drop(&mut self) {
        let _ = self.settle();
    }
}

impl std::fmt::Debug for KuboStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KuboStore({})", self.config.url)
    }
}

enum Answer {
    Ok(Vec<u8>),
    /// The node answered with an error message (HTTP 500 and a JSON `Message`).
    Refused(String),
}

fn codec_name(codec: u64) -> &'static str {
    match codec {
        RAW => "raw",
        DAG_PB => "dag-pb",
        DAG_CBOR => "dag-cbor",
        _ => "raw",
    }
}

/// `multipart/form-data` with one file part (what kubo's `block/put`, `files/write` and
/// `dag/import` read), `fill` appending the part's bytes in place (no second copy of them).
fn multipart(
    len: usize,
    fill: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<(String, Vec<u8>)> {
    let mut rand = [0u8; 12];
    let _ = getrandom::fill(&mut rand);
    let boundary = format!("medshare-{}", data_encoding::HEXLOWER.encode(&rand));
    let mut body = Vec::with_capacity(len + 224);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        b"Content-Disposition: form-data; name=\"file\"; filename=\"block\"\r\n",
    );
    body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
    fill(&mut body)?;
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

/// Builds a request's form body, once per attempt (a sent body is gone).
type Form<'a> = &'a (dyn Fn() -> Result<(String, Vec<u8>)> + Sync);

/// The `"field":"value"` string of a JSON answer (kubo's answers here are objects).
fn json_field(body: &[u8], field: &str) -> Option<String> {
    // Streaming answers hold several objects, one per line: the first with the field wins.
    for line in body.split(|&b| b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
            && let Some(s) = crate::net::json_str(&v, field)
        {
            return Some(s);
        }
    }
    None
}

/// Checks `dag/import`'s answer (JSON objects, one per line; the stats one counts the blocks
/// kubo took) against the blocks sent.
fn took_all(answer: &[u8], sent: u64) -> Result<()> {
    let count = answer.split(|&b| b == b'\n').find_map(|line| {
        serde_json::from_slice::<serde_json::Value>(line)
            .ok()?
            .get("Stats")?
            .get("BlockCount")?
            .as_u64()
    });
    match count {
        Some(n) if n == sent => Ok(()),
        other => Err(Error::Backend(format!(
            "kubo dag/import took {other:?} blocks of {sent} sent"
        ))),
    }
}

const LOCK_STALE_SECS: u64 = 30;

impl KuboStore {
    /// A store over the node at `config.url`, with the platform's HTTP client. Nothing is
    /// contacted until the first call.
    pub fn new(config: KuboConfig) -> Result<KuboStore> {
        Ok(KuboStore::with_http(config, crate::net::default_http()?))
    }

    /// A store over the node at `config.url` using `http`.
    pub fn with_http(config: KuboConfig, http: Arc<dyn Http>) -> KuboStore {
        KuboStore {
            config,
            http,
            #[cfg(not(target_arch = "wasm32"))]
            streams: std::sync::Mutex::new(stream::Streams::default()),
        }
    }

    /// The node's RPC URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Calls `/api/v0/<path>` with `query` and an optional multipart body.
    async fn call(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer> {
        match body {
            Some(data) => {
                let form = || {
                    multipart(data.len(), |out| {
                        out.extend_from_slice(data);
                        Ok(())
                    })
                };
                self.call_form(path, query, Some(&form)).await
            }
            None => self.call_form(path, query, None).await,
        }
    }

    /// [`KuboStore::call`] with a form body built by `form`.
    async fn call_form(
        &self,
        path: &str,
        query: &[(&str, &str)],
        form: Option<Form<'_>>,
    ) -> Result<Answer> {
        let mut url = format!("{}/api/v0/{path}", self.config.url);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&query_escape(v));
        }
        let mut last = String::new();
        for attempt in 0..self.config.attempts.max(1) {
            if attempt > 0 {
                self.http.sleep(Duration::from_millis(100 << attempt)).await;
            }
            let mut req = match form {
                Some(form) => {
                    let (ctype, body) = form()?;
                    HttpRequest::post(&url, Some(body)).header("Content-Type", &ctype)
                }
                None => HttpRequest::post(&url, None),
            }
            .timeout(self.config.timeout);
            req.max_response = crate::limits::MAX_BLOCK_SIZE as u64 + 4096;
            if let Some(t) = &self.config.token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let resp = match self.http.send(req).await {
                Ok(r) => r,
                Err(Error::Unavailable(e)) => {
                    last = e;
                    continue;
                }
                Err(Error::Timeout(e)) => {
                    return Err(Error::Backend(format!(
                        "kubo at {}: {path}: timed out ({e})",
                        self.config.url
                    )));
                }
                Err(e) => return Err(e),
            };
            return self.interpret(path, resp);
        }
        Err(Error::Backend(format!(
            "kubo at {} is unreachable: {last}",
            self.config.url
        )))
    }

    /// What an answer of kubo's to `path` means: its body, a refusal with kubo's message, or
    /// a backend error (credentials refused, an answer that is not kubo's).
    fn interpret(&self, path: &str, resp: crate::net::HttpResponse) -> Result<Answer> {
        match resp.status {
            200 => Ok(Answer::Ok(resp.body)),
            401 | 403 => Err(Error::Backend(format!(
                "kubo at {} refused the credentials ({})",
                self.config.url, resp.status
            ))),
            status => match json_field(&resp.body, "Message") {
                Some(m) => Ok(Answer::Refused(m)),
                None => Err(Error::Backend(format!(
                    "kubo at {}: {path}: unexpected HTTP {status}: {}",
                    self.config.url,
                    crate::text::escape(&String::from_utf8_lossy(
                        &resp.body[..resp.body.len().min(200)]
                    ))
                ))),
            },
        }
    }

    async fn ok(&self, path: &str, query: &[(&str, &str)], body: Option<&[u8]>) -> Result<Vec<u8>> {
        let answer = self.call(path, query, body).await?;
        self.accepted(path, answer)
    }

    /// The body of an `Ok` answer; a refusal as a backend error naming the node and the call.
    fn accepted(&self, path: &str, answer: Answer) -> Result<Vec<u8>> {
        match answer {
            Answer::Ok(b) => Ok(b),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: {path}: {m}",
                self.config.url
            ))),
        }
    }

    /// Finishes the imports data blocks are streaming into: every call but `put_many` does
    /// this first, so the blocks put before it are on the node (and kubo's count of them
    /// checked) before anything reads, pins or names them. Each thread streams into its own
    /// import, so a failed one is exactly its writer's error: this call's if it is that thread,
    /// else that thread's next call's. Other calls wait meanwhile.
    fn settle(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut streams = self
                .streams
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            streams.finish_all(self);
            if let Some(e) = streams.failed.remove(&std::thread::current().id()) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Appends data blocks to this thread's import, starting one if none is open; an earlier
    /// import of this thread that failed is this call's error.
    #[cfg(not(target_arch = "wasm32"))]
    fn stream(&self, data: &[&Block]) -> Result<()> {
        let me = std::thread::current().id();
        let mut streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = streams.failed.remove(&me) {
            return Err(e);
        }
        let Some(first) = data.first() else {
            return Ok(());
        };
        let import = match streams.open.entry(me) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(stream::Import::start(self, &first.cid)?)
            }
        };
        if let Err(e) = import.write(data) {
            // The request ended early: its own error says why.
            let failed = streams.open.remove(&me).map(|i| i.finish(self));
            return match failed {
                Some(Err(why)) => Err(why),
                _ => Err(e),
            };
        }
        Ok(())
    }

    /// Direct pins (the objects, not what they link to), one `pin/add` per 1024.
    async fn pin_direct(&self, cids: &[Cid]) -> Result<()> {
        for chunk in cids.chunks(1024) {
            let text: Vec<String> = chunk.iter().map(Cid::to_string).collect();
            let mut query: Vec<(&str, &str)> = text.iter().map(|c| ("arg", c.as_str())).collect();
            query.push(("recursive", "false"));
            self.ok("pin/add", &query, None).await?;
        }
        Ok(())
    }

    /// One `dag/import` of `blocks` as a CAR stream (kubo writes them in one batch), checking
    /// that kubo took every block.
    async fn import(&self, blocks: &[&Block]) -> Result<()> {
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        // The CAR is written straight into the form body.
        let form = || {
            multipart(
                blocks.iter().map(|b| b.data.len() + 48).sum::<usize>() + 64,
                |out| {
                    let mut car = crate::car::CarWriter::new(out, &[first.cid])?;
                    for b in blocks {
                        car.write_block(&b.cid, &b.data)?;
                    }
                    car.finish().map(|_| ())
                },
            )
        };
        let answer = self
            .call_form(
                "dag/import",
                &[("pin-roots", "false"), ("stats", "true")],
                Some(&form),
            )
            .await?;
        let answer = self.accepted("dag/import", answer)?;
        took_all(&answer, blocks.len() as u64)
    }

    /// Stores ledger objects (DAG-CBOR: blocks, transactions, certificates) with one
    /// `dag/import`, and pins them directly with one `pin/add`: a recursive pin
    /// of the head would also pin every record version the chain links to, and revocation must
    /// be able to remove old versions from the node.
    async fn put_ledger(&self, blocks: &[&Block]) -> Result<()> {
        for chunk in blocks.chunks(1024) {
            self.import(chunk).await?;
            let cids: Vec<Cid> = chunk.iter().map(|b| b.cid).collect();
            self.pin_direct(&cids).await?;
        }
        Ok(())
    }

    fn ns(&self) -> &str {
        self.config.namespace.trim_end_matches('/')
    }

    async fn read_head(&self) -> Result<Option<Cid>> {
        let path = format!("{}/HEAD", self.ns());
        match self.call("files/read", &[("arg", &path)], None).await? {
            Answer::Ok(b) => {
                let text = String::from_utf8(b)
                    .map_err(|_| Error::StoreCorrupt("kubo HEAD is not text".into()))?;
                text.trim()
                    .parse()
                    .map(Some)
                    .map_err(|e| Error::StoreCorrupt(format!("kubo HEAD: {e}")))
            }
            Answer::Refused(m) if m.contains("does not exist") || m.contains("not found") => {
                Ok(None)
            }
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: files/read: {m}",
                self.config.url
            ))),
        }
    }

    /// The CID an IPNS name points to (`/ipfs/<cid>`), or `None` if it resolves to nothing yet.
    async fn resolve_ipns(&self, name: &str) -> Result<Option<Cid>> {
        let arg = format!("/ipns/{name}");
        // nocache: a follower must see the newest head, not the node's cached answer.
        match self
            .call("name/resolve", &[("arg", &arg), ("nocache", "true")], None)
            .await?
        {
            Answer::Ok(b) => {
                let path = json_field(&b, "Path").ok_or_else(|| {
                    Error::Backend(format!("kubo name/resolve answered garbage for {name}"))
                })?;
                let cid = path.strip_prefix("/ipfs/").unwrap_or(&path);
                Ok(Some(cid.parse()?))
            }
            Answer::Refused(m) if m.contains("not found") || m.contains("could not resolve") => {
                Ok(None)
            }
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: name/resolve {name}: {m}",
                self.config.url
            ))),
        }
    }

    /// Creates (or finds) the node keystore key `name` and returns its IPNS name (`k51…`).
    pub async fn ipns_key(&self, name: &str) -> Result<String> {
        let list = self.ok("key/list", &[("l", "true")], None).await?;
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&list)
            && let Some(keys) = v.get("Keys").and_then(|k| k.as_array())
        {
            for k in keys {
                if crate::net::json_str(k, "Name").as_deref() == Some(name)
                    && let Some(id) = crate::net::json_str(k, "Id")
                {
                    return Ok(id);
                }
            }
        }
        let made = self
            .ok("key/gen", &[("arg", name), ("type", "ed25519")], None)
            .await?;
        json_field(&made, "Id")
            .ok_or_else(|| Error::Backend(format!("kubo key/gen answered garbage for {name}")))
    }

    /// The roots pinned recursively on the node (what `ipfs pin ls --type=recursive` lists).
    pub async fn recursive_pins(&self) -> Result<Vec<Cid>> {
        self.settle()?;
        let b = self
            .ok("pin/ls", &[("type", "recursive"), ("stream", "true")], None)
            .await?;
        let mut out = Vec::new();
        for line in b.split(|&c| c == b'\n') {
            if let Some(c) = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| crate::net::json_str(&v, "Cid"))
            {
                out.push(c.parse()?);
            }
        }
        Ok(out)
    }

    /// Takes the MFS lock (see the module docs); returns once held.
    async fn lock(&self) -> Result<()> {
        let lock = format!("{}/LOCK", self.ns());
        let now = crate::platform::now_secs();
        for attempt in 0..600u32 {
            // Make sure the namespace exists, then try to create the lock directory.
            let _ = self
                .call(
                    "files/mkdir",
                    &[("arg", self.ns()), ("parents", "true")],
                    None,
                )
                .await?;
            match self
                .call("files/mkdir", &[("arg", &lock), ("parents", "false")], None)
                .await?
            {
                Answer::Ok(_) => {
                    let stamp = format!("{}\n", crate::platform::now_secs());
                    self.ok(
                        "files/write",
                        &[
                            ("arg", &format!("{lock}/since")),
                            ("create", "true"),
                            ("truncate", "true"),
                        ],
                        Some(stamp.as_bytes()),
                    )
                    .await?;
                    return Ok(());
                }
                Answer::Refused(m) if m.contains("exists") => {
                    // Held: by a live writer (wait) or a crashed one (break it when stale).
                    let since = match self
                        .call("files/read", &[("arg", &format!("{lock}/since"))], None)
                        .await?
                    {
                        Answer::Ok(b) => String::from_utf8_lossy(&b).trim().parse().ok(),
                        Answer::Refused(_) => None,
                    };
                    let stale = since.map_or(attempt > 20, |s: u64| {
                        crate::platform::now_secs().saturating_sub(s) > LOCK_STALE_SECS
                    });
                    if stale {
                        let _ = self
                            .call("files/rm", &[("arg", &lock), ("recursive", "true")], None)
                            .await?;
                        continue;
                    }
                    self.http.sleep(Duration::from_millis(50)).await;
                }
                Answer::Refused(m) => {
                    return Err(Error::Backend(format!(
                        "kubo at {}: taking the head lock: {m}",
                        self.config.url
                    )));
                }
            }
            if crate::platform::now_secs().saturating_sub(now) > 2 * LOCK_STALE_SECS {
                break;
            }
        }
        Err(Error::StoreLocked(format!(
            "the head lock {lock} on kubo at {} stays held",
            self.config.url
        )))
    }

    async fn unlock(&self) -> Result<()> {
        let lock = format!("{}/LOCK", self.ns());
        self.ok("files/rm", &[("arg", &lock), ("recursive", "true")], None)
            .await
            .map(|_| ())
    }

    async fn swap_locked(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
        let current = self.read_head().await?;
        if current.as_ref() != expected {
            return Err(head_conflict(expected, current.as_ref()));
        }
        let head = format!("{}/HEAD", self.ns());
        match new {
            Some(cid) => {
                self.ok(
                    "files/write",
                    &[
                        ("arg", &head),
                        ("create", "true"),
                        ("truncate", "true"),
                        ("parents", "true"),
                    ],
                    Some(format!("{cid}\n").as_bytes()),
                )
                .await?;
                if let Some(key) = &self.config.publish_key {
                    let path = format!("/ipfs/{cid}");
                    self.ok(
                        "name/publish",
                        &[("arg", &path), ("key", key), ("allow-offline", "true")],
                        None,
                    )
                    .await?;
                }
            }
            None => {
                self.ok("files/rm", &[("arg", &head)], None).await?;
            }
        }
        Ok(())
    }
}

fn is_missing(message: &str) -> bool {
    message.contains("not found") || message.contains("ipld: could not find")
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlockStore for KuboStore {
    /// Data blocks stream into one `dag/import` per thread that stays open across calls
    /// (natively) instead of a `block/put` per block; in a browser each batch is one
    /// `dag/import`. Ledger objects go in their own import, because each is pinned on its own.
    async fn put_many(&self, blocks: &[Block]) -> Result<()> {
        let (ledger, data): (Vec<_>, Vec<_>) =
            blocks.iter().partition(|b| b.cid.codec() == DAG_CBOR);
        self.put_ledger(&ledger).await?;
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.stream(&data)
        }
        #[cfg(target_arch = "wasm32")]
        {
            for chunk in data.chunks(4096) {
                self.import(chunk).await?;
            }
            Ok(())
        }
    }

    /// Finishes the streaming imports (every call but `put_many` does too).
    async fn flush(&self) -> Result<()> {
        self.settle()
    }

    async fn put_many_unkept(&self, blocks: &[Block]) -> Result<()> {
        let refs: Vec<&Block> = blocks.iter().collect();
        for chunk in refs.chunks(4096) {
            self.import(chunk).await?;
        }
        Ok(())
    }

    /// HTTP calls, from any thread where there are threads.
    fn parallel_io(&self) -> bool {
        cfg!(not(target_arch = "wasm32"))
    }

    async fn keep(&self, objects: &[Cid]) -> Result<()> {
        self.settle()?;
        self.pin_direct(objects).await
    }

    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.settle()?;
        if cid.codec() == DAG_CBOR {
            return self
                .put_ledger(&[&Block {
                    cid: *cid,
                    data: data.to_vec(),
                }])
                .await;
        }
        let answer = self
            .ok(
                "block/put",
                &[
                    ("cid-codec", codec_name(cid.codec())),
                    ("mhtype", "sha2-256"),
                    ("pin", "false"),
                ],
                Some(data),
            )
            .await?;
        match json_field(&answer, "Key") {
            Some(k) if k == cid.to_string() => {}
            Some(k) => return Err(Error::Backend(format!("kubo stored {k} for {cid}"))),
            None => {
                return Err(Error::Backend(format!(
                    "kubo block/put answered garbage for {cid}"
                )));
            }
        }
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        self.settle()?;
        match self
            .call("block/get", &[("arg", &cid.to_string())], None)
            .await?
        {
            Answer::Ok(b) => Ok(Some(b)),
            Answer::Refused(m) if is_missing(&m) => Ok(None),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: block/get {cid}: {m}",
                self.config.url
            ))),
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.settle()?;
        match self
            .call(
                "block/stat",
                &[("arg", &cid.to_string()), ("offline", "true")],
                None,
            )
            .await?
        {
            Answer::Ok(_) => Ok(true),
            Answer::Refused(m) if is_missing(&m) || m.contains("offline") => Ok(false),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: block/stat {cid}: {m}",
                self.config.url
            ))),
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        self.settle()?;
        // A pinned block cannot be removed; unpin first (no-op when it is not a pinned root).
        self.unpin(cid).await?;
        match self
            .call(
                "block/rm",
                &[("arg", &cid.to_string()), ("force", "true")],
                None,
            )
            .await?
        {
            Answer::Ok(b) => match json_field(&b, "Error") {
                Some(e) if !e.is_empty() && !is_missing(&e) && !e.contains("pinned") => Err(
                    Error::Backend(format!("kubo at {}: block/rm {cid}: {e}", self.config.url)),
                ),
                _ => Ok(()),
            },
            Answer::Refused(m) if is_missing(&m) => Ok(()),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: block/rm {cid}: {m}",
                self.config.url
            ))),
        }
    }

    async fn head(&self) -> Result<Option<Cid>> {
        self.settle()?;
        match &self.config.follow {
            Some(name) => self.resolve_ipns(name).await,
            None => self.read_head().await,
        }
    }

    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
        self.settle()?;
        if self.config.follow.is_some() {
            return Err(Error::Backend(
                "a store following an IPNS name cannot move the head".into(),
            ));
        }
        self.lock().await?;
        let swapped = self.swap_locked(expected, new).await;
        let unlocked = self.unlock().await;
        swapped?;
        unlocked
    }

    async fn pin(&self, root: &Cid) -> Result<()> {
        self.settle()?;
        self.ok(
            "pin/add",
            &[("arg", &root.to_string()), ("recursive", "true")],
            None,
        )
        .await
        .map(|_| ())
    }

    async fn unpin(&self, root: &Cid) -> Result<()> {
        self.settle()?;
        match self
            .call("pin/rm", &[("arg", &root.to_string())], None)
            .await?
        {
            Answer::Ok(_) => Ok(()),
            Answer::Refused(m) if m.contains("not pinned") => Ok(()),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: pin/rm: {m}",
                self.config.url
            ))),
        }
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.settle()?;
        crate::store::check_meta_key(key)?;
        let path = format!("{}/meta/{key}", self.ns());
        match self.call("files/read", &[("arg", &path)], None).await? {
            Answer::Ok(b) => Ok(Some(b)),
            Answer::Refused(m) if m.contains("does not exist") || m.contains("not found") => {
                Ok(None)
            }
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: files/read {path}: {m}",
                self.config.url
            ))),
        }
    }

    async fn put_meta(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        self.settle()?;
        crate::store::check_meta_key(key)?;
        let path = format!("{}/meta/{key}", self.ns());
        match value {
            Some(v) => self
                .ok(
                    "files/write",
                    &[
                        ("arg", &path),
                        ("create", "true"),
                        ("truncate", "true"),
                        ("parents", "true"),
                    ],
                    Some(v),
                )
                .await
                .map(|_| ()),
            None => match self.call("files/rm", &[("arg", &path)], None).await? {
                Answer::Ok(_) => Ok(()),
                Answer::Refused(m) if m.contains("does not exist") || m.contains("not found") => {
                    Ok(())
                }
                Answer::Refused(m) => Err(Error::Backend(format!(
                    "kubo at {}: files/rm {path}: {m}",
                    self.config.url
                ))),
            },
        }
    }
}

/// `dag/import`s whose CAR is sent while it is written (native targets). A publish's data
/// blocks stream into one as they are sealed, one request for the whole record instead of one
/// per batch, so kubo imports as medshare seals and memory stays a few chunks. Each writing
/// thread has its own. The store finishes them, and checks kubo's count of the blocks each
/// took, before any other call ([`KuboStore::settle`]), so nothing reads, pins or names a
/// block that is still in flight.
///
/// A node that cannot be reached is tried again, as for every call, while nothing of the
/// import has been sent; one that goes away mid-import fails the publish (the blocks already
/// sent cannot be sent again), and one that refuses an import before reading all of it usually
/// shows as unreachable (it closes the connection while the body is still being written).
/// The HTTP client must block in its calls (the native one does): a client that only
/// buffers gets the whole import at once, when it is finished.
#[cfg(not(target_arch = "wasm32"))]
mod stream {
    use std::collections::HashMap;
    use std::io::{self, Read, Write};
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::thread::{JoinHandle, ThreadId};

    use crate::car::CarWriter;
    use crate::cid::Cid;
    use crate::error::{Error, Result};
    use crate::net::{Http, HttpRequest, HttpResponse};
    use crate::platform::block_on;
    use crate::store::Block;

    use super::KuboStore;

    /// The open imports, one per writing thread, and the errors of those that failed, kept
    /// for their thread's next call.
    #[derive(Default)]
    pub(super) struct Streams {
        pub(super) open: HashMap<ThreadId, Import>,
        pub(super) failed: HashMap<ThreadId, Error>,
    }

    impl Streams {
        /// Finishes every open import, keeping each failure for its thread.
        pub(super) fn finish_all(&mut self, store: &KuboStore) {
            for (thread, import) in std::mem::take(&mut self.open) {
                if let Err(e) = import.finish(store) {
                    self.failed.entry(thread).or_insert(e);
                }
            }
        }
    }

    /// Bytes handed to the sending thread at a time (two in flight at most).
    const CHUNK: usize = 1 << 20;

    /// An open import: the CAR being written, what the form still needs at its end, the count
    /// of blocks sent, and the thread sending the request.
    pub(super) struct Import {
        car: CarWriter<Pipe>,
        boundary: String,
        blocks: u64,
        running: JoinHandle<Result<HttpResponse>>,
    }

    /// The writing end of the request body.
    struct Pipe {
        to: SyncSender<Vec<u8>>,
        buf: Vec<u8>,
    }

    impl Pipe {
        fn send(&mut self) -> io::Result<()> {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.to.send(chunk).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "kubo stopped reading the import")
            })
        }
    }

    impl Write for Pipe {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.buf.extend_from_slice(data);
            if self.buf.len() >= CHUNK {
                self.send()?;
            }
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            if self.buf.is_empty() {
                return Ok(());
            }
            self.send()
        }
    }

    /// The reading end: what the HTTP client sends, until the writing end is dropped.
    struct Drain {
        from: Receiver<Vec<u8>>,
        chunk: Vec<u8>,
        at: usize,
        /// Bytes the client has read so far.
        taken: u64,
    }

    impl Read for Drain {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            while self.at == self.chunk.len() {
                match self.from.recv() {
                    Ok(next) => (self.chunk, self.at) = (next, 0),
                    Err(_) => return Ok(0),
                }
            }
            let n = out.len().min(self.chunk.len() - self.at);
            out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
            self.at += n;
            self.taken += n as u64;
            Ok(n)
        }
    }

    /// The drain as each attempt's body (the same one: an attempt that fails before reading
    /// any of it leaves it whole for the next).
    struct Shared(Arc<Mutex<Drain>>);

    impl Read for Shared {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .read(out)
        }
    }

    /// Sends the request, trying again (after 200 ms, 400 ms, …, as every other call does)
    /// while the node cannot be reached and nothing of the body has been sent.
    fn send(
        http: &dyn Http,
        req: HttpRequest,
        drain: Arc<Mutex<Drain>>,
        attempts: u32,
    ) -> Result<HttpResponse> {
        let mut attempt = 1;
        loop {
            let sent = block_on(http.send_streaming(req.clone(), Box::new(Shared(drain.clone()))));
            let untouched = drain.lock().unwrap_or_else(PoisonError::into_inner).taken == 0;
            match sent {
                Err(Error::Unavailable(_)) if attempt < attempts && untouched => {
                    block_on(http.sleep(std::time::Duration::from_millis(100 << attempt)));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    impl Import {
        /// Starts the request (its CAR names `root`, which kubo does not pin).
        pub(super) fn start(store: &KuboStore, root: &Cid) -> Result<Import> {
            let mut rand = [0u8; 12];
            let _ = getrandom::fill(&mut rand);
            let boundary = format!("medshare-{}", data_encoding::HEXLOWER.encode(&rand));
            let (to, from) = sync_channel(1);
            let mut pipe = Pipe {
                to,
                buf: Vec::with_capacity(CHUNK),
            };
            pipe.write_all(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                     filename=\"blocks.car\"\r\nContent-Type: application/vnd.ipld.car\r\n\r\n"
                )
                .as_bytes(),
            )?;
            let car = CarWriter::new(pipe, &[*root])?;
            let url = format!(
                "{}/api/v0/dag/import?pin-roots=false&stats=true",
                store.config.url
            );
            let mut req = HttpRequest::post(&url, None)
                .header(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .timeout(store.config.timeout);
            if let Some(t) = &store.config.token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let http = store.http.clone();
            let drain = Arc::new(Mutex::new(Drain {
                from,
                chunk: Vec::new(),
                at: 0,
                taken: 0,
            }));
            let attempts = store.config.attempts.max(1);
            let running = std::thread::Builder::new()
                .name("medshare-kubo-import".into())
                .spawn(move || send(&*http, req, drain, attempts))
                .map_err(Error::Io)?;
            Ok(Import {
                car,
                boundary,
                blocks: 0,
                running,
            })
        }

        /// Appends blocks (waits while the sending thread is two chunks behind).
        pub(super) fn write(&mut self, blocks: &[&Block]) -> Result<()> {
            for b in blocks {
                self.car.write_block(&b.cid, &b.data)?;
                self.blocks += 1;
            }
            Ok(())
        }

        /// Ends the form, waits for kubo's answer and checks that it took every block.
        pub(super) fn finish(self, store: &KuboStore) -> Result<()> {
            let Import {
                car,
                boundary,
                blocks,
                running,
            } = self;
            // A write fails only when the sending thread stopped: its error says why.
            let written = car.finish().and_then(|mut pipe| {
                pipe.write_all(format!("\r\n--{boundary}--\r\n").as_bytes())?;
                pipe.flush()?;
                Ok(())
            });
            let sent = running.join().unwrap_or_else(|_| {
                Err(Error::Backend(format!(
                    "kubo at {}: dag/import: the sending thread panicked",
                    store.config.url
                )))
            });
            let resp = match sent {
                Ok(resp) => resp,
                Err(Error::Unavailable(e)) => {
                    return Err(Error::Backend(format!(
                        "kubo at {} is unreachable: {e}",
                        store.config.url
                    )));
                }
                Err(Error::Timeout(e)) => {
                    return Err(Error::Backend(format!(
                        "kubo at {}: dag/import: timed out ({e})",
                        store.config.url
                    )));
                }
                Err(e) => return Err(e),
            };
            let answer = store.interpret("dag/import", resp)?;
            let answer = store.accepted("dag/import", answer)?;
            written?;
            super::took_all(&answer, blocks)
        }
    }
}
