//! Every provisioning operation end to end through the real `dcc-router admin` binary against a
//! real `dcc-router serve` child process (temp data dir, 127.0.0.1, a port the OS picks): the
//! exit code, the printed message, and the effect seen from outside — a signed Service
//! Request's answer over QUIC, or `admin --json status` / `audit`. Then the server is stopped
//! (SIGTERM, exit 0) and started again, and a sample of the provisioned state must have
//! survived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serve::{Out, Server, Start};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dcc_router::client::{Client, StreamMode};
use dcc_router::ingress::tls::TlsMaterial;
use dcc_router::ingress::wire::WireAnswer;
use dcc_router::server::bootstrap::demo_device;
use dcc_signing::envelope::Header;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::pki::{now_unix, OrgCertRequest};
use dcc_signing::{
    CertId, CommandVariant, Eui64, ExecutionKind, RemotePartyRole, RequestId, Signer, UserRole,
};
use serde_json::Value;

const DEMO_DEVICES: u64 = 200;
const ADMIN_WHO: &str = "admin 02-DC-C0-00-00-00-00-7F";

// ---- processes ----

/// `serve` on `data_dir` (its demo PKI), with [`DEMO_DEVICES`] demo devices.
fn start(data_dir: &Path) -> Server {
    let devices = DEMO_DEVICES.to_string();
    let start = Start {
        data_dir,
        pki: &data_dir.join("pki"),
        small: false,
    };
    Server::try_start_with(&start, &["--workers", "1", "--demo-devices", &devices]).unwrap()
}

/// Asserts success and that stdout contains `message`.
#[track_caller]
fn assert_ok(out: &Out, message: &str) {
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(message), "want {message:?}: {out:?}");
}

/// Asserts a refusal: non-zero exit, `message` on stderr.
#[track_caller]
fn assert_refused(out: &Out, message: &str) {
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(message), "want {message:?}: {out:?}");
}

// ---- Service Requests ----

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A signed request (fresh counter): `originator` sends in `role`, `signer` signs as `cert`.
fn envelope(
    originator: Eui64,
    role: UserRole,
    signer: &Signer,
    cert: CertId,
    srv: &str,
    device: Eui64,
) -> Vec<u8> {
    let h = Header {
        role,
        command_variant: CommandVariant::new(1).unwrap(),
        execution: ExecutionKind::OnDemand,
        srv: srv.parse().unwrap(),
        request_id: RequestId {
            originator,
            target: device,
            counter: COUNTER.fetch_add(1, Ordering::Relaxed),
        },
        execute_at: 0,
        signer: cert,
    };
    signer.sign_envelope(&h, b"payload").unwrap()
}

/// Sends envelopes concurrently on one connection as User `tls_user`; returns the answers.
fn send_all(srv: &Server, tls_user: &str, envelopes: Vec<Vec<u8>>) -> Vec<WireAnswer> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tls = TlsMaterial::client_from_pki_dir(&srv.pki, tls_user).unwrap();
    let addr = srv.addr;
    rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(20), async move {
            let client = std::sync::Arc::new(
                Client::connect(addr, "localhost", &tls, StreamMode::default())
                    .await
                    .unwrap(),
            );
            let tasks: Vec<_> = envelopes
                .into_iter()
                .map(|e| {
                    let c = client.clone();
                    tokio::spawn(async move { c.send(e).await.unwrap() })
                })
                .collect();
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            if let Ok(c) = std::sync::Arc::try_unwrap(client) {
                c.close().await;
            }
            answers
        })
        .await
        .expect("requests answered within 20 s")
    })
}

fn send(srv: &Server, tls_user: &str, envelope: Vec<u8>) -> WireAnswer {
    send_all(srv, tls_user, vec![envelope]).pop().unwrap()
}

/// The demo Users of a server's PKI directory, with their keys.
struct Users {
    pki: DemoPki,
}

impl Users {
    fn load(srv: &Server) -> Users {
        Users {
            pki: DemoPki::load_from_dir(&srv.pki).unwrap(),
        }
    }

    /// A request from demo User `name`, in its first User Role, signed with its own cert.
    fn req(&self, name: &str, srv: &str, device: Eui64) -> Vec<u8> {
        let u = self.pki.user(name).unwrap();
        envelope(u.eui64, u.user_roles[0], &u.signer, u.cert.id, srv, device)
    }

    fn eui(&self, name: &str) -> String {
        self.pki.user(name).unwrap().eui64.to_string()
    }
}

/// The code (and lane) a single request gets.
#[track_caller]
fn code(srv: &Server, tls_user: &str, env: Vec<u8>) -> String {
    send(srv, tls_user, env).code
}

fn cert_status(status: &Value, id: &str) -> Option<String> {
    status["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == id)
        .map(|c| c[2].as_str().unwrap().to_owned())
}

fn subjects(e: &Value) -> Vec<String> {
    e["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

const NEW_PARTY: &str = "02-DC-C0-00-00-00-00-09";
const NEW_DEVICE: &str = "02-DC-D0-00-00-00-FF-01";
const JSONL_BASE: u64 = 0x02DC_D000_0010_0000;
const CSV_BASE: u64 = 0x02DC_D000_0020_0000;
const IMPORTED: u64 = 3000;

#[test]
fn every_provisioning_op_end_to_end_and_state_survives_a_restart() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = start(&data);
    let users = Users::load(&srv);
    let (a, b, srp, netop) = (
        users.eui("supplier-a"),
        users.eui("supplier-b"),
        users.eui("srp"),
        users.eui("netop"),
    );
    let a_user = users.pki.user("supplier-a").unwrap().clone();
    let old_id = a_user.cert.id.to_string();
    // Demo devices alternate by Supplier name: even → supplier-a, odd → supplier-b.
    let (dev_a, dev_b) = (demo_device(0), demo_device(1));
    assert_eq!(
        code(&srv, "supplier-a", users.req("supplier-a", "2.2", dev_a)),
        "I0"
    );

    // ---- add-cert: a key rollover for supplier-a; both certificates serve ----
    let now = now_unix();
    let new_key = Signer::random();
    let new_cert = users
        .pki
        .issuing
        .issue_org(&OrgCertRequest::signing(
            a_user.eui64,
            RemotePartyRole::Supplier,
            new_key.public_key(),
            now - 60,
            now + 365 * 86_400,
        ))
        .unwrap();
    let new_id = new_cert.id.to_string();
    let new_pem = dir.path().join("supplier-a-2.pem");
    std::fs::write(&new_pem, new_cert.to_pem()).unwrap();
    let out = srv.admin(&[
        "--reason",
        "key rollover",
        "add-cert",
        new_pem.to_str().unwrap(),
    ]);
    assert_ok(&out, &format!("certificate {new_id} added"));
    let with_new = |device| {
        envelope(
            a_user.eui64,
            UserRole::ImportSupplier,
            &new_key,
            new_cert.id,
            "2.2",
            device,
        )
    };
    let with_old = |device| {
        envelope(
            a_user.eui64,
            UserRole::ImportSupplier,
            &a_user.signer,
            a_user.cert.id,
            "2.2",
            device,
        )
    };
    assert_eq!(code(&srv, "supplier-a", with_new(dev_a)), "I0");
    assert_eq!(code(&srv, "supplier-a", with_old(dev_a)), "I0");
    let st = srv.status();
    assert_eq!(cert_status(&st, &new_id).as_deref(), Some("active"));
    assert_eq!(cert_status(&st, &old_id).as_deref(), Some("active"));
    // The same certificate again is a no-op, still answered ok.
    assert_ok(
        &srv.admin(&["add-cert", new_pem.to_str().unwrap()]),
        "added",
    );

    // ---- retire-cert: the old key is refused (R2), the new one serves ----
    let out = srv.admin(&["--reason", "rollover done", "retire-cert", &old_id]);
    assert_ok(&out, &format!("certificate {old_id} retired"));
    assert_eq!(code(&srv, "supplier-a", with_old(dev_a)), "R2");
    assert_eq!(code(&srv, "supplier-a", with_new(dev_a)), "I0");
    assert!(cert_status(&srv.status(), &old_id)
        .unwrap()
        .starts_with("retired at "));
    // Retiring twice, or re-adding the retired certificate, is refused.
    assert_refused(&srv.admin(&["retire-cert", &old_id]), "is retired");

    // ---- party: add a Party, then change its roles ----
    let parties_before = srv.status()["parties"].as_u64().unwrap();
    let out = srv.admin(&[
        "--reason",
        "new Party",
        "party",
        NEW_PARTY,
        "--role",
        "IS",
        "--role",
        "GS",
    ]);
    assert_ok(&out, &format!("Party {NEW_PARTY} set"));
    assert_eq!(
        srv.status()["parties"].as_u64().unwrap(),
        parties_before + 1
    );
    // Its roles are in force: a Network Operator certificate is refused while it holds only
    // Supplier roles, and accepted once it holds ED.
    let party_key = Signer::random();
    let netop_cert = users
        .pki
        .issuing
        .issue_org(&OrgCertRequest::signing(
            NEW_PARTY.parse().unwrap(),
            RemotePartyRole::NetworkOperator,
            party_key.public_key(),
            now - 60,
            now + 86_400,
        ))
        .unwrap();
    let netop_pem = dir.path().join("party-9-netop.pem");
    std::fs::write(&netop_pem, netop_cert.to_pem()).unwrap();
    let out = srv.admin(&["add-cert", netop_pem.to_str().unwrap()]);
    assert_refused(&out, "OU role");
    assert!(out.stderr.contains(NEW_PARTY), "{out:?}");
    let out = srv.admin(&[
        "--reason",
        "now a DNO too",
        "party",
        NEW_PARTY,
        "--role",
        "IS",
        "--role",
        "ED",
    ]);
    assert_ok(&out, &format!("Party {NEW_PARTY} set"));
    assert_eq!(
        srv.status()["parties"].as_u64().unwrap(),
        parties_before + 1
    );
    assert_ok(
        &srv.admin(&["add-cert", netop_pem.to_str().unwrap()]),
        &format!("certificate {} added", netop_cert.id),
    );

    // ---- assurance: deferred → that Party's requests are refused E3 ----
    assert_eq!(
        code(&srv, "supplier-b", users.req("supplier-b", "2.2", dev_b)),
        "I0"
    );
    let out = srv.admin(&["--reason", "SMKI PMA deferral", "assurance", &b, "deferred"]);
    assert_ok(&out, &format!("{b} assurance status deferred"));
    assert_eq!(
        code(&srv, "supplier-b", users.req("supplier-b", "2.2", dev_b)),
        "E3"
    );
    // Others are untouched.
    assert_eq!(code(&srv, "supplier-a", with_new(dev_a)), "I0");

    // ---- device: add, then change payment mode, network operator, supplier ----
    let dev: Eui64 = NEW_DEVICE.parse().unwrap();
    let devices_before = srv.status()["devices"].as_u64().unwrap();
    let out = srv.admin(&[
        "--reason",
        "install",
        "device",
        NEW_DEVICE,
        "--supplier",
        &a,
        "--network-operator",
        &netop,
        "--payment-mode",
        "credit",
    ]);
    assert_ok(&out, &format!("device {NEW_DEVICE} set"));
    assert_eq!(
        srv.status()["devices"].as_u64().unwrap(),
        devices_before + 1
    );
    // 4.4.4 (a debt read) is an L3 SRV in the policy's prepayment_priority list: L3 on a
    // credit device, promoted to L1 on a prepayment one.
    let l2 = |s: &Server| {
        send(
            s,
            "supplier-a",
            envelope(
                a_user.eui64,
                UserRole::ImportSupplier,
                &new_key,
                new_cert.id,
                "4.4.4",
                dev,
            ),
        )
    };
    let r = l2(&srv);
    assert_eq!((r.code.as_str(), r.lane), ("I0", Some(3)), "{r:?}");
    assert_ok(
        &srv.admin(&["device", NEW_DEVICE, "--payment-mode", "prepayment"]),
        &format!("device {NEW_DEVICE} set"),
    );
    let r = l2(&srv);
    assert_eq!((r.code.as_str(), r.lane), ("I0", Some(1)), "{r:?}");
    // Network operator: netop may read it; after moving it to the new Party, netop may not.
    assert_eq!(code(&srv, "netop", users.req("netop", "4.1.1", dev)), "I0");
    assert_ok(
        &srv.admin(&["device", NEW_DEVICE, "--network-operator", NEW_PARTY]),
        &format!("device {NEW_DEVICE} set"),
    );
    assert_eq!(code(&srv, "netop", users.req("netop", "4.1.1", dev)), "E4");
    // Supplier: moved to the SRP; supplier-a loses it.
    assert_ok(
        &srv.admin(&["device", NEW_DEVICE, "--supplier", &srp]),
        &format!("device {NEW_DEVICE} set"),
    );
    assert_eq!(code(&srv, "supplier-a", with_new(dev)), "E4");
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", dev)), "I0");
    assert_eq!(
        srv.status()["devices"].as_u64().unwrap(),
        devices_before + 1
    );

    // ---- decommission: E5 ----
    let out = srv.admin(&["--reason", "removed", "decommission", NEW_DEVICE]);
    assert_ok(&out, NEW_DEVICE);
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", dev)), "E5");

    // ---- change-supplier: old Supplier E4, new one accepted ----
    let moved = demo_device(2); // supplier-a's
    assert_eq!(code(&srv, "supplier-a", with_new(moved)), "I0");
    let out = srv.admin(&[
        "--reason",
        "CoS",
        "change-supplier",
        &moved.to_string(),
        &srp,
    ]);
    assert_ok(&out, &format!("{moved} registered to {srp}"));
    assert_eq!(code(&srv, "supplier-a", with_new(moved)), "E4");
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", moved)), "I0");

    // ---- rate-limit: set (some of a burst refused R9), then --clear (none) ----
    // 4.1.1 is an L3 read; demo device 50 is supplier-a's and in credit mode (not promoted).
    let reads = |n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                envelope(
                    a_user.eui64,
                    UserRole::ImportSupplier,
                    &new_key,
                    new_cert.id,
                    "4.1.1",
                    demo_device(50),
                )
            })
            .collect()
    };
    let out = srv.admin(&[
        "--reason",
        "throttle",
        "rate-limit",
        &a,
        "--per-second",
        "1",
        "--burst",
        "1",
    ]);
    assert_ok(&out, &format!("{a}: 1/s, burst 1"));
    let codes: Vec<String> = send_all(&srv, "supplier-a", reads(6))
        .into_iter()
        .map(|r| r.code)
        .collect();
    assert!(codes.iter().any(|c| c == "R9"), "{codes:?}");
    assert!(codes.iter().all(|c| c == "R9" || c == "I0"), "{codes:?}");
    let out = srv.admin(&["rate-limit", &a, "--clear"]);
    assert_ok(&out, &format!("{a}: the policy's rate limit"));
    let codes: Vec<String> = send_all(&srv, "supplier-a", reads(6))
        .into_iter()
        .map(|r| r.code)
        .collect();
    assert!(codes.iter().all(|c| c == "I0"), "{codes:?}");
    // --per-second without --burst is a usage error.
    assert_refused(
        &srv.admin(&["rate-limit", &a, "--per-second", "5"]),
        "--burst",
    );

    // ---- import-devices: JSON lines and CSV, a few thousand each ----
    let jsonl = dir.path().join("devices.jsonl");
    let mut text = String::new();
    for i in 0..IMPORTED {
        let mode = if i % 3 == 0 { "prepayment" } else { "credit" };
        text.push_str(&format!(
            "{{\"device\":\"{}\",\"supplier\":\"{a}\",\"network_operator\":\"{netop}\",\"payment_mode\":\"{mode}\",\"status\":\"commissioned\"}}\n",
            Eui64::from_u64(JSONL_BASE + i)
        ));
    }
    std::fs::write(&jsonl, text).unwrap();
    let csv = dir.path().join("devices.csv");
    let mut text = String::from("device,supplier,network_operator,payment_mode,status\n");
    for i in 0..IMPORTED {
        text.push_str(&format!(
            "{},{srp},{netop},credit,commissioned\n",
            Eui64::from_u64(CSV_BASE + i)
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let before = srv.status()["devices"].as_u64().unwrap();
    let out = srv.admin(&[
        "--reason",
        "bulk import",
        "import-devices",
        jsonl.to_str().unwrap(),
    ]);
    assert_ok(&out, &format!("{IMPORTED} devices imported"));
    let out = srv.admin(&["import-devices", csv.to_str().unwrap()]);
    assert_ok(&out, &format!("{IMPORTED} devices imported"));
    let total_devices = before + 2 * IMPORTED;
    assert_eq!(srv.status()["devices"].as_u64().unwrap(), total_devices);
    let jsonl_dev = Eui64::from_u64(JSONL_BASE + IMPORTED - 1);
    let csv_dev = Eui64::from_u64(CSV_BASE + 1234);
    assert_eq!(code(&srv, "supplier-a", with_new(jsonl_dev)), "I0");
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", csv_dev)), "I0");
    assert_eq!(code(&srv, "supplier-a", with_new(csv_dev)), "E4");
    // A file with a bad line is refused naming the file and line; nothing imported.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "device,supplier\n{},{a}\nnot-an-eui,{a}\n",
            Eui64::from_u64(CSV_BASE + IMPORTED)
        ),
    )
    .unwrap();
    let out = srv.admin(&["import-devices", bad.to_str().unwrap()]);
    assert_refused(&out, "bad.csv:3:");
    assert_eq!(srv.status()["devices"].as_u64().unwrap(), total_devices);

    // ---- audit: who, why, and the filters ----
    let all = srv.audit(&["--limit", "1000"]);
    let by_admin: Vec<&Value> = all.iter().filter(|e| e["who"] == ADMIN_WHO).collect();
    assert!(by_admin.len() >= 15, "{all:#?}");
    // Only the admin and the bootstrap ever acted.
    assert!(
        all.iter()
            .all(|e| e["who"] == ADMIN_WHO || e["who"] == "bootstrap"),
        "{all:#?}"
    );
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    let find = |op: &str, reason: &str| {
        by_admin
            .iter()
            .find(|e| e["op"] == op && e["reason"] == reason)
            .unwrap_or_else(|| panic!("no {op} entry with reason {reason:?}: {all:#?}"))
    };
    let added = find("add-certificate", "key rollover");
    assert!(subjects(added).contains(&new_id), "{added}");
    find("retire-certificate", "rollover done");
    find("add-party", "new Party");
    find("update-party", "now a DNO too");
    find("set-assurance", "SMKI PMA deferral");
    find("device-set", "install");
    // `admin decommission` is audited as a device change to status Decommissioned.
    let gone = by_admin
        .iter()
        .find(|e| e["reason"] == "removed")
        .unwrap_or_else(|| panic!("no decommission entry: {all:#?}"));
    assert!(
        gone["op"] == "device-set" || gone["op"] == "decommission",
        "{gone}"
    );
    assert!(
        gone["detail"].as_str().unwrap().contains("Decommissioned"),
        "{gone}"
    );
    find("change-of-supplier", "CoS");
    find("set-rate-limit", "throttle");
    find("device-import", "bulk import");
    // --device: only entries naming the device, all of its changes.
    let about_dev = srv.audit(&["--device", NEW_DEVICE]);
    assert!(about_dev.len() >= 5, "{about_dev:#?}");
    assert!(about_dev
        .iter()
        .all(|e| subjects(e).contains(&NEW_DEVICE.to_owned())));
    assert!(about_dev
        .iter()
        .any(|e| e["detail"].as_str().unwrap().contains("Decommissioned")));
    // --party: the new Party's add, update, certificate and the device it became DNO of.
    let about_party = srv.audit(&["--party", NEW_PARTY]);
    assert!(about_party
        .iter()
        .all(|e| subjects(e).contains(&NEW_PARTY.to_owned())));
    for op in ["add-party", "update-party", "add-certificate", "device-set"] {
        assert!(
            about_party.iter().any(|e| e["op"] == op),
            "{op}: {about_party:#?}"
        );
    }
    // --cert (id or PEM file): the rollover certificate's own entry only.
    let about_cert = srv.audit(&["--cert", new_pem.to_str().unwrap()]);
    assert_eq!(about_cert.len(), 1, "{about_cert:#?}");
    assert_eq!(about_cert[0]["op"], "add-certificate");
    assert_eq!(srv.audit(&["--cert", &new_id]), about_cert);
    let about_old = srv.audit(&["--cert", &old_id]);
    assert!(about_old.iter().any(|e| e["op"] == "retire-certificate"));
    // --limit.
    assert_eq!(srv.audit(&["--limit", "3"]).len(), 3);
    // The human form names who and why.
    let out = srv.admin(&["audit", "--device", NEW_DEVICE]);
    assert_ok(&out, "entries, newest first:");
    assert!(out.stdout.contains(ADMIN_WHO), "{out:?}");
    assert!(out.stdout.contains("— reason: removed"), "{out:?}");

    // ---- restart: SIGTERM → exit 0; the provisioned state is back ----
    let audit_len = all.len();
    let status = srv.stop();
    assert!(status.success(), "{status:?}");
    let srv = start(&data);
    let st = srv.status();
    assert_eq!(st["devices"].as_u64().unwrap(), total_devices);
    assert_eq!(st["parties"].as_u64().unwrap(), parties_before + 1);
    assert_eq!(cert_status(&st, &new_id).as_deref(), Some("active"));
    assert!(cert_status(&st, &old_id)
        .unwrap()
        .starts_with("retired at "));
    assert_eq!(code(&srv, "supplier-a", with_new(dev_a)), "I0");
    assert_eq!(code(&srv, "supplier-a", with_old(dev_a)), "R2");
    assert_eq!(
        code(&srv, "supplier-b", users.req("supplier-b", "2.2", dev_b)),
        "E3"
    );
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", dev)), "E5");
    assert_eq!(code(&srv, "supplier-a", with_new(moved)), "E4");
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", moved)), "I0");
    assert_eq!(code(&srv, "srp", users.req("srp", "2.2", csv_dev)), "I0");
    assert_eq!(code(&srv, "supplier-a", with_new(jsonl_dev)), "I0");
    let codes: Vec<String> = send_all(&srv, "supplier-a", reads(6))
        .into_iter()
        .map(|r| r.code)
        .collect();
    assert!(
        codes.iter().all(|c| c == "I0"),
        "rate limit cleared: {codes:?}"
    );
    // The audit log survived too (a restart adds no entry: the store already knows the PKI).
    let after = srv.audit(&["--limit", "1000"]);
    assert_eq!(after.len(), audit_len, "{after:#?}");
    assert_eq!(srv.audit(&["--device", NEW_DEVICE]), about_dev);
    let status = srv.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn refused_admin_operations_exit_non_zero_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(&dir.path().join("data"));
    let users = Users::load(&srv);
    let (a, netop) = (users.eui("supplier-a"), users.eui("netop"));
    let before = srv.status();
    let audit_before = srv.audit(&["--limit", "1000"]).len();
    let unknown_dev = "02-DC-D0-00-00-00-EE-EE";
    let unknown_party = "02-DC-C0-00-00-00-00-55";

    // Unknown device: every device operation but `device` (which adds) is refused
    // (`decommission`: see `decommissioning_an_unknown_device_is_refused`).
    for args in [
        vec!["payment-mode", unknown_dev, "prepayment"],
        vec!["change-supplier", unknown_dev, a.as_str()],
    ] {
        let out = srv.admin(&args);
        assert_refused(&out, &format!("error: unknown device {unknown_dev}"));
    }
    // Bad assurance values are refused by the command line, naming the valid ones.
    let out = srv.admin(&["assurance", &a, "bogus"]);
    assert_refused(&out, "invalid value 'bogus'");
    assert!(out.stderr.contains("deferred"), "{out:?}");
    assert_refused(
        &srv.admin(&[
            "party",
            unknown_party,
            "--role",
            "IS",
            "--assurance",
            "maybe",
        ]),
        "invalid value 'maybe'",
    );
    // Unknown Party.
    assert_refused(
        &srv.admin(&["assurance", unknown_party, "deferred"]),
        &format!("unknown User {unknown_party}"),
    );
    assert_refused(
        &srv.admin(&["rate-limit", unknown_party, "--clear"]),
        &format!("unknown User {unknown_party}"),
    );
    // A device naming a Party that does not exist, or one without a fitting role.
    assert_refused(
        &srv.admin(&["device", unknown_dev, "--supplier", unknown_party]),
        "is not a registered Party",
    );
    assert_refused(
        &srv.admin(&["device", unknown_dev, "--supplier", &netop]),
        "holds no fitting User Role",
    );
    assert_refused(
        &srv.admin(&["change-supplier", &demo_device(0).to_string(), &netop]),
        "holds no fitting User Role",
    );
    // Unknown certificate; a bad rate limit; a bad role; a bad EUI-64.
    assert_refused(
        &srv.admin(&["retire-cert", "0102030405060708/1C"]),
        "unknown certificate 0102030405060708/1C",
    );
    assert_refused(
        &srv.admin(&["rate-limit", &a, "--per-second", "0", "--burst", "1"]),
        "both must be 1..=",
    );
    assert_refused(&srv.admin(&["party", unknown_party, "--role", "XX"]), "XX");
    assert_refused(&srv.admin(&["decommission", "not-an-eui"]), "not-an-eui");
    // A missing file.
    assert_refused(
        &srv.admin(&["import-devices", "/nonexistent/devices.jsonl"]),
        "/nonexistent/devices.jsonl",
    );
    assert_refused(
        &srv.admin(&["add-cert", "/nonexistent/cert.pem"]),
        "/nonexistent/cert.pem",
    );

    // Nothing changed, nothing audited.
    let after = srv.status();
    assert_eq!(after["devices"], before["devices"]);
    assert_eq!(after["parties"], before["parties"]);
    assert_eq!(after["certificates"], before["certificates"]);
    assert_eq!(srv.audit(&["--limit", "1000"]).len(), audit_before);
    assert_eq!(
        code(
            &srv,
            "supplier-a",
            users.req("supplier-a", "2.2", demo_device(0))
        ),
        "I0"
    );
    assert!(srv.stop().success());
}

/// `admin decommission` of a device the router does not know must be refused like every other
/// operation on an unknown device — not register a new, decommissioned, Supplier-less device.
#[test]
fn decommissioning_an_unknown_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(&dir.path().join("data"));
    let unknown_dev = "02-DC-D0-00-00-00-EE-EE";
    let devices = srv.status()["devices"].as_u64().unwrap();
    let out = srv.admin(&["decommission", unknown_dev]);
    let audit = srv.audit(&["--device", unknown_dev]);
    let after = srv.status()["devices"].as_u64().unwrap();
    assert!(srv.stop().success());
    assert_refused(&out, &format!("error: unknown device {unknown_dev}"));
    assert_eq!(after, devices);
    assert!(audit.is_empty(), "{audit:#?}");
}
