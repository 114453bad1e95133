//! The real `dcc-router serve` binary as a process, driven over loopback QUIC with the client
//! library: what happens at SIGTERM under load, and how much memory a hostile client can make
//! the server hold. Each test is bounded in time and uses only 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dcc_router::client::{Client, ClientError, ClientOptions, StreamMode};
use dcc_router::ingress::frame::MAX_FRAME_LEN;
use dcc_router::ingress::server::Limits;
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::server::bootstrap::demo_device;
use dcc_router::server::ServeConfig;
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::{DemoPki, DemoUser};
use dcc_signing::{CommandVariant, ExecutionKind, RequestId, UserRole};

/// The tests of this file measure a process (rate, RSS): one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `dcc-router serve` child process in a temp data dir, killed on drop if still running.
struct Serve {
    child: Child,
    addr: SocketAddr,
    pki: DemoPki,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts the binary with a config of loopback defaults plus `extra` (TOML appended).
    fn start(extra: &str) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("router.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nmetrics = \"\"\nduis = \"\"\ndata_dir = \"{}\"\nworkers = 2\n\
                 io_threads = 1\ndemo_devices = 200\n{extra}",
                data.display()
            ),
        )
        .unwrap();
        let stderr = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcc-router"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        // The address is on the first line; the rest of stdout is drained so that the child
        // never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("dcc-router listening on quic://") {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
        };
        let pki = DemoPki::load_from_dir(&data.join("pki")).unwrap();
        Serve {
            child,
            addr,
            pki,
            stderr,
            _dir: dir,
        }
    }

    fn tls(&self, user: &str) -> TlsMaterial {
        TlsMaterial::client_of_demo(&self.pki, user).unwrap()
    }

    /// Resident set size of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A signed request of `user` for one of its demo devices (even devices are supplier-a's).
fn request(user: &DemoUser, device: u64, counter: u64) -> Vec<u8> {
    let h = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::new(1).unwrap(),
        execution: ExecutionKind::OnDemand,
        srv: "2.2".parse().unwrap(),
        request_id: RequestId {
            originator: user.eui64,
            target: demo_device(device),
            counter,
        },
        execute_at: 0,
        signer: user.cert.id,
    };
    user.signer.sign_envelope(&h, b"payload").unwrap()
}

#[derive(Debug, Default)]
struct Outcomes {
    answers: BTreeMap<String, usize>,
    transport_errors: usize,
    timeouts: usize,
    other_errors: usize,
}

/// SIGTERM in the middle of 3,000 requests/s: every request ends, with an answer or an error
/// the client library surfaces, promptly (well before its request timeout); none is left
/// pending. Requests the server read after the stop are answered R11 "shutting-down".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_at_3000_per_second_leaves_no_request_pending() {
    const RATE: u64 = 3000;
    const RUN: Duration = Duration::from_millis(1500);
    const TERM_AT: Duration = Duration::from_millis(750);
    let _serial = SERIAL.lock().await;
    let test_start = Instant::now();
    let mut serve = Serve::start("[limits]\ndrain_timeout_ms = 2000\n");
    let user = serve.pki.user("supplier-a").unwrap().clone();
    let total = RATE * RUN.as_millis() as u64 / 1000;
    // Signed ahead of time, so that the pace is the network's, not the signer's.
    let requests: Vec<Vec<u8>> = (1..=total)
        .map(|c| request(&user, 2 * (c % 100), c))
        .collect();
    // The request timeout is longer than this test waits: a request left hanging shows up as
    // pending, not as a timeout.
    let client = Arc::new(
        Client::connect_with(
            serve.addr,
            "localhost",
            &serve.tls("supplier-a"),
            ClientOptions {
                mode: StreamMode::default(),
                request_timeout: Duration::from_secs(60),
                ..ClientOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let pending = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let start = tokio::time::Instant::now();
    let mut termed_at: Option<Instant> = None;
    // The server's exit status, and how long after SIGTERM it was seen.
    let mut exit = None;
    for (i, r) in requests.into_iter().enumerate() {
        let due = start + Duration::from_micros(i as u64 * 1_000_000 / RATE);
        tokio::time::sleep_until(due).await;
        if termed_at.is_none() && start.elapsed() >= TERM_AT {
            serve.sigterm();
            termed_at = Some(Instant::now());
        }
        if let (Some(t), None, 0) = (termed_at, &exit, i % 8) {
            exit = serve.child.try_wait().unwrap().map(|s| (s, t.elapsed()));
        }
        pending.fetch_add(1, Ordering::SeqCst);
        let (c, p, o) = (client.clone(), pending.clone(), outcomes.clone());
        tokio::spawn(async move {
            let result = c.send(r).await;
            let mut o = o.lock().unwrap();
            match result {
                Ok(a) => {
                    if a.detail == "shutting-down" {
                        assert_eq!(a.code, "R11", "one code at shutdown: {a:?}");
                    }
                    *o.answers.entry(a.code).or_default() += 1;
                }
                Err(ClientError::Transport(_)) => o.transport_errors += 1,
                Err(ClientError::Timeout(_)) => o.timeouts += 1,
                Err(e) => {
                    eprintln!("unexpected error: {e}");
                    o.other_errors += 1;
                }
            }
            drop(o);
            p.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let sent_for = start.elapsed();
    let last_sent = Instant::now();
    let termed_at = termed_at.expect("SIGTERM sent");
    // Everything must end on its own, long before the 60 s request timeout; the server must
    // exit too. Both are watched together, so that each time is its own.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ended_after = None;
    while Instant::now() < deadline && (ended_after.is_none() || exit.is_none()) {
        if ended_after.is_none() && pending.load(Ordering::SeqCst) == 0 {
            ended_after = Some(last_sent.elapsed());
        }
        if exit.is_none() {
            exit = serve
                .child
                .try_wait()
                .unwrap()
                .map(|s| (s, termed_at.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = pending.load(Ordering::SeqCst);
    let o = outcomes.lock().unwrap();
    let answered: usize = o.answers.values().sum();
    println!(
        "sent {total} requests in {sent_for:?} ({:.0}/s), SIGTERM after {TERM_AT:?}: \
         answered {answered} {:?}, transport errors {}, timeouts {}, other errors {}, \
         pending {left}; the last ended {ended_after:?} after the last was sent; server exit {exit:?} after \
         SIGTERM; test took {:?}",
        total as f64 / sent_for.as_secs_f64(),
        o.answers,
        o.transport_errors,
        o.timeouts,
        o.other_errors,
        test_start.elapsed(),
    );
    assert_eq!(left, 0, "requests neither answered nor failed");
    assert_eq!(
        answered + o.transport_errors + o.timeouts + o.other_errors,
        total as usize
    );
    assert_eq!((o.timeouts, o.other_errors), (0, 0));
    assert!(answered > 0, "nothing answered before the stop");
    let (status, _) = exit.unwrap_or_else(|| {
        panic!(
            "server still running 10 s after SIGTERM: {}",
            std::fs::read_to_string(&serve.stderr).unwrap_or_default()
        )
    });
    assert!(status.success(), "server exit: {status:?}");
}

/// Clients that never read their answers, open every stream they may and send as much as the
/// windows allow (maximal frames of junk, each answered R1, and partial frames) cannot grow the
/// server's RSS past baseline + connections × the documented per-connection bound
/// (`Limits::memory_per_connection`) + slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_stays_within_the_memory_bound() {
    const CONNECTIONS: usize = 4;
    /// Allocator slack (arenas, fragmentation) and the router's transient allocations.
    const SLACK_KIB: u64 = 16 * 1024;
    let _serial = SERIAL.lock().await;
    let limits_toml = "[limits]\nmax_streams_per_connection = 64\nstream_receive_window = 65536\n\
                       connection_receive_window = 1048576\nsend_window = 262144\n\
                       max_in_flight_per_connection = 64\n";
    let limits: Limits =
        ServeConfig::from_toml_str(limits_toml, std::path::Path::new("limits.toml"))
            .unwrap()
            .limits
            .into();
    let bound_kib = limits.memory_per_connection() / 1024;
    let streams = limits.max_streams_per_connection as usize;
    let serve = Serve::start(limits_toml);

    // Warm up: one ordinary connection and a few requests, then the baseline.
    let user = serve.pki.user("supplier-a").unwrap().clone();
    let warm = Client::connect(
        serve.addr,
        "localhost",
        &serve.tls("supplier-a"),
        StreamMode::default(),
    )
    .await
    .unwrap();
    for c in 1..=20 {
        warm.send(request(&user, 0, c)).await.unwrap();
    }
    warm.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = serve.rss_kib();

    // The hostile clients: tiny receive windows so that the server's answers back up at once,
    // and they never read.
    let mut cc = dcc_router::ingress::tls::client_config(&serve.tls("supplier-a")).unwrap();
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(quinn::VarInt::from_u32(1024));
    t.receive_window(quinn::VarInt::from_u32(8192));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    cc.transport_config(Arc::new(t));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(cc);
    let junk = Arc::new(dcc_router::ingress::frame::framed(&vec![0xA5u8; MAX_FRAME_LEN]).unwrap());
    let mut conns = Vec::new();
    let mut writers = Vec::new();
    let sent = Arc::new(AtomicUsize::new(0));
    for _ in 0..CONNECTIONS {
        let conn = endpoint
            .connect(serve.addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        for _ in 0..streams {
            let (mut s, r) = conn.open_bi().await.unwrap();
            let (junk, sent) = (junk.clone(), sent.clone());
            writers.push(tokio::spawn(async move {
                // Until the stream stops taking data for a while: flow control holds it.
                loop {
                    match tokio::time::timeout(Duration::from_secs(1), s.write_all(&junk)).await {
                        Ok(Ok(())) => {
                            sent.fetch_add(junk.len(), Ordering::Relaxed);
                        }
                        Ok(Err(e)) => panic!("stream failed: {e}"),
                        Err(_) => break,
                    }
                }
                (s, r)
            }));
        }
        // Every stream it may: one more does not open.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), conn.open_bi())
                .await
                .is_err(),
            "a stream past max_streams_per_connection opened"
        );
        conns.push(conn);
    }
    let mut held = Vec::new();
    let began = Instant::now();
    for w in writers {
        held.push(
            tokio::time::timeout(Duration::from_secs(20), w)
                .await
                .expect("writers blocked")
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = serve.rss_kib();
    let grown = loaded.saturating_sub(baseline);
    let allowed = CONNECTIONS as u64 * bound_kib + SLACK_KIB;
    println!(
        "RSS baseline {baseline} KiB; with {CONNECTIONS} connections × {streams} streams that \
         never read ({:.1} MiB sent, blocked after {:?}): {loaded} KiB, grown {grown} KiB = \
         {} KiB per connection; documented bound {bound_kib} KiB per connection, allowed \
         {allowed} KiB (incl. {SLACK_KIB} KiB slack)",
        sent.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
        began.elapsed(),
        grown / CONNECTIONS as u64,
    );
    assert!(
        grown <= allowed,
        "server RSS grew {grown} KiB, over {allowed} KiB"
    );
    // The server is still serving others.
    let other = Client::connect(
        serve.addr,
        "localhost",
        &serve.tls("supplier-b"),
        StreamMode::default(),
    )
    .await
    .unwrap();
    let b = serve.pki.user("supplier-b").unwrap().clone();
    assert_eq!(other.send(request(&b, 1, 1)).await.unwrap().code, "I0");
    drop(held);
    drop(conns);
}
