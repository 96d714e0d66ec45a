//! The `wsk`-compatible command-line interface: `action`, `activation`, `namespace`, `package`,
//! `trigger`, `rule`, `api`, `property` and `list`, with `wsk`'s verbs, flags, messages and
//! exit codes.
//!
//! Configuration is read as `wsk` reads it: the properties file (`~/.wskprops`, or the file
//! named by `WSK_CONFIG_FILE`) gives `APIHOST`, `AUTH`, `NAMESPACE` and `APIVERSION`; the
//! environment (`WHISK_APIHOST`, `WHISK_AUTH`) overrides the file, and the global flags
//! (`--apihost`, `-u/--auth`) override both. Requests always address namespace `_` unless an
//! entity name is fully qualified (`/ns/name`), exactly like `wsk`.
//!
//! Output follows `wsk`: `ok: …` confirmations on stdout, JSON pretty-printed with 4-space
//! indentation, list tables with `wsk`'s column layout, and failures as
//! `error: <what> '<name>': <server message> (code <transaction id>)` on stderr.
//!
//! Exit codes (those of `wsk`):
//! - `0` success;
//! - `1` a general failure (no API host configured, unreadable file, …);
//! - `2` a usage error (clap's own errors, a `.zip` without `--kind`, an unknown file type);
//! - `3` the server could not be reached;
//! - `4` the server's answer could not be decoded;
//! - an HTTP error status from the server exits as `status − 256` taken modulo 256, as `wsk`
//!   does: 400 → 144, 401 → 145, 403 → 147, 404 → 148, 409 → 153, 500 → 244, 502 → 246;
//!   a blocking invoke whose action failed (502 with the activation) also exits 246;
//! - `202` a blocking invoke that did not finish within the server's wait.
//!
//! One deviation from `wsk`'s parser: the global `--apihost` and `--auth` flags take an
//! optional value, so that `property get --apihost` (select the property) and
//! `property set --apihost HOST` (set it) share one flag, as they do in `wsk`.

mod error;
mod flags;
mod output;
mod props;

mod commands;

pub use flags::GlobalFlags;

use error::CliError;
use props::Ctx;

/// One `wsk` command line's noun, verb and arguments; what they are stays inside this module.
#[derive(Debug)]
pub struct WskCommand(Noun);

/// Clap's view of [`WskCommand`]: the nouns' subcommands, parsed as `Noun`'s.
impl clap::FromArgMatches for WskCommand {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Noun::from_arg_matches(matches).map(Self)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl clap::Subcommand for WskCommand {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        Noun::augment_subcommands(cmd)
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Noun::augment_subcommands_for_update(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        Noun::has_subcommand(name)
    }
}

/// The CLI's nouns.
#[derive(clap::Subcommand, Debug)]
enum Noun {
    /// Work with actions.
    #[command(subcommand)]
    Action(commands::action::ActionCommand),
    /// Work with activations.
    #[command(subcommand)]
    Activation(commands::activation::ActivationCommand),
    /// Work with namespaces.
    #[command(subcommand)]
    Namespace(commands::namespace::NamespaceCommand),
    /// Work with packages.
    #[command(subcommand)]
    Package(commands::package::PackageCommand),
    /// Work with whisk properties.
    #[command(subcommand)]
    Property(commands::property::PropertyCommand),
    /// Work with triggers.
    #[command(subcommand)]
    Trigger(commands::trigger::TriggerCommand),
    /// Work with rules.
    #[command(subcommand)]
    Rule(commands::rule::RuleCommand),
    /// Work with APIs.
    #[command(subcommand)]
    Api(commands::api::ApiCommand),
    /// List entities in the current namespace.
    List(commands::list::ListArgs),
}

/// Runs one CLI command and returns the process exit code. Failures are printed to stderr
/// here, so the `Err` case is reserved for failures to even start (none today).
pub async fn run(global: GlobalFlags, cmd: WskCommand) -> anyhow::Result<i32> {
    let ctx = match Ctx::load(global) {
        Ok(ctx) => ctx,
        Err(e) => return Ok(report(&e, false)),
    };
    let result = match cmd.0 {
        Noun::Action(c) => commands::action::run(&ctx, c).await,
        Noun::Activation(c) => commands::activation::run(&ctx, c).await,
        Noun::Namespace(c) => commands::namespace::run(&ctx, c).await,
        Noun::Property(c) => commands::property::run(&ctx, c).await,
        Noun::Package(c) => commands::package::run(&ctx, c).await,
        Noun::Trigger(c) => commands::trigger::run(&ctx, c).await,
        Noun::Rule(c) => commands::rule::run(&ctx, c).await,
        Noun::Api(c) => commands::api::run(&ctx, c).await,
        Noun::List(a) => commands::list::run(&ctx, a).await,
    };
    Ok(match result {
        Ok(code) => code,
        Err(e) => report(&e, ctx.global.debug),
    })
}

/// The server `edgewhisk bench` measures: the API host and key resolved as for every other
/// command (flags > `WHISK_*` environment > properties file).
#[cfg(feature = "bench")]
pub fn bench_target(global: GlobalFlags) -> anyhow::Result<edgewhisk_bench::Target> {
    let ctx = Ctx::load(global).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(edgewhisk_bench::Target {
        apihost: ctx.settings.apihost,
        auth: ctx.settings.auth.unwrap_or_default(),
        insecure: ctx.global.insecure,
        verbose: ctx.global.verbose,
    })
}

/// Prints `error: …` and returns the exit code of `e`.
fn report(e: &CliError, debug: bool) -> i32 {
    eprintln!("error: {e}");
    if debug {
        eprintln!("[debug] {e:?}");
    }
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The binary invoked as `wsk`.
    type TestCli = crate::Cli<WskCommand>;

    #[test]
    fn the_command_tree_is_valid() {
        use clap::CommandFactory;
        TestCli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli = TestCli::try_parse_from([
            "wsk",
            "action",
            "list",
            "--apihost",
            "http://h:1",
            "-u",
            "a:b",
            "-i",
        ])
        .unwrap();
        assert_eq!(cli.global.apihost.as_deref(), Some("http://h:1"));
        assert_eq!(cli.global.auth.as_deref(), Some("a:b"));
        assert!(cli.global.insecure);
    }

    #[test]
    fn apihost_without_a_value_selects_the_property() {
        let cli = TestCli::try_parse_from(["wsk", "property", "get", "--apihost"]).unwrap();
        assert_eq!(cli.global.apihost.as_deref(), Some(""));
    }
}
