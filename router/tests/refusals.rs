//! Every response code has a request that triggers it, and a valid request of each lane passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use dcc_router::egress::{Command, DispatchReply, Dispatcher};
use dcc_router::policy::RateLimit;
use dcc_router::state::CertRecord;
use dcc_router::{
    AssuranceStatus, Device, DeviceStatus, Lane, Party, Policy, ResponseCode as C, Router,
    SuspendedRights,
};
use dcc_signing::{CertId, Eui64, Signer, UserRole};

#[test]
fn a_valid_request_of_each_lane_passes() {
    let w = World::new();
    let s = &w.supplier;
    let cases = [
        // (srv, cv, target, lane, code)
        ("7.1", 5, w.credit(), Lane::L0, C::Success), // Enable Supply, signed pre-command
        ("2.5", 5, w.prepay(), Lane::L0, C::Success), // Emergency credit
        ("2.2", 1, w.prepay(), Lane::L1, C::Success), // Top up: prepayment SRV
        ("3.1", 1, w.prepay(), Lane::L2, C::Success), // not a staying-on-supply SRV: not promoted
        ("3.1", 1, w.credit(), Lane::L2, C::Success), // Display message
        ("4.1.1", 1, w.credit(), Lane::L3, C::Success), // a read
        ("4.1.1", 1, w.prepay(), Lane::L3, C::Success), // reads are not promoted by default
    ];
    for (i, (srv, cv, target, lane, code)) in cases.into_iter().enumerate() {
        let r = w.send(Req::new(s, srv, cv, target, 100 + i as u64).sign(s));
        assert_eq!((r.code, r.lane), (code, Some(lane)), "{srv} to {target}");
        assert_eq!(r.request_id.unwrap().counter, 100 + i as u64);
    }
    // Future-dated: acknowledged (I99) in L3, dispatched all the same.
    let r = w.send(
        Req::new(s, "3.1", 1, w.credit(), 200)
            .future_dated()
            .sign(s),
    );
    assert_eq!((r.code, r.lane), (C::Acknowledged, Some(Lane::L3)));
    // Non-device: targets the DCC, CV 8.
    let dcc = w.router.policy().dcc_eui;
    let r = w.send(Req::new(s, "5.1", 8, dcc, 201).sign(s));
    assert_eq!((r.code, r.lane), (C::Success, Some(Lane::L3)));
    // Network operator on its registered device.
    let no = &w.network_operator;
    let r = w.send(
        Req::new(no, "4.10", 1, w.credit(), 1)
            .role(UserRole::ElectricityDistributor)
            .sign(no),
    );
    assert_eq!(r.code, C::Success);

    let log = w.recorder.snapshot();
    assert_eq!(log.len(), 10);
    let c = w.router.counters();
    assert_eq!(c.get(Some(Lane::L0), C::Success), 2);
    assert_eq!(c.get(Some(Lane::L1), C::Success), 1);
    assert_eq!(c.get(Some(Lane::L3), C::Acknowledged), 1);
    assert_eq!(c.total(C::Success), 9);
}

#[test]
fn user_role_srv_and_cv_refusals() {
    let w = World::new();
    let s = &w.supplier;
    let ok = |r: Req| w.send(r.sign(s));
    // E1: unknown originator (checked before anything about the certificate).
    let r = ok(Req::new(s, "3.1", 1, w.credit(), 1).from(Eui64::from_u64(0xDEAD)));
    assert_eq!((r.code, r.detail), (C::InvalidUser, Some("unknown-user")));
    // E1: a role the User does not hold.
    let r = ok(Req::new(s, "4.10", 1, w.credit(), 2).role(UserRole::ElectricityDistributor));
    assert_eq!((r.code, r.detail), (C::InvalidUser, Some("role-not-held")));
    // E2: the role may not send the SRV (6.5 is ED only); an SRV not in the catalogue.
    let r = ok(Req::new(s, "6.5", 1, w.credit(), 3));
    assert_eq!(
        (r.code, r.detail),
        (C::SrvNotAllowed, Some("role-not-eligible"))
    );
    let r = ok(Req::new(s, "99.1", 1, w.credit(), 4));
    assert_eq!((r.code, r.detail), (C::SrvNotAllowed, Some("unknown-srv")));
    // E2: 7.16 has no eligible role in the default catalogue.
    let r = ok(Req::new(s, "7.16", 5, w.credit(), 5));
    assert_eq!(r.code, C::SrvNotAllowed);
    // E12: a critical SRV sent as CV 1; a non-critical one as CV 4; a device SRV as CV 8.
    for (i, (srv, cv)) in [("7.1", 1), ("2.2", 4), ("3.1", 8)].into_iter().enumerate() {
        let r = ok(Req::new(s, srv, cv, w.credit(), 10 + i as u64));
        assert_eq!(r.code, C::InvalidCommandVariant, "{srv} cv {cv}");
    }
    // E3: assurance status.
    w.router
        .admin()
        .set_assurance(s.eui, AssuranceStatus::Deferred)
        .unwrap();
    assert_eq!(
        ok(Req::new(s, "3.1", 1, w.credit(), 20)).code,
        C::InvalidUserStatus
    );
    w.router
        .admin()
        .set_assurance(s.eui, AssuranceStatus::ApprovedWithConditions)
        .unwrap();
    assert_eq!(ok(Req::new(s, "3.1", 1, w.credit(), 21)).code, C::Success);
    assert!(w.recorder.snapshot().len() == 1);
}

#[test]
fn certificate_refusals() {
    let w = World::new();
    let (s, b) = (&w.supplier, &w.supplier_b);
    let admin = w.router.admin();
    let b_dev = Eui64::from_u64(0xB0B);
    admin.upsert_device(b_dev, Device::new(b.eui)).unwrap();
    // R2: unknown certificate.
    let unknown = CertId::new([7; 8], &[9, 9]).unwrap();
    let r = w.send(
        Req::new(s, "3.1", 1, w.credit(), 1)
            .signed_with(unknown)
            .sign(s),
    );
    assert_eq!(r.code, C::UnknownCertificate);
    // R5: signed with another User's certificate (and key).
    let r = w.send(Req::new(b, "3.1", 1, b_dev, 2).signed_with(s.cert).sign(s));
    assert_eq!(r.code, C::CertificateNotOwned);
    // R4: outside validity — not yet valid, and expired.
    let late = User::new(0x1A7E);
    admin
        .upsert_party(late.eui, Party::approved(&[UserRole::ImportSupplier]))
        .unwrap();
    admin
        .upsert_device(Eui64::from_u64(0x1A7E), Device::new(late.eui))
        .unwrap();
    admin
        .add_certificate(CertRecord {
            not_before: NOW + 10,
            ..late.record()
        })
        .unwrap();
    let req = |c| Req::new(&late, "3.1", 1, Eui64::from_u64(0x1A7E), c).sign(&late);
    assert_eq!(w.send(req(1)).code, C::CertificateExpired);
    w.clock.advance(10);
    assert_eq!(w.send(req(2)).code, C::Success);
    w.clock.set(NOW + 366 * 86_400);
    assert_eq!(w.send(req(3)).code, C::CertificateExpired);
    w.clock.set(NOW);
    // R3: revoked; a revoked certificate cannot be re-added.
    assert_eq!(
        w.send(Req::new(b, "3.1", 1, b_dev, 3).sign(b)).code,
        C::Success
    );
    admin.revoke(&b.cert).unwrap();
    assert_eq!(
        w.send(Req::new(b, "3.1", 1, b_dev, 4).sign(b)).code,
        C::CertificateRevoked
    );
    assert!(admin.add_certificate(b.record()).is_err());
    // Re-adding the same active certificate is a no-op; another key under its id is refused.
    admin.add_certificate(s.record()).unwrap();
    let impostor = CertRecord {
        public_key: Signer::random().public_key(),
        ..s.record()
    };
    assert!(matches!(
        admin.add_certificate(impostor),
        Err(dcc_router::AdminError::Conflict(c)) if c == s.cert
    ));
    // A CRL load revokes what the store knows.
    assert_eq!(admin.revoke_many(&[s.cert, unknown]).unwrap(), 1);
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 5).sign(s)).code,
        C::CertificateRevoked
    );
}

#[test]
fn device_refusals() {
    let w = World::new();
    let (s, b) = (&w.supplier, &w.supplier_b);
    // E19: unknown device; a non-device request not addressed to the DCC.
    let r = w.send(Req::new(s, "3.1", 1, Eui64::from_u64(0x404), 1).sign(s));
    assert_eq!(r.code, C::UnknownDevice);
    let r = w.send(Req::new(s, "5.1", 8, w.credit(), 2).sign(s));
    assert_eq!(
        (r.code, r.detail),
        (C::UnknownDevice, Some("non-device-target"))
    );
    // E4: another Supplier's device; a network operator on a device it is not registered for.
    let r = w.send(Req::new(b, "3.1", 1, w.credit(), 1).sign(b));
    assert_eq!(r.code, C::NotAuthorisedForDevice);
    let no = &w.network_operator;
    let r = w.send(
        Req::new(no, "4.10", 1, w.prepay(), 1)
            .role(UserRole::ElectricityDistributor)
            .sign(no),
    );
    assert_eq!(r.code, C::NotAuthorisedForDevice);
    // E5: a suspended device.
    let admin = w.router.admin();
    admin
        .set_device_status(w.credit(), DeviceStatus::Suspended)
        .unwrap();
    let r = w.send(Req::new(s, "3.1", 1, w.credit(), 3).sign(s));
    assert_eq!(r.code, C::DeviceStatusIncompatible);
    // Change of Supplier: the device moves, and so does the right to command it.
    admin
        .set_device_status(w.credit(), DeviceStatus::Commissioned)
        .unwrap();
    admin.set_registered_supplier(w.credit(), b.eui).unwrap();
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 4).sign(s)).code,
        C::NotAuthorisedForDevice
    );
    assert_eq!(
        w.send(Req::new(b, "3.1", 1, w.credit(), 5).sign(b)).code,
        C::Success
    );
}

#[test]
fn suspended_rights() {
    let w = World::new();
    let s = &w.supplier;
    let admin = w.router.admin();
    admin
        .suspend_rights(s.eui, SuspendedRights::M8_6_G_ENROLMENT)
        .unwrap();
    // Commission Device is an enrolment service; Display Message is not.
    let r = w.send(Req::new(s, "8.1.1", 5, w.credit(), 1).sign(s));
    assert_eq!(r.code, C::RightsSuspended);
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 2).sign(s)).code,
        C::Success
    );
    // Core services in its (non-Other-User) roles.
    admin
        .suspend_rights(s.eui, SuspendedRights::M8_6_E_CORE_OTHER_ROLES)
        .unwrap();
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 3).sign(s)).code,
        C::RightsSuspended
    );
    admin
        .restore_rights(
            s.eui,
            SuspendedRights::M8_6_E_CORE_OTHER_ROLES.union(SuspendedRights::M8_6_G_ENROLMENT),
        )
        .unwrap();
    assert_eq!(
        w.send(Req::new(s, "8.1.1", 5, w.credit(), 4).sign(s)).code,
        C::Success
    );
}

#[test]
fn malformed_bad_signature_and_replay() {
    let w = World::new();
    let s = &w.supplier;
    // R1 with the decode defect as detail; the Request ID is salvaged when readable.
    let r = w.send(b"hello".to_vec());
    assert_eq!(
        (r.code, r.detail, r.request_id),
        (C::Malformed, Some("too-short"), None)
    );
    let mut bytes = Req::new(s, "3.1", 1, w.credit(), 1).sign(s);
    bytes.push(0);
    let r = w.send(bytes);
    assert_eq!((r.code, r.detail), (C::Malformed, Some("length-mismatch")));
    assert_eq!(r.request_id.unwrap().counter, 1);
    let mut bytes = Req::new(s, "3.1", 1, w.credit(), 1).sign(s);
    bytes[0] = b'X';
    assert_eq!(w.send(bytes).detail, Some("bad-magic"));
    // R6: a tampered signature, and a tampered body.
    let mut bytes = Req::new(s, "3.1", 1, w.credit(), 2).sign(s);
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    assert_eq!(w.send(bytes).code, C::BadSignature);
    let mut bytes = Req::new(s, "3.1", 1, w.credit(), 3).sign(s);
    bytes[80] ^= 1;
    assert_eq!(w.send(bytes).code, C::BadSignature);
    // A bad signature does not consume the counter: the genuine request still passes.
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 2).sign(s)).code,
        C::Success
    );
    // R7: the same request again; an old counter far below the high-water mark.
    let bytes = Req::new(s, "3.1", 1, w.credit(), 100_000).sign(s);
    assert_eq!(w.send(bytes.clone()).code, C::Success);
    let r = w.send(bytes);
    assert_eq!((r.code, r.detail), (C::Replayed, Some("duplicate")));
    let r = w.send(Req::new(s, "3.1", 1, w.credit(), 5).sign(s));
    assert_eq!((r.code, r.detail), (C::Replayed, Some("too-old")));
    // Reordering within the window is fine.
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 99_000).sign(s))
            .code,
        C::Success
    );
    assert_eq!(w.router.counters().total(C::Replayed), 2);
}

#[test]
fn cheap_refusals_never_reach_the_verifier() {
    let gate = Arc::new(GatedVerifier::default());
    gate.open();
    let w = World::with(Policy::default(), gate.clone(), 1);
    let s = &w.supplier;
    let refused = [
        Req::new(s, "3.1", 1, w.credit(), 1).from(Eui64::from_u64(0xDEAD)),
        Req::new(s, "6.5", 1, w.credit(), 2),
        Req::new(s, "7.1", 1, w.credit(), 3),
        Req::new(s, "3.1", 1, Eui64::from_u64(0x404), 4),
        Req::new(&w.supplier_b, "3.1", 1, w.credit(), 5).signed_with(s.cert),
    ];
    for r in refused {
        assert!(!w.send(r.sign(s)).code.is_success());
    }
    assert_eq!(gate.entered.load(Ordering::SeqCst), 0);
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 6).sign(s)).code,
        C::Success
    );
    assert_eq!(gate.entered.load(Ordering::SeqCst), 1);
}

#[test]
fn throttled_except_l0_and_l1() {
    let policy = Policy {
        rate_limit: RateLimit::new(1, 2).unwrap(),
        ..Policy::default()
    };
    let w = World::with(policy, Arc::new(dcc_signing::verify::P256Verifier), 1);
    let s = &w.supplier;
    let mut c = 0;
    let mut send = |srv: &str, cv, target| {
        c += 1;
        w.send(Req::new(s, srv, cv, target, c).sign(s))
    };
    assert_eq!(send("4.1.1", 1, w.credit()).code, C::Success);
    assert_eq!(send("3.1", 1, w.credit()).code, C::Success);
    let r = send("4.1.1", 1, w.credit());
    assert_eq!((r.code, r.lane), (C::Throttled, Some(Lane::L3)));
    assert_eq!(send("3.1", 1, w.credit()).code, C::Throttled);
    // L1 and L0 are not rate limited.
    for _ in 0..5 {
        assert_eq!(send("2.2", 1, w.prepay()).code, C::Success);
        assert_eq!(send("7.3", 5, w.credit()).code, C::Success);
    }
    // A per-User override through the admin API.
    w.router
        .admin()
        .set_rate_limit(s.eui, Some(RateLimit::new(1_000_000, 100).unwrap()))
        .unwrap();
    assert_eq!(send("4.1.1", 1, w.credit()).code, C::Success);
}

#[derive(Debug)]
struct Unresponsive;
impl Dispatcher for Unresponsive {
    fn dispatch(&self, _c: Command, reply: DispatchReply) {
        if reply.is_awaited() {
            drop(reply);
        }
    }
}

#[test]
fn dispatcher_outcomes_and_shutdown() {
    let s = User::new(SUPPLIER);
    let router = Router::builder()
        .dispatcher(Arc::new(Unresponsive))
        .workers(1)
        .clock(dcc_router::Clock::manual(NOW))
        .build()
        .unwrap();
    let admin = router.admin();
    admin
        .upsert_party(s.eui, Party::approved(&[UserRole::ImportSupplier]))
        .unwrap();
    admin.add_certificate(s.record()).unwrap();
    admin
        .upsert_device(Eui64::from_u64(CREDIT_METER), Device::new(s.eui))
        .unwrap();
    let m = Eui64::from_u64(CREDIT_METER);
    // E21: the dispatcher dropped the reply.
    let r = router.submit_blocking(Req::new(&s, "3.1", 1, m, 1).sign(&s));
    assert_eq!(
        (r.code, r.detail),
        (C::NoDeviceResponse, Some("dropped-by-dispatcher"))
    );
    // R11: after shutdown.
    router.shutdown();
    let r = router.submit_blocking(Req::new(&s, "3.1", 1, m, 2).sign(&s));
    assert_eq!(r.code, C::Unavailable);
    assert_eq!(r.request_id.unwrap().counter, 2);
}

#[tokio::test]
async fn submit_is_a_future_usable_from_tokio() {
    let w = World::new();
    let s = &w.supplier;
    let futs: Vec<_> = (0..20)
        .map(|i| {
            w.router
                .submit(Req::new(s, "3.1", 1, w.credit(), i).sign(s))
        })
        .collect();
    for f in futs {
        assert_eq!(f.await.code, C::Success);
    }
}

/// `submit_with` answers each request exactly once through its callback, with the same codes
/// as `submit`: refused at once (on the caller's thread), replayed, and verified on a worker.
#[test]
fn submit_with_calls_back_once_per_request_with_the_same_answers() {
    let w = World::new();
    let s = &w.supplier;
    let (tx, rx) = std::sync::mpsc::channel();
    let requests = [
        (b"not an envelope".to_vec(), C::Malformed),
        (Req::new(s, "3.1", 1, w.credit(), 1).sign(s), C::Success),
        (Req::new(s, "3.1", 1, w.credit(), 2).sign(s), C::Success),
        (Req::new(s, "3.1", 1, w.credit(), 1).sign(s), C::Replayed),
        (Req::new(s, "2.2", 1, w.prepay(), 3).sign(s), C::Success),
    ];
    for (i, (bytes, _)) in requests.iter().enumerate() {
        let tx = tx.clone();
        w.router.submit_with(bytes.clone(), move |r| {
            tx.send((i, r.code)).expect("receiver alive");
        });
        // One at a time, so that the replayed counter meets a committed one.
        let (j, code) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("answer");
        assert_eq!((j, code), (i, requests[i].1), "request {i}");
    }
    drop(tx);
    assert!(rx.recv().is_err(), "no second answer for any request");
    assert_eq!(w.router.counters().all(), requests.len() as u64);
}

/// Panics in the first batch it sees, then verifies normally.
#[derive(Debug, Default)]
struct PanicsOnce(std::sync::atomic::AtomicBool);
impl dcc_signing::verify::Verifier for PanicsOnce {
    fn name(&self) -> &str {
        "panics-once"
    }
    fn prepare(&self, key: &p256::PublicKey) -> Arc<dyn dcc_signing::verify::PreparedKey> {
        dcc_signing::verify::P256Verifier.prepare(key)
    }
    fn verify_batch(&self, jobs: &[dcc_signing::verify::VerifyJob<'_>], out: &mut [bool]) {
        if !self.0.swap(true, Ordering::SeqCst) {
            panic!("verifier bug (expected by the test)");
        }
        dcc_signing::verify::P256Verifier.verify_batch(jobs, out);
    }
}

#[test]
fn a_panicking_verifier_answers_unavailable_and_the_worker_survives() {
    let w = World::with(Policy::default(), Arc::new(PanicsOnce::default()), 1);
    let s = &w.supplier;
    let r = w.send(Req::new(s, "3.1", 1, w.credit(), 1).sign(s));
    assert_eq!(r.code, C::Unavailable);
    // The only worker is still there, and the counter was not consumed.
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 1).sign(s)).code,
        C::Success
    );
}

/// Admission check 0: an ingress's authenticated sender may submit only what its own User
/// originates; the check comes before every other one (even an unknown originator is
/// answered `connection-not-originator`, not `unknown-user`), and the embedder is bound to
/// nothing.
#[test]
fn check_0_binds_the_sender_to_the_originator() {
    use dcc_router::Sender;
    let w = World::new();
    let s = &w.supplier;
    let other = &w.network_operator;
    let submit = |sender: Sender, bytes: Vec<u8>| {
        let (tx, rx) = std::sync::mpsc::channel();
        w.router.submit_from(sender, bytes, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().expect("answered")
    };
    let good = Req::new(s, "3.1", 1, w.credit(), 1).sign(s);
    let r = submit(Sender::User(other.eui), good.clone());
    assert_eq!(
        (r.code, r.detail),
        (C::InvalidUser, Some("connection-not-originator"))
    );
    let unknown = Req::new(s, "3.1", 1, w.credit(), 2)
        .from(Eui64::from_u64(0xDEAD))
        .sign(s);
    let r = submit(Sender::User(other.eui), unknown);
    assert_eq!(r.detail, Some("connection-not-originator"));
    // The refusal consumed nothing: the same request from its own User's connection passes.
    let r = submit(Sender::User(s.eui), good.clone());
    assert_eq!(r.code, C::Success);
    // And the embedder submits for anyone (a new counter: 1 is now spent).
    let r = submit(
        Sender::Embedder,
        Req::new(s, "3.1", 1, w.credit(), 3).sign(s),
    );
    assert_eq!(r.code, C::Success);
}
