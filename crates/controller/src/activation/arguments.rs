//! The arguments of an activation: the input overlaid on the action's default parameters, in
//! one place for every entry path (OpenWhisk `WhiskAction.mergeParameters`).
//!
//! A client's body is passed on as the JSON text it came as, without building a tree, when the
//! action has no default parameters; only then is it merged into an object.

use crate::error::{ApiError, is_blank};
use crate::messages;
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{Action, Parameters};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// The input of an activation.
#[derive(Debug)]
pub enum Input {
    /// JSON text as it came from a client, checked to be an object.
    Raw(Box<RawValue>),
    /// A value the controller built (web request arguments, trigger parameters and payload) or
    /// a previous result (the next component of a sequence).
    Json(Value),
}

impl Input {
    /// A client's body as input: a JSON object (blank = `{}`), checked without building a
    /// tree. 400 "The request content was malformed" for anything else.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        let body: &[u8] = if is_blank(body) { b"{}" } else { body };
        let raw: Box<RawValue> = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(messages::malformed_content(&e.to_string())))?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(ApiError::BadRequest(messages::malformed_content(
                messages::OBJECT_EXPECTED,
            )));
        }
        Ok(Input::Raw(raw))
    }

    /// The run arguments for an action with `defaults`: the input as it is when there are no
    /// defaults to merge, else the defaults overlaid with the input's fields. Anything but an
    /// object or array is no input at all (OpenWhisk passes only objects on).
    pub(crate) fn into_content(self, defaults: &Parameters) -> Box<RawValue> {
        let has_defaults = has_defaults(defaults);
        let value = match self {
            Input::Raw(raw) if !has_defaults => return raw,
            Input::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or_else(|_| json!({})),
            Input::Json(v) => v,
        };
        let value = match value {
            Value::Object(m) if has_defaults => {
                let mut merged = defaults.run_object();
                merged.extend(m);
                Value::Object(merged)
            }
            v @ (Value::Object(_) | Value::Array(_)) if !has_defaults => v,
            _ => Value::Object(defaults.run_object()),
        };
        to_raw(&value)
    }

    /// The input as a JSON object, for merging a composition's state into it.
    pub(crate) fn into_object(self) -> Map<String, Value> {
        let value = match self {
            Input::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Input::Json(v) => v,
        };
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The input as JSON text, unmerged.
    fn into_raw(self) -> Box<RawValue> {
        match self {
            Input::Raw(raw) => raw,
            Input::Json(v) => to_raw(&v),
        }
    }
}

/// The arguments of a topmost activation of `action`. A sequence's input is the input alone
/// (its parameters are not arguments); an action's is merged over its defaults, and an action
/// annotated `final` refuses an input that redefines one of its parameters (400).
pub(crate) fn topmost(action: &Action, input: Input) -> Result<Box<RawValue>, ApiError> {
    if matches!(action.exec, ActionExec::Sequence(_)) {
        return Ok(input.into_raw());
    }
    if !has_defaults(&action.parameters) {
        return Ok(input.into_content(&action.parameters));
    }
    let args = match input {
        Input::Raw(raw) => serde_json::from_str(raw.get())
            .map_err(|e| ApiError::BadRequest(messages::malformed_content(&e.to_string())))?,
        Input::Json(v) => v,
    };
    if let Value::Object(m) = &args {
        if action.annotations.is_truthy("final")
            && m.keys().any(|k| action.parameters.get(k).is_some())
        {
            return Err(ApiError::BadRequest(
                messages::PARAMETERS_NOT_ALLOWED.to_owned(),
            ));
        }
    }
    Ok(Input::Json(args).into_content(&action.parameters))
}

/// Whether `params` has parameters that are run arguments (not `init` ones).
fn has_defaults(params: &Parameters) -> bool {
    params.0.iter().any(|kv| !kv.init)
}

#[allow(clippy::expect_used)]
fn to_raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).expect("{} is JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(params: Value, annotations: Value) -> Action {
        serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "version": "0.0.1", "publish": false,
            "exec": {"kind": "nodejs:20", "code": "x", "binary": false},
            "parameters": params,
            "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1},
            "annotations": annotations, "updated": 1
        }))
        .unwrap()
    }

    fn body(b: &[u8]) -> Result<Box<RawValue>, ApiError> {
        Input::from_body(b).map(Input::into_raw)
    }

    fn params(v: Value) -> Parameters {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn body_passes_through_unparsed_when_the_action_has_no_defaults() {
        let a = action(
            json!([{"key": "secret", "value": 1, "init": true}]),
            json!([]),
        );
        let raw = topmost(&a, Input::from_body(br#"{"b":  [1, 2]}"#).unwrap()).unwrap();
        assert_eq!(raw.get(), r#"{"b":  [1, 2]}"#);
        let raw = topmost(&a, Input::from_body(b"  ").unwrap()).unwrap();
        assert_eq!(raw.get(), "{}");
    }

    #[test]
    fn body_overrides_default_parameters_but_not_init_ones() {
        let a = action(
            json!([{"key": "x", "value": 1}, {"key": "y", "value": 2}, {"key": "e", "value": 3, "init": true}]),
            json!([]),
        );
        let raw = topmost(&a, Input::from_body(br#"{"y": 5}"#).unwrap()).unwrap();
        let v: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v, json!({"x": 1, "y": 5}));
    }

    #[test]
    fn non_object_bodies_are_refused() {
        for b in [&b"[1]"[..], b"3", b"\"s\""] {
            assert_eq!(
                body(b).unwrap_err().message(),
                "The request content was malformed:\nObject expected"
            );
        }
        assert!(body(b"{").is_err());
    }

    #[test]
    fn final_actions_refuse_inputs_that_redefine_parameters() {
        let a = action(
            json!([{"key": "x", "value": 1}]),
            json!([{"key": "final", "value": true}]),
        );
        let refused = topmost(&a, Input::from_body(br#"{"x": 2}"#).unwrap());
        assert_eq!(
            refused.unwrap_err().message(),
            messages::PARAMETERS_NOT_ALLOWED
        );
        let refused = topmost(&a, Input::Json(json!({"x": 2})));
        assert!(refused.is_err());
        assert!(topmost(&a, Input::from_body(br#"{"z": 2}"#).unwrap()).is_ok());
    }

    #[test]
    fn a_raw_input_passes_through_unparsed_without_defaults() {
        let raw = RawValue::from_string(r#"{"a":  1}"#.to_owned()).unwrap();
        let out = Input::Raw(raw).into_content(&Parameters::default());
        assert_eq!(out.get(), r#"{"a":  1}"#);
    }

    #[test]
    fn defaults_are_overlaid_by_the_input_and_scalars_are_no_input() {
        let p = params(json!([{"key": "x", "value": 1}, {"key": "y", "value": 2}]));
        let out = Input::Json(json!({"y": 5})).into_content(&p);
        assert_eq!(
            serde_json::from_str::<Value>(out.get()).unwrap(),
            json!({"x": 1, "y": 5})
        );
        let out = Input::Json(json!("text")).into_content(&Parameters::default());
        assert_eq!(out.get(), "{}");
        let out = Input::Json(json!([1, 2])).into_content(&Parameters::default());
        assert_eq!(out.get(), "[1,2]");
    }
}
