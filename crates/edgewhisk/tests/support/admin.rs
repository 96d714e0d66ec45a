//! `edgewhisk admin` run on a test server's data directory, and requests made with the keys it
//! prints.

use super::api::{Reply, send_raw};
use super::{ServerGuard, binary};
use std::process::Output;

/// Runs `edgewhisk admin ARGS --data-dir <the server's>`.
pub(crate) fn admin_output(s: &ServerGuard, args: &[&str]) -> Output {
    binary::command()
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(s.data_dir())
        .env_remove("EW_CONFIG")
        .output()
        .expect("run edgewhisk admin")
}

/// Runs `edgewhisk admin ARGS`; returns stdout, panics on failure.
pub(crate) fn admin(s: &ServerGuard, args: &[&str]) -> String {
    let out = admin_output(s, args);
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `uuid:key` credentials.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub(crate) uuid: String,
    pub(crate) key: String,
}

impl Auth {
    /// Credentials from `uuid:key` text (surrounding white space ignored).
    pub(crate) fn parse(s: &str) -> Auth {
        let (uuid, key) = s.trim().split_once(':').expect("uuid:key");
        Auth {
            uuid: uuid.into(),
            key: key.into(),
        }
    }

    /// `uuid:key`.
    pub(crate) fn auth_string(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
}

/// Sends `req` with `auth`'s credentials.
pub(crate) async fn send_as(auth: &Auth, req: reqwest::RequestBuilder) -> Reply {
    send_raw(req.basic_auth(&auth.uuid, Some(&auth.key))).await
}

/// The URL of `/api/v1/namespaces/<ns>/<rest>` on `s`.
pub(crate) fn namespace_url(s: &ServerGuard, ns: &str, rest: &str) -> String {
    s.url(&format!("/api/v1/namespaces/{ns}/{rest}"))
}
