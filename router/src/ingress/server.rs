//! The QUIC accept loop: connections, streams, frames — and nothing else.
//!
//! What a request *means* is the [`Handler`]'s business (in the product, the router pipeline).
//! This layer authenticates the peer (TLS), bounds what a peer may hold (connections, streams,
//! frame size, requests in flight per connection), reads frames, hands them to the handler
//! concurrently and writes each answer back on the stream its request came on, in completion
//! order. A peer that breaks framing loses that stream; a peer that breaks the connection loses
//! its connection; neither touches anybody else's work.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::frame::{read_frame, write_frame, FrameError};
use super::identity::PeerIdentity;

/// Handles one request frame from an authenticated peer and returns the answer frame.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request` from `peer`. Must not block: CPU-heavy work belongs on worker threads.
    fn handle(
        &self,
        peer: Arc<PeerIdentity>,
        request: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send + 'static>>;

    /// The answer to a request that was read but could not be served because the server is
    /// shutting down (the router answers *busy*).
    fn shutdown_answer(&self, request: &[u8]) -> Vec<u8>;
}

/// Limits that keep one peer from hurting the others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are refused before the handshake.
    pub max_connections: usize,
    /// Concurrent bidirectional streams a connection may open (quinn's default is 100).
    pub max_streams_per_connection: u32,
    /// Requests read but not yet answered, per connection: bounds the memory a connection holds
    /// (at most this many × the maximum frame size). Reading pauses while the bound is reached.
    pub max_in_flight_per_connection: usize,
    /// On shutdown, how long in-flight requests may take before the rest are answered busy.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_streams_per_connection: 1024,
            max_in_flight_per_connection: 4096,
            drain_timeout: Duration::from_secs(5),
        }
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

#[derive(Debug, Default)]
struct Tracker {
    connections: Arc<AtomicUsize>,
    in_flight: AtomicUsize,
}

impl Server {
    /// Binds `addr` and starts accepting. Call from within a tokio runtime.
    pub fn start(
        addr: SocketAddr,
        config: quinn::ServerConfig,
        limits: Limits,
        handler: Arc<dyn Handler>,
    ) -> std::io::Result<Server> {
        let endpoint = quinn::Endpoint::server(config, addr)?;
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
        self.endpoint.close(quinn::VarInt::from_u32(0), b"shutdown");
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
        if tracker.connections.load(Ordering::Acquire) >= limits.max_connections {
            tracing::warn!(peer = %incoming.remote_address(), "connection refused: at max_connections");
            incoming.refuse();
            continue;
        }
        tracker.connections.fetch_add(1, Ordering::AcqRel);
        let (handler, stop, tracker) = (handler.clone(), stop.clone(), tracker.clone());
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => match PeerIdentity::from_connection(&conn) {
                    Ok(peer) => {
                        tracing::debug!(%remote, user = %peer.user, "connection up");
                        serve_connection(conn, Arc::new(peer), limits, handler, stop, &tracker)
                            .await;
                    }
                    Err(e) => {
                        tracing::warn!(%remote, error = %e, "client certificate not usable");
                        conn.close(quinn::VarInt::from_u32(1), b"client identity");
                    }
                },
                Err(e) => tracing::debug!(%remote, error = %e, "handshake failed"),
            }
            tracker.connections.fetch_sub(1, Ordering::AcqRel);
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
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: Arc<PeerIdentity>,
    handler: Arc<dyn Handler>,
    budget: Arc<Semaphore>,
    stop: CancellationToken,
    tracker: Arc<Tracker>,
) {
    // Answers flow through one writer task per stream, in completion order.
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(answer) = rx.recv().await {
            if write_frame(&mut send, &answer).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
    });
    loop {
        let frame = match read_frame(&mut recv).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(user = %peer.user, error = %e, "stream dropped");
                // Framing is broken: nothing more on this stream can be trusted.
                let code = match e {
                    FrameError::TooLong(_) => 2u32,
                    _ => 3,
                };
                let _ = recv.stop(quinn::VarInt::from_u32(code));
                break;
            }
        };
        let Ok(permit) = budget.clone().acquire_owned().await else {
            break;
        };
        if stop.is_cancelled() {
            let _ = tx.send(handler.shutdown_answer(&frame));
            continue;
        }
        tracker.in_flight.fetch_add(1, Ordering::AcqRel);
        let (tx, handler, peer, tracker) =
            (tx.clone(), handler.clone(), peer.clone(), tracker.clone());
        tokio::spawn(async move {
            let answer = handler.handle(peer, frame).await;
            let _ = tx.send(answer);
            tracker.in_flight.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
        });
    }
    drop(tx);
    let _ = writer.await;
}
