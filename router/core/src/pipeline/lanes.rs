//! Stage 3: the four priority lanes and how verify workers choose among them.
//!
//! Each lane is a bounded `flume` channel. A full lane answers *busy* at once (the admission
//! stage's `try_send`); lower lanes have smaller capacities and shorter deadlines in the default
//! policy, so under overload L3 is shed first and L0/L1 last.
//!
//! Workers pick by **weighted rounds, highest lane first**: in each round a lane may give up to
//! its weight (its [`WorkerShare`](crate::policy::WorkerShare)) requests, and a worker always
//! takes from the highest lane that has requests *and* quota left in the round; the round ends
//! (every quota refilled) when no lane with requests has quota left. Under saturation lane *l*
//! therefore gets `weight[l] / Σ weights` of the verify capacity (64:32:4:1 by default — L3 is
//! served in every round, never starved), while an idle system serves whatever arrives at once.
//!
//! Why not plain deficit round robin, which gives the same shares: DRR serves the lanes in
//! turn, so a supply-continuity request arriving while a worker is in L1's quantum waited for
//! the rest of it, and L2's and L3's (up to 36 verifications: ≈ 8.5 ms with plain `p256`), and
//! its p99 at twice capacity rose 3.4–7× over steady (loadgen `overload` over QUIC). Here it
//! waits only for the batch in progress, as long as L0 has quota in the round — which it has
//! unless L0 alone is saturating the workers. A plain biased select would starve L3 forever
//! under sustained L0–L2 load; the quotas bound every lane's share as DRR did. Each worker
//! keeps its own round, so the scheduler needs no shared lock.

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

    /// Takes up to `max - out.len()` items without blocking: each from the highest lane with
    /// items and quota left in the worker's round (see the module docs).
    pub fn fill(&self, round: &mut Round, out: &mut Vec<(Lane, T)>, max: usize) {
        // Lanes found empty during this call: not asked again until the next call (a request
        // arriving meanwhile is taken by the next batch, microseconds later).
        let mut dry = [false; 4];
        while out.len() < max {
            match (0..4).find(|&l| !dry[l] && round.used[l] < round.weights[l]) {
                Some(l) => match self.rx[l].try_recv() {
                    Ok(item) => {
                        out.push((Lane::ALL[l], item));
                        round.used[l] += 1;
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => dry[l] = true,
                },
                // Every lane is empty or out of quota.
                None if dry.iter().all(|d| *d) => break,
                // Lanes with requests have spent their quotas: the next round.
                None => round.used = [0; 4],
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

/// One worker's round: what each lane has given of its weight so far.
#[derive(Clone, Debug)]
pub struct Round {
    weights: [u32; 4],
    used: [u32; 4],
}

impl Round {
    /// A fresh round, weights from the policy.
    pub fn new(policy: &Policy) -> Self {
        Round {
            weights: Lane::ALL.map(|l| policy.lane(l).weight.get()),
            used: [0; 4],
        }
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

    /// The default policy's lanes with `n` requests (numbered 0..n) queued in each of `which`.
    fn lanes_holding(policy: &Policy, which: &[Lane], n: u32) -> Lanes<u32> {
        let lanes = Lanes::new(policy);
        for &l in which {
            for i in 0..n {
                lanes.push(l, i).unwrap();
            }
        }
        lanes
    }

    /// Under saturation each lane gets its weight's share, and L3 is served in every round.
    #[test]
    fn drr_shares_follow_weights() {
        let policy = Policy::default();
        let lanes = lanes_holding(&policy, &Lane::ALL, 200);
        let mut round = Round::new(&policy);
        let mut out = Vec::new();
        // Two full rounds of the default quanta 64:32:4:1.
        lanes.fill(&mut round, &mut out, 202);
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

    /// A request arriving in a higher lane is taken by the next batch, not after the lane in
    /// progress has given its quantum (as deficit round robin did).
    #[test]
    fn a_higher_lane_is_served_at_the_next_batch_mid_round() {
        let policy = Policy::default();
        let lanes = lanes_holding(&policy, &[Lane::L1, Lane::L2, Lane::L3], 200);
        let mut round = Round::new(&policy);
        let mut out = Vec::new();
        lanes.fill(&mut round, &mut out, 8);
        assert!(out.iter().all(|(l, _)| *l == Lane::L1), "{out:?}");
        out.clear();
        lanes.push(Lane::L0, 7).unwrap();
        lanes.fill(&mut round, &mut out, 2);
        assert_eq!(out[0], (Lane::L0, 7));
        assert_eq!(out[1].0, Lane::L1, "then L1 goes on with its quota");
    }

    /// A lane that never runs dry cannot starve the others: whatever stays backlogged, each
    /// round gives every lane with requests its weight, in batches of any size.
    #[test]
    fn every_lane_gets_its_quota_in_every_round_even_under_a_flood_above_it() {
        let policy = Policy::default();
        let lanes = lanes_holding(&policy, &Lane::ALL, 1000);
        let mut round = Round::new(&policy);
        let mut got = [0usize; 4];
        let mut out = Vec::new();
        // 20 rounds of 101, taken two at a time while L0 and L1 are kept full.
        for _ in 0..(20 * 101 / 2) {
            lanes.fill(&mut round, &mut out, 2);
            for (l, _) in out.drain(..) {
                got[l.index()] += 1;
                if l <= Lane::L1 {
                    lanes.push(l, 0).unwrap();
                }
            }
        }
        assert_eq!(got, [20 * 64, 20 * 32, 20 * 4, 20]);
    }

    #[test]
    fn idle_lanes_do_not_hold_back_others() {
        let policy = Policy::default();
        let lanes: Lanes<u32> = Lanes::new(&policy);
        for i in 0..20 {
            lanes.push(Lane::L3, i).unwrap();
        }
        let mut out = Vec::new();
        lanes.fill(&mut Round::new(&policy), &mut out, 8);
        assert_eq!(out.len(), 8);
        assert!(out.iter().all(|(l, _)| *l == Lane::L3));
    }
}
