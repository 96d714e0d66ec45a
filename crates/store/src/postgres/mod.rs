//! The cluster's store: one PostgreSQL database that every controller and invoker shares,
//! behind the same traits and with the same semantics as the SQLite store.
//!
//! Queries run on a bounded pool of connections that drops broken ones, so the store recovers
//! by itself when the database comes back; meanwhile calls fail with
//! [`StoreError::Unavailable`]. Entity writes are single statements committed before they
//! return, and each announces what it changed on [`CHANNEL`] for the other processes' caches
//! ([`PostgresStore::changes`], [`follow_changes`]). Activation records are group-committed
//! by one writer task, and the first record stored for an id wins. [`PostgresStore::lead`]
//! elects one process for work that must happen once. Schema, guarantees and failure
//! behaviour: `docs/design/014-postgres-store.md`.

mod error;
mod leader;
mod notify;
mod retention;
mod schema;
mod writer;

pub use leader::Leadership;
pub use notify::CHANNEL;

use crate::config::StoreConfig;
use crate::matching::{activation_match_name, collection_from_str, scope_params};
use crate::memory::check_put;
use crate::{
    ActivationFilter, ActivationStore, CachingEntityStore, Change, Collection, EntityDoc,
    EntityStore, ListScope, PutMode, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use edgewhisk_entity::identity::{KeyHash, NamespaceLimits};
use edgewhisk_entity::{Activation, ActivationId, Identity};
use error::{classify, pool_error};
use parking_lot::Mutex;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use writer::{Row, Writer, WriterMsg};

/// Connections in the pool by default.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long connecting, or waiting for a pooled connection, may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection settings of a [`PostgresStore`] besides its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the pool opens (the change listener and a leadership hold one more
    /// each).
    pub pool_size: usize,
    /// How long connecting, or waiting for a free pooled connection, may take before the call
    /// fails with [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Entities, identities and activations in a PostgreSQL database shared by the processes of a
/// cluster.
///
/// Share it as `Arc<PostgresStore>`; every method may be called concurrently. It needs a
/// tokio runtime: its writer and retention tasks run on the one `connect` ran on.
///
/// **The first record stored for an activation id wins.** [`ActivationStore::store`] of a
/// record whose id is already stored succeeds without changing it. A controller that gave up
/// on an invoker stores a whisk-error record for its activation and tells the caller so; a late
/// record from that invoker must not replace what the caller was told. (The SQLite store, with
/// one process writing, keeps the last record.)
pub struct PostgresStore {
    pool: Pool,
    /// For the connections outside the pool (change listener, leadership).
    pg_config: tokio_postgres::Config,
    sender: Mutex<Option<mpsc::UnboundedSender<WriterMsg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    retention: Option<JoinHandle<()>>,
    /// The change listener, started by the first [`changes`](Self::changes).
    listener: Mutex<Option<(broadcast::Sender<Change>, JoinHandle<()>)>>,
    /// Whether this connection created the schema in an empty database.
    created: bool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("hosts", &self.pg_config.get_hosts())
            .field("dbname", &self.pg_config.get_dbname())
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, or any form
    /// tokio-postgres accepts), applies the schema's migrations and starts the activation
    /// writer and retention tasks, with [`PostgresOptions::default`].
    pub async fn connect(url: &str, config: &StoreConfig) -> Result<PostgresStore, StoreError> {
        Self::connect_with(url, config, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit pool settings.
    pub async fn connect_with(
        url: &str,
        config: &StoreConfig,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let mut pg_config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Postgres(format!("invalid PostgreSQL URL: {e}")))?;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(options.connect_timeout);
        }
        // A server that vanished without closing the connection (power loss, network cut) is
        // noticed within about 20 s, by TCP, rather than after the system's default hours: a
        // call waiting on it fails as unavailable and the connection is replaced.
        pg_config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(20));
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("edgewhisk");
        }
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                // A connection whose socket closed is dropped when handed back, not reused.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        let created = {
            let mut client = pool.get().await.map_err(pool_error)?;
            let applied = schema::migrate(&mut client).await?;
            if applied > 0 {
                tracing::info!(migrations = applied, "PostgreSQL schema migrated");
            }
            // Only an empty database gets every migration at once.
            applied == schema::MIGRATIONS.len()
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            pool: pool.clone(),
            rx,
            batch_size: config.activation_batch_size.max(1),
            interval: Duration::from_millis(config.activation_flush_interval_ms),
        };
        let writer = tokio::spawn(writer.run());
        let retention = retention::Retention {
            pool: pool.clone(),
            max_age_ms: config.activation_max_age_secs.saturating_mul(1000),
            max_per_namespace: config.activation_max_per_namespace,
            interval: Duration::from_millis(config.retention_interval_ms.max(1)),
            batch_size: config.retention_batch_size.max(1),
        };
        let retention = retention.enabled().then(|| tokio::spawn(retention.run()));
        Ok(PostgresStore {
            pool,
            pg_config,
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            retention,
            listener: Mutex::new(None),
            created,
        })
    }

    /// Whether this [`connect`](Self::connect) created the schema in an empty database: of
    /// several processes connecting to a new database at once, exactly one sees `true`, and
    /// provisions it (the guest key, the system namespace).
    pub fn created_schema(&self) -> bool {
        self.created
    }

    /// Commits every queued activation record and stops the writer. Later `store` and `flush`
    /// calls fail with [`StoreError::Closed`]; entity operations keep working.
    pub async fn close(&self) -> Result<(), StoreError> {
        drop(self.sender.lock().take());
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            writer.await.map_err(|_| StoreError::Closed)?;
        }
        Ok(())
    }

    /// The changes that every process (this one included) makes to entities, identities and
    /// namespace limits, as they commit. Starts the listener on the first call; it says
    /// [`Change::All`] each time it (re)connects, since it may have missed changes meanwhile.
    /// Subscribe before filling a cache. A receiver that falls more than a thousand changes
    /// behind gets `RecvError::Lagged` and should forget everything.
    ///
    /// # Panics
    ///
    /// On the first call outside a tokio runtime.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        let mut listener = self.listener.lock();
        let (tx, _) = listener.get_or_insert_with(|| {
            let (tx, _) = broadcast::channel(notify::CHANGES_BUFFER);
            let task = tokio::spawn(notify::listen(self.pg_config.clone(), tx.clone()));
            (tx, task)
        });
        tx.subscribe()
    }

    /// Waits until this process holds the cluster-wide lock `name` (trying every second),
    /// and returns the proof: for work that must be done once in the cluster, such as firing
    /// an alarm. Stop the work when [`Leadership::lost`] resolves; drop the guard to step
    /// down. The lock lives in a session of its own, so it is released when this process
    /// dies or loses its connection.
    pub async fn lead(&self, name: &str) -> Leadership {
        leader::lead(&self.pg_config, name).await
    }

    /// Deletes activation records beyond the configured age and count now, as the retention
    /// task does every retention interval; returns how many.
    pub async fn apply_retention(&self, config: &StoreConfig) -> Result<u64, StoreError> {
        retention::Retention {
            pool: self.pool.clone(),
            max_age_ms: config.activation_max_age_secs.saturating_mul(1000),
            max_per_namespace: config.activation_max_per_namespace,
            interval: Duration::from_millis(config.retention_interval_ms),
            batch_size: config.retention_batch_size.max(1),
        }
        .pass()
        .await
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Rows of `sql` (prepared once per connection) with `params`.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(|e| classify(&e))?;
        client.query(&stmt, params).await.map_err(|e| classify(&e))
    }

    /// The identities `sql` selects (columns as [`identity_row`]).
    async fn identities_where(&self, sql: &str, value: &str) -> Result<Vec<Identity>, StoreError> {
        Ok(self
            .query(sql, &[&value])
            .await?
            .iter()
            .map(identity_row)
            .collect())
    }

    /// A page of entities; with `summaries`, a string `exec.code` comes back as `""` (left out
    /// by the server, so the code is never sent).
    async fn list_entities(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
        summaries: bool,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        let (p2, p3, p4) = scope_params(scope);
        let limit = (limit > 0).then(|| sql_int(limit));
        let skip = sql_int(skip);
        let doc = if summaries { SUMMARY_DOC } else { "e.doc" };
        // Keys are sorted and paged first, then the page's documents are read.
        let sql = format!(
            "WITH k AS (SELECT path, name FROM entities WHERE {SCOPE_WHERE} \
             ORDER BY updated DESC, name ASC, path ASC LIMIT $5 OFFSET $6) \
             SELECT e.collection, e.path, e.name, e.updated, {doc} \
             FROM k JOIN entities e ON e.path = k.path AND e.name = k.name \
             ORDER BY e.updated DESC, e.name ASC, e.path ASC"
        );
        self.query(&sql, &[&collection.as_str(), &p2, &p3, &p4, &limit, &skip])
            .await?
            .iter()
            .map(|row| {
                let doc = entity_doc(row)?;
                Ok(if summaries { blank_code(doc) } else { doc })
            })
            .collect()
    }
}

/// Spawns a task that applies every change announced through `store` to `cache`, until the
/// cache is dropped or the store's listener ends: a controller's whole cache wiring. A
/// subscriber that fell behind forgets everything.
pub fn follow_changes<S: EntityStore>(
    store: &PostgresStore,
    cache: Weak<CachingEntityStore<S>>,
) -> JoinHandle<()> {
    let mut changes = store.changes();
    tokio::spawn(async move {
        loop {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => Change::All,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(cache) = cache.upgrade() else {
                return;
            };
            cache.invalidate(&change);
        }
    })
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The writer commits what is queued and ends by itself once its sender is gone.
        drop(self.sender.lock().take());
        if let Some(retention) = &self.retention {
            retention.abort();
        }
        if let Some((_, listener)) = self.listener.lock().take() {
            listener.abort();
        }
    }
}

fn sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn sql_u64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The collection named `s`, or the document is corrupt.
fn parse_collection(s: &str) -> Result<Collection, StoreError> {
    collection_from_str(s).ok_or_else(|| {
        StoreError::Corrupt(serde::de::Error::custom(format!("unknown collection {s}")))
    })
}

/// Decodes a row selected as `collection, path, name, updated, doc`.
fn entity_doc(row: &tokio_postgres::Row) -> Result<EntityDoc, StoreError> {
    let doc: &str = row.get(4);
    Ok(EntityDoc {
        collection: parse_collection(row.get(0))?,
        path: row.get(1),
        name: row.get(2),
        updated: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
        doc: serde_json::from_str(doc)?,
    })
}

/// The document with a string `exec.code` replaced by `""`. A document with an escaped NUL,
/// which `jsonb` refuses, comes back whole (and [`blank_code`] leaves its code out).
const SUMMARY_DOC: &str = "CASE WHEN strpos(e.doc, '\\u0000') = 0 \
     AND jsonb_typeof(e.doc::jsonb -> 'exec' -> 'code') = 'string' \
     THEN jsonb_set(e.doc::jsonb, '{exec,code}', '\"\"')::text ELSE e.doc END";

/// Replaces a string `exec.code` by `""`.
fn blank_code(mut doc: EntityDoc) -> EntityDoc {
    if let Some(code) = doc.doc.pointer_mut("/exec/code").filter(|c| c.is_string()) {
        *code = serde_json::Value::String(String::new());
    }
    doc
}

/// `$1` collection, `$2` exact path, `$3`..`$4` the range of paths below a namespace.
const SCOPE_WHERE: &str = "collection = $1 AND (path = $2 OR (path >= $3 AND path < $4))";

fn identity_row(row: &tokio_postgres::Row) -> Identity {
    Identity {
        uuid: row.get(0),
        subject: row.get(1),
        namespace: row.get(2),
        key: row.get(3),
    }
}

const IDENTITY_BY_UUID: &str =
    "SELECT uuid, subject, namespace, key FROM identities WHERE uuid = $1";

const IDENTITIES_OF_SUBJECT: &str = "SELECT uuid, subject, namespace, key FROM identities \
     WHERE subject = $1 ORDER BY namespace, uuid";

const IDENTITIES_IN_NAMESPACE: &str = "SELECT uuid, subject, namespace, key FROM identities \
     WHERE namespace = $1 ORDER BY subject, uuid";

// Every write is one statement (its own transaction, committed and durable when it returns)
// that notifies the change only when it changed a row: `pg_notify` is called once per row the
// data-modifying part returns, and the notification is sent when the statement commits.

const CREATE_ENTITY: &str = "WITH w AS (INSERT INTO entities (path, name, collection, updated, doc) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (path, name) DO NOTHING RETURNING 1) \
     SELECT pg_notify('edgewhisk_entities', $6)::text FROM w";

const REPLACE_ENTITY: &str = "WITH w AS (UPDATE entities SET updated = $4, doc = $5 \
     WHERE path = $1 AND name = $2 AND collection = $3 AND updated = $7 RETURNING 1) \
     SELECT pg_notify('edgewhisk_entities', $6)::text FROM w";

const DELETE_ENTITY: &str = "WITH d AS (DELETE FROM entities WHERE path = $1 AND name = $2 \
     RETURNING collection, path, name, updated, doc) \
     SELECT d.collection, d.path, d.name, d.updated, d.doc, \
     pg_notify('edgewhisk_entities', $3)::text FROM d";

const PUT_IDENTITY: &str = "WITH w AS (INSERT INTO identities (uuid, subject, namespace, key) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (uuid) DO UPDATE SET subject = EXCLUDED.subject, \
     namespace = EXCLUDED.namespace, key = EXCLUDED.key RETURNING 1) \
     SELECT pg_notify('edgewhisk_entities', $5)::text FROM w";

const DELETE_IDENTITY: &str = "WITH d AS (DELETE FROM identities WHERE uuid = $1 \
     RETURNING uuid, subject, namespace, key) \
     SELECT d.uuid, d.subject, d.namespace, d.key, \
     pg_notify('edgewhisk_entities', $2)::text FROM d";

const PUT_LIMITS: &str = "WITH w AS (INSERT INTO namespace_limits (namespace, doc) \
     VALUES ($1, $2) ON CONFLICT (namespace) DO UPDATE SET doc = EXCLUDED.doc RETURNING 1) \
     SELECT pg_notify('edgewhisk_entities', $3)::text FROM w";

const DELETE_LIMITS: &str = "WITH d AS (DELETE FROM namespace_limits WHERE namespace = $1 \
     RETURNING 1) SELECT pg_notify('edgewhisk_entities', $2)::text FROM d";

#[async_trait]
impl EntityStore for PostgresStore {
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        self.query(
            "SELECT collection, path, name, updated, doc FROM entities \
             WHERE path = $1 AND name = $2",
            &[&path, &name],
        )
        .await?
        .first()
        .map(entity_doc)
        .transpose()
    }

    async fn updated(&self, path: &str, name: &str) -> Result<Option<u64>, StoreError> {
        let rows = self
            .query(
                "SELECT updated FROM entities WHERE path = $1 AND name = $2",
                &[&path, &name],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }

    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
        let text = serde_json::to_string(&doc.doc)?;
        let change = notify::payload(&Change::Entity {
            path: doc.path.clone(),
            name: doc.name.clone(),
        });
        let updated = sql_u64(doc.updated);
        let collection = doc.collection.as_str();
        // A create that finds the name taken, then gone, tries again.
        for _ in 0..3 {
            let written = match mode {
                PutMode::Create => {
                    self.query(
                        CREATE_ENTITY,
                        &[&doc.path, &doc.name, &collection, &updated, &text, &change],
                    )
                    .await?
                }
                PutMode::Replace { expected_updated } => {
                    let expected = sql_u64(expected_updated);
                    self.query(
                        REPLACE_ENTITY,
                        &[
                            &doc.path,
                            &doc.name,
                            &collection,
                            &updated,
                            &text,
                            &change,
                            &expected,
                        ],
                    )
                    .await?
                }
            };
            if !written.is_empty() {
                return Ok(());
            }
            // Nothing written: say why, as the other stores do.
            let existing = self
                .query(
                    "SELECT collection, updated FROM entities WHERE path = $1 AND name = $2",
                    &[&doc.path, &doc.name],
                )
                .await?
                .first()
                .map(|row| {
                    let updated = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                    parse_collection(row.get(0)).map(|c| (c, updated))
                })
                .transpose()?;
            check_put(existing, &doc, mode)?;
            if let PutMode::Replace { .. } = mode {
                // It changed between the update and the read.
                return Err(StoreError::ConcurrentModification);
            }
        }
        Err(StoreError::ConcurrentModification)
    }

    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let change = notify::payload(&Change::Entity {
            path: path.to_owned(),
            name: name.to_owned(),
        });
        self.query(DELETE_ENTITY, &[&path, &name, &change])
            .await?
            .first()
            .map(entity_doc)
            .transpose()
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

    /// Action code is left out by the server.
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
        let rows = self
            .query(
                &format!("SELECT COUNT(*) FROM entities WHERE {SCOPE_WHERE}"),
                &[&collection.as_str(), &p2, &p3, &p4],
            )
            .await?;
        Ok(count_of(&rows))
    }

    async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        Ok(self
            .query(IDENTITY_BY_UUID, &[&uuid])
            .await?
            .first()
            .map(identity_row))
    }

    async fn put_identity(&self, identity: Identity) -> Result<(), StoreError> {
        let key = KeyHash::stored_form(&identity.key);
        let change = notify::payload(&Change::Identity {
            uuid: identity.uuid.clone(),
        });
        self.query(
            PUT_IDENTITY,
            &[
                &identity.uuid,
                &identity.subject,
                &identity.namespace,
                &key,
                &change,
            ],
        )
        .await?;
        Ok(())
    }

    async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError> {
        self.identities_where(IDENTITIES_OF_SUBJECT, subject).await
    }

    async fn delete_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let change = notify::payload(&Change::Identity {
            uuid: uuid.to_owned(),
        });
        Ok(self
            .query(DELETE_IDENTITY, &[&uuid, &change])
            .await?
            .first()
            .map(identity_row))
    }

    async fn identities_in(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        self.identities_where(IDENTITIES_IN_NAMESPACE, namespace)
            .await
    }

    async fn namespace_limits(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceLimits>, StoreError> {
        let rows = self
            .query(
                "SELECT doc FROM namespace_limits WHERE namespace = $1",
                &[&namespace],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| serde_json::from_str(row.get(0)))
            .transpose()?)
    }

    async fn put_namespace_limits(
        &self,
        namespace: &str,
        limits: Option<NamespaceLimits>,
    ) -> Result<(), StoreError> {
        let change = notify::payload(&Change::Limits {
            namespace: namespace.to_owned(),
        });
        match limits {
            Some(limits) => {
                let doc = serde_json::to_string(&limits)?;
                self.query(PUT_LIMITS, &[&namespace, &doc, &change]).await?
            }
            None => self.query(DELETE_LIMITS, &[&namespace, &change]).await?,
        };
        Ok(())
    }
}

/// The value of a `SELECT COUNT(*)`.
fn count_of(rows: &[tokio_postgres::Row]) -> usize {
    rows.first()
        .map(|row| usize::try_from(row.get::<_, i64>(0)).unwrap_or(usize::MAX))
        .unwrap_or(0)
}

/// The activation `WHERE` clause for `filter` and its parameters, numbered from `$1`.
fn activation_where(filter: &ActivationFilter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from("namespace = $1");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(filter.namespace.clone())];
    if let Some(name) = &filter.name {
        args.push(Box::new(name.clone()));
        sql.push_str(&format!(" AND match_name = ${}", args.len()));
    }
    if let Some(since) = filter.since {
        args.push(Box::new(sql_u64(since)));
        sql.push_str(&format!(" AND start >= ${}", args.len()));
    }
    if let Some(upto) = filter.upto {
        args.push(Box::new(sql_u64(upto)));
        sql.push_str(&format!(" AND start <= ${}", args.len()));
    }
    (sql, args)
}

fn param_refs(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

#[async_trait]
impl ActivationStore for PostgresStore {
    /// Resolves once the record is committed, or once it is known that a record with its id
    /// already is (the first one stays: see [`PostgresStore`]).
    async fn store(&self, activation: Activation) -> Result<(), StoreError> {
        let row = Row {
            id: activation.activation_id.as_str().to_owned(),
            path: activation.path().map(str::to_owned),
            match_name: activation_match_name(&activation),
            start: sql_u64(activation.start),
            doc: serde_json::to_string(&activation)?,
            namespace: activation.namespace,
            name: activation.name,
        };
        let (done, committed) = oneshot::channel();
        {
            let sender = self.sender.lock();
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(WriterMsg::Record(row, done))
                .map_err(|_| StoreError::Closed)?;
        }
        committed.await.map_err(|_| StoreError::Closed)?
    }

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        let rows = self
            .query(
                "SELECT doc FROM activations WHERE id = $1 AND namespace = $2",
                &[&id.as_str(), &namespace],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| serde_json::from_str(row.get(0)))
            .transpose()?)
    }

    async fn list(&self, filter: &ActivationFilter) -> Result<Vec<Activation>, StoreError> {
        let (where_sql, mut args) = activation_where(filter);
        let limit = (filter.limit > 0).then(|| sql_int(filter.limit));
        args.push(Box::new(limit));
        args.push(Box::new(sql_int(filter.skip)));
        let n = args.len();
        // Ids are ordered and paged first, then the page's records are read.
        let sql = format!(
            "WITH k AS (SELECT id FROM activations WHERE {where_sql} \
             ORDER BY start DESC, id ASC LIMIT ${} OFFSET ${n}) \
             SELECT a.doc FROM k JOIN activations a ON a.id = k.id \
             ORDER BY a.start DESC, a.id ASC",
            n - 1
        );
        self.query(&sql, &param_refs(&args))
            .await?
            .iter()
            .map(|row| Ok(serde_json::from_str(row.get(0))?))
            .collect()
    }

    async fn count(&self, filter: &ActivationFilter) -> Result<usize, StoreError> {
        let (where_sql, args) = activation_where(filter);
        let rows = self
            .query(
                &format!("SELECT COUNT(*) FROM activations WHERE {where_sql}"),
                &param_refs(&args),
            )
            .await?;
        Ok(count_of(&rows))
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
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Always `Ok`: the database server owns its disk, and a full one fails the write
    /// ([`StoreError::Postgres`], SQLSTATE 53100).
    fn check_space(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
