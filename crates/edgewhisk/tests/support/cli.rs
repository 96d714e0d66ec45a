//! The `wsk`-compatible CLI (`edgewhisk ACTION …`) run against a test server.

use super::{GUEST_KEY, ServerGuard, binary};
use std::path::{Path, PathBuf};

/// Writes a properties file for the guest against `s` into the server's directory; its path.
pub(crate) fn guest_props(s: &ServerGuard) -> PathBuf {
    let props = s.dir().join("wskprops");
    std::fs::write(&props, format!("APIHOST={}\nAUTH={GUEST_KEY}\n", s.base()))
        .expect("write props");
    props
}

/// Runs the CLI with `props` as its properties file and no `WHISK_*` override from the
/// environment; (exit code, stdout, stderr).
pub(crate) fn wsk_with(props: &Path, args: &[&str]) -> (i32, String, String) {
    let out = binary::command()
        .args(args)
        .env("WSK_CONFIG_FILE", props)
        .env_remove("WHISK_APIHOST")
        .env_remove("WHISK_AUTH")
        .output()
        .expect("run the CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
