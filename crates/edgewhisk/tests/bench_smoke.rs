//! Smoke tests of the real binary's benches. `edgewhisk bench all --quick --spawn` spawns its
//! own servers and the Node.js baseline, runs every experiment with small counts, and writes
//! its outputs; nothing there is a timing assertion: it checks that the run completes and that
//! every CSV, JSON and SVG it writes is well formed and holds the measured rows; with `--kind`
//! it holds them per kind. The native example action builds with rustc and answers the way
//! `docs/benchmarks.md` states.
//! `edgewhisk bench cluster` runs clusters of 1 and 2 invokers on a PostgreSQL and a NATS
//! server the test starts, and checks the one claim the bench exists for, loosely: twice the
//! invokers give clearly more throughput to an action bound by their capacity.

use edgewhisk_testkit::services::in_ci;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Parses a CSV file written by the bench (no quoted newlines): header and rows of equal width.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).expect("the bench wrote this CSV");
    let mut lines = text.lines();
    let split = |l: &str| -> Vec<String> {
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => cells.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        assert!(!quoted, "unterminated quote in {}", path.display());
        cells.push(cur);
        cells
    };
    let header = split(lines.next().expect("a header line"));
    let rows: Vec<Vec<String>> = lines.map(split).collect();
    for r in &rows {
        assert_eq!(
            r.len(),
            header.len(),
            "row width in {}: {r:?}",
            path.display()
        );
    }
    (header, rows)
}

/// Builds `crates/bench/native-hello/main.rs` into `dir/exec` with rustc, as
/// `docs/benchmarks.md` says; `None` (a skip, outside CI) without rustc.
fn build_native_hello(dir: &Path) -> Option<std::path::PathBuf> {
    if Command::new("rustc").arg("--version").output().is_err() {
        assert!(!in_ci(), "CI has rustc");
        eprintln!("rustc is not on PATH: no native action");
        return None;
    }
    let exe = dir.join("exec");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/native-hello/main.rs");
    let built = Command::new("rustc")
        .args(["-O", "--edition", "2021", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("rustc runs");
    assert!(built.status.success(), "{built:?}");
    Some(exe)
}

/// Every load point of `concurrency.csv` answered (no errors, positive latency and throughput,
/// and a throughput ratio `with_baseline`), and every hop in `transfer.csv` is plausible.
fn check_points_and_hops(out: &Path, with_baseline: bool) {
    let (header, rows) = read_csv(&out.join("concurrency.csv"));
    let col = |c: &str| {
        header
            .iter()
            .position(|h| h == c)
            .expect("a column of the bench")
    };
    let positive = |r: &[String], c: &str| r[col(c)].parse::<f64>().is_ok_and(|v| v > 0.0);
    for r in &rows {
        assert_eq!(r[col("errors")], "0", "{r:?}");
        assert!(
            positive(r, "p50_ms") && positive(r, "throughput_rps"),
            "{r:?}"
        );
        if with_baseline {
            assert!(positive(r, "throughput_ratio"), "{r:?}");
        }
    }
    let (header, rows) = read_csv(&out.join("transfer.csv"));
    let hop = header
        .iter()
        .position(|h| h == "hop_p50_ms")
        .expect("a hop column");
    for r in &rows {
        let v: f64 = r[hop].parse().expect("a hop in ms");
        assert!((0.0..60_000.0).contains(&v), "hop {v} in {r:?}");
    }
}

/// The stdout of a bench run, which must have succeeded.
fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_all_quick_spawn_writes_valid_csv_json_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewhisk"));
        cmd.args([
            "bench",
            "all",
            "--quick",
            "--spawn",
            "--isolation",
            "process",
            "--out",
        ])
        .arg(&out)
        .env("WSK_CONFIG_FILE", dir.path().join("wskprops"))
        .env_remove("WHISK_APIHOST")
        .env_remove("WHISK_AUTH");
        let baseline = node_available();
        if !baseline {
            eprintln!("node is not on PATH: running without the baseline");
            cmd.arg("--no-baseline");
        }
        let output = cmd.output().unwrap();
        let stdout = succeeded(&output);
        assert!(stdout.contains("== headline =="), "{stdout}");

        let expected_rows = [
            ("concurrency", 4),
            ("payload", 6),
            ("transfer", 3),
            ("coldstart", 4),
        ];
        for (name, rows) in expected_rows {
            let (header, csv_rows) = read_csv(&out.join(format!("{name}.csv")));
            assert_eq!(csv_rows.len(), rows, "{name}.csv rows");
            let json: Value = serde_json::from_str(
                &std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(json["experiment"], name);
            for key in ["cores", "memory_total_mib", "kernel", "arch"] {
                assert!(!json["machine"][key].is_null(), "{name}.json machine.{key}");
            }
            let json_rows = json["rows"].as_array().unwrap();
            assert_eq!(json_rows.len(), rows);
            for r in json_rows {
                for h in &header {
                    assert!(r.get(h).is_some(), "{name}.json row lacks {h}");
                }
            }
        }
        check_points_and_hops(&out, baseline);

        for svg in [
            "concurrency_latency",
            "concurrency_throughput",
            "payload_latency",
            "payload_throughput",
            "transfer_latency",
        ] {
            let text = std::fs::read_to_string(out.join(format!("{svg}.svg"))).unwrap();
            assert!(text.starts_with("<svg"), "{svg}.svg");
            assert!(text.trim_end().ends_with("</svg>"), "{svg}.svg");
            assert!(text.contains("<polyline"), "{svg}.svg has lines");
        }
        let all: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("all.json")).unwrap()).unwrap();
        assert_eq!(all["experiments"].as_array().unwrap().len(), 5);
    }

    /// `bench all --quick --spawn` with `--kind`: every experiment runs per kind, and its CSV
    /// rows and charts carry each kind. Python and the native example (`go:1.22`, with rustc)
    /// always; `wasm:wasi` when this build offers it.
    #[test]
    fn bench_all_runs_every_experiment_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let run = |kinds: &str, out: &Path| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewhisk"));
            cmd.args(["bench", "all", "--quick", "--spawn", "--no-baseline"])
                .args(["--isolation", "process", "--kind", kinds, "--out"])
                .arg(out)
                .env("WSK_CONFIG_FILE", dir.path().join("wskprops"))
                .env_remove("WHISK_APIHOST")
                .env_remove("WHISK_AUTH");
            cmd.output().unwrap()
        };
        let out = dir.path().join("out");
        let native = build_native_hello(dir.path()).map(|exe| format!("go:1.22={}", exe.display()));
        let mut kinds = vec!["nodejs:default", "python:3"];
        kinds.extend(native.as_deref());
        kinds.push("wasm:wasi");
        let mut output = run(&kinds.join(","), &out);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("does not offer kind wasm:wasi;") {
            eprintln!("this build does not offer wasm:wasi: measuring without it");
            kinds.pop();
            output = run(&kinds.join(","), &out);
        }
        let stdout = succeeded(&output);
        // Rows per kind of the quick sweeps; cold start measures stem cells of interpreters only.
        let kinds: Vec<&str> = kinds.iter().map(|k| k.split('=').next().unwrap()).collect();
        for (name, per_kind) in [("concurrency", 4), ("payload", 6), ("transfer", 3)] {
            let (header, rows) = read_csv(&out.join(format!("{name}.csv")));
            let kind = header.iter().position(|h| h == "kind").unwrap();
            for k in &kinds {
                let n = rows.iter().filter(|r| r[kind] == *k).count();
                assert_eq!(n, per_kind, "{name}.csv rows of {k}\n{stdout}");
            }
            assert_eq!(rows.len(), per_kind * kinds.len(), "{name}.csv");
        }
        check_points_and_hops(&out, false);
        // Interpreters: with and without a stem cell; Wasm: module compiled and module cached.
        let (header, rows) = read_csv(&out.join("coldstart.csv"));
        let kind = header.iter().position(|h| h == "kind").unwrap();
        let stem = header.iter().position(|h| h == "stem_cell").unwrap();
        for k in &kinds {
            let mut cases: Vec<&str> = rows
                .iter()
                .filter(|r| r[kind] == *k)
                .map(|r| r[stem].as_str())
                .collect();
            cases.sort_unstable();
            let expected = if k.starts_with("nodejs") || k.starts_with("python") {
                vec!["no", "yes"]
            } else if k.starts_with("wasm") {
                vec!["no (module cached)", "no (module compiled)"]
            } else {
                vec!["no"]
            };
            assert_eq!(cases, expected, "coldstart.csv rows of {k}");
        }
        let svg = std::fs::read_to_string(out.join("concurrency_latency.svg")).unwrap();
        for k in &kinds {
            assert!(svg.contains(&format!("{k}, capacity 1")), "a series of {k}");
        }
    }

    /// The native example of `docs/benchmarks.md` builds with one rustc call and answers the
    /// bench's requests through both protocols: the docker skeleton's argv and the action
    /// loop's stdin and fd 3.
    #[test]
    fn native_hello_builds_with_rustc_and_answers_both_protocols() {
        use std::io::Write as _;
        use std::process::Stdio;
        let dir = tempfile::tempdir().unwrap();
        let Some(exe) = build_native_hello(dir.path()) else {
            return;
        };

        let skeleton = |args: &str| -> Value {
            let o = Command::new(&exe).arg(args).output().unwrap();
            assert!(o.status.success());
            let text = String::from_utf8(o.stdout).unwrap();
            serde_json::from_str(text.lines().last().unwrap()).unwrap()
        };
        assert_eq!(
            skeleton(r#"{"name":"Edge"}"#),
            serde_json::json!({"payload": "Hello, Edge!"})
        );
        let head = skeleton(r#"{"payload":"000"}"#);
        assert_eq!(head["payload"], "000");
        let tail = skeleton(&head.to_string());
        assert_eq!(tail["size"], 3);
        assert!(tail["comTimeMs"].as_f64().unwrap() >= 0.0, "{tail}");
        assert_eq!(tail["clock"], "monotonic");

        // The action loop: the ack and each result on fd 3 (here: a file), one per request line.
        let fd3 = dir.path().join("fd3");
        let script = format!("exec 3>'{}'; exec '{}'", fd3.display(), exe.display());
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .env("__OW_WAIT_FOR_ACK", "1")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"value\":{\"name\":\"a\"},\"activation_id\":\"1\"}\n{\"value\":{}}\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
        let lines: Vec<Value> = std::fs::read_to_string(&fd3)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                serde_json::json!({"ok": true}),
                serde_json::json!({"payload": "Hello, a!"}),
                serde_json::json!({"payload": "Hello, World!"}),
            ]
        );
    }

    #[tokio::test]
    async fn bench_cluster_throughput_grows_with_the_invokers() {
        use edgewhisk_testkit::services::nats::Nats;
        use edgewhisk_testkit::services::postgres::Postgres;
        let Some(pg) = tokio::task::spawn_blocking(Postgres::start_or_skip)
            .await
            .expect("the PostgreSQL start")
        else {
            return;
        };
        let Some(nats) = Nats::start_or_skip().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgewhisk"));
        cmd.args(["bench", "cluster", "--invokers", "1,2", "--sleep-ms", "20"])
            .args([
                "--requests",
                "300",
                "--nats",
                &nats.url(),
                "--postgres",
                &pg.url(),
            ])
            .arg("--out")
            .arg(&out)
            .env("WSK_CONFIG_FILE", dir.path().join("wskprops"));
        let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "bench failed: {}\nstdout: {stdout}\nstderr: {}\nPostgreSQL log: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            pg.log()
        );
        assert!(stdout.contains("== cluster =="), "{stdout}");

        let (header, rows) = read_csv(&out.join("cluster.csv"));
        let col = |c: &str| header.iter().position(|h| h == c).unwrap();
        let cell = |r: &[String], c: &str| r[col(c)].parse::<f64>().unwrap();
        assert_eq!(rows.len(), 2, "{stdout}");
        assert_eq!(rows[0][col("invokers")], "1");
        assert_eq!(rows[1][col("invokers")], "2");
        // 256 MB instances in the default 512 MB of each invoker: capacity 2 per invoker.
        assert_eq!(rows[1][col("capacity")], "4");
        for r in &rows {
            assert_eq!(r[col("errors")], "0", "{stdout}");
            assert!(cell(r, "p50_ms") >= 20.0, "{stdout}");
        }
        let (one, two) = (
            cell(&rows[0], "throughput_rps"),
            cell(&rows[1], "throughput_rps"),
        );
        assert!(
            two > 1.3 * one,
            "1 invoker {one} req/s, 2 invokers {two} req/s\n{stdout}"
        );
        let svg = std::fs::read_to_string(out.join("cluster_throughput.svg")).unwrap();
        assert!(svg.contains("<polyline"), "the chart has lines");
    }
}
