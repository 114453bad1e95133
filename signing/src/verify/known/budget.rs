//! The bound on total table memory across all prepared keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Upper bound, in bytes, on the fixed-base tables of all keys prepared by one
/// [`KnownSignerVerifier`](super::KnownSignerVerifier) (and its clones) that are alive at once.
///
/// The default, 128 MiB, holds about 490 keys at the widest window (270,336 bytes each) —
/// more than the few hundred Organisation Certificates live at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableBudget(pub usize);

impl TableBudget {
    /// 128 MiB.
    pub const DEFAULT: Self = Self(128 << 20);
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
}

impl BudgetLedger {
    pub(crate) fn new(budget: TableBudget) -> Arc<Self> {
        Arc::new(Self {
            limit: budget.0,
            used: AtomicUsize::new(0),
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
