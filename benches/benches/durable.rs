//! Durable state against the in-memory path, side by side in one run (issue 10's goal: with
//! the known-signer verifier, throughput ≥ 90 % of in-memory; p99 at 1,000 req/s grows by
//! ≤ 2 ms).
//!
//! `cargo bench -p dcc-benches --bench durable` alternates rounds of the two modes (fresh
//! router, fresh store file per round) and prints, per round and as medians:
//! * saturated throughput: `DCC_BENCH_N` requests (default 60,000), 8,192 kept in flight,
//!   all answered I0 — the durable router group-commits their anti-replay marks;
//! * the disk's own fsync latency, measured in the same run (the floor under per-request
//!   durability);
//! * open loop at `DCC_BENCH_RATE` req/s (default 1,000) for `DCC_BENCH_SECS` s (default 5):
//!   latency from the *intended* send time (coordinated omission corrected), p50/p99/max.
//!
//! `DCC_BENCH_REDB_CACHE_MIB=1024` opens the durable store with that page cache instead of
//! the store's own ([`CACHE_BYTES`](dcc_router::store::redb_store::CACHE_BYTES)).
//!
//! `DCC_BENCH_DEVICES=10000000` instead measures start-up: that many devices written to a
//! store (bulk, 100,000 per transaction), then the time to restore them into a new router
//! and the resident memory per device.
//!
//! `cargo test --benches` runs one tiny round of each mode as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dcc_router::policy::{LaneCapacity, RateLimit};
use dcc_router::state::CertRecord;
use dcc_router::store::{MemoryStore, RedbStore, Store};
use dcc_router::{Device, Lane, Party, Policy, ResponseCode, Router, State};
use dcc_signing::{CertId, Eui64, Signer, UserRole};
use hdrhistogram::Histogram;

const SUPPLIER: Eui64 = Eui64::from_u64(0x90B3_D51F_3001_0000);
const METER: Eui64 = Eui64::from_u64(0x00DB_1234_5678_0001);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

    /// A fresh router over `store`, the known-signer verifier (the default).
    fn router(&self, store: Arc<dyn Store>, workers: usize) -> Router {
        let mut policy = Policy {
            rate_limit: RateLimit::new(RateLimit::MAX, RateLimit::MAX).unwrap(),
            ..Policy::default()
        };
        policy.lanes[Lane::L2.index()].capacity = LaneCapacity::new(1 << 15).unwrap();
        let router = Router::builder()
            .policy(policy)
            .state(Arc::new(State::new()))
            .store(store)
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

    /// Keeps `window` requests in flight (a closed loop, as an ingress with that many
    /// requests outstanding would) until every request is answered; returns requests/s.
    /// Why a window rather than one burst: a burst is over in a few hundred ms, so a single
    /// slow fsync would decide the figure; with a window the workers go on verifying while a
    /// group is written, as they do under sustained load.
    ///
    /// Answers come back as the QUIC ingress forwards them: those a worker batch or a persist
    /// group delivers together reach the submitter as one message ([`forward`]);
    /// `DCC_BENCH_LEGACY_SEND=1` sends one message per answer instead.
    fn saturate(&self, router: &Router, window: usize) -> f64 {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<ResponseCode>>();
        let legacy = std::env::var_os("DCC_BENCH_LEGACY_SEND").is_some();
        let start = Instant::now();
        let mut sent = 0usize;
        let mut done = 0usize;
        let n = self.requests.len();
        while done < n {
            while sent < n && sent - done < window {
                let tx = tx.clone();
                router.submit_with(self.requests[sent].clone(), move |r| {
                    if legacy {
                        let _ = tx.send(vec![r.code]);
                    } else {
                        forward(&tx, r.code);
                    }
                });
                sent += 1;
            }
            let codes = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert!(
                codes.iter().all(|c| *c == ResponseCode::Success),
                "{codes:?}"
            );
            done += codes.len();
        }
        n as f64 / start.elapsed().as_secs_f64()
    }

    /// Open loop at `rate`/s over the first `rate × secs` requests; latency (µs) from the
    /// intended send time.
    fn open_loop(&self, router: &Router, rate: u64, secs: u64) -> Histogram<u64> {
        let n = (rate * secs) as usize;
        let hist = Arc::new(Mutex::new(
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap(),
        ));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        let start = Instant::now();
        for (i, b) in self.requests.iter().take(n).enumerate() {
            let intended = start + interval * i as u32;
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            let (h, tx) = (Arc::clone(&hist), done_tx.clone());
            router.submit_with(b.clone(), move |r| {
                assert_eq!(r.code, ResponseCode::Success, "{r:?}");
                let us = intended.elapsed().as_micros() as u64;
                h.lock().unwrap().saturating_record(us.clamp(1, 60_000_000));
                let _ = tx.send(());
            });
        }
        for _ in 0..n {
            done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        let h = hist.lock().unwrap().clone();
        h
    }
}

thread_local! {
    /// Answers kept aside on a worker (or the persist thread) until its batch is delivered.
    static HELD: std::cell::RefCell<Vec<ResponseCode>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What the QUIC ingress does with an answer (`ingress::server::queue_answer`): keeps it
/// aside and sends the answers delivered together as one message once they all are
/// ([`dcc_router::after_answers`]), so the submitter wakes once per batch, not per answer.
/// One submitter per thread at a time, as in this bench.
fn forward(tx: &std::sync::mpsc::Sender<Vec<ResponseCode>>, code: ResponseCode) {
    let first = HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.push(code);
        h.len() == 1
    });
    if first {
        let tx = tx.clone();
        dcc_router::after_answers(move || {
            let codes = HELD.with(|h| std::mem::take(&mut *h.borrow_mut()));
            let _ = tx.send(codes);
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Memory,
    Durable,
}

fn store(mode: Mode, dir: &tempfile::TempDir) -> Arc<dyn Store> {
    match mode {
        Mode::Memory => Arc::new(MemoryStore::default()),
        Mode::Durable => {
            let path = dir.path().join("state.redb");
            match std::env::var("DCC_BENCH_REDB_CACHE_MIB") {
                // A/B of redb's page cache (the store's own is `RedbStore::CACHE_BYTES`).
                Ok(mib) => {
                    let bytes = mib.parse::<usize>().unwrap() << 20;
                    let file = path.clone();
                    let opener: dcc_router::store::redb_store::Opener = Arc::new(move || {
                        redb::Database::builder()
                            .set_cache_size(bytes)
                            .create(&file)
                    });
                    Arc::new(RedbStore::open_with(&path, opener).unwrap())
                }
                Err(_) => Arc::new(RedbStore::open(&path).unwrap()),
            }
        }
    }
}

/// The disk's own fsync latency (µs, p50 and p99): 4 KiB written and synced, 500 times — the
/// floor under any per-request durability on this machine.
fn fsync_anchor(dir: &std::path::Path) -> (u64, u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("fsync.probe")).unwrap();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for _ in 0..500 {
        f.write_all(&[0x5A; 4096]).unwrap();
        let t = Instant::now();
        f.sync_data().unwrap();
        h.saturating_record((t.elapsed().as_micros() as u64).clamp(1, 60_000_000));
    }
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn compare(rounds: usize, n: usize, rate: u64, secs: u64, workers: usize) {
    let fx = Fixture::new(n.max((rate * secs) as usize));
    let mut tput = [Vec::new(), Vec::new()];
    let mut p99 = [Vec::new(), Vec::new()];
    let mut p50 = [Vec::new(), Vec::new()];
    println!(
        "durable vs memory: {workers} workers, known-signer verifier, {n} requests saturated \
         (8,192 in flight), open loop {rate}/s × {secs} s, {rounds} rounds (modes alternate)"
    );
    for round in 0..rounds {
        // Alternate which mode goes first, so drift favours neither.
        let order = if round % 2 == 0 {
            [Mode::Memory, Mode::Durable]
        } else {
            [Mode::Durable, Mode::Memory]
        };
        for mode in order {
            let i = mode as usize;
            let dir = tempfile::tempdir().unwrap();
            let router = fx.router(store(mode, &dir), workers);
            let t = fx.saturate(&router, 8192);
            router.shutdown();
            let dir2 = tempfile::tempdir().unwrap();
            let router = fx.router(store(mode, &dir2), workers);
            let h = fx.open_loop(&router, rate, secs);
            router.shutdown();
            println!(
                "  round {round} {mode:<7?} saturated {t:>9.0} req/s   open loop p50 {:>6} µs  p99 {:>6} µs  max {:>6} µs",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max()
            );
            tput[i].push(t);
            p50[i].push(h.value_at_quantile(0.5) as f64);
            p99[i].push(h.value_at_quantile(0.99) as f64);
        }
    }
    let probe = tempfile::tempdir().unwrap();
    let (f50, f99) = fsync_anchor(probe.path());
    println!("disk anchor (same run): fsync of 4 KiB p50 {f50} µs, p99 {f99} µs");
    let (tm, td) = (median(&mut tput[0]), median(&mut tput[1]));
    let (pm, pd) = (median(&mut p99[0]), median(&mut p99[1]));
    let (qm, qd) = (median(&mut p50[0]), median(&mut p50[1]));
    println!(
        "median: saturated memory {tm:.0} req/s, durable {td:.0} req/s = {:.1} % (goal ≥ 90 %)",
        100.0 * td / tm
    );
    println!(
        "median: open loop p50 memory {qm:.0} µs, durable {qd:.0} µs; p99 memory {pm:.0} µs, durable {pd:.0} µs: +{:.2} ms (goal ≤ 2 ms)",
        (pd - pm) / 1000.0
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn startup(devices: u64) {
    let dir = tempfile::tempdir_in(".").unwrap();
    let path = dir.path().join("state.redb");
    let fx = Fixture::new(1);
    {
        let router = fx.router(Arc::new(RedbStore::open(&path).unwrap()), 1);
        let admin = router.admin();
        let t = Instant::now();
        let mut batch = Vec::with_capacity(100_000);
        for i in 0..devices {
            batch.push((
                Eui64::from_u64(0x02DC_D000_0000_0000 + i),
                Device::new(SUPPLIER),
            ));
            if batch.len() == 100_000 || i + 1 == devices {
                admin.upsert_devices(&batch).unwrap();
                batch.clear();
            }
        }
        println!(
            "wrote {devices} devices in {:.1} s ({} MiB on disk)",
            t.elapsed().as_secs_f64(),
            std::fs::metadata(&path).map_or(0, |m| m.len() >> 20)
        );
        router.shutdown();
    }
    // The restore runs in a fresh process: in this one the allocator keeps the pages of the
    // router that wrote the store, and the restored table would reuse them unseen.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("DCC_BENCH_RESTORE", &path)
        .env("DCC_BENCH_DEVICES", devices.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Restores the store at `path` (holding `devices` devices) into a new router and reports the
/// time and the resident memory it added.
fn restore(path: &std::path::Path, devices: u64) {
    let rss0 = rss_kib();
    let t = Instant::now();
    let router = Router::builder()
        .state(Arc::new(State::with_device_capacity(devices as usize)))
        .store(Arc::new(RedbStore::open(path).unwrap()))
        .workers(1)
        .build()
        .unwrap();
    let opened = t.elapsed();
    let report = router.admin().restore(None).unwrap();
    let total = t.elapsed();
    let rss = rss_kib().saturating_sub(rss0);
    println!(
        "start-up with {} devices: open + integrity check {:.2} s, restore {:.2} s, total {:.2} s; \
         resident memory +{} MiB = {:.1} B/device (device table {:.1} B/device)",
        report.devices,
        opened.as_secs_f64(),
        (total - opened).as_secs_f64(),
        total.as_secs_f64(),
        rss >> 10,
        (rss * 1024) as f64 / devices.max(1) as f64,
        router.state().devices.heap_bytes() as f64 / devices.max(1) as f64,
    );
    router.shutdown();
}

fn main() {
    if let Some(path) = std::env::var_os("DCC_BENCH_RESTORE") {
        restore(std::path::Path::new(&path), env("DCC_BENCH_DEVICES", 0));
        return;
    }
    let real = std::env::args().any(|a| a == "--bench");
    if !real {
        // Smoke: one tiny round of each mode, every answer I0.
        compare(1, 200, 200, 1, 1);
        return;
    }
    let devices = env("DCC_BENCH_DEVICES", 0);
    if devices > 0 {
        startup(devices);
        return;
    }
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    compare(
        env("DCC_BENCH_ROUNDS", 5) as usize,
        env("DCC_BENCH_N", 60_000) as usize,
        env("DCC_BENCH_RATE", 1_000),
        env("DCC_BENCH_SECS", 5),
        env("DCC_BENCH_WORKERS", workers as u64) as usize,
    );
}
