//! Chain validation of Organisation Certificates: every refusal of `dcc-router admin add-cert`
//! (through the real binary against a real `serve` child), and the same validation at start for
//! a certificate of the PKI directory (in-process `server::start`), plus a User directory
//! whose `cert.pem` is missing (the binary, which must exit non-zero naming the file).
//! Each refusal must name its reason and the certificate or file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::server::bootstrap::demo_device;
use dcc_router::server::{self, ServeConfig};
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::pki::{now_unix, KeyUsage, OrgCertRequest, OrgCertificate};
use dcc_signing::{
    CommandVariant, Eui64, ExecutionKind, RemotePartyRole, RequestId, Signer, UserRole,
};
use serde_json::Value;

const DAY: u64 = 86_400;

static COUNTER: AtomicU64 = AtomicU64::new(1);

use common::serve::Server;

// ---- certificates ----

/// A certificate request for `eui64` valid from a minute ago for a year, signing.
fn req(eui64: Eui64, role: RemotePartyRole, key: &Signer) -> OrgCertRequest {
    let now = now_unix();
    OrgCertRequest::signing(eui64, role, key.public_key(), now - 60, now + 365 * DAY)
}

/// A running server and its PKI (with the CA keys).
struct World {
    dir: tempfile::TempDir,
    srv: Server,
    pki: DemoPki,
}

impl World {
    fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let srv = Server::start(&dir.path().join("data"));
        let pki = DemoPki::load_from_dir(&srv.pki).unwrap();
        World { dir, srv, pki }
    }

    fn supplier_a(&self) -> Eui64 {
        self.pki.user("supplier-a").unwrap().eui64
    }

    /// `admin --json add-cert FILE` of `cert`: asserts it is refused with `code`, the message
    /// naming the certificate and `reason`; and that the certificate is not in force.
    #[track_caller]
    fn assert_add_refused(&self, cert: &OrgCertificate, key: &Signer, code: &str, reason: &str) {
        let file = self.dir.path().join(format!("{code}.pem"));
        std::fs::write(&file, cert.to_pem()).unwrap();
        let certs_before = self.srv.status()["certificates"].clone();
        let out = self
            .srv
            .admin(&["--json", "add-cert", file.to_str().unwrap()]);
        assert_ne!(out.code, 0, "{out:?}");
        let answer: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(answer["ok"], false, "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&cert.id.to_string()),
            "names the certificate: {message}"
        );
        assert!(message.contains(reason), "want {reason:?}: {message}");
        assert!(out.stderr.contains(&format!("error: {message}")), "{out:?}");
        // The human form says the same.
        let out = self.srv.admin(&["add-cert", file.to_str().unwrap()]);
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains(reason), "{out:?}");
        // Nothing was added: not listed, and a request signed with it is unknown (R2).
        assert_eq!(self.srv.status()["certificates"], certs_before);
        let r = self.send_signed(cert, key);
        assert_eq!(r, "R2");
    }

    /// A 2.2 from supplier-a to its demo device 0, signed with `cert`/`key`.
    fn send_signed(&self, cert: &OrgCertificate, key: &Signer) -> String {
        let h = Header {
            role: UserRole::ImportSupplier,
            command_variant: CommandVariant::new(1).unwrap(),
            execution: ExecutionKind::OnDemand,
            srv: "2.2".parse().unwrap(),
            request_id: RequestId {
                originator: self.supplier_a(),
                target: demo_device(0),
                counter: COUNTER.fetch_add(1, Ordering::Relaxed),
            },
            execute_at: 0,
            signer: cert.id,
        };
        let env = key.sign_envelope(&h, b"payload").unwrap();
        let tls = TlsMaterial::client_from_pki_dir(&self.srv.pki, "supplier-a").unwrap();
        let addr = self.srv.addr;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(20), async move {
                let c = Client::connect(addr, "localhost", &tls, StreamMode::default())
                    .await
                    .unwrap();
                let a = c.send(env).await.unwrap();
                c.close().await;
                a.code
            })
            .await
            .unwrap()
        })
    }

    fn finish(self) {
        assert!(self.srv.stop().success());
    }
}

#[test]
fn add_cert_from_another_ca_is_refused() {
    let w = World::start();
    // A second demo PKI: same CA names, other keys.
    let other = DemoPki::generate(now_unix()).unwrap();
    let key = Signer::random();
    let cert = other
        .issuing
        .issue_org(&req(w.supplier_a(), RemotePartyRole::Supplier, &key))
        .unwrap();
    // Its issuer has the name of the server's issuing CA, but not its key.
    w.assert_add_refused(&cert, &key, "chain", "signature does not verify");
    // The real issuing CA's certificate for the same User and key is accepted (control).
    let good = w
        .pki
        .issuing
        .issue_org(&req(w.supplier_a(), RemotePartyRole::Supplier, &key))
        .unwrap();
    let file = w.dir.path().join("good.pem");
    std::fs::write(&file, good.to_pem()).unwrap();
    let out = w.srv.admin(&["add-cert", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out
        .stdout
        .contains(&format!("certificate {} added", good.id)));
    assert_eq!(w.send_signed(&good, &key), "I0");
    w.finish();
}

#[test]
fn add_cert_expired_is_refused() {
    let w = World::start();
    let key = Signer::random();
    let now = now_unix();
    let mut r = req(w.supplier_a(), RemotePartyRole::Supplier, &key);
    r.not_before = now - 30 * DAY;
    r.not_after = now - DAY;
    let cert = w.pki.issuing.issue_org(&r).unwrap();
    w.assert_add_refused(&cert, &key, "chain", "expired");
    // Not yet valid is refused too.
    let mut r = req(w.supplier_a(), RemotePartyRole::Supplier, &key);
    r.not_before = now + DAY;
    let cert = w.pki.issuing.issue_org(&r).unwrap();
    w.assert_add_refused(&cert, &key, "chain", "not valid before");
    w.finish();
}

#[test]
fn add_cert_without_digital_signature_key_usage_is_refused() {
    let w = World::start();
    let key = Signer::random();
    let mut r = req(w.supplier_a(), RemotePartyRole::Supplier, &key);
    r.key_usage = KeyUsage::KEY_AGREEMENT;
    let cert = w.pki.issuing.issue_org(&r).unwrap();
    w.assert_add_refused(&cert, &key, "chain", "key usage lacks digitalSignature");
    w.finish();
}

#[test]
fn add_cert_with_a_role_its_party_does_not_hold_is_refused() {
    let w = World::start();
    let key = Signer::random();
    // A Network Operator certificate for a Supplier Party (IS, GS).
    let cert = w
        .pki
        .issuing
        .issue_org(&req(w.supplier_a(), RemotePartyRole::NetworkOperator, &key))
        .unwrap();
    w.assert_add_refused(&cert, &key, "role-not-held", "OU role");
    let out = w.srv.admin(&[
        "add-cert",
        w.dir.path().join("role-not-held.pem").to_str().unwrap(),
    ]);
    assert!(
        out.stderr
            .contains(&format!("none of {}'s User Roles (IS, GS)", w.supplier_a())),
        "{out:?}"
    );
    // A certificate for a User that is no Party at all.
    let stranger = Eui64::from_u64(0x02DC_C000_0000_0055);
    let cert = w
        .pki
        .issuing
        .issue_org(&req(stranger, RemotePartyRole::Supplier, &key))
        .unwrap();
    let file = w.dir.path().join("stranger.pem");
    std::fs::write(&file, cert.to_pem()).unwrap();
    let out = w.srv.admin(&["add-cert", file.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!("unknown User {stranger}")),
        "{out:?}"
    );
    w.finish();
}

// ---- the same validation at start, for PKI-directory certificates ----

/// A PKI directory as `dcc-sign pki init` writes it, under `dir/pki`, and the PKI.
fn pki_dir(dir: &Path) -> (PathBuf, DemoPki) {
    let pki = DemoPki::generate(now_unix()).unwrap();
    let path = dir.join("pki");
    pki.write_to_dir(&path, false).unwrap();
    (path, pki)
}

/// Starts the server in-process on `pki` with a fresh data dir; the start error, as printed.
fn start_error(dir: &Path, pki: &Path) -> String {
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: None,
        data_dir: dir.join("data"),
        pki_dir: Some(pki.to_path_buf()),
        workers: 1,
        demo_devices: 10,
        ..ServeConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match server::start(&cfg).await {
            Ok(running) => {
                running.shutdown().await;
                panic!("the server started on a PKI directory it must refuse");
            }
            Err(e) => e.to_string(),
        }
    })
}

/// Replaces `users/NAME/cert.pem` with `cert`; returns the file.
fn replace_cert(pki: &Path, name: &str, cert: &OrgCertificate) -> PathBuf {
    let file = pki.join("users").join(name).join("cert.pem");
    std::fs::write(&file, cert.to_pem()).unwrap();
    file
}

#[test]
fn start_refuses_pki_directory_certificates_that_do_not_validate() {
    let dir = tempfile::tempdir().unwrap();
    let (pki_path, pki) = pki_dir(dir.path());
    let b = pki.user("supplier-b").unwrap();
    let now = now_unix();
    let other = DemoPki::generate(now).unwrap();
    let mut expired = req(b.eui64, RemotePartyRole::Supplier, &b.signer);
    expired.not_before = now - 30 * DAY;
    expired.not_after = now - DAY;
    let mut no_signing = req(b.eui64, RemotePartyRole::Supplier, &b.signer);
    no_signing.key_usage = KeyUsage::KEY_AGREEMENT;
    let cases: Vec<(&str, OrgCertificate, &str)> = vec![
        (
            "another CA",
            other
                .issuing
                .issue_org(&req(b.eui64, RemotePartyRole::Supplier, &b.signer))
                .unwrap(),
            "signature does not verify",
        ),
        (
            "expired",
            pki.issuing.issue_org(&expired).unwrap(),
            "expired",
        ),
        (
            "key usage",
            pki.issuing.issue_org(&no_signing).unwrap(),
            "key usage lacks digitalSignature",
        ),
        (
            "role not held",
            pki.issuing
                .issue_org(&req(b.eui64, RemotePartyRole::NetworkOperator, &b.signer))
                .unwrap(),
            "OU role",
        ),
    ];
    for (i, (what, cert, reason)) in cases.into_iter().enumerate() {
        let case_dir = dir.path().join(format!("case-{i}"));
        let copy = case_dir.join("pki");
        copy_dir(&pki_path, &copy);
        let file = replace_cert(&copy, "supplier-b", &cert);
        let e = start_error(&case_dir, &copy);
        assert!(
            e.contains(&file.display().to_string()),
            "{what}: names the file: {e}"
        );
        assert!(
            e.contains(&cert.id.to_string()),
            "{what}: names the id: {e}"
        );
        assert!(e.contains(reason), "{what}: want {reason:?}: {e}");
    }
    // The untouched directory starts (control).
    let cfg_dir = dir.path().join("control");
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: None,
        data_dir: cfg_dir.join("data"),
        pki_dir: Some(pki_path.clone()),
        workers: 1,
        demo_devices: 10,
        ..ServeConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let running = server::start(&cfg).await.unwrap();
        assert!(!running.created_pki);
        running.shutdown().await;
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn start_with_a_user_certificate_missing_exits_non_zero_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A PKI made by a first start of the server, which is then stopped.
    let first = dir.path().join("first");
    let srv = Server::start(&first);
    assert!(srv.stop().success());
    // A copy of it without users/netop/cert.pem, used by a fresh data dir via `pki_dir`.
    let copy = dir.path().join("pki-copy");
    copy_dir(&first.join("pki"), &copy);
    let missing = copy.join("users").join("netop").join("cert.pem");
    std::fs::remove_file(&missing).unwrap();
    let config = dir.path().join("router.toml");
    std::fs::write(&config, format!("pki_dir = {:?}\n", copy.to_str().unwrap())).unwrap();
    let data = dir.path().join("second");
    let failure = match Server::try_start(&data, &copy, &["--config", config.to_str().unwrap()]) {
        Ok(_) => panic!("started without users/netop/cert.pem"),
        Err(f) => f,
    };
    assert!(matches!(failure.code, Some(c) if c != 0), "{failure:?}");
    assert!(
        failure.stderr.contains(&missing.display().to_string()),
        "names the file: {failure:?}"
    );
    assert!(
        failure.stderr.contains("No such file"),
        "says why: {failure:?}"
    );
    // The directory was not "repaired" with a fresh demo PKI.
    assert!(!missing.exists());
}

/// A User's second certificate (`cert-2.pem`) that does not validate stops the start, and the
/// error names that file, not the User's `cert.pem`.
#[test]
fn start_refusal_of_a_second_certificate_names_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let (pki_path, pki) = pki_dir(dir.path());
    let b = pki.user("supplier-b").unwrap();
    let other = DemoPki::generate(now_unix()).unwrap();
    let foreign = other
        .issuing
        .issue_org(&req(b.eui64, RemotePartyRole::Supplier, &b.signer))
        .unwrap();
    let file = pki_path.join("users/supplier-b/cert-2.pem");
    std::fs::write(&file, foreign.to_pem()).unwrap();
    let e = start_error(dir.path(), &pki_path);
    assert!(
        e.contains(&file.display().to_string()),
        "names cert-2.pem: {e}"
    );
    assert!(!e.contains("supplier-b/cert.pem"), "not cert.pem: {e}");
    assert!(e.contains("signature does not verify"), "{e}");
}
