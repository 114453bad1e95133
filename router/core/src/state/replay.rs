//! Anti-replay: never accept an originator's counter twice, while tolerating the reordering
//! that parallel verification (and four lanes) cause.
//!
//! Each originator has a [`ReplayWindow`]: the highest accepted counter (high-water mark) and a
//! bitmap of the counters accepted just below it, as in IPsec/DTLS anti-replay. The bitmap is a
//! ring of 64-bit words indexed by `counter / 64` (RFC 6479), so advancing the mark clears at
//! most the words it passes instead of shifting the whole map.
//!
//! A counter is accepted when it was never accepted before and is above `mark - WINDOW`;
//! anything older is refused as a replay (it cannot be told apart from one).
//!
//! How big a window? A request waits in the pipeline while later counters of its originator
//! commit around it. With the dense, increasing counters DUIS Users send, a request can only
//! fall out of the window if more than `WINDOW` later requests committed while it was in
//! flight — impossible while everything queued and in workers' batches stays below `WINDOW`:
//! [`Policy`](crate::Policy) refuses lanes that together hold more than half of it (the other
//! half covers the workers' batches, at most 64 each). (A first version used 4,032 counters; a bench with
//! a verifier that accepts everything showed one worker, pre-empted on a loaded machine, fall
//! that far behind its peer.) 1,024 words = 65,472 counters = 8 KiB per originator, i.e. a few
//! MB for the few hundred DCC Users.
//!
//! Two steps use it: admission *pre-checks* (read only, cheap refusal of obvious replays before
//! any verify work) and the commit stage *accepts* (check-and-set under the map's shard lock,
//! only after the signature verified). Only the latter is authoritative.

use dashmap::DashMap;
use dcc_signing::Eui64;

const WORDS: usize = 1024;
const BITS: u64 = (WORDS as u64) * 64;

/// How far below the high-water mark a counter may arrive and still be accepted (exclusive).
pub const WINDOW: u64 = BITS - 64;

/// One originator's anti-replay state: 16 + 8 KiB.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Highest accepted counter, `None` before the first.
    mark: Option<u64>,
    ring: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            mark: None,
            ring: [0; WORDS],
        }
    }
}

/// Why a counter was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplayVerdict {
    /// Accepted (or, for a pre-check, would be now).
    Fresh,
    /// Already accepted.
    Duplicate,
    /// At or below `mark - WINDOW`: too old to tell.
    TooOld,
}

impl ReplayWindow {
    fn slot(counter: u64) -> (usize, u64) {
        (
            ((counter / 64) % WORDS as u64) as usize,
            1u64 << (counter % 64),
        )
    }

    /// A window restored from a durable high-water mark: every counter at or below `mark` is
    /// refused (as already accepted, or too old), every counter above it is fresh. The store
    /// keeps only the mark (see [`crate::store`]), so counters below it that were never
    /// accepted before a restart are refused too: the safe side.
    pub fn restored(mark: u64) -> Self {
        let mut ring = [u64::MAX; WORDS];
        let (w, _) = Self::slot(mark);
        let bit = mark % 64;
        // Only the counters at or below the mark in its own word; the words above the mark
        // are cleared by `accept` when the mark moves past them.
        ring[w] = if bit == 63 {
            u64::MAX
        } else {
            (1u64 << (bit + 1)) - 1
        };
        ReplayWindow {
            mark: Some(mark),
            ring,
        }
    }

    /// The highest accepted counter.
    pub fn high_water_mark(&self) -> Option<u64> {
        self.mark
    }

    /// What [`ReplayWindow::accept`] would answer now, without changing anything.
    pub fn check(&self, counter: u64) -> ReplayVerdict {
        let Some(mark) = self.mark else {
            return ReplayVerdict::Fresh;
        };
        if counter > mark {
            return ReplayVerdict::Fresh;
        }
        if mark - counter >= WINDOW {
            return ReplayVerdict::TooOld;
        }
        let (w, bit) = Self::slot(counter);
        if self.ring[w] & bit != 0 {
            ReplayVerdict::Duplicate
        } else {
            ReplayVerdict::Fresh
        }
    }

    /// Accepts `counter` if fresh, recording it.
    pub fn accept(&mut self, counter: u64) -> ReplayVerdict {
        let verdict = self.check(counter);
        if verdict != ReplayVerdict::Fresh {
            return verdict;
        }
        match self.mark {
            Some(mark) if counter <= mark => {}
            Some(mark) => {
                // Clear the words the mark moves past (at most the whole ring).
                let from = mark / 64 + 1;
                let to = counter / 64;
                let n = (to.saturating_sub(from) + 1).min(WORDS as u64);
                if to >= from {
                    for i in 0..n {
                        self.ring[((from + i) % WORDS as u64) as usize] = 0;
                    }
                }
                self.mark = Some(counter);
            }
            None => {
                self.mark = Some(counter);
            }
        }
        let (w, bit) = Self::slot(counter);
        self.ring[w] |= bit;
        ReplayVerdict::Fresh
    }
}

/// Originator → window. Keyed per originator so that routers can be partitioned by originator
/// without cross-node agreement (see design.md).
#[derive(Debug, Default)]
pub struct Replay {
    map: DashMap<Eui64, ReplayWindow>,
}

impl Replay {
    /// Read-only pre-check.
    pub fn check(&self, originator: Eui64, counter: u64) -> ReplayVerdict {
        self.map
            .get(&originator)
            .map_or(ReplayVerdict::Fresh, |w| w.check(counter))
    }

    /// Check-and-set, atomic per originator.
    pub fn accept(&self, originator: Eui64, counter: u64) -> ReplayVerdict {
        self.map.entry(originator).or_default().accept(counter)
    }

    /// Restores an originator's window from its durable mark (at start, before any request).
    pub fn restore(&self, originator: Eui64, mark: u64) {
        self.map.insert(originator, ReplayWindow::restored(mark));
    }

    /// Number of originators with a window.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no originator has a window.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The high-water mark of an originator (for persistence and reports).
    pub fn high_water_mark(&self, originator: Eui64) -> Option<u64> {
        self.map.get(&originator).and_then(|w| w.mark)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn first_any_then_window() {
        let mut w = ReplayWindow::default();
        let m = 1_000_000;
        assert_eq!(w.accept(m), ReplayVerdict::Fresh);
        assert_eq!(w.accept(m), ReplayVerdict::Duplicate);
        assert_eq!(w.accept(m - 1), ReplayVerdict::Fresh);
        assert_eq!(w.accept(m - WINDOW), ReplayVerdict::TooOld);
        assert_eq!(w.accept(m - WINDOW + 1), ReplayVerdict::Fresh);
        assert_eq!(w.accept(u64::MAX), ReplayVerdict::Fresh);
        assert_eq!(w.accept(u64::MAX), ReplayVerdict::Duplicate);
        assert_eq!(w.accept(m + 1), ReplayVerdict::TooOld);
        assert_eq!(w.accept(u64::MAX - 1), ReplayVerdict::Fresh);
    }

    #[test]
    fn restored_refuses_everything_up_to_the_mark_and_nothing_above() {
        for mark in [0u64, 1, 62, 63, 64, 65, 127, 1_000_000, WINDOW + 5] {
            let mut w = ReplayWindow::restored(mark);
            for c in mark.saturating_sub(200)..=mark {
                assert_ne!(w.check(c), ReplayVerdict::Fresh, "mark {mark} counter {c}");
            }
            for c in mark + 1..mark + 200 {
                assert_eq!(w.check(c), ReplayVerdict::Fresh, "mark {mark} counter {c}");
            }
            // Advancing past the mark's word keeps the lower counters refused.
            assert_eq!(w.accept(mark + 130), ReplayVerdict::Fresh);
            assert_eq!(w.accept(mark + 1), ReplayVerdict::Fresh);
            assert_eq!(w.accept(mark), ReplayVerdict::Duplicate);
            assert_ne!(w.check(mark.saturating_sub(1)), ReplayVerdict::Fresh);
        }
    }
}
