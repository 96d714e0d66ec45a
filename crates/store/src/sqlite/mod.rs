//! The embedded store: one SQLite file in WAL mode.
//!
//! Four connections, each with one job: the **entity** connection (durable writes,
//! `synchronous=FULL`), the **writer** thread that group-commits activation records
//! (`synchronous=NORMAL`: `store` resolves once the transaction holding the record committed),
//! the **reader** connection for activation reads, and the **maintenance** thread that
//! checkpoints the WAL and applies retention. Both writing connections take the in-process
//! `write_lock` rather than SQLite's polling busy handler. Why, and what it costs:
//! `docs/design/013-embedded-store.md`; what an answer promises: `docs/durability.md`.
//!
//! The schema and its forward migrations, run at open, are in [`schema`]; online backup and
//! restore in [`backup`] (`docs/design/019-schema-and-backups.md`).

use crate::config::StoreConfig;
use crate::matching::{activation_match_name, collection_from_str, scope_params};
use crate::memory::check_put;
use crate::metrics::StoreMetrics;
use crate::space::{SpaceGuard, classify, is_disk_full};
use crate::{
    ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope, PutMode,
    StoreError,
};
use async_trait::async_trait;
use edgewhisk_entity::identity::{KeyHash, NamespaceLimits};
use edgewhisk_entity::{Activation, ActivationId, Identity};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub mod backup;
pub mod schema;

/// Entities, identities and activations in one SQLite file.
///
/// Share it as `Arc<SqliteStore>`; every method may be called concurrently. Dropping the last
/// handle (or calling [`SqliteStore::close`]) commits every queued activation record; `Drop`
/// blocks the dropping thread until that commit is done.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    entities: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    /// Taken by every write transaction of this store (see the module docs).
    write_lock: Arc<Mutex<()>>,
    /// The free-space floor of the data directory.
    space: Arc<SpaceGuard>,
    sender: Mutex<Option<mpsc::Sender<WriterMsg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer's thread, woken early by a flush or close when it gathers a batch.
    writer_thread: std::thread::Thread,
    /// Dropping it stops the retention thread.
    retention_stop: Mutex<Option<mpsc::Sender<()>>>,
    retention: Mutex<Option<JoinHandle<()>>>,
    /// The activation writer's batch sizes and commit times.
    metrics: StoreMetrics,
}

/// One activation record on its way to the writer, already encoded by the caller's task so
/// that the single writer thread only binds and inserts.
#[derive(Debug)]
struct Row {
    id: String,
    namespace: String,
    name: String,
    path: Option<String>,
    match_name: String,
    start: u64,
    doc: String,
}

#[derive(Debug)]
enum WriterMsg {
    Record {
        row: Row,
        /// Resolved once the transaction holding the record committed or failed.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its activation writer.
    pub fn open(path: &Path, config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let busy = Duration::from_millis(config.busy_timeout_ms);
        schema::check_file(path)?;
        let mut entities = open_connection(path, busy, "FULL")?;
        schema::migrate(&mut entities, path)?;
        let reader = open_connection(path, busy, "NORMAL")?;
        let writer_conn = open_connection(path, busy, "NORMAL")?;
        // Checkpoints (which fsync) run on the maintenance thread, not inside a commit that
        // every waiting answer would wait for.
        writer_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let write_lock: Arc<Mutex<()>> = Arc::default();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let space = Arc::new(SpaceGuard::new(
            dir.to_owned(),
            config.min_free_bytes,
            Duration::from_millis(config.free_space_check_interval_ms),
        ));
        let (tx, rx) = mpsc::channel();
        let metrics = StoreMetrics::default();
        let writer = Writer {
            metrics: metrics.clone(),
            conn: writer_conn,
            rx,
            write_lock: Arc::clone(&write_lock),
            space: Arc::clone(&space),
            batch_size: config.activation_batch_size.max(1),
            interval: Duration::from_millis(config.activation_flush_interval_ms),
        };
        let handle = std::thread::Builder::new()
            .name("activation-writer".into())
            .spawn(move || writer.run())?;
        let (retention_stop, stopped) = mpsc::channel();
        let retention = Retention {
            conn: open_connection(path, busy, "NORMAL")?,
            write_lock: Arc::clone(&write_lock),
            stop: stopped,
            max_age_ms: config.activation_max_age_secs.saturating_mul(1000),
            max_per_namespace: config.activation_max_per_namespace,
            interval: Duration::from_millis(config.retention_interval_ms),
            batch_size: config.retention_batch_size.max(1),
        };
        let retention = std::thread::Builder::new()
            .name("activation-retention".into())
            .spawn(move || retention.run())?;
        Ok(SqliteStore {
            path: path.to_owned(),
            entities: Arc::new(Mutex::new(entities)),
            reader: Arc::new(Mutex::new(reader)),
            write_lock,
            space,
            sender: Mutex::new(Some(tx)),
            writer_thread: handle.thread().clone(),
            writer: Mutex::new(Some(handle)),
            retention_stop: Mutex::new(Some(retention_stop)),
            retention: Mutex::new(Some(retention)),
            metrics,
        })
    }

    /// The activation writer's metrics.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits every queued activation record and stops the writer. Later `store` and `flush`
    /// calls fail with [`StoreError::Closed`]; entity operations keep working.
    pub async fn close(&self) -> Result<(), StoreError> {
        drop(self.retention_stop.lock().take());
        let retention = self.retention.lock().take();
        if let Some(handle) = retention {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|_| StoreError::Closed)?
                .map_err(|_| StoreError::Closed)?;
        }
        // Dropping the only sender ends the writer's loop after its final commit.
        drop(self.sender.lock().take());
        self.writer_thread.unpark();
        let handle = self.writer.lock().take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|_| StoreError::Closed)?
                .map_err(|_| StoreError::Closed)?;
        }
        Ok(())
    }

    /// Runs `f` on `conn` on tokio's blocking pool; a full disk is recorded in `space`.
    async fn run_on<T: Send + 'static>(
        &self,
        conn: &Arc<Mutex<Connection>>,
        f: impl ConnectionJob<T>,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(conn);
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| classify(e, &self.space))
    }

    async fn with_entities<T: Send + 'static>(
        &self,
        f: impl ConnectionJob<T>,
    ) -> Result<T, StoreError> {
        self.run_on(&self.entities, f).await
    }

    /// The identities `query` (one `?1` parameter, the columns of [`identity_row`]) selects
    /// for `value`.
    async fn identities_where(
        &self,
        query: &'static str,
        value: &str,
    ) -> Result<Vec<Identity>, StoreError> {
        let value = value.to_owned();
        self.with_entities(move |conn| {
            let rows = conn
                .prepare_cached(query)?
                .query_map(params![value], identity_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// As `with_entities`, holding the store's write lock around `f`: for every entity or
    /// identity write.
    async fn write_entities<T: Send + 'static>(
        &self,
        f: impl ConnectionJob<T>,
    ) -> Result<T, StoreError> {
        let write_lock = Arc::clone(&self.write_lock);
        self.with_entities(move |conn| {
            let _writing = write_lock.lock();
            f(conn)
        })
        .await
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl ConnectionJob<T>,
    ) -> Result<T, StoreError> {
        self.run_on(&self.reader, f).await
    }

    /// A page of entities; with `summaries`, action code is left out (see [`summary_doc`]).
    /// Each document is decoded from SQLite's own buffer as its row is stepped to, so the
    /// page's text is never held in full next to its decoded form.
    async fn list_entities(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
        summaries: bool,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        let (p2, p3, p4) = scope_params(scope);
        let limit = if limit == 0 { -1 } else { sql_limit(limit) };
        let skip = sql_limit(skip);
        self.with_entities(move |conn| {
            // Keys are sorted and paged first, then each document is read by its key: a sort
            // over documents would hold every one of them (action code may be tens of MB).
            let keys = conn
                .prepare_cached(&format!(
                    "SELECT rowid FROM entities WHERE {SCOPE_WHERE} \
                     ORDER BY updated DESC, name ASC, path ASC LIMIT ?5 OFFSET ?6"
                ))?
                .query_map(
                    params![collection.as_str(), p2, p3, p4, limit, skip],
                    |row| row.get::<_, i64>(0),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT collection, path, name, updated, doc FROM entities WHERE rowid = ?1",
            )?;
            let mut docs = Vec::with_capacity(keys.len());
            for key in keys {
                let mut rows = stmt.query(params![key])?;
                let Some(row) = rows.next()? else {
                    continue;
                };
                let text = row.get_ref(4)?.as_str().map_err(rusqlite::Error::from)?;
                let doc = if summaries {
                    summary_doc(text)?
                } else {
                    serde_json::from_str(text)?
                };
                let (collection, path, name, updated): (String, String, String, u64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                let collection = collection_from_str(&collection).ok_or_else(|| {
                    StoreError::Corrupt(serde::de::Error::custom(format!(
                        "unknown collection {collection}"
                    )))
                })?;
                docs.push(EntityDoc {
                    collection,
                    path,
                    name,
                    updated,
                    doc,
                });
            }
            Ok(docs)
        })
        .await
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.retention_stop.lock().take());
        if let Some(handle) = self.retention.lock().take() {
            if handle.join().is_err() {
                tracing::error!(path = %self.path.display(), "activation retention panicked");
            }
        }
        drop(self.sender.lock().take());
        self.writer_thread.unpark();
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!(path = %self.path.display(), "activation writer panicked");
            }
        }
    }
}

/// Bytes the WAL file is truncated to after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

fn open_connection(
    path: &Path,
    busy: Duration,
    synchronous: &str,
) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "sqlite did not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", synchronous)?;
    // Without a limit the WAL file keeps the size of its largest burst after every checkpoint;
    // on a small disk that space is better given back.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(conn)
}

/// Work on one connection, run on tokio's blocking pool by `SqliteStore::run_on`.
trait ConnectionJob<T>: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static {}

impl<T, F> ConnectionJob<T> for F where
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static
{
}

fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Decodes an `entities` row selected as `collection, path, name, updated, doc`.
fn entity_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, u64, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn entity_doc(
    (collection, path, name, updated, doc): (String, String, String, u64, String),
) -> Result<EntityDoc, StoreError> {
    let collection = collection_from_str(&collection).ok_or_else(|| {
        StoreError::Corrupt(serde::de::Error::custom(format!(
            "unknown collection {collection}"
        )))
    })?;
    Ok(EntityDoc {
        collection,
        path,
        name,
        updated,
        doc: serde_json::from_str(&doc)?,
    })
}

/// A stored document with its action code (`exec.code`, when a string) replaced by `""`. The
/// fields are first split as borrowed text, so the code is skipped rather than copied.
fn summary_doc(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let Ok(fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(text) else {
        // Not an object: nothing to leave out.
        return serde_json::from_str(text);
    };
    let mut doc = serde_json::Map::new();
    for (key, raw) in fields {
        let exec = if key == "exec" {
            serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()).ok()
        } else {
            None
        };
        let value = match exec {
            Some(exec) => {
                let mut out = serde_json::Map::new();
                for (k, v) in exec {
                    let v = if k == "code" && v.get().starts_with('"') {
                        serde_json::Value::String(String::new())
                    } else {
                        serde_json::from_str(v.get())?
                    };
                    out.insert(k, v);
                }
                serde_json::Value::Object(out)
            }
            None => serde_json::from_str(raw.get())?,
        };
        doc.insert(key, value);
    }
    Ok(serde_json::Value::Object(doc))
}

const SCOPE_WHERE: &str = "collection = ?1 AND (path = ?2 OR (path >= ?3 AND path < ?4))";

fn identity_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Identity> {
    Ok(Identity {
        uuid: row.get(0)?,
        subject: row.get(1)?,
        namespace: row.get(2)?,
        key: row.get(3)?,
    })
}

/// The identity of one key UUID, read by [`identity_row`].
const IDENTITY_BY_UUID: &str =
    "SELECT uuid, subject, namespace, key FROM identities WHERE uuid = ?1";

/// The identities of a subject, by namespace then UUID.
const IDENTITIES_OF_SUBJECT: &str = "SELECT uuid, subject, namespace, key FROM identities \
     WHERE subject = ?1 ORDER BY namespace, uuid";

/// The identities of a namespace, by subject then UUID.
const IDENTITIES_IN_NAMESPACE: &str = "SELECT uuid, subject, namespace, key FROM identities \
     WHERE namespace = ?1 ORDER BY subject, uuid";

#[async_trait]
impl EntityStore for SqliteStore {
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let (path, name) = (path.to_owned(), name.to_owned());
        self.with_entities(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT collection, path, name, updated, doc FROM entities \
                     WHERE path = ?1 AND name = ?2",
                )?
                .query_row(params![path, name], entity_row)
                .optional()?;
            row.map(entity_doc).transpose()
        })
        .await
    }

    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
        // Deletes stay allowed below the floor: they are how an operator makes room.
        self.space.check()?;
        let text = serde_json::to_string(&doc.doc)?;
        self.write_entities(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing = tx
                .prepare_cached(
                    "SELECT collection, updated FROM entities WHERE path = ?1 AND name = ?2",
                )?
                .query_row(params![doc.path, doc.name], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?))
                })
                .optional()?;
            let existing = existing
                .map(|(c, updated)| {
                    collection_from_str(&c)
                        .map(|c| (c, updated))
                        .ok_or_else(|| {
                            StoreError::Corrupt(serde::de::Error::custom(format!(
                                "unknown collection {c}"
                            )))
                        })
                })
                .transpose()?;
            check_put(existing, &doc, mode)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO entities (path, name, collection, updated, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                doc.path,
                doc.name,
                doc.collection.as_str(),
                doc.updated,
                text
            ])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let (path, name) = (path.to_owned(), name.to_owned());
        self.write_entities(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row = tx
                .prepare_cached(
                    "SELECT collection, path, name, updated, doc FROM entities \
                     WHERE path = ?1 AND name = ?2",
                )?
                .query_row(params![path, name], entity_row)
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            tx.prepare_cached("DELETE FROM entities WHERE path = ?1 AND name = ?2")?
                .execute(params![path, name])?;
            tx.commit()?;
            entity_doc(row).map(Some)
        })
        .await
    }

    async fn list(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        self.list_entities(collection, scope, skip, limit, false)
            .await
    }

    /// Action code is skipped while each document is decoded, never copied.
    async fn list_summaries(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        self.list_entities(collection, scope, skip, limit, true)
            .await
    }

    async fn count(&self, collection: Collection, scope: &ListScope) -> Result<usize, StoreError> {
        let (p2, p3, p4) = scope_params(scope);
        self.with_entities(move |conn| {
            let n: usize = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM entities WHERE {SCOPE_WHERE}"
                ))?
                .query_row(params![collection.as_str(), p2, p3, p4], |row| row.get(0))?;
            Ok(n)
        })
        .await
    }

    async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let uuid = uuid.to_owned();
        self.with_entities(move |conn| {
            Ok(conn
                .prepare_cached(IDENTITY_BY_UUID)?
                .query_row(params![uuid], identity_row)
                .optional()?)
        })
        .await
    }

    async fn put_identity(&self, identity: Identity) -> Result<(), StoreError> {
        let identity = Identity {
            key: KeyHash::stored_form(&identity.key),
            ..identity
        };
        self.write_entities(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO identities (uuid, subject, namespace, key) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                identity.uuid,
                identity.subject,
                identity.namespace,
                identity.key
            ])?;
            Ok(())
        })
        .await
    }

    async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError> {
        self.identities_where(IDENTITIES_OF_SUBJECT, subject).await
    }

    async fn delete_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let uuid = uuid.to_owned();
        self.write_entities(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row = tx
                .prepare_cached(IDENTITY_BY_UUID)?
                .query_row(params![uuid], identity_row)
                .optional()?;
            if row.is_some() {
                tx.prepare_cached("DELETE FROM identities WHERE uuid = ?1")?
                    .execute(params![uuid])?;
                tx.commit()?;
            }
            Ok(row)
        })
        .await
    }

    async fn identities_in(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        self.identities_where(IDENTITIES_IN_NAMESPACE, namespace)
            .await
    }

    async fn namespace_limits(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceLimits>, StoreError> {
        let namespace = namespace.to_owned();
        self.with_entities(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM namespace_limits WHERE namespace = ?1")?
                .query_row(params![namespace], |row| row.get(0))
                .optional()?;
            Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
        })
        .await
    }

    async fn put_namespace_limits(
        &self,
        namespace: &str,
        limits: Option<NamespaceLimits>,
    ) -> Result<(), StoreError> {
        let namespace = namespace.to_owned();
        let doc = limits.map(|l| serde_json::to_string(&l)).transpose()?;
        self.write_entities(move |conn| {
            match doc {
                Some(doc) => conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO namespace_limits (namespace, doc) VALUES (?1, ?2)",
                    )?
                    .execute(params![namespace, doc])?,
                None => conn
                    .prepare_cached("DELETE FROM namespace_limits WHERE namespace = ?1")?
                    .execute(params![namespace])?,
            };
            Ok(())
        })
        .await
    }
}

/// The activation `WHERE` clause for `filter`, with its parameters in order.
fn activation_where(filter: &ActivationFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let mut sql = String::from("namespace = ?");
    let mut args = vec![V::Text(filter.namespace.clone())];
    if let Some(name) = &filter.name {
        sql.push_str(" AND match_name = ?");
        args.push(V::Text(name.clone()));
    }
    if let Some(since) = filter.since {
        sql.push_str(" AND start >= ?");
        args.push(V::Integer(i64::try_from(since).unwrap_or(i64::MAX)));
    }
    if let Some(upto) = filter.upto {
        sql.push_str(" AND start <= ?");
        args.push(V::Integer(i64::try_from(upto).unwrap_or(i64::MAX)));
    }
    (sql, args)
}

#[async_trait]
impl ActivationStore for SqliteStore {
    async fn store(&self, activation: Activation) -> Result<(), StoreError> {
        self.space.check()?;
        let row = Row {
            id: activation.activation_id.as_str().to_owned(),
            path: activation.path().map(str::to_owned),
            match_name: activation_match_name(&activation),
            start: activation.start,
            doc: serde_json::to_string(&activation)?,
            namespace: activation.namespace,
            name: activation.name,
        };
        let (done, committed) = oneshot::channel();
        {
            let sender = self.sender.lock();
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(WriterMsg::Record { row, done })
                .map_err(|_| StoreError::Closed)?;
        }
        committed.await.map_err(|_| StoreError::Closed)?
    }

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        let (namespace, id) = (namespace.to_owned(), id.as_str().to_owned());
        self.with_reader(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM activations WHERE id = ?1 AND namespace = ?2")?
                .query_row(params![id, namespace], |row| row.get(0))
                .optional()?;
            Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
        })
        .await
    }

    /// Reads only the page, whatever `skip` is: at most `limit` + 2 × (pending records)
    /// committed records are loaded (see `merge_page`).
    async fn list(&self, filter: &ActivationFilter) -> Result<Vec<Activation>, StoreError> {
        let (where_sql, mut args) = activation_where(filter);
        let limit = if filter.limit == 0 {
            -1
        } else {
            sql_limit(filter.limit)
        };
        args.push(rusqlite::types::Value::Integer(limit));
        args.push(rusqlite::types::Value::Integer(sql_limit(filter.skip)));
        self.with_reader(move |conn| {
            // One read transaction, so that both queries see the same commits.
            let conn = conn.transaction()?;
            // Ids are ordered and paged first, then each record is read by its id: a sort over
            // documents would hold the text of every record up to the page's end.
            let ids = conn
                .prepare_cached(&format!(
                    "SELECT id FROM activations WHERE {where_sql} \
                     ORDER BY start DESC, id ASC LIMIT ? OFFSET ?"
                ))?
                .query_map(rusqlite::params_from_iter(args), |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut page = Vec::with_capacity(ids.len());
            {
                let mut stmt = conn.prepare_cached("SELECT doc FROM activations WHERE id = ?1")?;
                for id in ids {
                    let mut rows = stmt.query(params![id])?;
                    if let Some(row) = rows.next()? {
                        let text = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                        page.push(serde_json::from_str::<Activation>(text)?);
                    }
                }
            }
            // Read only: ending the transaction releases its snapshot.
            conn.finish()?;
            Ok(page)
        })
        .await
    }

    async fn count(&self, filter: &ActivationFilter) -> Result<usize, StoreError> {
        let (where_sql, args) = activation_where(filter);
        self.with_reader(move |conn| {
            let committed: usize = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM activations WHERE {where_sql}"
                ))?
                .query_row(rusqlite::params_from_iter(args), |row| row.get(0))?;
            Ok(committed)
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        {
            let sender = self.sender.lock();
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(WriterMsg::Flush(tx))
                .map_err(|_| StoreError::Closed)?;
        }
        self.writer_thread.unpark();
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn check_space(&self) -> Result<(), StoreError> {
        self.space.check()
    }
}

/// A queued record and whom to tell when its transaction ended.
type Queued = (Row, oneshot::Sender<Result<(), StoreError>>);

/// The background activation writer: owns the write connection and the queue's receiving end.
struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<WriterMsg>,
    write_lock: Arc<Mutex<()>>,
    space: Arc<SpaceGuard>,
    batch_size: usize,
    interval: Duration,
    metrics: StoreMetrics,
}

impl Writer {
    fn run(mut self) {
        loop {
            // Blocking here wakes the thread for the first record of a batch only: while a
            // commit runs, the records that arrive queue up and are taken without waiting.
            let Ok(first) = self.rx.recv() else {
                return;
            };
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut closed = false;
            push(first, &mut batch, &mut flushes);
            let deadline = Instant::now() + self.interval;
            // With a gathering window, sleep until its deadline and then take what queued up
            // rather than waiting on the channel, which would wake this thread once per
            // record. A flush or close unparks the thread so it is answered at once.
            'gather: loop {
                while batch.len() < self.batch_size {
                    match self.rx.try_recv() {
                        Ok(msg) => push(msg, &mut batch, &mut flushes),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            closed = true;
                            break 'gather;
                        }
                    }
                }
                if !flushes.is_empty() || batch.len() >= self.batch_size {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
            let result = self.commit(batch);
            for flush in flushes {
                // A caller that stopped waiting is not an error.
                let _ = flush.send(result.as_ref().map(|_| ()).map_err(copy_error));
            }
            if closed {
                return;
            }
        }
    }

    /// Commits `batch` in one transaction and tells every record's caller how it ended. A
    /// failed batch is not retried: its callers get the error and decide (the invoker does not
    /// answer an activation whose record was not stored), so nothing piles up here.
    fn commit(&mut self, batch: Vec<Queued>) -> Result<(), rusqlite::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = {
            let _writing = self.write_lock.lock();
            write_batch(&mut self.conn, &batch)
        };
        self.metrics.commit(batch.len(), started.elapsed());
        match &result {
            Err(e) if is_disk_full(e) => {
                self.space.disk_full();
                tracing::warn!(
                    records = batch.len(),
                    "activation records refused: disk full"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, records = batch.len(), "activation batch commit failed");
            }
            Ok(()) => {}
        }
        for (_, done) in batch {
            // A caller that stopped waiting is not an error.
            let _ = done.send(result.as_ref().map(|_| ()).map_err(copy_error));
        }
        result
    }
}

fn push(
    msg: WriterMsg,
    batch: &mut Vec<Queued>,
    flushes: &mut Vec<oneshot::Sender<Result<(), StoreError>>>,
) {
    match msg {
        WriterMsg::Record { row, done } => batch.push((row, done)),
        WriterMsg::Flush(tx) => flushes.push(tx),
    }
}

fn write_batch(conn: &mut Connection, batch: &[Queued]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO activations (id, namespace, name, path, match_name, start, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (r, _) in batch {
            stmt.execute(params![
                r.id,
                r.namespace,
                r.name,
                r.path,
                r.match_name,
                r.start,
                r.doc
            ])?;
        }
    }
    tx.commit()
}

/// `rusqlite::Error` is not `Clone`; every caller waiting on a failed batch gets its own copy.
fn copy_error(e: &rusqlite::Error) -> StoreError {
    if is_disk_full(e) {
        return StoreError::Full;
    }
    StoreError::Sqlite(match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    })
}

/// The store's maintenance thread. Every [`CHECKPOINT_INTERVAL`] it checkpoints the WAL (the
/// activation writer does not, so that no commit waits for a checkpoint's fsync), and every
/// retention interval it deletes activation records beyond the configured age and
/// per-namespace count, a few hundred per transaction, and gives freed pages back to the file
/// system. Owns its own connection; takes the store's write lock per delete transaction only,
/// so records and entity writes wait for at most one small batch.
struct Retention {
    conn: Connection,
    write_lock: Arc<Mutex<()>>,
    /// Disconnected when the store closes.
    stop: mpsc::Receiver<()>,
    /// 0 = no age limit.
    max_age_ms: u64,
    /// 0 = no count limit.
    max_per_namespace: u64,
    interval: Duration,
    batch_size: usize,
}

/// How often the WAL is checkpointed. Each checkpoint also syncs the WAL, which bounds what a
/// power loss can take (docs/durability.md).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Pages given back to the file system per transaction by the retention task.
const VACUUM_PAGES: u32 = 128;

/// Most `VACUUM_PAGES` transactions per retention pass: a burst's free pages are given back
/// over a few passes rather than in one long stretch.
const VACUUM_STEPS: u32 = 16;

impl Retention {
    fn run(mut self) {
        let retain = self.max_age_ms > 0 || self.max_per_namespace > 0;
        let tick = self.interval.min(CHECKPOINT_INTERVAL);
        let mut next_pass = Instant::now() + self.interval;
        let mut next_checkpoint = Instant::now() + CHECKPOINT_INTERVAL;
        loop {
            match self.stop.recv_timeout(tick) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if now >= next_checkpoint {
                next_checkpoint = now + CHECKPOINT_INTERVAL;
                // PASSIVE: copies what it can without waiting for or blocking anyone.
                if let Err(e) =
                    self.conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
            if retain && now >= next_pass {
                next_pass = now + self.interval;
                match self.pass() {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "activation retention pass"),
                    Err(e) => tracing::warn!(error = %e, "activation retention pass failed"),
                }
            }
        }
    }

    /// Whether the store is closing (checked between transactions).
    fn stopping(&self) -> bool {
        matches!(
            self.stop.try_recv(),
            Ok(()) | Err(mpsc::TryRecvError::Disconnected)
        )
    }

    /// One pass over every namespace; returns how many records it deleted.
    fn pass(&mut self) -> Result<u64, rusqlite::Error> {
        // A read: WAL lets it run while the writer commits, without the write lock.
        let counts: Vec<(String, u64)> = self
            .conn
            .prepare_cached("SELECT namespace, COUNT(*) FROM activations GROUP BY namespace")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let cutoff = edgewhisk_entity::time::now_millis().saturating_sub(self.max_age_ms);
        let batch = sql_limit(self.batch_size);
        let mut deleted = 0u64;
        for (namespace, count) in counts {
            let mut left = count;
            if self.max_age_ms > 0 {
                loop {
                    if self.stopping() {
                        return Ok(deleted);
                    }
                    let n = self.delete_batch(
                        "DELETE FROM activations WHERE rowid IN (SELECT rowid FROM activations \
                         WHERE namespace = ?1 AND start < ?2 LIMIT ?3)",
                        params![namespace, i64::try_from(cutoff).unwrap_or(i64::MAX), batch],
                    )?;
                    deleted += n;
                    left = left.saturating_sub(n);
                    if n < u64::try_from(self.batch_size).unwrap_or(u64::MAX) {
                        break;
                    }
                }
            }
            while self.max_per_namespace > 0 && left > self.max_per_namespace {
                if self.stopping() {
                    return Ok(deleted);
                }
                let excess = (left - self.max_per_namespace)
                    .min(u64::try_from(self.batch_size).unwrap_or(u64::MAX));
                let n = self.delete_batch(
                    "DELETE FROM activations WHERE rowid IN (SELECT rowid FROM activations \
                     WHERE namespace = ?1 ORDER BY start ASC, id DESC LIMIT ?2)",
                    params![namespace, i64::try_from(excess).unwrap_or(i64::MAX)],
                )?;
                if n == 0 {
                    break;
                }
                deleted += n;
                left = left.saturating_sub(n);
            }
        }
        if deleted > 0 {
            self.give_back_pages()?;
        }
        Ok(deleted)
    }

    fn delete_batch(
        &mut self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<u64, rusqlite::Error> {
        let _writing = self.write_lock.lock();
        let n = self.conn.prepare_cached(sql)?.execute(params)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    /// Returns free pages to the file system in small steps (`auto_vacuum = INCREMENTAL`; a
    /// no-op on older databases, which reuse their free pages instead).
    fn give_back_pages(&mut self) -> Result<(), rusqlite::Error> {
        for _ in 0..VACUUM_STEPS {
            let free: u64 = self
                .conn
                .query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
            if free == 0 || self.stopping() {
                break;
            }
            let _writing = self.write_lock.lock();
            // The pragma frees one page per step: it must be stepped to the end.
            let mut stmt = self
                .conn
                .prepare_cached(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
        }
        Ok(())
    }
}
