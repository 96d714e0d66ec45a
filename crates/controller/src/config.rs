//! `ApiConfig`: the REST API's limits and defaults. The same value is read from the config file
//! and reported by `GET /` and `GET namespaces/{ns}/limits`, so both go through [`ApiConfig::validate`].

use edgewhisk_entity::LimitBounds;
use serde::{Deserialize, Serialize};

/// Limits and defaults of the REST API (OpenWhisk `application.conf` `whisk.*` keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Allowed ranges and defaults of action limits.
    pub limits: LimitBounds,
    /// Largest invoke request body, bytes (`whisk.activation.payload.max`).
    pub max_payload_bytes: u64,
    /// Largest action code, bytes (`exec-size-limit`).
    pub max_code_bytes: u64,
    /// Largest `parameters` or `annotations` of an entity, bytes (`parameter-size-limit`).
    pub max_parameter_bytes: u64,
    /// Longest wait of a blocking invoke before answering 202, ms.
    pub blocking_wait_ms: u64,
    /// Invocations per namespace per (fixed) minute.
    pub invocations_per_minute: u64,
    /// Activations of one namespace in flight at once.
    pub concurrent_invocations: u64,
    /// Trigger fires per namespace per (fixed) minute.
    pub fires_per_minute: u64,
    /// List page size when `limit` is absent.
    pub list_default_limit: usize,
    /// Largest list page (`limit=0` means this).
    pub list_max_limit: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            limits: LimitBounds::default(),
            max_payload_bytes: 1_048_576,
            max_code_bytes: 48 * 1_048_576,
            max_parameter_bytes: 1_048_576,
            blocking_wait_ms: 60_000,
            invocations_per_minute: 60,
            concurrent_invocations: 30,
            fires_per_minute: 60,
            list_default_limit: 30,
            list_max_limit: 200,
        }
    }
}

/// A setting of [`ApiConfig`] out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiConfigError {
    /// A limit's default lies outside its own `min..=max`.
    #[error("limits: {field} default {default} is not within {min}..={max}")]
    LimitBounds {
        /// Which limit (`timeout`, `memory`, `logs`, `concurrency`).
        field: &'static str,
        /// Its minimum.
        min: u64,
        /// Its default.
        default: u64,
        /// Its maximum.
        max: u64,
    },
    /// A size, rate or wait is zero.
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    /// The blocking wait is longer than OpenWhisk's 60 s maximum.
    #[error("blocking_wait_ms {0} exceeds 60000")]
    BlockingWaitTooLong(u64),
    /// The default list page is larger than the largest.
    #[error("list_default_limit {default} exceeds list_max_limit {max}")]
    ListLimits {
        /// `list_default_limit`.
        default: usize,
        /// `list_max_limit`.
        max: usize,
    },
}

impl ApiConfig {
    /// Checks every range; the server refuses to start on an error.
    pub fn validate(&self) -> Result<(), ApiConfigError> {
        let l = &self.limits;
        let ranges: [(&'static str, u64, u64, u64); 4] = [
            ("timeout", l.min_timeout, l.default_timeout, l.max_timeout),
            ("memory", l.min_memory, l.default_memory, l.max_memory),
            ("logs", l.min_logs, l.default_logs, l.max_logs),
            (
                "concurrency",
                u64::from(l.min_concurrency),
                u64::from(l.default_concurrency),
                u64::from(l.max_concurrency),
            ),
        ];
        for (field, min, default, max) in ranges {
            if !(min <= default && default <= max) {
                return Err(ApiConfigError::LimitBounds {
                    field,
                    min,
                    default,
                    max,
                });
            }
        }
        let positive: [(&'static str, u64); 7] = [
            ("max_payload_bytes", self.max_payload_bytes),
            ("max_code_bytes", self.max_code_bytes),
            ("max_parameter_bytes", self.max_parameter_bytes),
            ("blocking_wait_ms", self.blocking_wait_ms),
            ("invocations_per_minute", self.invocations_per_minute),
            ("concurrent_invocations", self.concurrent_invocations),
            ("fires_per_minute", self.fires_per_minute),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ApiConfigError::Zero(field));
            }
        }
        if self.list_default_limit == 0 {
            return Err(ApiConfigError::Zero("list_default_limit"));
        }
        if self.blocking_wait_ms > 60_000 {
            return Err(ApiConfigError::BlockingWaitTooLong(self.blocking_wait_ms));
        }
        if self.list_default_limit > self.list_max_limit {
            return Err(ApiConfigError::ListLimits {
                default: self.list_default_limit,
                max: self.list_max_limit,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_matches_openwhisk_defaults() {
        let c = ApiConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.max_payload_bytes, 1_048_576);
        assert_eq!(c.max_code_bytes, 50_331_648);
        assert_eq!(c.invocations_per_minute, 60);
        assert_eq!(c.concurrent_invocations, 30);
    }

    #[test]
    fn partial_toml_like_json_fills_defaults_and_rejects_unknown_keys() {
        let c: ApiConfig = serde_json::from_str(r#"{"blocking_wait_ms": 5}"#).unwrap();
        assert_eq!(c.blocking_wait_ms, 5);
        assert_eq!(c.list_max_limit, 200);
        assert!(serde_json::from_str::<ApiConfig>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn validate_refuses_out_of_range_settings() {
        let mut c = ApiConfig::default();
        c.limits.default_memory = 1024;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "limits: memory default 1024 is not within 128..=512"
        );
        let c = ApiConfig {
            invocations_per_minute: 0,
            ..ApiConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(ApiConfigError::Zero("invocations_per_minute"))
        );
        let c = ApiConfig {
            list_default_limit: 300,
            ..ApiConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ApiConfigError::ListLimits { .. })
        ));
        let c = ApiConfig {
            blocking_wait_ms: 60_001,
            ..ApiConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(ApiConfigError::BlockingWaitTooLong(60_001))
        );
    }
}
