//! A national-scale population (issue 15.4), from outside: `dcc-sign pki init --suppliers N
//! --network-operators M --certs-per-user K` (the CLI's own entry point) writes many Users with
//! several Organisation Certificates each, chain-valid under the directory's root and issuing
//! CA with the right roles; `dcc-router serve` starts on that directory, registers every
//! certificate, spreads its demo devices over the Suppliers by the Zipf market rule
//! (`client::demo::DemoMarket`), and accepts requests from several of the new Users, signed
//! with each of their keys. Sizes are kept small; the run is bounded by the server start
//! timeout and a few requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serve::{Server, Start};
use dcc_router::client::demo::{demo_device, DemoMarket};
use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::{load_ca_certs, DemoPki};
use dcc_signing::pki::{ChainValidator, OrgCertificate, TrustAnchors};
use dcc_signing::{CommandVariant, ExecutionKind, RemotePartyRole, RequestId, Signer, UserRole};

const SUPPLIERS: usize = 12;
const NETWORK_OPERATORS: usize = 3;
const CERTS: usize = 2;
const DEVICES: u64 = 1_000;

fn request(signer: &Signer, cert: &OrgCertificate, device: u64, counter: u64) -> Vec<u8> {
    let h = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::new(1).unwrap(),
        execution: ExecutionKind::OnDemand,
        srv: "2.2".parse().unwrap(),
        request_id: RequestId {
            originator: cert.subject_eui64,
            target: demo_device(device),
            counter,
        },
        execute_at: 0,
        signer: cert.id,
    };
    signer.sign_envelope(&h, b"payload").unwrap()
}

/// The number before the word starting with `after` in a banner line.
fn number(line: &str, after: &str) -> usize {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| w.starts_with(after)).unwrap();
    words[i - 1].parse().unwrap()
}

#[test]
fn serve_first_start_creates_a_national_population_in_its_demo_pki() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A first start on the default demo PKI (DATA/pki), sized here: not the helper's small one.
    let start = Start {
        data_dir: &data,
        pki: &data.join("pki"),
        small: false,
    };
    let serve = Server::try_start_with(
        &start,
        &[
            "--in-memory",
            "--workers",
            "1",
            "--demo-devices",
            "500",
            "--demo-suppliers",
            "6",
            "--demo-network-operators",
            "2",
            "--demo-certs-per-user",
            "3",
        ],
    )
    .unwrap();
    let state = serve.banner_line("state ").to_owned();
    drop(serve);
    let pki = DemoPki::load_from_dir(&data.join("pki")).unwrap();
    let national: Vec<_> = pki
        .users
        .iter()
        .filter(|u| u.name.starts_with("supplier-0") || u.name.starts_with("netop-0"))
        .collect();
    assert_eq!(national.len(), 8);
    assert!(national.iter().all(|u| u.more_certs.len() == 2));
    assert!(number(&state, "certificates") >= 5 + 8 * 3, "{state}");
    assert!(number(&state, "parties") >= 5 + 8, "{state}");
    assert_eq!(number(&state, "devices,"), 500, "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_init_national_population_serves_requests_from_many_users_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    // 1. dcc-sign pki init, through the CLI's entry point.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = dcc_signing::cli::main_with_args(
        [
            "dcc-sign",
            "pki",
            "init",
            "--dir",
            pki_dir.to_str().unwrap(),
            "--suppliers",
            &SUPPLIERS.to_string(),
            "--network-operators",
            &NETWORK_OPERATORS.to_string(),
            "--certs-per-user",
            &CERTS.to_string(),
        ],
        &mut out,
        &mut err,
    );
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}{}", String::from_utf8_lossy(&err));
    let users = 5 + SUPPLIERS + NETWORK_OPERATORS;
    let certs = 5 + (SUPPLIERS + NETWORK_OPERATORS) * CERTS;
    assert!(
        out.contains(&format!("{users} users, {certs} signing certificates")),
        "{out}"
    );

    // 2. Counts, roles, and every certificate chain-valid under the directory's own CAs.
    let pki = DemoPki::load_from_dir(&pki_dir).unwrap();
    let (root, issuing) = load_ca_certs(&pki_dir).unwrap();
    let chain = ChainValidator::new(TrustAnchors::new(vec![root])).with_intermediate(issuing);
    let now = dcc_signing::pki::now_unix();
    let of = |prefix: &str| {
        pki.users
            .iter()
            .filter(|u| u.name.starts_with(prefix) && u.name.len() == prefix.len() + 4)
            .collect::<Vec<_>>()
    };
    let (suppliers, netops) = (of("supplier-"), of("netop-"));
    assert_eq!(suppliers.len(), SUPPLIERS);
    assert_eq!(netops.len(), NETWORK_OPERATORS);
    for (group, role, roles) in [
        (
            &suppliers,
            RemotePartyRole::Supplier,
            vec![
                UserRole::ImportSupplier,
                UserRole::ExportSupplier,
                UserRole::GasSupplier,
            ],
        ),
        (
            &netops,
            RemotePartyRole::NetworkOperator,
            vec![UserRole::ElectricityDistributor],
        ),
    ] {
        for u in group.iter() {
            assert_eq!(u.user_roles, roles, "{}", u.name);
            assert_eq!(u.more_certs.len(), CERTS - 1, "{}", u.name);
            let mut keys = vec![u.signer.public_key()];
            for c in std::iter::once(&u.cert).chain(u.more_certs.iter().map(|m| &m.cert)) {
                assert_eq!(c.role, role, "{}", u.name);
                assert_eq!(c.subject_eui64, u.eui64, "{}", u.name);
                chain.validate(c, now).unwrap();
            }
            for m in &u.more_certs {
                assert_eq!(m.signer.public_key(), m.cert.public_key);
                assert!(
                    !keys.contains(&m.signer.public_key()),
                    "{}: keys differ",
                    u.name
                );
                keys.push(m.signer.public_key());
            }
        }
    }

    // 3. dcc-router serve on that directory.
    let config = dir.path().join("router.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nmetrics = \"\"\nduis = \"\"\ndata_dir = {:?}\n\
             pki_dir = {:?}\nworkers = 1\nio_threads = 1\ndemo_devices = {DEVICES}\n",
            dir.path().join("data").to_str().unwrap(),
            pki_dir.to_str().unwrap(),
        ),
    )
    .unwrap();
    // Sized by the configuration file; its pki_dir is the `pki init` directory.
    let data = dir.path().join("data");
    let start = Start {
        data_dir: &data,
        pki: &pki_dir,
        small: false,
    };
    let serve = Server::try_start_with(&start, &["--config", config.to_str().unwrap()]).unwrap();
    let (addr, state) = (serve.addr, serve.banner_line("state ").to_owned());
    // Every certificate registered (the router may hold more of its own), every User a Party.
    assert!(number(&state, "certificates") >= certs, "{state}");
    assert!(number(&state, "parties") >= users, "{state}");
    assert_eq!(number(&state, "devices,"), DEVICES as usize, "{state}");

    // 4. Requests from several new Users, with each of their keys, to their own devices.
    // The server's Suppliers, by name: supplier-0001… then the standard supplier-a, -b.
    let market = DemoMarket::new(SUPPLIERS + 2, DEVICES);
    assert!(!market.is_round_robin());
    let mut counter = 1;
    for k in [0, 1, SUPPLIERS - 1] {
        let u = suppliers[k];
        let tls = TlsMaterial::client_of_demo(&pki, &u.name).unwrap();
        let client = Client::connect(addr, "localhost", &tls, StreamMode::default())
            .await
            .unwrap();
        let keys = std::iter::once((&u.signer, &u.cert))
            .chain(u.more_certs.iter().map(|m| (&m.signer, &m.cert)));
        for (signer, cert) in keys {
            counter += 1;
            let own = market.device_of(k, counter * 7919);
            let answer = client
                .send(request(signer, cert, own, counter))
                .await
                .unwrap();
            assert_eq!(answer.code, "I0", "{} key {}: {answer:?}", u.name, cert.id);
        }
        // A device of another Supplier is refused: the spread is the market's.
        counter += 1;
        let other = market.device_of((k + 1) % SUPPLIERS, counter);
        let answer = client
            .send(request(&u.signer, &u.cert, other, counter))
            .await
            .unwrap();
        assert_eq!(answer.code, "E4", "{}: {answer:?}", u.name);
    }
    drop(serve);
}
