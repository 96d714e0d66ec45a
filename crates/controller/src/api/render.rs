//! Activation outcomes as HTTP responses: the activation id header, 202 for an accepted
//! activation, and a finished record with its status.

use crate::activation::Outcome;
use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::exec::SEQUENCE_KIND;
use edgewhisk_entity::{Activation, ActivationId, Status};
use serde_json::{Value, json};

/// The header carrying the activation id on every invoke response.
pub const ACTIVATION_ID_HEADER: HeaderName = HeaderName::from_static("x-openwhisk-activation-id");

/// `res` with the activation id header.
pub(crate) fn with_id(mut res: Response, id: &ActivationId) -> Response {
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
    res
}

/// 202 `{"activationId"}`.
pub(crate) fn accepted(id: &ActivationId) -> Response {
    with_id(
        (StatusCode::ACCEPTED, Json(json!({ "activationId": id }))).into_response(),
        id,
    )
}

/// The answer of an invoke: 202 unless the caller waited and the activation finished.
pub(crate) fn outcome(outcome: Outcome, blocking: bool, result_only: bool) -> Response {
    match outcome {
        Outcome::Done(record) if blocking => finished(*record, result_only),
        other => accepted(other.activation_id()),
    }
}

/// A finished activation: 200 on success, 502 on application or developer error, 500 on
/// whisk error, with the record or, with `result_only`, its result (an array result is
/// always answered bare). A primitive's logs are left out (OpenWhisk collects them after the
/// answer); a sequence's logs, its component ids, are known when it finishes and kept.
pub(crate) fn finished(activation: Activation, result_only: bool) -> Response {
    let status = match activation.response.status {
        Status::Success => StatusCode::OK,
        Status::ApplicationError | Status::DeveloperError => StatusCode::BAD_GATEWAY,
        Status::WhiskError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let id = activation.activation_id.clone();
    let result_is_array = matches!(activation.response.result, Some(Value::Array(_)));
    let keep_logs = activation.annotations.get("kind") == Some(&json!(SEQUENCE_KIND));
    let body = if result_only || result_is_array {
        activation.response.result.unwrap_or_else(|| json!({}))
    } else {
        let mut v = activation.to_json();
        if !keep_logs {
            v["logs"] = json!([]);
        }
        v
    };
    with_id((status, Json(body)).into_response(), &id)
}
