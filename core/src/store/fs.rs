//! The filesystem block store: medshare's embedded default.
//!
//! Layout under the store directory:
//!
//! ```text
//! STORE                 "medshare-fs-store 1\n" (format marker)
//! LOCK                  held with an exclusive advisory lock while a handle is open
//! HEAD                  the head CID and a newline (absent: no head)
//! blocks/<xy>/<key>     one file per block; <key> = base32 multihash, <xy> = its next-to-last 2 chars
//! tmp/                  files being written; emptied on open
//! ```
//!
//! Every file that becomes visible under `blocks/` or as `HEAD` was written completely to `tmp/`,
//! flushed to disk (`fsync`), then renamed into place, and the directory flushed. A crash at any
//! point leaves either the old or the new state, never a partial file; leftovers in `tmp/` are
//! removed on the next open. A second handle — from this or another process — is refused with
//! [`Error::StoreLocked`] instead of racing writes.
//!
//! I/O is blocking inside the async methods: on native targets a caller that cares runs them on a
//! blocking-friendly executor; medshare's own drivers (CLI, Python) block anyway.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cid::Cid;
use crate::error::{Error, Result};
use crate::store::{BlockStore, head_conflict};
use crate::unixfs::Block;

const MARKER: &str = "medshare-fs-store 1\n";

/// A block store in a directory. Holds the directory's lock while alive.
pub struct FsStore {
    root: PathBuf,
    lock: File,
    head: Mutex<()>,
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
        match fs::read_to_string(&marker) {
            Ok(m) if m == MARKER => {}
            Ok(m) => {
                return Err(Error::StoreCorrupt(format!(
                    "unknown store format marker {:?}",
                    m.trim()
                )));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                write_atomic(&marker, MARKER.as_bytes(), false)?
            }
            Err(e) => return Err(Error::Io(e)),
        }
        fs::create_dir_all(root.join("blocks"))?;
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        // Anything in tmp/ is an interrupted write: it never became visible, drop it.
        for entry in fs::read_dir(&tmp)? {
            let entry = entry?;
            fs::remove_file(entry.path())?;
        }
        let store = FsStore {
            root,
            lock,
            head: Mutex::new(()),
        };
        store.read_head()?;
        Ok(store)
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

    /// Writes one block to tmp/ and flushes it; returns the temp path and the final path.
    fn stage(&self, cid: &Cid, data: &[u8]) -> Result<Option<(PathBuf, PathBuf)>> {
        let dest = self.block_path(cid);
        if dest.exists() {
            return Ok(None);
        }
        let (tmp, mut file) = self.tmp_file()?;
        file.write_all(data)?;
        file.sync_all()?;
        Ok(Some((tmp, dest)))
    }

    fn publish(&self, staged: Vec<(PathBuf, PathBuf)>) -> Result<()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (tmp, dest) in staged {
            let dir = dest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            if !dir.exists() {
                fs::create_dir_all(&dir)?;
                sync_dir(&self.root.join("blocks"))?;
            }
            fs::rename(&tmp, &dest)?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for d in dirs {
            sync_dir(&d)?;
        }
        Ok(())
    }

    fn read_head(&self) -> Result<Option<Cid>> {
        match fs::read_to_string(self.root.join("HEAD")) {
            Ok(text) => {
                let line = text
                    .strip_suffix('\n')
                    .ok_or_else(|| Error::StoreCorrupt("HEAD is not a CID line".into()))?;
                line.parse()
                    .map(Some)
                    .map_err(|e| Error::StoreCorrupt(format!("HEAD: {e}")))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(e)),
        }
    }
}

impl Drop for FsStore {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = self.lock.unlock();
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl BlockStore for FsStore {
    async fn put(&self, cid: &Cid, data: &[u8]) -> Result<()> {
        if let Some(staged) = self.stage(cid, data)? {
            self.publish(vec![staged])?;
        }
        Ok(())
    }

    async fn put_many(&self, blocks: &[Block]) -> Result<()> {
        let mut staged = Vec::with_capacity(blocks.len());
        for b in blocks {
            if let Some(s) = self.stage(&b.cid, &b.data)? {
                staged.push(s);
            }
        }
        self.publish(staged)
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let path = self.block_path(cid);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
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
        let mut data = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, len + 1), &mut data)?;
        Ok(Some(data))
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.block_path(cid).exists())
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        match fs::remove_file(self.block_path(cid)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io(e)),
        }
    }

    async fn head(&self) -> Result<Option<Cid>> {
        self.read_head()
    }

    async fn compare_and_swap_head(&self, expected: Option<&Cid>, new: Option<&Cid>) -> Result<()> {
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
            Some(cid) => write_atomic(&path, format!("{cid}\n").as_bytes(), false),
            None => {
                fs::remove_file(&path)?;
                sync_dir(&self.root)
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directories can be fsynced on Unix to persist renames; elsewhere this is best effort.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` with `bytes` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory. With `private`, the file is created readable by its owner only.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut rand = [0u8; 8];
    getrandom::fill(&mut rand).map_err(|_| Error::Rng)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.{}.tmp",
        data_encoding::HEXLOWER.encode(&rand)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
