//! `dcc-router serve` end to end over loopback QUIC, each test in a fresh temp dir: the real
//! server (`server::start`), the client library, and the admin channel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dcc_router::client::admin_call;
use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::server::admin_proto::AdminRequest;
use dcc_router::server::bootstrap::demo_device;
use dcc_router::server::{self, Running, ServeConfig};
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::{DemoPki, DemoUser};
use dcc_signing::{CommandVariant, Eui64, ExecutionKind, RequestId, UserRole};

struct Env {
    _dir: tempfile::TempDir,
    pki: DemoPki,
    running: Option<Running>,
}

impl Env {
    async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics: Some("127.0.0.1:0".parse().unwrap()),
            duis: Some("127.0.0.1:0".parse().unwrap()),
            duis_plain: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: dir.path().to_path_buf(),
            workers: 2,
            demo_devices: 200,
            ..ServeConfig::default()
        };
        tweak(&mut cfg);
        let running = server::start(&cfg).await.unwrap();
        assert!(running.created_pki);
        let pki = DemoPki::load_from_dir(&cfg.pki_dir()).unwrap();
        Env {
            _dir: dir,
            pki,
            running: Some(running),
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    fn user(&self, name: &str) -> &DemoUser {
        self.pki.user(name).unwrap()
    }

    fn tls(&self, name: &str) -> TlsMaterial {
        TlsMaterial::client_of_demo(&self.pki, name).unwrap()
    }

    async fn client(&self, name: &str) -> Client {
        Client::connect(
            self.running().addr,
            "localhost",
            &self.tls(name),
            StreamMode::default(),
        )
        .await
        .unwrap()
    }

    async fn admin(&self, req: AdminRequest) -> dcc_router::server::admin_proto::AdminAnswer {
        admin_call(self.running().addr, "localhost", &self.tls("admin"), &req)
            .await
            .unwrap()
    }
}

/// A signed request: `sender` originates, `signer` signs with its certificate.
fn request(
    sender: &DemoUser,
    signer: &DemoUser,
    srv: &str,
    cv: u8,
    device: Eui64,
    counter: u64,
) -> Vec<u8> {
    let h = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::new(cv).unwrap(),
        execution: ExecutionKind::OnDemand,
        srv: srv.parse().unwrap(),
        request_id: RequestId {
            originator: sender.eui64,
            target: device,
            counter,
        },
        execute_at: 0,
        signer: signer.cert.id,
    };
    signer.signer.sign_envelope(&h, b"payload").unwrap()
}

// Demo devices alternate between the two Suppliers by name: even → supplier-a, odd → supplier-b.
const A_DEVICE: u64 = 0;
const B_DEVICE: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_request_succeeds_and_metrics_count_it() {
    let env = Env::start().await;
    let a = env.user("supplier-a");
    let client = env.client("supplier-a").await;
    let answer = client
        .send(request(a, a, "2.2", 1, demo_device(A_DEVICE), 1))
        .await
        .unwrap();
    assert_eq!(answer.code, "I0", "{answer:?}");
    assert_eq!(answer.request_id.unwrap().counter, 1);
    // A read goes to L3.
    let answer = client
        .send(request(a, a, "4.1.1", 1, demo_device(A_DEVICE + 50), 2))
        .await
        .unwrap();
    assert_eq!((answer.code.as_str(), answer.lane), ("I0", Some(3)));

    let metrics_addr = env.running().metrics_addr.unwrap();
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(metrics_addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("dcc_router_responses_total{lane=\"L3\",code=\"I0\",outcome=\"admitted\"} 1"),
        "{body}"
    );
    assert!(body.contains("dcc_router_verify_seconds_count 2"), "{body}");
    // Per lane: the top-up (L1) and the read (L3) each waited for a worker and were answered;
    // L0 saw none. Every bucket line is cumulative, ending at the count.
    for (lane, n) in [("L0", 0), ("L1", 1), ("L2", 0), ("L3", 1)] {
        for name in ["dcc_router_queued_seconds", "dcc_router_in_router_seconds"] {
            assert!(
                body.contains(&format!("{name}_count{{lane=\"{lane}\"}} {n}\n")),
                "{name} {lane}: {body}"
            );
            assert!(
                body.contains(&format!(
                    "{name}_bucket{{lane=\"{lane}\",le=\"+Inf\"}} {n}\n"
                )),
                "{name} {lane}: {body}"
            );
        }
    }
    assert!(
        body.contains("dcc_router_in_router_seconds_bucket{lane=\"L1\",le=\"10\"} 1\n"),
        "one L1 answer within 10 s: {body}"
    );
    assert!(body.contains("dcc_router_lane_queue_depth{lane=\"L0\"} 0"));
    // The capacity estimate: the same figure in the metrics and in `admin status`.
    let status = env.admin(AdminRequest::Status).await;
    let cap = status
        .status
        .and_then(|s| s.capacity)
        .expect("status carries the capacity");
    assert_eq!(cap.workers, 2, "the configured workers: {cap:?}");
    assert!(cap.verify_per_s > 0, "{cap:?}");
    assert_eq!(
        cap.requests_per_s,
        cap.verify_per_s * u64::from(cap.workers)
    );
    assert!(
        cap.keys > 0,
        "measured on the loaded certificates' keys: {cap:?}"
    );
    assert!(
        body.contains(&format!(
            "dcc_router_capacity_requests_per_second {}",
            cap.requests_per_s
        )),
        "{body}"
    );
    client.close().await;
    env.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_may_not_speak_for_another_user() {
    let env = Env::start().await;
    let a = env.user("supplier-a");
    // supplier-b's connection carries a request originated and signed by supplier-a.
    let client = env.client("supplier-b").await;
    let answer = client
        .send(request(a, a, "2.2", 1, demo_device(A_DEVICE), 1))
        .await
        .unwrap();
    assert_eq!(
        (answer.code.as_str(), answer.detail.as_str()),
        ("E1", "connection-not-originator")
    );
    // The refusal did not consume the counter: supplier-a's own connection still gets it.
    let own = env.client("supplier-a").await;
    let answer = own
        .send(request(a, a, "2.2", 1, demo_device(A_DEVICE), 1))
        .await
        .unwrap();
    assert_eq!(answer.code, "I0");
    env.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_revoke_takes_effect_for_the_next_request() {
    let env = Env::start().await;
    let a = env.user("supplier-a");
    let client = env.client("supplier-a").await;
    let send = |c| client.send(request(a, a, "2.2", 1, demo_device(A_DEVICE), c));
    assert_eq!(send(1).await.unwrap().code, "I0");
    let answer = env.admin(AdminRequest::Revoke { cert: a.cert.id }).await;
    assert!(answer.ok, "{answer:?}");
    assert_eq!(send(2).await.unwrap().code, "R3");
    // A non-admin certificate cannot use the admin channel: its JSON is not an envelope.
    let not_admin = admin_call(
        env.running().addr,
        "localhost",
        &env.tls("supplier-b"),
        &AdminRequest::Revoke {
            cert: env.user("supplier-b").cert.id,
        },
    )
    .await;
    assert!(not_admin.is_err());
    let b = env.user("supplier-b");
    let b_client = env.client("supplier-b").await;
    assert_eq!(
        b_client
            .send(request(b, b, "2.2", 1, demo_device(B_DEVICE), 1))
            .await
            .unwrap()
            .code,
        "I0"
    );
    env.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solr_delay_via_admin_lets_the_srp_send_safe_mode() {
    let env = Env::start().await;
    let (failed, srp) = (env.user("supplier-b"), env.user("srp"));
    let srp_client = env.client("srp").await;
    // Device 1 is supplier-b's, in prepayment mode (devices 0..30 of each 100 are).
    let device = demo_device(B_DEVICE);
    let before = srp_client
        .send(request(srp, failed, "7.3", 5, device, 1))
        .await
        .unwrap();
    assert_eq!(before.code, "R5", "{before:?}");
    let answer = env
        .admin(AdminRequest::DelayRevocation {
            cert: failed.cert.id,
            srps: vec![srp.eui64],
            srvs: vec![], // the policy's safe-mode set
            until: dcc_signing::pki::now_unix() + 3600,
        })
        .await;
    assert!(answer.ok, "{answer:?}");
    let safe = srp_client
        .send(request(srp, failed, "7.3", 5, device, 2))
        .await
        .unwrap();
    assert_eq!((safe.code.as_str(), safe.lane), ("I0", Some(0)), "{safe:?}");
    let not_safe = srp_client
        .send(request(srp, failed, "3.1", 1, device, 3))
        .await
        .unwrap();
    assert_eq!(not_safe.code, "R3");
    let own = env
        .client("supplier-b")
        .await
        .send(request(failed, failed, "7.3", 5, device, 4))
        .await
        .unwrap();
    assert_eq!(own.code, "R3");
    assert!(
        env.admin(AdminRequest::EndDelay {
            cert: failed.cert.id
        })
        .await
        .ok
    );
    let after = srp_client
        .send(request(srp, failed, "7.3", 5, device, 5))
        .await
        .unwrap();
    assert_eq!(after.code, "R3");
    env.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_connection_does_not_disturb_another() {
    let env = Env::start().await;
    let a = env.user("supplier-a");
    let good = Arc::new(env.client("supplier-a").await);
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(
        dcc_router::ingress::tls::client_config(&env.tls("supplier-b")).unwrap(),
    );
    let bad = endpoint
        .connect(env.running().addr, "localhost")
        .unwrap()
        .await
        .unwrap();
    let mut junk = Vec::new();
    for i in 0..10u32 {
        let (mut s, r) = bad.open_bi().await.unwrap();
        match i % 3 {
            0 => s.write_all(&u32::MAX.to_be_bytes()).await.unwrap(),
            1 => {
                // A well-framed frame of random bytes: answered R1, not fatal.
                s.write_all(&16u32.to_be_bytes()).await.unwrap();
                s.write_all(&[0xA5; 16]).await.unwrap();
            }
            _ => s.write_all(b"\x00\x00").await.unwrap(),
        }
        junk.push((s, r));
    }
    let mut tasks = Vec::new();
    for c in 1..=50u64 {
        let g = good.clone();
        let env_req = request(a, a, "2.2", 1, demo_device(A_DEVICE + 2 * (c % 10)), c);
        tasks.push(tokio::spawn(async move { g.send(env_req).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().code, "I0");
    }
    // The framed garbage got a precise refusal.
    let (_s, mut r) = junk.remove(1);
    let frame = dcc_router::ingress::frame::read_frame(&mut r)
        .await
        .unwrap()
        .unwrap();
    let answer = dcc_router::ingress::wire::WireAnswer::decode(&frame).unwrap();
    assert_eq!(
        (answer.code.as_str(), answer.detail.as_str()),
        ("R1", "too-short")
    );
    env.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let env = Env::start_with(|c| c.workers = 1).await;
    let a = env.user("supplier-a");
    let client = Arc::new(env.client("supplier-a").await);
    let mut tasks = Vec::new();
    for c in 1..=200u64 {
        let cl = client.clone();
        let r = request(a, a, "2.2", 1, demo_device(A_DEVICE + 2 * (c % 50)), c);
        tasks.push(tokio::spawn(async move { cl.send(r).await }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    env.running.unwrap().shutdown().await;
    let mut answered = 0;
    for t in tasks {
        // Every request sent before the stop gets an answer: success, or busy for the ones read
        // after the stop. None is silently lost.
        let a = t.await.unwrap().unwrap();
        assert!(matches!(a.code.as_str(), "I0" | "R10" | "R11"), "{a:?}");
        answered += 1;
    }
    assert_eq!(answered, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_load_crl_revokes_what_it_lists_and_refuses_a_forged_one() {
    let env = Env::start().await;
    let (a, b) = (env.user("supplier-a"), env.user("supplier-b"));
    let now = dcc_signing::pki::now_unix();
    // A CRL from another PKI's issuing CA (same names, other key) is refused.
    let other = DemoPki::generate(now).unwrap();
    let forged = other
        .issuing
        .issue_crl(std::slice::from_ref(&b.cert.serial), now, now + 86_400, 1)
        .unwrap();
    let answer = env
        .admin(AdminRequest::LoadCrl {
            pem: forged.to_pem(),
        })
        .await;
    assert!(!answer.ok, "{answer:?}");
    // The real issuing CA's CRL listing supplier-a revokes it, and only it.
    let crl = env
        .pki
        .issuing
        .issue_crl(std::slice::from_ref(&a.cert.serial), now, now + 86_400, 2)
        .unwrap();
    let answer = env.admin(AdminRequest::LoadCrl { pem: crl.to_pem() }).await;
    assert!(answer.ok, "{answer:?}");
    let ca = env.client("supplier-a").await;
    let cb = env.client("supplier-b").await;
    let ra = ca
        .send(request(a, a, "2.2", 1, demo_device(A_DEVICE), 1))
        .await
        .unwrap();
    let rb = cb
        .send(request(b, b, "2.2", 1, demo_device(B_DEVICE), 1))
        .await
        .unwrap();
    assert_eq!((ra.code.as_str(), rb.code.as_str()), ("R3", "I0"));
    env.running.unwrap().shutdown().await;
}

/// Issue 13, the MP134A flow end to end over QUIC, as mp134a-solr-revocation-delay.txt writes
/// it: the SMKI PMA delays revocation, "The Authority can then direct an SRP to take action
/// ... using the failed Supplier's SMKI certificates". The SRP's connection sends a top-up
/// signed with the failed Supplier's key, originated as the failed Supplier → accepted in L0;
/// the same from the failed Supplier's own connection → refused; after the PMA ends the delay
/// → refused as revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp134a_srp_connection_sends_as_the_failed_supplier() {
    let env = Env::start().await;
    let (failed, srp) = (env.user("supplier-b"), env.user("srp"));
    let srp_client = env.client("srp").await;
    // Device 1 is supplier-b's, in prepayment mode.
    let device = demo_device(B_DEVICE);
    let top_up = |counter| request(failed, failed, "2.2", 1, device, counter);
    // Before any decision the SRP's connection cannot speak for supplier-b.
    let before = srp_client.send(top_up(1)).await.unwrap();
    assert_eq!(before.code, "E1", "{before:?}");
    let pma = env
        .admin(AdminRequest::PmaDelay {
            cert: failed.cert.id,
            srvs: vec![], // the policy's safe-mode set
            until: None,  // no term: the PMA ends it
        })
        .await;
    assert!(pma.ok, "{pma:?}");
    let direction = env
        .admin(AdminRequest::AuthorityDirect {
            cert: failed.cert.id,
            srps: vec![srp.eui64],
            srp_own_eui: false,
        })
        .await;
    assert!(direction.ok, "{direction:?}");
    let accepted = srp_client.send(top_up(2)).await.unwrap();
    assert_eq!(
        (accepted.code.as_str(), accepted.lane),
        ("I0", Some(0)),
        "{accepted:?}"
    );
    let own = env
        .client("supplier-b")
        .await
        .send(top_up(3))
        .await
        .unwrap();
    assert_eq!(own.code, "R3", "{own:?}");
    let end = env
        .admin(AdminRequest::EndDelay {
            cert: failed.cert.id,
        })
        .await;
    assert!(end.ok, "{end:?}");
    let after = srp_client.send(top_up(4)).await.unwrap();
    assert_eq!(after.code, "R3", "{after:?}");
    env.running.unwrap().shutdown().await;
}
