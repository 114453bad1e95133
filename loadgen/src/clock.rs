//! The generator's notion of time, behind a trait so that tests run on a controlled clock.
//!
//! All times are offsets from the start of the run. [`TokioClock`] reads `tokio::time`, which a
//! test can pause (`#[tokio::test(start_paused = true)]`): time then only moves when every task
//! waits, so schedule accuracy and coordinated-omission correction are tested exactly, with no
//! dependence on how busy the machine is.

use std::future::Future;
use std::time::Duration;

/// A monotonic clock measured from the start of a run.
pub trait Clock: Clone + Send + Sync + 'static {
    /// Time since the start of the run.
    fn now(&self) -> Duration;
    /// Completes at (or just after) `at` since the start of the run.
    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send;
}

/// A clock over `tokio::time` (millisecond timer resolution; pausable in tests).
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn start_now() -> Self {
        TokioClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(self.start + at)
    }
}
