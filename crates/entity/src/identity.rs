//! Identities: who calls, with which key, in which namespace (OpenWhisk `Identity.scala`).
//!
//! [`Identity`] is the *authenticated* form: the subject, its namespace and the key exactly as
//! the caller presented it (the controller passes it on to actions as `__OW_API_KEY`). Keys are
//! never stored in that form: a store keeps the `Identity` with its `key` replaced by the
//! [`KeyHash`] stored form, checked with [`verify_stored`].
//!
//! # Why a salted SHA-256 and not a password hash
//!
//! Every request authenticates, so verification sits on the hot path of a warm invocation.
//! Slow password hashes (argon2, bcrypt) exist to make guessing *low-entropy, human-chosen*
//! passwords expensive. A key here is 64 random characters of `[A-Za-z0-9]` (~380 bits), so
//! nobody can guess it from its hash however fast the hash is; what matters is that a leaked
//! database does not hand out working keys. One SHA-256 over a 16-byte salt and the 64-byte
//! secret costs about a microsecond on a Raspberry Pi 4, and the salt makes equal keys (say, a
//! well-known key provisioned on many devices) hash differently. The digest is compared in
//! constant time. (GitHub and others store API tokens the same way.)

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// An authenticated subject and its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject (user) name, e.g. `guest`.
    pub subject: String,
    /// The namespace the key belongs to, e.g. `guest`.
    pub namespace: String,
    /// The key's UUID (the Basic-auth user name).
    pub uuid: String,
    /// The 64-character secret (the Basic-auth password). In an identity read back from a
    /// store this is the stored form, a [`KeyHash`] string, not the secret.
    pub key: String,
}

impl Identity {
    /// The `uuid:key` string a client holds in `AUTH`.
    pub fn auth_string(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }

    /// A new identity with a fresh random UUID and 64-character key.
    pub fn generate(subject: &str, namespace: &str) -> Identity {
        Identity {
            subject: subject.to_owned(),
            namespace: namespace.to_owned(),
            uuid: uuid::Uuid::new_v4().to_string(),
            key: generate_key(),
        }
    }
}

/// OpenWhisk's well-known guest key, provisioned for namespace `guest` on first start.
pub const GUEST_AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The guest identity.
pub fn guest() -> Identity {
    let (uuid, key) = GUEST_AUTH.split_once(':').unwrap_or_default();
    Identity {
        subject: "guest".into(),
        namespace: "guest".into(),
        uuid: uuid.into(),
        key: key.into(),
    }
}

/// Length of a key's secret.
pub const KEY_LENGTH: usize = 64;

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random 64-character secret of `[A-Za-z0-9]`, drawn from the operating system's
/// random source (through v4 UUIDs) without modulo bias.
pub fn generate_key() -> String {
    let mut key = String::with_capacity(KEY_LENGTH);
    while key.len() < KEY_LENGTH {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        // Bytes 6 and 8 carry the UUID version and variant bits; the other 14 are random.
        for (i, b) in bytes.into_iter().enumerate() {
            // 248 = 4 × 62: accepting only bytes below it keeps every character equally likely.
            if i == 6 || i == 8 || b >= 248 || key.len() == KEY_LENGTH {
                continue;
            }
            key.push(char::from(KEY_ALPHABET[usize::from(b % 62)]));
        }
    }
    key
}

/// A key stored as `sha256$<salt hex>$<digest hex>`: SHA-256 over the salt followed by the
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

const HASH_PREFIX: &str = "sha256$";

impl KeyHash {
    /// Hashes `secret` with `salt`.
    pub fn with_salt(secret: &str, salt: [u8; 16]) -> KeyHash {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(secret.as_bytes());
        KeyHash {
            salt,
            digest: h.finalize().into(),
        }
    }

    /// Hashes `secret` with a fresh random salt.
    pub fn new(secret: &str) -> KeyHash {
        KeyHash::with_salt(secret, *uuid::Uuid::new_v4().as_bytes())
    }

    /// Whether `secret` is the key this hash was made from (constant time in the digest).
    pub fn verify(&self, secret: &str) -> bool {
        let other = KeyHash::with_salt(secret, self.salt);
        constant_time_eq(&self.digest, &other.digest)
    }

    /// Whether `stored` is in the hashed form (as opposed to a plain key written by an earlier
    /// version). A plain key has no `$`, so the two never collide.
    pub fn is_hashed(stored: &str) -> bool {
        stored.starts_with(HASH_PREFIX)
    }

    /// The stored form of `key`: `key` itself when it is already hashed, else its hash.
    pub fn stored_form(key: &str) -> String {
        if KeyHash::is_hashed(key) {
            key.to_owned()
        } else {
            KeyHash::new(key).to_string()
        }
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HASH_PREFIX)?;
        write_hex(f, &self.salt)?;
        f.write_str("$")?;
        write_hex(f, &self.digest)
    }
}

/// A stored key string that is not a well-formed [`KeyHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed key hash")]
pub struct KeyHashError;

impl FromStr for KeyHash {
    type Err = KeyHashError;

    fn from_str(s: &str) -> Result<KeyHash, KeyHashError> {
        let rest = s.strip_prefix(HASH_PREFIX).ok_or(KeyHashError)?;
        let (salt, digest) = rest.split_once('$').ok_or(KeyHashError)?;
        Ok(KeyHash {
            salt: parse_hex(salt)?,
            digest: parse_hex(digest)?,
        })
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], KeyHashError> {
    if s.len() != N * 2 || !s.is_ascii() {
        return Err(KeyHashError);
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).map_err(|_| KeyHashError)?;
    }
    Ok(out)
}

/// Compares two byte strings without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a stored identity's key checks a presented secret.
///
/// `stored` is the `key` of an identity read from a store: normally a [`KeyHash`] string; a
/// plain key (written by a version before hashing, and not yet migrated) is compared in
/// constant time. Returns the authenticated identity, carrying the presented secret.
pub fn verify_stored(stored: &Identity, secret: &str) -> Option<Identity> {
    let ok = if KeyHash::is_hashed(&stored.key) {
        stored
            .key
            .parse::<KeyHash>()
            .is_ok_and(|h| h.verify(secret))
    } else {
        constant_time_eq(stored.key.as_bytes(), secret.as_bytes())
    };
    ok.then(|| Identity {
        key: secret.to_owned(),
        ..stored.clone()
    })
}

/// Per-namespace throttle overrides (OpenWhisk `UserLimits`). An absent value means the system
/// default; a value above the system maximum is capped by the controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceLimits {
    /// Invocations per (fixed) minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<u64>,
    /// Activations in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<u64>,
    /// Trigger fires per (fixed) minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<u64>,
}

impl NamespaceLimits {
    /// Whether no value is overridden.
    pub fn is_empty(&self) -> bool {
        *self == NamespaceLimits::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_own_secret_and_nothing_else() {
        let h = KeyHash::new("secret-one");
        assert!(h.verify("secret-one"));
        assert!(!h.verify("secret-two"));
        assert!(!h.verify(""));
    }

    #[test]
    fn equal_secrets_hash_differently_under_fresh_salts() {
        let a = KeyHash::new("same");
        let b = KeyHash::new("same");
        assert_ne!(a, b);
        assert!(a.verify("same") && b.verify("same"));
    }

    #[test]
    fn a_hash_round_trips_through_its_stored_string() {
        let h = KeyHash::with_salt("k", [7; 16]);
        let s = h.to_string();
        assert!(s.starts_with("sha256$07070707"));
        assert_eq!(s.len(), "sha256$".len() + 32 + 1 + 64);
        assert_eq!(s.parse::<KeyHash>().unwrap(), h);
        for bad in ["sha256$zz$00", "md5$00$00", "sha256$0707", "plain-key"] {
            assert_eq!(bad.parse::<KeyHash>(), Err(KeyHashError), "{bad}");
        }
    }

    #[test]
    fn stored_form_hashes_plain_keys_once() {
        let stored = KeyHash::stored_form("abc");
        assert!(KeyHash::is_hashed(&stored));
        assert_eq!(KeyHash::stored_form(&stored), stored);
        assert!(stored.parse::<KeyHash>().unwrap().verify("abc"));
    }

    #[test]
    fn verify_stored_accepts_hashed_and_legacy_plain_keys() {
        let g = guest();
        let hashed = Identity {
            key: KeyHash::stored_form(&g.key),
            ..g.clone()
        };
        assert_eq!(verify_stored(&hashed, &g.key), Some(g.clone()));
        assert_eq!(verify_stored(&hashed, &"x".repeat(64)), None);
        assert_eq!(verify_stored(&g, &g.key), Some(g.clone()));
        assert_eq!(verify_stored(&g, &"x".repeat(64)), None);
        // Presenting the stored hash itself is not the secret.
        assert_eq!(verify_stored(&hashed, &hashed.key), None);
    }

    #[test]
    fn generated_keys_are_64_alphanumerics_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert_eq!(a.len(), KEY_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        let id = Identity::generate("alice", "alice");
        assert!(uuid::Uuid::parse_str(&id.uuid).is_ok());
        assert_eq!(id.key.len(), KEY_LENGTH);
    }

    #[test]
    fn namespace_limits_use_openwhisk_field_names_and_omit_defaults() {
        let l = NamespaceLimits {
            invocations_per_minute: Some(5),
            concurrent_invocations: None,
            fires_per_minute: Some(2),
        };
        let v = serde_json::to_value(l).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"invocationsPerMinute": 5, "firesPerMinute": 2})
        );
        assert_eq!(serde_json::from_value::<NamespaceLimits>(v).unwrap(), l);
        assert!(NamespaceLimits::default().is_empty());
    }
}
