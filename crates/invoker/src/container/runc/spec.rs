//! The OCI bundle of one runc instance: the shared read-only root directory and the
//! `config.json` built with `oci-spec` types.
//!
//! The root is an empty directory holding only mount points, the `bin`/`lib`/`lib64`/`sbin`
//! entries as the host has them (symlinks into `/usr` on merged-/usr systems, bind-mounted
//! directories otherwise) and a minimal `/etc/passwd` and `/etc/group`. It is the same for every
//! instance of a factory (runc mounts it read-only in each instance's own mount namespace), so
//! starting an instance writes one small `config.json` and nothing else.

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder, get_default_maskedpaths, get_default_readonly_paths,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the runners directory is mounted inside an instance.
pub(crate) const RUNNERS_MOUNT: &str = "/runners";
/// Where the instance's unpacked code is mounted inside an instance.
pub(crate) const CODE_MOUNT: &str = "/code";

/// Top-level host entries that are linked or bind-mounted so that interpreters find their
/// libraries and `/bin/sh` exists.
const ROOT_LINKS: &[&str] = &["bin", "lib", "lib32", "lib64", "libx32", "sbin"];

/// The only host files of `/etc` an instance sees (name resolution, TLS roots, time zone).
const ETC_FILES: &[&str] = &["resolv.conf", "hosts", "nsswitch.conf", "localtime"];
/// Host directories of `/etc` an instance sees.
const ETC_DIRS: &[&str] = &["ssl", "ca-certificates"];

/// Syscalls refused with `EPERM`: kernel modules, mounts, namespaces, tracing, keyrings,
/// BPF and the like. Everything else is allowed, as in runc's and Docker's profiles.
const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
];

/// `clone` flag for a new user namespace: refused, so an action cannot regain capabilities
/// inside a namespace of its own.
const CLONE_NEWUSER: u64 = 0x1000_0000;

/// Everything the `config.json` of one instance depends on.
#[derive(Debug, Clone)]
pub(crate) struct InstanceSpec<'a> {
    /// The shared root directory (see [`prepare_rootfs`]).
    pub(crate) rootfs: &'a Path,
    /// Host directory with `runner.js` and `runner.py`, mounted at [`RUNNERS_MOUNT`].
    pub(crate) runners_dir: &'a Path,
    /// Host directory the instance's archive is unpacked into, mounted at [`CODE_MOUNT`].
    pub(crate) code_dir: &'a Path,
    /// The runner command line as seen inside.
    pub(crate) args: Vec<String>,
    /// The runner environment (`NAME=value`).
    pub(crate) env: Vec<String>,
    /// Memory limit, MB (also the memory+swap limit: no swap).
    pub(crate) memory_mb: u64,
    /// Relative CPU weight (cgroup v1 shares; runc converts for v2).
    pub(crate) cpu_shares: u64,
    /// Largest number of tasks.
    pub(crate) pids_max: i64,
    /// Size of the private `/tmp`, MB.
    pub(crate) tmp_size_mb: u64,
    /// User the runner runs as.
    pub(crate) uid: u32,
    /// Group the runner runs as.
    pub(crate) gid: u32,
    /// `RLIMIT_NOFILE`, already clamped to what the invoker may set.
    pub(crate) nofile: u64,
    /// Whether the instance gets its own network namespace with only loopback.
    pub(crate) private_network: bool,
    /// Cgroup path relative to the invoker's own cgroup.
    pub(crate) cgroups_path: String,
}

/// Creates (or refreshes) the shared root directory at `rootfs`.
pub(crate) fn prepare_rootfs(rootfs: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    for dir in ["usr", "proc", "dev", "tmp", "etc", "runners", "code"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    // runc gives a tmpfs the mode of its mount point, whatever `mode=` says.
    std::fs::set_permissions(
        rootfs.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    for name in ROOT_LINKS {
        let host = Path::new("/").join(name);
        let ours = rootfs.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&host)?;
            if std::fs::read_link(&ours).ok().as_ref() != Some(&target) {
                let _ = std::fs::remove_file(&ours);
                std::os::unix::fs::symlink(&target, &ours)?;
            }
        } else if meta.is_dir() {
            std::fs::create_dir_all(&ours)?;
        }
    }
    let etc = rootfs.join("etc");
    for name in ETC_FILES {
        let host = Path::new("/etc").join(name);
        let ours = etc.join(name);
        match std::fs::symlink_metadata(&host) {
            // A symlink (localtime into /usr/share/zoneinfo) resolves inside the instance too.
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&host)?;
                if std::fs::read_link(&ours).ok().as_ref() != Some(&target) {
                    let _ = std::fs::remove_file(&ours);
                    std::os::unix::fs::symlink(&target, &ours)?;
                }
            }
            Ok(_) => {
                if !ours.exists() {
                    std::fs::write(&ours, b"")?;
                }
            }
            Err(_) => {}
        }
    }
    for name in ETC_DIRS {
        if Path::new("/etc").join(name).is_dir() {
            std::fs::create_dir_all(etc.join(name))?;
        }
    }
    std::fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\naction:x:{uid}:{gid}:action:/tmp:/usr/sbin/nologin\n"
        ),
    )?;
    std::fs::write(etc.join("group"), format!("root:x:0:\naction:x:{gid}:\n"))?;
    Ok(())
}

fn bind(destination: &str, source: &Path) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(strings(&["rbind", "ro", "nosuid", "nodev"]))
        .build()
}

fn special(destination: &str, typ: &str, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(typ)
        .options(strings(options))
        .build()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The mounts of an instance: kernel file systems, a private `/tmp`, and read-only binds of
/// exactly the host paths a runner needs.
fn mounts(spec: &InstanceSpec<'_>) -> Result<Vec<Mount>, OciSpecError> {
    let tmp_size = format!("size={}m", spec.tmp_size_mb);
    let mut mounts = vec![
        special("/proc", "proc", &["nosuid", "noexec", "nodev"])?,
        special(
            "/dev",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        special(
            "/dev/pts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        )?,
        special(
            "/dev/shm",
            "tmpfs",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        special("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        MountBuilder::default()
            .destination("/tmp")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec![
                "nosuid".to_owned(),
                "nodev".to_owned(),
                tmp_size,
                "mode=1777".to_owned(),
            ])
            .build()?,
        bind("/usr", Path::new("/usr"))?,
    ];
    for name in ROOT_LINKS {
        let host = Path::new("/").join(name);
        let is_real_dir = std::fs::symlink_metadata(&host)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_real_dir {
            mounts.push(bind(&format!("/{name}"), &host)?);
        }
    }
    for name in ETC_FILES {
        let host = Path::new("/etc").join(name);
        let is_file = std::fs::symlink_metadata(&host)
            .map(|m| m.is_file())
            .unwrap_or(false);
        if is_file {
            mounts.push(bind(&format!("/etc/{name}"), &host)?);
        }
    }
    for name in ETC_DIRS {
        let host = Path::new("/etc").join(name);
        if host.is_dir() {
            mounts.push(bind(&format!("/etc/{name}"), &host)?);
        }
    }
    mounts.push(bind(RUNNERS_MOUNT, spec.runners_dir)?);
    mounts.push(bind(CODE_MOUNT, spec.code_dir)?);
    Ok(mounts)
}

/// The seccomp profile: allow by default, refuse [`DENIED_SYSCALLS`] and new user namespaces.
fn seccomp() -> Result<LinuxSeccomp, OciSpecError> {
    let eperm = 1_u32;
    let architectures = if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else if cfg!(target_arch = "arm") {
        vec![Arch::ScmpArchArm]
    } else if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else {
        vec![Arch::ScmpArchNative]
    };
    let mut syscalls = vec![
        LinuxSyscallBuilder::default()
            .names(strings(DENIED_SYSCALLS))
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(eperm)
            .build()?,
        // `clone3` passes its flags in memory that seccomp cannot inspect: answer ENOSYS so
        // libc falls back to `clone`, whose flags are checked below (Docker does the same).
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_owned()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(38_u32)
            .build()?,
    ];
    // On s390x the flags are the second argument; everywhere else the first.
    let flags_arg: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(vec!["clone".to_owned()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(eperm)
            .args(vec![
                LinuxSeccompArgBuilder::default()
                    .index(flags_arg)
                    .value(CLONE_NEWUSER)
                    .value_two(CLONE_NEWUSER)
                    .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                    .build()?,
            ])
            .build()?,
    );
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures)
        .syscalls(syscalls)
        .build()
}

/// The `config.json` of one instance.
pub(crate) fn build(spec: &InstanceSpec<'_>) -> Result<Spec, OciSpecError> {
    let no_caps = HashSet::new();
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(spec.uid).gid(spec.gid).build()?)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd("/tmp")
        .no_new_privileges(true)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(no_caps.clone())
                .effective(no_caps.clone())
                .inheritable(no_caps.clone())
                .permitted(no_caps.clone())
                .ambient(no_caps)
                .build()?,
        )
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(spec.nofile)
                .hard(spec.nofile)
                .build()?,
        ])
        .build()?;

    let mut namespaces = Vec::new();
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ];
    if spec.private_network {
        kinds.push(LinuxNamespaceType::Network);
    }
    for typ in kinds {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }

    let memory_bytes =
        i64::try_from(spec.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()?,
        ])
        .memory(
            LinuxMemoryBuilder::default()
                .limit(memory_bytes)
                .swap(memory_bytes)
                .build()?,
        )
        .cpu(LinuxCpuBuilder::default().shares(spec.cpu_shares).build()?)
        .pids(LinuxPidsBuilder::default().limit(spec.pids_max).build()?)
        .build()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(PathBuf::from(&spec.cgroups_path))
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .seccomp(seccomp()?)
        .build()?;

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(spec.rootfs)
                .readonly(true)
                .build()?,
        )
        .hostname("edgewhisk")
        .mounts(mounts(spec)?)
        .process(process)
        .linux(linux)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(dir: &'a Path, code: &'a Path) -> InstanceSpec<'a> {
        InstanceSpec {
            rootfs: dir,
            runners_dir: dir,
            code_dir: code,
            args: vec!["/usr/bin/node".into(), "/runners/runner.js".into()],
            env: vec!["PATH=/usr/bin".into()],
            memory_mb: 128,
            cpu_shares: 128,
            pids_max: 64,
            tmp_size_mb: 16,
            uid: 65534,
            gid: 65534,
            nofile: 1024,
            private_network: false,
            cgroups_path: "edgewhisk/x/id".into(),
        }
    }

    #[test]
    fn config_limits_memory_without_swap_and_drops_every_capability() {
        let dir = Path::new("/nonexistent-rootfs");
        let json = serde_json::to_value(build(&sample(dir, dir)).expect("spec")).expect("json");
        let mem = &json["linux"]["resources"]["memory"];
        assert_eq!(mem["limit"], 128 * 1024 * 1024);
        assert_eq!(mem["swap"], 128 * 1024 * 1024);
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 64);
        assert_eq!(json["linux"]["resources"]["cpu"]["shares"], 128);
        assert_eq!(json["linux"]["cgroupsPath"], "edgewhisk/x/id");
        let caps = &json["process"]["capabilities"];
        for set in [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ] {
            assert_eq!(caps[set], serde_json::json!([]), "{set}");
        }
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["user"]["uid"], 65534);
        assert_eq!(json["root"]["readonly"], true);
    }

    #[test]
    fn config_mounts_only_the_allowed_host_paths_read_only() {
        let dir = Path::new("/nonexistent-rootfs");
        let code = Path::new("/srv/instance/code");
        let json = serde_json::to_value(build(&sample(dir, code)).expect("spec")).expect("json");
        let mounts = json["mounts"].as_array().expect("mounts");
        let binds: Vec<&serde_json::Value> =
            mounts.iter().filter(|m| m["type"] == "bind").collect();
        for m in &binds {
            let opts = m["options"].as_array().expect("options");
            assert!(opts.contains(&serde_json::json!("ro")), "{m}");
            let source = m["source"].as_str().expect("source");
            for forbidden in ["/root", "/home", "/etc/shadow", "/run", "/var"] {
                assert!(!source.starts_with(forbidden), "{source}");
            }
        }
        assert!(
            binds
                .iter()
                .any(|m| m["destination"] == CODE_MOUNT && m["source"] == "/srv/instance/code")
        );
        let tmp = mounts
            .iter()
            .find(|m| m["destination"] == "/tmp")
            .expect("/tmp");
        assert!(
            tmp["options"]
                .as_array()
                .expect("opts")
                .contains(&serde_json::json!("size=16m"))
        );
    }

    #[test]
    fn network_namespace_only_when_private() {
        let dir = Path::new("/nonexistent-rootfs");
        let mut s = sample(dir, dir);
        let has_net = |s: &InstanceSpec<'_>| {
            let json = serde_json::to_value(build(s).expect("spec")).expect("json");
            json["linux"]["namespaces"]
                .as_array()
                .expect("ns")
                .iter()
                .any(|n| n["type"] == "network")
        };
        assert!(!has_net(&s));
        s.private_network = true;
        assert!(has_net(&s));
    }

    #[test]
    fn seccomp_refuses_mount_ptrace_and_module_loading() {
        let json = serde_json::to_value(seccomp().expect("seccomp")).expect("json");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        let denied = json["syscalls"][0]["names"].as_array().expect("names");
        for name in [
            "mount",
            "ptrace",
            "init_module",
            "bpf",
            "unshare",
            "setns",
            "keyctl",
        ] {
            assert!(denied.contains(&serde_json::json!(name)), "{name}");
        }
        assert_eq!(json["syscalls"][0]["errnoRet"], 1);
    }

    #[test]
    fn rootfs_holds_mount_points_links_and_an_unprivileged_passwd() {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare_rootfs(dir.path(), 65534, 65534).expect("rootfs");
        for d in ["usr", "proc", "dev", "tmp", "runners", "code"] {
            assert!(dir.path().join(d).is_dir(), "{d}");
        }
        let passwd = std::fs::read_to_string(dir.path().join("etc/passwd")).expect("passwd");
        assert!(passwd.contains(":65534:65534:"));
        assert!(!dir.path().join("etc/shadow").exists());
        // Idempotent: a second factory on the same directory reuses it.
        prepare_rootfs(dir.path(), 65534, 65534).expect("rootfs again");
    }
}
