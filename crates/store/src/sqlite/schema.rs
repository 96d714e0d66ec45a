//! The SQLite store's schema, versioned by `PRAGMA user_version`: an ordered list of
//! forward-only migrations, each applied once at open in its own immediate transaction. A
//! store made before versioning (edgewhisk 0.1.0: `user_version` 0, tables present) is the
//! version 1 baseline; an empty file gets every migration; a store newer than this build is
//! refused. Why and how: `docs/design/019-schema-and-backups.md`.

use crate::StoreError;
use edgewhisk_entity::identity::KeyHash;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::path::Path;

/// One forward-only schema change.
struct Migration {
    /// The `user_version` the store has once it is applied.
    version: u32,
    /// What it does, for the log.
    what: &'static str,
    /// Applies it inside the migration's transaction.
    apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// Every migration, in order; versions are 1, 2, 3, … Never edit a released one: add one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "the tables and indexes of edgewhisk 0.1.0",
        apply: baseline,
    },
    Migration {
        version: 2,
        what: "hash the keys that releases before key hashing stored in the clear",
        apply: hash_plain_keys,
    },
    Migration {
        version: 3,
        what: "a store_meta table recording which edgewhisk last opened the store",
        apply: store_meta,
    },
];

/// The newest schema version this build knows (and brings every store it opens to).
pub const SCHEMA_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The tables every store needs: the version 1 baseline; the tables the store's queries
/// read.
pub(crate) const REQUIRED_TABLES: [&str; 4] =
    ["entities", "activations", "identities", "namespace_limits"];

/// The `store_meta` key naming the edgewhisk release that last opened the store.
const LAST_OPENED_BY: &str = "last_opened_by";

/// The tables of edgewhisk 0.1.0, which created them at every open, so `IF NOT EXISTS`: on
/// a store made by a release before versioning this changes nothing, and such a store is the
/// version 1 baseline.
const BASELINE: &str = "
CREATE TABLE IF NOT EXISTS entities (
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    collection TEXT NOT NULL,
    updated INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (path, name)
);
CREATE INDEX IF NOT EXISTS entities_by_collection ON entities (collection, path, updated);
CREATE TABLE IF NOT EXISTS activations (
    id TEXT PRIMARY KEY NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT,
    match_name TEXT NOT NULL,
    start INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activations_by_namespace ON activations (namespace, start);
CREATE TABLE IF NOT EXISTS identities (
    uuid TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identities_by_subject ON identities (subject);
CREATE INDEX IF NOT EXISTS identities_by_namespace ON identities (namespace);
CREATE TABLE IF NOT EXISTS namespace_limits (
    namespace TEXT PRIMARY KEY NOT NULL,
    doc TEXT NOT NULL
);
";

fn baseline(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(BASELINE)
}

/// Hashes the keys of identities stored in the clear (edgewhisk 0.1.0 did this at every
/// open; a no-op on every store it opened).
fn hash_plain_keys(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let plain: Vec<(String, String)> = tx
        .prepare("SELECT uuid, key FROM identities WHERE key NOT LIKE 'sha256$%'")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (uuid, key) in &plain {
        tx.execute(
            "UPDATE identities SET key = ?1 WHERE uuid = ?2",
            params![KeyHash::stored_form(key), uuid],
        )?;
    }
    if !plain.is_empty() {
        tracing::info!(keys = plain.len(), "hashed keys stored in the clear");
    }
    Ok(())
}

fn store_meta(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE store_meta (
            key TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        ) WITHOUT ROWID;",
    )
}

/// The store's schema version.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// `Ok` when this build knows schema `found`.
pub(crate) fn check_known(found: u32) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Refuses the store at `path` if its schema is newer than this build knows, before anything
/// (such as switching it to WAL mode) changes the file.
pub(super) fn check_file(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(path)?;
    check_known(user_version(&conn)?)
}

/// Brings the store at `path` (opened as `conn`) to [`SCHEMA_VERSION`] and records this
/// release in `store_meta`; refuses a store newer than this build. Returns the version the
/// store had.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let found = user_version(conn)?;
    check_known(found)?;
    let empty: bool = conn.query_row("SELECT COUNT(*) = 0 FROM sqlite_master", [], |row| {
        row.get(0)
    })?;
    if found == 0 && empty {
        // Lets retention give freed pages back to the file system. It can only be set on a
        // database without tables (and in WAL mode only by a VACUUM, instant while empty);
        // older databases keep reusing their freed pages instead.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch("VACUUM")?;
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process (an admin command, a second start) may have migrated meanwhile.
        let now = user_version(&tx)?;
        check_known(now)?;
        if now >= migration.version {
            continue;
        }
        (migration.apply)(&tx)?;
        tx.pragma_update(None, "user_version", migration.version)?;
        tx.commit()?;
        if migration.version == 1 && !empty {
            tracing::info!(
                path = %path.display(),
                "store made before schema versioning: stamped as schema version 1"
            );
        } else {
            tracing::info!(
                path = %path.display(),
                version = migration.version,
                migration = migration.what,
                "applied store migration"
            );
        }
    }
    record_release(conn)?;
    Ok(found)
}

/// Records this release as the last to open the store (written only when it changed).
fn record_release(conn: &Connection) -> rusqlite::Result<()> {
    let release = concat!("edgewhisk ", env!("CARGO_PKG_VERSION"));
    let recorded: Option<String> = conn
        .query_row(
            "SELECT value FROM store_meta WHERE key = ?1",
            params![LAST_OPENED_BY],
            |row| row.get(0),
        )
        .optional()?;
    if recorded.as_deref() != Some(release) {
        conn.execute(
            "INSERT INTO store_meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![LAST_OPENED_BY, release],
        )?;
    }
    Ok(())
}

/// The release that last opened the store at `conn`, if recorded (schema version 3 on).
pub(crate) fn last_opened_by(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let has_meta: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'store_meta'",
        [],
        |row| row.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    conn.query_row(
        "SELECT value FROM store_meta WHERE key = ?1",
        params![LAST_OPENED_BY],
        |row| row.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.what);
        }
    }

    #[test]
    fn an_empty_file_gets_every_migration_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn, &path).unwrap(), 0);
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, 2, "incremental auto-vacuum on a new store");
        assert_eq!(
            last_opened_by(&conn).unwrap().as_deref(),
            Some(concat!("edgewhisk ", env!("CARGO_PKG_VERSION")))
        );
        // Opening again applies nothing.
        assert_eq!(migrate(&mut conn, &path).unwrap(), SCHEMA_VERSION);

        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, known }
                if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err}"
        );
    }
}
