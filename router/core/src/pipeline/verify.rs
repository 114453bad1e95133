//! Stage 4: the verify workers — OS threads, never tokio tasks, so ECDSA never runs on an
//! async reactor.
//!
//! Each worker takes a small batch (by deficit round robin over the lanes, see
//! [`super::lanes`]), answers *busy* for requests that waited past their lane's deadline,
//! hashes the rest and verifies them in one [`Verifier::verify_batch`] call (backends that
//! share work across a batch pay off here), then passes the good ones to the commit stage.
//!
//! [`Verifier::verify_batch`]: dcc_signing::verify::Verifier::verify_batch

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dcc_signing::envelope::SIGNATURE_LEN;
use dcc_signing::verify::VerifyJob;
use sha2::{Digest, Sha256};

use super::lanes::{Drr, Lane};
use super::reputation::{self, Standing};
use super::{commit, outbox, Job, Shared};
use crate::egress::Signed;
use crate::response::ResponseCode;

/// How long an idle worker sleeps before looking at the stop flag again.
const IDLE_POLL: Duration = Duration::from_millis(20);

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
    let mut drr = Drr::new(&shared.policy);
    let mut batch: Vec<(Lane, Job)> = Vec::with_capacity(shared.batch);
    loop {
        shared.lanes.fill(&mut drr, &mut batch, shared.batch);
        if batch.is_empty() {
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            if let Some(first) = shared.lanes.wait_any(IDLE_POLL) {
                batch.push(first);
                shared.lanes.fill(&mut drr, &mut batch, shared.batch);
            }
        }
        // The batch's answers are delivered together when `_answers` is dropped, after the
        // last commit (see `outbox`: callbacks can then wake their consumer once per batch).
        let _answers = outbox::Batch::open();
        // A panicking verifier or dispatcher must not take the worker with it: the batch's
        // replies are dropped during unwinding (answered *unavailable*) and the worker goes on.
        let run = std::panic::AssertUnwindSafe(|| process(shared, &mut batch));
        if std::panic::catch_unwind(run).is_err() {
            batch.clear();
        }
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
