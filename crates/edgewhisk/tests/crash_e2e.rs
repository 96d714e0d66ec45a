//! Crash safety end to end (issue 9, item 5): the real binary under load from several clients
//! mixing entity writes and blocking invokes is killed with SIGKILL, restarted on the same data
//! directory, and must still hold every entity write and every activation record it answered
//! for. Only the public REST API is used.

mod support;

#[cfg(test)]
mod crash {
    use crate::support::api::{HELLO_NAME, assert_healthy, create_hello, http};
    use crate::support::{GUEST_SECRET, GUEST_UUID, ServerGuard, ServerOptions, TEST_DEFAULTS};
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Kill-and-restart rounds.
    const ROUNDS: usize = 5;

    /// Concurrent clients per round.
    const CLIENTS: usize = 8;

    /// How long the clients load the server before it is killed, per round.
    const LOAD_FOR: Duration = Duration::from_millis(1500);

    /// Clients that check what survived, in parallel.
    const CHECKERS: usize = 8;

    /// What one client was told had succeeded before the kill.
    #[derive(Debug, Default)]
    struct Acknowledged {
        /// Triggers whose `PUT` answered 200.
        triggers: Vec<String>,
        /// Activation ids of blocking invokes that answered 200.
        activations: Vec<String>,
    }

    /// One client: alternates a trigger `PUT` and a blocking invoke until `stop`, and keeps what
    /// was acknowledged. Requests cut off by the kill fail, which is fine: they were never
    /// acknowledged.
    async fn load(
        base: String,
        client: usize,
        round: usize,
        stop: Arc<AtomicBool>,
    ) -> Acknowledged {
        let http = http();
        let mut acked = Acknowledged::default();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let trigger = format!("r{round}-c{client}-t{i}");
            let put = http
                .put(format!(
                    "{base}/api/v1/namespaces/_/triggers/{trigger}?overwrite=true"
                ))
                .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
                .json(&json!({}))
                .send()
                .await;
            match put {
                Ok(r) => {
                    // Acknowledged only once the whole answer arrived.
                    if r.status().as_u16() == 200 && r.bytes().await.is_ok() {
                        acked.triggers.push(trigger);
                    }
                }
                Err(_) => break,
            }
            let invoke = http
                .post(format!(
                    "{base}/api/v1/namespaces/_/actions/{HELLO_NAME}?blocking=true"
                ))
                .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
                .json(&json!({"name": i}))
                .send()
                .await;
            match invoke {
                Ok(r) if r.status().as_u16() == 200 => {
                    // Acknowledged only once the whole answer arrived.
                    if let Ok(body) = r.json::<serde_json::Value>().await
                        && let Some(id) = body["activationId"].as_str()
                    {
                        acked.activations.push(id.to_owned());
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
            i += 1;
        }
        acked
    }

    /// The paths (under the guest namespace) among `paths` that answer 404 after the restart.
    async fn missing(s: &ServerGuard, paths: Vec<String>) -> Vec<String> {
        let paths = Arc::new(paths);
        let mut tasks = tokio::task::JoinSet::new();
        for checker in 0..CHECKERS {
            let paths = Arc::clone(&paths);
            let base = s.ns_url("");
            tasks.spawn(async move {
                let http = http();
                let mut missing = Vec::new();
                for path in paths.iter().skip(checker).step_by(CHECKERS) {
                    let r = http
                        .get(format!("{base}{path}"))
                        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
                        .send()
                        .await
                        .expect("the restarted server answers");
                    match r.status().as_u16() {
                        200 => {}
                        404 => missing.push(path.clone()),
                        other => panic!("GET {path} after restart answered {other}"),
                    }
                }
                missing
            });
        }
        let mut all = Vec::new();
        while let Some(found) = tasks.join_next().await {
            all.extend(found.expect("checker task"));
        }
        all
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_entities_and_activation_records_survive_sigkill_under_load() {
        kill_rounds(crate::support::spawn_server_with(ServerOptions {
            config_toml: Some(TEST_DEFAULTS),
            extra_args: &["--isolation", "process"],
            temp_parent: None,
            ..ServerOptions::default()
        }))
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_entities_and_activation_records_survive_sigkill_under_load_with_runc() {
        if let Some(why) = crate::support::host::runc_unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        kill_rounds(crate::support::spawn_server_with(ServerOptions {
            config_toml: Some(TEST_DEFAULTS),
            extra_args: &["--isolation", "runc"],
            // Not under /tmp, which instances get a private copy of.
            temp_parent: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))),
            ..ServerOptions::default()
        }))
        .await;
    }

    /// [`ROUNDS`] rounds of load, SIGKILL and restart against `s`; panics unless every
    /// acknowledged write is found after each restart.
    async fn kill_rounds(mut s: ServerGuard) {
        create_hello(&s).await;
        let (mut total_triggers, mut total_records) = (0usize, 0usize);
        let mut lost = Vec::new();
        for round in 0..ROUNDS {
            let stop = Arc::new(AtomicBool::new(false));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|c| tokio::spawn(load(s.base().to_owned(), c, round, Arc::clone(&stop))))
                .collect();
            tokio::time::sleep(LOAD_FOR).await;
            // Killed while every client has requests in flight.
            tokio::task::block_in_place(|| s.sigkill());
            stop.store(true, Ordering::Relaxed);
            let mut paths = Vec::new();
            for client in clients {
                let acked = client.await.expect("client task");
                total_triggers += acked.triggers.len();
                total_records += acked.activations.len();
                paths.extend(acked.triggers.iter().map(|t| format!("triggers/{t}")));
                paths.extend(acked.activations.iter().map(|a| format!("activations/{a}")));
            }
            tokio::task::block_in_place(|| s.restart());
            let round_lost = missing(&s, paths).await;
            eprintln!(
                "round {round}: {} acknowledged writes so far, {} missing after this kill",
                total_triggers + total_records,
                round_lost.len()
            );
            lost.extend(round_lost);
        }
        eprintln!(
            "over {ROUNDS} SIGKILL rounds: {total_triggers} acknowledged trigger writes, \
             {total_records} acknowledged activation records, {} lost",
            lost.len()
        );
        assert!(
            total_records > 0 && total_triggers > 0,
            "the load produced acknowledged writes"
        );
        assert!(
            lost.is_empty(),
            "{} acknowledged writes lost across SIGKILL, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        assert_healthy(&s, "SIGKILL rounds").await;
    }
}
