//! Stage 5: commit — after the signature verified, and in this order, all under the signer
//! certificate's *read* lock ([`CertEntry::with_status`](crate::state::CertEntry::with_status)):
//!
//! 1. re-evaluate the certificate (revoked, delay ended or narrowed, expired while queued →
//!    refused: a revocation that landed while the request waited wins);
//! 2. re-check the device registration (MP185: a device moved to the SoLR while queued);
//! 3. accept the counter in the originator's anti-replay window (check-and-set, atomic per
//!    originator: two copies of one request verified in parallel cannot both pass);
//! 4. with a durable store, hand over to [`super::persist`] (the mark is made durable, then
//!    the request is dispatched); in memory, hand off to the dispatcher ([`super::dispatch`],
//!    through the CoS Party stage [`super::cos`] for SRV 6.23).
//!
//! Because a revocation takes the same lock for writing, every hand-off happens either before
//! the revocation begins or after it ended and saw the new state: once `revoke` has returned,
//! nothing signed with that certificate is dispatched (the persist stage re-checks under the
//! same lock at its hand-off). The counter is committed only for requests that pass 1 and 2.

use super::admit::registrant;
use super::{dispatch, effects, persist, Job, Shared};
use crate::response::ResponseCode;
use crate::state::{CertStatus, CertUse, ReplayVerdict};

/// Checks 1 and 2 against a status the caller holds the read lock of.
pub(crate) fn still_allowed(
    shared: &Shared,
    job: &Job,
    status: &CertStatus,
    now_unix: u64,
) -> Result<CertUse, (ResponseCode, &'static str)> {
    let h = &job.header;
    let cert_use = job
        .cert
        .evaluate(
            status,
            h.request_id.originator,
            job.sender.user(),
            h.srv,
            now_unix,
        )
        .map_err(|code| (code, "certificate"))?;
    if let CertUse::Delegated { .. } = cert_use {
        let still = shared
            .state
            .devices
            .get(h.request_id.target)
            .is_some_and(|d| d.authorises(h.role, registrant(h, cert_use)));
        if !still {
            return Err((ResponseCode::NotAuthorisedForDevice, "not-registered"));
        }
    }
    Ok(cert_use)
}

/// Commits and dispatches one verified request, or answers its refusal.
pub(crate) fn commit(shared: &Shared, job: Job) {
    let now_unix = shared.clock.now_unix();
    if job.header.command_variant.get() == 4 {
        return transform(shared, job, now_unix);
    }
    let cert = std::sync::Arc::clone(&job.cert);
    let mut effect = None;
    let refused = cert.with_status(|status| {
        let cert_use = match still_allowed(shared, &job, status, now_unix) {
            Ok(u) => u,
            Err((code, detail)) => return Some((job, code, detail)),
        };
        let h = &job.header;
        match shared
            .state
            .replay
            .accept(h.request_id.originator, h.request_id.counter)
        {
            ReplayVerdict::Fresh => {}
            ReplayVerdict::Duplicate => return Some((job, ResponseCode::Replayed, "duplicate")),
            ReplayVerdict::TooOld => return Some((job, ResponseCode::Replayed, "too-old")),
        }
        if (5..=7).contains(&h.command_variant.get()) {
            // The Signed Pre-Command spent the counter its transform left unspent.
            shared.state.transforms.close(&h.request_id);
        }
        // With a durable store the hand-off (and so the effect) happens in the persist stage.
        match &shared.persist {
            Some(queue) => persist::enqueue(queue, job),
            None => effect = dispatch::hand_off(shared, job, cert_use),
        }
        None
    });
    if let Some((job, code, detail)) = refused {
        job.reply.send(code, Some(detail));
    }
    if let Some(e) = effect {
        effects::apply(shared, e);
    }
}

/// A critical request sent to be transformed (CV 4, see
/// [`state::transforms`](crate::state::transforms)): checks 1 and 2 as for any request, then
/// — without spending the counter, which the Signed Pre-Command will carry again, and without
/// reaching a device — the transform is recorded and answered I0 `pre-command`.
fn transform(shared: &Shared, job: Job, now_unix: u64) {
    let cert = std::sync::Arc::clone(&job.cert);
    let verdict = cert.with_status(|status| still_allowed(shared, &job, status, now_unix));
    match verdict {
        Err((code, detail)) => job.reply.send(code, Some(detail)),
        Ok(_)
            if !shared
                .state
                .transforms
                .open(job.header.request_id, now_unix) =>
        {
            job.reply.send(ResponseCode::Busy, Some("transforms-full"));
        }
        Ok(_) => job.reply.send(ResponseCode::Success, Some("pre-command")),
    }
}
