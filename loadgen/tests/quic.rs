//! The `quic://` target against a real `dcc-router serve` started in-process: the population
//! comes from the server's PKI directory, every request travels over QUIC on the connection of
//! its originator, and scenario events go through the admin channel.
//!
//! Short, low-rate runs (debug builds on a 2-core CI machine); count expectations only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dcc_router::server::{self, ServeConfig};
use loadgen::population::World;
use loadgen::report::{text, Report};
use loadgen::run::{run, RunOptions};
use loadgen::scenario::{Overrides, Plan, Scenario};
use loadgen::target::quic;

const DEVICES: u64 = 1000;

// Runtime-agnostic, so it serialises tests that each run their own runtime.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A one-worker server on loopback, no metrics or DUIS ingress, [`DEVICES`] demo devices.
fn test_config(data: &std::path::Path) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: None,
        data_dir: data.to_path_buf(),
        workers: 1,
        demo_devices: DEVICES,
        ..ServeConfig::default()
    }
}

async fn run_over_quic(name: &str, rate: f64, duration: Duration) -> Report {
    run_over_quic_with(name, Some(rate), duration, DEVICES, |_| {}).await
}

/// `rate: None` runs at the rate the scenario asks (for `overload`, relative to the server's
/// published capacity estimate).
async fn run_over_quic_with(
    name: &str,
    rate: Option<f64>,
    duration: Duration,
    devices: u64,
    configure: impl FnOnce(&mut ServeConfig),
) -> Report {
    let _guard = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let mut cfg = ServeConfig {
        demo_devices: devices,
        ..test_config(data.path())
    };
    configure(&mut cfg);
    let running = server::start(&cfg).await.unwrap();
    assert!(running.created_pki);
    let pki = cfg.pki_dir();
    let scenario = Scenario::load(name).unwrap();
    let world =
        Arc::new(World::from_pki_dir(&pki, &scenario, devices, cfg.prepayment_percent).unwrap());
    // The directory's Users, not the scenario's counts: supplier-a and supplier-b, netop, srp.
    assert_eq!(world.suppliers.len(), 2);
    assert_eq!(world.network_operators.len(), 1);
    assert_eq!(world.srps.len(), 1);
    assert!(world.users.iter().all(|u| u.name != "admin"));
    let addr = running.addr.to_string();
    let target = quic::build(&addr, &pki, &world).await.unwrap();
    // The server's published capacity estimate, read over the admin channel at connect.
    let capacity = target.capacity_hint();
    assert!(
        capacity.is_some_and(|c| c > 0.0),
        "the QUIC target reads the server's capacity: {capacity:?}"
    );
    let plan = Plan::build(
        scenario,
        &Overrides {
            rate,
            duration: Some(duration),
            ramp: None,
            senders: Some(2),
        },
        target.capacity_hint(),
    )
    .unwrap();
    target.setup(&world).unwrap();
    let result = run(plan, world, target, RunOptions::default(), &mut |_| {}).await;
    let report = Report::new(&result);
    eprintln!("{}", text::render(&report));
    running.shutdown().await;
    let g = &report.generator;
    assert_eq!(g.sent + g.replay_unavailable, g.scheduled);
    let answered: u64 = report.lanes.iter().map(|l| l.answered).sum();
    let errors: u64 = report.lanes.iter().map(|l| l.error).sum();
    assert_eq!(answered, g.sent, "every request sent was answered");
    assert_eq!(errors, 0, "no transport errors\n{}", text::render(&report));
    assert!(
        report
            .codes
            .iter()
            .all(|c| c.code != "TRANSPORT" && c.code != "E1"),
        "{:?}",
        report.codes
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_over_quic() {
    let r = run_over_quic("steady", 50.0, Duration::from_secs(2)).await;
    let ok: u64 = r.lanes.iter().map(|l| l.ok).sum();
    let answered: u64 = r.lanes.iter().map(|l| l.answered).sum();
    assert!(ok > 0);
    // Steady traffic is all valid: aimed at devices the server registered for the sender.
    assert_eq!(ok, answered, "{:?}", r.codes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solr_over_quic_applies_its_event_through_the_admin_channel() {
    let r = run_over_quic("solr", 50.0, Duration::from_secs(3)).await;
    assert_eq!(r.events.len(), 1);
    assert!(r.events[0].contains("applied"), "{:?}", r.events);
    // After the delay, the failed Supplier's own requests are refused as revoked.
    assert!(r.codes.iter().any(|c| c.code == "R3"), "{:?}", r.codes);
    let ok: u64 = r.lanes.iter().map(|l| l.ok).sum();
    assert!(ok > 0);
}

/// Issue 15.3: `loadgen -s overload` over QUIC against a one-worker server, at the rate the
/// server publishes. The server runs the plain-p256 verifier so that twice its capacity is
/// within what a generator sharing the same two cores can sign and send (BENCHMARKS.md, "QUIC
/// overload"). Counts and shares only; the latencies stay in the report. 12,000 demo devices
/// include devices without SM WAN (DP094), which the generator must not aim CV 1 at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_over_quic_sheds_the_lowest_lane_by_capacity() {
    use dcc_router::server::config::{StoreMode, VerifierMode};
    let r = run_over_quic_with("overload", None, Duration::from_secs(12), 12_000, |c| {
        c.verifier = VerifierMode::P256;
        c.store = StoreMode::Memory;
    })
    .await;
    assert!(r.rate_source.contains("capacity"), "{}", r.rate_source);
    let hold = r.phases.iter().find(|p| p.name == "hold").unwrap();
    let lane = |name: &str| hold.lanes.iter().find(|l| l.lane == name);
    // Shed by lane capacity (busy), not only throttled by the per-User rate limit.
    let l3 = lane("L3").unwrap();
    assert!(l3.busy > 0, "L3 is shed busy in hold: {l3:?}");
    // Nothing in L0 or L1 is shed, anywhere in the run; L1 is accepted in hold.
    for l in r.lanes.iter().filter(|l| l.lane == "L0" || l.lane == "L1") {
        assert_eq!(l.busy, 0, "{l:?}");
    }
    let l1 = lane("L1").unwrap();
    assert!(
        l1.ok as f64 >= 0.99 * l1.answered as f64 && l1.answered > 0,
        "{l1:?}"
    );
    // DP094: no request was aimed at a device that has no WAN.
    assert!(r.codes.iter().all(|c| c.code != "E20"), "{:?}", r.codes);
}

/// Issue 13 item 5, DP092 (tabasc-dp091-dp095.txt, H8.3: planned maintenance "between 20:00
/// and 08:00", at most 6 h): `loadgen -s maintenance` as a process against a server whose
/// clock is simulated from 20:00 UTC (`ServeConfig::simulated_clock_start`, tests only). The
/// scenario plans a high-impact window over the admin channel mid-run and removes it later;
/// counted from the JSON report: inside the window L2 and L3 are answered busy (R10) and none
/// accepted, while L0 and L1 keep flowing; before and after it L3 is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_window_crossed_by_the_loadgen_process() {
    let _guard = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cfg = ServeConfig {
        simulated_clock_start: Some(loadgen::target::inproc::next_evening(now)),
        ..test_config(data.path())
    };
    let running = server::start(&cfg).await.unwrap();
    let pki = cfg.pki_dir();
    let addr = running.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                "-s",
                "maintenance",
                "--rate",
                "80",
                "--senders",
                "2",
                "--json",
                "-q",
            ])
            .args(["--target", &format!("quic://{addr}")])
            .arg("--pki")
            .arg(&pki)
            .args(["--devices", &DEVICES.to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    running.shutdown().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout}\nstderr {stderr}"));
    let failed: Vec<_> = report["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["passed"] != true)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lane = |phase: &str, lane: &str, field: &str| -> u64 {
        let p = report["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == phase)
            .unwrap();
        p["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["lane"] == lane)
            .map_or(0, |l| l[field].as_u64().unwrap())
    };
    eprintln!(
        "window: L3 ok {} busy {}, L2 ok {} busy {}, L1 ok {}, L0 ok {}; before: L3 ok {} busy {}; after: L3 ok {} busy {}",
        lane("window", "L3", "ok"),
        lane("window", "L3", "busy"),
        lane("window", "L2", "ok"),
        lane("window", "L2", "busy"),
        lane("window", "L1", "ok"),
        lane("window", "L0", "ok"),
        lane("before", "L3", "ok"),
        lane("before", "L3", "busy"),
        lane("after", "L3", "ok"),
        lane("after", "L3", "busy"),
    );
    assert_eq!(lane("window", "L3", "ok"), 0);
    assert!(lane("window", "L3", "busy") > 0);
    assert_eq!(lane("window", "L2", "ok"), 0);
    assert!(lane("window", "L2", "busy") > 0);
    assert!(lane("window", "L1", "ok") > 0 && lane("window", "L1", "busy") == 0);
    assert!(lane("window", "L0", "ok") > 0 && lane("window", "L0", "busy") == 0);
    for phase in ["before", "after"] {
        assert!(lane(phase, "L3", "ok") > 0, "{phase}");
        assert_eq!(lane(phase, "L3", "busy"), 0, "{phase}");
    }
    let r10 = report["codes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["code"] == "R10");
    assert!(r10, "{}", report["codes"]);
}

/// Issue 15: two loadgen processes sending as the same Users at the same time, `--instance 1/2`
/// and `--instance 2/2`, against one server. The second starts a second after the first, so
/// their counters would be a million apart had each drawn them from its own start time (the
/// first's then fall out of the router's anti-replay window: `R7` too-old); with instances
/// they are disjoint residues of one clock. Both reports: every request accepted, no `R7`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_as_the_same_users_never_collide_on_counters() {
    let _guard = ONE_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let cfg = test_config(data.path());
    let running = server::start(&cfg).await.unwrap();
    let pki = cfg.pki_dir();
    let addr = running.addr.to_string();
    let spawn = |instance: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                "-s",
                "steady",
                "--rate",
                "100",
                "-d",
                "4s",
                "--senders",
                "2",
            ])
            .args(["--json", "-q", "--instance", instance])
            .args(["--target", &format!("quic://{addr}")])
            .arg("--pki")
            .arg(&pki)
            .args(["--devices", &DEVICES.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn("1/2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = spawn("2/2");
    let outs =
        tokio::task::spawn_blocking(move || [first, second].map(|c| c.wait_with_output().unwrap()))
            .await
            .unwrap();
    running.shutdown().await;
    for (out, instance) in outs.iter().zip(["1/2", "2/2"]) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{instance}: {e}: stdout {stdout}\nstderr {stderr}"));
        let codes = &report["codes"];
        assert!(
            codes.as_array().unwrap().iter().all(|c| c["code"] != "R7"),
            "{instance}: {codes}"
        );
        let sum = |field: &str| -> u64 {
            report["lanes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l[field].as_u64().unwrap())
                .sum()
        };
        assert!(sum("ok") > 0, "{instance}");
        assert_eq!(sum("ok"), sum("answered"), "{instance}: {codes}");
        assert_eq!(out.status.code(), Some(0), "{instance}: {stderr}");
    }
}
