//! Identities: who calls, with which key, in which namespace (OpenWhisk `Identity.scala`).

use serde::{Deserialize, Serialize};

/// An authenticated subject and its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject (user) name, e.g. `guest`.
    pub subject: String,
    /// The namespace the key belongs to, e.g. `guest`.
    pub namespace: String,
    /// The key's UUID (the Basic-auth user name).
    pub uuid: String,
    /// The 64-character secret (the Basic-auth password).
    pub key: String,
}

impl Identity {
    /// The `uuid:key` string a client holds in `AUTH`.
    pub fn auth_string(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
}

/// OpenWhisk's well-known guest key, provisioned for namespace `guest` on first start.
pub const GUEST_AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The guest identity.
pub fn guest() -> Identity {
    let (uuid, key) = GUEST_AUTH.split_once(':').unwrap_or_default();
    Identity {
        subject: "guest".into(),
        namespace: "guest".into(),
        uuid: uuid.into(),
        key: key.into(),
    }
}
