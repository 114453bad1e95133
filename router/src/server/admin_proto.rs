//! The admin protocol: JSON request and answer frames on connections whose client certificate
//! names an admin User (`admin_users` in the server configuration).
//!
//! Every operation goes through [`AdminHandle`], the one place that changes state, so an admin
//! operation that has been answered is visible to every request admitted afterwards.

use dcc_signing::pki::{CaCertificate, Crl};
use dcc_signing::{CertId, Eui64, Srv};
use serde::{Deserialize, Serialize};

use crate::state::{CertStatus, PaymentMode, SuspendedRights};
use crate::{AdminHandle, Lane, Router};

/// Largest admin request accepted: one frame (so a CRL must fit in 64 KiB, about 1,500
/// entries; larger revocation lists can be loaded in parts).
pub const MAX_ADMIN_REQUEST: usize = crate::ingress::frame::MAX_FRAME_LEN;

/// Certificates listed in a status answer at most (the answer must fit in one frame).
pub const MAX_STATUS_CERTS: usize = 200;

/// A right a Party can lose (SEC M8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Right {
    /// Core services in the Other User role.
    CoreAsOtherUser,
    /// Core services in other roles.
    CoreOtherRoles,
    /// Elective services.
    Elective,
    /// Initiating enrolment.
    Enrolment,
}

impl Right {
    fn flags(rights: &[Right]) -> SuspendedRights {
        rights.iter().fold(SuspendedRights::NONE, |acc, r| {
            acc.union(match r {
                Right::CoreAsOtherUser => SuspendedRights::CORE_AS_OTHER_USER,
                Right::CoreOtherRoles => SuspendedRights::CORE_OTHER_ROLES,
                Right::Elective => SuspendedRights::ELECTIVE,
                Right::Enrolment => SuspendedRights::ENROLMENT,
            })
        })
    }
}

/// A payment mode, as the admin CLI spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Credit.
    Credit,
    /// Prepayment.
    Prepayment,
}

/// One admin operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AdminRequest {
    /// Revoke a certificate now.
    Revoke {
        /// The certificate.
        cert: CertId,
    },
    /// Delay a certificate's revocation (MP134A).
    DelayRevocation {
        /// The failed Supplier's certificate.
        cert: CertId,
        /// SRPs allowed to use it.
        srps: Vec<Eui64>,
        /// Safe-mode SRVs allowed (empty: the policy's safe-mode set).
        #[serde(default)]
        srvs: Vec<Srv>,
        /// End of the delay, Unix seconds.
        until: u64,
    },
    /// End a delay: the certificate is revoked from now on.
    EndDelay {
        /// The certificate.
        cert: CertId,
    },
    /// Revoke every certificate a CRL lists (the CRL must verify against the issuing CA).
    LoadCrl {
        /// The CRL, PEM text.
        pem: String,
    },
    /// Suspend rights of a Party.
    Suspend {
        /// The Party.
        user: Eui64,
        /// Rights lost.
        rights: Vec<Right>,
    },
    /// Restore rights of a Party.
    Restore {
        /// The Party.
        user: Eui64,
        /// Rights restored.
        rights: Vec<Right>,
    },
    /// Set a device's payment mode.
    SetPaymentMode {
        /// The device.
        device: Eui64,
        /// The mode.
        mode: Mode,
    },
    /// Report lanes, counters and certificates.
    Status,
}

/// The answer to an admin operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAnswer {
    /// Whether the operation was applied.
    pub ok: bool,
    /// What happened, for a person.
    pub message: String,
    /// The report, for `status`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<StatusReport>,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Requests waiting per lane, L0..L3.
    pub queued: [usize; 4],
    /// Non-zero response counters: lane (`L0`..`L3` or `-`), code, count.
    pub counters: Vec<(String, String, u64)>,
    /// Certificates: id, owner, status.
    pub certificates: Vec<(String, String, String)>,
    /// Parties known.
    pub parties: usize,
    /// Devices known.
    pub devices: usize,
}

fn describe(status: &CertStatus) -> String {
    match status {
        CertStatus::Active => "active".into(),
        CertStatus::Revoked { at } => format!("revoked at {at}"),
        CertStatus::Delayed(d) => {
            let mut srps: Vec<String> = d.srps.iter().map(ToString::to_string).collect();
            srps.sort();
            let mut srvs: Vec<String> = d.srvs.iter().map(ToString::to_string).collect();
            srvs.sort();
            format!(
                "revocation delayed until {} for SRPs [{}], SRVs [{}]",
                d.until,
                srps.join(", "),
                srvs.join(", ")
            )
        }
    }
}

/// Builds the status report.
pub fn status(router: &Router) -> StatusReport {
    let state = router.state();
    let counters = router
        .counters()
        .iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(lane, code, n)| {
            (
                lane.map_or_else(|| "-".to_owned(), |l: Lane| l.to_string()),
                code.to_string(),
                n,
            )
        })
        .collect();
    StatusReport {
        queued: router.queued(),
        counters,
        certificates: state
            .certs
            .list()
            .into_iter()
            .take(MAX_STATUS_CERTS)
            .map(|(r, s)| (r.id.to_string(), r.owner.to_string(), describe(&s)))
            .collect(),
        parties: state.parties.len(),
        devices: state.devices.len(),
    }
}

/// Applies one admin request frame and returns the answer frame (JSON).
pub fn handle_frame(router: &Router, issuing: Option<&CaCertificate>, frame: &[u8]) -> Vec<u8> {
    let answer = match serde_json::from_slice::<AdminRequest>(frame) {
        Ok(req) => apply(router, &router.admin(), issuing, req),
        Err(e) => AdminAnswer {
            ok: false,
            message: format!("not an admin request: {e}"),
            status: None,
        },
    };
    serde_json::to_vec(&answer)
        .unwrap_or_else(|_| b"{\"ok\":false,\"message\":\"encode\"}".to_vec())
}

fn apply(
    router: &Router,
    admin: &AdminHandle,
    issuing: Option<&CaCertificate>,
    req: AdminRequest,
) -> AdminAnswer {
    let done = |r: Result<String, String>| match r {
        Ok(message) => AdminAnswer {
            ok: true,
            message,
            status: None,
        },
        Err(message) => AdminAnswer {
            ok: false,
            message,
            status: None,
        },
    };
    match req {
        AdminRequest::Revoke { cert } => done(
            admin
                .revoke(&cert)
                .map(|()| format!("revoked {cert}"))
                .map_err(|e| e.to_string()),
        ),
        AdminRequest::DelayRevocation {
            cert,
            srps,
            srvs,
            until,
        } => done(
            admin
                .delay_revocation(
                    &cert,
                    srps,
                    if srvs.is_empty() {
                        router.policy().catalogue.safe_mode_srvs().collect()
                    } else {
                        srvs
                    },
                    until,
                )
                .map(|()| format!("revocation of {cert} delayed until {until}"))
                .map_err(|e| e.to_string()),
        ),
        AdminRequest::EndDelay { cert } => done(
            admin
                .end_delay(&cert)
                .map(|()| format!("delay of {cert} ended: revoked"))
                .map_err(|e| e.to_string()),
        ),
        AdminRequest::LoadCrl { pem } => done(match issuing {
            None => Err("this server has no issuing CA to verify CRLs against".into()),
            Some(ca) => Crl::parse_verified(pem.as_bytes(), ca)
                .map_err(|e| format!("CRL refused: {e}"))
                .map(|crl| {
                    let n = admin.load_crl(crl.revoked.iter().copied());
                    format!(
                        "CRL lists {} certificates; {n} revoked now",
                        crl.revoked.len()
                    )
                }),
        }),
        AdminRequest::Suspend { user, rights } => done(
            admin
                .suspend_rights(user, Right::flags(&rights))
                .map(|()| format!("suspended {rights:?} of {user}"))
                .map_err(|e| e.to_string()),
        ),
        AdminRequest::Restore { user, rights } => done(
            admin
                .restore_rights(user, Right::flags(&rights))
                .map(|()| format!("restored {rights:?} of {user}"))
                .map_err(|e| e.to_string()),
        ),
        AdminRequest::SetPaymentMode { device, mode } => done(
            admin
                .set_payment_mode(
                    device,
                    match mode {
                        Mode::Credit => PaymentMode::Credit,
                        Mode::Prepayment => PaymentMode::Prepayment,
                    },
                )
                .map(|()| format!("{device} is in {mode:?} mode"))
                .map_err(|e| e.to_string()),
        ),
        AdminRequest::Status => AdminAnswer {
            ok: true,
            message: "status".into(),
            status: Some(status(router)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json() {
        let r = AdminRequest::DelayRevocation {
            cert: "0102030405060708/1C".parse().unwrap(),
            srps: vec![Eui64::from_u64(4)],
            srvs: vec!["2.2".parse().unwrap()],
            until: 9,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"op\":\"delay-revocation\""), "{text}");
        assert_eq!(serde_json::from_str::<AdminRequest>(&text).unwrap(), r);
        assert!(serde_json::from_str::<AdminRequest>("{\"op\":\"explode\"}").is_err());
    }
}
