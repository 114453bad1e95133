//! Capacity discovery: the calibration ramp against a target of known capacity (the mock with
//! a limit, answering busy beyond it), and no silent fixed rate when no capacity is known.
//!
//! The ramp's latency criterion is switched off here (a p99 on a shared 2-core CI machine is a
//! timing, which tests do not gate): what is checked is what the counts say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use loadgen::calibrate::{discover, RampConfig, StopReason};
use loadgen::clock::TokioClock;
use loadgen::population::World;
use loadgen::scenario::{Overrides, Plan, Scenario};
use loadgen::target::mock::{MockConfig, MockTarget};
use loadgen::target::Target;

const LIMIT: f64 = 5_000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ramp_finds_a_known_capacity_and_says_how() {
    let mut scenario = Scenario::load("overload").unwrap();
    scenario.population.devices = scenario.population.devices.min(2_000);
    let world = Arc::new(World::new(&scenario.population));
    let target: Arc<dyn Target> = Arc::new(MockTarget::new(
        MockConfig {
            service_time: Duration::from_micros(200),
            stall: None,
            capacity: None,
            limit: Some(LIMIT),
        },
        TokioClock::start_now(),
    ));
    assert_eq!(
        target.capacity_hint(),
        None,
        "the mock publishes no estimate here"
    );
    let cfg = RampConfig {
        start: 1_000.0,
        factor: 2.0,
        step: Duration::from_secs(1),
        max_steps: 6,
        max_p99_ratio: f64::INFINITY,
        senders: 2,
        ..RampConfig::default()
    };
    let mut seen = 0;
    let found = discover(&scenario, world, target, &cfg, None, &mut |_| seen += 1)
        .await
        .unwrap();
    eprintln!("{}\n{}", found.summary(), found.table());
    assert_eq!(seen, found.steps.len(), "every step is reported as it ends");
    assert_eq!(found.reason, StopReason::Busy, "{}", found.table());
    // 1000, 2000, 4000 pass; 8000 is over the limit (a third of it shed).
    let last = found.steps.last().unwrap();
    assert!(last.rate > LIMIT, "{}", found.table());
    assert!(last.busy > 0 && last.throttled == 0, "{}", found.table());
    assert!(
        found.capacity <= LIMIT && found.capacity >= LIMIT / 4.0,
        "capacity {} for a limit of {LIMIT}\n{}",
        found.capacity,
        found.table()
    );
    assert!(
        found.summary().contains("busy (R10)"),
        "{}",
        found.summary()
    );
    // Attack entries are left out of the ramp: nothing was refused.
    assert!(
        found.steps.iter().all(|s| s.refused == 0),
        "{}",
        found.table()
    );
}

#[test]
fn a_capacity_scenario_without_a_capacity_is_refused_not_given_a_fixed_rate() {
    let scenario = Scenario::load("overload").unwrap();
    let err = Plan::build(scenario.clone(), &Overrides::default(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no capacity is known"), "{err}");
    let plan = Plan::build(scenario, &Overrides::default(), Some(1234.0)).unwrap();
    assert_eq!(plan.base_rate, 1234.0);
    assert!(plan.warnings.iter().all(|w| !w.contains("2000")));
}
