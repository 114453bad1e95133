//! [`AdminHandle`]: the one place that changes router state.
//!
//! Revocations, delays, suspensions, CRL loads and device moves all go through here, each an
//! atomic change visible to every request admitted after the call returns. Keeping them in one
//! place is the seam for replication later: a watcher on a replicated store (etcd / NATS KV)
//! will call these same methods on every node.

use std::collections::HashSet;
use std::sync::Arc;

use dcc_signing::verify::Verifier;
use dcc_signing::{CertId, Eui64, Srv};

use crate::clock::Clock;
use crate::policy::RateLimit;
use crate::state::{
    AssuranceStatus, CertRecord, CertStatus, Device, DeviceStatus, Party, PaymentMode,
    RevocationDelay, State, SuspendedRights,
};

/// Why an admin operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No such certificate.
    #[error("unknown certificate {0}")]
    UnknownCertificate(CertId),
    /// A revoked certificate cannot be re-added or delayed.
    #[error("certificate {0} is revoked")]
    AlreadyRevoked(CertId),
    /// A different certificate is already stored under this id.
    #[error("a different certificate is already stored as {0}")]
    Conflict(CertId),
    /// The certificate is under a revocation delay (end it first).
    #[error("certificate {0} is under a revocation delay")]
    RevocationDelayed(CertId),
    /// The certificate is not under a revocation delay.
    #[error("certificate {0} is not under a revocation delay")]
    NotDelayed(CertId),
    /// No such Party.
    #[error("unknown User {0}")]
    UnknownParty(Eui64),
    /// No such device.
    #[error("unknown device {0}")]
    UnknownDevice(Eui64),
    /// A delay with no SRP or no SRV.
    #[error("a revocation delay needs at least one SRP and one SRV")]
    EmptyDelay,
}

/// Changes router state. Cheap to clone; usable from any thread.
#[derive(Clone, Debug)]
pub struct AdminHandle {
    state: Arc<State>,
    verifier: Arc<dyn Verifier>,
    clock: Clock,
}

impl AdminHandle {
    /// A handle over `state`; `verifier` prepares the keys of added certificates.
    pub fn new(state: Arc<State>, verifier: Arc<dyn Verifier>, clock: Clock) -> Self {
        AdminHandle {
            state,
            verifier,
            clock,
        }
    }

    /// The state (read access).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    // ---- certificates ----

    /// Adds a certificate as active, preparing its key for the verifier now (off the hot
    /// path). Adding the same active certificate again is a no-op; a different one under the
    /// same id, a revoked one and a delayed one are refused.
    pub fn add_certificate(&self, record: CertRecord) -> Result<(), AdminError> {
        // One entry per certificate id for its whole life: in-flight requests hold the entry,
        // and the revocation guarantee rests on them seeing the same lock `revoke` takes.
        let id = record.id;
        let key = self.verifier.prepare(&record.public_key);
        let wanted = record.clone();
        match self.state.certs.insert_new(record, key) {
            Ok(()) => Ok(()),
            Err(e) => match e.status() {
                CertStatus::Revoked { .. } => Err(AdminError::AlreadyRevoked(id)),
                // Re-adding must not lift a delay's restrictions.
                CertStatus::Delayed(_) => Err(AdminError::RevocationDelayed(id)),
                _ if *e.record() == wanted => Ok(()),
                _ => Err(AdminError::Conflict(id)),
            },
        }
    }

    /// Revokes a certificate. When this returns, no request signed with it will be dispatched
    /// (in-flight ones included: see [`crate::state::certstore`]).
    pub fn revoke(&self, id: &CertId) -> Result<(), AdminError> {
        let e = self
            .state
            .certs
            .get(id)
            .ok_or(AdminError::UnknownCertificate(*id))?;
        e.set_status(CertStatus::Revoked {
            at: self.clock.now_unix(),
        });
        Ok(())
    }

    /// Loads a CRL: revokes every listed certificate the store knows; returns how many.
    pub fn load_crl(&self, ids: impl IntoIterator<Item = CertId>) -> usize {
        ids.into_iter().filter(|id| self.revoke(id).is_ok()).count()
    }

    /// Delays a certificate's revocation (MP134A): until `until` (Unix seconds), only `srps`
    /// may use it, and only for `srvs` (the safe-mode set).
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
        let e = self
            .state
            .certs
            .get(id)
            .ok_or(AdminError::UnknownCertificate(*id))?;
        if matches!(e.status(), CertStatus::Revoked { .. }) {
            return Err(AdminError::AlreadyRevoked(*id));
        }
        e.set_status(CertStatus::Delayed(RevocationDelay { srps, srvs, until }));
        Ok(())
    }

    /// Ends a revocation delay: the certificate is revoked from now on.
    pub fn end_delay(&self, id: &CertId) -> Result<(), AdminError> {
        let e = self
            .state
            .certs
            .get(id)
            .ok_or(AdminError::UnknownCertificate(*id))?;
        if !matches!(e.status(), CertStatus::Delayed(_)) {
            return Err(AdminError::NotDelayed(*id));
        }
        self.revoke(id)
    }

    // ---- parties ----

    /// Adds or replaces a Party.
    pub fn upsert_party(&self, id: Eui64, party: Party) {
        self.state.parties.upsert(id, party);
    }

    /// Sets a Party's assurance status.
    pub fn set_assurance(&self, id: Eui64, status: AssuranceStatus) -> Result<(), AdminError> {
        self.update_party(id, |p| p.assurance = status)
    }

    /// Suspends rights (adds to those already suspended).
    pub fn suspend_rights(&self, id: Eui64, rights: SuspendedRights) -> Result<(), AdminError> {
        self.update_party(id, |p| p.suspended = p.suspended.union(rights))
    }

    /// Restores rights.
    pub fn restore_rights(&self, id: Eui64, rights: SuspendedRights) -> Result<(), AdminError> {
        self.update_party(id, |p| p.suspended = p.suspended.without(rights))
    }

    /// Sets (or clears) a per-User rate limit replacing the policy's.
    pub fn set_rate_limit(&self, id: Eui64, limit: Option<RateLimit>) -> Result<(), AdminError> {
        self.update_party(id, |p| p.rate_limit = limit)
    }

    fn update_party(&self, id: Eui64, f: impl FnOnce(&mut Party)) -> Result<(), AdminError> {
        self.state
            .parties
            .update(id, f)
            .then_some(())
            .ok_or(AdminError::UnknownParty(id))
    }

    // ---- devices ----

    /// Adds or replaces a device.
    pub fn upsert_device(&self, id: Eui64, device: Device) {
        self.state.devices.upsert(id, device);
    }

    /// Sets a device's payment mode.
    pub fn set_payment_mode(&self, id: Eui64, mode: PaymentMode) -> Result<(), AdminError> {
        self.update_device(id, |d| d.payment_mode = mode)
    }

    /// Registers a device to a new Supplier (Change of Supplier; MP185: after a SoLR event the
    /// failed Supplier's SRP loses the device from this moment, whatever the certificate state).
    pub fn set_registered_supplier(&self, id: Eui64, supplier: Eui64) -> Result<(), AdminError> {
        self.update_device(id, |d| d.supplier = Some(supplier))
    }

    /// Sets a device's status.
    pub fn set_device_status(&self, id: Eui64, status: DeviceStatus) -> Result<(), AdminError> {
        self.update_device(id, |d| d.status = status)
    }

    fn update_device(&self, id: Eui64, f: impl FnOnce(&mut Device)) -> Result<(), AdminError> {
        self.state
            .devices
            .update(id, f)
            .then_some(())
            .ok_or(AdminError::UnknownDevice(id))
    }
}
