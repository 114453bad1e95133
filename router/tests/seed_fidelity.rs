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
