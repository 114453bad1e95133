//! Issue 13, seed fidelity: the rules the governance texts in `shared/docs/sources/` state, one
//! test each, written from the seed's wording (quoted in each test's doc comment).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use dcc_router::policy::RateLimit;
use dcc_router::store::AuditFilter;
use dcc_router::{Lane, ResponseCode as C, SuspendedRights};
use dcc_signing::{Srv, UserRole};

fn srv(s: &str) -> Srv {
    s.parse().unwrap()
}

/// Issue 13 item 2, "Prepayment priority means staying on supply. Only the SRVs that keep
/// prepayment customers supplied (top-up, debt, emergency credit, arm supply, balance and
/// prepayment reads — a policy list) are promoted to L1 for a prepayment device; 7.2 Disable
/// Supply, tariff, firmware and credential changes are not." (domain.md, "Why prepayment
/// first": "The point is keeping customers on supply ... not every request that happens to
/// target a prepayment meter".)
#[test]
fn prepayment_priority_is_staying_on_supply() {
    let w = World::new();
    let s = &w.supplier;
    let cases = [
        // (srv, cv, target, lane)
        ("2.2", 1, w.prepay(), Lane::L1),    // top-up
        ("2.3", 5, w.prepay(), Lane::L1),    // debt
        ("4.18", 1, w.prepay(), Lane::L1),   // balance read
        ("4.4.4", 1, w.prepay(), Lane::L1),  // debt read: an L3 SRV in the list, promoted
        ("4.4.4", 1, w.credit(), Lane::L3),  // ... only for a prepayment device
        ("2.5", 5, w.prepay(), Lane::L0),    // emergency credit: never lowered
        ("7.3", 5, w.prepay(), Lane::L0),    // arm supply: never lowered
        ("7.2", 5, w.prepay(), Lane::L2),    // Disable Supply: not promoted
        ("1.1.1", 5, w.prepay(), Lane::L2),  // tariff
        ("11.3", 5, w.prepay(), Lane::L2),   // firmware
        ("6.15.2", 5, w.prepay(), Lane::L2), // credentials
        ("3.1", 1, w.prepay(), Lane::L2),    // display message
        ("4.1.1", 1, w.prepay(), Lane::L3),  // a bulk read
    ];
    for (i, (code, cv, target, lane)) in cases.into_iter().enumerate() {
        let r = w.send(Req::new(s, code, cv, target, 1 + i as u64).sign(s));
        assert_eq!(
            (r.code, r.lane),
            (C::Success, Some(lane)),
            "{code} to {target}"
        );
    }
    let p = w.router.policy();
    assert!(p.catalogue.get(srv("2.2")).unwrap().prepayment_priority);
    assert!(!p.catalogue.get(srv("7.2")).unwrap().prepayment_priority);
}

/// Issue 13 item 2: "Promotion never skips the per-User rate limit by itself." A request
/// promoted to L1 because its target is in prepayment mode is still counted against its
/// sender's token bucket when its own lane is L2 or L3; an SRV whose own lane is L1 is not.
#[test]
fn promotion_never_skips_the_rate_limit() {
    let w = World::new();
    let s = &w.supplier;
    w.router
        .admin()
        .set_rate_limit(s.eui, RateLimit::new(1, 1))
        .unwrap();
    let first = w.send(Req::new(s, "4.4.4", 1, w.prepay(), 1).sign(s));
    assert_eq!((first.code, first.lane), (C::Success, Some(Lane::L1)));
    let second = w.send(Req::new(s, "4.4.4", 1, w.prepay(), 2).sign(s));
    assert_eq!(
        (second.code, second.detail, second.lane),
        (C::Throttled, Some("rate-limit"), Some(Lane::L1))
    );
    // Top-up's own lane is L1: not limited, however many.
    for c in 3..8 {
        assert_eq!(
            w.send(Req::new(s, "2.2", 1, w.prepay(), c).sign(s)).code,
            C::Success
        );
    }
}

/// Issue 13 item 3, SEC M8.6 as tabasc-dp091-dp095.txt quotes it: "the Panel must request
/// authorisation from Ofgem to withdraw: (d) ... (e) ... (f) ... (g) the right of the
/// Defaulting Party to initiate Enrolment ...; and (h) the right of the Defaulting Party to
/// request or receive any or all Services other than those referred to elsewhere in this
/// Section M8.6." Suspending (h) refuses the other Services (12.1 Request WAN Matrix) and
/// nothing else; the refusal names the letter, and the change is audited with its reason.
#[test]
fn suspension_of_rights_is_sec_m8_6_d_to_h() {
    let w = World::new();
    let s = &w.supplier;
    let dcc = w.router.policy().dcc_eui;
    let admin = w
        .router
        .admin()
        .acting_as("admin test", Some("Authority approval ref A-1".into()));
    assert_eq!(
        w.send(Req::new(s, "12.1", 8, dcc, 1).sign(s)).code,
        C::Success
    );
    admin
        .suspend_rights(s.eui, SuspendedRights::M8_6_H_OTHER_SERVICES)
        .unwrap();
    let r = w.send(Req::new(s, "12.1", 8, dcc, 2).sign(s));
    assert_eq!(
        (r.code, r.detail),
        (C::RightsSuspended, Some("m8.6-h-suspended"))
    );
    // Core services in its own roles are (e), still held.
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 3).sign(s)).code,
        C::Success
    );
    admin
        .suspend_rights(s.eui, SuspendedRights::M8_6_E_CORE_OTHER_ROLES)
        .unwrap();
    let r = w.send(Req::new(s, "3.1", 1, w.credit(), 4).sign(s));
    assert_eq!(
        (r.code, r.detail),
        (C::RightsSuspended, Some("m8.6-e-suspended"))
    );
    admin
        .restore_rights(
            s.eui,
            SuspendedRights::M8_6_H_OTHER_SERVICES.union(SuspendedRights::M8_6_E_CORE_OTHER_ROLES),
        )
        .unwrap();
    assert_eq!(
        w.send(Req::new(s, "12.1", 8, dcc, 5).sign(s)).code,
        C::Success
    );
    let audit = admin
        .audit(&AuditFilter {
            subject: Some(s.eui.to_string()),
            limit: 0,
        })
        .unwrap();
    // Newest first: the (h) suspension is the older of the two.
    let suspend = audit.iter().rfind(|e| e.op == "suspend").unwrap();
    assert!(
        suspend.detail.contains("SEC M8.6 (h)"),
        "{}",
        suspend.detail
    );
    assert_eq!(
        suspend.reason.as_deref(),
        Some("Authority approval ref A-1")
    );
    // Assurance status (DP091) is an admin operation too: Deferred may not send.
    admin
        .set_assurance(s.eui, dcc_router::AssuranceStatus::Deferred)
        .unwrap();
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 6).sign(s)).code,
        C::InvalidUserStatus
    );
}

/// Issue 13 item 1, the safe-mode default set: MP134A (mp134a-solr-revocation-delay.txt)
/// "any Service Request sent would re-arm the supply but not activate it" — so 7.3 Arm Supply,
/// top-up, emergency credit and the reads are in the default set, 7.1 Enable Supply is not.
#[test]
fn enable_supply_is_not_in_the_default_safe_mode_set() {
    let p = dcc_router::Policy::default();
    let set: Vec<Srv> = p.catalogue.safe_mode_srvs().collect();
    for code in ["7.3", "2.2", "2.5", "2.3", "4.18", "4.3", "7.4"] {
        assert!(set.contains(&srv(code)), "{code} belongs to safe mode");
    }
    for code in ["7.1", "7.2", "1.1.1", "11.3"] {
        assert!(!set.contains(&srv(code)), "{code} is not safe mode");
    }
    // Every safe-mode SRV carries its reason in the embedded policy.
    let text = dcc_router::policy::DEFAULT_POLICY_TOML;
    let reasons = text.matches("# safe mode: ").count();
    assert_eq!(reasons, set.len());
}

fn matrix() -> Option<serde_json::Value> {
    let dir = std::env::var_os("DCC_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    let file = dir.join("dccboxed/duis-request-matrix.json");
    if file.is_file() {
        return Some(serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "shared vectors not found at {} (required on CI)",
        dir.display()
    );
    println!("skipping: shared vectors not found at {}", dir.display());
    None
}

/// Issue 13 item 9, "DUIS eligibility flags: future-dated and DCC-scheduled requests only for
/// the SRVs the matrix (duis-request-matrix.json) allows; others refused with the DUIS code."
/// The policy's flags equal the matrix's "Future Dated Response Pattern" and "DCC Scheduled"
/// columns for all 129 SRVs, and admission enforces them (E12).
#[test]
fn execution_kinds_follow_the_duis_matrix() {
    let w = World::new();
    let s = &w.supplier;
    let r = w.send(Req::new(s, "7.3", 5, w.prepay(), 1).future_dated().sign(s));
    assert_eq!(
        (r.code, r.detail),
        (C::InvalidCommandVariant, Some("not-future-datable"))
    );
    let r = w.send(Req::new(s, "2.2", 1, w.prepay(), 2).scheduled().sign(s));
    assert_eq!(
        (r.code, r.detail),
        (C::InvalidCommandVariant, Some("not-schedulable"))
    );
    let r = w.send(Req::new(s, "4.6.1", 1, w.credit(), 3).scheduled().sign(s));
    assert_eq!((r.code, r.lane), (C::Acknowledged, Some(Lane::L3)));
    let r = w.send(Req::new(s, "4.18", 1, w.prepay(), 4).future_dated().sign(s));
    assert_eq!((r.code, r.lane), (C::Acknowledged, Some(Lane::L3)));
    // Network operators too: 4.10 is schedulable.
    let no = &w.network_operator;
    let r = w.send(
        Req::new(no, "4.10", 1, w.credit(), 1)
            .role(UserRole::ElectricityDistributor)
            .scheduled()
            .sign(no),
    );
    assert_eq!(r.code, C::Acknowledged);

    let Some(matrix) = matrix() else { return };
    let p = w.router.policy();
    let rows = matrix.as_array().unwrap();
    assert_eq!(rows.len(), 129);
    for row in rows {
        let code = row["Service Reference Variant"].as_str().unwrap();
        let e = p.catalogue.get(srv(code)).unwrap();
        let future = row["Future Dated Response Pattern"].as_str().unwrap() != "No";
        let scheduled = row["DCC Scheduled"].as_str().unwrap() == "Yes";
        assert_eq!(
            (e.future_dated, e.dcc_scheduled),
            (future, scheduled),
            "{code}"
        );
    }
}

/// Issue 13 item 1, MP134A as written (mp134a-solr-revocation-delay.txt): the SMKI PMA decides
/// to delay; "The Authority can then direct an SRP to take action to maintain the continuity
/// of the failed Supplier's prepayment consumers, using the failed Supplier's SMKI
/// certificates". So the request is signed with the failed Supplier's key and originated as
/// the failed Supplier, and accepted only over a directed SRP's connection, only for the
/// delay's SRV set; the failed Supplier's own connection is refused.
#[test]
fn mp134a_as_written_the_srp_sends_as_the_failed_supplier() {
    let w = World::new();
    let (failed, srp, other) = (&w.supplier, &w.srp, &w.supplier_b);
    let admin = w
        .router
        .admin()
        .acting_as("admin test", Some("SMKI PMA decision 30 Nov".into()));
    // Signed with the failed Supplier's key, originated as the failed Supplier.
    let as_failed = |srv: &str, cv, c| Req::new(failed, srv, cv, w.prepay(), c).sign(failed);

    // The PMA's decision alone: no SRP is directed, so nobody may use the certificate.
    let safe: Vec<Srv> = w.router.policy().catalogue.safe_mode_srvs().collect();
    admin
        .pma_delay_revocation(&failed.cert, safe, None)
        .unwrap();
    let r = w.send_from(srp.eui, as_failed("2.2", 1, 1));
    assert_eq!(
        (r.code, r.detail),
        (C::InvalidUser, Some("connection-not-originator"))
    );

    // The Authority directs the SRP.
    admin
        .acting_as("admin test", Some("Authority direction 1 Dec".into()))
        .direct_srps(
            &failed.cert,
            [srp.eui],
            dcc_router::state::SrpSendsAs::FailedSupplier,
        )
        .unwrap();
    for (i, (code, cv)) in [("2.2", 1), ("7.3", 5), ("2.5", 5), ("4.18", 1)]
        .into_iter()
        .enumerate()
    {
        let r = w.send_from(srp.eui, as_failed(code, cv, 10 + i as u64));
        assert_eq!((r.code, r.lane), (C::Success, Some(Lane::L0)), "{code}");
    }
    assert!(w
        .recorder
        .snapshot()
        .iter()
        .all(|d| d.acting_for == Some(failed.eui) && d.request_id.originator == failed.eui));

    // Outside the delay's SRV set (7.1 Enable Supply is not in it): refused as revoked.
    let r = w.send_from(srp.eui, as_failed("7.1", 5, 20));
    assert_eq!(r.code, C::CertificateRevoked);
    // The failed Supplier's own connection, and the embedding API (no connection): refused.
    assert_eq!(
        w.send_from(failed.eui, as_failed("2.2", 1, 21)).code,
        C::CertificateRevoked
    );
    assert_eq!(w.send(as_failed("2.2", 1, 22)).code, C::CertificateRevoked);
    // A connection the Authority did not direct.
    let r = w.send_from(other.eui, as_failed("2.2", 1, 23));
    assert_eq!(r.code, C::InvalidUser);
    // The SRP-own-EUI form is not what this direction allows.
    let own = Req::new(srp, "2.2", 1, w.prepay(), 24)
        .signed_with(failed.cert)
        .sign(failed);
    assert_eq!(
        w.send_from(srp.eui, own.clone()).code,
        C::CertificateRevoked
    );

    // ... but it stays as a documented option of the direction.
    admin
        .direct_srps(
            &failed.cert,
            [srp.eui],
            dcc_router::state::SrpSendsAs::OwnEui,
        )
        .unwrap();
    assert_eq!(w.send_from(srp.eui, own).code, C::Success);

    // Two decisions, two audited operations, each with its reason.
    let audit = admin
        .audit(&AuditFilter {
            subject: Some(failed.cert.to_string()),
            limit: 0,
        })
        .unwrap();
    let op = |name: &str| audit.iter().find(|e| e.op == name).unwrap().clone();
    assert_eq!(
        op("pma-delay-revocation").reason.as_deref(),
        Some("SMKI PMA decision 30 Nov")
    );
    let direct = op("authority-direct-srps");
    assert_eq!(direct.reason.as_deref(), Some("SMKI PMA decision 30 Nov"));
    assert!(direct.subjects.contains(&srp.eui.to_string()));
}

/// Issue 13 item 1: "A delay whose end has passed is a revocation — it cannot be revived by a
/// new delay." The PMA's delay may have an end ("the seed sets no term": `None` is allowed);
/// once it has passed, everything signed with the certificate is refused as revoked, and
/// neither a new delay nor a new direction brings it back.
#[test]
fn a_delay_past_its_end_is_a_revocation_that_cannot_be_revived() {
    let w = World::new();
    let (failed, srp) = (&w.supplier, &w.srp);
    let admin = w.router.admin();
    admin
        .pma_delay_revocation(&failed.cert, [srv("2.2")], Some(NOW + 60))
        .unwrap();
    admin
        .direct_srps(&failed.cert, [srp.eui], Default::default())
        .unwrap();
    let req = |c| Req::new(failed, "2.2", 1, w.prepay(), c).sign(failed);
    assert_eq!(w.send_from(srp.eui, req(1)).code, C::Success);
    w.clock.advance(60);
    assert_eq!(w.send_from(srp.eui, req(2)).code, C::CertificateRevoked);
    for e in [
        admin
            .pma_delay_revocation(&failed.cert, [srv("2.2")], None)
            .unwrap_err(),
        admin
            .direct_srps(&failed.cert, [srp.eui], Default::default())
            .unwrap_err(),
        admin
            .delay_revocation(&failed.cert, [srp.eui], [srv("2.2")], NOW + 600)
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), "delay-ended", "{e}");
    }
    assert_eq!(w.send_from(srp.eui, req(3)).code, C::CertificateRevoked);
    // Ending it records the revocation from the delay's end.
    admin.end_delay(&failed.cert).unwrap();
    assert!(matches!(
        w.router.state().certs.get(&failed.cert).unwrap().status(),
        dcc_router::state::CertStatus::Revoked { at } if at == NOW + 60
    ));
    // An end in the past is refused outright.
    let e = admin
        .pma_delay_revocation(&w.supplier_b.cert, [srv("2.2")], Some(NOW))
        .unwrap_err();
    assert_eq!(e.code(), "end-not-in-future");
}

/// Issue 13: "Every new state field must be durable." The PMA's open-ended delay and the
/// Authority's direction come back from the store after a restart, and keep working.
#[test]
fn mp134a_delay_and_direction_survive_a_restart() {
    use dcc_router::store::{RedbStore, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
    let w = World::with_store(store);
    let (failed, srp) = (w.supplier.clone(), w.srp.clone());
    let admin = w.router.admin();
    admin
        .pma_delay_revocation(&failed.cert, [srv("2.2")], None)
        .unwrap();
    admin
        .direct_srps(&failed.cert, [srp.eui], Default::default())
        .unwrap();
    drop(admin); // it holds the store open
    w.router.shutdown();
    drop(w);

    let router = reopen(&path);
    let dcc_router::state::CertStatus::Delayed(d) =
        router.state().certs.get(&failed.cert).unwrap().status()
    else {
        panic!("delay lost")
    };
    assert_eq!(d.until, None);
    assert!(d.srps.contains(&srp.eui));
    assert_eq!(d.sends_as, dcc_router::state::SrpSendsAs::FailedSupplier);
    let (tx, rx) = std::sync::mpsc::channel();
    router.submit_from(
        dcc_router::Sender::User(srp.eui),
        Req::new(
            &failed,
            "2.2",
            1,
            dcc_signing::Eui64::from_u64(PREPAY_METER),
            5,
        )
        .sign(&failed),
        move |r| {
            let _ = tx.send(r);
        },
    );
    assert_eq!(rx.recv().unwrap().code, C::Success);
    router.shutdown();
}

/// Waits (at most 5 s) until `device` satisfies `done`: the pipeline's effects (the GNO slot
/// after a 6.15.1, the registration after a 6.23) land right after the hand-off, outside the
/// certificate lock (effects.rs), so just after the answer.
fn wait_for_device(
    router: &dcc_router::Router,
    device: dcc_signing::Eui64,
    what: &str,
    done: impl Fn(&dcc_router::Device) -> bool,
) {
    for _ in 0..500 {
        if done(&router.state().devices.get(device).unwrap()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("device {device} never {what}");
}

fn wait_for_slot(w: &World, device: dcc_signing::Eui64, want: dcc_router::state::GnoSlot) {
    wait_for_device(
        &w.router,
        device,
        &format!("had {want:?} in its GNO slot"),
        |d| d.gno_slot == want,
    );
}

/// Issue 13 item 4, MP128B (mp128b-gno-certificates.txt): "where an unrevoked SMKI
/// Organisation Certificate for a GNO that is a DCC User exists, then the Supplier should put
/// it onto the Device Post Commissioning. Where there is no GNO Organisation Certificate
/// available in the SMKI Repository, the Supplier shall leave the ACB Certificate in the
/// Device." A GNO's requests reach the device only when the slot holds its certificate (E4
/// naming what the slot holds otherwise); the Supplier's 6.15.1 changes the slot.
#[test]
fn mp128b_gno_requests_need_the_gno_slot() {
    use dcc_router::state::GnoSlot;
    use dcc_router::{Device, Party};
    let w = World::new();
    let s = &w.supplier;
    let admin = w.router.admin();
    let (gno, gno_b, no_cert) = (User::new(0x0A), User::new(0x0B), User::new(0x0C));
    for u in [&gno, &gno_b, &no_cert] {
        admin
            .upsert_party(u.eui, Party::approved(&[UserRole::GasTransporter]))
            .unwrap();
    }
    admin.add_certificate(gno.record()).unwrap();
    admin.add_certificate(gno_b.record()).unwrap();
    let meter = dcc_signing::Eui64::from_u64(0x00DB_0000_0000_00AA);
    let mut d = Device::new(s.eui);
    d.network_operator = Some(gno.eui);
    admin.upsert_device(meter, d).unwrap();
    let read = |u: &User, c| {
        w.send(
            Req::new(u, "4.1.1", 1, meter, c)
                .role(UserRole::GasTransporter)
                .sign(u),
        )
    };

    // A new device holds the ACB certificate.
    let r = read(&gno, 1);
    assert_eq!(
        (r.code, r.detail),
        (C::NotAuthorisedForDevice, Some("gno-slot-holds-acb"))
    );
    // The Supplier's credential update places the registered GNO's certificate.
    assert_eq!(
        w.send(Req::new(s, "6.15.1", 5, meter, 1).sign(s)).code,
        C::Success
    );
    wait_for_slot(&w, meter, GnoSlot::Gno(gno.eui));
    assert_eq!(read(&gno, 2).code, C::Success);
    // Registration moves to another GNO: the slot still holds the first one's certificate.
    admin
        .merge_device(meter, d, |d| d.network_operator = Some(gno_b.eui))
        .unwrap();
    let r = read(&gno_b, 1);
    assert_eq!(
        (r.code, r.detail),
        (
            C::NotAuthorisedForDevice,
            Some("gno-slot-holds-another-gno")
        )
    );
    // A GNO with no Organisation Certificate in the repository: the update leaves the ACB.
    admin
        .merge_device(meter, d, |d| d.network_operator = Some(no_cert.eui))
        .unwrap();
    assert_eq!(
        w.send(Req::new(s, "6.15.1", 5, meter, 2).sign(s)).code,
        C::Success
    );
    wait_for_slot(&w, meter, GnoSlot::Acb);
    // Audited as the pipeline's change, naming the request.
    let audit = admin
        .audit(&AuditFilter {
            subject: Some(meter.to_string()),
            limit: 0,
        })
        .unwrap();
    let placed = audit
        .iter()
        .find(|e| e.op == "place-gno-certificate")
        .unwrap();
    assert!(placed.who.starts_with("pipeline "), "{placed:?}");
}

/// Issue 13 item 5, DP092 (tabasc-dp091-dp095.txt; domain.md "Maintenance windows": "Planned
/// maintenance runs between 20:00 and 08:00, at most six hours a window; one high-impact and
/// up to three low-impact windows a month"). Windows that break a rule are refused naming it;
/// during a window the policy's lanes (L3; L2 too when high-impact) are answered busy with the
/// documented detail, while L0/L1 flow; the admin channel's windows survive a restart.
#[test]
fn dp092_maintenance_windows() {
    use dcc_router::state::maintenance::{Impact, MaintenanceWindow};
    use dcc_router::store::{RedbStore, Store};
    use std::sync::Arc;
    // 2023-11-14T22:13:20Z is NOW; the night's window opens at 22:00.
    const NIGHT: u64 = NOW - 800;
    let win = |start, hours: u64, impact| MaintenanceWindow {
        start,
        end: start + hours * 3600,
        impact,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
    let w = World::with_store(store);
    let s = &w.supplier;
    let admin = w.router.admin();
    let code = |w: MaintenanceWindow| admin.add_maintenance_window(w).unwrap_err().code();
    assert_eq!(code(win(NIGHT - 6 * 3600, 2, Impact::Low)), "dp092-night"); // 16:00
    assert_eq!(code(win(NIGHT + 6 * 3600, 6, Impact::Low)), "dp092-night"); // to 10:00
    assert_eq!(code(win(NIGHT, 7, Impact::Low)), "dp092-length");
    admin
        .add_maintenance_window(win(NIGHT, 2, Impact::High))
        .unwrap();
    // One high-impact window a month: another night in November is refused.
    assert_eq!(
        code(win(NIGHT + 2 * 86_400, 2, Impact::High)),
        "dp092-high-per-month"
    );
    for day in 1..=3 {
        admin
            .add_maintenance_window(win(NIGHT + day * 86_400, 1, Impact::Low))
            .unwrap();
    }
    assert_eq!(
        code(win(NIGHT + 5 * 86_400, 1, Impact::Low)),
        "dp092-low-per-month"
    );

    // Inside the high-impact window: L2 and L3 are busy, L0 and L1 flow.
    let r = w.send(Req::new(s, "3.1", 1, w.credit(), 1).sign(s));
    assert_eq!(
        (r.code, r.detail, r.lane),
        (C::Busy, Some("maintenance-window"), Some(Lane::L2))
    );
    let r = w.send(Req::new(s, "4.1.1", 1, w.credit(), 2).sign(s));
    assert_eq!((r.code, r.detail), (C::Busy, Some("maintenance-window")));
    assert_eq!(
        w.send(Req::new(s, "2.2", 1, w.prepay(), 3).sign(s)).code,
        C::Success
    );
    assert_eq!(
        w.send(Req::new(s, "7.3", 5, w.credit(), 4).sign(s)).code,
        C::Success
    );
    // The next night's low-impact window holds back L3 only.
    w.clock.advance(86_400);
    assert_eq!(
        w.send(Req::new(s, "3.1", 1, w.credit(), 5).sign(s)).code,
        C::Success
    );
    let r = w.send(Req::new(s, "4.1.1", 1, w.credit(), 6).sign(s));
    assert_eq!((r.code, r.detail), (C::Busy, Some("maintenance-window")));
    // After it, everything flows.
    w.clock.advance(3600);
    assert_eq!(
        w.send(Req::new(s, "4.1.1", 1, w.credit(), 7).sign(s)).code,
        C::Success
    );
    drop(admin);
    w.router.shutdown();
    drop(w);

    // The windows come back from the store.
    let router = reopen(&path);
    assert_eq!(router.state().maintenance.admin_windows().len(), 4);
    assert_eq!(router.state().maintenance.active(NOW), Some(Impact::High));
    router.shutdown();
}

/// A new router over the store file at `path`, its state restored (a restart).
fn reopen(path: &std::path::Path) -> dcc_router::Router {
    let router = dcc_router::Router::builder()
        .store(std::sync::Arc::new(
            dcc_router::store::RedbStore::open(path).unwrap(),
        ))
        .dispatcher(std::sync::Arc::new(Recorder::default()))
        .clock(dcc_router::Clock::manual(NOW))
        .workers(1)
        .build()
        .unwrap();
    router.admin().restore(None).unwrap();
    router
}

/// Issue 13 item 6, DP094 (tabasc-dp091-dp095.txt, "Supporting prepayment customers in no SM
/// WAN scenarios": Suppliers must "fully service their customers where SM WAN coverage is poor
/// or non-existent"): "CV 1 to a no-WAN device is refused with the DUIS code for it, CV 2/3
/// return the command for local delivery (CV 3: via WAN if possible, else local), and the
/// prepayment lane keeps priority." The WAN state is set over the admin channel, audited, and
/// survives a restart.
#[test]
fn dp094_no_wan_prepayment_is_local_delivery() {
    use dcc_router::state::WanState;
    use dcc_router::store::{RedbStore, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
    let w = World::with_store(store);
    let s = &w.supplier;
    let admin = w
        .router
        .admin()
        .acting_as("admin test", Some("CSP incident 4711".into()));
    admin.set_wan_state(w.prepay(), WanState::None).unwrap();
    assert_eq!(
        w.router.state().devices.get(w.prepay()).unwrap().wan,
        WanState::None
    );

    // CV 1 (and its critical twin, CV 5): WAN only — E20, "unable to communicate".
    for (i, (code, cv)) in [("4.4.4", 1), ("2.3", 5)].into_iter().enumerate() {
        let r = w.send(Req::new(s, code, cv, w.prepay(), 1 + i as u64).sign(s));
        assert_eq!(
            (r.code, r.detail),
            (C::DeviceUnreachable, Some("no-wan")),
            "{code} CV {cv}"
        );
    }
    // CV 2/3 (6/7): the command comes back for local delivery, nothing goes over the WAN,
    // and the prepayment promotion of 4.4.4 (an L3 SRV) to L1 holds.
    for (i, (code, cv)) in [("4.4.4", 2), ("4.4.4", 3), ("2.3", 6), ("2.3", 7)]
        .into_iter()
        .enumerate()
    {
        let r = w.send(Req::new(s, code, cv, w.prepay(), 10 + i as u64).sign(s));
        assert_eq!(
            (r.code, r.detail),
            (C::Success, Some("local-delivery")),
            "{code} CV {cv}"
        );
        if code == "4.4.4" {
            assert_eq!(r.lane, Some(Lane::L1));
        }
    }
    assert!(
        w.recorder.take().is_empty(),
        "nothing dispatched over the WAN"
    );

    // With WAN, CV 3 goes via the WAN; CV 2 is still local (the User asked for it).
    admin.set_wan_state(w.prepay(), WanState::Poor).unwrap();
    let r = w.send(Req::new(s, "4.4.4", 3, w.prepay(), 20).sign(s));
    assert_eq!(
        (r.code, r.detail, r.lane),
        (C::Success, None, Some(Lane::L1))
    );
    assert_eq!(w.recorder.take().len(), 1);
    let r = w.send(Req::new(s, "4.4.4", 2, w.prepay(), 21).sign(s));
    assert_eq!((r.code, r.detail), (C::Success, Some("local-delivery")));
    let r = w.send(Req::new(s, "4.4.4", 1, w.prepay(), 22).sign(s));
    assert_eq!((r.code, r.detail), (C::Success, None));
    admin.set_wan_state(w.prepay(), WanState::None).unwrap();

    let audit = admin
        .audit(&AuditFilter {
            subject: Some(w.prepay().to_string()),
            limit: 0,
        })
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.op == "set-wan-state" && e.detail.contains("WAN none")),
        "{audit:?}"
    );
    drop(admin);
    w.router.shutdown();
    drop(w);

    // The WAN state comes back from the store.
    let router = reopen(&path);
    let prepay = router
        .state()
        .devices
        .get(dcc_signing::Eui64::from_u64(PREPAY_METER))
        .map(|d| d.wan);
    assert_eq!(prepay, Some(WanState::None));
    router.shutdown();
}

/// Issue 13 item 6: "about 9 % of prepayment devices without WAN by default in the demo
/// population" (DP094's "over 9% (86,000+ messages)"), by a rule of the index alone so that a
/// load generator knows which devices take local delivery only.
#[test]
fn dp094_demo_population_has_about_nine_percent_no_wan_prepayment() {
    use dcc_router::client::demo::{
        demo_device_without_wan, DEFAULT_DEMO_DEVICES, DEFAULT_PREPAYMENT_PERCENT,
    };
    let p = DEFAULT_PREPAYMENT_PERCENT;
    let prepay = (0..DEFAULT_DEMO_DEVICES)
        .filter(|i| i % 100 < u64::from(p))
        .count();
    let no_wan = (0..DEFAULT_DEMO_DEVICES)
        .filter(|&i| demo_device_without_wan(i, p))
        .count();
    let share = no_wan as f64 / prepay as f64;
    assert!((0.085..0.095).contains(&share), "{no_wan}/{prepay}");
    // Only prepayment devices, never the first thousand (small demo worlds are unchanged).
    assert!((0..DEFAULT_DEMO_DEVICES)
        .filter(|&i| demo_device_without_wan(i, p))
        .all(|i| i % 100 < u64::from(p) && i >= 1000));
}

// ---- issue 13 item 7: ECoS, SRV 6.23 through the CoS Party; item 8: the router's keys ----

/// A fresh P-256 key as PKCS#8 PEM (what `admin key import` reads), and its public key.
fn cos_key() -> (String, p256::PublicKey) {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = dcc_signing::Signer::random();
    let pem = key
        .signing_key()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    (pem, key.public_key())
}

fn wait_for_supplier(router: &dcc_router::Router, device: dcc_signing::Eui64, want: Eui64) {
    wait_for_device(router, device, &format!("moved to {want}"), |d| {
        d.supplier == Some(want)
    });
}

use dcc_router::{CosCertificate, KeyPurpose};
use dcc_signing::Eui64;

/// Issue 13 item 7, ECoS (domain.md, "The DCC's own keys": "SRV 6.23 (CoS Update Security
/// Credentials) is counter-signed by the CoS Party with the CoS key matching the certificate
/// the device holds (TCoS or ECoS)"; beis-2021-ecos-smki-response.txt 3.1, "the proposed
/// revised processing of Service Reference Variant 6.23 (CoS Update Security Credentials)
/// Service Requests"). The gaining Supplier's 6.23 passes the usual checks, is counter-signed —
/// real ECDSA P-256 over the request with the User's signature, verifiable with the CoS public
/// key — and, once dispatched, the device's registered supplier is the gaining Supplier.
/// Refused: the registered (same) Supplier, E4 `already-registered-supplier`; a Supplier
/// that is not the gaining one, E4 `not-gaining-supplier`.
#[test]
fn ecos_6_23_is_counter_signed_by_the_cos_party_and_moves_the_device() {
    let w = World::new();
    let (a, b) = (&w.supplier, &w.supplier_b);
    let admin = w
        .router
        .admin()
        .acting_as("admin test", Some("TCoS key held".into()));
    let (pem, public) = cos_key();
    admin
        .import_key(
            "tcos@tcos-sp",
            KeyPurpose::Tcos,
            pem.as_bytes(),
            "PMA-2021-09",
        )
        .unwrap();
    let device = w.credit();
    // No Change of Supplier pending yet: nobody is gaining.
    let r = w.send(Req::new(b, "6.23", 1, device, 1).sign(b));
    assert_eq!(
        (r.code, r.detail),
        (C::NotAuthorisedForDevice, Some("not-gaining-supplier"))
    );
    // The registered Supplier cannot make itself gaining.
    assert_eq!(
        admin
            .set_gaining_supplier(device, Some(a.eui))
            .unwrap_err()
            .code(),
        "device-party"
    );
    admin.set_gaining_supplier(device, Some(b.eui)).unwrap();
    // The losing (registered) Supplier's 6.23, and a third Supplier's, are refused.
    let r = w.send(Req::new(a, "6.23", 1, device, 1).sign(a));
    assert_eq!(
        (r.code, r.detail),
        (
            C::NotAuthorisedForDevice,
            Some("already-registered-supplier")
        )
    );
    let r = w.send(Req::new(&w.srp, "6.23", 1, device, 1).sign(&w.srp));
    assert_eq!(
        (r.code, r.detail),
        (C::NotAuthorisedForDevice, Some("not-gaining-supplier"))
    );
    assert!(w.recorder.take().is_empty());

    // The gaining Supplier's 6.23: dispatched with the CoS Party's counter-signature.
    let sent = Req::new(b, "6.23", 1, device, 2).sign(b);
    let r = w.send(sent.clone());
    assert_eq!((r.code, r.lane), (C::Success, Some(Lane::L2)), "{r:?}");
    let log = w.recorder.take();
    assert_eq!(log.len(), 1);
    let cos = log[0]
        .cos
        .clone()
        .expect("a 6.23 carries the CoS counter-signature");
    assert_eq!(
        (&*cos.key_id, cos.certificate),
        ("tcos@tcos-sp", CosCertificate::Tcos)
    );
    assert_eq!(
        log[0].message, sent,
        "it signs the request as the User signed it"
    );
    assert!(
        cos.verifies(&public, &sent),
        "verifies under the TCoS public key"
    );
    // Real ECDSA: any other message, or any other key, fails.
    let mut tampered = sent.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(!cos.verifies(&public, &tampered));
    assert!(!cos.verifies(&cos_key().1, &sent));
    // ... and verified independently of the router's helper.
    {
        use p256::ecdsa::signature::Verifier as _;
        let sig = p256::ecdsa::Signature::from_slice(&cos.signature).unwrap();
        p256::ecdsa::VerifyingKey::from(&public)
            .verify(&sent, &sig)
            .unwrap();
    }

    // The device is B's now; the pending change is gone; the audit names the key.
    wait_for_supplier(&w.router, device, b.eui);
    assert_eq!(w.router.state().gaining.get(device), None);
    let audit = admin
        .audit(&AuditFilter {
            subject: Some(device.to_string()),
            limit: 0,
        })
        .unwrap();
    assert!(
        audit.iter().any(|e| e.op == "change-of-supplier-cos"
            && e.detail.contains("tcos@tcos-sp")
            && e.who.starts_with("pipeline ")),
        "{audit:?}"
    );
    // B now commands the device; A no longer does; another 6.23 from B is "same supplier".
    assert_eq!(
        w.send(Req::new(b, "2.2", 1, device, 3).sign(b)).code,
        C::Success
    );
    assert_eq!(
        w.send(Req::new(a, "2.2", 1, device, 2).sign(a)).code,
        C::NotAuthorisedForDevice
    );
    let r = w.send(Req::new(b, "6.23", 1, device, 4).sign(b));
    assert_eq!(
        (r.code, r.detail),
        (
            C::NotAuthorisedForDevice,
            Some("already-registered-supplier")
        )
    );
    // Other SRVs carry no counter-signature.
    assert!(w.recorder.take().iter().all(|d| d.cos.is_none()));
}

/// Issue 13 item 7: the key is chosen by the certificate the *device* holds (a device field,
/// TCoS or ECoS), never by the Supplier or one of its MPIDs — beis-2021-ecos-smki-response.txt
/// 3.1: "selecting the 'right' Private Key ... DCC must ensure that treating them as 'split
/// suppliers' as in the past is not repeated". A Supplier with several MPIDs is one Party
/// (one User ID, several User Roles here): its electricity (IS) and gas (GS) devices both move
/// to it. A device holding a CoS certificate the router has no key for is refused R13
/// `no-ecos-key` before its counter is spent.
#[test]
fn ecos_key_follows_the_device_certificate_and_a_supplier_is_one_party() {
    let w = World::new();
    let b = &w.supplier_b;
    let admin = w
        .router
        .admin()
        .acting_as("admin test", Some("keys".into()));
    let (tcos_pem, tcos_public) = cos_key();
    admin
        .import_key("tcos", KeyPurpose::Tcos, tcos_pem.as_bytes(), "PMA-1")
        .unwrap();
    let (elec, gas) = (w.credit(), w.prepay());
    admin
        .set_cos_certificate(elec, CosCertificate::Ecos)
        .unwrap();
    admin.set_gaining_supplier(elec, Some(b.eui)).unwrap();
    admin.set_gaining_supplier(gas, Some(b.eui)).unwrap();

    // ECoS device, no ECoS key: R13, nothing dispatched, the counter not spent.
    let r = w.send(Req::new(b, "6.23", 1, elec, 1).sign(b));
    assert_eq!(
        (r.code, r.detail),
        (C::CosKeyUnavailable, Some("no-ecos-key"))
    );
    assert!(w.recorder.take().is_empty());
    let (ecos_pem, ecos_public) = cos_key();
    admin
        .import_key("ecos", KeyPurpose::Ecos, ecos_pem.as_bytes(), "PMA-2")
        .unwrap();
    let sent = Req::new(b, "6.23", 1, elec, 1).sign(b);
    assert_eq!(w.send(sent.clone()).code, C::Success);
    let cos = w.recorder.take().pop().unwrap().cos.unwrap();
    assert_eq!(
        (&*cos.key_id, cos.certificate),
        ("ecos", CosCertificate::Ecos)
    );
    assert!(cos.verifies(&ecos_public, &sent));
    assert!(!cos.verifies(&tcos_public, &sent));

    // The same Party, in its Gas Supplier role (another MPID in the market): TCoS device.
    let sent = Req::new(b, "6.23", 1, gas, 2)
        .role(UserRole::GasSupplier)
        .sign(b);
    assert_eq!(w.send(sent.clone()).code, C::Success);
    let cos = w.recorder.take().pop().unwrap().cos.unwrap();
    assert!(cos.verifies(&tcos_public, &sent));
    wait_for_supplier(&w.router, elec, b.eui);
    wait_for_supplier(&w.router, gas, b.eui);
}

/// Issue 13 item 8, BEIS 2022 key transfer (beis-2022-sec-changes-consultation.txt 3.1–3.3:
/// the DCC may "transfer a Private Key from the systems of one Service Provider to another
/// subject to the DCC gaining the SMKI PMA's approval", e.g. the TCoS Private Key to the ECoS
/// Party "so that devices still holding TCoS Certificates" keep working). Import and retire
/// need the PMA reference (recorded in the audit); during the overlap both holders sign (and
/// both signatures verify under the one TCoS public key); a different key pair is not a
/// transfer; the last key cannot be retired; keys, CoS certificates and pending changes
/// survive a restart, in a store file readable by its owner only.
#[test]
fn beis_2022_key_transfer_with_pma_approval() {
    use dcc_router::store::{RedbStore, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store holds private keys");
    }
    let w = World::with_store(store);
    let b = &w.supplier_b;
    let admin = w
        .router
        .admin()
        .acting_as("admin test", Some("TCoS key to the ECoS Party".into()));
    let (pem, public) = cos_key();
    let e = admin
        .import_key("tcos@tcos-sp", KeyPurpose::Tcos, pem.as_bytes(), " ")
        .unwrap_err();
    assert_eq!(e.code(), "no-pma-reference");
    admin
        .import_key(
            "tcos@tcos-sp",
            KeyPurpose::Tcos,
            pem.as_bytes(),
            "PMA-2022-17",
        )
        .unwrap();
    let e = admin
        .import_key(
            "tcos@tcos-sp",
            KeyPurpose::Tcos,
            pem.as_bytes(),
            "PMA-2022-17",
        )
        .unwrap_err();
    assert_eq!(e.code(), "key-exists");
    let e = admin
        .import_key(
            "other",
            KeyPurpose::Tcos,
            cos_key().0.as_bytes(),
            "PMA-2022-17",
        )
        .unwrap_err();
    assert_eq!(e.code(), "key-mismatch", "{e}");
    assert_eq!(
        admin
            .import_key("x", KeyPurpose::Tcos, b"not a key", "PMA")
            .unwrap_err()
            .code(),
        "bad-key"
    );
    assert_eq!(
        admin
            .retire_key("tcos@tcos-sp", "PMA-2022-17")
            .unwrap_err()
            .code(),
        "last-key"
    );
    // The transfer: the same key, now also held by the ECoS Party.
    admin
        .import_key(
            "tcos@ecos-party",
            KeyPurpose::Tcos,
            pem.as_bytes(),
            "PMA-2022-17",
        )
        .unwrap();
    // During the overlap both serve, and devices cannot tell: both verify under one key.
    let devices = [w.credit(), w.prepay()];
    for d in devices {
        admin.set_gaining_supplier(d, Some(b.eui)).unwrap();
    }
    let mut signers = std::collections::BTreeSet::new();
    for (i, d) in devices.into_iter().enumerate() {
        let sent = Req::new(b, "6.23", 1, d, 1 + i as u64).sign(b);
        assert_eq!(w.send(sent.clone()).code, C::Success);
        let cos = w.recorder.take().pop().unwrap().cos.unwrap();
        assert!(cos.verifies(&public, &sent));
        signers.insert(cos.key_id.to_string());
    }
    assert_eq!(
        signers.len(),
        2,
        "both holders signed during the overlap: {signers:?}"
    );
    assert_eq!(
        admin.retire_key("nope", "PMA").unwrap_err().code(),
        "unknown-key"
    );
    assert_eq!(
        admin.retire_key("tcos@tcos-sp", "").unwrap_err().code(),
        "no-pma-reference"
    );
    admin.retire_key("tcos@tcos-sp", "PMA-2022-17").unwrap();
    let audit = admin.audit(&AuditFilter::default()).unwrap();
    for op in ["key-import", "key-retire"] {
        assert!(
            audit.iter().any(|e| e.op == op
                && e.detail.contains("SMKI PMA approval PMA-2022-17")
                && e.reason.as_deref() == Some("TCoS key to the ECoS Party")),
            "{op}: {audit:?}"
        );
    }
    assert!(
        audit.iter().all(|e| !e.detail.contains(&pem[40..80])),
        "the audit log never holds the private key"
    );
    // A device migrated to ECoS, and a change pending, to see them come back.
    admin
        .set_cos_certificate(w.credit(), CosCertificate::Ecos)
        .unwrap();
    wait_for_supplier(&w.router, w.credit(), b.eui);
    admin
        .set_gaining_supplier(w.credit(), Some(w.supplier.eui))
        .unwrap();
    drop(admin);
    w.router.shutdown();
    drop(w);

    let router = reopen(&path);
    let keys = router.state().keys.all();
    assert_eq!(
        keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["tcos@ecos-party"]
    );
    assert_eq!(keys[0].signer.public_key(), public);
    let credit = Eui64::from_u64(CREDIT_METER);
    assert_eq!(
        router
            .state()
            .devices
            .get(credit)
            .map(|d| (d.cos, d.supplier)),
        Some((CosCertificate::Ecos, Some(Eui64::from_u64(SUPPLIER_B))))
    );
    assert_eq!(
        router.state().gaining.get(credit),
        Some(Eui64::from_u64(SUPPLIER))
    );
    router.shutdown();
}

/// Issue 13 item 6 (DP094), the simulated SM WAN (tabasc-dp091-dp095.txt, "Supporting
/// prepayment customers in no SM WAN scenarios": "where SM WAN coverage is poor or
/// non-existent"; the March 2018 weather pushed "over 9%" of one Supplier's messages to
/// UTRNs): a device on a poor WAN loses about 10 % of its commands (`POOR_LOSS_PER_MILLE`;
/// E21, as a device that never answers) and a device on a good one none; a device whose WAN
/// goes down while its command waits is answered E20 by the WAN itself, not by admission.
#[test]
fn dp094_the_simulated_wan_loses_on_a_poor_link_and_cannot_reach_a_dead_one() {
    use dcc_router::egress::{SimulatedWan, WanModel};
    use dcc_router::state::WanState;
    use std::sync::Arc;
    use std::time::Duration;
    let gate = Arc::new(GatedVerifier::default());
    let router = dcc_router::Router::builder()
        .dispatcher(Arc::new(SimulatedWan::new(WanModel {
            base: Duration::from_micros(200),
            jitter: Duration::ZERO,
            seed: 7,
        })))
        .verifier(gate.clone())
        .workers(1)
        .clock(dcc_router::Clock::manual(NOW))
        .build()
        .unwrap();
    let admin = router.admin();
    let s = User::new(SUPPLIER);
    admin
        .upsert_party(
            s.eui,
            dcc_router::Party::approved(&[UserRole::ImportSupplier]),
        )
        .unwrap();
    admin.add_certificate(s.record()).unwrap();
    let (good, poor) = (Eui64::from_u64(CREDIT_METER), Eui64::from_u64(PREPAY_METER));
    for d in [good, poor] {
        admin
            .upsert_device(d, dcc_router::Device::new(s.eui))
            .unwrap();
    }
    admin.set_wan_state(poor, WanState::Poor).unwrap();

    // A command waiting for verification when its device loses the WAN: the WAN answers E20.
    let waiting = router.submit(Req::new(&s, "2.2", 1, good, 1).sign(&s));
    gate.wait_entered(1);
    admin.set_wan_state(good, WanState::None).unwrap();
    gate.open();
    let r = waiting.wait();
    assert_eq!((r.code, r.detail), (C::DeviceUnreachable, None), "{r:?}");
    // Admission refuses the next one itself (DP094's E20 `no-wan`).
    let r = router.submit_blocking(Req::new(&s, "2.2", 1, good, 2).sign(&s));
    assert_eq!((r.code, r.detail), (C::DeviceUnreachable, Some("no-wan")));
    admin.set_wan_state(good, WanState::Ok).unwrap();

    let n = 300u64;
    let count = |device: Eui64, first: u64| {
        let pending: Vec<_> = (0..n)
            .map(|i| router.submit(Req::new(&s, "2.2", 1, device, first + i).sign(&s)))
            .collect();
        let mut lost = 0;
        for p in pending {
            match p.wait().code {
                C::Success => {}
                C::NoDeviceResponse => lost += 1,
                other => panic!("{other:?}"),
            }
        }
        lost
    };
    let lost_good = count(good, 10);
    let lost_poor = count(poor, 10 + n);
    println!("lost: good WAN {lost_good}/{n}, poor WAN {lost_poor}/{n}");
    assert_eq!(lost_good, 0);
    // 10 % expected (30 of 300); a seeded draw, bounded loosely.
    assert!(
        (12..=60).contains(&lost_poor),
        "poor WAN lost {lost_poor} of {n}"
    );
    router.shutdown();
}
