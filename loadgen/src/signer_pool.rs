//! Signing ahead of the schedule on background OS threads.
//!
//! ECDSA signing costs tens of microseconds (over a hundred with plain `p256`; far fewer with the
//! fast signer used here, `dcc_signing::sign_fast`), too much to do at send time in an open-loop
//! generator. Requests are therefore signed ahead by a small pool of threads into one bounded
//! channel per sender task. Sender `j` sends requests `j, j+S, j+2S, …` (S senders), and its
//! channel receives them in exactly that order, so a sender never waits on a request that
//! another thread happens to sign late. Each thread serves a fixed subset of the senders and
//! always signs for the stream whose next request is due first.
//!
//! Counters come from the originator's atomic counter at signing time: fresh and increasing;
//! across threads two requests of one originator may be *sent* slightly out of counter order,
//! which a router with a reordering window must (and does) tolerate.
//!
//! If a sender finds its channel empty when a request is due, signing is the bottleneck: the
//! sender counts it ("starved") and the report says so.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dcc_signing::envelope::{encode_unsigned, Header, SIGNATURE_LEN};
use dcc_signing::{FastSigner, Signer};

use crate::population::World;
use crate::scenario::Attack;
use crate::schedule::Schedule;
use crate::target::WireForm;
use crate::workload::{Draft, SignWith, Workload};

/// A request ready to send.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Position in the schedule (gives the intended send time).
    pub index: u64,
    /// Schedule phase.
    pub phase: usize,
    /// Tag index.
    pub tag: usize,
    /// The signed envelope or DUIS document (empty for a replay: the sender fills it in).
    pub bytes: Vec<u8>,
    /// DUIS Signed Pre-Commands: the CV 4 form sent to the Transform service first.
    pub transform: Option<Vec<u8>>,
    /// The User whose connection carries it (the originator).
    pub via: Option<usize>,
    /// A replay of an earlier accepted request.
    pub replay: bool,
}

/// Counters shared by the signing threads.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Requests prepared.
    pub signed: AtomicU64,
    /// Nanoseconds spent preparing them.
    pub busy_ns: AtomicU64,
    /// Signing failures (encode errors): such requests are skipped.
    pub failed: AtomicU64,
}

/// The running pool.
#[derive(Debug)]
pub struct SignerPool {
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    stats: Arc<PoolStats>,
    threads: usize,
}

fn body(len: usize, index: u64) -> Vec<u8> {
    // A recognisable, index-dependent body: not random (no cost), not constant (no accidental
    // dedup anywhere).
    (0..len)
        .map(|k| (index as u8).wrapping_add(k as u8).wrapping_mul(31))
        .collect()
}

/// Signs an envelope with the fast signer: the same bytes `Signer::sign_envelope` makes (RFC 6979
/// nonces), several times faster, and not constant-time — fine for generated load with demo
/// keys, see `dcc_signing::sign_fast`. The plain signer stands in should the fast one be
/// unavailable.
fn sign_envelope(signer: &Signer, header: &Header, body: &[u8]) -> Option<Vec<u8>> {
    match FastSigner::from_signer(signer) {
        Some(fast) => fast.sign_envelope(header, body).ok(),
        None => signer.sign_envelope(header, body).ok(),
    }
}

/// Signs one draft (applying its deliberate defect).
pub fn sign_draft(world: &World, draft: &Draft, index: u64) -> Option<Vec<u8>> {
    let signer = match draft.sign_with {
        SignWith::User(u) => &world.users.get(u)?.signer,
        SignWith::UserKey(u, k) => &world.users.get(u)?.more_keys.get(k)?.0,
        SignWith::Impostor => &world.impostor.0,
    };
    if draft.attack == Some(Attack::ForgedSignature) {
        // No ECDSA: the header and body, then 64 index-dependent bytes. Every byte is 0x01..=0x7F
        // so r and s are in range and the target does a full verification to refuse them.
        let mut bytes = encode_unsigned(&draft.header, &body(draft.body_len, index)).ok()?;
        let mut x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        bytes.extend((0..SIGNATURE_LEN).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8 & 0x7E) | 1
        }));
        return Some(bytes);
    }
    let mut bytes = sign_envelope(signer, &draft.header, &body(draft.body_len, index))?;
    if draft.attack == Some(Attack::BadSignature) {
        // Flip one bit of `s`: the envelope still decodes, the signature does not verify.
        let n = bytes.len();
        bytes[n - SIGNATURE_LEN / 2] ^= 0x01;
    }
    Some(bytes)
}

/// Signs `draft` in the workload's wire form: (request, transform request).
fn encode(workload: &Workload, draft: &Draft, index: u64) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    match workload.wire() {
        WireForm::Duis(enc) => enc
            .encode(workload.world(), draft, index)
            .map(|w| (w.document, w.transform)),
        _ => sign_draft(workload.world(), draft, index).map(|b| (b, None)),
    }
}

fn prepare(workload: &Workload, schedule: &Schedule, index: u64) -> Option<Prepared> {
    let phase = schedule.phase_of(index);
    let draft = workload.draft(index, phase)?;
    let replay = draft.attack == Some(Attack::Replay);
    let (bytes, transform) = if replay {
        (Vec::new(), None)
    } else {
        encode(workload, &draft, index)?
    };
    Some(Prepared {
        index,
        phase,
        tag: draft.tag,
        bytes,
        transform,
        via: draft.via,
        replay,
    })
}

impl SignerPool {
    /// Starts `threads` signing threads (at most one per sender) feeding `senders` channels of
    /// `capacity` requests each. Returns the pool and the receivers, one per sender.
    pub fn start(
        workload: Arc<Workload>,
        schedule: Arc<Schedule>,
        senders: usize,
        threads: usize,
        capacity: usize,
    ) -> (SignerPool, Vec<flume::Receiver<Prepared>>) {
        let senders = senders.max(1);
        let threads = threads.clamp(1, senders);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(PoolStats::default());
        let mut txs: Vec<Option<flume::Sender<Prepared>>> = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..senders {
            let (tx, rx) = flume::bounded(capacity.max(1));
            txs.push(Some(tx));
            rxs.push(rx);
        }
        let mut handles = Vec::new();
        for k in 0..threads {
            let streams: Vec<(u64, flume::Sender<Prepared>)> = (0..senders)
                .filter(|j| j % threads == k)
                .filter_map(|j| txs[j].take().map(|tx| (j as u64, tx)))
                .collect();
            let (workload, schedule, stop, stats) = (
                workload.clone(),
                schedule.clone(),
                stop.clone(),
                stats.clone(),
            );
            let step = senders as u64;
            let spawned = std::thread::Builder::new()
                .name(format!("loadgen-sign-{k}"))
                .spawn(move || {
                    let mut streams: Vec<(u64, Option<flume::Sender<Prepared>>)> =
                        streams.into_iter().map(|(i, tx)| (i, Some(tx))).collect();
                    let n = schedule.len();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(s) = streams
                            .iter_mut()
                            .filter(|(i, tx)| *i < n && tx.is_some())
                            .min_by_key(|(i, _)| *i)
                        else {
                            break;
                        };
                        let index = s.0;
                        s.0 += step;
                        let t0 = Instant::now();
                        let item = prepare(&workload, &schedule, index);
                        stats
                            .busy_ns
                            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        let Some(item) = item else {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        stats.signed.fetch_add(1, Ordering::Relaxed);
                        let sent = s.1.as_ref().is_some_and(|tx| tx.send(item).is_ok());
                        if !sent || s.0 >= n {
                            // Receiver gone, or stream complete: dropping the sender ends it.
                            s.1 = None;
                        }
                    }
                });
            if let Ok(h) = spawned {
                handles.push(h);
            }
        }
        (
            SignerPool {
                handles,
                stop,
                stats,
                threads,
            },
            rxs,
        )
    }

    /// Number of signing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<PoolStats> {
        &self.stats
    }

    /// Blocks until every channel holds `min(its capacity, its remaining requests)` requests,
    /// or the threads have finished, or `timeout` passes. Returns how long it waited.
    pub fn wait_prefilled(
        &self,
        rxs: &[flume::Receiver<Prepared>],
        schedule_len: u64,
        timeout: Duration,
    ) -> Duration {
        let t0 = Instant::now();
        let s = rxs.len() as u64;
        loop {
            let full = rxs.iter().enumerate().all(|(j, rx)| {
                let stream_len = schedule_len / s + u64::from((j as u64) < schedule_len % s);
                let cap = rx.capacity().unwrap_or(usize::MAX) as u64;
                rx.len() as u64 >= cap.min(stream_len)
            });
            let done = self.handles.iter().all(|h| h.is_finished());
            if full || done || t0.elapsed() >= timeout {
                return t0.elapsed();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the threads and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// Measures how many requests one thread prepares per second on this machine (~50 ms), in
/// the workload's wire form and mix (envelopes, or DUIS documents — two for a Signed
/// Pre-Command). Uses fresh counters, which the run then skips.
pub fn measure_sign_rate(workload: &Workload) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_millis(50) || n < 20 {
        let Some(draft) = workload.draft(n, 0) else {
            return 0.0;
        };
        if encode(workload, &draft, n).is_none() {
            return 0.0;
        }
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}
