//! The pipeline, one module per stage, in the order a request meets them:
//!
//! 1. [`decode`] — bytes → envelope (zero-copy, bounded, typed errors);
//! 2. [`admit`] — the cheap checks, in domain order, then lane classification, rate limit and
//!    lane admission;
//! 3. [`lanes`] — four bounded queues and the weighted, highest-first pick;
//! 4. [`verify`] — the worker pool (OS threads): deadline check, SHA-256, batched ECDSA;
//!    failures feed [`reputation`], which demotes (admit: lane L3) and then refuses (admit
//!    and verify: R9) originators whose signatures keep failing;
//! 5. [`commit`] — certificate state re-checked and anti-replay committed, under the
//!    certificate's read lock; then, with a durable store, [`persist`] — the anti-replay
//!    mark group-committed (one fsync for many requests) before the hand-off: *accepted*
//!    means durable;
//! 6. [`dispatch`] — for SRV 6.23 first the CoS Party stage [`cos`] (ECoS: counter-signed
//!    with the CoS key matching the device's certificate); hand-off to the [`Dispatcher`] and
//!    the I0 / I99 answer; then, outside the certificate lock, the state changes a dispatched
//!    request makes (`effects`: MP128B's GNO slot after a 6.15.1, the gaining Supplier's
//!    registration after a 6.23).

pub mod admit;
pub mod commit;
pub mod cos;
pub mod decode;
pub mod dispatch;
pub(crate) mod effects;
pub mod lanes;
pub(crate) mod outbox;
pub mod persist;
pub mod reputation;
pub mod verify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dcc_signing::envelope::Header;
use dcc_signing::verify::Verifier;
use dcc_signing::RequestId;
use tokio::sync::oneshot;

use crate::admin::AdminShared;
use crate::clock::Clock;
use crate::counters::Counters;
use crate::egress::{Dispatcher, Signed};
use crate::policy::Policy;
use crate::ratelimit::RateLimiter;
use crate::response::{Response, ResponseCode, Timings};
use crate::state::{CertEntry, State};
use crate::store::Store;
use lanes::{Lane, Lanes};

/// Everything the stages share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub policy: Arc<Policy>,
    pub state: Arc<State>,
    pub verifier: Arc<dyn Verifier>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub clock: Clock,
    pub counters: Arc<Counters>,
    pub limiter: RateLimiter,
    /// Bad-signature scores per originator ([`reputation`]).
    pub reputation: reputation::Reputation,
    pub lanes: Lanes<Job>,
    pub stopping: AtomicBool,
    /// Set once every verify worker has been joined (the persist thread may then leave).
    pub workers_joined: AtomicBool,
    pub batch: usize,
    /// Where durable state goes ([`crate::store`]).
    pub store: Arc<dyn Store>,
    /// The persist stage's queue: `Some` with a durable store.
    pub persist: Option<persist::PersistQueue>,
    /// What admin handles share (store, trust anchors, the admin lock).
    pub admin: Arc<AdminShared>,
}

impl Shared {
    pub(crate) fn workers_done(&self) -> bool {
        self.workers_joined.load(Ordering::Acquire)
    }
}

/// An admitted request travelling through lanes, verify and commit.
#[derive(Debug)]
pub(crate) struct Job {
    pub request: Signed,
    pub header: Header,
    pub cert: Arc<CertEntry>,
    /// Who handed it over: the commit stage re-checks a revocation delay against the
    /// connection (MP134A: a directed SRP's).
    pub sender: crate::sender::Sender,
    pub enqueued: Instant,
    pub reply: Reply,
}

/// Where an answer goes: the [`ResponseFuture`](crate::ResponseFuture) of
/// [`Router::submit`](crate::Router::submit), or the callback of
/// [`Router::submit_with`](crate::Router::submit_with).
///
/// Why a callback at all: an ingress that has thousands of requests in flight would otherwise
/// hold a future (and, typically, a task) per request just to forward each answer to the
/// connection it came from; the callback forwards it from the worker thread directly.
pub(crate) enum ReplyTo {
    /// A one-shot channel to a waiting future.
    Future(oneshot::Sender<Response>),
    /// A callback run once, on whichever thread produced the answer.
    Callback(Box<dyn FnOnce(Response) + Send + 'static>),
}

impl ReplyTo {
    /// Delivers `r` (a submitter that stopped waiting is not an error).
    pub(crate) fn deliver(self, r: Response) {
        match self {
            ReplyTo::Future(tx) => {
                let _ = tx.send(r);
            }
            ReplyTo::Callback(f) => f(r),
        }
    }
}

impl std::fmt::Debug for ReplyTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplyTo::Future(_) => "ReplyTo::Future",
            ReplyTo::Callback(_) => "ReplyTo::Callback",
        })
    }
}

/// The way back to the submitter: answers once, counts the answer, fills the timings.
/// Dropped unanswered (a bug, or shutdown), it answers *unavailable*.
#[derive(Debug)]
pub(crate) struct Reply {
    tx: Option<ReplyTo>,
    pub request_id: Option<RequestId>,
    pub lane: Option<Lane>,
    pub submitted: Instant,
    pub timings: Timings,
    counters: Arc<Counters>,
}

impl Reply {
    pub(crate) fn new(
        tx: ReplyTo,
        request_id: Option<RequestId>,
        submitted: Instant,
        counters: Arc<Counters>,
    ) -> Self {
        Reply {
            tx: Some(tx),
            request_id,
            lane: None,
            submitted,
            timings: Timings::default(),
            counters,
        }
    }

    /// Answers.
    pub(crate) fn send(mut self, code: ResponseCode, detail: Option<&'static str>) {
        self.finish(code, detail);
    }

    fn finish(&mut self, code: ResponseCode, detail: Option<&'static str>) {
        if let Some(tx) = self.tx.take() {
            self.counters.record(self.lane, code);
            self.timings.total = self.submitted.elapsed();
            // At once, or after the worker's batch ([`outbox`]: no callback under a certificate
            // lock, and a callback can batch its wake-ups with `after_answers`).
            outbox::deliver(
                tx,
                Response {
                    request_id: self.request_id,
                    code,
                    detail,
                    lane: self.lane,
                    timings: self.timings,
                },
            );
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.finish(ResponseCode::Unavailable, Some("dropped"));
    }
}
