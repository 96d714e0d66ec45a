//! `GET /metrics`, `/health` and `/ready` of the real binary (`docs/design/016-metrics.md`):
//! counters move with cold, warm, failing and throttled invocations; a scrape needs no key
//! and names no namespace or action unless `[metrics] namespace_labels` is set; the scrape
//! passes `promtool check metrics` (skipped without promtool, except in CI); `/ready` is 503
//! naming the store when the store refuses records.

mod support;

#[cfg(test)]
mod metrics {
    use crate::support::api::{create_action, http, invoke_blocking, send_raw};
    use crate::support::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};
    use edgewhisk_testkit::services::in_ci;
    use serde_json::json;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// Action names that must not appear in a default scrape.
    const OK_ACTION: &str = "metricsprobeok";
    const FAILING_ACTION: &str = "metricsprobefail";

    /// OpenWhisk's own metric names that promtool's lint finds not snake_case; kept for
    /// compatibility with OpenWhisk's dashboards.
    const OPENWHISK_CAMEL_CASE: [&str; 3] = [
        "openwhisk_action_coldStarts_total",
        "openwhisk_action_initTime_seconds",
        "openwhisk_action_waitTime_seconds",
    ];

    fn server(config: &str) -> ServerGuard {
        spawn_server_with(ServerOptions {
            config_toml: Some(config),
            extra_args: &["--isolation", "process"],
            ..ServerOptions::default()
        })
    }

    /// A scrape without credentials, as Prometheus text.
    async fn scrape(s: &ServerGuard) -> String {
        let reply = send_raw(http().get(s.url("/metrics"))).await;
        reply.expect_status(200, "GET /metrics without a key");
        let content_type = reply.headers["content-type"].to_str().expect("ascii");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        reply.text
    }

    /// The value of the sample `series` (name and labels exactly as printed), 0 when absent.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().expect("a number"))
    }

    async fn create_actions(s: &ServerGuard) {
        create_action(
            s,
            OK_ACTION,
            "nodejs:20",
            "function main() { return {ok: true}; }",
        )
        .await;
        create_action(
            s,
            FAILING_ACTION,
            "nodejs:20",
            "function main() { return {error: 'failed on purpose'}; }",
        )
        .await;
    }

    /// Pipes `text` through `promtool check metrics`; `false` (after printing why) when
    /// promtool is missing outside CI.
    fn promtool_check(text: &str) -> bool {
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if !in_ci() => {
                eprintln!(
                    "skipped promtool check: promtool not runnable ({e}); Debian: prometheus"
                );
                return false;
            }
            Err(e) => panic!("promtool must run in CI: {e}"),
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write the scrape to promtool");
        let out = child.wait_with_output().expect("promtool ends");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Exit code 3 is lint problems only; anything else but 0 is a parse failure.
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(3),
            "promtool could not parse the scrape ({code:?}): {report}\n{text}"
        );
        for problem in report.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                OPENWHISK_CAMEL_CASE
                    .iter()
                    .any(|name| problem.starts_with(&format!(
                        "{name} metric names should be written in 'snake_case'"
                    ))),
                "promtool: {problem}\n{text}"
            );
        }
        true
    }

    #[tokio::test]
    async fn counters_move_with_invocations_and_name_no_namespace_by_default() {
        let config = format!("{TEST_DEFAULTS}\n[metrics]\nnamespace_labels = false\n").replace(
            "invocations_per_minute = 100000",
            "invocations_per_minute = 8",
        );
        let s = server(&config);
        create_actions(&s).await;

        let before = scrape(&s).await;
        let health = send_raw(http().get(s.url("/health"))).await;
        health.expect_status(200, "GET /health");
        let ready = send_raw(http().get(s.url("/ready"))).await;
        ready.expect_status(200, "GET /ready");
        assert_eq!(
            ready.body["checks"],
            json!({"store": "ok", "invoker": "ok"})
        );

        // Cold, then warm, then an application error.
        invoke_blocking(&s, OK_ACTION, json!({}))
            .await
            .expect_status(200, "cold invoke");
        invoke_blocking(&s, OK_ACTION, json!({}))
            .await
            .expect_status(200, "warm invoke");
        invoke_blocking(&s, FAILING_ACTION, json!({}))
            .await
            .expect_status(502, "failing invoke");
        // Over the invocations per minute: at most 8 pass in this minute (a new minute can
        // let a few more through).
        let mut throttled = false;
        for _ in 0..20 {
            let reply = invoke_blocking(&s, OK_ACTION, json!({})).await;
            if reply.status.as_u16() == 429 {
                throttled = true;
                break;
            }
        }
        assert!(throttled, "an invoke over the per-minute limit is refused");

        let after = scrape(&s).await;
        let moved = |series: &str| value(&after, series) - value(&before, series);
        let kind = "{kind=\"nodejs:20\"}";
        assert!(
            moved(&format!("openwhisk_action_activations_total{kind}")) >= 3.0,
            "{after}"
        );
        assert!(
            moved(&format!("openwhisk_action_coldStarts_total{kind}")) >= 2.0,
            "{after}"
        );
        assert!(
            moved(&format!("edgewhisk_action_warm_starts_total{kind}")) >= 1.0,
            "{after}"
        );
        assert!(
            moved("openwhisk_action_status_total{kind=\"nodejs:20\",status=\"success\"}") >= 2.0,
            "{after}"
        );
        assert_eq!(
            moved("openwhisk_action_status_total{kind=\"nodejs:20\",status=\"application_error\"}"),
            1.0,
            "{after}"
        );
        assert!(moved(&format!("openwhisk_action_initTime_seconds_count{kind}")) >= 2.0);
        assert!(moved(&format!("openwhisk_action_duration_seconds_count{kind}")) >= 3.0);
        assert!(moved(&format!("openwhisk_action_waitTime_seconds_count{kind}")) >= 3.0);
        assert!(
            moved("openwhisk_action_limit_timed_total") >= 1.0,
            "{after}"
        );
        assert!(
            moved("edgewhisk_store_batch_records_count") >= 1.0,
            "{after}"
        );
        assert!(
            moved("edgewhisk_store_commit_seconds_count") >= 1.0,
            "{after}"
        );
        assert!(
            value(&after, "edgewhisk_pool_instances{state=\"idle\"}") >= 1.0,
            "{after}"
        );
        assert!(
            value(&after, "edgewhisk_runner_processes") >= 1.0,
            "{after}"
        );
        assert!(
            value(&after, "edgewhisk_runner_memory_bytes") > 0.0,
            "{after}"
        );
        for name in ["guest", OK_ACTION, FAILING_ACTION] {
            assert!(
                !after.contains(name),
                "{name} in a default scrape:\n{after}"
            );
        }

        let openmetrics = send_raw(
            http()
                .get(s.url("/metrics"))
                .header("accept", "application/openmetrics-text; version=1.0.0"),
        )
        .await;
        openmetrics.expect_status(200, "OpenMetrics scrape");
        assert!(
            openmetrics.text.ends_with("# EOF\n"),
            "{}",
            openmetrics.text
        );

        promtool_check(&after);
    }

    #[tokio::test]
    async fn namespace_labels_name_namespace_and_action_when_configured() {
        let config = format!("{TEST_DEFAULTS}\n[metrics]\nnamespace_labels = true\n");
        let s = server(&config);
        create_actions(&s).await;
        invoke_blocking(&s, OK_ACTION, json!({}))
            .await
            .expect_status(200, "invoke");
        let text = scrape(&s).await;
        let series = format!(
            "openwhisk_action_activations_total{{kind=\"nodejs:20\",namespace=\"guest\",action=\"{OK_ACTION}\"}}"
        );
        assert_eq!(value(&text, &series), 1.0, "{series} in\n{text}");
        promtool_check(&text);
    }

    #[tokio::test]
    async fn ready_is_503_naming_the_store_when_it_refuses_records() {
        let mut s = server(TEST_DEFAULTS);
        // A free-space floor no disk has: every record would be refused.
        s.stop();
        let config = format!(
            "{TEST_DEFAULTS}\n[store]\nmin_free_bytes = 1000000000000000000\nfree_space_check_interval_ms = 100\n"
        );
        std::fs::write(s.dir().join("config.toml"), config).expect("rewrite the config");
        s.restart();
        let health = send_raw(http().get(s.url("/health"))).await;
        health.expect_status(200, "GET /health with a full store");
        let ready = send_raw(http().get(s.url("/ready")).timeout(Duration::from_secs(10))).await;
        ready.expect_status(503, "GET /ready with a full store");
        assert_eq!(ready.body["ready"], json!(false), "{}", ready.text);
        assert_eq!(
            ready.body["checks"]["invoker"],
            json!("ok"),
            "{}",
            ready.text
        );
        assert_ne!(ready.body["checks"]["store"], json!("ok"), "{}", ready.text);
    }
}
