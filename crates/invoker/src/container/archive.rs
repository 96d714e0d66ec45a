//! Unpacking of binary action code (a base64 zip, as `wsk action create x.zip` and the
//! Serverless plugin send it) into a directory the runner loads the action from.
//!
//! The archive is untrusted input: an entry whose path is absolute or climbs out with `..`
//! (a "zip slip") is refused rather than skipped, symbolic links are refused (they could point
//! a later entry outside the directory), and the unpacked size is capped so a zip bomb cannot
//! fill the device's SD card.

use super::ContainerError;
use base64::Engine as _;
use std::io::{Read, Write};
use std::path::{Component, Path};

/// Upper bound of the bytes an archive may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;

/// Decodes base64 `code` (whitespace is ignored) into bytes.
pub fn decode_base64(code: &str) -> Result<Vec<u8>, ContainerError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = if code.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        engine.decode(compact)
    } else {
        engine.decode(code)
    };
    decoded.map_err(|e| ContainerError::Archive(format!("code is not valid base64: {e}")))
}

/// Whether `bytes` start with the zip local-file-header magic (`PK\x03\x04`).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Decodes base64 `code` and unpacks the zip it holds into `dest` (created if missing).
pub fn unpack_base64_zip(code: &str, dest: &Path) -> Result<(), ContainerError> {
    let bytes = decode_base64(code)?;
    unpack_zip(&bytes, dest)
}

/// Unpacks the zip in `bytes` into `dest` (created if missing).
///
/// Fails with [`ContainerError::Archive`] for anything that is not a readable zip, for entries
/// with absolute paths or `..` components, for symbolic links, and when the unpacked size
/// exceeds [`MAX_UNPACKED_BYTES`]. File permission bits recorded in the archive are kept, so
/// executables stay executable.
pub fn unpack_zip(bytes: &[u8], dest: &Path) -> Result<(), ContainerError> {
    if !is_zip(bytes) {
        return Err(ContainerError::Archive("code is not a zip archive".into()));
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| ContainerError::Archive(e.to_string()))?;
    std::fs::create_dir_all(dest)?;
    let mut budget = MAX_UNPACKED_BYTES;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| ContainerError::Archive(e.to_string()))?;
        let name = entry.name().to_owned();
        let relative = safe_relative_path(&name)?;
        if entry.is_symlink() {
            return Err(ContainerError::Archive(format!(
                "entry '{name}' is a symbolic link"
            )));
        }
        let target = dest.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::File::create(&target)?;
        // Read one byte more than the budget to notice an overflow without trusting the
        // sizes the archive claims.
        let copied = std::io::copy(&mut (&mut entry).take(budget + 1), &mut file)
            .map_err(|e| ContainerError::Archive(format!("entry '{name}': {e}")))?;
        if copied > budget {
            return Err(ContainerError::Archive(format!(
                "archive unpacks to more than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        budget -= copied;
        file.flush()?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = mode & 0o755;
            if mode != 0 {
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o600))?;
            }
        }
    }
    Ok(())
}

/// The entry name as a relative path that stays inside the destination, or an error.
fn safe_relative_path(name: &str) -> Result<&Path, ContainerError> {
    let path = Path::new(name);
    let escapes = name.contains('\\')
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes || name.is_empty() {
        return Err(ContainerError::Archive(format!(
            "entry '{name}' has an absolute path or a '..' component"
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, SimpleFileOptions::default())
                .expect("start");
            w.write_all(body.as_bytes()).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn unpacks_nested_files_into_the_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = zip_of(&[("package.json", "{}"), ("lib/a.js", "x")]);
        unpack_zip(&zip, dir.path()).expect("unpack");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("lib/a.js")).expect("read"),
            "x"
        );
        assert!(dir.path().join("package.json").is_file());
    }

    #[test]
    fn refuses_entries_that_climb_out_or_are_absolute() {
        for bad in ["../evil.js", "a/../../evil.js", "/etc/evil"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let zip = zip_of(&[("ok.js", "x"), (bad, "y")]);
            let err = unpack_zip(&zip, dir.path()).expect_err(bad);
            assert!(matches!(err, ContainerError::Archive(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_bad_base64_and_non_zip_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            unpack_base64_zip("not base64!", dir.path()),
            Err(ContainerError::Archive(_))
        ));
        let text = base64::engine::general_purpose::STANDARD.encode("plain text");
        assert!(matches!(
            unpack_base64_zip(&text, dir.path()),
            Err(ContainerError::Archive(_))
        ));
    }

    #[test]
    fn decodes_base64_with_line_breaks() {
        let zip = zip_of(&[("index.js", "x")]);
        let mut b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
        b64.insert(8, '\n');
        assert_eq!(decode_base64(&b64).expect("decode"), zip);
    }
}
