//! Stage 3: the four priority lanes and how verify workers choose among them.
//!
//! Each lane is a bounded `flume` channel. A full lane answers *busy* at once (the admission
//! stage's `try_send`); lower lanes have smaller capacities and shorter deadlines in the default
//! policy, so under overload L3 is shed first and L0/L1 last.
//!
//! Workers pick by **deficit round robin**: visiting lanes L0 → L3 in turn, a worker takes up to
//! the lane's weight (its [`WorkerShare`](crate::policy::WorkerShare)) before moving on, and
//! forfeits the rest of a quantum when the lane runs dry. Under saturation lane *l* therefore
//! gets `weight[l] / Σ weights` of the verify capacity (64:32:4:1 by default — L3 is never
//! starved), while an idle system serves whatever arrives at once. A plain biased select would
//! starve L3 forever under sustained L0–L2 load. Each worker keeps its own deficits, so the
//! scheduler needs no shared lock.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use flume::{Receiver, Sender, TryRecvError, TrySendError};

use crate::policy::Policy;

/// A priority lane.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Lane {
    /// Supply continuity, and every request an SRP sends under a revocation-delayed certificate.
    L0,
    /// Prepayment.
    L1,
    /// Other on-demand commands.
    L2,
    /// Bulk: reads, non-device, future-dated and scheduled requests.
    L3,
}

impl Lane {
    /// All lanes, highest priority first.
    pub const ALL: [Lane; 4] = [Lane::L0, Lane::L1, Lane::L2, Lane::L3];

    /// 0..=3.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.index())
    }
}

impl FromStr for Lane {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "L0" => Ok(Lane::L0),
            "L1" => Ok(Lane::L1),
            "L2" => Ok(Lane::L2),
            "L3" => Ok(Lane::L3),
            other => Err(format!("unknown lane {other:?}: expected L0, L1, L2 or L3")),
        }
    }
}

/// A lane number outside 0..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("lane {0} is not 0..=3")]
pub struct LaneOutOfRange(pub u8);

/// The lane of its index (the answer frame carries lanes as 0..=3).
impl TryFrom<u8> for Lane {
    type Error = LaneOutOfRange;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        match n {
            0 => Ok(Lane::L0),
            1 => Ok(Lane::L1),
            2 => Ok(Lane::L2),
            3 => Ok(Lane::L3),
            other => Err(LaneOutOfRange(other)),
        }
    }
}

impl From<Lane> for u8 {
    fn from(l: Lane) -> u8 {
        l as u8
    }
}

/// The four bounded channels (public so that benches and other front ends can reuse the
/// scheduler; the router wraps it).
#[derive(Debug)]
pub struct Lanes<T> {
    tx: [Sender<T>; 4],
    rx: [Receiver<T>; 4],
}

impl<T> Lanes<T> {
    /// Channels sized by the policy.
    pub fn new(policy: &Policy) -> Self {
        let pairs = Lane::ALL.map(|l| flume::bounded(policy.lane(l).capacity.get()));
        let tx = pairs.each_ref().map(|(t, _)| t.clone());
        let rx = pairs.map(|(_, r)| r);
        Lanes { tx, rx }
    }

    /// Queues an item; gives it back when the lane is full (answer *busy*).
    pub fn push(&self, lane: Lane, item: T) -> Result<(), T> {
        self.tx[lane.index()].try_send(item).map_err(|e| match e {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => t,
        })
    }

    /// Items queued in a lane now.
    pub fn len(&self, lane: Lane) -> usize {
        self.tx[lane.index()].len()
    }

    /// Takes up to `max - out.len()` items without blocking, by deficit round robin.
    pub fn fill(&self, drr: &mut Drr, out: &mut Vec<(Lane, T)>, max: usize) {
        let mut dry_visits = 0;
        while out.len() < max && dry_visits < 4 {
            let l = drr.cursor;
            if drr.deficit[l] == 0 {
                drr.deficit[l] = drr.weights[l];
            }
            match self.rx[l].try_recv() {
                Ok(item) => {
                    out.push((Lane::ALL[l], item));
                    dry_visits = 0;
                    drr.deficit[l] -= 1;
                    if drr.deficit[l] == 0 {
                        drr.advance();
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    drr.deficit[l] = 0;
                    drr.advance();
                    dry_visits += 1;
                }
            }
        }
    }

    /// Blocks up to `timeout` for an item from any lane.
    pub fn wait_any(&self, timeout: Duration) -> Option<(Lane, T)> {
        let mut sel = flume::Selector::new();
        for (i, rx) in self.rx.iter().enumerate() {
            sel = sel.recv(rx, move |r| r.ok().map(|t| (Lane::ALL[i], t)));
        }
        sel.wait_timeout(timeout).ok().flatten()
    }

    /// Takes anything left, without scheduling (used when shutting down).
    pub fn drain(&self) -> Vec<(Lane, T)> {
        Lane::ALL
            .iter()
            .flat_map(|l| self.rx[l.index()].drain().map(move |t| (*l, t)))
            .collect()
    }
}

/// One worker's deficit-round-robin state.
#[derive(Clone, Debug)]
pub struct Drr {
    weights: [u32; 4],
    deficit: [u32; 4],
    cursor: usize,
}

impl Drr {
    /// Fresh deficits, weights from the policy, starting at L0.
    pub fn new(policy: &Policy) -> Self {
        Drr {
            weights: Lane::ALL.map(|l| policy.lane(l).weight.get()),
            deficit: [0; 4],
            cursor: 0,
        }
    }

    fn advance(&mut self) {
        self.cursor = (self.cursor + 1) % 4;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lanes_convert_to_and_from_their_wire_number() {
        for lane in Lane::ALL {
            assert_eq!(Lane::try_from(u8::from(lane)), Ok(lane));
        }
        assert_eq!(Lane::try_from(4), Err(LaneOutOfRange(4)));
    }

    /// Under saturation each lane gets its weight's share, and L3 is served in every round.
    #[test]
    fn drr_shares_follow_weights() {
        let policy = Policy::default();
        let lanes: Lanes<u32> = Lanes::new(&policy);
        for l in Lane::ALL {
            for i in 0..200 {
                lanes.push(l, i).unwrap();
            }
        }
        let mut drr = Drr::new(&policy);
        let mut out = Vec::new();
        // Two full rounds of the default quanta 64:32:4:1.
        lanes.fill(&mut drr, &mut out, 202);
        let count = |l| out.iter().filter(|(x, _)| *x == l).count();
        assert_eq!(
            [
                count(Lane::L0),
                count(Lane::L1),
                count(Lane::L2),
                count(Lane::L3)
            ],
            [128, 64, 8, 2]
        );
        // Highest lane first.
        assert!(out[..8].iter().all(|(l, _)| *l == Lane::L0));
    }

    #[test]
    fn idle_lanes_do_not_hold_back_others() {
        let policy = Policy::default();
        let lanes: Lanes<u32> = Lanes::new(&policy);
        for i in 0..20 {
            lanes.push(Lane::L3, i).unwrap();
        }
        let mut out = Vec::new();
        lanes.fill(&mut Drr::new(&policy), &mut out, 8);
        assert_eq!(out.len(), 8);
        assert!(out.iter().all(|(l, _)| *l == Lane::L3));
    }
}
