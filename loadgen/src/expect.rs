//! Expectations: what a scenario says must hold at the end of a run.
//!
//! Written in the scenario as `[[expect]]` tables with a `check` kind. Counting checks select
//! requests by `tag` (the mix entry's label) *or* by `lane` (the lane the target answered with),
//! optionally within one `phase`; latency checks select by lane and phase. Every check carries a
//! `why` that the report prints beside the verdict, so a failing CI run says what broke.
//!
//! ```toml
//! [[expect]]
//! check = "max_count"            # no attack request was accepted
//! tag = "attack"
//! outcome = "ok"
//! max = 0
//! why = "forged traffic must never be accepted"
//!
//! [[expect]]
//! check = "latency_ratio"        # L1 p99 under overload ≤ 3 × its steady p99
//! lane = "L1"
//! phase = "overload"
//! baseline_phase = "steady"
//! percentile = 99.0
//! max_ratio = 3.0
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::outcome::{Lane, OutcomeClass};
use crate::recorder::Snapshot;
use crate::scenario::Plan;

/// One check.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Expect {
    /// At most `max` requests of the selection ended with `outcome`.
    MaxCount {
        /// Select by tag…
        #[serde(default)]
        tag: Option<String>,
        /// …or by lane.
        #[serde(default)]
        lane: Option<Lane>,
        /// Within a phase (default: whole run).
        #[serde(default)]
        phase: Option<String>,
        /// The outcome counted.
        outcome: OutcomeClass,
        /// The bound.
        max: u64,
        /// Why it matters.
        #[serde(default)]
        why: String,
    },
    /// At least `min` requests of the selection ended with `outcome` (proves that a path was
    /// exercised at all).
    MinCount {
        /// Select by tag…
        #[serde(default)]
        tag: Option<String>,
        /// …or by lane.
        #[serde(default)]
        lane: Option<Lane>,
        /// Within a phase.
        #[serde(default)]
        phase: Option<String>,
        /// The outcome counted.
        outcome: OutcomeClass,
        /// The bound.
        min: u64,
        /// Why it matters.
        #[serde(default)]
        why: String,
    },
    /// At least a share `min` (0..=1) of the selection's answers are `outcome`.
    MinShare {
        /// Select by tag…
        #[serde(default)]
        tag: Option<String>,
        /// …or by lane.
        #[serde(default)]
        lane: Option<Lane>,
        /// Within a phase.
        #[serde(default)]
        phase: Option<String>,
        /// The outcome counted.
        outcome: OutcomeClass,
        /// The bound.
        min: f64,
        /// Why it matters.
        #[serde(default)]
        why: String,
    },
    /// The `percentile` of corrected latency of successful requests in `lane` (and `phase`) is
    /// at most `max_ms`.
    MaxLatency {
        /// The lane.
        lane: Lane,
        /// Within a phase.
        #[serde(default)]
        phase: Option<String>,
        /// 0..=100.
        percentile: f64,
        /// The bound in milliseconds.
        max_ms: f64,
        /// Why it matters.
        #[serde(default)]
        why: String,
    },
    /// The `percentile` of corrected latency of successful requests in `lane` during `phase` is
    /// at most `max_ratio` times the same figure during `baseline_phase` (the baseline is taken
    /// as at least `floor_ms`, default 1 ms, so that microsecond noise does not fail a run).
    LatencyRatio {
        /// The lane.
        lane: Lane,
        /// The phase under test.
        phase: String,
        /// The reference phase.
        baseline_phase: String,
        /// 0..=100.
        percentile: f64,
        /// The bound.
        max_ratio: f64,
        /// Floor of the baseline in milliseconds.
        #[serde(default)]
        floor_ms: Option<f64>,
        /// Why it matters.
        #[serde(default)]
        why: String,
    },
}

/// The verdict on one check.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExpectResult {
    /// The check, in words.
    pub check: String,
    /// Why it matters (from the scenario).
    pub why: String,
    /// What was observed.
    pub observed: String,
    /// Whether it held.
    pub passed: bool,
    /// Why a latency check could not be judged (then `passed` is false): the generator fell
    /// behind its schedule in a phase the check reads, so the latencies measure the generator's
    /// lag, not the target. Counting checks are always judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
}

impl ExpectResult {
    /// `PASS`, `FAIL`, or `NOT MEASURED` (a latency check the generator's lag made meaningless).
    pub fn verdict(&self) -> &'static str {
        match (self.passed, &self.not_measured) {
            (true, _) => "PASS",
            (false, Some(_)) => "NOT MEASURED",
            (false, None) => "FAIL",
        }
    }
}

/// A phase whose sends were late (over [`crate::sender::LATE_THRESHOLD`]) or dropped for more
/// than this share of its requests cannot support a latency verdict: corrected latencies count
/// from the intended send time, so they then grow with the generator's own lag.
pub const MAX_LATE_SHARE: f64 = 0.01;

/// Why `phase` (or the whole run) cannot support a latency verdict, if it cannot.
fn generator_fell_behind(totals: &Snapshot, plan: &Plan, phase: Option<usize>) -> Option<String> {
    let g = totals.generator(phase);
    let asked = g.sent + g.dropped;
    if asked == 0 {
        return None;
    }
    let behind = g.late + g.dropped;
    (behind as f64 > MAX_LATE_SHARE * asked as f64).then(|| {
        let name = phase
            .and_then(|p| plan.phase_names.get(p))
            .map_or("the run".to_owned(), |n| format!("phase {n}"));
        format!(
            "the generator fell behind in {name}: {} of {asked} requests sent late (> {} ms) or \
             dropped, so its latencies measure the generator; give it more signing threads or \
             cores (loadgen README, \"Sizing the generator\")",
            behind,
            crate::sender::LATE_THRESHOLD.as_millis()
        )
    })
}

impl Expect {
    /// Checks references against the scenario's phase names and tags.
    pub fn validate(&self, phases: &BTreeSet<&str>, tags: &BTreeSet<&str>) -> Result<(), String> {
        let phase_ok = |p: &Option<String>| match p {
            Some(p) if !phases.contains(p.as_str()) => Err(format!("unknown phase {p:?}")),
            _ => Ok(()),
        };
        let sel_ok = |tag: &Option<String>, lane: &Option<Lane>| match (tag, lane) {
            (Some(_), Some(_)) => Err("select by tag or by lane, not both".to_owned()),
            (Some(t), None) if !tags.contains(t.as_str()) => Err(format!("unknown tag {t:?}")),
            _ => Ok(()),
        };
        let pct_ok = |p: f64| {
            if (0.0..=100.0).contains(&p) {
                Ok(())
            } else {
                Err("percentile must be in 0..=100".to_owned())
            }
        };
        match self {
            Expect::MaxCount {
                tag, lane, phase, ..
            }
            | Expect::MinCount {
                tag, lane, phase, ..
            } => {
                sel_ok(tag, lane)?;
                phase_ok(phase)
            }
            Expect::MinShare {
                tag,
                lane,
                phase,
                min,
                ..
            } => {
                sel_ok(tag, lane)?;
                phase_ok(phase)?;
                if (0.0..=1.0).contains(min) {
                    Ok(())
                } else {
                    Err("min share must be in 0..=1".to_owned())
                }
            }
            Expect::MaxLatency {
                phase,
                percentile,
                max_ms,
                ..
            } => {
                phase_ok(phase)?;
                pct_ok(*percentile)?;
                if max_ms.is_finite() && *max_ms > 0.0 {
                    Ok(())
                } else {
                    Err("max_ms must be > 0".to_owned())
                }
            }
            Expect::LatencyRatio {
                phase,
                baseline_phase,
                percentile,
                max_ratio,
                floor_ms,
                ..
            } => {
                phase_ok(&Some(phase.clone()))?;
                phase_ok(&Some(baseline_phase.clone()))?;
                pct_ok(*percentile)?;
                if !(max_ratio.is_finite() && *max_ratio > 0.0) {
                    return Err("max_ratio must be > 0".to_owned());
                }
                if floor_ms.is_some_and(|f| !(f.is_finite() && f >= 0.0)) {
                    return Err("floor_ms must be >= 0".to_owned());
                }
                Ok(())
            }
        }
    }

    /// Evaluates the check on a run's totals.
    pub fn evaluate(&self, plan: &Plan, totals: &Snapshot) -> ExpectResult {
        let phase_idx = |p: &Option<String>| p.as_deref().and_then(|n| plan.phase_index(n));
        let count = |tag: &Option<String>,
                     lane: &Option<Lane>,
                     phase: &Option<String>,
                     class: OutcomeClass| {
            let ph = phase_idx(phase);
            match tag {
                Some(t) => totals.tag_count(ph, plan.tag_index(t), class),
                None => totals.completed(ph, *lane, class),
            }
        };
        let all = |tag: &Option<String>, lane: &Option<Lane>, phase: &Option<String>| {
            OutcomeClass::ALL
                .iter()
                .map(|&c| count(tag, lane, phase, c))
                .sum::<u64>()
        };
        let sel = |tag: &Option<String>, lane: &Option<Lane>, phase: &Option<String>| {
            let mut s = match (tag, lane) {
                (Some(t), _) => format!("tag {t}"),
                (None, Some(l)) => format!("lane {l}"),
                (None, None) => "all requests".to_owned(),
            };
            if let Some(p) = phase {
                s.push_str(&format!(" in phase {p}"));
            }
            s
        };
        // Shedding by lane capacity (busy, R10) and throttling by a per-User rate limit
        // (throttled, R9) both turn requests away, for different reasons: a check on one
        // reports the other too, so that "L3 never busy" reads as "throttled instead" when the
        // server's rate limit, not its lanes, did the shedding.
        let other = |tag: &Option<String>,
                     lane: &Option<Lane>,
                     phase: &Option<String>,
                     outcome: OutcomeClass| match outcome {
            OutcomeClass::Busy => format!(
                "; throttled (R9, per-User rate limit): {}",
                count(tag, lane, phase, OutcomeClass::Throttled)
            ),
            OutcomeClass::Throttled => format!(
                "; busy (R10, lane capacity): {}",
                count(tag, lane, phase, OutcomeClass::Busy)
            ),
            _ => String::new(),
        };
        let p_ms = |lane: Lane, phase: Option<usize>, pct: f64| -> Option<f64> {
            let h = totals.latency(phase, Some(lane), &[OutcomeClass::Ok], true);
            if h.is_empty() {
                None
            } else {
                Some(h.value_at_quantile(pct / 100.0) as f64 / 1000.0)
            }
        };
        match self {
            Expect::MaxCount {
                tag,
                lane,
                phase,
                outcome,
                max,
                why,
            } => {
                let n = count(tag, lane, phase, *outcome);
                ExpectResult {
                    check: format!("{}: at most {max} {outcome}", sel(tag, lane, phase)),
                    why: why.clone(),
                    observed: format!(
                        "{n} of {}{}",
                        all(tag, lane, phase),
                        other(tag, lane, phase, *outcome)
                    ),
                    passed: n <= *max,
                    not_measured: None,
                }
            }
            Expect::MinCount {
                tag,
                lane,
                phase,
                outcome,
                min,
                why,
            } => {
                let n = count(tag, lane, phase, *outcome);
                ExpectResult {
                    check: format!("{}: at least {min} {outcome}", sel(tag, lane, phase)),
                    why: why.clone(),
                    observed: format!(
                        "{n} of {}{}",
                        all(tag, lane, phase),
                        other(tag, lane, phase, *outcome)
                    ),
                    passed: n >= *min,
                    not_measured: None,
                }
            }
            Expect::MinShare {
                tag,
                lane,
                phase,
                outcome,
                min,
                why,
            } => {
                let n = count(tag, lane, phase, *outcome);
                let d = all(tag, lane, phase);
                let share = if d == 0 { 0.0 } else { n as f64 / d as f64 };
                ExpectResult {
                    check: format!(
                        "{}: at least {:.1} % {outcome}",
                        sel(tag, lane, phase),
                        min * 100.0
                    ),
                    why: why.clone(),
                    observed: format!(
                        "{:.2} % ({n} of {d}){}",
                        share * 100.0,
                        other(tag, lane, phase, *outcome)
                    ),
                    passed: d > 0 && share >= *min,
                    not_measured: None,
                }
            }
            Expect::MaxLatency {
                lane,
                phase,
                percentile,
                max_ms,
                why,
            } => {
                let v = p_ms(*lane, phase_idx(phase), *percentile);
                let not_measured = generator_fell_behind(totals, plan, phase_idx(phase));
                ExpectResult {
                    check: format!(
                        "{}: ok p{percentile} ≤ {max_ms} ms",
                        sel(&None, &Some(*lane), phase)
                    ),
                    why: why.clone(),
                    observed: v
                        .map_or("no successful request".to_owned(), |v| format!("{v:.3} ms")),
                    passed: not_measured.is_none() && v.is_some_and(|v| v <= *max_ms),
                    not_measured,
                }
            }
            Expect::LatencyRatio {
                lane,
                phase,
                baseline_phase,
                percentile,
                max_ratio,
                floor_ms,
                why,
            } => {
                let floor = floor_ms.unwrap_or(1.0);
                let test = p_ms(*lane, plan.phase_index(phase), *percentile);
                let base = p_ms(*lane, plan.phase_index(baseline_phase), *percentile);
                let (observed, passed) = match (test, base) {
                    (Some(t), Some(b)) => {
                        let ratio = t / b.max(floor);
                        (
                            format!("{t:.3} ms vs {b:.3} ms (floor {floor} ms): ratio {ratio:.2}"),
                            ratio <= *max_ratio,
                        )
                    }
                    _ => (
                        "no successful request in one of the phases".to_owned(),
                        false,
                    ),
                };
                let not_measured = [phase, baseline_phase]
                    .into_iter()
                    .find_map(|p| generator_fell_behind(totals, plan, plan.phase_index(p)));
                ExpectResult {
                    check: format!(
                        "lane {lane}: ok p{percentile} in {phase} ≤ {max_ratio} × in {baseline_phase}"
                    ),
                    why: why.clone(),
                    observed,
                    passed: passed && not_measured.is_none(),
                    not_measured,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;
    use crate::outcome::Outcome;
    use crate::scenario::{Overrides, Scenario};

    /// The built-in overload scenario at 100 requests/s.
    fn overload_plan() -> Plan {
        Plan::build(
            Scenario::load("overload").unwrap(),
            &Overrides {
                rate: Some(100.0),
                ..Overrides::default()
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn busy_and_throttled_are_told_apart_and_both_reported() {
        let plan = overload_plan();
        let hold = plan.phase_index("hold").unwrap();
        let mut totals = Snapshot::new(plan.phase_names.len(), plan.tags.len());
        let ms = Duration::from_millis(1);
        // L3 was shed only by the per-User rate limit (R9), never by lane capacity (R10).
        for _ in 0..5 {
            let o = Outcome::new(OutcomeClass::Throttled, "R9", Lane::L3);
            totals.record_outcome(hold, 0, &o, ms, ms);
        }
        totals.record_outcome(hold, 0, &Outcome::ok(Lane::L3), ms, ms);
        let busy = Expect::MinCount {
            tag: None,
            lane: Some(Lane::L3),
            phase: Some("hold".into()),
            outcome: OutcomeClass::Busy,
            min: 1,
            why: String::new(),
        }
        .evaluate(&plan, &totals);
        assert!(!busy.passed);
        assert_eq!(
            busy.observed,
            "0 of 6; throttled (R9, per-User rate limit): 5"
        );
        let throttled = Expect::MaxCount {
            tag: None,
            lane: Some(Lane::L3),
            phase: None,
            outcome: OutcomeClass::Throttled,
            max: 0,
            why: String::new(),
        }
        .evaluate(&plan, &totals);
        assert!(!throttled.passed);
        assert_eq!(throttled.observed, "5 of 6; busy (R10, lane capacity): 0");
    }

    /// A latency verdict needs a generator that kept to its schedule: with 2 % of `hold`'s
    /// sends late it is "not measured" (and not passed), whatever the latencies; with none
    /// late the same latencies are judged.
    #[test]
    fn latency_checks_are_not_judged_on_a_generator_that_fell_behind() {
        let plan = overload_plan();
        let (steady, hold) = (
            plan.phase_index("steady").unwrap(),
            plan.phase_index("hold").unwrap(),
        );
        let check = Expect::LatencyRatio {
            lane: Lane::L1,
            phase: "hold".into(),
            baseline_phase: "steady".into(),
            percentile: 99.0,
            max_ratio: 3.0,
            floor_ms: None,
            why: String::new(),
        };
        let ms = Duration::from_millis(1);
        let run = |late_in_hold: u64| {
            let mut totals = Snapshot::new(plan.phase_names.len(), plan.tags.len());
            for phase in [steady, hold] {
                for i in 0..100 {
                    let late = phase == hold && i < late_in_hold;
                    totals.record_send(phase, if late { 50 * ms } else { ms }, late);
                    totals.record_outcome(phase, 0, &Outcome::ok(Lane::L1), ms, ms);
                }
            }
            check.evaluate(&plan, &totals)
        };
        let judged = run(0);
        assert!(judged.passed && judged.not_measured.is_none(), "{judged:?}");
        let one = run(1);
        assert!(one.passed, "1 % late is within the bound: {one:?}");
        let behind = run(2);
        assert!(!behind.passed, "{behind:?}");
        let why = behind.not_measured.unwrap();
        assert!(
            why.contains("phase hold") && why.contains("2 of 100"),
            "{why}"
        );
        // A counting check on the same run is still judged.
        let counted = Expect::MaxCount {
            tag: None,
            lane: Some(Lane::L0),
            phase: None,
            outcome: OutcomeClass::Busy,
            max: 0,
            why: String::new(),
        };
        let mut totals = Snapshot::new(plan.phase_names.len(), plan.tags.len());
        for _ in 0..10 {
            totals.record_send(hold, 50 * ms, true);
        }
        let r = counted.evaluate(&plan, &totals);
        assert!(r.passed && r.not_measured.is_none());
    }
}
