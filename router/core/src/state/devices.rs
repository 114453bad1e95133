//! Smart-metering devices: registered supplier and network operator, payment mode, status.
//!
//! Sized for the national estate (tens of millions of devices): one entry is the 8-byte key
//! plus a [`Device`] of under 40 bytes (no heap: three optional EUI-64s, the GNO slot and four
//! one-byte enums), i.e. roughly 50–100 bytes per device after load factor and growth slack —
//! about 3–6 GB for 60 million devices. Pre-size with [`Devices::with_capacity`].

use dashmap::DashMap;
use dcc_signing::{Eui64, UserRole};

/// Credit or prepayment (the latter puts on-demand requests in lane L1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum PaymentMode {
    /// Credit.
    Credit,
    /// Prepayment.
    Prepayment,
}

/// Whether a device can be commanded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum DeviceStatus {
    /// In service.
    Commissioned,
    /// Suspended (requests refused E5).
    Suspended,
    /// Decommissioned (requests refused E5).
    Decommissioned,
}

/// What the GNO slot of a gas device's Gas Proxy Function holds (MP128B,
/// mp128b-gno-certificates.txt: "where an unrevoked SMKI Organisation Certificate for a GNO that
/// is a DCC User exists, then the Supplier should put it onto the Device Post Commissioning.
/// Where there is no GNO Organisation Certificate available in the SMKI Repository, the
/// Supplier shall leave the ACB Certificate in the Device").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum GnoSlot {
    /// The Access Control Broker's certificate (the default a device leaves the factory with).
    #[default]
    Acb,
    /// This Gas Network Operator's Organisation Certificate.
    Gno(Eui64),
}

/// The device's SM WAN connectivity (DP094, tabasc-dp091-dp095.txt, "Supporting prepayment
/// customers in no SM WAN scenarios": "where SM WAN coverage is poor or non-existent").
///
/// Admission refuses a WAN-only command variant to a device without WAN (E20) and hands a
/// both-ways variant back for local delivery; the simulated WAN makes a poor link slower and
/// lossier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum WanState {
    /// Reachable over the SM WAN.
    #[default]
    Ok,
    /// Reachable, slowly and with losses.
    Poor,
    /// No SM WAN: only local delivery (e.g. over the HAN by a PPMID or a technician).
    None,
}

impl WanState {
    /// The admin channel's and the CSV's spelling: `ok`, `poor`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            WanState::Ok => "ok",
            WanState::Poor => "poor",
            WanState::None => "none",
        }
    }

    /// Parses [`WanState::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(WanState::Ok),
            "poor" => Some(WanState::Poor),
            "none" => Some(WanState::None),
            _ => None,
        }
    }
}

/// Which Change of Supplier certificate the device holds in its CoS trust anchor slot: the
/// transitional one (TCoS) or the enduring one (ECoS). The CoS Party counter-signs SRV 6.23
/// with the key this certificate certifies ([`crate::pipeline::cos`]; domain.md, "The DCC's
/// own keys"; beis-2022-sec-changes-consultation.txt 3.1: "the Private Key that is used to
/// Digitally Sign CoS Commands where the Target Devices hold the TCoS Certificate").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[non_exhaustive]
pub enum CosCertificate {
    /// The Transitional CoS Party's certificate (every device before ECoS migration).
    #[default]
    Tcos,
    /// The Enduring CoS Party's certificate (after migration).
    Ecos,
}

impl CosCertificate {
    /// The admin channel's spelling: `tcos`, `ecos`.
    pub fn as_str(self) -> &'static str {
        match self {
            CosCertificate::Tcos => "tcos",
            CosCertificate::Ecos => "ecos",
        }
    }

    /// Parses [`CosCertificate::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcos" => Some(CosCertificate::Tcos),
            "ecos" => Some(CosCertificate::Ecos),
            _ => None,
        }
    }
}

/// One device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Device {
    /// The registered Supplier (for IS, ES and GS requests).
    pub supplier: Option<Eui64>,
    /// The registered export Supplier (for ES requests), where the device has an export
    /// MPAN registered to a different Supplier; `None`: the import Supplier answers for it.
    pub export_supplier: Option<Eui64>,
    /// The registered Network Operator (for ED and GT requests).
    pub network_operator: Option<Eui64>,
    /// Payment mode.
    pub payment_mode: PaymentMode,
    /// Status.
    pub status: DeviceStatus,
    /// The GNO slot (gas devices; Gas Transporter requests need it to hold the sender's
    /// certificate).
    pub gno_slot: GnoSlot,
    /// SM WAN connectivity (DP094).
    pub wan: WanState,
    /// The CoS certificate the device holds (TCoS or ECoS): which CoS Party key counter-signs
    /// its SRV 6.23.
    pub cos: CosCertificate,
}

impl Device {
    /// A commissioned credit-mode device registered to `supplier`.
    pub fn new(supplier: Eui64) -> Self {
        Device {
            supplier: Some(supplier),
            export_supplier: None,
            network_operator: None,
            payment_mode: PaymentMode::Credit,
            status: DeviceStatus::Commissioned,
            gno_slot: GnoSlot::Acb,
            wan: WanState::Ok,
            cos: CosCertificate::Tcos,
        }
    }

    /// Why a Gas Network Operator's request (Gas Transporter role) cannot reach this device:
    /// MP128B, "Once a Network Operator Certificate is placed on a Device, it can only be
    /// changed by the Network Operator for the given Certificate and only if the Network
    /// Operator is a DCC User" — the GNO reaches the device only when the slot holds its own
    /// certificate. `None`: it may.
    pub fn gno_refusal(&self, gno: Eui64) -> Option<&'static str> {
        match self.gno_slot {
            GnoSlot::Gno(holder) if holder == gno => None,
            GnoSlot::Gno(_) => Some("gno-slot-holds-another-gno"),
            GnoSlot::Acb => Some("gno-slot-holds-acb"),
        }
    }

    /// Whether `user` sending in `role` is registered for this device.
    ///
    /// Supplier roles need the registered supplier, network-operator roles the registered
    /// network operator. Other Users and Registered Supplier Agents are not bound to a device
    /// here (their entitlement rests on consent or agency the router does not hold).
    pub fn authorises(&self, role: UserRole, user: Eui64) -> bool {
        if role == UserRole::ExportSupplier && self.export_supplier.is_some() {
            self.export_supplier == Some(user)
        } else if role.is_supplier() {
            self.supplier == Some(user)
        } else if role.is_network_operator() {
            self.network_operator == Some(user)
        } else {
            true
        }
    }
}

/// Device id → device.
#[derive(Debug, Default)]
pub struct Devices {
    map: DashMap<Eui64, Device>,
}

impl Devices {
    /// A table pre-sized for `n` devices.
    pub fn with_capacity(n: usize) -> Self {
        Devices {
            map: DashMap::with_capacity(n),
        }
    }

    /// A copy of a device.
    pub fn get(&self, id: Eui64) -> Option<Device> {
        self.map.get(&id).map(|d| *d)
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn upsert(&self, id: Eui64, device: Device) {
        self.map.insert(id, device);
    }
}
