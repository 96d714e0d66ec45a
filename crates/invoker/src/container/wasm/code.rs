//! The module an action's `code` carries: base64 of a `.wasm` file, base64 of a zip holding
//! one (or several, then the one `main` names), or WebAssembly text starting with `(module`.

use base64::Engine as _;
use std::io::Read as _;

/// The first bytes of every binary WebAssembly module.
const WASM_MAGIC: &[u8] = b"\0asm";

/// The first bytes of a zip archive (a local file header).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Returns the module bytes (binary or text, both of which `Module::new` takes), or the
/// reason the code is no module, worded for the developer.
pub(super) fn module_bytes(code: &str, main: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
    let text = code.trim();
    if text.starts_with("(module") {
        return Ok(text.as_bytes().to_vec());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|_| {
            "The code is neither base64 of a WebAssembly module or a zip archive holding one, \
             nor WebAssembly text starting with `(module`."
                .to_owned()
        })?;
    if bytes.starts_with(WASM_MAGIC) {
        Ok(bytes)
    } else if bytes.starts_with(ZIP_MAGIC) {
        from_zip(&bytes, main, max_bytes)
    } else {
        Err("The code is not a WebAssembly module (no `\\0asm` header) nor a zip archive.".into())
    }
}

/// The `.wasm` entry of a zip: the only one, or `<main>.wasm` (or `main` itself) among several.
fn from_zip(bytes: &[u8], main: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("The zip archive cannot be read: {e}"))?;
    let modules: Vec<String> = archive
        .file_names()
        .filter(|n| n.ends_with(".wasm"))
        .map(str::to_owned)
        .collect();
    let wanted = [format!("{main}.wasm"), main.to_owned()];
    let name = match modules.as_slice() {
        [] => return Err("The zip archive holds no `.wasm` file.".into()),
        [only] => only.clone(),
        several => several
            .iter()
            .find(|n| {
                wanted
                    .iter()
                    .any(|w| n.rsplit('/').next() == Some(w.as_str()))
            })
            .cloned()
            .ok_or_else(|| {
                format!(
                    "The zip archive holds several `.wasm` files ({}) and none is named by \
                     `main` ({main}.wasm).",
                    several.join(", ")
                )
            })?,
    };
    let file = archive
        .by_name(&name)
        .map_err(|e| format!("Cannot read {name} from the zip archive: {e}"))?;
    let mut out = Vec::new();
    // One byte more than allowed tells an over-long entry from one exactly at the limit.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("Cannot read {name} from the zip archive: {e}"))?;
    if out.len() as u64 > max_bytes {
        return Err(format!(
            "{name} in the zip archive is larger than {max_bytes} bytes."
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, data) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start");
            zip.write_all(data).expect("write");
        }
        zip.finish().expect("finish");
        out.into_inner()
    }

    #[test]
    fn takes_base64_wasm_text_and_zips() {
        let wasm = b"\0asm\x01\0\0\0";
        assert_eq!(module_bytes(&b64(wasm), "main", 100), Ok(wasm.to_vec()));
        assert_eq!(
            module_bytes(" (module)\n", "main", 100),
            Ok(b"(module)".to_vec())
        );
        let one = zip_of(&[("lib/x.wasm", wasm), ("README", b"hi")]);
        assert_eq!(module_bytes(&b64(&one), "main", 100), Ok(wasm.to_vec()));
        let two = zip_of(&[("a.wasm", b"\0asmA"), ("b.wasm", b"\0asmB")]);
        assert_eq!(module_bytes(&b64(&two), "b", 100), Ok(b"\0asmB".to_vec()));
        let err = module_bytes(&b64(&two), "main", 100).expect_err("ambiguous");
        assert!(err.contains("a.wasm, b.wasm"), "{err}");
    }

    #[test]
    fn refuses_what_is_no_module() {
        assert!(module_bytes("console.log(1)", "main", 100).is_err());
        assert!(module_bytes(&b64(b"ELF...."), "main", 100).is_err());
        let empty = zip_of(&[("x.txt", b"x")]);
        assert!(module_bytes(&b64(&empty), "main", 100).is_err());
        let big = zip_of(&[("x.wasm", &[0u8; 200])]);
        let err = module_bytes(&b64(&big), "main", 100).expect_err("too big");
        assert!(err.contains("larger than 100 bytes"), "{err}");
    }
}
