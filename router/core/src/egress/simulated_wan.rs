//! A simulated SM WAN: each command takes a latency drawn from a model, and the commands of one
//! device are serialised (a device handles one command at a time, in dispatch order).
//!
//! The device's SM WAN state (DP094) shapes it: a device without WAN is answered E20 at once
//! (admission already refuses WAN-only variants to it; this covers a state changed in flight);
//! a poor WAN takes [`POOR_LATENCY_FACTOR`] times the drawn latency and loses
//! [`POOR_LOSS_PER_MILLE`] ‰ of its commands (E21, as a device that never answers).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dcc_signing::Eui64;

use super::{Command, DispatchReply, Dispatcher};
use crate::state::WanState;

/// How many times slower a poor SM WAN is than the model's draw.
pub const POOR_LATENCY_FACTOR: u32 = 4;

/// How many commands in a thousand a poor SM WAN loses (answered E21). Ten per cent: the
/// poor-WAN weather of March 2018 that DP094 cites pushed "over 9%" of one Supplier's
/// messages to UTRNs.
pub const POOR_LOSS_PER_MILLE: u64 = 100;

/// Latency model: `base + uniform(0, jitter)`, per command, from a seeded generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanModel {
    /// Fixed part.
    pub base: Duration,
    /// Random part's upper bound.
    pub jitter: Duration,
    /// Seed (runs are repeatable).
    pub seed: u64,
}

impl Default for WanModel {
    /// No latency: commands complete at hand-off (for benches of the router itself).
    fn default() -> Self {
        WanModel {
            base: Duration::ZERO,
            jitter: Duration::ZERO,
            seed: 1,
        }
    }
}

struct Pending {
    device: Eui64,
    wan: WanState,
    reply: DispatchReply,
}

/// The default dispatcher. With a zero model it answers I0 at once; otherwise a timer thread
/// completes each command when its device is free and its latency has passed.
#[derive(Debug)]
pub struct SimulatedWan {
    model: WanModel,
    tx: Option<flume::Sender<Pending>>,
    timer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("device", &self.device)
            .finish()
    }
}

impl Default for SimulatedWan {
    fn default() -> Self {
        Self::new(WanModel::default())
    }
}

impl SimulatedWan {
    /// A WAN following `model`.
    pub fn new(model: WanModel) -> Self {
        if model.base.is_zero() && model.jitter.is_zero() {
            return SimulatedWan {
                model,
                tx: None,
                timer: Mutex::new(None),
            };
        }
        let (tx, rx) = flume::unbounded();
        let timer = std::thread::Builder::new()
            .name("dcc-sim-wan".into())
            .spawn(move || run_timer(model, rx))
            .ok();
        SimulatedWan {
            model,
            tx: timer.as_ref().map(|_| tx),
            timer: Mutex::new(timer),
        }
    }

    /// The model.
    pub fn model(&self) -> WanModel {
        self.model
    }
}

impl Drop for SimulatedWan {
    fn drop(&mut self) {
        self.tx = None; // disconnects: the timer finishes what it holds and exits
        if let Some(h) = self.timer.get_mut().ok().and_then(Option::take) {
            let _ = h.join();
        }
    }
}

impl Dispatcher for SimulatedWan {
    fn dispatch(&self, command: Command, reply: DispatchReply) {
        if command.wan == WanState::None {
            reply.unreachable();
            return;
        }
        match &self.tx {
            // The zero model is for benches of the router itself: a poor WAN is not slowed
            // (there is no latency to multiply) nor made lossy (runs stay exact).
            None => reply.delivered(),
            Some(tx) => {
                let p = Pending {
                    device: command.header.request_id.target,
                    wan: command.wan,
                    reply,
                };
                if let Err(flume::SendError(p)) = tx.send(p) {
                    p.reply.unreachable();
                }
            }
        }
    }
}

fn run_timer(model: WanModel, rx: flume::Receiver<Pending>) {
    let mut rng = model.seed | 1;
    let mut next = move || {
        // xorshift64*: cheap, repeatable jitter.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let jitter_ns = u64::try_from(model.jitter.as_nanos()).unwrap_or(u64::MAX);
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, (DispatchReply, bool)> = HashMap::new();
    let mut device_free: HashMap<Eui64, Instant> = HashMap::new();
    let mut seq = 0u64;
    let mut open = true;
    while open || !heap.is_empty() {
        let now = Instant::now();
        while let Some(Reverse((due, id))) = heap.peek().copied() {
            if due > now {
                break;
            }
            heap.pop();
            match waiting.remove(&id) {
                Some((r, false)) => r.delivered(),
                Some((r, true)) => r.no_response(),
                None => {}
            }
        }
        if heap.is_empty() {
            device_free.retain(|_, t| *t > now);
        }
        let got = match (heap.peek(), open) {
            (Some(Reverse((due, _))), true) => rx.recv_deadline(*due),
            (Some(Reverse((due, _))), false) => {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                continue;
            }
            (None, true) => rx.recv().map_err(|_| flume::RecvTimeoutError::Disconnected),
            (None, false) => break,
        };
        match got {
            Ok(p) => {
                let now = Instant::now();
                let j = if jitter_ns == 0 {
                    0
                } else {
                    next() % jitter_ns
                };
                let mut latency = model.base + Duration::from_nanos(j);
                let mut lost = false;
                if p.wan == WanState::Poor {
                    latency = latency.saturating_mul(POOR_LATENCY_FACTOR);
                    lost = next() % 1000 < POOR_LOSS_PER_MILLE;
                }
                let start = device_free.get(&p.device).map_or(now, |t| (*t).max(now));
                let due = start + latency;
                device_free.insert(p.device, due);
                seq += 1;
                heap.push(Reverse((due, seq)));
                waiting.insert(seq, (p.reply, lost));
            }
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => open = false,
        }
    }
}
