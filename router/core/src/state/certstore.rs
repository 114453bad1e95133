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
///
/// Two decisions by two actors (mp134a-solr-revocation-delay.txt, "Once the SMKI PMA has
/// determined whether to delay the revocation of the SMKI Certificates it must inform the
/// Authority. The Authority can then direct an SRP ..."): the PMA's delay sets the SRV set and
/// the end; the Authority's direction sets the SRPs. Until an SRP is directed nothing signed
/// with the certificate is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationDelay {
    /// The Shared Resource Providers the Authority directed (empty: none yet).
    pub srps: HashSet<Eui64>,
    /// The SRVs they may send (the safe-mode set).
    pub srvs: HashSet<Srv>,
    /// When the delay ends (Unix seconds); from then on the certificate is revoked, and the
    /// delay cannot be revived. `None`: no term — "the seed sets no term" (the SoLR reports to
    /// the PMA weekly and the PMA ends it).
    pub until: Option<u64>,
    /// How a directed SRP sends.
    pub sends_as: SrpSendsAs,
}

impl RevocationDelay {
    /// Whether the delay is still running at `now` (Unix seconds). A delay past its end is a
    /// revocation.
    pub fn running(&self, now: u64) -> bool {
        self.until.is_none_or(|end| now < end)
    }
}

/// How an SRP directed under a revocation delay sends the failed Supplier's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SrpSendsAs {
    /// MP134A as written: the SRP "has access to the failed Supplier's SMKI Certificates" and
    /// sends "using the failed Supplier's SMKI certificates", with no DCC System change — so
    /// the request is signed with the failed Supplier's key and *originated as the failed
    /// Supplier*; what shows it is the SRP is the connection it arrives on, whose TLS identity
    /// must be a directed SRP. The failed Supplier's own connection is refused.
    #[default]
    FailedSupplier,
    /// The variant the router modelled before issue 13 (kept as an option): the Request ID
    /// names the SRP's own EUI-64 as originator, the signature is still the failed Supplier's.
    /// Needs a change to the DCC's originator check that MP134A does not make.
    OwnEui,
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
                    "revocation delayed {} for SRPs [{}] sending {}, SRVs [{}]",
                    d.until
                        .map_or_else(|| "with no end".to_owned(), |u| format!("until {u}")),
                    srps.join(", "),
                    match d.sends_as {
                        SrpSendsAs::OwnEui => "with their own EUI-64",
                        SrpSendsAs::FailedSupplier => "as the failed Supplier",
                    },
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

impl CertStatus {
    /// Whether a connection authenticated as `connection` may have a request originated by
    /// `originator`, signed with a certificate owned by `owner` in this status, judged on the
    /// certificate although `connection != originator`: MP134A as written, a directed SRP
    /// sending as the failed Supplier. Admission's check 0 asks this; check 6 then applies the
    /// delay's SRV set and end. A revoked certificate's owner's requests pass too, so that
    /// check 6 refuses them as revoked (R3): once the PMA ends a delay the SRP's traffic is
    /// answered "revoked", not "wrong connection", and a revoked certificate serves nobody.
    pub fn lets_connection_send_for(
        &self,
        connection: Eui64,
        originator: Eui64,
        owner: Eui64,
    ) -> bool {
        originator == owner
            && match self {
                CertStatus::Delayed(d) => {
                    d.sends_as == SrpSendsAs::FailedSupplier && d.srps.contains(&connection)
                }
                CertStatus::Revoked { .. } => true,
                _ => false,
            }
    }
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

    /// Whether `originator` may use this certificate for `srv` at `now` (Unix seconds), the
    /// request having arrived over a connection authenticated as `connection` (`None`: the
    /// embedding program submitted it, and no connection can show an SRP).
    pub fn check(
        &self,
        originator: Eui64,
        connection: Option<Eui64>,
        srv: Srv,
        now: u64,
    ) -> Result<CertUse, ResponseCode> {
        self.with_status(|s| self.evaluate(s, originator, connection, srv, now))
    }

    /// The certificate rules, against a status the caller holds.
    pub fn evaluate(
        &self,
        status: &CertStatus,
        originator: Eui64,
        connection: Option<Eui64>,
        srv: Srv,
        now: u64,
    ) -> Result<CertUse, ResponseCode> {
        let owner = self.record.owner;
        let use_ = match status {
            CertStatus::Revoked { .. } => return Err(ResponseCode::CertificateRevoked),
            CertStatus::Retired { .. } => return Err(ResponseCode::UnknownCertificate),
            CertStatus::Active if owner == originator => CertUse::Own,
            CertStatus::Active => return Err(ResponseCode::CertificateNotOwned),
            CertStatus::Delayed(d) => {
                // Outside the delay's SRPs, SRVs or time: refused as if revoked — the failed
                // Supplier's own requests included (MP134A: only a directed SRP sends, only
                // the "limited communications").
                let srp = match d.sends_as {
                    // Originated as the failed Supplier, over a directed SRP's connection.
                    SrpSendsAs::FailedSupplier => connection
                        .filter(|c| originator == owner && *c != owner && d.srps.contains(c)),
                    // The variant: the SRP's own EUI-64 as originator (and, over a
                    // connection, that connection's).
                    SrpSendsAs::OwnEui => Some(originator)
                        .filter(|o| d.srps.contains(o) && connection.is_none_or(|c| c == *o)),
                };
                if srp.is_none() || !d.running(now) || !d.srvs.contains(&srv) {
                    return Err(ResponseCode::CertificateRevoked);
                }
                CertUse::Delegated { supplier: owner }
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
    /// Serial number → the ids with that serial: DUIS names its signer by `X509IssuerSerial`
    /// (an issuer *string* and a decimal serial), the store by issuer-Name hash and serial; the
    /// serial, unique under one issuing CA, is the bridge (see [`CertStore::by_serial`]).
    serials: DashMap<Vec<u8>, Vec<CertId>>,
}

impl CertStore {
    /// The entry for a certificate.
    pub fn get(&self, id: &CertId) -> Option<Arc<CertEntry>> {
        self.map.get(id).map(|e| Arc::clone(e.value()))
    }

    /// The one certificate with this serial number (big-endian magnitude, no leading zeros),
    /// as XML-DSig's `X509SerialNumber` names it. `Err(n)` when `n` ≠ 1 certificates have it:
    /// none, or — several issuers having used the same serial — ambiguous, which the router
    /// refuses rather than guess (the SMKI has one Organisation issuing CA, so it does not
    /// arise there).
    pub fn by_serial(&self, serial: &[u8]) -> Result<CertId, usize> {
        match self.serials.get(serial).as_deref().map(Vec::as_slice) {
            Some([one]) => Ok(*one),
            Some(many) => Err(many.len()),
            None => Err(0),
        }
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
                self.serials
                    .entry(record.id.serial().to_vec())
                    .or_default()
                    .push(record.id);
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
