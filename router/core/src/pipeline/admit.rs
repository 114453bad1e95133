//! Stage 2: admission — every cheap check, in the order of domain.md, before any CPU-heavy
//! work; then the lane, the per-User rate limit, and the lane's capacity.
//!
//! | # | check | refusal |
//! |---|-------|---------|
//! | 0 | the [`Sender`] an ingress authenticated may submit for this originator (a connection speaks for the User its client certificate names) — or it is an SRP the Authority directed under a revocation delay of the signer certificate and the request is originated as that certificate's owner, the failed Supplier (MP134A as written); a request originated as the owner of a revoked signer certificate goes on to check 6 (R3) | E1 `connection-not-originator` |
//! | 1 | originator is a known User | E1 |
//! | 2 | its security assurance status allows sending | E3 |
//! | 3 | it holds the User Role it sent in | E1 |
//! | 3a | its recent bad signatures are under the policy's refusal threshold ([`super::reputation`]) | R9 `bad-signatures` |
//! | 4 | the SRV is in the catalogue and the role may send it | E2 |
//! | 5 | the command variant is allowed for the SRV | E12 |
//! | 5a | a future-dated or DCC-scheduled request is for an SRV the DUIS matrix allows so (policy `future_dated` / `dcc_scheduled`) | E12 `not-future-datable` / `not-schedulable` |
//! | 6 | the signer certificate: known, not revoked, in validity, owned by the originator — or revocation-delayed (delay running, SRV in its safe-mode set) and sent by a directed SRP: over the SRP's connection as the failed Supplier, or — the [`SrpSendsAs::OwnEui`](crate::state::SrpSendsAs::OwnEui) variant — with the SRP's own EUI-64 as originator; anything else under a delay is R3 | R2, R3, R4, R5 |
//! | 7 | the target device exists (non-device requests: the target is the DCC) | E19 |
//! | 8 | the device is commissioned | E5 |
//! | 9 | the sender (for an SRP: the failed Supplier it acts for, MP185) is registered for the device in this role — except SRV 6.23, check 9c | E4 |
//! | 9c | SRV 6.23 CoS Update Security Credentials (ECoS, [`super::cos`] checks 1–3): the sender is not the registered Supplier, is the device's gaining Supplier, and the router holds a CoS key for the certificate the device holds | E4 `already-registered-supplier` / `not-gaining-supplier`, R13 `no-tcos-key` / `no-ecos-key` |
//! | 9a | a Gas Transporter request (a Gas Network Operator's): the device's GNO slot holds that GNO's certificate, not the ACB's or another GNO's (MP128B) | E4 `gno-slot-holds-acb` / `gno-slot-holds-another-gno` |
//! | 9b | DP094 no-WAN prepayment (tabasc-dp091-dp095.txt, "Supporting prepayment customers in no SM WAN scenarios"): a WAN-only command variant (CV 1, or 5 for a signed Pre-Command) to a device whose WAN state is none cannot be delivered; CV 2/6 and — for a device without WAN — CV 3/7 are answered I0 `local-delivery` at dispatch (`dispatch::route`) | E20 `no-wan` |
//! | 10 | the SEC M8.6 right this request needs ((d) core as Other User, (e) core in other roles, (f) elective, (g) enrolment, (h) any other Services) is not suspended | R8 `m8.6-X-suspended` |
//! | 11 | anti-replay pre-check (read only; the commit stage decides) | R7 |
//! | 12 | lane: SRP-under-delay → L0; future-dated / scheduled → L3; else the SRV's lane, promoted to L1 for a prepayment target only when the SRV is in the policy's `prepayment_priority` list (staying on supply); then an originator over the demotion threshold ([`super::reputation`]) → L3 whatever it claimed | — |
//! | 12a | a DP092 maintenance window (policy or admin channel) covers now and holds back this lane: by default L3 in a low-impact window, L2 and L3 in a high-impact one; L0/L1 always flow | R10 `maintenance-window` |
//! | 13 | per-User token bucket when the lane *before promotion* (the SRV's own, or L3 for future-dated / scheduled) or the final lane is L2 or L3: a promotion never skips it by itself | R9 |
//! | 14 | lane capacity (in the router, `try_send`) | R10 |

use std::sync::Arc;
use std::time::Instant;

use dcc_signing::envelope::Header;
use dcc_signing::{Eui64, ExecutionKind};

use super::dispatch::Route;
use super::lanes::Lane;
use super::reputation::{self, Standing};
use super::Shared;
use crate::policy::SrvEntry;
use crate::response::ResponseCode;
use crate::sender::Sender;
use crate::state::{CertEntry, CertUse, Device, DeviceStatus, PaymentMode, ReplayVerdict};

/// A request that passed admission.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub cert: Arc<CertEntry>,
    pub lane: Lane,
}

/// Why admission refused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal {
    pub code: ResponseCode,
    pub detail: Option<&'static str>,
    pub lane: Option<Lane>,
}

fn refuse(code: ResponseCode, detail: &'static str) -> Refusal {
    Refusal {
        code,
        detail: Some(detail),
        lane: None,
    }
}

/// Runs checks 0–13 (see the module table).
pub(crate) fn admit(
    shared: &Shared,
    sender: Sender,
    h: &Header,
    now: Instant,
) -> Result<Admitted, Refusal> {
    let state = &*shared.state;
    let policy = &*shared.policy;
    let originator = h.request_id.originator;

    // 0: the connection's identity binds the originator — except for a directed SRP sending
    // as the failed Supplier under a revocation delay (MP134A as written: "using the failed
    // Supplier's SMKI certificates"); check 6 then holds it to the delay's SRVs and end.
    if let Sender::User(user) = sender {
        if user != originator && !srp_for_failed_supplier(state, h, user) {
            return Err(refuse(
                ResponseCode::InvalidUser,
                "connection-not-originator",
            ));
        }
    }

    // 1–3: the User.
    let party = state
        .parties
        .get(originator)
        .ok_or_else(|| refuse(ResponseCode::InvalidUser, "unknown-user"))?;
    if !party.assurance.may_send() {
        return Err(refuse(ResponseCode::InvalidUserStatus, "assurance-status"));
    }
    if !party.roles.contains(h.role) {
        return Err(refuse(ResponseCode::InvalidUser, "role-not-held"));
    }

    // 3a: signature reputation. Early, so that a refused flood costs a map lookup and no more.
    let standing = shared
        .reputation
        .standing(originator, &policy.reputation, now);
    if standing == Standing::Refused {
        return Err(refuse(ResponseCode::Throttled, reputation::DETAIL));
    }

    // 4–5: the SRV.
    let entry = policy
        .catalogue
        .get(h.srv)
        .ok_or_else(|| refuse(ResponseCode::SrvNotAllowed, "unknown-srv"))?;
    if !entry.roles.contains(h.role) {
        return Err(refuse(ResponseCode::SrvNotAllowed, "role-not-eligible"));
    }
    if !entry.cvs.contains(h.command_variant) {
        return Err(refuse(
            ResponseCode::InvalidCommandVariant,
            "cv-not-allowed",
        ));
    }
    check_execution(h, entry)?;

    // 6: the certificate.
    let cert = state
        .certs
        .get(&h.signer)
        .ok_or_else(|| refuse(ResponseCode::UnknownCertificate, "unknown-certificate"))?;
    let cert_use = cert
        .check(originator, sender.user(), h.srv, shared.clock.now_unix())
        .map_err(|code| refuse(code, "certificate"))?;

    // 7–9: the device.
    let device = check_device(shared, h, entry, cert_use)?;

    // 9b: DP094 — a WAN-only variant to a device without SM WAN would only time out at the
    // device; answering E20 now lets the Supplier resend it for local delivery (CV 2/3).
    if let Some(d) = device {
        if super::dispatch::route(h.command_variant, d.wan) == Route::Unreachable {
            return Err(refuse(ResponseCode::DeviceUnreachable, "no-wan"));
        }
    }

    // 10: suspended M8.6 rights.
    if let Some(detail) = party.suspended.blocked_by(h.role, entry.right) {
        return Err(refuse(ResponseCode::RightsSuspended, detail));
    }

    // 11: anti-replay pre-check.
    match state.replay.check(originator, h.request_id.counter) {
        ReplayVerdict::Fresh => {}
        ReplayVerdict::Duplicate => return Err(refuse(ResponseCode::Replayed, "duplicate")),
        ReplayVerdict::TooOld => return Err(refuse(ResponseCode::Replayed, "too-old")),
    }

    // 12: the lane. A demoted originator's claim of a high lane is not believed: its requests
    // compete for L3's worker share (1/101 by default), not L0/L1's.
    let base = base_lane(h, entry);
    let lane = match standing {
        Standing::Good => classify(h, base, entry, device, cert_use),
        Standing::Demoted | Standing::Refused => Lane::L3,
    };

    // 12a: DP092 planned maintenance: the lanes the policy names are answered busy (send
    // again after the window); L0 and L1 always flow.
    if let Some(impact) = state.maintenance.active(shared.clock.now_unix()) {
        if policy.maintenance.holds(impact, lane) {
            return Err(Refusal {
                code: ResponseCode::Busy,
                detail: Some("maintenance-window"),
                lane: Some(lane),
            });
        }
    }

    // 13: per-User rate limit, not for L0/L1 — judged on the lane before promotion as well, so
    // that promoting a request (prepayment, SRP) never lifts the limit by itself.
    if matches!(lane, Lane::L2 | Lane::L3) || matches!(base, Lane::L2 | Lane::L3) {
        let limit = party
            .rate_limit
            .unwrap_or_else(|| policy.rate_limit_of(originator));
        if !shared.limiter.try_take(originator, limit, now) {
            return Err(Refusal {
                code: ResponseCode::Throttled,
                detail: Some("rate-limit"),
                lane: Some(lane),
            });
        }
    }

    Ok(Admitted { cert, lane })
}

/// Check 0's exception: `connection` is an SRP the Authority directed under a revocation delay
/// of the signer certificate, and the request is originated as that certificate's owner.
fn srp_for_failed_supplier(state: &crate::state::State, h: &Header, connection: Eui64) -> bool {
    state.certs.get(&h.signer).is_some_and(|c| {
        c.with_status(|s| {
            s.lets_connection_send_for(connection, h.request_id.originator, c.record().owner)
        })
    })
}

/// Checks 7–9; `None` for a non-device request.
fn check_device(
    shared: &Shared,
    h: &Header,
    entry: &SrvEntry,
    cert_use: CertUse,
) -> Result<Option<Device>, Refusal> {
    let target = h.request_id.target;
    if entry.non_device {
        return if target == shared.policy.dcc_eui {
            Ok(None)
        } else {
            Err(refuse(ResponseCode::UnknownDevice, "non-device-target"))
        };
    }
    let device = shared
        .state
        .devices
        .get(target)
        .ok_or_else(|| refuse(ResponseCode::UnknownDevice, "unknown-device"))?;
    if device.status != DeviceStatus::Commissioned {
        return Err(refuse(
            ResponseCode::DeviceStatusIncompatible,
            "device-status",
        ));
    }
    if super::cos::applies(h) && h.role.is_supplier() {
        // 9c: the gaining Supplier, not the registered one, sends a 6.23.
        super::cos::admit(&shared.state, h, &device).map_err(|(code, d)| refuse(code, d))?;
    } else if !device.authorises(h.role, registrant(h, cert_use)) {
        return Err(refuse(
            ResponseCode::NotAuthorisedForDevice,
            "not-registered",
        ));
    }
    if h.role == dcc_signing::UserRole::GasTransporter {
        if let Some(detail) = device.gno_refusal(h.request_id.originator) {
            return Err(refuse(ResponseCode::NotAuthorisedForDevice, detail));
        }
    }
    Ok(Some(device))
}

/// Whom the device must be registered to: the sender, or for an SRP under a revocation delay
/// the failed Supplier it acts for (MP185: refused once the device has moved to the SoLR).
pub(crate) fn registrant(h: &Header, cert_use: CertUse) -> dcc_signing::Eui64 {
    match cert_use {
        CertUse::Own => h.request_id.originator,
        CertUse::Delegated { supplier } => supplier,
    }
}

/// Check 5a: the execution kind is one the DUIS request matrix allows for the SRV.
///
/// DUIS publishes no code of its own for this combination; the nearest is E12, "Command Variant
/// not applicable to the Request type" (response.rs documents the choice).
fn check_execution(h: &Header, entry: &SrvEntry) -> Result<(), Refusal> {
    match h.execution {
        ExecutionKind::FutureDated if !entry.future_dated => Err(refuse(
            ResponseCode::InvalidCommandVariant,
            "not-future-datable",
        )),
        ExecutionKind::DccScheduled if !entry.dcc_scheduled => Err(refuse(
            ResponseCode::InvalidCommandVariant,
            "not-schedulable",
        )),
        _ => Ok(()),
    }
}

/// The lane before any promotion: future-dated and scheduled requests in L3, others the SRV's.
fn base_lane(h: &Header, entry: &SrvEntry) -> Lane {
    if h.execution == ExecutionKind::OnDemand {
        entry.lane
    } else {
        Lane::L3
    }
}

/// Check 12: which lane.
fn classify(
    h: &Header,
    base: Lane,
    entry: &SrvEntry,
    device: Option<Device>,
    cert_use: CertUse,
) -> Lane {
    if matches!(cert_use, CertUse::Delegated { .. }) {
        return Lane::L0;
    }
    if h.execution != ExecutionKind::OnDemand {
        return base;
    }
    // Prepayment priority is about staying on supply (domain.md, "Why prepayment first"): only
    // the policy's list is promoted, and a promotion never lowers a lane (2.5, 7.3 stay in L0).
    let prepayment = device.is_some_and(|d| d.payment_mode == PaymentMode::Prepayment);
    if prepayment && entry.prepayment_priority && base > Lane::L1 {
        Lane::L1
    } else {
        base
    }
}
