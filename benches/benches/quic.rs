//! QUIC ingress against the in-process path, side by side in one run.
//!
//! The same router (same workers, verifier and policy) answers the same kind of request three
//! ways: `submit` in process, over QUIC with pipelined frames on 4 long-lived streams, and over
//! QUIC with one stream per request. The server (QUIC endpoint, ingress, router) runs on its own
//! tokio runtime (`dcc-srv` threads) and verify workers (`dcc-verify-*`); the client and the
//! driver on another runtime (`dcc-cli`). That lets one process tell the server's CPU from the
//! client's (per-thread CPU time from `/proc/self/task/*/schedstat`).
//!
//! * `quic_cpu/*`: **process CPU time** per request (user + system, every thread: client,
//!   server, router workers).
//! * `quic_wall/*`: wall time per request with 256 in flight — throughput.
//! * the **summary** printed after them (the figure): interleaved runs of every path,
//!   median CPU per request split into server side and client side, request rate, latency
//!   percentiles (from handing a request over to its answer, all rounds pooled), and the ratio
//!   *server-side CPU over QUIC / router CPU in process*. The router's in-process CPU is the
//!   in-process run minus a run of the same driver against an answer-at-once stub, so the
//!   driver's own tasks count on neither side. Goal (issue 4): ≤ 1.25.
//!
//! The summary runs twice: saturated (256 in flight, answers as fast as they come) and open
//! loop at fixed rates (`DCC_BENCH_QUIC_RATES`, default `3000`), where requests arrive alone
//! and every one pays its own wake-ups — the regime of a server that is not busy.
//!
//! Signing happens before the timed region (fresh counters for every request).
//! `DCC_BENCH_QUIC_N` (requests per saturated run, default 20,000), `DCC_BENCH_QUIC_SECS`
//! (seconds per paced run, default 2) and `DCC_BENCH_QUIC_ROUNDS` (default 7) size the
//! summary; `DCC_BENCH_SRV_THREADS` the server runtime (default 1).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use dcc_benches::threadcpu::Snapshot;
use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::server::bootstrap::demo_device;
use dcc_router::server::{self, Running, ServeConfig};
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::{DemoPki, DemoUser};
use dcc_signing::{CommandVariant, ExecutionKind, RequestId, UserRole};

const IN_FLIGHT: usize = 256;

struct Fixture {
    _dir: tempfile::TempDir,
    _srv: tokio::runtime::Runtime,
    rt: tokio::runtime::Runtime,
    running: Running,
    user: DemoUser,
    tls: TlsMaterial,
    counter: AtomicU64,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let srv_threads = env_usize("DCC_BENCH_SRV_THREADS", 1);
        let srv = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(srv_threads)
            .thread_name("dcc-srv")
            .enable_all()
            .build()
            .expect("runtime");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dcc-cli")
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = ServeConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            metrics: None,
            duis: None,
            data_dir: dir.path().to_path_buf(),
            workers: 1,
            demo_devices: 1000,
            ..ServeConfig::default()
        };
        let running = srv.block_on(server::start(&cfg)).expect("server");
        let pki = DemoPki::load_from_dir(&cfg.pki_dir()).expect("pki");
        let user = pki.user("supplier-a").expect("user").clone();
        let tls = TlsMaterial::client_of_demo(&pki, "supplier-a").expect("user");
        Fixture {
            _dir: dir,
            _srv: srv,
            rt,
            running,
            user,
            tls,
            counter: AtomicU64::new(1),
        }
    }

    /// `n` signed top-ups from supplier-a to its devices, with fresh counters.
    fn requests(&self, n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let counter = self.counter.fetch_add(1, Ordering::Relaxed);
                let h = Header {
                    role: UserRole::ImportSupplier,
                    command_variant: CommandVariant::NON_CRITICAL_WAN,
                    execution: ExecutionKind::OnDemand,
                    srv: dcc_signing::Srv::new2(2, 2),
                    request_id: RequestId {
                        originator: self.user.eui64,
                        target: demo_device(2 * (i % 500)),
                        counter,
                    },
                    execute_at: 0,
                    signer: self.user.cert.id,
                };
                self.user.signer.sign_envelope(&h, b"top-up").expect("sign")
            })
            .collect()
    }
}

/// Runs `requests` through `send` with up to IN_FLIGHT outstanding, as fast as answers allow
/// (`pace` = `None`) or open loop at `pace` requests per second; panics unless all succeed.
/// Returns each request's latency (from handing it to `send` to its answer).
async fn drive<F, Fut>(requests: Vec<Vec<u8>>, pace: Option<f64>, send: F) -> Vec<Duration>
where
    F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let send = Arc::new(send);
    let sem = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::with_capacity(requests.len());
    let start = tokio::time::Instant::now();
    for (i, r) in requests.into_iter().enumerate() {
        if let Some(rate) = pace {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let code = send(r).await;
            let latency = t0.elapsed();
            drop(permit);
            (code, latency)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (code, latency) = t.await.expect("task");
        assert!(code == "I0", "request answered {code}");
        latencies.push(latency);
    }
    latencies
}

#[derive(Clone, Copy)]
enum Path {
    /// The driver against a stub that answers at once: the driver's own cost.
    Null,
    InProcess,
    Quic(StreamMode),
}

fn run(
    f: &Fixture,
    client: Option<&Arc<Client>>,
    path: Path,
    requests: Vec<Vec<u8>>,
    pace: Option<f64>,
) -> Vec<Duration> {
    match path {
        Path::Null => f.rt.block_on(drive(requests, pace, move |r| {
            let code = if r.is_empty() { "E" } else { "I0" };
            std::future::ready(code.to_owned())
        })),
        Path::InProcess => {
            let router = f.running.router.clone();
            f.rt.block_on(drive(requests, pace, move |r| {
                let fut = router.submit(r);
                async move { fut.await.code.code().to_owned() }
            }))
        }
        Path::Quic(_) => {
            let c = client.expect("client").clone();
            f.rt.block_on(drive(requests, pace, move |r| {
                let c = c.clone();
                async move { c.send(r).await.map_or_else(|e| e.to_string(), |a| a.code) }
            }))
        }
    }
}

fn bench(c: &mut Criterion, f: &Fixture, clients: &[(&str, Path, Option<Arc<Client>>)]) {
    let mut cpu = c.benchmark_group("quic_cpu");
    cpu.throughput(Throughput::Elements(1));
    for (name, path, client) in clients {
        cpu.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let reqs = f.requests(iters);
                let start = cpu_time::ProcessTime::now();
                let _ = run(f, client.as_ref(), *path, reqs, None);
                start.elapsed()
            })
        });
    }
    cpu.finish();

    let mut wall = c.benchmark_group("quic_wall");
    wall.throughput(Throughput::Elements(1));
    for (name, path, client) in clients {
        wall.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let reqs = f.requests(iters);
                let start = Instant::now();
                let _ = run(f, client.as_ref(), *path, reqs, None);
                start.elapsed()
            })
        });
    }
    wall.finish();
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn is_server_thread(name: &str) -> bool {
    name.starts_with("dcc-srv") || name.starts_with("dcc-verify") || name.starts_with("dcc-sim")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The figure: interleaved runs, median CPU per request, server side vs client side.
fn summary(f: &Fixture, clients: &[(&str, Path, Option<Arc<Client>>)], pace: Option<f64>) {
    let real = std::env::args().any(|a| a == "--bench");
    let rounds = if real {
        env_usize("DCC_BENCH_QUIC_ROUNDS", 7)
    } else {
        1
    };
    let n = match (real, pace) {
        (false, _) => 64,
        (true, None) => env_usize("DCC_BENCH_QUIC_N", 20_000) as u64,
        (true, Some(rate)) => (rate * env_usize("DCC_BENCH_QUIC_SECS", 2) as f64) as u64,
    };
    let null = ("driver only", Path::Null, None);
    let all: Vec<&(&str, Path, Option<Arc<Client>>)> =
        std::iter::once(&null).chain(clients.iter()).collect();
    // [path][round] = (total, server, client) ns per request
    let mut m = vec![(Vec::new(), Vec::new(), Vec::new(), Vec::new()); all.len()];
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); all.len()];
    for _ in 0..rounds {
        for (i, (_, path, client)) in all.iter().enumerate() {
            let reqs = f.requests(n);
            let stats_before = client.as_ref().map(|c| c.stats());
            let before = Snapshot::now();
            let t0 = Instant::now();
            let mut lat = run(f, client.as_ref(), *path, reqs, pace);
            latencies[i].append(&mut lat);
            let wall = t0.elapsed();
            let after = Snapshot::now();
            let (server_ns, client_ns) = after.since_split(&before, is_server_thread);
            if std::env::var_os("DCC_BENCH_QUIC_THREADS").is_some() {
                let mut by: Vec<_> = after.since_by_name(&before).into_iter().collect();
                by.sort();
                let by: Vec<String> = by
                    .iter()
                    .map(|(k, v)| format!("{k}={:.1}", *v as f64 / n as f64 / 1000.0))
                    .collect();
                println!("  {:<26} {}", all[i].0, by.join(" "));
                if let (Some(a), Some(c)) = (stats_before, client.as_ref()) {
                    let b = c.stats();
                    let per = |x: u64, y: u64| (x - y) as f64 / n as f64;
                    println!(
                        "  {:<26} per request: client tx {:.3} datagrams in {:.3} ios, \
                         rx {:.3} datagrams in {:.3} ios; acks sent {:.3}, received {:.3}; \
                         stream frames tx {:.3} rx {:.3}",
                        "",
                        per(b.udp_tx.datagrams, a.udp_tx.datagrams),
                        per(b.udp_tx.ios, a.udp_tx.ios),
                        per(b.udp_rx.datagrams, a.udp_rx.datagrams),
                        per(b.udp_rx.ios, a.udp_rx.ios),
                        per(b.frame_tx.acks, a.frame_tx.acks),
                        per(b.frame_rx.acks, a.frame_rx.acks),
                        per(b.frame_tx.stream, a.frame_tx.stream),
                        per(b.frame_rx.stream, a.frame_rx.stream),
                    );
                }
            }
            let per = |ns: u64| ns as f64 / n as f64 / 1000.0;
            m[i].0.push(per(server_ns + client_ns));
            m[i].1.push(per(server_ns));
            m[i].2.push(per(client_ns));
            m[i].3.push(n as f64 / wall.as_secs_f64());
        }
    }
    let med: Vec<(f64, f64, f64, f64)> = m
        .iter_mut()
        .map(|(t, s, c, r)| {
            (
                median(&mut t.clone()),
                median(&mut s.clone()),
                median(&mut c.clone()),
                median(&mut r.clone()),
            )
        })
        .collect();
    // The ratio is taken per round (paths of one round ran back to back, under the same load)
    // and its median reported: steadier than a ratio of medians on a noisy machine.
    let router_per_round: Vec<f64> = m[1].0.iter().zip(&m[0].0).map(|(i, d)| i - d).collect();
    let ratio = |k: usize| {
        let mut r: Vec<f64> = m[k]
            .1
            .iter()
            .zip(&router_per_round)
            .map(|(s, r)| s / r)
            .collect();
        median(&mut r)
    };
    let router_inproc = median(&mut router_per_round.clone());
    let how = match pace {
        None => format!("{IN_FLIGHT} in flight, as fast as answered"),
        Some(r) => format!("open loop at {r:.0} requests/s"),
    };
    println!(
        "quic summary ({how}): n = {n} requests per run, {rounds} interleaved rounds, medians, \
         CPU µs per request"
    );
    println!(
        "  {:<26} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "path", "total", "server", "client", "req/s", "x router", "p50 µs", "p99 µs"
    );
    for (k, ((name, path, _), (t, s, c, r))) in all.iter().zip(&med).enumerate() {
        let shown = match path {
            Path::Null => String::from("-"),
            Path::InProcess => String::from("1.00"),
            Path::Quic(_) => format!("{:.2}", ratio(k)),
        };
        let lat = &mut latencies[k];
        lat.sort_unstable();
        let q = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
        };
        let (p50, p99) = (q(0.50), q(0.99));
        println!(
            "  {name:<26} {t:>8.1} {s:>8.1} {c:>8.1} {r:>10.0} {shown:>9} {p50:>9.0} {p99:>9.0}"
        );
    }
    println!(
        "  router in process (in-process total - driver only): {router_inproc:.1} µs/request; \
         \"x router\" = QUIC server-side CPU / that, per round (goal <= 1.25)"
    );
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let f = Fixture::new();
    let paths = [
        ("in-process", Path::InProcess),
        (
            "quic-pipelined",
            Path::Quic(StreamMode::Pipelined { streams: 4 }),
        ),
        (
            "quic-stream-per-request",
            Path::Quic(StreamMode::PerRequest),
        ),
    ];
    let clients: Vec<(&str, Path, Option<Arc<Client>>)> = paths
        .iter()
        .map(|&(name, p)| match p {
            Path::Null | Path::InProcess => (name, p, None),
            Path::Quic(mode) => (
                name,
                p,
                Some(Arc::new(
                    f.rt.block_on(Client::connect(f.running.addr, "localhost", &f.tls, mode))
                        .expect("connect"),
                )),
            ),
        })
        .collect();
    bench(&mut c, &f, &clients);
    summary(&f, &clients, None);
    let rates = std::env::var("DCC_BENCH_QUIC_RATES").unwrap_or_else(|_| "3000".into());
    for rate in rates
        .split(',')
        .filter_map(|r| r.trim().parse::<f64>().ok())
    {
        summary(&f, &clients, Some(rate));
    }
    c.final_summary();
}
