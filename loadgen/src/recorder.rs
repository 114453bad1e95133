//! Latency and outcome recording: per-task, merged at intervals.
//!
//! Each sender task owns one [`Recorder`] (a [`Snapshot`] behind a mutex that only the task and,
//! once per interval, the collector ever lock — so the lock is uncontended and no request costs a
//! channel send). The collector swaps the task's snapshot with a reset spare, keeping the
//! histograms' allocations, and merges the full one into the run totals and the interval series.
//!
//! Latencies are kept per *phase × lane × outcome class*, twice: **corrected** (from the intended
//! send time; what a user of the router would see) and **raw** (from the moment the request was
//! actually handed to the target). They differ exactly when the generator itself fell behind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::outcome::{Lane, Outcome, OutcomeClass};

/// Largest latency recorded exactly, in microseconds (10 minutes); larger values saturate.
pub const MAX_LATENCY_US: u64 = 600_000_000;
/// Significant figures kept by every histogram.
pub const SIGFIG: u8 = 3;

/// A new latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that `new_with_bounds` accepts; fall back to an auto-resizing one
    // rather than panic should that ever change.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG).unwrap_or_else(|_| {
        let mut h = Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable_histogram());
        h.auto(true);
        h
    })
}

#[allow(clippy::expect_used)]
fn unreachable_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant figures is always valid")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros().min(u128::from(MAX_LATENCY_US)) as u64).max(1)
}

/// Corrected and raw latency for one key.
#[derive(Clone, Debug)]
pub struct LatencyPair {
    /// From the intended send time (coordinated-omission corrected).
    pub corrected: Histogram<u64>,
    /// From the actual send time.
    pub raw: Histogram<u64>,
}

impl LatencyPair {
    fn new() -> Self {
        LatencyPair {
            corrected: new_histogram(),
            raw: new_histogram(),
        }
    }

    fn add(&mut self, other: &LatencyPair) {
        // Same bounds on both sides; saturate rather than fail if not.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.raw.add(&other.raw);
    }

    fn reset(&mut self) {
        self.corrected.reset();
        self.raw.reset();
    }
}

/// Counters of the generator's own behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GeneratorCounts {
    /// Requests handed to the target.
    pub sent: u64,
    /// Sent later than [`crate::sender::LATE_THRESHOLD`] after their intended time.
    pub late: u64,
    /// Not sent: too many requests already in flight.
    pub dropped: u64,
    /// Sends that found no signed request ready (signing could not keep up).
    pub starved: u64,
    /// Replays that had no earlier accepted request to copy yet (not sent).
    pub replay_unavailable: u64,
}

impl GeneratorCounts {
    fn add(&mut self, o: &GeneratorCounts) {
        self.sent += o.sent;
        self.late += o.late;
        self.dropped += o.dropped;
        self.starved += o.starved;
        self.replay_unavailable += o.replay_unavailable;
    }
}

/// Everything recorded over some span (an interval of one task, or a whole run).
#[derive(Clone, Debug)]
pub struct Snapshot {
    phases: usize,
    tags: usize,
    hists: Vec<Option<Box<LatencyPair>>>,
    counts: Vec<u64>,
    codes: BTreeMap<(usize, Lane, String), u64>,
    generator: Vec<GeneratorCounts>,
    lag: Histogram<u64>,
}

impl Snapshot {
    /// An empty snapshot for `phases` phases and `tags` request tags.
    pub fn new(phases: usize, tags: usize) -> Self {
        let (phases, tags) = (phases.max(1), tags.max(1));
        Snapshot {
            phases,
            tags,
            hists: (0..phases * Lane::COUNT * OutcomeClass::COUNT)
                .map(|_| None)
                .collect(),
            counts: vec![0; phases * tags * OutcomeClass::COUNT],
            codes: BTreeMap::new(),
            generator: vec![GeneratorCounts::default(); phases],
            lag: new_histogram(),
        }
    }

    fn hkey(&self, phase: usize, lane: Lane, class: OutcomeClass) -> usize {
        (phase.min(self.phases - 1) * Lane::COUNT + lane.index()) * OutcomeClass::COUNT
            + class.index()
    }

    fn ckey(&self, phase: usize, tag: usize, class: OutcomeClass) -> usize {
        (phase.min(self.phases - 1) * self.tags + tag.min(self.tags - 1)) * OutcomeClass::COUNT
            + class.index()
    }

    /// Records that a request was handed to the target `lag` after its intended time.
    pub fn record_send(&mut self, phase: usize, lag: Duration, late: bool) {
        let p = phase.min(self.phases - 1);
        self.generator[p].sent += 1;
        if late {
            self.generator[p].late += 1;
        }
        self.lag.saturating_record(micros(lag));
    }

    /// Records a request that was not sent because too many were in flight.
    pub fn record_drop(&mut self, phase: usize) {
        let p = phase.min(self.phases - 1);
        self.generator[p].dropped += 1;
    }

    /// Records a send that had to wait for signing.
    pub fn record_starved(&mut self, phase: usize) {
        let p = phase.min(self.phases - 1);
        self.generator[p].starved += 1;
    }

    /// Records a replay that could not be sent (nothing accepted yet to replay).
    pub fn record_replay_unavailable(&mut self, phase: usize) {
        let p = phase.min(self.phases - 1);
        self.generator[p].replay_unavailable += 1;
    }

    /// Records an answer.
    pub fn record_outcome(
        &mut self,
        phase: usize,
        tag: usize,
        outcome: &Outcome,
        corrected: Duration,
        raw: Duration,
    ) {
        let k = self.hkey(phase, outcome.lane, outcome.class);
        let pair = self.hists[k].get_or_insert_with(|| Box::new(LatencyPair::new()));
        pair.corrected.saturating_record(micros(corrected));
        pair.raw.saturating_record(micros(raw));
        let c = self.ckey(phase, tag, outcome.class);
        self.counts[c] += 1;
        if outcome.class != OutcomeClass::Ok {
            let key = (
                phase.min(self.phases - 1),
                outcome.lane,
                outcome.code.to_string(),
            );
            *self.codes.entry(key).or_insert(0) += 1;
        }
    }

    /// Adds `other` into `self` (same shape).
    pub fn merge(&mut self, other: &Snapshot) {
        for (i, h) in other.hists.iter().enumerate() {
            if let (Some(src), Some(dst)) = (h, self.hists.get_mut(i)) {
                dst.get_or_insert_with(|| Box::new(LatencyPair::new()))
                    .add(src);
            }
        }
        for (d, s) in self.counts.iter_mut().zip(&other.counts) {
            *d += s;
        }
        for (k, v) in &other.codes {
            *self.codes.entry(k.clone()).or_insert(0) += v;
        }
        for (d, s) in self.generator.iter_mut().zip(&other.generator) {
            d.add(s);
        }
        let _ = self.lag.add(&other.lag);
    }

    /// Empties the snapshot, keeping its allocations.
    pub fn reset(&mut self) {
        for p in self.hists.iter_mut().flatten() {
            p.reset();
        }
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.codes.clear();
        self.generator
            .iter_mut()
            .for_each(|g| *g = GeneratorCounts::default());
        self.lag.reset();
    }

    /// Number of phases.
    pub fn phases(&self) -> usize {
        self.phases
    }

    /// Latency of one phase (or all, `None`), lane, and set of classes merged, corrected or raw.
    pub fn latency(
        &self,
        phase: Option<usize>,
        lane: Option<Lane>,
        classes: &[OutcomeClass],
        corrected: bool,
    ) -> Histogram<u64> {
        let mut h = new_histogram();
        for p in 0..self.phases {
            if phase.is_some_and(|want| want != p) {
                continue;
            }
            for l in Lane::ALL {
                if lane.is_some_and(|want| want != l) {
                    continue;
                }
                for &c in classes {
                    if let Some(pair) = &self.hists[self.hkey(p, l, c)] {
                        let _ = h.add(if corrected {
                            &pair.corrected
                        } else {
                            &pair.raw
                        });
                    }
                }
            }
        }
        h
    }

    /// Completed requests of `phase` (or all), `lane` (or all) and `class`.
    pub fn completed(&self, phase: Option<usize>, lane: Option<Lane>, class: OutcomeClass) -> u64 {
        let mut n = 0;
        for p in 0..self.phases {
            if phase.is_some_and(|want| want != p) {
                continue;
            }
            for l in Lane::ALL {
                if lane.is_some_and(|want| want != l) {
                    continue;
                }
                if let Some(pair) = &self.hists[self.hkey(p, l, class)] {
                    n += pair.corrected.len();
                }
            }
        }
        n
    }

    /// Completed requests carrying `tag` (or all) in `phase` (or all) with `class`.
    pub fn tag_count(&self, phase: Option<usize>, tag: Option<usize>, class: OutcomeClass) -> u64 {
        let mut n = 0;
        for p in 0..self.phases {
            if phase.is_some_and(|want| want != p) {
                continue;
            }
            for t in 0..self.tags {
                if tag.is_some_and(|want| want != t) {
                    continue;
                }
                n += self.counts[self.ckey(p, t, class)];
            }
        }
        n
    }

    /// Refusal codes: `(phase, lane, code) → count`.
    pub fn codes(&self) -> &BTreeMap<(usize, Lane, String), u64> {
        &self.codes
    }

    /// The generator's counters for `phase` (or all phases summed).
    pub fn generator(&self, phase: Option<usize>) -> GeneratorCounts {
        let mut g = GeneratorCounts::default();
        for (p, c) in self.generator.iter().enumerate() {
            if phase.is_none_or(|want| want == p) {
                g.add(c);
            }
        }
        g
    }

    /// How late sends were against their intended time (µs).
    pub fn lag(&self) -> &Histogram<u64> {
        &self.lag
    }
}

/// A task's recorder: the snapshot it writes into, shared with the collector.
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Mutex<Snapshot>>,
}

impl Recorder {
    /// A recorder for `phases` phases and `tags` tags.
    pub fn new(phases: usize, tags: usize) -> Self {
        Recorder {
            inner: Arc::new(Mutex::new(Snapshot::new(phases, tags))),
        }
    }

    /// Runs `f` on the current snapshot (the lock is only contended once per interval).
    pub fn with<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// Swaps the current snapshot with `spare` (which should be reset); `spare` then holds what
    /// was recorded since the previous swap.
    pub fn swap(&self, spare: &mut Snapshot) {
        self.with(|cur| std::mem::swap(cur, spare));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn records_merge_and_reset() {
        let r = Recorder::new(2, 2);
        r.with(|s| {
            s.record_send(0, Duration::from_micros(5), false);
            s.record_outcome(
                0,
                1,
                &Outcome::ok(Lane::L1),
                Duration::from_millis(3),
                Duration::from_millis(2),
            );
            s.record_outcome(
                1,
                0,
                &Outcome::new(OutcomeClass::Busy, "BUSY", Lane::L3),
                Duration::from_millis(1),
                Duration::from_millis(1),
            );
        });
        let mut spare = Snapshot::new(2, 2);
        r.swap(&mut spare);
        assert_eq!(r.with(|s| s.completed(None, None, OutcomeClass::Ok)), 0);
        let mut total = Snapshot::new(2, 2);
        total.merge(&spare);
        total.merge(&spare);
        assert_eq!(total.completed(None, Some(Lane::L1), OutcomeClass::Ok), 2);
        assert_eq!(total.completed(Some(1), None, OutcomeClass::Busy), 2);
        assert_eq!(total.tag_count(None, Some(1), OutcomeClass::Ok), 2);
        assert_eq!(total.generator(None).sent, 2);
        let h = total.latency(Some(0), Some(Lane::L1), &[OutcomeClass::Ok], true);
        assert!(h.max() >= 2990 && h.max() <= 3010);
        let raw = total.latency(Some(0), Some(Lane::L1), &[OutcomeClass::Ok], false);
        assert!(raw.max() < h.max());
        assert_eq!(total.codes().get(&(1, Lane::L3, "BUSY".into())), Some(&2));
        spare.reset();
        assert_eq!(spare.completed(None, None, OutcomeClass::Busy), 0);
        assert!(spare.codes().is_empty());
    }
}
