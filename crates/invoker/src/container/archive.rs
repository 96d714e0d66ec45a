//! Unpacking of binary action code (a base64 zip, as `wsk action create x.zip` and the
//! Serverless plugin send it) into a directory the runner loads the action from.
//!
//! The archive is untrusted input: an entry whose path is absolute or climbs out with `..`
//! (a "zip slip") is refused rather than skipped, symbolic links are refused (they could point
//! a later entry outside the directory), and both the number of entries and the bytes they
//! unpack to are capped ([`ArchiveLimits`]), counted while unpacking rather than taken from the
//! sizes the archive claims, so a zip bomb cannot fill the device's SD card or its inodes.
//!
//! One archive is unpacked once, however many instances run it: a [`CodeStore`] keeps one
//! directory per distinct code (by SHA-256 of the base64 text) for as long as some instance
//! holds a [`CodeLease`] on it, and concurrent cold starts of the same code wait for the one
//! unpack in progress. Four cold instances of an action whose zip holds 400 MiB of zeros write
//! 400 MiB, not 1.6 GiB.

use super::backend::ContainerError;
use base64::Engine as _;
use parking_lot::Mutex;
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The file at the root of a native action's zip that is run (`go:*` and `blackbox` kinds).
pub const NATIVE_EXECUTABLE: &str = "exec";

/// Default of [`ArchiveLimits::max_bytes`]: what one action's archive may unpack to.
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;

/// Default of [`ArchiveLimits::max_entries`]: files and directories of one archive.
pub const DEFAULT_MAX_ENTRIES: u64 = 20_000;

/// What one archive may unpack to (the pool's `archive_max_bytes` and `archive_max_entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Total bytes of all files, counted as they are written.
    pub max_bytes: u64,
    /// Entries in the archive, and files and directories it creates (those its entries'
    /// paths imply included).
    pub max_entries: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_UNPACKED_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Decodes base64 `code` (whitespace is ignored) into bytes.
pub fn decode_base64(code: &str) -> Result<Vec<u8>, ContainerError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = if code.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        engine.decode(compact)
    } else {
        engine.decode(code)
    };
    decoded.map_err(|e| ContainerError::Archive(format!("code is not valid base64: {e}")))
}

/// Whether `bytes` start with the zip local-file-header magic (`PK\x03\x04`).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Decodes base64 `code` and unpacks the zip it holds into `dest` (created if missing).
pub fn unpack_base64_zip(
    code: &str,
    dest: &Path,
    limits: ArchiveLimits,
) -> Result<(), ContainerError> {
    let bytes = decode_base64(code)?;
    unpack_zip(&bytes, dest, limits)
}

/// Unpacks the zip in `bytes` into `dest` (created if missing).
///
/// Fails with [`ContainerError::Archive`] for anything that is not a readable zip, for entries
/// with absolute paths or `..` components, for symbolic links, for more entries than
/// `limits.max_entries` and when the unpacked size exceeds `limits.max_bytes`. On failure
/// `dest` may hold part of the archive; the caller removes it. File permission bits recorded in
/// the archive are kept, so executables stay executable; the file `exec` at the root (a native
/// action's executable) is always made 0755.
pub fn unpack_zip(bytes: &[u8], dest: &Path, limits: ArchiveLimits) -> Result<(), ContainerError> {
    if !is_zip(bytes) {
        return Err(ContainerError::Archive("code is not a zip archive".into()));
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| ContainerError::Archive(e.to_string()))?;
    // The count is that of the central directory the reader parsed, not a claimed total.
    let entries = archive.len() as u64;
    if entries > limits.max_entries {
        return Err(ContainerError::Archive(format!(
            "the archive has {entries} entries, more than the limit of {}",
            limits.max_entries
        )));
    }
    std::fs::create_dir_all(dest)?;
    let mut budget = limits.max_bytes;
    // Files and directories created: an entry `a/b/…/z.js` makes every missing directory on
    // its way, so the entry count alone would not bound the inodes one archive takes.
    let mut made: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| ContainerError::Archive(e.to_string()))?;
        let name = entry.name().to_owned();
        let relative = safe_relative_path(&name)?;
        if entry.is_symlink() {
            return Err(ContainerError::Archive(format!(
                "entry '{name}' is a symbolic link"
            )));
        }
        let target = dest.join(relative);
        if entry.is_dir() {
            make_dirs(dest, relative, &mut made, limits)?;
            continue;
        }
        if let Some(parent) = relative.parent() {
            make_dirs(dest, parent, &mut made, limits)?;
        }
        count_made(&mut made, limits)?;
        let mut file = std::fs::File::create(&target)?;
        // Read one byte more than the budget to notice an overflow without trusting the
        // sizes the archive claims.
        let copied = std::io::copy(&mut (&mut entry).take(budget + 1), &mut file)
            .map_err(|e| ContainerError::Archive(format!("entry '{name}': {e}")))?;
        if copied > budget {
            return Err(ContainerError::Archive(format!(
                "the archive unpacks to more than the limit of {} bytes",
                limits.max_bytes
            )));
        }
        budget -= copied;
        file.flush()?;
        use std::os::unix::fs::PermissionsExt as _;
        if relative == Path::new(NATIVE_EXECUTABLE) {
            // A native action's entry point runs whatever mode the zip recorded (none, when it
            // was made on Windows; 0700, which the runners' user could not execute).
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        } else if let Some(mode) = entry.unix_mode() {
            let mode = mode & 0o755;
            if mode != 0 {
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o600))?;
            }
        }
    }
    Ok(())
}

/// Creates the missing directories of `relative` under `dest`, counting each in `made`.
fn make_dirs(
    dest: &Path,
    relative: &Path,
    made: &mut u64,
    limits: ArchiveLimits,
) -> Result<(), ContainerError> {
    let mut at = dest.to_path_buf();
    for part in relative.components() {
        if let Component::Normal(name) = part {
            at.push(name);
            if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
                count_made(made, limits)?;
                std::fs::create_dir(&at)?;
            }
        }
    }
    Ok(())
}

/// Counts one more file or directory against `limits.max_entries`.
fn count_made(made: &mut u64, limits: ArchiveLimits) -> Result<(), ContainerError> {
    *made += 1;
    if *made > limits.max_entries {
        return Err(ContainerError::Archive(format!(
            "the archive unpacks to more than the limit of {} files and directories",
            limits.max_entries
        )));
    }
    Ok(())
}

/// Hard-links every file under `src` into `dst` (created if missing), recreating directories,
/// so an instance gets its own tree of the shared unpacked code without a copy of its bytes.
/// Files are copied where a link is impossible (another file system).
pub fn link_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&from, &to)?;
        } else if kind.is_file() && std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// How an unpack of one code ended, shared by every instance that waited for it.
type Unpacked = Result<PathBuf, UnpackFailure>;

/// A failed unpack, kept as text so every waiting instance gets it.
#[derive(Debug, Clone)]
enum UnpackFailure {
    /// The archive itself is refused (a developer error).
    Archive(String),
    /// The host failed (disk full, permissions).
    Io(String),
}

#[derive(Debug)]
struct Slot {
    /// Leases held (and being acquired) on this code.
    refs: usize,
    unpacked: Arc<tokio::sync::OnceCell<Unpacked>>,
}

/// The unpacked archives of the running instances, one directory per distinct code under
/// `root`, each removed when its last [`CodeLease`] goes. Safe to share between tasks.
#[derive(Debug)]
pub struct CodeStore {
    root: PathBuf,
    limits: ArchiveLimits,
    slots: Mutex<HashMap<String, Slot>>,
    next: AtomicU64,
}

impl CodeStore {
    /// A store keeping its directories under `root` (created when first needed).
    pub fn new(root: impl Into<PathBuf>, limits: ArchiveLimits) -> Self {
        Self {
            root: root.into(),
            limits,
            slots: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }

    /// The limits every archive is unpacked with.
    pub fn limits(&self) -> ArchiveLimits {
        self.limits
    }

    /// The unpacked directory of base64 zip `code`, unpacking it unless a live lease already
    /// holds it. Concurrent calls for the same code share one unpack and its outcome.
    pub async fn acquire(self: &Arc<Self>, code: &str) -> Result<CodeLease, ContainerError> {
        let key = hex(&sha2::Sha256::digest(code.as_bytes()));
        let unpacked = {
            let mut slots = self.slots.lock();
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
                refs: 0,
                unpacked: Arc::new(tokio::sync::OnceCell::new()),
            });
            slot.refs += 1;
            slot.unpacked.clone()
        };
        // Made before the unpack, so a failed or cancelled acquire gives its reference back.
        let mut lease = CodeLease {
            store: self.clone(),
            key,
            dir: PathBuf::new(),
        };
        let outcome = unpacked
            .get_or_init(|| async {
                let store = self.clone();
                let code = code.to_owned();
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let dir = self.root.join(format!("{}-{n}", lease.key));
                tokio::task::spawn_blocking(move || store.unpack_into(&code, dir))
                    .await
                    .unwrap_or_else(|e| Err(UnpackFailure::Io(e.to_string())))
            })
            .await;
        match outcome {
            Ok(dir) => {
                lease.dir = dir.clone();
                Ok(lease)
            }
            Err(UnpackFailure::Archive(e)) => Err(ContainerError::Archive(e.clone())),
            Err(UnpackFailure::Io(e)) => Err(ContainerError::Io(std::io::Error::other(e.clone()))),
        }
    }

    /// Unpacks into a temporary name first, so a half-written tree is never handed out.
    fn unpack_into(&self, code: &str, dir: PathBuf) -> Unpacked {
        let tmp = dir.with_extension("tmp");
        let result = std::fs::create_dir_all(&self.root)
            .map_err(ContainerError::Io)
            .and_then(|()| unpack_base64_zip(code, &tmp, self.limits))
            .and_then(|()| {
                std::fs::rename(&tmp, &dir)?;
                Ok(())
            });
        match result {
            Ok(()) => Ok(dir),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(match e {
                    ContainerError::Archive(text) => UnpackFailure::Archive(text),
                    other => UnpackFailure::Io(other.to_string()),
                })
            }
        }
    }

    /// Removes every directory under the root that no lease holds (left by a crashed run).
    pub fn cleanup(&self) {
        let keys: Vec<String> = self.slots.lock().keys().cloned().collect();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Directories of a live code (and its unpack in progress) start with its key.
            if keys.iter().any(|k| name.starts_with(k.as_str())) {
                continue;
            }
            let path = entry.path();
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove stale code dir");
            }
        }
    }

    fn release(&self, key: &str) {
        let removed = {
            let mut slots = self.slots.lock();
            let Some(slot) = slots.get_mut(key) else {
                return;
            };
            slot.refs -= 1;
            if slot.refs > 0 {
                return;
            }
            slots.remove(key)
        };
        let Some(dir) =
            removed.and_then(|s| s.unpacked.get().and_then(|u| u.as_ref().ok()).cloned())
        else {
            return;
        };
        // Removing a large tree takes a while: off the async threads when there are some.
        let remove = move || {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove code dir");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// One instance's hold on an unpacked archive; the directory stays while any lease on it does.
#[derive(Debug)]
pub struct CodeLease {
    store: Arc<CodeStore>,
    key: String,
    dir: PathBuf,
}

impl CodeLease {
    /// The unpacked directory (shared: read it, do not change it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for CodeLease {
    fn drop(&mut self) {
        self.store.release(&self.key);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entry name as a relative path that stays inside the destination, or an error.
fn safe_relative_path(name: &str) -> Result<&Path, ContainerError> {
    let path = Path::new(name);
    let escapes = name.contains('\\')
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes || name.is_empty() {
        return Err(ContainerError::Archive(format!(
            "entry '{name}' has an absolute path or a '..' component"
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, SimpleFileOptions::default())
                .expect("start");
            w.write_all(body.as_bytes()).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn the_native_exec_at_the_root_is_always_executable() {
        use std::os::unix::fs::PermissionsExt as _;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for name in ["exec", "lib/exec"] {
            w.start_file(name, SimpleFileOptions::default().unix_permissions(0o600))
                .expect("start");
            w.write_all(b"#!/bin/sh\n").expect("write");
        }
        let zip = w.finish().expect("finish").into_inner();
        let dir = tempfile::tempdir().expect("tempdir");
        unpack_zip(&zip, dir.path(), ArchiveLimits::default()).expect("unpack");
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("exec"), 0o755);
        assert_eq!(mode("lib/exec"), 0o600);
    }

    #[test]
    fn unpacks_nested_files_into_the_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = zip_of(&[("package.json", "{}"), ("lib/a.js", "x")]);
        unpack_zip(&zip, dir.path(), ArchiveLimits::default()).expect("unpack");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("lib/a.js")).expect("read"),
            "x"
        );
        assert!(dir.path().join("package.json").is_file());
    }

    #[test]
    fn refuses_entries_that_climb_out_or_are_absolute() {
        for bad in ["../evil.js", "a/../../evil.js", "/etc/evil"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let zip = zip_of(&[("ok.js", "x"), (bad, "y")]);
            let err = unpack_zip(&zip, dir.path(), ArchiveLimits::default()).expect_err(bad);
            assert!(matches!(err, ContainerError::Archive(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_bad_base64_and_non_zip_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            unpack_base64_zip("not base64!", dir.path(), ArchiveLimits::default()),
            Err(ContainerError::Archive(_))
        ));
        let text = base64::engine::general_purpose::STANDARD.encode("plain text");
        assert!(matches!(
            unpack_base64_zip(&text, dir.path(), ArchiveLimits::default()),
            Err(ContainerError::Archive(_))
        ));
    }

    #[test]
    fn decodes_base64_with_line_breaks() {
        let zip = zip_of(&[("index.js", "x")]);
        let mut b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
        b64.insert(8, '\n');
        assert_eq!(decode_base64(&b64).expect("decode"), zip);
    }

    /// A zip of one deflated file of `len` zeros (about a thousandth of that on disk).
    fn zeros_zip(name: &str, len: usize) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file(name, options).expect("start");
        let chunk = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).expect("write");
            left -= n;
        }
        w.finish().expect("finish").into_inner()
    }

    fn bytes_under(dir: &Path) -> u64 {
        let mut total = 0;
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let meta = entry.metadata().expect("metadata");
            total += if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            };
        }
        total
    }

    #[test]
    fn refuses_a_zip_bomb_while_unpacking_and_writes_no_more_than_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = zeros_zip("zeros.bin", 8 * 1024 * 1024);
        assert!(zip.len() < 64 * 1024, "{}", zip.len());
        let limits = ArchiveLimits {
            max_bytes: 1024 * 1024,
            max_entries: 10,
        };
        let err = unpack_zip(&zip, dir.path(), limits).expect_err("bomb");
        assert_eq!(
            err.to_string(),
            "invalid action archive: the archive unpacks to more than the limit of 1048576 bytes"
        );
        assert!(bytes_under(dir.path()) <= 1024 * 1024 + 1);
    }

    #[test]
    fn refuses_more_entries_than_the_limit_before_writing_any() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (0..11).map(|i| format!("f{i}.js")).collect();
        let entries: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
        let limits = ArchiveLimits {
            max_bytes: 1024,
            max_entries: 10,
        };
        let err = unpack_zip(&zip_of(&entries), dir.path(), limits).expect_err("entries");
        assert!(
            err.to_string()
                .contains("11 entries, more than the limit of 10"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("read").count(), 0);
        unpack_zip(&zip_of(&entries[..10]), dir.path(), limits).expect("ten fit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_acquires_share_one_unpack_until_the_last_lease_goes() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(CodeStore::new(root.path(), ArchiveLimits::default()));
        let engine = base64::engine::general_purpose::STANDARD;
        let code = engine.encode(zeros_zip("zeros.bin", 4 * 1024 * 1024));
        let acquires = (0..4).map(|_| {
            let store = store.clone();
            let code = code.clone();
            tokio::spawn(async move { store.acquire(&code).await })
        });
        let mut leases = Vec::new();
        for a in acquires {
            leases.push(a.await.expect("join").expect("lease"));
        }
        assert!(leases.iter().all(|l| l.dir() == leases[0].dir()));
        assert_eq!(std::fs::read_dir(root.path()).expect("read").count(), 1);
        assert_eq!(bytes_under(root.path()), 4 * 1024 * 1024);
        let dir = leases[0].dir().to_owned();
        leases.truncate(1);
        assert!(dir.is_dir(), "kept while a lease is held");
        drop(leases);
        for _ in 0..100 {
            if !dir.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!dir.exists(), "removed with the last lease");
        // A fresh acquire unpacks again.
        let again = store.acquire(&code).await.expect("lease");
        assert!(again.dir().join("zeros.bin").is_file());
    }

    #[tokio::test]
    async fn a_failed_unpack_is_shared_and_forgotten_with_its_last_lease() {
        let root = tempfile::tempdir().expect("tempdir");
        let limits = ArchiveLimits {
            max_bytes: 1000,
            max_entries: 10,
        };
        let store = Arc::new(CodeStore::new(root.path(), limits));
        let code = base64::engine::general_purpose::STANDARD.encode(zeros_zip("z", 5000));
        for _ in 0..2 {
            let err = store.acquire(&code).await.expect_err("bomb");
            assert!(matches!(err, ContainerError::Archive(_)), "{err}");
        }
        assert!(store.slots.lock().is_empty());
        assert_eq!(std::fs::read_dir(root.path()).expect("read").count(), 0);
    }

    #[test]
    fn cleanup_removes_what_no_lease_holds() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("abc-0/lib")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("abc-1.tmp")).expect("mkdir");
        let store = CodeStore::new(root.path(), ArchiveLimits::default());
        store.cleanup();
        assert_eq!(std::fs::read_dir(root.path()).expect("read").count(), 0);
    }

    #[test]
    fn directories_an_entry_implies_count_against_the_entry_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = "d/".repeat(20) + "x.js";
        let err = unpack_zip(&zip_of(&[(&deep, "x")]), dir.path(), SMALL).expect_err("deep");
        assert!(
            err.to_string()
                .contains("more than the limit of 8 files and directories"),
            "{err}"
        );
        assert!(census(dir.path()).0 <= 8);
        unpack_zip(
            &zip_of(&[("a/b/c.js", "x"), ("a/d.js", "y")]),
            dir.path(),
            SMALL,
        )
        .expect("four fit");
    }

    #[test]
    fn link_tree_shares_file_contents_without_copying() {
        use std::os::unix::fs::MetadataExt as _;
        let src = tempfile::tempdir().expect("tempdir");
        let dst = tempfile::tempdir().expect("tempdir");
        unpack_zip(
            &zip_of(&[("index.js", "x"), ("lib/a.js", "y")]),
            src.path(),
            ArchiveLimits::default(),
        )
        .expect("unpack");
        link_tree(src.path(), &dst.path().join("code")).expect("link");
        let a = std::fs::metadata(src.path().join("lib/a.js")).expect("meta");
        let b = std::fs::metadata(dst.path().join("code/lib/a.js")).expect("meta");
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
        assert_eq!(
            std::fs::read_to_string(dst.path().join("code/index.js")).expect("read"),
            "x"
        );
    }

    /// Files and directories under `dir` (recursively) and the bytes of the files; panics on
    /// anything else (a symbolic link) or a path outside `dir`.
    fn census(dir: &Path) -> (u64, u64) {
        let (mut entries, mut bytes) = (0, 0);
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).expect("metadata");
            assert!(entry.path().starts_with(dir));
            entries += 1;
            if meta.is_dir() {
                let (e, b) = census(&entry.path());
                entries += e;
                bytes += b;
            } else {
                assert!(meta.is_file(), "{}", entry.path().display());
                bytes += meta.len();
            }
        }
        (entries, bytes)
    }

    use proptest::prelude::any;
    use proptest::sample::Index;

    const SMALL: ArchiveLimits = ArchiveLimits {
        max_bytes: 4096,
        max_entries: 8,
    };

    /// A valid zip of a few entries (some deflated, one of zeros) to corrupt.
    fn sample_zip(zeros: usize) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let deflated =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.add_directory("lib/", SimpleFileOptions::default())
            .expect("dir");
        w.start_file("index.js", SimpleFileOptions::default())
            .expect("start");
        w.write_all(b"exports.main = () => ({});").expect("write");
        w.start_file("lib/zeros.bin", deflated).expect("start");
        w.write_all(&vec![0u8; zeros]).expect("write");
        w.finish().expect("finish").into_inner()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_bytes_never_panic_or_exceed_the_limits(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            magic in proptest::prelude::any::<bool>(),
        ) {
            let mut bytes = if magic { b"PK\x03\x04".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&tail);
            let dir = tempfile::tempdir().expect("tempdir");
            let dest = dir.path().join("code");
            let _ = unpack_zip(&bytes, &dest, SMALL);
            if dest.exists() {
                let (entries, total) = census(&dest);
                proptest::prop_assert!(entries <= SMALL.max_entries);
                // One byte past the budget is read to notice the overflow.
                proptest::prop_assert!(total <= SMALL.max_bytes + 1);
            }
        }

        #[test]
        fn corrupted_archives_never_panic_or_exceed_the_limits(
            zeros in 0usize..20_000,
            flips in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..12),
        ) {
            let mut bytes = sample_zip(zeros);
            for (at, value) in &flips {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let dest = dir.path().join("code");
            let result = unpack_zip(&bytes, &dest, SMALL);
            if dest.exists() {
                let (entries, total) = census(&dest);
                proptest::prop_assert!(entries <= SMALL.max_entries);
                proptest::prop_assert!(total <= SMALL.max_bytes + 1);
                if result.is_ok() {
                    proptest::prop_assert!(total <= SMALL.max_bytes);
                }
            }
            if flips.is_empty() {
                proptest::prop_assert_eq!(result.is_ok(), zeros + 26 <= 4096);
            }
        }
    }
}
