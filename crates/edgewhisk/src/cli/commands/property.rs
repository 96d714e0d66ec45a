//! `wsk property get|set|unset`: the `.wskprops` file.
//!
//! `--apihost` and `--auth` are the global flags: with a value they set (or override) the
//! property, without one they select it (`property get --auth`, `property unset --apihost`).

use crate::cli::error::CliError;
use crate::cli::props::Ctx;
use serde_json::Value;

/// `wsk property` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum PropertyCommand {
    /// Get property (all when none is selected).
    Get(GetArgs),
    /// Set property (`--apihost HOST`, `--auth KEY`, `--namespace NS`, `--apiversion V`).
    Set(SetArgs),
    /// Unset property.
    Unset(UnsetArgs),
}

/// Arguments of `property get` (`--apihost` and `--auth` are the global flags).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct GetArgs {
    /// Whisk namespace (asks the server).
    #[arg(long)]
    namespace: bool,
    /// Whisk API version.
    #[arg(long)]
    apiversion: bool,
    /// Whisk CLI version.
    #[arg(long)]
    cliversion: bool,
    /// Whisk API build version.
    #[arg(long)]
    apibuild: bool,
    /// Whisk API build number.
    #[arg(long)]
    apibuildno: bool,
    /// All properties.
    #[arg(long)]
    all: bool,
}

/// Arguments of `property set` besides the global `--apihost HOST` and `--auth KEY`.
#[derive(clap::Args, Debug)]
pub(crate) struct SetArgs {
    /// Whisk NAMESPACE.
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Whisk API VERSION.
    #[arg(long, value_name = "VERSION")]
    apiversion: Option<String>,
}

/// Arguments of `property unset` besides the global `--apihost` and `--auth`.
#[derive(clap::Args, Debug)]
pub(crate) struct UnsetArgs {
    /// Whisk namespace.
    #[arg(long)]
    namespace: bool,
    /// Whisk API version.
    #[arg(long)]
    apiversion: bool,
}

/// Runs a `property` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: PropertyCommand) -> Result<i32, CliError> {
    match cmd {
        PropertyCommand::Get(a) => get(ctx, &a).await,
        PropertyCommand::Set(a) => {
            let mut file = ctx.props.clone();
            let out = set(&mut file, ctx, &a);
            file.save()?;
            print!("{out}");
            Ok(0)
        }
        PropertyCommand::Unset(a) => {
            let mut file = ctx.props.clone();
            let out = unset(&mut file, ctx, &a);
            file.save()?;
            print!("{out}");
            Ok(0)
        }
    }
}

/// Applies `property set` to `file`; returns the confirmation lines.
fn set(file: &mut crate::cli::props::PropsFile, ctx: &Ctx, a: &SetArgs) -> String {
    let mut out = String::new();
    if let Some(auth) = ctx.global.auth.as_deref().filter(|s| !s.is_empty()) {
        file.set("AUTH", auth);
        out.push_str("ok: whisk auth set. Run 'wsk property get --auth' to see the new value.\n");
    }
    if let Some(host) = ctx.global.apihost.as_deref().filter(|s| !s.is_empty()) {
        file.set("APIHOST", host);
        out.push_str(&format!("ok: whisk API host set to {host}\n"));
    }
    if let Some(v) = &a.apiversion {
        file.set("APIVERSION", v);
        out.push_str(&format!("ok: whisk API version set to {v}\n"));
    }
    if let Some(ns) = &a.namespace {
        file.set("NAMESPACE", ns);
        out.push_str(&format!("ok: whisk namespace set to {ns}\n"));
    }
    out
}

/// Applies `property unset` to `file`; returns the confirmation lines.
fn unset(file: &mut crate::cli::props::PropsFile, ctx: &Ctx, a: &UnsetArgs) -> String {
    let mut out = String::new();
    if ctx.global.auth.is_some() {
        file.unset("AUTH");
        out.push_str("ok: whisk auth unset.\n");
    }
    if a.namespace {
        file.unset("NAMESPACE");
        out.push_str("ok: whisk namespace unset; the default value of _ will be used.\n");
    }
    if ctx.global.apihost.is_some() {
        file.unset("APIHOST");
        out.push_str("ok: whisk API host unset.\n");
    }
    if a.apiversion {
        file.unset("APIVERSION");
        out.push_str("ok: whisk API version unset; the default value of v1 will be used.\n");
    }
    out
}

async fn get(ctx: &Ctx, a: &GetArgs) -> Result<i32, CliError> {
    let sel_apihost = ctx.global.apihost.is_some();
    let sel_auth = ctx.global.auth.is_some();
    let all = a.all
        || !(sel_apihost
            || sel_auth
            || a.namespace
            || a.apiversion
            || a.cliversion
            || a.apibuild
            || a.apibuildno);
    let s = &ctx.settings;
    if all || sel_auth {
        println!("whisk auth\t\t{}", s.auth.as_deref().unwrap_or(""));
    }
    if all || sel_apihost {
        println!("whisk API host\t\t{}", s.apihost.as_deref().unwrap_or(""));
    }
    if all || a.apiversion {
        println!("whisk API version\t{}", s.apiversion);
    }
    if all || a.namespace {
        // As wsk does: the first namespace the key owns, else the configured one.
        let from_server = match ctx.client() {
            Ok(c) => c
                .namespaces()
                .await
                .ok()
                .and_then(|ns| ns.into_iter().next()),
            Err(_) => None,
        };
        let ns = from_server
            .or_else(|| s.namespace.clone())
            .unwrap_or_else(|| "_".into());
        println!("whisk namespace\t\t{ns}");
    }
    if all || a.cliversion {
        println!("whisk CLI version\t{}", crate::VERSION);
    }
    if all || a.apibuild || a.apibuildno {
        let info = match ctx.client() {
            Ok(c) => c.info().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let field = |k: &str| match &info {
            Ok(v) => match v.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "Unknown".into(),
            },
            Err(_) => "Unknown".into(),
        };
        if all || a.apibuild {
            println!("whisk API build\t\t{}", field("build"));
        }
        if all || a.apibuildno {
            println!("whisk API build number\t{}", field("buildno"));
        }
        if let Err(e) = info {
            return Err(CliError::Failed(format!(
                "Unable to obtain API build information: {e}"
            )));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::GlobalFlags;
    use crate::cli::props::{PropsFile, Settings};

    fn ctx(global: GlobalFlags, dir: &std::path::Path) -> Ctx {
        let props = PropsFile::load(Some(dir.join("wskprops"))).unwrap();
        let settings = Settings::resolve(&props, &global);
        Ctx {
            global,
            props,
            settings,
        }
    }

    #[test]
    fn set_writes_apihost_and_auth_with_wsk_messages() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(
            GlobalFlags {
                apihost: Some("http://127.0.0.1:3233".into()),
                auth: Some("u:k".into()),
                ..GlobalFlags::default()
            },
            dir.path(),
        );
        let mut file = c.props.clone();
        let out = set(
            &mut file,
            &c,
            &SetArgs {
                namespace: None,
                apiversion: None,
            },
        );
        assert_eq!(
            out,
            "ok: whisk auth set. Run 'wsk property get --auth' to see the new value.\nok: whisk API host set to http://127.0.0.1:3233\n"
        );
        file.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("wskprops")).unwrap();
        assert_eq!(text, "AUTH=u:k\nAPIHOST=http://127.0.0.1:3233\n");
    }

    #[test]
    fn unset_removes_only_the_selected_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("wskprops"),
            "APIHOST=h\nAUTH=a\nNAMESPACE=n\n",
        )
        .unwrap();
        let c = ctx(
            GlobalFlags {
                apihost: Some(String::new()),
                ..GlobalFlags::default()
            },
            dir.path(),
        );
        let mut file = c.props.clone();
        let out = unset(
            &mut file,
            &c,
            &UnsetArgs {
                namespace: true,
                apiversion: false,
            },
        );
        assert_eq!(
            out,
            "ok: whisk namespace unset; the default value of _ will be used.\nok: whisk API host unset.\n"
        );
        assert_eq!(file.render(), "AUTH=a\n");
    }
}
