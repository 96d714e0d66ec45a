//! The runtime kinds a bench measures (`--kind`), and the bench's two actions in each of them:
//! hello (experiments A and B, cold start, `invoke`) and the hop of experiment C. Node.js and
//! Python get source code; `wasm:wasi` gets WASI preview-1 modules compiled here from the WAT
//! in `src/wasm/`; a native kind (`go:*`, `blackbox`) gets the executable the user built and
//! names as `KIND=PATH`, since the bench cannot compile one (`native-hello/main.rs` is one that
//! answers the way `docs/benchmarks.md` states).

use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::PathBuf;

/// The kind of the bench's actions when no `--kind` is given: what it has always measured.
pub(crate) const DEFAULT_KIND: &str = "nodejs:default";

/// The kinds of the cold-start experiment when no `--kind` is given.
pub(crate) const DEFAULT_COLDSTART_KINDS: [&str; 2] = ["nodejs:20", "python:3"];

/// The hello action in Python; with `sleep_ms` > 0 it answers after that long.
fn hello_py(sleep_ms: u64) -> String {
    format!(
        "import time\n\nSLEEP_MS = {sleep_ms}\n\n\
         def main(args):\n    \
             r = {{\"payload\": \"Hello, \" + args.get(\"name\", \"World\") + \"!\"}}\n    \
             if SLEEP_MS > 0:\n        time.sleep(SLEEP_MS / 1000)\n    \
             return r\n"
    )
}

/// The hop in Python, as [`HOP_CODE`]: `time.monotonic_ns()` reads CLOCK_MONOTONIC, as
/// Node.js's `process.hrtime` does, with a wall-clock anchor in ms.
const HOP_PY: &str = r#"import time

def main(args):
    start_hr = time.monotonic_ns()
    start_wall = time.time() * 1000
    if "headReturnHr" not in args:
        out = {"payload": args.get("payload"), "headReturnWall": time.time() * 1000}
        out["headReturnHr"] = str(time.monotonic_ns())
        return out
    hr_ms = (start_hr - int(args["headReturnHr"])) / 1e6
    wall_ms = start_wall - args["headReturnWall"]
    same_clock = abs(hr_ms - wall_ms) < 50
    return {
        "comTimeMs": hr_ms if same_clock else wall_ms,
        "clock": "monotonic" if same_clock else "wall",
        "size": len(args.get("payload") or ""),
    }
"#;

/// The Raspberry Pi study's hello action; with `sleep_ms` > 0 the study's `sleepy` action
/// (answers after a timer).
pub(crate) fn hello_code(sleep_ms: u64) -> String {
    format!(
        "const SLEEP_MS = {sleep_ms};\n\
         function main(params) {{\n  \
           const r = {{ payload: 'Hello, ' + (params.name || 'World') + '!' }};\n  \
           if (SLEEP_MS > 0) return new Promise((resolve) => setTimeout(() => resolve(r), SLEEP_MS));\n  \
           return r;\n\
         }}\n"
    )
}

/// ServerlessBench TC5's ParamPass: the head stamps its return time, the tail computes
/// its start minus the head's return. `process.hrtime.bigint()` reads CLOCK_MONOTONIC, which
/// every process on one machine shares, at nanosecond resolution; the wall-clock anchor
/// (`Date.now()`, 1 ms) catches a head and tail on different machines, where only wall time
/// compares.
pub(crate) const HOP_CODE: &str = r"function main(params) {
  const startHr = process.hrtime.bigint();
  const startWall = Date.now();
  if (params.headReturnHr === undefined) {
    const out = { payload: params.payload, headReturnWall: Date.now() };
    out.headReturnHr = process.hrtime.bigint().toString();
    return out;
  }
  const hrMs = Number(startHr - BigInt(params.headReturnHr)) / 1e6;
  const wallMs = startWall - params.headReturnWall;
  const sameClock = Math.abs(hrMs - wallMs) < 50;
  return {
    comTimeMs: sameClock ? hrMs : wallMs,
    clock: sameClock ? 'hrtime' : 'wall',
    size: (params.payload || '').length,
  };
}
";

/// Functions both WAT modules share, spliced in where they say `;; @common`.
const WAT_COMMON: &str = include_str!("wasm/common.wat");
/// The hello action in WAT.
const WAT_HELLO: &str = include_str!("wasm/hello.wat");
/// The hop action in WAT.
const WAT_HOP: &str = include_str!("wasm/hop.wat");

/// The image OpenWhisk's docker skeleton actions name; a `blackbox` action carries it.
const SKELETON_IMAGE: &str = "openwhisk/dockerskeleton";

/// How a kind's actions are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `nodejs:*`: JavaScript source.
    Node,
    /// `python:*`: Python source.
    Python,
    /// `wasm:*`: a WASI preview-1 command module.
    Wasm,
    /// `go:*`: OpenWhisk's action loop, an `exec` in a zip.
    ActionLoop,
    /// `blackbox`: the docker skeleton, an `exec` in a zip run per activation.
    Blackbox,
}

/// Which of the bench's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `{"payload":"Hello, <name>!"}`, after `sleep_ms` if that is not 0.
    Hello {
        /// Delay before answering, ms.
        sleep_ms: u64,
    },
    /// Head and tail of experiment C's sequence.
    Hop,
}

/// One `--kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kind {
    /// The kind the actions are created with, e.g. `python:3.11`.
    pub(crate) name: String,
    family: Family,
    /// The executable (or zip holding `exec`) of a native kind.
    native: Option<PathBuf>,
}

impl Kind {
    /// Parses `KIND` or, for a native kind, `KIND=PATH`.
    pub(crate) fn parse(arg: &str) -> anyhow::Result<Self> {
        let (name, path) = match arg.split_once('=') {
            Some((n, p)) => (n.trim(), Some(PathBuf::from(p.trim()))),
            None => (arg.trim(), None),
        };
        let family = if name.starts_with("nodejs:") {
            Family::Node
        } else if name.starts_with("python:") {
            Family::Python
        } else if name.starts_with("wasm:") {
            Family::Wasm
        } else if name.starts_with("go:") {
            Family::ActionLoop
        } else if name == "blackbox" {
            Family::Blackbox
        } else {
            bail!(
                "the bench has no actions for kind {name:?}: it knows nodejs:*, python:*, \
                 wasm:wasi, and go:*=PATH and blackbox=PATH for an executable you built"
            );
        };
        let native = matches!(family, Family::ActionLoop | Family::Blackbox);
        match (&path, native) {
            (Some(_), false) => bail!("--kind {name}: a PATH goes with a native kind only"),
            (None, true) => bail!(
                "--kind {name} runs a native executable, which the bench cannot build: pass \
                 --kind {name}=PATH with an executable for this machine (or a zip holding it as \
                 `exec`) that answers the bench's requests as docs/benchmarks.md states; \
                 crates/bench/native-hello/main.rs is one (rustc -O --edition 2021 -o exec main.rs)"
            ),
            (Some(p), true) if !p.is_file() => {
                bail!("--kind {name}={}: no such file", p.display())
            }
            _ => {}
        }
        Ok(Self {
            name: name.to_owned(),
            family,
            native: path,
        })
    }

    /// How the kind's actions are written.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// Whether the pool keeps stem cells of this kind: interpreters only.
    pub(crate) fn has_stem_cells(&self) -> bool {
        matches!(self.family, Family::Node | Family::Python)
    }

    /// `base` for the default kind (the names the bench has always used), else `base-<kind>`.
    pub(crate) fn action_name(&self, base: &str) -> String {
        if self.name == DEFAULT_KIND {
            return base.to_owned();
        }
        let slug: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("{base}-{slug}")
    }

    /// The clock experiment C's hop reads in this kind.
    pub(crate) fn hop_clock(&self) -> &'static str {
        match self.family {
            Family::Node => "process.hrtime.bigint() (CLOCK_MONOTONIC) with a Date.now() anchor",
            Family::Python => "time.monotonic_ns() (CLOCK_MONOTONIC) with a time.time() anchor",
            Family::Wasm => "WASI realtime clock (wasmtime's monotonic one starts per instance)",
            Family::ActionLoop | Family::Blackbox => "whatever the executable reads",
        }
    }

    /// The action's `exec` for `role`.
    pub(crate) fn exec(&self, role: Role) -> anyhow::Result<Value> {
        let source = |code: String| json!({"kind": self.name, "code": code});
        let sleep_ms = match role {
            Role::Hello { sleep_ms } => sleep_ms,
            Role::Hop => 0,
        };
        if sleep_ms > 0 && !self.has_stem_cells() {
            bail!("--sleep-ms: the bench's {} action cannot sleep", self.name);
        }
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(match (self.family, role) {
            (Family::Node, Role::Hello { .. }) => source(hello_code(sleep_ms)),
            (Family::Node, Role::Hop) => source(HOP_CODE.to_owned()),
            (Family::Python, Role::Hello { .. }) => source(hello_py(sleep_ms)),
            (Family::Python, Role::Hop) => source(HOP_PY.to_owned()),
            (Family::Wasm, _) => {
                json!({"kind": self.name, "code": b64(&wasm_module(role)?), "binary": true})
            }
            (Family::ActionLoop | Family::Blackbox, _) => {
                let mut exec = json!({"kind": self.name, "code": b64(&self.native_zip()?),
                                      "binary": true});
                if self.family == Family::Blackbox {
                    exec["image"] = json!(SKELETON_IMAGE);
                }
                exec
            }
        })
    }

    /// The native executable as a zip holding `exec`; a zip is taken as it is.
    fn native_zip(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.native.as_ref().context("a native kind has a path")?;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.starts_with(b"PK\x03\x04") {
            return Ok(bytes);
        }
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o755);
        zip.start_file("exec", options)?;
        zip.write_all(&bytes)?;
        Ok(zip.finish()?.into_inner())
    }
}

/// The binary WASI module of `role`.
pub(crate) fn wasm_module(role: Role) -> anyhow::Result<Vec<u8>> {
    wasm_module_text(role, "")
}

/// The WASI hello module with an unused function returning `nonce`: the same behaviour in
/// bytes no other module has, so a server compiles it afresh instead of finding it in its
/// module cache (the cold start with compilation).
pub(crate) fn unique_wasm_exec(kind: &str, nonce: u64) -> anyhow::Result<Value> {
    let extra = format!("(func $nonce (result i64) i64.const {nonce})");
    let module = wasm_module_text(Role::Hello { sleep_ms: 0 }, &extra)?;
    let code = base64::engine::general_purpose::STANDARD.encode(module);
    Ok(json!({"kind": kind, "code": code, "binary": true}))
}

fn wasm_module_text(role: Role, extra: &str) -> anyhow::Result<Vec<u8>> {
    let text = match role {
        Role::Hello { .. } => WAT_HELLO,
        Role::Hop => WAT_HOP,
    };
    let text = text.replace(";; @common", &format!("{WAT_COMMON}\n{extra}"));
    wat::parse_str(&text).context("compiling the bench's WAT")
}

/// Parses `--kind` values; `default` when none are given.
pub(crate) fn parse_kinds(given: &[String], default: &[&str]) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    let names: Vec<&str> = if given.is_empty() {
        default.to_vec()
    } else {
        given.iter().map(String::as_str).collect()
    };
    for name in names.into_iter().filter(|n| !n.trim().is_empty()) {
        let k = Kind::parse(name)?;
        if kinds.iter().any(|o: &Kind| o.name == k.name) {
            bail!("--kind {} is given twice", k.name);
        }
        kinds.push(k);
    }
    Ok(kinds)
}

/// The kinds `GET /` lists under `runtimes`, by family.
pub(crate) fn offered(info: &Value) -> Vec<String> {
    let families = info.get("runtimes").and_then(Value::as_object);
    families
        .into_iter()
        .flat_map(|f| f.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|rt| rt.get("kind").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Fails, with the server's list, unless every kind is offered (`F:default` by any `F:` kind).
pub(crate) fn check_offered(info: &Value, kinds: &[Kind]) -> anyhow::Result<()> {
    let offered = offered(info);
    let is_offered = |name: &str| match name.strip_suffix(":default") {
        Some(family) => offered.iter().any(|k| k.starts_with(&format!("{family}:"))),
        None => offered.iter().any(|k| k == name),
    };
    let missing: Vec<&str> = kinds
        .iter()
        .map(|k| k.name.as_str())
        .filter(|n| !is_offered(n))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the server does not offer kind {}; it offers: {}",
            missing.join(", "),
            offered.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(args: &[&str]) -> anyhow::Result<Vec<Kind>> {
        let given: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        parse_kinds(&given, &[DEFAULT_KIND])
    }

    #[test]
    fn kinds_parse_by_family_with_the_default_when_none_are_given() {
        let k = kinds(&[]).unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].name, DEFAULT_KIND);
        assert_eq!(k[0].action_name("ew-bench-hello"), "ew-bench-hello");
        let k = kinds(&["nodejs:20", "python:3.11", "wasm:wasi"]).unwrap();
        let families: Vec<Family> = k.iter().map(Kind::family).collect();
        assert_eq!(families, [Family::Node, Family::Python, Family::Wasm]);
        assert_eq!(k[1].action_name("ew-bench-hop"), "ew-bench-hop-python-3-11");
        assert!(k[0].has_stem_cells() && !k[2].has_stem_cells());
    }

    #[test]
    fn native_kinds_need_an_existing_path_and_others_refuse_one() {
        let err = kinds(&["go:1.22"]).unwrap_err().to_string();
        assert!(
            err.contains("go:1.22=PATH") && err.contains("docs/benchmarks.md"),
            "{err}"
        );
        let err = kinds(&["blackbox=/nonexistent/exec"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
        let err = kinds(&["python:3=/bin/sh"]).unwrap_err().to_string();
        assert!(err.contains("native kind only"), "{err}");
        let err = kinds(&["java:8"]).unwrap_err().to_string();
        assert!(err.contains("no actions for kind"), "{err}");
        let err = kinds(&["python:3", "python:3"]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        let exe = std::env::current_exe().unwrap();
        let k = kinds(&[&format!("go:1.22={}", exe.display())]).unwrap();
        assert_eq!(k[0].name, "go:1.22");
        assert_eq!(k[0].family(), Family::ActionLoop);
    }

    #[test]
    fn each_family_gets_its_own_code_per_role() {
        let k = kinds(&["nodejs:20", "python:3", "wasm:wasi"]).unwrap();
        let hello = Role::Hello { sleep_ms: 0 };
        let node = k[0].exec(hello).unwrap();
        assert_eq!(node["kind"], "nodejs:20");
        assert!(node["code"].as_str().unwrap().contains("function main"));
        assert!(
            k[0].exec(Role::Hop).unwrap()["code"]
                .as_str()
                .unwrap()
                .contains("hrtime")
        );
        let py = k[1].exec(Role::Hello { sleep_ms: 30 }).unwrap();
        assert!(py["code"].as_str().unwrap().contains("SLEEP_MS = 30"));
        assert!(
            k[1].exec(Role::Hop).unwrap()["code"]
                .as_str()
                .unwrap()
                .contains("monotonic_ns")
        );
        let wasm = k[2].exec(hello).unwrap();
        assert_eq!(wasm["binary"], true);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(wasm["code"].as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\0asm"));
        assert!(
            k[2].exec(Role::Hello { sleep_ms: 30 }).is_err(),
            "wasm cannot sleep"
        );
    }

    #[test]
    fn a_native_executable_goes_in_a_zip_as_exec_and_blackbox_names_the_skeleton() {
        let dir = std::env::temp_dir().join(format!("ew-kinds-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("hello");
        std::fs::write(&exe, b"#!/bin/sh\necho '{}'\n").unwrap();
        let k = kinds(&[&format!("blackbox={}", exe.display())]).unwrap();
        let exec = k[0].exec(Role::Hop).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(exec["image"], SKELETON_IMAGE);
        let zip = base64::engine::general_purpose::STANDARD
            .decode(exec["code"].as_str().unwrap())
            .unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let file = archive.by_name("exec").unwrap();
        assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
    }

    /// Reads a module's imports and exports `(module, name)` off its binary sections.
    fn imports_exports(module: &[u8]) -> (Vec<(String, String)>, Vec<String>) {
        fn leb(b: &[u8], i: &mut usize) -> usize {
            let (mut v, mut shift) = (0usize, 0);
            loop {
                let byte = b[*i];
                *i += 1;
                v |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return v;
                }
                shift += 7;
            }
        }
        fn name(b: &[u8], i: &mut usize) -> String {
            let n = leb(b, i);
            let s = String::from_utf8(b[*i..*i + n].to_vec()).unwrap();
            *i += n;
            s
        }
        let (mut imports, mut exports) = (Vec::new(), Vec::new());
        let mut i = 8;
        while i < module.len() {
            let id = module[i];
            i += 1;
            let size = leb(module, &mut i);
            let end = i + size;
            let mut j = i;
            if id == 2 || id == 7 {
                for _ in 0..leb(module, &mut j) {
                    if id == 2 {
                        let m = name(module, &mut j);
                        let f = name(module, &mut j);
                        assert_eq!(module[j], 0, "{m}.{f} is a function import");
                        j += 1;
                        leb(module, &mut j);
                        imports.push((m, f));
                    } else {
                        exports.push(name(module, &mut j));
                        j += 1;
                        leb(module, &mut j);
                    }
                }
            }
            i = end;
        }
        (imports, exports)
    }

    #[test]
    fn wat_compiles_to_wasi_commands_with_the_right_imports_and_exports() {
        let wasi = |f: &str| ("wasi_snapshot_preview1".to_owned(), f.to_owned());
        let (imports, exports) =
            imports_exports(&wasm_module(Role::Hello { sleep_ms: 0 }).unwrap());
        assert_eq!(imports, [wasi("fd_read"), wasi("fd_write")]);
        assert_eq!(exports, ["memory", "_start"]);
        let (imports, exports) = imports_exports(&wasm_module(Role::Hop).unwrap());
        assert_eq!(
            imports,
            [wasi("fd_read"), wasi("fd_write"), wasi("clock_time_get")]
        );
        assert_eq!(exports, ["memory", "_start"]);
    }

    #[test]
    fn the_server_check_names_missing_kinds_and_lists_what_it_offers() {
        let info = json!({"runtimes": {
            "nodejs": [{"kind": "nodejs:20", "default": true}],
            "python": [{"kind": "python:3"}, {"kind": "python:3.11"}],
        }});
        assert_eq!(offered(&info), ["nodejs:20", "python:3", "python:3.11"]);
        check_offered(&info, &kinds(&[DEFAULT_KIND, "python:3.11"]).unwrap()).unwrap();
        let err = check_offered(&info, &kinds(&["wasm:wasi", "nodejs:20"]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not offer kind wasm:wasi;")
                && err.contains("offers: nodejs:20, python:3, python:3.11"),
            "{err}"
        );
    }
    /// Runs `module` with Node.js's WASI (wasmtime is the server's, not the bench's) on `input`.
    fn run_wasi(module: &[u8], input: &str) -> Option<Value> {
        let node_ok = std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !node_ok {
            #[allow(
                clippy::disallowed_methods,
                reason = "a test's CI switch, as testkit's"
            )]
            let in_ci = std::env::var_os("CI").is_some_and(|v| v == "true");
            assert!(!in_ci, "CI installs node");
            eprintln!("node is not on PATH: the WAT modules are not run");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "ew-wasi-test-{}-{}",
            std::process::id(),
            input.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.wasm");
        std::fs::write(&path, module).unwrap();
        let script = "const { WASI } = require('node:wasi');\n\
            const wasi = new WASI({ version: 'preview1', returnOnExit: true });\n\
            const m = new WebAssembly.Module(require('node:fs').readFileSync(process.argv[1]));\n\
            wasi.start(new WebAssembly.Instance(m, wasi.getImportObject()));\n";
        let mut child = std::process::Command::new("node")
            .args(["--no-warnings", "-e", script])
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{out:?}");
        Some(serde_json::from_slice(&out.stdout).expect("the module prints JSON"))
    }

    #[test]
    fn wasm_hello_and_hop_answer_as_the_node_actions_do() {
        let hello = wasm_module(Role::Hello { sleep_ms: 0 }).unwrap();
        let Some(v) = run_wasi(&hello, r#"{"name": "a \"b\""}"#) else {
            return;
        };
        assert_eq!(v, json!({"payload": "Hello, a \"b\"!"}));
        assert_eq!(
            run_wasi(&hello, "{}").unwrap(),
            json!({"payload": "Hello, World!"})
        );
        let big = "x".repeat(1_100_000);
        let v = run_wasi(&hello, &json!({"name": big}).to_string()).unwrap();
        assert_eq!(v["payload"].as_str().unwrap().len(), big.len() + 8);

        let hop = wasm_module(Role::Hop).unwrap();
        let head = run_wasi(&hop, r#"{"payload":"000"}"#).unwrap();
        assert_eq!(head["payload"], "000");
        assert!(
            head["headReturnHr"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        assert!(head["headReturnWall"].as_u64().is_some());
        let tail = run_wasi(&hop, &head.to_string()).unwrap();
        assert_eq!(tail["clock"], "realtime");
        assert_eq!(tail["size"], 3);
        let ms = tail["comTimeMs"].as_f64().unwrap();
        assert!((0.0..60_000.0).contains(&ms), "{tail}");
        let empty = run_wasi(&hop, "{ }").unwrap();
        assert!(empty["headReturnHr"].is_string(), "{empty}");
    }

    #[test]
    fn unique_wasm_modules_differ_in_bytes_and_answer_as_hello() {
        let decode = |exec: &Value| {
            assert_eq!(exec["kind"], "wasm:wasi");
            assert_eq!(exec["binary"], true);
            base64::engine::general_purpose::STANDARD
                .decode(exec["code"].as_str().unwrap())
                .unwrap()
        };
        let one = decode(&unique_wasm_exec("wasm:wasi", 1).unwrap());
        let two = decode(&unique_wasm_exec("wasm:wasi", 2).unwrap());
        let plain = wasm_module(Role::Hello { sleep_ms: 0 }).unwrap();
        assert_ne!(one, two);
        assert_ne!(one, plain);
        let Some(v) = run_wasi(&two, r#"{"name": "x"}"#) else {
            return;
        };
        assert_eq!(v, json!({"payload": "Hello, x!"}));
    }
}
