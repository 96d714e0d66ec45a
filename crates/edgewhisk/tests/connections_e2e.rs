//! End-to-end tests of connection handling (issue 9 item 3): the server raises its open-files
//! soft limit, closes idle and slow (slowloris) connections after the configured timeouts, and
//! keeps answering an ordinary invoke while 2,000 idle or 1-byte-per-second connections are
//! held against a server started with the common default open-files limit of 1024.
//!
//! All traffic goes to the server on 127.0.0.1; every loop is bounded by a deadline.

mod support;

use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::api::{HELLO_NAME, create_hello, invoke_blocking};
use support::net::{NetStart, spawn_server_net};
use support::{ServerGuard, spawn_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Short timeouts so that the tests see them fire; the idle timeout is shorter than the
/// header-read timeout so that a connection trickling a header is closed by the latter.
const SHORT_TIMEOUTS: &str = "\
[server]
shutdown_grace_ms = 2000
idle_timeout_ms = 1500
header_read_timeout_ms = 3000

[api]
invocations_per_minute = 100000
concurrent_invocations = 1000
";

/// Connections each flood holds.
const FLOOD: usize = 2000;

/// How long a flood's connections are held at most; every one must be closed by the server
/// before this.
const HOLD_LIMIT: Duration = Duration::from_secs(40);

/// How long the ordinary invoke may take while a flood is held.
const INVOKE_LIMIT: Duration = Duration::from_secs(30);

/// The start of a request head that a slow client never finishes.
const SLOW_HEAD: &[u8] = b"GET /api/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// What became of one connection a test held.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Held {
    /// The server closed it (EOF or reset) this long after it was opened.
    Closed(Duration),
    /// Still open when the test stopped holding it.
    StillOpen,
    /// Could not be opened before the deadline.
    NotConnected,
}

fn addr_of(server: &ServerGuard) -> SocketAddr {
    server
        .base()
        .trim_start_matches("http://")
        .parse()
        .expect("the base URL is http://IP:PORT")
}

/// Opens a connection and keeps it idle: with `request`, after one complete keep-alive
/// request (whose answer it reads), else without sending a byte.
async fn hold_idle(
    addr: SocketAddr,
    request: bool,
    deadline: Instant,
    connected: Arc<AtomicUsize>,
) -> Held {
    let opened = Instant::now();
    let deadline = tokio::time::Instant::from_std(deadline);
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await
    else {
        return Held::NotConnected;
    };
    connected.fetch_add(1, Ordering::Relaxed);
    if request
        && stream
            .write_all(b"GET /api/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .is_err()
    {
        return Held::Closed(opened.elapsed());
    }
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Held::StillOpen,
            Ok(Ok(0) | Err(_)) => return Held::Closed(opened.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Opens a connection and sends a request head that never ends, one byte every `every`.
async fn hold_slow(
    addr: SocketAddr,
    every: Duration,
    deadline: Instant,
    connected: Arc<AtomicUsize>,
) -> Held {
    hold_trickle(addr, Vec::new(), every, deadline, connected).await
}

/// A complete, authenticated head of a blocking invoke whose JSON body never ends.
fn slow_body_head() -> Vec<u8> {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        support::GUEST_UUID,
        support::GUEST_SECRET
    ));
    format!(
        "POST /api/v1/namespaces/_/actions/{HELLO_NAME}?blocking=true HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    )
    .into_bytes()
}

/// Opens a connection, sends `upfront`, then one byte every `every`: the rest of
/// [`SLOW_HEAD`] when `upfront` is empty, else JSON whitespace of a body that never ends.
async fn hold_trickle(
    addr: SocketAddr,
    upfront: Vec<u8>,
    every: Duration,
    deadline: Instant,
    connected: Arc<AtomicUsize>,
) -> Held {
    let opened = Instant::now();
    let deadline = tokio::time::Instant::from_std(deadline);
    let Ok(Ok(stream)) = tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await else {
        return Held::NotConnected;
    };
    connected.fetch_add(1, Ordering::Relaxed);
    let (mut reader, mut writer) = stream.into_split();
    if writer.write_all(&upfront).await.is_err() {
        return Held::Closed(opened.elapsed());
    }
    let trickle: &[u8] = if upfront.is_empty() { SLOW_HEAD } else { b"" };
    let filler = if upfront.is_empty() { b'a' } else { b' ' };
    let mut tick = tokio::time::interval(every);
    let mut sent = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let byte = trickle.get(sent).copied().unwrap_or(filler);
                sent += 1;
                if writer.write_all(&[byte]).await.is_err() {
                    return Held::Closed(opened.elapsed());
                }
            }
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Held::Closed(opened.elapsed()),
                Ok(_) => {}
            },
            () = tokio::time::sleep_until(deadline) => return Held::StillOpen,
        }
    }
}

async fn outcomes(holders: Vec<JoinHandle<Held>>) -> Vec<Held> {
    let mut out = Vec::with_capacity(holders.len());
    for h in holders {
        out.push(h.await.expect("a holder task"));
    }
    out
}

fn count(outcomes: &[Held], pred: impl Fn(&Held) -> bool) -> usize {
    outcomes.iter().filter(|o| pred(o)).count()
}

/// One flood at a time: three at once would need 6,000 client sockets and share two cores.
static FLOOD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises this test process's own soft open-files limit to its hard limit so that it can hold
/// a flood; `Err` with the reason when the hard limit is too low for one.
fn room_for_a_flood() -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    let needed = u64::try_from(FLOOD).expect("small") + 512;
    if hard < needed {
        return Err(format!(
            "the open-files hard limit ({hard}) is below the {needed} a flood needs"
        ));
    }
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Starts a server with the common default open-files limit (1024, and no way to raise it),
/// and warms the hello action up so that the invoke under load measures connection handling.
async fn server_with_1024_files() -> ServerGuard {
    let server = spawn_server_net(
        Some(SHORT_TIMEOUTS),
        &NetStart {
            nofile: Some((1024, 1024)),
            ..NetStart::default()
        },
    );
    create_hello(&server).await;
    invoke_blocking(&server, HELLO_NAME, json!({}))
        .await
        .expect_status(200, "warm-up invoke");
    server
}

/// Waits (at most 10 s) until `n` flood connections are open on the client side, and a little
/// more for the server to take them, so that the invoke meets the flood and not its start.
async fn flood_connected(connected: &AtomicUsize, n: usize) {
    let until = Instant::now() + Duration::from_secs(10);
    while connected.load(Ordering::Relaxed) < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Invokes hello while a flood is held and checks it answers 200 within [`INVOKE_LIMIT`].
async fn invoke_during_flood(server: &ServerGuard, flood: &str) {
    let started = Instant::now();
    let reply = tokio::time::timeout(
        INVOKE_LIMIT,
        invoke_blocking(server, HELLO_NAME, json!({"name": "flood"})),
    )
    .await
    .unwrap_or_else(|_| {
        panic!("no answer to a blocking invoke within {INVOKE_LIMIT:?} while {flood} were held")
    });
    reply.expect_status(200, &format!("blocking invoke while {flood} were held"));
    assert_eq!(
        reply.body["response"]["result"]["payload"], "Hello, flood!",
        "{}",
        reply.text
    );
    eprintln!(
        "invoke while {flood} were held answered in {:?}; server RSS {} KiB",
        started.elapsed(),
        server.rss_kib()
    );
}

/// A flood held against [`server_with_1024_files`] while hello was invoked: the server, what
/// became of each connection, and the flood lock (held until the test ends).
struct Flooded {
    server: ServerGuard,
    held: Vec<Held>,
    _one_flood: tokio::sync::MutexGuard<'static, ()>,
}

/// Opens [`FLOOD`] connections with `hold(addr, i, deadline, connected)`, held for at most
/// `hold_for`, invokes hello during the flood ([`invoke_during_flood`] naming it `what`) and
/// waits for every holder; `None` (after printing why) when this process cannot hold a flood.
async fn flood<F>(
    hold_for: Duration,
    what: &str,
    hold: impl Fn(SocketAddr, usize, Instant, Arc<AtomicUsize>) -> F,
) -> Option<Flooded>
where
    F: std::future::Future<Output = Held> + Send + 'static,
{
    let one_flood = FLOOD_LOCK.lock().await;
    if let Err(why) = room_for_a_flood() {
        eprintln!("skipped: {why}");
        return None;
    }
    let server = server_with_1024_files().await;
    let addr = addr_of(&server);
    let deadline = Instant::now() + hold_for;
    let connected = Arc::new(AtomicUsize::new(0));
    let holders: Vec<_> = (0..FLOOD)
        .map(|i| tokio::spawn(hold(addr, i, deadline, connected.clone())))
        .collect();
    flood_connected(&connected, FLOOD).await;
    invoke_during_flood(&server, what).await;
    let held = outcomes(holders).await;
    Some(Flooded {
        server,
        held,
        _one_flood: one_flood,
    })
}

impl Flooded {
    /// Every connection was accepted and then closed by the server within [`HOLD_LIMIT`].
    fn assert_all_closed(&self, which: &str) {
        let open = count(&self.held, |h| *h == Held::StillOpen);
        let unconnected = count(&self.held, |h| *h == Held::NotConnected);
        assert_eq!(
            (open, unconnected),
            (0, 0),
            "every {which} connection is accepted and then closed by the server within {HOLD_LIMIT:?}"
        );
    }

    /// The server's accept never ran out of descriptors.
    fn assert_descriptors_to_spare(&self) {
        assert!(
            !self.server.log_tail().contains("Too many open files"),
            "the connection cap keeps accept from running out of descriptors:\n{}",
            self.server.log_tail()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn raises_its_soft_open_files_limit_to_the_hard_limit() {
        let hard = {
            let own = std::fs::read_to_string("/proc/self/limits").expect("read own limits");
            let line = own
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .expect("Max open files line")
                .to_owned();
            line.split_whitespace()
                .nth(4)
                .expect("hard limit field")
                .to_owned()
        };
        let hard_n: u64 = if hard == "unlimited" {
            // The kernel never lets a soft limit be unlimited; such a host cannot show this.
            eprintln!("skipped: this process's open-files hard limit is unlimited");
            return;
        } else {
            hard.parse().expect("numeric hard limit")
        };
        if hard_n <= 1024 {
            eprintln!("skipped: the open-files hard limit ({hard_n}) leaves nothing to raise");
            return;
        }
        let server = spawn_server_net(
            None,
            &NetStart {
                nofile: Some((1024, hard_n)),
                ..NetStart::default()
            },
        );
        let (soft, server_hard) = server.nofile_limits();
        assert_eq!(server_hard, hard, "prlimit set the server's hard limit");
        assert_eq!(
            soft, server_hard,
            "the server raises its soft open-files limit to the hard limit"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn idle_and_slow_connections_are_closed_after_the_configured_timeouts() {
        let server = spawn_server(Some(SHORT_TIMEOUTS));
        create_hello(&server).await;
        let addr = addr_of(&server);
        let deadline = Instant::now() + Duration::from_secs(20);
        let connected = Arc::new(AtomicUsize::new(0));
        let mut holders = Vec::new();
        for i in 0..4 {
            holders.push(tokio::spawn(hold_idle(
                addr,
                i % 2 == 0,
                deadline,
                connected.clone(),
            )));
        }
        for _ in 0..4 {
            // Bytes keep coming (faster than the idle timeout), so only the header-read timeout
            // can close these.
            holders.push(tokio::spawn(hold_slow(
                addr,
                Duration::from_millis(250),
                deadline,
                connected.clone(),
            )));
        }
        for _ in 0..2 {
            // A body byte every 2 s: more than the idle timeout passes without one.
            holders.push(tokio::spawn(hold_trickle(
                addr,
                slow_body_head(),
                Duration::from_secs(2),
                deadline,
                connected.clone(),
            )));
        }
        let held = outcomes(holders).await;
        let (idle, rest) = held.split_at(4);
        let (slow, slow_body) = rest.split_at(4);
        for h in slow_body {
            let Held::Closed(after) = h else {
                panic!("a stalled request body was not closed (idle_timeout_ms = 1500): {held:?}");
            };
            assert!(
                *after >= Duration::from_millis(1200) && *after < Duration::from_secs(8),
                "a stalled request body closed after {after:?}, expected about 1.5 s: {held:?}"
            );
        }
        for h in idle {
            let Held::Closed(after) = h else {
                panic!("an idle connection was not closed (idle_timeout_ms = 1500): {held:?}");
            };
            assert!(
                *after >= Duration::from_millis(1200) && *after < Duration::from_secs(8),
                "an idle connection closed after {after:?}, expected about 1.5 s: {held:?}"
            );
        }
        for h in slow {
            let Held::Closed(after) = h else {
                panic!(
                    "a slow connection was not closed (header_read_timeout_ms = 3000): {held:?}"
                );
            };
            assert!(
                *after >= Duration::from_millis(2500) && *after < Duration::from_secs(10),
                "a slow connection closed after {after:?}, expected about 3 s: {held:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn invoke_answers_while_two_thousand_idle_connections_are_held() {
        // Half after one keep-alive request, half without a byte.
        let Some(f) = flood(
            HOLD_LIMIT,
            "2000 idle connections",
            |addr, i, deadline, connected| hold_idle(addr, i % 2 == 0, deadline, connected),
        )
        .await
        else {
            return;
        };
        f.assert_all_closed("idle");
        f.assert_descriptors_to_spare();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn invoke_answers_while_two_thousand_slow_clients_trickle_headers() {
        let Some(f) = flood(
            HOLD_LIMIT,
            "2000 1-byte-per-second connections",
            |addr, _, deadline, connected| {
                hold_slow(addr, Duration::from_secs(1), deadline, connected)
            },
        )
        .await
        else {
            return;
        };
        f.assert_all_closed("slow");
        f.assert_descriptors_to_spare();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn invoke_answers_while_two_thousand_clients_trickle_request_bodies() {
        let Some(f) = flood(
            Duration::from_secs(15),
            "2000 1-byte-per-second request bodies",
            |addr, _, deadline, connected| {
                hold_trickle(
                    addr,
                    slow_body_head(),
                    Duration::from_secs(1),
                    deadline,
                    connected,
                )
            },
        )
        .await
        else {
            return;
        };
        // Below the cap a slow upload may go on (a real one would finish); at the cap the
        // trickling ones make room, so at least every one above the cap was closed.
        let closed = count(&f.held, |h| matches!(h, Held::Closed(_)));
        assert!(
            closed >= FLOOD - 768,
            "{closed} of {FLOOD} trickling connections were closed to make room"
        );
        f.assert_descriptors_to_spare();
    }

    #[tokio::test]
    async fn a_request_head_over_32_kib_is_refused_with_431() {
        let server = spawn_server(None);
        let get = |header_bytes: usize| {
            let url = server.url("/api/v1/namespaces");
            async move {
                reqwest::Client::new()
                    .get(url)
                    .basic_auth(support::GUEST_UUID, Some(support::GUEST_SECRET))
                    .header("x-filler", "a".repeat(header_bytes))
                    .send()
                    .await
                    .expect("an answer")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(get(16 * 1024).await, 200, "a 16 KiB head is served");
        assert_eq!(get(40 * 1024).await, 431, "a 40 KiB head is refused");
    }
}
