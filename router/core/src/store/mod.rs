//! Durable state: what must survive a crash, behind the small [`Store`] trait.
//!
//! The hot path never reads the store: requests read the in-memory `dashmap` [`State`](crate::State). The
//! store is the truth at start (`dcc-router serve`'s bootstrap rebuilds the state from it) and
//! the place every change is made durable *before* it is acknowledged:
//!
//! | what | written by | durable before |
//! |---|---|---|
//! | certificates: record, status (active / revoked / delayed with SRPs, SRV set, end / retired), the PEM | [`AdminHandle`](crate::AdminHandle) | the admin answer |
//! | Parties: roles, assurance status, suspended rights, rate-limit override | [`AdminHandle`](crate::AdminHandle) | the admin answer |
//! | devices: status, payment mode, import / export supplier, network operator, GNO slot (MP128B), WAN state (DP094), CoS certificate (TCoS / ECoS) | [`AdminHandle`](crate::AdminHandle), and the pipeline's effects after a 6.15.1 ([`crate::pipeline`]) | the admin answer |
//! | maintenance windows planned over the admin channel (DP092), metadata `maintenance-windows` | [`AdminHandle`](crate::AdminHandle) | the admin answer |
//! | the router's own keys (CoS Party keys, DUIS signing; BEIS 2022 transfer), metadata `router-key/<id>` — see [`crate::state::cos`] on keys at rest | [`AdminHandle`](crate::AdminHandle) | the admin answer |
//! | pending Changes of Supplier (gaining Supplier per device), metadata `cos-gaining/<device>`; the device's move to it after its 6.23 | [`AdminHandle`](crate::AdminHandle), and the pipeline's effects after a counter-signed 6.23 | the admin answer |
//! | loaded CRLs (PEM) | [`AdminHandle`](crate::AdminHandle) | the admin answer |
//! | the audit log (who, when, what, why) | [`AdminHandle`](crate::AdminHandle), in the same transaction as the change | the admin answer |
//! | anti-replay high-water mark per originator | the [`persist`](crate::pipeline::persist) stage (group commit) | the *accepted* answer and the dispatch |
//!
//! # Why the anti-replay state is a high-water mark
//!
//! In memory each originator has a window of 65,472 counters (8 KiB, see
//! [`crate::state::replay`]); writing it per group commit would cost kilobytes per request.
//! The store keeps only the highest counter accepted per originator. After a restart every
//! counter at or below it is refused R7 ([`ReplayWindow::restored`](crate::state::ReplayWindow::restored)).
//! That refuses every envelope answered *accepted* before the crash (each was at or below the
//! durable mark before it was answered), and also the few lower counters that were still in
//! flight, never answered: their senders see an R7 and send again with a new counter, which
//! DUIS asks of them anyway.
//!
//! # Engines
//!
//! [`RedbStore`] (one file, `state.redb`, under the data directory) is the durable engine;
//! [`MemoryStore`] keeps nothing across a restart — for benchmarks, tests and embedders that
//! persist elsewhere — and says so ([`Store::describe`]). Why redb rather than fjall: see
//! [`redb_store`] and `benches/store-engines/README.md` (the side-by-side trial).
//!
//! # A seam for more than one machine
//!
//! Everything the router persists goes through this trait, in two shapes: rare, audited admin
//! changes ([`Store::apply`]) and frequent per-originator marks ([`Store::commit_replay`]).
//! A replicated deployment would keep both shapes and change only where they go:
//!
//! * **Admin changes** are few and must reach every node: an implementation would write them
//!   to an existing replicated store (an etcd transaction, or a FoundationDB transaction with
//!   the audit record in the same commit), answer when that commit is acknowledged by a
//!   quorum, and every node would watch the keyspace and apply what it sees through the same
//!   [`AdminHandle`](crate::AdminHandle) methods it uses today (they separate "make durable"
//!   from "apply to memory").
//! * **Anti-replay marks** are per originator, so they need no cross-node agreement if
//!   requests are partitioned **by originator**: each originator's traffic goes to one node
//!   (the client library or a QUIC-aware balancer hashes the originator EUI-64 onto the live
//!   nodes); that node group-commits the marks of its originators. When an originator moves
//!   (a node fails), the new owner reads the mark from the replicated store before accepting
//!   its first request, exactly as a restart does here. FoundationDB's `max` atomic operation
//!   or an etcd compare-and-swap keep a mark from going backwards.
//!
//! Not implemented here: one process, one file.

mod memory;
pub mod redb_store;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use dcc_signing::{CertId, Eui64, Srv, UserRole};
use serde::{Deserialize, Serialize};

use crate::policy::{RateLimit, RoleSet};
use crate::state::{
    AssuranceStatus, CertRecord, CertStatus, CosCertificate, Device, DeviceStatus, GnoSlot, Party,
    PaymentMode, RevocationDelay, SrpSendsAs, SuspendedRights, WanState,
};

pub use memory::MemoryStore;
pub use redb_store::RedbStore;

/// Why the store refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store file cannot be opened (missing directory, locked by another process, not a
    /// store, corrupted beyond repair).
    #[error("state store {path}: cannot open: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file failed its integrity check.
    #[error("state store {path}: integrity check failed: {message}")]
    Integrity {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A write was not made durable (disk full, I/O error): nothing of it is acknowledged.
    #[error(
        "state store {path}: write failed, not applied (repeating the change is safe): {message}"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Reading failed.
    #[error("state store {path}: read failed: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A record does not decode (written by another version, or damaged).
    #[error("state store {path}: record {key} in {table} does not decode: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The key, printable.
        key: String,
        /// Why.
        message: String,
    },
}

impl StoreError {
    /// A stable code for logs and admin answers.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "store-open",
            StoreError::Integrity { .. } => "store-integrity",
            StoreError::Write { .. } => "store-write",
            StoreError::Read { .. } => "store-read",
            StoreError::Record { .. } => "store-record",
        }
    }
}

/// A certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCert {
    /// Issuer + serial.
    pub id: CertId,
    /// The User it was issued to.
    pub owner: Eui64,
    /// SEC1 uncompressed public key, hex.
    pub public_key: String,
    /// Validity start, Unix seconds.
    pub not_before: u64,
    /// Validity end, Unix seconds.
    pub not_after: u64,
    /// The status.
    pub status: StoredStatus,
    /// The certificate, PEM, when it was added from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
}

/// A certificate status as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StoredStatus {
    /// Active.
    Active,
    /// Revoked at (Unix seconds).
    Revoked {
        /// When.
        at: u64,
    },
    /// Revocation delayed.
    ///
    /// Versions: before issue 13 `until` was always a number and there was no `sends_as`
    /// (those delays named SRPs that sent with their own EUI-64): such records still read,
    /// as `Some(until)` and [`StoredSendsAs::SrpOwnEui`].
    Delayed {
        /// SRPs the Authority directed, sorted (may be empty: none yet).
        srps: Vec<Eui64>,
        /// SRVs, sorted.
        srvs: Vec<Srv>,
        /// End, Unix seconds; `null`: no term.
        until: Option<u64>,
        /// How the directed SRPs send.
        #[serde(default = "StoredSendsAs::before_issue_13")]
        sends_as: StoredSendsAs,
    },
    /// Retired by its owner's key rollover at (Unix seconds).
    Retired {
        /// When.
        at: u64,
    },
}

/// [`SrpSendsAs`] as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StoredSendsAs {
    /// [`SrpSendsAs::FailedSupplier`].
    FailedSupplier,
    /// [`SrpSendsAs::OwnEui`].
    SrpOwnEui,
}

impl StoredSendsAs {
    /// What a delay stored before the field existed meant.
    fn before_issue_13() -> Self {
        StoredSendsAs::SrpOwnEui
    }
}

impl StoredStatus {
    /// The stored form of a status.
    pub fn of(s: &CertStatus) -> Self {
        match s {
            CertStatus::Active => StoredStatus::Active,
            CertStatus::Revoked { at } => StoredStatus::Revoked { at: *at },
            CertStatus::Retired { at } => StoredStatus::Retired { at: *at },
            CertStatus::Delayed(d) => {
                let mut srps: Vec<Eui64> = d.srps.iter().copied().collect();
                srps.sort();
                let mut srvs: Vec<Srv> = d.srvs.iter().copied().collect();
                srvs.sort();
                StoredStatus::Delayed {
                    srps,
                    srvs,
                    until: d.until,
                    sends_as: match d.sends_as {
                        SrpSendsAs::OwnEui => StoredSendsAs::SrpOwnEui,
                        _ => StoredSendsAs::FailedSupplier,
                    },
                }
            }
        }
    }

    /// Back to the in-memory status.
    pub fn to_status(&self) -> CertStatus {
        match self {
            StoredStatus::Active => CertStatus::Active,
            StoredStatus::Revoked { at } => CertStatus::Revoked { at: *at },
            StoredStatus::Retired { at } => CertStatus::Retired { at: *at },
            StoredStatus::Delayed {
                srps,
                srvs,
                until,
                sends_as,
            } => CertStatus::Delayed(RevocationDelay {
                srps: srps.iter().copied().collect::<HashSet<_>>(),
                srvs: srvs.iter().copied().collect::<HashSet<_>>(),
                until: *until,
                sends_as: match sends_as {
                    StoredSendsAs::FailedSupplier => SrpSendsAs::FailedSupplier,
                    StoredSendsAs::SrpOwnEui => SrpSendsAs::OwnEui,
                },
            }),
        }
    }
}

impl StoredCert {
    /// The stored form of a certificate record with its status.
    pub fn new(record: &CertRecord, status: &CertStatus, pem: Option<String>) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        StoredCert {
            id: record.id,
            owner: record.owner,
            public_key: hex::encode(record.public_key.to_encoded_point(false).as_bytes()),
            not_before: record.not_before,
            not_after: record.not_after,
            status: StoredStatus::of(status),
            pem,
        }
    }

    /// The in-memory record, or why the stored key is not a P-256 point.
    pub fn record(&self) -> Result<CertRecord, String> {
        let bytes = hex::decode(&self.public_key).map_err(|e| format!("public key: {e}"))?;
        let public_key = p256::PublicKey::from_sec1_bytes(&bytes)
            .map_err(|_| "public key: not a P-256 point".to_owned())?;
        Ok(CertRecord {
            id: self.id,
            owner: self.owner,
            public_key,
            not_before: self.not_before,
            not_after: self.not_after,
        })
    }
}

/// A Party as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredParty {
    /// User Roles held.
    pub roles: Vec<UserRole>,
    /// Assurance status, kebab-case.
    pub assurance: String,
    /// Suspended rights bits ([`SuspendedRights::bits`]).
    pub suspended: u8,
    /// Rate limit override: per second, burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<(u32, u32)>,
}

impl StoredParty {
    /// The stored form.
    pub fn of(p: &Party) -> Self {
        StoredParty {
            roles: UserRole::ALL
                .iter()
                .copied()
                .filter(|r| p.roles.contains(*r))
                .collect(),
            assurance: assurance_name(p.assurance).to_owned(),
            suspended: p.suspended.bits(),
            rate_limit: p.rate_limit.map(|l| (l.per_second(), l.burst())),
        }
    }

    /// Back to a Party.
    pub fn to_party(&self) -> Result<Party, String> {
        Ok(Party {
            roles: RoleSet::of(&self.roles),
            assurance: parse_assurance(&self.assurance)
                .ok_or_else(|| format!("assurance {:?}", self.assurance))?,
            suspended: SuspendedRights::from_bits(self.suspended),
            rate_limit: match self.rate_limit {
                None => None,
                Some((r, b)) => {
                    Some(RateLimit::new(r, b).ok_or_else(|| format!("rate limit {r}/{b}"))?)
                }
            },
        })
    }
}

/// The kebab-case name of an assurance status.
pub fn assurance_name(a: AssuranceStatus) -> &'static str {
    match a {
        AssuranceStatus::Approved => "approved",
        AssuranceStatus::ApprovedWithConditions => "approved-with-conditions",
        AssuranceStatus::Deferred => "deferred",
        AssuranceStatus::Rejected => "rejected",
    }
}

/// Parses a kebab-case assurance status.
pub fn parse_assurance(s: &str) -> Option<AssuranceStatus> {
    Some(match s {
        "approved" => AssuranceStatus::Approved,
        "approved-with-conditions" => AssuranceStatus::ApprovedWithConditions,
        "deferred" => AssuranceStatus::Deferred,
        "rejected" => AssuranceStatus::Rejected,
        _ => return None,
    })
}

/// Length of a device record written before issue 13 (flags, payment mode, status, three
/// optional EUI-64s): still read, with the GNO slot holding the ACB certificate (MP128B's
/// default).
pub const DEVICE_RECORD_V1_LEN: usize = 3 + 3 * 8;

/// Length of a version-2 device record: the version-1 fields, then the GNO slot (one byte: 0
/// ACB, 1 a GNO) and the GNO's EUI-64 (zero for the ACB). Still read, with the WAN state `ok`
/// (every device was reachable before DP094 was modelled).
pub const DEVICE_RECORD_V2_LEN: usize = DEVICE_RECORD_V1_LEN + 1 + 8;

/// Length of a version-3 device record: the version-2 fields, then the WAN state (one byte: 0
/// ok, 1 poor, 2 none; DP094). Still read, with the CoS certificate TCoS (every device held
/// the TCoS certificate before ECoS was modelled).
pub const DEVICE_RECORD_V3_LEN: usize = DEVICE_RECORD_V2_LEN + 1;

/// Length of a device record: the version-3 fields, then the CoS certificate the device holds
/// (one byte: 0 TCoS, 1 ECoS). The length tells the versions apart.
pub const DEVICE_RECORD_LEN: usize = DEVICE_RECORD_V3_LEN + 1;

/// Encodes a device in its fixed 38-byte form (tens of millions are stored: no JSON).
pub fn encode_device(d: &Device) -> [u8; DEVICE_RECORD_LEN] {
    let mut out = [0u8; DEVICE_RECORD_LEN];
    let mut flags = 0u8;
    for (i, who) in [d.supplier, d.network_operator, d.export_supplier]
        .into_iter()
        .enumerate()
    {
        if let Some(e) = who {
            flags |= 1 << i;
            out[3 + 8 * i..11 + 8 * i].copy_from_slice(&e.to_u64().to_be_bytes());
        }
    }
    out[0] = flags;
    out[1] = match d.payment_mode {
        PaymentMode::Credit => 0,
        PaymentMode::Prepayment => 1,
    };
    out[2] = match d.status {
        DeviceStatus::Commissioned => 0,
        DeviceStatus::Suspended => 1,
        DeviceStatus::Decommissioned => 2,
    };
    if let GnoSlot::Gno(gno) = d.gno_slot {
        out[DEVICE_RECORD_V1_LEN] = 1;
        out[DEVICE_RECORD_V1_LEN + 1..DEVICE_RECORD_V2_LEN]
            .copy_from_slice(&gno.to_u64().to_be_bytes());
    }
    out[DEVICE_RECORD_V2_LEN] = match d.wan {
        WanState::Ok => 0,
        WanState::Poor => 1,
        WanState::None => 2,
    };
    out[DEVICE_RECORD_V3_LEN] = match d.cos {
        CosCertificate::Ecos => 1,
        _ => 0,
    };
    out
}

/// Decodes [`encode_device`]'s form, or the version-1, -2 or -3 form.
pub fn decode_device(b: &[u8]) -> Result<Device, String> {
    let wan = match b.len() {
        DEVICE_RECORD_V1_LEN | DEVICE_RECORD_V2_LEN => WanState::Ok,
        DEVICE_RECORD_V3_LEN | DEVICE_RECORD_LEN => match b[DEVICE_RECORD_V2_LEN] {
            0 => WanState::Ok,
            1 => WanState::Poor,
            2 => WanState::None,
            x => return Err(format!("WAN state {x}")),
        },
        n => {
            return Err(format!(
                "{n} bytes, expected {DEVICE_RECORD_LEN} (or {DEVICE_RECORD_V3_LEN}, {DEVICE_RECORD_V2_LEN} or {DEVICE_RECORD_V1_LEN}, earlier versions)"
            ))
        }
    };
    let cos = match b.len() {
        DEVICE_RECORD_LEN => match b[DEVICE_RECORD_V3_LEN] {
            0 => CosCertificate::Tcos,
            1 => CosCertificate::Ecos,
            x => return Err(format!("CoS certificate {x}")),
        },
        _ => CosCertificate::Tcos,
    };
    let gno_slot = match b.len() {
        DEVICE_RECORD_V1_LEN => GnoSlot::Acb,
        _ => match b[DEVICE_RECORD_V1_LEN] {
            0 => GnoSlot::Acb,
            1 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[DEVICE_RECORD_V1_LEN + 1..DEVICE_RECORD_V2_LEN]);
                GnoSlot::Gno(Eui64::from_u64(u64::from_be_bytes(a)))
            }
            x => return Err(format!("GNO slot {x}")),
        },
    };
    let eui = |i: usize| -> Option<Eui64> {
        if b[0] & (1 << i) == 0 {
            return None;
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[3 + 8 * i..11 + 8 * i]);
        Some(Eui64::from_u64(u64::from_be_bytes(a)))
    };
    Ok(Device {
        supplier: eui(0),
        network_operator: eui(1),
        export_supplier: eui(2),
        payment_mode: match b[1] {
            0 => PaymentMode::Credit,
            1 => PaymentMode::Prepayment,
            x => return Err(format!("payment mode {x}")),
        },
        status: match b[2] {
            0 => DeviceStatus::Commissioned,
            1 => DeviceStatus::Suspended,
            2 => DeviceStatus::Decommissioned,
            x => return Err(format!("device status {x}")),
        },
        gno_slot,
        wan,
        cos,
    })
}

/// One durable change, applied atomically with others in [`Store::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Insert or replace a certificate.
    Cert(StoredCert),
    /// Insert or replace a Party.
    Party(Eui64, StoredParty),
    /// Insert or replace devices.
    Devices(Vec<(Eui64, Device)>),
    /// Record a loaded CRL (key: hex SHA-256 of its PEM).
    Crl {
        /// The key.
        key: String,
        /// The PEM.
        pem: String,
    },
    /// A metadata value.
    Meta(String, String),
    /// Remove a metadata value (absent: nothing to do).
    MetaRemove(String),
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (assigned by the store; 0 before).
    pub seq: u64,
    /// When, Unix seconds.
    pub at: u64,
    /// Who: the admin certificate's User (`admin 02-DC-…`), or the component that acted
    /// (`bootstrap`, `embedding API`).
    pub who: String,
    /// The operation (`revoke`, `delay-revocation`, `device-set`, …).
    pub op: String,
    /// What it touched: certificate ids, Party and device EUI-64s.
    pub subjects: Vec<String>,
    /// What changed, for a person.
    pub detail: String,
    /// Why, as the admin gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which audit entries to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only entries naming this certificate, Party or device (exact subject match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// At most this many, newest first (0: 100).
    #[serde(default)]
    pub limit: usize,
}

impl AuditFilter {
    /// Whether `e` passes.
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.subject
            .as_ref()
            .is_none_or(|s| e.subjects.iter().any(|x| x.eq_ignore_ascii_case(s)))
    }

    /// The limit in force.
    pub fn limit(&self) -> usize {
        if self.limit == 0 {
            100
        } else {
            self.limit
        }
    }
}

/// What the store holds, except devices (streamed: there may be tens of millions).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Certificates.
    pub certs: Vec<StoredCert>,
    /// Parties.
    pub parties: Vec<(Eui64, StoredParty)>,
    /// Loaded CRLs, PEM.
    pub crls: Vec<String>,
    /// Anti-replay high-water marks.
    pub replay: Vec<(Eui64, u64)>,
    /// Metadata.
    pub meta: Vec<(String, String)>,
}

impl Snapshot {
    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where durable state goes. Implementations must make each call durable before returning
/// `Ok` (fsync or a quorum acknowledgement), and apply nothing of a call that fails.
pub trait Store: Send + Sync + fmt::Debug {
    /// One line for the start-up banner and `admin status`.
    fn describe(&self) -> String;

    /// Whether anything survives a restart ([`MemoryStore`] says no).
    fn is_durable(&self) -> bool;

    /// Everything but the devices.
    fn load(&self) -> Result<Snapshot, StoreError>;

    /// Streams every device to `f`; returns how many.
    fn for_each_device(&self, f: &mut dyn FnMut(Eui64, Device)) -> Result<u64, StoreError>;

    /// Applies `changes` and appends `audit` (its `seq` assigned here), atomically and durably.
    fn apply(&self, changes: &[Change], audit: Option<&AuditEntry>) -> Result<(), StoreError>;

    /// Raises originators' anti-replay marks (never lowers one), durably: one fsync for all.
    fn commit_replay(&self, marks: &[(Eui64, u64)]) -> Result<(), StoreError>;

    /// Audit entries, newest first.
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn eui() -> impl Strategy<Value = Option<Eui64>> {
        proptest::option::of(any::<u64>().prop_map(Eui64::from_u64))
    }

    proptest! {
        /// Every device survives its 38-byte form; its first 37 bytes are the version-3
        /// record, which reads back with the TCoS certificate, its first 36 the version-2
        /// record, which reads back with the WAN `ok` too, and its first 27 the version-1
        /// record, which reads back with the ACB in the GNO slot too.
        #[test]
        fn device_records_round_trip(
            supplier in eui(), export in eui(), netop in eui(),
            prepay in any::<bool>(), status in 0u8..3, gno in eui(), wan in 0u8..3,
            ecos in any::<bool>(),
        ) {
            let d = Device {
                supplier,
                export_supplier: export,
                network_operator: netop,
                payment_mode: if prepay { PaymentMode::Prepayment } else { PaymentMode::Credit },
                status: [DeviceStatus::Commissioned, DeviceStatus::Suspended, DeviceStatus::Decommissioned][status as usize],
                gno_slot: gno.map_or(GnoSlot::Acb, GnoSlot::Gno),
                wan: [WanState::Ok, WanState::Poor, WanState::None][wan as usize],
                cos: if ecos { CosCertificate::Ecos } else { CosCertificate::Tcos },
            };
            let bytes = encode_device(&d);
            prop_assert_eq!(decode_device(&bytes).unwrap(), d);
            let tcos = CosCertificate::Tcos;
            let v3 = decode_device(&bytes[..DEVICE_RECORD_V3_LEN]).unwrap();
            prop_assert_eq!(v3, Device { cos: tcos, ..d });
            let v2 = decode_device(&bytes[..DEVICE_RECORD_V2_LEN]).unwrap();
            prop_assert_eq!(v2, Device { wan: WanState::Ok, cos: tcos, ..d });
            let v1 = decode_device(&bytes[..DEVICE_RECORD_V1_LEN]).unwrap();
            prop_assert_eq!(v1, Device { gno_slot: GnoSlot::Acb, wan: WanState::Ok, cos: tcos, ..d });
        }

        /// A damaged record is an error, never a panic.
        #[test]
        fn damaged_device_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_device(&bytes);
        }
    }

    #[test]
    fn statuses_and_parties_round_trip_through_their_stored_form() {
        let delay = CertStatus::Delayed(RevocationDelay {
            srps: [Eui64::from_u64(4), Eui64::from_u64(5)]
                .into_iter()
                .collect(),
            srvs: ["2.2".parse().unwrap(), "1.6".parse().unwrap()]
                .into_iter()
                .collect(),
            until: Some(99),
            sends_as: SrpSendsAs::FailedSupplier,
        });
        let open_ended = CertStatus::Delayed(RevocationDelay {
            srps: HashSet::new(),
            srvs: ["2.2".parse().unwrap()].into_iter().collect(),
            until: None,
            sends_as: SrpSendsAs::OwnEui,
        });
        for s in [
            CertStatus::Active,
            CertStatus::Revoked { at: 7 },
            CertStatus::Retired { at: 8 },
            delay,
            open_ended,
        ] {
            let json = serde_json::to_string(&StoredStatus::of(&s)).unwrap();
            let back: StoredStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_status(), s, "{json}");
        }
        // A delay stored before issue 13: a number for `until`, no `sends_as` (its SRPs sent
        // with their own EUI-64).
        let mut old =
            serde_json::to_value(StoredStatus::of(&CertStatus::Delayed(RevocationDelay {
                srps: [Eui64::from_u64(4)].into_iter().collect(),
                srvs: ["7.3".parse().unwrap()].into_iter().collect(),
                until: Some(1234),
                sends_as: SrpSendsAs::FailedSupplier,
            })))
            .unwrap();
        old.as_object_mut().unwrap().remove("sends_as");
        let CertStatus::Delayed(d) = serde_json::from_value::<StoredStatus>(old)
            .unwrap()
            .to_status()
        else {
            panic!("not a delay")
        };
        assert_eq!((d.until, d.sends_as), (Some(1234), SrpSendsAs::OwnEui));

        let mut p = Party::approved(&[UserRole::ImportSupplier, UserRole::GasSupplier]);
        p.assurance = AssuranceStatus::Deferred;
        p.suspended = SuspendedRights::M8_6_F_ELECTIVE;
        p.rate_limit = RateLimit::new(5, 10);
        assert_eq!(StoredParty::of(&p).to_party().unwrap(), p);
        let bad = StoredParty {
            assurance: "maybe".into(),
            ..StoredParty::of(&p)
        };
        assert!(bad.to_party().is_err());
    }
}
