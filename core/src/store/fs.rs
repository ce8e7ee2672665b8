//! The filesystem block store: medshare's embedded default.
//!
//! Layout under the store directory:
//!
//! ```text
//! STORE                 "medshare-fs-store 2\n" (format marker)
//! LOCK                  held with an exclusive advisory lock while a handle is open
//! HEAD                  the head CID and a newline (absent: no head)
//! blocks.db             SQLite database (WAL) of the small blocks, up to SMALL_BLOCK bytes each:
//!                       ledger objects, small records, a large record's dag-pb nodes
//! blocks/<xy>/<key>     one file per large block (a large record's leaves); <key> = base32
//!                       multihash, <xy> = its next-to-last 2 chars
//! meta/<name>           small named values (pending deletions, a node's progress)
//! SNAPSHOT              the verified chain state at a certified block (a checked cache)
//! tmp/                  files being written; emptied on open
//! ```
//!
//! **Why a database for the small blocks.** A ledger object is about 900 bytes; one file each
//! costs a 4 KiB filesystem block and an inode, and 10^8 transactions would be 2x10^8 files.
//! SQLite keeps them in one file: its rowid table is appended in order, so its pages fill
//! completely (the key index beside it is ~6% of the data), a point read is a few
//! microseconds, a write transaction is made durable with one `fsync` of its write-ahead log,
//! and its crash safety is the most tested of any embedded database. Large leaves (up to 1 MiB)
//! stay files, read and written in parallel without a database lock.
//!
//! Every file that becomes visible under `blocks/` or as `HEAD` was written completely to
//! `tmp/`, flushed to disk, then renamed into place, and the directory flushed. A crash at any
//! point leaves either the old or the new state, never a partial file; leftovers in `tmp/` are
//! removed on the next open. Small blocks go into the database inside one open write
//! transaction, visible at once to this handle and rolled back whole by a crash.
//!
//! **Batch durability.** Blocks are written without a flush each (large ones to `tmp/`, small
//! ones into the open transaction); they are readable at once from this handle, and become
//! durable together at the next durability point: before the head or any metadata changes
//! ([`BlockStore::compare_and_swap_head`], [`FsStore::reset_head`], `put_meta`, `list`), and at
//! [`FsStore::flush`]. There the store makes one pass — for files, on Linux one `syncfs(2)`,
//! the renames, then one more `syncfs` (elsewhere an `fsync` per file and per directory); for
//! the database, one commit (`synchronous=FULL`: the log is fsynced) — so a 1 GiB record costs
//! a few flushes instead of one per block. What a head or a metadata value refers to is
//! therefore always on disk before it does; blocks put and never referenced by a head before a
//! crash are dropped on the next open, as an interrupted write would be. A second handle — from
//! this or another process — is refused with [`Error::StoreLocked`] instead of racing writes. A
//! put of a block stored with other (damaged) bytes replaces them, so importing good copies
//! repairs a store. A damaged `HEAD` does not stop the store opening: [`FsStore::reset_head`]
//! (`medshare repair`) sets it again from the blocks.
//!
//! If SQLite rolls back the open transaction (a failed commit, or disk full or an I/O error on
//! any statement), the blocks put since the last durability point are lost although their puts
//! returned: the handle then refuses every later database operation, so no head or metadata
//! can name them, until the store is reopened.
//!
//! A store of format 1 (every block a file) is upgraded when opened: the marker says so first
//! (format-1 software refuses it), its small block files move into the database a committed
//! chunk at a time, each chunk's files deleted after its commit, then the marker says format 2.
//! An interrupted upgrade carries on at the next open.
//!
//! I/O is blocking inside the async methods: on native targets a caller that cares runs them on a
//! blocking-friendly executor; medshare's own drivers (CLI, Python) block anyway.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::fsutil::{sync_dir, write_atomic};
use crate::store::{Block, BlockStore, head_conflict};

const MARKER: &str = "medshare-fs-store 2\n";
/// The marker of format 1, where every block was a file: upgraded on open.
const MARKER_V1: &str = "medshare-fs-store 1\n";
/// The marker while a format-1 store is being upgraded (format-1 software refuses it; this
/// version carries on with the upgrade).
const MARKER_UPGRADING: &str = "medshare-fs-store 2 (upgrading from 1)\n";
/// Files moved into the database per committed transaction during an upgrade.
const UPGRADE_CHUNK: usize = 4096;

/// Blocks up to this many bytes are kept in the store's database; larger ones are files.
/// (SQLite's own measurements put the crossover for reads from a 4 KiB-page database at about
/// 100 KB.)
pub const SMALL_BLOCK: usize = 64 * 1024;

/// A block store in a directory. Holds the directory's lock while alive.
pub struct FsStore {
    root: PathBuf,
    lock: File,
    head: Mutex<()>,
    /// Blocks written to `tmp/` and not yet made durable: final path → temp path.
    pending: Mutex<HashMap<PathBuf, PathBuf>>,
    /// The small blocks' database. Its write transaction stays open between durability points.
    db: Mutex<Db>,
}

/// The database connection and what the open transaction holds.
struct Db {
    /// `None` only while dropping.
    conn: Option<Connection>,
    /// Writes were made in the open transaction since the last commit.
    staged: bool,
    /// Why writes were lost: SQLite rolled back a transaction that held them (a failed commit,
    /// or a disk-full or I/O error on any statement). Every later database operation of this
    /// handle fails, so no durability point can pass as if they were on disk; reopening the
    /// store starts afresh, as after a crash.
    lost: Option<String>,
}

impl Db {
    /// The connection, unless it is closed or writes were lost ([`Db::lost`]).
    fn live(&self) -> Result<&Connection> {
        if let Some(why) = &self.lost {
            return Err(lost(why));
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Error::Backend("the block database is closed".into()))
    }

    /// The error for a failed statement; when SQLite rolled back (`rolled_back`) a transaction
    /// holding writes, records them as lost ([`Db::lost`]).
    fn failed(&mut self, rolled_back: bool, e: rusqlite::Error) -> Error {
        if self.staged && rolled_back {
            let why = e.to_string();
            self.staged = false;
            self.lost = Some(why.clone());
            return lost(&why);
        }
        db_error(e)
    }
}

impl std::fmt::Debug for FsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FsStore({})", self.root.display())
    }
}

impl FsStore {
    /// Opens the store at `path`, creating it if needed, and takes its lock.
    pub fn open(path: impl AsRef<Path>) -> Result<FsStore> {
        let root = path.as_ref().to_path_buf();
        fs::create_dir_all(&root)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("LOCK"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::StoreLocked(root.display().to_string()));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
        let marker = root.join("STORE");
        let (upgrade, new) = match fs::read_to_string(&marker) {
            Ok(m) if m == MARKER => (false, false),
            Ok(m) if m == MARKER_V1 || m == MARKER_UPGRADING => (true, false),
            Ok(m) => {
                return Err(Error::StoreCorrupt(format!(
                    "unknown store format marker {:?}",
                    m.trim()
                )));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // A new store, unless blocks are already here (a format-1 store that lost its
                // marker file is treated as one: upgrading it is harmless).
                (root.join("blocks").exists(), true)
            }
            Err(e) => return Err(Error::Io(e)),
        };
        fs::create_dir_all(root.join("blocks"))?;
        fs::create_dir_all(root.join("meta"))?;
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        // Anything in tmp/ is an interrupted write: it never became visible, drop it (whatever
        // it is: a stray directory must not stop the store opening).
        for entry in fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        // Interrupted atomic writes of HEAD and of metadata leave `.<name>.<random>.tmp` files
        // beside them (never visible under their names): drop them too.
        for dir in [root.clone(), root.join("meta")] {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".tmp") && entry.path().is_file() {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        // A store of format 2 has its database: a missing one is not recreated empty.
        let db = open_db(&root.join("blocks.db"), upgrade || new)?;
        let store = FsStore {
            root,
            lock,
            head: Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            db: Mutex::new(Db {
                conn: Some(db),
                staged: false,
                lost: None,
            }),
        };
        if upgrade {
            store.upgrade_from_v1()?;
        } else if new {
            write_atomic(&marker, MARKER.as_bytes(), false)?;
        }
        Ok(store)
    }

    /// Moves a format-1 store's small block files into the database (see the module docs), a
    /// committed chunk at a time, each chunk's files deleted after its commit.
    fn upgrade_from_v1(&self) -> Result<()> {
        write_atomic(&self.root.join("STORE"), MARKER_UPGRADING.as_bytes(), false)?;
        let mut chunk: Vec<PathBuf> = Vec::with_capacity(UPGRADE_CHUNK);
        for shard in fs::read_dir(self.root.join("blocks"))? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for f in fs::read_dir(&shard)? {
                let path = f?.path();
                let Some(key) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(multihash_of_key)
                else {
                    continue;
                };
                if fs::metadata(&path)?.len() > SMALL_BLOCK as u64 {
                    continue;
                }
                let data = fs::read(&path)?;
                // The file's bytes win over a row an interrupted upgrade left.
                self.with_db(true, |db| {
                    db.prepare_cached("INSERT OR REPLACE INTO blocks (key, data) VALUES (?1, ?2)")?
                        .execute(params![&key[..], data])
                })?;
                chunk.push(path);
                if chunk.len() == UPGRADE_CHUNK {
                    self.db_commit()?;
                    remove_moved(&mut chunk)?;
                }
            }
        }
        self.db_commit()?;
        remove_moved(&mut chunk)?;
        write_atomic(&self.root.join("STORE"), MARKER.as_bytes(), false)?;
        Ok(())
    }

    fn lock_db(&self) -> Result<std::sync::MutexGuard<'_, Db>> {
        self.db
            .lock()
            .map_err(|_| Error::Backend("block database mutex poisoned".into()))
    }

    /// Runs `f` on the database (in the open write transaction, begun if needed, when `write`).
    /// If it fails after SQLite rolled back a transaction holding writes, those writes are lost:
    /// the handle records it and refuses every later database operation ([`Db::lost`]).
    fn with_db<R>(
        &self,
        write: bool,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock_db()?;
        let db = &mut *guard;
        let conn = db.live()?;
        let result = if write && conn.is_autocommit() {
            conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| f(conn))
        } else {
            f(conn)
        };
        match result {
            Ok(r) => {
                db.staged |= write;
                Ok(r)
            }
            Err(e) => {
                let rolled_back = conn.is_autocommit();
                Err(db.failed(rolled_back, e))
            }
        }
    }

    /// A small block's bytes from the database (including what this handle put since the last
    /// durability point). A row over the block size limit is refused without being read; a
    /// value that is not a blob (a damaged row) comes back as bytes that fail their hash check.
    fn db_get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let limit = crate::limits::MAX_BLOCK_SIZE as i64;
        let row = self.with_db(false, |db| {
            db.prepare_cached(
                "SELECT length(data), CASE WHEN length(data) <= ?2 THEN data END \
                 FROM blocks WHERE key = ?1",
            )?
            .query_row(params![&cid.multihash()[..], limit], |row| {
                let len: Option<i64> = row.get(0)?;
                let data = match row.get_ref(1)? {
                    rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                        b.to_vec()
                    }
                    _ => Vec::new(),
                };
                Ok((len.unwrap_or(0), data))
            })
            .optional()
        })?;
        match row {
            Some((len, _)) if len > limit => Err(Error::TooLarge {
                what: "block",
                size: len as u64,
                limit: limit as u64,
            }),
            Some((_, data)) => Ok(Some(data)),
            None => Ok(None),
        }
    }

    /// Puts a small block into the open write transaction: skipped if stored with exactly these
    /// bytes, replaced if stored with others (damaged).
    fn db_put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        let key = cid.multihash();
        let same = self.with_db(false, |db| {
            db.prepare_cached("SELECT data IS ?2 FROM blocks WHERE key = ?1")?
                .query_row(params![&key[..], data], |row| row.get::<_, bool>(0))
                .optional()
        })?;
        if same == Some(true) {
            return Ok(());
        }
        self.with_db(true, |db| {
            db.prepare_cached("INSERT OR REPLACE INTO blocks (key, data) VALUES (?1, ?2)")?
                .execute(params![&key[..], data])
        })?;
        Ok(())
    }

    /// Commits the open write transaction, if any (durably: `synchronous=FULL`). Under the one
    /// lock, so a write another thread makes meanwhile is never counted as committed.
    fn db_commit(&self) -> Result<()> {
        let mut guard = self.lock_db()?;
        let db = &mut *guard;
        let conn = db.live()?;
        if conn.is_autocommit() {
            return Ok(());
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                db.staged = false;
                Ok(())
            }
            Err(e) => {
                let rolled_back = conn.is_autocommit();
                Err(db.failed(rolled_back, e))
            }
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn block_path(&self, cid: &Cid) -> PathBuf {
        let key = cid.storage_key();
        let shard = &key[key.len() - 3..key.len() - 1];
        self.root.join("blocks").join(shard).join(key)
    }

    fn tmp_file(&self) -> Result<(PathBuf, File)> {
        let mut name = [0u8; 12];
        getrandom::fill(&mut name).map_err(|_| Error::Rng)?;
        let path = self
            .root
            .join("tmp")
            .join(data_encoding::HEXLOWER.encode(&name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, file))
    }

    fn pending(&self) -> Result<std::sync::MutexGuard<'_, HashMap<PathBuf, PathBuf>>> {
        self.pending
            .lock()
            .map_err(|_| Error::Backend("pending-blocks mutex poisoned".into()))
    }

    /// Writes one block to tmp/ (not flushed: see the module docs) and records it as pending.
    /// A block already stored (or pending) with exactly these bytes is skipped; one stored with
    /// other bytes (damaged on disk) is replaced.
    fn stage(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        if data.len() <= SMALL_BLOCK {
            return self.db_put(cid, data);
        }
        let dest = self.block_path(cid);
        if self.pending()?.contains_key(&dest) {
            // Same CID, and `Store` checked the bytes against it: the same block.
            return Ok(());
        }
        match fs::metadata(&dest) {
            Ok(m) if m.len() == data.len() as u64 => {
                if fs::read(&dest)? == data {
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io(e)),
        }
        let (tmp, mut file) = self.tmp_file()?;
        file.write_all(data)?;
        // The same block staged twice at once (two threads of one batch): keep the first copy
        // (a reader may already be reading it) and drop this one, which nobody has seen.
        let twin = match self.pending()?.entry(dest) {
            std::collections::hash_map::Entry::Occupied(_) => Some(tmp),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(tmp);
                None
            }
        };
        if let Some(tmp) = twin {
            let _ = fs::remove_file(tmp);
        }
        Ok(())
    }

    /// Makes every block put so far durable and visible under `blocks/` (the durability point
    /// described in the module docs). Called before the head or metadata change.
    pub fn flush(&self) -> Result<()> {
        {
            let mut pending = self.pending()?;
            if !pending.is_empty() {
                let staged: Vec<(PathBuf, PathBuf)> = pending.drain().collect();
                let result = self.publish(&staged);
                if result.is_err() {
                    // Nothing is lost: what was not renamed is still in tmp/, and stays pending.
                    for (dest, tmp) in staged {
                        if tmp.exists() {
                            pending.insert(dest, tmp);
                        }
                    }
                }
                result?;
            }
        }
        self.db_commit()
    }

    fn publish(&self, staged: &[(PathBuf, PathBuf)]) -> Result<()> {
        // 1. The written data, all at once.
        #[cfg(target_os = "linux")]
        rustix::fs::syncfs(&self.lock).map_err(|e| Error::Io(e.into()))?;
        #[cfg(not(target_os = "linux"))]
        for (_, tmp) in staged {
            File::open(tmp)?.sync_all()?;
        }
        // 2. The renames, then the directories that hold them.
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (dest, tmp) in staged {
            let dir = dest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            if !dir.exists() {
                fs::create_dir_all(&dir)?;
                if !dirs.contains(&self.root.join("blocks")) {
                    dirs.push(self.root.join("blocks"));
                }
            }
            fs::rename(tmp, dest)?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        #[cfg(target_os = "linux")]
        rustix::fs::syncfs(&self.lock).map_err(|e| Error::Io(e.into()))?;
        #[cfg(not(target_os = "linux"))]
        for d in dirs {
            sync_dir(&d)?;
        }
        #[cfg(target_os = "linux")]
        let _ = dirs;
        Ok(())
    }

    fn read_head(&self) -> Result<Option<Cid>> {
        let damaged = |why: String| {
            Error::StoreCorrupt(format!(
                "{}: {why}; `medshare repair` sets it again from the blocks",
                self.root.join("HEAD").display()
            ))
        };
        match fs::read_to_string(self.root.join("HEAD")) {
            Ok(text) => {
                let line = text
                    .strip_suffix('\n')
                    .ok_or_else(|| damaged("not a CID line".into()))?;
                line.parse()
                    .map(Some)
                    .map_err(|e: crate::cid::CidError| damaged(e.to_string()))
            }
            Err(e) if e.kind() == ErrorKind::InvalidData => Err(damaged("not text".into())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Sets the head to `new` whatever the current `HEAD` file holds (damaged or not): the
    /// repair path, after the caller verified the chain `new` ends. Everyday writers use
    /// compare-and-swap.
    pub fn reset_head(&self, new: &Cid) -> Result<()> {
        self.flush()?;
        let _guard = self
            .head
            .lock()
            .map_err(|_| Error::Backend("head mutex poisoned".into()))?;
        Ok(write_atomic(
            &self.root.join("HEAD"),
            format!("{new}\n").as_bytes(),
            false,
        )?)
    }

    fn meta_path(&self, key: &str) -> Result<PathBuf> {
        crate::store::check_meta_key(key)?;
        Ok(self.root.join("meta").join(key))
    }
}

impl Drop for FsStore {
    fn drop(&mut self) {
        // The database closes first (rolling back what was never made durable, as a crash
        // would), so the next holder of the lock finds it free.
        let db = self
            .db
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(db.conn.take());
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = self.lock.unlock();
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlockStore for FsStore {
    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.stage(cid, data)
    }

    /// Small blocks go into the database under its one lock; large ones are written to `tmp/`
    /// on every core (the kernel's copy into the page cache and the inode allocation of a
    /// 1 MiB leaf cost more than sealing and hashing it).
    async fn put_many(&self, blocks: &[Block]) -> Result<()> {
        let (small, large): (Vec<&Block>, Vec<&Block>) =
            blocks.iter().partition(|b| b.data.len() <= SMALL_BLOCK);
        for b in small {
            self.db_put(&b.cid, &b.data)?;
        }
        crate::platform::par_map(&large, |b| self.stage(&b.cid, &b.data))
            .into_iter()
            .collect()
    }

    async fn flush(&self) -> Result<()> {
        FsStore::flush(self)
    }

    fn completes_when_polled(&self) -> bool {
        true
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        Ok(self.get_into(cid, &mut data).await?.then_some(data))
    }

    async fn get_into(&self, cid: &Cid, buf: &mut Vec<u8>) -> Result<bool> {
        if let Some(data) = self.db_get(cid)? {
            *buf = data;
            return Ok(true);
        }
        let dest = self.block_path(cid);
        // A block put since the last durability point is read from tmp/.
        let path = self.pending()?.get(&dest).cloned().unwrap_or(dest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::Io(e)),
        };
        let len = file.metadata()?.len();
        if len > crate::limits::MAX_BLOCK_SIZE as u64 {
            return Err(Error::TooLarge {
                what: "block",
                size: len,
                limit: crate::limits::MAX_BLOCK_SIZE as u64,
            });
        }
        buf.clear();
        buf.reserve(len as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, len + 1), buf)?;
        Ok(true)
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let dest = self.block_path(cid);
        if self.pending()?.contains_key(&dest) || dest.exists() {
            return Ok(true);
        }
        self.with_db(false, |db| {
            db.prepare_cached("SELECT 1 FROM blocks WHERE key = ?1")?
                .exists(params![&cid.multihash()[..]])
        })
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        // Inside the open transaction: durable at the next durability point (gc's last step
        // writes metadata, which is one).
        self.with_db(true, |db| {
            db.prepare_cached("DELETE FROM blocks WHERE key = ?1")?
                .execute(params![&cid.multihash()[..]])
        })?;
        let dest = self.block_path(cid);
        if let Some(tmp) = self.pending()?.remove(&dest) {
            let _ = fs::remove_file(tmp);
        }
        match fs::remove_file(dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io(e)),
        }
    }

    async fn head(&self) -> Result<Option<Cid>> {
        self.read_head()
    }

    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
        // What the new head refers to is on disk before the head is.
        self.flush()?;
        let _guard = self
            .head
            .lock()
            .map_err(|_| Error::Backend("head mutex poisoned".into()))?;
        let current = self.read_head()?;
        if current.as_ref() != expected {
            return Err(head_conflict(expected, current.as_ref()));
        }
        let path = self.root.join("HEAD");
        match new {
            Some(cid) => Ok(write_atomic(&path, format!("{cid}\n").as_bytes(), false)?),
            None => {
                fs::remove_file(&path)?;
                Ok(sync_dir(&self.root)?)
            }
        }
    }

    async fn list(&self) -> Result<Option<Vec<Cid>>> {
        self.flush()?;
        // A row whose key is no multihash (damage) is skipped, as a file with a foreign name is:
        // gc and repair still run. A block both in the database and in a file (left by an
        // interrupted upgrade) is listed once.
        let keys = self.with_db(false, |db| {
            db.prepare_cached("SELECT key FROM blocks")?
                .query_map([], |row| {
                    Ok(match row.get_ref(0)? {
                        rusqlite::types::ValueRef::Blob(b) => Some(b.to_vec()),
                        _ => None,
                    })
                })?
                .collect::<rusqlite::Result<Vec<Option<Vec<u8>>>>>()
        })?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for key in keys.into_iter().flatten() {
            if let Ok(cid) = Cid::from_bytes(&key) {
                seen.insert(cid.multihash());
                out.push(cid.to_v1());
            }
        }
        for shard in fs::read_dir(self.root.join("blocks"))? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for f in fs::read_dir(&shard)? {
                let name = f?.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Some(mh) = multihash_of_key(name).and_then(|b| Cid::from_bytes(&b).ok())
                    && seen.insert(mh.multihash())
                {
                    out.push(mh.to_v1());
                }
            }
        }
        Ok(Some(out))
    }

    async fn get_snapshot(&self) -> Result<Option<Vec<u8>>> {
        let path = self.root.join("SNAPSHOT");
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io(e)),
        };
        if len > crate::limits::MAX_SNAPSHOT as u64 {
            return Err(Error::TooLarge {
                what: "snapshot",
                size: len,
                limit: crate::limits::MAX_SNAPSHOT as u64,
            });
        }
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(e)),
        }
    }

    async fn put_snapshot(&self, bytes: &[u8]) -> Result<()> {
        // A cache with its own checksum: written beside, flushed, and renamed into place (a
        // crash leaves the old file, the new one, or one its checksum refuses). The flush is
        // here, on the thread that writes snapshots, so that the rename leaves no data for the
        // next durability point's flush (on ext4 a rename over a file writes its new pages out
        // with the next journal commit: the next operation's commit would wait for them).
        let tmp = self
            .root
            .join("tmp")
            .join(format!("snapshot.{}", crate::fsutil::random_hex()?));
        let result = File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_data()
            })
            .and_then(|()| fs::rename(&tmp, self.root.join("SNAPSHOT")));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Ok(result?)
    }

    fn keeps_snapshots(&self) -> bool {
        true
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.meta_path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(e)),
        }
    }

    async fn put_meta(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        // Metadata may refer to blocks (a node's progress): they go to disk first.
        self.flush()?;
        let path = self.meta_path(key)?;
        match value {
            Some(v) => Ok(write_atomic(&path, v, false)?),
            None => match fs::remove_file(&path) {
                Ok(()) => Ok(sync_dir(&self.root.join("meta"))?),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::Io(e)),
            },
        }
    }
}

/// Opens the small blocks' database (creating it only if `create`): 16 KiB pages (a ~900-byte
/// ledger object leaves a 4 KiB page 17% empty on average, a 16 KiB one 3%; SQLite does not
/// split rows that fit a page), exclusive locking (the store's `LOCK` already keeps other
/// processes out; no shared-memory file), write-ahead log, every commit fsynced.
fn open_db(path: &Path, create: bool) -> Result<Connection> {
    if !create && !path.exists() {
        return Err(Error::StoreCorrupt(format!(
            "{} is missing (a store of format 2 keeps its small blocks there)",
            path.display()
        )));
    }
    let mut flags = rusqlite::OpenFlags::default();
    if !create {
        flags.remove(rusqlite::OpenFlags::SQLITE_OPEN_CREATE);
    }
    let db = Connection::open_with_flags(path, flags).map_err(db_error)?;
    db.execute_batch(
        "PRAGMA page_size = 16384;
         PRAGMA locking_mode = EXCLUSIVE;",
    )
    .map_err(db_error)?;
    let mode: String = db
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "blocks.db: SQLite refused the write-ahead log (journal mode {mode})"
        )));
    }
    db.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 67108864;
         CREATE TABLE IF NOT EXISTS blocks (key BLOB PRIMARY KEY NOT NULL, data BLOB NOT NULL);",
    )
    .map_err(db_error)?;
    Ok(db)
}

/// The error of every database operation after writes were lost ([`Db::lost`]).
fn lost(why: &str) -> Error {
    Error::Io(std::io::Error::other(format!(
        "blocks.db: a failed write rolled back the blocks put since the last durability point \
         ({why}); they are not stored: reopen the store and write them again"
    )))
}

/// Deletes the files an upgrade moved into the database (and shard directories left empty).
fn remove_moved(paths: &mut Vec<PathBuf>) -> Result<()> {
    for path in paths.drain(..) {
        fs::remove_file(&path)?;
        if let Some(dir) = path.parent() {
            // An error means the directory still holds something.
            let _ = fs::remove_dir(dir);
        }
    }
    Ok(())
}

/// The multihash a block file's name spells (base32 lower case), if it is one.
fn multihash_of_key(name: &str) -> Option<Vec<u8>> {
    data_encoding::BASE32_NOPAD
        .decode(name.to_ascii_uppercase().as_bytes())
        .ok()
        .filter(|b| Cid::from_bytes(b).is_ok())
}

fn db_error(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseCorrupt | C::NotADatabase) => {
            Error::StoreCorrupt(format!("blocks.db: {e}"))
        }
        Some(C::DatabaseBusy | C::DatabaseLocked) => Error::StoreLocked(format!("blocks.db: {e}")),
        Some(C::DiskFull) => Error::Io(std::io::Error::new(ErrorKind::StorageFull, e.to_string())),
        Some(_) => Error::Io(std::io::Error::other(format!("blocks.db: {e}"))),
        // Not SQLite's: a value of an unexpected type, i.e. a damaged row.
        None => Error::StoreCorrupt(format!("blocks.db: {e}")),
    }
}
