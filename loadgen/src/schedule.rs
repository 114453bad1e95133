//! The open-loop schedule: when each request is *intended* to be sent.
//!
//! A run is a list of [`Segment`]s, each with a rate that changes linearly from `from_rate` to
//! `to_rate` (a constant rate when they are equal; a ramp otherwise). Request `i` (from 0) is
//! intended for the time `t` at which the integral of the rate reaches `i`, so request times
//! never depend on when earlier requests were answered: that is what makes the generator
//! *open-loop* and lets latency be measured from the intended time (wrk2's coordinated-omission
//! correction). Times are computed in closed form per index, not accumulated, so there is no
//! drift over millions of requests.

use std::time::Duration;

/// One piece of the rate profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Length in seconds.
    pub duration: f64,
    /// Requests per second at the start of the segment.
    pub from_rate: f64,
    /// Requests per second at the end of the segment.
    pub to_rate: f64,
    /// Index of the scenario phase this segment belongs to.
    pub phase: usize,
}

impl Segment {
    /// Number of requests (fractional) the segment schedules.
    fn count(&self) -> f64 {
        (self.from_rate + self.to_rate) * 0.5 * self.duration
    }
}

/// Why a rate profile is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A duration or rate is negative, NaN or infinite.
    #[error("segment {0}: durations and rates must be finite and not negative")]
    NotFinite(usize),
    /// The profile schedules nothing.
    #[error("the schedule sends no request (zero rate or zero duration)")]
    Empty,
    /// More requests than the generator will hold.
    #[error("the schedule has {0} requests, more than the limit of {MAX_REQUESTS}")]
    TooMany(u64),
}

/// Upper bound on requests in one run (2^40: far beyond any run on one machine).
pub const MAX_REQUESTS: u64 = 1 << 40;

/// A validated rate profile with the cumulative request count at each segment start.
#[derive(Clone, Debug)]
pub struct Schedule {
    segments: Vec<Segment>,
    /// `starts[k]`: start time of segment k (seconds); `cum[k]`: requests before segment k.
    starts: Vec<f64>,
    cum: Vec<f64>,
    len: u64,
}

impl Schedule {
    /// Validates the segments and precomputes the cumulative counts.
    pub fn new(segments: Vec<Segment>) -> Result<Self, ScheduleError> {
        let mut starts = Vec::with_capacity(segments.len() + 1);
        let mut cum = Vec::with_capacity(segments.len() + 1);
        let (mut t, mut c) = (0.0f64, 0.0f64);
        for (k, s) in segments.iter().enumerate() {
            let ok = [s.duration, s.from_rate, s.to_rate]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0);
            if !ok {
                return Err(ScheduleError::NotFinite(k));
            }
            starts.push(t);
            cum.push(c);
            t += s.duration;
            c += s.count();
        }
        starts.push(t);
        cum.push(c);
        // Request i exists when its time is strictly before the end: i < total count.
        let len = c.ceil();
        if len < 1.0 {
            return Err(ScheduleError::Empty);
        }
        if len > MAX_REQUESTS as f64 {
            return Err(ScheduleError::TooMany(len as u64));
        }
        Ok(Schedule {
            segments,
            starts,
            cum,
            len: len as u64,
        })
    }

    /// One constant-rate segment.
    pub fn constant(rate: f64, duration: Duration) -> Result<Self, ScheduleError> {
        Schedule::new(vec![Segment {
            duration: duration.as_secs_f64(),
            from_rate: rate,
            to_rate: rate,
            phase: 0,
        }])
    }

    /// Number of requests scheduled.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: an empty schedule is refused by [`Schedule::new`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total length of the run.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.starts.last().copied().unwrap_or(0.0))
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The highest rate anywhere in the profile.
    pub fn peak_rate(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.from_rate.max(s.to_rate))
            .fold(0.0, f64::max)
    }

    fn segment_of(&self, i: u64) -> usize {
        let x = i as f64;
        // Last segment whose cumulative start count is <= x and which schedules something.
        let k = self.cum[..self.segments.len()].partition_point(|&c| c <= x);
        let mut k = k.saturating_sub(1);
        while k + 1 < self.segments.len() && self.cum[k + 1] <= x {
            k += 1;
        }
        k
    }

    /// Intended send time of request `i` (for `i >= len()` the end of the run).
    pub fn at(&self, i: u64) -> Duration {
        if i >= self.len {
            return self.duration();
        }
        let k = self.segment_of(i);
        let s = &self.segments[k];
        let x = i as f64 - self.cum[k];
        // Solve r0·τ + (r1−r0)/(2D)·τ² = x for τ in [0, D], in the form that stays stable when
        // the quadratic term vanishes: τ = 2x / (r0 + sqrt(r0² + 2(r1−r0)x/D)).
        let tau = if x <= 0.0 {
            0.0
        } else {
            let a2 = if s.duration > 0.0 {
                2.0 * (s.to_rate - s.from_rate) / s.duration
            } else {
                0.0
            };
            let disc = (s.from_rate * s.from_rate + a2 * x).max(0.0);
            let denom = s.from_rate + disc.sqrt();
            if denom > 0.0 {
                (2.0 * x / denom).min(s.duration)
            } else {
                0.0
            }
        };
        Duration::from_secs_f64(self.starts[k] + tau)
    }

    /// The phase that request `i` belongs to.
    pub fn phase_of(&self, i: u64) -> usize {
        if self.segments.is_empty() {
            return 0;
        }
        self.segments[self.segment_of(i.min(self.len.saturating_sub(1)))].phase
    }

    /// Start time and end time (seconds) of every phase index present.
    pub fn phase_bounds(&self, phase: usize) -> Option<(f64, f64)> {
        let mut out: Option<(f64, f64)> = None;
        for (k, s) in self.segments.iter().enumerate() {
            if s.phase == phase {
                let (a, b) = (self.starts[k], self.starts[k + 1]);
                out = Some(match out {
                    Some((x, y)) => (x.min(a), y.max(b)),
                    None => (a, b),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn constant_rate_times_are_exact() {
        let s = Schedule::constant(1000.0, Duration::from_secs(2)).unwrap();
        assert_eq!(s.len(), 2000);
        for i in [0u64, 1, 7, 999, 1000, 1999] {
            let want = i as f64 / 1000.0;
            assert!((s.at(i).as_secs_f64() - want).abs() < 1e-9, "i={i}");
        }
        assert_eq!(s.at(2000), Duration::from_secs(2));
    }

    #[test]
    fn ramp_then_constant_matches_the_rate_integral() {
        let s = Schedule::new(vec![
            Segment {
                duration: 2.0,
                from_rate: 0.0,
                to_rate: 1000.0,
                phase: 0,
            },
            Segment {
                duration: 3.0,
                from_rate: 1000.0,
                to_rate: 1000.0,
                phase: 1,
            },
        ])
        .unwrap();
        // 1000 during the ramp (triangle) + 3000.
        assert_eq!(s.len(), 4000);
        // Monotonic and inside the run.
        let mut prev = Duration::ZERO;
        for i in 0..s.len() {
            let t = s.at(i);
            assert!(t >= prev, "not monotonic at {i}");
            assert!(t < s.duration());
            prev = t;
        }
        // Count per 100 ms window equals the integral of the rate over it, within one request.
        let mut counts = [0u32; 50];
        for i in 0..s.len() {
            counts[(s.at(i).as_secs_f64() * 10.0) as usize] += 1;
        }
        for (w, &c) in counts.iter().enumerate() {
            let (a, b) = (w as f64 / 10.0, (w + 1) as f64 / 10.0);
            let rate = |t: f64| if t < 2.0 { 500.0 * t } else { 1000.0 };
            let want = (rate(a) + rate(b)) / 2.0 * 0.1;
            let want = if a < 2.0 && b > 2.0 { 100.0 } else { want };
            assert!((c as f64 - want).abs() <= 1.0, "window {w}: {c} vs {want}");
        }
        assert_eq!(s.phase_of(0), 0);
        assert_eq!(s.phase_of(999), 0);
        assert_eq!(s.phase_of(1000), 1);
        assert_eq!(s.phase_bounds(1), Some((2.0, 5.0)));
        assert_eq!(s.peak_rate(), 1000.0);
    }

    #[test]
    fn zero_rate_gap_is_skipped() {
        let s = Schedule::new(vec![
            Segment {
                duration: 1.0,
                from_rate: 10.0,
                to_rate: 10.0,
                phase: 0,
            },
            Segment {
                duration: 1.0,
                from_rate: 0.0,
                to_rate: 0.0,
                phase: 1,
            },
            Segment {
                duration: 1.0,
                from_rate: 10.0,
                to_rate: 10.0,
                phase: 2,
            },
        ])
        .unwrap();
        assert_eq!(s.len(), 20);
        assert!((s.at(10).as_secs_f64() - 2.0).abs() < 1e-9);
        assert_eq!(s.phase_of(10), 2);
    }

    #[test]
    fn bad_profiles_are_refused() {
        assert_eq!(
            Schedule::constant(0.0, Duration::from_secs(1)).unwrap_err(),
            ScheduleError::Empty
        );
        assert!(matches!(
            Schedule::new(vec![Segment {
                duration: f64::NAN,
                from_rate: 1.0,
                to_rate: 1.0,
                phase: 0
            }]),
            Err(ScheduleError::NotFinite(0))
        ));
        assert!(matches!(
            Schedule::constant(1e12, Duration::from_secs(10_000)),
            Err(ScheduleError::TooMany(_))
        ));
    }
}
