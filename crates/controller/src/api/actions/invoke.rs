//! `POST actions/[{pkg}/]{name}?blocking=&result=&timeout=`: invoke an action (OpenWhisk
//! `Actions.scala` `activate`, `actions/PrimitiveActions.scala`).
//!
//! The hot path: the action comes from the entity store (served from its cache), the body is
//! validated as a JSON object without building a tree and handed to the activation service,
//! which passes it on as raw JSON unless the action has default parameters to merge; nothing
//! waits for disk.

use crate::activation::{ActivationRequest, Input, activate};
use crate::api::render;
use crate::auth::Caller;
use crate::entities::load_action;
use crate::entitlement::{self, Right};
use crate::error::{ApiError, ApiQuery, TransactionId, read_body};
use crate::messages;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::time::Duration;

/// OpenWhisk's largest blocking wait, and the bound of the `timeout` parameter.
const MAX_BLOCKING_WAIT_MS: u64 = 60_000;

/// `POST actions/[{pkg}/]{name}`: runs the action with the body (a JSON object, empty = `{}`)
/// over its default parameters.
///
/// - non-blocking: 202 `{"activationId"}`;
/// - blocking (`blocking=true`), finished within min(`timeout`, the configured wait): 200 on
///   success, 502 on application or developer error, 500 on whisk error, with the full
///   activation (`"logs": []`) or, with `result=true`, only its result; not finished: 202
///   `{"activationId"}`;
/// - 400 (bad name, query, non-object body, `final` parameters), 401, 403, 404, 409 (name
///   taken by another collection), 413 (body over the payload limit), 429 (throttled),
///   503 (load balancer unavailable), 507 (the store is out of disk space: the activation is
///   refused before it runs, or its record could not be stored).
///
/// Every response that has an activation carries `x-openwhisk-activation-id`.
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    tid: TransactionId,
    Path((ns, rest)): Path<(String, String)>,
    q: ApiQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = edgewhisk_entity::time::now_millis();
    let (t, pkg) =
        entitlement::action_target(&state, &caller.0, &ns, &rest, Right::Activate).await?;
    let blocking = q.bool("blocking", false)?;
    let result_only = q.bool("result", false)?;
    let timeout = parse_timeout(q.get("timeout"))?;
    let config = state.config();
    let body = read_body(&headers, body, config.max_payload_bytes).await?;
    let (_, action) = load_action(&state, &t).await?;
    let input = Input::from_body(&body)?;
    drop(body);
    let wait = Duration::from_millis(
        timeout
            .unwrap_or(config.blocking_wait_ms)
            .min(config.blocking_wait_ms),
    );
    let request = ActivationRequest {
        identity: caller.0,
        action: pkg.apply(action),
        binding: pkg.binding,
        input,
        wait: blocking.then_some(wait),
        transaction_id: tid.0,
        received_at,
    };
    let outcome = activate(&state, request).await?;
    Ok(render::outcome(outcome, blocking, result_only))
}

/// `timeout` must be 1..=60000 ms.
fn parse_timeout(v: Option<&str>) -> Result<Option<u64>, ApiError> {
    v.map(|v| {
        v.parse::<u64>()
            .ok()
            .filter(|ms| (1..=MAX_BLOCKING_WAIT_MS).contains(ms))
            .ok_or_else(|| {
                ApiError::BadRequest(messages::malformed_query_param(
                    "timeout",
                    &messages::invalid_timeout(MAX_BLOCKING_WAIT_MS),
                ))
            })
    })
    .transpose()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn timeout_must_be_between_one_and_sixty_thousand_ms() {
        assert_eq!(parse_timeout(None).unwrap(), None);
        assert_eq!(parse_timeout(Some("60000")).unwrap(), Some(60_000));
        for bad in ["0", "60001", "x", "-5"] {
            assert_eq!(
                parse_timeout(Some(bad)).unwrap_err().message(),
                "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000."
            );
        }
    }
}
