//! Per lane × outcome counters: relaxed atomics on the hot path, a snapshot for readers.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::pipeline::lanes::Lane;
use crate::response::ResponseCode;

/// Rows: the four lanes, then one for requests refused before they were classified.
const ROWS: usize = 5;
const UNCLASSIFIED: usize = 4;

fn row(lane: Option<Lane>) -> usize {
    lane.map_or(UNCLASSIFIED, Lane::index)
}

/// Live counters.
#[derive(Debug)]
pub struct Counters {
    cells: [[AtomicU64; ResponseCode::COUNT]; ROWS],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            cells: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl Counters {
    /// Counts one response.
    pub fn record(&self, lane: Option<Lane>, code: ResponseCode) {
        self.cells[row(lane)][code.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            cells: std::array::from_fn(|r| {
                std::array::from_fn(|c| self.cells[r][c].load(Ordering::Relaxed))
            }),
        }
    }
}

/// Counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountersSnapshot {
    cells: [[u64; ResponseCode::COUNT]; ROWS],
}

impl CountersSnapshot {
    /// Responses with `code` in `lane` (`None`: refused before classification).
    pub fn get(&self, lane: Option<Lane>, code: ResponseCode) -> u64 {
        self.cells[row(lane)][code.index()]
    }

    /// Responses with `code`, all lanes.
    pub fn total(&self, code: ResponseCode) -> u64 {
        self.cells.iter().map(|r| r[code.index()]).sum()
    }

    /// All responses in `lane`.
    pub fn lane_total(&self, lane: Option<Lane>) -> u64 {
        self.cells[row(lane)].iter().sum()
    }

    /// All responses.
    pub fn all(&self) -> u64 {
        self.cells.iter().flatten().sum()
    }

    /// Every non-zero counter as (lane, code, count).
    pub fn iter(&self) -> impl Iterator<Item = (Option<Lane>, ResponseCode, u64)> + '_ {
        let lanes = [
            Some(Lane::L0),
            Some(Lane::L1),
            Some(Lane::L2),
            Some(Lane::L3),
            None,
        ];
        lanes.into_iter().flat_map(move |l| {
            ResponseCode::ALL
                .into_iter()
                .map(move |c| (l, c, self.get(l, c)))
                .filter(|(_, _, n)| *n > 0)
        })
    }
}
