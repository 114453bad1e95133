//! Issue 13 item 8, BEIS 2022 key transfer under load, end to end: the real server
//! (`server::start`), the QUIC client library and the admin channel.
//!
//! beis-2022-sec-changes-consultation.txt 3.1: the transfer of the TCoS Private Key to the
//! ECoS Party "would allow the TCoS Service to be shut down without the risk of being unable
//! to continue to exchange CoS Party and Supplier Party credentials on devices that continue
//! to hold TCoS Certificates"; 3.3: "subject to the DCC gaining the SMKI PMA's approval". The
//! issue: "both keys serve during the overlap, and no request fails during a rollover under
//! load".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use dcc_router::client::admin::AdminClient;
use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::server::admin_proto::{AdminAnswer, AdminCall, AdminRequest};
use dcc_router::server::bootstrap::demo_device;
use dcc_router::server::{self, ServeConfig};
use dcc_router::store::AuditFilter;
use dcc_router::KeyPurpose;
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::{CommandVariant, ExecutionKind, RequestId, UserRole};

/// Devices whose supply changes during the run (supplier-a's: even demo indices).
const DEVICES: u64 = 240;
/// Requests in flight at once.
const IN_FLIGHT: usize = 24;

/// A fresh P-256 private key, PKCS#8 PEM (what `admin key import` reads).
fn key_pem() -> String {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    dcc_signing::Signer::random()
        .signing_key()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string()
}

async fn call(admin: &AdminClient, request: AdminRequest, reason: &str) -> AdminAnswer {
    admin
        .call(&AdminCall {
            request,
            reason: Some(reason.into()),
        })
        .await
        .unwrap()
}

/// The gaining Supplier (supplier-b) sends 6.23 for 240 devices over QUIC, 24 in flight;
/// after a third of them the TCoS key is imported a second time (the ECoS Party's copy), after
/// two thirds the TCoS service's copy is retired. Every request is answered I0, every device
/// moves to supplier-b, and the audit log shows both holders signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_6_23_fails_during_a_cos_key_rollover_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: None,
        duis_plain: None,
        data_dir: dir.path().to_path_buf(),
        workers: 2,
        demo_devices: 2 * DEVICES,
        ..ServeConfig::default()
    };
    let running = server::start(&cfg).await.unwrap();
    let pki = DemoPki::load_from_dir(&cfg.pki_dir()).unwrap();
    let tls = |name: &str| TlsMaterial::client_of_demo(&pki, name).unwrap();
    let admin = AdminClient::connect(running.addr, "localhost", &tls("admin"))
        .await
        .unwrap();
    let b = pki.user("supplier-b").unwrap();

    // A key import without a reason is refused, whatever the PMA reference.
    let pem = key_pem();
    let import = |id: &str| AdminRequest::KeyImport {
        id: id.into(),
        purpose: KeyPurpose::Tcos,
        pem: pem.clone(),
        pma_ref: "PMA-2022-17".into(),
    };
    let no_reason = admin
        .call(&AdminCall {
            request: import("tcos@tcos-sp"),
            reason: None,
        })
        .await
        .unwrap();
    assert_eq!(
        no_reason.code.as_deref(),
        Some("no-reason"),
        "{no_reason:?}"
    );
    let a = call(&admin, import("tcos@tcos-sp"), "TCoS service key").await;
    assert!(a.ok, "{a:?}");
    let a = call(
        &admin,
        AdminRequest::SetRateLimit {
            user: b.eui64,
            limit: Some((100_000, 100_000)),
        },
        "load test",
    )
    .await;
    assert!(a.ok, "{a:?}");
    for i in 0..DEVICES {
        let a = call(
            &admin,
            AdminRequest::ChangeSupplier {
                device: demo_device(2 * i),
                supplier: b.eui64,
                export: false,
                pending: true,
            },
            "registration data",
        )
        .await;
        assert!(a.ok, "{a:?}");
    }

    let client = Arc::new(
        Client::connect(
            running.addr,
            "localhost",
            &tls("supplier-b"),
            StreamMode::default(),
        )
        .await
        .unwrap(),
    );
    let request = |i: u64| {
        let h = Header {
            role: UserRole::ImportSupplier,
            command_variant: CommandVariant::new(1).unwrap(),
            execution: ExecutionKind::OnDemand,
            srv: "6.23".parse().unwrap(),
            request_id: RequestId {
                originator: b.eui64,
                target: demo_device(2 * i),
                counter: 1 + i,
            },
            execute_at: 0,
            signer: b.cert.id,
        };
        b.signer.sign_envelope(&h, b"cos-update").unwrap()
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut answers = Vec::new();
    for i in 0..DEVICES {
        if tasks.len() >= IN_FLIGHT {
            answers.push(tasks.join_next().await.unwrap().unwrap());
        }
        if i == DEVICES / 3 {
            let a = call(
                &admin,
                import("tcos@ecos-party"),
                "TCoS key to the ECoS Party",
            )
            .await;
            assert!(a.ok, "{a:?}");
        }
        if i == 2 * DEVICES / 3 {
            let a = call(
                &admin,
                AdminRequest::KeyRetire {
                    id: "tcos@tcos-sp".into(),
                    pma_ref: "PMA-2022-17".into(),
                },
                "TCoS service shut down",
            )
            .await;
            assert!(a.ok, "{a:?}");
        }
        let c = Arc::clone(&client);
        let envelope = request(i);
        tasks.spawn(async move { (i, c.send(envelope).await.unwrap()) });
    }
    while let Some(r) = tasks.join_next().await {
        answers.push(r.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|(_, a)| a.code != "I0").collect();
    println!(
        "{} 6.23 requests during the rollover: {} I0, {} failed",
        answers.len(),
        answers.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "failed during the rollover: {failed:?}");
    assert_eq!(answers.len() as u64, DEVICES);

    // Every device moved to the gaining Supplier (the effect lands right after each
    // hand-off); both holders of the key signed some of them.
    let state = running.router.state();
    for _ in 0..500 {
        if state.gaining.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for i in 0..DEVICES {
        assert_eq!(
            state.devices.get(demo_device(2 * i)).unwrap().supplier,
            Some(b.eui64)
        );
    }
    let audit = running
        .router
        .admin()
        .audit(&AuditFilter {
            subject: None,
            limit: 10_000,
        })
        .unwrap();
    let signed_by = |id: &str| {
        audit
            .iter()
            .filter(|e| {
                e.op == "change-of-supplier-cos" && e.detail.contains(&format!("key {id};"))
            })
            .count()
    };
    let (old, new) = (signed_by("tcos@tcos-sp"), signed_by("tcos@ecos-party"));
    println!("signed by the TCoS service's copy: {old}, by the ECoS Party's: {new}");
    assert!(old > 0 && new > 0, "old {old}, new {new}");
    assert_eq!(old + new, DEVICES as usize);
    let keys = state.keys.all();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, "tcos@ecos-party");
    admin.close().await;
    running.shutdown().await;
}

/// Issue 13 item 8: "The router holds its own keys (the CoS Party keys, and the DUIS
/// response-signing key when it exists) in its store". The key `serve` makes at first start
/// for signing DUIS answers is moved from `DATA_DIR/dcc-xml-sign/key.pem` into the store (the
/// file removed, an audited `key-import` by `bootstrap`); the next start signs with the stored
/// key, which matches the certificate clients pin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duis_signing_key_lives_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: Some("127.0.0.1:0".parse().unwrap()),
        duis_plain: None,
        data_dir: dir.path().to_path_buf(),
        workers: 1,
        demo_devices: 4,
        ..ServeConfig::default()
    };
    let signing = dir.path().join(dcc_router::server::duis::SIGNING_DIR);
    let running = server::start(&cfg).await.unwrap();
    assert!(
        !signing.join("key.pem").exists(),
        "the key file is gone once the key is in the store"
    );
    let cert =
        dcc_signing::pki::OrgCertificate::parse(&std::fs::read(signing.join("cert.pem")).unwrap())
            .unwrap();
    let held = |r: &server::Running| -> Vec<(String, p256::PublicKey)> {
        r.router
            .state()
            .keys
            .all()
            .iter()
            .filter(|k| k.purpose == KeyPurpose::DuisSign)
            .map(|k| (k.id.clone(), k.signer.public_key()))
            .collect()
    };
    let first = held(&running);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, cert.public_key);
    let audit = running
        .router
        .admin()
        .audit(&AuditFilter::default())
        .unwrap();
    assert!(
        audit.iter().any(|e| e.op == "key-import"
            && e.who == "bootstrap"
            && e.detail.contains("duis-sign")),
        "{audit:?}"
    );
    running.shutdown().await;
    // The second start finds the key in the store (there is no file any more) and signs with it.
    let running = server::start(&cfg).await.unwrap();
    assert!(running.duis_addr.is_some());
    assert_eq!(held(&running), first);
    running.shutdown().await;
}

/// The same operations from the command line, as an operator runs them against `serve` (a
/// process): `admin key import` needs `--reason` and `--pma-ref`; `key list` shows the PMA
/// reference and never the key; the last key of a purpose is not retired; `change-supplier
/// --pending` and `device --cos-cert` set what the CoS Party stage reads.
#[test]
fn admin_key_commands_from_the_cli() {
    use common::serve::Server;
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"));
    let pem = key_pem();
    let file = dir.path().join("tcos.pem");
    std::fs::write(&file, &pem).unwrap();
    let file = file.to_str().unwrap();
    let import = ["key", "import", file, "--id", "tcos-1", "--purpose", "tcos"];
    let out = srv.admin(&[&import[..], &["--pma-ref", "PMA-1"]].concat());
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("--reason"), "{out:?}");
    let out = srv.admin(&[&["--reason", "TCoS key"][..], &import[..]].concat());
    assert_ne!(out.code, 0, "no --pma-ref: {out:?}");
    let out = srv.admin(
        &[
            &["--reason", "TCoS key"][..],
            &import[..],
            &["--pma-ref", "PMA-1"],
        ]
        .concat(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = srv.admin(&["key", "list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("tcos-1") && out.stdout.contains("PMA-1"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(&pem[30..70]),
        "the private key is never listed"
    );
    let out = srv.admin(&[
        "--reason",
        "r",
        "key",
        "retire",
        "tcos-1",
        "--pma-ref",
        "PMA-2",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(format!("{out:?}").contains("last"), "{out:?}");

    let pki = DemoPki::load_from_dir(&srv.pki).unwrap();
    let b = pki.user("supplier-b").unwrap().eui64.to_string();
    let device = demo_device(0).to_string();
    let out = srv.admin(&[
        "--reason",
        "registration data",
        "change-supplier",
        "--pending",
        &device,
        &b,
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = srv.admin(&["device", &device, "--cos-cert", "ecos"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = srv.admin(&["audit", "--device", &device]);
    assert!(
        out.stdout.contains("change-of-supplier-pending")
            && out.stdout.contains("CoS certificate ecos"),
        "{out:?}"
    );
}
