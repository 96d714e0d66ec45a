//! A native action for `edgewhisk bench --kind go:1.22=PATH` (OpenWhisk's action loop, which
//! the `go:*` kinds run) and `--kind blackbox=PATH` (the docker skeleton's `exec`), answering
//! the bench's three requests by the shape of the arguments, as `docs/benchmarks.md` states:
//! hello (`{"payload":"Hello, <name>!"}`), the hop's head (its arguments plus `headReturnHr`,
//! CLOCK_MONOTONIC in ns as a string, and `headReturnWall`, ms since the epoch) and the hop's
//! tail (`{"comTimeMs", "clock", "size"}`). The standard library only, so one command builds it:
//!
//! ```sh
//! rustc -O --edition 2021 -o exec crates/bench/native-hello/main.rs
//! edgewhisk bench concurrency --spawn --kind go:1.22=exec
//! ```
//!
//! The argument objects are the bench's own, flat ones: the fields are found by a scan, not by
//! a JSON parser.

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::FromRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    // The docker skeleton runs the executable once per activation with the arguments as
    // argv[1]; the last line on stdout is the result.
    if let Some(args) = std::env::args().nth(1) {
        println!("{}", answer(&args));
        return;
    }
    // The action loop: started once; `{"ok":true}` on fd 3 when asked, then one request line
    // `{"value":{…},"activation_id":…}` on stdin and one result line on fd 3 per activation.
    // SAFETY: the action loop hands fd 3 to the process as its result pipe; nothing else owns it.
    let mut out = unsafe { File::from_raw_fd(3) };
    if std::env::var_os("__OW_WAIT_FOR_ACK").is_some() {
        let _ = out.write_all(b"{\"ok\":true}\n");
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let value = object_after(&line, "\"value\"").unwrap_or("{}");
        let reply = format!("{}\n", answer(value));
        if out.write_all(reply.as_bytes()).is_err() {
            break;
        }
        let _ = std::io::stdout().flush();
    }
}

/// The result for one arguments object.
fn answer(args: &str) -> String {
    let start_hr = monotonic_ns();
    let start_wall = wall_ms();
    if let Some(head_hr) = string_after(args, "\"headReturnHr\"") {
        let hr_ms = (start_hr as f64 - head_hr.parse::<f64>().unwrap_or(0.0)) / 1e6;
        let wall_ms = start_wall - number_after(args, "\"headReturnWall\"").unwrap_or(0.0);
        let same_clock = (hr_ms - wall_ms).abs() < 50.0;
        let size = string_after(args, "\"payload\"").map_or(0, str::len);
        let (ms, clock) = if same_clock { (hr_ms, "monotonic") } else { (wall_ms, "wall") };
        return format!("{{\"comTimeMs\":{ms},\"clock\":\"{clock}\",\"size\":{size}}}");
    }
    if string_after(args, "\"payload\"").is_some() {
        let body = args.trim_end().strip_suffix('}').unwrap_or("{");
        let comma = if body.trim_end().ends_with('{') { "" } else { "," };
        return format!(
            "{body}{comma}\"headReturnWall\":{},\"headReturnHr\":\"{}\"}}",
            wall_ms(),
            monotonic_ns()
        );
    }
    let name = string_after(args, "\"name\"").unwrap_or("World");
    format!("{{\"payload\":\"Hello, {name}!\"}}")
}

/// The text after `key` and a colon, with leading whitespace skipped.
fn value_after<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = &json[json.find(key)? + key.len()..];
    rest.trim_start().strip_prefix(':').map(str::trim_start)
}

/// The raw content (escapes kept) of the string value of `key`.
fn string_after<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let s = value_after(json, key)?.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(&s[..i]),
            _ => escaped = false,
        }
    }
    None
}

/// The number value of `key`.
fn number_after(json: &str, key: &str) -> Option<f64> {
    let v = value_after(json, key)?;
    let end = v.find([',', '}', ' ']).unwrap_or(v.len());
    v[..end].parse().ok()
}

/// The object value of `key`, braces included.
fn object_after<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let v = value_after(json, key)?;
    if !v.starts_with('{') {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(&v[..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

#[repr(C)]
struct Timespec {
    tv_sec: std::os::raw::c_long,
    tv_nsec: std::os::raw::c_long,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CLOCK_MONOTONIC, ns: the clock Node.js's `process.hrtime` and Python's `time.monotonic_ns`
/// read, shared by every process on the machine.
fn monotonic_ns() -> u64 {
    const CLOCK_MONOTONIC: i32 = 1;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Milliseconds since the epoch.
fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
