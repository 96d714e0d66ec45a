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
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder, get_default_maskedpaths, get_default_readonly_paths,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the runners directory is mounted inside an instance.
pub(crate) const RUNNERS_MOUNT: &str = "/runners";
/// Where the instance's unpacked code is mounted inside an instance.
pub(crate) const CODE_MOUNT: &str = "/code";
/// Where the `edgewhisk` executable is mounted inside a native instance (a single file).
pub(crate) const NATIVE_RUNNER_MOUNT: &str = "/edgewhisk";

/// Top-level host entries that are linked or bind-mounted so that interpreters find their
/// libraries and `/bin/sh` exists.
const ROOT_LINKS: &[&str] = &["bin", "lib", "lib32", "lib64", "libx32", "sbin"];

/// The only host files of `/etc` an instance sees (name resolution, TLS roots, time zone).
const ETC_FILES: &[&str] = &["resolv.conf", "hosts", "nsswitch.conf", "localtime"];
/// Host directories of `/etc` an instance sees.
const ETC_DIRS: &[&str] = &["ssl", "ca-certificates"];

/// `errno` of a refused syscall (the default action): `EPERM`, as Docker answers.
const EPERM: u32 = 1;
/// `errno` of `clone3`: `ENOSYS`, so libc falls back to `clone`, whose flags seccomp can see.
const ENOSYS: u32 = 38;

/// The syscalls an instance may make, on every architecture: the unconditional allow list of
/// the default seccomp profile of Docker and containerd (moby `profiles/seccomp/default.json`),
/// minus `io_uring_*` (moby dropped them in 2023: a large attack surface with a history of
/// privilege escalations, and libuv falls back to threads without them). Anything not listed
/// here or in the arch and argument rules of [`seccomp`] is refused with `EPERM`, so syscalls
/// added to the kernel after this list are refused too. Names a kernel or libseccomp does not
/// know are skipped by runc.
///
/// Entries Docker grants only with a capability (mount, unshare, setns, bpf, perf_event_open,
/// ptrace, keyrings never appear, module loading, clock setting, …) are absent: an instance
/// has no capabilities.
const ALLOWED_SYSCALLS: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Allowed on x86 only (Docker: `amd64`, `x32`, `x86`).
const X86_SYSCALLS: &[&str] = &["arch_prctl", "modify_ldt"];

/// Allowed on ARM only (Docker: `arm`, `arm64`).
const ARM_SYSCALLS: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
];

/// `personality` values allowed, as in Docker: `PER_LINUX`, `PER_LINUX32`, `UNAME26`,
/// `PER_LINUX32|UNAME26` and the query `0xffffffff`; other personalities (for instance
/// `READ_IMPLIES_EXEC` or `ADDR_NO_RANDOMIZE`) weaken the address space.
const PERSONALITIES: &[u64] = &[0, 8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// `AF_VSOCK`: sockets of this family reach the hypervisor, so Docker refuses them.
const AF_VSOCK: u64 = 40;

/// Every namespace flag of `clone` (`CLONE_NEWNS`, `CLONE_NEWCGROUP`, `CLONE_NEWUTS`,
/// `CLONE_NEWIPC`, `CLONE_NEWUSER`, `CLONE_NEWPID`, `CLONE_NEWNET`): Docker's mask; a `clone`
/// with any of them is refused, so an action cannot make namespaces of its own.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Everything the `config.json` of one instance depends on.
#[derive(Debug, Clone)]
pub(crate) struct InstanceSpec<'a> {
    /// The shared root directory (see [`prepare_rootfs`]).
    pub(crate) rootfs: &'a Path,
    /// Host directory with `runner.js` and `runner.py`, mounted at [`RUNNERS_MOUNT`].
    pub(crate) runners_dir: &'a Path,
    /// Host directory the instance's archive is unpacked into, mounted at [`CODE_MOUNT`].
    pub(crate) code_dir: &'a Path,
    /// The `edgewhisk` executable on the host, mounted at [`NATIVE_RUNNER_MOUNT`] when the
    /// instance runs a native kind.
    pub(crate) native_runner: Option<&'a Path>,
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
///
/// Modes are set explicitly (directories 0755, files 0644): the runner reads them as the
/// instance's user, whatever umask this process or an earlier run had.
pub(crate) fn prepare_rootfs(rootfs: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let readable_dir = || std::fs::Permissions::from_mode(0o755);
    std::fs::create_dir_all(rootfs)?;
    std::fs::set_permissions(rootfs, readable_dir())?;
    for dir in ["usr", "proc", "dev", "tmp", "etc", "runners", "code"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
        std::fs::set_permissions(rootfs.join(dir), readable_dir())?;
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
            std::fs::set_permissions(&ours, readable_dir())?;
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
                std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o644))?;
            }
            Err(_) => {}
        }
    }
    for name in ETC_DIRS {
        if Path::new("/etc").join(name).is_dir() {
            std::fs::create_dir_all(etc.join(name))?;
            std::fs::set_permissions(etc.join(name), readable_dir())?;
        }
    }
    std::fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\naction:x:{uid}:{gid}:action:/tmp:/usr/sbin/nologin\n"
        ),
    )?;
    std::fs::write(etc.join("group"), format!("root:x:0:\naction:x:{gid}:\n"))?;
    // The mount point of the `edgewhisk` executable in native instances: a file, as a bind
    // mount of a file needs one.
    let native = rootfs.join(NATIVE_RUNNER_MOUNT.trim_start_matches('/'));
    if !native.is_file() {
        std::fs::write(&native, b"")?;
    }
    std::fs::set_permissions(&native, std::fs::Permissions::from_mode(0o755))?;
    for name in ["passwd", "group"] {
        std::fs::set_permissions(etc.join(name), std::fs::Permissions::from_mode(0o644))?;
    }
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
    if let Some(exe) = spec.native_runner {
        mounts.push(bind(NATIVE_RUNNER_MOUNT, exe)?);
    }
    Ok(mounts)
}

/// An allow rule for `names` when argument `index` compares to `value` with `op` (`value` is
/// the mask and `value_two` the expected value for masked comparisons).
fn allow_if(
    names: &[&str],
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
) -> Result<LinuxSyscall, OciSpecError> {
    LinuxSyscallBuilder::default()
        .names(strings(names))
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![
            LinuxSeccompArgBuilder::default()
                .index(index)
                .value(value)
                .value_two(value_two)
                .op(op)
                .build()?,
        ])
        .build()
}

/// The seccomp profile: refuse with `EPERM` unless allowed by [`ALLOWED_SYSCALLS`], the
/// architecture's own list, or an argument rule (`socket` but not `AF_VSOCK`, `clone` without
/// namespace flags, a few `personality` values), after Docker's default profile.
fn seccomp() -> Result<LinuxSeccomp, OciSpecError> {
    let (architectures, arch_syscalls) = if cfg!(target_arch = "aarch64") {
        (vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm], ARM_SYSCALLS)
    } else if cfg!(target_arch = "arm") {
        (vec![Arch::ScmpArchArm], ARM_SYSCALLS)
    } else if cfg!(target_arch = "x86_64") {
        (
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
            X86_SYSCALLS,
        )
    } else if cfg!(target_arch = "x86") {
        (vec![Arch::ScmpArchX86], X86_SYSCALLS)
    } else {
        (vec![Arch::ScmpArchNative], &[][..])
    };
    let mut allowed = strings(ALLOWED_SYSCALLS);
    allowed.extend(strings(arch_syscalls));
    let mut syscalls = vec![
        LinuxSyscallBuilder::default()
            .names(allowed)
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()?,
        allow_if(&["socket"], 0, LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK, 0)?,
    ];
    for personality in PERSONALITIES {
        syscalls.push(allow_if(
            &["personality"],
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            *personality,
            0,
        )?);
    }
    // On s390x the flags are the second argument; everywhere else the first.
    let flags_arg: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };
    syscalls.push(allow_if(
        &["clone"],
        flags_arg,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
        CLONE_NAMESPACE_FLAGS,
        0,
    )?);
    // `clone3` passes its flags in memory that seccomp cannot inspect: answer ENOSYS so libc
    // falls back to `clone`, whose flags are checked above (Docker does the same).
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_owned()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOSYS)
            .build()?,
    );
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
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
            native_runner: None,
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
    fn native_instances_alone_get_the_edgewhisk_executable_read_only() {
        let dir = Path::new("/nonexistent-rootfs");
        let exe = Path::new("/usr/bin/edgewhisk");
        let mount_of = |spec: InstanceSpec<'_>| {
            let json = serde_json::to_value(build(&spec).expect("spec")).expect("json");
            json["mounts"]
                .as_array()
                .expect("mounts")
                .iter()
                .find(|m| m["destination"] == NATIVE_RUNNER_MOUNT)
                .cloned()
        };
        assert_eq!(mount_of(sample(dir, dir)), None);
        let native = InstanceSpec {
            native_runner: Some(exe),
            ..sample(dir, dir)
        };
        let mount = mount_of(native).expect("mounted");
        assert_eq!(mount["source"], "/usr/bin/edgewhisk");
        assert!(
            mount["options"]
                .as_array()
                .expect("options")
                .contains(&serde_json::json!("ro"))
        );
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
    fn seccomp_refuses_by_default_and_allows_only_the_listed_syscalls() {
        let json = serde_json::to_value(seccomp().expect("seccomp")).expect("json");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        let rules = json["syscalls"].as_array().expect("rules");
        let unconditional: Vec<&str> = rules
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().expect("names"))
            .map(|n| n.as_str().expect("name"))
            .collect();
        for name in ["read", "write", "mmap", "futex", "epoll_wait", "execve"] {
            assert!(unconditional.contains(&name), "{name} must be allowed");
        }
        let mentioned: Vec<&str> = rules
            .iter()
            .flat_map(|r| r["names"].as_array().expect("names"))
            .map(|n| n.as_str().expect("name"))
            .collect();
        for name in [
            "io_uring_setup",
            "io_uring_enter",
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "bpf",
            "perf_event_open",
            "ptrace",
            "init_module",
            "userfaultfd",
        ] {
            assert!(
                !mentioned.contains(&name),
                "{name} must fall to the default"
            );
        }
        let clone = rules
            .iter()
            .find(|r| r["names"] == serde_json::json!(["clone"]))
            .expect("clone rule");
        assert_eq!(clone["args"][0]["value"], CLONE_NAMESPACE_FLAGS);
        assert_eq!(clone["args"][0]["valueTwo"], 0);
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
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
        assert!(
            dir.path().join("edgewhisk").is_file(),
            "native runner mount point"
        );
        // Idempotent: a second factory on the same directory reuses it.
        prepare_rootfs(dir.path(), 65534, 65534).expect("rootfs again");
    }
}
