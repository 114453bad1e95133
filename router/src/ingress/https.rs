//! HTTPS ingress on DCC Boxed's DUIS paths — the transport half of DUIS; the XML half is
//! the [`DuisHandler`] the server installs (`server::duis`).
//!
//! | path | DUIS web service | command variants |
//! |------|------------------|------------------|
//! | `POST /api/v1/serviceS` | Send Command | 1, 3, 5, 7 (and the Signed Pre-Command of a transform) |
//! | `POST /api/v1/serviceT` | Transform | 4 |
//! | `POST /api/v1/serviceD` | Non-Device | 2, 6, 8 |
//!
//! What this layer answers itself, before any XML is read:
//!
//! | condition | answer |
//! |-----------|--------|
//! | a path that is none of the three | 404 |
//! | a method other than POST | 405 |
//! | a body over [`HttpLimits::max_body`] | 413 |
//! | a body that stops arriving ([`HttpLimits::request_timeout`]) | connection closed |
//! | more than [`HttpLimits::max_connections`] connections | new ones closed at accept |
//! | more than [`HttpLimits::max_connections_per_source`] from one address | its new ones closed at accept |
//! | a TLS handshake slower than [`HttpLimits::handshake_timeout`] | connection closed |
//!
//! Everything else — including a request sent to the wrong one of the three services (E13)
//! — is a DUIS answer (`200`, `application/xml`) written by the handler, with the lane that
//! carried the request in the [`LANE_HEADER`] response header (a router extension, for load
//! generators' per-lane reports).
//!
//! With TLS, the client certificate is verified against the configured CA (as on QUIC) and
//! names the User the connection speaks for ([`PeerIdentity`]); the handler passes it to the
//! router as [`Sender::User`](crate::Sender::User), so admission's check 0 binds it to the
//! request's originator. Without TLS (`plain` mode, for test rigs such as DCC Boxed's own
//! clients, which speak plain HTTP) there is no transport identity: the XML signature is the
//! only authentication, and the server binds that mode to loopback by default.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use super::identity::PeerIdentity;

/// The DUIS web service a request was sent to (its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DuisService {
    /// `/api/v1/serviceS`: Send Command.
    SendCommand,
    /// `/api/v1/serviceT`: Transform (critical commands, CV 4).
    Transform,
    /// `/api/v1/serviceD`: Non-Device.
    NonDevice,
}

impl DuisService {
    /// Every service.
    pub const ALL: [DuisService; 3] = [
        DuisService::SendCommand,
        DuisService::Transform,
        DuisService::NonDevice,
    ];

    /// Its path, as DCC Boxed serves it.
    pub const fn path(self) -> &'static str {
        match self {
            DuisService::SendCommand => "/api/v1/serviceS",
            DuisService::Transform => "/api/v1/serviceT",
            DuisService::NonDevice => "/api/v1/serviceD",
        }
    }

    /// The service of a path (exact match).
    pub fn from_path(path: &str) -> Option<DuisService> {
        DuisService::ALL.into_iter().find(|s| s.path() == path)
    }

    /// Whether a request with command variant `cv` belongs on this service (domain.md,
    /// "Interfaces a DCC stand-in exposes"); a request on the wrong one is answered E13.
    pub const fn accepts(self, cv: u8) -> bool {
        match self {
            DuisService::SendCommand => matches!(cv, 1 | 3 | 5 | 7),
            DuisService::Transform => cv == 4,
            DuisService::NonDevice => matches!(cv, 2 | 6 | 8),
        }
    }
}

/// The HTTP response header naming the priority lane that carried a request (`L0`…`L3`),
/// absent when the request was refused before classification.
///
/// Why a header outside DUIS: the DUIS Response has no field for it, and a load generator
/// reports latency per lane as it does over QUIC (whose answer carries the lane). DUIS clients
/// ignore headers they do not know.
pub const LANE_HEADER: &str = "x-dcc-router-lane";

/// What the handler answers: an HTTP status, an XML body, and the lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status (200 for every DUIS answer, refusals included).
    pub status: StatusCode,
    /// The body (`application/xml`).
    pub body: Bytes,
    /// The lane that carried the request, sent as [`LANE_HEADER`].
    pub lane: Option<crate::Lane>,
}

impl HttpAnswer {
    /// A DUIS document, 200, no lane.
    pub fn xml(body: impl Into<Bytes>) -> Self {
        HttpAnswer {
            status: StatusCode::OK,
            body: body.into(),
            lane: None,
        }
    }
}

/// A future the handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HttpAnswer> + Send + 'static>>;

/// The XML half: given who sent what to which service, the DUIS answer.
pub trait DuisHandler: Send + Sync + 'static {
    /// Handles one request. `peer` is the TLS client's identity (`None` in plain mode).
    fn handle(
        &self,
        peer: Option<Arc<PeerIdentity>>,
        service: DuisService,
        body: Bytes,
    ) -> HandlerFuture;
}

/// What a stranger can make the HTTPS ingress hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections at once (TLS handshakes included); more are closed at accept.
    pub max_connections: usize,
    /// Connections at once from one source address; more from it are closed at accept, so
    /// that one client cannot take every slot of [`HttpLimits::max_connections`]. Higher than
    /// QUIC's per-source cap: HTTP/1.1 carries one request at a time per connection, so a
    /// busy client (several Users behind one address, each with a pool) needs many.
    pub max_connections_per_source: usize,
    /// Largest request body (DUIS requests are kilobytes; firmware images are the largest).
    pub max_body: usize,
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for a request's headers and body once it has started, and for an idle
    /// keep-alive connection's next request.
    pub request_timeout: Duration,
    /// How long a graceful shutdown waits for requests in progress.
    pub drain_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            max_connections_per_source: 256,
            max_body: 1 << 20,
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// A running HTTPS (or plain HTTP) ingress.
#[derive(Debug)]
pub struct HttpsServer {
    local_addr: SocketAddr,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsServer {
    /// Serves on `listener` (already bound: the caller reports a port in use before anything
    /// else starts). `tls: None` serves plain HTTP. Call from within a tokio runtime.
    pub fn start(
        listener: std::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: HttpLimits,
        handler: Arc<dyn DuisHandler>,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let stop = Arc::new(Notify::new());
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            limits,
            handler,
            Arc::clone(&stop),
        ));
        Ok(HttpsServer {
            local_addr,
            stop,
            task,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in progress finish (up to the drain timeout), then
    /// closes what is left.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// Open connections by source address.
type PerSource = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One connection's place in its source's count, given back when the connection ends.
struct SourceSlot {
    counts: PerSource,
    source: std::net::IpAddr,
}

impl SourceSlot {
    /// A place for a connection from `source`, `None` when it has its cap.
    fn take(counts: &PerSource, source: std::net::IpAddr, limits: HttpLimits) -> Option<Self> {
        let mut c = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = c.entry(source).or_insert(0);
        if *n >= limits.max_connections_per_source {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            counts: Arc::clone(counts),
            source,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = c.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.source);
            }
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: HttpLimits,
    handler: Arc<dyn DuisHandler>,
    stop: Arc<Notify>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_source: PerSource = Arc::default();
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.notified() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (tcp, from) = match accepted {
            Ok(a) => a,
            // Out of descriptors and the like: back off rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // At the cap the connection is closed at once: it costs the server a descriptor for
        // microseconds, not a handshake.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(tcp);
            continue;
        };
        let Some(source_slot) = SourceSlot::take(&per_source, from.ip(), limits) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let handler = Arc::clone(&handler);
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let _slot = (slot, source_slot);
            match acceptor {
                None => serve_connection(tcp, None, limits, handler).await,
                Some(acceptor) => {
                    let tls =
                        match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(tls)) => tls,
                            _ => return,
                        };
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|leaf| PeerIdentity::from_cert_der(leaf.as_ref()).ok());
                    // The verifier demands a client certificate from the CA; one whose subject
                    // names no User cannot send anything.
                    let Some(peer) = peer else { return };
                    serve_connection(tls, Some(Arc::new(peer)), limits, handler).await;
                }
            }
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.drain_timeout, drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

async fn serve_connection<S>(
    io: S,
    peer: Option<Arc<PeerIdentity>>,
    limits: HttpLimits,
    handler: Arc<dyn DuisHandler>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let peer = peer.clone();
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(respond(req, peer, limits, &*handler).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .serve_connection(TokioIo::new(io), service);
    let _ = conn.await;
}

async fn respond(
    req: Request<Incoming>,
    peer: Option<Arc<PeerIdentity>>,
    limits: HttpLimits,
    handler: &dyn DuisHandler,
) -> Response<Full<Bytes>> {
    let Some(service) = DuisService::from_path(req.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "not a DUIS service path: POST to /api/v1/serviceS, /api/v1/serviceT or /api/v1/serviceD\n");
    };
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "DUIS services take POST\n");
    }
    let body = Limited::new(req.into_body(), limits.max_body).collect();
    let body = match tokio::time::timeout(limits.request_timeout, body).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        Ok(Err(_)) | Err(_) => {
            return plain(StatusCode::BAD_REQUEST, "request body not received\n");
        }
    };
    let answer = handler.handle(peer, service, body).await;
    let mut r = Response::new(Full::new(answer.body));
    *r.status_mut() = answer.status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    if let Some(lane) = answer.lane {
        r.headers_mut().insert(
            LANE_HEADER,
            hyper::header::HeaderValue::from_static(lane_name(lane)),
        );
    }
    r
}

const fn lane_name(lane: crate::Lane) -> &'static str {
    match lane {
        crate::Lane::L0 => "L0",
        crate::Lane::L1 => "L1",
        crate::Lane::L2 => "L2",
        crate::Lane::L3 => "L3",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_command_variants_match_the_duis_services() {
        for s in DuisService::ALL {
            assert_eq!(DuisService::from_path(s.path()), Some(s));
        }
        assert_eq!(DuisService::from_path("/api/v1/serviceX"), None);
        assert_eq!(DuisService::from_path("/api/v1/serviceS/"), None);
        // Every CV 1..=8 belongs to exactly one service.
        for cv in 1..=8u8 {
            let homes = DuisService::ALL.iter().filter(|s| s.accepts(cv)).count();
            assert_eq!(homes, 1, "CV {cv}");
        }
        assert!(!DuisService::SendCommand.accepts(4));
        assert!(DuisService::Transform.accepts(4));
        assert!(DuisService::NonDevice.accepts(8));
    }

    struct Echo;

    impl DuisHandler for Echo {
        fn handle(
            &self,
            _peer: Option<Arc<PeerIdentity>>,
            _service: DuisService,
            body: Bytes,
        ) -> HandlerFuture {
            Box::pin(async move { HttpAnswer::xml(body) })
        }
    }

    async fn post(
        c: &mut crate::client::DuisClient,
    ) -> Result<crate::client::DuisReply, crate::client::DuisClientError> {
        c.post(DuisService::SendCommand, Bytes::from_static(b"<x/>"))
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_source_cannot_hold_more_than_its_connections() {
        use crate::client::DuisClient;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let limits = HttpLimits {
            max_connections_per_source: 2,
            ..HttpLimits::default()
        };
        let server = HttpsServer::start(listener, None, limits, Arc::new(Echo)).unwrap();
        let addr = server.local_addr();
        let mut a = DuisClient::connect_plain(addr).await.unwrap();
        let mut b = DuisClient::connect_plain(addr).await.unwrap();
        assert_eq!(post(&mut a).await.unwrap().body, "<x/>");
        assert_eq!(post(&mut b).await.unwrap().body, "<x/>");
        // A third from the same address is closed at accept: no answer on it.
        let third = match DuisClient::connect_plain(addr).await {
            Ok(mut c) => post(&mut c).await.is_err(),
            Err(_) => true,
        };
        assert!(third, "a third connection from one source was served");
        // One of the two ends: its place is given back, and a new connection is served (once
        // the server has seen the close).
        drop(a);
        let mut served = false;
        for _ in 0..200 {
            if let Ok(mut c) = DuisClient::connect_plain(addr).await {
                if post(&mut c).await.is_ok() {
                    served = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(served, "the freed place was not given back");
        assert!(
            post(&mut b).await.is_ok(),
            "the other connection still works"
        );
        drop(b);
        server.shutdown().await;
    }
}
