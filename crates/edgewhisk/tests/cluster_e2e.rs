//! End-to-end tests of the cluster mode with real processes: controllers and invokers started
//! as `edgewhisk serve --role …` over a `nats-server` and a PostgreSQL that each test starts
//! on loopback (`docs/cluster.md`). They check what the cluster promises: one store and one
//! API whichever controller answers, and what happens when each piece fails — an invoker
//! killed under load, a controller killed, nats-server and PostgreSQL restarted.
//!
//! Timings (time to mark an invoker offline, the callers' worst wait, recovery times) are
//! printed; run with `--nocapture` to see them.

mod support;

#[cfg(test)]
mod cluster {
    use crate::support::GUEST_KEY;
    use crate::support::api::{Endpoint, create_action, http, invoke_blocking, send, send_raw};
    use crate::support::cluster::{Backends, Cluster, Services, shared_services};
    use serde_json::{Value, json};
    use std::time::{Duration, Instant};

    /// Sleeps `ms` (default 0) and answers which process ran it.
    const SLEEPER: &str = "function main(p) {\n  return new Promise(r => setTimeout(() => \
        r({slept: p.ms || 0, pid: process.pid}), p.ms || 0));\n}\n";

    /// A cluster of `controllers` and `invokers` on the binary's shared services, or `None`
    /// when they cannot run here.
    async fn shared_cluster(controllers: usize, invokers: u32) -> Option<Cluster> {
        let backends = {
            let services = shared_services()
                .await?
                .lock()
                .expect("the shared services");
            Backends::fresh(&services)
        };
        Some(
            Cluster::start(backends, controllers, invokers, "")
                .ready()
                .await,
        )
    }

    /// A controller and an invoker on services of their own (for tests that stop them), with
    /// the sleeper action `s` created and run once; and the cluster's API URL.
    async fn own_cluster() -> Option<(Services, Cluster, String)> {
        let services = Services::start().await?;
        let cluster = Cluster::start(Backends::fresh(&services), 1, 1, "")
            .ready()
            .await;
        let api = cluster.base();
        create_sleeper(&api, "s", 10_000).await;
        invoke_blocking(api.as_str(), "s", json!({}))
            .await
            .expect_status(200, "the first invoke");
        Some((services, cluster, api))
    }

    /// Creates the sleeper action `name` with the time limit `timeout_ms`.
    async fn create_sleeper(api: &str, name: &str, timeout_ms: u64) {
        let body = json!({"exec": {"kind": "nodejs:20", "code": SLEEPER},
                          "limits": {"timeout": timeout_ms}});
        let reply = send(
            http()
                .put(api.ns_url(&format!("actions/{name}?overwrite=true")))
                .json(&body),
        )
        .await;
        reply.expect_status(200, &format!("create {name}"));
    }

    #[tokio::test]
    async fn either_controller_serves_what_the_other_stored_and_runs_it_on_the_invokers() {
        let Some(cluster) = shared_cluster(2, 2).await else {
            return;
        };
        let (a, b) = (&cluster.controllers[0], &cluster.controllers[1]);
        create_action(a, "hello", "nodejs:20", crate::support::api::HELLO).await;
        // Read and run through the other controller at once: its cache learns of the write.
        let got = send(http().get(b.ns_url("actions/hello"))).await;
        got.expect_status(200, "get the action through the other controller");
        let run = invoke_blocking(b, "hello", json!({"name": "cluster"})).await;
        run.expect_status(200, "invoke through the other controller");
        assert_eq!(
            run.body["response"]["result"],
            json!({"payload": "Hello, cluster!"})
        );
        let id = run.body["activationId"].as_str().expect("an id").to_owned();
        let record = send(http().get(a.ns_url(&format!("activations/{id}")))).await;
        record.expect_status(200, "the record through the first controller");
        assert_eq!(record.body["response"]["success"], json!(true));

        // An update through one controller is what the other runs next.
        create_action(
            b,
            "hello",
            "nodejs:20",
            "function main() { return {v: 2}; }",
        )
        .await;
        let run = invoke_blocking(a, "hello", json!({})).await;
        run.expect_status(200, "invoke the updated action");
        assert_eq!(run.body["response"]["result"], json!({"v": 2}));

        // Each process's data directory (unpacked action code) is private: at most traversable
        // by the unprivileged action user, never listable or readable by others.
        for process in cluster.controllers.iter().chain(&cluster.invokers) {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(process.data_dir())
                    .expect("the data directory")
                    .permissions(),
            );
            assert_eq!(mode & 0o066, 0, "data directory mode {mode:o}");
        }

        let seen = cluster.invokers_seen_by(0).await;
        assert_eq!(seen, json!({"invoker0/0": "up", "invoker1/1": "up"}));
        let count = send(http().get(a.url("/invokers/healthy/count"))).await;
        assert_eq!(count.body, json!(2));

        // Each invoker serves its own metrics and readiness without a key; together they
        // counted the two runs.
        let mut runs = 0.0;
        for invoker in &cluster.invokers {
            let scrape = send_raw(http().get(invoker.url("/metrics"))).await;
            scrape.expect_status(200, "an invoker's /metrics");
            runs += scrape
                .text
                .lines()
                .filter(|l| l.starts_with("openwhisk_action_activations_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
            let ready = send_raw(http().get(invoker.url("/ready"))).await;
            ready.expect_status(200, "an invoker's /ready");
        }
        assert!(runs >= 2.0, "the invokers counted {runs} runs");
    }

    #[tokio::test]
    async fn an_invoker_killed_under_load_fails_its_activations_with_a_record_and_work_moves_on() {
        let Some(mut cluster) = shared_cluster(2, 2).await else {
            return;
        };
        let api = cluster.base();
        // Several actions, so that both invokers are some action's home.
        let names: Vec<String> = (0..6).map(|i| format!("sleep{i}")).collect();
        for name in &names {
            create_sleeper(&api, name, 20_000).await;
        }
        let started = Instant::now();
        let calls: Vec<_> = names
            .iter()
            .map(|name| {
                let api = api.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let reply = invoke_blocking(api.as_str(), &name, json!({"ms": 4000})).await;
                    (name, reply, t.elapsed())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        cluster.invokers[0].sigkill();
        let killed = Instant::now();
        let offline = cluster
            .wait_for_invokers(&[0], "down", Duration::from_secs(15))
            .await;
        println!("invoker0 marked down by every controller {offline:?} after SIGKILL");

        let mut failed = Vec::new();
        let mut worst = Duration::ZERO;
        for call in calls {
            let (name, reply, waited) = call.await.expect("the caller task");
            worst = worst.max(waited);
            match reply.status.as_u16() {
                200 => assert_eq!(reply.body["response"]["result"]["slept"], json!(4000)),
                // OpenWhisk answers a blocking invoke that ended in a whisk error with 500.
                500 => {
                    assert_eq!(
                        reply.body["response"]["status"],
                        json!("whisk internal error"),
                        "{name}: {}",
                        reply.body
                    );
                    failed.push(reply.body["activationId"].as_str().expect("id").to_owned());
                }
                other => panic!("{name}: unexpected {other}: {}", reply.text),
            }
        }
        println!(
            "{} of {} callers got a whisk error; worst wait {worst:?} (kill at {:?})",
            failed.len(),
            names.len(),
            killed - started
        );
        assert!(
            !failed.is_empty(),
            "some action must have run on the killed invoker"
        );
        // Each failed activation has its one record: the whisk error the caller saw.
        for id in &failed {
            let record = send(http().get(api.ns_url(&format!("activations/{id}")))).await;
            record.expect_status(200, "the failed activation's record");
            assert_eq!(
                record.body["response"]["status"],
                json!("whisk internal error")
            );
        }
        // New work goes to the invoker that is left.
        for name in &names {
            let reply = invoke_blocking(api.as_str(), name, json!({"ms": 1})).await;
            reply.expect_status(200, &format!("{name} after the kill"));
        }
        // The killed invoker comes back and is used again.
        cluster.invokers[0].restart();
        let back = cluster
            .wait_for_invokers(&[0], "up", Duration::from_secs(20))
            .await;
        println!("invoker0 up again {back:?} after its restart");
        for name in &names {
            let reply = invoke_blocking(api.as_str(), name, json!({"ms": 1})).await;
            reply.expect_status(200, &format!("{name} after the rejoin"));
        }
    }

    #[tokio::test]
    async fn a_killed_controller_leaves_the_other_serving_every_entity() {
        let Some(mut cluster) = shared_cluster(2, 1).await else {
            return;
        };
        for i in 0..4 {
            let c = &cluster.controllers[i % 2];
            create_action(
                c,
                &format!("a{i}"),
                "nodejs:20",
                "function main() { return {}; }",
            )
            .await;
        }
        cluster.controllers[0].sigkill();
        cluster.point_proxy_at_controllers();
        let api = cluster.base();
        let list = send(http().get(api.ns_url("actions?limit=0"))).await;
        list.expect_status(200, "list through the remaining controller");
        let mut names: Vec<&str> = list
            .body
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["a0", "a1", "a2", "a3"]);
        for name in names {
            invoke_blocking(api.as_str(), name, json!({}))
                .await
                .expect_status(200, name);
        }
    }

    #[tokio::test]
    async fn the_cluster_recovers_by_itself_after_nats_server_restarts() {
        let Some((mut services, _cluster, api)) = own_cluster().await else {
            return;
        };
        services.nats.restart().await.expect("restart nats-server");
        let restarted = Instant::now();
        let recovered = loop {
            let reply = invoke_blocking(api.as_str(), "s", json!({})).await;
            if reply.status == 200 {
                break restarted.elapsed();
            }
            assert!(
                reply.status == 503 || reply.status == 502,
                "while NATS comes back: {} {}",
                reply.status,
                reply.text
            );
            reply.expect_error_body("while NATS comes back");
            assert!(
                restarted.elapsed() < Duration::from_secs(30),
                "not recovered 30 s after nats-server restarted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        println!("invokes work again {recovered:?} after nats-server restarted");
    }

    #[tokio::test]
    async fn requests_fail_with_503_while_postgres_is_down_and_work_again_after() {
        let Some((mut services, _cluster, api)) = own_cluster().await else {
            return;
        };
        services.pg.stop().expect("stop PostgreSQL");
        // A write and a list need the database: 503 with the error body, at once.
        let t = Instant::now();
        let put = send(
            http()
                .put(api.ns_url("actions/t"))
                .json(&json!({"exec": {"kind": "nodejs:20", "code": "function main(){}"}})),
        )
        .await;
        put.expect_status(503, "create while PostgreSQL is down");
        put.expect_error_body("create while PostgreSQL is down");
        let list = send(http().get(api.ns_url("activations"))).await;
        list.expect_status(503, "list while PostgreSQL is down");
        println!(
            "503s answered in {:?} while PostgreSQL was down",
            t.elapsed()
        );

        services.pg.restart().expect("restart PostgreSQL");
        let restarted = Instant::now();
        loop {
            let reply = send(http().get(api.ns_url("activations"))).await;
            if reply.status == 200 {
                break;
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(30),
                "not recovered 30 s after PostgreSQL restarted: {}",
                reply.text
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "served again {:?} after PostgreSQL restarted",
            restarted.elapsed()
        );
        invoke_blocking(api.as_str(), "s", json!({}))
            .await
            .expect_status(200, "invoke after PostgreSQL is back");
    }

    #[tokio::test]
    async fn an_alarm_fires_once_per_tick_with_two_controllers_and_on_after_one_dies() {
        let Some(mut cluster) = shared_cluster(2, 1).await else {
            return;
        };
        let api = cluster.base();
        create_action(
            api.as_str(),
            "echo",
            "nodejs:20",
            "function main(p) { return p; }",
        )
        .await;
        trigger_with_rule(api.as_str(), "tick", "echo").await;
        let body = json!({"lifecycleEvent": "CREATE", "triggerName": "/_/tick",
                          "authKey": GUEST_KEY, "seconds": 1});
        let url = api.url("/api/v1/namespaces/whisk.system/actions/alarms/interval?blocking=true");
        send(http().post(url).json(&body))
            .await
            .expect_status(200, "create the interval alarm");
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let triggers = list_records(&api, "tick").await;
        let starts: Vec<u64> = triggers
            .iter()
            .filter_map(|t| t["start"].as_u64())
            .collect();
        // One fire per second, not one per controller per second.
        assert!(
            (2..=6).contains(&starts.len()),
            "expected about 4 fires in 4.5 s, got {}: {starts:?}",
            starts.len()
        );
        let mut sorted = starts.clone();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            assert!(
                pair[1] - pair[0] >= 500,
                "two fires {} ms apart: {sorted:?}",
                pair[1] - pair[0]
            );
        }

        // The controller that leads the feeds dies: the other takes them over.
        let leader = (0..2)
            .find(|i| {
                cluster.controllers[*i]
                    .log_tail()
                    .contains("runs the alarm and MQTT feeds")
            })
            .expect("one controller leads the feeds");
        cluster.controllers[leader].sigkill();
        cluster.point_proxy_at_controllers();
        let killed = edgewhisk_entity::time::now_millis();
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let after: Vec<u64> = list_records(&cluster.base(), "tick")
            .await
            .iter()
            .filter_map(|t| t["start"].as_u64())
            .filter(|start| *start > killed + 1500)
            .collect();
        assert!(
            (1..=4).contains(&after.len()),
            "expected the alarm to go on after its leader died: {after:?}"
        );
    }

    #[tokio::test]
    async fn sequences_rules_web_actions_and_admin_keys_work_across_controllers() {
        let Some(cluster) = shared_cluster(2, 2).await else {
            return;
        };
        let (a, b) = (&cluster.controllers[0], &cluster.controllers[1]);
        // Components, sequence and web action made on one controller, run through the other.
        create_action(
            a,
            "inc",
            "nodejs:20",
            "function main(p) { return {n: (p.n || 0) + 1}; }",
        )
        .await;
        send(
            http()
                .put(a.ns_url("actions/twice?overwrite=true"))
                .json(&json!({
                    "exec": {"kind": "sequence", "components": ["/_/inc", "/_/inc"]}
                })),
        )
        .await
        .expect_status(200, "create the sequence");
        let run = invoke_blocking(b, "twice", json!({"n": 1})).await;
        run.expect_status(200, "the sequence through the other controller");
        assert_eq!(run.body["response"]["result"], json!({"n": 3}));

        send(http().put(a.ns_url("actions/page?overwrite=true")).json(&json!({
            "exec": {"kind": "nodejs:20", "code": "function main(p) { return {body: 'hi ' + p.who}; }"},
            "annotations": [{"key": "web-export", "value": true}]
        })))
        .await
        .expect_status(200, "create the web action");
        let page = http()
            .get(b.url("/api/v1/web/guest/default/page.http?who=edge"))
            .send()
            .await
            .expect("the web action");
        assert_eq!(page.status(), 200);
        assert_eq!(page.text().await.expect("its body"), "hi edge");

        // A trigger and rule made on one controller fire through the other.
        trigger_with_rule(a, "t", "inc").await;
        send(http().post(b.ns_url("triggers/t")).json(&json!({"n": 41})))
            .await
            .expect_status(202, "fire through the other controller");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fired = list_records(&cluster.base(), "inc").await;
            if fired
                .iter()
                .any(|r| r["response"]["result"] == json!({"n": 42}))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the rule's action did not run: {fired:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A key made with `edgewhisk admin --postgres` works on every controller at once, and
        // a regenerated one stops working at once (the controllers' caches hear of it).
        let admin = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgewhisk"))
                .arg("admin")
                .args(args)
                .args(["--postgres", &cluster.backends.postgres])
                .output()
                .expect("run edgewhisk admin");
            assert!(out.status.success(), "admin {args:?}: {out:?}");
            String::from_utf8(out.stdout)
                .expect("utf-8")
                .trim()
                .to_owned()
        };
        let key = admin(&["user", "create", "alice"]);
        let (uuid, secret) = key.split_once(':').expect("uuid:key");
        for c in [a, b] {
            let reply = crate::support::api::send_raw(
                http()
                    .get(c.ns_url("actions"))
                    .basic_auth(uuid, Some(secret)),
            )
            .await;
            reply.expect_status(200, "the new key on each controller");
        }
        admin(&["user", "regenerate", "alice"]);
        for c in [a, b] {
            let reply = crate::support::api::send_raw(
                http()
                    .get(c.ns_url("actions"))
                    .basic_auth(uuid, Some(secret)),
            )
            .await;
            reply.expect_status(401, "the old key right after regenerate");
        }
    }

    /// Creates trigger `trigger` and a rule `<trigger>-<action>` from it to `action`.
    async fn trigger_with_rule(api: &(impl Endpoint + ?Sized), trigger: &str, action: &str) {
        send(
            http()
                .put(api.ns_url(&format!("triggers/{trigger}")))
                .json(&json!({})),
        )
        .await
        .expect_status(200, "create the trigger");
        send(
            http()
                .put(api.ns_url(&format!("rules/{trigger}-{action}")))
                .json(
                    &json!({"trigger": format!("/_/{trigger}"), "action": format!("/_/{action}")}),
                ),
        )
        .await
        .expect_status(200, "create the rule");
    }

    /// The records of `name` (newest first).
    async fn list_records(api: &str, name: &str) -> Vec<Value> {
        let reply =
            send(http().get(api.ns_url(&format!("activations?name={name}&docs=true&limit=200"))))
                .await;
        reply.expect_status(200, "list activations");
        reply.body.as_array().cloned().unwrap_or_default()
    }
}
