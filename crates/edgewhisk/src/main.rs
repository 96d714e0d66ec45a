//! `edgewhisk`: the one binary of the platform — `serve` runs controller and invoker in one
//! process; every other subcommand is the `wsk`-compatible CLI. Invoked through a link named
//! `wsk`, the binary is only the CLI. The work is done by the `edgewhisk` library; this file
//! parses the arguments, sets up the allocator, logging and runtime, and dispatches.

use clap::Parser as _;
use edgewhisk::{Cli, Command, admin, cli, config, serve};

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
    let (global, command) = if invoked_as_wsk() {
        let c = Cli::parse_as_wsk();
        (c.global, Command::Wsk(c.command))
    } else {
        let c = Cli::<Command>::parse();
        (c.global, c.command)
    };
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match command {
        Command::Serve(args) => {
            let config = args.config()?;
            init_tracing(config.server.log_format);
            runtime()?.block_on(serve::run(config))?;
            Ok(0)
        }
        #[cfg(feature = "bench")]
        Command::Bench(cmd) => {
            let target = cli::bench_target(global)?;
            runtime()?.block_on(edgewhisk_bench::run(target, cmd))
        }
        Command::Admin(cmd) => runtime()?.block_on(admin::run(cmd)),
        Command::Wsk(cmd) => runtime()?.block_on(cli::run(global, cmd)),
        Command::NativeRunner { protocol } => {
            // Plain std and synchronous: no runtime, no threads started per instance.
            use edgewhisk_invoker::container::native;
            let protocol = native::NativeProtocol::from_name(&protocol)
                .ok_or_else(|| anyhow::anyhow!("unknown native protocol '{protocol}'"))?;
            Ok(native::run(protocol))
        }
    }
}

fn init_tracing(format: config::LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(config::log_filter())
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        config::LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
