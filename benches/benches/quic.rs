//! QUIC ingress against the in-process path, side by side in one run.
//!
//! The same router (same workers, verifier and policy) answers the same kind of request three
//! ways: `submit` in process, over QUIC with pipelined frames on 4 long-lived streams, and over
//! QUIC with one stream per request. Two measurements each:
//!
//! * `quic_cpu/*`: **process CPU time** per request (user + system, every thread: client,
//!   server, router workers) — the cost the goal is about (QUIC may add ≤ 25 %).
//! * `quic_wall/*`: wall time per request with 256 in flight — throughput.
//!
//! Signing happens before the timed region (fresh counters for every request).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dcc_router::ingress::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::server::bootstrap::demo_device;
use dcc_router::server::{self, Running, ServeConfig};
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::{DemoPki, DemoUser};
use dcc_signing::{CommandVariant, ExecutionKind, RequestId, UserRole};

const IN_FLIGHT: usize = 256;

struct Fixture {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    running: Running,
    user: DemoUser,
    tls: TlsMaterial,
    counter: AtomicU64,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = ServeConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            metrics: None,
            data_dir: dir.path().to_path_buf(),
            workers: 1,
            demo_devices: 1000,
            ..ServeConfig::default()
        };
        let running = rt.block_on(server::start(&cfg)).expect("server");
        let pki = DemoPki::load_from_dir(&cfg.pki_dir()).expect("pki");
        let user = pki.user("supplier-a").expect("user").clone();
        let tls = TlsMaterial::client_of_demo(&pki, "supplier-a").expect("user");
        Fixture {
            _dir: dir,
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

/// Runs `requests` through `send` with up to IN_FLIGHT outstanding; panics unless all succeed.
async fn drive<F, Fut>(requests: Vec<Vec<u8>>, send: F)
where
    F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let send = Arc::new(send);
    let sem = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::with_capacity(requests.len());
    for r in requests {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let code = send(r).await;
            drop(permit);
            code
        }));
    }
    for t in tasks {
        let code = t.await.expect("task");
        assert!(code == "I0", "request answered {code}");
    }
}

#[derive(Clone, Copy)]
enum Path {
    InProcess,
    Quic(StreamMode),
}

fn run(f: &Fixture, client: Option<&Arc<Client>>, path: Path, requests: Vec<Vec<u8>>) {
    match path {
        Path::InProcess => {
            let router = f.running.router.clone();
            f.rt.block_on(drive(requests, move |r| {
                let fut = router.submit(r);
                async move { fut.await.code.code().to_owned() }
            }));
        }
        Path::Quic(_) => {
            let c = client.expect("client").clone();
            f.rt.block_on(drive(requests, move |r| {
                let c = c.clone();
                async move { c.send(r).await.map_or_else(|e| e.to_string(), |a| a.code) }
            }));
        }
    }
}

fn bench(c: &mut Criterion) {
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
    let clients: Vec<Option<Arc<Client>>> = paths
        .iter()
        .map(|(_, p)| match p {
            Path::InProcess => None,
            Path::Quic(mode) => Some(Arc::new(
                f.rt.block_on(Client::connect(f.running.addr, "localhost", &f.tls, *mode))
                    .expect("connect"),
            )),
        })
        .collect();

    let mut cpu = c.benchmark_group("quic_cpu");
    cpu.throughput(Throughput::Elements(1));
    for ((name, path), client) in paths.iter().zip(&clients) {
        cpu.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let reqs = f.requests(iters);
                let start = cpu_time::ProcessTime::now();
                run(&f, client.as_ref(), *path, reqs);
                start.elapsed()
            })
        });
    }
    cpu.finish();

    let mut wall = c.benchmark_group("quic_wall");
    wall.throughput(Throughput::Elements(1));
    for ((name, path), client) in paths.iter().zip(&clients) {
        wall.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let reqs = f.requests(iters);
                let start = Instant::now();
                run(&f, client.as_ref(), *path, reqs);
                start.elapsed()
            })
        });
    }
    wall.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
