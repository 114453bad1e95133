//! Organisation certificates: the signer's key (prepared once, at load) and its state —
//! active, revoked, or revocation delayed (MP134A).
//!
//! # Why each certificate has its own lock
//!
//! The issue's rule is "no request is dispatched after the revocation has returned to the admin
//! caller". Each [`CertEntry`] keeps its status behind a `RwLock`. The commit stage takes the
//! *read* lock, re-evaluates the status, commits the anti-replay counter and hands the request
//! to the dispatcher, all before releasing it ([`CertEntry::with_status`]). A revocation takes
//! the *write* lock to change the status. So every hand-off either completed before the
//! revocation took the lock (and thus before it returned), or starts after it released the lock
//! and sees the new status. Readers share the lock, so workers never wait on each other; only
//! the rare admin write waits for in-flight hand-offs of that one certificate.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use dashmap::DashMap;
use dcc_signing::verify::PreparedKey;
use dcc_signing::{CertId, Eui64, Srv};

use crate::response::ResponseCode;

/// What the router needs to know of an Organisation Certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRecord {
    /// Issuer + serial.
    pub id: CertId,
    /// The User it was issued to (subject `x500UniqueIdentifier`).
    pub owner: Eui64,
    /// The subject public key.
    pub public_key: p256::PublicKey,
    /// Validity start, Unix seconds.
    pub not_before: u64,
    /// Validity end, Unix seconds (inclusive).
    pub not_after: u64,
}

/// A revocation delayed by the SMKI PMA for a failed Supplier (MP134A).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationDelay {
    /// The Shared Resource Providers allowed to send with the certificate.
    pub srps: HashSet<Eui64>,
    /// The SRVs they may send (the safe-mode set).
    pub srvs: HashSet<Srv>,
    /// When the delay ends (Unix seconds); from then on the certificate is revoked.
    pub until: u64,
}

/// A certificate's state in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// In use.
    Active,
    /// Revoked at a time (Unix seconds).
    Revoked {
        /// When.
        at: u64,
    },
    /// Revocation delayed: only the named SRPs, only the safe-mode SRVs, only until the end.
    Delayed(RevocationDelay),
    /// Retired at a time (Unix seconds): its owner rolled over to a new key and the router no
    /// longer accepts this one (refused R2, as an unknown certificate would be).
    Retired {
        /// When.
        at: u64,
    },
}

/// One line for operators (`dcc-router admin status`, logs): the status and, for a delay,
/// its end, SRPs and SRVs in a stable order.
impl std::fmt::Display for CertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertStatus::Active => f.write_str("active"),
            CertStatus::Revoked { at } => write!(f, "revoked at {at}"),
            CertStatus::Retired { at } => write!(f, "retired at {at}"),
            CertStatus::Delayed(d) => {
                let mut srps: Vec<String> = d.srps.iter().map(ToString::to_string).collect();
                srps.sort();
                let mut srvs: Vec<String> = d.srvs.iter().map(ToString::to_string).collect();
                srvs.sort();
                write!(
                    f,
                    "revocation delayed until {} for SRPs [{}], SRVs [{}]",
                    d.until,
                    srps.join(", "),
                    srvs.join(", ")
                )
            }
        }
    }
}

/// How a request may use a certificate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CertUse {
    /// The originator signs with its own certificate.
    Own,
    /// An SRP signs with a failed Supplier's certificate under a revocation delay.
    Delegated {
        /// The certificate's owner, the failed Supplier the SRP acts for.
        supplier: Eui64,
    },
}

/// One certificate in the store.
#[derive(Debug)]
pub struct CertEntry {
    record: CertRecord,
    key: Arc<dyn PreparedKey>,
    status: RwLock<CertStatus>,
    /// The certificate as added from outside (PEM), kept so the store can hold it.
    pem: Option<String>,
}

impl CertEntry {
    /// The record.
    pub fn record(&self) -> &CertRecord {
        &self.record
    }

    /// The certificate's PEM, when it was added from one.
    pub fn pem(&self) -> Option<&str> {
        self.pem.as_deref()
    }

    /// The prepared verification key.
    pub fn key(&self) -> &Arc<dyn PreparedKey> {
        &self.key
    }

    /// A copy of the current status.
    pub fn status(&self) -> CertStatus {
        self.with_status(Clone::clone)
    }

    /// Runs `f` with the status read-locked: a revocation cannot complete while `f` runs.
    /// `f` must not call the admin API (it would wait for itself).
    pub fn with_status<R>(&self, f: impl FnOnce(&CertStatus) -> R) -> R {
        let guard = self.status.read().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// Whether `originator` may use this certificate for `srv` at `now` (Unix seconds).
    pub fn check(&self, originator: Eui64, srv: Srv, now: u64) -> Result<CertUse, ResponseCode> {
        self.with_status(|s| self.evaluate(s, originator, srv, now))
    }

    /// The certificate rules, against a status the caller holds.
    pub fn evaluate(
        &self,
        status: &CertStatus,
        originator: Eui64,
        srv: Srv,
        now: u64,
    ) -> Result<CertUse, ResponseCode> {
        let use_ = match status {
            CertStatus::Revoked { .. } => return Err(ResponseCode::CertificateRevoked),
            CertStatus::Retired { .. } => return Err(ResponseCode::UnknownCertificate),
            CertStatus::Active if self.record.owner == originator => CertUse::Own,
            CertStatus::Active => return Err(ResponseCode::CertificateNotOwned),
            CertStatus::Delayed(d) => {
                // Outside the delay's SRPs, SRVs or time: refused as if revoked — the failed
                // Supplier's own requests included.
                if now >= d.until || !d.srps.contains(&originator) || !d.srvs.contains(&srv) {
                    return Err(ResponseCode::CertificateRevoked);
                }
                CertUse::Delegated {
                    supplier: self.record.owner,
                }
            }
        };
        if now < self.record.not_before || now > self.record.not_after {
            return Err(ResponseCode::CertificateExpired);
        }
        Ok(use_)
    }

    pub(crate) fn set_status(&self, status: CertStatus) {
        *self.status.write().unwrap_or_else(PoisonError::into_inner) = status;
    }
}

/// Certificate id → entry. A few hundred live certificates; reads never block each other.
#[derive(Debug, Default)]
pub struct CertStore {
    map: DashMap<CertId, Arc<CertEntry>>,
}

impl CertStore {
    /// The entry for a certificate.
    pub fn get(&self, id: &CertId) -> Option<Arc<CertEntry>> {
        self.map.get(id).map(|e| Arc::clone(e.value()))
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds a certificate with a status (active when added, or as restored from the store),
    /// unless its id is already stored: then the stored entry is returned and nothing
    /// changes. An entry is never replaced, because in-flight requests hold it (see the
    /// module docs).
    pub(crate) fn insert_with_status(
        &self,
        record: CertRecord,
        key: Arc<dyn PreparedKey>,
        status: CertStatus,
        pem: Option<String>,
    ) -> Result<(), Arc<CertEntry>> {
        match self.map.entry(record.id) {
            dashmap::Entry::Occupied(e) => Err(Arc::clone(e.get())),
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::new(CertEntry {
                    record,
                    key,
                    status: RwLock::new(status),
                    pem,
                }));
                Ok(())
            }
        }
    }
}

impl CertStore {
    /// Every certificate with its current status, sorted by id (for admin status reports; not
    /// for the hot path).
    pub fn list(&self) -> Vec<(CertRecord, CertStatus)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|e| (e.value().record().clone(), e.value().status()))
            .collect();
        v.sort_by_key(|(r, _)| r.id);
        v
    }
}
