//! Every built-in scenario, run briefly against the embedded router: its functional
//! expectations hold (latency ones are reported, not gated: see `run_on`).
//!
//! Runs are short and (except `overload`, which must overload) at a low rate so that the suite
//! stays quick on a 2-core CI machine; they run one at a time (a shared lock) so that they do
//! not overload each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dcc_signing::verify::{BadSignature, P256Verifier, PreparedKey, Verifier};
use loadgen::expect::Expect;
use loadgen::population::World;
use loadgen::report::{text, Report};
use loadgen::run::{run, RunOptions};
use loadgen::scenario::{Overrides, Plan, Scenario};
use loadgen::target::inproc::InProcTarget;
use loadgen::target::Target;

// Runtime-agnostic, so it serialises tests that each run their own runtime.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A verifier that also sleeps per signature: it gives the router a capacity that does not
/// depend on how fast or how busy the CI machine is, so `overload` really overloads it.
#[derive(Debug)]
struct Slow(Duration);

#[derive(Debug)]
struct SlowKey(Arc<dyn PreparedKey>, Duration);

impl PreparedKey for SlowKey {
    fn verify_prehash(&self, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), BadSignature> {
        std::thread::sleep(self.1);
        self.0.verify_prehash(digest, sig)
    }
}

impl Verifier for Slow {
    fn name(&self) -> &str {
        "slow-p256"
    }
    fn prepare(&self, key: &p256::PublicKey) -> Arc<dyn PreparedKey> {
        Arc::new(SlowKey(P256Verifier.prepare(key), self.0))
    }
}

async fn run_builtin(name: &str, rate: Option<f64>, duration: Duration, workers: usize) -> Report {
    run_on(
        name,
        rate,
        duration,
        InProcTarget::new(
            Some(workers),
            dcc_router::Policy::default(),
            loadgen::scenario::VerifierMode::KnownSigner,
            Scenario::load(name).unwrap().plans_maintenance(),
        )
        .unwrap(),
    )
    .await
}

async fn run_on(name: &str, rate: Option<f64>, duration: Duration, inproc: InProcTarget) -> Report {
    let _guard = ONE_AT_A_TIME.lock().await;
    let mut scenario = Scenario::load(name).unwrap();
    // Fewer devices: registering 100 000 of them is needless work for a short run.
    scenario.population.devices = scenario.population.devices.min(5_000);
    let world = Arc::new(World::new(&scenario.population));
    let plan = Plan::build(
        scenario,
        &Overrides {
            rate,
            duration: Some(duration),
            ramp: None,
            senders: Some(2),
        },
        inproc.capacity_hint(),
    )
    .unwrap();
    inproc.setup(&world).unwrap();
    let target: Arc<dyn Target> = Arc::new(inproc);
    let result = run(plan, world, target, RunOptions::default(), &mut |_| {}).await;
    let report = Report::new(&result);
    // Functional expectations (counts, shares) are gated. Latency expectations are timing
    // assertions, which the project keeps out of tests (a shared 2-core CI machine makes them
    // flaky): their verdicts are printed so the figures stay visible in CI logs, and the
    // `loadgen` binary gates on them when run for real.
    for (spec, verdict) in result
        .plan
        .scenario
        .expectations
        .iter()
        .zip(&result.expectations)
    {
        let timing = matches!(
            spec,
            Expect::MaxLatency { .. } | Expect::LatencyRatio { .. }
        );
        if timing {
            eprintln!(
                "{name}: latency expectation (not gated here): [{}] {} — {}",
                if verdict.passed { "PASS" } else { "FAIL" },
                verdict.check,
                verdict.observed
            );
        } else {
            assert!(
                verdict.passed,
                "scenario {name}: {} — observed {}\n{}",
                verdict.check,
                verdict.observed,
                text::render(&report)
            );
        }
    }
    assert_eq!(
        report.generator.sent + report.generator.replay_unavailable,
        report.generator.scheduled
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_holds() {
    let r = run_builtin("steady", Some(200.0), Duration::from_secs(2), 1).await;
    // Every lane of the steady mix was exercised.
    let lanes: Vec<&str> = r.lanes.iter().map(|l| l.lane.as_str()).collect();
    assert_eq!(lanes, ["L0", "L1", "L2", "L3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solr_holds() {
    let r = run_builtin("solr", Some(200.0), Duration::from_secs(3), 1).await;
    assert_eq!(r.events.len(), 1);
    assert!(r.events[0].contains("applied"), "{:?}", r.events);
    assert!(r.codes.iter().any(|c| c.code == "R3"));
}

/// DP092 in-process: the embedded router runs on a simulated clock from 20:00 UTC (the
/// scenario plans a window); both events apply and the window's R10 answers are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_holds() {
    let r = run_builtin("maintenance", Some(200.0), Duration::from_secs(4), 1).await;
    assert_eq!(r.events.len(), 2, "{:?}", r.events);
    assert!(
        r.events.iter().all(|e| e.contains("applied")),
        "{:?}",
        r.events
    );
    assert!(r.codes.iter().any(|c| c.code == "R10"), "{:?}", r.codes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_holds() {
    let r = run_builtin("attack", Some(200.0), Duration::from_secs(2), 1).await;
    // R9: the rogue Supplier's forged flood is refused once its signatures keep failing.
    for code in ["R6", "R7", "R2", "E2", "E4", "R9"] {
        assert!(r.codes.iter().any(|c| c.code == code), "no {code}");
    }
    // Only the rogue Supplier is penalised: valid traffic (other Suppliers) is never throttled.
    let valid = r.tags.iter().find(|t| t.tag == "valid").unwrap();
    assert_eq!(valid.throttled, 0);
    let flood = r.tags.iter().find(|t| t.tag == "forged-flood").unwrap();
    assert!(flood.throttled > 0 && flood.ok == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_holds() {
    // One worker whose every verification takes at least 1 ms (in practice ~1.1–1.2 ms with
    // sleep overshoot): capacity ≈ 850/s whatever the machine. We declare 700/s, so `hold`
    // offers 1400/s: ~1.65× what the router can verify, enough to shed L3 (lane full or past
    // its 2 s deadline) within a 2.5 s hold on any machine. (At a
    // full 2× with one worker, L1 p99 rose ~4.7× over steady in a trial run: see the notes.)
    let router = dcc_router::Router::builder()
        .verifier(Arc::new(Slow(Duration::from_millis(1))))
        .workers(1)
        .batch_size(1)
        .build()
        .unwrap();
    let inproc = InProcTarget::from_router(router, 1, 700.0);
    let r = run_on("overload", None, Duration::from_secs(6), inproc).await;
    // With ONE worker under sustained overload L1 gets its quota share of the rounds while
    // L2/L3 are backlogged (32 of 37), so its p99 depends on how close its own demand comes to
    // that share on the machine at hand: the latency verdicts are printed by `run_on`, not
    // gated (BENCHMARKS.md, "Highest lane first within weighted rounds").
    let hold = r.phases.iter().find(|p| p.name == "hold").unwrap();
    let l3 = hold.lanes.iter().find(|l| l.lane == "L3").unwrap();
    assert!(l3.busy > 0);
}
