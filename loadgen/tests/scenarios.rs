//! Every built-in scenario, run briefly against the embedded router: its expectations hold.
//!
//! Runs are short and (except `overload`, which must overload) at a low rate so that the suite
//! stays quick on a 2-core CI machine; they run one at a time (a shared lock) so that they do
//! not overload each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use loadgen::population::World;
use loadgen::report::{text, Report};
use loadgen::run::{run, RunOptions};
use loadgen::scenario::{Overrides, Plan, Scenario};
use loadgen::target::inproc::InProcTarget;
use loadgen::target::Target;

// Runtime-agnostic, so it serialises tests that each run their own runtime.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_builtin(name: &str, rate: Option<f64>, duration: Duration, workers: usize) -> Report {
    let _guard = ONE_AT_A_TIME.lock().await;
    let mut scenario = Scenario::load(name).unwrap();
    // Fewer devices: registering 100 000 of them is needless work for a short run.
    scenario.population.devices = scenario.population.devices.min(5_000);
    let world = Arc::new(World::new(&scenario.population));
    let inproc = InProcTarget::new(Some(workers)).unwrap();
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
    assert!(
        report.passed,
        "scenario {name}: expectations failed\n{}",
        text::render(&report)
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_holds() {
    let r = run_builtin("attack", Some(200.0), Duration::from_secs(2), 1).await;
    for code in ["R6", "R7", "R2", "E2", "E4"] {
        assert!(r.codes.iter().any(|c| c.code == code), "no {code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_holds() {
    // Base rate: the router's own capacity estimate (one worker), so `hold` really is 2×.
    let r = run_builtin("overload", None, Duration::from_secs(3), 1).await;
    let hold = r.phases.iter().find(|p| p.name == "hold").unwrap();
    let l3 = hold.lanes.iter().find(|l| l.lane == "L3").unwrap();
    assert!(l3.busy > 0);
}
