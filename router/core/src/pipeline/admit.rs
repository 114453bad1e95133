//! Stage 2: admission — every cheap check, in the order of domain.md, before any CPU-heavy
//! work; then the lane, the per-User rate limit, and the lane's capacity.
//!
//! | # | check | refusal |
//! |---|-------|---------|
//! | 0 | the [`Sender`] an ingress authenticated may submit for this originator (a connection speaks for the User its client certificate names) | E1 `connection-not-originator` |
//! | 1 | originator is a known User | E1 |
//! | 2 | its security assurance status allows sending | E3 |
//! | 3 | it holds the User Role it sent in | E1 |
//! | 3a | its recent bad signatures are under the policy's refusal threshold ([`super::reputation`]) | R9 `bad-signatures` |
//! | 4 | the SRV is in the catalogue and the role may send it | E2 |
//! | 5 | the command variant is allowed for the SRV | E12 |
//! | 6 | the signer certificate: known, not revoked, in validity, owned by the originator — or revocation-delayed with this originator among its SRPs and this SRV in its safe-mode set | R2, R3, R4, R5 |
//! | 7 | the target device exists (non-device requests: the target is the DCC) | E19 |
//! | 8 | the device is commissioned | E5 |
//! | 9 | the sender (for an SRP: the failed Supplier it acts for, MP185) is registered for the device in this role | E4 |
//! | 10 | the rights this request needs are not suspended | R8 |
//! | 11 | anti-replay pre-check (read only; the commit stage decides) | R7 |
//! | 12 | lane: SRP-under-delay → L0; future-dated / scheduled → L3; else the SRV's lane, prepayment targets promoted to L1; then an originator over the demotion threshold ([`super::reputation`]) → L3 whatever it claimed | — |
//! | 13 | per-User token bucket, L2 and L3 only | R9 |
//! | 14 | lane capacity (in the router, `try_send`) | R10 |

use std::sync::Arc;
use std::time::Instant;

use dcc_signing::envelope::Header;
use dcc_signing::ExecutionKind;

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

    // 0: the connection's identity binds the originator.
    if let Sender::User(user) = sender {
        if user != originator {
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

    // 6: the certificate.
    let cert = state
        .certs
        .get(&h.signer)
        .ok_or_else(|| refuse(ResponseCode::UnknownCertificate, "unknown-certificate"))?;
    let cert_use = cert
        .check(originator, h.srv, shared.clock.now_unix())
        .map_err(|code| refuse(code, "certificate"))?;

    // 7–9: the device.
    let device = check_device(shared, h, entry, cert_use)?;

    // 10: suspended rights.
    if party.suspended.blocks(h.role, entry.right) {
        return Err(refuse(ResponseCode::RightsSuspended, "rights-suspended"));
    }

    // 11: anti-replay pre-check.
    match state.replay.check(originator, h.request_id.counter) {
        ReplayVerdict::Fresh => {}
        ReplayVerdict::Duplicate => return Err(refuse(ResponseCode::Replayed, "duplicate")),
        ReplayVerdict::TooOld => return Err(refuse(ResponseCode::Replayed, "too-old")),
    }

    // 12: the lane. A demoted originator's claim of a high lane is not believed: its requests
    // compete for L3's worker share (1/101 by default), not L0/L1's.
    let lane = match standing {
        Standing::Good => classify(shared, h, entry, device, cert_use),
        Standing::Demoted | Standing::Refused => Lane::L3,
    };

    // 13: per-User rate limit, not for L0/L1.
    if matches!(lane, Lane::L2 | Lane::L3) {
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
    if !device.authorises(h.role, registrant(h, cert_use)) {
        return Err(refuse(
            ResponseCode::NotAuthorisedForDevice,
            "not-registered",
        ));
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

/// Check 12: which lane.
fn classify(
    shared: &Shared,
    h: &Header,
    entry: &SrvEntry,
    device: Option<Device>,
    cert_use: CertUse,
) -> Lane {
    if matches!(cert_use, CertUse::Delegated { .. }) {
        return Lane::L0;
    }
    if h.execution != ExecutionKind::OnDemand {
        return Lane::L3;
    }
    let prepayment = device.is_some_and(|d| d.payment_mode == PaymentMode::Prepayment);
    match entry.lane {
        Lane::L2 if prepayment => Lane::L1,
        Lane::L3 if prepayment && shared.policy.prepayment_promotes_reads => Lane::L1,
        lane => lane,
    }
}
