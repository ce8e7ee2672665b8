//! File helpers for native targets (a leaf module): atomic replacement of small files, and an
//! output file for decrypted records that never leaves partial plaintext behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Flushes a directory so that renames and creations in it survive a crash (Unix; elsewhere
/// best effort).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

pub(crate) fn random_hex() -> io::Result<String> {
    let mut rand = [0u8; 8];
    getrandom::fill(&mut rand).map_err(|_| io::Error::other("random number generator failed"))?;
    Ok(data_encoding::HEXLOWER.encode(&rand))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Replaces `path` with `bytes` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory. With `private`, the file is created readable by its owner only.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", random_hex()?));
    let result = (|| {
        let mut file = create_new(&tmp, private)?;
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

/// Creates `path` with `bytes`, refusing to replace anything already there (a key file must
/// never overwrite another): the bytes are written to a temp file, flushed, then hard-linked
/// into place, which fails if `path` exists.
pub fn write_new(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = parent_dir(path);
    let tmp = dir.join(format!(".new.{}.tmp", random_hex()?));
    let result = (|| {
        let mut file = create_new(&tmp, private)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::hard_link(&tmp, path)?;
        sync_dir(&dir)
    })();
    let _ = fs::remove_file(&tmp);
    result
}

fn create_new(path: &Path, private: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)
}

/// Named partial files being written right now (only used where the OS cannot create unnamed
/// files): [`remove_partial_files`] deletes them, e.g. from a Ctrl-C handler.
static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Deletes every partial output file still being written by this process. Call it from a
/// signal handler before exiting: no decrypted bytes then survive an interrupted read.
pub fn remove_partial_files() {
    if let Ok(mut list) = PARTIALS.lock() {
        for p in list.drain(..) {
            let _ = fs::remove_file(p);
        }
    }
}

enum Target {
    /// An unnamed file (Linux `O_TMPFILE`): nothing is visible until [`Output::commit`].
    #[cfg(target_os = "linux")]
    Unnamed { file: File, dest: PathBuf },
    /// A named temp file beside the destination, removed on drop unless committed.
    Named {
        file: File,
        tmp: PathBuf,
        dest: PathBuf,
    },
    /// Not a regular file (a pipe, a terminal, `/dev/stdout`): written straight through.
    Stream(File),
}

/// Where decrypted plaintext goes when the caller names a path: the bytes become visible
/// under that path only once complete and authenticated ([`Output::commit`]); if the read
/// fails, or the process is killed, nothing of them remains. A path naming something other than
/// a regular file (a pipe, a device, `/dev/stdout`) is written through, never replaced, and a
/// symbolic link is followed (its target is replaced, not the link).
pub struct Output {
    target: Target,
    committed: bool,
}

impl Output {
    /// Prepares to write `path`.
    pub fn create(path: &Path) -> io::Result<Output> {
        let meta = fs::metadata(path);
        let dest = match &meta {
            // Follow a symlink to what it names; write through anything that is not a file.
            Ok(m) if !m.is_file() => {
                let file = OpenOptions::new().write(true).open(path)?;
                return Ok(Output {
                    target: Target::Stream(file),
                    committed: false,
                });
            }
            Ok(_) => fs::canonicalize(path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
        };
        let dir = parent_dir(&dest);
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{Mode, OFlags};
            if let Ok(fd) = rustix::fs::openat(
                rustix::fs::CWD,
                &dir,
                OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                return Ok(Output {
                    target: Target::Unnamed {
                        file: File::from(fd),
                        dest,
                    },
                    committed: false,
                });
            }
        }
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{file_name}.{}.partial", random_hex()?));
        let file = create_new(&tmp, true)?;
        if let Ok(mut list) = PARTIALS.lock() {
            list.push(tmp.clone());
        }
        Ok(Output {
            target: Target::Named { file, tmp, dest },
            committed: false,
        })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut File {
        match &mut self.target {
            #[cfg(target_os = "linux")]
            Target::Unnamed { file, .. } => file,
            Target::Named { file, .. } | Target::Stream(file) => file,
        }
    }

    /// Makes the complete file visible under its path (flushed to disk first).
    pub fn commit(mut self) -> io::Result<()> {
        self.committed = true;
        match &mut self.target {
            #[cfg(target_os = "linux")]
            Target::Unnamed { file, dest } => {
                file.sync_all()?;
                let dir = parent_dir(dest);
                let fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
                let link = |to: &Path| {
                    rustix::fs::linkat(
                        rustix::fs::CWD,
                        fd.as_str(),
                        rustix::fs::CWD,
                        to,
                        rustix::fs::AtFlags::SYMLINK_FOLLOW,
                    )
                    .map_err(io::Error::from)
                };
                match link(dest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // Replace atomically: link under a temp name, then rename over.
                        let tmp = dir.join(format!(".medshare.{}.partial", random_hex()?));
                        link(&tmp)?;
                        if let Err(e) = fs::rename(&tmp, &*dest) {
                            let _ = fs::remove_file(&tmp);
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
                sync_dir(&dir)
            }
            Target::Named { file, tmp, dest } => {
                file.sync_all()?;
                let renamed = fs::rename(&*tmp, &*dest);
                if renamed.is_err() {
                    let _ = fs::remove_file(&*tmp);
                }
                forget_partial(tmp);
                renamed?;
                sync_dir(&parent_dir(dest))
            }
            Target::Stream(file) => file.flush(),
        }
    }
}

fn forget_partial(tmp: &Path) {
    if let Ok(mut list) = PARTIALS.lock() {
        list.retain(|p| p != tmp);
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let (false, Target::Named { tmp, .. }) = (self.committed, &self.target) {
            let _ = fs::remove_file(tmp);
            forget_partial(tmp);
        }
        // An unnamed file vanishes with its descriptor.
    }
}
