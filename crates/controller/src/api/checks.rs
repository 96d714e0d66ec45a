//! Checks the entity routes share: the namespace and name of a request, and the sizes of PUT
//! bodies (OpenWhisk `LimitedWhiskEntityPut`).

use crate::auth::resolve_namespace;
use crate::entities::valid_name;
use crate::error::ApiError;
use crate::messages;
use edgewhisk_entity::{Identity, Parameters};

/// The namespace `{ns}` names for `caller`'s request on the entity `name`: 403 naming
/// `ns/name` for another namespace, 400 for a name that is not one.
pub(crate) fn own_entity(caller: &Identity, ns: &str, name: &str) -> Result<String, ApiError> {
    let namespace = resolve_namespace(caller, ns, Some(name))?;
    valid_name(name)?;
    Ok(namespace)
}

/// A length as `u64`, saturating.
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// 413 naming `field` when `is` exceeds `allowed`.
pub(crate) fn within(field: &str, is: u64, allowed: u64) -> Result<(), ApiError> {
    if is > allowed {
        return Err(ApiError::PayloadTooLarge(messages::entity_too_big(
            field, is, allowed,
        )));
    }
    Ok(())
}

/// OpenWhisk's size of a parameter list: keys plus the compact JSON of values.
pub(crate) fn params_size(p: &Parameters) -> u64 {
    p.0.iter()
        .map(|kv| len_u64(kv.key.len() + kv.value.to_string().len()))
        .fold(0, u64::saturating_add)
}

/// 413 for `parameters` or `annotations` over the parameter size limit `allowed`.
pub(crate) fn parameter_sizes(
    parameters: Option<&Parameters>,
    annotations: Option<&Parameters>,
    allowed: u64,
) -> Result<(), ApiError> {
    for (field, p) in [("parameters", parameters), ("annotations", annotations)] {
        if let Some(p) = p {
            within(field, params_size(p), allowed)?;
        }
    }
    Ok(())
}
