//! Wall-clock helpers: epoch milliseconds and OpenWhisk's log-line timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Formats a log line the way OpenWhisk's docker log store does: an RFC 3339 timestamp with
/// nanoseconds, left-justified to 30 characters, the stream, a colon, the text.
pub fn log_line(at: SystemTime, stream: &str, text: &str) -> String {
    let ts = time::OffsetDateTime::from(at);
    let stamp = ts
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .unwrap_or_default();
    format!("{stamp:<30} {stream}: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn log_line_has_openwhisk_shape() {
        let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(
            log_line(at, "stdout", "hi"),
            "2023-11-14T22:13:20.123456789Z stdout: hi"
        );
    }
}
