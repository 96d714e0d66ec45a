//! The free-space floor: writes are refused while the data directory's file system has less
//! free space than configured, before SQLite itself runs out of room.
//!
//! Measuring costs one `statvfs` call; it is done at most once per check interval, by whichever
//! write comes first after the interval passed, so the hot path reads a cached figure. A write
//! that SQLite failed with "database or disk is full" marks the store full until the next
//! measurement that finds space returned, so that the requests in between are refused at once
//! rather than each trying: when [`RETURNED_BYTES`] more are free than when the disk filled, or
//! after [`FULL_RETRY_INTERVALS`] measurements without that (room may have been made inside
//! the database file, which the file system does not see).

use crate::StoreError;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Watches the free space of one directory's file system. Safe to share between threads.
#[derive(Debug)]
pub(crate) struct SpaceGuard {
    dir: PathBuf,
    floor: u64,
    interval: Duration,
    state: Mutex<SpaceState>,
}

#[derive(Debug)]
struct SpaceState {
    /// When `free` was measured; `None` before the first measurement.
    measured: Option<Instant>,
    /// Free bytes available to this process at the last measurement.
    free: u64,
    /// SQLite reported a full disk: the free bytes measured then, and how many measurements
    /// since.
    disk_full: Option<(u64, u32)>,
}

/// Free bytes that must have returned since the disk filled before writes are tried again.
pub(crate) const RETURNED_BYTES: u64 = 1024 * 1024;

/// Measurements after which writes are tried again on a disk that was full, even without
/// [`RETURNED_BYTES`] having returned.
pub(crate) const FULL_RETRY_INTERVALS: u32 = 10;

impl SpaceGuard {
    /// A guard for the file system holding `dir`, refusing below `floor` free bytes.
    pub(crate) fn new(dir: PathBuf, floor: u64, interval: Duration) -> Self {
        Self {
            dir,
            floor,
            interval,
            state: Mutex::new(SpaceState {
                measured: None,
                free: u64::MAX,
                disk_full: None,
            }),
        }
    }

    /// `Err(StoreError::Full)` while the free space is below the floor or the disk was found
    /// full since the last measurement.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let now = Instant::now();
        let stale = state
            .measured
            .is_none_or(|at| now.duration_since(at) >= self.interval);
        if stale {
            match free_bytes(&self.dir) {
                Ok(free) => {
                    state.free = free;
                    if let Some((free_when_full, measured)) = state.disk_full {
                        if free >= free_when_full.saturating_add(RETURNED_BYTES)
                            || measured + 1 >= FULL_RETRY_INTERVALS
                        {
                            tracing::info!(free, "trying store writes again after a full disk");
                            state.disk_full = None;
                        } else {
                            state.disk_full = Some((free_when_full, measured + 1));
                        }
                    }
                }
                // Not knowing is no reason to refuse; SQLite still reports a really full disk.
                Err(e) => tracing::warn!(dir = %self.dir.display(), error = %e, "statvfs failed"),
            }
            state.measured = Some(now);
        }
        if state.disk_full.is_some() || state.free < self.floor {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    /// Notes that SQLite failed a write for lack of space.
    pub(crate) fn disk_full(&self) {
        let free = free_bytes(&self.dir).unwrap_or(0);
        let mut state = self.state.lock();
        if state.disk_full.is_none() {
            tracing::warn!(dir = %self.dir.display(), free, "the store's disk is full; writes are refused until space returns");
        }
        state.disk_full = Some((free, 0));
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
// The conversions are no-ops on 64-bit targets but not on 32-bit ARM boards, where the fields
// are 32 bits wide.
#[allow(clippy::useless_conversion)]
fn free_bytes(dir: &std::path::Path) -> Result<u64, nix::Error> {
    let stat = nix::sys::statvfs::statvfs(dir)?;
    Ok(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
}

/// `StoreError::Full` for an SQLite "database or disk is full" failure, any other error as it
/// is; tells `space` about a full disk.
pub(crate) fn classify(e: StoreError, space: &SpaceGuard) -> StoreError {
    match e {
        StoreError::Sqlite(ref err) if is_disk_full(err) => {
            space.disk_full();
            StoreError::Full
        }
        other => other,
    }
}

/// Whether SQLite failed for lack of space (`SQLITE_FULL`, or an I/O error from `ENOSPC`).
pub(crate) fn is_disk_full(e: &rusqlite::Error) -> bool {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => true,
        Some(rusqlite::ErrorCode::SystemIoFailure) => {
            // SQLite's unix layer turns `ENOSPC` into `SQLITE_FULL` for most files, but a failed
            // write can also come back as `SQLITE_IOERR_WRITE`.
            matches!(e, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_above_the_free_space_refuses_and_zero_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let refuse = SpaceGuard::new(dir.path().into(), u64::MAX, Duration::from_secs(60));
        assert!(matches!(refuse.check(), Err(StoreError::Full)));
        let accept = SpaceGuard::new(dir.path().into(), 0, Duration::from_secs(60));
        assert!(accept.check().is_ok());
    }

    #[test]
    fn a_full_disk_is_refused_until_the_next_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let cached = SpaceGuard::new(dir.path().into(), 0, Duration::from_secs(60));
        assert!(cached.check().is_ok());
        cached.disk_full();
        assert!(matches!(cached.check(), Err(StoreError::Full)));
        let measuring = SpaceGuard::new(dir.path().into(), 0, Duration::ZERO);
        measuring.disk_full();
        assert!(
            (0..FULL_RETRY_INTERVALS).any(|_| measuring.check().is_ok()),
            "tried again after at most the retry intervals"
        );
    }

    #[test]
    fn sqlite_full_is_classified_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let guard = SpaceGuard::new(dir.path().into(), 0, Duration::from_secs(60));
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(matches!(
            classify(StoreError::Sqlite(full), &guard),
            StoreError::Full
        ));
        assert!(matches!(guard.check(), Err(StoreError::Full)));
        assert!(matches!(
            classify(StoreError::Closed, &guard),
            StoreError::Closed
        ));
    }
}
