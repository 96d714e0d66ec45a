//! Finding and removing the cgroups a crashed run left under the `edgewhisk` parent.
//!
//! runc creates each instance's cgroup at `cgroupsPath` relative to the invoker's own cgroup,
//! in every v1 hierarchy (cgroup v1) or in the unified one (v2). To find them again without
//! hard-coding either layout, the directories are derived from `/proc/self/cgroup` (our path
//! per hierarchy) and `/proc/self/mountinfo` (where each hierarchy is mounted).
//!
//! On a unified-only (v2) system runc resolves a relative `cgroupsPath` against the *parent*
//! of its own cgroup, not the cgroup itself: the process's own cgroup holds processes, and v2
//! lets no cgroup with processes enable controllers for children. Under systemd the instances
//! of `edgewhisk.service` therefore live in `system.slice/edgewhisk/…`, beside the service's
//! cgroup. On v1 and hybrid systems they are below our own path in every hierarchy.

use std::path::{Path, PathBuf};

/// One line of `/proc/self/cgroup`: hierarchy id, controllers, our path in it.
#[derive(Debug, PartialEq, Eq)]
struct Membership {
    hierarchy: u32,
    controllers: Vec<String>,
    path: String,
}

/// One cgroup file system mount: root within the hierarchy, mount point, v2 or the
/// controllers (`name=…` included) of a v1 hierarchy.
#[derive(Debug, PartialEq, Eq)]
struct CgroupMount {
    root: String,
    mount_point: PathBuf,
    v2: bool,
    options: Vec<String>,
}

fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let path = parts.next()?.to_owned();
            Some(Membership {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

fn parse_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(CgroupMount {
                root: (*fields.get(3)?).to_owned(),
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                v2,
                options: super_options.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The host directories of `relative` (a path below our own cgroup) in every hierarchy we
/// are a member of.
fn dirs_of(memberships: &[Membership], mounts: &[CgroupMount], relative: &str) -> Vec<PathBuf> {
    let unified_only = mounts.iter().all(|mount| mount.v2);
    let mut dirs = Vec::new();
    for m in memberships {
        let mount = if m.hierarchy == 0 && m.controllers.is_empty() {
            mounts.iter().find(|mount| mount.v2)
        } else {
            mounts
                .iter()
                .find(|mount| !mount.v2 && m.controllers.iter().all(|c| mount.options.contains(c)))
        };
        let Some(mount) = mount else { continue };
        let within = m
            .path
            .strip_prefix(mount.root.as_str())
            .unwrap_or(&m.path)
            .trim_start_matches('/');
        let within = if unified_only {
            Path::new(within).parent().unwrap_or(Path::new(""))
        } else {
            Path::new(within)
        };
        let dir = mount.mount_point.join(within).join(relative);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// The directories of `relative` below the invoker's cgroup, one per hierarchy.
pub(crate) fn directories(relative: &str) -> Vec<PathBuf> {
    let (Ok(memberships), Ok(mounts)) = (
        std::fs::read_to_string("/proc/self/cgroup"),
        std::fs::read_to_string("/proc/self/mountinfo"),
    ) else {
        return Vec::new();
    };
    dirs_of(
        &parse_memberships(&memberships),
        &parse_mounts(&mounts),
        relative,
    )
}

/// Removes every cgroup below `parent` (in every hierarchy) whose name `keep` refuses,
/// deepest first. A cgroup that still has tasks cannot be removed and is reported.
pub(crate) fn remove_children(parent: &str, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for dir in directories(parent) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if !path.is_dir() || keep(&name.to_string_lossy()) {
                continue;
            }
            if !remove_tree(&path) {
                left.push(path);
            }
        }
    }
    left
}

/// Removes the (empty) cgroup `relative` in every hierarchy; one still in use stays.
pub(crate) fn remove_if_empty(relative: &str) {
    for dir in directories(relative) {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Child cgroups (directories) directly below `parent`, in every hierarchy.
pub(crate) fn children(parent: &str) -> Vec<PathBuf> {
    directories(parent)
        .into_iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect()
}

/// `rmdir` a cgroup and its children (cgroup directories are removed with `rmdir`, their
/// control files go with them).
fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                remove_tree(&path);
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/api/abc\n1:cpu,cpuacct:/\n0::/\n";
    const V1_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn v1_directories_follow_our_own_path_in_each_hierarchy() {
        let dirs = dirs_of(
            &parse_memberships(V1_CGROUP),
            &parse_mounts(V1_MOUNTS),
            "edgewhisk/s",
        );
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/memory/api/abc/edgewhisk/s")));
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/pids/edgewhisk/s")));
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/edgewhisk/s")));
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/systemd/edgewhisk/s")));
        assert!(dirs.contains(&PathBuf::from("/sys/fs/cgroup/unified/edgewhisk/s")));
    }

    #[test]
    fn v2_directory_is_below_the_parent_of_our_path_as_runc_puts_it() {
        let dirs = dirs_of(
            &parse_memberships("0::/system.slice/edgewhisk.service\n"),
            &parse_mounts("40 1 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            "edgewhisk/s",
        );
        assert_eq!(
            dirs,
            vec![PathBuf::from("/sys/fs/cgroup/system.slice/edgewhisk/s")]
        );
        // At the root there is no parent to go to.
        let dirs = dirs_of(
            &parse_memberships("0::/\n"),
            &parse_mounts("40 1 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            "edgewhisk",
        );
        assert_eq!(dirs, vec![PathBuf::from("/sys/fs/cgroup/edgewhisk")]);
        // Inside a cgroup namespace the mount root is our own cgroup.
        let dirs = dirs_of(
            &parse_memberships("0::/a/b\n"),
            &parse_mounts("40 1 0:25 /a/b /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            "edgewhisk",
        );
        assert_eq!(dirs, vec![PathBuf::from("/sys/fs/cgroup/edgewhisk")]);
    }
}
