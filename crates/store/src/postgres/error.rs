//! Which PostgreSQL failures mean "the database cannot be reached" ([`StoreError::Unavailable`])
//! and which are a query's own failure ([`StoreError::Postgres`]).

use crate::StoreError;
use deadpool_postgres::PoolError;
use std::error::Error as _;

/// True for SQLSTATEs that say the server is not there to answer: class 08 (connection
/// exception), 57P01–57P03 (admin or crash shutdown, cannot connect now) and 53300 (too many
/// connections).
pub(super) fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Classifies a client error.
pub(super) fn classify(e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let text = format!("{code}: {}", db.message());
        return if is_unavailable_code(code) {
            StoreError::Unavailable(text)
        } else {
            StoreError::Postgres(text)
        };
    }
    // Without a server error: a closed connection, a socket error (refused, reset, timed
    // out) or a connect timeout are the database being out of reach; anything else (a value
    // that does not convert) is this query's own failure.
    let io = e
        .source()
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
    if e.is_closed() || io || e.to_string().contains("timeout") {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Postgres(e.to_string())
    }
}

/// Classifies a failure to get a pooled connection.
pub(super) fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => classify(&e),
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Each waiter on a failed batch gets its own copy of the failure.
pub(super) fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Postgres(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_shutdown_states_are_unavailable() {
        for code in [
            "08000", "08001", "08003", "08006", "08P01", "57P01", "57P02", "57P03",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        assert!(is_unavailable_code("53300"));
    }

    #[test]
    fn query_failures_are_not_unavailable() {
        // unique_violation, syntax_error, query_canceled, serialization_failure, disk_full
        for code in ["23505", "42601", "57014", "40001", "53100"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn pool_timeouts_are_unavailable_and_a_closed_pool_is_closed() {
        let timeout = PoolError::Timeout(deadpool_postgres::TimeoutType::Wait);
        assert!(matches!(pool_error(timeout), StoreError::Unavailable(_)));
        assert!(matches!(pool_error(PoolError::Closed), StoreError::Closed));
    }

    #[test]
    fn copies_keep_the_kind_of_failure() {
        let e = StoreError::Unavailable("gone".into());
        assert!(matches!(copy(&e), StoreError::Unavailable(s) if s == "gone"));
        let e = StoreError::Postgres("23505: dup".into());
        assert!(matches!(copy(&e), StoreError::Postgres(s) if s.contains("23505")));
    }
}
