//! A block store backed by a real IPFS node (kubo) over its HTTP RPC API (feature `kubo`).
//!
//! Blocks go through `/api/v0/block/put|get|stat|rm` with the CID's codec and sha2-256, so kubo
//! stores them under exactly the CIDs medshare computes, and `ipfs cat <root>` returns a
//! published envelope byte for byte. Roots are pinned with `/api/v0/pin/add` (recursive) so the
//! node keeps, serves and replicates them. An optional bearer token is sent on every call
//! (pinning services front kubo that way).
//!
//! **Head pointer.** The sealer's head lives in the node's MFS at `<namespace>/HEAD` (default
//! `/medshare/HEAD`), read and replaced by this handle under a process-local lock: that gives
//! the sealer compare-and-swap as long as one sealer process writes to a node, which is the
//! proof-of-authority setup. With [`KuboConfig::publish_key`] every new head is also published
//! under that IPNS key; a replica on another node sets [`KuboConfig::follow`] to the IPNS name,
//! reads the head from IPNS and fetches the blocks through IPFS (bitswap), verifying everything.
//!
//! Calls are blocking inside the async methods (like the filesystem store), time out, and are
//! retried a few times on connection failures; a node that is down or answers garbage gives
//! [`Error::Backend`] naming the node and the call. Every block fetched is hash-checked by
//! [`crate::Store`] like any other backend's.

use std::sync::Mutex;
use std::time::Duration;

use crate::cid::{Cid, DAG_CBOR, DAG_PB, RAW};
use crate::error::{Error, Result};
use crate::store::{BlockStore, head_conflict};

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
    /// MFS directory holding `HEAD`.
    pub namespace: String,
    /// Sealer side: the name of a key in the node's keystore under which every new head is also
    /// published to IPNS, so replicas on other nodes can find it.
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
}

/// The kubo RPC store.
pub struct KuboStore {
    config: KuboConfig,
    agent: ureq::Agent,
    head_lock: Mutex<()>,
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

/// `multipart/form-data` with one file part (what kubo's `block/put` and `files/write` read).
fn multipart(data: &[u8]) -> (String, Vec<u8>) {
    let mut rand = [0u8; 12];
    let _ = getrandom::fill(&mut rand);
    let boundary = format!("medshare-{}", data_encoding::HEXLOWER.encode(&rand));
    let mut body = Vec::with_capacity(data.len() + 200);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        b"Content-Disposition: form-data; name=\"file\"; filename=\"block\"\r\n",
    );
    body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The `"field":"value"` string of a flat JSON answer (kubo's answers here are flat objects).
fn json_field(body: &[u8], field: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let key = format!("\"{field}\":");
    let rest = text[text.find(&key)? + key.len()..].trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

impl KuboStore {
    /// A store over the node at `config.url`. Nothing is contacted until the first call.
    pub fn new(config: KuboConfig) -> KuboStore {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(config.timeout))
                .http_status_as_error(false)
                .build(),
        );
        KuboStore {
            config,
            agent,
            head_lock: Mutex::new(()),
        }
    }

    /// Calls `/api/v0/<path>` with `query` and an optional multipart body.
    fn call(&self, path: &str, query: &[(&str, &str)], body: Option<&[u8]>) -> Result<Answer> {
        let url = format!("{}/api/v0/{path}", self.config.url);
        let mut last = String::new();
        for attempt in 0..self.config.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            let mut req = self.agent.post(&url);
            for (k, v) in query {
                req = req.query(*k, *v);
            }
            if let Some(t) = &self.config.token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let sent = match body {
                Some(data) => {
                    let (ctype, form) = multipart(data);
                    req.header("Content-Type", &ctype).send(&form[..])
                }
                None => req.send_empty(),
            };
            let mut resp = match sent {
                Ok(r) => r,
                Err(
                    e @ (ureq::Error::ConnectionFailed
                    | ureq::Error::Io(_)
                    | ureq::Error::HostNotFound),
                ) => {
                    last = e.to_string();
                    continue;
                }
                Err(e) => {
                    return Err(Error::Backend(format!(
                        "kubo at {}: {path}: {e}",
                        self.config.url
                    )));
                }
            };
            let status = resp.status().as_u16();
            let bytes = resp
                .body_mut()
                .with_config()
                .limit(crate::limits::MAX_BLOCK_SIZE as u64 + 4096)
                .read_to_vec()
                .map_err(|e| {
                    Error::Backend(format!(
                        "kubo at {}: {path}: reading the answer: {e}",
                        self.config.url
                    ))
                })?;
            return match status {
                200 => Ok(Answer::Ok(bytes)),
                401 | 403 => Err(Error::Backend(format!(
                    "kubo at {} refused the credentials ({status})",
                    self.config.url
                ))),
                _ => match json_field(&bytes, "Message") {
                    Some(m) => Ok(Answer::Refused(m)),
                    None => Err(Error::Backend(format!(
                        "kubo at {}: {path}: unexpected HTTP {status}: {}",
                        self.config.url,
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ))),
                },
            };
        }
        Err(Error::Backend(format!(
            "kubo at {} is unreachable: {last}",
            self.config.url
        )))
    }

    fn ok(&self, path: &str, query: &[(&str, &str)], body: Option<&[u8]>) -> Result<Vec<u8>> {
        match self.call(path, query, body)? {
            Answer::Ok(b) => Ok(b),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: {path}: {m}",
                self.config.url
            ))),
        }
    }

    fn head_path(&self) -> String {
        format!("{}/HEAD", self.config.namespace.trim_end_matches('/'))
    }

    fn read_head(&self) -> Result<Option<Cid>> {
        match self.call("files/read", &[("arg", &self.head_path())], None)? {
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
    fn resolve_ipns(&self, name: &str) -> Result<Option<Cid>> {
        let arg = format!("/ipns/{name}");
        // nocache: a follower must see the newest head, not the node's cached answer.
        match self.call("name/resolve", &[("arg", &arg), ("nocache", "true")], None)? {
            Answer::Ok(b) => {
                let path = json_field(&b, "Path").ok_or_else(|| {
                    Error::Backend(format!("kubo name/resolve answered garbage for {name}"))
                })?;
                let cid = path.strip_prefix("/ipfs/").unwrap_or(&path);
                cid.parse().map(Some)
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
    pub fn ipns_key(&self, name: &str) -> Result<String> {
        let list = self.ok("key/list", &[("l", "true")], None)?;
        let text = String::from_utf8_lossy(&list).into_owned();
        // {"Keys":[{"Name":"self","Id":"k51…"},…]}
        let needle = format!("\"Name\":\"{name}\",\"Id\":\"");
        if let Some(at) = text.find(&needle) {
            let rest = &text[at + needle.len()..];
            return rest
                .split('"')
                .next()
                .map(str::to_owned)
                .ok_or_else(|| Error::Backend("key/list garbage".into()));
        }
        let made = self.ok("key/gen", &[("arg", name), ("type", "ed25519")], None)?;
        json_field(&made, "Id")
            .ok_or_else(|| Error::Backend(format!("kubo key/gen answered garbage for {name}")))
    }

    /// Pins `root` recursively (a UnixFS file, or a chain head with everything it links).
    pub fn pin_root(&self, root: &Cid) -> Result<()> {
        self.ok(
            "pin/add",
            &[("arg", &root.to_string()), ("recursive", "true")],
            None,
        )
        .map(|_| ())
    }

    /// Removes the pin of `root` (no error if it was not pinned).
    pub fn unpin_root(&self, root: &Cid) -> Result<()> {
        match self.call("pin/rm", &[("arg", &root.to_string())], None)? {
            Answer::Ok(_) => Ok(()),
            Answer::Refused(m) if m.contains("not pinned") => Ok(()),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: pin/rm: {m}",
                self.config.url
            ))),
        }
    }
}

fn is_missing(message: &str) -> bool {
    message.contains("not found") || message.contains("ipld: could not find")
}

#[async_trait::async_trait]
impl BlockStore for KuboStore {
    /// One `dag/import` of a CAR stream for the whole batch instead of a `block/put` per block
    /// (record blocks arrive in batches of up to 16 MiB). Ledger objects still go one by one,
    /// because each is pinned on its own.
    async fn put_many(&self, blocks: &[crate::unixfs::Block]) -> Result<()> {
        let (ledger, data): (Vec<_>, Vec<_>) =
            blocks.iter().partition(|b| b.cid.codec() == DAG_CBOR);
        for b in ledger {
            self.put(&b.cid, &b.data).await?;
        }
        let Some(first) = data.first() else {
            return Ok(());
        };
        let mut car = crate::car::CarWriter::new(
            Vec::with_capacity(data.iter().map(|b| b.data.len() + 40).sum()),
            &[first.cid],
        )?;
        for b in &data {
            car.write_block(&b.cid, &b.data)?;
        }
        let car = car.finish()?;
        let answer = self.ok(
            "dag/import",
            &[("pin-roots", "false"), ("stats", "true")],
            Some(&car),
        )?;
        // The answer streams JSON objects; the stats one counts the blocks kubo took.
        let text = String::from_utf8_lossy(&answer);
        let count = text
            .split("\"BlockCount\":")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok());
        match count {
            Some(n) if n == data.len() => Ok(()),
            other => Err(Error::Backend(format!(
                "kubo dag/import took {other:?} blocks of {} sent",
                data.len()
            ))),
        }
    }

    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        let answer = self.ok(
            "block/put",
            &[
                ("cid-codec", codec_name(cid.codec())),
                ("mhtype", "sha2-256"),
                ("pin", "false"),
            ],
            Some(data),
        )?;
        match json_field(&answer, "Key") {
            Some(k) if k == cid.to_string() => {}
            Some(k) => return Err(Error::Backend(format!("kubo stored {k} for {cid}"))),
            None => {
                return Err(Error::Backend(format!(
                    "kubo block/put answered garbage for {cid}"
                )));
            }
        }
        // Ledger objects (DAG-CBOR) are pinned directly, one by one: a recursive pin of the
        // head would also pin every record version the chain links to, and revocation must be
        // able to remove old versions from the node.
        if cid.codec() == DAG_CBOR {
            self.ok(
                "pin/add",
                &[("arg", &cid.to_string()), ("recursive", "false")],
                None,
            )?;
        }
        Ok(())
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        match self.call("block/get", &[("arg", &cid.to_string())], None)? {
            Answer::Ok(b) => Ok(Some(b)),
            Answer::Refused(m) if is_missing(&m) => Ok(None),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: block/get {cid}: {m}",
                self.config.url
            ))),
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self.call(
            "block/stat",
            &[("arg", &cid.to_string()), ("offline", "true")],
            None,
        )? {
            Answer::Ok(_) => Ok(true),
            Answer::Refused(m) if is_missing(&m) || m.contains("offline") => Ok(false),
            Answer::Refused(m) => Err(Error::Backend(format!(
                "kubo at {}: block/stat {cid}: {m}",
                self.config.url
            ))),
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        // A pinned block cannot be removed; unpin first (no-op when it is not a pinned root).
        self.unpin_root(cid)?;
        match self.call(
            "block/rm",
            &[("arg", &cid.to_string()), ("force", "true")],
            None,
        )? {
            Answer::Ok(b) => match json_field(&b, "Error") {
                Some(e) if !e.is_empty() && !is_missing(&e) => Err(Error::Backend(format!(
                    "kubo at {}: block/rm {cid}: {e}",
                    self.config.url
                ))),
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
        match &self.config.follow {
            Some(name) => self.resolve_ipns(name),
            None => self.read_head(),
        }
    }

    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
        let _guard = self
            .head_lock
            .lock()
            .map_err(|_| Error::Backend("head lock poisoned".into()))?;
        let current = self.read_head()?;
        if current.as_ref() != expected {
            return Err(head_conflict(expected, current.as_ref()));
        }
        match new {
            Some(cid) => {
                self.ok(
                    "files/write",
                    &[
                        ("arg", &self.head_path()),
                        ("create", "true"),
                        ("truncate", "true"),
                        ("parents", "true"),
                    ],
                    Some(format!("{cid}\n").as_bytes()),
                )?;
                if let Some(key) = &self.config.publish_key {
                    let path = format!("/ipfs/{cid}");
                    self.ok(
                        "name/publish",
                        &[("arg", &path), ("key", key), ("allow-offline", "true")],
                        None,
                    )?;
                }
            }
            None => {
                self.ok("files/rm", &[("arg", &self.head_path())], None)?;
            }
        }
        Ok(())
    }
}
