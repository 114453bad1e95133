//! The client library: what loadgen and embedding programs use to talk to `dcc-router serve`.
//!
//! One QUIC connection, authenticated with the User's TLS client certificate. Requests are
//! sent in one of two [`StreamMode`]s:
//!
//! * [`StreamMode::Pipelined`] (the default): a few long-lived bidirectional streams; each
//!   carries many request frames one way and answer frames the other, answers in completion
//!   order, matched to their requests by Request ID. No per-request stream setup.
//! * [`StreamMode::PerRequest`]: a new stream per request (open, write, finish, read one
//!   answer). Simpler, and isolates requests from one another's head-of-line blocking, but pays
//!   stream bookkeeping per request.
//!
//! The server accepts both: a stream is a sequence of frames either way.
//!
//! # Every request ends
//!
//! [`Client::send`] always returns: with the answer, or with an error. Nothing waits forever:
//!
//! * every request has a deadline ([`ClientOptions::request_timeout`], default
//!   [`DEFAULT_REQUEST_TIMEOUT`]); past it the request fails with [`ClientError::Timeout`];
//! * when a pipelined stream or the connection fails (the server shut down, the network went),
//!   every request waiting on the connection fails at once with [`ClientError::Transport`], and
//!   so does every request sent afterwards: a failed pipeline is marked failed under the same
//!   lock that registers requests, so none can slip in after the failure and wait unseen.
//!
//! The connection sends QUIC keep-alives ([`ClientOptions::keep_alive`], default
//! [`DEFAULT_KEEP_ALIVE`]) so that an idle but live client is not dropped by the server's idle
//! timeout (`[limits] idle_timeout_ms`, 10 s by default): keep it well under that.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::ingress::frame::FrameError;
use crate::ingress::frame::{append_frame, read_frame, write_frame, FrameReader};
use crate::ingress::tls::{client_config, client_transport, TlsError, TlsMaterial};
use crate::ingress::wire::{peek_request_id, AnswerDecodeError, WireAnswer};
use dcc_signing::RequestId;

/// How requests map to QUIC streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamMode {
    /// Many requests on each of `streams` long-lived streams.
    Pipelined {
        /// Number of streams (requests are spread round-robin).
        streams: usize,
    },
    /// One stream per request.
    PerRequest,
}

impl Default for StreamMode {
    fn default() -> Self {
        StreamMode::Pipelined { streams: 4 }
    }
}

/// How long [`Client::send`] waits for an answer by default: long enough for any queue the
/// router keeps (lane deadlines are seconds), short enough that a lost answer is noticed.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an idle connection sends a keep-alive by default: well under the server's default
/// idle timeout (10 s), so that a live client is never taken for an abandoned one.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(2);

/// How a [`Client`] behaves.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// How requests map to streams.
    pub mode: StreamMode,
    /// How long one request may wait for its answer before it fails with
    /// [`ClientError::Timeout`] (from the call to [`Client::send`]).
    pub request_timeout: Duration,
    /// Keep-alive interval of the connection; must be under the server's idle timeout.
    pub keep_alive: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            mode: StreamMode::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            keep_alive: DEFAULT_KEEP_ALIVE,
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Connecting failed (handshake refused, unreachable…).
    #[error("connect: {0}")]
    Connect(#[source] ConnectError),
    /// The request is not an envelope with a Request ID (the client refuses to send it, since
    /// its answer could not be matched).
    #[error("not an envelope: {0}")]
    NotAnEnvelope(#[source] dcc_signing::envelope::DecodeError),
    /// A request with the same Request ID is already waiting for its answer on this client.
    #[error("request {0} already in flight")]
    Duplicate(RequestId),
    /// The stream or connection failed before the answer came.
    #[error("transport: {0}")]
    Transport(#[source] TransportError),
    /// The answer could not be parsed.
    #[error("bad answer: {0}")]
    BadAnswer(#[source] AnswerDecodeError),
    /// No answer within the request timeout ([`ClientOptions::request_timeout`]).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl ClientError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Tls(_) => "tls",
            ClientError::Connect(_) => "connect",
            ClientError::NotAnEnvelope(_) => "not-an-envelope",
            ClientError::Duplicate(_) => "duplicate",
            ClientError::Transport(_) => "transport",
            ClientError::BadAnswer(_) => "bad-answer",
            ClientError::Timeout(_) => "timeout",
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The client's UDP endpoint could not be bound.
    #[error("client endpoint: {0}")]
    Endpoint(#[source] std::io::Error),
    /// quinn refused to start the connection (bad server name, endpoint stopping…).
    #[error(transparent)]
    Start(#[from] quinn::ConnectError),
    /// The handshake or opening the pipelined streams failed.
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
}

/// Why a request's stream or connection failed. Clone: one failure of a pipelined
/// connection fails every request waiting on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection was closed or lost.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A stream failed, or its framing broke.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An answer on a pipelined stream could not be decoded (nothing after it can be
    /// trusted).
    #[error("bad answer: {0}")]
    BadAnswer(#[from] AnswerDecodeError),
    /// The stream ended (or the client's pipeline stopped) before the answer.
    #[error("{0}")]
    Closed(&'static str),
}

type Waiter = oneshot::Sender<Result<WireAnswer, ClientError>>;

/// The requests of a pipeline waiting for answers, and whether the pipeline has failed.
///
/// One lock covers both so that registering a request and failing the pipeline exclude each
/// other: a request is either registered before the failure (and failed by it) or refused.
#[derive(Debug, Default)]
struct Table {
    waiting: HashMap<RequestId, Waiter>,
    /// Why the pipeline failed, once it has.
    failed: Option<TransportError>,
}

type Pending = Arc<Mutex<Table>>;

/// Marks the pipeline failed (the first reason stays) and fails every request waiting.
fn fail_all(pending: &Pending, why: TransportError) {
    let waiters: Vec<Waiter> = match pending.lock() {
        Ok(mut t) => {
            if t.failed.is_none() {
                t.failed = Some(why.clone());
            }
            t.waiting.drain().map(|(_, w)| w).collect()
        }
        // A panic while holding the lock: nothing left to fail.
        Err(_) => return,
    };
    // Completed outside the lock: a waiter's task may run on this thread at once.
    for w in waiters {
        let _ = w.send(Err(ClientError::Transport(why.clone())));
    }
}

/// The pipelined streams of a connection: one writer task for all of them (so that requests
/// queued together leave together, usually in one packet), one reader task per stream, and one
/// table of requests waiting for answers.
#[derive(Debug)]
struct Pipeline {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
}

/// A connection to a dcc-router server.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    mode: StreamMode,
    request_timeout: Duration,
    pipeline: Option<Pipeline>,
}

impl Client {
    /// Connects to `server` (TLS server name `server_name`, e.g. `localhost`), with the
    /// default options in stream mode `mode`.
    pub async fn connect(
        server: SocketAddr,
        server_name: &str,
        tls: &TlsMaterial,
        mode: StreamMode,
    ) -> Result<Client, ClientError> {
        let options = ClientOptions {
            mode,
            ..ClientOptions::default()
        };
        Self::connect_with(server, server_name, tls, options).await
    }

    /// Connects to `server` (TLS server name `server_name`, e.g. `localhost`).
    pub async fn connect_with(
        server: SocketAddr,
        server_name: &str,
        tls: &TlsMaterial,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let mode = options.mode;
        let endpoint = client_endpoint(server, tls)?;
        let mut config = client_config(tls)?;
        config.transport_config(client_transport(options.keep_alive));
        let conn = endpoint
            .connect_with(config, server, server_name)
            .map_err(|e| ClientError::Connect(e.into()))?
            .await
            .map_err(|e| ClientError::Connect(e.into()))?;
        let mut pipeline = None;
        if let StreamMode::Pipelined { streams } = mode {
            let mut opened = Vec::new();
            for _ in 0..streams.max(1) {
                opened.push(
                    conn.open_bi()
                        .await
                        .map_err(|e| ClientError::Connect(e.into()))?,
                );
            }
            pipeline = Some(spawn_pipeline(&conn, opened));
        }
        Ok(Client {
            endpoint,
            conn,
            mode,
            request_timeout: options.request_timeout,
            pipeline,
        })
    }

    /// Sends one encoded envelope and waits for its answer, at most the request timeout.
    ///
    /// Always returns: the answer, or why there is none ([`ClientError::Timeout`] past the
    /// deadline, [`ClientError::Transport`] as soon as the stream or connection fails).
    pub async fn send(&self, envelope: Vec<u8>) -> Result<WireAnswer, ClientError> {
        let id = peek_request_id(&envelope).map_err(ClientError::NotAnEnvelope)?;
        match self.mode {
            StreamMode::PerRequest => {
                tokio::time::timeout(self.request_timeout, self.send_on_own_stream(envelope))
                    .await
                    .map_err(|_| ClientError::Timeout(self.request_timeout))?
            }
            StreamMode::Pipelined { .. } => {
                let lane = self.pipeline.as_ref().ok_or(ClientError::Transport(
                    TransportError::Closed("no pipelined streams"),
                ))?;
                let (tx, rx) = oneshot::channel();
                {
                    let mut p = lane
                        .pending
                        .lock()
                        .map_err(|_| ClientError::Transport(TransportError::Closed("poisoned")))?;
                    if let Some(why) = &p.failed {
                        return Err(ClientError::Transport(why.clone()));
                    }
                    if p.waiting.contains_key(&id) {
                        return Err(ClientError::Duplicate(id));
                    }
                    p.waiting.insert(id, tx);
                }
                if lane.tx.send(envelope).is_err() {
                    // The writer is gone: the pipeline has failed (and this request with it).
                    fail_all(&lane.pending, TransportError::Closed("stream closed"));
                }
                match tokio::time::timeout(self.request_timeout, rx).await {
                    Ok(answer) => answer.map_err(|_| {
                        ClientError::Transport(TransportError::Closed(
                            "stream closed before the answer",
                        ))
                    })?,
                    Err(_) => {
                        // Forget it, so that a late answer is dropped and the ID may be reused.
                        if let Ok(mut p) = lane.pending.lock() {
                            p.waiting.remove(&id);
                        }
                        Err(ClientError::Timeout(self.request_timeout))
                    }
                }
            }
        }
    }

    /// One request on a stream of its own.
    async fn send_on_own_stream(&self, envelope: Vec<u8>) -> Result<WireAnswer, ClientError> {
        let (mut send, mut recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| ClientError::Transport(e.into()))?;
        write_frame(&mut send, &envelope)
            .await
            .map_err(|e| ClientError::Transport(e.into()))?;
        let _ = send.finish();
        let frame = read_frame(&mut recv)
            .await
            .map_err(|e| ClientError::Transport(e.into()))?
            .ok_or(ClientError::Transport(TransportError::Closed(
                "stream ended without answer",
            )))?;
        WireAnswer::decode(&frame).map_err(ClientError::BadAnswer)
    }

    /// The connection's transport statistics (datagrams, I/O calls, frames, RTT, congestion):
    /// what a performance engineer checks to see how many packets a request costs.
    pub fn stats(&self) -> quinn::ConnectionStats {
        self.conn.stats()
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"bye");
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            self.endpoint.wait_idle(),
        )
        .await;
    }
}

/// A client endpoint bound to the right local address for `server` (loopback for a loopback
/// server, any address otherwise), with `tls` as its client configuration.
pub fn client_endpoint(
    server: SocketAddr,
    tls: &TlsMaterial,
) -> Result<quinn::Endpoint, ClientError> {
    let bind: SocketAddr = match (server.is_ipv4(), server.ip().is_loopback()) {
        (true, true) => ([127, 0, 0, 1], 0).into(),
        (true, false) => ([0, 0, 0, 0], 0).into(),
        (false, true) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
        (false, false) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let mut endpoint = quinn::Endpoint::client(bind)
        .map_err(|e| ClientError::Connect(ConnectError::Endpoint(e)))?;
    endpoint.set_default_client_config(client_config(tls)?);
    Ok(endpoint)
}

/// Requests written in one quinn call, at most.
const WRITE_BATCH: usize = 256;

fn spawn_pipeline(
    conn: &quinn::Connection,
    streams: Vec<(quinn::SendStream, quinn::RecvStream)>,
) -> Pipeline {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let pending: Pending = Arc::default();
    let (mut sends, recvs): (Vec<_>, Vec<_>) = streams.into_iter().unzip();
    let writer_pending = pending.clone();
    tokio::spawn(async move {
        // Everything queued since the last write goes out in one quinn call, on the streams in
        // turn: the connection driver then packs the batch into as few packets as it can.
        let mut queued: Vec<Vec<u8>> = Vec::with_capacity(WRITE_BATCH);
        let mut next = 0;
        let n = sends.len().max(1);
        while rx.recv_many(&mut queued, WRITE_BATCH).await > 0 {
            // Let the tasks that are ready to run now queue their requests too, so that they
            // share this write (and its packet) instead of each costing a packet of its own.
            tokio::task::yield_now().await;
            while queued.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(r) => queued.push(r),
                    Err(_) => break,
                }
            }
            // One buffer for the batch: one allocation and one quinn chunk, not one per request.
            // Every request passed `peek_request_id`, so none is over the frame maximum.
            let mut batch = Vec::with_capacity(queued.iter().map(|r| 4 + r.len()).sum());
            for r in queued.drain(..) {
                let _ = append_frame(&mut batch, &r);
            }
            let Some(send) = sends.get_mut(next % n) else {
                break;
            };
            next += 1;
            if let Err(e) = send.write_chunk(batch.into()).await {
                // The requests of this batch will never be answered: fail them (and the rest)
                // now rather than leave them to their timeout.
                fail_all(&writer_pending, FrameError::Write(e).into());
                break;
            }
        }
        // Closing the queue makes any later send fail at once (see `Client::send`).
        rx.close();
        for mut send in sends {
            let _ = send.finish();
        }
    });
    for recv in recvs {
        spawn_reader(recv, pending.clone());
    }
    // However the connection ends (closed by the server, lost, idle), everything waiting fails
    // with the reason, even if no stream read was in progress to notice.
    let conn = conn.clone();
    let watcher_pending = pending.clone();
    tokio::spawn(async move {
        let why = conn.closed().await;
        fail_all(&watcher_pending, why.into());
    });
    Pipeline { tx, pending }
}

/// Reads answer frames from one stream and hands each to the request waiting for it; when the
/// stream fails, the pipeline fails: every request still waiting on the connection fails with
/// it, and so does every later one.
fn spawn_reader(recv: quinn::RecvStream, pending: Pending) {
    tokio::spawn(async move {
        let mut answers = FrameReader::new(recv);
        loop {
            match answers.next().await {
                Ok(Some(frame)) => match WireAnswer::decode(&frame) {
                    Ok(answer) => {
                        let waiter = pending.lock().ok().and_then(|mut p| {
                            answer.request_id.and_then(|id| p.waiting.remove(&id))
                        });
                        if let Some(w) = waiter {
                            let _ = w.send(Ok(answer));
                        } else {
                            // Its request timed out (or the server answered an ID never sent).
                            tracing::debug!(?answer, "answer matches no request in flight");
                        }
                    }
                    Err(e) => {
                        fail_all(&pending, e.into());
                        return;
                    }
                },
                Ok(None) => {
                    fail_all(&pending, TransportError::Closed("stream finished"));
                    return;
                }
                Err(e) => {
                    fail_all(&pending, e.into());
                    return;
                }
            }
        }
    });
}
