//! Criterion microbenchmarks of the hot path of one warm invocation, so regressions show:
//! parsing a request (an `ActionPut` body, an invoke body of 17 B … 1 MB), serialising the
//! activation record, the pool's scheduling decision over pools of growing size, and the
//! SQLite store's batched activation writes (`store` + `flush`).
//!
//! Run with `cargo bench -p edgewhisk --bench hot_path`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edgewhisk_entity::{ActionPut, Activation, ActivationId, ActivationResponse, Parameters};
use edgewhisk_invoker::container_pool::data::{ContainerData, WarmData};
use edgewhisk_invoker::container_pool::policy;
use edgewhisk_store::{ActivationStore, SqliteStore, StoreConfig};
use serde_json::{Map, Value, json};
use std::hint::black_box;

const ACTION_PUT: &str = r#"{"exec":{"kind":"nodejs:20","code":"function main(params) {\n  return { payload: 'Hello, ' + (params.name || 'World') + '!' };\n}\n"},"limits":{"concurrency":1,"memory":256,"timeout":60000},"parameters":[{"key":"greeting","value":"hi"}],"annotations":[{"key":"web-export","value":false}]}"#;

fn invoke_body(size: usize) -> Vec<u8> {
    let pad = size.saturating_sub(r#"{"name":""}"#.len());
    format!(r#"{{"name":"{}"}}"#, "x".repeat(pad)).into_bytes()
}

fn activation(result_bytes: usize) -> Activation {
    let mut annotations = Parameters::default();
    annotations.set("path", json!("guest/hello"));
    annotations.set("kind", json!("nodejs:20"));
    annotations.set(
        "limits",
        json!({"concurrency": 1, "logs": 10, "memory": 256, "timeout": 60000}),
    );
    annotations.set("waitTime", json!(1));
    Activation {
        namespace: "guest".into(),
        name: "hello".into(),
        version: "0.0.1".into(),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        cause: None,
        start: 1_700_000_000_000,
        end: 1_700_000_000_002,
        duration: Some(2),
        response: ActivationResponse::success(json!({"payload": "x".repeat(result_bytes)})),
        logs: vec!["2024-01-01T00:00:00.000Z stdout: hello".into()],
        annotations,
        publish: false,
    }
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.bench_function("action_put", |b| {
        b.iter(|| serde_json::from_str::<ActionPut>(black_box(ACTION_PUT)).expect("valid"));
    });
    for size in [17usize, 10 * 1024, 1_048_000] {
        let body = invoke_body(size);
        g.throughput(Throughput::Bytes(u64::try_from(size).unwrap_or(u64::MAX)));
        g.bench_with_input(BenchmarkId::new("invoke_body", size), &body, |b, body| {
            b.iter(|| serde_json::from_slice::<Map<String, Value>>(black_box(body)).expect("json"));
        });
    }
    g.finish();
}

fn serialisation(c: &mut Criterion) {
    let mut g = c.benchmark_group("activation_record");
    for size in [16usize, 100 * 1024] {
        let a = activation(size);
        g.bench_with_input(BenchmarkId::new("to_vec", size), &a, |b, a| {
            b.iter(|| serde_json::to_vec(black_box(a)).expect("serialisable"));
        });
        g.bench_with_input(BenchmarkId::new("to_json", size), &a, |b, a| {
            b.iter(|| black_box(a).to_json());
        });
    }
    g.finish();
}

fn scheduling(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("pool_schedule");
    for size in [4usize, 64, 512] {
        let pool: Vec<(u64, ContainerData)> = (0..size)
            .map(|i| {
                let w = WarmData {
                    namespace: "guest".into(),
                    action_key: format!("guest/action-{i}@0.0.1"),
                    kind: "nodejs:20".into(),
                    memory_mb: 256,
                    max_concurrency: 1,
                    active: 0,
                    last_used: tokio::time::Instant::now(),
                    use_seq: u64::try_from(i).unwrap_or(0),
                };
                (u64::try_from(i).unwrap_or(0), ContainerData::Warmed(w))
            })
            .collect();
        let wanted = format!("guest/action-{}@0.0.1", size / 2);
        g.bench_with_input(BenchmarkId::new("warm_hit", size), &pool, |b, pool| {
            b.iter(|| {
                policy::schedule(
                    "guest",
                    black_box(&wanted),
                    pool.iter().map(|(k, d)| (k, d)),
                )
            });
        });
        g.bench_with_input(BenchmarkId::new("miss", size), &pool, |b, pool| {
            b.iter(|| {
                policy::schedule(
                    "guest",
                    black_box("guest/absent@0.0.1"),
                    pool.iter().map(|(k, d)| (k, d)),
                )
            });
        });
    }
    g.finish();
}

fn store_writes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("bench.db"), &StoreConfig::default())
        .expect("open store");
    let mut g = c.benchmark_group("store");
    for batch in [1usize, 64] {
        g.throughput(Throughput::Elements(u64::try_from(batch).unwrap_or(0)));
        g.bench_function(BenchmarkId::new("store_and_flush", batch), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..batch {
                        store.store(activation(16)).await.expect("store");
                    }
                    store.flush().await.expect("flush");
                });
            });
        });
    }
    g.finish();
}

/// The benchmark group, in a module so the function `criterion_group!` generates can be
/// exempt from the documentation lints.
#[allow(
    missing_docs,
    unreachable_pub,
    reason = "criterion_group! generates an undocumented pub function"
)]
mod group {
    use super::{criterion_group, parsing, scheduling, serialisation, store_writes};

    criterion_group!(benches, parsing, serialisation, scheduling, store_writes);
}

criterion_main!(group::benches);
