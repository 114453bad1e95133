//! The demo population of `dcc-router serve` on embedded defaults, as a client needs to know
//! it: which EUI-64s the demo devices have and who the demo admin is. The server's bootstrap
//! creates exactly this population; loadgen and tests address it through these definitions
//! rather than the server's internals.

use dcc_signing::Eui64;

/// The demo admin User of `dcc-sign pki init`.
pub const DEMO_ADMIN: Eui64 = Eui64::from_u64(0x02DC_C000_0000_007F);

/// The name of the demo admin User's directory under `pki/users/`.
pub const DEMO_ADMIN_NAME: &str = "admin";

/// Where demo device EUI-64s start.
pub const DEMO_DEVICE_BASE: u64 = 0x02DC_D000_0000_0000;

/// Demo devices registered at a first start on embedded defaults (`demo_devices`).
pub const DEFAULT_DEMO_DEVICES: u64 = 10_000;

/// The share of demo devices in prepayment mode on embedded defaults (`prepayment_percent`).
pub const DEFAULT_PREPAYMENT_PERCENT: u8 = 30;

/// The EUI-64 of demo device `i`.
pub const fn demo_device(i: u64) -> Eui64 {
    Eui64::from_u64(DEMO_DEVICE_BASE + i)
}

/// Whether demo device `i` has no SM WAN (DP094): a prepayment device (`i mod 100 <
/// prepayment_percent`) in every eleventh block of 100 devices (blocks 10, 21, 32, …), i.e.
/// 1 in 11 ≈ 9 % of the prepayment devices — the share tabasc-dp091-dp095.txt reports for
/// poor-WAN weather ("over 9% (86,000+ messages) would have been entered as a UTRN"). Devices
/// below 1 000 always have WAN, so small demo populations behave as before. A pure function of
/// `i`, so a load generator knows which devices only take local delivery.
pub const fn demo_device_without_wan(i: u64, prepayment_percent: u8) -> bool {
    i % 100 < prepayment_percent as u64 && (i / 100) % 11 == 10
}

/// Up to this many Suppliers (the standard demo has two) devices are dealt round robin; with
/// more — a national population — they follow [`DemoMarket`]'s Zipf shares.
pub const ROUND_ROBIN_SUPPLIERS: usize = 4;

/// Which Supplier each demo device belongs to: the server's bootstrap registers devices by
/// it and loadgen addresses (and weights its traffic by) the same rule.
///
/// Up to [`ROUND_ROBIN_SUPPLIERS`] Suppliers, device *i* belongs to Supplier *i* mod *n*.
/// With more, market shares follow Zipf's law with exponent 1, as a national market does
/// (a few large Suppliers, a long tail of small ones): the Supplier of rank *k* (1-based, in
/// directory-name order) holds a share ∝ 1/*k*, as one contiguous block of device indices,
/// every Supplier at least one device. With 200 Suppliers the largest holds 17 % of the
/// devices, the top 10 hold 50 %, the smallest 0.09 %.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoMarket {
    suppliers: usize,
    devices: u64,
    /// Where each Supplier's block starts; empty for round robin.
    starts: Vec<u64>,
}

impl DemoMarket {
    /// The market for `suppliers` Suppliers and `devices` devices.
    pub fn new(suppliers: usize, devices: u64) -> Self {
        let n = suppliers.max(1);
        let mut starts = Vec::new();
        if n > ROUND_ROBIN_SUPPLIERS && devices >= n as u64 {
            let h: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
            let spare = (devices - n as u64) as f64;
            let sizes: Vec<u64> = (1..=n)
                .map(|k| 1 + (spare / (k as f64 * h)).floor() as u64)
                .collect();
            // Rounding down leaves a few devices over: the largest Supplier takes them.
            let over = devices.saturating_sub(sizes.iter().sum());
            let mut at = 0;
            for (k, size) in sizes.iter().enumerate() {
                starts.push(at);
                at += size + if k == 0 { over } else { 0 };
            }
        }
        DemoMarket {
            suppliers: n,
            devices,
            starts,
        }
    }

    /// Whether devices are dealt round robin (few Suppliers).
    pub fn is_round_robin(&self) -> bool {
        self.starts.is_empty()
    }

    /// The position (in name order) of the Supplier of device `i`.
    pub fn supplier_of(&self, i: u64) -> usize {
        if self.is_round_robin() {
            return (i % self.suppliers as u64) as usize;
        }
        self.starts.partition_point(|&s| s <= i).saturating_sub(1)
    }

    /// A device of Supplier `k` for a random `r`.
    pub fn device_of(&self, k: usize, r: u64) -> u64 {
        let last = self.devices.saturating_sub(1);
        if self.is_round_robin() {
            let n = self.suppliers as u64;
            let per = (self.devices / n).max(1);
            return ((r % per) * n + k as u64).min(last);
        }
        let start = self.starts.get(k).copied().unwrap_or(0);
        let end = self.starts.get(k + 1).copied().unwrap_or(self.devices);
        (start + r % (end - start).max(1)).min(last)
    }

    /// Supplier `k`'s share of the devices (0 to 1).
    pub fn share(&self, k: usize) -> f64 {
        if self.is_round_robin() {
            return 1.0 / self.suppliers as f64;
        }
        let start = self.starts.get(k).copied().unwrap_or(self.devices);
        let end = self.starts.get(k + 1).copied().unwrap_or(self.devices);
        (end - start) as f64 / self.devices.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_national_market_is_zipf_and_every_device_has_one_supplier() {
        let m = DemoMarket::new(200, 1_000_000);
        assert!(!m.is_round_robin());
        assert!((0.16..0.18).contains(&m.share(0)), "{}", m.share(0));
        let top10: f64 = (0..10).map(|k| m.share(k)).sum();
        assert!((0.48..0.52).contains(&top10), "{top10}");
        assert!(m.share(199) > 0.0);
        let total: f64 = (0..200).map(|k| m.share(k)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        for k in [0, 1, 57, 199] {
            for r in [0, 1, 999_999, u64::MAX] {
                let d = m.device_of(k, r);
                assert!(d < 1_000_000);
                assert_eq!(m.supplier_of(d), k);
            }
        }
        assert_eq!(m.supplier_of(0), 0);
        assert_eq!(m.supplier_of(999_999), 199);
        // As few devices as Suppliers: one each.
        let m = DemoMarket::new(10, 10);
        assert_eq!(
            (0..10).map(|i| m.supplier_of(i)).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn few_suppliers_are_dealt_round_robin_as_before() {
        let m = DemoMarket::new(2, 1000);
        assert!(m.is_round_robin());
        for i in 0..1000 {
            assert_eq!(m.supplier_of(i), (i % 2) as usize);
        }
        assert_eq!(m.device_of(1, 7919), (7919 % 500) * 2 + 1);
        assert_eq!(m.share(1), 0.5);
    }
}
