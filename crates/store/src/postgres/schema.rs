//! The schema and its migrations. Each migration runs once, in order, recorded in
//! `schema_migrations`; all of them run in one transaction that first takes an advisory lock,
//! so that controllers starting at the same time neither race nor apply one twice.

use super::error::classify;
use crate::StoreError;
use tokio_postgres::Client;

/// Key of the transaction-level advisory lock held while migrating ("edgewhisk" in ASCII).
const MIGRATION_LOCK: i64 = 0x0065_6467_6577_6869;

/// `(version, SQL)`, in order. Never edit a released migration: add one.
///
/// Text columns that are compared or sorted use the "C" collation, so that order and range
/// scans are by bytes whatever the database's locale, as in SQLite and the memory store.
pub(super) const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE entities (
    path TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    collection TEXT COLLATE "C" NOT NULL,
    updated BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (path, name)
);
CREATE INDEX entities_by_collection ON entities (collection, path, updated);
CREATE TABLE activations (
    id TEXT COLLATE "C" PRIMARY KEY,
    namespace TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    path TEXT,
    match_name TEXT COLLATE "C" NOT NULL,
    start BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX activations_by_namespace ON activations (namespace, start DESC, id);
CREATE TABLE identities (
    uuid TEXT COLLATE "C" PRIMARY KEY,
    subject TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX identities_by_subject ON identities (subject);
CREATE INDEX identities_by_namespace ON identities (namespace);
CREATE TABLE namespace_limits (
    namespace TEXT COLLATE "C" PRIMARY KEY,
    doc TEXT NOT NULL
);
"#,
)];

/// Applies the migrations this database has not seen; returns how many it applied. A database
/// that has a migration this build does not know is refused: a newer release migrated it, and a
/// schema is never downgraded.
pub(super) async fn migrate(client: &mut Client) -> Result<usize, StoreError> {
    apply(client).await.map_err(|e| match e {
        Migrate::Postgres(e) => classify(&e),
        Migrate::TooNew(e) => e,
    })
}

/// Why [`apply`] failed.
enum Migrate {
    Postgres(tokio_postgres::Error),
    TooNew(StoreError),
}

impl From<tokio_postgres::Error> for Migrate {
    fn from(e: tokio_postgres::Error) -> Self {
        Migrate::Postgres(e)
    }
}

async fn apply(client: &mut Client) -> Result<usize, Migrate> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if let Some(found) = applied.iter().copied().filter(|v| *v > known).max() {
        return Err(Migrate::TooNew(StoreError::SchemaTooNew {
            found: u32::try_from(found).unwrap_or(0),
            known: u32::try_from(known).unwrap_or(0),
        }));
    }
    let mut count = 0;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}
