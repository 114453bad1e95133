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
