//! The runtime manifest of the real binary: the interpreters installed on this machine are
//! offered under their OpenWhisk kinds and listed by `GET /`; a kind that is not installed is
//! refused at create time with the installed ones; two Python interpreters side by side
//! (Debian's and a second one from the machine's toolchains, added with `[[runtimes.kinds]]`)
//! each run their own actions.

mod support;

#[cfg(test)]
mod runtimes {
    use crate::support::api::{create_action, http, invoke_blocking, put_action, send};
    use crate::support::{ServerOptions, spawn_server, spawn_server_with};
    use edgewhisk_testkit::services::in_ci;
    use serde_json::{Value, json};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Reports which interpreter runs it.
    const WHO_AM_I: &str = "import sys, platform\n\
        def main(args):\n    return {'executable': sys.executable, 'version': platform.python_version()}\n";

    fn kinds_of(info: &Value, family: &str) -> Vec<String> {
        info["runtimes"][family]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|r| r["kind"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn python_version(exe: &Path) -> Option<String> {
        let out = Command::new(exe).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.trim().strip_prefix("Python ").map(str::to_owned)
    }

    /// A Python 3 of another minor version than the system's `python3`, from a version
    /// manager (pyenv's builds, where this machine kind keeps its toolchain Pythons).
    fn second_python(system_version: &str) -> Option<(PathBuf, String)> {
        let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        let roots = [
            std::env::var_os("PYENV_ROOT").map(PathBuf::from),
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")),
        ];
        let mut found: Vec<(PathBuf, String)> = Vec::new();
        for root in roots.into_iter().flatten() {
            let Ok(entries) = std::fs::read_dir(root.join("versions")) else {
                continue;
            };
            for e in entries.flatten() {
                let exe = e.path().join("bin/python3");
                if let Some(v) = python_version(&exe)
                    && minor(&v) != minor(system_version)
                    && v.starts_with("3.")
                {
                    found.push((e.path(), v));
                }
            }
        }
        found.sort_by_key(|(_, v)| {
            v.split('.')
                .map(|n| n.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>()
        });
        found.pop()
    }

    /// Installs the Python build at `prefix` where the actions' unprivileged user can run it, as
    /// an operator would put one under `/opt`: a hard-linked copy in `dir` (a home directory is
    /// private) and a wrapper that finds its shared library. Returns the wrapper.
    fn install_for_actions(prefix: &Path, version: &str, dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let copy = dir.join("python");
        let linked = Command::new("cp")
            .arg("-al")
            .arg(prefix)
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
        if !linked {
            let _ = std::fs::remove_dir_all(&copy);
            let copied = Command::new("cp").arg("-a").arg(prefix).arg(&copy).status();
            assert!(
                copied.is_ok_and(|s| s.success()),
                "copy {}",
                prefix.display()
            );
        }
        let minor: Vec<&str> = version.split('.').take(2).collect();
        let wrapper = dir.join(format!("python{}", minor.join(".")));
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nLD_LIBRARY_PATH={lib} exec {exe} \"$@\"\n",
                lib = copy.join("lib").display(),
                exe = copy.join("bin/python3").display()
            ),
        )
        .expect("write the wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        wrapper
    }

    #[tokio::test]
    async fn installed_interpreters_are_offered_and_listed() {
        let s = spawn_server(None);
        let info = send(http().get(s.url("/"))).await;
        info.expect_status(200, "GET /");
        let node = &info.body["runtimes"]["nodejs"][0];
        let installed = Command::new("node")
            .arg("--version")
            .output()
            .expect("node runs");
        let version = String::from_utf8_lossy(&installed.stdout)
            .trim()
            .trim_start_matches('v')
            .to_owned();
        let major = version.split('.').next().unwrap_or_default();
        assert_eq!(
            node["kind"],
            json!(format!("nodejs:{major}")),
            "{}",
            info.body
        );
        assert_eq!(node["version"], json!(version));
        assert_eq!(node["default"], json!(true));
        let python = kinds_of(&info.body, "python");
        assert!(python.contains(&"python:3".to_owned()), "{python:?}");
        let system = python_version(Path::new("/usr/bin/python3")).expect("python3 runs");
        let minor: Vec<&str> = system.split('.').take(2).collect();
        let kind = format!("python:{}", minor.join("."));
        assert!(python.contains(&kind), "{python:?} lacks {kind}");
        let go = kinds_of(&info.body, "go");
        assert!(go.contains(&"go:1.22".to_owned()), "{go:?}");
        assert_eq!(kinds_of(&info.body, "blackbox"), ["blackbox"]);

        // python:default is the installed version's kind, and runs.
        let created = create_action(&s, "pydefault", "python:default", WHO_AM_I).await;
        assert_eq!(created["exec"]["kind"], json!(kind));
        let r = invoke_blocking(&s, "pydefault", json!({})).await;
        r.expect_status(200, "invoke python:default");
        assert_eq!(r.body["response"]["result"]["version"], json!(system));

        // A kind whose interpreter is not installed is refused with the installed ones.
        for missing in ["nodejs:6", "python:3.2", "swift:5.7"] {
            let r = put_action(
                &s,
                "missing",
                json!({"exec": {"kind": missing, "code": "x"}}),
            )
            .await;
            r.expect_status(400, missing);
            let error = r.expect_error_body(missing);
            assert!(
                error.contains(&format!(
                    "The specified runtime '{missing}' is not supported"
                )) && error.contains(&format!("nodejs:{major}"))
                    && error.contains(&kind),
                "{error}"
            );
        }
        // A blackbox needs the skeleton image: no container image can be pulled here.
        let r = put_action(
            &s,
            "image",
            json!({"exec": {"kind": "blackbox", "image": "someone/thing", "code": "x"}}),
        )
        .await;
        r.expect_status(400, "blackbox with another image");
        assert!(r.expect_error_body("image").contains("someone/thing"));
    }

    #[tokio::test]
    async fn two_pythons_side_by_side_each_run_their_own_actions() {
        let system = PathBuf::from("/usr/bin/python3");
        let system_version = python_version(&system).expect("python3 runs");
        let Some((prefix, second_version)) = second_python(&system_version) else {
            assert!(!in_ci(), "CI machines have pyenv's Pythons beside Debian's");
            eprintln!("skipped: no second Python 3 beside {}", system.display());
            return;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let wrapper = install_for_actions(&prefix, &second_version, dir.path());
        let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
        let second_kind = format!("python:{}", minor(&second_version));
        let config = format!(
            "[server]\nshutdown_grace_ms = 2000\npython = \"/usr/bin/python3\"\n\n\
             [api]\ninvocations_per_minute = 100000\nconcurrent_invocations = 1000\n\n\
             [[runtimes.kinds]]\nkind = \"{second_kind}\"\nexecutable = \"{}\"\n\n\
             [[runtimes.kinds]]\nkind = \"python:3.99\"\nexecutable = \"{}\"\n",
            wrapper.display(),
            prefix.join("bin/python3").display()
        );
        // Under runc only interpreters below /usr are offered: the process backend runs the
        // two side by side.
        let s = spawn_server_with(ServerOptions {
            config_toml: Some(&config),
            extra_args: &["--isolation", "process"],
            ..ServerOptions::default()
        });
        let info = send(http().get(s.url("/"))).await;
        let python = kinds_of(&info.body, "python");
        let system_kind = format!("python:{}", minor(&system_version));
        assert!(
            python.contains(&second_kind) && python.contains(&system_kind),
            "{python:?}"
        );
        // As root, actions run as the unprivileged [process] user, who cannot reach into a
        // private home directory: that interpreter is not offered.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let private_home = !prefix.starts_with("/usr") && !prefix.starts_with("/opt");
        if root && private_home {
            assert!(!python.contains(&"python:3.99".to_owned()), "{python:?}");
        }

        create_action(&s, "first", &system_kind, WHO_AM_I).await;
        create_action(&s, "second", &second_kind, WHO_AM_I).await;
        let first = invoke_blocking(&s, "first", json!({})).await;
        first.expect_status(200, "invoke first");
        let other = invoke_blocking(&s, "second", json!({})).await;
        other.expect_status(200, "invoke second");
        let exe = |r: &Value| {
            let p = r["response"]["result"]["executable"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            std::fs::canonicalize(&p).unwrap_or_else(|_| PathBuf::from(p))
        };
        assert_eq!(exe(&first.body), std::fs::canonicalize(&system).unwrap());
        assert_eq!(
            first.body["response"]["result"]["version"],
            json!(system_version)
        );
        assert!(
            exe(&other.body).starts_with(std::fs::canonicalize(dir.path()).unwrap()),
            "{}",
            other.body
        );
        assert_eq!(
            other.body["response"]["result"]["version"],
            json!(second_version)
        );
        assert_eq!(annotation_kind(&other.body), Some(second_kind.as_str()));
    }

    fn annotation_kind(activation: &Value) -> Option<&str> {
        activation["annotations"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == "kind")?["value"]
            .as_str()
    }
}
