//! Triggers: the PUT body (`TriggerPut`), the stored entity (`Trigger`) and the rules linked to
//! it (`ReducedRule`, `RuleStatus`), after OpenWhisk `WhiskTrigger.scala`.
//!
//! A rule's status lives in the trigger document, not in the rule: the trigger carries a map
//! `rules` from `namespace/rule` to the rule's action and status, and firing the trigger reads
//! only that map. The map is absent from the JSON of a trigger that never had a rule.

use crate::names::FullyQualifiedEntityName;
use crate::params::Parameters;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// Whether a rule fires its action when its trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// The action runs on every fire.
    Active,
    /// The rule is linked but does nothing.
    Inactive,
}

impl RuleStatus {
    /// `active` or `inactive`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Active => "active",
            RuleStatus::Inactive => "inactive",
        }
    }

    /// Reads `active` / `inactive`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(RuleStatus::Active),
            "inactive" => Some(RuleStatus::Inactive),
            _ => None,
        }
    }
}

impl fmt::Display for RuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule as its trigger sees it: the action to run and whether to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducedRule {
    /// The action (or sequence) the rule runs, `{path, name}`.
    pub action: FullyQualifiedEntityName,
    /// Whether it runs.
    pub status: RuleStatus,
}

/// Trigger limits: OpenWhisk defines none, so this is always `{}` (fields sent are ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerLimits {}

/// The body of `PUT triggers/{name}`; every field may be omitted. `namespace`, `name` and
/// `rules` in the body are ignored, as OpenWhisk ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TriggerPut {
    /// Replaces the parameters wholesale.
    pub parameters: Option<Parameters>,
    /// Replaces the limits (always `{}`).
    pub limits: Option<TriggerLimits>,
    /// Explicit version; otherwise the patch number is bumped.
    pub version: Option<String>,
    /// Shared with other namespaces.
    pub publish: Option<bool>,
    /// Replaces the annotations wholesale (a feed trigger carries `feed`).
    pub annotations: Option<Parameters>,
}

/// A stored trigger, serialised exactly as `GET triggers/{name}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The namespace the trigger lives in.
    pub namespace: String,
    /// The trigger's name.
    pub name: String,
    /// Semantic version, `0.0.1` on creation.
    pub version: String,
    /// Shared with other namespaces.
    pub publish: bool,
    /// Default arguments of every fire.
    pub parameters: Parameters,
    /// Always `{}`.
    #[serde(default)]
    pub limits: TriggerLimits,
    /// Annotations (`feed` for feed triggers).
    pub annotations: Parameters,
    /// Linked rules by `namespace/rule`; absent until a rule was first linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<BTreeMap<String, ReducedRule>>,
    /// Last update, epoch ms.
    pub updated: u64,
}

impl Trigger {
    /// The full JSON, `rules` included when present.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The JSON of a list item: no parameters, limits or rules.
    pub fn summary_json(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
        })
    }

    /// The rules whose status is active, in map order.
    pub fn active_rules(&self) -> impl Iterator<Item = (&String, &ReducedRule)> {
        self.rules
            .iter()
            .flatten()
            .filter(|(_, r)| r.status == RuleStatus::Active)
    }

    /// The status the trigger records for rule `key` (`namespace/rule`), if linked.
    pub fn rule_status(&self, key: &str) -> Option<RuleStatus> {
        self.rules.as_ref()?.get(key).map(|r| r.status)
    }

    /// Links rule `key` to `action` with `status`, replacing an earlier link.
    pub fn link_rule(&mut self, key: &str, action: FullyQualifiedEntityName, status: RuleStatus) {
        self.rules
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), ReducedRule { action, status });
    }

    /// Unlinks rule `key`; the map stays (possibly empty) once it existed, as in OpenWhisk.
    pub fn unlink_rule(&mut self, key: &str) -> Option<ReducedRule> {
        self.rules.as_mut()?.remove(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> Trigger {
        Trigger {
            namespace: "guest".into(),
            name: "t".into(),
            version: "0.0.1".into(),
            publish: false,
            parameters: serde_json::from_value(json!([{"key": "a", "value": 1}])).unwrap(),
            limits: TriggerLimits::default(),
            annotations: Parameters::default(),
            rules: None,
            updated: 9,
        }
    }

    #[test]
    fn trigger_without_rules_has_empty_limits_and_no_rules_key() {
        let v = trigger().to_json();
        assert_eq!(
            v,
            json!({"namespace": "guest", "name": "t", "version": "0.0.1", "publish": false,
                   "parameters": [{"key": "a", "value": 1}], "limits": {}, "annotations": [],
                   "updated": 9})
        );
        let s = trigger().summary_json();
        assert!(s.get("parameters").is_none() && s.get("rules").is_none());
        assert_eq!(s["updated"], json!(9));
    }

    #[test]
    fn linked_rules_serialise_as_openwhisk_map_and_read_back() {
        let mut t = trigger();
        t.link_rule(
            "guest/r1",
            FullyQualifiedEntityName::new("guest", None, "a"),
            RuleStatus::Active,
        );
        t.link_rule(
            "guest/r2",
            FullyQualifiedEntityName::new("guest", Some("pkg"), "b"),
            RuleStatus::Inactive,
        );
        let v = t.to_json();
        assert_eq!(
            v["rules"],
            json!({
                "guest/r1": {"action": {"path": "guest", "name": "a"}, "status": "active"},
                "guest/r2": {"action": {"path": "guest/pkg", "name": "b"}, "status": "inactive"}
            })
        );
        let back: Trigger = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
        let active: Vec<&String> = back.active_rules().map(|(k, _)| k).collect();
        assert_eq!(active, ["guest/r1"]);
        assert_eq!(back.rule_status("guest/r2"), Some(RuleStatus::Inactive));
        assert_eq!(back.rule_status("guest/none"), None);
    }

    #[test]
    fn unlinking_the_last_rule_keeps_an_empty_map() {
        let mut t = trigger();
        assert!(t.unlink_rule("guest/r").is_none());
        t.link_rule(
            "guest/r",
            FullyQualifiedEntityName::new("guest", None, "a"),
            RuleStatus::Active,
        );
        assert!(t.unlink_rule("guest/r").is_some());
        assert_eq!(t.to_json()["rules"], json!({}));
        assert_eq!(t.active_rules().count(), 0);
    }

    #[test]
    fn put_ignores_unknown_fields_and_limits_contents() {
        let p: TriggerPut = serde_json::from_value(json!({
            "name": "x", "namespace": "y", "rules": {"a": 1},
            "limits": {"timeout": 5}, "publish": true,
            "annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}]
        }))
        .unwrap();
        assert_eq!(p.limits, Some(TriggerLimits {}));
        assert_eq!(p.publish, Some(true));
        assert!(p.parameters.is_none());
        assert_eq!(
            p.annotations.unwrap().get("feed"),
            Some(&json!("/whisk.system/alarms/alarm"))
        );
    }

    #[test]
    fn rule_status_reads_only_active_and_inactive() {
        assert_eq!(RuleStatus::parse("active"), Some(RuleStatus::Active));
        assert_eq!(RuleStatus::parse("inactive"), Some(RuleStatus::Inactive));
        assert_eq!(RuleStatus::parse("Active"), None);
        assert_eq!(RuleStatus::parse(""), None);
        assert_eq!(RuleStatus::Inactive.to_string(), "inactive");
    }
}
