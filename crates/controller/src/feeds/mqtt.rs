//! The `mqtt/subscribe` feed: its parameters and the body a message fires with (the client
//! itself runs in `subscription`).
//!
//! Parameters: `url` (`mqtt://host[:port]`, also `tcp://`; port 1883 by default), `topic` (a
//! topic filter, wildcards allowed), optional `username`/`password` and `qos` (0, 1 or 2;
//! default 0). Each message fires the trigger with `{"topic", "payload"}`, the payload as a
//! (lossy UTF-8) string, plus `data` = the payload parsed when it is JSON. A lost connection
//! is retried with a backoff from 0.5 s doubling to 30 s; the subscription is renewed on every
//! connect.

use serde_json::{Map, Value};

/// A validated subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MqttSpec {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) topic: String,
    pub(crate) qos: u8,
    pub(crate) credentials: Option<(String, String)>,
}

/// Parses and validates the parameters of the `subscribe` feed.
pub(crate) fn parse(params: &Map<String, Value>) -> Result<MqttSpec, String> {
    let url = params
        .get("url")
        .and_then(Value::as_str)
        .ok_or("mqtt subscribe feed is missing the url parameter")?;
    let invalid = || format!("url parameter '{url}' must be mqtt://host[:port]");
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(invalid)?
        .trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| invalid())?),
        None => (rest, 1883),
    };
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(invalid());
    }
    let topic = params
        .get("topic")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("mqtt subscribe feed is missing the topic parameter")?;
    let qos = match params.get("qos") {
        None | Some(Value::Null) => 0,
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n @ 0..=2) => u8::try_from(n).map_err(|e| e.to_string())?,
            _ => return Err(format!("qos parameter '{v}' must be 0, 1 or 2")),
        },
    };
    let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
    let credentials = text("username").map(|u| (u, text("password").unwrap_or_default()));
    Ok(MqttSpec {
        host: host.to_owned(),
        port,
        topic: topic.to_owned(),
        qos,
        credentials,
    })
}

/// The fire body for one message.
pub(crate) fn message_body(topic: &str, payload: &[u8]) -> Map<String, Value> {
    let text = String::from_utf8_lossy(payload).into_owned();
    let mut body = Map::new();
    body.insert("topic".to_owned(), Value::String(topic.to_owned()));
    if let Ok(data) = serde_json::from_slice::<Value>(payload) {
        body.insert("data".to_owned(), data);
    }
    body.insert("payload".to_owned(), Value::String(text));
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn subscribe_parameters_name_a_broker_and_a_topic() {
        let s = parse(&params(
            json!({"url": "mqtt://127.0.0.1:1884", "topic": "a/#", "qos": 1}),
        ))
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.topic.as_str(), s.qos),
            ("127.0.0.1", 1884, "a/#", 1)
        );
        let d = parse(&params(
            json!({"url": "tcp://broker", "topic": "t", "username": "u"}),
        ))
        .unwrap();
        assert_eq!(d.port, 1883);
        assert_eq!(d.credentials, Some(("u".into(), String::new())));
    }

    #[test]
    fn bad_subscribe_parameters_are_refused() {
        for (p, msg) in [
            (json!({"topic": "t"}), "missing the url"),
            (json!({"url": "http://h", "topic": "t"}), "must be mqtt://"),
            (
                json!({"url": "mqtt://h:x", "topic": "t"}),
                "must be mqtt://",
            ),
            (json!({"url": "mqtt://h"}), "missing the topic"),
            (json!({"url": "mqtt://h", "topic": "t", "qos": 3}), "qos"),
        ] {
            let err = parse(&params(p.clone())).unwrap_err();
            assert!(err.contains(msg), "{p}: {err}");
        }
    }

    #[test]
    fn messages_fire_with_topic_payload_and_parsed_json_data() {
        let b = message_body("s/1", br#"{"t": 21.5}"#);
        assert_eq!(
            Value::Object(b),
            json!({"topic": "s/1", "payload": "{\"t\": 21.5}", "data": {"t": 21.5}})
        );
        let b = message_body("s/1", b"on");
        assert_eq!(Value::Object(b), json!({"topic": "s/1", "payload": "on"}));
    }
}
