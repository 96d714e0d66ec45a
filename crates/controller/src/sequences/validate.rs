//! Create-time checks of a sequence exec (OpenWhisk `Actions.scala`
//! `checkSequenceActionLimits`, `countAtomicActionsAndCheckCycle`).

use super::resolve::{may_use, parse_component, resolve_action};
use crate::error::ApiError;
use crate::messages;
use crate::state::AppState;
use edgewhisk_entity::FullyQualifiedEntityName;
use edgewhisk_entity::exec::{ActionExec, SequenceExec};
use serde_json::Value;

/// Most atomic actions one sequence may run, nested sequences inlined (OpenWhisk
/// `actionSequenceLimit`); a composition may run as many components and twice as many plus
/// one conductor activations.
pub const SEQUENCE_LIMIT: usize = 50;

/// Turns the `components` of a PUT into a stored sequence exec for the sequence `this` of
/// `caller_ns`: names resolved (`_` → the caller's namespace) and stored as `/ns/[pkg/]name`.
///
/// 400 "No component specified for the sequence." (none), "Too many actions in the
/// sequence." (more than [`SEQUENCE_LIMIT`] atomic actions, nested sequences inlined),
/// "Sequence may not refer to itself." (a cycle through `this`), "Sequence component does
/// not exist." (a missing component); 400 for a name that is not one; 403 for a component
/// in another namespace that is not in a published package.
pub(crate) async fn sequence_exec(
    state: &AppState,
    caller_ns: &str,
    this: &FullyQualifiedEntityName,
    components: &[Value],
) -> Result<SequenceExec, ApiError> {
    if components.is_empty() {
        return Err(bad(messages::SEQUENCE_NO_COMPONENT));
    }
    if components.len() > SEQUENCE_LIMIT {
        return Err(bad(messages::SEQUENCE_IS_TOO_LONG));
    }
    let mut names = Vec::with_capacity(components.len());
    for c in components {
        let fqn = c
            .as_str()
            .and_then(|s| parse_component(s, caller_ns))
            .ok_or_else(|| {
                ApiError::BadRequest(messages::malformed_content(&format!(
                    "'{c}' is not a fully qualified action name"
                )))
            })?;
        if !may_use(state, caller_ns, &fqn).await {
            return Err(ApiError::Forbidden(messages::not_authorized(
                &fqn.path_string(),
            )));
        }
        names.push(fqn);
    }
    let mut count = 0;
    count_atomic(state, caller_ns, this, &names, &mut count, 0).await?;
    Ok(SequenceExec {
        components: names.iter().map(ToString::to_string).collect(),
    })
}

/// Adds the atomic actions of `components` (nested sequences inlined) to `count`, failing as
/// soon as it passes the limit, a component is missing, or `this` appears.
async fn count_atomic(
    state: &AppState,
    caller_ns: &str,
    this: &FullyQualifiedEntityName,
    components: &[FullyQualifiedEntityName],
    count: &mut usize,
    depth: usize,
) -> Result<(), ApiError> {
    for fqn in components {
        if fqn == this {
            return Err(bad(messages::SEQUENCE_IS_CYCLIC));
        }
        let action = resolve_action(state, fqn)
            .await
            .ok_or_else(|| bad(messages::SEQUENCE_COMPONENT_NOT_FOUND))?;
        match &action.exec {
            ActionExec::Sequence(seq) => {
                // Every level holds at least one component, so depth is bounded by the limit.
                if depth >= SEQUENCE_LIMIT {
                    return Err(bad(messages::SEQUENCE_IS_TOO_LONG));
                }
                let inner: Vec<FullyQualifiedEntityName> = seq
                    .components
                    .iter()
                    .filter_map(|c| parse_component(c, caller_ns))
                    .collect();
                Box::pin(count_atomic(
                    state,
                    caller_ns,
                    this,
                    &inner,
                    count,
                    depth + 1,
                ))
                .await?;
            }
            ActionExec::Code(_) => *count += 1,
        }
        if *count > SEQUENCE_LIMIT {
            return Err(bad(messages::SEQUENCE_IS_TOO_LONG));
        }
    }
    Ok(())
}

fn bad(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_owned())
}
