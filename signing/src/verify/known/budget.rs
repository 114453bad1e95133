//! The bound on total table memory across all prepared keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Upper bound, in bytes, on the fixed-base tables of all keys prepared by one
/// [`KnownSignerVerifier`](super::KnownSignerVerifier) (and its clones) that are alive at once.
///
/// The default, 256 MiB, gives 1,024 keys evenly used at least a full `w = 7` table each
/// (151,552 bytes), 4,096 keys at least a `w7/m3` comb (53,248 bytes) and 16,384 keys still a
/// `w5/m5` comb (11,264 bytes) (see [`TableShape`](super::TableShape)); the shared generator
/// table is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableBudget(pub usize);

impl TableBudget {
    /// 256 MiB.
    pub const DEFAULT: Self = Self(256 << 20);
}

impl Default for TableBudget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Bytes reserved against a [`TableBudget`], shared by a verifier and the keys it prepared.
#[derive(Debug)]
pub(crate) struct BudgetLedger {
    limit: usize,
    used: AtomicUsize,
    /// Live keys that may still be promoted to a wider table: the budget left is shared among
    /// them.
    waiting: AtomicUsize,
}

impl BudgetLedger {
    pub(crate) fn new(budget: TableBudget) -> Arc<Self> {
        Arc::new(Self {
            limit: budget.0,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Reserves `bytes` if they fit under the limit.
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|&n| n <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        ledger: Arc::clone(self),
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes not reserved yet.
    pub(crate) fn free(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    /// One more key waits for promotion.
    pub(crate) fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
    }

    /// A waiting key was promoted, gave up, or was dropped.
    pub(crate) fn stop_waiting(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }

    /// Keys waiting for promotion (at least 1 when asked by one of them).
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Bytes held against the budget; given back on drop (when the prepared key is dropped).
#[derive(Debug)]
pub(crate) struct Reservation {
    ledger: Arc<BudgetLedger>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.ledger.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}
