//! One run, start to finish: sign ahead, send on schedule, apply events, collect at intervals.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use serde::Serialize;

use crate::clock::{Clock, TokioClock};
use crate::expect::ExpectResult;
use crate::outcome::{Lane, OutcomeClass};
use crate::population::World;
use crate::recorder::{Recorder, Snapshot};
use crate::scenario::Plan;
use crate::sender::{run_sender, Live, SenderConfig};
use crate::signer_pool::{measure_sign_rate, SignerPool};
use crate::target::Target;
use crate::workload::Workload;

/// Runs of at most this many requests are signed completely before the clock starts
/// (≈ 300 bytes each in memory).
pub const PRESIGN_ALL: u64 = 400_000;

/// How a run is carried out (not what it offers: that is the [`Plan`]).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Signing threads (default: enough for the peak rate, at most the cores and the senders).
    pub signer_threads: Option<usize>,
    /// Collection and progress interval.
    pub interval: Duration,
    /// Seconds of peak-rate traffic signed before the clock starts (and kept ahead) when the run
    /// is too long to sign completely beforehand (see [`PRESIGN_ALL`]).
    pub sign_ahead: f64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            signer_threads: None,
            interval: Duration::from_secs(1),
            sign_ahead: 2.0,
        }
    }
}

/// One row of the time series.
#[derive(Clone, Debug, Serialize)]
pub struct IntervalRow {
    /// Interval start, seconds from the start of the run.
    pub start: f64,
    /// Interval end.
    pub end: f64,
    /// Requests sent.
    pub sent: u64,
    /// Sends later than the late threshold.
    pub late: u64,
    /// Sends dropped (too many in flight).
    pub dropped: u64,
    /// Answers by class (`ok, refused, busy, throttled, error`).
    pub completed: [u64; OutcomeClass::COUNT],
    /// Answers per lane (`L0..L3, none`), all classes.
    pub lane_completed: [u64; Lane::COUNT],
    /// Corrected p99 of all answers per lane, milliseconds (None when the lane had none).
    pub lane_p99_ms: [Option<f64>; Lane::COUNT],
    /// Requests in flight at the end of the interval.
    pub in_flight: i64,
}

/// What the signing pool did.
#[derive(Clone, Debug, Serialize)]
pub struct SigningReport {
    /// Threads used.
    pub threads: usize,
    /// Measured single-thread signing rate, envelopes/s.
    pub per_thread_rate: f64,
    /// Requests prepared.
    pub prepared: u64,
    /// Share of the run the threads were busy, 0..=1 (averaged over threads).
    pub utilisation: f64,
    /// Seconds spent signing before the clock started.
    pub prefill_s: f64,
    /// Whether signing limited the run (sends waited for signing).
    pub bottleneck: bool,
    /// Users that sign (the population's).
    pub users: usize,
    /// Signing keys over those Users (each a key the target's verifier holds).
    pub keys: usize,
    /// How Supplier traffic is spread (round robin, or Zipf market shares).
    pub spread: String,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunResult {
    /// The plan that ran.
    pub plan: Plan,
    /// The target, described.
    pub target: String,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// How long the run took (schedule plus draining).
    pub elapsed: Duration,
    /// Everything recorded.
    pub totals: Snapshot,
    /// The time series.
    pub intervals: Vec<IntervalRow>,
    /// The interval log (`.hlog`), one tag per lane, corrected latency in µs.
    pub hlog: Vec<u8>,
    /// The signing pool.
    pub signing: SigningReport,
    /// Events applied, with their time and result.
    pub events: Vec<String>,
    /// Verdicts on the scenario's expectations.
    pub expectations: Vec<ExpectResult>,
    /// Warnings (misleading parameters, generator lag, signing bottleneck).
    pub warnings: Vec<String>,
}

impl RunResult {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|e| e.passed)
    }
}

/// What the progress callback sees after each interval.
#[derive(Debug)]
pub struct Progress<'a> {
    /// The row just closed.
    pub row: &'a IntervalRow,
    /// Totals so far.
    pub totals: &'a Snapshot,
    /// Planned length of the run.
    pub planned: Duration,
    /// Requests planned.
    pub planned_requests: u64,
}

fn default_threads(peak: f64, per_thread: f64, senders: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let need = if per_thread > 0.0 {
        (peak * 1.3 / per_thread).ceil() as usize
    } else {
        cores
    };
    need.clamp(1, cores.min(senders).max(1))
}

fn row_from(snap: &Snapshot, start: Duration, end: Duration, in_flight: i64) -> IntervalRow {
    let g = snap.generator(None);
    let mut completed = [0; OutcomeClass::COUNT];
    for c in OutcomeClass::ALL {
        completed[c.index()] = snap.completed(None, None, c);
    }
    let mut lane_completed = [0; Lane::COUNT];
    let mut lane_p99_ms = [None; Lane::COUNT];
    for l in Lane::ALL {
        let h = snap.latency(None, Some(l), &OutcomeClass::ALL, true);
        lane_completed[l.index()] = h.len();
        if !h.is_empty() {
            lane_p99_ms[l.index()] = Some(h.value_at_quantile(0.99) as f64 / 1000.0);
        }
    }
    IntervalRow {
        start: start.as_secs_f64(),
        end: end.as_secs_f64(),
        sent: g.sent,
        late: g.late,
        dropped: g.dropped,
        completed,
        lane_completed,
        lane_p99_ms,
        in_flight,
    }
}

/// How the world spreads Supplier traffic, for reports.
fn spread(world: &World) -> String {
    let m = world.market();
    let n = world.suppliers.len();
    if m.is_round_robin() {
        return format!("{n} Supplier(s), devices and traffic evenly");
    }
    let top10: f64 = (0..n.min(10)).map(|k| m.share(k)).sum();
    format!(
        "{n} Suppliers, devices and traffic by Zipf(1) market share: largest {:.1} %, top 10 \
         {:.1} %, smallest {:.2} %",
        m.share(0) * 100.0,
        top10 * 100.0,
        m.share(n - 1) * 100.0
    )
}

/// Runs `plan` against `target` (already set up with `world`).
pub async fn run(
    plan: Plan,
    world: Arc<World>,
    target: Arc<dyn Target>,
    opts: RunOptions,
    progress: &mut (dyn FnMut(&Progress<'_>) + Send),
) -> RunResult {
    let mut warnings = plan.warnings.clone();
    let schedule = Arc::new(plan.schedule.clone());
    let workload = Arc::new(Workload::new(&plan, world.clone()).with_wire(target.wire()));
    let per_thread = measure_sign_rate(&workload);
    let peak = schedule.peak_rate();
    let threads = opts
        .signer_threads
        .unwrap_or_else(|| default_threads(peak, per_thread, plan.senders));
    let threads = threads.clamp(1, plan.senders);
    let sign_capacity = per_thread * threads as f64;
    if sign_capacity < peak && schedule.len() > PRESIGN_ALL {
        warnings.push(format!(
            "signing capacity ≈ {sign_capacity:.0}/s ({threads} thread(s) × {per_thread:.0}/s) is \
             below the peak rate {peak:.0}/s: signing will be the bottleneck once the \
             {:.1} s signed ahead are used up",
            opts.sign_ahead
        ));
    }
    // Channel capacity per sender: the whole run when it fits in PRESIGN_ALL requests (a few
    // hundred bytes each), so that signing never competes with the router for cores during
    // the run; otherwise `sign_ahead` seconds of peak traffic.
    let per_sender = schedule.len().div_ceil(plan.senders as u64) as usize;
    let capacity = if schedule.len() <= PRESIGN_ALL {
        per_sender.max(1)
    } else {
        (((peak * opts.sign_ahead) / plan.senders as f64).ceil() as usize)
            .clamp(256, PRESIGN_ALL as usize / plan.senders.max(1))
    };
    let (pool, rxs) = SignerPool::start(
        workload.clone(),
        schedule.clone(),
        plan.senders,
        threads,
        capacity,
    );
    // Blocking here is deliberate and bounded: nothing else runs before the clock starts, and it
    // works on a current-thread runtime (tests) as well as a multi-threaded one.
    let prefill = pool.wait_prefilled(&rxs, schedule.len(), Duration::from_secs(180));
    let started_at = SystemTime::now();
    let clock = TokioClock::start_now();
    let live = Arc::new(Live::default());
    let phases = plan.phase_names.len();
    let tags = plan.tags.len();
    let per_sender_in_flight = (plan.max_in_flight / plan.senders).max(1);
    let mut recorders = Vec::new();
    let mut senders = tokio::task::JoinSet::new();
    for rx in rxs {
        let rec = Recorder::new(phases, tags);
        recorders.push(rec.clone());
        senders.spawn(run_sender(
            rx,
            schedule.clone(),
            target.clone(),
            clock,
            rec,
            SenderConfig {
                max_in_flight: per_sender_in_flight,
                request_timeout: plan.request_timeout,
                keep_replays: workload.has_replays(),
            },
            live.clone(),
        ));
    }
    // Events, applied at their phase start.
    let event_log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let events_task = {
        let events = plan.events.clone();
        let names: Vec<String> = plan
            .scenario
            .phases
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let (target, world, log) = (target.clone(), world.clone(), event_log.clone());
        tokio::spawn(async move {
            for (at, phase, ev) in events {
                clock.sleep_until(at).await;
                let r = target.apply(&world, &ev);
                let line = format!(
                    "{:>7.3} s  {:?} (phase {}): {}",
                    clock.now().as_secs_f64(),
                    ev,
                    names.get(phase).map_or("?", |s| s.as_str()),
                    match r {
                        Ok(()) => "applied".to_owned(),
                        Err(e) => format!("FAILED: {e}"),
                    }
                );
                log.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        })
    };

    // Collection loop.
    let mut totals = Snapshot::new(phases, tags);
    let mut spare = Snapshot::new(phases, tags);
    let mut interval = Snapshot::new(phases, tags);
    let mut intervals = Vec::new();
    let mut hlog = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let base = started_at;
        let _ = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "loadgen scenario {} against {}; corrected latency (from intended send time) in \
                 microseconds; one tag per lane (all answers), and per lane and outcome class \
                 (`L3.busy`; `L3.ok.raw`: raw latency of successes)",
                plan.scenario.name,
                target.describe()
            ))
            .with_start_time(base)
            .with_base_time(base)
            .begin_log_with(&mut hlog, &mut serializer);
        // The column legend Java's HistogramLogWriter writes (readers skip it).
        hlog.extend_from_slice(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        );
    }
    let mut last = Duration::ZERO;
    let mut k = 1u32;
    let planned = schedule.duration();
    let mut finished = false;
    while !finished {
        let tick = opts.interval * k;
        tokio::select! {
            _ = clock.sleep_until(tick) => { k += 1; }
            r = senders.join_next() => {
                if r.is_none() {
                    finished = true;
                } else {
                    continue;
                }
            }
        }
        let now = clock.now();
        interval.reset();
        for rec in &recorders {
            rec.swap(&mut spare);
            interval.merge(&spare);
            spare.reset();
        }
        totals.merge(&interval);
        let row = row_from(&interval, last, now, live.in_flight.load(Ordering::Relaxed));
        if let Ok(mut w) =
            IntervalLogWriterBuilder::new().begin_log_with(&mut hlog, &mut serializer)
        {
            for lane in Lane::ALL {
                let h = interval.latency(None, Some(lane), &OutcomeClass::ALL, true);
                if h.is_empty() {
                    continue;
                }
                let span = now.saturating_sub(last);
                let _ = w.write_histogram(&h, last, span, Tag::new(lane.name()));
                // Per outcome class too (`L3.busy`, …; `L3.ok.raw` for the raw latency of
                // successes), so that `loadgen merge` rebuilds the per-lane report — counts by
                // class and latency of successes — from the .hlog files of several processes.
                for class in OutcomeClass::ALL {
                    let h = interval.latency(None, Some(lane), &[class], true);
                    if h.is_empty() {
                        continue;
                    }
                    let tag = format!("{}.{}", lane.name(), class.name());
                    let _ = w.write_histogram(&h, last, span, Tag::new(&tag));
                    if class == OutcomeClass::Ok {
                        let raw = interval.latency(None, Some(lane), &[class], false);
                        let _ =
                            w.write_histogram(&raw, last, span, Tag::new(&format!("{tag}.raw")));
                    }
                }
            }
        }
        progress(&Progress {
            row: &row,
            totals: &totals,
            planned,
            planned_requests: schedule.len(),
        });
        intervals.push(row);
        last = now;
    }
    let elapsed = clock.now();
    events_task.abort();
    let events = event_log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for e in events.iter().filter(|e| e.contains("FAILED")) {
        warnings.push(format!(
            "a scenario event could not be applied: {}",
            e.trim()
        ));
    }
    let stats = pool.stats().clone();
    pool.stop();

    let g = totals.generator(None);
    let prepared = stats.signed.load(Ordering::Relaxed);
    let busy = stats.busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
    let utilisation =
        busy / (threads as f64 * (elapsed.as_secs_f64() + prefill.as_secs_f64()).max(1e-9));
    let bottleneck = g.starved > 0;
    if bottleneck {
        warnings.push(format!(
            "signing was the bottleneck: {} sends waited for a signed request (raise \
             --signer-threads, lower --rate, or sign further ahead)",
            g.starved
        ));
    }
    let lag = totals.lag();
    if g.sent > 0 && (g.late as f64 / g.sent as f64 > 0.01 || lag.value_at_quantile(0.99) > 10_000)
    {
        warnings.push(format!(
            "the generator could not keep its schedule: {} of {} sends ({:.1} %) were more than \
             {} ms late (lag p99 {:.2} ms, max {:.2} ms); corrected latencies include that delay",
            g.late,
            g.sent,
            100.0 * g.late as f64 / g.sent as f64,
            crate::sender::LATE_THRESHOLD.as_millis(),
            lag.value_at_quantile(0.99) as f64 / 1000.0,
            lag.max() as f64 / 1000.0
        ));
    }
    if g.dropped > 0 {
        warnings.push(format!(
            "{} sends were dropped: more than {} requests were in flight",
            g.dropped, plan.max_in_flight
        ));
    }
    let expectations = plan
        .scenario
        .expectations
        .iter()
        .map(|e| e.evaluate(&plan, &totals))
        .collect();
    RunResult {
        target: target.describe(),
        started_at,
        elapsed,
        totals,
        intervals,
        hlog,
        signing: SigningReport {
            threads,
            per_thread_rate: per_thread,
            prepared,
            utilisation,
            prefill_s: prefill.as_secs_f64(),
            bottleneck,
            users: world.users.len(),
            keys: world.signing_keys(),
            spread: spread(&world),
        },
        events,
        expectations,
        warnings,
        plan,
    }
}
