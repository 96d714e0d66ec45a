//! Parameters and annotations: arrays of `{"key", "value"}` (OpenWhisk `Parameter.scala`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One key/value pair. `init: true` marks a parameter passed at `/init` as environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
    /// Passed to the runtime at `/init` rather than `/run`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
}

/// An ordered list of key/value pairs, as parameters and annotations are on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Parameters(pub Vec<KeyValue>);

impl Parameters {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    /// Sets `key` to `value`, replacing an existing entry in place.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.0.push(KeyValue {
                key: key.to_owned(),
                value,
                init: false,
            }),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|kv| kv.key != key);
    }

    /// `self` overlaid with `other`: keys of `other` win, order of first appearance kept.
    pub fn merge(&self, other: &Parameters) -> Parameters {
        let mut out = self.clone();
        for kv in &other.0 {
            match out.0.iter_mut().find(|o| o.key == kv.key) {
                Some(o) => *o = kv.clone(),
                None => out.0.push(kv.clone()),
            }
        }
        out
    }

    /// True when `key` is set to a truthy JSON value (OpenWhisk's annotation test).
    pub fn is_truthy(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.is_empty() && s != "false",
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::Null) | None => false,
            Some(_) => true,
        }
    }

    /// The non-init parameters as a JSON object (the defaults of `/run` arguments).
    pub fn run_object(&self) -> Map<String, Value> {
        self.0
            .iter()
            .filter(|kv| !kv.init)
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_lets_later_keys_win_and_keeps_order() {
        let a: Parameters =
            serde_json::from_value(json!([{"key":"x","value":1},{"key":"y","value":2}])).unwrap();
        let b: Parameters =
            serde_json::from_value(json!([{"key":"y","value":3},{"key":"z","value":4}])).unwrap();
        let m = a.merge(&b);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!([{"key":"x","value":1},{"key":"y","value":3},{"key":"z","value":4}])
        );
    }

    #[test]
    fn truthiness_follows_openwhisk() {
        let p: Parameters = serde_json::from_value(json!([
            {"key":"t","value":true},{"key":"f","value":false},{"key":"s","value":"yes"},
            {"key":"e","value":""},{"key":"n","value":0}
        ]))
        .unwrap();
        assert!(p.is_truthy("t") && p.is_truthy("s"));
        assert!(
            !p.is_truthy("f") && !p.is_truthy("e") && !p.is_truthy("n") && !p.is_truthy("missing")
        );
    }

    #[test]
    fn init_flag_round_trips_and_is_omitted_when_false() {
        let p: Parameters = serde_json::from_value(
            json!([{"key":"a","value":1,"init":true},{"key":"b","value":2}]),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"key":"a","value":1,"init":true},{"key":"b","value":2}])
        );
        assert_eq!(Value::Object(p.run_object()), json!({"b":2}));
    }
}
