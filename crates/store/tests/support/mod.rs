//! Fixtures the store's test files share: activation ids, records and filters, and entity
//! documents. Tests change the fields they care about with struct update syntax.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use edgewhisk_entity::{Activation, ActivationId, ActivationResponse, Parameters};
use edgewhisk_store::{ActivationFilter, Collection, EntityDoc, StoreConfig};
use serde_json::{Value, json};

/// The activation id whose hex form is `n`, so that ids sort as their numbers.
pub(crate) fn id(n: u64) -> ActivationId {
    ActivationId::parse(&format!("{n:032x}")).unwrap()
}

/// Record `n` of action `a` in `namespace`: started at `start`, ended 1 ms later, successful
/// with result `{"n": n}`, no logs, no annotations.
pub(crate) fn activation(n: u64, namespace: &str, start: u64) -> Activation {
    Activation {
        namespace: namespace.into(),
        name: "a".into(),
        version: "0.0.1".into(),
        subject: namespace.into(),
        activation_id: id(n),
        cause: None,
        start,
        end: start + 1,
        duration: None,
        response: ActivationResponse::success(json!({ "n": n })),
        logs: Vec::new(),
        annotations: Parameters::default(),
        publish: false,
    }
}

/// Annotations with `path` set to `path`.
pub(crate) fn path_annotation(path: &str) -> Parameters {
    let mut annotations = Parameters::default();
    annotations.set("path", json!(path));
    annotations
}

/// Every record of `namespace`, no paging.
pub(crate) fn filter(namespace: &str) -> ActivationFilter {
    ActivationFilter {
        namespace: namespace.into(),
        ..ActivationFilter::default()
    }
}

/// The document `name` under `path` in `collection`, with `doc` as its JSON.
pub(crate) fn entity(
    collection: Collection,
    path: &str,
    name: &str,
    updated: u64,
    doc: Value,
) -> EntityDoc {
    EntityDoc {
        collection,
        path: path.into(),
        name: name.into(),
        updated,
        doc,
    }
}

/// A SQLite store config whose writer gathers each batch for a while, so that concurrent
/// records share transactions; `store` still returns only after its record committed.
pub(crate) fn gathering_writer_config() -> StoreConfig {
    StoreConfig {
        activation_batch_size: 65_536,
        activation_flush_interval_ms: 5,
        ..StoreConfig::default()
    }
}

/// A fresh, empty database on the test binary's one PostgreSQL server (started on first use,
/// shut down when the binary exits), or `None` with the reason printed when PostgreSQL is not
/// installed outside CI.
pub(crate) fn postgres_database() -> Option<String> {
    use edgewhisk_testkit::services::postgres::Postgres;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SERVER: OnceLock<Option<Postgres>> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = SERVER
        .get_or_init(|| {
            let pg = Postgres::start_or_skip()?;
            pg.kill_on_exit()
                .expect("watchdog for the PostgreSQL server");
            Some(pg)
        })
        .as_ref()?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Some(server.create_database(&format!("test{n}")).unwrap())
}

/// A PostgreSQL store on a fresh database with `config`, or `None` (see
/// [`postgres_database`]).
pub(crate) async fn postgres_store(config: &StoreConfig) -> Option<edgewhisk_store::PostgresStore> {
    let url = postgres_database()?;
    Some(
        edgewhisk_store::PostgresStore::connect(&url, config)
            .await
            .unwrap(),
    )
}
