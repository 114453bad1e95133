//! Wall-clock time for certificate validity, revocation-delay ends and DP092 maintenance
//! windows, replaceable in tests.
//!
//! Lane deadlines and timings use `std::time::Instant` (monotonic); only the facts that are
//! written in Unix seconds (certificate validity, delay ends, maintenance windows) read this
//! clock.
//!
//! Three kinds: the system clock; a manual clock a test sets and advances; and — **for tests
//! and demonstrations only** — a simulated clock that starts at a chosen moment and then runs
//! at the real rate (`dcc-router serve --simulated-clock-start`), so that e.g. a DP092
//! maintenance window, which may only lie between 20:00 and 08:00 UTC, can be crossed by a
//! load run at any time of day.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The system clock, a manual one a test sets, or a simulated one that runs from a chosen
/// start.
#[derive(Clone, Debug, Default)]
pub struct Clock(Kind);

#[derive(Clone, Debug, Default)]
enum Kind {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
    Simulated {
        start: u64,
        at: Instant,
    },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(Kind::System)
    }

    /// A manual clock starting at `unix` seconds; clones share it.
    pub fn manual(unix: u64) -> Self {
        Clock(Kind::Manual(Arc::new(AtomicU64::new(unix))))
    }

    /// A simulated clock (tests and demonstrations only): `start` Unix seconds now, then
    /// advancing with real time.
    pub fn simulated(start: u64) -> Self {
        Clock(Kind::Simulated {
            start,
            at: Instant::now(),
        })
    }

    /// Whether this is not the system clock (start-up lines say so).
    pub fn is_simulated(&self) -> bool {
        !matches!(self.0, Kind::System)
    }

    /// Now, in Unix seconds.
    pub fn now_unix(&self) -> u64 {
        match &self.0 {
            Kind::Manual(t) => t.load(Ordering::Acquire),
            Kind::Simulated { start, at } => start.saturating_add(at.elapsed().as_secs()),
            Kind::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Sets a manual clock (no effect on the others).
    pub fn set(&self, unix: u64) {
        if let Kind::Manual(t) = &self.0 {
            t.store(unix, Ordering::Release);
        }
    }

    /// Advances a manual clock.
    pub fn advance(&self, secs: u64) {
        if let Kind::Manual(t) = &self.0 {
            t.fetch_add(secs, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_starts_where_told_and_runs() {
        let c = Clock::simulated(1_000);
        let now = c.now_unix();
        assert!((1_000..1_010).contains(&now), "{now}");
        c.set(5);
        assert!(c.now_unix() >= 1_000, "set does not move a simulated clock");
        assert!(c.is_simulated() && !Clock::system().is_simulated());
    }
}
