//! [`AdminHandle`]: the one place that changes router state — durably, audited, validated.
//!
//! Every operation follows the same four steps, under one admin lock (admin changes are rare;
//! serialising them keeps "validate, persist, apply" free of races between two admins):
//!
//! | step | what | on failure |
//! |---|---|---|
//! | 1. validate | against the in-memory state (and, for certificates, the chain and the Party's roles) | refused with an [`AdminError`], nothing changed |
//! | 2. persist | the change and its audit entry in one durable [`Store`] transaction (fsync) | [`AdminError::Store`], nothing changed |
//! | 3. apply | to the `dashmap` state: visible to every request admitted afterwards | — |
//! | 4. answer | the caller learns it is durable *and* in force | — |
//!
//! Persisting before applying means an acknowledged change survives a crash, and a change
//! that could not be made durable is never in force. Keeping the steps here is also the seam
//! for replication: a watcher on a replicated store would call the apply step on every node
//! (see [`crate::store`]).
//!
//! Who and why: each handle carries an [`Actor`] — the admin certificate's User and the reason
//! given (`--reason`) over the admin channel, `bootstrap` at start, `embedding API` otherwise —
//! written to the audit log with every change.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dcc_signing::pki::{ChainValidator, Crl, OrgCertificate};
use dcc_signing::verify::Verifier;
use dcc_signing::{CertId, Eui64, RemotePartyRole, Srv, UserRole};

use crate::clock::Clock;
use crate::policy::RateLimit;
use crate::state::cos::{StoredKey, GAINING_META_PREFIX, KEY_META_PREFIX};
use crate::state::maintenance::MaintenanceWindow;
use crate::state::{
    AssuranceStatus, CertRecord, CertStatus, CosCertificate, Device, DeviceStatus, GnoSlot,
    KeyPurpose, Party, PaymentMode, RevocationDelay, RouterKey, SrpSendsAs, State, SuspendedRights,
    WanState,
};
use crate::store::{
    assurance_name, AuditEntry, AuditFilter, Change, MemoryStore, Store, StoreError, StoredCert,
};

/// The metadata key under which admin-planned maintenance windows are stored (JSON list).
pub const MAINTENANCE_META: &str = "maintenance-windows";

/// Most devices one [`AdminHandle::upsert_devices`] call writes in one transaction.
pub const MAX_DEVICES_PER_CALL: usize = 100_000;

/// Devices restored per [`crate::state::Devices`] batch at start.
const RESTORE_BATCH: usize = 1 << 16;

/// Why an admin operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No such certificate.
    #[error("unknown certificate {0}")]
    UnknownCertificate(CertId),
    /// A revoked certificate cannot be re-added or delayed.
    #[error("certificate {0} is revoked")]
    AlreadyRevoked(CertId),
    /// A retired certificate cannot be used again.
    #[error("certificate {0} is retired")]
    Retired(CertId),
    /// A different certificate is already stored under this id.
    #[error("a different certificate is already stored as {0}")]
    Conflict(CertId),
    /// The certificate is under a revocation delay (end it first).
    #[error("certificate {0} is under a revocation delay")]
    RevocationDelayed(CertId),
    /// The certificate is not under a revocation delay.
    #[error("certificate {0} is not under a revocation delay")]
    NotDelayed(CertId),
    /// The certificate's revocation delay has passed its end: it is revoked, and a new delay
    /// cannot revive it.
    #[error("the revocation delay of certificate {0} has ended: it is revoked and cannot be delayed again")]
    DelayEnded(CertId),
    /// A delay's end that is not in the future.
    #[error("a revocation delay must end in the future (end {end}, now {now})")]
    EndNotInFuture {
        /// The end asked for.
        end: u64,
        /// Now.
        now: u64,
    },
    /// No such Party.
    #[error("unknown User {0}")]
    UnknownParty(Eui64),
    /// No such device.
    #[error("unknown device {0}")]
    UnknownDevice(Eui64),
    /// A delay with no SRP or no SRV.
    #[error("a revocation delay needs at least one SRP and one SRV")]
    EmptyDelay,
    /// A certificate that does not parse.
    #[error("certificate does not parse: {0}")]
    BadCertificate(#[source] dcc_signing::pki::PkiError),
    /// A certificate whose chain does not validate (other CA, expired, key usage, on a CRL).
    #[error("certificate {id} refused: {source}")]
    Chain {
        /// The certificate.
        id: CertId,
        /// Why.
        #[source]
        source: dcc_signing::pki::ChainError,
    },
    /// No trust anchors are configured, so a certificate cannot be validated.
    #[error("no trust anchors configured: certificates cannot be chain-validated")]
    NoTrustAnchors,
    /// The certificate's OU role is not one its Party holds.
    #[error("certificate {id} has OU role {cert_role}, which none of {owner}'s User Roles ({roles}) uses")]
    RoleNotHeld {
        /// The certificate.
        id: CertId,
        /// Its owner.
        owner: Eui64,
        /// The certificate's role.
        cert_role: RemotePartyRole,
        /// The Party's User Roles.
        roles: String,
    },
    /// A device names a Party that is not registered, or one without a fitting role.
    #[error("device {device}: {who} {party} {why}")]
    DeviceParty {
        /// The device.
        device: Eui64,
        /// Which field (supplier, export supplier, network operator).
        who: &'static str,
        /// The Party named.
        party: Eui64,
        /// What is wrong.
        why: &'static str,
    },
    /// A maintenance window that breaks a DP092 rule (named in the error).
    #[error(transparent)]
    Maintenance(#[from] crate::state::maintenance::WindowError),
    /// No admin-planned maintenance window starts then.
    #[error("no maintenance window planned over the admin channel starts at {0}")]
    UnknownWindow(u64),
    /// A Party with no User Role.
    #[error("a Party needs at least one User Role")]
    NoRoles,
    /// [`AdminHandle::restore`] on a router that already holds state.
    #[error("restore is for an empty router at start; this one already holds state")]
    StateNotEmpty,
    /// Too many devices in one call.
    #[error("{0} devices in one call; at most {MAX_DEVICES_PER_CALL}")]
    TooManyDevices(usize),
    /// A router key transfer without the SMKI PMA's approval reference (BEIS 2022: the
    /// transfer is "subject to the DCC gaining the SMKI PMA's approval").
    #[error("a key import or retirement needs the SMKI PMA's approval reference (--pma-ref)")]
    NoPmaReference,
    /// The private key does not load (not PKCS#8 P-256, encrypted, …).
    #[error("key does not load: {0}")]
    BadKey(#[source] dcc_signing::SignError),
    /// A key id already in use.
    #[error("a key named {0:?} is already held")]
    KeyExists(String),
    /// No key of that id.
    #[error("no key named {0:?} is held")]
    UnknownKey(String),
    /// A CoS key whose key pair differs from the one the purpose already holds: devices verify
    /// with their CoS certificate's public key, so a transfer moves the same key pair.
    #[error("key {id:?} is not the {purpose} key pair already held ({held:?}): a transfer moves the same key; a new CoS certificate is a re-keying of every device")]
    KeyMismatch {
        /// The key offered.
        id: String,
        /// Its purpose.
        purpose: &'static str,
        /// A key of that purpose already held.
        held: String,
    },
    /// Retiring the last key of a purpose would make every request that needs it fail.
    #[error("key {id:?} is the last {purpose} key held: import its successor first")]
    LastKey {
        /// The key.
        id: String,
        /// Its purpose.
        purpose: &'static str,
    },
    /// The change could not be made durable: nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    /// A stable code for admin answers and logs.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::UnknownCertificate(_) => "unknown-certificate",
            AdminError::AlreadyRevoked(_) => "revoked",
            AdminError::Retired(_) => "retired",
            AdminError::Conflict(_) => "conflict",
            AdminError::RevocationDelayed(_) => "delayed",
            AdminError::NotDelayed(_) => "not-delayed",
            AdminError::DelayEnded(_) => "delay-ended",
            AdminError::EndNotInFuture { .. } => "end-not-in-future",
            AdminError::UnknownParty(_) => "unknown-party",
            AdminError::UnknownDevice(_) => "unknown-device",
            AdminError::EmptyDelay => "empty-delay",
            AdminError::BadCertificate(_) => "bad-certificate",
            AdminError::Chain { .. } => "chain",
            AdminError::NoTrustAnchors => "no-trust-anchors",
            AdminError::RoleNotHeld { .. } => "role-not-held",
            AdminError::DeviceParty { .. } => "device-party",
            AdminError::NoRoles => "no-roles",
            AdminError::Maintenance(e) => e.code(),
            AdminError::UnknownWindow(_) => "unknown-window",
            AdminError::TooManyDevices(_) => "too-many-devices",
            AdminError::NoPmaReference => "no-pma-reference",
            AdminError::BadKey(_) => "bad-key",
            AdminError::KeyExists(_) => "key-exists",
            AdminError::UnknownKey(_) => "unknown-key",
            AdminError::KeyMismatch { .. } => "key-mismatch",
            AdminError::LastKey { .. } => "last-key",
            AdminError::StateNotEmpty => "state-not-empty",
            AdminError::Store(e) => e.code(),
        }
    }
}

/// Who makes a change, and why (the audit log's "who" and "reason").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `admin 02-DC-…`, `bootstrap`, `embedding API`.
    pub who: String,
    /// The reason given.
    pub reason: Option<String>,
}

impl Default for Actor {
    fn default() -> Self {
        Actor {
            who: "embedding API".into(),
            reason: None,
        }
    }
}

/// The SMKI Organisation Certificate role (OU) a User Role signs with. SEC Appendix A: a
/// Supplier's IS/ES/GS requests use Supplier certificates, a Network Operator's ED/GT ones
/// Network Operator certificates, everyone else "Other User" certificates.
pub const fn smki_role_of(role: UserRole) -> RemotePartyRole {
    match role {
        UserRole::ImportSupplier | UserRole::ExportSupplier | UserRole::GasSupplier => {
            RemotePartyRole::Supplier
        }
        UserRole::ElectricityDistributor | UserRole::GasTransporter => {
            RemotePartyRole::NetworkOperator
        }
        _ => RemotePartyRole::Other,
    }
}

/// What the admin handles of one router share.
#[derive(Debug)]
pub(crate) struct AdminShared {
    pub store: Arc<dyn Store>,
    pub trust: Option<ChainValidator>,
    /// Every certificate id a loaded CRL lists (known to the store or not): a certificate
    /// added later is refused if it is on one.
    crl_listed: Mutex<HashSet<CertId>>,
    lock: Mutex<()>,
}

impl AdminShared {
    pub(crate) fn new(store: Arc<dyn Store>, trust: Option<ChainValidator>) -> Self {
        AdminShared {
            store,
            trust,
            crl_listed: Mutex::new(HashSet::new()),
            lock: Mutex::new(()),
        }
    }
}

/// Changes router state. Cheap to clone; usable from any thread.
#[derive(Clone, Debug)]
pub struct AdminHandle {
    state: Arc<State>,
    verifier: Arc<dyn Verifier>,
    clock: Clock,
    shared: Arc<AdminShared>,
    actor: Actor,
}

impl AdminHandle {
    /// A handle over `state` with no durable store (in-memory mode) and no trust anchors;
    /// `verifier` prepares the keys of added certificates.
    pub fn new(state: Arc<State>, verifier: Arc<dyn Verifier>, clock: Clock) -> Self {
        Self::with_store(
            state,
            verifier,
            clock,
            Arc::new(AdminShared::new(Arc::new(MemoryStore::default()), None)),
        )
    }

    pub(crate) fn with_store(
        state: Arc<State>,
        verifier: Arc<dyn Verifier>,
        clock: Clock,
        shared: Arc<AdminShared>,
    ) -> Self {
        AdminHandle {
            state,
            verifier,
            clock,
            shared,
            actor: Actor::default(),
        }
    }

    /// The same handle, acting for `who` with `reason` (written to the audit log).
    pub fn acting_as(&self, who: impl Into<String>, reason: Option<String>) -> Self {
        AdminHandle {
            actor: Actor {
                who: who.into(),
                reason,
            },
            ..self.clone()
        }
    }

    /// The state (read access).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The store changes go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The audit log, newest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AdminError> {
        Ok(self.shared.store.audit(filter)?)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.shared
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Step 2: the change and its audit entry, durably.
    fn persist(
        &self,
        op: &str,
        subjects: Vec<String>,
        detail: String,
        changes: &[Change],
    ) -> Result<(), AdminError> {
        let entry = AuditEntry {
            seq: 0,
            at: self.clock.now_unix(),
            who: self.actor.who.clone(),
            op: op.to_owned(),
            subjects,
            detail,
            reason: self.actor.reason.clone(),
        };
        self.shared.store.apply(changes, Some(&entry))?;
        Ok(())
    }

    // ---- certificates ----

    /// Adds a certificate as active, preparing its key for the verifier now (off the hot
    /// path). Adding the same active certificate again is a no-op; a different one under the
    /// same id, a revoked one and a delayed one are refused. No chain validation (there is no
    /// certificate to validate): use [`AdminHandle::add_certificate_pem`] for certificates
    /// from outside.
    pub fn add_certificate(&self, record: CertRecord) -> Result<(), AdminError> {
        let _g = self.lock();
        self.add_locked(record, None, "add-certificate")
    }

    fn add_locked(
        &self,
        record: CertRecord,
        pem: Option<String>,
        op: &str,
    ) -> Result<(), AdminError> {
        // One entry per certificate id for its whole life: in-flight requests hold the entry,
        // and the revocation guarantee rests on them seeing the same lock `revoke` takes.
        let id = record.id;
        if let Some(e) = self.state.certs.get(&id) {
            return match e.status() {
                CertStatus::Revoked { .. } => Err(AdminError::AlreadyRevoked(id)),
                CertStatus::Retired { .. } => Err(AdminError::Retired(id)),
                // Re-adding must not lift a delay's restrictions.
                CertStatus::Delayed(_) => Err(AdminError::RevocationDelayed(id)),
                _ if *e.record() == record => Ok(()),
                _ => Err(AdminError::Conflict(id)),
            };
        }
        self.persist(
            op,
            vec![id.to_string(), record.owner.to_string()],
            format!("certificate {id} of {} added, active", record.owner),
            &[Change::Cert(StoredCert::new(
                &record,
                &CertStatus::Active,
                pem.clone(),
            ))],
        )?;
        let key = self.verifier.prepare(&record.public_key);
        // Under the admin lock nobody else inserts: this cannot find the id taken.
        let _ = self
            .state
            .certs
            .insert_with_status(record, key, CertStatus::Active, pem);
        Ok(())
    }

    /// Adds a User's Organisation Certificate from PEM (or DER): parsed, chain-validated
    /// against the configured root and issuing CA (signature, validity, key usage, CRLs
    /// loaded), and its OU role checked against its Party's User Roles. A second certificate
    /// for the same User is a key rollover: both serve until the old one is retired.
    pub fn add_certificate_pem(&self, pem: &[u8]) -> Result<CertId, AdminError> {
        let cert = OrgCertificate::parse(pem).map_err(AdminError::BadCertificate)?;
        let _g = self.lock();
        self.check_certificate(&cert)?;
        let record = CertRecord {
            id: cert.id,
            owner: cert.subject_eui64,
            public_key: cert.public_key,
            not_before: cert.not_before,
            not_after: cert.not_after,
        };
        self.add_locked(record, Some(cert.to_pem()), "add-certificate")?;
        Ok(cert.id)
    }

    /// Validates a certificate as [`AdminHandle::add_certificate_pem`] does, without adding
    /// it (the server checks every PKI-directory certificate this way at start).
    pub fn check_certificate(&self, cert: &OrgCertificate) -> Result<(), AdminError> {
        let trust = self
            .shared
            .trust
            .as_ref()
            .ok_or(AdminError::NoTrustAnchors)?;
        let mut validator = trust.clone();
        validator.add_revoked(self.revoked_by_crls());
        validator
            .validate(cert, self.clock.now_unix())
            .map_err(|source| AdminError::Chain {
                id: cert.id,
                source,
            })?;
        let party = self
            .state
            .parties
            .get(cert.subject_eui64)
            .ok_or(AdminError::UnknownParty(cert.subject_eui64))?;
        let held: Vec<UserRole> = UserRole::ALL
            .iter()
            .copied()
            .filter(|r| party.roles.contains(*r))
            .collect();
        if !held.iter().any(|r| smki_role_of(*r) == cert.role) {
            return Err(AdminError::RoleNotHeld {
                id: cert.id,
                owner: cert.subject_eui64,
                cert_role: cert.role,
                roles: held
                    .iter()
                    .map(|r| r.abbrev())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
    }

    fn revoked_by_crls(&self) -> Vec<CertId> {
        self.shared
            .crl_listed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Notes the certificates a CRL already in the store lists (at start).
    pub(crate) fn note_crl(&self, ids: impl IntoIterator<Item = CertId>) {
        self.shared
            .crl_listed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(ids);
    }

    /// Persists and applies a new status for a stored certificate.
    fn set_cert_status(
        &self,
        id: &CertId,
        op: &str,
        detail: String,
        extra_subjects: &[Eui64],
        status: impl FnOnce(&CertStatus) -> Result<CertStatus, AdminError>,
    ) -> Result<(), AdminError> {
        let e = self
            .state
            .certs
            .get(id)
            .ok_or(AdminError::UnknownCertificate(*id))?;
        let new = status(&e.status())?;
        let mut subjects = vec![id.to_string(), e.record().owner.to_string()];
        subjects.extend(extra_subjects.iter().map(ToString::to_string));
        self.persist(
            op,
            subjects,
            detail,
            &[Change::Cert(StoredCert::new(
                e.record(),
                &new,
                e.pem().map(str::to_owned),
            ))],
        )?;
        e.set_status(new);
        Ok(())
    }

    /// Revokes a certificate. When this returns, the revocation is durable and no request
    /// signed with it will be dispatched (in-flight ones included: see
    /// [`crate::state::certstore`]).
    pub fn revoke(&self, id: &CertId) -> Result<(), AdminError> {
        let _g = self.lock();
        self.revoke_locked(id, "revoke")
    }

    fn revoke_locked(&self, id: &CertId, op: &str) -> Result<(), AdminError> {
        let at = self.clock.now_unix();
        self.set_cert_status(id, op, format!("{id} revoked"), &[], |s| match s {
            CertStatus::Revoked { .. } => Err(AdminError::AlreadyRevoked(*id)),
            _ => Ok(CertStatus::Revoked { at }),
        })
    }

    /// Retires a certificate after its owner's key rollover: from now on it is refused (R2);
    /// the owner's other certificates serve.
    pub fn retire_certificate(&self, id: &CertId) -> Result<(), AdminError> {
        let _g = self.lock();
        let at = self.clock.now_unix();
        self.set_cert_status(
            id,
            "retire-certificate",
            format!("{id} retired"),
            &[],
            |s| match s {
                CertStatus::Active => Ok(CertStatus::Retired { at }),
                CertStatus::Revoked { .. } => Err(AdminError::AlreadyRevoked(*id)),
                CertStatus::Retired { .. } => Err(AdminError::Retired(*id)),
                _ => Err(AdminError::RevocationDelayed(*id)),
            },
        )
    }

    /// Loads a verified CRL: records it durably and revokes every listed certificate the
    /// store knows, in one transaction; returns how many were revoked now. Certificates
    /// added later are checked against it.
    pub fn load_crl(&self, crl: &Crl, pem: &str) -> Result<usize, AdminError> {
        use sha2::Digest;
        let _g = self.lock();
        let n = self.revoke_listed(
            &crl.revoked,
            Some(Change::Crl {
                key: hex::encode(sha2::Sha256::digest(pem.as_bytes())),
                pem: pem.to_owned(),
            }),
            "load-crl",
            &format!("CRL of {} lists {}", crl.issuer, crl.revoked.len()),
        )?;
        self.note_crl(crl.revoked.iter().copied());
        Ok(n)
    }

    /// Revokes every certificate in `ids` that the store knows and has not revoked yet, in
    /// one transaction (unknown ids are skipped); returns how many were revoked now.
    pub fn revoke_many(&self, ids: &[CertId]) -> Result<usize, AdminError> {
        let _g = self.lock();
        self.revoke_listed(ids, None, "revoke", &format!("{} listed", ids.len()))
    }

    fn revoke_listed(
        &self,
        ids: &[CertId],
        record: Option<Change>,
        op: &str,
        what: &str,
    ) -> Result<usize, AdminError> {
        let at = self.clock.now_unix();
        let mut changes: Vec<Change> = record.into_iter().collect();
        let mut hit = Vec::new();
        for id in ids {
            if let Some(e) = self.state.certs.get(id) {
                if !matches!(e.status(), CertStatus::Revoked { .. }) {
                    let status = CertStatus::Revoked { at };
                    changes.push(Change::Cert(StoredCert::new(
                        e.record(),
                        &status,
                        e.pem().map(str::to_owned),
                    )));
                    hit.push((e, status));
                }
            }
        }
        self.persist(
            op,
            hit.iter().map(|(e, _)| e.record().id.to_string()).collect(),
            format!("{what}; {} revoked now", hit.len()),
            &changes,
        )?;
        let n = hit.len();
        for (e, status) in hit {
            e.set_status(status);
        }
        Ok(n)
    }

    /// The SMKI PMA's decision to delay the revocation of a failed Supplier's certificate
    /// (MP134A: "the SMKI PMA must ... determine if revocation of SMKI certificates should be
    /// delayed"): the SRVs it covers (the safe-mode set) and its end — `None` for no term ("the
    /// seed sets no term": the SoLR reports weekly and the PMA ends it with
    /// [`AdminHandle::end_delay`]). No SRP may use the certificate until the Authority directs
    /// one ([`AdminHandle::direct_srps`]). Deciding again on a running delay changes its SRVs
    /// and end and keeps the direction; a delay past its end is a revocation and cannot be
    /// revived ([`AdminError::DelayEnded`]).
    pub fn pma_delay_revocation(
        &self,
        id: &CertId,
        srvs: impl IntoIterator<Item = Srv>,
        until: Option<u64>,
    ) -> Result<(), AdminError> {
        let srvs: HashSet<Srv> = srvs.into_iter().collect();
        if srvs.is_empty() {
            return Err(AdminError::EmptyDelay);
        }
        let _g = self.lock();
        let now = self.check_end(until)?;
        let end = until.map_or_else(|| "no end".to_owned(), |u| format!("end {u}"));
        self.set_cert_status(
            id,
            "pma-delay-revocation",
            format!(
                "SMKI PMA: revocation of {id} delayed ({end}) for {} SRVs",
                srvs.len()
            ),
            &[],
            |s| {
                let (srps, sends_as) = match Self::live_delay(id, s, now)? {
                    Some(d) => (d.srps.clone(), d.sends_as),
                    None => (HashSet::new(), SrpSendsAs::FailedSupplier),
                };
                Ok(CertStatus::Delayed(RevocationDelay {
                    srps,
                    srvs,
                    until,
                    sends_as,
                }))
            },
        )
    }

    /// The Authority's direction under a running revocation delay (MP134A: "The Authority can
    /// then direct an SRP to take action to maintain the continuity of the failed Supplier's
    /// prepayment consumers, using the failed Supplier's SMKI certificates"): which SRPs may
    /// send, and how ([`SrpSendsAs`]: as the failed Supplier over their own connection, as
    /// MP134A writes it, or the SRP-own-EUI variant). Replaces an earlier direction; an empty
    /// list withdraws it.
    pub fn direct_srps(
        &self,
        id: &CertId,
        srps: impl IntoIterator<Item = Eui64>,
        sends_as: SrpSendsAs,
    ) -> Result<(), AdminError> {
        let srps: HashSet<Eui64> = srps.into_iter().collect();
        let mut srp_list: Vec<Eui64> = srps.iter().copied().collect();
        srp_list.sort();
        let _g = self.lock();
        let now = self.clock.now_unix();
        let how = match sends_as {
            SrpSendsAs::OwnEui => "with their own EUI-64",
            _ => "as the failed Supplier",
        };
        self.set_cert_status(
            id,
            "authority-direct-srps",
            format!(
                "Authority: {} SRPs directed to send {how} under the delay of {id}",
                srps.len()
            ),
            &srp_list,
            |s| match Self::live_delay(id, s, now)? {
                Some(d) => Ok(CertStatus::Delayed(RevocationDelay {
                    srps,
                    sends_as,
                    ..d.clone()
                })),
                None => Err(AdminError::NotDelayed(*id)),
            },
        )
    }

    /// Both decisions in one step — the PMA's delay until `until` for `srvs`, and the
    /// Authority's direction of `srps` — in the SRP-own-EUI variant ([`SrpSendsAs::OwnEui`]),
    /// as the router modelled MP134A before issue 13 (kept for embedders, `admin delay` and
    /// the loadgen SoLR scenario). MP134A as written is [`AdminHandle::pma_delay_revocation`]
    /// then [`AdminHandle::direct_srps`] with [`SrpSendsAs::FailedSupplier`].
    pub fn delay_revocation(
        &self,
        id: &CertId,
        srps: impl IntoIterator<Item = Eui64>,
        srvs: impl IntoIterator<Item = Srv>,
        until: u64,
    ) -> Result<(), AdminError> {
        let srps: HashSet<Eui64> = srps.into_iter().collect();
        let srvs: HashSet<Srv> = srvs.into_iter().collect();
        if srps.is_empty() || srvs.is_empty() {
            return Err(AdminError::EmptyDelay);
        }
        let mut srp_list: Vec<Eui64> = srps.iter().copied().collect();
        srp_list.sort();
        let _g = self.lock();
        let now = self.check_end(Some(until))?;
        self.set_cert_status(
            id,
            "delay-revocation",
            format!(
                "revocation of {id} delayed until {until} for {} SRPs (own EUI-64), {} SRVs",
                srps.len(),
                srvs.len()
            ),
            &srp_list,
            |s| {
                Self::live_delay(id, s, now)?;
                Ok(CertStatus::Delayed(RevocationDelay {
                    srps,
                    srvs,
                    until: Some(until),
                    sends_as: SrpSendsAs::OwnEui,
                }))
            },
        )
    }

    /// Now, if `until` is in the future (or absent).
    fn check_end(&self, until: Option<u64>) -> Result<u64, AdminError> {
        let now = self.clock.now_unix();
        match until {
            Some(end) if end <= now => Err(AdminError::EndNotInFuture { end, now }),
            _ => Ok(now),
        }
    }

    /// The running delay of a certificate in status `s` (`None`: active), or why it cannot be
    /// delayed: revoked, retired, or a delay past its end — which is a revocation.
    fn live_delay<'s>(
        id: &CertId,
        s: &'s CertStatus,
        now: u64,
    ) -> Result<Option<&'s RevocationDelay>, AdminError> {
        match s {
            CertStatus::Active => Ok(None),
            CertStatus::Delayed(d) if d.running(now) => Ok(Some(d)),
            CertStatus::Delayed(_) => Err(AdminError::DelayEnded(*id)),
            CertStatus::Revoked { .. } => Err(AdminError::AlreadyRevoked(*id)),
            CertStatus::Retired { .. } => Err(AdminError::Retired(*id)),
        }
    }

    /// The SMKI PMA ends a revocation delay (MP134A: the SoLR "will inform the SMKI PMA if it
    /// wishes the SRP to cease to use the failed Supplier's SMKI Certificates"): the
    /// certificate is revoked from now on (from its end, if that has already passed).
    pub fn end_delay(&self, id: &CertId) -> Result<(), AdminError> {
        let _g = self.lock();
        let at = self.clock.now_unix();
        self.set_cert_status(
            id,
            "end-delay",
            format!("delay of {id} ended: revoked"),
            &[],
            |s| match s {
                CertStatus::Delayed(d) => Ok(CertStatus::Revoked {
                    at: d.until.map_or(at, |end| end.min(at)),
                }),
                _ => Err(AdminError::NotDelayed(*id)),
            },
        )
    }

    // ---- parties ----

    /// Adds or replaces a Party.
    pub fn upsert_party(&self, id: Eui64, party: Party) -> Result<(), AdminError> {
        if party.roles.is_empty() {
            return Err(AdminError::NoRoles);
        }
        let _g = self.lock();
        let existed = self.state.parties.get(id).is_some();
        self.persist(
            if existed { "update-party" } else { "add-party" },
            vec![id.to_string()],
            describe_party(&party),
            &[Change::Party(id, crate::store::StoredParty::of(&party))],
        )?;
        self.state.parties.upsert(id, party);
        Ok(())
    }

    /// Adds a Party with `roles` (approved unless `assurance` says otherwise), or changes an
    /// existing Party's roles (and assurance status) keeping everything else — read, merged
    /// and written under the admin lock, so a concurrent change is never undone.
    pub fn set_party_roles(
        &self,
        id: Eui64,
        roles: &[UserRole],
        assurance: Option<AssuranceStatus>,
    ) -> Result<(), AdminError> {
        let set = crate::policy::RoleSet::of(roles);
        if set.is_empty() {
            return Err(AdminError::NoRoles);
        }
        let _g = self.lock();
        let existing = self.state.parties.get(id);
        let mut party = existing.unwrap_or_else(|| Party::approved(roles));
        party.roles = set;
        if let Some(a) = assurance {
            party.assurance = a;
        }
        self.persist(
            if existing.is_some() {
                "update-party"
            } else {
                "add-party"
            },
            vec![id.to_string()],
            describe_party(&party),
            &[Change::Party(id, crate::store::StoredParty::of(&party))],
        )?;
        self.state.parties.upsert(id, party);
        Ok(())
    }

    /// Sets a Party's assurance status.
    pub fn set_assurance(&self, id: Eui64, status: AssuranceStatus) -> Result<(), AdminError> {
        self.update_party(
            id,
            "set-assurance",
            format!("assurance status {}", assurance_name(status)),
            |p| p.assurance = status,
        )
    }

    /// Suspends service rights, SEC M8.6 (d)–(h) (adds to those already suspended). M8.6
    /// needs the Authority's approval: give it as the reason ([`AdminHandle::acting_as`]).
    pub fn suspend_rights(&self, id: Eui64, rights: SuspendedRights) -> Result<(), AdminError> {
        self.update_party(
            id,
            "suspend",
            format!("suspended SEC M8.6 {}", rights.letters()),
            |p| p.suspended = p.suspended.union(rights),
        )
    }

    /// Restores service rights, SEC M8.6 (d)–(h).
    pub fn restore_rights(&self, id: Eui64, rights: SuspendedRights) -> Result<(), AdminError> {
        self.update_party(
            id,
            "restore",
            format!("restored SEC M8.6 {}", rights.letters()),
            |p| p.suspended = p.suspended.without(rights),
        )
    }

    /// Sets (or clears) a per-User rate limit replacing the policy's.
    pub fn set_rate_limit(&self, id: Eui64, limit: Option<RateLimit>) -> Result<(), AdminError> {
        let detail = match limit {
            Some(l) => format!("rate limit {}/s, burst {}", l.per_second(), l.burst()),
            None => "rate limit: the policy's".into(),
        };
        self.update_party(id, "set-rate-limit", detail, |p| p.rate_limit = limit)
    }

    fn update_party(
        &self,
        id: Eui64,
        op: &str,
        detail: String,
        f: impl FnOnce(&mut Party),
    ) -> Result<(), AdminError> {
        let _g = self.lock();
        let mut p = self
            .state
            .parties
            .get(id)
            .ok_or(AdminError::UnknownParty(id))?;
        f(&mut p);
        self.persist(
            op,
            vec![id.to_string()],
            detail,
            &[Change::Party(id, crate::store::StoredParty::of(&p))],
        )?;
        self.state.parties.upsert(id, p);
        Ok(())
    }

    // ---- devices ----

    /// Checks that the Parties a device names exist and hold a fitting role.
    fn check_device(&self, id: Eui64, d: &Device) -> Result<(), AdminError> {
        let check = |who: &'static str, party: Option<Eui64>, fits: fn(UserRole) -> bool| {
            let Some(party) = party else {
                return Ok(());
            };
            let p = self
                .state
                .parties
                .get(party)
                .ok_or(AdminError::DeviceParty {
                    device: id,
                    who,
                    party,
                    why: "is not a registered Party",
                })?;
            if UserRole::ALL
                .iter()
                .any(|r| p.roles.contains(*r) && fits(*r))
            {
                Ok(())
            } else {
                Err(AdminError::DeviceParty {
                    device: id,
                    who,
                    party,
                    why: "holds no fitting User Role",
                })
            }
        };
        check("supplier", d.supplier, UserRole::is_supplier)?;
        check("export supplier", d.export_supplier, |r| {
            r == UserRole::ExportSupplier || r == UserRole::ImportSupplier
        })?;
        check(
            "network operator",
            d.network_operator,
            UserRole::is_network_operator,
        )
    }

    /// Adds or replaces a device.
    pub fn upsert_device(&self, id: Eui64, device: Device) -> Result<(), AdminError> {
        self.upsert_devices(&[(id, device)]).map(|_| ())
    }

    /// Adds or replaces up to [`MAX_DEVICES_PER_CALL`] devices in one durable transaction
    /// with one audit entry (bulk import); returns how many.
    pub fn upsert_devices(&self, devices: &[(Eui64, Device)]) -> Result<usize, AdminError> {
        if devices.len() > MAX_DEVICES_PER_CALL {
            return Err(AdminError::TooManyDevices(devices.len()));
        }
        let _g = self.lock();
        for (id, d) in devices {
            self.check_device(*id, d)?;
        }
        let (op, subjects, detail) = match devices {
            [(id, d)] => ("device-set", device_subjects(*id, d), describe_device(d)),
            _ => (
                "device-import",
                Vec::new(),
                format!("{} devices imported", devices.len()),
            ),
        };
        self.persist(op, subjects, detail, &[Change::Devices(devices.to_vec())])?;
        self.state.devices.upsert_many(devices);
        Ok(devices.len())
    }

    /// Adds a device (`new` when unknown) or changes an existing one with `f` — read, merged
    /// and written under the admin lock, so a concurrent change is never undone.
    pub fn merge_device(
        &self,
        id: Eui64,
        new: Device,
        f: impl FnOnce(&mut Device),
    ) -> Result<(), AdminError> {
        let _g = self.lock();
        let existing = self.state.devices.get(id);
        let d = match existing {
            None => new,
            Some(mut d) => {
                f(&mut d);
                d
            }
        };
        self.check_device(id, &d)?;
        self.persist(
            "device-set",
            device_subjects(id, &d),
            describe_device(&d),
            &[Change::Devices(vec![(id, d)])],
        )?;
        self.state.devices.upsert(id, d);
        Ok(())
    }

    /// Sets what a gas device's GNO slot holds (MP128B), e.g. at import.
    pub fn set_gno_slot(&self, id: Eui64, slot: GnoSlot) -> Result<(), AdminError> {
        self.update_device(id, "set-gno-slot", |d| d.gno_slot = slot)
    }

    /// The effect of a Supplier's SRV 6.15.1 Update Security Credentials (KRP) on a gas
    /// device's GNO slot (MP128B: "where an unrevoked SMKI Organisation Certificate for a GNO
    /// that is a DCC User exists, then the Supplier should put it onto the Device ... Where
    /// there is no GNO Organisation Certificate available in the SMKI Repository, the Supplier
    /// shall leave the ACB Certificate"): the slot takes the device's registered network
    /// operator's certificate when that operator is a DCC User in the Gas Transporter role
    /// with an active (unrevoked) Organisation Certificate, and otherwise holds the ACB's.
    /// Returns what the slot holds now.
    pub fn place_gno_certificate(&self, id: Eui64) -> Result<GnoSlot, AdminError> {
        let d = self
            .state
            .devices
            .get(id)
            .ok_or(AdminError::UnknownDevice(id))?;
        let slot = d
            .network_operator
            .filter(|no| {
                self.state
                    .parties
                    .get(*no)
                    .is_some_and(|p| p.roles.contains(UserRole::GasTransporter))
                    && self
                        .state
                        .certs
                        .list()
                        .iter()
                        .any(|(r, s)| r.owner == *no && matches!(s, CertStatus::Active))
            })
            .map_or(GnoSlot::Acb, GnoSlot::Gno);
        self.update_device(id, "place-gno-certificate", |d| d.gno_slot = slot)?;
        Ok(slot)
    }

    /// Sets a device's payment mode.
    pub fn set_payment_mode(&self, id: Eui64, mode: PaymentMode) -> Result<(), AdminError> {
        self.update_device(id, "set-payment-mode", |d| d.payment_mode = mode)
    }

    /// Sets a device's SM WAN state (DP094: ok, poor, none), e.g. from the CSP's incident
    /// reports; audited like every device change.
    pub fn set_wan_state(&self, id: Eui64, wan: WanState) -> Result<(), AdminError> {
        self.update_device(id, "set-wan-state", |d| d.wan = wan)
    }

    /// Change of Supplier: the device's registration moves to `supplier` (MP185: after a SoLR
    /// event the failed Supplier's SRP loses the device from this moment, whatever the
    /// certificate state).
    pub fn set_registered_supplier(&self, id: Eui64, supplier: Eui64) -> Result<(), AdminError> {
        self.update_device(id, "change-of-supplier", |d| d.supplier = Some(supplier))
    }

    /// Sets (or clears) the registered export Supplier.
    pub fn set_export_supplier(
        &self,
        id: Eui64,
        supplier: Option<Eui64>,
    ) -> Result<(), AdminError> {
        self.update_device(id, "change-of-export-supplier", |d| {
            d.export_supplier = supplier;
        })
    }

    /// Sets a device's status (decommissioning is [`DeviceStatus::Decommissioned`]).
    pub fn set_device_status(&self, id: Eui64, status: DeviceStatus) -> Result<(), AdminError> {
        let op = if status == DeviceStatus::Decommissioned {
            "decommission"
        } else {
            "set-device-status"
        };
        self.update_device(id, op, |d| d.status = status)
    }

    fn update_device(
        &self,
        id: Eui64,
        op: &str,
        f: impl FnOnce(&mut Device),
    ) -> Result<(), AdminError> {
        let _g = self.lock();
        let mut d = self
            .state
            .devices
            .get(id)
            .ok_or(AdminError::UnknownDevice(id))?;
        f(&mut d);
        self.check_device(id, &d)?;
        self.persist(
            op,
            device_subjects(id, &d),
            describe_device(&d),
            &[Change::Devices(vec![(id, d)])],
        )?;
        self.state.devices.upsert(id, d);
        Ok(())
    }

    /// Sets which CoS certificate a device holds (TCoS or ECoS), e.g. after its migration to
    /// ECoS: its 6.23 is then counter-signed with the matching CoS Party key.
    pub fn set_cos_certificate(&self, id: Eui64, cos: CosCertificate) -> Result<(), AdminError> {
        self.update_device(id, "set-cos-certificate", |d| d.cos = cos)
    }

    /// Records (or with `None` clears) a pending Change of Supplier from registration data:
    /// `gaining` is the Supplier Party (one Party, whichever of its MPIDs the registration
    /// names — no "split suppliers", beis-2021-ecos-smki-response.txt 3.1) that may send the
    /// device's SRV 6.23 through the CoS Party. The device stays registered to its current
    /// Supplier until that 6.23 has been counter-signed and dispatched
    /// ([`AdminHandle::complete_change_of_supplier`]).
    pub fn set_gaining_supplier(
        &self,
        id: Eui64,
        gaining: Option<Eui64>,
    ) -> Result<(), AdminError> {
        let _g = self.lock();
        let d = self
            .state
            .devices
            .get(id)
            .ok_or(AdminError::UnknownDevice(id))?;
        let key = format!("{GAINING_META_PREFIX}{id}");
        let (change, detail) = match gaining {
            Some(g) => {
                let bad = |why| AdminError::DeviceParty {
                    device: id,
                    who: "gaining supplier",
                    party: g,
                    why,
                };
                let p = self
                    .state
                    .parties
                    .get(g)
                    .ok_or_else(|| bad("is not a registered Party"))?;
                if !UserRole::ALL
                    .iter()
                    .any(|r| p.roles.contains(*r) && r.is_supplier())
                {
                    return Err(bad("holds no Supplier role"));
                }
                if d.supplier == Some(g) {
                    return Err(bad("is already the registered supplier"));
                }
                (
                    Change::Meta(key, g.to_string()),
                    format!("change of supplier pending: gaining supplier {g}"),
                )
            }
            None => (
                Change::MetaRemove(key),
                "change of supplier cancelled".into(),
            ),
        };
        let mut subjects = vec![id.to_string()];
        subjects.extend(gaining.map(|g| g.to_string()));
        self.persist("change-of-supplier-pending", subjects, detail, &[change])?;
        self.state.gaining.set(id, gaining);
        Ok(())
    }

    /// The effect of a gaining Supplier's SRV 6.23 once the CoS Party counter-signed it and it
    /// was dispatched: the device is registered (import / gas) to `gaining` and the pending
    /// change is cleared — one durable transaction, audited with the CoS key that signed.
    /// A pending change that names another Supplier by now (changed meanwhile) is left alone.
    pub fn complete_change_of_supplier(
        &self,
        id: Eui64,
        gaining: Eui64,
        cos_key: &str,
    ) -> Result<(), AdminError> {
        let _g = self.lock();
        let mut d = self
            .state
            .devices
            .get(id)
            .ok_or(AdminError::UnknownDevice(id))?;
        let pending = self.state.gaining.get(id);
        if pending.is_some_and(|p| p != gaining) {
            return Ok(());
        }
        d.supplier = Some(gaining);
        self.check_device(id, &d)?;
        let mut changes = vec![Change::Devices(vec![(id, d)])];
        if pending.is_some() {
            changes.push(Change::MetaRemove(format!("{GAINING_META_PREFIX}{id}")));
        }
        self.persist(
            "change-of-supplier-cos",
            device_subjects(id, &d),
            format!("6.23 counter-signed by CoS key {cos_key}; registered supplier now {gaining}"),
            &changes,
        )?;
        self.state.devices.upsert(id, d);
        self.state.gaining.set(id, None);
        Ok(())
    }

    // ---- the router's own keys (BEIS 2022 key transfer) ----

    /// Moves a private key into the router (BEIS 2022, beis-2022-sec-changes-consultation.txt
    /// 3.3: "transfer a Private Key from the systems of one Service Provider to another
    /// subject to the DCC gaining the SMKI PMA's approval"): `pkcs8` is a PKCS#8 P-256 key
    /// (PEM or DER), `pma_ref` the PMA's approval reference, recorded in the audit entry with
    /// the key's id, purpose and public key. It serves at once, beside any key of the same
    /// purpose already held (see [`crate::state::cos`]).
    pub fn import_key(
        &self,
        id: &str,
        purpose: KeyPurpose,
        pkcs8: &[u8],
        pma_ref: &str,
    ) -> Result<(), AdminError> {
        let pma_ref = pma_ref.trim();
        if pma_ref.is_empty() {
            return Err(AdminError::NoPmaReference);
        }
        let signer = dcc_signing::Signer::from_pkcs8(pkcs8).map_err(AdminError::BadKey)?;
        let _g = self.lock();
        let held = self.state.keys.all();
        if held.iter().any(|k| k.id == id) {
            return Err(AdminError::KeyExists(id.to_owned()));
        }
        let key = RouterKey {
            id: id.to_owned(),
            purpose,
            signer,
            imported_at: self.clock.now_unix(),
            pma_ref: pma_ref.to_owned(),
        };
        if purpose.is_cos() {
            if let Some(other) = held
                .iter()
                .find(|k| k.purpose == purpose && k.public_key_hex() != key.public_key_hex())
            {
                return Err(AdminError::KeyMismatch {
                    id: id.to_owned(),
                    purpose: purpose.as_str(),
                    held: other.id.clone(),
                });
            }
        }
        let stored = key.stored();
        let json = serde_json::to_string(&stored).map_err(|e| self.encode_error(e))?;
        self.persist(
            "key-import",
            vec![format!("key {id}")],
            format!(
                "{} key {id} imported, public key {}; SMKI PMA approval {pma_ref}",
                purpose.as_str(),
                key.public_key_hex()
            ),
            &[Change::Meta(StoredKey::meta_key(id), json)],
        )?;
        let mut next: Vec<Arc<RouterKey>> = held.iter().cloned().collect();
        next.push(Arc::new(key));
        self.state.keys.replace(next);
        Ok(())
    }

    /// Retires a key (the end of a transfer's overlap: the old holder stops signing), with the
    /// PMA's reference. The last key of a purpose cannot be retired: requests that need it
    /// would fail.
    pub fn retire_key(&self, id: &str, pma_ref: &str) -> Result<(), AdminError> {
        let pma_ref = pma_ref.trim();
        if pma_ref.is_empty() {
            return Err(AdminError::NoPmaReference);
        }
        let _g = self.lock();
        let held = self.state.keys.all();
        let key = held
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| AdminError::UnknownKey(id.to_owned()))?;
        if held.iter().filter(|k| k.purpose == key.purpose).count() == 1 {
            return Err(AdminError::LastKey {
                id: id.to_owned(),
                purpose: key.purpose.as_str(),
            });
        }
        self.persist(
            "key-retire",
            vec![format!("key {id}")],
            format!(
                "{} key {id} retired (public key {}); SMKI PMA approval {pma_ref}",
                key.purpose.as_str(),
                key.public_key_hex()
            ),
            &[Change::MetaRemove(StoredKey::meta_key(id))],
        )?;
        let next: Vec<Arc<RouterKey>> = held.iter().filter(|k| k.id != id).cloned().collect();
        self.state.keys.replace(next);
        Ok(())
    }

    fn encode_error(&self, e: impl std::fmt::Display) -> AdminError {
        AdminError::Store(StoreError::Write {
            path: self.shared.store.describe().into(),
            message: e.to_string(),
        })
    }

    /// Plans a maintenance window (DP092), checked against every window already planned (the
    /// policy's included): between 20:00 and 08:00, at most 6 h, at most one high-impact and
    /// three low-impact a month; a window that breaks a rule is refused naming it.
    pub fn add_maintenance_window(&self, w: MaintenanceWindow) -> Result<(), AdminError> {
        let _g = self.lock();
        w.validate(&self.state.maintenance.all())?;
        let mut windows = self.state.maintenance.admin_windows();
        windows.push(w);
        self.save_windows(
            "add-maintenance-window",
            format!("{:?} window {}..{}", w.impact, w.start, w.end),
            windows,
        )
    }

    /// Removes the admin-planned window starting at `start`.
    pub fn remove_maintenance_window(&self, start: u64) -> Result<(), AdminError> {
        let _g = self.lock();
        let mut windows = self.state.maintenance.admin_windows();
        let before = windows.len();
        windows.retain(|w| w.start != start);
        if windows.len() == before {
            return Err(AdminError::UnknownWindow(start));
        }
        self.save_windows(
            "remove-maintenance-window",
            format!("window starting {start} removed"),
            windows,
        )
    }

    fn save_windows(
        &self,
        op: &str,
        detail: String,
        windows: Vec<MaintenanceWindow>,
    ) -> Result<(), AdminError> {
        let json = serde_json::to_string(&windows).map_err(|e| {
            AdminError::Store(StoreError::Write {
                path: self.shared.store.describe().into(),
                message: e.to_string(),
            })
        })?;
        self.persist(
            op,
            vec!["maintenance".into()],
            detail,
            &[Change::Meta(MAINTENANCE_META.into(), json)],
        )?;
        self.state.maintenance.set_admin_windows(windows);
        Ok(())
    }

    /// Records a metadata value, durably (not audited: bookkeeping such as "demo devices
    /// seeded").
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), AdminError> {
        self.shared
            .store
            .apply(&[Change::Meta(key.to_owned(), value.to_owned())], None)?;
        Ok(())
    }

    /// Rebuilds the in-memory state from the store (at start, before any request): every
    /// certificate with its status, Parties, devices, anti-replay marks and the CRLs loaded
    /// (verified against `issuing` when given; a stored CRL that no longer verifies is an
    /// error). Nothing is written.
    pub fn restore(
        &self,
        issuing: Option<&dcc_signing::pki::CaCertificate>,
    ) -> Result<RestoreReport, AdminError> {
        let _g = self.lock();
        let st = &self.state;
        if !(st.certs.is_empty()
            && st.parties.is_empty()
            && st.devices.is_empty()
            && st.replay.is_empty())
        {
            // Restoring over live state would put the durable anti-replay marks back below
            // counters already accepted, and reopen them.
            return Err(AdminError::StateNotEmpty);
        }
        let store = &self.shared.store;
        let snap = store.load()?;
        let bad = |table: &'static str, key: String, message: String| {
            AdminError::Store(StoreError::Record {
                path: store.describe().into(),
                table,
                key,
                message,
            })
        };
        let mut report = RestoreReport {
            meta: snap.meta.clone(),
            ..RestoreReport::default()
        };
        for (id, p) in &snap.parties {
            let party = p
                .to_party()
                .map_err(|m| bad("parties", id.to_string(), m))?;
            self.state.parties.upsert(*id, party);
            report.parties += 1;
        }
        for c in &snap.certs {
            let record = c.record().map_err(|m| bad("certs", c.id.to_string(), m))?;
            let key = self.verifier.prepare(&record.public_key);
            let _ = self.state.certs.insert_with_status(
                record,
                key,
                c.status.to_status(),
                c.pem.clone(),
            );
            report.certs += 1;
        }
        for pem in &snap.crls {
            if let Some(ca) = issuing {
                let crl = Crl::parse_verified(pem.as_bytes(), ca)
                    .map_err(|e| bad("crls", crl_first_line(pem), e.to_string()))?;
                self.note_crl(crl.revoked.iter().copied());
            }
            report.crls += 1;
        }
        for (who, mark) in &snap.replay {
            self.state.replay.restore(*who, *mark);
            report.originators += 1;
        }
        if let Some(json) = snap.meta(MAINTENANCE_META) {
            let windows: Vec<MaintenanceWindow> = serde_json::from_str(json)
                .map_err(|e| bad("meta", MAINTENANCE_META.into(), e.to_string()))?;
            self.state.maintenance.set_admin_windows(windows);
        }
        let mut keys = Vec::new();
        for (k, v) in &snap.meta {
            if let Some(device) = k.strip_prefix(GAINING_META_PREFIX) {
                let parse = |s: &str| {
                    s.parse::<Eui64>()
                        .map_err(|e| bad("meta", k.clone(), e.to_string()))
                };
                self.state.gaining.set(parse(device)?, Some(parse(v)?));
            } else if k.starts_with(KEY_META_PREFIX) {
                let key = serde_json::from_str::<StoredKey>(v)
                    .map_err(|e| e.to_string())
                    .and_then(|s| s.to_key())
                    .map_err(|m| bad("meta", k.clone(), m))?;
                keys.push(key);
            }
        }
        keys.sort_by_key(|k| k.imported_at);
        self.state
            .keys
            .replace(keys.into_iter().map(Arc::new).collect());
        // In batches (the table takes each shard's lock once per batch), inserted on a second
        // thread while this one reads the store: 60 M devices load in half the time on 2 cores.
        let devices = &self.state.devices;
        report.devices = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Eui64, Device)>>(4);
            let (back, spare) = std::sync::mpsc::channel::<Vec<(Eui64, Device)>>();
            scope.spawn(move || {
                for mut batch in rx {
                    devices.upsert_many(&batch);
                    batch.clear();
                    let _ = back.send(batch);
                }
            });
            let mut batch = Vec::with_capacity(RESTORE_BATCH);
            let n = store.for_each_device(&mut |id, d| {
                batch.push((id, d));
                if batch.len() == RESTORE_BATCH {
                    let next = spare
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(RESTORE_BATCH));
                    // The inserter only stops when this sender is dropped.
                    let _ = tx.send(std::mem::replace(&mut batch, next));
                }
            });
            let _ = tx.send(batch);
            n
        })?;
        Ok(report)
    }
}

/// What [`AdminHandle::restore`] found in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Certificates.
    pub certs: usize,
    /// Parties.
    pub parties: usize,
    /// Devices.
    pub devices: u64,
    /// CRLs.
    pub crls: usize,
    /// Originators with an anti-replay mark.
    pub originators: usize,
    /// Metadata.
    pub meta: Vec<(String, String)>,
}

impl RestoreReport {
    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn crl_first_line(pem: &str) -> String {
    pem.lines().nth(1).unwrap_or("").chars().take(24).collect()
}

fn device_subjects(id: Eui64, d: &Device) -> Vec<String> {
    let mut v = vec![id.to_string()];
    v.extend(
        [d.supplier, d.export_supplier, d.network_operator]
            .into_iter()
            .flatten()
            .map(|e| e.to_string()),
    );
    v
}

fn describe_device(d: &Device) -> String {
    let opt = |e: Option<Eui64>| e.map_or_else(|| "-".to_owned(), |e| e.to_string());
    let gno = match d.gno_slot {
        GnoSlot::Gno(g) => format!("GNO {g}"),
        GnoSlot::Acb => "ACB".to_owned(),
    };
    format!(
        "status {:?}, {:?}, supplier {}, export supplier {}, network operator {}, GNO slot {gno}, WAN {}, CoS certificate {}",
        d.status,
        d.payment_mode,
        opt(d.supplier),
        opt(d.export_supplier),
        opt(d.network_operator),
        d.wan.as_str(),
        d.cos.as_str()
    )
}

fn describe_party(p: &Party) -> String {
    let roles: Vec<&str> = UserRole::ALL
        .iter()
        .filter(|r| p.roles.contains(**r))
        .map(|r| r.abbrev())
        .collect();
    format!(
        "roles {}, assurance {}, suspended SEC M8.6 {}",
        roles.join(","),
        assurance_name(p.assurance),
        p.suspended.letters()
    )
}
