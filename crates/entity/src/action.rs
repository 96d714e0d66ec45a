//! Actions: the PUT body (`ActionPut`) and the stored entity (`Action`), after OpenWhisk
//! `WhiskAction.scala`.

use crate::exec::{ActionExec, ExecPut};
use crate::limits::{ActionLimits, ActionLimitsPut};
use crate::params::Parameters;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The body of `PUT actions/{name}`; every field may be omitted. `namespace` and `name` in the
/// body are ignored, as OpenWhisk ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ActionPut {
    /// New code.
    pub exec: Option<ExecPut>,
    /// Replaces the parameters wholesale.
    pub parameters: Option<Parameters>,
    /// Merged field by field into the current limits.
    pub limits: Option<ActionLimitsPut>,
    /// Explicit version; otherwise the patch number is bumped.
    pub version: Option<String>,
    /// Shared with other namespaces.
    pub publish: Option<bool>,
    /// Merged into the current annotations (new keys win).
    pub annotations: Option<Parameters>,
    /// Annotation keys to remove before merging.
    pub del_annotations: Option<Vec<String>>,
}

/// A stored action, serialised exactly as `GET actions/{name}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `guest` or `guest/pkg`.
    pub namespace: String,
    /// The action's name.
    pub name: String,
    /// Semantic version, `0.0.1` on creation.
    pub version: String,
    /// Shared with other namespaces.
    pub publish: bool,
    /// What runs: code, or a sequence of other actions.
    pub exec: ActionExec,
    /// Default parameters.
    pub parameters: Parameters,
    /// Limits.
    pub limits: ActionLimits,
    /// Annotations, including `exec` (the concrete kind).
    pub annotations: Parameters,
    /// Last update, epoch ms.
    pub updated: u64,
}

impl Action {
    /// The JSON of a list item: no code, no parameters, `exec` reduced to `{"binary"}`.
    pub fn summary_json(&self) -> serde_json::Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "limits": self.limits,
            "exec": {"binary": self.exec.binary()},
            "updated": self.updated,
        })
    }

    /// Whether the action is a conductor (annotation `conductor` truthy), run by the
    /// controller as a composition.
    pub fn is_conductor(&self) -> bool {
        self.annotations.is_truthy("conductor")
    }

    /// The full JSON; without code when `with_code` is false.
    pub fn to_json(&self, with_code: bool) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if !with_code {
            if let Some(exec) = v.get_mut("exec").and_then(|e| e.as_object_mut()) {
                exec.remove("code");
            }
        }
        v
    }
}

/// Bumps the patch number of a `major.minor.patch` version; anything unparsable restarts at
/// `0.0.1`.
pub fn bump_version(v: &str) -> String {
    let parts: Vec<u64> = v.split('.').filter_map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [a, b, c] => format!("{a}.{b}.{}", c + 1),
        _ => "0.0.1".into(),
    }
}

/// True when `v` is a `major.minor.patch` version.
pub fn is_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.parse::<u64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_patch_version() {
        assert_eq!(bump_version("0.0.1"), "0.0.2");
        assert_eq!(bump_version("1.2.9"), "1.2.10");
        assert_eq!(bump_version("junk"), "0.0.1");
        assert!(is_version("1.0.0") && !is_version("1.0") && !is_version("a.b.c"));
    }

    #[test]
    fn put_ignores_namespace_and_name_and_reads_del_annotations() {
        let p: ActionPut = serde_json::from_str(
            r#"{"namespace":"x","name":"y","delAnnotations":["a"],"limits":{"memory":128}}"#,
        )
        .unwrap();
        assert_eq!(p.del_annotations, Some(vec!["a".to_string()]));
        assert_eq!(p.limits.unwrap().memory, Some(128));
    }

    fn stored(exec: serde_json::Value) -> Action {
        serde_json::from_value(json!({
            "namespace": "guest", "name": "s", "version": "0.0.1", "publish": false,
            "exec": exec, "parameters": [],
            "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
            "annotations": [{"key": "conductor", "value": true}], "updated": 1
        }))
        .unwrap()
    }

    #[test]
    fn a_stored_sequence_round_trips_and_lists_as_not_binary() {
        let a = stored(json!({"kind": "sequence", "components": ["/guest/a"]}));
        assert_eq!(
            a.to_json(false)["exec"],
            json!({"kind": "sequence", "components": ["/guest/a"]})
        );
        assert_eq!(a.summary_json()["exec"], json!({"binary": false}));
        assert!(a.is_conductor());
        let back: Action = serde_json::from_value(a.to_json(true)).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_stored_code_action_keeps_its_exact_json() {
        let exec = json!({"kind": "nodejs:20", "code": "x", "binary": false});
        let a = stored(exec.clone());
        assert_eq!(a.to_json(true)["exec"], exec);
        assert_eq!(
            a.to_json(false)["exec"],
            json!({"kind": "nodejs:20", "binary": false})
        );
    }
}
