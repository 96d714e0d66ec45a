//! A small tmpfs mounted for one test, to run a server's data directory on a disk that fills
//! up. Needs root; [`Tmpfs::mount`] says why not otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory; unmounted (lazily, so that a process still holding files
/// does not keep it) when dropped.
#[derive(Debug)]
pub(crate) struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_mb` MiB at `at` (created if missing); `Err(why)` when this
    /// process may not mount (not root, or no `mount`).
    pub(crate) fn mount(at: &Path, size_mb: u64) -> Result<Tmpfs, String> {
        match effective_uid() {
            Some(0) => {}
            Some(euid) => {
                return Err(format!(
                    "mounting a tmpfs needs root, running as euid {euid}"
                ));
            }
            None => return Err("cannot read the effective uid from /proc/self/status".to_owned()),
        }
        std::fs::create_dir_all(at).map_err(|e| format!("creating {}: {e}", at.display()))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(at)
            .status()
            .map_err(|e| format!("running mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed: {status}"));
        }
        Ok(Tmpfs { at: at.to_owned() })
    }

    /// Where it is mounted.
    pub(crate) fn path(&self) -> &Path {
        &self.at
    }

    /// Free bytes on it.
    pub(crate) fn free_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.at)
            .output()
            .expect("run df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the available bytes")
    }

    /// Writes a file of zeros at `path` on this tmpfs until it holds `bytes` or the disk is
    /// full; returns how many bytes it wrote.
    pub(crate) fn fill(&self, path: &Path, bytes: u64) -> u64 {
        use std::io::Write as _;
        let mut f = std::fs::File::create(path).expect("create the ballast file");
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        while written < bytes {
            let n = usize::try_from((bytes - written).min(chunk.len() as u64)).expect("small");
            match f.write(&chunk[..n]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        let _ = f.sync_all();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// The effective uid of this process (second field of `Uid:` in `/proc/self/status`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}
