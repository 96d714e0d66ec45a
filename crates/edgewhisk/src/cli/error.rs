//! How a CLI command fails, and the exit code `wsk` gives each failure.

use edgewhisk_client::ClientError;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A request failed; `context` is `wsk`'s "Unable to … 'name'" prefix.
    #[error("{context}: {source}")]
    Api {
        /// What was being done.
        context: String,
        /// The client's error (HTTP status and server message, or transport failure).
        source: ClientError,
    },
    /// The command line was valid for clap but not for the command.
    #[error("{0}")]
    Usage(String),
    /// Anything else (missing configuration, unreadable file).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// An API error with `wsk`'s context text.
    pub(crate) fn api(context: impl Into<String>, source: ClientError) -> Self {
        CliError::Api {
            context: context.into(),
            source,
        }
    }

    /// The process exit code, as `wsk` computes it.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Api { source, .. } => match source {
                ClientError::Api { status, .. } => status_exit_code(*status),
                ClientError::Transport(_) => 3,
                ClientError::Decode(_) => 4,
                ClientError::InvalidHost { .. } => 1,
            },
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

/// `wsk` exits with `status - 256`, which the OS reports modulo 256.
pub(crate) fn status_exit_code(status: u16) -> i32 {
    (i32::from(status) - 256).rem_euclid(256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_exit_like_wsk() {
        assert_eq!(status_exit_code(400), 144);
        assert_eq!(status_exit_code(401), 145);
        assert_eq!(status_exit_code(404), 148);
        assert_eq!(status_exit_code(409), 153);
        assert_eq!(status_exit_code(502), 246);
        assert_eq!(status_exit_code(500), 244);
    }

    #[test]
    fn error_kinds_map_to_wsk_exit_codes() {
        let api = CliError::api(
            "Unable to get action 'x'",
            ClientError::Api {
                status: 404,
                error: "The requested resource does not exist.".into(),
                code: Some("c1".into()),
                body: serde_json::Value::Null,
            },
        );
        assert_eq!(api.exit_code(), 148);
        assert_eq!(
            api.to_string(),
            "Unable to get action 'x': The requested resource does not exist. (code c1)"
        );
        assert_eq!(CliError::Usage("u".into()).exit_code(), 2);
        assert_eq!(CliError::Failed("f".into()).exit_code(), 1);
    }
}
