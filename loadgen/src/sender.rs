//! The open-loop sender: one task per stream of prepared requests.
//!
//! For each request the task waits until its *intended* time (from the [`Schedule`]), hands it
//! to the target without waiting for earlier answers, and records the answer when it comes:
//! corrected latency from the intended time, raw latency from the actual hand-over. While it
//! waits it keeps collecting answers, so a slow target never slows the offered rate — it shows
//! up as latency, and as *dropped* sends once `max_in_flight` is reached.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::outcome::{Outcome, OutcomeClass};
use crate::recorder::Recorder;
use crate::schedule::Schedule;
use crate::signer_pool::Prepared;
use crate::target::{Request, Target};

/// A send later than this after its intended time counts as *late*. Tokio's timer has 1 ms
/// resolution (a wake-up is typically 1–2 ms after its deadline), so anything below 5 ms is
/// timer granularity and scheduling noise, not generator lag.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(5);

/// How many accepted requests a sender keeps for replay attacks.
const REPLAY_RING: usize = 512;

/// Per-sender settings.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Most requests this sender keeps in flight; beyond, sends are dropped and counted.
    pub max_in_flight: usize,
    /// A request unanswered this long after its send is recorded as an error (`timeout`).
    pub request_timeout: Duration,
    /// Keep copies of some accepted requests so that replay attacks can resend them.
    pub keep_replays: bool,
}

/// Gauges shared with the progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests in flight over all senders.
    pub in_flight: AtomicI64,
}

struct Done {
    phase: usize,
    tag: usize,
    outcome: Outcome,
    corrected: Duration,
    raw: Duration,
    copy: Option<Vec<u8>>,
}

fn handle(
    done: Result<Done, tokio::task::JoinError>,
    recorder: &Recorder,
    ring: &mut VecDeque<Vec<u8>>,
    live: &Live,
) {
    live.in_flight.fetch_sub(1, Ordering::Relaxed);
    match done {
        Ok(d) => {
            recorder.with(|s| s.record_outcome(d.phase, d.tag, &d.outcome, d.corrected, d.raw));
            if let (Some(copy), OutcomeClass::Ok) = (d.copy, d.outcome.class) {
                if ring.len() >= REPLAY_RING {
                    ring.pop_front();
                }
                ring.push_back(copy);
            }
        }
        Err(_) => recorder.with(|s| {
            s.record_outcome(
                0,
                0,
                &Outcome::error("task-failed"),
                Duration::ZERO,
                Duration::ZERO,
            )
        }),
    }
}

/// Runs one sender until its stream ends and every answer is in.
pub async fn run_sender<C: Clock>(
    rx: flume::Receiver<Prepared>,
    schedule: Arc<Schedule>,
    target: Arc<dyn Target>,
    clock: C,
    recorder: Recorder,
    cfg: SenderConfig,
    live: Arc<Live>,
) {
    let mut set: JoinSet<Done> = JoinSet::new();
    let mut ring: VecDeque<Vec<u8>> = VecDeque::new();
    loop {
        let item = match rx.try_recv() {
            Ok(it) => it,
            Err(flume::TryRecvError::Disconnected) => break,
            Err(flume::TryRecvError::Empty) => {
                // Nothing signed yet: wait for it, collecting answers meanwhile.
                let next = loop {
                    tokio::select! {
                        r = rx.recv_async() => break r.ok(),
                        Some(d) = set.join_next(), if !set.is_empty() => {
                            handle(d, &recorder, &mut ring, &live);
                        }
                    }
                };
                let Some(it) = next else { break };
                if clock.now() > schedule.at(it.index) + LATE_THRESHOLD {
                    recorder.with(|s| s.record_starved(it.phase));
                }
                it
            }
        };
        let intended = schedule.at(item.index);
        if clock.now() < intended {
            let sleep = clock.sleep_until(intended);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut sleep => break,
                    Some(d) = set.join_next(), if !set.is_empty() => {
                        handle(d, &recorder, &mut ring, &live);
                    }
                }
            }
        }
        if set.len() >= cfg.max_in_flight {
            recorder.with(|s| s.record_drop(item.phase));
            continue;
        }
        let bytes = if item.replay {
            if ring.is_empty() {
                recorder.with(|s| s.record_replay_unavailable(item.phase));
                continue;
            }
            ring[(item.index % ring.len() as u64) as usize].clone()
        } else {
            item.bytes
        };
        // Keep copies of every request until the ring is full (so replays can start early),
        // then of one in eight (so it keeps moving without copying every request).
        let copy =
            (cfg.keep_replays && !item.replay && (ring.len() < REPLAY_RING || item.index % 8 == 0))
                .then(|| bytes.clone());
        let sent_at = clock.now();
        let lag = sent_at.saturating_sub(intended);
        recorder.with(|s| s.record_send(item.phase, lag, lag > LATE_THRESHOLD));
        let fut = target.send(Request {
            bytes,
            // None for a replay: it resends the request alone (a Signed Pre-Command without
            // its transform, which the router refuses E12).
            transform: item.transform,
            via: item.via,
        });
        let deadline = sent_at + cfg.request_timeout;
        let c = clock.clone();
        let (phase, tag) = (item.phase, item.tag);
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        set.spawn(async move {
            let outcome = tokio::select! {
                o = fut => o,
                _ = c.sleep_until(deadline) => Outcome::error("timeout"),
            };
            let end = c.now();
            Done {
                phase,
                tag,
                outcome,
                corrected: end.saturating_sub(intended),
                raw: end.saturating_sub(sent_at),
                copy,
            }
        });
    }
    while let Some(d) = set.join_next().await {
        handle(d, &recorder, &mut ring, &live);
    }
}
