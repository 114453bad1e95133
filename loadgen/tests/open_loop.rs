//! The generator's own guarantees, on a controlled (paused) clock: schedule accuracy,
//! coordinated-omission correction, generator-lag accounting, and the report files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dcc_signing::envelope::Header;
use dcc_signing::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Signer, Srv, UserRole};
use loadgen::clock::{Clock, TokioClock};
use loadgen::outcome::{Lane, Outcome, OutcomeClass};
use loadgen::population::World;
use loadgen::recorder::Recorder;
use loadgen::scenario::{EventSpec, Overrides, Plan, Scenario};
use loadgen::schedule::Schedule;
use loadgen::sender::{run_sender, Live, SenderConfig};
use loadgen::signer_pool::Prepared;
use loadgen::target::mock::{MockConfig, MockTarget};
use loadgen::target::{OutcomeFuture, Request, Target, TargetError};

fn envelope() -> Vec<u8> {
    let signer = Signer::random();
    let header = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::NON_CRITICAL_WAN,
        execution: ExecutionKind::OnDemand,
        srv: Srv::new2(2, 2),
        request_id: RequestId {
            originator: Eui64::from_u64(1),
            target: Eui64::from_u64(2),
            counter: 1,
        },
        execute_at: 0,
        signer: CertId::new([1; 8], &[1]).unwrap(),
    };
    signer.sign_envelope(&header, b"body").unwrap()
}

fn prefilled(n: u64, bytes: &[u8]) -> flume::Receiver<Prepared> {
    let (tx, rx) = flume::unbounded();
    for index in 0..n {
        tx.send(Prepared {
            index,
            phase: 0,
            tag: 0,
            bytes: bytes.to_vec(),
            transform: None,
            via: None,
            replay: false,
        })
        .unwrap();
    }
    rx
}

fn config() -> SenderConfig {
    SenderConfig {
        max_in_flight: 1_000_000,
        request_timeout: Duration::from_secs(30),
        keep_replays: false,
    }
}

/// Records when each request arrives, answers at once.
struct Arrivals<C: Clock> {
    clock: C,
    seen: Arc<Mutex<Vec<Duration>>>,
}

impl<C: Clock> Target for Arrivals<C> {
    fn describe(&self) -> String {
        "arrivals".into()
    }
    fn setup(&self, _: &World) -> Result<(), TargetError> {
        Ok(())
    }
    fn send(&self, _: Request) -> OutcomeFuture {
        self.seen.lock().unwrap().push(self.clock.now());
        Box::pin(async { Outcome::ok(Lane::L1) })
    }
    fn apply(&self, _: &World, _: &EventSpec) -> Result<(), TargetError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn requests_leave_at_their_intended_times() {
    let clock = TokioClock::start_now();
    // A ramp then a constant rate: times are not all whole milliseconds.
    let schedule = Arc::new(
        Schedule::new(vec![
            loadgen::schedule::Segment {
                duration: 1.0,
                from_rate: 0.0,
                to_rate: 800.0,
                phase: 0,
            },
            loadgen::schedule::Segment {
                duration: 1.0,
                from_rate: 800.0,
                to_rate: 800.0,
                phase: 0,
            },
        ])
        .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let target: Arc<dyn Target> = Arc::new(Arrivals {
        clock,
        seen: seen.clone(),
    });
    let rec = Recorder::new(1, 1);
    run_sender(
        prefilled(schedule.len(), &envelope()),
        schedule.clone(),
        target,
        clock,
        rec.clone(),
        config(),
        Arc::new(Live::default()),
    )
    .await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, schedule.len());
    assert_eq!(schedule.len(), 1200);
    for (i, t) in seen.iter().enumerate() {
        let want = schedule.at(i as u64);
        // Never early; late by at most the timer's 1 ms resolution.
        assert!(*t >= want, "request {i} sent early: {t:?} < {want:?}");
        assert!(
            *t - want <= Duration::from_millis(1),
            "request {i} late: {t:?} vs {want:?}"
        );
    }
    let g = rec.with(|s| s.generator(None));
    assert_eq!(g.sent, 1200);
    assert_eq!(g.late, 0);
    assert_eq!(g.starved, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_target_shows_as_latency_not_as_a_lower_rate() {
    let clock = TokioClock::start_now();
    let schedule = Arc::new(Schedule::constant(1000.0, Duration::from_secs(5)).unwrap());
    let target: Arc<dyn Target> = Arc::new(MockTarget::new(
        MockConfig {
            service_time: Duration::from_millis(1),
            stall: Some((Duration::from_secs(2), Duration::from_secs(1))),
            capacity: None,
            limit: None,
        },
        clock,
    ));
    let rec = Recorder::new(1, 1);
    run_sender(
        prefilled(schedule.len(), &envelope()),
        schedule.clone(),
        target,
        clock,
        rec.clone(),
        config(),
        Arc::new(Live::default()),
    )
    .await;
    let (g, h, raw) = rec.with(|s| {
        (
            s.generator(None),
            s.latency(None, None, &[OutcomeClass::Ok], true),
            s.latency(None, None, &[OutcomeClass::Ok], false),
        )
    });
    // The offered rate did not drop during the stall.
    assert_eq!(g.sent, 5000);
    assert_eq!(h.len(), 5000);
    // The request scheduled at the start of the stall waited the whole second.
    assert!(
        h.max() >= 995_000 && h.max() <= 1_010_000,
        "max {}",
        h.max()
    );
    // Requests scheduled in the first half of the stall waited more than half a second:
    // ~500 of them, which is what a closed-loop generator would have hidden.
    let slow = h.count_between(500_000, 2_000_000);
    assert!((495..=505).contains(&slow), "{slow}");
    // Everything outside the stall took the 1 ms service time.
    assert!(
        h.value_at_quantile(0.7) <= 1_100,
        "{}",
        h.value_at_quantile(0.7)
    );
    // The generator sent on time, so raw and corrected agree here.
    assert_eq!(raw.max(), h.max());
}

#[tokio::test(start_paused = true)]
async fn generator_lag_is_counted_and_corrected_latency_includes_it() {
    let clock = TokioClock::start_now();
    let schedule = Arc::new(Schedule::constant(1000.0, Duration::from_secs(2)).unwrap());
    let target: Arc<dyn Target> = Arc::new(MockTarget::new(
        MockConfig {
            service_time: Duration::from_millis(1),
            stall: None,
            capacity: None,
            limit: None,
        },
        clock,
    ));
    // Signing "stalls" for a second after the first 500 requests.
    let (tx, rx) = flume::bounded(10_000);
    let bytes = envelope();
    let feeder = tokio::spawn(async move {
        for index in 0..2000u64 {
            if index == 500 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let item = Prepared {
                index,
                phase: 0,
                tag: 0,
                bytes: bytes.clone(),
                transform: None,
                via: None,
                replay: false,
            };
            tx.send_async(item).await.unwrap();
        }
    });
    let rec = Recorder::new(1, 1);
    run_sender(
        rx,
        schedule.clone(),
        target,
        clock,
        rec.clone(),
        config(),
        Arc::new(Live::default()),
    )
    .await;
    feeder.await.unwrap();
    let (g, corrected, raw, lag) = rec.with(|s| {
        (
            s.generator(None),
            s.latency(None, None, &[OutcomeClass::Ok], true),
            s.latency(None, None, &[OutcomeClass::Ok], false),
            s.lag().clone(),
        )
    });
    assert_eq!(g.sent, 2000);
    // Request 500 was due at 0.5 s and left at 1.5 s.
    assert!(g.starved >= 1);
    assert!(g.late >= 990, "late {}", g.late);
    assert!(lag.max() >= 990_000, "lag max {}", lag.max());
    assert!(
        corrected.max() >= 990_000,
        "corrected max {}",
        corrected.max()
    );
    // Raw latency does not see the generator's own delay.
    assert!(raw.max() <= 2_000, "raw max {}", raw.max());
}

#[tokio::test(start_paused = true)]
async fn full_run_writes_reports_that_parse() {
    let mut scenario = Scenario::load("steady").unwrap();
    scenario.population.devices = 1000;
    let world = Arc::new(World::new(&scenario.population));
    let plan = Plan::build(
        scenario,
        &Overrides {
            rate: Some(200.0),
            duration: Some(Duration::from_secs(3)),
            ramp: Some(Duration::from_millis(500)),
            senders: Some(2),
        },
        None,
    )
    .unwrap();
    let target: Arc<dyn Target> = Arc::new(MockTarget::new(
        MockConfig {
            service_time: Duration::from_millis(2),
            stall: Some((Duration::from_secs(2), Duration::from_millis(300))),
            capacity: None,
            limit: None,
        },
        TokioClock::start_now(),
    ));
    let mut rows = 0;
    let result = loadgen::run::run(
        plan,
        world,
        target,
        // Sign everything before the clock starts: on a paused clock, signing threads running
        // in real time would otherwise let virtual time race ahead of them.
        loadgen::run::RunOptions {
            sign_ahead: 10.0,
            ..Default::default()
        },
        &mut |_| rows += 1,
    )
    .await;
    assert!(rows >= 3);
    let report = loadgen::report::Report::new(&result);
    assert!(result.passed(), "{:?}", result.expectations);
    assert_eq!(report.generator.sent, report.generator.scheduled);
    let dir = tempfile::tempdir().unwrap();
    let files = loadgen::report::write_files(&result, &report, dir.path()).unwrap();
    assert!(files.len() >= 6);

    // JSON parses back into the same report.
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let back: loadgen::report::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.generator, report.generator);
    let key = |r: &loadgen::report::Report| {
        r.lanes
            .iter()
            .map(|l| (l.lane.clone(), l.ok, l.corrected.p99, l.raw.max))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&back), key(&report));
    assert!(back.phases.iter().any(|p| p.name == "ramp"));

    // One .hgrm per lane that had successes, in the four-column layout.
    for lane in &report.lanes {
        let text =
            std::fs::read_to_string(dir.path().join(format!("{}.corrected.hgrm", lane.lane)))
                .unwrap();
        let lines = loadgen::report::hgrm::parse(&text).unwrap();
        assert_eq!(lines.last().unwrap().total_count, lane.ok);
        assert!((lines.last().unwrap().value - lane.corrected.max).abs() < 0.01);
    }

    // The interval log decodes, with lane tags and the stall visible in it.
    let hlog = std::fs::read(dir.path().join("latency.hlog")).unwrap();
    let mut tags = std::collections::BTreeSet::new();
    let mut max_us = 0u64;
    let mut total = 0u64;
    let mut de = hdrhistogram::serialization::Deserializer::new();
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&hlog) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(ilh) = entry.unwrap() {
            let tag = ilh.tag().unwrap().as_str().to_owned();
            tags.insert(tag.clone());
            if tag.contains('.') {
                // Per-class tags (for `loadgen merge`) repeat the lane's answers.
                continue;
            }
            let bytes = base64_decode(ilh.encoded_histogram());
            let h: hdrhistogram::Histogram<u64> =
                de.deserialize(&mut std::io::Cursor::new(bytes)).unwrap();
            max_us = max_us.max(h.max());
            total += h.len();
        }
    }
    assert!(tags.contains("L1") && tags.contains("L3"), "{tags:?}");
    assert!(
        tags.contains("L1.ok") && tags.contains("L1.ok.raw"),
        "{tags:?}"
    );
    assert_eq!(total, report.generator.sent);
    assert!(max_us >= 290_000, "stall not visible: {max_us}");

    // The HTML page is self-contained and has its plots.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 3);
    assert!(!html.contains("<script"));
    assert!(!html.contains("https://"));
    assert!(!html
        .replace("http://www.w3.org/2000/svg", "")
        .contains("http://"));
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}
