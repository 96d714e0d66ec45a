//! Exec kinds and the runtime manifest (OpenWhisk `Exec.scala`, `ExecManifest.scala`).

use serde::{Deserialize, Serialize};

/// What an action runs: code for a managed runtime. Stored and returned as
/// `{"kind","code","binary","main"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// A concrete kind from the manifest, e.g. `nodejs:20`.
    pub kind: String,
    /// Source text, or base64 of a zip archive when `binary`.
    pub code: String,
    /// Whether `code` is base64 (computed by the server, never trusted from clients).
    pub binary: bool,
    /// The entry point, when not `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// The image of a `blackbox` exec (`openwhisk/dockerskeleton` for native executables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The kind of a sequence's exec.
pub const SEQUENCE_KIND: &str = "sequence";

/// A sequence's exec: the fully qualified components (`/ns/[pkg/]name`), run in order.
/// Stored and returned as `{"kind":"sequence","components":[..]}` (no `binary`, as OpenWhisk
/// writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceExec {
    /// Components, each `/namespace/[package/]name`.
    pub components: Vec<String>,
}

/// What a stored action runs: code for a managed runtime, or a sequence of other actions.
///
/// The code form serialises exactly as [`Exec`]; the sequence form as
/// `{"kind":"sequence","components":[..]}`. Reading tells them apart by `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionExec {
    /// Code run by a runtime.
    Code(Exec),
    /// A sequence run by the controller.
    Sequence(SequenceExec),
}

impl ActionExec {
    /// The concrete kind (`nodejs:20`, `sequence`).
    pub fn kind(&self) -> &str {
        match self {
            ActionExec::Code(e) => &e.kind,
            ActionExec::Sequence(_) => SEQUENCE_KIND,
        }
    }

    /// Whether the code is base64 (always false for sequences).
    pub fn binary(&self) -> bool {
        match self {
            ActionExec::Code(e) => e.binary,
            ActionExec::Sequence(_) => false,
        }
    }

    /// The code exec, if this is one.
    pub fn as_code(&self) -> Option<&Exec> {
        match self {
            ActionExec::Code(e) => Some(e),
            ActionExec::Sequence(_) => None,
        }
    }

    /// The components, if this is a sequence.
    pub fn components(&self) -> Option<&[String]> {
        match self {
            ActionExec::Code(_) => None,
            ActionExec::Sequence(s) => Some(&s.components),
        }
    }
}

impl From<Exec> for ActionExec {
    fn from(e: Exec) -> Self {
        ActionExec::Code(e)
    }
}

impl Serialize for ActionExec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            ActionExec::Code(e) => e.serialize(s),
            ActionExec::Sequence(seq) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("kind", SEQUENCE_KIND)?;
                m.serialize_entry("components", &seq.components)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ActionExec {
    /// One pass over the fields (no buffering of the code), then the form is chosen by `kind`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            kind: String,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            binary: Option<bool>,
            #[serde(default)]
            main: Option<String>,
            #[serde(default)]
            image: Option<String>,
            #[serde(default)]
            components: Option<Vec<String>>,
        }
        let w = Wire::deserialize(d)?;
        if w.kind == SEQUENCE_KIND {
            let components = w
                .components
                .ok_or_else(|| serde::de::Error::missing_field("components"))?;
            return Ok(ActionExec::Sequence(SequenceExec { components }));
        }
        Ok(ActionExec::Code(Exec {
            kind: w.kind,
            code: w
                .code
                .ok_or_else(|| serde::de::Error::missing_field("code"))?,
            binary: w
                .binary
                .ok_or_else(|| serde::de::Error::missing_field("binary"))?,
            main: w.main,
            image: w.image,
        }))
    }
}

/// The `exec` of a PUT body, before the kind is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ExecPut {
    /// Kind as sent, possibly `nodejs:default`.
    pub kind: String,
    /// Source or base64 archive.
    #[serde(default)]
    pub code: Option<String>,
    /// Ignored: recomputed from the code.
    #[serde(default)]
    pub binary: Option<serde_json::Value>,
    /// Entry point.
    #[serde(default)]
    pub main: Option<String>,
    /// Blackbox image: `openwhisk/dockerskeleton` (any tag) runs a native executable.
    #[serde(default)]
    pub image: Option<String>,
    /// Sequence components, as sent (names; resolved by the controller).
    #[serde(default)]
    pub components: Option<Vec<serde_json::Value>>,
}

impl ExecPut {
    /// Whether this asks for a sequence (`kind` is `sequence`, in any case).
    pub fn is_sequence(&self) -> bool {
        self.kind.eq_ignore_ascii_case(SEQUENCE_KIND)
    }
}

/// Why an exec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The kind is not in the manifest; the text is OpenWhisk's message.
    #[error(
        "The specified runtime '{kind}' is not supported by this platform. Valid values are: {valid}."
    )]
    UnsupportedKind {
        /// The kind sent.
        kind: String,
        /// Comma-separated list of valid kinds.
        valid: String,
    },
    /// Code kinds need code.
    #[error("exec malformed: code is required for kind '{0}'")]
    MissingCode(String),
    /// A `blackbox` exec without an image.
    #[error("exec malformed: an image is required for kind 'blackbox'")]
    MissingImage,
    /// A blackbox image other than the skeleton: this platform runs no container images.
    #[error(
        "The image '{0}' cannot run here: this platform pulls no container images. A native executable runs with the image 'openwhisk/dockerskeleton' (wsk action create --native) from a zip holding an 'exec' file, or a script."
    )]
    UnsupportedImage(String),
}

/// Which runner executes a kind's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerType {
    /// `runtimes/nodejs/runner.js` under a Node.js interpreter.
    Nodejs,
    /// `runtimes/python/runner.py` under a Python 3 interpreter.
    Python,
    /// A native executable (`exec`) behind edgewhisk's native runner: OpenWhisk's action loop
    /// (`go:*`) or docker skeleton (`blackbox`).
    Native,
    /// A WebAssembly module run in-process.
    Wasm,
}

impl RunnerType {
    /// The runner of a kind family: `nodejs`, `python`, `go`, `blackbox`, `wasm`; `None` for a
    /// family no runner serves.
    pub fn for_family(family: &str) -> Option<Self> {
        match family {
            "nodejs" => Some(Self::Nodejs),
            "python" => Some(Self::Python),
            "go" | "blackbox" => Some(Self::Native),
            "wasm" => Some(Self::Wasm),
            _ => None,
        }
    }

    /// Whether the runner starts an interpreter, which must then be installed.
    pub fn needs_interpreter(self) -> bool {
        matches!(self, Self::Nodejs | Self::Python)
    }
}

/// The kind of a native executable in a docker skeleton (`wsk action create --native`).
pub const BLACKBOX_KIND: &str = "blackbox";

/// The one blackbox image this platform runs: OpenWhisk's skeleton for native executables,
/// which `wsk action create --native` names.
pub const SKELETON_IMAGE: &str = "openwhisk/dockerskeleton";

/// One runtime of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Concrete kind, e.g. `nodejs:20`.
    pub kind: String,
    /// Family, e.g. `nodejs`.
    pub family: String,
    /// The family's default.
    pub default: bool,
    /// The runner that executes it.
    pub runner: RunnerType,
    /// The interpreter the runner starts (Node.js, Python); empty for native and Wasm kinds.
    #[serde(skip)]
    pub executable: std::path::PathBuf,
    /// The interpreter's own version (`20.20.2`, `3.11.2`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Runtime {
    /// A kind of `runner` started with `executable` (empty for native and Wasm kinds); the
    /// family is the kind up to its colon.
    pub fn new(
        kind: &str,
        runner: RunnerType,
        executable: impl Into<std::path::PathBuf>,
        default: bool,
    ) -> Self {
        Self {
            kind: kind.to_ascii_lowercase(),
            family: family_of(kind).to_ascii_lowercase(),
            default,
            runner,
            executable: executable.into(),
            version: None,
        }
    }
}

/// The family of a kind: the part before its colon (`nodejs` of `nodejs:20`).
pub fn family_of(kind: &str) -> &str {
    kind.split(':').next().unwrap_or(kind)
}

/// The kinds this platform runs: what is installed on this machine (see the server's runtime
/// discovery), or a small fixed manifest for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeManifest {
    /// All runtimes, in display order.
    pub runtimes: Vec<Runtime>,
}

impl Default for RuntimeManifest {
    /// `nodejs:20` (`node`) and `python:3` (`python3`), both defaults of their family.
    fn default() -> Self {
        Self {
            runtimes: vec![
                Runtime::new("nodejs:20", RunnerType::Nodejs, "node", true),
                Runtime::new("python:3", RunnerType::Python, "python3", true),
            ],
        }
    }
}

impl RuntimeManifest {
    /// The runtime of a concrete kind (no `:default` resolution; kinds are stored lowercased).
    pub fn get(&self, kind: &str) -> Option<&Runtime> {
        self.runtimes.iter().find(|r| r.kind == kind)
    }

    /// Resolves `family:default` and checks the kind exists; kinds are lowercased.
    pub fn resolve(&self, kind: &str) -> Result<&Runtime, ExecError> {
        let kind = kind.to_ascii_lowercase();
        let found = match kind.strip_suffix(":default") {
            Some(family) => self
                .runtimes
                .iter()
                .find(|r| r.family == family && r.default),
            None => self.runtimes.iter().find(|r| r.kind == kind),
        };
        found.ok_or_else(|| ExecError::UnsupportedKind {
            kind,
            valid: self.valid_kinds(),
        })
    }

    fn valid_kinds(&self) -> String {
        let mut v: Vec<String> = self.runtimes.iter().map(|r| r.kind.clone()).collect();
        for r in self.runtimes.iter().filter(|r| r.default) {
            v.push(format!("{}:default", r.family));
        }
        v.join(", ")
    }

    /// Turns a PUT exec into a stored exec: resolves the kind and computes `binary`. A
    /// `blackbox` exec needs code and OpenWhisk's skeleton image: this platform pulls no
    /// images.
    pub fn exec_from_put(&self, put: &ExecPut) -> Result<Exec, ExecError> {
        let rt = self.resolve(&put.kind)?;
        let image = if rt.kind == BLACKBOX_KIND {
            let image = put.image.as_deref().unwrap_or_default().trim();
            if image.is_empty() {
                return Err(ExecError::MissingImage);
            }
            if !is_skeleton_image(image) {
                return Err(ExecError::UnsupportedImage(image.to_owned()));
            }
            Some(image.to_owned())
        } else {
            None
        };
        let code = match &put.code {
            Some(c) if !c.is_empty() => c.clone(),
            _ => return Err(ExecError::MissingCode(rt.kind.clone())),
        };
        Ok(Exec {
            kind: rt.kind.clone(),
            binary: is_binary_code(&code),
            code,
            main: put.main.clone().filter(|m| !m.is_empty()),
            image,
        })
    }
}

/// Whether `image` is OpenWhisk's skeleton for native executables, with or without a tag or
/// the `docker.io/` registry prefix.
pub fn is_skeleton_image(image: &str) -> bool {
    let name = image.strip_prefix("docker.io/").unwrap_or(image);
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    name == SKELETON_IMAGE
}

/// OpenWhisk's test: code is binary iff, trimmed, it is non-empty, its length is a multiple
/// of 4 and it is made of the base64 alphabet with optional `=` padding at the end.
pub fn is_binary_code(code: &str) -> bool {
    let t = code.trim();
    if t.is_empty() || t.len() % 4 != 0 {
        return false;
    }
    let body = t.trim_end_matches('=');
    t.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_default_kinds_and_lowercases() {
        let m = RuntimeManifest::default();
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:20");
        assert_eq!(m.resolve("NodeJS:20").unwrap().kind, "nodejs:20");
        assert_eq!(m.resolve("python:default").unwrap().kind, "python:3");
    }

    #[test]
    fn unknown_kind_lists_valid_values() {
        let err = RuntimeManifest::default().resolve("cobol:1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "The specified runtime 'cobol:1' is not supported by this platform. Valid values are: nodejs:20, python:3, nodejs:default, python:default."
        );
    }

    fn manifest_with_blackbox() -> RuntimeManifest {
        let mut m = RuntimeManifest::default();
        m.runtimes
            .push(Runtime::new(BLACKBOX_KIND, RunnerType::Native, "", false));
        m
    }

    #[test]
    fn blackbox_needs_code_and_the_skeleton_image() {
        let m = manifest_with_blackbox();
        let put = |image: Option<&str>, code: Option<&str>| ExecPut {
            kind: "blackbox".into(),
            image: image.map(str::to_owned),
            code: code.map(str::to_owned),
            ..ExecPut::default()
        };
        let e = m
            .exec_from_put(&put(
                Some("openwhisk/dockerskeleton:1.3.2"),
                Some("UEsDBA=="),
            ))
            .unwrap();
        assert_eq!(e.image.as_deref(), Some("openwhisk/dockerskeleton:1.3.2"));
        assert!(e.binary);
        let text = serde_json::to_string(&ActionExec::Code(e)).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"blackbox","code":"UEsDBA==","binary":true,"image":"openwhisk/dockerskeleton:1.3.2"}"#
        );
        let back: ActionExec = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.as_code().unwrap().image.as_deref(),
            Some("openwhisk/dockerskeleton:1.3.2")
        );
        assert!(
            m.exec_from_put(&put(
                Some("docker.io/openwhisk/dockerskeleton"),
                Some("#!/bin/sh")
            ))
            .is_ok()
        );
        assert_eq!(
            m.exec_from_put(&put(None, Some("x"))),
            Err(ExecError::MissingImage)
        );
        assert_eq!(
            m.exec_from_put(&put(Some("someone/image"), Some("x"))),
            Err(ExecError::UnsupportedImage("someone/image".into()))
        );
        assert_eq!(
            m.exec_from_put(&put(Some("openwhisk/dockerskeleton"), None)),
            Err(ExecError::MissingCode("blackbox".into()))
        );
    }

    #[test]
    fn runners_follow_the_family() {
        assert_eq!(RunnerType::for_family("go"), Some(RunnerType::Native));
        assert_eq!(RunnerType::for_family("wasm"), Some(RunnerType::Wasm));
        assert_eq!(RunnerType::for_family("swift"), None);
        assert!(!RunnerType::Native.needs_interpreter());
        assert_eq!(family_of("python:3.11"), "python");
    }

    #[test]
    fn binary_detection_matches_openwhisk() {
        assert!(is_binary_code("UEsDBA=="));
        assert!(is_binary_code(" abcd "));
        assert!(!is_binary_code("function main() {}"));
        assert!(!is_binary_code("abc"));
        assert!(!is_binary_code(""));
        assert!(!is_binary_code("ab=c"));
    }

    #[test]
    fn code_exec_json_is_unchanged_by_the_action_exec_wrapper() {
        let text = r#"{"kind":"nodejs:20","code":"function main(){}","binary":false,"main":"go"}"#;
        let e: ActionExec = serde_json::from_str(text).unwrap();
        assert_eq!(e.kind(), "nodejs:20");
        assert_eq!(e.as_code().unwrap().main.as_deref(), Some("go"));
        assert_eq!(serde_json::to_string(&e).unwrap(), text);
        let plain: Exec = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            serde_json::to_string(&e).unwrap()
        );
    }

    #[test]
    fn sequence_exec_reads_and_writes_openwhisk_json() {
        let text = r#"{"kind":"sequence","components":["/guest/a","/guest/pkg/b"]}"#;
        let e: ActionExec = serde_json::from_str(text).unwrap();
        assert_eq!(e.kind(), "sequence");
        assert!(!e.binary());
        assert_eq!(e.components().unwrap(), ["/guest/a", "/guest/pkg/b"]);
        assert!(e.as_code().is_none());
        assert_eq!(serde_json::to_string(&e).unwrap(), text);
    }

    #[test]
    fn malformed_execs_are_refused() {
        for bad in [
            r#"{"kind":"sequence"}"#,
            r#"{"kind":"nodejs:20","binary":false}"#,
            r#"{"kind":"nodejs:20","code":"x"}"#,
            r#"{"code":"x","binary":false}"#,
        ] {
            assert!(serde_json::from_str::<ActionExec>(bad).is_err(), "{bad}");
        }
        let put: ExecPut =
            serde_json::from_str(r#"{"kind":"Sequence","components":["a"]}"#).unwrap();
        assert!(put.is_sequence());
    }
}
