//! Online backup and restore of the SQLite store with SQLite's backup API
//! (`docs/design/019-schema-and-backups.md`, `docs/upgrades.md`).
//!
//! [`backup`] copies a store that a server may be writing meanwhile: it holds one read
//! transaction on the store for the whole copy, so the copy is the store as of that moment
//! (WAL readers neither block nor are blocked by writers, and the backup API never restarts
//! because nothing changes under its snapshot). The copy goes to a temporary file beside the
//! target, is checked, synced and renamed over the target. [`restore`] checks a backup
//! ([`inspect`]) and copies it over a store nobody else has open, in one transaction.

use super::schema::{self, REQUIRED_TABLES};
use crate::StoreError;
use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pages copied per backup step.
const PAGES_PER_STEP: i32 = 256;

/// Pause between two backup steps, leaving the disk to the server in between.
const STEP_PAUSE: Duration = Duration::from_millis(2);

/// How long a restore waits for another connection's lock on the store.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be read, written, synced or renamed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// To which file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not an intact edgewhisk store.
    #[error("{} is not an intact edgewhisk store: {why}", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The store's schema is newer than this build knows.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backup would overwrite the store it copies.
    #[error("the backup target {} is the store itself", .0.display())]
    TargetIsStore(PathBuf),
}

/// What a store holds: the summary `backup` and `restore` report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSummary {
    /// Its schema version (`PRAGMA user_version`).
    pub schema_version: u32,
    /// The edgewhisk release that last opened it, when recorded.
    pub last_opened_by: Option<String>,
    /// Actions.
    pub actions: u64,
    /// Packages and bindings.
    pub packages: u64,
    /// Triggers.
    pub triggers: u64,
    /// Rules.
    pub rules: u64,
    /// Keys (identities).
    pub keys: u64,
    /// Namespaces with their own limits.
    pub namespace_limits: u64,
    /// Activation records.
    pub activations: u64,
    /// The database's size in bytes.
    pub bytes: u64,
}

impl fmt::Display for StoreSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} actions, {} packages, {} triggers, {} rules, {} keys, {} namespace limits, \
             {} activations; {} bytes, schema version {}",
            self.actions,
            self.packages,
            self.triggers,
            self.rules,
            self.keys,
            self.namespace_limits,
            self.activations,
            self.bytes,
            self.schema_version
        )?;
        if let Some(release) = &self.last_opened_by {
            write!(f, ", last opened by {release}")?;
        }
        Ok(())
    }
}

/// Copies the store at `db` (which a server may be serving and writing) to `target`: a
/// self-contained SQLite file, checked with `PRAGMA integrity_check`, written to a temporary
/// file beside `target`, synced and renamed over it. Returns what the copy holds.
pub fn backup(db: &Path, target: &Path) -> Result<StoreSummary, BackupError> {
    if same_file(db, target) {
        return Err(BackupError::TargetIsStore(target.to_owned()));
    }
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_a_store(db, &e))?;
    src.busy_timeout(BUSY_TIMEOUT)?;
    // One read transaction for the whole copy: its snapshot is what is copied.
    src.execute_batch("BEGIN DEFERRED")?;
    check_is_store(&src, db)?;
    let tmp = temporary_beside(target);
    let copied = copy_to(&src, &tmp);
    src.execute_batch("COMMIT")?;
    let result = copied.and_then(|summary| {
        sync_file(&tmp)?;
        std::fs::rename(&tmp, target).map_err(io("renaming the backup to", target))?;
        sync_parent(target)?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Copies `src` (in a read transaction) into a new file `tmp`; returns what it holds.
fn copy_to(src: &Connection, tmp: &Path) -> Result<StoreSummary, BackupError> {
    // A leftover from an interrupted backup: ours to replace.
    let _ = std::fs::remove_file(tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io("creating", tmp))?;
    let mut dst = Connection::open(tmp)?;
    Backup::new(src, &mut dst)?.run_to_completion(PAGES_PER_STEP, STEP_PAUSE, None)?;
    // A rollback-journal file, so reading it needs no -wal or -shm beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    check_integrity(&dst, tmp)?;
    let summary = summarize(&dst, tmp)?;
    dst.close().map_err(|(_, e)| e)?;
    Ok(summary)
}

/// Checks that `file` is an intact edgewhisk store this build can open, without changing
/// it; returns what it holds.
pub fn inspect(file: &Path) -> Result<StoreSummary, BackupError> {
    let conn = open_immutable(file)?;
    check_is_store(&conn, file)?;
    check_integrity(&conn, file)?;
    let summary = summarize(&conn, file)?;
    schema::check_known(summary.schema_version)?;
    Ok(summary)
}

/// Replaces the contents of the store at `db` (created if missing) with the backup `file`,
/// once [`inspect`] found it intact. Nobody else may have the store open (the caller stops the
/// server first). The copy is one transaction: if it fails, the store is as it was. The
/// store's write-ahead log is checkpointed and removed by SQLite, never by hand. Returns what
/// the store holds afterwards; the server migrates an older schema when it starts.
pub fn restore(file: &Path, db: &Path) -> Result<StoreSummary, BackupError> {
    if same_file(db, file) {
        return Err(BackupError::TargetIsStore(file.to_owned()));
    }
    inspect(file)?;
    let src = open_immutable(file)?;
    let mut dst = Connection::open(db)?;
    dst.busy_timeout(BUSY_TIMEOUT)?;
    // Out of WAL mode first: this checkpoints a leftover WAL into the store and deletes it,
    // and lets the copy take the backup's page size whatever the store's.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    Backup::new(&src, &mut dst)?.step(-1)?;
    check_integrity(&dst, db)?;
    let summary = summarize(&dst, db)?;
    dst.close().map_err(|(_, e)| e)?;
    Ok(summary)
}

/// Opens `file` read-only as a file nothing changes: no lock, no WAL or shared-memory file.
fn open_immutable(file: &Path) -> Result<Connection, BackupError> {
    let meta = std::fs::metadata(file).map_err(io("reading", file))?;
    if !meta.is_file() {
        return Err(not_a_store_because(file, "not a regular file"));
    }
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    if Path::new(&wal).exists() {
        return Err(not_a_store_because(
            file,
            "a write-ahead log (-wal) lies beside it, so it is not a self-contained copy: \
             make one with `edgewhisk admin backup`",
        ));
    }
    let uri = format!("file:{}?immutable=1", uri_path(file));
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| not_a_store(file, &e))
}

/// `path` for a `file:` URI: absolute, with the characters URIs reserve percent-encoded.
fn uri_path(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = String::new();
    for b in absolute.as_os_str().as_encoded_bytes() {
        match *b {
            b'%' | b'?' | b'#' | 0..=0x20 | 0x7f.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(char::from(*b)),
        }
    }
    out
}

/// Fails unless `conn` holds the tables of an edgewhisk store.
fn check_is_store(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    for table in REQUIRED_TABLES {
        let present: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .map_err(|e| not_a_store(path, &e))?;
        if !present {
            return Err(not_a_store_because(
                path,
                &format!("it has no table '{table}'"),
            ));
        }
    }
    Ok(())
}

/// Fails unless `PRAGMA integrity_check` answers `ok`.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check(10)")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| not_a_store(path, &e))?;
    if problems != ["ok"] {
        return Err(not_a_store_because(
            path,
            &format!("integrity check failed: {}", problems.join("; ")),
        ));
    }
    Ok(())
}

/// Counts what the store at `conn` holds.
fn summarize(conn: &Connection, path: &Path) -> Result<StoreSummary, BackupError> {
    let count = |sql: &str| -> Result<u64, BackupError> {
        conn.query_row(sql, [], |row| row.get(0))
            .map_err(|e| not_a_store(path, &e))
    };
    let in_collection = |collection: &str| {
        count(&format!(
            "SELECT COUNT(*) FROM entities WHERE collection = '{collection}'"
        ))
    };
    Ok(StoreSummary {
        schema_version: schema::user_version(conn)?,
        last_opened_by: schema::last_opened_by(conn)?,
        actions: in_collection("actions")?,
        packages: in_collection("packages")?,
        triggers: in_collection("triggers")?,
        rules: in_collection("rules")?,
        keys: count("SELECT COUNT(*) FROM identities")?,
        namespace_limits: count("SELECT COUNT(*) FROM namespace_limits")?,
        activations: count("SELECT COUNT(*) FROM activations")?,
        bytes: count("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")?,
    })
}

/// `.NAME.tmp-PID` beside `target`.
fn temporary_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether `a` and `b` name the same file (`b` may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = parent.unwrap_or(Path::new(".")).canonicalize().ok()?;
        Some(dir.join(p.file_name()?))
    };
    matches!((canonical(a), canonical(b)), (Some(a), Some(b)) if a == b)
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", path))
}

/// Syncs the directory holding `path`, so that a rename in it survives a power loss.
fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing directory", dir))
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { what, path, source }
}

/// A failure to read `path` as a database: SQLite's own words for what is wrong.
fn not_a_store(path: &Path, e: &rusqlite::Error) -> BackupError {
    not_a_store_because(path, &e.to_string())
}

fn not_a_store_because(path: &Path, why: &str) -> BackupError {
    BackupError::NotAStore {
        path: path.to_owned(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_what_uris_reserve() {
        assert_eq!(uri_path(Path::new("/a b/c?d#e%f")), "/a%20b/c%3Fd%23e%25f");
    }

    #[test]
    fn same_file_sees_through_dots_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("edgewhisk.db");
        std::fs::write(&db, b"").unwrap();
        assert!(same_file(&db, &dir.path().join("./edgewhisk.db")));
        assert!(!same_file(&db, &dir.path().join("other.db")));
    }
}
