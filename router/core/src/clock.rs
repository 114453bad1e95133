//! Wall-clock time for certificate validity and revocation-delay ends, replaceable in tests.
//!
//! Lane deadlines and timings use `std::time::Instant` (monotonic); only the facts that are
//! written in Unix seconds (certificate validity, delay ends) read this clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The system clock, or a manual one a test sets.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(None)
    }

    /// A manual clock starting at `unix` seconds; clones share it.
    pub fn manual(unix: u64) -> Self {
        Clock(Some(Arc::new(AtomicU64::new(unix))))
    }

    /// Now, in Unix seconds.
    pub fn now_unix(&self) -> u64 {
        match &self.0 {
            Some(t) => t.load(Ordering::Acquire),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set(&self, unix: u64) {
        if let Some(t) = &self.0 {
            t.store(unix, Ordering::Release);
        }
    }

    /// Advances a manual clock.
    pub fn advance(&self, secs: u64) {
        if let Some(t) = &self.0 {
            t.fetch_add(secs, Ordering::AcqRel);
        }
    }
}
