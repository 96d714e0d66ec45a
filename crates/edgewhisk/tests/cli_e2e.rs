//! End-to-end: the built `edgewhisk` binary used as the `wsk` CLI against a real
//! `edgewhisk serve` on a loopback port. Each test starts its own server in its own temporary
//! directory (data, props file, action sources), so tests are independent and run in parallel.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::binary;
use support::cluster::{Backends, Cluster, shared_services};

/// The hello action of the Raspberry Pi study that `docs/benchmarks.md` compares against, with
/// a log line added.
const HELLO_JS: &str = r"function main(params) {
    var name = params.name || 'World';
    console.log('hello ' + name);
    return {payload: 'Hello, ' + name + '!'};
}
";

/// A running server (or cluster) plus a props file pointing at it. Dropping it stops the
/// server by PID (SIGTERM, so it can stop its runners; SIGKILL if it does not exit in time),
/// or every process of the cluster.
struct Env {
    dir: tempfile::TempDir,
    server: Option<Child>,
    cluster: Option<Cluster>,
}

impl Env {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut server = binary::command();
        server
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"));
        let config = binary::with_test_runners("");
        if !config.is_empty() {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, config).expect("write the server config");
            server.arg("--config").arg(path);
        }
        let mut server = server
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn edgewhisk serve");
        let stdout = server.stdout.take().expect("server stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let env = Self {
            dir,
            server: Some(server),
            cluster: None,
        };
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            panic!(
                "server did not report its address; log:\n{}",
                env.server_log()
            );
        };
        let url = line
            .strip_prefix("edgewhisk: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line}"))
            .trim()
            .to_owned();
        env.point_at(&url);
        env
    }

    /// Two controllers and two invokers on the test binary's PostgreSQL and NATS, the CLI
    /// pointed at their load balancer; `None` when those services cannot run here.
    async fn start_cluster() -> Option<Self> {
        let backends = {
            let services = shared_services()
                .await?
                .lock()
                .expect("the shared services");
            Backends::fresh(&services)
        };
        let cluster = Cluster::start(backends, 2, 2, "").ready().await;
        let url = cluster.base();
        let env = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            server: None,
            cluster: Some(cluster),
        };
        env.point_at(&url);
        Some(env)
    }

    /// Writes the props file for the API at `url`, and the hello action's source.
    fn point_at(&self, url: &str) {
        std::fs::write(
            self.props_path(),
            format!(
                "APIHOST={url}\nAUTH={}\n",
                edgewhisk_entity::identity::GUEST_AUTH
            ),
        )
        .expect("write props");
        std::fs::write(self.path("hello.js"), HELLO_JS).expect("write hello.js");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn props_path(&self) -> PathBuf {
        self.path("wskprops")
    }

    fn server_log(&self) -> String {
        match &self.cluster {
            Some(cluster) => cluster.log_tails(),
            None => std::fs::read_to_string(self.path("server.log")).unwrap_or_default(),
        }
    }

    /// Runs the CLI through `program` (the binary or a link to it).
    fn run_as(&self, program: &Path, args: &[&str]) -> Run {
        let out = binary::command_for(program)
            .args(args)
            .current_dir(self.dir.path())
            .env("WSK_CONFIG_FILE", self.props_path())
            .env_remove("WHISK_APIHOST")
            .env_remove("WHISK_AUTH")
            .output()
            .expect("run the CLI");
        Run::from(out)
    }

    fn wsk(&self, args: &[&str]) -> Run {
        self.run_as(&binary::binary(), args)
    }

    /// Runs `args` until it exits 0 (activation records are written in batches, off the
    /// request path), for at most ~10 s.
    async fn wsk_eventually(&self, args: &[&str]) -> Run {
        let mut last = self.wsk(args);
        for _ in 0..50 {
            if last.code == 0 && !last.stdout.trim().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            last = self.wsk(args);
        }
        last
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = child.wait();
            let _ = tx.send(());
        });
        if rx.recv_timeout(Duration::from_secs(15)).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        let _ = waiter.join();
    }
}

/// A finished CLI run.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
}

/// The 32-hex id at the end of an `ok: invoked … with id ID` line.
fn invoked_id(line: &str) -> String {
    let id = line.rsplit(' ').next().unwrap_or("").trim().to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "no activation id in {line:?}"
    );
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case runs against the lean server and against a cluster of two controllers and
    /// two invokers behind a load balancer (`support::cluster`).
    macro_rules! lean_and_cluster {
        ($($case:ident),* $(,)?) => {
            mod lean {
                $(
                    #[tokio::test]
                    async fn $case() {
                        super::$case(super::Env::start()).await;
                    }
                )*
            }
            mod cluster {
                $(
                    #[tokio::test]
                    async fn $case() {
                        if let Some(env) = super::Env::start_cluster().await {
                            super::$case(env).await;
                        }
                    }
                )*
            }
        };
    }

    #[tokio::test]
    async fn version_names_the_git_revision_the_server_reports_as_its_build_number() {
        let out = binary::command()
            .arg("--version")
            .output()
            .expect("--version");
        let line = String::from_utf8(out.stdout).expect("utf-8");
        let revision = line
            .trim()
            .strip_prefix(concat!("edgewhisk ", env!("CARGO_PKG_VERSION"), " ("))
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected --version line: {line:?}"))
            .to_owned();
        let head = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        match head {
            // The binary is built from this checkout (`-dirty` with uncommitted changes).
            Some(head) => assert!(revision.starts_with(&head), "{revision} vs HEAD {head}"),
            None => assert_eq!(revision, "unknown"),
        }
        let env = Env::start();
        let run = env.wsk(&["property", "get", "--apibuildno"]).ok();
        assert!(
            run.stdout.trim_end().ends_with(&revision),
            "buildno of the server: {:?}",
            run.stdout
        );
    }

    lean_and_cluster!(
        hello_flow_creates_and_invokes_with_result_and_params,
        update_get_list_and_delete_round_trip,
        activation_list_get_logs_and_result_show_the_invocation,
        conflicts_and_missing_entities_exit_with_wsk_codes,
        an_application_error_exits_246_and_prints_the_activation_to_stderr,
    );

    async fn hello_flow_creates_and_invokes_with_result_and_params(env: Env) {
        let run = env.wsk(&["action", "create", "hello", "hello.js"]).ok();
        assert_eq!(run.stdout, "ok: created action hello\n");

        let run = env.wsk(&["action", "invoke", "hello", "--result"]).ok();
        assert_eq!(run.stdout, "{\n    \"payload\": \"Hello, World!\"\n}\n");

        let run = env
            .wsk(&[
                "action", "invoke", "hello", "--result", "--param", "name", "Edge",
            ])
            .ok();
        assert_eq!(run.stdout, "{\n    \"payload\": \"Hello, Edge!\"\n}\n");

        let run = env.wsk(&["action", "invoke", "hello", "-b"]).ok();
        let mut lines = run.stdout.lines();
        let id = invoked_id(lines.next().expect("header line"));
        let rest: String = lines.collect::<Vec<_>>().join("\n");
        let activation: serde_json::Value = serde_json::from_str(&rest).expect("activation JSON");
        assert_eq!(activation["activationId"], id);
        assert_eq!(activation["response"]["result"]["payload"], "Hello, World!");

        let run = env.wsk(&["action", "invoke", "hello"]).ok();
        assert!(
            run.stdout.starts_with("ok: invoked /_/hello with id "),
            "{run:?}"
        );
        invoked_id(run.stdout.trim_end());
    }

    async fn update_get_list_and_delete_round_trip(env: Env) {
        // update creates when missing (the GET 404 is tolerated)
        let run = env
            .wsk(&["action", "update", "hello", "hello.js", "-m", "128"])
            .ok();
        assert_eq!(run.stdout, "ok: updated action hello\n");
        env.wsk(&["action", "update", "hello", "-p", "name", "Pi"])
            .ok();

        let run = env.wsk(&["action", "get", "hello"]).ok();
        let (head, json) = run.stdout.split_once('\n').expect("two parts");
        assert_eq!(head, "ok: got action hello");
        assert!(
            json.contains("\n    \"name\": \"hello\""),
            "4-space JSON: {json}"
        );
        let action: serde_json::Value = serde_json::from_str(json).expect("action JSON");
        assert_eq!(action["limits"]["memory"], 128);
        assert_eq!(action["parameters"][0]["value"], "Pi");
        assert_eq!(action["version"], "0.0.2");

        let run = env.wsk(&["action", "invoke", "hello", "-r"]).ok();
        assert!(run.stdout.contains("Hello, Pi!"), "{run:?}");

        let run = env.wsk(&["action", "list"]).ok();
        assert_eq!(
            run.stdout,
            format!("actions\n{:<70} private nodejs:20\n", "/guest/hello")
        );

        let run = env.wsk(&["action", "delete", "hello"]).ok();
        assert_eq!(run.stdout, "ok: deleted action hello\n");
        assert_eq!(env.wsk(&["action", "list"]).ok().stdout, "actions\n");
    }

    async fn activation_list_get_logs_and_result_show_the_invocation(env: Env) {
        env.wsk(&["action", "create", "hello", "hello.js"]).ok();
        let run = env
            .wsk(&["action", "invoke", "hello", "-b", "-p", "name", "Logs"])
            .ok();
        let id = invoked_id(run.stdout.lines().next().unwrap_or(""));

        let run = env.wsk_eventually(&["activation", "list"]).await.ok();
        let mut lines = run.stdout.lines();
        let header = lines.next().unwrap_or("");
        assert!(
            header.starts_with("Datetime            Activation ID                    Kind"),
            "{header:?}"
        );
        let row = lines.next().expect("one activation row");
        assert!(row.contains(&id) && row.contains("nodejs:20"), "{row}");
        assert!(row.contains(" cold ") && row.contains("success"), "{row}");
        assert!(row.ends_with("guest/hello:0.0.1"), "{row}");

        let run = env.wsk_eventually(&["activation", "get", &id]).await.ok();
        let (head, json) = run.stdout.split_once('\n').expect("two parts");
        assert_eq!(head, format!("ok: got activation {id}"));
        let record: serde_json::Value = serde_json::from_str(json).expect("activation JSON");
        assert_eq!(record["response"]["status"], "success");

        let run = env.wsk_eventually(&["activation", "logs", &id]).await.ok();
        assert!(run.stdout.contains("stdout: hello Logs"), "{run:?}");
        let run = env
            .wsk_eventually(&["activation", "logs", &id, "--strip"])
            .await
            .ok();
        assert_eq!(run.stdout, "hello Logs\n");

        let run = env
            .wsk_eventually(&["activation", "result", "--last"])
            .await
            .ok();
        assert_eq!(run.stdout, "{\n    \"payload\": \"Hello, Logs!\"\n}\n");
    }

    async fn conflicts_and_missing_entities_exit_with_wsk_codes(env: Env) {
        env.wsk(&["action", "create", "hello", "hello.js"]).ok();

        let run = env.wsk(&["action", "create", "hello", "hello.js"]);
        assert_eq!(run.code, 153, "{run:?}");
        assert!(
            run.stderr.starts_with(
                "error: Unable to create action 'hello': resource already exists (code "
            ),
            "{run:?}"
        );

        let run = env.wsk(&["action", "get", "nope"]);
        assert_eq!(run.code, 148, "{run:?}");
        assert!(
            run.stderr
                .starts_with("error: Unable to get action 'nope': "),
            "{run:?}"
        );
        assert_eq!(env.wsk(&["action", "invoke", "nope"]).code, 148);
        assert_eq!(env.wsk(&["action", "delete", "nope"]).code, 148);

        // a usage error: a .zip without --kind
        std::fs::write(env.path("a.zip"), [0x50u8, 0x4b, 3, 4]).expect("zip");
        let run = env.wsk(&["action", "create", "z", "a.zip"]);
        assert_eq!(run.code, 2, "{run:?}");
    }

    async fn an_application_error_exits_246_and_prints_the_activation_to_stderr(env: Env) {
        std::fs::write(
            env.path("fail.js"),
            "function main() { return {error: 'boom'}; }\n",
        )
        .expect("fail.js");
        env.wsk(&["action", "create", "fail", "fail.js"]).ok();
        let run = env.wsk(&["action", "invoke", "fail", "-b"]);
        assert_eq!(run.code, 246, "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert!(
            run.stderr.starts_with("ok: invoked /_/fail with id "),
            "{run:?}"
        );
        assert!(run.stderr.contains("\"error\": \"boom\""), "{run:?}");
    }

    #[tokio::test]
    async fn a_link_named_wsk_is_the_cli() {
        let env = Env::start();
        env.wsk(&["action", "create", "hello", "hello.js"]).ok();
        let link = env.path("wsk");
        std::os::unix::fs::symlink(binary::binary(), &link).expect("symlink");
        let run = env.run_as(&link, &["action", "list"]).ok();
        assert_eq!(
            run.stdout,
            format!("actions\n{:<70} private nodejs:20\n", "/guest/hello")
        );
    }

    #[tokio::test]
    async fn property_set_writes_the_props_file_and_get_reads_it_back() {
        let env = Env::start();
        let props = std::fs::read_to_string(env.props_path()).expect("props");
        let host = props
            .lines()
            .find_map(|l| l.strip_prefix("APIHOST="))
            .expect("APIHOST")
            .to_owned();
        std::fs::write(env.props_path(), "").expect("empty props");
        let run = env
            .wsk(&[
                "property",
                "set",
                "--apihost",
                &host,
                "--auth",
                edgewhisk_entity::identity::GUEST_AUTH,
            ])
            .ok();
        assert_eq!(
            run.stdout,
            format!(
                "ok: whisk auth set. Run 'wsk property get --auth' to see the new value.\nok: whisk API host set to {host}\n"
            )
        );
        let run = env.wsk(&["property", "get", "--apihost"]).ok();
        assert_eq!(run.stdout, format!("whisk API host\t\t{host}\n"));
        let run = env.wsk(&["property", "get", "--namespace"]).ok();
        assert_eq!(run.stdout, "whisk namespace\t\tguest\n");
        let run = env.wsk(&["namespace", "list"]).ok();
        assert_eq!(run.stdout, "namespaces\nguest\n");
    }
}
