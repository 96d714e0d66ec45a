//! Authentication and entitlement (OpenWhisk `BasicAuthenticationDirective.scala`,
//! `entitlement/Entitlement.scala`).
//!
//! Callers authenticate with HTTP Basic: the user is the key's UUID and the password its
//! 64-character secret. The identity is looked up by UUID in the entity store, which serves
//! it from its cache for at most 5 s (`edgewhisk_store::cache::DEFAULT_IDENTITY_TTL`): a key
//! regenerated or deleted by `edgewhisk admin` stops working within that bound. The store
//! keeps a salted SHA-256 of the key; the presented secret is hashed and compared in constant
//! time (about a microsecond), so no secret is held in memory between requests.
//!
//! After authenticating, the namespace's throttle overrides are read from the (equally
//! cached) store and handed to the throttler, so the limits set by `edgewhisk admin limits`
//! apply within the same bound (`refresh_overrides`, which web actions and feeds call for
//! the namespace they run as).
//!
//! The owner of a namespace may do everything in it; access to any other namespace is refused
//! here (shared packages are let through by `entitlement`).

use crate::error::ApiError;
use crate::messages;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use edgewhisk_entity::Identity;
use edgewhisk_entity::identity::verify_stored;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized(messages::CREDENTIALS_MISSING))?;
        let (uuid, key) = parse_basic(header)?;
        let identity = state
            .entities()
            .identity(&uuid)
            .await?
            .and_then(|stored| verify_stored(&stored, &key))
            .ok_or(ApiError::Unauthorized(messages::CREDENTIALS_REJECTED))?;
        refresh_overrides(state, &identity.namespace).await?;
        Ok(Caller(identity))
    }
}

/// Hands `namespace`'s throttle overrides, read from the (cached) store, to the throttler.
/// Every path that runs activations for a namespace calls it before taking a slot:
/// authentication for the caller, web actions for the action's owner, feeds for the trigger's
/// owner. So the overrides apply right after a restart, not only once the namespace itself has
/// called the API.
pub(crate) async fn refresh_overrides(state: &AppState, namespace: &str) -> Result<(), ApiError> {
    let overrides = state.entities().namespace_limits(namespace).await?;
    state.throttler().set_overrides(namespace, overrides);
    Ok(())
}

/// Splits a `Basic` header into a well-formed UUID and 64-character secret.
pub(crate) fn parse_basic(header: &str) -> Result<(String, String), ApiError> {
    let rejected = ApiError::Unauthorized(messages::CREDENTIALS_REJECTED);
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(ApiError::Unauthorized(messages::CREDENTIALS_MISSING))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Unauthorized(messages::CREDENTIALS_MISSING));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::Unauthorized(messages::CREDENTIALS_REJECTED))?;
    let (user, secret) = decoded.split_once(':').ok_or(rejected)?;
    if uuid::Uuid::parse_str(user).is_err() || secret.chars().count() != 64 {
        return Err(ApiError::Unauthorized(messages::CREDENTIALS_REJECTED));
    }
    Ok((user.to_owned(), secret.to_owned()))
}

/// Resolves the `{ns}` of a URL for `caller`: `_` is the caller's own namespace; any other
/// namespace than the caller's is refused with 403 naming `ns[/entity]` (OpenWhisk's
/// `Resource.fqname`).
pub fn resolve_namespace(
    caller: &Identity,
    ns: &str,
    entity: Option<&str>,
) -> Result<String, ApiError> {
    if ns == "_" || ns == caller.namespace {
        return Ok(caller.namespace.clone());
    }
    let value = match entity {
        Some(e) => format!("{ns}/{e}"),
        None => ns.to_owned(),
    };
    Err(ApiError::Forbidden(messages::not_authorized(&value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::identity::{GUEST_AUTH, guest};

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn parses_well_formed_basic_credentials() {
        let (uuid, key) = parse_basic(&basic(GUEST_AUTH)).unwrap();
        assert_eq!(format!("{uuid}:{key}"), GUEST_AUTH);
    }

    #[test]
    fn refuses_non_uuid_users_and_short_secrets() {
        for bad in [
            "nobody:".to_owned() + &"k".repeat(64),
            guest().uuid + ":short",
        ] {
            assert_eq!(
                parse_basic(&basic(&bad)).unwrap_err().message(),
                messages::CREDENTIALS_REJECTED
            );
        }
        assert_eq!(
            parse_basic("Bearer abc").unwrap_err().message(),
            messages::CREDENTIALS_MISSING
        );
    }

    #[test]
    fn underscore_is_the_callers_namespace_and_others_are_forbidden() {
        let g = guest();
        assert_eq!(resolve_namespace(&g, "_", None).unwrap(), "guest");
        assert_eq!(resolve_namespace(&g, "guest", Some("a")).unwrap(), "guest");
        assert_eq!(
            resolve_namespace(&g, "other", Some("pkg/a"))
                .unwrap_err()
                .message(),
            "The supplied authentication is not authorized to access 'other/pkg/a'."
        );
        assert_eq!(
            resolve_namespace(&g, "other", None).unwrap_err().message(),
            "The supplied authentication is not authorized to access 'other'."
        );
    }
}
