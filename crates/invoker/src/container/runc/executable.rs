//! Finding the executables the runc backend calls (`runc`, the interpreters, the network
//! tools) without relying on the invoker's own `PATH`.

use std::path::{Path, PathBuf};

/// Finds an executable: a path containing `/` as is, a bare name in `search` (a `PATH`-like
/// list).
pub(super) fn find_executable(name: &Path, search: &str) -> Option<PathBuf> {
    if name.as_os_str().is_empty() {
        return None;
    }
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_path_buf());
    }
    search
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_by_name_or_path() {
        assert_eq!(
            find_executable(Path::new("sh"), "/nonexistent:/bin"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(find_executable(Path::new("/nonexistent/x"), "/bin"), None);
        assert_eq!(find_executable(Path::new(""), "/bin"), None);
    }
}
