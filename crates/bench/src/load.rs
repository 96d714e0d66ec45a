//! The load generator: N clients, each on its own keep-alive connection, sending the same POST
//! until a shared request budget is spent (closed loop), or at a fixed rate (open loop).
//!
//! Every request's latency goes into an HDR histogram in microseconds. In the open loop the
//! latency is measured from the request's *intended* send time, so a server that stalls is
//! charged for the requests it delayed (no coordinated omission).

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One request, sent over and over.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Full URL, query included.
    pub(crate) url: Url,
    /// `Authorization` header value, if any.
    pub(crate) auth: Option<HeaderValue>,
    /// JSON body.
    pub(crate) body: bytes::Bytes,
}

/// How hard to push.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadSpec {
    /// Clients (connections); in the open loop, the most requests in flight.
    pub(crate) clients: u64,
    /// Requests to send in total.
    pub(crate) requests: u64,
    /// Open loop: requests per second; `None` = closed loop.
    pub(crate) rate: Option<f64>,
}

/// What one run measured.
#[derive(Debug)]
pub(crate) struct LoadResult {
    /// Latency of successful requests, µs.
    pub(crate) hist: Histogram<u64>,
    /// Requests that failed (transport error or a non-2xx status).
    pub(crate) errors: u64,
    /// Wall time of the whole run.
    pub(crate) wall: Duration,
    /// The first failure, for the report.
    pub(crate) first_error: Option<String>,
}

impl LoadResult {
    /// Successful requests per second over the wall time.
    pub(crate) fn throughput(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            as_f64(self.hist.len()) / secs
        } else {
            0.0
        }
    }

    /// Latency at quantile `q`, ms (0 when nothing succeeded).
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        us_to_ms(self.hist.value_at_quantile(q))
    }

    /// Largest latency, ms.
    pub(crate) fn max_ms(&self) -> f64 {
        us_to_ms(self.hist.max())
    }
}

/// A keep-alive HTTP client holding at most one idle connection: one per load client.
pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the load generator's HTTP client")
}

/// Sends `req` once on `http`; the latency, or why it failed. The whole body is read.
pub(crate) async fn send(http: &reqwest::Client, req: &Request) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut b = http
        .post(req.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(req.body.clone());
    if let Some(a) = &req.auth {
        b = b.header(AUTHORIZATION, a.clone());
    }
    let resp = b.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let elapsed = t.elapsed();
    if !status.is_success() {
        anyhow::bail!(
            "{} answered {status}: {}",
            req.url.path(),
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok(elapsed)
}

/// Drives `req` with `spec`, ticking `progress` once per request.
pub(crate) async fn drive(
    req: &Request,
    spec: LoadSpec,
    progress: &ProgressBar,
) -> anyhow::Result<LoadResult> {
    let clients = spec.clients.clamp(1, spec.requests.max(1));
    let next = Arc::new(AtomicU64::new(0));
    let req = Arc::new(req.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = http_client()?;
        let next = next.clone();
        let req = req.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= spec.requests {
                    break;
                }
                let intended = match spec.rate {
                    Some(rate) if rate > 0.0 => {
                        let at = started + Duration::from_secs_f64(as_f64(i) / rate);
                        tokio::time::sleep_until(at.into()).await;
                        Some(at)
                    }
                    _ => None,
                };
                match send(&http, &req).await {
                    Ok(took) => {
                        let took = intended.map_or(took, |at| at.elapsed());
                        hist.saturating_record(micros(took));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                progress.inc(1);
            }
            (hist, errors, first_error)
        }));
    }
    let mut hist = new_histogram();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (h, e, fe) = t.await.context("a load client panicked")?;
        hist.add(h).context("merging histograms")?;
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    let wall = started.elapsed();
    if hist.is_empty() {
        if let Some(e) = first_error {
            return Err(e.context(format!("every one of {} requests failed", spec.requests)));
        }
    }
    Ok(LoadResult {
        hist,
        errors,
        wall,
        first_error: first_error.map(|e| format!("{e:#}")),
    })
}

/// Microsecond histogram from 1 µs to 10 minutes; longer values are clamped.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds are valid")
}

/// A duration in whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `v` as a float, for display and ratios.
#[allow(clippy::cast_precision_loss, reason = "display and ratios only")]
pub(crate) fn as_f64(v: u64) -> f64 {
    v as f64
}

/// Microseconds to milliseconds.
pub(crate) fn us_to_ms(us: u64) -> f64 {
    as_f64(us) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_counts_successes_over_wall_time() {
        let mut hist = new_histogram();
        for v in [1000, 2000, 3000, 4000] {
            hist.record(v).unwrap();
        }
        let r = LoadResult {
            hist,
            errors: 3,
            wall: Duration::from_secs(2),
            first_error: None,
        };
        assert!((r.throughput() - 2.0).abs() < 1e-9);
        assert!((r.quantile_ms(0.5) - 2.0).abs() < 0.01);
        assert!((r.max_ms() - 4.0).abs() < 0.01);
    }

    #[test]
    fn empty_result_reports_zero_latency() {
        let r = LoadResult {
            hist: new_histogram(),
            errors: 1,
            wall: Duration::ZERO,
            first_error: Some("boom".into()),
        };
        assert_eq!(r.quantile_ms(0.9), 0.0);
        assert_eq!(r.throughput(), 0.0);
    }
}
