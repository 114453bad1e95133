//! Prometheus text exposition on a local HTTP endpoint.
//!
//! Gauges and counters come from the router itself (lane depth, responses by lane and code); the
//! latency histograms are recorded here, from each answered request's timings, with fixed
//! buckets in atomics (no lock on the answer path): the verify batch, and per lane the wait for
//! a worker and the whole time in the router — so that a run under overload shows whether a
//! lane's latency was spent queued behind other lanes or outside the lanes (ingress, answer).
//!
//! The endpoint speaks just enough HTTP/1.1 for a scraper: `GET /metrics`, one response, close.
//! It is meant for localhost; requests are bounded to 8 KiB and 5 s.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Response, ResponseCode, Router};

/// Upper bounds (seconds) of the verify-latency buckets.
const BUCKETS: [f64; 12] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// Upper bounds (seconds) of the per-lane wait and time-in-router buckets (up to the longest
/// lane deadline).
const LANE_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A fixed-bucket histogram in atomics, over the upper bounds `bounds` (one per bucket).
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [f64; N]) -> Self {
        Histogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|&b| s <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of `name`, with `labels` (`lane="L1"`,
    /// or empty) before each bucket's `le`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (le, braced) = if labels.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{labels},"), format!("{{{labels}}}"))
        };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.buckets) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{le}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{le}le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

/// Metrics recorded by the server shell.
#[derive(Debug)]
pub struct Metrics {
    /// The verify batch each verified request was checked in.
    verify: Histogram<{ BUCKETS.len() }>,
    /// Per lane: how long requests that reached a worker waited for it.
    queued: [Histogram<{ LANE_BUCKETS.len() }>; 4],
    /// Per lane: submit to answer, for the same requests.
    in_router: [Histogram<{ LANE_BUCKETS.len() }>; 4],
    /// The capacity estimate, set once at start (before any answer).
    capacity: std::sync::OnceLock<super::capacity::CapacityEstimate>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            verify: Histogram::new(&BUCKETS),
            queued: std::array::from_fn(|_| Histogram::new(&LANE_BUCKETS)),
            in_router: std::array::from_fn(|_| Histogram::new(&LANE_BUCKETS)),
            capacity: std::sync::OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Publishes the capacity estimate (the first one set stays).
    pub fn set_capacity(&self, c: super::capacity::CapacityEstimate) {
        let _ = self.capacity.set(c);
    }

    /// The capacity estimate, once set.
    pub fn capacity(&self) -> Option<super::capacity::CapacityEstimate> {
        self.capacity.get().copied()
    }

    /// Records one answered request.
    pub fn observe(&self, r: &Response) {
        if r.timings.verify.is_zero() {
            return;
        }
        if let Some(lane) = r.lane {
            self.queued[lane.index()].observe(r.timings.queued);
            self.in_router[lane.index()].observe(r.timings.total);
        }
        self.verify.observe(r.timings.verify);
    }

    /// Renders the exposition text.
    pub fn render(&self, router: &Router, connections: usize) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP dcc_router_lane_queue_depth Requests waiting for a verify worker, per lane."
        );
        let _ = writeln!(out, "# TYPE dcc_router_lane_queue_depth gauge");
        for (i, q) in router.queued().iter().enumerate() {
            let _ = writeln!(out, "dcc_router_lane_queue_depth{{lane=\"L{i}\"}} {q}");
        }
        if let Some(c) = self.capacity() {
            let _ = writeln!(out, "# HELP dcc_router_capacity_requests_per_second Capacity estimate: verify workers x the verify rate measured at start on the loaded keys.");
            let _ = writeln!(out, "# TYPE dcc_router_capacity_requests_per_second gauge");
            let _ = writeln!(
                out,
                "dcc_router_capacity_requests_per_second {}",
                c.requests_per_s
            );
            let _ = writeln!(
                out,
                "# HELP dcc_router_verify_workers Verify worker threads."
            );
            let _ = writeln!(out, "# TYPE dcc_router_verify_workers gauge");
            let _ = writeln!(out, "dcc_router_verify_workers {}", c.workers);
        }
        let _ = writeln!(out, "# HELP dcc_router_responses_total Answers by lane, response code and outcome (admitted, refused, shed, throttled).");
        let _ = writeln!(out, "# TYPE dcc_router_responses_total counter");
        for (lane, code, n) in router.counters().iter() {
            if n == 0 {
                continue;
            }
            let lane = lane.map_or_else(|| "none".to_owned(), |l| l.to_string());
            let _ = writeln!(
                out,
                "dcc_router_responses_total{{lane=\"{lane}\",code=\"{}\",outcome=\"{}\"}} {n}",
                code.code(),
                outcome(code)
            );
        }
        let _ = writeln!(out, "# HELP dcc_router_verify_seconds Time of the verify batch each answered request was checked in.");
        let _ = writeln!(out, "# TYPE dcc_router_verify_seconds histogram");
        self.verify
            .render(&mut out, "dcc_router_verify_seconds", "");
        for (name, help, per_lane) in [
            (
                "dcc_router_queued_seconds",
                "Time each verified request waited in its lane for a worker.",
                &self.queued,
            ),
            (
                "dcc_router_in_router_seconds",
                "Submit to answer of each verified request: admission, lane wait, verify batch, commit.",
                &self.in_router,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} histogram");
            for (i, h) in per_lane.iter().enumerate() {
                h.render(&mut out, name, &format!("lane=\"L{i}\""));
            }
        }
        let _ = writeln!(out, "# HELP dcc_router_connections QUIC connections open.");
        let _ = writeln!(out, "# TYPE dcc_router_connections gauge");
        let _ = writeln!(out, "dcc_router_connections {connections}");
        out
    }
}

/// The outcome class of a code, for dashboards.
pub fn outcome(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::Success | ResponseCode::Acknowledged => "admitted",
        ResponseCode::Busy | ResponseCode::Unavailable => "shed",
        ResponseCode::Throttled => "throttled",
        _ => "refused",
    }
}

/// Serves `GET /metrics` on `addr` until the task is aborted.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    metrics: Arc<Metrics>,
    connections: Arc<AtomicUsize>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_on(
        std::net::TcpListener::bind(addr)?,
        router,
        metrics,
        connections,
    )
}

/// Like [`serve`], on a listener bound earlier (`dcc-router serve` binds before it writes
/// anything). Call from within a tokio runtime.
pub fn serve_on(
    listener: std::net::TcpListener,
    router: Router,
    metrics: Arc<Metrics>,
    connections: Arc<AtomicUsize>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let mut sock = match listener.accept().await {
                Ok((sock, _)) => sock,
                Err(_) => {
                    // Out of descriptors or similar: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (router, metrics, connections) =
                (router.clone(), metrics.clone(), connections.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while n < buf.len() {
                        let m = sock.read(&mut buf[n..]).await?;
                        if m == 0 {
                            break;
                        }
                        n += m;
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let (status, body) = if head.starts_with("GET /metrics ") {
                        (
                            "200 OK",
                            metrics.render(&router, connections.load(Ordering::Relaxed)),
                        )
                    } else {
                        ("404 Not Found", "try GET /metrics\n".to_owned())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    sock.write_all(reply.as_bytes()).await?;
                    sock.shutdown().await
                })
                .await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_with_and_without_labels() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1)); // above every bound: only in +Inf
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "");
        assert_eq!(
            out,
            "x_seconds_bucket{le=\"0.001\"} 1\nx_seconds_bucket{le=\"0.01\"} 2\n\
             x_seconds_bucket{le=\"+Inf\"} 3\nx_seconds_sum 1.0055\nx_seconds_count 3\n"
        );
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "lane=\"L1\"");
        assert!(
            out.starts_with("x_seconds_bucket{lane=\"L1\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(out.ends_with("x_seconds_count{lane=\"L1\"} 3\n"), "{out}");
    }
}
