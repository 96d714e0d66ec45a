//! Loud start-up warnings for a server that other machines can reach.
//!
//! The guest key and the `whisk.system` key are OpenWhisk's published defaults: anyone who has
//! read the OpenWhisk docs holds them. On loopback that is a convenience for a developer; on a
//! LAN address it hands the namespaces to every device on the network. Likewise plain HTTP on
//! a LAN sends every key in clear text. The server still starts (an operator may be setting the
//! device up), but says so on stderr, as plain lines that are shown whatever the log filter, and
//! as `warn` events for log collectors.

use edgewhisk_controller::catalog;
use edgewhisk_entity::Identity;
use edgewhisk_entity::identity::{self, verify_stored};
use edgewhisk_store::{EntityStore, StoreError};
use std::net::SocketAddr;

/// A published key that the server provisions by default.
#[derive(Debug)]
struct WellKnownKey {
    /// How the warning names it.
    what: &'static str,
    /// The key as OpenWhisk publishes it.
    identity: Identity,
}

fn well_known_keys() -> [WellKnownKey; 2] {
    [
        WellKnownKey {
            what: "the OpenWhisk guest key",
            identity: identity::guest(),
        },
        WellKnownKey {
            what: "the well-known whisk.system key",
            identity: catalog::system_identity(),
        },
    ]
}

/// Warns when `listen` is not a loopback address and a well-known key still authenticates,
/// and when it is not loopback and `tls` is off. Returns the warnings it gave (for tests).
pub(crate) async fn warn_if_exposed(
    listen: SocketAddr,
    tls: bool,
    entities: &dyn EntityStore,
) -> Result<Vec<String>, StoreError> {
    let mut warnings = Vec::new();
    if listen.ip().is_loopback() {
        return Ok(warnings);
    }
    for key in well_known_keys() {
        let published = &key.identity;
        let Some(stored) = entities.identity(&published.uuid).await? else {
            continue;
        };
        if verify_stored(&stored, &published.key).is_none() {
            continue;
        }
        let text = format!(
            "WARNING: edgewhisk serves {listen}, which other machines can reach, and {what} \
             (uuid {uuid}) is still valid: anyone who knows this published key can use \
             namespace '{namespace}'. Replace it with `edgewhisk admin user regenerate \
             {subject} --namespace {namespace}` (with the same --data-dir or --config as \
             `edgewhisk serve`) and give the new key to its users.",
            what = key.what,
            uuid = published.uuid,
            namespace = stored.namespace,
            subject = stored.subject,
        );
        tracing::warn!(
            key = key.what,
            uuid = %published.uuid,
            namespace = %stored.namespace,
            "well-known key still valid on a non-loopback address"
        );
        warnings.push(text);
    }
    if !tls {
        let text = format!(
            "WARNING: edgewhisk serves plain HTTP on {listen}, which other machines can reach: \
             keys and payloads cross the network in clear text. Serve HTTPS with [server] \
             tls_cert and tls_key (or --tls-cert and --tls-key)."
        );
        tracing::warn!(%listen, "plain HTTP on a non-loopback address");
        warnings.push(text);
    }
    for text in &warnings {
        // Plain stderr too: a log filter (EW_LOG=error) must not hide this.
        eprintln!("{text}");
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_store::MemoryStore;

    async fn store_with_defaults() -> MemoryStore {
        let store = MemoryStore::new();
        let mut guest = identity::guest();
        guest.key = identity::KeyHash::stored_form(&guest.key);
        store.put_identity(guest).await.unwrap();
        let mut system = catalog::system_identity();
        system.key = identity::KeyHash::stored_form(&system.key);
        store.put_identity(system).await.unwrap();
        store
    }

    #[tokio::test]
    async fn loopback_gives_no_warning() {
        let store = store_with_defaults().await;
        for addr in ["127.0.0.1:3233", "[::1]:3233"] {
            let warnings = warn_if_exposed(addr.parse().unwrap(), false, &store)
                .await
                .unwrap();
            assert!(warnings.is_empty(), "{addr}: {warnings:?}");
        }
    }

    #[tokio::test]
    async fn any_address_names_each_valid_well_known_key_and_plain_http() {
        let store = store_with_defaults().await;
        let warnings = warn_if_exposed("0.0.0.0:3233".parse().unwrap(), false, &store)
            .await
            .unwrap();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("guest key"), "{}", warnings[0]);
        assert!(
            warnings[0].contains("edgewhisk admin user regenerate guest --namespace guest"),
            "{}",
            warnings[0]
        );
        assert!(warnings[1].contains("whisk.system key"), "{}", warnings[1]);
        assert!(warnings[2].contains("plain HTTP"), "{}", warnings[2]);
    }

    #[tokio::test]
    async fn replaced_keys_and_tls_give_no_warning() {
        let store = store_with_defaults().await;
        let mut guest = identity::guest();
        guest.key = identity::KeyHash::stored_form(&identity::generate_key());
        store.put_identity(guest).await.unwrap();
        store
            .delete_identity(&catalog::system_identity().uuid)
            .await
            .unwrap();
        let warnings = warn_if_exposed("[::]:3233".parse().unwrap(), true, &store)
            .await
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
