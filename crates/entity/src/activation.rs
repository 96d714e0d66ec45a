//! Activation records (OpenWhisk `WhiskActivation.scala`, `ActivationResult.scala`).

use crate::params::Parameters;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use std::fmt;

/// An activation id: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivationId(String);

/// The id was not 32 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The activation id is not valid: {0}")]
pub struct InvalidActivationId(pub String);

impl ActivationId {
    /// A fresh id: 32 hex characters like OpenWhisk's, time-ordered (a UUID v7: milliseconds
    /// since the epoch, then 74 random bits), so the store's id index grows at its end instead
    /// of being written at a random page for every record.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    /// Parses an id sent by a client.
    pub fn parse(s: &str) -> Result<Self, InvalidActivationId> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(InvalidActivationId(s.to_owned()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ActivationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ActivationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The outcome of an activation (OpenWhisk's status codes 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: the action returned a result.
    Success,
    /// 1: the action returned `{"error": …}`.
    ApplicationError,
    /// 2: the action failed (threw, timed out, exited, bad result).
    DeveloperError,
    /// 3: the platform failed.
    WhiskError,
}

impl Status {
    /// The numeric code stored and shown in list summaries.
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::ApplicationError => 1,
            Status::DeveloperError => 2,
            Status::WhiskError => 3,
        }
    }

    /// The text shown in `response.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::ApplicationError => "application error",
            Status::DeveloperError => "action developer error",
            Status::WhiskError => "whisk internal error",
        }
    }

    fn from_str(s: &str) -> Option<Self> {
        [
            Status::Success,
            Status::ApplicationError,
            Status::DeveloperError,
            Status::WhiskError,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// `response` of an activation record.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationResponse {
    /// Outcome.
    pub status: Status,
    /// The result; errors are always `{"error": …}`.
    pub result: Option<Value>,
    /// Size of the result in bytes, when known.
    pub size: Option<u64>,
}

impl ActivationResponse {
    /// A successful response with `result`.
    pub fn success(result: Value) -> Self {
        Self {
            status: Status::Success,
            result: Some(result),
            size: None,
        }
    }

    /// An error response whose result is `{"error": error}`.
    pub fn error(status: Status, error: impl Into<Value>) -> Self {
        Self {
            status,
            result: Some(json!({ "error": error.into() })),
            size: None,
        }
    }

    /// The `/result` route's JSON.
    pub fn result_json(&self) -> Value {
        let mut v = json!({
            "result": self.result.clone().unwrap_or_else(|| json!({})),
            "success": self.status == Status::Success,
            "status": self.status.as_str(),
        });
        if let Some(size) = self.size {
            v["size"] = json!(size);
        }
        v
    }
}

impl Serialize for ActivationResponse {
    /// The same JSON as [`ActivationResponse::result_json`] (keys in its order), written
    /// straight from the fields: building that value first cloned the whole result, a 1 MB
    /// copy for every record stored and every full activation answered.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        match &self.result {
            Some(result) => m.serialize_entry("result", result)?,
            None => m.serialize_entry("result", &serde_json::Map::new())?,
        }
        if let Some(size) = self.size {
            m.serialize_entry("size", &size)?;
        }
        m.serialize_entry("status", self.status.as_str())?;
        m.serialize_entry("success", &(self.status == Status::Success))?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for ActivationResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            status: Option<String>,
            status_code: Option<u8>,
            result: Option<Value>,
            size: Option<u64>,
        }
        let w = Wire::deserialize(d)?;
        let status = match (w.status.as_deref(), w.status_code) {
            (Some(s), _) => Status::from_str(s)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown status {s}")))?,
            (None, Some(0)) => Status::Success,
            (None, Some(1)) => Status::ApplicationError,
            (None, Some(2)) => Status::DeveloperError,
            _ => Status::WhiskError,
        };
        Ok(Self {
            status,
            result: w.result,
            size: w.size,
        })
    }
}

/// An activation record, serialised in OpenWhisk's extended form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    /// Namespace the activation belongs to (the invoking namespace).
    pub namespace: String,
    /// The action's name.
    pub name: String,
    /// The action's version.
    pub version: String,
    /// Who invoked it.
    pub subject: String,
    /// Id.
    pub activation_id: ActivationId,
    /// The enclosing activation (sequence, trigger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// Start, epoch ms.
    pub start: u64,
    /// End, epoch ms; 0 for trigger activations.
    pub end: u64,
    /// Duration in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Outcome.
    pub response: ActivationResponse,
    /// Log lines.
    pub logs: Vec<String>,
    /// `path`, `kind`, `limits`, `timeout`, `waitTime`, `initTime`, …
    pub annotations: Parameters,
    /// Shared.
    pub publish: bool,
}

impl Activation {
    /// The extended JSON of `GET activations/{id}`: `end`/`duration` dropped when `end` is 0.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if self.end == 0 {
            if let Some(o) = v.as_object_mut() {
                o.remove("end");
                o.remove("duration");
            }
        } else if self.duration.is_none() {
            v["duration"] = json!(self.end.saturating_sub(self.start));
        }
        v
    }

    /// The list summary: no response, no logs, `statusCode` at top level.
    pub fn summary_json(&self) -> Value {
        let mut v = json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "activationId": self.activation_id,
            "start": self.start,
        });
        if let Some(c) = &self.cause {
            v["cause"] = json!(c);
        }
        if self.end != 0 {
            v["end"] = json!(self.end);
            v["duration"] = json!(self.duration.unwrap_or(self.end.saturating_sub(self.start)));
            v["statusCode"] = json!(self.response.status.code());
        }
        v
    }

    /// The `path` annotation (`ns/[pkg/]name`), used by the `name` filter.
    pub fn path(&self) -> Option<&str> {
        self.annotations.get("path").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Activation {
        Activation {
            namespace: "guest".into(),
            name: "hello".into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: ActivationId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            cause: None,
            start: 10,
            end: 15,
            duration: None,
            response: ActivationResponse::error(Status::ApplicationError, "boom"),
            logs: vec![],
            annotations: Parameters::default(),
            publish: false,
        }
    }

    #[test]
    fn extended_json_uses_status_strings_and_success() {
        let v = sample().to_json();
        assert_eq!(
            v["response"],
            json!({"result":{"error":"boom"},"success":false,"status":"application error"})
        );
        assert_eq!(v["duration"], json!(5));
        let back: Activation = serde_json::from_value(v).unwrap();
        assert_eq!(back.response.status, Status::ApplicationError);
    }

    #[test]
    fn summary_carries_status_code_and_drops_response() {
        let v = sample().summary_json();
        assert_eq!(v["statusCode"], json!(1));
        assert!(v.get("response").is_none() && v.get("logs").is_none());
    }

    #[test]
    fn trigger_style_record_drops_end_and_duration() {
        let mut a = sample();
        a.end = 0;
        let v = a.to_json();
        assert!(v.get("end").is_none() && v.get("duration").is_none());
        assert!(a.summary_json().get("statusCode").is_none());
    }

    #[test]
    fn activation_ids_are_32_hex() {
        assert_eq!(ActivationId::generate().as_str().len(), 32);
        assert!(ActivationId::parse(ActivationId::generate().as_str()).is_ok());
        assert!(ActivationId::parse("xyz").is_err());
        assert!(ActivationId::parse(&"g".repeat(32)).is_err());
    }

    #[test]
    fn response_serialises_as_its_result_json() {
        let mut with_size = ActivationResponse::success(json!({"a": [1, 2], "b": "x"}));
        with_size.size = Some(17);
        for r in [
            with_size,
            ActivationResponse::error(Status::DeveloperError, "boom"),
            ActivationResponse {
                status: Status::WhiskError,
                result: None,
                size: None,
            },
        ] {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                serde_json::to_string(&r.result_json()).unwrap()
            );
        }
    }

    #[test]
    fn activation_ids_are_unique_and_increase() {
        let ids: Vec<String> = (0..10_000)
            .map(|_| ActivationId::generate().as_str().to_owned())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not increasing");
    }
}
