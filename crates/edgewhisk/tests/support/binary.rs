//! The one place that builds the [`Command`] running the `edgewhisk` binary, so that the same
//! suites can run a cross-built binary under emulation (`docs/arm.md`):
//!
//! - `EW_TEST_BINARY`: path of the binary to run instead of the one Cargo built for the test;
//! - `EW_TEST_BINARY_RUNNER`: a wrapper command line put before it (words split at white
//!   space, no quoting), e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`;
//! - `EW_TEST_NODE`, `EW_TEST_PYTHON`: the executables every test server runs its `nodejs:*`
//!   and `python:*` runners with (written as `[server] node` and `python` into its config),
//!   e.g. scripts that run arm64 interpreters under qemu.
//!
//! Under a wrapper, test servers use the process backend (see [`with_test_runners`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Names the binary to run instead of the one Cargo built.
pub(crate) const BINARY_ENV: &str = "EW_TEST_BINARY";

/// A wrapper command line the binary is run through.
pub(crate) const RUNNER_ENV: &str = "EW_TEST_BINARY_RUNNER";

/// The `edgewhisk` binary the tests run.
pub(crate) fn binary() -> PathBuf {
    std::env::var_os(BINARY_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_edgewhisk")),
            PathBuf::from,
        )
}

/// The words of [`RUNNER_ENV`]; empty when it is unset.
fn runner() -> Vec<OsString> {
    std::env::var_os(RUNNER_ENV)
        .map(|v| {
            v.to_string_lossy()
                .split_whitespace()
                .map(OsString::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the binary runs through a wrapper (an emulator), which makes it slower and puts
/// the wrapper's process where the tests expect the server's.
pub(crate) fn emulated() -> bool {
    !runner().is_empty()
}

/// `true` (with `reason` printed) when the binary runs through a wrapper: the calling test
/// returns early, as it cannot pass under emulation.
pub(crate) fn skip_when_emulated(reason: &str) -> bool {
    let skip = emulated();
    if skip {
        eprintln!("skipped: {reason} ({RUNNER_ENV} is set)");
    }
    skip
}

/// A command running the binary.
pub(crate) fn command() -> Command {
    command_after(&[], &binary())
}

/// A command running `program` (the binary, or a link to it) through the wrapper.
pub(crate) fn command_for(program: &Path) -> Command {
    command_after(&[], program)
}

/// A command running `prefix` (e.g. `prlimit … --`), then the wrapper, then `program`.
pub(crate) fn command_after(prefix: &[&str], program: &Path) -> Command {
    let mut words: Vec<OsString> = prefix.iter().map(OsString::from).collect();
    words.extend(runner());
    words.push(program.into());
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    command
}

/// `config_toml` as this run needs it: `[server] node` and `python` set from `EW_TEST_NODE` and
/// `EW_TEST_PYTHON` when those are set, and `[server] isolation = "process"` under a wrapper
/// (runc's container set-up fails under qemu-user, and these suites do not need it); a key the
/// config sets itself is kept. Unchanged when none applies.
pub(crate) fn with_test_runners(config_toml: &str) -> String {
    let mut settings: Vec<(&str, String)> =
        [("node", "EW_TEST_NODE"), ("python", "EW_TEST_PYTHON")]
            .into_iter()
            .filter_map(|(key, var)| {
                let path = std::env::var_os(var).filter(|v| !v.is_empty())?;
                Some((key, path.to_string_lossy().into_owned()))
            })
            .collect();
    if emulated() {
        settings.push(("isolation", "process".to_owned()));
    }
    if settings.is_empty() {
        return config_toml.to_owned();
    }
    let mut table: toml::Table = toml::from_str(config_toml).expect("the test config parses");
    let server = table
        .entry("server")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[server] is a table");
    for (key, value) in settings {
        server.entry(key).or_insert_with(|| value.into());
    }
    toml::to_string(&table).expect("the test config serializes")
}
