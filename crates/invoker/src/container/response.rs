//! Classification of runner replies into activation responses.
//!
//! This is OpenWhisk's `ActivationResult.processInitResponseContent` /
//! `processRunResponseContent` (upstream `ActivationResult.scala`): a pure
//! mapping from a [`RunnerOutcome`] to an [`ActivationResponse`], with OpenWhisk's message
//! texts. It does not decide what happens to the instance; [`destroys_instance`] states the
//! rule the proxy applies (developer and whisk errors destroy, application errors keep it warm).

use super::backend::RunnerOutcome;
use edgewhisk_entity::{ActivationResponse, Status};
use serde_json::Value;
use std::time::Duration;

/// The largest result an action may return, in bytes (`whisk.activation.payload.max`).
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// The runner died while running the action.
pub const ABNORMAL_RUN: &str =
    "The action did not produce a valid response and exited unexpectedly.";

/// The runner died while initialising the action.
pub const ABNORMAL_INITIALIZATION: &str = "The action did not initialize and exited unexpectedly.";

/// The runner was killed for exceeding its memory limit.
pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";

/// The platform could not start an instance for the action.
pub const RESOURCE_PROVISION_ERROR: &str = "Failed to provision resources to run the action.";

/// The invoker stopped before the activation could run.
pub const SHUTTING_DOWN: &str = "The invoker is shutting down.";

/// The invoker itself failed while running the activation (a bug, caught and reported).
pub const INTERNAL_ERROR: &str = "An internal error occurred while running the action.";

/// Appended to the logs of developer errors (OpenWhisk `Messages.logWarningDeveloperError`).
pub const DEVELOPER_ERROR_LOG_NOTICE: &str =
    "The action did not initialize or run as expected. Log data might be missing.";

/// "The action exceeded its time limits of N milliseconds." (or "… during initialization.").
pub fn timed_out_message(timeout: Duration, init: bool) -> String {
    let ms = timeout.as_millis();
    if init {
        format!("The action exceeded its time limits of {ms} milliseconds during initialization.")
    } else {
        format!("The action exceeded its time limits of {ms} milliseconds.")
    }
}

fn invalid_run_response(body: &str) -> String {
    if body.is_empty() {
        "The action did not produce a valid JSON or JSON Array response.".to_owned()
    } else {
        format!("The action did not produce a valid JSON or JSON Array response: {body}")
    }
}

fn invalid_init_response(body: &str) -> String {
    if body.is_empty() {
        "The action failed during initialization.".to_owned()
    } else {
        format!("The action failed during initialization: {body}")
    }
}

fn truncated_response(body: &str, max_bytes: usize) -> String {
    let mut cut = max_bytes.min(body.len());
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "The action produced a response that exceeded the allowed length: {} > {} bytes. \
         The truncated response was: {}",
        body.len(),
        max_bytes,
        &body[..cut]
    )
}

fn size_of(body: &str) -> Option<u64> {
    u64::try_from(body.len()).ok()
}

/// The response of an `/init`, or `None` when the instance initialised (status 200).
pub fn init_failure(outcome: &RunnerOutcome, timeout: Duration) -> Option<ActivationResponse> {
    let dev = |e: Value| Some(ActivationResponse::error(Status::DeveloperError, e));
    match outcome {
        RunnerOutcome::Replied(reply) if reply.status == 200 => None,
        RunnerOutcome::Replied(reply) => {
            let body = reply.body.get();
            if body.len() > MAX_RESULT_BYTES {
                return dev(truncated_response(body, MAX_RESULT_BYTES).into());
            }
            match serde_json::from_str::<Value>(body) {
                Ok(Value::Object(mut fields)) => match fields.remove("error") {
                    Some(error) => dev(error),
                    None => dev(invalid_init_response(body).into()),
                },
                _ => dev(invalid_init_response(body).into()),
            }
        }
        RunnerOutcome::TimedOut => dev(timed_out_message(timeout, true).into()),
        RunnerOutcome::Exited => dev(ABNORMAL_INITIALIZATION.into()),
        RunnerOutcome::OutOfMemory => dev(MEMORY_EXHAUSTED.into()),
    }
}

/// The response of a `/run`, with the 1 MB result limit.
pub fn run_response(outcome: &RunnerOutcome, timeout: Duration) -> ActivationResponse {
    run_response_with_limit(outcome, timeout, MAX_RESULT_BYTES)
}

/// [`run_response`] with an explicit result limit in bytes.
pub fn run_response_with_limit(
    outcome: &RunnerOutcome,
    timeout: Duration,
    max_bytes: usize,
) -> ActivationResponse {
    let reply = match outcome {
        RunnerOutcome::Replied(reply) => reply,
        RunnerOutcome::TimedOut => {
            return ActivationResponse::error(
                Status::DeveloperError,
                timed_out_message(timeout, false),
            );
        }
        RunnerOutcome::Exited => {
            return ActivationResponse::error(Status::DeveloperError, ABNORMAL_RUN);
        }
        RunnerOutcome::OutOfMemory => {
            return ActivationResponse::error(Status::DeveloperError, MEMORY_EXHAUSTED);
        }
    };
    let body = reply.body.get();
    let ok = reply.status == 200;
    if body.len() > max_bytes {
        let mut r = ActivationResponse::error(
            Status::ApplicationError,
            truncated_response(body, max_bytes),
        );
        r.size = size_of(body);
        return r;
    }
    let mut response = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut fields)) => match (ok, fields.remove("error")) {
            (true, None) => ActivationResponse::success(Value::Object(fields)),
            (true, Some(error)) => ActivationResponse::error(Status::ApplicationError, error),
            (false, Some(error)) => ActivationResponse::error(Status::DeveloperError, error),
            (false, None) => {
                ActivationResponse::error(Status::DeveloperError, invalid_run_response(body))
            }
        },
        Ok(array @ Value::Array(_)) if ok => ActivationResponse::success(array),
        _ => ActivationResponse::error(Status::DeveloperError, invalid_run_response(body)),
    };
    response.size = size_of(body);
    response
}

/// Whether the run hit its time limit (the `timeout` annotation).
pub fn is_timeout(outcome: &RunnerOutcome) -> bool {
    matches!(outcome, RunnerOutcome::TimedOut)
}

/// Whether a runner that ended so still has its log sentinels to write: false when it died.
pub fn runner_alive(outcome: &RunnerOutcome) -> bool {
    matches!(outcome, RunnerOutcome::Replied(_))
}

/// Whether an instance that produced `status` must be destroyed (developer and whisk errors).
pub fn destroys_instance(status: Status) -> bool {
    matches!(status, Status::DeveloperError | Status::WhiskError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::backend::RunnerReply;
    use serde_json::json;
    use serde_json::value::RawValue;

    fn replied(status: u16, body: &str) -> RunnerOutcome {
        RunnerOutcome::Replied(RunnerReply {
            status,
            body: RawValue::from_string(body.to_owned()).unwrap(),
        })
    }

    const T: Duration = Duration::from_millis(3000);

    #[test]
    fn run_outcomes_are_classified_as_openwhisk_does() {
        let cases: Vec<(RunnerOutcome, Status, Value)> = vec![
            (replied(200, r#"{"a":1}"#), Status::Success, json!({"a":1})),
            (replied(200, "[1,2]"), Status::Success, json!([1, 2])),
            (
                replied(200, r#"{"error":"nope"}"#),
                Status::ApplicationError,
                json!({"error":"nope"}),
            ),
            (
                replied(200, r#"{"error":{"code":7}}"#),
                Status::ApplicationError,
                json!({"error":{"code":7}}),
            ),
            (
                replied(502, r#"{"error":"An error has occurred: boom"}"#),
                Status::DeveloperError,
                json!({"error":"An error has occurred: boom"}),
            ),
            (
                replied(502, r#"{"x":1}"#),
                Status::DeveloperError,
                json!({"error":"The action did not produce a valid JSON or JSON Array response: {\"x\":1}"}),
            ),
            (
                replied(200, r#""text""#),
                Status::DeveloperError,
                json!({"error":"The action did not produce a valid JSON or JSON Array response: \"text\""}),
            ),
            (
                replied(200, "42"),
                Status::DeveloperError,
                json!({"error":"The action did not produce a valid JSON or JSON Array response: 42"}),
            ),
            (
                replied(400, "[1]"),
                Status::DeveloperError,
                json!({"error":"The action did not produce a valid JSON or JSON Array response: [1]"}),
            ),
            (
                RunnerOutcome::Exited,
                Status::DeveloperError,
                json!({"error":"The action did not produce a valid response and exited unexpectedly."}),
            ),
            (
                RunnerOutcome::TimedOut,
                Status::DeveloperError,
                json!({"error":"The action exceeded its time limits of 3000 milliseconds."}),
            ),
            (
                RunnerOutcome::OutOfMemory,
                Status::DeveloperError,
                json!({"error":"The action exhausted its memory and was aborted."}),
            ),
        ];
        for (outcome, status, result) in cases {
            let r = run_response(&outcome, T);
            assert_eq!(r.status, status, "{outcome:?}");
            assert_eq!(r.result, Some(result), "{outcome:?}");
        }
    }

    #[test]
    fn run_result_carries_its_size_in_bytes() {
        let r = run_response(&replied(200, r#"{"a":"é"}"#), T);
        assert_eq!(r.size, Some(10));
    }

    #[test]
    fn oversized_result_is_an_application_error_with_truncated_text() {
        let body = format!(r#"{{"a":"{}"}}"#, "x".repeat(20));
        let r = run_response_with_limit(&replied(200, &body), T, 10);
        assert_eq!(r.status, Status::ApplicationError);
        assert_eq!(
            r.result,
            Some(json!({"error": format!(
                "The action produced a response that exceeded the allowed length: {} > 10 bytes. \
                 The truncated response was: {{\"a\":\"xxxx",
                body.len()
            )}))
        );
    }

    #[test]
    fn truncation_never_splits_a_character() {
        let body = r#""ééééé""#;
        let r = run_response_with_limit(&replied(200, body), T, 4);
        let text = r.result.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(text.ends_with("The truncated response was: \"é"), "{text}");
    }

    #[test]
    fn init_outcomes_are_classified_as_openwhisk_does() {
        let cases: Vec<(RunnerOutcome, Option<Value>)> = vec![
            (replied(200, r#"{"OK":true}"#), None),
            (
                replied(502, r#"{"error":"Initialization has failed due to: x"}"#),
                Some(json!("Initialization has failed due to: x")),
            ),
            (
                replied(403, r#"{"nope":1}"#),
                Some(json!(
                    "The action failed during initialization: {\"nope\":1}"
                )),
            ),
            (
                replied(500, r#""bad""#),
                Some(json!("The action failed during initialization: \"bad\"")),
            ),
            (
                RunnerOutcome::TimedOut,
                Some(json!(
                    "The action exceeded its time limits of 3000 milliseconds during initialization."
                )),
            ),
            (
                RunnerOutcome::Exited,
                Some(json!(
                    "The action did not initialize and exited unexpectedly."
                )),
            ),
            (
                RunnerOutcome::OutOfMemory,
                Some(json!("The action exhausted its memory and was aborted.")),
            ),
        ];
        for (outcome, error) in cases {
            let r = init_failure(&outcome, T);
            match error {
                None => assert!(r.is_none(), "{outcome:?}"),
                Some(e) => {
                    let r = r.unwrap();
                    assert_eq!(r.status, Status::DeveloperError, "{outcome:?}");
                    assert_eq!(r.result, Some(json!({ "error": e })), "{outcome:?}");
                }
            }
        }
    }

    #[test]
    fn only_developer_and_whisk_errors_destroy_the_instance() {
        assert!(!destroys_instance(Status::Success));
        assert!(!destroys_instance(Status::ApplicationError));
        assert!(destroys_instance(Status::DeveloperError));
        assert!(destroys_instance(Status::WhiskError));
    }

    #[test]
    fn timeout_and_liveness_follow_the_outcome() {
        assert!(is_timeout(&RunnerOutcome::TimedOut));
        assert!(!is_timeout(&replied(200, "{}")));
        assert!(runner_alive(&replied(502, "{}")));
        assert!(!runner_alive(&RunnerOutcome::Exited));
        assert!(!runner_alive(&RunnerOutcome::TimedOut));
    }
}
