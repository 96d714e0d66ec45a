//! Packages and package bindings: the PUT body (`PackagePut`), the stored entity (`Package`)
//! and the reference a binding holds (`Binding`), after OpenWhisk `WhiskPackage.scala`.
//!
//! On the wire a package without a binding carries `"binding": {}` in full documents and
//! `"binding": false` in list items; a binding carries `{"namespace", "name"}` in both.

use crate::names::FullyQualifiedEntityName;
use crate::params::Parameters;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

/// The package a binding refers to: `namespace` (never `_` once stored) and package `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Binding {
    /// The bound package's namespace.
    pub namespace: String,
    /// The bound package's name.
    pub name: String,
}

impl Binding {
    /// `namespace/name` without a leading slash.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The bound package as a fully qualified name.
    pub fn fully_qualified(&self) -> FullyQualifiedEntityName {
        FullyQualifiedEntityName::new(&self.namespace, None, &self.name)
    }

    /// The same binding with `_` replaced by `namespace`.
    pub fn resolve(&self, namespace: &str) -> Binding {
        Binding {
            namespace: if self.namespace == "_" {
                namespace.to_owned()
            } else {
                self.namespace.clone()
            },
            name: self.name.clone(),
        }
    }
}

/// Reads `binding` as OpenWhisk writes it: `{}`, `false` and `null` mean "no binding", an
/// object with `namespace` and `name` is a binding.
fn de_binding<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Binding>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Object(m) if m.is_empty() => Ok(None),
        v @ Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "binding must be an object with namespace and name, not {other}"
        ))),
    }
}

/// Writes `binding` as a full document does: `{}` when there is none.
fn ser_binding<S: Serializer>(b: &Option<Binding>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => b.serialize(s),
        None => json!({}).serialize(s),
    }
}

/// The body of `PUT packages/{name}`; every field may be omitted. `namespace` and `name` in
/// the body are ignored, as OpenWhisk ignores them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PackagePut {
    /// The package to bind to; `{}` or absent for a plain package.
    #[serde(deserialize_with = "de_binding")]
    pub binding: Option<Binding>,
    /// Replaces the parameters wholesale.
    pub parameters: Option<Parameters>,
    /// Explicit version; otherwise the patch number is bumped.
    pub version: Option<String>,
    /// Shared with other namespaces.
    pub publish: Option<bool>,
    /// Replaces the annotations (the `binding` annotation is always set by the server).
    pub annotations: Option<Parameters>,
}

/// A stored package or binding, serialised exactly as `GET packages/{name}` returns it before
/// the `actions` and `feeds` are added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The namespace the package lives in.
    pub namespace: String,
    /// The package's name.
    pub name: String,
    /// Semantic version, `0.0.1` on creation.
    pub version: String,
    /// Shared with other namespaces (only plain packages are ever shared).
    pub publish: bool,
    /// Default parameters of the package's actions.
    pub parameters: Parameters,
    /// Annotations; bindings carry `binding: {namespace, name}`.
    pub annotations: Parameters,
    /// The bound package, for a binding.
    #[serde(
        default,
        deserialize_with = "de_binding",
        serialize_with = "ser_binding"
    )]
    pub binding: Option<Binding>,
    /// Last update, epoch ms.
    pub updated: u64,
}

impl Package {
    /// True when this package is a binding.
    pub fn is_binding(&self) -> bool {
        self.binding.is_some()
    }

    /// True when other namespaces may read this package: published and not a binding.
    pub fn is_shared(&self) -> bool {
        self.publish && self.binding.is_none()
    }

    /// The path its actions are stored under: `namespace/name`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The full JSON (`binding` is `{}` for a plain package): the serialised form, as for the
    /// other entities.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The JSON of a list item: no parameters, `binding` is `false` or the bound package.
    pub fn summary_json(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "binding": self.binding.as_ref().map_or(Value::Bool(false), |b| json!(b)),
            "updated": self.updated,
        })
    }

    /// The `binding` annotation a binding carries: `{namespace, name}` of the bound package.
    pub fn binding_annotation(binding: &Binding) -> Value {
        json!({"namespace": binding.namespace, "name": binding.name})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Package {
        Package {
            namespace: "guest".into(),
            name: "utils".into(),
            version: "0.0.1".into(),
            publish: true,
            parameters: serde_json::from_value(json!([{"key": "a", "value": 1}])).unwrap(),
            annotations: Parameters::default(),
            binding: None,
            updated: 7,
        }
    }

    #[test]
    fn plain_package_serialises_binding_as_empty_object_and_false_in_lists() {
        let p = plain();
        assert_eq!(
            p.to_json(),
            json!({"namespace": "guest", "name": "utils", "version": "0.0.1", "publish": true,
                   "parameters": [{"key": "a", "value": 1}], "annotations": [],
                   "binding": {}, "updated": 7})
        );
        assert_eq!(serde_json::to_value(&p).unwrap(), p.to_json());
        let s = p.summary_json();
        assert_eq!(s["binding"], json!(false));
        assert!(s.get("parameters").is_none());
    }

    #[test]
    fn binding_serialises_its_target_in_full_and_list_forms() {
        let mut p = plain();
        p.binding = Some(Binding {
            namespace: "whisk.system".into(),
            name: "utils".into(),
        });
        let target = json!({"namespace": "whisk.system", "name": "utils"});
        assert_eq!(p.to_json()["binding"], target);
        assert_eq!(p.summary_json()["binding"], target);
        assert!(p.is_binding() && !p.is_shared());
        let back: Package = serde_json::from_value(p.to_json()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn stored_plain_package_reads_back_without_binding() {
        for binding in [json!({}), json!(false), json!(null)] {
            let mut v = plain().to_json();
            v["binding"] = binding;
            let p: Package = serde_json::from_value(v).unwrap();
            assert_eq!(p.binding, None);
        }
    }

    #[test]
    fn put_reads_binding_and_ignores_namespace_and_name() {
        let p: PackagePut = serde_json::from_value(json!({
            "namespace": "x", "name": "y",
            "binding": {"namespace": "_", "name": "utils"},
            "parameters": [{"key": "k", "value": "v"}], "publish": true
        }))
        .unwrap();
        let b = p.binding.unwrap();
        assert_eq!(b.resolve("guest").path(), "guest/utils");
        assert_eq!(p.publish, Some(true));
        let empty: PackagePut = serde_json::from_value(json!({"binding": {}})).unwrap();
        assert!(empty.binding.is_none());
        assert!(serde_json::from_value::<PackagePut>(json!({"binding": 3})).is_err());
        assert!(
            serde_json::from_value::<PackagePut>(json!({"binding": {"name": "only"}})).is_err()
        );
    }

    #[test]
    fn only_published_plain_packages_are_shared() {
        let mut p = plain();
        assert!(p.is_shared());
        p.publish = false;
        assert!(!p.is_shared());
        assert_eq!(p.path(), "guest/utils");
    }
}
