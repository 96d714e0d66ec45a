//! `edgewhisk`: the one binary of the platform — `serve` runs controller and invoker in one
//! process; every other subcommand is the `wsk`-compatible CLI. Invoked through a link named
//! `wsk`, the binary is only the CLI.
//!
//! Exit codes: 0 success; 1 the server or CLI failed (message on stderr); 2 usage errors; CLI
//! API errors exit as `wsk` does (HTTP status − 256).

mod admin;
mod bench;
mod cli;
mod config;
mod serve;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "edgewhisk",
    version,
    about = "A lean OpenWhisk-compatible serverless platform for edge devices"
)]
struct Cli {
    #[command(flatten)]
    global: cli::GlobalFlags,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, clap::Subcommand)]
enum Top {
    /// Run the platform: REST API, invoker and store in one process.
    Serve(serve::ServeArgs),
    /// Measure a running server (latency, throughput, cold start).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage subjects, namespaces, keys and limits in the data directory (like `wskadmin`).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    #[command(flatten)]
    Wsk(cli::WskCommand),
}

/// The same CLI without `serve`, for a binary invoked as `wsk`.
#[derive(Debug, Parser)]
#[command(
    name = "wsk",
    version,
    about = "OpenWhisk command-line interface (edgewhisk)"
)]
struct WskCli {
    #[command(flatten)]
    global: cli::GlobalFlags,
    #[command(subcommand)]
    command: cli::WskCommand,
}

fn invoked_as_wsk() -> bool {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .is_some_and(|n| n == "wsk")
}

fn main() {
    let code = match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// mimalloc instead of glibc's malloc: the hot path allocates many small objects per request
/// across threads, and payloads up to 1 MB pass through buffers of 1–2 MB several times per
/// activation, which glibc maps and unmaps (or trims) each time, paying page faults and
/// zeroing on every large activation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn real_main() -> anyhow::Result<i32> {
    let (global, top) = if invoked_as_wsk() {
        let c = WskCli::parse();
        (c.global, Top::Wsk(c.command))
    } else {
        let c = Cli::parse();
        (c.global, c.command)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match top {
        Top::Serve(args) => {
            init_tracing();
            runtime.block_on(serve::run(args))?;
            Ok(0)
        }
        Top::Bench(cmd) => runtime.block_on(bench::run(global, cmd)),
        Top::Admin(cmd) => runtime.block_on(admin::run(cmd)),
        Top::Wsk(cmd) => runtime.block_on(cli::run(global, cmd)),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
