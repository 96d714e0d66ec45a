//! The flags every CLI command takes.

use crate::config::env;
use std::path::PathBuf;

/// Flags accepted by every CLI command (before or after the subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalFlags {
    /// Whisk API host (overrides APIHOST and WHISK_APIHOST).
    #[arg(long, global = true, value_name = "HOST", num_args = 0..=1, default_missing_value = "")]
    pub(crate) apihost: Option<String>,
    /// Authorization key `uuid:key` (overrides AUTH and WHISK_AUTH).
    #[arg(short = 'u', long, global = true, value_name = "KEY", num_args = 0..=1, default_missing_value = "")]
    pub(crate) auth: Option<String>,
    /// Bypass certificate checking.
    #[arg(short = 'i', long, global = true)]
    pub(crate) insecure: bool,
    /// Debug level output.
    #[arg(short = 'd', long, global = true)]
    pub(crate) debug: bool,
    /// Verbose output.
    #[arg(short = 'v', long, global = true)]
    pub(crate) verbose: bool,
    /// The properties file (default `~/.wskprops`). Its flag is not `--config-file`, which is
    /// `api create`'s swagger file, as in `wsk`.
    #[arg(
        long = "wsk-config-file",
        global = true,
        hide = true,
        env = env::WSK_CONFIG_FILE,
        value_name = "FILE"
    )]
    pub(crate) config_file: Option<PathBuf>,
    /// `WHISK_APIHOST` (flags read their variables through clap; see [`crate::config`]).
    #[arg(long, global = true, hide = true, env = env::WHISK_APIHOST)]
    pub(crate) env_apihost: Option<String>,
    /// `WHISK_AUTH`.
    #[arg(long, global = true, hide = true, env = env::WHISK_AUTH)]
    pub(crate) env_auth: Option<String>,
}
