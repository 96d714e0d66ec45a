//! edgewhisk: a lean OpenWhisk-compatible serverless platform for edge devices, as a library.
//!
//! The `edgewhisk` binary (`src/main.rs`) only parses its arguments into a [`Cli`], sets up the
//! allocator, logging and the async runtime, and dispatches to this crate:
//!
//! - [`serve`]: controller and invoker in one process; [`serve::Server::start`] is the wiring
//!   `edgewhisk serve` runs, and what tests start in-process;
//! - [`admin`]: `edgewhisk admin`, subjects, keys and limits in the data directory (like
//!   OpenWhisk's `wskadmin`), and backup and restore of the store;
//! - [`cli`]: every other subcommand, the `wsk`-compatible CLI (the whole binary when it is
//!   invoked through a link named `wsk`);
//! - [`config`]: the server's TOML configuration and every environment variable the crate reads;
//! - `edgewhisk bench` (the `edgewhisk-bench` crate, behind the default `bench` feature).
//!
//! Exit codes: 0 success; 1 the server or CLI failed (message on stderr); 2 usage errors; CLI
//! API errors exit as `wsk` does (HTTP status − 256).

pub mod admin;
pub mod cli;
pub mod config;
pub mod runtimes;
pub mod serve;

/// The git revision the binary was built from (`unknown` outside a git checkout).
pub const GIT_REVISION: &str = env!("EW_GIT_REVISION");

/// What `edgewhisk --version` prints after the name: the package version and the git revision.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("EW_GIT_REVISION"),
    ")"
);

/// The command line: the CLI's global flags and a command. `Cli<Command>` is the `edgewhisk`
/// binary; `Cli<cli::WskCommand>` is the same CLI without `serve`, `admin` and `bench`, for a
/// binary invoked as `wsk` (see [`Cli::parse_as_wsk`]).
#[derive(Debug, clap::Parser)]
#[command(
    name = "edgewhisk",
    version = VERSION,
    about = "A lean OpenWhisk-compatible serverless platform for edge devices"
)]
pub struct Cli<C: clap::Subcommand> {
    /// Flags every CLI command takes.
    #[command(flatten)]
    pub global: cli::GlobalFlags,
    /// What to run.
    #[command(subcommand)]
    pub command: C,
}

impl Cli<cli::WskCommand> {
    /// Parses the process arguments as the `wsk` command (its own name and help); exits with
    /// clap's usage error on a bad command line.
    pub fn parse_as_wsk() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Self::command()
            .name("wsk")
            .about("OpenWhisk command-line interface (edgewhisk)")
            .get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// The `edgewhisk` binary's commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the platform: REST API, invoker and store in one process.
    Serve(serve::ServeArgs),
    /// Measure a running server (latency, throughput, cold start).
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(edgewhisk_bench::BenchCommand),
    /// Manage subjects, namespaces, keys and limits (like `wskadmin`); back up and restore the
    /// store.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// The `wsk`-compatible CLI's nouns.
    #[command(flatten)]
    Wsk(cli::WskCommand),
    /// One native action instance (`go:*`, `blackbox`), started by the invoker with the runner
    /// pipes; not for people, so hidden from help.
    #[command(name = "native-runner", hide = true)]
    NativeRunner {
        /// `action-loop` or `skeleton`.
        protocol: String,
    },
}
