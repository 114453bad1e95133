//! What the router answers: a [`ResponseCode`] (DUIS codes where DUIS has one, the router's own
//! `R` codes where it does not) and a [`Response`] carrying the Request ID, the lane and timings.
//!
//! | code | variant | meaning | refused at |
//! |------|---------|---------|------------|
//! | I0   | [`Success`](ResponseCode::Success) | dispatched and the device answered; or — detail `local-delivery` — the command is returned to the User for local delivery (DP094: CV 2 and 6 always, CV 3 and 7 when the device has no SM WAN) | dispatch |
//! | I99  | [`Acknowledged`](ResponseCode::Acknowledged) | passed access control, queued for the device (future-dated / DCC-scheduled) | dispatch |
//! | E1   | [`InvalidUser`](ResponseCode::InvalidUser) | unknown originator, or it does not hold the User Role it sent in | admit |
//! | E2   | [`SrvNotAllowed`](ResponseCode::SrvNotAllowed) | the User Role may not send this SRV (or the SRV is not in the catalogue) | admit |
//! | E3   | [`InvalidUserStatus`](ResponseCode::InvalidUserStatus) | security assurance status is not Approved / Approved with conditions | admit |
//! | E4   | [`NotAuthorisedForDevice`](ResponseCode::NotAuthorisedForDevice) | the sender is not registered for the target device (MP185 for SRPs); for SRV 6.23 CoS Update Security Credentials (ECoS), the sender is already the registered supplier (detail `already-registered-supplier`) or is not the gaining Supplier of a pending Change of Supplier (detail `not-gaining-supplier`) — DUIS's "User Role not authorised for this device at this time" | admit |
//! | E5   | [`DeviceStatusIncompatible`](ResponseCode::DeviceStatusIncompatible) | the device is suspended or decommissioned | admit |
//! | E12  | [`InvalidCommandVariant`](ResponseCode::InvalidCommandVariant) | the command variant is not allowed for the SRV (detail `cv-not-allowed`); or the request is future-dated / DCC-scheduled and the DUIS request matrix does not allow that for the SRV (details `not-future-datable`, `not-schedulable`: DUIS publishes no separate code, and E12 is its "Command Variant not applicable to the Request type") | admit |
//! | E19  | [`UnknownDevice`](ResponseCode::UnknownDevice) | the target device does not exist | admit |
//! | E20  | [`DeviceUnreachable`](ResponseCode::DeviceUnreachable) | the dispatcher could not communicate with the device; or — detail `no-wan`, at admission — a WAN-only command variant (CV 1 or 5) to a device whose SM WAN state is none (DP094; DUIS's "unable to communicate with the device": E17 "not available for local delivery" is the opposite case) | admit, dispatch |
//! | E21  | [`NoDeviceResponse`](ResponseCode::NoDeviceResponse) | no response from the device (the dispatcher gave up or dropped it) | dispatch |
//! | R1   | [`Malformed`](ResponseCode::Malformed) | the envelope does not decode; [`Response::detail`] names the defect | decode |
//! | R2   | [`UnknownCertificate`](ResponseCode::UnknownCertificate) | the signer certificate is not in the store | admit |
//! | R3   | [`CertificateRevoked`](ResponseCode::CertificateRevoked) | revoked, or revocation-delayed and this request is outside the delay's SRPs / safe-mode SRVs, or the delay ended | admit, commit |
//! | R4   | [`CertificateExpired`](ResponseCode::CertificateExpired) | outside the certificate's validity period | admit, commit |
//! | R5   | [`CertificateNotOwned`](ResponseCode::CertificateNotOwned) | the certificate belongs to another User than the originator (and no delay allows it) | admit |
//! | R6   | [`BadSignature`](ResponseCode::BadSignature) | the signature does not verify | verify |
//! | R7   | [`Replayed`](ResponseCode::Replayed) | the counter was already accepted, or is older than the anti-replay window | admit, commit |
//! | R8   | [`RightsSuspended`](ResponseCode::RightsSuspended) | the request needs a service right the Party has lost (SEC M8.6 (d)–(h); the detail names the letter) | admit |
//! | R9   | [`Throttled`](ResponseCode::Throttled) | over the User's rate limit (never for L0/L1; detail `rate-limit`), or — any lane — the originator's recent bad signatures are over the policy's refusal threshold (detail `bad-signatures`, see [`reputation`](crate::pipeline::reputation)) | admit, verify |
//! | R10  | [`Busy`](ResponseCode::Busy) | the lane is full, or the request waited past the lane deadline, or a DP092 planned maintenance window holds back its lane (detail `maintenance-window`: send again after the window; L0/L1 never) | admit, verify |
//! | R11  | [`Unavailable`](ResponseCode::Unavailable) | the router is shutting down | any |
//! | R12  | [`NotDurable`](ResponseCode::NotDurable) | the state store could not make the anti-replay state durable (disk full, I/O error): not dispatched; send again with a new counter | persist |
//! | R13  | [`CosKeyUnavailable`](ResponseCode::CosKeyUnavailable) | SRV 6.23: the router holds no CoS Party key for the CoS certificate the device holds (detail `no-tcos-key` / `no-ecos-key`): the DCC cannot counter-sign, the request is not dispatched. A DCC-side condition like R11/R12 (DUIS has no code for it); send again once the key is imported | admit, cos |
//!
//! DUIS publishes no codes for a bad signature, a revoked certificate or a replayed counter, so
//! the `R` codes are the router's own; they are stable (metrics and clients key on them).

use std::fmt;
use std::time::Duration;

use dcc_signing::RequestId;

use crate::pipeline::lanes::Lane;

/// The outcome of one Service Request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ResponseCode {
    /// I0
    Success,
    /// I99
    Acknowledged,
    /// E1
    InvalidUser,
    /// E2
    SrvNotAllowed,
    /// E3
    InvalidUserStatus,
    /// E4
    NotAuthorisedForDevice,
    /// E5
    DeviceStatusIncompatible,
    /// E12
    InvalidCommandVariant,
    /// E19
    UnknownDevice,
    /// E20
    DeviceUnreachable,
    /// E21
    NoDeviceResponse,
    /// R1
    Malformed,
    /// R2
    UnknownCertificate,
    /// R3
    CertificateRevoked,
    /// R4
    CertificateExpired,
    /// R5
    CertificateNotOwned,
    /// R6
    BadSignature,
    /// R7
    Replayed,
    /// R8
    RightsSuspended,
    /// R9
    Throttled,
    /// R10
    Busy,
    /// R11
    Unavailable,
    /// R12
    NotDurable,
    /// R13
    CosKeyUnavailable,
}

impl ResponseCode {
    /// Every code, in table order (the index is [`ResponseCode::index`]).
    pub const ALL: [ResponseCode; 24] = [
        ResponseCode::Success,
        ResponseCode::Acknowledged,
        ResponseCode::InvalidUser,
        ResponseCode::SrvNotAllowed,
        ResponseCode::InvalidUserStatus,
        ResponseCode::NotAuthorisedForDevice,
        ResponseCode::DeviceStatusIncompatible,
        ResponseCode::InvalidCommandVariant,
        ResponseCode::UnknownDevice,
        ResponseCode::DeviceUnreachable,
        ResponseCode::NoDeviceResponse,
        ResponseCode::Malformed,
        ResponseCode::UnknownCertificate,
        ResponseCode::CertificateRevoked,
        ResponseCode::CertificateExpired,
        ResponseCode::CertificateNotOwned,
        ResponseCode::BadSignature,
        ResponseCode::Replayed,
        ResponseCode::RightsSuspended,
        ResponseCode::Throttled,
        ResponseCode::Busy,
        ResponseCode::Unavailable,
        ResponseCode::NotDurable,
        ResponseCode::CosKeyUnavailable,
    ];

    /// Number of codes.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ResponseCode::ALL`] (used to index counters).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The wire code: `I0`, `E12`, `R7`, …
    pub const fn code(self) -> &'static str {
        match self {
            ResponseCode::Success => "I0",
            ResponseCode::Acknowledged => "I99",
            ResponseCode::InvalidUser => "E1",
            ResponseCode::SrvNotAllowed => "E2",
            ResponseCode::InvalidUserStatus => "E3",
            ResponseCode::NotAuthorisedForDevice => "E4",
            ResponseCode::DeviceStatusIncompatible => "E5",
            ResponseCode::InvalidCommandVariant => "E12",
            ResponseCode::UnknownDevice => "E19",
            ResponseCode::DeviceUnreachable => "E20",
            ResponseCode::NoDeviceResponse => "E21",
            ResponseCode::Malformed => "R1",
            ResponseCode::UnknownCertificate => "R2",
            ResponseCode::CertificateRevoked => "R3",
            ResponseCode::CertificateExpired => "R4",
            ResponseCode::CertificateNotOwned => "R5",
            ResponseCode::BadSignature => "R6",
            ResponseCode::Replayed => "R7",
            ResponseCode::RightsSuspended => "R8",
            ResponseCode::Throttled => "R9",
            ResponseCode::Busy => "R10",
            ResponseCode::Unavailable => "R11",
            ResponseCode::NotDurable => "R12",
            ResponseCode::CosKeyUnavailable => "R13",
        }
    }

    /// Whether the request was accepted (I0 or I99).
    pub const fn is_success(self) -> bool {
        matches!(self, ResponseCode::Success | ResponseCode::Acknowledged)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A wire code that is none of [`ResponseCode::ALL`] (a newer server, or not a router).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown response code {0:?}")]
pub struct UnknownResponseCode(pub String);

/// Parses the wire code (`"I0"`, `"R10"`…): clients type the answers they read with the same
/// enum the router answers with.
impl std::str::FromStr for ResponseCode {
    type Err = UnknownResponseCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResponseCode::ALL
            .iter()
            .copied()
            .find(|c| c.code() == s)
            .ok_or_else(|| UnknownResponseCode(s.to_owned()))
    }
}

/// Where the time went, measured inside the router.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Timings {
    /// Decode and admission checks (on the submitting thread).
    pub admit: Duration,
    /// Waiting in the lane for a verify worker.
    pub queued: Duration,
    /// The verify batch this request was checked in (shared by the batch).
    pub verify: Duration,
    /// From `submit` to the response.
    pub total: Duration,
}

/// The router's answer to one submitted request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Response {
    /// The Request ID, when the envelope decoded far enough to have one.
    pub request_id: Option<RequestId>,
    /// The outcome.
    pub code: ResponseCode,
    /// A short stable detail: the decode defect (`bad-magic`), `deadline` for a busy answer from
    /// an expired wait, `lane-full`, …
    pub detail: Option<&'static str>,
    /// The lane, once the request was classified.
    pub lane: Option<Lane>,
    /// Timings.
    pub timings: Timings,
}

impl Response {
    /// The DUIS Response ID: the Request ID with originator and target swapped.
    pub fn response_id(&self) -> Option<RequestId> {
        self.request_id.map(RequestId::response_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_code_parses_back_and_strangers_are_named() {
        for c in ResponseCode::ALL {
            assert_eq!(c.code().parse::<ResponseCode>(), Ok(c));
        }
        assert_eq!(
            "E99".parse::<ResponseCode>(),
            Err(UnknownResponseCode("E99".into()))
        );
        assert!("i0".parse::<ResponseCode>().is_err());
    }
}
