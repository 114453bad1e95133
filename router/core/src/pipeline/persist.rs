//! Stage 5b: persist — *accepted* means durable. Runs only with a durable [`Store`](crate::store::Store).
//!
//! A request that passed commit (signature verified, certificate and registration re-checked,
//! counter accepted in memory) is not dispatched, and so not answered I0/I99, until the
//! anti-replay mark that refuses its replay is on disk. One thread group-commits: it takes
//! every request waiting, writes one mark per originator (the highest of the group) in one
//! transaction with one fsync, then hands the group to the dispatcher.
//!
//! | check | when | refusal |
//! |---|---|---|
//! | the group's marks are durable | one store transaction per group | R12 `store-write-failed` for the whole group (nothing dispatched) |
//! | the certificate still allows the request (revoked, delay ended, expired while the group was written) | per request, under the certificate's read lock, at hand-off | as commit: R3 / R4 / R5 |
//! | the device is still registered to the delegating Supplier (MP185) | per request, at hand-off | E4 |
//!
//! Answers: the group's are delivered together after its hand-off (the same batch a verify
//! worker opens, `pipeline/outbox.rs`), so that an ingress using
//! [`after_answers`](crate::after_answers) wakes each stream's writer once per group.
//!
//! Why a dedicated thread: a verify worker that waited for its own fsync would idle for the
//! sync's duration; here workers go on verifying while the previous group syncs, and the
//! group grows with the load, so the fsync cost per request falls as throughput rises.
//!
//! Why the re-check: the hand-off moved out from under the lock commit held, so a revocation
//! answered while the group was being written must still win (the guarantee in
//! [`crate::state::certstore`]). A refused request's counter stays used: its sender sends
//! again with a new one.
//!
//! After a failed write the counters of the refused group stay used in memory too (refusing
//! their replay is the safe side); the next group retries the store, which reopens itself,
//! so the router recovers as soon as writing works again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dcc_signing::Eui64;

use super::{commit, dispatch, effects, outbox, Job, Shared};
use crate::response::ResponseCode;

/// Verified requests that may wait for their group commit. Bounded so that a stalled disk
/// cannot grow memory without limit: past it, requests are answered busy (R10
/// `persist-queue-full`). Never a blocking send: the commit stage sends under the
/// certificate's read lock, and a writer (`revoke`) waiting for that lock would block the
/// persist thread's own read lock, which drains the queue.
pub const QUEUE_CAPACITY: usize = 1 << 16;

/// Most requests made durable by one fsync.
pub const MAX_GROUP: usize = 4096;

/// A group at least this large means load: gather for [`GATHER_FOR`] before committing.
const GATHER_FROM: usize = 8;

/// How long a group under load waits for more requests before its commit.
const GATHER_FOR: Duration = Duration::from_millis(1);

/// Takes what waits in the queue, up to [`MAX_GROUP`] in the group.
fn drain(rx: &flume::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(p) => group.push(p),
            Err(_) => break,
        }
    }
}

/// How long the idle thread sleeps before looking at the stop flag again.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// The sending side, held by the commit stage: committed requests waiting for their group's
/// fsync.
pub(crate) type PersistQueue = flume::Sender<Job>;

/// Starts the persist thread; it exits once the router stops and its queue is empty.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    rx: flume::Receiver<Job>,
) -> std::io::Result<JoinHandle<()>> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("dcc-persist".into())
        .spawn(move || run(&shared, &rx))
}

fn run(shared: &Shared, rx: &flume::Receiver<Job>) {
    // DCC_PERSIST_STATS=1: one line at exit with group count and where the time went.
    let mut stats = Stats::default();
    let mut group: Vec<Job> = Vec::with_capacity(256);
    let mut last_error_log: Option<Instant> = None;
    loop {
        match rx.recv_timeout(IDLE_POLL) {
            Ok(p) => group.push(p),
            Err(flume::RecvTimeoutError::Timeout) => {
                // Workers are joined before this thread is: once they stopped, nothing more
                // arrives.
                if shared.stopping.load(Ordering::Acquire) && shared.workers_done() {
                    break;
                }
                continue;
            }
            Err(flume::RecvTimeoutError::Disconnected) => break,
        }
        drain(rx, &mut group);
        // Under load (a group already this large) gather a little longer: every commit's
        // fsync costs CPU to submit (on a VM, a doorbell write that exits to the hypervisor:
        // a quarter of this thread's time in the saturated bench) that the verify workers
        // need. Measured side by side (BENCHMARKS.md, durable state): groups of ≈ 200 instead
        // of ≈ 40, saturated durable throughput 61–83 k → 84–110 k req/s. At 1,000 req/s a
        // group is a request or two and commits at once; eight wait only behind a disk stall.
        if group.len() >= GATHER_FROM && group.len() < MAX_GROUP {
            std::thread::sleep(GATHER_FOR);
            drain(rx, &mut group);
        }
        stats.groups += 1;
        stats.requests += group.len() as u64;
        // A panicking store or dispatcher must not take the thread with it: the group's
        // replies answer R11 when dropped.
        let run = std::panic::AssertUnwindSafe(|| {
            persist_group(shared, &mut group, &mut last_error_log, &mut stats);
        });
        if std::panic::catch_unwind(run).is_err() {
            group.clear();
        }
    }
    if std::env::var_os("DCC_PERSIST_STATS").is_some() {
        eprintln!("{stats:?}");
    }
}

/// Where the persist thread's time went.
#[derive(Debug, Default)]
struct Stats {
    groups: u64,
    requests: u64,
    store: Duration,
    hand_off: Duration,
}

fn persist_group(
    shared: &Shared,
    group: &mut Vec<Job>,
    last_error_log: &mut Option<Instant>,
    stats: &mut Stats,
) {
    // The group's answers are delivered together once it is handed off, as a verify worker
    // delivers its batch's ([`outbox`]): an ingress forwarding them wakes each stream's writer
    // once per group, not once per answer, and no callback runs under a certificate's lock.
    let _answers = outbox::Batch::open();
    let mut marks: HashMap<Eui64, u64> = HashMap::new();
    for job in group.iter() {
        let id = job.header.request_id;
        let m = marks.entry(id.originator).or_insert(id.counter);
        *m = (*m).max(id.counter);
    }
    let marks: Vec<(Eui64, u64)> = marks.into_iter().collect();
    let t = Instant::now();
    let stored = shared.store.commit_replay(&marks);
    stats.store += t.elapsed();
    match stored {
        Ok(()) => {
            let t = Instant::now();
            for job in group.drain(..) {
                hand_off_checked(shared, job);
            }
            stats.hand_off += t.elapsed();
        }
        Err(e) => {
            // One line per second at most: a full disk under load would flood the log.
            if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::error!(error = %e, requests = group.len(), "anti-replay state not durable: refusing the group R12");
                *last_error_log = Some(Instant::now());
            }
            for job in group.drain(..) {
                job.reply
                    .send(ResponseCode::NotDurable, Some("store-write-failed"));
            }
        }
    }
}

/// Hands a durable request to the dispatcher after re-checking the certificate (and, for a
/// delegated request, the registration) under the certificate's read lock.
fn hand_off_checked(shared: &Shared, job: Job) {
    let now_unix = shared.clock.now_unix();
    let cert = Arc::clone(&job.cert);
    let mut effect = None;
    let refused =
        cert.with_status(
            |status| match commit::still_allowed(shared, &job, status, now_unix) {
                Ok(cert_use) => {
                    effect = dispatch::hand_off(shared, job, cert_use);
                    None
                }
                Err((code, detail)) => Some((job, code, detail)),
            },
        );
    if let Some((job, code, detail)) = refused {
        job.reply.send(code, Some(detail));
    }
    if let Some(e) = effect {
        effects::apply(shared, e);
    }
}

/// Sends a committed request to the persist thread (from commit, under the cert lock).
pub(crate) fn enqueue(queue: &PersistQueue, job: Job) {
    match queue.try_send(job) {
        Ok(()) => {}
        Err(flume::TrySendError::Full(job)) => {
            job.reply
                .send(ResponseCode::Busy, Some("persist-queue-full"));
        }
        // The persist thread is gone (it only leaves at shutdown).
        Err(flume::TrySendError::Disconnected(job)) => {
            job.reply
                .send(ResponseCode::Unavailable, Some("shutting-down"));
        }
    }
}
