//! The activation writer: one task that group-commits records. Records stored while a commit
//! runs queue up and share the next one, a single multi-row `INSERT` (its own transaction),
//! and each `store` resolves when the statement holding its record committed.

use super::error::{classify, copy, pool_error};
use crate::StoreError;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The first record stored for an id wins: a later one with the same id is dropped (see
/// [`PostgresStore`](super::PostgresStore)).
const INSERT: &str = "INSERT INTO activations (id, namespace, name, path, match_name, start, doc) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::int8[], $7::text[]) \
     ON CONFLICT (id) DO NOTHING";

/// One activation record, encoded by the caller's task.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) id: String,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) path: Option<String>,
    pub(super) match_name: String,
    pub(super) start: i64,
    pub(super) doc: String,
}

/// Whom to tell that a record's (or a flush's) commit ended.
type Done = oneshot::Sender<Result<(), StoreError>>;

/// What the writer is asked to do.
#[derive(Debug)]
pub(super) enum WriterMsg {
    /// Store a record.
    Record(Row, Done),
    /// Answer once everything queued before is committed.
    Flush(Done),
}

/// The writer's settings and its queue's receiving end.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) pool: Pool,
    pub(super) rx: mpsc::UnboundedReceiver<WriterMsg>,
    pub(super) batch_size: usize,
    pub(super) interval: Duration,
}

impl Writer {
    /// Runs until every sender is gone and the last batch is committed.
    pub(super) async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut closed = false;
            push(first, &mut batch, &mut flushes);
            let deadline = Instant::now() + self.interval;
            'gather: loop {
                while batch.len() < self.batch_size {
                    match self.rx.try_recv() {
                        Ok(msg) => push(msg, &mut batch, &mut flushes),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break 'gather;
                        }
                    }
                }
                if !flushes.is_empty()
                    || batch.len() >= self.batch_size
                    || Instant::now() >= deadline
                {
                    break;
                }
                tokio::select! {
                    msg = self.rx.recv() => match msg {
                        Some(msg) => push(msg, &mut batch, &mut flushes),
                        None => {
                            closed = true;
                            break 'gather;
                        }
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            let result = self.commit(batch).await;
            for flush in flushes {
                // A caller that stopped waiting is not an error.
                let _ = flush.send(result.as_ref().map(|_| ()).map_err(copy));
            }
            if closed {
                return;
            }
        }
    }

    /// Commits `batch` and tells every record's caller how it ended. A failed batch is not
    /// retried: its callers get the error and decide.
    async fn commit(&self, batch: Vec<(Row, Done)>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.insert(&batch).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, records = batch.len(), "activation batch commit failed");
        }
        for (_, done) in batch {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(copy));
        }
        result
    }

    async fn insert(&self, batch: &[(Row, Done)]) -> Result<(), StoreError> {
        let n = batch.len();
        let (mut ids, mut namespaces, mut names, mut paths, mut match_names, mut starts, mut docs) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (r, _) in batch {
            ids.push(r.id.as_str());
            namespaces.push(r.namespace.as_str());
            names.push(r.name.as_str());
            paths.push(r.path.as_deref());
            match_names.push(r.match_name.as_str());
            starts.push(r.start);
            docs.push(r.doc.as_str());
        }
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(INSERT)
            .await
            .map_err(|e| classify(&e))?;
        client
            .execute(
                &stmt,
                &[
                    &ids,
                    &namespaces,
                    &names,
                    &paths,
                    &match_names,
                    &starts,
                    &docs,
                ],
            )
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }
}

fn push(msg: WriterMsg, batch: &mut Vec<(Row, Done)>, flushes: &mut Vec<Done>) {
    match msg {
        WriterMsg::Record(row, done) => batch.push((row, done)),
        WriterMsg::Flush(done) => flushes.push(done),
    }
}
