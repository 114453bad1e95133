//! A flood of QUIC client Initials from strangers: no credentials, no handshake ever finished.
//!
//! Each "stranger" is a fresh quinn client endpoint on `127.0.0.1:0` (a new source port, so a
//! new connection to the server; `--source 127.0.0.2` puts the strangers on another loopback
//! address than the Users) whose TLS configuration has no client certificate and accepts
//! any server certificate. It calls `connect(target, "localhost")`, which sends an Initial, and
//! is then left alone for `--hold-ms`, after which it vanishes *silently* (its socket stops
//! sending first, so no CONNECTION_CLOSE tells the server to free anything).
//!
//! What a stranger does with what the server sends back (`--mode`):
//!
//! * `retry` (default, the stronger attacker): it answers a QUIC Retry (quinn does so by
//!   itself: a second Initial carrying the token, so its address counts as validated) but
//!   drops every other packet from the server, so the handshake never progresses; quinn keeps
//!   retransmitting its Initial until the stranger vanishes.
//! * `silent`: it drops everything from the server (a spoofed-address flood seen from the
//!   server: Initials whose sender never reads an answer, Retry included).
//! * `open`: it drops nothing; the TLS handshake runs until the server refuses the missing
//!   client certificate (costs the server a full handshake, signature included, per stranger).
//!
//! Bounded: it stops after `--duration`, keeps at most `--max-alive` strangers at once, and
//! only targets loopback addresses.
//!
//! ```text
//! cargo run --release -p dcc-router --example initial_flood -- \
//!     --target 127.0.0.1:4433 --rate 1100 --duration 15
//! ```
//!
//! Prints one line with what was sent and received (and, with `--json`, the same as JSON).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, Runtime, UdpPoller};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Flood a local dcc-router with QUIC Initials from credential-less strangers.
#[derive(Debug, Parser)]
struct Args {
    /// Server address (loopback only).
    #[arg(long, default_value = "127.0.0.1:4433")]
    target: SocketAddr,
    /// Source address of the strangers (loopback only): another one than the Users' (e.g.
    /// 127.0.0.2) shows what the flood does to the server's global caps alone, apart from the
    /// per-source cap the Users' 127.0.0.1 would otherwise share with it.
    #[arg(long, default_value = "127.0.0.1")]
    source: std::net::IpAddr,
    /// New strangers (connection attempts, each from a new source port) per second.
    #[arg(long, default_value_t = 1100.0)]
    rate: f64,
    /// How long to flood, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// What a stranger does with the server's packets.
    #[arg(long, value_enum, default_value_t = Mode::Retry)]
    mode: Mode,
    /// How long each stranger lives (keeps its endpoint and retransmits) before vanishing.
    #[arg(long, default_value_t = 5000)]
    hold_ms: u64,
    /// Strangers alive at once, at most (the oldest vanishes early past it): bounds sockets.
    #[arg(long, default_value_t = 4096)]
    max_alive: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Answer Retry, drop everything else.
    Retry,
    /// Drop everything the server sends.
    Silent,
    /// Drop nothing (the handshake fails on the missing client certificate).
    Open,
}

/// What all strangers sent and received.
#[derive(Debug, Default)]
struct Stats {
    /// Datagrams sent whose first packet is a long-header Initial.
    initials_sent: AtomicU64,
    /// Other datagrams sent (Handshake, 1-RTT, closes).
    other_sent: AtomicU64,
    /// Retry packets received from the server.
    retries_received: AtomicU64,
    /// Other datagrams received (Initial/Handshake flights, refusals, closes).
    other_received: AtomicU64,
    /// Received datagrams dropped on purpose (by `--mode`).
    dropped: AtomicU64,
}

/// QUIC v1 long-header packet type of a datagram's first byte (`None` for a short header).
fn long_type(first: u8) -> Option<u8> {
    (first & 0x80 != 0).then_some((first >> 4) & 0x03)
}

const INITIAL: u8 = 0;
const RETRY: u8 = 3;

/// A stranger's UDP socket: the real one, counting what passes and dropping what `--mode`
/// says, and mutable so the stranger can vanish without a word.
#[derive(Debug)]
struct StrangerSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    mode: Mode,
    muted: AtomicBool,
    stats: Arc<Stats>,
}

impl AsyncUdpSocket for StrangerSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Arc::clone(&self.inner).create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        if self.muted.load(Ordering::Relaxed) {
            return Ok(()); // vanished: nothing more leaves this socket
        }
        self.inner.try_send(transmit)?;
        let seg = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for d in transmit.contents.chunks(seg) {
            let counter = match d.first().copied().and_then(long_type) {
                Some(INITIAL) => &self.stats.initials_sent,
                _ => &self.stats.other_sent,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let n = match self.inner.poll_recv(cx, bufs, meta) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        for (m, buf) in meta.iter_mut().zip(bufs.iter()).take(n) {
            let stride = m.stride.max(1);
            let mut all_retry = true;
            for d in buf[..m.len].chunks(stride) {
                if d.first().copied().and_then(long_type) == Some(RETRY) {
                    self.stats.retries_received.fetch_add(1, Ordering::Relaxed);
                } else {
                    all_retry = false;
                    self.stats.other_received.fetch_add(1, Ordering::Relaxed);
                }
            }
            let keep = match self.mode {
                Mode::Open => true,
                Mode::Retry => all_retry,
                Mode::Silent => false,
            };
            if !keep {
                self.stats
                    .dropped
                    .fetch_add(m.len.div_ceil(stride) as u64, Ordering::Relaxed);
                m.len = 0; // quinn processes nothing of an empty buffer
            }
        }
        Poll::Ready(Ok(n))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Accepts any server certificate: the handshake is never meant to finish.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration of every stranger: no client certificate, any server accepted.
fn stranger_config() -> Result<quinn::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![dcc_router::ingress::tls::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
}

/// One stranger: its endpoint, its connection attempt (dropping it would send a close), and
/// its socket (to mute it before it goes).
struct Stranger {
    socket: Arc<StrangerSocket>,
    _connecting: quinn::Connecting,
    _endpoint: quinn::Endpoint,
    born: Instant,
}

impl fmt::Debug for Stranger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stranger")
            .field("born", &self.born)
            .finish()
    }
}

impl Stranger {
    fn new(
        source: std::net::IpAddr,
        target: SocketAddr,
        config: &quinn::ClientConfig,
        mode: Mode,
        stats: &Arc<Stats>,
        runtime: &Arc<dyn Runtime>,
    ) -> Result<Self, Error> {
        let udp = std::net::UdpSocket::bind((source, 0))?;
        let socket = Arc::new(StrangerSocket {
            inner: runtime.wrap_udp_socket(udp)?,
            mode,
            muted: AtomicBool::new(false),
            stats: Arc::clone(stats),
        });
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            Arc::clone(&socket) as Arc<dyn AsyncUdpSocket>,
            Arc::clone(runtime),
        )?;
        let connecting = endpoint.connect_with(config.clone(), target, "localhost")?;
        Ok(Stranger {
            socket,
            _connecting: connecting,
            _endpoint: endpoint,
            born: Instant::now(),
        })
    }

    /// Goes without a word: the socket is muted before the connection and endpoint drop.
    fn vanish(self) {
        self.socket.muted.store(true, Ordering::Relaxed);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    if !args.target.ip().is_loopback() {
        return Err(format!("--target {}: loopback addresses only", args.target).into());
    }
    if !args.source.is_loopback() {
        return Err(format!("--source {}: loopback addresses only", args.source).into());
    }
    if !(args.rate > 0.0 && args.rate <= 100_000.0) {
        return Err("--rate: 0 < N <= 100000".into());
    }
    if !(args.duration > 0.0 && args.duration <= 600.0) {
        return Err("--duration: 0 < S <= 600".into());
    }
    let config = stranger_config()?;
    let runtime: Arc<dyn Runtime> = Arc::new(quinn::TokioRuntime);
    let stats = Arc::new(Stats::default());
    let hold = Duration::from_millis(args.hold_ms);
    let max_alive = args.max_alive.max(1);

    let start = Instant::now();
    let total = (args.rate * args.duration).round() as u64;
    let mut alive: VecDeque<Stranger> = VecDeque::new();
    let mut started = 0u64;
    let mut failed = 0u64;
    let mut peak_alive = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while started < total {
        tick.tick().await;
        let now = Instant::now();
        while alive.front().is_some_and(|s| now - s.born >= hold) {
            if let Some(s) = alive.pop_front() {
                s.vanish();
            }
        }
        let due = ((now - start).as_secs_f64() * args.rate) as u64;
        while started < due.min(total) {
            if alive.len() >= max_alive {
                if let Some(s) = alive.pop_front() {
                    s.vanish();
                }
            }
            match Stranger::new(
                args.source,
                args.target,
                &config,
                args.mode,
                &stats,
                &runtime,
            ) {
                Ok(s) => alive.push_back(s),
                Err(e) => {
                    if failed == 0 {
                        eprintln!("initial_flood: a stranger failed to start: {e}");
                    }
                    failed += 1;
                }
            }
            started += 1;
        }
        peak_alive = peak_alive.max(alive.len());
    }
    let sending = start.elapsed();
    // The last strangers get their hold too, so the flood's tail looks like its body.
    while let Some(s) = alive.pop_front() {
        let left = hold.saturating_sub(s.born.elapsed());
        if !left.is_zero() {
            tokio::time::sleep(left).await;
        }
        s.vanish();
    }
    // Let the endpoint drivers see their connections go.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let secs = sending.as_secs_f64();
    if args.json {
        println!(
            "{{\"source\":\"{}\",\"mode\":\"{:?}\",\"strangers\":{},\"failed\":{},\"seconds\":{:.3},\"strangers_per_s\":{:.1},\"initials_sent\":{},\"other_sent\":{},\"retries_received\":{},\"other_received\":{},\"dropped\":{},\"peak_alive\":{}}}",
            args.source,
            args.mode,
            started - failed,
            failed,
            secs,
            (started - failed) as f64 / secs,
            get(&stats.initials_sent),
            get(&stats.other_sent),
            get(&stats.retries_received),
            get(&stats.other_received),
            get(&stats.dropped),
            peak_alive,
        );
    } else {
        println!(
            "initial_flood: mode {:?}: {} strangers in {:.2} s ({:.0}/s), {} failed to start; \
             sent {} Initial datagrams and {} others; received {} Retry and {} other \
             datagrams ({} dropped on purpose); at most {} alive at once",
            args.mode,
            started - failed,
            secs,
            (started - failed) as f64 / secs,
            failed,
            get(&stats.initials_sent),
            get(&stats.other_sent),
            get(&stats.retries_received),
            get(&stats.other_received),
            get(&stats.dropped),
            peak_alive,
        );
    }
    Ok(())
}
