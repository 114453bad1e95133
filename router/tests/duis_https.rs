//! DUIS XML over HTTPS, end to end against `dcc-router serve` (`server::start`, in process):
//! a DUIS request signed with XML-DSig goes through admission, lanes and verification and gets
//! a DUIS Response signed under the router's DCC XML-signing key — checked by this project's
//! verifier and, where installed, by `xmlsec1` (an independent XML-DSig implementation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dcc_router::client::demo::demo_device;
use dcc_router::client::{DuisClient, TlsMaterial};
use dcc_router::ingress::https::DuisService;
use dcc_router::server::{self, Running, ServeConfig};
use dcc_signing::duis::{DuisDocument, XmlKeyring, XmlSigner};
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::pki::OrgCertificate;
use dcc_signing::verify::P256Verifier;
use dcc_signing::{Eui64, RequestId};
use hyper::StatusCode;

struct Env {
    _dir: tempfile::TempDir,
    pki: DemoPki,
    running: Running,
}

async fn start() -> Env {
    start_with(|_| {}).await
}

/// [`start`], with `change` made to the configuration first.
async fn start_with(change: impl FnOnce(&mut ServeConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: Some("127.0.0.1:0".parse().unwrap()),
        duis_plain: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.path().to_path_buf(),
        workers: 2,
        demo_devices: 20,
        ..ServeConfig::default()
    };
    change(&mut cfg);
    let running = server::start(&cfg).await.unwrap();
    let pki = DemoPki::load_from_dir(&cfg.pki_dir()).unwrap();
    Env {
        _dir: dir,
        pki,
        running,
    }
}

impl Env {
    async fn https(&self, user: &str) -> DuisClient {
        let tls = TlsMaterial::client_of_demo(&self.pki, user).unwrap();
        DuisClient::connect_tls(self.running.duis_addr.unwrap(), "localhost", &tls)
            .await
            .unwrap()
    }

    /// A 2.2 Top Up Device request (the DCC Reference Test Data's CS01a shape), signed by
    /// `signer` as DUIS Users sign: XML-DSig, their Organisation Certificate's key.
    fn top_up(
        &self,
        signer: &str,
        originator: Eui64,
        device: Eui64,
        counter: u64,
        cv: u8,
    ) -> Vec<u8> {
        let body = "<sr:TopUpDevice>\n      <sr:UTRN>73946144332040217315</sr:UTRN>\n    </sr:TopUpDevice>";
        self.request(signer, originator, device, counter, cv, "2.2", body)
    }

    /// Any request, signed by `signer`.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        signer: &str,
        originator: Eui64,
        device: Eui64,
        counter: u64,
        cv: u8,
        srv: &str,
        body: &str,
    ) -> Vec<u8> {
        let id = RequestId {
            originator,
            target: device,
            counter,
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sr:Request xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" \
xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" schemaVersion=\"5.4\">\n\
  <sr:Header>\n    <sr:RequestID>{id}</sr:RequestID>\n    <sr:CommandVariant>{cv}</sr:CommandVariant>\n\
    <sr:ServiceReference>{srv}</sr:ServiceReference>\n    <sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant>\n  </sr:Header>\n\
  <sr:Body>\n    {body}\n  </sr:Body>\n</sr:Request>\n"
        );
        let u = self.pki.user(signer).unwrap();
        XmlSigner::new(u.signer.clone(), &u.cert)
            .unwrap()
            .sign_document(xml.as_bytes())
            .unwrap()
    }

    /// The router's answer, its signature verified under the pinned DCC XML-signing
    /// certificate; returns (ResponseCode, echoed RequestID, whether a ResponseID is there).
    fn read_answer(&self, body: &[u8]) -> (String, Option<RequestId>, bool) {
        let pem = std::fs::read(self.running.duis_cert.as_ref().unwrap()).unwrap();
        let mut ring = XmlKeyring::new();
        ring.insert(OrgCertificate::parse(&pem).unwrap(), &P256Verifier);
        let verified = ring
            .verify(body, &dcc_signing::duis::Limits::default())
            .expect("the answer's signature verifies");
        let doc: &DuisDocument = &verified.signed.document;
        let code = doc.header_field("ResponseCode").unwrap().to_owned();
        let id = doc
            .header_field("RequestID")
            .map(|s| dcc_signing::duis::parse_request_id(s).unwrap());
        (code, id, doc.header_field("ResponseID").is_some())
    }
}

/// POSTs and returns the verified answer's ResponseCode.
async fn code_of(
    env: &Env,
    client: &mut DuisClient,
    service: DuisService,
    xml: impl Into<bytes::Bytes>,
) -> String {
    let r = client.post(service, xml).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    env.read_answer(&r.body).0
}

/// Whether `xmlsec1` verifies `file` under the pinned certificate `cert`.
fn xmlsec1_verifies(cert: &std::path::Path, file: &std::path::Path) -> bool {
    std::process::Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(cert)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_duis_request_over_https_gets_a_signed_duis_response() {
    let env = start().await;
    let a = env.pki.user("supplier-a").unwrap().eui64;
    let device = demo_device(0); // registered to supplier-a
    let mut client = env.https("supplier-a").await;
    let request = env.top_up("supplier-a", a, device, 1, 1);
    let r = client
        .post(DuisService::SendCommand, request.clone())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type.as_deref(), Some("application/xml"));
    // A top-up to a prepayment device went through the prepayment lane; the router says so in
    // its lane header (loadgen's per-lane report reads it).
    assert_eq!(r.lane, Some(dcc_router::Lane::L1));
    let (code, id, response_id) = env.read_answer(&r.body);
    assert_eq!(code, "I0", "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(id.unwrap().counter, 1);
    assert!(response_id, "an I0 answer carries a ResponseID");
    // The same request again: its counter is spent (anti-replay, as for envelopes).
    let r = client
        .post(DuisService::SendCommand, request.clone())
        .await
        .unwrap();
    assert_eq!(env.read_answer(&r.body).0, "R7");
    // One character changed in the signed content: the Reference digest no longer matches.
    let tampered = String::from_utf8(env.top_up("supplier-a", a, device, 2, 1))
        .unwrap()
        .replace("73946144332040217315", "73946144332040217316");
    let r = client
        .post(DuisService::SendCommand, tampered)
        .await
        .unwrap();
    assert_eq!(env.read_answer(&r.body).0, "R6");
    // A fresh counter still passes: the refusals consumed nothing.
    let r = client
        .post(
            DuisService::SendCommand,
            env.top_up("supplier-a", a, device, 3, 1),
        )
        .await
        .unwrap();
    assert_eq!(env.read_answer(&r.body).0, "I0");
    env.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duis_refusals_paths_and_identity() {
    let env = start().await;
    let a = env.pki.user("supplier-a").unwrap().eui64;
    let device = demo_device(0);
    let mut client = env.https("supplier-a").await;
    // CV 1 sent to the Transform service: E13 (request type not valid for the endpoint).
    let r = client
        .post(
            DuisService::Transform,
            env.top_up("supplier-a", a, device, 10, 1),
        )
        .await
        .unwrap();
    let (e13, id, response_id) = env.read_answer(&r.body);
    assert_eq!(
        (e13.as_str(), id.map(|i| i.counter), response_id),
        ("E13", Some(10), false)
    );
    // Not XML at all: R1, no RequestID to echo, still signed.
    let r = client
        .post(DuisService::SendCommand, "not xml")
        .await
        .unwrap();
    assert_eq!(env.read_answer(&r.body), ("R1".into(), None, false));
    // An XXE attempt: refused before any entity is read.
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><sr:Request xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\">&x;</sr:Request>";
    assert_eq!(
        code_of(&env, &mut client, DuisService::SendCommand, xxe).await,
        "R1"
    );
    // HTTP-level refusals.
    let r = client.post_path("/api/v1/serviceX", "x").await.unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Check 0: supplier-b's connection may not send what supplier-a originates and signs.
    let mut b = env.https("supplier-b").await;
    let r = b
        .post(
            DuisService::SendCommand,
            env.top_up("supplier-a", a, device, 11, 1),
        )
        .await
        .unwrap();
    assert_eq!(env.read_answer(&r.body).0, "E1");
    // Plain HTTP (test rigs): no transport identity, the signature decides.
    let mut plain = DuisClient::connect_plain(env.running.duis_plain_addr.unwrap())
        .await
        .unwrap();
    let r = plain
        .post(
            DuisService::SendCommand,
            env.top_up("supplier-a", a, device, 12, 1),
        )
        .await
        .unwrap();
    assert_eq!(env.read_answer(&r.body).0, "I0");
    env.running.shutdown().await;
}

/// `duis_max_connections_per_source` is the cap the DUIS listeners apply: with 2 from a file,
/// a third connection from the same address gets no answer (closed at accept) while the two
/// are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_per_source_cap_holds_on_the_duis_listeners() {
    let file = ServeConfig::from_toml_str(
        "duis_max_connections_per_source = 2\n",
        std::path::Path::new("router.toml"),
    )
    .unwrap();
    let env = start_with(|cfg| {
        cfg.duis_max_connections_per_source = file.duis_max_connections_per_source;
    })
    .await;
    let mut a = env.https("supplier-a").await;
    let mut b = env.https("supplier-b").await;
    for c in [&mut a, &mut b] {
        let r = c.post(DuisService::SendCommand, "not xml").await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
    let tls = TlsMaterial::client_of_demo(&env.pki, "supplier-a").unwrap();
    let third =
        match DuisClient::connect_tls(env.running.duis_addr.unwrap(), "localhost", &tls).await {
            Ok(mut c) => c.post(DuisService::SendCommand, "not xml").await.is_err(),
            Err(_) => true,
        };
    assert!(third, "a third connection from one address was served");
    for c in [&mut a, &mut b] {
        let r = c.post(DuisService::SendCommand, "not xml").await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "the two are still served");
    }
    env.running.shutdown().await;
}

/// An independent implementation accepts the router's signed answers: `xmlsec1` (Debian's
/// package), given the pinned certificate. Skipped with a notice where it is not installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmlsec1_accepts_the_routers_signed_answers() {
    if std::process::Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("xmlsec1 not installed: skipping the independent check of DUIS answers");
        return;
    }
    let env = start().await;
    let a = env.pki.user("supplier-a").unwrap().eui64;
    let mut client = env.https("supplier-a").await;
    let dir = tempfile::tempdir().unwrap();
    for (i, (service, cv)) in [(DuisService::SendCommand, 1u8), (DuisService::Transform, 1)]
        .into_iter()
        .enumerate()
    {
        let r = client
            .post(
                service,
                env.top_up("supplier-a", a, demo_device(0), 20 + i as u64, cv),
            )
            .await
            .unwrap();
        let file = dir.path().join(format!("answer-{i}.xml"));
        std::fs::write(&file, &r.body).unwrap();
        let cert = env.running.duis_cert.as_ref().unwrap();
        assert!(
            xmlsec1_verifies(cert, &file),
            "xmlsec1 refused {}",
            String::from_utf8_lossy(&r.body)
        );
        // And a tampered answer is refused by it.
        let bad = String::from_utf8(r.body.to_vec()).unwrap().replacen(
            "<sr:ResponseCode>",
            "<sr:ResponseCode>X",
            1,
        );
        std::fs::write(&file, bad).unwrap();
        assert!(
            !xmlsec1_verifies(cert, &file),
            "xmlsec1 accepted a tampered answer"
        );
    }
    env.running.shutdown().await;
}

/// The critical-command flow as DCC Boxed's clients drive it: CV 4 to the Transform service →
/// `I0` with a Pre-Command; the Signed Pre-Command (CV 5, **same RequestID**) to Send Command
/// → accepted once; a Signed Pre-Command with no outstanding transform → refused (E12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_command_is_transformed_then_sent_signed() {
    let env = start().await;
    let a = env.pki.user("supplier-a").unwrap().eui64;
    let device = demo_device(0);
    let mut client = env.https("supplier-a").await;
    let enable = |counter, cv| {
        env.request(
            "supplier-a",
            a,
            device,
            counter,
            cv,
            "7.1",
            "<sr:EnableSupply/>",
        )
    };
    // Transform: I0 with a PreCommand, counter not spent.
    let r = client
        .post(DuisService::Transform, enable(40, 4))
        .await
        .unwrap();
    let (code, id, _) = env.read_answer(&r.body);
    assert_eq!((code.as_str(), id.map(|i| i.counter)), ("I0", Some(40)));
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(text.contains("<sr:PreCommand><sr:GBCSPayload>"), "{text}");
    // The Signed Pre-Command with the same RequestID: dispatched.
    assert_eq!(
        code_of(&env, &mut client, DuisService::SendCommand, enable(40, 5)).await,
        "I0"
    );
    // Again: the transform is closed (and the counter spent).
    assert_eq!(
        code_of(&env, &mut client, DuisService::SendCommand, enable(40, 5)).await,
        "E12"
    );
    // A Signed Pre-Command nobody transformed.
    assert_eq!(
        code_of(&env, &mut client, DuisService::SendCommand, enable(41, 5)).await,
        "E12"
    );
    // Another User's connection cannot transform supplier-a's request (check 0).
    let mut b = env.https("supplier-b").await;
    assert_eq!(
        code_of(&env, &mut b, DuisService::Transform, enable(42, 4)).await,
        "E1"
    );
    env.running.shutdown().await;
}
