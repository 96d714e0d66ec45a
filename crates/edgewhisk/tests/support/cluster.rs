//! A cluster of real `edgewhisk serve` processes for end-to-end tests: controllers and
//! invokers (each its own process and data directory) over a `nats-server` and a PostgreSQL
//! that the test starts on loopback, with a round-robin [`Proxy`] in front of the controllers
//! as the operator's HTTP load balancer.
//!
//! Tests that only need a cluster share one PostgreSQL and one NATS server per test binary
//! ([`shared_services`]); each cluster gets a database and a NATS subject prefix of its own.
//! Failure tests that stop or restart a service start their own ([`Services::start`]).

use super::proxy::Proxy;
use super::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};
use edgewhisk_testkit::services::nats::Nats;
use edgewhisk_testkit::services::postgres::Postgres;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A PostgreSQL and a NATS server on loopback.
#[derive(Debug)]
pub(crate) struct Services {
    /// The PostgreSQL server.
    pub(crate) pg: Postgres,
    /// The NATS server.
    pub(crate) nats: Nats,
}

impl Services {
    /// Starts both, or returns `None` (with the reason printed) when their executables are
    /// missing outside CI.
    pub(crate) async fn start() -> Option<Services> {
        let pg = tokio::task::spawn_blocking(Postgres::start_or_skip)
            .await
            .expect("the PostgreSQL start")?;
        let nats = Nats::start_or_skip().await?;
        Some(Services { pg, nats })
    }
}

/// One PostgreSQL and one NATS server for the whole test binary, stopped when it exits.
/// `None` when they cannot run here (outside CI).
pub(crate) async fn shared_services() -> Option<&'static Mutex<Services>> {
    static SERVICES: OnceCell<Option<Mutex<Services>>> = OnceCell::const_new();
    SERVICES
        .get_or_init(|| async {
            let services = Services::start().await?;
            services
                .pg
                .kill_on_exit()
                .expect("watch PostgreSQL for this test binary's exit");
            services
                .nats
                .kill_on_exit()
                .expect("watch nats-server for this test binary's exit");
            Some(Mutex::new(services))
        })
        .await
        .as_ref()
}

/// Where a cluster keeps its state: a database and a subject prefix of its own.
#[derive(Debug, Clone)]
pub(crate) struct Backends {
    /// PostgreSQL URL of the cluster's database.
    pub(crate) postgres: String,
    /// NATS URL.
    pub(crate) nats: String,
    /// The NATS subject prefix of the cluster.
    pub(crate) prefix: String,
}

impl Backends {
    /// A fresh database and prefix on `services`.
    pub(crate) fn fresh(services: &Services) -> Backends {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("c{}_{n}", std::process::id());
        let postgres = services
            .pg
            .create_database(&name)
            .expect("create the cluster's database");
        Backends {
            postgres,
            nats: services.nats.url(),
            prefix: name.replace('_', "-"),
        }
    }
}

/// The roles a cluster process can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `--role controller`.
    Controller,
    /// `--role invoker --invoker-id N`.
    Invoker(u32),
}

/// A running cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// The controllers, in start order.
    pub(crate) controllers: Vec<ServerGuard>,
    /// The invokers; `invokers[i]` is `invoker<i>`.
    pub(crate) invokers: Vec<ServerGuard>,
    /// The load balancer in front of the controllers.
    pub(crate) proxy: Proxy,
    /// The cluster's backends.
    pub(crate) backends: Backends,
}

impl Cluster {
    /// Starts `controllers` controllers and `invokers` invokers on `backends`, each with
    /// [`TEST_DEFAULTS`] plus `extra_toml`; [`Cluster::ready`] waits until they see each other.
    pub(crate) fn start(
        backends: Backends,
        controllers: usize,
        invokers: u32,
        extra_toml: &str,
    ) -> Cluster {
        let config = format!(
            "{TEST_DEFAULTS}\n{extra_toml}\n[cluster]\nsubject_prefix = \"{}\"\n",
            backends.prefix
        );
        // All at once, as after a power cut: whichever process reaches the empty database
        // first migrates and provisions it while the others start.
        let spawn_all = |roles: Vec<Role>| -> Vec<ServerGuard> {
            std::thread::scope(|scope| {
                let handles: Vec<_> = roles
                    .into_iter()
                    .map(|role| {
                        let (backends, config) = (&backends, &config);
                        scope.spawn(move || spawn(backends, config, role))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a cluster process started"))
                    .collect()
            })
        };
        let mut processes = spawn_all(
            (0..controllers)
                .map(|_| Role::Controller)
                .chain((0..invokers).map(Role::Invoker))
                .collect(),
        );
        let invokers = processes.split_off(controllers);
        let started = processes;
        let proxy = Proxy::start(started.iter().map(addr_of).collect());
        Cluster {
            controllers: started,
            invokers,
            proxy,
            backends,
        }
    }

    /// The load balancer's base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn base(&self) -> String {
        self.proxy.base()
    }

    /// The end of every process's log, each under a heading.
    pub(crate) fn log_tails(&self) -> String {
        let controllers = self
            .controllers
            .iter()
            .enumerate()
            .map(|(i, c)| format!("--- controller {i} ---\n{}", c.log_tail()));
        let invokers = self
            .invokers
            .iter()
            .enumerate()
            .map(|(i, c)| format!("--- invoker {i} ---\n{}", c.log_tail()));
        controllers.chain(invokers).collect::<Vec<_>>().join("\n")
    }

    /// `GET /invokers` of controller `i`: `{"invoker0/0": "up", …}` (`null` when it does not
    /// answer).
    pub(crate) async fn invokers_seen_by(&self, i: usize) -> serde_json::Value {
        let url = self.controllers[i].url("/invokers");
        let client = reqwest::Client::new();
        match client.get(url).timeout(Duration::from_secs(5)).send().await {
            Ok(r) => r.json().await.unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// Waits (at most `within`) until every running controller reports each invoker in
    /// `invokers` as `state` (`up`, `unhealthy`, `down`); returns how long that took.
    pub(crate) async fn wait_for_invokers(
        &self,
        invokers: &[u32],
        state: &str,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let mut seen = Vec::new();
            for c in 0..self.controllers.len() {
                if self.controllers[c].is_running() {
                    seen.push(self.invokers_seen_by(c).await);
                }
            }
            let done = seen.iter().all(|s| {
                invokers
                    .iter()
                    .all(|id| s[format!("invoker{id}/{id}")] == state)
            });
            if done {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "invokers {invokers:?} not {state} within {within:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every controller sees every invoker up.
    pub(crate) async fn ready(self) -> Cluster {
        let all: Vec<u32> = (0..self.invokers.len())
            .map(|i| u32::try_from(i).expect("few invokers"))
            .collect();
        self.wait_for_invokers(&all, "up", Duration::from_secs(30))
            .await;
        self
    }

    /// Sends new connections to the running controllers' current ports.
    pub(crate) fn point_proxy_at_controllers(&self) {
        let running = self.controllers.iter().filter(|c| c.is_running());
        self.proxy.set_upstreams(running.map(addr_of).collect());
    }
}

/// Starts one process of the cluster.
fn spawn(backends: &Backends, config: &str, role: Role) -> ServerGuard {
    let mut args = vec![
        "--nats".to_owned(),
        backends.nats.clone(),
        "--postgres".to_owned(),
        backends.postgres.clone(),
        "--isolation".to_owned(),
        "process".to_owned(),
    ];
    match role {
        Role::Controller => args.extend(["--role".to_owned(), "controller".to_owned()]),
        Role::Invoker(id) => args.extend([
            "--role".to_owned(),
            "invoker".to_owned(),
            "--invoker-id".to_owned(),
            id.to_string(),
        ]),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_server_with(ServerOptions {
        config_toml: Some(config),
        extra_args: &args,
        ..ServerOptions::default()
    })
}

/// The `127.0.0.1:PORT` a running process listens on.
fn addr_of(server: &ServerGuard) -> SocketAddr {
    server
        .base()
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address")
}
