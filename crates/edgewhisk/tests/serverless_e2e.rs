//! The Serverless Framework v3 with the `serverless-openwhisk` plugin against the real
//! `edgewhisk serve` binary: `tests/serverless/serverless.yml` (two `http:` events, one with a
//! path parameter) is deployed, `serverless info` lists its routes, the routes answer over
//! HTTP, and `serverless remove` takes them away.
//!
//! Both packages are pinned in `tests/serverless/package.json` and `package-lock.json`; when
//! `node_modules` is missing the test installs it with `npm ci` (a registry is needed once).
//! Without node and npm the test is skipped, except in CI (`CI=true`), where it fails.

mod support;

use edgewhisk_testkit::services::in_ci;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{GUEST_KEY, repo_path, spawn_server};

/// How long one `serverless` or `npm` command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Exit status, stdout and stderr of a finished command.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn relay(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with its output in files below `dir`, killing it after [`COMMAND_LIMIT`].
fn run(cmd: &mut Command, what: &str, dir: &Path) -> Run {
    let out_path = dir.join(format!("{what}.out"));
    let err_path = dir.join(format!("{what}.err"));
    let out = std::fs::File::create(&out_path).expect("create the stdout file");
    let err = std::fs::File::create(&err_path).expect("create the stderr file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
    // The waiter thread owns the child and reaps it, so the pid stays ours (a zombie at worst)
    // until the wait returns: killing it on a timeout cannot hit another process.
    let (tx, rx) = mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(COMMAND_LIMIT) {
        Ok(status) => Some(status.expect("wait for the command")),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = rx.recv();
            None
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let run = Run {
        ok: status.is_some_and(|s| s.success()),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    assert!(
        status.is_some(),
        "{what} did not finish within {COMMAND_LIMIT:?}\n{}",
        run.relay()
    );
    run
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `serverless <args>` in the service copy `work`, against `base` as the guest, with a
/// throwaway `home` and the framework's network chatter (telemetry, notifications,
/// interactive setup) turned off.
fn serverless(modules: &Path, work: &Path, home: &Path, base: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(modules.join("serverless/bin/serverless.js"))
        .args(args)
        .current_dir(work)
        .env("HOME", home)
        .env("OW_APIHOST", base)
        .env("OW_AUTH", GUEST_KEY)
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_TRACKING_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .env("SLS_DEPRECATION_DISABLE", "*")
        .env("SLS_INTERACTIVE_SETUP_DISABLE", "1")
        .env("SLS_DEV_MODE_DISABLE", "1")
        .env("CI", "true")
        .env("NO_COLOR", "1");
    cmd
}

/// The `METHOD URL --> action` lines `serverless info` prints under `endpoints (api-gw):`.
fn endpoints(info: &str) -> Vec<(String, String, String)> {
    info.lines()
        .filter_map(|l| {
            let (route, action) = l.trim().split_once(" --> ")?;
            let (method, url) = route.split_once(' ')?;
            Some((method.to_owned(), url.to_owned(), action.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_serverless_service_with_http_events_deploys_answers_and_is_removed() {
        if !(available("node") && available("npm")) {
            assert!(
                !in_ci(),
                "CI must have node and npm (apt-get install nodejs npm)"
            );
            eprintln!("skipped: node and npm are needed (apt-get install nodejs npm)");
            return;
        }
        let source = repo_path("tests/serverless");
        let s = spawn_server(None);
        let work = s.dir().join("sls");
        let home = s.dir().join("home");
        std::fs::create_dir_all(&work).expect("create the service directory");
        std::fs::create_dir_all(&home).expect("create HOME");

        let install_dir = source.clone();
        let base = s.base().to_owned();
        let work2 = work.clone();
        let home2 = home.clone();
        let (info, hello, book) = tokio::task::spawn_blocking(move || {
            if !install_dir.join("node_modules").join("serverless").is_dir() {
                let r = run(
                    Command::new("npm")
                        .args(["ci", "--no-audit", "--no-fund"])
                        .current_dir(&install_dir),
                    "npm-ci",
                    &work2,
                );
                assert!(r.ok, "npm ci failed\n{}", r.relay());
            }
            // The service is deployed from a copy, so that `.serverless/` stays out of the
            // repository; the plugin is found through a link to the installed modules.
            for file in ["serverless.yml", "handler.js", "package.json"] {
                std::fs::copy(install_dir.join(file), work2.join(file)).expect("copy the service");
            }
            std::os::unix::fs::symlink(
                install_dir.join("node_modules"),
                work2.join("node_modules"),
            )
            .expect("link node_modules");
            let modules = install_dir.join("node_modules");
            let sls = |args: &[&str], what: &str| {
                let r = run(
                    &mut serverless(&modules, &work2, &home2, &base, args),
                    what,
                    &work2,
                );
                assert!(r.ok, "serverless {args:?} failed\n{}", r.relay());
                r
            };
            sls(&["deploy"], "deploy");
            let info = sls(&["info"], "info");
            let all = endpoints(&info.stdout);
            let find = |action: &str| {
                all.iter()
                    .find(|(_, _, a)| a == action)
                    .map(|(m, u, _)| (m.clone(), u.clone()))
                    .unwrap_or_else(|| panic!("no route to {action}\n{}", info.relay()))
            };
            let hello = find("ewsls-dev-hello");
            let book = find("ewsls-dev-book");
            (info, hello, book)
        })
        .await
        .expect("the serverless run");

        assert_eq!(hello.0, "GET");
        assert!(
            hello.1.starts_with(&format!("{}/api/", s.base())) && hello.1.ends_with("/ewsls/hello"),
            "{}",
            info.relay()
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("an http client");
        let r = http
            .get(format!("{}?name=sls", hello.1))
            .send()
            .await
            .expect("GET /hello");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(body["payload"], "Hello, sls!");
        let book_url = book.1.replace("{id}", "42");
        let r = http.get(&book_url).send().await.expect("GET /books/42");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(body["id"], "42");
        assert_eq!(body["path"], "/books/42");

        let source2 = source.clone();
        let base = s.base().to_owned();
        tokio::task::spawn_blocking(move || {
            let modules = source2.join("node_modules");
            let r = run(
                &mut serverless(&modules, &work, &home, &base, &["remove"]),
                "remove",
                &work,
            );
            assert!(r.ok, "serverless remove failed\n{}", r.relay());
            assert!(
                !r.stdout.contains("Failed to unbind") && !r.stderr.contains("Failed to unbind"),
                "{}",
                r.relay()
            );
        })
        .await
        .expect("serverless remove");
        let r = http
            .get(format!("{}?name=sls", hello.1))
            .send()
            .await
            .expect("GET /hello");
        assert_eq!(r.status(), 404, "the route is removed");
    }

    #[test]
    fn info_lines_name_method_url_and_action() {
        let info = "endpoints (api-gw):\nGET http://h/api/u/ewsls/hello --> ewsls-dev-hello\n";
        assert_eq!(
            endpoints(info),
            vec![(
                "GET".to_owned(),
                "http://h/api/u/ewsls/hello".to_owned(),
                "ewsls-dev-hello".to_owned()
            )]
        );
    }
}
