//! In-process pipeline throughput: W verify workers against W × the single-thread verify rate,
//! both measured in the same run (issue 3's goal: ≥ 85 %), for plain `p256` and for the
//! router's own known-signer verifier (issue 14.2: with a verifier ~10× faster, what the
//! pipeline costs per request outside verification shows).
//!
//! `cargo bench -p dcc-benches --bench pipeline` runs the criterion groups and then prints a
//! summary line per worker count (`DCC_BENCH_WORKERS=1,2,4` to choose; default 1 and 2, capped
//! at the core count; `DCC_BENCH_VERIFIERS=known-signer` for one verifier; `DCC_BENCH_REPS`
//! repetitions, default 5). `cargo test
//! --benches` runs everything once, tiny, as a smoke test.
//!
//! How requests are submitted and answers collected (`DCC_BENCH_SUBMIT`):
//! * `callback` (the default) — as the QUIC ingress does: [`Router::submit_with`], and the
//!   callback does on the verify worker what the ingress's does (records the metrics, encodes
//!   the answer frame, keeps it aside until the worker has delivered its batch, then queues
//!   the batch's answers on a tokio channel as one message); one task on a tokio runtime
//!   drains the channel with `recv_many`, as a stream's writer does. What the worker pays per
//!   answer is then what it pays in the server. `DCC_BENCH_LEGACY_SEND=1` queues each answer
//!   as its own message (the ingress before it kept answers aside).
//! * `future` — [`Router::submit`] and a blocking `wait` on each future in order (an embedder
//!   blocking on answers; every answer may have to wake the waiting thread).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use dcc_router::ingress::frame::framed_with;
use dcc_router::policy::{LaneCapacity, RateLimit};
use dcc_router::server::{encode_response, metrics::Metrics};
use dcc_router::state::CertRecord;
use dcc_router::{Device, Lane, Party, Policy, ResponseCode, Router, State};
use dcc_signing::verify::{KnownSignerVerifier, P256Verifier, PreparedKey, Verifier, VerifyJob};
use dcc_signing::{CertId, Eui64, Signer, UserRole};
use sha2::{Digest, Sha256};

const SUPPLIER: Eui64 = Eui64::from_u64(0x90B3_D51F_3001_0000);
const METER: Eui64 = Eui64::from_u64(0x00DB_1234_5678_0001);

/// The verifiers measured: the portable reference and the router's default
/// (`DCC_BENCH_VERIFIERS=known-signer` keeps one, e.g. to profile it alone).
fn verifiers() -> Vec<(&'static str, Arc<dyn Verifier>)> {
    let all: Vec<(&'static str, Arc<dyn Verifier>)> = vec![
        ("p256", Arc::new(P256Verifier)),
        ("known-signer", Arc::new(KnownSignerVerifier::default())),
    ];
    match std::env::var("DCC_BENCH_VERIFIERS") {
        Ok(keep) => all
            .into_iter()
            .filter(|(name, _)| keep.split(',').any(|k| k.trim() == *name))
            .collect(),
        Err(_) => all,
    }
}

/// How the fixture submits and waits (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Submit {
    Callback,
    Future,
}

fn submit_mode() -> Submit {
    match std::env::var("DCC_BENCH_SUBMIT").as_deref() {
        Ok("future") => Submit::Future,
        _ => Submit::Callback,
    }
}

fn is_real_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

struct Fixture {
    signer: Signer,
    cert: CertId,
    requests: Vec<Vec<u8>>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let cert = CertId::new([0xCA; 8], &[1]).unwrap();
        let (signer, requests) = dcc_benches::signed_requests(SUPPLIER, METER, cert, n);
        Fixture {
            signer,
            cert,
            requests,
        }
    }

    /// A fresh router (fresh anti-replay state) with `workers` verify threads.
    fn router(&self, workers: usize, verifier: &Arc<dyn Verifier>) -> Router {
        let mut policy = Policy {
            rate_limit: RateLimit::new(RateLimit::MAX, RateLimit::MAX).unwrap(),
            ..Policy::default()
        };
        policy.lanes[Lane::L2.index()].capacity = LaneCapacity::new(1 << 14).unwrap();
        let router = Router::builder()
            .policy(policy)
            .state(Arc::new(State::new()))
            .verifier(Arc::clone(verifier))
            .workers(workers)
            .build()
            .unwrap();
        let admin = router.admin();
        admin
            .upsert_party(SUPPLIER, Party::approved(&[UserRole::ImportSupplier]))
            .unwrap();
        admin
            .add_certificate(CertRecord {
                id: self.cert,
                owner: SUPPLIER,
                public_key: self.signer.public_key(),
                not_before: 0,
                not_after: u64::MAX,
            })
            .unwrap();
        admin.upsert_device(METER, Device::new(SUPPLIER)).unwrap();
        router
    }

    /// Submits every request and waits for all answers; returns the elapsed time.
    fn run(&self, router: &Router) -> Duration {
        match submit_mode() {
            Submit::Callback => self.run_callback(router),
            Submit::Future => self.run_future(router),
        }
    }

    fn run_future(&self, router: &Router) -> Duration {
        let start = Instant::now();
        let futs: Vec<_> = self
            .requests
            .iter()
            .map(|b| router.submit(b.clone()))
            .collect();
        for f in futs {
            let r = f.wait();
            assert_eq!(r.code, ResponseCode::Success, "{r:?}");
        }
        start.elapsed()
    }

    /// As the QUIC ingress: the callback (on the verify worker) observes the metrics, encodes
    /// the answer frame and queues it for a writer task that drains the queue in batches.
    fn run_callback(&self, router: &Router) -> Duration {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let metrics = Arc::new(Metrics::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Queued>>();
        let n = self.requests.len();
        let writer = rt.spawn(async move {
            let mut queued = Vec::with_capacity(256);
            let (mut got, mut ok) = (0, 0);
            while got < n {
                if rx.recv_many(&mut queued, 256).await == 0 {
                    break;
                }
                for answers in queued.drain(..) {
                    got += answers.len();
                    ok += answers.iter().filter(|(_, success)| *success).count();
                }
            }
            ok
        });
        let start = Instant::now();
        for b in &self.requests {
            let (metrics, tx) = (Arc::clone(&metrics), tx.clone());
            router.submit_with(b.clone(), move |r| {
                metrics.observe(&r);
                let success = r.code == ResponseCode::Success;
                if let Ok(frame) = framed_with(64, |out| encode_response(out, &r)) {
                    if legacy_send() {
                        let _ = tx.send(vec![(frame, success)]);
                    } else {
                        queue_answer(&tx, (frame, success));
                    }
                }
            });
        }
        drop(tx);
        let ok = rt.block_on(writer).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(ok, n, "every request answered I0");
        elapsed
    }
}

/// An answer frame for the writer, and whether it was I0.
type Queued = (bytes::Bytes, bool);
type AnswerTx = tokio::sync::mpsc::UnboundedSender<Vec<Queued>>;

thread_local! {
    static PENDING: std::cell::RefCell<Vec<(AnswerTx, Vec<Queued>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `DCC_BENCH_LEGACY_SEND=1`: one channel message per answer, as the ingress sent before it
/// kept a batch's answers aside (for the side-by-side figures).
fn legacy_send() -> bool {
    static LEGACY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LEGACY.get_or_init(|| std::env::var_os("DCC_BENCH_LEGACY_SEND").is_some())
}

/// What the ingress's `server::queue_answer` does: the answers a worker delivers together go
/// to the writer as one message, sent once they are all delivered.
fn queue_answer(tx: &AnswerTx, answer: Queued) {
    let first = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let first = p.is_empty();
        match p.iter_mut().find(|(t, _)| t.same_channel(tx)) {
            Some((_, queued)) => queued.push(answer),
            None => p.push((tx.clone(), vec![answer])),
        }
        first
    });
    if first {
        dcc_router::after_answers(|| {
            for (tx, answers) in PENDING.with(|p| std::mem::take(&mut *p.borrow_mut())) {
                let _ = tx.send(answers);
            }
        });
    }
}

/// A digest and its signature.
type Signed = ([u8; 32], [u8; 64]);

/// Single-thread verify: `n` distinct signatures over distinct digests with one prepared key.
fn verify_set(n: usize, verifier: &dyn Verifier) -> (Arc<dyn PreparedKey>, Vec<Signed>) {
    let signer = Signer::random();
    let key = verifier.prepare(&signer.public_key());
    let set = (0..n as u64)
        .map(|i| {
            let d: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
            (d, signer.sign_prehash(&d).unwrap())
        })
        .collect();
    (key, set)
}

fn single_thread_rate(key: &dyn PreparedKey, set: &[Signed], rounds: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        for (d, s) in set {
            key.verify_prehash(d, s).unwrap();
        }
    }
    (rounds * set.len()) as f64 / start.elapsed().as_secs_f64()
}

/// CPU time per signature (ns) of what a worker calls: [`Verifier::verify_batch`] over batches
/// of the router's default size, 8 (a backend may share work across a batch, so this, not one
/// `verify_prehash` at a time, is the verification inside a worker's CPU time).
fn batch_verify_cpu(
    verifier: &dyn Verifier,
    key: &dyn PreparedKey,
    set: &[Signed],
    rounds: usize,
) -> f64 {
    let cpu = cpu_time::ThreadTime::now();
    let mut out = [false; 8];
    for _ in 0..rounds {
        for chunk in set.chunks(8) {
            let jobs: Vec<VerifyJob<'_>> = chunk
                .iter()
                .map(|(digest, signature)| VerifyJob {
                    key,
                    digest,
                    signature,
                })
                .collect();
            verifier.verify_batch(&jobs, &mut out[..jobs.len()]);
            assert!(out[..jobs.len()].iter().all(|ok| *ok));
        }
    }
    cpu.elapsed().as_nanos() as f64 / (rounds * set.len()) as f64
}

/// CPU time (ns) used so far by the live router's verify workers (threads `dcc-verify-*`),
/// from `/proc/self/task/*/schedstat` (Linux; `None` elsewhere). Why CPU time: on a shared
/// machine wall-clock rates move with other people's load, while the CPU a worker spends per
/// request barely does — the per-request cost outside verification is read from it.
fn workers_cpu_ns() -> Option<(usize, u64)> {
    let mut total: Option<(usize, u64)> = None;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        // A thread may end while we look (another router's worker, a runtime thread).
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("dcc-verify-") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
        if let Some(ns) = stat
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            let (n, sum) = total.unwrap_or((0, 0));
            total = Some((n + 1, sum + ns));
        }
    }
    total
}

/// The workers' CPU so far, once all `w` have started (a thread takes its name when it first
/// runs, so one not yet running would be missed); `None` where `/proc` does not say.
fn started_workers_cpu_ns(w: usize) -> Option<u64> {
    for _ in 0..1000 {
        match workers_cpu_ns() {
            Some((n, ns)) if n >= w => return Some(ns),
            None if !std::path::Path::new("/proc/self/task").exists() => return None,
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    None
}

fn worker_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let asked: Vec<usize> = std::env::var("DCC_BENCH_WORKERS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    asked
        .into_iter()
        .filter(|w| *w >= 1 && *w <= cores.max(1))
        .collect()
}

fn bench_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    for (name, verifier) in verifiers() {
        let (key, set) = verify_set(64, &*verifier);
        let mut i = 0;
        g.bench_function(format!("{name}_single_thread"), |b| {
            b.iter(|| {
                let (d, s) = &set[i % set.len()];
                i += 1;
                key.verify_prehash(d, s).unwrap();
            })
        });
    }
    g.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let n = if is_real_bench() { 4096 } else { 32 };
    let fx = Fixture::new(n);
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    for (name, verifier) in verifiers() {
        for w in worker_counts() {
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_workers"), w),
                &w,
                |b, &w| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let router = fx.router(w, &verifier);
                            total += fx.run(&router);
                            router.shutdown();
                        }
                        total
                    })
                },
            );
        }
    }
    g.finish();
}

/// The figure: pipeline rate with W workers / (W × single-thread verify rate), both
/// measured here, best of a few repetitions each.
fn summary() {
    let real = is_real_bench();
    let (n, reps, rounds) = if real {
        let reps = std::env::var("DCC_BENCH_REPS")
            .ok()
            .and_then(|r| r.parse().ok());
        (4096, reps.unwrap_or(5), 40)
    } else {
        (32, 1, 1)
    };
    let fx = Fixture::new(n);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = worker_counts();
    println!(
        "pipeline summary ({cores} cores visible, n = {n} requests per run, best of {reps}, \
         submit: {:?})",
        submit_mode()
    );
    for (name, verifier) in verifiers() {
        let (key, set) = verify_set(256, &*verifier);
        // Interleave the single-thread and pipeline runs so that both see the same machine
        // (on a shared box the load drifts between minutes); keep the best of each (for CPU
        // per request, the least: other load only adds to it).
        let (mut single, mut single_cpu) = (0f64, f64::MAX);
        let mut best = vec![0f64; workers.len()];
        let mut worker_cpu = vec![f64::MAX; workers.len()];
        for _ in 0..reps {
            single = single.max(single_thread_rate(&*key, &set, rounds.max(1)));
            single_cpu = single_cpu.min(batch_verify_cpu(&*verifier, &*key, &set, rounds.max(1)));
            for (i, &w) in workers.iter().enumerate() {
                let router = fx.router(w, &verifier);
                let before = started_workers_cpu_ns(w);
                let t = fx.run(&router);
                if let (Some(a), Some((_, b))) = (before, workers_cpu_ns()) {
                    worker_cpu[i] = worker_cpu[i].min(b.saturating_sub(a) as f64 / n as f64);
                }
                router.shutdown();
                best[i] = best[i].max(n as f64 / t.as_secs_f64());
            }
        }
        println!(
            "  single-thread {name} verify: {single:.0}/s; verify_batch (8): {:.2} µs CPU each",
            single_cpu / 1e3
        );
        for ((&w, &rate), &cpu) in workers.iter().zip(&best).zip(&worker_cpu) {
            let ideal = single * w as f64;
            println!(
                "  {name}, workers {w}: {rate:.0} req/s = {:.1} % of {w} x single-thread ({ideal:.0}/s)",
                100.0 * rate / ideal
            );
            if cpu < f64::MAX {
                println!(
                    "  {name}, workers {w}: worker CPU {:.2} µs/request, {:.2} µs outside \
                     verification ({:.1} % of the worker's time)",
                    cpu / 1e3,
                    (cpu - single_cpu) / 1e3,
                    100.0 * (cpu - single_cpu) / cpu
                );
            }
        }
    }
}

criterion_group!(benches, bench_verify, bench_pipeline);

fn main() {
    benches();
    summary();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
