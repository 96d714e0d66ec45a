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
    /// Blackbox image (not served by this platform yet).
    #[serde(default)]
    pub image: Option<String>,
    /// Sequence components (not served by this platform yet).
    #[serde(default)]
    pub components: Option<Vec<serde_json::Value>>,
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
}

/// One runtime of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Concrete kind, e.g. `nodejs:20`.
    pub kind: String,
    /// Family, e.g. `nodejs`.
    pub family: String,
    /// The family's default.
    pub default: bool,
}

/// The kinds this platform runs. A lean build ships a small manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeManifest {
    /// All runtimes, in display order.
    pub runtimes: Vec<Runtime>,
}

impl Default for RuntimeManifest {
    fn default() -> Self {
        let rt = |kind: &str, family: &str, default: bool| Runtime {
            kind: kind.into(),
            family: family.into(),
            default,
        };
        Self {
            runtimes: vec![
                rt("nodejs:20", "nodejs", true),
                rt("python:3", "python", true),
            ],
        }
    }
}

impl RuntimeManifest {
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

    /// Turns a PUT exec into a stored exec: resolves the kind and computes `binary`.
    pub fn exec_from_put(&self, put: &ExecPut) -> Result<Exec, ExecError> {
        let rt = self.resolve(&put.kind)?;
        let code = match &put.code {
            Some(c) if !c.is_empty() => c.clone(),
            _ => return Err(ExecError::MissingCode(rt.kind.clone())),
        };
        Ok(Exec {
            kind: rt.kind.clone(),
            binary: is_binary_code(&code),
            code,
            main: put.main.clone().filter(|m| !m.is_empty()),
        })
    }
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

    #[test]
    fn binary_detection_matches_openwhisk() {
        assert!(is_binary_code("UEsDBA=="));
        assert!(is_binary_code(" abcd "));
        assert!(!is_binary_code("function main() {}"));
        assert!(!is_binary_code("abc"));
        assert!(!is_binary_code(""));
        assert!(!is_binary_code("ab=c"));
    }
}
