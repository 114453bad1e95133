//! Several loadgen processes sending as the same Users: `--instance K/N` and the anti-replay
//! counters each process draws.
//!
//! # Why counters follow the clock, with the instance in the low digits
//!
//! The router does not merely refuse counters it has seen: per originator it keeps a
//! **high-water mark** and a window of `dcc_router::state::WINDOW` (65,472) counters below it
//! (`router/core/src/state/replay.rs`). A counter more than a window below the highest one
//! accepted is refused `R7` *too-old*, even if it was never used. So a partition of the counter
//! space is not enough: the processes must also keep *abreast* of each other, or the one ahead
//! pushes the mark out of reach of the other.
//!
//! * Disjoint ranges (instance *K* from *K* × 2^40) fail at once: the highest range moves the mark
//!   and every lower instance is refused too-old.
//! * Residues of dense per-process counts (*K* − 1 + *N* · *i*) stay abreast only while the
//!   processes start at the same instant and send at the same rate; a process started a second
//!   later at a few thousand requests per second per User is already a window behind.
//! * What every process shares without talking to the others is the **clock**. So a counter is
//!   the time in ticks of 100 µs (10,000 a second), rounded down to a multiple of *N*, plus
//!   *K* − 1: the residue mod *N* keeps instances disjoint, the clock keeps them abreast. Within
//!   one process counters still strictly increase per User (the next is at least the last + *N*),
//!   so a User sending faster than 10,000/*N* requests per second per instance runs ahead of the
//!   clock, densely, as counters did before.
//!
//! The tick trades two limits. Requests of one User may reach the router's commit stage out of
//! order by up to window ÷ 10,000/s = **6.5 s** of counter time (more than any default lane
//! holds a request at the rates where counters follow the clock); and processes stay abreast
//! while no instance runs ahead of the clock by more than that, i.e. give every instance the
//! same share of the rate (the same `--rate`).
//!
//! **The only instance (`1/1`, the default) counts densely**: it starts at the clock and adds 1
//! per request, without following the clock. It has no one to keep abreast of, and dense
//! counters tolerate far more reordering — a window of 65,472 *requests* of one User, many
//! seconds for all but the busiest — which matters when the generator itself falls seconds
//! behind and its senders drift apart (a known-signer overload on one small machine, where the
//! clock rule gave `R7` too-old answers by the thousand).
//!
//! Two runs one after the other against the same router are safe while, for each User, the
//! first sent fewer requests than the clock ticked since it started (on average below 10,000
//! requests per second per User); otherwise leave as many seconds between them as the first
//! ran ahead.
//!
//! Counters start at [`COUNTER_FLOOR`] (2^60) plus the clock: loadgen before `--instance` drew
//! counters from the clock in microseconds (≈ 1.8 × 10^15 in 2026), and a router with a durable
//! store that saw those must still accept the new ones.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counter ticks per second: the clock's share of the counter space.
pub const TICKS_PER_SECOND: u64 = 10_000;
/// Added to every counter: above any counter loadgen drew from the microsecond clock before.
pub const COUNTER_FLOOR: u64 = 1 << 60;
/// Most instances: enough for any test bench, and `N` stays far below the tick rate.
pub const MAX_INSTANCES: u64 = 1024;

/// Which of `N` loadgen processes sending as the same Users this one is (`--instance K/N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    /// 0-based: `K - 1`.
    index: u64,
    of: u64,
}

/// Why `--instance` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// Not `K/N` with two decimal numbers.
    #[error("{0:?} is not K/N (e.g. 1/2: this process is the 1st of 2 sending as the same Users)")]
    Syntax(String),
    /// `N` is 0 or above [`MAX_INSTANCES`].
    #[error("{given}: N must be 1..={max}")]
    Count {
        /// What was given.
        given: String,
        /// The largest `N`.
        max: u64,
    },
    /// `K` is 0 or above `N`.
    #[error("{0}: K must be 1..=N (K counts from 1)")]
    Index(String),
}

impl InstanceError {
    /// A stable code for scripts and tests.
    pub fn code(&self) -> &'static str {
        match self {
            InstanceError::Syntax(_) => "instance-syntax",
            InstanceError::Count { .. } => "instance-count",
            InstanceError::Index(_) => "instance-index",
        }
    }
}

impl Instance {
    /// The only process (`1/1`), the default.
    pub const SOLE: Instance = Instance { index: 0, of: 1 };

    /// Instance `k` (1-based) of `n`.
    pub fn new(k: u64, n: u64) -> Result<Instance, InstanceError> {
        if n == 0 || n > MAX_INSTANCES {
            return Err(InstanceError::Count {
                given: format!("{k}/{n}"),
                max: MAX_INSTANCES,
            });
        }
        if k == 0 || k > n {
            return Err(InstanceError::Index(format!("{k}/{n}")));
        }
        Ok(Instance {
            index: k - 1,
            of: n,
        })
    }

    /// `K`, counting from 1.
    pub fn number(self) -> u64 {
        self.index + 1
    }

    /// `N`.
    pub fn of(self) -> u64 {
        self.of
    }
}

impl Default for Instance {
    fn default() -> Self {
        Instance::SOLE
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number(), self.of)
    }
}

impl FromStr for Instance {
    type Err = InstanceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || InstanceError::Syntax(s.chars().take(40).collect());
        let (k, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let num = |t: &str| -> Result<u64, InstanceError> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            t.parse().map_err(|_| syntax())
        };
        Instance::new(num(k)?, num(n)?)
    }
}

/// The clock counters are drawn from: wall time at start (so that a later run starts above an
/// earlier one), then a monotonic clock (so that a wall-clock step back cannot repeat one).
#[derive(Clone, Copy, Debug)]
pub struct CounterClock {
    instance: Instance,
    origin: Instant,
    origin_ticks: u64,
}

impl CounterClock {
    /// A clock for `instance`, starting now.
    pub fn new(instance: Instance) -> CounterClock {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| ticks(d.as_micros()));
        CounterClock {
            instance,
            origin: Instant::now(),
            origin_ticks: COUNTER_FLOOR.saturating_add(since_epoch),
        }
    }

    /// The instance it draws for.
    pub fn instance(&self) -> Instance {
        self.instance
    }

    /// The next counter after `last` (0: none yet). The first is the clock's tick rounded
    /// down to this instance's residue class; then, for one of several instances, that or the
    /// least counter of the class above `last` (`last + N`), whichever is higher; for the only
    /// instance, `last + 1`.
    pub fn next_after(&self, last: u64) -> u64 {
        let now = self
            .origin_ticks
            .saturating_add(ticks(self.origin.elapsed().as_micros()));
        let n = self.instance.of;
        let slot = now - now % n + self.instance.index;
        if last == 0 {
            return slot;
        }
        if n == 1 {
            // The only instance counts densely (module docs).
            return last.saturating_add(1);
        }
        // The least counter above `last` in this instance's class (`last` is in it, unless
        // the instance changed after counters were drawn).
        let above = last.saturating_add(1);
        slot.max(above.saturating_add((self.instance.index + n - above % n) % n))
    }

    /// Draws the next counter from `last` (a User's counter cell), atomically.
    pub fn draw(&self, last: &AtomicU64) -> u64 {
        let mut cur = last.load(Ordering::Relaxed);
        loop {
            let next = self.next_after(cur);
            match last.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => cur = seen,
            }
        }
    }
}

impl Default for CounterClock {
    fn default() -> Self {
        CounterClock::new(Instance::SOLE)
    }
}

fn ticks(micros: u128) -> u64 {
    u64::try_from(micros / u128::from(1_000_000 / TICKS_PER_SECOND)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn instances_parse_and_bad_ones_are_refused_with_their_code() {
        assert_eq!("1/1".parse::<Instance>().unwrap(), Instance::SOLE);
        let i: Instance = " 2/3 ".parse().unwrap();
        assert_eq!(
            (i.number(), i.of(), i.to_string()),
            (2, 3, "2/3".to_owned())
        );
        for (bad, code) in [
            ("0/2", "instance-index"),
            ("3/2", "instance-index"),
            ("1/0", "instance-count"),
            ("0/0", "instance-count"),
            ("1/1025", "instance-count"),
            ("2", "instance-syntax"),
            ("a/b", "instance-syntax"),
            ("-1/2", "instance-syntax"),
            ("1/2/3", "instance-syntax"),
            ("", "instance-syntax"),
            ("1/99999999999999999999999", "instance-syntax"),
        ] {
            let e = bad.parse::<Instance>().unwrap_err();
            assert_eq!(e.code(), code, "{bad}: {e}");
        }
    }

    #[test]
    fn instances_draw_disjoint_increasing_counters_that_follow_the_clock() {
        let clocks: Vec<CounterClock> = (1..=3)
            .map(|k| CounterClock::new(Instance::new(k, 3).unwrap()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (k, c) in clocks.iter().enumerate() {
            let cell = AtomicU64::new(0);
            let mut last = 0;
            for _ in 0..10_000 {
                let v = c.draw(&cell);
                assert!(v > last, "strictly increasing");
                assert_eq!(v % 3, k as u64, "in the instance's residue class");
                assert!(seen.insert(v), "never drawn by another instance");
                last = v;
            }
        }
        let sole = CounterClock::default();
        let first = sole.next_after(0);
        assert_eq!(
            sole.next_after(first),
            first + 1,
            "the only instance counts densely"
        );
        let firsts: Vec<u64> = clocks.iter().map(|c| c.next_after(0)).collect();
        assert!(firsts.iter().all(|&f| f > COUNTER_FLOOR));
    }
}
