//! The in-memory mode: nothing survives a restart. For benchmarks (the in-memory path is the
//! anchor the durable one is measured against), tests, and embedders that persist elsewhere.
//! The audit log is still kept (in memory), so `admin audit` works in every mode.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use dcc_signing::Eui64;

use super::{AuditEntry, AuditFilter, Change, Snapshot, Store, StoreError};
use crate::state::Device;

/// Keeps the audit log in memory; everything else lives only in the router's state.
#[derive(Debug, Default)]
pub struct MemoryStore {
    audit: Mutex<VecDeque<AuditEntry>>,
}

/// The audit log keeps at most this many entries in memory (oldest dropped).
const MAX_AUDIT: usize = 100_000;

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "in memory (not durable: nothing survives a restart)".into()
    }

    fn is_durable(&self) -> bool {
        false
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }

    fn for_each_device(&self, _: &mut dyn FnMut(Eui64, Device)) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn apply(&self, _: &[Change], audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        if let Some(a) = audit {
            let mut log = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
            let mut e = a.clone();
            e.seq = log.back().map_or(1, |l| l.seq + 1);
            if log.len() >= MAX_AUDIT {
                log.pop_front();
            }
            log.push_back(e);
        }
        Ok(())
    }

    fn commit_replay(&self, _: &[(Eui64, u64)]) -> Result<(), StoreError> {
        Ok(())
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let log = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log
            .iter()
            .rev()
            .filter(|e| filter.matches(e))
            .take(filter.limit())
            .cloned()
            .collect())
    }
}
