//! The QUIC shell on its own, with a stand-in handler: mutual TLS, framing limits, pipelining,
//! isolation between connections, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dcc_router::client::{Client, ClientError, ClientOptions, StreamMode};
use dcc_router::ingress::frame::{read_frame, write_frame};
use dcc_router::ingress::identity::PeerIdentity;
use dcc_router::ingress::server::{Answer, CloseReason, Handler, Limits, Server};
use dcc_router::ingress::tls::{server_config, TlsMaterial, ALPN};
use dcc_router::ingress::wire::{peek_request_id, WireAnswer};
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::{CommandVariant, ExecutionKind, RequestId, UserRole};

/// Answers `I0` after `delay`, echoing the Request ID and the peer's EUI-64 as detail.
struct Echo {
    delay: Duration,
    /// Requests the handler has been given.
    received: Arc<std::sync::atomic::AtomicUsize>,
}

impl Handler for Echo {
    fn handle(&self, peer: &Arc<PeerIdentity>, request: Vec<u8>, answer: Answer) {
        let delay = self.delay;
        let user = peer.user;
        self.received
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let reply = WireAnswer {
                request_id: peek_request_id(&request).ok(),
                lane: Some(2),
                router_micros: 1,
                code: "I0".into(),
                detail: user.to_string(),
            };
            answer.send(&reply.encode());
        });
    }

    fn shutdown_answer(&self, request: &[u8]) -> Vec<u8> {
        WireAnswer {
            request_id: peek_request_id(request).ok(),
            lane: None,
            router_micros: 0,
            code: "R-BUSY".into(),
            detail: "shutting down".into(),
        }
        .encode()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn server_tls(pki: &DemoPki) -> TlsMaterial {
    TlsMaterial::server_of_demo(pki)
}

fn client_tls(pki: &DemoPki, user: &str) -> TlsMaterial {
    TlsMaterial::client_of_demo(pki, user).unwrap()
}

fn envelope(pki: &DemoPki, user: &str, counter: u64) -> Vec<u8> {
    let u = pki.user(user).unwrap();
    let h = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::NON_CRITICAL_WAN,
        execution: ExecutionKind::OnDemand,
        srv: "2.2".parse().unwrap(),
        request_id: RequestId {
            originator: u.eui64,
            target: "00-11-22-33-44-55-66-77".parse().unwrap(),
            counter,
        },
        execute_at: 0,
        signer: u.cert.id,
    };
    u.signer.sign_envelope(&h, b"body").unwrap()
}

fn start(pki: &DemoPki, delay: Duration, limits: Limits) -> (Server, SocketAddr) {
    let (server, addr, _) = start_counting(pki, delay, limits);
    (server, addr)
}

/// As [`start`], with the count of requests the handler has been given.
fn start_counting(
    pki: &DemoPki,
    delay: Duration,
    limits: Limits,
) -> (Server, SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let received = Arc::default();
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        server_config(&server_tls(pki), limits.max_streams_per_connection).unwrap(),
        limits,
        Arc::new(Echo {
            delay,
            received: Arc::clone(&received),
        }),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr, received)
}

#[tokio::test]
async fn pipelined_and_per_request_answers_match_their_requests() {
    let pki = DemoPki::generate(now()).unwrap();
    let (server, addr) = start(&pki, Duration::from_millis(2), Limits::default());
    for mode in [StreamMode::Pipelined { streams: 3 }, StreamMode::PerRequest] {
        let client = Arc::new(
            Client::connect(addr, "localhost", &client_tls(&pki, "supplier-a"), mode)
                .await
                .unwrap(),
        );
        let mut tasks = Vec::new();
        for counter in 1..=300u64 {
            let c = client.clone();
            let env = envelope(&pki, "supplier-a", counter);
            tasks.push(tokio::spawn(async move { (counter, c.send(env).await) }));
        }
        for t in tasks {
            let (counter, answer) = t.await.unwrap();
            let answer = answer.unwrap();
            assert_eq!(answer.request_id.unwrap().counter, counter);
            assert_eq!(answer.code, "I0");
            assert_eq!(
                answer.detail,
                pki.user("supplier-a").unwrap().eui64.to_string()
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn no_client_certificate_no_connection() {
    let pki = DemoPki::generate(now()).unwrap();
    let (server, addr) = start(&pki, Duration::ZERO, Limits::default());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            pki.root.cert.der.clone(),
        ))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap(),
    )));
    let result = async {
        let conn = endpoint.connect(addr, "localhost").unwrap().await?;
        // TLS 1.3 may report the refusal only on first use.
        let (mut s, mut r) = conn.open_bi().await?;
        write_frame(&mut s, &envelope(&pki, "supplier-a", 1))
            .await
            .ok();
        s.finish().ok();
        Ok::<_, Box<dyn std::error::Error>>(read_frame(&mut r).await?)
    }
    .await;
    assert!(
        result.is_err() || result.as_ref().is_ok_and(|f| f.is_none()),
        "{result:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn client_certificate_from_another_ca_refused() {
    let pki = DemoPki::generate(now()).unwrap();
    let other = DemoPki::generate(now()).unwrap();
    let (server, addr) = start(&pki, Duration::ZERO, Limits::default());
    let mut tls = client_tls(&other, "supplier-a");
    tls.ca_pem = pki.root.cert.to_pem().into_bytes(); // trusts the right server...
    let client = Client::connect(addr, "localhost", &tls, StreamMode::PerRequest).await;
    // ...but its own certificate is from another CA: either the handshake or the first
    // request fails.
    if let Ok(c) = client {
        assert!(c.send(envelope(&other, "supplier-a", 1)).await.is_err());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_and_oversize_frames_cost_only_the_senders_stream() {
    let pki = DemoPki::generate(now()).unwrap();
    let (server, addr) = start(&pki, Duration::from_millis(1), Limits::default());
    let good = Arc::new(
        Client::connect(
            addr,
            "localhost",
            &client_tls(&pki, "supplier-b"),
            StreamMode::default(),
        )
        .await
        .unwrap(),
    );
    // The attacker: a raw connection with a valid client certificate.
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        dcc_router::ingress::tls::client_config(&client_tls(&pki, "supplier-a")).unwrap(),
    );
    let bad = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let mut streams = Vec::new();
    for i in 0..20u32 {
        let (mut s, r) = bad.open_bi().await.unwrap();
        if i % 2 == 0 {
            // Declares a frame far over the maximum.
            s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        } else {
            // Declares 100 bytes and stops after 3.
            s.write_all(&100u32.to_be_bytes()).await.unwrap();
            s.write_all(b"abc").await.unwrap();
            s.finish().unwrap();
        }
        streams.push((s, r));
    }
    let mut tasks = Vec::new();
    for counter in 1..=100u64 {
        let c = good.clone();
        let env = envelope(&pki, "supplier-b", counter);
        tasks.push(tokio::spawn(async move { c.send(env).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().code, "I0");
    }
    // The attacker's streams got no answers.
    for (_s, mut r) in streams {
        assert!(!matches!(read_frame(&mut r).await, Ok(Some(_))));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        drain_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let (server, addr, received) = start_counting(&pki, Duration::from_millis(300), limits);
    let client = Arc::new(
        Client::connect(
            addr,
            "localhost",
            &client_tls(&pki, "supplier-a"),
            StreamMode::default(),
        )
        .await
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for counter in 1..=50u64 {
        let c = client.clone();
        let env = envelope(&pki, "supplier-a", counter);
        tasks.push(tokio::spawn(async move { c.send(env).await }));
    }
    // In flight means received and not yet answered: wait (bounded) until the server holds
    // all 50 — on a loaded machine the client may still be writing some after a fixed sleep,
    // and a request never received cannot be drained.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while received.load(std::sync::atomic::Ordering::SeqCst) < 50 {
        assert!(
            std::time::Instant::now() < until,
            "the server never received all 50"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.shutdown().await;
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().code,
            "I0",
            "an in-flight request was lost"
        );
    }
}

#[tokio::test]
async fn connections_over_the_cap_are_refused() {
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        max_connections: 1,
        admin_reserved_connections: 0,
        ..Limits::default()
    };
    let (server, addr) = start(&pki, Duration::ZERO, limits);
    let first = Client::connect(
        addr,
        "localhost",
        &client_tls(&pki, "supplier-a"),
        StreamMode::PerRequest,
    )
    .await
    .unwrap();
    assert_eq!(
        first
            .send(envelope(&pki, "supplier-a", 1))
            .await
            .unwrap()
            .code,
        "I0"
    );
    let second = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(
            addr,
            "localhost",
            &client_tls(&pki, "supplier-b"),
            StreamMode::PerRequest,
        ),
    )
    .await
    .expect("refusal is prompt");
    assert!(second.is_err());
    server.shutdown().await;
}

/// Answers every request at once with a fixed 48-byte payload, counting what it handled.
struct Counting {
    handled: Arc<std::sync::atomic::AtomicUsize>,
}

impl Handler for Counting {
    fn handle(&self, _peer: &Arc<PeerIdentity>, _request: Vec<u8>, answer: Answer) {
        self.handled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        answer.send(&[7u8; 48]);
    }

    fn shutdown_answer(&self, _request: &[u8]) -> Vec<u8> {
        vec![0u8; 48]
    }
}

/// A client that sends but does not read its answers cannot make the server queue answers
/// without bound: once the client's receive window is full, the answers waiting to be written
/// hold the connection's in-flight budget and the server stops reading that client's requests.
/// When the client reads again, every request is answered.
#[tokio::test]
async fn a_client_that_does_not_read_cannot_grow_the_servers_answer_queue() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const N: usize = 2000;
    const BUDGET: usize = 8;
    let pki = DemoPki::generate(now()).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let limits = Limits {
        max_in_flight_per_connection: BUDGET,
        ..Limits::default()
    };
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        server_config(&server_tls(&pki), limits.max_streams_per_connection).unwrap(),
        limits,
        Arc::new(Counting {
            handled: handled.clone(),
        }),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();

    // A client whose receive windows hold about 40 answers.
    let mut cc = dcc_router::ingress::tls::client_config(&client_tls(&pki, "supplier-a")).unwrap();
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(quinn::VarInt::from_u32(2048));
    t.receive_window(quinn::VarInt::from_u32(4096));
    cc.transport_config(Arc::new(t));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(cc);
    let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..N {
            write_frame(&mut s, &[1u8; 100]).await.unwrap();
        }
        s.finish().unwrap();
        s
    });

    // Let the server read what it will (until the count stops moving), then look.
    let mut last = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = handled.load(Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let stalled_at = handled.load(Ordering::SeqCst);
    let window_answers = 2048 / (4 + 48);
    assert!(
        stalled_at > 0 && stalled_at <= window_answers + 2 * BUDGET,
        "the server handled {stalled_at} of {N} requests for a client that reads nothing \
         (at most ~{window_answers} answers fit its window, plus the budget {BUDGET})"
    );

    // Reading resumes everything.
    let mut answers = 0;
    let read_all = async {
        while let Some(frame) = read_frame(&mut r).await.unwrap() {
            assert_eq!(frame, vec![7u8; 48]);
            answers += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .expect("all answers within 60 s");
    assert_eq!((answers, handled.load(Ordering::SeqCst)), (N, N));
    drop(writer.await.unwrap());
    server.shutdown().await;
}

/// A request whose answer does not come fails at the client's request timeout, in both
/// stream modes, instead of waiting forever.
#[tokio::test]
async fn a_request_without_answer_fails_at_the_request_timeout() {
    let pki = DemoPki::generate(now()).unwrap();
    let (server, addr) = start(&pki, Duration::from_secs(20), Limits::default());
    for mode in [StreamMode::default(), StreamMode::PerRequest] {
        let options = ClientOptions {
            mode,
            request_timeout: Duration::from_millis(200),
            ..ClientOptions::default()
        };
        let client =
            Client::connect_with(addr, "localhost", &client_tls(&pki, "supplier-a"), options)
                .await
                .unwrap();
        let began = std::time::Instant::now();
        let r = client.send(envelope(&pki, "supplier-a", 1)).await;
        assert!(matches!(r, Err(ClientError::Timeout(_))), "{mode:?}: {r:?}");
        assert!(began.elapsed() < Duration::from_secs(2));
    }
    drop(server);
}

/// When the server goes away, requests waiting for answers fail at once with a transport
/// error (not at their timeout), and so does every request sent afterwards.
#[tokio::test]
async fn requests_fail_promptly_when_the_connection_ends_and_after() {
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        drain_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    // Answers take longer than the drain allows: the requests are cut off by the close.
    let (server, addr) = start(&pki, Duration::from_secs(20), limits);
    let client = Arc::new(
        Client::connect(
            addr,
            "localhost",
            &client_tls(&pki, "supplier-a"),
            StreamMode::default(),
        )
        .await
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for counter in 1..=20u64 {
        let c = client.clone();
        let env = envelope(&pki, "supplier-a", counter);
        tasks.push(tokio::spawn(async move { c.send(env).await }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = std::time::Instant::now();
    server.shutdown().await;
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("failed promptly, not at the 30 s request timeout")
            .unwrap();
        assert!(matches!(r, Err(ClientError::Transport(_))), "{r:?}");
        // The cause travels as a typed source (the connection's or stream's error), not a
        // string.
        let e = r.unwrap_err();
        assert_eq!(e.code(), "transport");
        assert!(
            std::error::Error::source(&e)
                .is_some_and(|s| s.is::<dcc_router::client::TransportError>()),
            "{e:?}"
        );
    }
    // Sent after the failure: refused at once.
    let r = tokio::time::timeout(
        Duration::from_secs(1),
        client.send(envelope(&pki, "supplier-a", 99)),
    )
    .await
    .expect("prompt");
    assert!(matches!(r, Err(ClientError::Transport(_))), "{r:?}");
    assert!(began.elapsed() < Duration::from_secs(6));
}

/// Opens `n` connections as `user` on a runtime of their own, proves each is served, then
/// abandons them: the runtime's only thread blocks, so nothing more is sent or acknowledged
/// (a peer that vanished without closing). Sending on `release` lets the thread end.
fn abandoned_connections(
    addr: SocketAddr,
    tls: TlsMaterial,
    env: Vec<Vec<u8>>,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            endpoint
                .set_default_client_config(dcc_router::ingress::tls::client_config(&tls).unwrap());
            let mut conns = Vec::new();
            for e in env {
                let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
                let (mut s, mut r) = conn.open_bi().await.unwrap();
                write_frame(&mut s, &e).await.unwrap();
                assert!(read_frame(&mut r).await.unwrap().is_some());
                conns.push((conn, s, r));
            }
            ready_tx.send(()).unwrap();
            // Deliberately blocking the runtime: this is the abandonment.
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
            drop(conns);
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("abandoned connections served first");
    (release_tx, thread)
}

/// One User may hold `max_connections_per_user` connections: the next is closed with a reason
/// that says why, while other Users still get in. Connections that go silent free their
/// slots within the idle timeout; a live client on keep-alives is not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_connection_cap_and_abandoned_slots_freed_within_the_idle_timeout() {
    const CAP: usize = 3;
    const IDLE: Duration = Duration::from_millis(1500);
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        max_connections_per_user: CAP,
        idle_timeout: IDLE,
        ..Limits::default()
    };
    let (server, addr) = start(&pki, Duration::ZERO, limits);
    // One live client (keep-alives well under the idle timeout) and CAP - 1 abandoned ones.
    let live = Client::connect_with(
        addr,
        "localhost",
        &client_tls(&pki, "supplier-a"),
        ClientOptions {
            keep_alive: Duration::from_millis(300),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        live.send(envelope(&pki, "supplier-a", 1))
            .await
            .unwrap()
            .code,
        "I0"
    );
    let envs = (2..=CAP as u64)
        .map(|c| envelope(&pki, "supplier-a", c))
        .collect();
    let (release, thread) = abandoned_connections(addr, client_tls(&pki, "supplier-a"), envs);
    let abandoned_at = std::time::Instant::now();

    // The User is at its cap: one more is closed, with the reason.
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        dcc_router::ingress::tls::client_config(&client_tls(&pki, "supplier-a")).unwrap(),
    );
    let extra = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(5), extra.closed())
        .await
        .expect("refused promptly");
    match &why {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(
                c.error_code,
                quinn::VarInt::from_u32(CloseReason::UserConnectionLimit.code())
            );
            assert_eq!(&c.reason[..], b"max_connections_per_user reached");
        }
        other => panic!("expected an application close, got {other}"),
    }
    println!("connection {} of one User refused: {why}", CAP + 1);
    // The cap is per User: another User gets in.
    let other = Client::connect(
        addr,
        "localhost",
        &client_tls(&pki, "supplier-b"),
        StreamMode::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        other
            .send(envelope(&pki, "supplier-b", 1))
            .await
            .unwrap()
            .code,
        "I0"
    );
    other.close().await;

    // The abandoned connections go within the idle timeout (plus a scheduling margin).
    while server.connections() > 1 {
        assert!(
            abandoned_at.elapsed() < IDLE + Duration::from_secs(2),
            "abandoned connections still held after {:?} ({} open)",
            abandoned_at.elapsed(),
            server.connections()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let freed_after = abandoned_at.elapsed();
    println!(
        "abandoned slots freed {freed_after:?} after the peers went silent (idle timeout {IDLE:?})"
    );
    // Their slots are free again: CAP - 1 new connections of the same User are served.
    let mut fresh = Vec::new();
    for c in 0..(CAP - 1) as u64 {
        let f = Client::connect(
            addr,
            "localhost",
            &client_tls(&pki, "supplier-a"),
            StreamMode::PerRequest,
        )
        .await
        .unwrap();
        assert_eq!(
            f.send(envelope(&pki, "supplier-a", 100 + c))
                .await
                .unwrap()
                .code,
            "I0"
        );
        fresh.push(f);
    }
    // The live client sat idle longer than the idle timeout and is still served.
    assert!(abandoned_at.elapsed() > IDLE);
    assert_eq!(
        live.send(envelope(&pki, "supplier-a", 200))
            .await
            .unwrap()
            .code,
        "I0"
    );
    release.send(()).ok();
    thread.join().unwrap();
    server.shutdown().await;
}

/// A UDP relay that passes the first datagram a client sends (its Initial) to `server` and
/// nothing else, either way: a stranger that starts one handshake and walks away (or a spoofed
/// source address, which never sees the answer).
async fn one_way_once(server: SocketAddr) -> SocketAddr {
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut first = true;
        while let Ok((n, _)) = front.recv_from(&mut buf).await {
            if std::mem::take(&mut first) {
                let _ = back.send_to(&buf[..n], server).await;
            }
        }
    });
    addr
}

/// Strangers that start handshakes and never finish hold at most half the handshake cap
/// (past it, unvalidated addresses get a Retry, which costs the server nothing), lose their
/// slots at the handshake timeout, and do not keep a User out meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_capped_timed_out_and_do_not_keep_users_out() {
    const MAX_HANDSHAKES: usize = 4;
    const STRANGERS: usize = 30;
    const TIMEOUT: Duration = Duration::from_millis(1000);
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        max_handshakes: MAX_HANDSHAKES,
        handshake_timeout: TIMEOUT,
        ..Limits::default()
    };
    let (server, addr) = start(&pki, Duration::ZERO, limits);
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        dcc_router::ingress::tls::client_config(&client_tls(&pki, "supplier-a")).unwrap(),
    );
    let began = std::time::Instant::now();
    let mut strangers = Vec::new();
    for _ in 0..STRANGERS {
        let relay = one_way_once(addr).await;
        strangers.push(endpoint.connect(relay, "localhost").unwrap());
    }
    let mut peak = 0;
    for _ in 0..30 {
        peak = peak.max(server.handshakes());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A User gets in meanwhile: its client answers the Retry.
    let user = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(
            addr,
            "localhost",
            &client_tls(&pki, "supplier-b"),
            StreamMode::default(),
        ),
    )
    .await
    .expect("a User is not kept out")
    .unwrap();
    assert_eq!(
        user.send(envelope(&pki, "supplier-b", 1))
            .await
            .unwrap()
            .code,
        "I0"
    );
    peak = peak.max(server.handshakes());
    // The stalled handshakes go at the handshake timeout.
    while server.handshakes() > 0 {
        assert!(
            began.elapsed() < TIMEOUT + Duration::from_secs(3),
            "{} handshakes still in progress after {:?}",
            server.handshakes(),
            began.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{STRANGERS} stalled handshakes: peak {peak} in progress (cap {MAX_HANDSHAKES}), {} \
         Retry sent, all gone {:?} after they started (timeout {TIMEOUT:?})",
        server.retries(),
        began.elapsed()
    );
    assert!((1..=MAX_HANDSHAKES / 2).contains(&peak), "peak {peak}");
    assert!(server.retries() >= STRANGERS - MAX_HANDSHAKES / 2);
    drop(strangers);
    server.shutdown().await;
}

/// One source address holds at most `max_connections_per_source` connections; a connection
/// closed gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_source_address_are_capped() {
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        max_connections_per_source: 2,
        ..Limits::default()
    };
    let (server, addr) = start(&pki, Duration::ZERO, limits);
    let connect = |user: &'static str| {
        let tls = client_tls(&pki, user);
        async move { Client::connect(addr, "localhost", &tls, StreamMode::PerRequest).await }
    };
    let a = connect("supplier-a").await.unwrap();
    let b = connect("supplier-b").await.unwrap();
    assert_eq!(
        b.send(envelope(&pki, "supplier-b", 1)).await.unwrap().code,
        "I0"
    );
    let third = tokio::time::timeout(Duration::from_secs(5), connect("srp"))
        .await
        .expect("refused promptly");
    assert!(
        third.is_err(),
        "a third connection from 127.0.0.1 was let in"
    );
    a.close().await;
    // The slot is given back when the closed connection is gone on the server.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = connect("srp").await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = again.expect("the closed connection's slot came back");
    assert_eq!(
        again.send(envelope(&pki, "srp", 1)).await.unwrap().code,
        "I0"
    );
    drop(b);
    server.shutdown().await;
}

/// Echo, with one admin User.
struct WithAdmin {
    echo: Echo,
    admin: dcc_signing::Eui64,
}

impl Handler for WithAdmin {
    fn handle(&self, peer: &Arc<PeerIdentity>, request: Vec<u8>, answer: Answer) {
        self.echo.handle(peer, request, answer);
    }

    fn shutdown_answer(&self, request: &[u8]) -> Vec<u8> {
        self.echo.shutdown_answer(request)
    }

    fn is_admin(&self, peer: &PeerIdentity) -> bool {
        peer.user == self.admin
    }
}

/// When Users hold every connection not reserved for admins, another User is closed with a
/// reason, and an admin still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_gets_in_when_users_hold_every_other_connection() {
    let pki = DemoPki::generate(now()).unwrap();
    let limits = Limits {
        max_connections: 3,
        admin_reserved_connections: 1,
        ..Limits::default()
    };
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        server_config(&server_tls(&pki), limits.max_streams_per_connection).unwrap(),
        limits,
        Arc::new(WithAdmin {
            echo: Echo {
                delay: Duration::ZERO,
                received: Arc::default(),
            },
            admin: pki.user("admin").unwrap().eui64,
        }),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let connect = |user: &'static str| {
        let tls = client_tls(&pki, user);
        async move { Client::connect(addr, "localhost", &tls, StreamMode::PerRequest).await }
    };
    let a = connect("supplier-a").await.unwrap();
    let b = connect("supplier-b").await.unwrap();
    // Served, so that the server has counted them (a client's handshake ends before the
    // server's does).
    assert_eq!(
        a.send(envelope(&pki, "supplier-a", 1)).await.unwrap().code,
        "I0"
    );
    assert_eq!(
        b.send(envelope(&pki, "supplier-b", 1)).await.unwrap().code,
        "I0"
    );
    // A third User: closed after its handshake, with the reason.
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        dcc_router::ingress::tls::client_config(&client_tls(&pki, "srp")).unwrap(),
    );
    let srp = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(5), srp.closed())
        .await
        .expect("closed promptly");
    match &why {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(
                c.error_code,
                quinn::VarInt::from_u32(CloseReason::ConnectionLimit.code())
            );
            assert_eq!(&c.reason[..], b"max_connections reached");
        }
        other => panic!("expected an application close, got {other}"),
    }
    // The admin gets the reserved connection and is served.
    let admin = tokio::time::timeout(Duration::from_secs(5), connect("admin"))
        .await
        .expect("prompt")
        .unwrap();
    assert_eq!(
        admin.send(envelope(&pki, "admin", 1)).await.unwrap().code,
        "I0"
    );
    // Now every connection is taken: even an admin's second is refused.
    let more = tokio::time::timeout(Duration::from_secs(5), async {
        let c = connect("admin").await?;
        c.send(envelope(&pki, "admin", 2)).await
    })
    .await
    .expect("prompt");
    assert!(more.is_err(), "{more:?}");
    server.shutdown().await;
}
