//! The embedded store: one SQLite file in WAL mode.
//!
//! Three connections, each with one job:
//! - the **entity** connection (behind a mutex, used inside `spawn_blocking`) runs entity and
//!   identity reads and writes with `synchronous=FULL`, so a write is on disk, power loss
//!   included, when its future resolves;
//! - the **writer** connection belongs to one background thread that commits activation
//!   records in batches (one transaction per batch) with `synchronous=NORMAL`: a committed batch
//!   survives a process crash, and the last batches may be lost on power loss;
//! - the **reader** connection (behind a mutex, used inside `spawn_blocking`) serves activation
//!   reads; WAL lets it read while the writer commits.
//!
//! `store` puts the record into a pending map, which every activation read consults, and queues
//! it for the writer; the writer removes it from the map after its batch commits. A read takes
//! its pending snapshot before it queries the database, so a record committed in between is seen
//! twice (and de-duplicated) rather than not at all.

use crate::config::StoreConfig;
use crate::matching::{activation_match_name, activation_matches, activation_order, page};
use crate::memory::check_put;
use crate::{
    ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope, PutMode,
    StoreError,
};
use async_trait::async_trait;
use edgewhisk_entity::identity::{KeyHash, NamespaceLimits};
use edgewhisk_entity::{Activation, ActivationId, Identity};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const SCHEMA: &str = "
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

/// Hashes the keys of identities stored in the clear by versions before key hashing. Runs at
/// every open in one transaction; a no-op once every key is hashed. Returns how many keys it
/// hashed.
fn migrate_plain_keys(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let plain: Vec<(String, String)> = {
        let mut stmt =
            tx.prepare("SELECT uuid, key FROM identities WHERE key NOT LIKE 'sha256$%'")?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (uuid, key) in &plain {
        tx.execute(
            "UPDATE identities SET key = ?1 WHERE uuid = ?2",
            params![KeyHash::stored_form(key), uuid],
        )?;
    }
    tx.commit()?;
    Ok(plain.len())
}

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
    pending: Arc<Mutex<HashMap<ActivationId, Pending>>>,
    next_seq: AtomicU64,
    sender: Mutex<Option<mpsc::Sender<WriterMsg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer's thread, woken early by a flush or close (records do not wake it).
    writer_thread: std::thread::Thread,
}

/// A record stored but not yet committed. `seq` tells the writer whether the entry it
/// committed is still the newest one for that id.
#[derive(Debug)]
struct Pending {
    seq: u64,
    activation: Arc<Activation>,
}

#[derive(Debug)]
enum WriterMsg {
    Record {
        seq: u64,
        activation: Arc<Activation>,
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
        let mut entities = open_connection(path, busy, "FULL")?;
        entities.execute_batch(SCHEMA)?;
        let migrated = migrate_plain_keys(&mut entities)?;
        if migrated > 0 {
            tracing::info!(path = %path.display(), keys = migrated, "hashed keys stored in the clear");
        }
        let reader = open_connection(path, busy, "NORMAL")?;
        let writer_conn = open_connection(path, busy, "NORMAL")?;
        let pending: Arc<Mutex<HashMap<ActivationId, Pending>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            conn: writer_conn,
            rx,
            pending: Arc::clone(&pending),
            batch_size: config.activation_batch_size.max(1),
            interval: Duration::from_millis(config.activation_flush_interval_ms),
            retry: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("activation-writer".into())
            .spawn(move || writer.run())?;
        Ok(SqliteStore {
            path: path.to_owned(),
            entities: Arc::new(Mutex::new(entities)),
            reader: Arc::new(Mutex::new(reader)),
            pending,
            next_seq: AtomicU64::new(0),
            sender: Mutex::new(Some(tx)),
            writer_thread: handle.thread().clone(),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits every queued activation record and stops the writer. Later `store` and `flush`
    /// calls fail with [`StoreError::Closed`]; entity operations keep working.
    pub async fn close(&self) -> Result<(), StoreError> {
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

    async fn with_entities<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run_blocking(Arc::clone(&self.entities), f).await
    }

    async fn with_reader<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run_blocking(Arc::clone(&self.reader), f).await
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

    /// The pending records that pass `filter`, shared rather than copied.
    fn pending_matches(&self, filter: &ActivationFilter) -> Vec<Arc<Activation>> {
        self.pending
            .lock()
            .values()
            .filter(|p| activation_matches(filter, &p.activation))
            .map(|p| Arc::clone(&p.activation))
            .collect()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.sender.lock().take());
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!(path = %self.path.display(), "activation writer panicked");
            }
        }
    }
}

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
    Ok(conn)
}

async fn run_blocking<T, F>(conn: Arc<Mutex<Connection>>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut conn = conn.lock();
        f(&mut conn)
    })
    .await
    .map_err(|_| StoreError::Closed)?
}

fn collection_from_str(s: &str) -> Option<Collection> {
    [
        Collection::Actions,
        Collection::Packages,
        Collection::Triggers,
        Collection::Rules,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
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

/// The `WHERE` clause and its text parameters for a list scope (`?2`, `?3`, `?4`).
fn scope_params(scope: &ListScope) -> (String, String, String) {
    match scope {
        // `ns/` <= path < `ns0` selects every path below `ns/` ('0' follows '/' in ASCII)
        // without LIKE, whose wildcards `_` and `%` may appear in names.
        ListScope::Namespace(ns) => (ns.clone(), format!("{ns}/"), format!("{ns}0")),
        // An empty range: only the exact path matches.
        ListScope::Path(p) => (p.clone(), String::from("1"), String::from("0")),
    }
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
        let text = serde_json::to_string(&doc.doc)?;
        self.with_entities(move |conn| {
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
        self.with_entities(move |conn| {
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
                .prepare_cached(
                    "SELECT uuid, subject, namespace, key FROM identities WHERE uuid = ?1",
                )?
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
        self.with_entities(move |conn| {
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
        let subject = subject.to_owned();
        self.with_entities(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT uuid, subject, namespace, key FROM identities WHERE subject = ?1 \
                 ORDER BY namespace, uuid",
            )?;
            let rows = stmt
                .query_map(params![subject], identity_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let uuid = uuid.to_owned();
        self.with_entities(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row = tx
                .prepare_cached(
                    "SELECT uuid, subject, namespace, key FROM identities WHERE uuid = ?1",
                )?
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
        let namespace = namespace.to_owned();
        self.with_entities(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT uuid, subject, namespace, key FROM identities WHERE namespace = ?1 \
                 ORDER BY subject, uuid",
            )?;
            let rows = stmt
                .query_map(params![namespace], identity_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
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
        self.with_entities(move |conn| {
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
        let activation = Arc::new(activation);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let id = activation.activation_id.clone();
        let sender = self.sender.lock();
        let Some(sender) = sender.as_ref() else {
            return Err(StoreError::Closed);
        };
        // Visible first, then queued: the writer can only clear an entry that is already there.
        self.pending.lock().insert(
            id.clone(),
            Pending {
                seq,
                activation: Arc::clone(&activation),
            },
        );
        if sender.send(WriterMsg::Record { seq, activation }).is_err() {
            let mut pending = self.pending.lock();
            if pending.get(&id).is_some_and(|p| p.seq == seq) {
                pending.remove(&id);
            }
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        if let Some(p) = self.pending.lock().get(id) {
            return Ok(
                (p.activation.namespace == namespace).then(|| Activation::clone(&p.activation))
            );
        }
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
        let mut pending = self.pending_matches(filter);
        pending.sort_by(|a, b| activation_order(a, b));
        let ids: Vec<String> = pending
            .iter()
            .map(|a| a.activation_id.as_str().to_owned())
            .collect();
        let offset = filter.skip.saturating_sub(pending.len());
        let (limit, extra) = (filter.limit, pending.len());
        let (where_sql, args) = activation_where(filter);
        let (duplicates, window, requested) = self
            .with_reader(move |conn| {
                // One read transaction, so that every query sees the same commits.
                let conn = conn.transaction()?;
                let result = {
                    // Committed copies of pending records: counted out of the committed order.
                    let mut duplicates = Vec::new();
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT start FROM activations WHERE id = ? AND {where_sql}"
                    ))?;
                    for id in ids {
                        let mut bind = vec![rusqlite::types::Value::Text(id.clone())];
                        bind.extend(args.iter().cloned());
                        let start: Option<u64> = stmt
                            .query_row(rusqlite::params_from_iter(bind), |row| row.get(0))
                            .optional()?;
                        if let Some(start) = start {
                            duplicates.push((start, id));
                        }
                    }
                    let requested = (limit != 0)
                        .then(|| limit.saturating_add(extra).saturating_add(duplicates.len()));
                    let mut bind = args;
                    bind.push(rusqlite::types::Value::Integer(
                        requested.map_or(-1, sql_limit),
                    ));
                    bind.push(rusqlite::types::Value::Integer(sql_limit(offset)));
                    // Ids are ordered and paged first, then each record is read by its id: a sort
                    // over documents would hold the whole page's text at once.
                    let ids = conn
                        .prepare_cached(&format!(
                            "SELECT id FROM activations WHERE {where_sql} \
                         ORDER BY start DESC, id ASC LIMIT ? OFFSET ?"
                        ))?
                        .query_map(rusqlite::params_from_iter(bind), |row| {
                            row.get::<_, String>(0)
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut stmt =
                        conn.prepare_cached("SELECT doc FROM activations WHERE id = ?1")?;
                    let mut window = Vec::with_capacity(ids.len());
                    for id in ids {
                        let mut rows = stmt.query(params![id])?;
                        if let Some(row) = rows.next()? {
                            let text = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                            window.push(serde_json::from_str::<Activation>(text)?);
                        }
                    }
                    (duplicates, window, requested)
                };
                // Read only: ending the transaction releases its snapshot.
                conn.finish()?;
                Ok(result)
            })
            .await?;
        let full = requested.is_some_and(|n| window.len() >= n);
        Ok(merge_page(
            &pending,
            &duplicates,
            window,
            Window { offset, full },
            filter.skip,
            filter.limit,
        ))
    }

    async fn count(&self, filter: &ActivationFilter) -> Result<usize, StoreError> {
        let pending: Vec<String> = self
            .pending_matches(filter)
            .into_iter()
            .map(|a| a.activation_id.as_str().to_owned())
            .collect();
        let (where_sql, args) = activation_where(filter);
        self.with_reader(move |conn| {
            let committed: usize = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM activations WHERE {where_sql}"
                ))?
                .query_row(rusqlite::params_from_iter(args), |row| row.get(0))?;
            let mut exists = conn.prepare_cached("SELECT 1 FROM activations WHERE id = ?1")?;
            let mut uncommitted = 0;
            for id in &pending {
                if !exists.exists(params![id])? {
                    uncommitted += 1;
                }
            }
            Ok(committed + uncommitted)
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
}

/// Where a window of committed records sits in the committed order.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// How many committed records precede the window.
    offset: usize,
    /// The window holds as many records as were asked for (more may follow).
    full: bool,
}

/// `(start, id)` in list order: newest first, ties by id.
fn key_order(a: (u64, &str), b: (u64, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

fn key_of(a: &Activation) -> (u64, &str) {
    (a.start, a.activation_id.as_str())
}

/// The page `skip..skip+limit` of the merged list (pending records, plus committed records
/// that are not also pending) from `pending` (sorted), the committed keys of `duplicates`
/// (committed copies of pending records) and `window`, the committed records from
/// `window.offset` on.
///
/// With `k` pending records the window starts at `skip - k` and holds `limit + k + |dups|`
/// records: at most `k` pending records precede the page that the committed order does not
/// know of, and each duplicate in front of the page moves it by one. The merged index of the
/// window's first record is its committed index, minus the duplicates before it, plus the
/// pending records before it; the window with the pending records between its ends is a
/// contiguous run of the merged list from there on.
fn merge_page(
    pending: &[Arc<Activation>],
    duplicates: &[(u64, String)],
    window: Vec<Activation>,
    at: Window,
    skip: usize,
    limit: usize,
) -> Vec<Activation> {
    let (first, last) = match (window.first(), window.last()) {
        (Some(f), Some(l)) => (
            (f.start, f.activation_id.as_str().to_owned()),
            (l.start, l.activation_id.as_str().to_owned()),
        ),
        // Past the end of the committed records, the merged list has fewer than `skip`
        // entries: offset + pending >= skip.
        _ if at.offset > 0 => return Vec::new(),
        _ => ((u64::MAX, String::new()), (0, String::new())),
    };
    let first = (first.0, first.1.as_str());
    let last = (last.0, last.1.as_str());
    let before = |key: (u64, &str)| key_order(key, first).is_lt();
    let start_index = if at.offset == 0 {
        0
    } else {
        let dups_before = duplicates
            .iter()
            .filter(|(s, id)| before((*s, id.as_str())))
            .count();
        let pending_before = pending.iter().filter(|p| before(key_of(p))).count();
        (at.offset - dups_before.min(at.offset)) + pending_before
    };
    let pending_ids: HashSet<&str> = pending.iter().map(|p| p.activation_id.as_str()).collect();
    let mut run: Vec<Activation> = window
        .into_iter()
        .filter(|a| !pending_ids.contains(a.activation_id.as_str()))
        .collect();
    run.extend(
        pending
            .iter()
            .filter(|p| at.offset == 0 || !before(key_of(p)))
            .filter(|p| !at.full || key_order(key_of(p), last).is_le())
            .map(|p| Activation::clone(p)),
    );
    run.sort_by(activation_order);
    page(run, skip.saturating_sub(start_index), limit)
}

/// The background activation writer: owns the write connection and the queue's receiving end.
struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<WriterMsg>,
    pending: Arc<Mutex<HashMap<ActivationId, Pending>>>,
    batch_size: usize,
    interval: Duration,
    /// Records of a batch whose commit failed; retried with the next batch.
    retry: Vec<(u64, Arc<Activation>)>,
}

impl Writer {
    fn run(mut self) {
        loop {
            let first = match self.rx.recv() {
                Ok(msg) => msg,
                Err(mpsc::RecvError) => {
                    self.finish();
                    return;
                }
            };
            let mut batch = std::mem::take(&mut self.retry);
            let mut flushes = Vec::new();
            let mut closed = false;
            push(first, &mut batch, &mut flushes);
            let deadline = Instant::now() + self.interval;
            // Gather the batch by sleeping until its deadline and then taking what queued up,
            // rather than waiting on the channel: a receiver blocked in the channel is woken
            // (a futex call on the sender's side, a context switch here) for every record,
            // which cost ~40 % of this thread's CPU at 16 clients. A flush or close unparks
            // the thread so it is answered at once.
            'gather: loop {
                while flushes.is_empty() && batch.len() < self.batch_size {
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
                self.finish();
                return;
            }
        }
    }

    /// Commits the last records after the queue closed.
    fn finish(&mut self) {
        let batch = std::mem::take(&mut self.retry);
        if !batch.is_empty() {
            if let Err(e) = self.commit(batch) {
                tracing::error!(error = %e, "activation records lost at shutdown");
            }
        }
    }

    /// Commits `batch` in one transaction, then drops the committed records from the pending
    /// map. On failure the records stay pending (still readable) and are retried.
    fn commit(&mut self, batch: Vec<(u64, Arc<Activation>)>) -> Result<(), rusqlite::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        match write_batch(&mut self.conn, &batch) {
            Ok(()) => {
                let mut pending = self.pending.lock();
                for (seq, activation) in &batch {
                    if pending
                        .get(&activation.activation_id)
                        .is_some_and(|p| p.seq == *seq)
                    {
                        pending.remove(&activation.activation_id);
                    }
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, records = batch.len(), "activation batch commit failed");
                self.retry = batch;
                Err(e)
            }
        }
    }
}

fn push(
    msg: WriterMsg,
    batch: &mut Vec<(u64, Arc<Activation>)>,
    flushes: &mut Vec<oneshot::Sender<Result<(), StoreError>>>,
) {
    match msg {
        WriterMsg::Record { seq, activation } => batch.push((seq, activation)),
        WriterMsg::Flush(tx) => flushes.push(tx),
    }
}

fn write_batch(
    conn: &mut Connection,
    batch: &[(u64, Arc<Activation>)],
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO activations (id, namespace, name, path, match_name, start, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (_, a) in batch {
            let doc = match serde_json::to_string(a) {
                Ok(doc) => doc,
                Err(e) => {
                    tracing::error!(id = %a.activation_id, error = %e, "activation record not encodable; dropped");
                    continue;
                }
            };
            stmt.execute(params![
                a.activation_id.as_str(),
                a.namespace,
                a.name,
                a.path(),
                activation_match_name(a),
                a.start,
                doc
            ])?;
        }
    }
    tx.commit()
}

/// `rusqlite::Error` is not `Clone`; every flush waiting on a failed batch gets its own copy.
fn copy_error(e: &rusqlite::Error) -> StoreError {
    StoreError::Sqlite(match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    })
}
