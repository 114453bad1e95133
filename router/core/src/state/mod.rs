//! The router's state, in sharded tables (readers never block each other): certificates
//! ([`certstore`]), Parties ([`parties`]) and per-originator anti-replay windows ([`replay`]) in
//! `dashmap`s, and the devices — tens of millions — in a compact table of their own
//! ([`devices`]: 16 bytes an entry).
//!
//! Everything here is readable by anyone holding the [`State`]; every *change* goes through
//! [`crate::AdminHandle`] (the single place that applies state changes, and so the seam where a
//! replicated store — etcd / NATS KV watches — will feed them in later). The one exception is
//! anti-replay, which the pipeline's commit stage writes.

pub mod certstore;
pub mod cos;
pub mod devices;
pub mod maintenance;
pub mod parties;
pub mod replay;
pub mod transforms;

pub use certstore::{
    CertEntry, CertRecord, CertStatus, CertStore, CertUse, RevocationDelay, SrpSendsAs,
};
pub use cos::{GainingSuppliers, KeyPurpose, RouterKey, RouterKeys};
pub use devices::{CosCertificate, Device, DeviceStatus, Devices, GnoSlot, PaymentMode, WanState};
pub use parties::{AssuranceStatus, Parties, Party, SuspendedRights};
pub use replay::{Replay, ReplayVerdict, ReplayWindow};

/// All router state.
#[derive(Debug, Default)]
pub struct State {
    /// Certificates.
    pub certs: CertStore,
    /// DCC Users.
    pub parties: Parties,
    /// Devices.
    pub devices: Devices,
    /// Anti-replay windows.
    pub replay: Replay,
    /// Planned maintenance windows added over the admin channel (DP092).
    pub maintenance: maintenance::Maintenance,
    /// DUIS transforms (CV 4) waiting for their Signed Pre-Command.
    pub transforms: transforms::Transforms,
    /// Pending Changes of Supplier: device → gaining Supplier (from registration data).
    pub gaining: GainingSuppliers,
    /// The router's own private keys (CoS Party keys, DUIS response signing).
    pub keys: RouterKeys,
}

impl State {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty state with the device table pre-sized for `devices` entries.
    pub fn with_device_capacity(devices: usize) -> Self {
        State {
            devices: Devices::with_capacity(devices),
            ..Self::default()
        }
    }
}
