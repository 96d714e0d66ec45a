//! The open-files limit, and the connection cap derived from it.
//!
//! Every client connection, every runner pipe and the store's files are file descriptors. With
//! the common default soft limit of 1024, a thousand idle keep-alive connections used to take
//! them all: `accept` failed with `EMFILE`, no client could connect, and runners could not be
//! started. So the server raises its soft limit to the hard limit where it may (no privilege is
//! needed for that), and caps client connections below the limit, keeping `reserved_fds` for
//! runners, the store and logs.

use crate::config::AUTO_MAX_CONNECTIONS;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit in force
/// afterwards. Failing to raise it is not fatal: the connection cap is then derived from the
/// lower limit.
pub(crate) fn raise_nofile_limit() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            // 1024 is the usual default; deriving the cap from it errs on the safe side.
            tracing::warn!(error = %e, "cannot read the open-files limit; assuming 1024");
            return 1024;
        }
    };
    // `rlim_t` is 32 bits wide on armv7.
    #[allow(clippy::useless_conversion, reason = "rlim_t is 32 bits wide on armv7")]
    let (soft, hard, hard_rlim) = (u64::from(soft), u64::from(hard), hard);
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard_rlim, hard_rlim) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-files soft limit");
            hard
        }
        Err(e) => {
            // An unlimited hard limit cannot be a soft limit (the kernel caps it at
            // fs.nr_open), and a hardened host may refuse: keep what we have.
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-files soft limit");
            soft
        }
    }
}

/// How many client connections may be open at once.
///
/// `configured` 0 means automatic: the open-files limit `nofile` minus `reserved`, at most
/// [`AUTO_MAX_CONNECTIONS`]. A configured value is honoured up to the same fd budget, so that
/// connections can never take the descriptors runners and the store need. At least one
/// connection is always allowed, so that a tiny limit degrades service instead of stopping it.
pub(crate) fn connection_cap(configured: usize, nofile: u64, reserved: usize) -> usize {
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    let budget = nofile.saturating_sub(reserved).max(1);
    if configured == 0 {
        budget.min(AUTO_MAX_CONNECTIONS)
    } else {
        if configured > budget {
            tracing::warn!(
                max_connections = configured,
                open_files_limit = nofile,
                reserved_fds = reserved,
                cap = budget,
                "max_connections exceeds the open-files limit minus reserved_fds; capped"
            );
        }
        configured.min(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_keeps_reserved_descriptors_out_of_the_budget() {
        // (configured, nofile, reserved) -> cap
        let cases = [
            ((0, 1024, 256), 768),
            ((0, 20_000, 256), AUTO_MAX_CONNECTIONS),
            ((0, 100, 256), 1),
            ((500, 1024, 256), 500),
            ((5000, 1024, 256), 768),
            ((10_000, 1_048_576, 256), 10_000),
            ((0, u64::MAX, 256), AUTO_MAX_CONNECTIONS),
        ];
        for ((configured, nofile, reserved), want) in cases {
            assert_eq!(
                connection_cap(configured, nofile, reserved),
                want,
                "configured {configured}, nofile {nofile}, reserved {reserved}"
            );
        }
    }

    #[test]
    fn raising_the_limit_leaves_soft_at_most_hard() {
        let soft = raise_nofile_limit();
        let (now_soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, now_soft);
        assert!(soft <= hard);
    }
}
