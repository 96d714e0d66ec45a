//! The runner connection both backends share: spawn a prepared command with its stdio piped
//! and the reply pipe as fd 3, write request lines on stdin, match reply lines read from fd 3
//! to waiting requests by id, buffer stdout/stderr as logs, and reap the process.
//!
//! The backends differ only in the command they hand to [`Connection::spawn`] (the runner
//! itself, or `runc run` with the runner inside a container) and in how they kill, freeze and
//! clean up; everything on the request path is here, so a warm request costs the same pipe
//! write and read in every backend.

use super::logs;
use crate::container::archive::{self, CodeLease, CodeStore};
use crate::container::backend::{
    CollectedLogs, ContainerError, InitRequest, Interval, RunRequest, RunnerOutcome, RunnerReply,
};
use crate::container::response::MAX_RESULT_BYTES;
use command_fds::{CommandFdExt as _, FdMapping};
use parking_lot::Mutex;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::{oneshot, watch};

/// After the runner exited, how long a reply it wrote just before may still take to be read.
const EXIT_REPLY_GRACE: Duration = Duration::from_millis(100);

/// Capacity asked for the request and reply pipes (Linux' default `pipe-max-size`). With the
/// default 64 KiB a 1 MB payload crosses each pipe in sixteen writer/reader hand-overs, each a
/// wake-up of the other side; the kernel allocates the pages only as data is written.
const PAYLOAD_PIPE_BYTES: i32 = 1024 * 1024;

/// Where an archive action's code comes from and how the runner sees it. The archive is
/// unpacked once per distinct code into `store`, shared by every instance running it.
#[derive(Debug, Clone)]
pub(crate) enum CodeDir {
    /// The runner reads the shared directory where it lies (the process backend, whose
    /// runners see the host's file system anyway).
    Shared(Arc<CodeStore>),
    /// The shared tree is hard-linked into `host` (the instance's own directory, mounted
    /// read-only), which the runner sees at `visible`. Links share the file contents, so the
    /// instance costs inodes, not another copy of the bytes.
    Linked {
        /// The shared unpacked archives.
        store: Arc<CodeStore>,
        /// The instance's code directory on the host.
        host: PathBuf,
        /// The same directory as the runner sees it.
        visible: String,
    },
}

/// How the runner's pipes reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdLayout {
    /// The spawned process is the runner: its stdin/stdout/stderr are the pipes, fd 3 the
    /// reply pipe.
    Stdio,
    /// The spawned process wraps the runner (`runc run`): the pipes are handed over as fds 3
    /// (stdin), 4 (stdout), 5 (stderr) and 6 (replies), and the wrapped command must move them
    /// to 0, 1, 2 and 3 itself (see [`STDIO_FROM_PRESERVED_FDS`]). The wrapper's own stdout and
    /// stderr go to the same log pipes. Without this, `runc run` would copy every request and
    /// every log line through pipes of its own: three extra process hops per activation.
    Preserved,
}

/// A `sh -c` script that runs `"$0" "$@"` with the [`FdLayout::Preserved`] fds moved to 0–3.
pub(crate) const STDIO_FROM_PRESERVED_FDS: &str =
    "exec \"$0\" \"$@\" <&3 >&4 2>&5 3>&6 4>&- 5>&- 6>&-";

/// One spawned runner (or runtime wrapping it) and its pipes.
#[derive(Debug)]
pub(crate) struct Connection {
    pid: u32,
    stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    shared: Arc<Shared>,
    exited: watch::Receiver<bool>,
    next_id: AtomicU64,
    log_timeout: Duration,
    /// The activation-end line this instance's runner writes, sent with the init request.
    sentinel: String,
    /// The instance's hold on its unpacked archive, if it has one.
    code: Mutex<Option<CodeLease>>,
    /// Requests sent whose logs may still be waiting to be collected: with none, the runner
    /// has written no sentinel to wait for (an init that failed before it was sent).
    uncollected: AtomicU64,
    /// Replies marked quiet whose logs are not collected yet: the runner wrote no sentinels
    /// for them, as the action printed nothing, so their collection takes nothing and waits
    /// for nothing. With concurrent runs a collection takes either one of these or one pair
    /// of sentinels, so the two counts stay in step with what the runner wrote.
    quiet: AtomicU64,
}

impl Connection {
    /// Spawns `cmd` with stdin/stdout/stderr piped and the reply pipe as fd 3, and starts the
    /// reader and reaper tasks. The caller sets program, arguments, environment and process
    /// group; the child is killed if the connection is dropped before it exits. With
    /// `reply_owner` (uid, gid) the reply pipe is given to that user, so a runner running as
    /// it can reopen its fd 3 through `/proc/self/fd/3` (the native runner does, as safe Rust
    /// has no other way to take a descriptor it did not open).
    pub(crate) fn spawn(
        mut cmd: tokio::process::Command,
        layout: FdLayout,
        log_buffer_bytes: usize,
        log_timeout: Duration,
        reply_owner: Option<(u32, u32)>,
    ) -> Result<Self, ContainerError> {
        let start = ContainerError::Start;
        // The runner reads and writes with plain blocking calls; only our ends are non-blocking.
        let (stdin, stdin_reader) = pipe::pipe().map_err(start)?;
        let stdin_reader = stdin_reader.into_blocking_fd().map_err(start)?;
        let (stdout_writer, stdout) = pipe::pipe().map_err(start)?;
        let stdout_writer = stdout_writer.into_blocking_fd().map_err(start)?;
        let (stderr_writer, stderr) = pipe::pipe().map_err(start)?;
        let stderr_writer = stderr_writer.into_blocking_fd().map_err(start)?;
        let (reply_writer, replies) = pipe::pipe().map_err(start)?;
        let reply_writer = reply_writer.into_blocking_fd().map_err(start)?;
        if let Some((uid, gid)) = reply_owner {
            nix::unistd::fchown(
                &reply_writer,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| start(e.into()))?;
        }
        enlarge_pipe(&stdin);
        enlarge_pipe(&replies);
        cmd.kill_on_drop(true);
        let mappings = match layout {
            FdLayout::Stdio => {
                cmd.stdin(Stdio::from(stdin_reader))
                    .stdout(Stdio::from(stdout_writer))
                    .stderr(Stdio::from(stderr_writer));
                vec![FdMapping {
                    parent_fd: reply_writer,
                    child_fd: 3,
                }]
            }
            FdLayout::Preserved => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::from(stdout_writer.try_clone().map_err(start)?))
                    .stderr(Stdio::from(stderr_writer.try_clone().map_err(start)?));
                [stdin_reader, stdout_writer, stderr_writer, reply_writer]
                    .into_iter()
                    .zip(3..)
                    .map(|(parent_fd, child_fd)| FdMapping {
                        parent_fd,
                        child_fd,
                    })
                    .collect()
            }
        };
        cmd.fd_mappings(mappings)
            .map_err(|e| ContainerError::Start(std::io::Error::other(e)))?;
        let mut child = cmd.spawn().map_err(ContainerError::Start)?;
        // Dropping the command closes our copies of the child's pipe ends, so each reader sees
        // end of file when the runner (and everything it started) is gone.
        drop(cmd);
        let pid = child
            .id()
            .ok_or_else(|| ContainerError::Start(std::io::Error::other("runner has no pid")))?;

        // Only the runner learns the nonce (in its init request, on stdin): the action's code,
        // environment and arguments never carry it, so it cannot end its own log early.
        let sentinel = logs::sentinel_with_nonce(&nonce().map_err(start)?);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            logs: logs::LogBuffer::new(log_buffer_bytes, sentinel.clone()),
            status: Mutex::new(None),
        });
        let (exit_tx, exited) = watch::channel(false);
        let s = shared.clone();
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            *s.status.lock() = status;
            exit_tx.send_replace(true);
        });
        let s = shared.clone();
        tokio::spawn(async move { logs::pump(stdout, logs::Stream::Stdout, &s.logs).await });
        let s = shared.clone();
        tokio::spawn(async move { logs::pump(stderr, logs::Stream::Stderr, &s.logs).await });
        tokio::spawn(read_replies(replies, shared.clone()));
        Ok(Self {
            pid,
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            shared,
            exited,
            next_id: AtomicU64::new(1),
            log_timeout,
            sentinel,
            code: Mutex::new(None),
            uncollected: AtomicU64::new(0),
            quiet: AtomicU64::new(0),
        })
    }

    /// The spawned process' id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits up to `bound` for the spawned process to be reaped and returns its exit status
    /// (`None` when it is still running or could not be waited for).
    pub(crate) async fn exit_status(&self, bound: Duration) -> Option<ExitStatus> {
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(bound, async move {
            let _ = exited.wait_for(|gone| *gone).await.map(|_| ());
        })
        .await;
        *self.shared.status.lock()
    }

    /// Closes the runner's stdin (it ends when it reads end of file) and gives up its hold
    /// on the unpacked code.
    pub(crate) async fn close(&self) {
        self.stdin.lock().await.take();
        self.code.lock().take();
    }

    /// Sends `/init`, unpacking an archive into `code` first. A `TimedOut` outcome means the
    /// caller must kill the instance.
    pub(crate) async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
        code: &CodeDir,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let start = SystemTime::now();
        let code_dir = if init.binary {
            Some(self.unpacked(&init.code, code).await?)
        } else {
            None
        };
        let code_dir = code_dir.as_deref();
        let id = self.next_id();
        let line = to_line(
            &InitLine {
                id,
                op: "init",
                log_sentinel: &self.sentinel,
                value: InitWire {
                    name: &init.name,
                    main: &init.main,
                    binary: init.binary,
                    code: code_dir.is_none().then_some(init.code.as_str()),
                    code_dir,
                    env: &init.env,
                },
            },
            if code_dir.is_none() {
                init.code.len()
            } else {
                0
            },
        )?;
        let remaining = timeout.saturating_sub(start.elapsed().unwrap_or_default());
        let (outcome, quiet) = self.request(id, line, remaining).await;
        if matches!(&outcome, RunnerOutcome::Replied(r) if r.status == 200) {
            // A successful init writes no sentinels, and its logs are not collected.
            self.take_uncollected();
        } else if quiet {
            self.quiet.fetch_add(1, Ordering::AcqRel);
        }
        let end = SystemTime::now();
        Ok((Interval { start, end }, outcome))
    }

    /// The directory the runner loads archive `code` from, as it sees it; the instance keeps
    /// a lease on the shared unpacked tree until it is closed.
    async fn unpacked(&self, code: &str, dir: &CodeDir) -> Result<String, ContainerError> {
        let visible = match dir {
            CodeDir::Shared(store) => {
                let lease = store.acquire(code).await?;
                let visible = lease.dir().to_string_lossy().into_owned();
                *self.code.lock() = Some(lease);
                visible
            }
            CodeDir::Linked {
                store,
                host,
                visible,
            } => {
                let lease = store.acquire(code).await?;
                let (src, dst) = (lease.dir().to_owned(), host.clone());
                tokio::task::spawn_blocking(move || archive::link_tree(&src, &dst))
                    .await
                    .map_err(|e| ContainerError::Io(std::io::Error::other(e)))??;
                *self.code.lock() = Some(lease);
                visible.clone()
            }
        };
        Ok(visible)
    }

    /// Counts one collection against the requests sent; false when there was none to collect.
    fn take_uncollected(&self) -> bool {
        take_one(&self.uncollected)
    }

    /// Sends `/run`. A `TimedOut` outcome means the caller must kill the instance.
    pub(crate) async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let start = SystemTime::now();
        let id = self.next_id();
        let line = to_line(
            &RunLine {
                id,
                op: "run",
                run: &run,
            },
            run.value.get().len(),
        )?;
        drop(run);
        let (outcome, quiet) = self.request(id, line, timeout).await;
        if quiet {
            self.quiet.fetch_add(1, Ordering::AcqRel);
        }
        let end = SystemTime::now();
        Ok((Interval { start, end }, outcome))
    }

    /// Collects the logs of the last request (see `Container::logs`).
    pub(crate) async fn logs(&self, limit_bytes: u64, wait_for_sentinel: bool) -> CollectedLogs {
        if !self.take_uncollected() {
            // Nothing was sent (an archive that failed to unpack): no sentinel will come, and
            // waiting for it would only delay the answer by the sentinel timeout.
            return CollectedLogs::default();
        }
        if take_one(&self.quiet) {
            // The runner said the action printed nothing and wrote no sentinels.
            return CollectedLogs::default();
        }
        self.shared
            .logs
            .collect(limit_bytes, wait_for_sentinel, self.log_timeout)
            .await
    }

    /// Writes one request line and waits for its reply, within `timeout`; true with a reply
    /// marked quiet (no sentinels were written after it).
    async fn request(&self, id: u64, line: Vec<u8>, timeout: Duration) -> (RunnerOutcome, bool) {
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.pending.lock();
            if pending.closed {
                return (RunnerOutcome::Exited, false);
            }
            pending.waiting.insert(id, tx);
        }
        self.uncollected.fetch_add(1, Ordering::AcqRel);
        let exchange = async {
            {
                let mut stdin = self.stdin.lock().await;
                let Some(pipe) = stdin.as_mut() else {
                    return (RunnerOutcome::Exited, false);
                };
                if pipe.write_all(&line).await.is_err() || pipe.flush().await.is_err() {
                    return (RunnerOutcome::Exited, false);
                }
            }
            self.await_reply(rx).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => {
                if !matches!(answer.0, RunnerOutcome::Replied(_)) {
                    self.shared.pending.lock().waiting.remove(&id);
                }
                answer
            }
            Err(_) => {
                self.shared.pending.lock().waiting.remove(&id);
                (RunnerOutcome::TimedOut, false)
            }
        }
    }

    async fn await_reply(&self, mut rx: oneshot::Receiver<Delivered>) -> (RunnerOutcome, bool) {
        let mut exited = self.exited.clone();
        let gone = async move {
            // Dropping the watch guard here keeps the future `Send`.
            let _ = exited.wait_for(|gone| *gone).await.map(|_| ());
        };
        let replied = |d: Delivered| (RunnerOutcome::Replied(d.reply), d.quiet);
        tokio::select! {
            biased;
            reply = &mut rx => reply.map_or((RunnerOutcome::Exited, false), replied),
            () = gone => {
                // The runner may have written its reply just before exiting; give the reply
                // reader a moment to deliver it.
                match tokio::time::timeout(EXIT_REPLY_GRACE, rx).await {
                    Ok(Ok(reply)) => replied(reply),
                    _ => (RunnerOutcome::Exited, false),
                }
            }
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Takes one from `count` unless it is zero; false when it was.
fn take_one(count: &AtomicU64) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// 128 random bits from the kernel, as hex: the nonce of one instance's log sentinel.
fn nonce() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Raises a pipe's capacity to [`PAYLOAD_PIPE_BYTES`], or as far as the system allows (an
/// unprivileged user is held to `/proc/sys/fs/pipe-max-size`); a smaller pipe still works.
fn enlarge_pipe(end: &impl std::os::fd::AsFd) {
    use nix::fcntl::{FcntlArg, fcntl};
    let mut size = PAYLOAD_PIPE_BYTES;
    while size > 64 * 1024 {
        if fcntl(end.as_fd(), FcntlArg::F_SETPIPE_SZ(size)).is_ok() {
            return;
        }
        size /= 2;
    }
}

/// A reply handed to its request.
#[derive(Debug)]
struct Delivered {
    reply: RunnerReply,
    /// The runner wrote no sentinels before this reply (see [`WireReply::quiet`]).
    quiet: bool,
}

impl From<RunnerReply> for Delivered {
    /// A reply the invoker made up (oversized or unreadable line): the runner's sentinels, if
    /// any, are still expected.
    fn from(reply: RunnerReply) -> Self {
        Self {
            reply,
            quiet: false,
        }
    }
}

/// Requests waiting for their reply, by id.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Delivered>>,
    /// The reply pipe ended: no reply will ever come.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    logs: logs::LogBuffer,
    /// The spawned process' exit status, once reaped.
    status: Mutex<Option<ExitStatus>>,
}

#[derive(serde::Deserialize)]
struct WireReply {
    id: Option<u64>,
    status: u16,
    /// The action printed nothing since the previous sentinels, and the runner wrote none
    /// after this request (absent: it wrote them, as runners always did before).
    #[serde(default)]
    quiet: bool,
    body: Box<RawValue>,
}

/// Bytes a reply line may hold beyond the result limit: the `{"id":N,"status":S,"body":` before
/// the body, the `}` and newline after it, and room for a runner that adds spaces.
pub(crate) const REPLY_ENVELOPE_BYTES: usize = 256;

/// How many times the line cap (result limit plus envelope) an oversized line is still
/// counted before its request is answered. Counting to the line's end gives the caller the
/// real size, but an action can write an endless line: past this the request is answered with
/// the size seen so far, and the rest is still discarded (never buffered) until the line ends
/// or the instance is gone.
const OVERSIZED_COUNT_FACTOR: u64 = 16;

/// Reads reply lines from fd 3 and hands each to the request with its id.
///
/// A line is read into memory only up to the result limit ([`MAX_RESULT_BYTES`]) plus
/// [`REPLY_ENVELOPE_BYTES`]: what a runner writes on fd 3 is under the action's control
/// (`fs.writeSync(3, …)`), so a whole-line read would let one action grow the server without
/// bound.
async fn read_replies(pipe: tokio::net::unix::pipe::Receiver, shared: Arc<Shared>) {
    read_replies_within(pipe, &shared, MAX_RESULT_BYTES).await;
}

/// [`read_replies`] with bodies of at most `max_body` bytes (lines of at most that plus
/// [`REPLY_ENVELOPE_BYTES`]).
async fn read_replies_within<R: AsyncRead + Unpin>(pipe: R, shared: &Shared, max_body: usize) {
    let cap = max_body.saturating_add(REPLY_ENVELOPE_BYTES);
    let count_limit = OVERSIZED_COUNT_FACTOR.saturating_mul(cap as u64);
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        if line.capacity() > 64 * 1024 {
            // An idle warm instance should not keep the buffer of its largest reply.
            line = Vec::new();
        }
        match read_line_capped(&mut reader, &mut line, cap).await {
            Ok(LineRead::Eof) | Err(_) => break,
            Ok(LineRead::Line) => deliver(shared, &line),
            Ok(LineRead::TooLong) => {
                let (skipped, ended) = skip_line(&mut reader, count_limit).await;
                let total = line.len() as u64 + skipped;
                tracing::warn!(bytes = total, "runner reply exceeds the result limit");
                let reply = || oversized_reply(body_bytes(&line, total), max_body);
                // The id comes first in the envelope; a line without one (an action that
                // wrote on fd 3 itself) may belong to any waiting request, and the reply
                // stream of this instance is broken for all of them.
                let (waiters, quiet) = {
                    let mut pending = shared.pending.lock();
                    match reply_id(&line).and_then(|id| pending.waiting.remove(&id)) {
                        Some(tx) => (vec![tx], head_is_quiet(&line)),
                        None => (pending.waiting.drain().map(|(_, tx)| tx).collect(), false),
                    }
                };
                for tx in waiters {
                    let _ = tx.send(Delivered {
                        reply: reply(),
                        quiet,
                    });
                }
                if !ended {
                    let (_, ended) = skip_line(&mut reader, u64::MAX).await;
                    if !ended {
                        break;
                    }
                }
            }
        }
    }
    let mut pending = shared.pending.lock();
    pending.closed = true;
    // Dropping the senders wakes every waiting request with "no reply".
    pending.waiting.clear();
}

/// Parses one complete reply line and answers its request.
fn deliver(shared: &Shared, line: &[u8]) {
    match serde_json::from_slice::<WireReply>(line) {
        Ok(WireReply {
            id: Some(id),
            status,
            quiet,
            body,
        }) => {
            let waiter = shared.pending.lock().waiting.remove(&id);
            if let Some(tx) = waiter {
                let _ = tx.send(Delivered {
                    reply: RunnerReply { status, body },
                    quiet,
                });
            }
        }
        Ok(reply) => {
            tracing::warn!(status = reply.status, body = %reply.body, "runner reply without id")
        }
        Err(e) => {
            tracing::warn!(error = %e, "malformed runner reply");
            // Runners write `{"id":N,` first: answer that request rather than let it
            // wait for its timeout.
            let waiter = reply_id(line).and_then(|id| shared.pending.lock().waiting.remove(&id));
            if let Some(tx) = waiter {
                let _ = tx.send(Delivered {
                    reply: invalid_reply(),
                    quiet: head_is_quiet(line),
                });
            }
        }
    }
}

/// How [`read_line_capped`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineRead {
    /// End of file before any byte.
    Eof,
    /// A whole line (with its newline, or the last bytes before end of file).
    Line,
    /// The line is longer than the cap; its first `cap` bytes are in the buffer and the
    /// reader stands right after them.
    TooLong,
}

/// Appends one line to `line`, but never more than `cap` bytes.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<LineRead> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let wanted = newline.map_or(available.len(), |i| i + 1);
        let room = cap.saturating_sub(line.len());
        if wanted > room {
            line.extend_from_slice(&available[..room]);
            reader.consume(room);
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(&available[..wanted]);
        reader.consume(wanted);
        if newline.is_some() {
            return Ok(LineRead::Line);
        }
    }
}

/// Discards input up to and including the next newline, but stops after about `limit` bytes.
/// Returns the bytes discarded (the newline not counted) and whether the line ended (newline,
/// end of file or a read error) rather than the limit being reached.
async fn skip_line<R: AsyncBufRead + Unpin>(reader: &mut R, limit: u64) -> (u64, bool) {
    let mut skipped: u64 = 0;
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) | Err(_) => return (skipped, true),
            Ok(available) => available,
        };
        if let Some(i) = available.iter().position(|b| *b == b'\n') {
            reader.consume(i + 1);
            return (skipped + i as u64, true);
        }
        let n = available.len();
        reader.consume(n);
        skipped += n as u64;
        if skipped >= limit {
            return (skipped, false);
        }
    }
}

/// Where the body of a reply line starts (after `"body":` and any spaces), if its envelope
/// shows it within [`REPLY_ENVELOPE_BYTES`].
fn body_start(head: &[u8]) -> Option<usize> {
    let prefix = head.len().min(REPLY_ENVELOPE_BYTES);
    head[..prefix]
        .windows(7)
        .position(|w| w == b"\"body\":")
        .map(|i| {
            let mut at = i + 7;
            while head.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            at
        })
}

/// Whether the envelope of a reply line that could not be parsed says `"quiet":true` before
/// its body (runners write the body last, so nothing the action returned can say it).
fn head_is_quiet(head: &[u8]) -> bool {
    let Some(start) = body_start(head) else {
        return false;
    };
    let envelope: Vec<u8> = head[..start]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    envelope.windows(13).any(|w| w == b"\"quiet\":true,")
}

/// The size of the body inside an oversized reply line of `total` bytes whose start is
/// `head`: the line less its envelope, when the head shows where the body begins.
fn body_bytes(head: &[u8], total: u64) -> u64 {
    match body_start(head) {
        // The closing brace of the envelope follows the body.
        Some(at) => total.saturating_sub(at as u64 + 1),
        None => total,
    }
}

/// What a request gets when its reply line exceeded the result limit: a developer error (the
/// instance is destroyed, as it may still be writing), with OpenWhisk's message.
fn oversized_reply(body_bytes: u64, max_bytes: usize) -> RunnerReply {
    let error = serde_json::json!({
        "error": format!(
            "The action produced a response that exceeded the allowed length: {body_bytes} > \
             {max_bytes} bytes."
        )
    });
    let body =
        serde_json::value::to_raw_value(&error).unwrap_or_else(|_| RawValue::NULL.to_owned());
    RunnerReply { status: 502, body }
}

/// The id of a reply line that is not valid JSON, read from its `{"id":N,` prefix (spaces
/// allowed, as Python's `json.dumps` writes `{"id": N, …`).
fn reply_id(line: &[u8]) -> Option<u64> {
    let skip_ws = |s: &[u8]| -> usize { s.iter().take_while(|b| b.is_ascii_whitespace()).count() };
    let rest = line.strip_prefix(b"{")?;
    let rest = &rest[skip_ws(rest)..];
    let rest = rest.strip_prefix(br#""id""#)?;
    let rest = &rest[skip_ws(rest)..];
    let rest = rest.strip_prefix(b":")?;
    let rest = &rest[skip_ws(rest)..];
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// What a request gets when its runner wrote an unreadable reply (a developer error, as an
/// OpenWhisk proxy answering with a broken body would be).
fn invalid_reply() -> RunnerReply {
    let body = RawValue::from_string(
        r#"{"error":"The action did not produce a valid JSON response."}"#.to_owned(),
    )
    .unwrap_or_else(|_| RawValue::NULL.to_owned());
    RunnerReply { status: 502, body }
}

/// The `/init` value as the runner reads it: `code_dir` replaces `code` for unpacked archives.
#[derive(serde::Serialize)]
struct InitWire<'a> {
    name: &'a str,
    main: &'a str,
    binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_dir: Option<&'a str>,
    env: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(serde::Serialize)]
struct InitLine<'a> {
    id: u64,
    op: &'static str,
    /// The sentinel line the runner writes after each request (outside `value`, which is
    /// OpenWhisk's `/init` value and partly the action's).
    log_sentinel: &'a str,
    value: InitWire<'a>,
}

#[derive(serde::Serialize)]
struct RunLine<'a> {
    id: u64,
    op: &'static str,
    #[serde(flatten)]
    run: &'a RunRequest,
}

/// Encodes one request as one line.
///
/// Raw values (a caller's body passed through unparsed) keep the whitespace they came with, and
/// JSON allows line breaks there. The runners split requests at `\n`, `\r` and `\r\n`, so a
/// pretty-printed body would otherwise end the request early, and a crafted one could append a
/// request of its own. JSON forbids raw control characters inside strings (serde escapes its
/// own, and a `RawValue` is valid JSON), so every CR or LF byte of the encoding is insignificant
/// whitespace and becomes a space: whatever a caller sends stays inside this one line.
fn to_line<T: serde::Serialize>(value: &T, size_hint: usize) -> Result<Vec<u8>, ContainerError> {
    let mut line = Vec::with_capacity(size_hint + 256);
    serde_json::to_writer(&mut line, value).map_err(std::io::Error::other)?;
    for b in &mut line {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_line_carries_id_op_and_the_raw_value_unchanged() {
        let run = run_with(r#"{"b": [1, 2]}"#);
        let line = to_line(
            &RunLine {
                id: 7,
                op: "run",
                run: &run,
            },
            0,
        )
        .expect("line");
        let text = String::from_utf8(line).expect("utf8");
        assert!(
            text.starts_with(r#"{"id":7,"op":"run","value":{"b": [1, 2]},"namespace":"guest""#)
        );
        assert!(text.ends_with("}\n"));
        assert!(!text.contains("api_key"));
    }

    fn run_with(value: &str) -> RunRequest {
        RunRequest {
            value: RawValue::from_string(value.into()).expect("raw"),
            namespace: "guest".into(),
            action_name: "/guest/a".into(),
            action_version: "0.0.1".into(),
            activation_id: "abc".into(),
            transaction_id: "tid".into(),
            deadline: "123".into(),
            api_key: None,
        }
    }

    fn run_line(run: &RunRequest) -> String {
        let line = to_line(
            &RunLine {
                id: 3,
                op: "run",
                run,
            },
            0,
        )
        .expect("line");
        String::from_utf8(line).expect("utf8")
    }

    #[test]
    fn line_breaks_in_a_raw_value_stay_inside_the_one_request_line() {
        for body in [
            "{\n  \"name\": \"Pi\"\n}",
            "{\r  \"name\": \"Pi\"\r}",
            "{\r\n  \"name\": \"Pi\"\r\n}",
            "{\"a\":\n{\"id\":3,\"op\":\"run\",\"value\":{\"injected\":true},\"namespace\":\"spoofed\"}\n}",
        ] {
            let text = run_line(&run_with(body));
            assert_eq!(text.matches('\n').count(), 1, "{text:?}");
            assert!(!text.contains('\r'), "{text:?}");
            assert!(text.ends_with('\n'));
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("one JSON value");
            let original: serde_json::Value = serde_json::from_str(body).expect("json");
            assert_eq!(parsed["value"], original, "{body:?}");
            assert_eq!(parsed["namespace"], "guest");
        }
    }

    #[test]
    fn escaped_line_breaks_inside_strings_are_kept() {
        let text = run_line(&run_with(r#"{"s":"a\nb\r\nc"}"#));
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(parsed["value"]["s"], "a\nb\r\nc");
    }

    #[test]
    fn quiet_is_read_only_from_the_envelope_before_the_body() {
        assert!(head_is_quiet(
            br#"{"id":4,"status":200,"quiet":true,"body":{"a":"#
        ));
        assert!(head_is_quiet(
            br#"{"id": 4, "status": 200, "quiet": true, "body": NaN}"#
        ));
        assert!(!head_is_quiet(
            br#"{"id":4,"status":200,"body":{"quiet":true,"#
        ));
        assert!(!head_is_quiet(
            br#"{"id":4,"status":200,"quiet":false,"body":{}"#
        ));
        assert!(!head_is_quiet(br#"{"id":4,"status":200,"quiet":true"#));
    }

    #[tokio::test]
    async fn a_quiet_reply_is_handed_over_as_quiet_and_others_as_loud() {
        let (shared, mut receivers) = shared_with_waiters(3);
        let input = concat!(
            r#"{"id":1,"status":200,"quiet":true,"body":{}}"#,
            "\n",
            r#"{"id":2,"status":200,"body":{"quiet":true}}"#,
            "\n",
            r#"{"id": 3, "status": 200, "quiet": true, "body": NaN}"#,
            "\n",
        );
        read_replies_within(input.as_bytes(), &shared, 1000).await;
        let quiet: Vec<bool> = receivers
            .iter_mut()
            .map(|rx| rx.try_recv().expect("answered").quiet)
            .collect();
        assert_eq!(quiet, [true, false, true]);
    }

    #[test]
    fn unreadable_reply_is_matched_by_its_id_prefix() {
        assert_eq!(reply_id(br#"{"id":42,"status":200,"body":NaN}"#), Some(42));
        assert_eq!(reply_id(br#"{"status":200}"#), None);
        assert_eq!(reply_id(br#"{"id":null,"status":500}"#), None);
        assert_eq!(
            reply_id(br#"{"id": 9, "status": 200, "body": NaN}"#),
            Some(9)
        );
        assert_eq!(invalid_reply().status, 502);
        let body: serde_json::Value =
            serde_json::from_str(invalid_reply().body.get()).expect("json");
        assert!(body["error"].is_string());
    }

    #[tokio::test]
    async fn reply_lines_are_read_whole_up_to_the_cap_and_no_further() {
        let input: &[u8] = b"short\nexactly10\nmuch longer than ten\ntail";
        let mut reader = BufReader::with_capacity(4, input);
        async fn next(reader: &mut BufReader<&[u8]>) -> (LineRead, Vec<u8>) {
            let mut line = Vec::new();
            let read = read_line_capped(reader, &mut line, 10).await.expect("read");
            (read, line)
        }
        assert_eq!(
            next(&mut reader).await,
            (LineRead::Line, b"short\n".to_vec())
        );
        assert_eq!(
            next(&mut reader).await,
            (LineRead::Line, b"exactly10\n".to_vec())
        );
        assert_eq!(
            next(&mut reader).await,
            (LineRead::TooLong, b"much longe".to_vec())
        );
        assert_eq!(skip_line(&mut reader, u64::MAX).await, (10, true));
        assert_eq!(next(&mut reader).await, (LineRead::Line, b"tail".to_vec()));
        assert_eq!(next(&mut reader).await.0, LineRead::Eof);
    }

    #[tokio::test]
    async fn skipping_an_endless_line_stops_at_the_limit_without_buffering() {
        let endless = tokio::io::repeat(b'x');
        let mut reader = BufReader::with_capacity(1024, endless);
        let (skipped, ended) = skip_line(&mut reader, 100_000).await;
        assert!(!ended);
        assert!((100_000..101_024).contains(&skipped), "{skipped}");
    }

    #[test]
    fn oversized_reply_names_the_body_size_and_is_a_developer_error() {
        let head = br#"{"id":2,"status":200,"body":{"a":"xxxx"#;
        // The whole line: head, 2 MB more of body, `"}}`.
        let total = head.len() as u64 + 2_000_000 + 3;
        let size = body_bytes(head, total);
        assert_eq!(size, total - 28 - 1);
        assert_eq!(body_bytes(b"xxxxxxxx", 5_000), 5_000);
        assert_eq!(
            body_bytes(br#"{"id": 1, "status": 200, "body": [1"#, 100),
            100 - 33 - 1
        );
        let outcome = RunnerOutcome::Replied(oversized_reply(size, MAX_RESULT_BYTES));
        let r = crate::container::response::run_response(&outcome, Duration::from_secs(1));
        assert_eq!(r.status, edgewhisk_entity::Status::DeveloperError);
        assert_eq!(
            r.result,
            Some(serde_json::json!({"error": format!(
                "The action produced a response that exceeded the allowed length: {size} > \
                 1048576 bytes."
            )}))
        );
        assert!(crate::container::response::destroys_instance(r.status));
    }

    fn shared_with_waiters(ids: u64) -> (Shared, Vec<oneshot::Receiver<Delivered>>) {
        let shared = Shared {
            pending: Mutex::new(Pending::default()),
            logs: logs::LogBuffer::new(1024, logs::sentinel_with_nonce("n")),
            status: Mutex::new(None),
        };
        let mut receivers = Vec::new();
        for id in 1..=ids {
            let (tx, rx) = oneshot::channel();
            shared.pending.lock().waiting.insert(id, tx);
            receivers.push(rx);
        }
        (shared, receivers)
    }

    /// A reply line a runner could write, or something close to one.
    fn reply_line() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..6, 100u16..600, "[ -~]{0,80}").prop_map(|(id, status, text)| {
                format!(
                    r#"{{"id":{id},"status":{status},"body":{}}}"#,
                    json_string(&text)
                )
                .into_bytes()
            }),
            (0u64..6, "[ -~]{0,80}").prop_map(|(id, text)| {
                format!(r#"{{"id": {id}, "status": 200, "body": {text}"#).into_bytes()
            }),
            proptest::collection::vec(any::<u8>(), 0..200),
        ]
    }

    fn json_string(text: &str) -> String {
        serde_json::to_string(text).expect("a string encodes")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_reply_stream_answers_each_request_at_most_once_within_the_cap(
            lines in proptest::collection::vec(reply_line(), 0..12),
            max_body in 1usize..200,
            ids in 0u64..6,
        ) {
            let mut input = Vec::new();
            for l in &lines {
                input.extend_from_slice(l);
                input.push(b'\n');
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let (shared, receivers) = shared_with_waiters(ids);
            rt.block_on(read_replies_within(&input[..], &shared, max_body));
            let pending = shared.pending.lock();
            proptest::prop_assert!(pending.closed);
            proptest::prop_assert!(pending.waiting.is_empty());
            let cap = max_body + REPLY_ENVELOPE_BYTES;
            for mut rx in receivers {
                if let Ok(d) = rx.try_recv() {
                    // Our own error bodies are short; a runner's body came from a line within
                    // the cap.
                    proptest::prop_assert!(d.reply.body.get().len() <= cap.max(200));
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_reply_reader(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            max_body in 0usize..64,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let (shared, _receivers) = shared_with_waiters(3);
            rt.block_on(read_replies_within(&input[..], &shared, max_body));
            proptest::prop_assert!(shared.pending.lock().closed);
            let _ = reply_id(&input);
            let _ = body_bytes(&input, input.len() as u64);
        }

        #[test]
        fn capped_lines_never_exceed_the_cap(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            cap in 1usize..300,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            rt.block_on(async {
                let mut reader = BufReader::with_capacity(7, &input[..]);
                let mut consumed = 0usize;
                loop {
                    let mut line = Vec::new();
                    match read_line_capped(&mut reader, &mut line, cap).await.expect("read") {
                        LineRead::Eof => break,
                        LineRead::Line => {
                            assert!(line.len() <= cap);
                            consumed += line.len();
                        }
                        LineRead::TooLong => {
                            assert_eq!(line.len(), cap);
                            let (skipped, ended) = skip_line(&mut reader, u64::MAX).await;
                            assert!(ended);
                            let skipped = usize::try_from(skipped).expect("fits");
                            let end = consumed + cap + skipped;
                            consumed = end + usize::from(end < input.len());
                        }
                    }
                }
                assert_eq!(consumed, input.len());
            });
        }
    }
}
