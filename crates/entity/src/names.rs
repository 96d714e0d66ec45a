//! Entity names and paths (OpenWhisk `EntityPath.scala`, `FullyQualifiedEntityName.scala`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest allowed entity name, in characters.
pub const MAX_NAME_LENGTH: usize = 256;

/// Why a name was refused; the display text is OpenWhisk's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is longer than [`MAX_NAME_LENGTH`].
    #[error("{field} longer than allowed: {len} > {MAX_NAME_LENGTH}.")]
    TooLong {
        /// Which field was too long (`name`, `namespace`, …).
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The name uses characters outside OpenWhisk's pattern.
    #[error("The name of the entity contains illegal characters.")]
    IllegalCharacters,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Checks one path segment against OpenWhisk's entity name pattern:
/// first char `\w`, then `[\w@ .&-]*`, last char `[\w@.&-]`.
pub fn validate_name(field: &'static str, s: &str) -> Result<(), NameError> {
    let len = s.chars().count();
    if len > MAX_NAME_LENGTH {
        return Err(NameError::TooLong { field, len });
    }
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::IllegalCharacters);
    };
    if !is_word(first) {
        return Err(NameError::IllegalCharacters);
    }
    let last = s.chars().last().unwrap_or(first);
    if last == ' ' {
        return Err(NameError::IllegalCharacters);
    }
    if s.chars()
        .all(|c| is_word(c) || matches!(c, '@' | ' ' | '.' | '&' | '-'))
    {
        Ok(())
    } else {
        Err(NameError::IllegalCharacters)
    }
}

/// A validated entity name (one path segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EntityName(String);

impl EntityName {
    /// Validates `s` as an entity name.
    pub fn new(s: &str) -> Result<Self, NameError> {
        validate_name("name", s)?;
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fully qualified entity name: `path` is the namespace, or `namespace/package`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FullyQualifiedEntityName {
    /// `guest` or `guest/pkg`.
    pub path: String,
    /// The entity's own name.
    pub name: String,
}

impl FullyQualifiedEntityName {
    /// Builds a name from a namespace, an optional package and a name.
    pub fn new(namespace: &str, package: Option<&str>, name: &str) -> Self {
        let path = match package {
            Some(p) => format!("{namespace}/{p}"),
            None => namespace.to_owned(),
        };
        Self {
            path,
            name: name.to_owned(),
        }
    }

    /// The namespace (first segment of `path`).
    pub fn namespace(&self) -> &str {
        self.path.split('/').next().unwrap_or(&self.path)
    }

    /// The package, when the entity lives in one.
    pub fn package(&self) -> Option<&str> {
        self.path.split_once('/').map(|(_, p)| p)
    }

    /// `path/name` without a leading slash (the `path` annotation of activations).
    pub fn path_string(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }
}

impl fmt::Display for FullyQualifiedEntityName {
    /// `/path/name`, as `__OW_ACTION_NAME` carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/{}", self.path, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_openwhisk_names() {
        for ok in ["hello", "a", "x-y_z.1", "a b", "me@host", "_x", "a&b", "9"] {
            assert!(validate_name("name", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_illegal_names() {
        for bad in ["", " a", "a ", "-a", "a/b", "a$b", "ä", "a\n"] {
            assert_eq!(
                validate_name("name", bad),
                Err(NameError::IllegalCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_long_names_with_openwhisk_message() {
        let long = "a".repeat(257);
        let err = validate_name("name", &long).unwrap_err();
        assert_eq!(err.to_string(), "name longer than allowed: 257 > 256.");
        assert!(validate_name("name", &"a".repeat(256)).is_ok());
    }

    #[test]
    fn fully_qualified_name_splits_package() {
        let n = FullyQualifiedEntityName::new("guest", Some("pkg"), "a");
        assert_eq!(n.namespace(), "guest");
        assert_eq!(n.package(), Some("pkg"));
        assert_eq!(n.to_string(), "/guest/pkg/a");
        assert_eq!(n.path_string(), "guest/pkg/a");
    }
}
