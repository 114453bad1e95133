//! The admin protocol: JSON request and answer frames on connections whose client certificate
//! names an admin User (`admin_users` in the server configuration).
//!
//! Every operation goes through [`AdminHandle`], the one place that changes state, so an admin
//! operation that has been answered is durable (with a durable store) and visible to every
//! request admitted afterwards. Each change is audited with the admin certificate's User as
//! *who* and the frame's `reason`.
//!
//! A frame is either a bare [`AdminRequest`] (`{"op": "revoke", "cert": "…"}`) or an
//! [`AdminCall`] carrying a reason (`{"request": {"op": …}, "reason": "SMKI PMA decision of
//! 30 Nov"}`).

use dcc_signing::pki::{CaCertificate, Crl};
use dcc_signing::{CertId, Eui64, Srv};
use serde::{Deserialize, Serialize};

use crate::state::{
    CosCertificate, Device, DeviceStatus, KeyPurpose, PaymentMode, SuspendedRights, WanState,
};
use crate::store::{parse_assurance, AuditEntry, AuditFilter};
use crate::{AdminHandle, Lane, Router};
use dcc_signing::UserRole;

/// Largest admin request accepted: one frame (so a CRL must fit in 64 KiB, about 1,500
/// entries; larger revocation lists can be loaded in parts).
pub const MAX_ADMIN_REQUEST: usize = crate::ingress::frame::MAX_FRAME_LEN;

/// Certificates listed in a status answer at most (the answer must fit in one frame).
pub const MAX_STATUS_CERTS: usize = 200;

/// A service right a Party can lose, SEC M8.6 (d)–(h) (see [`SuspendedRights`]). On the
/// command line and in frames it is named by its letter (`d` … `h`); the older names
/// (`core-as-other-user`, …) are still accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[non_exhaustive]
pub enum Right {
    /// M8.6 (d): Core Communication / Local Command Services in the Other User role.
    #[serde(rename = "d", alias = "core-as-other-user")]
    #[value(name = "d", alias = "core-as-other-user")]
    CoreAsOtherUser,
    /// M8.6 (e): the same in any other User Role.
    #[serde(rename = "e", alias = "core-other-roles")]
    #[value(name = "e", alias = "core-other-roles")]
    CoreOtherRoles,
    /// M8.6 (f): Elective Communication Services.
    #[serde(rename = "f", alias = "elective")]
    #[value(name = "f", alias = "elective")]
    Elective,
    /// M8.6 (g): initiating Enrolment.
    #[serde(rename = "g", alias = "enrolment")]
    #[value(name = "g", alias = "enrolment")]
    Enrolment,
    /// M8.6 (h): any other Services.
    #[serde(rename = "h", alias = "other-services")]
    #[value(name = "h", alias = "other-services")]
    OtherServices,
}

impl Right {
    fn flags(rights: &[Right]) -> SuspendedRights {
        rights.iter().fold(SuspendedRights::NONE, |acc, r| {
            acc.union(match r {
                Right::CoreAsOtherUser => SuspendedRights::M8_6_D_CORE_AS_OTHER_USER,
                Right::CoreOtherRoles => SuspendedRights::M8_6_E_CORE_OTHER_ROLES,
                Right::Elective => SuspendedRights::M8_6_F_ELECTIVE,
                Right::Enrolment => SuspendedRights::M8_6_G_ENROLMENT,
                Right::OtherServices => SuspendedRights::M8_6_H_OTHER_SERVICES,
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

impl From<Mode> for PaymentMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Credit => PaymentMode::Credit,
            Mode::Prepayment => PaymentMode::Prepayment,
        }
    }
}

/// A device's SM WAN state (DP094), as the admin CLI spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Wan {
    /// Reachable over the SM WAN.
    Ok,
    /// Poor SM WAN: slower, lossier.
    Poor,
    /// No SM WAN: local delivery only.
    None,
}

impl From<Wan> for WanState {
    fn from(w: Wan) -> Self {
        match w {
            Wan::Ok => WanState::Ok,
            Wan::Poor => WanState::Poor,
            Wan::None => WanState::None,
        }
    }
}

/// The CoS certificate a device holds (TCoS or ECoS), as the admin CLI spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CosCert {
    /// The Transitional CoS Party's certificate.
    Tcos,
    /// The Enduring CoS Party's certificate.
    Ecos,
}

impl From<CosCert> for CosCertificate {
    fn from(c: CosCert) -> Self {
        match c {
            CosCert::Tcos => CosCertificate::Tcos,
            CosCert::Ecos => CosCertificate::Ecos,
        }
    }
}

/// A device status, as the admin CLI spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DevStatus {
    /// In service.
    Commissioned,
    /// Suspended.
    Suspended,
    /// Decommissioned.
    Decommissioned,
}

impl From<DevStatus> for DeviceStatus {
    fn from(s: DevStatus) -> Self {
        match s {
            DevStatus::Commissioned => DeviceStatus::Commissioned,
            DevStatus::Suspended => DeviceStatus::Suspended,
            DevStatus::Decommissioned => DeviceStatus::Decommissioned,
        }
    }
}

/// One device of a bulk import (short keys: a frame carries ~600 of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRow {
    /// The device.
    #[serde(rename = "d")]
    pub device: Eui64,
    /// Registered (import) Supplier.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<Eui64>,
    /// Registered export Supplier.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub export_supplier: Option<Eui64>,
    /// Registered Network Operator.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub network_operator: Option<Eui64>,
    /// Payment mode (default credit).
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub payment_mode: Option<Mode>,
    /// Status (default commissioned).
    #[serde(rename = "st", default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DevStatus>,
    /// SM WAN state (default ok; DP094).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub wan: Option<Wan>,
    /// The CoS certificate the device holds (default TCoS).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub cos: Option<CosCert>,
}

impl DeviceRow {
    /// A row that names `device` and no field: every field its default (a new device) or
    /// unchanged (an existing one).
    pub fn new(device: Eui64) -> Self {
        DeviceRow {
            device,
            supplier: None,
            export_supplier: None,
            network_operator: None,
            payment_mode: None,
            status: None,
            wan: None,
            cos: None,
        }
    }

    /// The device it describes.
    pub fn to_device(&self) -> Device {
        Device {
            supplier: self.supplier,
            export_supplier: self.export_supplier,
            network_operator: self.network_operator,
            payment_mode: self.payment_mode.map_or(PaymentMode::Credit, Into::into),
            status: self.status.map_or(DeviceStatus::Commissioned, Into::into),
            gno_slot: crate::state::GnoSlot::Acb,
            wan: self.wan.map_or(WanState::Ok, Into::into),
            cos: self.cos.map_or(CosCertificate::Tcos, Into::into),
        }
    }
}

/// An admin request with the reason the admin gives (written to the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminCall {
    /// The operation.
    pub request: AdminRequest,
    /// Why (free text, e.g. "SMKI PMA decision of 30 Nov").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Most audit entries one answer lists.
pub const MAX_AUDIT_ENTRIES: usize = 1000;

/// Bytes of audit entries one answer carries at most (the answer must fit one frame).
const MAX_AUDIT_ANSWER: usize = MAX_ADMIN_REQUEST - 4096;

/// Longest reason kept.
pub const MAX_REASON: usize = 1000;

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
    /// The SMKI PMA's decision to delay a failed Supplier's certificate revocation (MP134A):
    /// SRVs and end; no SRP may use it until the Authority directs one.
    PmaDelay {
        /// The failed Supplier's certificate.
        cert: CertId,
        /// Safe-mode SRVs allowed (empty: the policy's safe-mode set).
        #[serde(default)]
        srvs: Vec<Srv>,
        /// End of the delay, Unix seconds; absent: no term (the PMA ends it).
        #[serde(default)]
        until: Option<u64>,
    },
    /// The Authority's direction under a running delay: which SRPs send with the failed
    /// Supplier's certificate (replacing an earlier direction; empty withdraws it).
    AuthorityDirect {
        /// The failed Supplier's certificate.
        cert: CertId,
        /// The SRPs directed.
        srps: Vec<Eui64>,
        /// The SRP-own-EUI variant: the SRPs originate with their own EUI-64 instead of as
        /// the failed Supplier (MP134A as written).
        #[serde(default)]
        srp_own_eui: bool,
    },
    /// Plan a maintenance window (DP092).
    AddMaintenanceWindow {
        /// Start, Unix seconds.
        start: u64,
        /// Length in minutes (at most 360).
        minutes: u64,
        /// low or high.
        impact: dcc_router_core::state::maintenance::Impact,
    },
    /// Remove an admin-planned maintenance window.
    RemoveMaintenanceWindow {
        /// Its start, Unix seconds.
        start: u64,
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
    /// Add a User's Organisation Certificate (chain-validated; its OU role must be one of
    /// its Party's roles). A second one for the same User is a key rollover.
    AddCertificate {
        /// The certificate, PEM.
        pem: String,
    },
    /// Retire a certificate after a rollover: refused from now on.
    RetireCertificate {
        /// The certificate.
        cert: CertId,
    },
    /// Add a Party, or update its roles (and assurance status).
    SetParty {
        /// The Party.
        user: Eui64,
        /// Its User Roles.
        roles: Vec<UserRole>,
        /// Assurance status (new Party: approved).
        #[serde(default)]
        assurance: Option<String>,
    },
    /// Set a Party's security assurance status.
    SetAssurance {
        /// The Party.
        user: Eui64,
        /// approved, approved-with-conditions, deferred, rejected.
        status: String,
    },
    /// Add a device, or update the fields given.
    SetDevice {
        /// The device and the fields to set.
        #[serde(flatten)]
        row: DeviceRow,
    },
    /// Set an existing device's status (decommission, suspend, recommission).
    SetDeviceStatus {
        /// The device.
        device: Eui64,
        /// The status.
        status: DevStatus,
    },
    /// Add or replace many devices in one transaction.
    ImportDevices {
        /// The devices.
        devices: Vec<DeviceRow>,
    },
    /// Change of Supplier: the device's registration moves.
    ChangeSupplier {
        /// The device.
        device: Eui64,
        /// The gaining Supplier.
        supplier: Eui64,
        /// Move the export registration instead of the import one.
        #[serde(default)]
        export: bool,
        /// ECoS: record `supplier` as the gaining Supplier (from registration data) instead;
        /// the device moves when its SRV 6.23 has been counter-signed by the CoS Party.
        #[serde(default)]
        pending: bool,
    },
    /// BEIS 2022 key transfer: move a private key into the router (a reason is required).
    KeyImport {
        /// The key's name (unique).
        id: String,
        /// What it signs: `tcos`, `ecos` or `duis-sign`.
        purpose: KeyPurpose,
        /// The PKCS#8 P-256 private key, PEM.
        pem: String,
        /// The SMKI PMA's approval reference.
        pma_ref: String,
    },
    /// Retire a router key (the end of a transfer's overlap; a reason is required).
    KeyRetire {
        /// The key's name.
        id: String,
        /// The SMKI PMA's approval reference.
        pma_ref: String,
    },
    /// The router keys in force (ids, purposes, public keys, PMA references; never a private
    /// key).
    KeyList,
    /// Set or clear a User's rate limit.
    SetRateLimit {
        /// The Party.
        user: Eui64,
        /// Requests per second and burst; absent: the policy's limit again.
        #[serde(default)]
        limit: Option<(u32, u32)>,
    },
    /// List the audit log, newest first.
    Audit {
        /// Which entries.
        #[serde(default)]
        filter: AuditFilter,
    },
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
    /// Audit entries, for `audit`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub audit: Option<Vec<AuditEntry>>,
    /// A stable code for a refusal (`revoked`, `chain`, `store-write`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
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
    /// Where state is kept (durable file, or in memory).
    #[serde(default)]
    pub store: String,
    /// The capacity estimate (workers × verify rate measured at start on the loaded keys).
    /// Absent from older servers (and skipped when unknown, so older clients, which reject
    /// nothing they do not know, read the report as before).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity: Option<super::capacity::CapacityEstimate>,
    /// The router's wall clock, Unix seconds (a simulated one under
    /// `serve --simulated-clock-start`): what maintenance windows are judged by. Absent
    /// (0) from older servers.
    #[serde(default)]
    pub clock_unix: u64,
}

/// Builds the status report.
pub fn status(
    router: &Router,
    capacity: Option<super::capacity::CapacityEstimate>,
) -> StatusReport {
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
            .map(|(r, s)| (r.id.to_string(), r.owner.to_string(), s.to_string()))
            .collect(),
        parties: state.parties.len(),
        devices: state.devices.len(),
        store: router.admin().store().describe(),
        capacity,
        clock_unix: router.clock().now_unix(),
    }
}

/// Applies one admin request frame from the admin User `who` and returns the answer frame
/// (JSON). `capacity` is what `status` reports as the server's capacity estimate.
pub fn handle_frame(
    router: &Router,
    issuing: Option<&CaCertificate>,
    who: Eui64,
    frame: &[u8],
    capacity: Option<super::capacity::CapacityEstimate>,
) -> Vec<u8> {
    let call = serde_json::from_slice::<AdminCall>(frame).or_else(|_| {
        serde_json::from_slice::<AdminRequest>(frame).map(|request| AdminCall {
            request,
            reason: None,
        })
    });
    let answer = match call {
        Ok(call) => {
            let reason = call
                .reason
                .map(|r| r.chars().take(MAX_REASON).collect::<String>());
            let key_op = matches!(
                call.request,
                AdminRequest::KeyImport { .. } | AdminRequest::KeyRetire { .. }
            );
            if key_op && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                refused(
                    "a key import or retirement needs a reason (--reason) besides the PMA reference"
                        .into(),
                    "no-reason",
                )
            } else {
                let admin = router.admin().acting_as(format!("admin {who}"), reason);
                apply(router, &admin, issuing, call.request, capacity)
            }
        }
        Err(e) => refused(format!("not an admin request: {e}"), "bad-request"),
    };
    serde_json::to_vec(&answer)
        .unwrap_or_else(|_| b"{\"ok\":false,\"message\":\"encode\"}".to_vec())
}

fn refused(message: String, code: &str) -> AdminAnswer {
    AdminAnswer {
        ok: false,
        message,
        status: None,
        audit: None,
        code: Some(code.to_owned()),
    }
}

fn done(r: Result<String, crate::AdminError>) -> AdminAnswer {
    match r {
        Ok(message) => AdminAnswer {
            ok: true,
            message,
            status: None,
            audit: None,
            code: None,
        },
        Err(e) => refused(e.to_string(), e.code()),
    }
}

fn apply(
    router: &Router,
    admin: &AdminHandle,
    issuing: Option<&CaCertificate>,
    req: AdminRequest,
    capacity: Option<super::capacity::CapacityEstimate>,
) -> AdminAnswer {
    match req {
        AdminRequest::Revoke { cert } => {
            done(admin.revoke(&cert).map(|()| format!("revoked {cert}")))
        }
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
                .map(|()| format!("revocation of {cert} delayed until {until}")),
        ),
        AdminRequest::PmaDelay { cert, srvs, until } => done(
            admin
                .pma_delay_revocation(
                    &cert,
                    if srvs.is_empty() {
                        router.policy().catalogue.safe_mode_srvs().collect()
                    } else {
                        srvs
                    },
                    until,
                )
                .map(|()| match until {
                    Some(u) => format!("SMKI PMA: revocation of {cert} delayed until {u}"),
                    None => format!("SMKI PMA: revocation of {cert} delayed with no end"),
                }),
        ),
        AdminRequest::AuthorityDirect {
            cert,
            srps,
            srp_own_eui,
        } => done(
            admin
                .direct_srps(
                    &cert,
                    srps.iter().copied(),
                    if srp_own_eui {
                        crate::state::SrpSendsAs::OwnEui
                    } else {
                        crate::state::SrpSendsAs::FailedSupplier
                    },
                )
                .map(|()| format!("Authority: {} SRPs directed for {cert}", srps.len())),
        ),
        AdminRequest::AddMaintenanceWindow {
            start,
            minutes,
            impact,
        } => done(
            admin
                .add_maintenance_window(dcc_router_core::state::maintenance::MaintenanceWindow {
                    start,
                    end: start.saturating_add(minutes.saturating_mul(60)),
                    impact,
                })
                .map(|()| format!("{impact:?} maintenance window from {start} for {minutes} min")),
        ),
        AdminRequest::RemoveMaintenanceWindow { start } => done(
            admin
                .remove_maintenance_window(start)
                .map(|()| format!("maintenance window starting {start} removed")),
        ),
        AdminRequest::EndDelay { cert } => done(
            admin
                .end_delay(&cert)
                .map(|()| format!("delay of {cert} ended: revoked")),
        ),
        AdminRequest::LoadCrl { pem } => match issuing {
            None => refused(
                "this server has no issuing CA to verify CRLs against".into(),
                "no-issuing-ca",
            ),
            Some(ca) => match Crl::parse_verified(pem.as_bytes(), ca) {
                Err(e) => refused(format!("CRL refused: {e}"), "bad-crl"),
                Ok(crl) => done(admin.load_crl(&crl, &pem).map(|n| {
                    format!(
                        "CRL lists {} certificates; {n} revoked now",
                        crl.revoked.len()
                    )
                })),
            },
        },
        AdminRequest::Suspend { user, rights } => done(
            admin
                .suspend_rights(user, Right::flags(&rights))
                .map(|()| format!("suspended {rights:?} of {user}")),
        ),
        AdminRequest::Restore { user, rights } => done(
            admin
                .restore_rights(user, Right::flags(&rights))
                .map(|()| format!("restored {rights:?} of {user}")),
        ),
        AdminRequest::SetPaymentMode { device, mode } => done(
            admin
                .set_payment_mode(device, mode.into())
                .map(|()| format!("{device} is in {mode:?} mode")),
        ),
        AdminRequest::Status => AdminAnswer {
            ok: true,
            message: "status".into(),
            status: Some(status(router, capacity)),
            audit: None,
            code: None,
        },
        AdminRequest::AddCertificate { pem } => done(
            admin
                .add_certificate_pem(pem.as_bytes())
                .map(|id| format!("certificate {id} added")),
        ),
        AdminRequest::RetireCertificate { cert } => done(
            admin
                .retire_certificate(&cert)
                .map(|()| format!("certificate {cert} retired")),
        ),
        AdminRequest::SetParty {
            user,
            roles,
            assurance,
        } => {
            let assurance = match assurance.as_deref().map(parse_assurance) {
                Some(None) => return refused(
                    "assurance must be approved, approved-with-conditions, deferred or rejected"
                        .into(),
                    "bad-request",
                ),
                Some(Some(a)) => Some(a),
                None => None,
            };
            done(
                admin
                    .set_party_roles(user, &roles, assurance)
                    .map(|()| format!("Party {user} set")),
            )
        }
        AdminRequest::SetAssurance { user, status } => match parse_assurance(&status) {
            None => refused(
                "assurance must be approved, approved-with-conditions, deferred or rejected".into(),
                "bad-request",
            ),
            Some(a) => done(
                admin
                    .set_assurance(user, a)
                    .map(|()| format!("{user} assurance status {status}")),
            ),
        },
        AdminRequest::SetDevice { row } => {
            let id = row.device;
            let new = row.to_device();
            done(
                admin
                    .merge_device(id, new, |d| {
                        if row.supplier.is_some() {
                            d.supplier = row.supplier;
                        }
                        if row.export_supplier.is_some() {
                            d.export_supplier = row.export_supplier;
                        }
                        if row.network_operator.is_some() {
                            d.network_operator = row.network_operator;
                        }
                        if let Some(m) = row.payment_mode {
                            d.payment_mode = m.into();
                        }
                        if let Some(s) = row.status {
                            d.status = s.into();
                        }
                        if let Some(w) = row.wan {
                            d.wan = w.into();
                        }
                        if let Some(c) = row.cos {
                            d.cos = c.into();
                        }
                    })
                    .map(|()| format!("device {id} set")),
            )
        }
        AdminRequest::SetDeviceStatus { device, status } => done(
            admin
                .set_device_status(device, status.into())
                .map(|()| format!("{device} is {status:?}")),
        ),
        AdminRequest::ImportDevices { devices } => {
            let rows: Vec<(Eui64, Device)> =
                devices.iter().map(|r| (r.device, r.to_device())).collect();
            done(
                admin
                    .upsert_devices(&rows)
                    .map(|n| format!("{n} devices imported")),
            )
        }
        AdminRequest::ChangeSupplier {
            device,
            supplier,
            pending: true,
            ..
        } => done(
            admin
                .set_gaining_supplier(device, Some(supplier))
                .map(|()| format!("{device}: gaining supplier {supplier} (change of supplier pending its 6.23)")),
        ),
        AdminRequest::KeyImport {
            id,
            purpose,
            pem,
            pma_ref,
        } => done(
            admin
                .import_key(&id, purpose, pem.as_bytes(), &pma_ref)
                .map(|()| format!("{} key {id} imported (PMA approval {pma_ref})", purpose.as_str())),
        ),
        AdminRequest::KeyRetire { id, pma_ref } => done(
            admin
                .retire_key(&id, &pma_ref)
                .map(|()| format!("key {id} retired (PMA approval {pma_ref})")),
        ),
        AdminRequest::KeyList => {
            let keys = router.state().keys.all();
            let lines: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{} {} public key {} imported {} PMA approval {}",
                        k.id,
                        k.purpose.as_str(),
                        k.public_key_hex(),
                        k.imported_at,
                        k.pma_ref
                    )
                })
                .collect();
            done(Ok(if lines.is_empty() {
                "no router keys held".into()
            } else {
                lines.join("\n")
            }))
        }
        AdminRequest::ChangeSupplier {
            device,
            supplier,
            export,
            pending: false,
        } => done(
            if export {
                admin.set_export_supplier(device, Some(supplier))
            } else {
                admin.set_registered_supplier(device, supplier)
            }
            .map(|()| format!("{device} registered to {supplier}")),
        ),
        AdminRequest::SetRateLimit { user, limit } => match limit {
            None => done(
                admin
                    .set_rate_limit(user, None)
                    .map(|()| format!("{user}: the policy's rate limit")),
            ),
            Some((r, b)) => match crate::policy::RateLimit::new(r, b) {
                None => refused(
                    format!(
                        "rate limit {r}/s burst {b}: both must be 1..={}",
                        crate::policy::RateLimit::MAX
                    ),
                    "bad-request",
                ),
                Some(l) => done(
                    admin
                        .set_rate_limit(user, Some(l))
                        .map(|()| format!("{user}: {r}/s, burst {b}")),
                ),
            },
        },
        AdminRequest::Audit { mut filter } => {
            filter.limit = filter.limit().min(MAX_AUDIT_ENTRIES);
            match admin.audit(&filter) {
                Ok(mut entries) => {
                    // The answer must fit one frame: keep the newest entries that do.
                    let total = entries.len();
                    let mut size = 0usize;
                    let keep = entries
                        .iter()
                        .take_while(|e| {
                            size += serde_json::to_vec(e).map_or(0, |v| v.len() + 1);
                            size < MAX_AUDIT_ANSWER
                        })
                        .count();
                    entries.truncate(keep);
                    AdminAnswer {
                        ok: true,
                        message: if keep < total {
                            format!(
                                "{keep} entries (the newest; {} more did not fit one answer: use --limit or a filter)",
                                total - keep
                            )
                        } else {
                            format!("{keep} entries")
                        },
                        status: None,
                        audit: Some(entries),
                        code: None,
                    }
                }
                Err(e) => refused(e.to_string(), e.code()),
            }
        }
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
