//! Block storage: the [`BlockStore`] trait that backends implement, and [`Store`], the handle the
//! rest of medshare uses, which hash-checks every block going in or coming out.
//!
//! The trait is asynchronous because browser stores (IndexedDB, `fetch` from a gateway) and
//! Kotlin/Swift callbacks are; on native targets its futures are `Send`, on wasm they are not.
//! medshare never picks an executor: callers drive the futures. Backends here:
//! [`memory::MemoryStore`], [`fs::FsStore`] (the embedded default), [`kubo::KuboStore`] (a real
//! IPFS node, feature `kubo`), [`gateway::GatewayStore`] (read-only, any IPFS gateway in
//! trustless mode), and [`foreign::ForeignStore`] (a store written in Python, JavaScript,
//! Kotlin or Swift, adapted once here for every binding).

pub mod foreign;
#[cfg(not(target_arch = "wasm32"))]
pub mod fs;
pub mod gateway;
pub mod kubo;
pub mod memory;
pub mod testsuite;

use std::sync::Arc;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::limits;
use crate::platform::MaybeSendSync;

/// A content-addressed block: its CID and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Its CID.
    pub cid: Cid,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// A content-addressed block store with one head pointer.
///
/// Implementations store and return bytes; they need not hash anything — [`Store`] checks every
/// block against its CID on the way in and on the way out, so a faulty or hostile backend can
/// lose data but cannot substitute it. [`Store`] always hands backends CIDv1s (a CIDv0 is passed
/// as the dag-pb CIDv1 of the same multihash), so a backend keyed by CID text needs no
/// normalisation of its own to treat both versions as one block, as IPFS does.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait BlockStore: MaybeSendSync {
    /// Stores `data` under `cid` (idempotent).
    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()>;

    /// Stores several blocks; backends may batch their durability work.
    async fn put_many(&self, blocks: &[Block]) -> Result<()> {
        for b in blocks {
            self.put(&b.cid, &b.data).await?;
        }
        Ok(())
    }

    /// The bytes stored under `cid`, or `None`.
    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>>;

    /// [`BlockStore::get`] into `buf` (its contents replaced); `false` if absent. A read reuses
    /// its leaf buffers through this: a fresh 1 MiB buffer per leaf is page-faulted and zeroed
    /// by the kernel again (docs/PERFORMANCE.md, "Opening from the filesystem store"). The
    /// default calls `get`; the filesystem and memory stores fill `buf` itself.
    async fn get_into(&self, cid: &Cid, buf: &mut Vec<u8>) -> Result<bool> {
        match self.get(cid).await? {
            Some(data) => {
                *buf = data;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Makes every block put so far durable. Backends that batch their durability (the
    /// filesystem store; the kubo store, whose data blocks stream into an open `dag/import`)
    /// do it here and before any head or metadata change; for the others every put is
    /// durable when it returns, and this does nothing.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Whether a block is stored under `cid`.
    async fn has(&self, cid: &Cid) -> Result<bool>;

    /// Removes the block under `cid` (no error if absent).
    async fn delete(&self, cid: &Cid) -> Result<()>;

    /// The head pointer, if set.
    async fn head(&self) -> Result<Option<Cid>>;

    /// Sets the head to `new` if it currently equals `expected`; otherwise fails with
    /// [`Error::HeadConflict`] and changes nothing.
    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()>;

    /// Whether this backend only reads (a trustless gateway): a vault over it cannot write.
    fn is_read_only(&self) -> bool {
        false
    }

    /// Whether this backend's calls may run on other threads while the caller waits, so that
    /// a read fetches the next group of leaves (several at once) while it decrypts the last
    /// ([`crate::platform::overlap`], [`crate::platform::map_io`]). The network stores (kubo,
    /// gateways) say yes natively: each call mostly waits on the node. The filesystem and
    /// memory stores say no (reading from the page cache, fetching ahead measured no faster
    /// and held 8 MiB more), and so do stores written in another language (their calls go back
    /// into that language's runtime, which a binding may hold while the caller waits).
    fn parallel_io(&self) -> bool {
        false
    }

    /// Whether this backend's `get` finishes its work when first polled, without waiting on
    /// anything another task must drive (its futures are plain function calls in async
    /// clothing): the filesystem and memory stores say yes. A read then fetches and hashes the
    /// next group of leaves on the worker threads while it decrypts the last
    /// ([`crate::platform::join_fetch`]; docs/PERFORMANCE.md, "Opening from the filesystem
    /// store"). Each such call is driven by parking a worker thread until it is woken, so a
    /// backend that says yes but waits on something only the caller's task drives would hang
    /// the read. Other backends (the default) are awaited on the caller's task.
    fn completes_when_polled(&self) -> bool {
        false
    }

    /// Stores ledger objects without protecting them from the backend's garbage collector yet
    /// (a sequencer that commits first and pins in the background, [`BlockStore::keep`]).
    /// Backends without a collector just store them.
    async fn put_many_unkept(&self, blocks: &[Block]) -> Result<()> {
        self.put_many(blocks).await
    }

    /// Protects these objects (not what they link to) from the backend's garbage collector:
    /// kubo's direct pins. What [`BlockStore::put`] does for ledger objects by itself.
    async fn keep(&self, objects: &[Cid]) -> Result<()> {
        let _ = objects;
        Ok(())
    }

    /// Keeps the DAG under `root` (a current record version) from being garbage-collected by
    /// the backend, and replicated where the backend replicates. Only stores with their own
    /// garbage collector (kubo) need to do anything.
    async fn pin(&self, root: &Cid) -> Result<()> {
        let _ = root;
        Ok(())
    }

    /// Undoes [`BlockStore::pin`] (a retired record version). No error if it was not pinned.
    async fn unpin(&self, root: &Cid) -> Result<()> {
        let _ = root;
        Ok(())
    }

    /// Every block held, if the backend can enumerate them (for `medshare gc`); `None` if not.
    async fn list(&self) -> Result<Option<Vec<Cid>>> {
        Ok(None)
    }

    /// The chain-state snapshot this store keeps (`ledger::snapshot`), if any. Only backends
    /// whose files are private to this machine keep one (the filesystem store): a snapshot is a
    /// cache of this process's own verification, never something fetched from another party.
    async fn get_snapshot(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Replaces the snapshot (atomically; a crash leaves the old one or the new one, and a
    /// damaged one is refused by its checksum when loaded). Backends that keep none ignore it.
    async fn put_snapshot(&self, bytes: &[u8]) -> Result<()> {
        let _ = bytes;
        Ok(())
    }

    /// Whether [`BlockStore::put_snapshot`] keeps anything.
    fn keeps_snapshots(&self) -> bool {
        false
    }

    /// A small named value kept beside the blocks (pending deletions, a node's progress), if
    /// the backend keeps such values; `None` if absent or unsupported.
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let _ = key;
        Ok(None)
    }

    /// Sets (or, with `None`, removes) a named value, atomically. Backends that keep no such
    /// values ignore it.
    async fn put_meta(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        let _ = (key, value);
        Ok(())
    }
}

/// The verified handle over any [`BlockStore`]. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn BlockStore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(..)")
    }
}

fn check_size(len: usize) -> Result<()> {
    if len > limits::MAX_BLOCK_SIZE {
        return Err(Error::TooLarge {
            what: "block",
            size: len as u64,
            limit: limits::MAX_BLOCK_SIZE as u64,
        });
    }
    Ok(())
}

impl Store {
    /// Wraps a backend.
    pub fn new(backend: impl BlockStore + 'static) -> Store {
        Store {
            inner: Arc::new(backend),
        }
    }

    /// Wraps a shared backend.
    pub fn from_arc(backend: Arc<dyn BlockStore>) -> Store {
        Store { inner: backend }
    }

    /// A fresh in-memory store.
    pub fn memory() -> Store {
        Store::new(memory::MemoryStore::default())
    }

    /// Opens (creating if needed) the filesystem store at `path`, taking its lock.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_dir(path: impl AsRef<std::path::Path>) -> Result<Store> {
        Ok(Store::new(fs::FsStore::open(path)?))
    }

    /// Opens a store named by text, the form the CLI and the bindings accept: `kubo=URL[,option…]`
    /// (a kubo node's RPC, see [`kubo::KuboConfig::parse`]), an `http://` or `https://` URL (a
    /// trustless gateway, read-only), or else a filesystem path (opened with its lock).
    #[cfg(all(feature = "http", not(target_arch = "wasm32")))]
    pub fn open_spec(spec: &str) -> Result<Store> {
        if let Some(url) = spec.strip_prefix("kubo=") {
            let config = kubo::KuboConfig::parse(url)?;
            return Ok(Store::new(kubo::KuboStore::new(config)?));
        }
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Store::gateways(vec![spec.to_owned()]);
        }
        Store::open_dir(spec)
    }

    /// A read-only store over trustless HTTP gateways (tried in order; every block is checked
    /// against its CID).
    #[cfg(all(feature = "http", not(target_arch = "wasm32")))]
    pub fn gateways(urls: Vec<String>) -> Result<Store> {
        let http = crate::net::default_http()?;
        Ok(Store::new(gateway::GatewayStore::new(urls, http)?))
    }

    /// Stores a block after checking that `data` hashes to `cid` and fits the size limit.
    pub async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        check_size(data.len())?;
        cid.verify(data)?;
        self.inner.put(&cid.to_v1(), data).await
    }

    /// Stores blocks after checking each.
    pub async fn put_many(&self, blocks: &[Block]) -> Result<()> {
        for b in blocks {
            b.cid.verify(&b.data)?;
        }
        self.put_many_hashed(blocks).await
    }

    /// Stores blocks this process just hashed (the UnixFS importer's output), skipping the
    /// re-hash `put_many` does for blocks of unknown origin. Sizes are still checked.
    pub(crate) async fn put_many_hashed(&self, blocks: &[Block]) -> Result<()> {
        for b in blocks {
            check_size(b.data.len())?;
        }
        if blocks.is_empty() {
            return Ok(());
        }
        if blocks
            .iter()
            .all(|b| b.cid.version() == crate::cid::Version::V1)
        {
            return self.inner.put_many(blocks).await;
        }
        let v1: Vec<Block> = blocks
            .iter()
            .map(|b| Block {
                cid: b.cid.to_v1(),
                data: b.data.clone(),
            })
            .collect();
        self.inner.put_many(&v1).await
    }

    /// Fetches a block and checks it against `cid`; [`Error::NotFound`] if absent.
    pub async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        self.get_opt(cid).await?.ok_or(Error::NotFound(*cid))
    }

    /// Fetches a block if present, checked against `cid`.
    pub async fn get_opt(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        match self.inner.get(&cid.to_v1()).await? {
            None => Ok(None),
            Some(data) => {
                check_size(data.len())?;
                cid.verify(&data)?;
                Ok(Some(data))
            }
        }
    }

    /// Fetches a block without checking it against `cid` yet: the caller must pass it through
    /// [`Store::check`] before using it (readers use this to hash one block while they decrypt
    /// the previous one).
    pub(crate) async fn get_unchecked(&self, cid: &Cid) -> Result<Vec<u8>> {
        let data = self
            .inner
            .get(&cid.to_v1())
            .await?
            .ok_or(Error::NotFound(*cid))?;
        check_size(data.len())?;
        Ok(data)
    }

    /// [`Store::get_unchecked`] into `buf` (its contents replaced).
    pub(crate) async fn get_unchecked_into(&self, cid: &Cid, buf: &mut Vec<u8>) -> Result<()> {
        if !self.inner.get_into(&cid.to_v1(), buf).await? {
            return Err(Error::NotFound(*cid));
        }
        check_size(buf.len())
    }

    /// Makes every block put so far durable (see [`BlockStore::flush`]): what a caller that
    /// stores blocks without moving the head calls before it relies on them surviving a crash.
    pub async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }

    /// The check [`Store::get`] makes: `data` is the block `cid` names.
    pub(crate) fn check(cid: &Cid, data: &[u8]) -> Result<()> {
        Ok(cid.verify(data)?)
    }

    /// Whether a block is present.
    pub async fn has(&self, cid: &Cid) -> Result<bool> {
        self.inner.has(&cid.to_v1()).await
    }

    /// Removes a block.
    pub async fn delete(&self, cid: &Cid) -> Result<()> {
        self.inner.delete(&cid.to_v1()).await
    }

    /// The head pointer.
    pub async fn head(&self) -> Result<Option<Cid>> {
        self.inner.head().await
    }

    /// Compare-and-swap of the head pointer.
    pub async fn compare_and_swap_head(
        &self,
        expected: Option<&Cid>,
        new: Option<&Cid>,
    ) -> Result<()> {
        self.inner.compare_and_swap_head(expected, new).await
    }

    /// Whether the backend only reads (see [`BlockStore::is_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    /// Stores ledger objects, to be kept later (see [`BlockStore::put_many_unkept`]).
    pub async fn put_many_unkept(&self, blocks: &[Block]) -> Result<()> {
        for b in blocks {
            check_size(b.data.len())?;
            b.cid.verify(&b.data)?;
        }
        self.inner.put_many_unkept(blocks).await
    }

    /// Protects objects from the backend's collector (see [`BlockStore::keep`]).
    pub async fn keep(&self, objects: &[Cid]) -> Result<()> {
        let v1: Vec<Cid> = objects.iter().map(Cid::to_v1).collect();
        self.inner.keep(&v1).await
    }

    /// Pins a root (see [`BlockStore::pin`]).
    pub async fn pin(&self, root: &Cid) -> Result<()> {
        self.inner.pin(&root.to_v1()).await
    }

    /// Unpins a root (see [`BlockStore::unpin`]).
    pub async fn unpin(&self, root: &Cid) -> Result<()> {
        self.inner.unpin(&root.to_v1()).await
    }

    /// Every block held, if the backend can say.
    pub async fn list(&self) -> Result<Option<Vec<Cid>>> {
        self.inner.list().await
    }

    /// The chain-state snapshot kept beside the blocks (see [`BlockStore::get_snapshot`]).
    pub async fn get_snapshot(&self) -> Result<Option<Vec<u8>>> {
        self.inner.get_snapshot().await
    }

    /// Replaces the snapshot (see [`BlockStore::put_snapshot`]).
    pub async fn put_snapshot(&self, bytes: &[u8]) -> Result<()> {
        self.inner.put_snapshot(bytes).await
    }

    /// Whether this store's calls may overlap the caller's work (see
    /// [`BlockStore::parallel_io`]) here: the backend allows it and the calling thread's pool
    /// has more than one thread ([`crate::platform::threads`]).
    pub fn parallel_io(&self) -> bool {
        self.inner.parallel_io() && crate::platform::threads()
    }

    /// Whether a read fetches on the worker threads ([`BlockStore::completes_when_polled`],
    /// and more than one thread).
    pub(crate) fn fetch_on_pool(&self) -> bool {
        self.inner.completes_when_polled() && crate::platform::threads()
    }

    /// Whether this store keeps a snapshot.
    pub fn keeps_snapshots(&self) -> bool {
        self.inner.keeps_snapshots()
    }

    /// A named value kept beside the blocks (see [`BlockStore::get_meta`]).
    pub async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_meta_key(key)?;
        self.inner.get_meta(key).await
    }

    /// Sets or removes a named value (see [`BlockStore::put_meta`]).
    pub async fn put_meta(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        check_meta_key(key)?;
        self.inner.put_meta(key, value).await
    }
}

/// Metadata keys are names, never paths: ASCII letters, digits, `-` and `_`, 1 to 64 of them.
pub fn check_meta_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > 64
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidInput(format!(
            "bad metadata key `{}`",
            crate::text::escape(key)
        )));
    }
    Ok(())
}

/// Builds the [`Error::HeadConflict`] for a failed compare-and-swap.
pub fn head_conflict(expected: Option<&Cid>, found: Option<&Cid>) -> Error {
    Error::HeadConflict {
        expected: expected.copied(),
        found: found.copied(),
    }
}
