//! Stage 4: the verify workers — OS threads, never tokio tasks, so ECDSA never runs on an
//! async reactor.
//!
//! Each worker takes a small batch (by weighted rounds over the lanes, highest first, see
//! [`super::lanes`]), answers *busy* for requests that waited past their lane's deadline,
//! hashes the rest and verifies them in one [`Verifier::verify_batch`] call (backends that
//! share work across a batch pay off here), then passes the good ones to the commit stage.
//!
//! A batch is also bounded in *time*: its answers leave together after its last commit (see
//! `pipeline/outbox.rs`), and a request that arrives in L0 while one runs waits for it, so a
//! batch of 8 plain-`p256` verifications (≈ 2 ms) would add up to two batches' time to every
//! prepayment and supply-continuity answer under load. Each worker keeps a running mean of its cost per request
//! (wall clock, so it also sees time lost to other processes on a shared machine) and takes at
//! most [`BATCH_BUDGET`] of work per batch — up to the configured size (8) with a fast verifier,
//! one or two with plain `p256`.
//!
//! [`Verifier::verify_batch`]: dcc_signing::verify::Verifier::verify_batch

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dcc_signing::envelope::SIGNATURE_LEN;
use dcc_signing::verify::VerifyJob;
use sha2::{Digest, Sha256};

use super::lanes::{Lane, Round};
use super::reputation::{self, Standing};
use super::{commit, outbox, Job, Shared};
use crate::egress::Signed;
use crate::response::ResponseCode;

/// How long an idle worker sleeps before looking at the stop flag again.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Most work a worker takes into one batch, by its running cost per request: the longest a
/// request in a top lane waits behind a batch already running, and the longest its answer waits
/// for the rest of its own batch.
pub const BATCH_BUDGET: Duration = Duration::from_micros(500);

/// A worker's batch limit: the configured size, cut so that one batch holds about
/// [`BATCH_BUDGET`] of work by the running mean cost per request.
#[derive(Debug, Clone)]
pub(crate) struct BatchLimit {
    max: usize,
    /// Running mean of a request's cost in nanoseconds (0 until the first batch).
    mean_ns: u64,
}

impl BatchLimit {
    pub(crate) fn new(max: usize) -> Self {
        BatchLimit {
            max: max.max(1),
            mean_ns: 0,
        }
    }

    /// Requests to take into the next batch.
    pub(crate) fn get(&self) -> usize {
        if self.mean_ns == 0 {
            return self.max;
        }
        let budget = u64::try_from(BATCH_BUDGET.as_nanos()).unwrap_or(u64::MAX);
        usize::try_from(budget / self.mean_ns)
            .unwrap_or(usize::MAX)
            .clamp(1, self.max)
    }

    /// Records that `n` requests took `took`; the mean moves an eighth of the way, so that one
    /// preempted batch does not shrink the next ones to 1.
    pub(crate) fn record(&mut self, n: usize, took: Duration) {
        let Ok(n) = u64::try_from(n) else { return };
        if n == 0 {
            return;
        }
        let per = u64::try_from(took.as_nanos() / u128::from(n))
            .unwrap_or(u64::MAX)
            .max(1);
        self.mean_ns = if self.mean_ns == 0 {
            per
        } else {
            self.mean_ns - self.mean_ns / 8 + per / 8
        }
        .max(1);
    }
}

/// Starts `n` workers.
pub(crate) fn spawn(shared: &Arc<Shared>, n: usize) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..n)
        .map(|i| {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("dcc-verify-{i}"))
                .spawn(move || run(&shared))
        })
        .collect()
}

fn run(shared: &Shared) {
    let mut round = Round::new(&shared.policy);
    let mut limit = BatchLimit::new(shared.batch);
    let mut batch: Vec<(Lane, Job)> = Vec::with_capacity(shared.batch);
    loop {
        let max = limit.get();
        shared.lanes.fill(&mut round, &mut batch, max);
        if batch.is_empty() {
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            if let Some(first) = shared.lanes.wait_any(IDLE_POLL) {
                batch.push(first);
                shared.lanes.fill(&mut round, &mut batch, max);
            }
        }
        let taken = batch.len();
        let started = Instant::now();
        // The batch's answers are delivered together when `answers` is dropped, after the
        // last commit (see `outbox`: callbacks can then wake their consumer once per batch).
        let answers = outbox::Batch::open();
        // A panicking verifier or dispatcher must not take the worker with it: the batch's
        // replies are dropped during unwinding (answered *unavailable*) and the worker goes on.
        let run = std::panic::AssertUnwindSafe(|| process(shared, &mut batch));
        if std::panic::catch_unwind(run).is_err() {
            batch.clear();
        }
        drop(answers);
        limit.record(taken, started.elapsed());
    }
}

/// Deadline, hash, verify, commit — for one batch; leaves `batch` empty.
pub(crate) fn process(shared: &Shared, batch: &mut Vec<(Lane, Job)>) {
    if batch.is_empty() {
        return;
    }
    let picked = Instant::now();
    let mut live: Vec<Job> = Vec::with_capacity(batch.len());
    for (lane, mut job) in batch.drain(..) {
        let waited = picked.saturating_duration_since(job.enqueued);
        job.reply.timings.queued = waited;
        if waited > shared.policy.lane(lane).deadline.get() {
            job.reply.send(ResponseCode::Busy, Some("deadline"));
        } else if shared.reputation.standing(
            job.header.request_id.originator,
            &shared.policy.reputation,
            picked,
        ) == Standing::Refused
        {
            // Admitted before its originator crossed the refusal threshold: a flood fills the
            // lanes faster than verification can raise the score, so its queued tail is
            // refused here, before any hashing or ECDSA (see `reputation`).
            job.reply
                .send(ResponseCode::Throttled, Some(reputation::DETAIL));
        } else {
            live.push(job);
        }
    }
    if live.is_empty() {
        return;
    }

    // What ECDSA verifies: for an envelope, SHA-256 of everything before its signature; for
    // DUIS, SHA-256 of the canonical SignedInfo — once the Reference digest over the
    // canonical document has matched its DigestValue (a mismatch is a bad signature too:
    // the signed content is not what was signed).
    let prepared: Vec<Option<([u8; 32], &[u8; SIGNATURE_LEN])>> =
        live.iter().map(|j| to_verify(&j.request)).collect();
    let mut verdicts = vec![false; live.len()];
    {
        let jobs: Vec<Option<VerifyJob<'_>>> = live
            .iter()
            .zip(&prepared)
            .map(|(j, p)| {
                p.as_ref().map(|(digest, signature)| VerifyJob {
                    key: &**j.cert.key(),
                    digest,
                    signature,
                })
            })
            .collect();
        let ready: Vec<VerifyJob<'_>> = jobs.iter().flatten().copied().collect();
        let mut out = vec![false; ready.len()];
        shared.verifier.verify_batch(&ready, &mut out);
        let mut it = out.into_iter();
        for (v, j) in verdicts.iter_mut().zip(&jobs) {
            if j.is_some() {
                *v = it.next().unwrap_or(false);
            }
        }
    }
    let verify_time = picked.elapsed();
    let verified = Instant::now();

    for (mut job, ok) in live.into_iter().zip(verdicts) {
        job.reply.timings.verify = verify_time;
        if ok {
            commit::commit(shared, job);
        } else {
            shared.reputation.record_bad(
                job.header.request_id.originator,
                &shared.policy.reputation,
                verified,
            );
            job.reply.send(ResponseCode::BadSignature, None);
        }
    }
}

/// The prehash and signature to verify, or `None` when the request cannot verify (a DUIS
/// Reference digest that does not match; an envelope without its signature, which decode
/// already refuses).
fn to_verify(request: &Signed) -> Option<([u8; 32], &[u8; SIGNATURE_LEN])> {
    match request {
        Signed::Envelope(bytes) => {
            let signed = &bytes[..bytes.len().saturating_sub(SIGNATURE_LEN)];
            let signature = bytes
                .get(bytes.len().checked_sub(SIGNATURE_LEN)?..)?
                .try_into()
                .ok()?;
            Some((Sha256::digest(signed).into(), signature))
        }
        Signed::Duis(d) => {
            d.check_reference().ok()?;
            Some((d.signature.signed_info_digest(), &d.signature.signature))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_about_the_budget_of_work() {
        let mut limit = BatchLimit::new(8);
        assert_eq!(
            limit.get(),
            8,
            "before anything is measured: the configured size"
        );
        // A fast verifier: 20 µs a request fits the configured 8 (budget 500 µs).
        limit.record(8, Duration::from_micros(160));
        assert_eq!(limit.get(), 8);
        // Plain p256, ≈ 240 µs a request: two fit.
        let mut slow = BatchLimit::new(8);
        slow.record(8, Duration::from_micros(8 * 240));
        assert_eq!(slow.get(), 2);
        // Slower than the whole budget: still one at a time, never zero.
        slow.record(1, Duration::from_millis(5));
        for _ in 0..64 {
            slow.record(1, Duration::from_millis(5));
        }
        assert_eq!(slow.get(), 1);
    }

    #[test]
    fn one_slow_batch_moves_the_mean_an_eighth_of_the_way() {
        let mut limit = BatchLimit::new(8);
        limit.record(8, Duration::from_micros(8 * 50));
        assert_eq!(limit.get(), 8, "50 µs a request: 10 fit, capped at 8");
        // One preempted batch (10 ms for 8): mean 50 → ≈ 200 µs, not 1,250 µs.
        limit.record(8, Duration::from_millis(10));
        assert_eq!(limit.get(), 2);
        // Fast batches bring it back.
        for _ in 0..32 {
            limit.record(8, Duration::from_micros(8 * 50));
        }
        assert_eq!(limit.get(), 8);
        // An empty batch records nothing.
        limit.record(0, Duration::from_secs(1));
        assert_eq!(limit.get(), 8);
    }
}
