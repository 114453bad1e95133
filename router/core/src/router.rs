//! The embedding API: [`RouterBuilder`] and [`Router`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;

use dcc_signing::duis::DuisRequest;
use dcc_signing::pki::ChainValidator;
use dcc_signing::verify::{KnownSignerVerifier, Verifier};
use tokio::sync::oneshot;

use crate::admin::{AdminHandle, AdminShared};
use crate::clock::Clock;
use crate::counters::{Counters, CountersSnapshot};
use crate::egress::{Dispatcher, Signed, SimulatedWan};
use crate::pipeline::lanes::Lanes;
use crate::pipeline::{admit, decode, persist, verify, Job, Reply, ReplyTo, Shared};
use crate::policy::Policy;
use crate::ratelimit::RateLimiter;
use crate::response::{Response, ResponseCode, Timings};
use crate::sender::Sender;
use crate::state::State;
use crate::store::{MemoryStore, Store};

/// Largest verify batch a worker takes.
pub const MAX_BATCH: usize = 64;
/// Most workers a router starts.
pub const MAX_WORKERS: usize = 1024;

/// The verify worker count when none is given (the builder's, and `workers = 0` of `serve`):
/// one per core the process may use — verification is CPU-bound, so more threads than cores
/// only add switching — 1 when the count is unknown, at most [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_WORKERS)
}

/// Why a router could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Workers not in 1..=[`MAX_WORKERS`].
    #[error("worker count {0} is not 1..={MAX_WORKERS}")]
    Workers(usize),
    /// Batch not in 1..=[`MAX_BATCH`].
    #[error("batch size {0} is not 1..={MAX_BATCH}")]
    Batch(usize),
    /// A worker thread could not be started.
    #[error("cannot start a verify worker: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Configures a [`Router`]. Every part has a default: the embedded policy, empty state, a
/// zero-latency [`SimulatedWan`], [`KnownSignerVerifier`] (per-key precomputed tables,
/// ≈ 10× plain `p256`; see BENCHMARKS.md), one worker per core, batches of 8.
#[derive(Debug, Default)]
pub struct RouterBuilder {
    policy: Option<Arc<Policy>>,
    state: Option<Arc<State>>,
    dispatcher: Option<Arc<dyn Dispatcher>>,
    verifier: Option<Arc<dyn Verifier>>,
    workers: Option<usize>,
    batch: Option<usize>,
    clock: Clock,
    store: Option<Arc<dyn Store>>,
    trust: Option<ChainValidator>,
}

impl RouterBuilder {
    /// The policy.
    pub fn policy(mut self, policy: impl Into<Arc<Policy>>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The state (populate it through [`Router::admin`]).
    pub fn state(mut self, state: Arc<State>) -> Self {
        self.state = Some(state);
        self
    }

    /// Where committed requests go.
    pub fn dispatcher(mut self, dispatcher: Arc<dyn Dispatcher>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// The signature backend (keys are prepared with it when certificates are added).
    pub fn verifier(mut self, verifier: Arc<dyn Verifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Verify worker threads, 1..=[`MAX_WORKERS`] (default [`default_workers`]).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Most requests a worker verifies in one `verify_batch` call.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch = Some(n);
        self
    }

    /// Where state changes and anti-replay marks are made durable (default: [`MemoryStore`],
    /// nothing durable). With a durable store an *accepted* answer waits for the group commit
    /// of its anti-replay mark ([`crate::pipeline::persist`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The root and issuing CAs that User certificates added from outside
    /// ([`AdminHandle::add_certificate_pem`]) must chain to.
    pub fn trust(mut self, validator: ChainValidator) -> Self {
        self.trust = Some(validator);
        self
    }

    /// The wall clock for certificate validity and delay ends.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts the workers.
    pub fn build(self) -> Result<Router, BuildError> {
        let workers = self.workers.unwrap_or_else(default_workers);
        if !(1..=MAX_WORKERS).contains(&workers) {
            return Err(BuildError::Workers(workers));
        }
        let batch = self.batch.unwrap_or(8);
        if !(1..=MAX_BATCH).contains(&batch) {
            return Err(BuildError::Batch(batch));
        }
        let policy = self.policy.unwrap_or_default();
        let store: Arc<dyn Store> = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::default()));
        let (persist_tx, persist_rx) = if store.is_durable() {
            let (tx, rx) = flume::bounded(persist::QUEUE_CAPACITY);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let state: Arc<State> = self.state.unwrap_or_default();
        // The policy's windows count with the admin channel's for DP092's monthly limits.
        state
            .maintenance
            .set_planned_by_policy(policy.maintenance.windows.clone());
        let shared = Arc::new(Shared {
            lanes: Lanes::new(&policy),
            policy,
            state,
            verifier: self
                .verifier
                .unwrap_or_else(|| Arc::new(KnownSignerVerifier::default())),
            dispatcher: self
                .dispatcher
                .unwrap_or_else(|| Arc::new(SimulatedWan::default())),
            clock: self.clock,
            counters: Arc::new(Counters::default()),
            limiter: RateLimiter::default(),
            reputation: crate::pipeline::reputation::Reputation::default(),
            stopping: AtomicBool::new(false),
            workers_joined: AtomicBool::new(false),
            batch,
            admin: Arc::new(AdminShared::new(Arc::clone(&store), self.trust)),
            store,
            persist: persist_tx,
        });
        let persister = match persist_rx.map(|rx| persist::spawn(&shared, rx)).transpose() {
            Ok(p) => p,
            Err(e) => {
                shared.stopping.store(true, Ordering::Release);
                shared.workers_joined.store(true, Ordering::Release);
                return Err(e.into());
            }
        };
        let handles = match verify::spawn(&shared, workers) {
            Ok(h) => h,
            Err(e) => {
                shared.stopping.store(true, Ordering::Release);
                shared.workers_joined.store(true, Ordering::Release);
                return Err(e.into());
            }
        };
        Ok(Router {
            pool: Arc::new(Pool {
                shared: Arc::clone(&shared),
                handles: Mutex::new(handles),
                persister: Mutex::new(persister),
            }),
            shared,
        })
    }
}

/// Owns the workers: stops and joins them when the last [`Router`] clone goes.
#[derive(Debug)]
struct Pool {
    shared: Arc<Shared>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    persister: Mutex<Option<JoinHandle<()>>>,
}

impl Pool {
    fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        let handles =
            std::mem::take(&mut *self.handles.lock().unwrap_or_else(PoisonError::into_inner));
        for h in handles {
            let _ = h.join();
        }
        // Verified requests waiting for their group commit are made durable and dispatched
        // (or refused) before the persist thread leaves.
        self.shared.workers_joined.store(true, Ordering::Release);
        let persister = self
            .persister
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(p) = persister {
            let _ = p.join();
        }
        // Anything admitted after the workers left is answered, never lost.
        for (_, job) in self.shared.lanes.drain() {
            job.reply
                .send(ResponseCode::Unavailable, Some("shutting-down"));
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The in-process router. Cheap to clone; all clones share one pipeline.
///
/// ```no_run
/// # async fn demo(bytes: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
/// use dcc_router_core::{Policy, Router};
/// let router = Router::builder().policy(Policy::default()).workers(4).build()?;
/// let response = router.submit(bytes).await;
/// println!("{} in {:?}", response.code, response.lane);
/// router.shutdown();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Router {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
}

impl Router {
    /// A builder.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Submits one encoded Service Request.
    ///
    /// Decoding and admission run on the calling thread (microseconds, no signature work);
    /// the returned future resolves when the request is refused, acknowledged (I99) or
    /// delivered (I0). It does not need a tokio runtime to make progress; awaiting it from one
    /// is fine.
    pub fn submit(&self, bytes: impl Into<Vec<u8>>) -> ResponseFuture {
        // The channel is made only for a request that is queued: a refusal costs no allocation.
        let mut rx = None;
        let entered = self.enter(Sender::Embedder, Inbound::Envelope(bytes.into()), || {
            let (tx, r) = oneshot::channel();
            rx = Some(r);
            ReplyTo::Future(tx)
        });
        match entered {
            Entered::Answered(r, _) => ResponseFuture::ready(r),
            Entered::Queued { request_id, lane } => match rx {
                Some(rx) => ResponseFuture::waiting(rx, request_id, Some(lane)),
                None => ResponseFuture::ready(lost(request_id, Some(lane))),
            },
        }
    }

    /// Submits one encoded Service Request; `on_answer` receives its [`Response`], exactly once.
    ///
    /// The same pipeline as [`submit`](Self::submit), for callers that forward answers rather
    /// than wait for them (the QUIC ingress writes each answer to the stream its request came
    /// on): no future or task per request. `on_answer` runs on the submitting thread when the
    /// request is refused at admission, otherwise on a verify worker thread, so it must be
    /// quick and must not block (send on a channel, push to a buffer). A worker runs the
    /// callbacks of one verify batch together; a callback that wakes a consumer can keep its
    /// answer aside and wake it once for the batch with [`after_answers`](crate::after_answers).
    pub fn submit_with<F>(&self, bytes: impl Into<Vec<u8>>, on_answer: F)
    where
        F: FnOnce(Response) + Send + 'static,
    {
        self.submit_from(Sender::Embedder, bytes, on_answer);
    }

    /// The one entry point of every ingress: submits one encoded Service Request that
    /// `sender` handed over; `on_answer` receives its [`Response`], exactly once.
    ///
    /// The request is decoded once, here; admission's check 0 then binds `sender` to the
    /// request's originator (see [`Sender`] and `pipeline/admit.rs`), before any other check.
    /// Threading as [`submit_with`](Self::submit_with), which is this with
    /// [`Sender::Embedder`].
    pub fn submit_from<F>(&self, sender: Sender, bytes: impl Into<Vec<u8>>, on_answer: F)
    where
        F: FnOnce(Response) + Send + 'static,
    {
        let reply_to = move || ReplyTo::Callback(Box::new(on_answer));
        let inbound = Inbound::Envelope(bytes.into());
        if let Entered::Answered(r, reply_to) = self.enter(sender, inbound, reply_to) {
            reply_to().deliver(r);
        }
    }

    /// As [`submit_from`](Self::submit_from), for a DUIS Service Request that the ingress has
    /// parsed and checked ([`DuisRequest::decode`]: well-formed, bounded, header valid,
    /// signature of the DUIS form). The signer named by `X509IssuerSerial` is looked up in
    /// the certificate store by serial, the User Role is the one the originator holds that
    /// may send the SRV (DUIS carries no role), and the request then meets the same
    /// admission, lanes, verification (Reference digest, then ECDSA over `SignedInfo`, on a
    /// worker) and commit as an envelope.
    pub fn submit_duis<F>(&self, sender: Sender, request: DuisRequest, on_answer: F)
    where
        F: FnOnce(Response) + Send + 'static,
    {
        let reply_to = move || ReplyTo::Callback(Box::new(on_answer));
        let inbound = Inbound::Duis(Box::new(request));
        if let Entered::Answered(r, reply_to) = self.enter(sender, inbound, reply_to) {
            reply_to().deliver(r);
        }
    }

    /// Decode and admission; a request that passes is queued with the `ReplyTo` that
    /// `reply_to` makes and answered from the pipeline, one that does not is answered here and
    /// `reply_to` handed back unused.
    fn enter<M: FnOnce() -> ReplyTo>(
        &self,
        sender: Sender,
        inbound: Inbound,
        reply_to: M,
    ) -> Entered<M> {
        let submitted = Instant::now();
        let ready = |request_id, code, detail, lane, to| {
            self.shared.counters.record(lane, code);
            Entered::Answered(
                Response {
                    request_id,
                    code,
                    detail,
                    lane,
                    timings: Timings {
                        admit: submitted.elapsed(),
                        total: submitted.elapsed(),
                        ..Timings::default()
                    },
                },
                to,
            )
        };
        if self.shared.stopping.load(Ordering::Acquire) {
            let id = match &inbound {
                Inbound::Envelope(bytes) => decode::salvage_request_id(bytes),
                Inbound::Duis(d) => Some(d.header.request_id),
            };
            return ready(
                id,
                ResponseCode::Unavailable,
                Some("shutting-down"),
                None,
                reply_to,
            );
        }
        let (header, request) = match inbound {
            Inbound::Envelope(bytes) => match decode::decode(&bytes) {
                Ok(env) => (env.header, Signed::Envelope(bytes)),
                Err(e) => {
                    let id = decode::salvage_request_id(&bytes);
                    return ready(id, ResponseCode::Malformed, Some(e.code()), None, reply_to);
                }
            },
            Inbound::Duis(d) => match decode::duis_header(&self.shared, &d) {
                // A DUIS Signed Pre-Command answers a transform of the same RequestID
                // (`state::transforms`): without one it is refused before any other check.
                Ok(header)
                    if (5..=7).contains(&header.command_variant.get())
                        && !self
                            .shared
                            .state
                            .transforms
                            .is_open(&header.request_id, self.shared.clock.now_unix()) =>
                {
                    let id = Some(header.request_id);
                    return ready(
                        id,
                        ResponseCode::InvalidCommandVariant,
                        Some("no-outstanding-transform"),
                        None,
                        reply_to,
                    );
                }
                Ok(header) => (header, Signed::Duis(Box::new(d.signed))),
                Err((code, detail)) => {
                    let id = Some(d.header.request_id);
                    return ready(id, code, Some(detail), None, reply_to);
                }
            },
        };
        let request_id = Some(header.request_id);
        let admitted = match admit::admit(&self.shared, sender, &header, submitted) {
            Ok(a) => a,
            Err(r) => return ready(request_id, r.code, r.detail, r.lane, reply_to),
        };
        let mut reply = Reply::new(
            reply_to(),
            request_id,
            submitted,
            Arc::clone(&self.shared.counters),
        );
        reply.lane = Some(admitted.lane);
        reply.timings.admit = submitted.elapsed();
        let job = Job {
            request,
            header,
            cert: admitted.cert,
            sender,
            enqueued: Instant::now(),
            reply,
        };
        if let Err(job) = self.shared.lanes.push(admitted.lane, job) {
            job.reply.send(ResponseCode::Busy, Some("lane-full"));
        } else if self.shared.stopping.load(Ordering::Acquire) {
            // Raced with shutdown: the workers may be gone, so answer what is queued here
            // rather than leave it waiting forever.
            for (_, job) in self.shared.lanes.drain() {
                job.reply
                    .send(ResponseCode::Unavailable, Some("shutting-down"));
            }
        }
        Entered::Queued {
            request_id,
            lane: admitted.lane,
        }
    }

    /// Submits and blocks until the answer. Do not call from inside an async task.
    pub fn submit_blocking(&self, bytes: impl Into<Vec<u8>>) -> Response {
        self.submit(bytes).wait()
    }

    /// The admin handle (every state change goes through it).
    pub fn admin(&self) -> AdminHandle {
        AdminHandle::with_store(
            Arc::clone(&self.shared.state),
            Arc::clone(&self.shared.verifier),
            self.shared.clock.clone(),
            Arc::clone(&self.shared.admin),
        )
    }

    /// The state (read access).
    pub fn state(&self) -> &Arc<State> {
        &self.shared.state
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.shared.policy
    }

    /// The wall clock it judges validity, delay ends and maintenance windows by.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The verifier in use.
    pub fn verifier(&self) -> &Arc<dyn Verifier> {
        &self.shared.verifier
    }

    /// Per lane × outcome counters.
    pub fn counters(&self) -> CountersSnapshot {
        self.shared.counters.snapshot()
    }

    /// Requests queued in each lane now (L0..L3).
    pub fn queued(&self) -> [usize; 4] {
        crate::Lane::ALL.map(|l| self.shared.lanes.len(l))
    }

    /// Stops accepting (new submissions are answered R11), lets the workers finish what is
    /// queued, and joins them. Idempotent; also done when the last clone is dropped.
    pub fn shutdown(&self) {
        self.pool.stop();
    }
}

/// A request as an ingress hands it over.
enum Inbound {
    /// Envelope bytes, not yet decoded.
    Envelope(Vec<u8>),
    /// A parsed and checked DUIS request.
    Duis(Box<DuisRequest>),
}

/// What [`Router::enter`] did with a request.
enum Entered<M> {
    /// Refused (or answered) at once; the `ReplyTo` maker comes back unused.
    Answered(Response, M),
    /// Queued in `lane`; the pipeline answers through the `ReplyTo`.
    Queued {
        request_id: Option<dcc_signing::RequestId>,
        lane: crate::Lane,
    },
}

/// The answer to [`Router::submit`].
#[derive(Debug)]
pub struct ResponseFuture(FutureState);

#[derive(Debug)]
enum FutureState {
    Ready(Option<Response>),
    Waiting {
        rx: oneshot::Receiver<Response>,
        request_id: Option<dcc_signing::RequestId>,
        lane: Option<crate::Lane>,
    },
}

impl ResponseFuture {
    fn ready(r: Response) -> Self {
        ResponseFuture(FutureState::Ready(Some(r)))
    }

    fn waiting(
        rx: oneshot::Receiver<Response>,
        request_id: Option<dcc_signing::RequestId>,
        lane: Option<crate::Lane>,
    ) -> Self {
        ResponseFuture(FutureState::Waiting {
            rx,
            request_id,
            lane,
        })
    }

    /// Blocks the current thread until the answer (not from inside an async task).
    pub fn wait(self) -> Response {
        match self.0 {
            FutureState::Ready(r) => r.unwrap_or_else(|| lost(None, None)),
            FutureState::Waiting {
                rx,
                request_id,
                lane,
            } => rx
                .blocking_recv()
                .unwrap_or_else(|_| lost(request_id, lane)),
        }
    }
}

fn lost(request_id: Option<dcc_signing::RequestId>, lane: Option<crate::Lane>) -> Response {
    Response {
        request_id,
        code: ResponseCode::Unavailable,
        detail: Some("lost"),
        lane,
        timings: Timings::default(),
    }
}

impl Future for ResponseFuture {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match &mut self.get_mut().0 {
            FutureState::Ready(r) => Poll::Ready(r.take().unwrap_or_else(|| lost(None, None))),
            FutureState::Waiting {
                rx,
                request_id,
                lane,
            } => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|_| lost(*request_id, *lane))),
        }
    }
}

#[cfg(test)]
mod default_tests {
    use super::*;

    /// The fast known-signer verifier is what a router uses unless told otherwise.
    #[test]
    fn default_verifier_is_known_signer() {
        let router = Router::builder().workers(1).build().unwrap();
        assert!(
            router.verifier().name().starts_with("known-signer"),
            "{}",
            router.verifier().name()
        );
        router.shutdown();
    }
}
