//! Capacity discovery: a calibration ramp for targets that publish no capacity estimate.
//!
//! `rate = "capacity"` scenarios need the target's capacity. `dcc-router serve` publishes one
//! (`admin status`, read by the QUIC target); the in-process target measures its own. Where a
//! target gives none, loadgen finds it: it runs short steps at a constant rate, each
//! [`RampConfig::factor`] × the last, with the scenario's first-phase mix (attack entries left
//! out: refusals are cheap and say nothing about capacity), and stops at the first step where
//! the target pushes back —
//!
//! * a share of *busy* (R10, a lane over capacity) or *throttled* (R9, a per-User rate limit)
//!   answers of at least [`RampConfig::max_shed_share`],
//! * a share of errors (timeouts, transport) of at least the same,
//! * or a p99 of successful requests above [`RampConfig::max_p99_ratio`] × the first step's
//!   (a queue building up before anything is shed).
//!
//! The capacity is the rate of the last step that passed. The steps and the reason for
//! stopping are kept ([`Discovery`]) and printed, so a run never rests on a figure it does not
//! show. Throttling is named as such: a ramp stopped by R9 found the per-User limit of the
//! Users it sends as, not the server's verify capacity (use more Users, or raise the limit).

use std::sync::Arc;
use std::time::Duration;

use crate::outcome::OutcomeClass;
use crate::population::World;
use crate::run::{run, RunOptions};
use crate::scenario::{Overrides, Plan, RateSpec, Scenario};
use crate::target::Target;

/// How the ramp steps.
#[derive(Clone, Debug)]
pub struct RampConfig {
    /// Rate of the first step, requests/s.
    pub start: f64,
    /// Each step's rate is the last one's times this (> 1).
    pub factor: f64,
    /// Length of each step.
    pub step: Duration,
    /// Most steps (the ramp gives up above `start × factor^(max_steps-1)`).
    pub max_steps: usize,
    /// Share (0..1) of busy, throttled or error answers that ends the ramp.
    pub max_shed_share: f64,
    /// p99 of successful requests, as a multiple of the first step's, that ends the ramp.
    pub max_p99_ratio: f64,
    /// The first step's p99 is taken as at least this (ms), so that microsecond noise on an
    /// idle target does not end the ramp.
    pub p99_floor_ms: f64,
    /// Sender tasks.
    pub senders: usize,
}

impl Default for RampConfig {
    fn default() -> Self {
        RampConfig {
            start: 500.0,
            factor: 1.5,
            step: Duration::from_millis(1500),
            max_steps: 16,
            max_shed_share: 0.01,
            max_p99_ratio: 3.0,
            p99_floor_ms: 2.0,
            senders: 4,
        }
    }
}

/// One step of the ramp.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Offered rate, requests/s.
    pub rate: f64,
    /// Answers by class.
    pub ok: u64,
    /// Busy (R10): shed by lane capacity.
    pub busy: u64,
    /// Throttled (R9): a per-User rate limit.
    pub throttled: u64,
    /// Refused for other reasons.
    pub refused: u64,
    /// Errors (timeouts, transport).
    pub errors: u64,
    /// p99 of successful requests (corrected), ms; `None` when none succeeded.
    pub p99_ms: Option<f64>,
}

impl Step {
    fn answered(&self) -> u64 {
        self.ok + self.busy + self.throttled + self.refused + self.errors
    }

    fn share(&self, n: u64) -> f64 {
        match self.answered() {
            0 => 0.0,
            d => n as f64 / d as f64,
        }
    }
}

/// Why the ramp stopped.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// Busy answers (R10): lanes over capacity.
    Busy,
    /// Throttled answers (R9): per-User rate limits, not the verify lanes.
    Throttled,
    /// Errors or timeouts.
    Errors,
    /// p99 rose past the bound.
    Latency,
    /// The last step passed: the target takes at least the highest rate tried.
    MaxSteps,
}

/// What the ramp found.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// The capacity, requests/s.
    pub capacity: f64,
    /// Why the ramp stopped.
    pub reason: StopReason,
    /// The steps run.
    pub steps: Vec<Step>,
    /// Warnings of the step runs (e.g. the generator could not sign fast enough).
    pub warnings: Vec<String>,
}

impl Discovery {
    /// One line for the console and the report's rate source.
    pub fn summary(&self) -> String {
        let why = match self.reason {
            StopReason::Busy => "busy (R10) answers: lanes at capacity",
            StopReason::Throttled => {
                "throttled (R9) answers: the per-User rate limit, not lane capacity — the \
                 server may take more from more Users"
            }
            StopReason::Errors => "errors or timeouts",
            StopReason::Latency => "p99 rose",
            StopReason::MaxSteps => "nothing pushed back: the capacity is at least this",
        };
        format!(
            "{:.0}/s found by a calibration ramp of {} steps (stopped on {why})",
            self.capacity,
            self.steps.len()
        )
    }

    /// The steps as a table, one line each.
    pub fn table(&self) -> String {
        let mut out =
            String::from("    rate/s        ok      busy throttled   refused    errors   p99 ms\n");
        for s in &self.steps {
            out.push_str(&format!(
                "  {:>8.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}\n",
                s.rate,
                s.ok,
                s.busy,
                s.throttled,
                s.refused,
                s.errors,
                s.p99_ms.map_or("-".to_owned(), |v| format!("{v:.2}"))
            ));
        }
        out
    }
}

/// Why capacity discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// The ramp's parameters are unusable.
    #[error("calibration ramp: {0}")]
    Config(String),
    /// A step could not be planned.
    #[error("calibration ramp: {0}")]
    Plan(#[from] crate::scenario::ScenarioError),
    /// Even the first step got no successful answer.
    #[error(
        "calibration ramp: no request succeeded at {rate:.0}/s ({busy} busy, {throttled} \
         throttled, {refused} refused, {errors} errors): pass --rate"
    )]
    NothingSucceeded {
        /// The first step's rate.
        rate: f64,
        /// Busy answers.
        busy: u64,
        /// Throttled answers.
        throttled: u64,
        /// Other refusals.
        refused: u64,
        /// Errors.
        errors: u64,
    },
}

/// The scenario the steps run: `scenario`'s first phase only, no events, no attack entries,
/// no expectations, at `rate` for `step`.
fn step_scenario(scenario: &Scenario) -> Scenario {
    let mut s = scenario.clone();
    s.name = format!("{} (calibration)", scenario.name);
    s.expectations.clear();
    s.load.rate = RateSpec::PerSecond(1.0);
    s.load.ramp = None;
    if let Some(first) = s.phases.first_mut() {
        first.events.clear();
        first.rate = 1.0;
        first.to_rate = None;
        let name = first.name.clone();
        s.phases.truncate(1);
        s.mix
            .retain(|m| m.attack.is_none() && (m.phases.is_empty() || m.phases.contains(&name)));
    }
    s
}

/// Runs the ramp against `target` and returns what it found. `progress` is told about each
/// step as it ends.
pub async fn discover(
    scenario: &Scenario,
    world: Arc<World>,
    target: Arc<dyn Target>,
    cfg: &RampConfig,
    signer_threads: Option<usize>,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<Discovery, CalibrateError> {
    if !(cfg.start.is_finite() && cfg.start > 0.0 && cfg.factor.is_finite() && cfg.factor > 1.0) {
        return Err(CalibrateError::Config(
            "start must be > 0 and factor > 1".into(),
        ));
    }
    if cfg.max_steps == 0 || cfg.step.is_zero() {
        return Err(CalibrateError::Config(
            "at least one step of non-zero length".into(),
        ));
    }
    let sc = step_scenario(scenario);
    if sc.mix.is_empty() {
        return Err(CalibrateError::Config(format!(
            "scenario {} has no non-attack mix entry in its first phase to calibrate with",
            scenario.name
        )));
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut warnings = Vec::new();
    let mut baseline: Option<f64> = None;
    let mut rate = cfg.start;
    for _ in 0..cfg.max_steps {
        let ov = Overrides {
            rate: Some(rate),
            duration: Some(cfg.step),
            ramp: None,
            senders: Some(cfg.senders),
        };
        let plan = Plan::build(sc.clone(), &ov, None)?;
        let opts = RunOptions {
            signer_threads,
            ..RunOptions::default()
        };
        let result = run(plan, world.clone(), target.clone(), opts, &mut |_| {}).await;
        let t = &result.totals;
        let count = |c| t.completed(None, None, c);
        let h = t.latency(None, None, &[OutcomeClass::Ok], true);
        let step = Step {
            rate,
            ok: count(OutcomeClass::Ok),
            busy: count(OutcomeClass::Busy),
            throttled: count(OutcomeClass::Throttled),
            refused: count(OutcomeClass::Refused),
            errors: count(OutcomeClass::Error),
            p99_ms: (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0),
        };
        progress(&step);
        for w in result.warnings {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        let reason = if step.share(step.busy) >= cfg.max_shed_share {
            Some(StopReason::Busy)
        } else if step.share(step.throttled) >= cfg.max_shed_share {
            Some(StopReason::Throttled)
        } else if step.share(step.errors) >= cfg.max_shed_share {
            Some(StopReason::Errors)
        } else {
            match (baseline, step.p99_ms) {
                (Some(b), Some(p)) if p > cfg.max_p99_ratio * b => Some(StopReason::Latency),
                _ => None,
            }
        };
        if baseline.is_none() {
            baseline = step.p99_ms.map(|p| p.max(cfg.p99_floor_ms));
        }
        steps.push(step);
        if let Some(reason) = reason {
            let capacity = match steps.len() {
                // The first step already pushed back: what it got through is the best
                // figure there is.
                1 => {
                    let s = &steps[0];
                    if s.ok == 0 {
                        return Err(CalibrateError::NothingSucceeded {
                            rate: s.rate,
                            busy: s.busy,
                            throttled: s.throttled,
                            refused: s.refused,
                            errors: s.errors,
                        });
                    }
                    s.rate * s.share(s.ok)
                }
                n => steps[n - 2].rate,
            };
            return Ok(Discovery {
                capacity,
                reason,
                steps,
                warnings,
            });
        }
        rate *= cfg.factor;
    }
    Ok(Discovery {
        capacity: steps.last().map_or(cfg.start, |s| s.rate),
        reason: StopReason::MaxSteps,
        steps,
        warnings,
    })
}
