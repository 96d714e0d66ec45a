//! Records the git revision the binary is built from, for `edgewhisk --version` and the
//! `buildno` of `GET /api/v1`: `EW_GIT_REVISION` is the commit's short hash (with `-dirty`
//! when the tree had uncommitted changes), or `unknown` outside a git checkout.

use std::path::Path;
use std::process::Command;

fn main() {
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).map_or_else(
        || "unknown".to_owned(),
        |rev| {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        },
    );
    println!("cargo:rustc-env=EW_GIT_REVISION={revision}");
    // Build again when the checked-out commit moves (HEAD, or the branch it points at). In a
    // linked worktree HEAD is in the worktree's own git directory, branches in the common one.
    let dirs = git(&["rev-parse", "--absolute-git-dir"]).zip(git(&[
        "rev-parse",
        "--path-format=absolute",
        "--git-common-dir",
    ]));
    match dirs {
        Some((git_dir, common_dir)) => {
            let (git_dir, common_dir) = (Path::new(&git_dir), Path::new(&common_dir));
            let head = git_dir.join("HEAD");
            println!("cargo:rerun-if-changed={}", head.display());
            if let Ok(text) = std::fs::read_to_string(&head)
                && let Some(branch) = text.trim().strip_prefix("ref: ")
            {
                println!(
                    "cargo:rerun-if-changed={}",
                    common_dir.join(branch).display()
                );
            }
            println!(
                "cargo:rerun-if-changed={}",
                common_dir.join("packed-refs").display()
            );
        }
        None => println!("cargo:rerun-if-changed=build.rs"),
    }
}

/// `git ARGS` in this crate's directory, its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
