//! One activation: a fresh instance of the module in its own store, the arguments on stdin,
//! stdout and stderr captured in memory, limits on memory and time; then the captured output
//! read as the result and the log lines.

use crate::container::backend::{RunnerOutcome, RunnerReply};
use crate::container::response::MAX_RESULT_BYTES;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;
use wasmtime::{ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

/// Bytes of stdout kept: the result plus as much again for lines printed before it. An
/// action writing more gets the oversized-result error, naming all it wrote.
pub(super) const STDOUT_CAP: usize = 2 * MAX_RESULT_BYTES;

/// Bytes of stderr kept per activation (OpenWhisk's largest log limit, 10 MB); the rest is
/// counted and reported as truncation.
pub(super) const STDERR_CAP: usize = 10 * 1024 * 1024;

/// Longest log line kept as one; longer output is split, as docker splits long messages.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// What a store holds: the WASI context and the memory limiter.
pub(crate) struct State {
    pub(super) wasi: WasiP1Ctx,
    limits: Limits,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// [`StoreLimits`] that remembers whether it refused a memory grow.
#[derive(Debug)]
struct Limits {
    inner: StoreLimits,
    refused: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
}

/// An in-memory output stream that keeps its first `cap` bytes and counts the rest: the
/// guest's writes always succeed, so an action printing too much is told so by its
/// activation's result or logs, not by a failed write.
#[derive(Debug, Clone)]
struct Capture(Arc<Mutex<Captured>>);

#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    cap: usize,
    total: u64,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(Captured {
            cap,
            ..Captured::default()
        })))
    }

    fn write(&self, bytes: &[u8]) {
        let mut c = self.0.lock();
        c.total += bytes.len() as u64;
        let room = c.cap.saturating_sub(c.kept.len());
        c.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    fn take(&self) -> Captured {
        let mut c = self.0.lock();
        Captured {
            kept: std::mem::take(&mut c.kept),
            cap: c.cap,
            total: c.total,
        }
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        Capture::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What one activation needs besides the module.
#[derive(Debug)]
pub(super) struct Input {
    /// The arguments, JSON text, given on stdin.
    pub(super) stdin: String,
    /// The whole environment of the module.
    pub(super) env: Vec<(String, String)>,
    /// The linear-memory cap in bytes.
    pub(super) memory_bytes: usize,
    /// Epoch ticks before the module is interrupted.
    pub(super) deadline_ticks: u64,
}

/// The log lines of one activation before formatting: stdout's and stderr's, each line with
/// the time it was read.
pub(super) type RawLines = [Vec<(SystemTime, String)>; 2];

/// How one activation ended, with its log lines and the bytes of log text dropped.
#[derive(Debug)]
pub(super) struct Ended {
    pub(super) outcome: RunnerOutcome,
    pub(super) lines: RawLines,
    pub(super) dropped: u64,
}

/// Runs the module once on the calling (blocking) thread.
pub(super) fn run(
    engine: &wasmtime::Engine,
    pre: &wasmtime::InstancePre<State>,
    input: Input,
) -> Ended {
    let stdout = Capture::new(STDOUT_CAP);
    let stderr = Capture::new(STDERR_CAP);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(input.stdin))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .envs(&input.env)
        .arg("main")
        .build_p1();
    let limits = Limits {
        inner: StoreLimitsBuilder::new()
            .memory_size(input.memory_bytes)
            .instances(1)
            .build(),
        refused: false,
    };
    let mut store = Store::new(engine, State { wasi, limits });
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(input.deadline_ticks);
    store.epoch_deadline_trap();
    let result = pre
        .instantiate(&mut store)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let refused = store.data().limits.refused;
    drop(store);
    let out = stdout.take();
    let err = stderr.take();
    let at = SystemTime::now();
    let mut lines = RawLines::default();
    let mut dropped = err.total.saturating_sub(err.kept.len() as u64);
    let outcome = match result.map_err(|e| (e.downcast_ref::<I32Exit>().map(|x| x.0), e)) {
        Ok(()) | Err((Some(0), _)) => {
            let (outcome, logged) = result_of(&out);
            push_lines(&mut lines[0], at, logged);
            outcome
        }
        Err((code, error)) => {
            push_lines(&mut lines[0], at, &out.kept);
            dropped += out.total.saturating_sub(out.kept.len() as u64);
            match (code, error.downcast_ref::<Trap>()) {
                (None, Some(Trap::Interrupt)) => RunnerOutcome::TimedOut,
                _ if refused => RunnerOutcome::OutOfMemory,
                (Some(code), _) => {
                    developer_error(&format!("The action exited with status {code}."))
                }
                (None, trap) => {
                    // The whole chain (with the wasm backtrace) goes to the log; the result
                    // names the trap only.
                    push_lines(&mut lines[1], at, &err.kept);
                    push_lines(&mut lines[1], at, format!("{error:?}").as_bytes());
                    let what = trap.map_or_else(|| format!("{error}"), |t| t.to_string());
                    return Ended {
                        outcome: developer_error(&format!("An error has occurred: {what}")),
                        lines,
                        dropped,
                    };
                }
            }
        }
    };
    push_lines(&mut lines[1], at, &err.kept);
    Ended {
        outcome,
        lines,
        dropped,
    }
}

/// The reply for what the module printed on stdout, and the part of stdout that is log:
/// all of it as a JSON object or array, else its last non-empty line as one (the lines before
/// it are log), else the "did not return a dictionary" error (all of stdout is log).
fn result_of(out: &Captured) -> (RunnerOutcome, &[u8]) {
    if out.total > out.kept.len() as u64 {
        return (oversized(out.total), &[]);
    }
    let text = out.kept.trim_ascii();
    if let Some(reply) = json_result(text) {
        return (reply, &[]);
    }
    let body = text.trim_ascii_end();
    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    match json_result(body[start..].trim_ascii()) {
        Some(reply) => (reply, &body[..start]),
        None => (
            developer_error("The action did not return a dictionary."),
            &out.kept,
        ),
    }
}

/// A 200 reply when `text` is a JSON object or array, within the result limit.
fn json_result(text: &[u8]) -> Option<RunnerOutcome> {
    if !(text.starts_with(b"{") || text.starts_with(b"[")) {
        return None;
    }
    if text.len() > MAX_RESULT_BYTES {
        return Some(oversized(text.len() as u64));
    }
    let text = std::str::from_utf8(text).ok()?;
    let body = serde_json::from_str::<Box<RawValue>>(text).ok()?;
    Some(RunnerOutcome::Replied(RunnerReply { status: 200, body }))
}

/// The reply for a result of `bytes` bytes, over the limit.
fn oversized(bytes: u64) -> RunnerOutcome {
    developer_error(&format!(
        "The action produced a response that exceeded the allowed length: {bytes} > \
         {MAX_RESULT_BYTES} bytes."
    ))
}

/// A 502 reply `{"error": message}`: a developer error.
pub(super) fn developer_error(message: &str) -> RunnerOutcome {
    let body = serde_json::value::to_raw_value(&serde_json::json!({ "error": message }))
        .unwrap_or_else(|_| RawValue::NULL.to_owned());
    RunnerOutcome::Replied(RunnerReply { status: 502, body })
}

/// Splits `text` into lines (long ones into pieces of [`MAX_LINE_BYTES`]) and appends them.
fn push_lines(lines: &mut Vec<(SystemTime, String)>, at: SystemTime, text: &[u8]) {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() {
        return;
    }
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut pieces = line.chunks(MAX_LINE_BYTES).peekable();
        if pieces.peek().is_none() {
            lines.push((at, String::new()));
        }
        for piece in pieces {
            lines.push((at, String::from_utf8_lossy(piece).into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(text: &str) -> Captured {
        Captured {
            kept: text.as_bytes().to_vec(),
            cap: STDOUT_CAP,
            total: text.len() as u64,
        }
    }

    fn reply(outcome: &RunnerOutcome) -> (u16, String) {
        match outcome {
            RunnerOutcome::Replied(r) => (r.status, r.body.get().to_owned()),
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn stdout_is_the_result_and_lines_before_it_are_log() {
        let c = captured("{\n  \"a\": 1\n}\n");
        let (outcome, log) = result_of(&c);
        assert_eq!(reply(&outcome), (200, "{\n  \"a\": 1\n}".into()));
        assert!(log.is_empty());
        let c = captured("starting\nstill going\n{\"a\":1}\n\n");
        let (outcome, log) = result_of(&c);
        assert_eq!(reply(&outcome), (200, r#"{"a":1}"#.into()));
        assert_eq!(log, b"starting\nstill going\n");
        let c = captured("hello\n");
        let (outcome, log) = result_of(&c);
        assert_eq!(
            reply(&outcome),
            (
                502,
                r#"{"error":"The action did not return a dictionary."}"#.into()
            )
        );
        assert_eq!(log, b"hello\n");
        assert_eq!(reply(&result_of(&captured("")).0).0, 502);
        assert_eq!(
            reply(&result_of(&captured("[1,2]")).0),
            (200, "[1,2]".into())
        );
    }

    #[test]
    fn output_beyond_the_capture_is_an_oversized_result() {
        let mut c = captured("{}");
        c.total = 5_000_000;
        let (status, body) = reply(&result_of(&c).0);
        assert_eq!(status, 502);
        assert!(body.contains("5000000 > 1048576 bytes"), "{body}");
    }

    #[test]
    fn capture_keeps_its_cap_and_counts_the_rest() {
        let c = Capture::new(4);
        c.write(b"abc");
        c.write(b"def");
        let taken = c.take();
        assert_eq!((taken.kept.as_slice(), taken.total), (&b"abcd"[..], 6));
    }

    #[test]
    fn long_lines_are_split() {
        let mut lines = Vec::new();
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut text = b"a\n\n".to_vec();
        text.extend_from_slice(&long);
        push_lines(&mut lines, SystemTime::UNIX_EPOCH, &text);
        let lens: Vec<usize> = lines.iter().map(|(_, t)| t.len()).collect();
        assert_eq!(lens, vec![1, 0, MAX_LINE_BYTES, 1]);
    }
}
