//! Per lane × outcome counters: relaxed atomics on the hot path, a snapshot for readers.
//!
//! Sharded by thread: every verify worker answering I0 in lane L2 would otherwise add to the
//! same atomic, and the cache line holding it would move between cores on every answer (a
//! per-request cost that grows with the workers). Each thread adds to its own shard, padded to
//! its own cache lines; a snapshot sums the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::pipeline::lanes::Lane;
use crate::response::ResponseCode;

/// Rows: the four lanes, then one for requests refused before they were classified.
const ROWS: usize = 5;
const UNCLASSIFIED: usize = 4;

/// Shards per [`Counters`]: threads past this many share shards (still exact, only slower).
const SHARDS: usize = 16;

fn row(lane: Option<Lane>) -> usize {
    lane.map_or(UNCLASSIFIED, Lane::index)
}

/// The shard this thread adds to: threads take the next one in turn when they first count.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.try_with(|s| *s).unwrap_or(0)
}

/// One thread's counters, alone on its cache lines (128-byte aligned: x86 prefetches lines in
/// pairs).
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    cells: [[AtomicU64; ResponseCode::COUNT]; ROWS],
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            cells: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

/// Live counters.
#[derive(Debug)]
pub struct Counters {
    shards: Box<[Shard]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Counters {
    /// Counts one response.
    pub fn record(&self, lane: Option<Lane>, code: ResponseCode) {
        let s = &self.shards[shard() % self.shards.len()];
        s.cells[row(lane)][code.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            cells: std::array::from_fn(|r| {
                std::array::from_fn(|c| {
                    self.shards
                        .iter()
                        .map(|s| s.cells[r][c].load(Ordering::Relaxed))
                        .sum()
                })
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
