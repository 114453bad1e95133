//! The DUIS Service Request matrix as a compact table: which SRVs exist, which are critical or
//! non-device, and so which Command Variants each allows.
//!
//! Why a generated table and not the JSON: the router checks the CV of every request on the
//! decode path, and the vectors folder is not shipped with the binary. The rows were generated
//! from `duis-request-matrix.json` (SmartDCCInnovation/duis-parser); the test
//! `duis_matrix_matches_the_json` in `signing/tests/duis.rs` checks the table against that file
//! whenever the vectors are present, so a drift is caught, not silently carried.
//!
//! The CV rule (what all 297 reference templates do, and DUIS's CV table in the XSD): a
//! critical SRV is sent as CV 4 (to be transformed into a Pre-Command) or 5/6/7 (the signed
//! Pre-Command); a non-device SRV only as CV 8; any other SRV as CV 1, 2 or 3.

use crate::{CommandVariant, Srv};

/// Critical: changes supply or security state; goes through the Transform service.
pub const CRITICAL: u8 = 1;
/// Non-device: answered by the DCC itself (CV 8).
pub const NON_DEVICE: u8 = 2;
/// May be executed on demand.
pub const ON_DEMAND: u8 = 4;
/// May be DCC-scheduled.
pub const DCC_SCHEDULED: u8 = 8;
/// Future-dated with the Device response pattern.
pub const FUTURE_DATED_DEVICE: u8 = 16;
/// Future-dated with the DSP response pattern.
pub const FUTURE_DATED_DSP: u8 = 32;

/// One row of the matrix: an SRV and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrvInfo {
    /// The Service Reference Variant.
    pub srv: Srv,
    /// `CRITICAL | NON_DEVICE | …`.
    pub flags: u8,
}

impl SrvInfo {
    /// Whether the SRV is critical.
    pub const fn is_critical(self) -> bool {
        self.flags & CRITICAL != 0
    }

    /// Whether the SRV is a non-device request.
    pub const fn is_non_device(self) -> bool {
        self.flags & NON_DEVICE != 0
    }

    /// Whether the matrix allows this Command Variant for the SRV.
    pub const fn allows(self, cv: CommandVariant) -> bool {
        let v = cv.get();
        if self.is_non_device() {
            v == 8
        } else if self.is_critical() {
            v >= 4 && v <= 7
        } else {
            v >= 1 && v <= 3
        }
    }
}

/// The matrix row for an SRV, when the SRV is one of DUIS's 129.
pub fn srv_info(srv: Srv) -> Option<SrvInfo> {
    MATRIX
        .binary_search_by(|(s, _)| s.cmp(&srv))
        .ok()
        .and_then(|i| MATRIX.get(i))
        .map(|&(srv, flags)| SrvInfo { srv, flags })
}

/// Every row, in [`Srv`] order.
pub fn rows() -> impl Iterator<Item = SrvInfo> {
    MATRIX.iter().map(|&(srv, flags)| SrvInfo { srv, flags })
}

/// Whether `(major, minor)` is in the DUIS `ServiceReference` enumeration (XSD v5.4: exactly
/// the references of the 129 SRVs).
pub fn is_service_reference(r: (u8, u8)) -> bool {
    MATRIX.iter().any(|(s, _)| s.reference() == r)
}

/// Generated from `duis-request-matrix.json`; see the module docs.
const MATRIX: &[(Srv, u8)] = &[
    (
        Srv::new3(1, 1, 1),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (
        Srv::new3(1, 1, 2),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (
        Srv::new3(1, 2, 1),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (
        Srv::new3(1, 2, 2),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (Srv::new2(1, 5), CRITICAL | ON_DEMAND),
    (Srv::new2(1, 6), CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE),
    (Srv::new2(1, 7), CRITICAL | ON_DEMAND),
    (Srv::new2(2, 1), CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE),
    (Srv::new2(2, 2), ON_DEMAND),
    (Srv::new2(2, 3), CRITICAL | ON_DEMAND),
    (Srv::new2(2, 5), CRITICAL | ON_DEMAND),
    (Srv::new2(3, 1), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(3, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(3, 3), ON_DEMAND),
    (Srv::new2(3, 4), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(3, 5), ON_DEMAND),
    (Srv::new3(4, 1, 1), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 1, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 1, 3), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 1, 4), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(4, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(4, 3), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 4, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 4, 3), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 4, 4), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(4, 4, 5), ON_DEMAND | FUTURE_DATED_DSP),
    (
        Srv::new3(4, 6, 1),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new3(4, 6, 2),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new3(4, 8, 1),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new3(4, 8, 2),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new3(4, 8, 3),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new2(4, 10),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (Srv::new3(4, 11, 1), ON_DEMAND),
    (Srv::new3(4, 11, 2), ON_DEMAND),
    (
        Srv::new3(4, 12, 1),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new3(4, 12, 2),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (Srv::new2(4, 13), ON_DEMAND | FUTURE_DATED_DSP),
    (
        Srv::new2(4, 14),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (
        Srv::new2(4, 15),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (Srv::new2(4, 16), ON_DEMAND | DCC_SCHEDULED),
    (
        Srv::new2(4, 17),
        ON_DEMAND | DCC_SCHEDULED | FUTURE_DATED_DSP,
    ),
    (Srv::new2(4, 18), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(5, 1), NON_DEVICE),
    (Srv::new2(5, 2), NON_DEVICE),
    (Srv::new2(5, 3), NON_DEVICE),
    (Srv::new3(6, 2, 1), ON_DEMAND),
    (Srv::new3(6, 2, 2), ON_DEMAND),
    (Srv::new3(6, 2, 3), ON_DEMAND),
    (Srv::new3(6, 2, 4), ON_DEMAND),
    (Srv::new3(6, 2, 5), ON_DEMAND),
    (Srv::new3(6, 2, 7), ON_DEMAND),
    (Srv::new3(6, 2, 8), ON_DEMAND),
    (Srv::new3(6, 2, 9), ON_DEMAND),
    (Srv::new3(6, 2, 10), ON_DEMAND),
    (
        Srv::new3(6, 4, 1),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (Srv::new3(6, 4, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(6, 5), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(6, 6), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 7), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 8), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 11), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 12), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(6, 13), ON_DEMAND),
    (Srv::new3(6, 14, 1), CRITICAL | ON_DEMAND),
    (
        Srv::new3(6, 14, 2),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (
        Srv::new3(6, 14, 3),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (
        Srv::new3(6, 15, 1),
        CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE,
    ),
    (Srv::new3(6, 15, 2), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 17), CRITICAL | ON_DEMAND),
    (Srv::new3(6, 18, 1), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(6, 18, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(6, 20, 1), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(6, 20, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(6, 21), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(6, 22), ON_DEMAND),
    (
        Srv::new2(6, 23),
        ON_DEMAND | FUTURE_DATED_DEVICE | FUTURE_DATED_DSP,
    ),
    (Srv::new3(6, 24, 1), ON_DEMAND),
    (Srv::new3(6, 24, 2), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 25), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 26), CRITICAL | ON_DEMAND),
    (Srv::new2(6, 27), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(6, 28), ON_DEMAND),
    (Srv::new2(6, 29), ON_DEMAND),
    (Srv::new2(6, 30), ON_DEMAND),
    (Srv::new2(6, 31), ON_DEMAND),
    (Srv::new2(6, 32), ON_DEMAND),
    (Srv::new2(7, 1), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 2), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 3), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 4), ON_DEMAND),
    (Srv::new2(7, 5), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 6), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 7), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(7, 8), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 9), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(7, 10), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(7, 11), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(7, 12), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 13), CRITICAL | ON_DEMAND),
    (Srv::new2(7, 14), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(7, 15), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(7, 16), CRITICAL | ON_DEMAND),
    (Srv::new3(8, 1, 1), CRITICAL | ON_DEMAND),
    (Srv::new2(8, 2), NON_DEVICE),
    (Srv::new2(8, 3), NON_DEVICE),
    (Srv::new2(8, 4), NON_DEVICE),
    (Srv::new2(8, 5), FUTURE_DATED_DSP),
    (Srv::new2(8, 6), NON_DEVICE),
    (Srv::new3(8, 7, 1), CRITICAL | ON_DEMAND),
    (Srv::new3(8, 7, 2), ON_DEMAND),
    (Srv::new3(8, 8, 1), CRITICAL | ON_DEMAND),
    (Srv::new3(8, 8, 2), ON_DEMAND),
    (Srv::new2(8, 9), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(8, 11), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new3(8, 12, 1), ON_DEMAND),
    (Srv::new3(8, 12, 2), ON_DEMAND),
    (Srv::new2(8, 13), NON_DEVICE),
    (Srv::new3(8, 14, 1), NON_DEVICE),
    (Srv::new3(8, 14, 2), NON_DEVICE),
    (Srv::new3(8, 14, 3), NON_DEVICE),
    (Srv::new3(8, 14, 4), NON_DEVICE),
    (Srv::new2(9, 1), ON_DEMAND),
    (Srv::new2(11, 1), NON_DEVICE),
    (Srv::new2(11, 2), ON_DEMAND | FUTURE_DATED_DSP),
    (Srv::new2(11, 3), CRITICAL | ON_DEMAND | FUTURE_DATED_DEVICE),
    (Srv::new2(11, 4), NON_DEVICE),
    (Srv::new2(12, 1), NON_DEVICE),
    (Srv::new2(12, 2), NON_DEVICE),
    (Srv::new2(14, 1), ON_DEMAND | DCC_SCHEDULED),
];
