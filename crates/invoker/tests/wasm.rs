//! The `wasm` backend with real modules written in WebAssembly text and compiled by the
//! backend itself (the `wat` crate only checks them first): results on stdout, logs on
//! stderr, traps, exits, time and memory limits, fresh state per activation, concurrent runs,
//! and the on-disk compilation cache surviving a new factory (a restart).

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use edgewhisk_invoker::container::wasm::{WasmConfig, WasmFactory, WasmStats};
    use edgewhisk_invoker::container::{
        Container, ContainerFactory, ContainerSpec, InitRequest, RunRequest, RunnerOutcome,
    };
    use edgewhisk_testkit::wasm_modules::{ECHO, GREEDY, SPIN};
    use serde_json::{Value, json};
    use std::time::{Duration, Instant};

    /// Writes `stdout` on fd 1 and `stderr` on fd 2, then runs `tail` (instructions).
    fn printing(stdout: &str, stderr: &str, tail: &str) -> String {
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        format!(
            r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{out}")
  (data (i32.const 8192) "{err}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {out_len}))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 8192))
    (i32.store (i32.const 4) (i32.const {err_len}))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    {tail}))"#,
            out = esc(stdout),
            err = esc(stderr),
            out_len = stdout.len(),
            err_len = stderr.len(),
        )
    }

    /// Counts its activations in a global and prints `{"count":N}` (N one digit).
    const COUNTER: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 1024) "{\"count\":0}")
  (func (export "_start")
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.store8 (i32.const 1033) (i32.add (i32.const 48) (global.get $n)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 11))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

    /// Prints its environment on stderr, one variable a line, and `{}` on stdout.
    const ENV: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 100) "{}")
  (func (export "_start") (local $i i32) (local $len i32)
    (drop (call $sizes (i32.const 16) (i32.const 20)))
    (drop (call $get (i32.const 4096) (i32.const 65536)))
    (local.set $len (i32.load (i32.const 20)))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (if (i32.eqz (i32.load8_u (i32.add (i32.const 65536) (local.get $i))))
        (then (i32.store8 (i32.add (i32.const 65536) (local.get $i)) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// The module as base64 of its binary, as a client sends a `.wasm` file.
    fn binary(wat_text: &str) -> String {
        b64(&wat::parse_str(wat_text).expect("valid WAT"))
    }

    fn factory(dir: &std::path::Path) -> WasmFactory {
        WasmFactory::new(&WasmConfig::default(), dir, 512).expect("wasm factory")
    }

    fn spec(memory_mb: u64) -> ContainerSpec {
        ContainerSpec {
            name: "t".into(),
            kind: "wasm:wasi".into(),
            memory_mb,
            allow_concurrent: true,
        }
    }

    fn init_request(code: String) -> InitRequest {
        let mut env = serde_json::Map::new();
        env.insert("__OW_ACTION_NAME".into(), json!("/guest/w"));
        env.insert("GREETING".into(), json!("hi"));
        InitRequest {
            name: "w".into(),
            main: "main".into(),
            binary: true,
            code,
            env,
        }
    }

    fn run_request(args: &Value) -> RunRequest {
        RunRequest {
            value: serde_json::value::to_raw_value(args).expect("raw"),
            namespace: "guest".into(),
            action_name: "/guest/w".into(),
            action_version: "0.0.1".into(),
            activation_id: "a1b2".into(),
            transaction_id: "tid".into(),
            deadline: "123".into(),
            api_key: None,
        }
    }

    /// A started instance of `code` with `memory_mb`; panics unless it initialised.
    async fn started(f: &WasmFactory, code: String, memory_mb: u64) -> Box<dyn Container> {
        let c = f.create(&spec(memory_mb)).await.expect("create");
        let (_, outcome) = c
            .initialize(init_request(code), Duration::from_secs(30))
            .await
            .expect("init");
        let (status, body) = replied(&outcome);
        assert_eq!(status, 200, "init failed: {body}");
        c
    }

    fn replied(outcome: &RunnerOutcome) -> (u16, Value) {
        match outcome {
            RunnerOutcome::Replied(r) => {
                (r.status, serde_json::from_str(r.body.get()).expect("json"))
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    async fn run_with(c: &dyn Container, args: Value, timeout: Duration) -> RunnerOutcome {
        c.run(run_request(&args), timeout).await.expect("run").1
    }

    async fn run(c: &dyn Container, args: Value) -> (u16, Value) {
        replied(&run_with(c, args, Duration::from_secs(10)).await)
    }

    /// The log lines' texts, without timestamps.
    async fn log_texts(c: &dyn Container) -> Vec<String> {
        c.logs(10 * 1024 * 1024, true)
            .await
            .lines
            .iter()
            .map(|l| {
                l.split_once(": ").map_or(l.clone(), |(head, text)| {
                    format!("{}: {text}", head.rsplit(' ').next().unwrap_or(""))
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn echo_returns_the_arguments_and_carries_a_megabyte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c = started(&f, binary(ECHO), 128).await;
        assert_eq!(
            run(&*c, json!({"name": "wasm"})).await,
            (200, json!({"name": "wasm"}))
        );
        let big = json!({"payload": "x".repeat(1_000_000)});
        let started_at = Instant::now();
        assert_eq!(run(&*c, big.clone()).await, (200, big));
        println!("1 MB echo: {:?}", started_at.elapsed());
        c.destroy().await;
    }

    #[tokio::test]
    async fn stderr_is_the_log_and_stdout_lines_before_the_result_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let code = printing("progress\n{\"greeting\":\"hello\"}\n", "one\ntwo\n", "");
        let c = started(&f, code, 128).await;
        assert_eq!(
            run(&*c, json!({})).await,
            (200, json!({"greeting": "hello"}))
        );
        assert_eq!(
            log_texts(&*c).await,
            vec!["stdout: progress", "stderr: one", "stderr: two"]
        );
        // Nothing left over for the next activation.
        assert!(c.logs(1 << 20, true).await.lines.is_empty());
        // The log limit cuts with OpenWhisk's notice.
        run(&*c, json!({})).await;
        let cut = c.logs(60, true).await.lines;
        assert_eq!(cut.len(), 2, "{cut:?}");
        assert!(cut[1].contains("Logs were truncated"), "{cut:?}");
        c.destroy().await;
    }

    #[tokio::test]
    async fn non_json_stdout_traps_and_exits_are_developer_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let cases = [
            (
                printing("hello world\n", "", ""),
                json!({"error": "The action did not return a dictionary."}),
            ),
            (
                printing("{\"a\":1}", "bye\n", "unreachable"),
                json!({"error": "An error has occurred: wasm trap: wasm `unreachable` instruction executed"}),
            ),
            (
                printing("{\"a\":1}", "", "(call $exit (i32.const 3))"),
                json!({"error": "The action exited with status 3."}),
            ),
        ];
        for (code, error) in cases {
            let c = started(&f, code, 128).await;
            assert_eq!(run(&*c, json!({})).await, (502, error));
            c.destroy().await;
        }
        // proc_exit(0) after printing a result is a success.
        let c = started(
            &f,
            printing("{\"a\":1}", "", "(call $exit (i32.const 0))"),
            128,
        )
        .await;
        assert_eq!(run(&*c, json!({})).await, (200, json!({"a": 1})));
        // The trap is in the log, with what was printed before it.
        let c = started(&f, printing("", "before\n", "unreachable"), 128).await;
        run(&*c, json!({})).await;
        let logs = log_texts(&*c).await;
        assert_eq!(logs[0], "stderr: before");
        assert!(logs.iter().any(|l| l.contains("unreachable")), "{logs:?}");
    }

    #[tokio::test]
    async fn bad_code_fails_initialization_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let cases = [
            (b64(b"not wasm at all"), "not a WebAssembly module"),
            (binary("(module (func (export \"run\")))"), "no `_start`"),
            (
                binary(r#"(module (import "env" "f" (func)) (func (export "_start")))"#),
                "WASI preview 1 does not provide",
            ),
            (b64(b"\0asm\x01\0\0\0garbage"), "not valid WebAssembly"),
        ];
        for (code, text) in cases {
            let c = f.create(&spec(128)).await.expect("create");
            let (_, outcome) = c
                .initialize(init_request(code), Duration::from_secs(10))
                .await
                .expect("init");
            let (status, body) = replied(&outcome);
            assert_eq!(status, 502);
            assert!(
                body["error"].as_str().is_some_and(|e| e.contains(text)),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn an_endless_loop_times_out_within_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c = started(&f, binary(SPIN), 128).await;
        let limit = Duration::from_millis(300);
        let t = Instant::now();
        let outcome = run_with(&*c, json!({}), limit).await;
        let took = t.elapsed();
        assert!(matches!(outcome, RunnerOutcome::TimedOut), "{outcome:?}");
        assert!(
            took >= limit && took < limit + Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn memory_beyond_the_limit_is_exhausted_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c = started(&f, binary(GREEDY), 128).await;
        let outcome = run_with(&*c, json!({}), Duration::from_secs(10)).await;
        assert!(matches!(outcome, RunnerOutcome::OutOfMemory), "{outcome:?}");
        // A module whose initial memory alone is over the limit cannot even start.
        let huge = "(module (memory (export \"memory\") 4096) (func (export \"_start\")))";
        let c = started(&f, binary(huge), 128).await;
        let outcome = run_with(&*c, json!({}), Duration::from_secs(10)).await;
        assert!(matches!(outcome, RunnerOutcome::OutOfMemory), "{outcome:?}");
        // With the memory it asks for, the same module runs (and prints no result).
        let c = started(&f, binary(huge), 512).await;
        assert_eq!(run(&*c, json!({})).await.0, 502);
    }

    #[tokio::test]
    async fn every_activation_starts_from_fresh_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c = started(&f, binary(COUNTER), 128).await;
        for _ in 0..3 {
            assert_eq!(run(&*c, json!({})).await, (200, json!({"count": 1})));
        }
    }

    #[tokio::test]
    async fn the_environment_is_the_activation_context_and_init_env_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c = started(&f, binary(ENV), 128).await;
        assert_eq!(run(&*c, json!({})).await, (200, json!({})));
        let mut env: Vec<String> = log_texts(&*c)
            .await
            .into_iter()
            .filter_map(|l| l.strip_prefix("stderr: ").map(str::to_owned))
            .collect();
        env.sort();
        assert_eq!(
            env,
            vec![
                "GREETING=hi",
                "__OW_ACTION_NAME=/guest/w",
                "__OW_ACTION_VERSION=0.0.1",
                "__OW_ACTIVATION_ID=a1b2",
                "__OW_DEADLINE=123",
                "__OW_NAMESPACE=guest",
                "__OW_TRANSACTION_ID=tid",
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_instance_runs_activations_concurrently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c: std::sync::Arc<dyn Container> = started(&f, binary(ECHO), 128).await.into();
        let runs: Vec<_> = (0..16)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { (i, run(&*c, json!({ "i": i })).await) })
            })
            .collect();
        for r in runs {
            let (i, out) = r.await.expect("join");
            assert_eq!(out, (200, json!({ "i": i })));
        }
    }

    #[tokio::test]
    async fn a_restarted_factory_takes_the_module_from_the_disk_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let code = binary(&printing("{\"cached\":true}", "", ""));
        let first = factory(dir.path());
        let t = Instant::now();
        let c = started(&first, code.clone(), 128).await;
        println!("compiled cold: {:?}", t.elapsed());
        assert_eq!(run(&*c, json!({})).await, (200, json!({"cached": true})));
        started(&first, code.clone(), 128).await;
        assert_eq!(
            first.stats(),
            WasmStats {
                compiled: 1,
                disk_hits: 0,
                memory_hits: 1
            }
        );
        drop(c);
        drop(first);
        let second = factory(dir.path());
        let t = Instant::now();
        let c = started(&second, code, 128).await;
        println!("from the disk cache: {:?}", t.elapsed());
        assert_eq!(run(&*c, json!({})).await, (200, json!({"cached": true})));
        assert_eq!(
            second.stats(),
            WasmStats {
                compiled: 0,
                disk_hits: 1,
                memory_hits: 0
            }
        );
    }

    #[tokio::test]
    async fn text_and_zipped_modules_are_accepted() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let f = factory(dir.path());
        let c = started(&f, printing("{\"t\":1}", "", ""), 128).await;
        assert_eq!(run(&*c, json!({})).await, (200, json!({"t": 1})));
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, out) in [("a.wasm", "{\"a\":1}"), ("main.wasm", "{\"main\":1}")] {
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .expect("start");
            zip.write_all(&wat::parse_str(printing(out, "", "")).expect("wat"))
                .expect("write");
        }
        let zipped = zip.finish().expect("zip").into_inner();
        let c = started(&f, b64(&zipped), 128).await;
        assert_eq!(run(&*c, json!({})).await, (200, json!({"main": 1})));
    }

    /// A hello action in Rust, built for `wasm32-wasip1` by the test (std's stdin, stdout and
    /// stderr over WASI).
    const RUST_HELLO: &str = r#"use std::io::Read;

fn main() {
    let mut args = String::new();
    std::io::stdin().read_to_string(&mut args).expect("stdin");
    let name = args
        .split_once("\"name\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("World", |(name, _)| name);
    eprintln!("greeting {name}");
    println!("{{\"payload\":\"Hello, {name}!\"}}");
}
"#;

    /// Builds [`RUST_HELLO`] with `rustc --target wasm32-wasip1`; `None` (after printing why) when
    /// the target is not installed, except in CI, which installs it.
    fn rust_hello(dir: &std::path::Path) -> Option<Vec<u8>> {
        let source = dir.join("hello.rs");
        let module = dir.join("hello.wasm");
        std::fs::write(&source, RUST_HELLO).expect("write the source");
        let out = std::process::Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "--target",
                "wasm32-wasip1",
                "-C",
                "opt-level=2",
            ])
            .args(["-C", "strip=symbols", "-o"])
            .arg(&module)
            .arg(&source)
            .output()
            .expect("run rustc");
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            assert!(
                !edgewhisk_testkit::services::in_ci(),
                "building for wasm32-wasip1 failed in CI: {why}"
            );
            eprintln!(
                "skipped: cannot build for wasm32-wasip1 (rustup target add wasm32-wasip1): {why}"
            );
            return None;
        }
        Some(std::fs::read(module).expect("read the module"))
    }

    #[tokio::test]
    async fn a_rust_module_built_for_wasip1_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(module) = rust_hello(dir.path()) else {
            return;
        };
        let f = factory(dir.path());
        let t = Instant::now();
        let c = started(&f, b64(&module), 128).await;
        println!(
            "{} byte Rust module compiled in {:?}",
            module.len(),
            t.elapsed()
        );
        assert_eq!(
            run(&*c, json!({"name": "wasi"})).await,
            (200, json!({"payload": "Hello, wasi!"}))
        );
        assert_eq!(log_texts(&*c).await, vec!["stderr: greeting wasi"]);
    }
}
