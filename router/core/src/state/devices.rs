//! Smart-metering devices: registered supplier and network operator, payment mode, status.
//!
//! Sized for the national estate (60 million devices, issue 14.4: at most 40 resident bytes
//! each). A [`Device`] as the pipeline sees it is 40-odd bytes (three optional EUI-64s, the GNO
//! slot and three enums); the table does not store it so. Why each choice:
//!
//! - **Parties by index, not by EUI.** The supplier, export supplier, network operator and GNO
//!   slot name one of a few hundred DCC Users, so a device stores four 14-bit indices into one
//!   shared, append-only table of EUI-64s (up to 16,383 distinct EUIs; index 0 = none / ACB).
//!   Readers decode an index with one atomic load — no lock. A device naming an EUI past the
//!   table's capacity is kept whole in a small overflow map (correct, just not compact).
//! - **Flags packed.** Status, payment mode, WAN state and the CoS certificate take 6 bits; with the indices the
//!   record is one `u64`, and an entry is 16 bytes (the device's EUI-64 and that record).
//! - **Our own open-addressing shards, not `dashmap`.** `dashmap`'s shards are `hashbrown`
//!   tables whose bucket count is a power of two: an entry (here 8 + 40 bytes) plus a control
//!   byte, at a load factor anywhere between 7/16 and 7/8 depending on where the count falls —
//!   measured 91.5 B/device at 10 M (BENCHMARKS.md). Here 256 shards, each a linear-probing
//!   array of 16-byte entries of any length (not a power of two) kept between 53 % and 80 %
//!   full: 20–30 B/device whatever the count, 21 B when pre-sized with
//!   [`Devices::with_capacity`]. Devices are never removed (decommissioning is a status), so
//!   probing needs no tombstones.
//! - **Lock-light reads.** A lookup takes one shard's read lock (cache-line padded, so readers
//!   of different shards do not share a line), probes adjacent entries, and releases it; the
//!   hash is a seeded 64-bit mixer (a few ns, unlike SipHash), seeded per table so the layout
//!   is not predictable from the outside.
//! - **Bulk loads.** `Devices::upsert_many` encodes a batch, sorts it by shard and takes each
//!   shard's lock once, which is what restore and imports use.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// Shards: a power of two, chosen by the hash's top bits.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;
/// A shard grows (by half) once more than 4/5 of its entries are used.
const MAX_LOAD: (usize, usize) = (4, 5);
/// [`Devices::with_capacity`] sizes shards to be 3/4 full at the count given.
const PRESIZED_LOAD: (usize, usize) = (3, 4);
/// Bits of one party index in a record; index 0 means none (the ACB, for the GNO slot).
const INDEX_BITS: u32 = 14;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Most distinct EUI-64s the party table indexes.
pub const MAX_INDEXED_PARTIES: usize = (1 << INDEX_BITS) - 1;

// One device's record: bit 0 set in every stored record (0 marks an empty slot), bits 1–2 the
// status, bit 3 the payment mode, bits 4–5 the WAN state, bit 6 "kept whole in the overflow
// map", bit 7 the CoS certificate (0 TCoS, 1 ECoS), bits 8, 22, 36 and 50 start the supplier, export supplier, network operator and GNO
// slot party indices.
const PRESENT: u64 = 1;
const OVERFLOW: u64 = 1 << 6;
const ECOS: u64 = 1 << 7;
const SUPPLIER_AT: u32 = 8;
const EXPORT_AT: u32 = SUPPLIER_AT + INDEX_BITS;
const NETOP_AT: u32 = EXPORT_AT + INDEX_BITS;
const GNO_AT: u32 = NETOP_AT + INDEX_BITS;

/// Device id → device (see the module documentation for the layout and why).
#[derive(Debug)]
pub struct Devices {
    shards: Box<[Shard]>,
    parties: PartyTable,
    /// Devices naming EUIs past the party table's capacity, kept whole.
    overflow: RwLock<HashMap<Eui64, Device>>,
    len: AtomicUsize,
    seed: u64,
}

impl Default for Devices {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Devices {
    /// A table pre-sized for `n` devices (3/4 full at `n`; it grows past that by itself).
    pub fn with_capacity(n: usize) -> Self {
        let per_shard = n.div_ceil(SHARDS) * PRESIZED_LOAD.1 / PRESIZED_LOAD.0;
        let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
        seed.write_u64(0x0dcc);
        Devices {
            shards: (0..SHARDS)
                .map(|_| Shard::with_capacity(per_shard))
                .collect(),
            parties: PartyTable::new(),
            overflow: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            seed: seed.finish(),
        }
    }

    /// A copy of a device.
    pub fn get(&self, id: Eui64) -> Option<Device> {
        let key = id.to_u64();
        let h = self.hash(key);
        let shard = &self.shards[shard_of(h)];
        // A record marked overflow whose entry is gone was just re-stored compactly: read again.
        for _ in 0..4 {
            let rec = shard.read().get(key, h)?;
            if rec & OVERFLOW == 0 {
                return Some(self.decode(rec));
            }
            if let Some(d) = read(&self.overflow).get(&id) {
                return Some(*d);
            }
        }
        None
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the table holds on the heap (entries, party table, overflow), for reports.
    pub fn heap_bytes(&self) -> usize {
        let entries: usize = self
            .shards
            .iter()
            .map(|s| s.read().entries.capacity() * std::mem::size_of::<[u64; 2]>())
            .sum();
        let overflow = read(&self.overflow).capacity()
            * (std::mem::size_of::<(Eui64, Device)>() + std::mem::size_of::<u64>());
        entries
            + overflow
            + self.parties.heap_bytes()
            + self.shards.len() * std::mem::size_of::<Shard>()
    }

    /// Devices whose records name EUIs past the party table (kept whole, not compact).
    pub fn overflowed(&self) -> usize {
        read(&self.overflow).len()
    }

    pub(crate) fn upsert(&self, id: Eui64, device: Device) {
        self.upsert_many(&[(id, device)]);
    }

    /// Inserts or replaces a batch, taking each shard's lock once.
    pub(crate) fn upsert_many(&self, devices: &[(Eui64, Device)]) {
        let mut cache = PartyCache::default();
        let mut batch: Vec<(u64, u64, u64)> = Vec::with_capacity(devices.len());
        for (id, d) in devices {
            let key = id.to_u64();
            let rec = match self.encode(d, &mut cache) {
                Some(rec) => rec,
                None => {
                    // Whole in the overflow map before any reader can see the marked record.
                    write(&self.overflow).insert(*id, *d);
                    PRESENT | OVERFLOW
                }
            };
            batch.push((self.hash(key), key, rec));
        }
        batch.sort_unstable_by_key(|&(h, _, _)| shard_of(h));
        let mut added = 0;
        let mut compacted = Vec::new();
        for run in batch.chunk_by(|a, b| shard_of(a.0) == shard_of(b.0)) {
            let mut shard = self.shards[shard_of(run[0].0)].write();
            shard.reserve(run.len(), self.seed);
            for &(h, key, rec) in run {
                match shard.insert(key, h, rec) {
                    None => added += 1,
                    Some(old) if old & OVERFLOW != 0 && rec & OVERFLOW == 0 => {
                        compacted.push(Eui64::from_u64(key))
                    }
                    Some(_) => {}
                }
            }
        }
        if !compacted.is_empty() {
            let mut overflow = write(&self.overflow);
            for id in compacted {
                overflow.remove(&id);
            }
        }
        self.len.fetch_add(added, Ordering::Relaxed);
    }

    fn hash(&self, key: u64) -> u64 {
        mix(key ^ self.seed)
    }

    /// The packed record, or `None` when an EUI cannot be indexed (the party table is full).
    fn encode(&self, d: &Device, cache: &mut PartyCache) -> Option<u64> {
        let mut index = |eui: Option<Eui64>| -> Option<u64> {
            match eui {
                None => Some(0),
                Some(e) => cache.index(&self.parties, e).map(u64::from),
            }
        };
        let gno = match d.gno_slot {
            GnoSlot::Acb => None,
            GnoSlot::Gno(e) => Some(e),
        };
        let status = match d.status {
            DeviceStatus::Commissioned => 0,
            DeviceStatus::Suspended => 1,
            DeviceStatus::Decommissioned => 2,
        };
        let payment = match d.payment_mode {
            PaymentMode::Credit => 0,
            PaymentMode::Prepayment => 1,
        };
        let wan = match d.wan {
            WanState::Ok => 0,
            WanState::Poor => 1,
            WanState::None => 2,
        };
        let cos = match d.cos {
            CosCertificate::Tcos => 0,
            CosCertificate::Ecos => ECOS,
        };
        Some(
            PRESENT
                | cos
                | status << 1
                | payment << 3
                | wan << 4
                | index(d.supplier)? << SUPPLIER_AT
                | index(d.export_supplier)? << EXPORT_AT
                | index(d.network_operator)? << NETOP_AT
                | index(gno)? << GNO_AT,
        )
    }

    fn decode(&self, rec: u64) -> Device {
        let eui = |at: u32| self.parties.eui((rec >> at) & INDEX_MASK);
        Device {
            supplier: eui(SUPPLIER_AT),
            export_supplier: eui(EXPORT_AT),
            network_operator: eui(NETOP_AT),
            payment_mode: if rec >> 3 & 1 == 0 {
                PaymentMode::Credit
            } else {
                PaymentMode::Prepayment
            },
            // Only `encode` writes records; 3 never occurs (and would read as out of service).
            status: match rec >> 1 & 3 {
                0 => DeviceStatus::Commissioned,
                1 => DeviceStatus::Suspended,
                _ => DeviceStatus::Decommissioned,
            },
            gno_slot: eui(GNO_AT).map_or(GnoSlot::Acb, GnoSlot::Gno),
            wan: match rec >> 4 & 3 {
                0 => WanState::Ok,
                1 => WanState::Poor,
                _ => WanState::None,
            },
            cos: if rec & ECOS == 0 {
                CosCertificate::Tcos
            } else {
                CosCertificate::Ecos
            },
        }
    }
}

fn shard_of(h: u64) -> usize {
    (h >> (64 - SHARD_BITS)) as usize
}

/// A seeded 64-bit finaliser (splitmix64's): every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// One shard: a linear-probing array of `[device EUI, record]`; record 0 marks a free slot.
/// Padded to two cache lines so readers of neighbouring shards do not contend on one line.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(RwLock<Slots>);

#[derive(Debug, Default)]
struct Slots {
    entries: Vec<[u64; 2]>,
    used: usize,
}

impl Shard {
    fn with_capacity(n: usize) -> Self {
        Shard(RwLock::new(Slots {
            entries: vec![[0; 2]; n],
            used: 0,
        }))
    }

    fn read(&self) -> RwLockReadGuard<'_, Slots> {
        read(&self.0)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Slots> {
        write(&self.0)
    }
}

impl Slots {
    /// The home slot: the hash's bits below the shard bits, scaled to the length (which need
    /// not be a power of two).
    fn home(&self, h: u64) -> usize {
        ((u128::from(h << SHARD_BITS) * self.entries.len() as u128) >> 64) as usize
    }

    /// Where `key` is (`Ok`), or the free slot where it would go (`Err`); the table is never
    /// full (at most [`MAX_LOAD`]) unless it is empty.
    fn find(&self, key: u64, h: u64) -> Result<usize, Option<usize>> {
        let n = self.entries.len();
        if n == 0 {
            return Err(None);
        }
        let mut i = self.home(h);
        loop {
            let [k, rec] = self.entries[i];
            if rec == 0 {
                return Err(Some(i));
            }
            if k == key {
                return Ok(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    fn get(&self, key: u64, h: u64) -> Option<u64> {
        self.find(key, h).ok().map(|i| self.entries[i][1])
    }

    /// Makes room for `more` new entries without passing [`MAX_LOAD`].
    fn reserve(&mut self, more: usize, seed: u64) {
        let need = self.used + more;
        if need * MAX_LOAD.1 <= self.entries.len() * MAX_LOAD.0 {
            return;
        }
        let grown = (self.entries.len() * 3 / 2).max(need * MAX_LOAD.1 / MAX_LOAD.0 + 1);
        let old = std::mem::replace(&mut self.entries, vec![[0; 2]; grown]);
        self.used = 0;
        for [k, rec] in old {
            if rec != 0 {
                self.insert(k, mix(k ^ seed), rec);
            }
        }
    }

    /// Stores `rec` for `key`; the record it replaced, if any. Call [`Slots::reserve`] first.
    fn insert(&mut self, key: u64, h: u64, rec: u64) -> Option<u64> {
        match self.find(key, h) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i][1], rec)),
            Err(Some(i)) => {
                self.entries[i] = [key, rec];
                self.used += 1;
                None
            }
            // Unreachable after `reserve`; kept total: nothing stored, as if new.
            Err(None) => None,
        }
    }
}

/// The EUI-64s devices name, by index: appended under a lock, read lock-free.
#[derive(Debug)]
struct PartyTable {
    euis: Box<[AtomicU64]>,
    index: RwLock<HashMap<u64, u16>>,
}

impl PartyTable {
    fn new() -> Self {
        PartyTable {
            euis: (0..=MAX_INDEXED_PARTIES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            index: RwLock::new(HashMap::new()),
        }
    }

    /// The index of `eui`, added when new; `None` when the table is full.
    fn index(&self, eui: Eui64) -> Option<u16> {
        let v = eui.to_u64();
        if let Some(&i) = read(&self.index).get(&v) {
            return Some(i);
        }
        let mut index = write(&self.index);
        if let Some(&i) = index.get(&v) {
            return Some(i);
        }
        let i = index.len() + 1;
        if i > MAX_INDEXED_PARTIES {
            return None;
        }
        // Published before any record naming it (that record is written under a shard lock
        // taken later, which orders this store before every reader of the record).
        self.euis[i].store(v, Ordering::Release);
        let i = u16::try_from(i).ok()?;
        index.insert(v, i);
        Some(i)
    }

    fn eui(&self, i: u64) -> Option<Eui64> {
        match i {
            0 => None,
            i => self
                .euis
                .get(i as usize)
                .map(|e| Eui64::from_u64(e.load(Ordering::Acquire))),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.euis.len() * 8 + read(&self.index).capacity() * 16
    }
}

/// The last party indices one batch looked up (a batch names few distinct parties).
#[derive(Default)]
struct PartyCache {
    recent: [(u64, u16); 4],
    next: usize,
}

impl PartyCache {
    fn index(&mut self, table: &PartyTable, eui: Eui64) -> Option<u16> {
        let v = eui.to_u64();
        if let Some(&(_, i)) = self.recent.iter().find(|(e, i)| *e == v && *i != 0) {
            return Some(i);
        }
        let i = table.index(eui)?;
        self.recent[self.next] = (v, i);
        self.next = (self.next + 1) % self.recent.len();
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eui(v: u64) -> Eui64 {
        Eui64::from_u64(v)
    }

    fn varied(i: u64) -> Device {
        Device {
            supplier: (!i.is_multiple_of(7)).then(|| eui(0x1000 + i % 5)),
            export_supplier: i.is_multiple_of(3).then(|| eui(0x2000 + i % 2)),
            network_operator: i.is_multiple_of(2).then(|| eui(0x3000 + i % 3)),
            payment_mode: if i.is_multiple_of(4) {
                PaymentMode::Prepayment
            } else {
                PaymentMode::Credit
            },
            status: match i % 3 {
                0 => DeviceStatus::Commissioned,
                1 => DeviceStatus::Suspended,
                _ => DeviceStatus::Decommissioned,
            },
            gno_slot: if i.is_multiple_of(5) {
                GnoSlot::Gno(eui(0x3000 + i % 3))
            } else {
                GnoSlot::Acb
            },
            wan: match i % 3 {
                0 => WanState::Ok,
                1 => WanState::Poor,
                _ => WanState::None,
            },
            cos: if i.is_multiple_of(11) {
                CosCertificate::Ecos
            } else {
                CosCertificate::Tcos
            },
        }
    }

    #[test]
    fn every_field_round_trips_and_replacing_keeps_the_count() {
        let t = Devices::default();
        let all: Vec<_> = (0..20_000u64).map(|i| (eui(i * 7919), varied(i))).collect();
        for chunk in all.chunks(999) {
            t.upsert_many(chunk);
        }
        assert_eq!(t.len(), all.len());
        for (id, d) in &all {
            assert_eq!(t.get(*id), Some(*d));
        }
        assert_eq!(t.get(eui(1)), None);
        // Replacing: the count stays, the new value is read.
        t.upsert(eui(0), varied(1));
        assert_eq!(t.get(eui(0)), Some(varied(1)));
        assert_eq!(t.len(), all.len());
        // The all-zero EUI is a device like any other.
        assert_eq!(
            t.get(eui(0)).map(|d| d.status),
            Some(DeviceStatus::Suspended)
        );
    }

    #[test]
    fn presized_table_stays_compact() {
        let n = 100_000u64;
        let t = Devices::with_capacity(n as usize);
        let all: Vec<_> = (0..n)
            .map(|i| (eui(0x02DC_D000_0000_0000 + i), varied(i)))
            .collect();
        for chunk in all.chunks(10_000) {
            t.upsert_many(chunk);
        }
        let per_device = t.heap_bytes() as f64 / n as f64;
        assert!(per_device <= 30.0, "{per_device} B/device");
        // Growing past the pre-sized count keeps every device.
        let more: Vec<_> = (n..3 * n).map(|i| (eui(i), varied(i))).collect();
        t.upsert_many(&more);
        assert_eq!(t.len(), 3 * n as usize);
        assert!(all
            .iter()
            .chain(&more)
            .all(|(id, d)| t.get(*id) == Some(*d)));
        assert!(t.heap_bytes() as f64 / (3 * n) as f64 <= 32.0);
    }

    #[test]
    fn devices_past_the_party_table_are_kept_whole() {
        let t = Devices::default();
        // Each device names two new EUIs: the table fills at 16,383 and the rest overflow.
        let all: Vec<_> = (0..10_000u64)
            .map(|i| {
                let mut d = Device::new(eui(1_000_000 + i));
                d.network_operator = Some(eui(2_000_000 + i));
                (eui(i), d)
            })
            .collect();
        t.upsert_many(&all);
        assert!(t.overflowed() > 0);
        assert!(all.iter().all(|(id, d)| t.get(*id) == Some(*d)));
        // Re-stored with indexed parties: compact again, the overflow entry dropped.
        let last = all[all.len() - 1].0;
        t.upsert(last, Device::new(eui(1_000_000)));
        assert_eq!(t.get(last), Some(Device::new(eui(1_000_000))));
        assert_eq!(
            t.overflowed(),
            all.len() - 1 - (MAX_INDEXED_PARTIES - 1) / 2
        );
        assert_eq!(t.len(), all.len());
    }

    #[test]
    fn readers_see_every_device_while_a_writer_loads() {
        let t = std::sync::Arc::new(Devices::default());
        t.upsert_many(&[(eui(u64::MAX), varied(3))]);
        let r = std::sync::Arc::clone(&t);
        let reader = std::thread::spawn(move || {
            for _ in 0..50_000 {
                assert_eq!(r.get(eui(u64::MAX)), Some(varied(3)));
            }
        });
        let all: Vec<_> = (0..50_000u64).map(|i| (eui(i), varied(i))).collect();
        for chunk in all.chunks(1_000) {
            t.upsert_many(chunk);
        }
        reader
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        assert_eq!(t.len(), all.len() + 1);
    }
}
