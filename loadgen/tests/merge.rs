//! `loadgen merge`: the `.hlog` files of several runs give one per-lane report whose counts
//! are the sums of the runs' and whose percentiles are those of the combined histograms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use loadgen::clock::TokioClock;
use loadgen::merge::{merge, render, MergeError};
use loadgen::population::World;
use loadgen::report::Report;
use loadgen::run::{run, RunOptions, RunResult};
use loadgen::scenario::{Overrides, Plan, Scenario};
use loadgen::target::mock::{MockConfig, MockTarget};
use loadgen::target::Target;

/// A short run against a mock that sheds above `limit`/s (so that busy answers show).
async fn one_run(seed: u64, rate: f64, limit: f64) -> RunResult {
    let mut scenario = Scenario::load("steady").unwrap();
    scenario.seed = seed;
    scenario.population.devices = scenario.population.devices.min(2_000);
    let world = Arc::new(World::new(&scenario.population));
    let plan = Plan::build(
        scenario,
        &Overrides {
            rate: Some(rate),
            duration: Some(Duration::from_millis(1500)),
            ramp: None,
            senders: Some(2),
        },
        None,
    )
    .unwrap();
    let target: Arc<dyn Target> = Arc::new(MockTarget::new(
        MockConfig {
            service_time: Duration::from_micros(200),
            stall: None,
            capacity: None,
            limit: Some(limit),
        },
        TokioClock::start_now(),
    ));
    run(plan, world, target, RunOptions::default(), &mut |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_hlogs_give_the_runs_per_lane_report() {
    let a = one_run(1, 800.0, 1e9).await;
    let b = one_run(2, 1600.0, 800.0).await;
    let (ra, rb) = (Report::new(&a), Report::new(&b));

    // One file: the per-lane report of the run itself, exactly.
    let single = merge(&[("a.hlog".into(), a.hlog.clone())]).unwrap();
    assert_eq!(single.lanes, ra.lanes, "{}", render(&single));

    // Two files: counts add per lane and class.
    let both = merge(&[
        ("a.hlog".into(), a.hlog.clone()),
        ("b.hlog".into(), b.hlog.clone()),
    ])
    .unwrap();
    eprintln!("{}", render(&both));
    assert_eq!(both.files.len(), 2);
    assert!(both.files.iter().all(|f| f.intervals > 0 && f.answered > 0));
    let lane = |r: &Report, name: &str| r.lanes.iter().find(|l| l.lane == name).cloned();
    let mut busy = 0;
    for l in &both.lanes {
        let (x, y) = (lane(&ra, &l.lane), lane(&rb, &l.lane));
        let sum = |f: fn(&loadgen::report::LaneRow) -> u64| {
            x.as_ref().map_or(0, f) + y.as_ref().map_or(0, f)
        };
        assert_eq!(l.answered, sum(|r| r.answered), "lane {}", l.lane);
        assert_eq!(l.ok, sum(|r| r.ok), "lane {}", l.lane);
        assert_eq!(l.busy, sum(|r| r.busy), "lane {}", l.lane);
        assert_eq!(l.throttled, sum(|r| r.throttled), "lane {}", l.lane);
        assert_eq!(l.corrected.count, l.ok);
        let max = x
            .iter()
            .chain(y.iter())
            .filter(|r| r.ok > 0)
            .map(|r| r.corrected.max)
            .fold(0.0, f64::max);
        assert_eq!(l.corrected.max, max, "lane {}", l.lane);
        busy += l.busy;
    }
    assert!(busy > 0, "the second run sheds above its mock's limit");
    let total: u64 = both.lanes.iter().map(|l| l.answered).sum();
    assert_eq!(total, ra.generator.sent + rb.generator.sent);
    assert!(render(&both).contains("2 interval log(s)"));
}

#[test]
fn nothing_or_an_old_log_is_refused_with_a_reason() {
    assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    let err = merge(&[("x.hlog".into(), b"not a log at all\n".to_vec())]);
    assert!(err.is_err());
}
