//! The accept loop: HTTP/1.1 connections served by hyper, with timeouts and a connection cap.
//!
//! `axum::serve` has neither timeouts nor a cap, which let a client take the device down. Here
//! each connection has a header-read timeout (which also bounds idle keep-alive time), an idle
//! timeout while it waits on its client (between requests or inside a request body), and a
//! bounded request head ([`MAX_HEAD_BYTES`]); at the cap on open connections
//! ([`super::fd_limit::connection_cap`]) the loop stops accepting and reclaims connections that
//! have been quiet for [`RECLAIM_AFTER`] with no request in flight. A request being handled is
//! never cut off. The design and its known caveats: `docs/design/010-connections.md`.

use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// At the cap, a connection with no request in flight that has been quiet this long is closed
/// to make room. Long enough that a new client's request head (normally already sent with, or
/// right after, the handshake) is read first; short enough that a queued client waits about a
/// second per round.
pub(crate) const RECLAIM_AFTER: Duration = Duration::from_millis(500);

/// Largest request head (request line and headers) and read buffer of a connection. OpenWhisk
/// clients send heads of well under 2 KiB; nginx allows 32 KiB by default. hyper's own default
/// (~400 KiB) would let a flood of connections with huge heads hold hundreds of MiB at the cap.
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Listen queue length asked for (the kernel caps it at `net.core.somaxconn`, 4096 by default
/// since Linux 5.4). At the cap new connections wait in this queue; a connection that finds it
/// full is dropped by the kernel and its client only retries after seconds, so the queue is
/// long enough to hold a flood while idle connections are reclaimed.
const LISTEN_BACKLOG: u32 = 4096;

/// Pause after an `accept` error that is not about one connection (e.g. `EMFILE`), so that a
/// persistent error does not spin the loop; connections already open keep being served.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// At most one "connection cap reached" warning per this interval.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// How connections are served.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    /// A request head must be complete within this long of the server waiting for it; also
    /// bounds the TLS handshake.
    pub(crate) header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long without a byte.
    pub(crate) idle_timeout: Duration,
    /// Most connections open at once.
    pub(crate) max_connections: usize,
    /// After shutdown starts, how long to wait for connections to finish their requests.
    pub(crate) drain_timeout: Duration,
}

/// Binds `addr` with a [`LISTEN_BACKLOG`]-long listen queue.
pub(crate) fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std and tokio do: a restarted server may bind while old connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections, and waits up to `drain_timeout` for in-flight requests to finish. With `tls`,
/// every connection must complete a TLS handshake first.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) {
    // The drain below takes all permits in one u32 count.
    let max = settings
        .max_connections
        .clamp(1, usize::try_from(u32::MAX).unwrap_or(usize::MAX))
        .min(Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    // A new value asks every open connection to close if it is reclaimable.
    let (reclaim_tx, _) = watch::channel(0u64);
    let (stop_tx, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        app,
        tls,
        settings: settings.clone(),
    });
    let mut last_cap_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = acquire(&permits, &reclaim_tx, max, &mut last_cap_warning) => permit,
        };
        let (stream, _peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept error");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            shared.clone(),
            reclaim_tx.subscribe(),
            stop_tx.subscribe(),
            permit,
        ));
    }
    drop(listener);
    stop_tx.send_replace(true);
    // Every connection holds a permit until it ends: having them all back means all ended.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(settings.drain_timeout, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = max - permits.available_permits(),
            "connections still open after the shutdown grace; closing them"
        );
    }
}

/// What every connection task shares.
struct Shared {
    app: Router,
    tls: Option<TlsAcceptor>,
    settings: ConnectionSettings,
}

// `TlsAcceptor` has no `Debug`; say whether there is one.
impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("tls", &self.tls.is_some())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Takes a connection slot; at the cap, asks idle connections to close (again every
/// [`RECLAIM_AFTER`]) until one frees its slot.
async fn acquire(
    permits: &Arc<Semaphore>,
    reclaim: &watch::Sender<u64>,
    max: usize,
    last_warning: &mut Option<Instant>,
) -> OwnedSemaphorePermit {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return permit;
    }
    if last_warning.is_none_or(|t| t.elapsed() >= CAP_WARNING_INTERVAL) {
        *last_warning = Some(Instant::now());
        tracing::warn!(
            max_connections = max,
            "connection cap reached: closing idle connections, new ones wait to be accepted"
        );
    }
    loop {
        reclaim.send_modify(|generation| *generation = generation.wrapping_add(1));
        tokio::select! {
            permit = permits.clone().acquire_owned() => {
                // The semaphore is never closed, so this always holds a permit.
                if let Ok(permit) = permit {
                    return permit;
                }
            }
            () = tokio::time::sleep(RECLAIM_AFTER) => {}
        }
    }
}

/// Errors of `accept` that concern one connection only (the peer gave up before we took it);
/// the next `accept` is fine. Anything else (`EMFILE`, `ENFILE`, `ENOMEM`) affects all.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one accepted connection, holding its slot `_permit` until it ends.
async fn connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    reclaim: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Responses are written whole; Nagle would only delay the last segment.
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    match &shared.tls {
        None => serve_io(io, &shared, activity, reclaim, stop).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(shared.settings.header_read_timeout, acceptor.accept(io));
            match handshake.await {
                Ok(Ok(tls)) => serve_io(tls, &shared, activity, reclaim, stop).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

/// Runs hyper's HTTP/1.1 connection on `io` until it ends, is idle too long, is reclaimed at
/// the cap, or the server stops.
async fn serve_io<I>(
    io: I,
    shared: &Shared,
    activity: Arc<Activity>,
    mut reclaim: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = shared.app.clone();
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::begin(in_flight.clone());
        let req = req.map(|body| ReceivingBody::new(body, in_flight.clone()));
        let app = app.clone();
        async move {
            let response = app.oneshot(req).await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| GuardedBody {
                body,
                _guard: guard,
            }))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.settings.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = idle_expired(activity.clone(), shared.settings.idle_timeout);
    tokio::pin!(idle);
    let mut stopping = false;
    loop {
        // Returning drops the connection, which closes the socket.
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection closed");
                }
                return;
            }
            () = &mut idle => return,
            Ok(()) = reclaim.changed() => {
                if activity.waits_on_client() && activity.quiet() >= RECLAIM_AFTER {
                    return;
                }
            }
            Ok(()) = stop.changed(), if !stopping => {
                stopping = true;
                if activity.in_flight() == 0 {
                    return;
                }
                // Finish the response in flight, then close.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the connection has waited on the client (see [`Activity::waits_on_client`])
/// with no traffic for `idle`.
async fn idle_expired(activity: Arc<Activity>, idle: Duration) {
    loop {
        let quiet = activity.quiet();
        let waiting = activity.waits_on_client();
        if waiting && quiet >= idle {
            return;
        }
        let wait = if waiting {
            idle.saturating_sub(quiet)
        } else {
            idle
        };
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

/// When a connection last moved a byte, and how many of its requests are in flight.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last byte read or written.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Request bodies the server is still receiving.
    receiving: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            receiving: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn quiet(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether progress depends on the client alone: no request in flight, or a request body
    /// still arriving.
    fn waits_on_client(&self) -> bool {
        self.in_flight() == 0 || self.receiving.load(Ordering::Relaxed) > 0
    }
}

/// Counts one request in flight until dropped (with its response body).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        // The idle clock starts when the response is done, not when the request came in.
        self.0.touch();
    }
}

/// A response body that keeps its request counted in flight until hyper has written it.
#[derive(Debug)]
struct GuardedBody {
    body: axum::body::Body,
    _guard: InFlight,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that counts as [`Activity::receiving`] until it has been read to its end
/// (or dropped).
#[derive(Debug)]
struct ReceivingBody {
    body: Incoming,
    /// `Some` while counted.
    activity: Option<Arc<Activity>>,
}

impl ReceivingBody {
    fn new(body: Incoming, activity: Arc<Activity>) -> Self {
        let activity = (!hyper::body::Body::is_end_stream(&body)).then(|| {
            activity.receiving.fetch_add(1, Ordering::Relaxed);
            activity
        });
        Self { body, activity }
    }

    fn done(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.receiving.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for ReceivingBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl hyper::body::Body for ReceivingBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || self.body.is_end_stream() {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A stream that records in its [`Activity`] when it last moved a byte.
#[derive(Debug)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
