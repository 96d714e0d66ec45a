//! The data directory's lock: while `edgewhisk serve` runs on a data directory it holds an
//! exclusive `flock` on `edgewhisk.lock` there. `edgewhisk admin restore` takes the same lock,
//! so it never replaces a store a server has open, and no server starts on the directory while
//! a restore runs (nor does a second server). The kernel drops the lock when the process ends,
//! however it ends; the (empty) file stays.

use anyhow::Context as _;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "edgewhisk.lock";

/// The held lock of a data directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: Flock<File>,
}

/// The lock file of `data_dir`.
pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCK_FILE)
}

/// Takes `data_dir`'s lock (which must exist) without waiting; `None` when another process
/// holds it.
pub fn try_lock(data_dir: &Path) -> anyhow::Result<Option<DataDirLock>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = lock_path(data_dir);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(file) => Ok(Some(DataDirLock { _file: file })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}
