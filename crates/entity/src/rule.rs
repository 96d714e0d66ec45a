//! Rules: the PUT body (`RulePut`) and the stored entity (`Rule`), after OpenWhisk
//! `WhiskRule.scala`.
//!
//! A rule links a trigger to an action. Its status is not part of the stored rule: it lives in
//! the trigger's `rules` map ([`crate::trigger::Trigger`]), and `GET rules/{name}` adds it.

use crate::names::{FullyQualifiedEntityName, NameError, validate_name};
use crate::params::Parameters;
use crate::trigger::RuleStatus;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Parses an entity path as clients write it: `/ns/name`, `/ns/pkg/name`, or the same without
/// the leading slash. A single segment is not a path. Each segment must be a valid name (`_`
/// stands for the caller's namespace and is resolved later).
pub fn parse_entity_path(s: &str) -> Result<FullyQualifiedEntityName, NameError> {
    let trimmed = s.strip_prefix('/').unwrap_or(s);
    let segments: Vec<&str> = trimmed.split('/').collect();
    for seg in &segments {
        validate_name("name", seg)?;
    }
    match segments.as_slice() {
        [ns, name] => Ok(FullyQualifiedEntityName::new(ns, None, name)),
        [ns, pkg, name] => Ok(FullyQualifiedEntityName::new(ns, Some(pkg), name)),
        _ => Err(NameError::IllegalCharacters),
    }
}

/// `name` with a leading `_` namespace replaced by `namespace`.
pub fn resolve_entity(
    name: &FullyQualifiedEntityName,
    namespace: &str,
) -> FullyQualifiedEntityName {
    let path = match name.path.split_once('/') {
        Some(("_", rest)) => format!("{namespace}/{rest}"),
        None if name.path == "_" => namespace.to_owned(),
        _ => name.path.clone(),
    };
    FullyQualifiedEntityName {
        path,
        name: name.name.clone(),
    }
}

/// Reads a trigger or action reference of a rule PUT: a string path (a bare name means the
/// caller's namespace, `_`), or `{path, name}`; `null` counts as absent.
fn de_entity_ref<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<FullyQualifiedEntityName>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if !s.trim_start_matches('/').contains('/') => {
            let name = s.trim_start_matches('/');
            validate_name("name", name).map_err(D::Error::custom)?;
            Ok(Some(FullyQualifiedEntityName::new("_", None, name)))
        }
        Value::String(s) => parse_entity_path(&s).map(Some).map_err(D::Error::custom),
        v @ Value::Object(_) => {
            let fq: FullyQualifiedEntityName =
                serde_json::from_value(v).map_err(D::Error::custom)?;
            let joined = format!("{}/{}", fq.path, fq.name);
            parse_entity_path(&joined)
                .map(Some)
                .map_err(D::Error::custom)
        }
        other => Err(D::Error::custom(format!(
            "an entity name must be a string or {{path, name}}, not {other}"
        ))),
    }
}

/// The body of `PUT rules/{name}`; every field may be omitted. Clients also send `name`,
/// `status` (`""`) and `namespace`, which are ignored, as OpenWhisk ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RulePut {
    /// The trigger, possibly with namespace `_`.
    #[serde(deserialize_with = "de_entity_ref")]
    pub trigger: Option<FullyQualifiedEntityName>,
    /// The action, possibly with namespace `_`.
    #[serde(deserialize_with = "de_entity_ref")]
    pub action: Option<FullyQualifiedEntityName>,
    /// Explicit version; otherwise the patch number is bumped.
    pub version: Option<String>,
    /// Shared with other namespaces.
    pub publish: Option<bool>,
    /// Replaces the annotations wholesale.
    pub annotations: Option<Parameters>,
}

/// A stored rule, serialised as `GET rules` lists it (without `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The namespace the rule lives in.
    pub namespace: String,
    /// The rule's name.
    pub name: String,
    /// Semantic version, `0.0.1` on creation.
    pub version: String,
    /// Shared with other namespaces.
    pub publish: bool,
    /// The trigger it listens to, `{path, name}`.
    pub trigger: FullyQualifiedEntityName,
    /// The action it runs, `{path, name}`.
    pub action: FullyQualifiedEntityName,
    /// Annotations.
    pub annotations: Parameters,
    /// Last update, epoch ms.
    pub updated: u64,
}

impl Rule {
    /// `namespace/name`: the rule's key in its trigger's `rules` map.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The JSON without `status` (list items and stored documents).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The JSON of `GET`/`PUT`/`DELETE rules/{name}`: with `status`.
    pub fn with_status(&self, status: RuleStatus) -> Value {
        let mut v = self.to_json();
        v["status"] = Value::String(status.as_str().to_owned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(v: Value) -> RulePut {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn put_reads_qualified_strings_and_ignores_cli_extras() {
        let p = put(json!({
            "name": "r", "status": "", "trigger": "/_/t", "action": "/_/pkg/a",
            "publish": false
        }));
        let t = p.trigger.unwrap();
        assert_eq!((t.path.as_str(), t.name.as_str()), ("_", "t"));
        let a = resolve_entity(&p.action.unwrap(), "guest");
        assert_eq!(a.path_string(), "guest/pkg/a");
    }

    #[test]
    fn put_reads_object_and_bare_references() {
        let p = put(json!({"trigger": {"path": "guest", "name": "t"}, "action": "a"}));
        assert_eq!(p.trigger.unwrap().path_string(), "guest/t");
        let a = p.action.unwrap();
        assert_eq!(resolve_entity(&a, "guest").path_string(), "guest/a");
        let none = put(json!({"trigger": null, "action": null}));
        assert!(none.trigger.is_none() && none.action.is_none());
    }

    #[test]
    fn put_refuses_malformed_references() {
        for bad in [
            json!({"trigger": "/a/b/c/d"}),
            json!({"trigger": "/a/$"}),
            json!({"action": 5}),
            json!({"action": {"path": "guest"}}),
        ] {
            assert!(
                serde_json::from_value::<RulePut>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn entity_paths_need_a_namespace_and_a_name() {
        assert_eq!(
            parse_entity_path("/whisk.system/alarms/alarm")
                .unwrap()
                .path_string(),
            "whisk.system/alarms/alarm"
        );
        assert_eq!(
            parse_entity_path("guest/a").unwrap().path_string(),
            "guest/a"
        );
        for bad in ["alarm", "/alarm", "", "/a/b/c/d", "/a//b"] {
            assert!(parse_entity_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rule_json_has_status_only_when_asked() {
        let r = Rule {
            namespace: "guest".into(),
            name: "r".into(),
            version: "0.0.1".into(),
            publish: false,
            trigger: FullyQualifiedEntityName::new("guest", None, "t"),
            action: FullyQualifiedEntityName::new("guest", None, "a"),
            annotations: Parameters::default(),
            updated: 3,
        };
        assert_eq!(
            r.with_status(RuleStatus::Active),
            json!({"namespace": "guest", "name": "r", "version": "0.0.1", "publish": false,
                   "trigger": {"path": "guest", "name": "t"},
                   "action": {"path": "guest", "name": "a"},
                   "annotations": [], "updated": 3, "status": "active"})
        );
        assert!(r.to_json().get("status").is_none());
        assert_eq!(r.key(), "guest/r");
        let back: Rule = serde_json::from_value(r.with_status(RuleStatus::Inactive)).unwrap();
        assert_eq!(back, r);
    }
}
