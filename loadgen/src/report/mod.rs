//! Reports of a run: a serialisable [`Report`] and its renderings.
//!
//! * [`text`]: the summary table printed at the end;
//! * [`json`]: `--json`, for machines;
//! * [`hgrm`]: HdrHistogram percentile-distribution files, one per lane (classic layout);
//! * the interval log (`.hlog`) is produced during the run ([`crate::run::RunResult::hlog`]);
//! * [`html`]: one self-contained page with SVG plots.
//!
//! Latency columns are *corrected* (from the intended send time) unless named raw, and are of
//! successful answers: busy and refused answers are fast by design and would flatter the figures.

pub mod hgrm;
pub mod html;
pub mod json;
pub mod text;

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::expect::ExpectResult;
use crate::outcome::{Lane, OutcomeClass};
use crate::recorder::Snapshot;
use crate::run::{IntervalRow, RunResult, SigningReport};

/// Percentiles of one histogram, milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram in microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One lane's line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LaneRow {
    /// `L0`..`L3` or `none`.
    pub lane: String,
    /// Answers of every class.
    pub answered: u64,
    /// Successes.
    pub ok: u64,
    /// Refused with a code.
    pub refused: u64,
    /// Shed (busy).
    pub busy: u64,
    /// Throttled.
    pub throttled: u64,
    /// Errors and timeouts.
    pub error: u64,
    /// Corrected latency of successes.
    pub corrected: Percentiles,
    /// Raw latency of successes.
    pub raw: Percentiles,
    /// Corrected latency of every answer.
    pub corrected_all: Percentiles,
}

/// Lanes within one phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PhaseReport {
    /// Phase name.
    pub name: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Requests scheduled in it.
    pub sent: u64,
    /// Lane lines (lanes with answers only).
    pub lanes: Vec<LaneRow>,
}

/// Outcomes of one tag.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TagRow {
    /// The tag.
    pub tag: String,
    /// Successes.
    pub ok: u64,
    /// Refused.
    pub refused: u64,
    /// Busy.
    pub busy: u64,
    /// Throttled.
    pub throttled: u64,
    /// Errors.
    pub error: u64,
}

/// A refusal code count.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CodeRow {
    /// Phase name.
    pub phase: String,
    /// Lane.
    pub lane: String,
    /// The code.
    pub code: String,
    /// How many.
    pub count: u64,
}

/// The generator's own figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GeneratorReport {
    /// Requests in the schedule.
    pub scheduled: u64,
    /// Sent.
    pub sent: u64,
    /// Sent late (over the threshold).
    pub late: u64,
    /// Dropped (in-flight limit).
    pub dropped: u64,
    /// Sends that waited for signing.
    pub starved: u64,
    /// Replays with nothing to replay yet.
    pub replay_unavailable: u64,
    /// Send lag (actual − intended), ms.
    pub lag: Percentiles,
    /// Sent per second of run.
    pub achieved_rate: f64,
    /// Late threshold, ms.
    pub late_threshold_ms: f64,
}

/// Everything a report renders.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// Target.
    pub target: String,
    /// Start, Unix seconds.
    pub started_at: f64,
    /// Run length including draining, seconds.
    pub elapsed_s: f64,
    /// Planned length, seconds.
    pub planned_s: f64,
    /// Base rate, requests/s.
    pub base_rate: f64,
    /// Where the base rate came from.
    pub rate_source: String,
    /// Peak scheduled rate.
    pub peak_rate: f64,
    /// Sender tasks.
    pub senders: usize,
    /// Whole-run lanes.
    pub lanes: Vec<LaneRow>,
    /// Per phase.
    pub phases: Vec<PhaseReport>,
    /// Per tag.
    pub tags: Vec<TagRow>,
    /// Refusal codes.
    pub codes: Vec<CodeRow>,
    /// Generator figures.
    pub generator: GeneratorReport,
    /// Signing figures.
    pub signing: SigningReport,
    /// Time series.
    pub intervals: Vec<IntervalRow>,
    /// Events applied.
    pub events: Vec<String>,
    /// Expectation verdicts.
    pub expectations: Vec<ExpectResult>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// All expectations held.
    pub passed: bool,
}

impl LaneRow {
    /// The row of `lane` from its answer counts by class and its latency histograms
    /// (corrected and raw of successes, corrected of every answer); `None` when nothing was
    /// answered in it. Shared by run reports and `loadgen merge`.
    pub fn from_parts(
        lane: Lane,
        count: impl Fn(OutcomeClass) -> u64,
        corrected: &Histogram<u64>,
        raw: &Histogram<u64>,
        corrected_all: &Histogram<u64>,
    ) -> Option<LaneRow> {
        let answered: u64 = OutcomeClass::ALL.iter().map(|&c| count(c)).sum();
        (answered > 0).then(|| LaneRow {
            lane: lane.name().to_owned(),
            answered,
            ok: count(OutcomeClass::Ok),
            refused: count(OutcomeClass::Refused),
            busy: count(OutcomeClass::Busy),
            throttled: count(OutcomeClass::Throttled),
            error: count(OutcomeClass::Error),
            corrected: Percentiles::of(corrected),
            raw: Percentiles::of(raw),
            corrected_all: Percentiles::of(corrected_all),
        })
    }
}

fn lane_rows(t: &Snapshot, phase: Option<usize>) -> Vec<LaneRow> {
    Lane::ALL
        .iter()
        .filter_map(|&l| {
            LaneRow::from_parts(
                l,
                |c| t.completed(phase, Some(l), c),
                &t.latency(phase, Some(l), &[OutcomeClass::Ok], true),
                &t.latency(phase, Some(l), &[OutcomeClass::Ok], false),
                &t.latency(phase, Some(l), &OutcomeClass::ALL, true),
            )
        })
        .collect()
}

// Deserialising a report (tests, tools) needs `SigningReport` and `IntervalRow` to be
// deserialisable too.
impl<'de> Deserialize<'de> for SigningReport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct S {
            threads: usize,
            per_thread_rate: f64,
            prepared: u64,
            utilisation: f64,
            prefill_s: f64,
            bottleneck: bool,
            #[serde(default)]
            users: usize,
            #[serde(default)]
            keys: usize,
            #[serde(default)]
            spread: String,
        }
        let s = S::deserialize(d)?;
        Ok(SigningReport {
            threads: s.threads,
            per_thread_rate: s.per_thread_rate,
            prepared: s.prepared,
            utilisation: s.utilisation,
            prefill_s: s.prefill_s,
            bottleneck: s.bottleneck,
            users: s.users,
            keys: s.keys,
            spread: s.spread,
        })
    }
}

impl<'de> Deserialize<'de> for IntervalRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct R {
            start: f64,
            end: f64,
            sent: u64,
            late: u64,
            dropped: u64,
            completed: [u64; OutcomeClass::COUNT],
            lane_completed: [u64; Lane::COUNT],
            lane_p99_ms: [Option<f64>; Lane::COUNT],
            in_flight: i64,
        }
        let r = R::deserialize(d)?;
        Ok(IntervalRow {
            start: r.start,
            end: r.end,
            sent: r.sent,
            late: r.late,
            dropped: r.dropped,
            completed: r.completed,
            lane_completed: r.lane_completed,
            lane_p99_ms: r.lane_p99_ms,
            in_flight: r.in_flight,
        })
    }
}

impl Report {
    /// Builds the report of a run.
    pub fn new(r: &RunResult) -> Report {
        let t = &r.totals;
        let plan = &r.plan;
        let g = t.generator(None);
        let phases = plan
            .phase_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (start, end) = plan.schedule.phase_bounds(i).unwrap_or((0.0, 0.0));
                PhaseReport {
                    name: name.clone(),
                    start,
                    end,
                    sent: t.generator(Some(i)).sent,
                    lanes: lane_rows(t, Some(i)),
                }
            })
            .collect();
        let tags = plan
            .tags
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                let n = |c| t.tag_count(None, Some(i), c);
                TagRow {
                    tag: tag.clone(),
                    ok: n(OutcomeClass::Ok),
                    refused: n(OutcomeClass::Refused),
                    busy: n(OutcomeClass::Busy),
                    throttled: n(OutcomeClass::Throttled),
                    error: n(OutcomeClass::Error),
                }
            })
            .collect();
        let codes = t
            .codes()
            .iter()
            .map(|((p, lane, code), n)| CodeRow {
                phase: plan.phase_names.get(*p).cloned().unwrap_or_default(),
                lane: lane.name().to_owned(),
                code: code.clone(),
                count: *n,
            })
            .collect();
        let elapsed = r.elapsed.as_secs_f64();
        Report {
            scenario: plan.scenario.name.clone(),
            description: plan.scenario.description.trim().to_owned(),
            target: r.target.clone(),
            started_at: r
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            elapsed_s: elapsed,
            planned_s: plan.schedule.duration().as_secs_f64(),
            base_rate: plan.base_rate,
            rate_source: plan.rate_source.clone(),
            peak_rate: plan.schedule.peak_rate(),
            senders: plan.senders,
            lanes: lane_rows(t, None),
            phases,
            tags,
            codes,
            generator: GeneratorReport {
                scheduled: plan.schedule.len(),
                sent: g.sent,
                late: g.late,
                dropped: g.dropped,
                starved: g.starved,
                replay_unavailable: g.replay_unavailable,
                lag: Percentiles::of(t.lag()),
                achieved_rate: g.sent as f64 / plan.schedule.duration().as_secs_f64().max(1e-9),
                late_threshold_ms: crate::sender::LATE_THRESHOLD.as_secs_f64() * 1000.0,
            },
            signing: r.signing.clone(),
            intervals: r.intervals.clone(),
            events: r.events.clone(),
            expectations: r.expectations.clone(),
            warnings: r.warnings.clone(),
            passed: r.passed(),
        }
    }
}

/// Writes every file report into `dir` (created if needed); returns the paths written.
pub fn write_files(r: &RunResult, report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    let mut put = |name: String, bytes: &[u8]| -> std::io::Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, bytes)?;
        out.push(p);
        Ok(())
    };
    put("report.json".into(), json::render(report).as_bytes())?;
    put("report.txt".into(), text::render(report).as_bytes())?;
    put("report.html".into(), html::render(r, report).as_bytes())?;
    put("latency.hlog".into(), &r.hlog)?;
    for lane in Lane::ALL {
        for corrected in [true, false] {
            let h = r
                .totals
                .latency(None, Some(lane), &[OutcomeClass::Ok], corrected);
            if h.is_empty() {
                continue;
            }
            let kind = if corrected { "corrected" } else { "raw" };
            put(
                format!("{}.{kind}.hgrm", lane.name()),
                hgrm::render(&h, 1000.0).as_bytes(),
            )?;
        }
    }
    Ok(out)
}
