//! The QUIC accept loop: connections, streams, frames — and nothing else.
//!
//! What a request *means* is the [`Handler`]'s business (in the product, the router pipeline).
//! This layer authenticates the peer (TLS), bounds what a peer may hold (connections, streams,
//! frame size, requests in flight per connection), reads frames, hands them to the handler
//! and writes each answer back on the stream its request came on, in completion order. A peer
//! that breaks framing loses that stream; a peer that breaks the connection loses its
//! connection; neither touches anybody else's work.
//!
//! # Where the CPU goes, and why it is laid out like this
//!
//! Per stream there are two tasks and no more: a reader that pulls chunks (many frames per
//! quinn call, see [`FrameReader`]) and hands each frame to the handler, and a writer that
//! sends every answer waiting for it in one quinn call. There is no task or future per
//! request: the handler gets an [`Answer`] it completes from wherever the answer is produced
//! (the router does so on its verify worker thread), and the answer goes into the writer's
//! queue. The writer wakes once per batch of answers, not once per answer: answers completed
//! together by a verify worker (its batch) reach each stream's queue as one message
//! ([`dcc_router_core::after_answers`]), so the worker wakes each writer once per batch.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::frame::{framed, framed_with, write_frames, FrameError, FrameReader};
use super::identity::PeerIdentity;
use dcc_signing::Eui64;

/// Messages taken from a stream's queue for one quinn call, at most (each message holds the
/// answers one verify batch completed for the stream, usually one to eight).
const MAX_WRITE_BATCH: usize = 256;

/// Handles request frames from authenticated peers.
pub trait Handler: Send + Sync + 'static {
    /// Takes `request` from `peer`; its answer goes to `answer`, now or later, from any thread.
    /// Must not block: CPU-heavy work belongs on worker threads.
    fn handle(&self, peer: &Arc<PeerIdentity>, request: Vec<u8>, answer: Answer);

    /// The answer to a request that was read but could not be served because the server is
    /// shutting down. The router answers R11 "shutting-down", as its pipeline does for what it
    /// can no longer serve: one code for one situation.
    fn shutdown_answer(&self, request: &[u8]) -> Vec<u8>;

    /// Whether `peer` is an administrator: admins may use the connections reserved for them
    /// ([`Limits::admin_reserved_connections`]), so that an admin can always get in.
    fn is_admin(&self, _peer: &PeerIdentity) -> bool {
        false
    }
}

/// Why the server closed a connection: the QUIC application close code and reason it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server is shutting down (code 0).
    Shutdown,
    /// The client certificate names no usable User (code 1).
    ClientIdentity,
    /// The User already has [`Limits::max_connections_per_user`] connections open (code 2).
    UserConnectionLimit,
    /// Every connection not reserved for admins is taken ([`Limits::max_connections`] less
    /// [`Limits::admin_reserved_connections`]) (code 3).
    ConnectionLimit,
}

impl CloseReason {
    /// The application error code of the CONNECTION_CLOSE frame.
    pub fn code(self) -> u32 {
        match self {
            CloseReason::Shutdown => 0,
            CloseReason::ClientIdentity => 1,
            CloseReason::UserConnectionLimit => 2,
            CloseReason::ConnectionLimit => 3,
        }
    }

    /// The reason phrase of the CONNECTION_CLOSE frame: what the client's error shows.
    pub fn reason(self) -> &'static str {
        match self {
            CloseReason::Shutdown => "shutdown",
            CloseReason::ClientIdentity => "client identity",
            CloseReason::UserConnectionLimit => "max_connections_per_user reached",
            CloseReason::ConnectionLimit => "max_connections reached",
        }
    }

    fn close(self, conn: &quinn::Connection) {
        conn.close(
            quinn::VarInt::from_u32(self.code()),
            self.reason().as_bytes(),
        );
    }
}

/// Limits that keep one peer from hurting the others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Authenticated connections open at once, admins' included. Past it, a new connection is
    /// refused before its handshake; a non-admin one is also closed after its handshake when
    /// only the admins' reserved connections are left.
    pub max_connections: usize,
    /// Of `max_connections`, how many only admins may use ([`Handler::is_admin`]): however
    /// many connections Users hold, an admin can still get in to act.
    pub admin_reserved_connections: usize,
    /// Handshakes in progress at once. Why a cap of its own: a handshake costs the server
    /// state and CPU before it knows who the peer is; strangers must not be able to take what
    /// Users need. Past half of it the server asks unvalidated addresses for address validation
    /// (a QUIC Retry, which costs the server no state); at it, new handshakes are refused.
    pub max_handshakes: usize,
    /// A handshake not finished within this is abandoned (its slot freed).
    pub handshake_timeout: Duration,
    /// Connections (handshakes included) from one IP address at once. Past it, an unvalidated
    /// address gets a Retry first (so that a spoofed address cannot use up another's share),
    /// a validated one is refused.
    pub max_connections_per_source: usize,
    /// Handshakes in progress from one IP address at once, well under `max_handshakes`: why,
    /// one address that answers Retries (so is validated) could otherwise hold every
    /// handshake slot and keep everyone else — admins included, who cannot be recognised
    /// before their handshake — from connecting. Past it, an unvalidated attempt gets a
    /// Retry, a validated one is refused.
    pub max_handshakes_per_source: usize,
    /// Authenticated connections one User may hold at once; a further one is closed right
    /// after its handshake with [`CloseReason::UserConnectionLimit`]. Why: without it one User
    /// (or one stolen certificate) can take every one of `max_connections`.
    pub max_connections_per_user: usize,
    /// A connection from which nothing has arrived for this long is closed and its slot
    /// freed: how long an abandoned connection (a peer that vanished without closing) holds a
    /// slot. The server sends no keep-alives of its own; live clients send them (the client
    /// library does, every [`DEFAULT_KEEP_ALIVE`](crate::client::quic::DEFAULT_KEEP_ALIVE)). The
    /// effective timeout is the smaller of the server's and the client's.
    pub idle_timeout: Duration,
    /// Concurrent bidirectional streams a connection may open (no unidirectional ones). Each
    /// may hold one partial request frame in the server (see [`Limits::memory_per_connection`]).
    pub max_streams_per_connection: u32,
    /// Bytes a peer may send on one stream ahead of what the server has read (QUIC stream
    /// flow control). Why set: quinn's default (≈ 1.25 MB) times the streams is far more than
    /// a request needs.
    pub stream_receive_window: u32,
    /// Bytes a peer may send on all streams of a connection ahead of what the server has read
    /// (QUIC connection flow control): the bound on what quinn buffers for a connection.
    pub connection_receive_window: u32,
    /// Bytes the server sends a connection without acknowledgement (answers written to quinn
    /// but not yet acknowledged): the bound on quinn's send buffers for a connection.
    pub send_window: u32,
    /// Requests read but not yet answered (or answered, but the answer not yet written to
    /// quinn), per connection. Reading pauses while the bound is reached, so a client that
    /// does not read its answers stops being read. Each holds an answer until written
    /// ([`REQUEST_OVERHEAD`]); the request itself is the router's until answered (counted in
    /// the router's lane capacities, not here).
    pub max_in_flight_per_connection: usize,
    /// On shutdown, how long in-flight requests may take before the connections are closed
    /// (requests read after the stop get the handler's shutdown answer; requests still
    /// unanswered at the close fail at the client with the connection's close).
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            admin_reserved_connections: 2,
            max_handshakes: 64,
            handshake_timeout: Duration::from_secs(3),
            max_connections_per_source: 64,
            max_handshakes_per_source: 8,
            max_connections_per_user: 8,
            idle_timeout: Duration::from_secs(10),
            max_streams_per_connection: 64,
            stream_receive_window: 128 * 1024,
            connection_receive_window: 1024 * 1024,
            send_window: 1024 * 1024,
            max_in_flight_per_connection: 4096,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Memory of one connection besides its windows, streams and requests: quinn's connection
/// state, TLS, packet buffers, the connection's task and bookkeeping (an allowance, checked by
/// `serve_process::a_client_that_never_reads_stays_within_the_memory_bound`).
pub const CONNECTION_OVERHEAD: u64 = 256 * 1024;
/// Memory of one stream besides its frame buffer: two tasks, the answer channel, quinn's
/// stream state (an allowance, checked by the same test).
pub const STREAM_OVERHEAD: u64 = 8 * 1024;
/// Memory of one request in flight besides its frame: the answer frame (≈ 100 bytes), its
/// queue entry and budget permit.
pub const REQUEST_OVERHEAD: u64 = 256;

impl Limits {
    /// The most memory one authenticated connection can make the server hold, in bytes,
    /// whatever the peer does (the formula of the `ingress` docs, "Memory"):
    ///
    /// ```text
    /// 2 × connection_receive_window                      quinn's receive buffers (+ reassembly slack)
    /// + max_streams × (4 + MAX_FRAME_LEN + STREAM_OVERHEAD)  one frame buffered per stream
    /// + max_in_flight × REQUEST_OVERHEAD                  answers not yet written
    /// + send_window                                       answers written, not yet acknowledged
    /// + CONNECTION_OVERHEAD
    /// ```
    ///
    /// Not included, because it is shared by all connections: requests queued in the router's
    /// lanes (at most the lanes' capacities × the request size).
    pub fn memory_per_connection(&self) -> u64 {
        let frame = 4 + super::frame::MAX_FRAME_LEN as u64;
        2 * u64::from(self.connection_receive_window)
            + u64::from(self.max_streams_per_connection) * (frame + STREAM_OVERHEAD)
            + self.max_in_flight_per_connection as u64 * REQUEST_OVERHEAD
            + u64::from(self.send_window)
            + CONNECTION_OVERHEAD
    }

    /// The QUIC transport settings these limits imply (what [`Server::start`] installs).
    pub fn transport_config(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(self.max_streams_per_connection));
        t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
        t.stream_receive_window(quinn::VarInt::from_u32(self.stream_receive_window));
        t.receive_window(quinn::VarInt::from_u32(self.connection_receive_window));
        t.send_window(u64::from(self.send_window));
        // An idle timeout over quinn's maximum (2^62 ms) is not configurable anyway.
        t.max_idle_timeout(quinn::IdleTimeout::try_from(self.idle_timeout).ok());
        // No keep-alives from the server: they would make an abandoned connection look alive
        // for longer (each one restarts the idle timer once).
        t.keep_alive_interval(None);
        // Not enabled: the ACK-frequency extension (peers acknowledging every 11th packet
        // instead of every 2nd). Measured side by side it saved no CPU that the noise could not
        // hide and raised p99 latency at 3,000 requests/s from ≈ 0.6 ms to 1–2.5 ms (delayed
        // ACKs hold the congestion window); see BENCHMARKS.md, "QUIC ingress".
        t
    }
}

/// A running QUIC server.
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    stop: CancellationToken,
    accept_task: tokio::task::JoinHandle<()>,
    tracker: Arc<Tracker>,
    limits: Limits,
}

/// Where the answer to one request goes: the stream it came on.
///
/// Holds one unit of the connection's in-flight budget until the answer is *written* (or the
/// `Answer` dropped unsent): a client that does not read its answers therefore stops the
/// server reading its requests once the budget is spent, instead of growing a queue of
/// answers. Dropping it unsent leaves the request unanswered (the client will time out):
/// handlers always send.
#[derive(Debug)]
pub struct Answer {
    tx: AnswerTx,
    held: Held,
}

/// One request in flight: a unit of its connection's budget, and a count in the server's
/// in-flight total (what shutdown drains). Released when dropped: after the answer is written,
/// or when it can no longer be.
#[derive(Debug)]
struct Held {
    _permit: OwnedSemaphorePermit,
    /// Where the request is counted in flight; `None` for a shutdown answer, which shutdown
    /// does not wait for.
    tracker: Option<Arc<Tracker>>,
}

impl Held {
    fn new(permit: OwnedSemaphorePermit, tracker: &Arc<Tracker>) -> Self {
        tracker.in_flight.fetch_add(1, Ordering::AcqRel);
        Held {
            _permit: permit,
            tracker: Some(Arc::clone(tracker)),
        }
    }

    /// Holds budget but is not counted in flight: the shutdown answer to a request read after
    /// the stop. Why not counted: shutdown waits for the work it had taken on, and a client
    /// that keeps sending must not keep the server from closing until the drain timeout.
    fn uncounted(permit: OwnedSemaphorePermit) -> Self {
        Held {
            _permit: permit,
            tracker: None,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(t) = &self.tracker {
            t.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// An answer frame waiting for the stream's writer, with what it holds.
type Queued = (Bytes, Held);

/// Where a stream's answers go: one message per delivery (one verify batch's answers).
type AnswerTx = mpsc::UnboundedSender<Vec<Queued>>;

thread_local! {
    /// Answers made on this thread during a verify worker's delivery of its batch, per stream,
    /// until the batch's answers are all delivered (see [`queue_answer`]).
    static PENDING: std::cell::RefCell<Vec<(AnswerTx, Vec<Queued>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Queues an answer for its stream's writer. Every message may wake the writer, and a writer
/// woken onto the verify worker's core preempts it, takes the one answer there is and sleeps
/// again: so the answers a worker delivers together (one verify batch) are kept aside here and
/// sent per stream as one message when the worker has delivered them all
/// ([`dcc_router_core::after_answers`]); anywhere else that is at once.
fn queue_answer(tx: &AnswerTx, answer: Queued) {
    let mut answer = Some(answer);
    let first = PENDING
        .try_with(|p| {
            let Ok(mut p) = p.try_borrow_mut() else {
                return false;
            };
            let first = p.is_empty();
            if let Some(a) = answer.take() {
                match p.iter_mut().find(|(t, _)| t.same_channel(tx)) {
                    Some((_, queued)) => queued.push(a),
                    None => p.push((tx.clone(), vec![a])),
                }
            }
            first
        })
        .unwrap_or(false);
    if let Some(a) = answer {
        // No thread-local left (thread teardown): send it alone.
        let _ = tx.send(vec![a]);
    } else if first {
        dcc_router_core::after_answers(flush_answers);
    }
}

/// Sends each stream its answers kept aside by [`queue_answer`], one message per stream.
fn flush_answers() {
    let pending = PENDING
        .try_with(|p| {
            p.try_borrow_mut()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    for (tx, answers) in pending {
        // The writer is gone only when the stream failed; nobody is left to tell.
        let _ = tx.send(answers);
    }
}

impl Answer {
    /// Sends the answer frame's payload (cheap, never blocks: it is queued for the stream's
    /// writer). A payload over the frame maximum is dropped with a log line.
    pub fn send(self, payload: &[u8]) {
        self.queue(framed(payload));
    }

    /// Sends an answer that `encode` writes (about `hint` bytes) straight into the frame's
    /// buffer, with no buffer of its own: what the router's answers use.
    pub fn send_with(self, hint: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        self.queue(framed_with(hint, encode));
    }

    fn queue(self, frame: Result<Bytes, FrameError>) {
        match frame {
            // The writer is gone only when the stream failed; nobody is left to tell.
            Ok(frame) => queue_answer(&self.tx, (frame, self.held)),
            Err(e) => tracing::error!(error = %e, "answer not sent"),
        }
    }
}

#[derive(Debug, Default)]
struct Tracker {
    /// Connections open, handshakes included (what metrics show).
    connections: Arc<AtomicUsize>,
    in_flight: AtomicUsize,
    /// Handshakes in progress.
    handshakes: AtomicUsize,
    /// Address validations asked (QUIC Retry packets sent).
    retries: AtomicUsize,
    book: Mutex<Book>,
}

/// Who holds what: one lock, so that a check and the count it allows are one step.
#[derive(Debug, Default)]
struct Book {
    /// Connections per source IP (handshakes included; entries at zero removed).
    per_source: HashMap<IpAddr, usize>,
    /// Handshakes in progress per source IP (entries at zero removed).
    handshaking_per_source: HashMap<IpAddr, usize>,
    /// Authenticated connections per User (entries at zero removed).
    per_user: HashMap<Eui64, usize>,
    /// Authenticated connections of admins, and of everybody else.
    admins: usize,
    users: usize,
}

fn decrement<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = m.get_mut(k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(k);
        }
    }
}

/// A handshake slot and a source-address slot, taken before the handshake.
#[derive(Debug)]
struct Admitted {
    source: IpAddr,
    handshaking: bool,
    tracker: Arc<Tracker>,
}

impl Admitted {
    /// The handshake is over (done, failed or timed out): its handshake slot is free.
    fn handshake_over(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.tracker.handshakes.fetch_sub(1, Ordering::AcqRel);
            if let Ok(mut b) = self.tracker.book.lock() {
                decrement(&mut b.handshaking_per_source, &self.source);
            }
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.handshake_over();
        if let Ok(mut b) = self.tracker.book.lock() {
            decrement(&mut b.per_source, &self.source);
        }
        self.tracker.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An authenticated connection's slots (its User's, and admin or not), given back when
/// dropped, however the connection ends.
#[derive(Debug)]
struct Authenticated {
    user: Eui64,
    admin: bool,
    tracker: Arc<Tracker>,
}

impl Drop for Authenticated {
    fn drop(&mut self) {
        if let Ok(mut b) = self.tracker.book.lock() {
            decrement(&mut b.per_user, &self.user);
            if self.admin {
                b.admins = b.admins.saturating_sub(1);
            } else {
                b.users = b.users.saturating_sub(1);
            }
        }
    }
}

/// What to do with a connection attempt, before its handshake.
enum Admission {
    Accept(Admitted),
    /// Ask the peer to prove its address (QUIC Retry).
    Retry,
    Refuse(&'static str),
}

impl Tracker {
    /// Whether a connection attempt from `source` may start its handshake now.
    fn admit(self: &Arc<Self>, source: IpAddr, validated: bool, limits: &Limits) -> Admission {
        let Ok(mut b) = self.book.lock() else {
            return Admission::Refuse("poisoned");
        };
        if b.admins + b.users >= limits.max_connections {
            return Admission::Refuse("max_connections");
        }
        let handshakes = self.handshakes.load(Ordering::Acquire);
        let from_source = b.per_source.get(&source).copied().unwrap_or(0);
        let at_handshake_cap = handshakes >= limits.max_handshakes;
        let at_source_cap = from_source >= limits.max_connections_per_source
            || b.handshaking_per_source.get(&source).copied().unwrap_or(0)
                >= limits.max_handshakes_per_source;
        let pressure = at_handshake_cap || at_source_cap || handshakes >= limits.max_handshakes / 2;
        if pressure && !validated {
            return Admission::Retry;
        }
        if at_handshake_cap {
            return Admission::Refuse("max_handshakes");
        }
        if at_source_cap {
            return Admission::Refuse("max_connections_per_source");
        }
        *b.per_source.entry(source).or_insert(0) += 1;
        *b.handshaking_per_source.entry(source).or_insert(0) += 1;
        self.handshakes.fetch_add(1, Ordering::AcqRel);
        self.connections.fetch_add(1, Ordering::AcqRel);
        Admission::Accept(Admitted {
            source,
            handshaking: true,
            tracker: Arc::clone(self),
        })
    }

    /// The slots of an authenticated connection of `user`, or why it may not have them.
    fn authenticate(
        self: &Arc<Self>,
        user: Eui64,
        admin: bool,
        limits: &Limits,
    ) -> Result<Authenticated, CloseReason> {
        let mut b = self.book.lock().map_err(|_| CloseReason::ConnectionLimit)?;
        let total = b.admins + b.users;
        let for_users = limits
            .max_connections
            .saturating_sub(limits.admin_reserved_connections);
        if total >= limits.max_connections || (!admin && b.users >= for_users) {
            return Err(CloseReason::ConnectionLimit);
        }
        let n = b.per_user.entry(user).or_insert(0);
        if *n >= limits.max_connections_per_user {
            return Err(CloseReason::UserConnectionLimit);
        }
        *n += 1;
        if admin {
            b.admins += 1;
        } else {
            b.users += 1;
        }
        Ok(Authenticated {
            user,
            admin,
            tracker: Arc::clone(self),
        })
    }
}

impl Server {
    /// Binds `addr` and starts accepting. Call from within a tokio runtime.
    ///
    /// The transport settings of `config` are replaced by those of `limits`
    /// ([`Limits::transport_config`]), so that the limits in force are the ones given here.
    pub fn start(
        addr: SocketAddr,
        config: quinn::ServerConfig,
        limits: Limits,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        Self::start_on(std::net::UdpSocket::bind(addr)?, config, limits, handler)
    }

    /// Starts accepting on a socket bound earlier. Why: `dcc-router serve` binds its socket
    /// before it writes anything (data directory, demo PKI, store), so that a port in use
    /// leaves no trace, and only then has the TLS material this needs.
    pub fn start_on(
        socket: std::net::UdpSocket,
        mut config: quinn::ServerConfig,
        limits: Limits,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        config.transport_config(Arc::new(limits.transport_config()));
        let runtime = quinn::default_runtime()
            .ok_or_else(|| std::io::Error::other("no async runtime found"))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            runtime,
        )?;
        let stop = CancellationToken::new();
        let tracker = Arc::new(Tracker::default());
        let accept_task = tokio::spawn(accept_loop(
            endpoint.clone(),
            limits,
            handler,
            stop.clone(),
            tracker.clone(),
        ));
        Ok(Server {
            endpoint,
            stop,
            accept_task,
            tracker,
            limits,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.tracker.connections.load(Ordering::Relaxed)
    }

    /// Handshakes in progress now.
    pub fn handshakes(&self) -> usize {
        self.tracker.handshakes.load(Ordering::Relaxed)
    }

    /// Address validations asked so far (QUIC Retry packets sent under handshake pressure).
    pub fn retries(&self) -> usize {
        self.tracker.retries.load(Ordering::Relaxed)
    }

    /// A live counter of the connections open (for metrics).
    pub fn connection_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.tracker.connections)
    }

    /// Graceful shutdown: stop accepting connections and streams, let in-flight requests finish
    /// for up to `drain_timeout` (requests read after the stop are answered with the handler's
    /// shutdown answer), then close every connection.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.accept_task.abort();
        let deadline = tokio::time::Instant::now() + self.limits.drain_timeout;
        while self.tracker.in_flight.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let reason = CloseReason::Shutdown;
        self.endpoint.close(
            quinn::VarInt::from_u32(reason.code()),
            reason.reason().as_bytes(),
        );
        // Give the close frames a moment to leave.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.endpoint.wait_idle()).await;
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    limits: Limits,
    handler: Arc<dyn Handler>,
    stop: CancellationToken,
    tracker: Arc<Tracker>,
) {
    loop {
        let incoming = tokio::select! {
            _ = stop.cancelled() => return,
            i = endpoint.accept() => match i { Some(i) => i, None => return },
        };
        let remote = incoming.remote_address();
        // Refusals before the handshake are logged at debug only: a flood of them must not
        // become a flood of log lines.
        let validated = incoming.remote_address_validated() || !incoming.may_retry();
        let admitted = match tracker.admit(remote.ip(), validated, &limits) {
            Admission::Accept(a) => a,
            Admission::Retry => {
                tracing::debug!(%remote, "address validation asked (Retry)");
                match incoming.retry() {
                    Ok(()) => {
                        tracker.retries.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => e.into_incoming().refuse(),
                }
                continue;
            }
            Admission::Refuse(why) => {
                tracing::debug!(%remote, why, "connection refused before the handshake");
                incoming.refuse();
                continue;
            }
        };
        let (handler, stop, tracker) = (handler.clone(), stop.clone(), tracker.clone());
        tokio::spawn(async move {
            let mut admitted = admitted;
            let handshake = async { incoming.accept()?.await };
            // Dropping an unfinished handshake closes it.
            let conn = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "handshake timed out");
                    return;
                }
            };
            admitted.handshake_over();
            let peer = match PeerIdentity::from_connection(&conn) {
                Ok(peer) => peer,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "client certificate not usable");
                    CloseReason::ClientIdentity.close(&conn);
                    return;
                }
            };
            let admin = handler.is_admin(&peer);
            match tracker.authenticate(peer.user, admin, &limits) {
                Ok(_slots) => {
                    tracing::debug!(%remote, user = %peer.user, admin, "connection up");
                    serve_connection(conn, Arc::new(peer), limits, handler, stop, &tracker).await;
                }
                Err(reason) => {
                    tracing::warn!(%remote, user = %peer.user, reason = reason.reason(),
                        "connection refused after the handshake");
                    reason.close(&conn);
                }
            }
            drop(admitted);
        });
    }
}

async fn serve_connection(
    conn: quinn::Connection,
    peer: Arc<PeerIdentity>,
    limits: Limits,
    handler: Arc<dyn Handler>,
    stop: CancellationToken,
    tracker: &Arc<Tracker>,
) {
    let budget = Arc::new(Semaphore::new(limits.max_in_flight_per_connection));
    loop {
        let (send, recv) = tokio::select! {
            _ = stop.cancelled() => break,
            s = conn.accept_bi() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        tokio::spawn(serve_stream(
            send,
            recv,
            peer.clone(),
            handler.clone(),
            budget.clone(),
            stop.clone(),
            tracker.clone(),
        ));
    }
    // Leave the connection open so that streams in progress can deliver their answers; the
    // connection ends when the peer closes it or the endpoint closes at shutdown.
    let _ = conn.closed().await;
}

async fn serve_stream(
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    peer: Arc<PeerIdentity>,
    handler: Arc<dyn Handler>,
    budget: Arc<Semaphore>,
    stop: CancellationToken,
    tracker: Arc<Tracker>,
) {
    // Answers flow through one writer task per stream, in completion order.
    let (tx, rx) = mpsc::unbounded_channel::<Vec<Queued>>();
    let writer = tokio::spawn(write_answers(send, rx));
    let mut frames = FrameReader::new(recv);
    loop {
        // A whole frame first (it stays in the reader's buffer), then room for it in the
        // connection's budget, then the frame: a stream waiting for room holds one frame.
        let next = match frames.ready().await {
            Ok(true) => match budget.clone().acquire_owned().await {
                // Reading pauses while the connection's budget is spent: QUIC flow control
                // then holds the peer back.
                Ok(permit) => frames.next().await.map(|f| f.map(|f| (f, permit))),
                Err(_) => break,
            },
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        let (frame, permit) = match next {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(user = %peer.user, error = %e, "stream dropped");
                // Framing is broken: nothing more on this stream can be trusted.
                let code = match e {
                    FrameError::TooLong(_) => 2u32,
                    _ => 3,
                };
                let _ = frames.stream_mut().stop(quinn::VarInt::from_u32(code));
                break;
            }
        };
        if stop.is_cancelled() {
            if let Ok(f) = framed(&handler.shutdown_answer(&frame)) {
                let _ = tx.send(vec![(f, Held::uncounted(permit))]);
            }
            continue;
        }
        let answer = Answer {
            tx: tx.clone(),
            held: Held::new(permit, &tracker),
        };
        handler.handle(&peer, frame, answer);
    }
    drop(tx);
    let _ = writer.await;
}

/// Writes answers as they come, all those waiting in one call; finishes the stream when the
/// reader and every outstanding [`Answer`] are gone.
async fn write_answers(mut send: quinn::SendStream, mut rx: mpsc::UnboundedReceiver<Vec<Queued>>) {
    let mut queued = Vec::with_capacity(MAX_WRITE_BATCH);
    let mut frames = Vec::with_capacity(MAX_WRITE_BATCH);
    let mut permits = Vec::with_capacity(MAX_WRITE_BATCH);
    while rx.recv_many(&mut queued, MAX_WRITE_BATCH).await > 0 {
        for (frame, held) in queued.drain(..).flatten() {
            frames.push(frame);
            permits.push(held);
        }
        if write_frames(&mut send, &mut frames).await.is_err() {
            return;
        }
        // Written (into quinn's flow-controlled send buffer): budget and count are free again.
        permits.clear();
    }
    let _ = send.finish();
}
