//! Sentinel-based log collection for runner processes.
//!
//! Two reader tasks ([`pump`]) turn the runner's stdout and stderr into timestamped lines in a
//! [`LogBuffer`], one queue per stream. The logs of each activation after which the runner
//! wrote sentinels are taken by [`LogBuffer::collect`]: each stream's lines up to that stream's
//! next activation-end sentinel, merged by receive time, with the action's log limit applied
//! the way OpenWhisk's docker log store does. An activation whose reply was marked quiet (the
//! action printed nothing) is not collected: what is queued stays for the next collection.
//!
//! Every line costs its text plus [`LINE_OVERHEAD_BYTES`], the prefix it gets when stored
//! (timestamp and stream), both in the buffer and against the action's log limit: an empty
//! line is not free, so a million of them cannot become a million stored entries (OpenWhisk
//! counts only the text and its newline, which bounds bytes of text but not lines).
//!
//! Memory is bounded: once `cap` bytes of cost are waiting, further lines are dropped and only
//! counted (sentinels are always kept, they are what keeps activations apart), so an action
//! printing 20 MB, or millions of empty lines, costs at most about `cap` bytes. A collection
//! that saw dropped bytes reports the log as truncated. Lines longer than [`MAX_LINE_BYTES`]
//! are split, as docker splits long log messages.
//!
//! The sentinel a buffer accepts is the instance's own: OpenWhisk's marker text followed by a
//! nonce the runner learns from its init request (see [`sentinel_with_nonce`]). An action that
//! prints the bare marker therefore only logs a line; it cannot end its activation's log early
//! and shift every later activation's logs of the instance by one.

use crate::container::backend::{ACTIVATION_LOG_SENTINEL, CollectedLogs};
use edgewhisk_entity::time::log_line;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::Notify;

/// Longest line kept as one; longer output is split into lines of at most this size.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024;

/// What one log line costs beyond its text: the `<timestamp, 30 columns> stdout: ` prefix of
/// its stored form, and its newline. More than the memory of one queued entry's header.
pub(crate) const LINE_OVERHEAD_BYTES: usize = 40;

/// The cost of a line of `text_len` bytes against buffer caps and log limits.
fn line_cost(text_len: usize) -> usize {
    text_len.saturating_add(LINE_OVERHEAD_BYTES)
}

/// The sentinel line of an instance whose runner was given `nonce`: OpenWhisk's marker, a
/// space, the nonce.
pub(crate) fn sentinel_with_nonce(nonce: &str) -> String {
    format!("{ACTIVATION_LOG_SENTINEL} {nonce}")
}

/// Which of the runner's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One received line; `text == None` is the sentinel.
#[derive(Debug)]
struct Entry {
    at: SystemTime,
    text: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    queues: [VecDeque<Entry>; 2],
    /// Cost ([`line_cost`]) of the lines currently queued (both streams).
    queued_bytes: usize,
    /// Bytes dropped because the queue was full, since the last collection.
    dropped_bytes: u64,
    /// Whether the stream reached end of file.
    eof: [bool; 2],
}

/// The lines a runner wrote and not yet collected. Shared by the two reader tasks and the
/// instance; one collection at a time (the proxy collects in run order).
#[derive(Debug)]
pub(crate) struct LogBuffer {
    state: Mutex<State>,
    notify: Notify,
    cap: usize,
    sentinel: Vec<u8>,
}

impl LogBuffer {
    /// An empty buffer holding lines costing at most `cap` bytes, ending activations at
    /// `sentinel` lines (see [`sentinel_with_nonce`]).
    pub(crate) fn new(cap: usize, sentinel: String) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            cap,
            sentinel: sentinel.into_bytes(),
        }
    }

    /// Records one line (without its newline) received at `at`.
    pub(crate) fn push(&self, stream: Stream, at: SystemTime, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (text, is_end) = match line.strip_suffix(self.sentinel.as_slice()) {
            Some(prefix) => (prefix, true),
            None => (line, false),
        };
        {
            let mut st = self.state.lock();
            // A sentinel glued to output without a newline still ends the activation; the
            // text before it is kept as its own line.
            if !is_end || !text.is_empty() {
                let cost = line_cost(text.len());
                if st.queued_bytes + cost > self.cap {
                    st.dropped_bytes += cost as u64;
                } else {
                    st.queued_bytes += cost;
                    st.queues[stream.index()].push_back(Entry {
                        at,
                        text: Some(String::from_utf8_lossy(text).into_owned()),
                    });
                }
            }
            if is_end {
                st.queues[stream.index()].push_back(Entry { at, text: None });
            }
        }
        if is_end {
            self.notify.notify_one();
        }
    }

    /// Marks `stream` as closed: no more lines will come.
    pub(crate) fn close(&self, stream: Stream) {
        self.state.lock().eof[stream.index()] = true;
        self.notify.notify_one();
    }

    /// Takes the lines of one activation: each stream up to its next sentinel, waiting at most
    /// `timeout` for both sentinels (or for both streams to end).
    ///
    /// With `wait_for_sentinel` false (the runner died) a missing sentinel is expected and not
    /// reported; otherwise it adds OpenWhisk's "There was an issue while collecting your logs"
    /// line. Lines costing more than `limit_bytes` together (each its text plus
    /// [`LINE_OVERHEAD_BYTES`]) are cut with OpenWhisk's truncation line. `limit_bytes == 0`
    /// collects nothing but still consumes the activation's lines.
    pub(crate) async fn collect(
        &self,
        limit_bytes: u64,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> CollectedLogs {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = [false; 2];
        let mut taken: [Vec<(SystemTime, String)>; 2] = [Vec::new(), Vec::new()];
        let mut dropped = 0;
        // What each stream's kept lines cost: a line past the limit in its own stream is past
        // it in the merged log too, so it is dropped here rather than held until the merge.
        let mut kept_cost = [0u64; 2];
        let mut full = [false; 2];
        let complete = loop {
            let notified = self.notify.notified();
            let ended = {
                let mut st = self.state.lock();
                for s in 0..2 {
                    while !seen[s] {
                        let Some(entry) = st.queues[s].pop_front() else {
                            break;
                        };
                        match entry.text {
                            Some(text) => {
                                let cost = line_cost(text.len());
                                st.queued_bytes -= cost;
                                let cost = cost as u64;
                                if full[s] || kept_cost[s] + cost > limit_bytes {
                                    full[s] = true;
                                    dropped += cost;
                                } else {
                                    kept_cost[s] += cost;
                                    taken[s].push((entry.at, text));
                                }
                            }
                            None => seen[s] = true,
                        }
                    }
                }
                dropped += std::mem::take(&mut st.dropped_bytes);
                (0..2).all(|s| seen[s] || (st.eof[s] && st.queues[s].is_empty()))
            };
            if seen == [true, true] {
                break true;
            }
            if ended || tokio::time::timeout_at(deadline, notified).await.is_err() {
                break false;
            }
        };
        {
            // A flood leaves queues with room for the whole buffer; an idle instance should
            // not keep it.
            let mut st = self.state.lock();
            for queue in &mut st.queues {
                if queue.capacity() > 1024 && queue.len() < queue.capacity() / 4 {
                    queue.shrink_to(queue.len() * 2);
                }
            }
        }
        if limit_bytes == 0 {
            return CollectedLogs::default();
        }
        format_lines(taken, dropped, limit_bytes, complete || !wait_for_sentinel)
    }
}

/// Merges both streams by receive time and applies the byte limit.
pub(crate) fn format_lines(
    taken: [Vec<(SystemTime, String)>; 2],
    dropped: u64,
    limit_bytes: u64,
    complete: bool,
) -> CollectedLogs {
    let [out, err] = taken;
    let mut merged: Vec<(SystemTime, Stream, String)> = Vec::with_capacity(out.len() + err.len());
    merged.extend(out.into_iter().map(|(at, t)| (at, Stream::Stdout, t)));
    merged.extend(err.into_iter().map(|(at, t)| (at, Stream::Stderr, t)));
    // Stable: equal timestamps keep stdout before stderr and each stream's own order.
    merged.sort_by_key(|(at, _, _)| *at);
    let mut lines = Vec::with_capacity(merged.len() + 2);
    let mut used: u64 = 0;
    // Lines dropped while buffering were the newest ones: what was kept is still shown.
    let mut truncated = dropped > 0;
    let mut full = false;
    for (at, stream, text) in merged {
        let size = line_cost(text.len()) as u64;
        if full || used + size > limit_bytes {
            full = true;
            truncated = true;
            continue;
        }
        used += size;
        lines.push(log_line(at, stream.name(), &text));
    }
    let now = SystemTime::now();
    if truncated {
        lines.push(log_line(
            now,
            "stderr",
            &format!(
                "Logs were truncated because the total bytes size exceeds the limit of \
                 {limit_bytes} bytes."
            ),
        ));
    }
    if !complete {
        lines.push(log_line(
            now,
            "stderr",
            "There was an issue while collecting your logs. Data might be missing.",
        ));
    }
    CollectedLogs { lines }
}

/// Reads `reader` to its end, feeding lines into `buffer`; closes the stream at the end.
pub(crate) async fn pump<R: AsyncRead + Unpin>(mut reader: R, stream: Stream, buffer: &LogBuffer) {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = SystemTime::now();
        let mut data = &chunk[..n];
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            if partial.is_empty() {
                push_split(buffer, stream, at, &data[..pos]);
            } else {
                partial.extend_from_slice(&data[..pos]);
                push_split(buffer, stream, at, &partial);
                partial.clear();
            }
            data = &data[pos + 1..];
        }
        partial.extend_from_slice(data);
        // An unterminated line never grows past one piece: full pieces go out now.
        while partial.len() > MAX_LINE_BYTES {
            let cut = utf8_boundary(&partial, MAX_LINE_BYTES);
            buffer.push(stream, at, &partial[..cut]);
            partial.drain(..cut);
        }
    }
    if !partial.is_empty() {
        buffer.push(stream, SystemTime::now(), &partial);
    }
    buffer.close(stream);
}

/// Pushes `line` as pieces of at most [`MAX_LINE_BYTES`] (the sentinel stays in the last).
fn push_split(buffer: &LogBuffer, stream: Stream, at: SystemTime, mut line: &[u8]) {
    while line.len() > MAX_LINE_BYTES {
        let cut = utf8_boundary(line, MAX_LINE_BYTES);
        buffer.push(stream, at, &line[..cut]);
        line = &line[cut..];
    }
    buffer.push(stream, at, line);
}

/// The largest index `<= max` that does not split a UTF-8 sequence (never 0 for `max > 3`).
fn utf8_boundary(bytes: &[u8], max: usize) -> usize {
    let mut cut = max.min(bytes.len());
    while cut > max.saturating_sub(3) && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentinel of the test buffers' instance.
    const S: &[u8] = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX n0nce";

    fn buffer(cap: usize) -> LogBuffer {
        LogBuffer::new(cap, sentinel_with_nonce("n0nce"))
    }

    fn text_of(line: &str) -> &str {
        &line[31..]
    }

    #[tokio::test]
    async fn collects_each_stream_up_to_its_own_sentinel() {
        let buf = buffer(1024);
        let t = SystemTime::now();
        buf.push(Stream::Stdout, t, b"one");
        buf.push(Stream::Stdout, t, S);
        buf.push(Stream::Stdout, t, b"next activation");
        buf.push(Stream::Stderr, t, b"two");
        buf.push(Stream::Stderr, t, S);
        let logs = buf.collect(1000, true, Duration::from_secs(1)).await;
        let texts: Vec<_> = logs.lines.iter().map(|l| text_of(l)).collect();
        assert_eq!(texts, ["stdout: one", "stderr: two"]);
        buf.push(Stream::Stderr, t, S);
        buf.push(Stream::Stdout, t, S);
        let logs = buf.collect(1000, true, Duration::from_secs(1)).await;
        assert_eq!(logs.lines.len(), 1);
        assert!(logs.lines[0].ends_with("stdout: next activation"));
    }

    #[tokio::test]
    async fn reports_missing_sentinels_after_the_timeout() {
        let buf = buffer(1024);
        buf.push(Stream::Stdout, SystemTime::now(), b"half");
        let logs = buf.collect(1000, true, Duration::from_millis(50)).await;
        assert_eq!(logs.lines.len(), 2);
        assert!(logs.lines[1].ends_with(
            "stderr: There was an issue while collecting your logs. Data might be missing."
        ));
    }

    #[tokio::test]
    async fn truncates_at_the_limit_counting_each_line_with_its_overhead() {
        let buf = buffer(1024);
        let t = SystemTime::now();
        for line in [b"12345", b"67890"] {
            buf.push(Stream::Stdout, t, line);
        }
        buf.push(Stream::Stdout, t, S);
        buf.push(Stream::Stderr, t, S);
        let limit = 2 * line_cost(5) as u64 - 1;
        let logs = buf.collect(limit, true, Duration::from_secs(1)).await;
        assert_eq!(logs.lines.len(), 2);
        assert!(logs.lines[0].ends_with("stdout: 12345"));
        assert!(logs.lines[1].ends_with(&format!(
            "stderr: Logs were truncated because the total bytes size exceeds the limit of \
             {limit} bytes."
        )));
    }

    #[tokio::test]
    async fn empty_lines_count_against_the_cap_and_the_limit() {
        let buf = buffer(100 * LINE_OVERHEAD_BYTES);
        let t = SystemTime::now();
        for _ in 0..100_000 {
            buf.push(Stream::Stdout, t, b"");
        }
        assert_eq!(buf.state.lock().queues[0].len(), 100);
        buf.push(Stream::Stdout, t, S);
        buf.push(Stream::Stderr, t, S);
        let limit = 10 * LINE_OVERHEAD_BYTES as u64;
        let logs = buf.collect(limit, true, Duration::from_secs(1)).await;
        assert_eq!(logs.lines.len(), 11, "ten empty lines and the notice");
        assert!(logs.lines[10].contains("Logs were truncated"));
        assert_eq!(buf.state.lock().queued_bytes, 0);
    }

    #[tokio::test]
    async fn a_bare_marker_is_a_log_line_and_does_not_end_the_activation() {
        let buf = buffer(1024);
        let t = SystemTime::now();
        buf.push(Stream::Stdout, t, ACTIVATION_LOG_SENTINEL.as_bytes());
        buf.push(
            Stream::Stdout,
            t,
            b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX guess",
        );
        buf.push(Stream::Stdout, t, b"still the first");
        buf.push(Stream::Stdout, t, S);
        buf.push(Stream::Stderr, t, S);
        buf.push(Stream::Stdout, t, b"second");
        buf.push(Stream::Stdout, t, S);
        buf.push(Stream::Stderr, t, S);
        let first = buf.collect(1 << 20, true, Duration::from_secs(1)).await;
        let texts: Vec<_> = first.lines.iter().map(|l| text_of(l)).collect();
        assert_eq!(
            texts,
            [
                "stdout: XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX",
                "stdout: XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX guess",
                "stdout: still the first"
            ]
        );
        let second = buf.collect(1 << 20, true, Duration::from_secs(1)).await;
        let texts: Vec<_> = second.lines.iter().map(|l| text_of(l)).collect();
        assert_eq!(texts, ["stdout: second"]);
    }

    #[tokio::test]
    async fn drops_lines_beyond_the_buffer_cap_and_reports_truncation() {
        let buf = buffer(2 * line_cost(4) + 10);
        let t = SystemTime::now();
        for _ in 0..100 {
            buf.push(Stream::Stdout, t, b"abcd");
        }
        buf.push(Stream::Stdout, t, S);
        buf.push(Stream::Stderr, t, S);
        assert!(buf.state.lock().queued_bytes <= 2 * line_cost(4) + 10);
        let logs = buf.collect(1 << 20, true, Duration::from_secs(1)).await;
        assert_eq!(logs.lines.len(), 3);
        assert!(logs.lines[2].contains("Logs were truncated"));
    }

    #[tokio::test]
    async fn splits_a_sentinel_glued_to_output() {
        let buf = buffer(1024);
        let t = SystemTime::now();
        let mut glued = b"no newline".to_vec();
        glued.extend_from_slice(S);
        buf.push(Stream::Stdout, t, &glued);
        buf.push(Stream::Stderr, t, S);
        let logs = buf.collect(1000, true, Duration::from_secs(1)).await;
        assert_eq!(logs.lines.len(), 1);
        assert!(logs.lines[0].ends_with("stdout: no newline"));
    }

    #[tokio::test]
    async fn pump_splits_long_lines_and_closes_the_stream() {
        let buf = buffer(1 << 20);
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.push(b'\n');
        input.extend_from_slice(b"tail");
        pump(&input[..], Stream::Stderr, &buf).await;
        buf.close(Stream::Stdout);
        let logs = buf.collect(1 << 20, false, Duration::from_secs(1)).await;
        assert_eq!(logs.lines.len(), 3);
        assert!(logs.lines[2].ends_with("stderr: tail"));
    }

    #[test]
    fn utf8_boundary_never_splits_a_character() {
        let s = "aé".repeat(10);
        for max in 4..s.len() {
            assert!(s.is_char_boundary(utf8_boundary(s.as_bytes(), max)));
        }
    }
}
