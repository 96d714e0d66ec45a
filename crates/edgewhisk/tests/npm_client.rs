//! Runs the official `openwhisk` npm client's compatibility suite (`tests/npm`, `node --test`)
//! against the real `edgewhisk serve` binary.
//!
//! The client version is pinned in `tests/npm/package.json` and `package-lock.json`; when
//! `node_modules` is missing the test installs it with `npm ci` (a registry is needed once).

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::cluster::{Backends, Cluster, shared_services};
use support::{repo_path, spawn_server};

fn run(cmd: &mut Command, what: &str) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {what}: {e}. The npm compatibility test needs node (>= 18) and npm on \
             PATH; on Debian: apt-get install nodejs npm (.ci/run does this)"
        )
    })
}

fn relay(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules").join("openwhisk").is_dir() {
        return;
    }
    let output = run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
        "npm ci",
    );
    assert!(
        output.status.success(),
        "npm ci in {} failed ({})\n{}",
        dir.display(),
        output.status,
        relay(&output)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_openwhisk_npm_client_passes_its_compatibility_suite() {
        let server = spawn_server(None);
        run_suite(server.base());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn official_openwhisk_npm_client_passes_its_compatibility_suite_against_a_cluster() {
        let Some(services) = shared_services().await else {
            return;
        };
        let backends = Backends::fresh(&services.lock().expect("the shared services"));
        let cluster = Cluster::start(backends, 2, 2, "").ready().await;
        let base = cluster.base();
        let suite = tokio::task::spawn_blocking(move || run_suite(&base)).await;
        if let Err(e) = suite {
            eprintln!("{}", cluster.log_tails());
            std::panic::resume_unwind(e.into_panic());
        }
    }

    /// Runs every `tests/npm/*.test.mjs` against the API at `base`.
    fn run_suite(base: &str) {
        let dir = repo_path("tests/npm");
        let version = run(Command::new("node").arg("--version"), "node --version");
        assert!(
            version.status.success(),
            "node --version failed: {}",
            relay(&version)
        );
        ensure_node_modules(&dir);

        let mut test_files: Vec<String> = std::fs::read_dir(&dir)
            .expect("list tests/npm")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".test.mjs"))
            .collect();
        test_files.sort();
        assert!(
            !test_files.is_empty(),
            "no *.test.mjs files in {}",
            dir.display()
        );

        let output = run(
            Command::new("node")
                .arg("--test")
                .arg("--test-reporter=tap")
                .args(&test_files)
                .env("EW_APIHOST", base)
                .current_dir(&dir),
            "node --test",
        );
        let report = relay(&output);
        // Relay the node test report so `cargo test -- --nocapture` shows each case.
        println!("{report}");
        assert!(
            output.status.success(),
            "node --test failed ({}) against {base}\n{report}",
            output.status,
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let count = |label: &str| -> Option<u32> {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .and_then(|n| n.trim().parse().ok())
        };
        assert!(
            count("# pass ").is_some_and(|n| n > 0),
            "node --test reported no passing test:\n{report}"
        );
        // Belt and braces: a failing hook or file must fail this test even if node exits 0.
        assert_eq!(
            count("# fail "),
            Some(0),
            "node --test reported failures:\n{report}"
        );
    }
}
