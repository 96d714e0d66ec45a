//! `wsk namespace list`.

use crate::cli::error::CliError;
use crate::cli::output::entity_list;
use crate::cli::props::Ctx;

/// `wsk namespace` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum NamespaceCommand {
    /// List available namespaces.
    List,
}

/// Runs a `namespace` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: NamespaceCommand) -> Result<i32, CliError> {
    match cmd {
        NamespaceCommand::List => {
            let names = ctx.client()?.namespaces().await.map_err(|e| {
                CliError::api("Unable to obtain the list of available namespaces", e)
            })?;
            print!(
                "{}",
                entity_list("namespaces", names.into_iter().map(|n| format!("{n}\n")))
            );
            Ok(0)
        }
    }
}
