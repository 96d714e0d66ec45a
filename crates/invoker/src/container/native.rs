//! The native runner: a small shim, started as `edgewhisk native-runner <protocol>`, that
//! speaks the runner pipe protocol (`docs/design/001-runner-protocol.md`) on its own stdio and
//! fd 3 and runs an action's `exec` file with one of OpenWhisk's two native protocols:
//!
//! - [`NativeProtocol::ActionLoop`] (`go:*` kinds, openwhisk-runtime-go's proxy): `exec` is
//!   started once, at init, and acknowledges with `{"ok":true}` on its fd 3; each run is one
//!   JSON line on its stdin and one JSON line back on its fd 3.
//! - [`NativeProtocol::Skeleton`] (`blackbox` with `openwhisk/dockerskeleton`,
//!   openwhisk-runtime-docker's `actionproxy.py`): `exec` is run once per activation with the
//!   arguments as its command-line argument (and on its stdin); the last line of its stdout is
//!   the result.
//!
//! Plain std and synchronous: one request at a time, in arrival order (a native instance never
//! runs activations concurrently). The child's stderr, and in the action loop its stdout too,
//! are the shim's own log pipes, so the sentinels the shim writes after each run follow
//! everything the child flushed before it answered. See `docs/design/021-native-actions.md`.

use super::archive::NATIVE_EXECUTABLE;
use super::response::MAX_RESULT_BYTES;
use command_fds::{CommandFdExt as _, FdMapping};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// The hidden subcommand of the `edgewhisk` binary that runs this shim.
pub const SUBCOMMAND: &str = "native-runner";

/// OpenWhisk's activation-end marker, written until init names the instance's own line.
const BARE_SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Linux' limit on one command-line argument (`MAX_ARG_STRLEN`, 32 pages, less its NUL);
/// `actionproxy.py` passes larger arguments on stdin only, and so does the skeleton here.
pub const MAX_ARGUMENT_BYTES: usize = 131_071;

/// The longest acknowledgement line an action-loop `exec` may write at start.
const MAX_ACK_BYTES: usize = 64 * 1024;

/// How the shim runs an action's `exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeProtocol {
    /// openwhisk-runtime-go's action loop: one long-lived process, JSON lines in and out.
    ActionLoop,
    /// openwhisk-runtime-docker's skeleton: one process per activation.
    Skeleton,
}

impl NativeProtocol {
    /// The protocol of a runtime kind: `go:*` kinds use the action loop and `blackbox` the
    /// skeleton; `None` for every other kind.
    pub fn for_kind(kind: &str) -> Option<Self> {
        match kind.split(':').next().unwrap_or(kind) {
            "go" => Some(Self::ActionLoop),
            "blackbox" => Some(Self::Skeleton),
            _ => None,
        }
    }

    /// The name the subcommand takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActionLoop => "action-loop",
            Self::Skeleton => "skeleton",
        }
    }

    /// The protocol named `name` ([`NativeProtocol::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::ActionLoop, Self::Skeleton]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Runs the shim on this process' stdin, stdout, stderr and fd 3 until stdin ends; returns the
/// exit code.
pub fn run(protocol: NativeProtocol) -> i32 {
    match run_on_stdio(protocol) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("edgewhisk native runner: {e}");
            1
        }
    }
}

fn run_on_stdio(protocol: NativeProtocol) -> std::io::Result<()> {
    use std::os::fd::AsFd as _;
    // A new descriptor of the reply pipe, closed on exec; every child gets something else as
    // its fd 3, so no action can write replies of its own.
    let replies = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")?;
    let logs = Logs {
        out: File::from(std::io::stdout().as_fd().try_clone_to_owned()?),
        err: File::from(std::io::stderr().as_fd().try_clone_to_owned()?),
    };
    let env = std::env::vars_os()
        .filter(|(k, _)| k != "__OW_ALLOW_CONCURRENT")
        .collect();
    let stdin = std::io::stdin().lock();
    Shim::new(protocol, logs, env, std::env::current_dir()?).serve(stdin, replies)
}

/// The instance's log pipes: the shim writes its sentinels there and children get them as
/// their stdout (action loop) and stderr.
#[derive(Debug)]
pub(crate) struct Logs {
    /// The instance's stdout.
    pub(crate) out: File,
    /// The instance's stderr.
    pub(crate) err: File,
}

/// What one request is answered with.
struct Reply {
    status: u16,
    /// A JSON text.
    body: Vec<u8>,
    /// Whether the shim stops after answering (the action's process is gone).
    last: bool,
}

impl Reply {
    fn ok(body: &[u8]) -> Self {
        Self {
            status: 200,
            body: body.to_vec(),
            last: false,
        }
    }

    fn error(status: u16, message: &str) -> Self {
        let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
            .expect("a JSON object always encodes");
        Self {
            status,
            body,
            last: false,
        }
    }
}

/// The `/init` value the invoker sends (`code_dir` in place of `code` for an unpacked zip).
#[derive(serde::Deserialize)]
struct InitValue {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    code_dir: Option<String>,
    #[serde(default)]
    env: serde_json::Map<String, serde_json::Value>,
}

/// A running action-loop `exec`.
struct Loop {
    child: Child,
    stdin: ChildStdin,
    replies: BufReader<File>,
}

/// The shim's state.
struct Shim {
    protocol: NativeProtocol,
    logs: Logs,
    /// The environment children start from (the shim's own).
    env: Vec<(OsString, OsString)>,
    /// Where a script action's text is written (the instance's own working directory).
    work_dir: PathBuf,
    sentinel: String,
    /// Set by a successful init: the executable and the variables of `init.value.env`.
    exec: Option<(PathBuf, Vec<(String, String)>)>,
    /// Whether an init was received, successful or not.
    initialized: bool,
    action: Option<Loop>,
}

impl Shim {
    fn new(
        protocol: NativeProtocol,
        logs: Logs,
        env: Vec<(OsString, OsString)>,
        work_dir: PathBuf,
    ) -> Self {
        Self {
            protocol,
            logs,
            env,
            work_dir,
            sentinel: BARE_SENTINEL.to_owned(),
            exec: None,
            initialized: false,
            action: None,
        }
    }

    /// Answers request lines from `input` on `replies` until `input` ends or the action's
    /// process is gone.
    fn serve(mut self, mut input: impl BufRead, mut replies: impl Write) -> std::io::Result<()> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let (id, reply) = self.handle(&line);
            let mut out = Vec::with_capacity(reply.body.len() + 48);
            match id {
                Some(id) => write!(out, "{{\"id\":{id},")?,
                None => out.extend_from_slice(b"{\"id\":null,"),
            }
            write!(out, "\"status\":{},\"body\":", reply.status)?;
            out.extend_from_slice(&reply.body);
            out.extend_from_slice(b"}\n");
            replies.write_all(&out)?;
            replies.flush()?;
            if reply.last {
                break;
            }
        }
        if let Some(mut action) = self.action.take() {
            drop(action.stdin);
            let _ = action.child.wait();
        }
        Ok(())
    }

    /// Handles one request line, writing the sentinels after a run or a failed init.
    fn handle(&mut self, line: &[u8]) -> (Option<u64>, Reply) {
        let Ok(fields) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(line) else {
            return (None, Reply::error(500, "Bad request."));
        };
        let id = fields
            .get("id")
            .and_then(|v| serde_json::from_str::<u64>(v.get()).ok());
        let op = fields
            .get("op")
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
        let reply = match op.as_deref() {
            Some("init") => {
                if let Some(s) = fields
                    .get("log_sentinel")
                    .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                {
                    self.sentinel = s;
                }
                let reply = self.init(fields.get("value").copied());
                if reply.status != 200 {
                    self.write_sentinels();
                }
                reply
            }
            Some("run") => {
                let reply = self.run(&fields);
                self.write_sentinels();
                reply
            }
            _ => Reply::error(500, "Bad request."),
        };
        (id, reply)
    }

    /// Writes the instance's sentinel line on stdout, then on stderr.
    fn write_sentinels(&self) {
        let line = format!("{}\n", self.sentinel);
        let _ = (&self.logs.out).write_all(line.as_bytes());
        let _ = (&self.logs.err).write_all(line.as_bytes());
    }

    fn init(&mut self, value: Option<&RawValue>) -> Reply {
        if self.initialized {
            return Reply::error(403, "Cannot initialize the action more than once.");
        }
        self.initialized = true;
        let Some(value) = value.and_then(|v| serde_json::from_str::<InitValue>(v.get()).ok())
        else {
            return Reply::error(403, "Missing main/no code to execute.");
        };
        let env = value
            .env
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        let exec = match (value.code_dir, value.code) {
            (Some(dir), _) => Path::new(&dir).join(NATIVE_EXECUTABLE),
            (None, Some(code)) if !code.is_empty() => {
                if self.protocol == NativeProtocol::ActionLoop && !code.starts_with("#!") {
                    return Reply::error(
                        502,
                        "cannot start action: go actions run a precompiled executable: send a \
                         zip with an exec file built for this machine at its root",
                    );
                }
                match write_script(&self.work_dir, &code) {
                    Ok(path) => path,
                    Err(e) => {
                        let _ = writeln!(&self.logs.err, "cannot write the action's code: {e}");
                        return Reply::error(502, NO_BINARY_AT_INIT);
                    }
                }
            }
            _ => return Reply::error(403, "Missing main/no code to execute."),
        };
        if !is_executable(&exec) {
            let _ = writeln!(
                &self.logs.err,
                "the action has no executable file 'exec' at the root of its code"
            );
            return Reply::error(502, NO_BINARY_AT_INIT);
        }
        match self.protocol {
            NativeProtocol::Skeleton => {
                self.exec = Some((exec, env));
                Reply::ok(br#"{"ok":true}"#)
            }
            NativeProtocol::ActionLoop => match self.start_loop(&exec, &env) {
                Ok(()) => {
                    self.exec = Some((exec, env));
                    Reply::ok(br#"{"ok":true}"#)
                }
                Err(message) => Reply::error(502, &format!("cannot start action: {message}")),
            },
        }
    }

    /// Starts the action-loop `exec` and waits for its acknowledgement.
    fn start_loop(&mut self, exec: &Path, env: &[(String, String)]) -> Result<(), String> {
        // Closed on exec: the child gets the write end as its fd 3 only.
        let (reader, writer) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exec);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("__OW_WAIT_FOR_ACK", "1")
            .stdin(Stdio::piped())
            .stdout(clone_stdio(&self.logs.out).map_err(|e| e.to_string())?)
            .stderr(clone_stdio(&self.logs.err).map_err(|e| e.to_string())?);
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: writer,
            child_fd: 3,
        }])
        .map_err(|e| e.to_string())?;
        let mut child = spawn(&mut cmd).map_err(|e| {
            let _ = writeln!(&self.logs.err, "cannot run the action's exec: {e}");
            "command exited".to_owned()
        })?;
        // Our copy of the write end goes with the command, so end of file means the child
        // (and whatever it started with the pipe) is gone.
        drop(cmd);
        let stdin = child.stdin.take().expect("stdin was piped");
        let mut replies = BufReader::with_capacity(64 * 1024, File::from(reader));
        #[derive(serde::Deserialize)]
        struct Ack {
            #[serde(default)]
            ok: bool,
        }
        let mut ack = Vec::new();
        let failure = match read_line_capped(&mut replies, &mut ack, MAX_ACK_BYTES) {
            Ok(LineRead::Line) if serde_json::from_slice::<Ack>(&ack).is_ok_and(|a| a.ok) => None,
            Ok(LineRead::Eof) | Err(_) => Some("Command exited abruptly during initialization."),
            Ok(_) => Some("The action did not initialize properly."),
        };
        if let Some(message) = failure {
            let _ = child.kill();
            let _ = child.wait();
            return Err(message.to_owned());
        }
        self.action = Some(Loop {
            child,
            stdin,
            replies,
        });
        Ok(())
    }

    fn run(&mut self, fields: &BTreeMap<String, &RawValue>) -> Reply {
        let Some((exec, env)) = &self.exec else {
            return Reply::error(
                502,
                "The action failed to locate a binary. See logs for details.",
            );
        };
        let value = fields.get("value").copied();
        match self.protocol {
            NativeProtocol::ActionLoop => {
                let Some(action) = self.action.as_mut() else {
                    return Reply::error(500, "no action defined yet");
                };
                run_loop(action, fields)
            }
            NativeProtocol::Skeleton => {
                let value = value.map_or("{}", RawValue::get);
                let first = value.trim_start().bytes().next();
                if !matches!(first, Some(b'{' | b'[')) {
                    return Reply::error(
                        404,
                        "The action did not receive a dictionary or array as an argument.",
                    );
                }
                let mut run_env: Vec<(String, String)> = env.clone();
                for (key, raw) in fields {
                    if matches!(key.as_str(), "id" | "op" | "value" | "log_sentinel") {
                        continue;
                    }
                    if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
                        run_env.push((format!("__OW_{}", key.to_uppercase()), text));
                    }
                }
                run_skeleton(exec, value, &self.env, &run_env, &self.logs)
            }
        }
    }
}

/// The failed init of an action without a runnable `exec` (OpenWhisk's proxies' text).
const NO_BINARY_AT_INIT: &str =
    "The action failed to generate or locate a binary. See logs for details.";

/// The reply when the action's answer is not a JSON object or array.
const NOT_A_DICTIONARY: &str = "The action did not return a dictionary or array.";

/// One action-loop activation: the request line without the shim's `id`, `op` and
/// `log_sentinel`, the `value` first, as openwhisk-runtime-go sends its `/run` body.
fn run_loop(action: &mut Loop, fields: &BTreeMap<String, &RawValue>) -> Reply {
    let mut line = Vec::with_capacity(fields.get("value").map_or(0, |v| v.get().len()) + 512);
    line.push(b'{');
    let rest = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "id" | "op" | "log_sentinel" | "value"));
    let value = fields.get_key_value("value");
    for (n, (key, raw)) in value.into_iter().chain(rest).enumerate() {
        if n > 0 {
            line.push(b',');
        }
        serde_json::to_writer(&mut line, key).expect("a string always encodes");
        line.push(b':');
        line.extend_from_slice(raw.get().as_bytes());
    }
    line.extend_from_slice(b"}\n");
    let exited = || Reply {
        last: true,
        ..Reply::error(400, "command exited")
    };
    if action
        .stdin
        .write_all(&line)
        .and_then(|()| action.stdin.flush())
        .is_err()
    {
        return exited();
    }
    let mut answer = Vec::new();
    match read_line_capped(&mut action.replies, &mut answer, MAX_RESULT_BYTES) {
        Ok(LineRead::Eof) | Err(_) => exited(),
        Ok(LineRead::Line) => result_of(&answer),
        Ok(LineRead::TooLong) => {
            let rest = skip_line(&mut action.replies, 16 * MAX_RESULT_BYTES as u64);
            oversized(answer.len() as u64 + rest)
        }
    }
}

/// One skeleton activation: `exec` run with the arguments as its only command-line argument
/// (when they fit) and on its stdin; the last line of its stdout is the result, the lines
/// before it are logs.
fn run_skeleton(
    exec: &Path,
    value: &str,
    base_env: &[(OsString, OsString)],
    env: &[(String, String)],
    logs: &Logs,
) -> Reply {
    let not_a_dictionary = |log: &str| {
        let _ = writeln!(&logs.out, "{log}");
        Reply::error(502, NOT_A_DICTIONARY)
    };
    let mut cmd = Command::new(exec);
    if value.len() <= MAX_ARGUMENT_BYTES {
        cmd.arg(value);
    }
    cmd.env_clear()
        .envs(base_env.iter().map(|(k, v)| (k, v)))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    match clone_stdio(&logs.err) {
        Ok(err) => cmd.stderr(err),
        Err(e) => return not_a_dictionary(&e.to_string()),
    };
    // Nothing of the shim's fd 3 (the reply pipe) reaches the action.
    let null = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return not_a_dictionary(&e.to_string()),
    };
    if let Err(e) = cmd.fd_mappings(vec![FdMapping {
        parent_fd: null.into(),
        child_fd: 3,
    }]) {
        return not_a_dictionary(&e.to_string());
    }
    let mut child = match spawn(&mut cmd) {
        Ok(child) => child,
        Err(e) => return not_a_dictionary(&e.to_string()),
    };
    drop(cmd);
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let stdout = child.stdout.take().expect("stdout was piped");
    let last = std::thread::scope(|scope| {
        // Written from a thread of its own: an exec that never reads its stdin, or reads it
        // only after writing much output, must not stop the output from being read.
        scope.spawn(move || {
            let _ = stdin.write_all(value.as_bytes());
        });
        split_last_line(stdout, &logs.out)
    });
    let _ = child.wait();
    let last = match last {
        Ok(last) => last,
        Err(e) => return not_a_dictionary(&e.to_string()),
    };
    match last {
        LastLine::Text(text) => {
            let trimmed = text.trim_ascii();
            if is_object_or_array(trimmed) {
                Reply::ok(trimmed)
            } else {
                not_a_dictionary(&String::from_utf8_lossy(trimmed))
            }
        }
        LastLine::Oversized(bytes) => oversized(bytes),
    }
}

/// The last line of a skeleton's stdout.
#[derive(Debug, PartialEq, Eq)]
enum LastLine {
    /// Its bytes, without the newline.
    Text(Vec<u8>),
    /// It was longer than the result limit (already copied to the logs); its size.
    Oversized(u64),
}

/// Copies every line of `output` but the last to `logs` as it arrives and returns the last
/// (the text after the last newline, or before it when the output ends with one). Holds at
/// most the result limit in memory: a longer line goes to the logs as it streams.
fn split_last_line(output: impl Read, logs: &File) -> std::io::Result<LastLine> {
    let mut reader = BufReader::with_capacity(64 * 1024, output);
    let mut logs = BufWriter::new(logs);
    let mut held = Vec::new();
    // Bytes of the current line already streamed to the logs (it outgrew `held`).
    let mut streamed: u64 = 0;
    let mut ended = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        if ended {
            // A new line starts: the previous one was a log line.
            if streamed == 0 {
                logs.write_all(&held)?;
            }
            logs.write_all(b"\n")?;
            held.clear();
            streamed = 0;
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let part = &available[..newline.unwrap_or(available.len())];
        if streamed > 0 {
            logs.write_all(part)?;
            streamed += part.len() as u64;
        } else {
            held.extend_from_slice(part);
            if held.len() > MAX_RESULT_BYTES {
                logs.write_all(&held)?;
                streamed = held.len() as u64;
                held = Vec::new();
            }
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        ended = newline.is_some();
        reader.consume(used);
    }
    if streamed > 0 {
        logs.write_all(b"\n")?;
        logs.flush()?;
        return Ok(LastLine::Oversized(streamed));
    }
    logs.flush()?;
    Ok(LastLine::Text(held))
}

/// The reply to an action's answer line: the answer itself when it is a JSON object or array.
fn result_of(answer: &[u8]) -> Reply {
    let trimmed = answer.trim_ascii();
    if is_object_or_array(trimmed) {
        Reply::ok(trimmed)
    } else {
        Reply::error(502, NOT_A_DICTIONARY)
    }
}

fn is_object_or_array(text: &[u8]) -> bool {
    matches!(text.first(), Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// The developer error of an answer over the result limit, with the text the invoker gives
/// an over-long reply line (`container/process/connection.rs`).
fn oversized(bytes: u64) -> Reply {
    Reply::error(
        502,
        &format!(
            "The action produced a response that exceeded the allowed length: {bytes} > \
             {MAX_RESULT_BYTES} bytes."
        ),
    )
}

/// Writes a script action's text as an executable file `exec` in `dir` (the instance's own
/// working directory: the process backend's instance directory, `/tmp` under runc, which is
/// not mounted noexec).
fn write_script(dir: &Path, code: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(NATIVE_EXECUTABLE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&path)?;
    file.write_all(code.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

fn is_executable(path: &Path) -> bool {
    path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// Spawns `cmd`, retrying while its program is busy: a script written at init may still be
/// open for writing in a process forked meanwhile (by another thread of a test harness) until
/// that process execs, and `execve` refuses such a file with `ETXTBSY`.
fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 200 => {
                tries += 1;
                #[allow(clippy::disallowed_methods, reason = "the shim is synchronous")]
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

fn clone_stdio(file: &File) -> std::io::Result<Stdio> {
    Ok(Stdio::from(file.try_clone()?))
}

/// How [`read_line_capped`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineRead {
    /// End of file before any byte.
    Eof,
    /// A whole line (newline not kept), or the last bytes before end of file.
    Line,
    /// The line is longer than the cap; its first `cap` bytes and one more are in the buffer.
    TooLong,
}

/// Reads one line into `line` (without its newline), but never more than `cap` bytes and one.
fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<LineRead> {
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    if reader.by_ref().take(limit).read_until(b'\n', line)? == 0 {
        return Ok(LineRead::Eof);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(LineRead::Line);
    }
    Ok(if line.len() > cap {
        LineRead::TooLong
    } else {
        LineRead::Line
    })
}

/// Discards input up to and including the next newline, but stops after about `limit` bytes;
/// returns the bytes discarded, the newline not counted.
fn skip_line(reader: &mut impl BufRead, limit: u64) -> u64 {
    let mut chunk = Vec::with_capacity(64 * 1024);
    let mut skipped = 0;
    while skipped < limit {
        chunk.clear();
        match reader
            .by_ref()
            .take(64 * 1024)
            .read_until(b'\n', &mut chunk)
        {
            Ok(0) | Err(_) => break,
            Ok(n) => skipped += n as u64,
        }
        if chunk.last() == Some(&b'\n') {
            return skipped - 1;
        }
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX abc";

    /// A shim whose logs go to two files in a temporary directory.
    struct Harness {
        dir: tempfile::TempDir,
        protocol: NativeProtocol,
    }

    impl Harness {
        fn new(protocol: NativeProtocol) -> Self {
            Self {
                dir: tempfile::tempdir().expect("tempdir"),
                protocol,
            }
        }

        /// Serves `requests` (lines) and returns the replies and the two logs.
        fn serve(&self, requests: &[String]) -> (Vec<serde_json::Value>, String, String) {
            let open = |name: &str| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join(name))
                    .expect("log file")
            };
            let logs = Logs {
                out: open("out"),
                err: open("err"),
            };
            let work = self.dir.path().join("work");
            std::fs::create_dir_all(&work).expect("work dir");
            let env = vec![("PATH".into(), "/usr/bin:/bin".into())];
            let input = requests
                .iter()
                .map(|r| format!("{r}\n"))
                .collect::<String>();
            let mut replies = Vec::new();
            Shim::new(self.protocol, logs, env, work)
                .serve(Cursor::new(input), &mut replies)
                .expect("serve");
            let replies = replies
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).expect("reply is JSON"))
                .collect();
            let read = |name: &str| {
                std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
            };
            (replies, read("out"), read("err"))
        }
    }

    fn init_script(id: u64, script: &str) -> String {
        serde_json::json!({
            "id": id, "op": "init", "log_sentinel": SENTINEL,
            "value": {"name": "a", "main": "main", "binary": false, "code": script,
                      "env": {"__OW_NAMESPACE": "guest", "GREETING": "hi"}},
        })
        .to_string()
    }

    fn run(id: u64, value: &str) -> String {
        format!(
            r#"{{"id":{id},"op":"run","value":{value},"namespace":"guest","action_name":"/guest/a","activation_id":"act{id}","deadline":"1"}}"#
        )
    }

    fn status_body(reply: &serde_json::Value) -> (u64, serde_json::Value) {
        (
            reply["status"].as_u64().expect("status"),
            reply["body"].clone(),
        )
    }

    /// An action loop in sh: acknowledges, then per request line logs it and answers with
    /// the count of requests seen (state kept in the process) and a greeting from its env.
    const LOOP_SCRIPT: &str = r#"#!/bin/sh
[ "$__OW_WAIT_FOR_ACK" = 1 ] && echo '{"ok":true}' >&3
n=0
while read -r line; do
  n=$((n+1))
  echo "got $line"
  echo "to stderr $n" >&2
  case "$line" in
    *number*) echo '42' >&3 ;;
    *crash*) exit 3 ;;
    *) echo "{\"n\":$n,\"greeting\":\"$GREETING\"}" >&3 ;;
  esac
done
"#;

    #[test]
    fn action_loop_keeps_one_process_and_answers_each_line() {
        let h = Harness::new(NativeProtocol::ActionLoop);
        let (replies, out, err) = h.serve(&[
            init_script(1, LOOP_SCRIPT),
            run(2, r#"{"name":"x"}"#),
            run(3, r#"{"name":"y"}"#),
        ]);
        assert_eq!(
            status_body(&replies[0]),
            (200, serde_json::json!({"ok": true}))
        );
        assert_eq!(replies[1]["id"], 2);
        assert_eq!(
            status_body(&replies[1]),
            (200, serde_json::json!({"n": 1, "greeting": "hi"}))
        );
        assert_eq!(
            status_body(&replies[2]),
            (200, serde_json::json!({"n": 2, "greeting": "hi"}))
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[0].starts_with(r#"got {"value":{"name":"x"},"#),
            "{out}"
        );
        assert!(lines[0].contains(r#""activation_id":"act2""#), "{out}");
        assert!(!lines[0].contains(r#""id""#), "{out}");
        assert_eq!(lines[1], SENTINEL);
        assert_eq!(lines[3], SENTINEL);
        assert_eq!(
            err,
            format!("to stderr 1\n{SENTINEL}\nto stderr 2\n{SENTINEL}\n")
        );
    }

    #[test]
    fn action_loop_refuses_non_objects_and_reports_an_exit_as_command_exited() {
        let h = Harness::new(NativeProtocol::ActionLoop);
        let (replies, out, _) = h.serve(&[
            init_script(1, LOOP_SCRIPT),
            run(2, r#"{"number":1}"#),
            run(3, r#"{"crash":1}"#),
            run(4, r#"{"name":"never"}"#),
        ]);
        assert_eq!(
            status_body(&replies[1]),
            (502, serde_json::json!({"error": NOT_A_DICTIONARY}))
        );
        assert_eq!(
            status_body(&replies[2]),
            (400, serde_json::json!({"error": "command exited"}))
        );
        assert_eq!(replies.len(), 3, "the shim stops once the action is gone");
        assert!(out.ends_with(&format!("{SENTINEL}\n")), "{out}");
        assert_eq!(out.matches(SENTINEL).count(), 2);
    }

    #[test]
    fn action_loop_init_fails_without_an_acknowledgement() {
        let h = Harness::new(NativeProtocol::ActionLoop);
        let (replies, out, err) = h.serve(&[init_script(1, "#!/bin/sh\necho starting\nexit 1\n")]);
        assert_eq!(
            status_body(&replies[0]),
            (
                502,
                serde_json::json!({"error": "cannot start action: Command exited abruptly during initialization."})
            )
        );
        assert_eq!(out, format!("starting\n{SENTINEL}\n"));
        assert_eq!(err, format!("{SENTINEL}\n"));

        let h = Harness::new(NativeProtocol::ActionLoop);
        let (replies, _, _) = h.serve(&[init_script(1, "#!/bin/sh\necho '{\"ok\":false}' >&3\n")]);
        assert_eq!(
            replies[0]["body"]["error"],
            "cannot start action: The action did not initialize properly."
        );
    }

    #[test]
    fn action_loop_refuses_source_code_and_a_second_init() {
        let h = Harness::new(NativeProtocol::ActionLoop);
        let (replies, _, _) = h.serve(&[
            init_script(1, "package main\nfunc Main() {}\n"),
            init_script(2, LOOP_SCRIPT),
        ]);
        assert_eq!(replies[0]["status"], 502);
        assert!(
            replies[0]["body"]["error"]
                .as_str()
                .expect("text")
                .contains("precompiled executable")
        );
        assert_eq!(
            status_body(&replies[1]),
            (
                403,
                serde_json::json!({"error": "Cannot initialize the action more than once."})
            )
        );
    }

    #[test]
    fn action_loop_answer_over_the_result_limit_is_a_developer_error() {
        let h = Harness::new(NativeProtocol::ActionLoop);
        let script = r#"#!/bin/sh
echo '{"ok":true}' >&3
read -r line
head -c 2000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"a":"/' >&3
echo '"}' >&3
"#;
        let (replies, _, _) = h.serve(&[init_script(1, script), run(2, "{}")]);
        assert_eq!(replies[1]["status"], 502);
        let text = replies[1]["body"]["error"].as_str().expect("text");
        assert!(
            text.starts_with("The action produced a response that exceeded the allowed length: 2000008 > 1048576 bytes."),
            "{text}"
        );
    }

    /// A skeleton script: logs a line on each stream, then prints its argument's `name` and
    /// the activation id from its environment as the result.
    const SKELETON_SCRIPT: &str = r#"#!/bin/sh
echo "arg: $1"
echo "to stderr" >&2
echo "{\"args\":$1,\"id\":\"$__OW_ACTIVATION_ID\",\"greeting\":\"$GREETING\"}"
"#;

    #[test]
    fn skeleton_result_is_the_last_stdout_line_and_the_others_are_logs() {
        let h = Harness::new(NativeProtocol::Skeleton);
        let (replies, out, err) = h.serve(&[
            init_script(1, SKELETON_SCRIPT),
            run(2, r#"{"name":"x"}"#),
            run(3, "[1,2]"),
        ]);
        assert_eq!(status_body(&replies[0]).0, 200);
        assert_eq!(
            status_body(&replies[1]),
            (
                200,
                serde_json::json!({"args": {"name": "x"}, "id": "act2", "greeting": "hi"})
            )
        );
        assert_eq!(replies[2]["body"]["args"], serde_json::json!([1, 2]));
        assert_eq!(
            out,
            format!("arg: {{\"name\":\"x\"}}\n{SENTINEL}\narg: [1,2]\n{SENTINEL}\n")
        );
        assert_eq!(
            err,
            format!("to stderr\n{SENTINEL}\nto stderr\n{SENTINEL}\n")
        );
    }

    #[test]
    fn skeleton_non_object_result_is_logged_and_refused() {
        let h = Harness::new(NativeProtocol::Skeleton);
        let (replies, out, _) = h.serve(&[
            init_script(1, "#!/bin/sh\necho one\necho not json\n"),
            run(2, "{}"),
        ]);
        assert_eq!(
            status_body(&replies[1]),
            (502, serde_json::json!({"error": NOT_A_DICTIONARY}))
        );
        assert_eq!(out, format!("one\nnot json\n{SENTINEL}\n"));
    }

    #[test]
    fn skeleton_argument_over_the_linux_limit_arrives_on_stdin_only() {
        let h = Harness::new(NativeProtocol::Skeleton);
        let script = "#!/bin/sh\necho \"args: $#\"\nn=$(wc -c)\necho \"{\\\"bytes\\\":$n}\"\n";
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(200_000));
        let small = r#"{"a":"x"}"#;
        let (replies, out, _) = h.serve(&[init_script(1, script), run(2, &big), run(3, small)]);
        assert_eq!(replies[1]["body"]["bytes"], big.len());
        assert_eq!(replies[2]["body"]["bytes"], small.len());
        assert_eq!(out, format!("args: 0\n{SENTINEL}\nargs: 1\n{SENTINEL}\n"));
    }

    #[test]
    fn skeleton_without_an_executable_fails_init_and_runs() {
        let h = Harness::new(NativeProtocol::Skeleton);
        let dir = serde_json::json!({
            "id": 1, "op": "init", "log_sentinel": SENTINEL,
            "value": {"name": "a", "main": "main", "binary": true,
                      "code_dir": h.dir.path().join("nothing-here"), "env": {}},
        });
        let (replies, _, err) = h.serve(&[dir.to_string(), run(2, "{}")]);
        assert_eq!(
            status_body(&replies[0]),
            (502, serde_json::json!({"error": NO_BINARY_AT_INIT}))
        );
        assert_eq!(replies[1]["status"], 502);
        assert!(err.contains("no executable file 'exec'"), "{err}");
    }

    #[test]
    fn children_never_see_the_reply_pipe_as_their_fd_3() {
        let h = Harness::new(NativeProtocol::Skeleton);
        let script =
            "#!/bin/sh\necho forged >&3 && echo '{\"wrote\":true}' || echo '{\"wrote\":false}'\n";
        let (replies, _, _) = h.serve(&[init_script(1, script), run(2, "{}")]);
        // fd 3 is /dev/null: writable, but nothing reaches the replies.
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[1]["body"], serde_json::json!({"wrote": true}));
    }

    #[test]
    fn a_line_that_is_not_a_request_gets_bad_request() {
        let h = Harness::new(NativeProtocol::Skeleton);
        let (replies, _, _) = h.serve(&["nonsense".to_owned()]);
        assert_eq!(
            replies[0],
            serde_json::json!({"id": null, "status": 500, "body": {"error": "Bad request."}})
        );
    }

    #[test]
    fn kinds_map_to_their_protocols() {
        assert_eq!(
            NativeProtocol::for_kind("go:1.22"),
            Some(NativeProtocol::ActionLoop)
        );
        assert_eq!(
            NativeProtocol::for_kind("blackbox"),
            Some(NativeProtocol::Skeleton)
        );
        assert_eq!(NativeProtocol::for_kind("nodejs:20"), None);
        for p in [NativeProtocol::ActionLoop, NativeProtocol::Skeleton] {
            assert_eq!(NativeProtocol::from_name(p.as_str()), Some(p));
        }
    }

    #[test]
    fn split_last_line_streams_long_lines_to_the_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = File::create(dir.path().join("out")).expect("file");
        let long = "b".repeat(MAX_RESULT_BYTES + 10);
        let input = format!("a\n{long}\nlast");
        let last = split_last_line(input.as_bytes(), &logs).expect("split");
        assert_eq!(last, LastLine::Text(b"last".to_vec()));
        let written = std::fs::read_to_string(dir.path().join("out")).expect("read");
        assert_eq!(written, format!("a\n{long}\n"));
        let last = split_last_line(format!("a\n{long}\n").as_bytes(), &logs).expect("split");
        assert_eq!(last, LastLine::Oversized(long.len() as u64));
    }
}
