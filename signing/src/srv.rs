//! Service Reference Variants, command variants and execution kinds.

use std::fmt;
use std::str::FromStr;

/// A Service Reference Variant such as `2.2` (Top Up Device) or `1.1.1`.
///
/// Two or three numeric components, each 1..=255; stored as three bytes with a trailing zero
/// for a two-component SRV, which is also its wire form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Srv([u8; 3]);

impl Srv {
    /// Builds an SRV from its wire bytes, checking the form.
    pub const fn from_bytes(b: [u8; 3]) -> Option<Self> {
        if b[0] == 0 || b[1] == 0 {
            None
        } else {
            Some(Srv(b))
        }
    }

    /// A two-component SRV (`major.minor`). Panics in const context on zero components, so
    /// use it for literals only.
    pub const fn new2(major: u8, minor: u8) -> Self {
        assert!(major != 0 && minor != 0);
        Srv([major, minor, 0])
    }

    /// A three-component SRV (`major.minor.variant`), for literals.
    pub const fn new3(major: u8, minor: u8, variant: u8) -> Self {
        assert!(major != 0 && minor != 0 && variant != 0);
        Srv([major, minor, variant])
    }

    /// The wire bytes.
    pub const fn to_bytes(self) -> [u8; 3] {
        self.0
    }

    /// The Service Reference (the SRV without its variant component): `1.1` for `1.1.1`.
    pub const fn reference(self) -> (u8, u8) {
        (self.0[0], self.0[1])
    }
}

impl fmt::Display for Srv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0[2] == 0 {
            write!(f, "{}.{}", self.0[0], self.0[1])
        } else {
            write!(f, "{}.{}.{}", self.0[0], self.0[1], self.0[2])
        }
    }
}

impl fmt::Debug for Srv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Srv({self})")
    }
}

/// Why a string is not an SRV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Service Reference Variant: expected 2 or 3 dot-separated numbers 1..=255, e.g. 2.2 or 1.1.1")]
pub struct SrvParseError(pub String);

impl FromStr for Srv {
    type Err = SrvParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SrvParseError(s.chars().take(40).collect());
        let mut b = [0u8; 3];
        let mut n = 0;
        for part in s.trim().split('.') {
            if n == 3
                || part.is_empty()
                || part.len() > 3
                || !part.bytes().all(|c| c.is_ascii_digit())
            {
                return Err(err());
            }
            b[n] = part.parse::<u8>().map_err(|_| err())?;
            if b[n] == 0 {
                return Err(err());
            }
            n += 1;
        }
        if n < 2 {
            return Err(err());
        }
        Ok(Srv(b))
    }
}

impl serde::Serialize for Srv {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Srv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A DUIS Command Variant, 1..=8.
///
/// 1 non-critical via WAN, 2 non-critical for local delivery, 3 both; 4 critical request (DCC
/// returns a Pre-Command); 5/6/7 the signed Pre-Command via WAN / local / both; 8 non-device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct CommandVariant(u8);

impl CommandVariant {
    /// CV 1: non-critical, delivered over the SM WAN.
    pub const NON_CRITICAL_WAN: Self = CommandVariant(1);
    /// CV 4: a critical request; the DCC answers with a Pre-Command.
    pub const CRITICAL_REQUEST: Self = CommandVariant(4);
    /// CV 5: a signed Pre-Command via the SM WAN.
    pub const SIGNED_PRE_COMMAND_WAN: Self = CommandVariant(5);
    /// CV 8: a non-device request.
    pub const NON_DEVICE: Self = CommandVariant(8);

    /// The variant for a number, if it is 1..=8.
    pub const fn new(v: u8) -> Option<Self> {
        if v >= 1 && v <= 8 {
            Some(CommandVariant(v))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for CommandVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> serde::Deserialize<'de> for CommandVariant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u8::deserialize(d)?;
        CommandVariant::new(v)
            .ok_or_else(|| serde::de::Error::custom(format!("command variant {v} is not 1..=8")))
    }
}

/// When the request is to be executed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExecutionKind {
    /// Now.
    OnDemand,
    /// Once, at the envelope's `execute_at` time.
    FutureDated,
    /// Repeatedly, on a DCC schedule starting at `execute_at`.
    DccScheduled,
}

impl ExecutionKind {
    /// The wire code.
    pub const fn code(self) -> u8 {
        match self {
            ExecutionKind::OnDemand => 0,
            ExecutionKind::FutureDated => 1,
            ExecutionKind::DccScheduled => 2,
        }
    }

    /// The kind for a wire code.
    pub const fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(ExecutionKind::OnDemand),
            1 => Some(ExecutionKind::FutureDated),
            2 => Some(ExecutionKind::DccScheduled),
            _ => None,
        }
    }
}

impl fmt::Display for ExecutionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutionKind::OnDemand => "on-demand",
            ExecutionKind::FutureDated => "future-dated",
            ExecutionKind::DccScheduled => "dcc-scheduled",
        })
    }
}

impl FromStr for ExecutionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "on-demand" => Ok(ExecutionKind::OnDemand),
            "future-dated" => Ok(ExecutionKind::FutureDated),
            "dcc-scheduled" | "scheduled" => Ok(ExecutionKind::DccScheduled),
            other => Err(format!(
                "unknown execution kind {other:?}: expected on-demand, future-dated or dcc-scheduled"
            )),
        }
    }
}

/// The Service Reference Variants of the DUIS request matrix, with their DUIS names, in
/// [`Srv`] order: 129 SRVs.
///
/// The router's default policy (`router/core/src/policy/default-policy.toml`) was generated from the
/// same matrix and a test checks that the two agree. The router's catalogue stays policy (a
/// deployment may edit it); this list is what `dcc-sign sign` checks an SRV against so that a
/// mistyped SRV is caught before a request is signed, not when the router refuses it.
pub const DUIS_SRVS: &[(Srv, &str)] = &[
    (Srv::new3(1, 1, 1), "Update Import Tariff (Primary Element)"),
    (
        Srv::new3(1, 1, 2),
        "Update Import Tariff (Secondary Element)",
    ),
    (Srv::new3(1, 2, 1), "Update Price (Primary Element)"),
    (Srv::new3(1, 2, 2), "Update Price (Secondary Element)"),
    (Srv::new2(1, 5), "Update Meter Balance"),
    (Srv::new2(1, 6), "Update Payment Mode"),
    (Srv::new2(1, 7), "Reset Tariff Block Counter Matrix"),
    (Srv::new2(2, 1), "Update Prepay Configuration"),
    (Srv::new2(2, 2), "Top Up Device"),
    (Srv::new2(2, 3), "Update Debt"),
    (Srv::new2(2, 5), "Activate Emergency Credit"),
    (Srv::new2(3, 1), "Display Message"),
    (Srv::new2(3, 2), "Restrict Access For Change Of Tenancy"),
    (Srv::new2(3, 3), "Clear Event Log"),
    (Srv::new2(3, 4), "Update Supplier Name"),
    (Srv::new2(3, 5), "Disable Privacy PIN"),
    (Srv::new3(4, 1, 1), "Read Instantaneous Import Registers"),
    (Srv::new3(4, 1, 2), "Read Instantaneous Import TOU Matrices"),
    (
        Srv::new3(4, 1, 3),
        "Read Instantaneous Import TOU With Blocks Matrices",
    ),
    (
        Srv::new3(4, 1, 4),
        "Read Instantaneous Import Block Counters",
    ),
    (Srv::new2(4, 2), "Read Instantaneous Export Registers"),
    (Srv::new2(4, 3), "Read Instantaneous Prepay Values"),
    (
        Srv::new3(4, 4, 2),
        "Retrieve Change Of Mode / Tariff Triggered Billing Data Log",
    ),
    (
        Srv::new3(4, 4, 3),
        "Retrieve Billing Calendar Triggered Billing Data Log",
    ),
    (
        Srv::new3(4, 4, 4),
        "Retrieve Billing Data Log (Payment Based Debt Payments)",
    ),
    (
        Srv::new3(4, 4, 5),
        "Retrieve Billing Data Log (Prepayment Credits)",
    ),
    (Srv::new3(4, 6, 1), "Retrieve Import Daily Read Log"),
    (Srv::new3(4, 6, 2), "Retrieve Export Daily Read Log"),
    (Srv::new3(4, 8, 1), "Read Active Import Profile Data"),
    (Srv::new3(4, 8, 2), "Read Reactive Import Profile Data"),
    (Srv::new3(4, 8, 3), "Read Export Profile Data"),
    (Srv::new2(4, 10), "Read Network Data"),
    (Srv::new3(4, 11, 1), "Read Tariff (Primary Element)"),
    (Srv::new3(4, 11, 2), "Read Tariff (Secondary Element)"),
    (Srv::new3(4, 12, 1), "Read Maximum Demand Import Registers"),
    (Srv::new3(4, 12, 2), "Read Maximum Demand Export Registers"),
    (Srv::new2(4, 13), "Read Prepayment Configuration"),
    (Srv::new2(4, 14), "Read Prepayment Daily Read Log"),
    (Srv::new2(4, 15), "Read Load Limit Data"),
    (Srv::new2(4, 16), "Read Active Power Import"),
    (Srv::new2(4, 17), "Retrieve Daily Consumption Log"),
    (Srv::new2(4, 18), "Read Meter Balance"),
    (Srv::new2(5, 1), "Create Schedule"),
    (Srv::new2(5, 2), "Read Schedule"),
    (Srv::new2(5, 3), "Delete Schedule"),
    (Srv::new3(6, 2, 1), "Read Device Configuration (Voltage)"),
    (
        Srv::new3(6, 2, 2),
        "Read Device Configuration (Randomisation)",
    ),
    (
        Srv::new3(6, 2, 3),
        "Read Device Configuration (Billing Calendar)",
    ),
    (
        Srv::new3(6, 2, 4),
        "Read Device Configuration (Identity Exc MPxN)",
    ),
    (
        Srv::new3(6, 2, 5),
        "Read Device Configuration (Instantaneous Power Thresholds)",
    ),
    (Srv::new3(6, 2, 7), "Read Device Configuration (MPxN)"),
    (Srv::new3(6, 2, 8), "Read Device Configuration (Gas)"),
    (
        Srv::new3(6, 2, 9),
        "Read Device Configuration (Payment Mode)",
    ),
    (
        Srv::new3(6, 2, 10),
        "Read Device Configuration (Event and Alert Behaviours)",
    ),
    (
        Srv::new3(6, 4, 1),
        "Update Device Configuration (Load Limiting General Settings)",
    ),
    (
        Srv::new3(6, 4, 2),
        "Update Device Configuration (Load Limiting Counter Reset)",
    ),
    (Srv::new2(6, 5), "Update Device Configuration (Voltage)"),
    (
        Srv::new2(6, 6),
        "Update Device Configuration (Gas Conversion)",
    ),
    (Srv::new2(6, 7), "Update Device Configuration (Gas Flow)"),
    (
        Srv::new2(6, 8),
        "Update Device Configuration (Billing Calendar)",
    ),
    (Srv::new2(6, 11), "Synchronise Clock"),
    (
        Srv::new2(6, 12),
        "Update Device Configuration (Instantaneous Power Threshold)",
    ),
    (Srv::new2(6, 13), "Read Event Or Security Log"),
    (
        Srv::new3(6, 14, 1),
        "Update Device Configuration (Auxiliary Load Control Description)",
    ),
    (
        Srv::new3(6, 14, 2),
        "Update Device Configuration (Auxiliary Load Control Scheduler)",
    ),
    (
        Srv::new3(6, 14, 3),
        "Update Device Configuration (Auxiliary Controller Scheduler)",
    ),
    (Srv::new3(6, 15, 1), "Update Security Credentials (KRP)"),
    (Srv::new3(6, 15, 2), "Update Security Credentials (Device)"),
    (Srv::new2(6, 17), "Issue Security Credentials"),
    (
        Srv::new3(6, 18, 1),
        "Set Maximum Demand Configurable Time Period",
    ),
    (Srv::new3(6, 18, 2), "Reset Maximum Demand Registers"),
    (
        Srv::new3(6, 20, 1),
        "Set Device Configuration (Import MPxN)",
    ),
    (
        Srv::new3(6, 20, 2),
        "Set Device Configuration (Export MPAN)",
    ),
    (
        Srv::new2(6, 21),
        "Request Handover Of DCC Controlled Device",
    ),
    (Srv::new2(6, 22), "Configure Alert Behaviour"),
    (Srv::new2(6, 23), "Update Security Credentials (CoS)"),
    (
        Srv::new3(6, 24, 1),
        "Retrieve Device Security Credentials (KRP)",
    ),
    (
        Srv::new3(6, 24, 2),
        "Retrieve Device Security Credentials (Device)",
    ),
    (Srv::new2(6, 25), "Set Electricity Supply Tamper State"),
    (
        Srv::new2(6, 26),
        "Update Device Configuration (daily resetting of Tariff Block Counter Matrix)",
    ),
    (
        Srv::new2(6, 27),
        "Update Device Configuration (RMS Voltage Counter Reset)",
    ),
    (Srv::new2(6, 28), "Set CHF Sub GHz Configuration"),
    (Srv::new2(6, 29), "Request CHF Sub GHz Channel Scan"),
    (Srv::new2(6, 30), "Read CHF Sub GHz Configuration"),
    (Srv::new2(6, 31), "Read CHF Sub GHz Channel"),
    (Srv::new2(6, 32), "Read CHF Sub GHz Channel Log"),
    (Srv::new2(7, 1), "Enable Supply"),
    (Srv::new2(7, 2), "Disable Supply"),
    (Srv::new2(7, 3), "Arm Supply"),
    (Srv::new2(7, 4), "Read Supply Status"),
    (Srv::new2(7, 5), "Activate Auxiliary Load"),
    (Srv::new2(7, 6), "Deactivate Auxiliary Load"),
    (Srv::new2(7, 7), "Read Auxiliary Load Switch Data"),
    (Srv::new2(7, 8), "Reset Auxiliary Load"),
    (Srv::new2(7, 9), "Add Auxiliary Load To Boost Button"),
    (Srv::new2(7, 10), "Remove Auxiliary Load From Boost Button"),
    (Srv::new2(7, 11), "Read Boost Button Details"),
    (Srv::new2(7, 12), "Set Randomised Offset Limit"),
    (Srv::new2(7, 13), "Set Auxiliary Controller State"),
    (
        Srv::new2(7, 14),
        "Read Auxiliary Controller Configuration Data",
    ),
    (
        Srv::new2(7, 15),
        "Read Auxiliary Controller Operational Data",
    ),
    (Srv::new2(7, 16), "Limit APC Level"),
    (Srv::new3(8, 1, 1), "Commission Device"),
    (
        Srv::new2(8, 2),
        "Read Inventory (Current and Future Suppliers may use this Service Request)",
    ),
    (Srv::new2(8, 3), "Decommission Device"),
    (Srv::new2(8, 4), "Update Inventory"),
    (Srv::new2(8, 5), "Service Opt Out"),
    (Srv::new2(8, 6), "Service Opt In"),
    (Srv::new3(8, 7, 1), "Join Service (Critical)"),
    (Srv::new3(8, 7, 2), "Join Service (Non-Critical)"),
    (Srv::new3(8, 8, 1), "Unjoin Service (Critical)"),
    (Srv::new3(8, 8, 2), "Unjoin Service (Non-Critical)"),
    (Srv::new2(8, 9), "Read Device Log"),
    (Srv::new2(8, 11), "Update HAN Device Log"),
    (Srv::new3(8, 12, 1), "Restore HAN Device Log"),
    (Srv::new3(8, 12, 2), "Restore Gas Proxy Function Device Log"),
    (Srv::new2(8, 13), "Return Local Command Response"),
    (
        Srv::new3(8, 14, 1),
        "Communications Hub Status Update- Install Success",
    ),
    (
        Srv::new3(8, 14, 2),
        "Communications Hub Status Update - Install No SM WAN",
    ),
    (
        Srv::new3(8, 14, 3),
        "Communications Hub  Status Update. – Fault Return",
    ),
    (
        Srv::new3(8, 14, 4),
        "Communications Hub Status Update – No Fault Return",
    ),
    (Srv::new2(9, 1), "Request Customer Identification Number"),
    (Srv::new2(11, 1), "Update Firmware"),
    (Srv::new2(11, 2), "Read Firmware Version"),
    (Srv::new2(11, 3), "Activate Firmware"),
    (Srv::new2(11, 4), "Update PPMID Firmware"),
    (Srv::new2(12, 1), "Request WAN Matrix"),
    (Srv::new2(12, 2), "Device Pre-notification"),
    (Srv::new2(14, 1), "Record Network Data (GAS)"),
];

impl Srv {
    /// The SRV's DUIS name, if it is in [`DUIS_SRVS`].
    pub fn duis_name(self) -> Option<&'static str> {
        DUIS_SRVS
            .binary_search_by(|(s, _)| s.cmp(&self))
            .ok()
            .and_then(|i| DUIS_SRVS.get(i))
            .map(|(_, name)| *name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_parse_print() {
        for s in ["2.2", "1.1.1", "6.2.10", "14.1", "255.255.255"] {
            assert_eq!(s.parse::<Srv>().map(|v| v.to_string()), Ok(s.to_owned()));
        }
        for bad in [
            "", "2", "2.", ".2", "2.0", "0.2", "1.2.3.4", "256.1", "a.b", "2.2.", "+2.2",
        ] {
            assert!(bad.parse::<Srv>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(Srv::from_bytes([2, 2, 0]), Some(Srv::new2(2, 2)));
        assert_eq!(Srv::from_bytes([0, 2, 0]), None);
    }

    #[test]
    fn cv_and_execution() {
        assert!(CommandVariant::new(0).is_none());
        assert!(CommandVariant::new(9).is_none());
        assert_eq!(CommandVariant::new(8), Some(CommandVariant::NON_DEVICE));
        for k in [
            ExecutionKind::OnDemand,
            ExecutionKind::FutureDated,
            ExecutionKind::DccScheduled,
        ] {
            assert_eq!(ExecutionKind::from_code(k.code()), Some(k));
            assert_eq!(k.to_string().parse::<ExecutionKind>(), Ok(k));
        }
        assert_eq!(ExecutionKind::from_code(3), None);
    }

    #[test]
    fn duis_srvs_sorted_unique_and_looked_up() {
        assert_eq!(DUIS_SRVS.len(), 129);
        assert!(DUIS_SRVS.windows(2).all(|w| w[0].0 < w[1].0), "not sorted");
        assert_eq!(Srv::new2(2, 2).duis_name(), Some("Top Up Device"));
        assert_eq!(
            Srv::new3(1, 1, 1).duis_name(),
            Some("Update Import Tariff (Primary Element)")
        );
        assert_eq!(Srv::new2(99, 99).duis_name(), None);
        assert_eq!(Srv::new2(1, 1).duis_name(), None);
    }

    /// The router's embedded default policy lists exactly these SRVs, with the same names
    /// (read as text: the router depends on this crate, not the other way round).
    #[test]
    fn duis_srvs_match_the_router_default_policy() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../router/core/src/policy/default-policy.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!("skipping: {} not found", path.display());
            return;
        };
        let mut policy = Vec::new();
        let mut code = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("code = ") {
                code = Some(v.trim_matches('"').parse::<Srv>().unwrap());
            } else if let (Some(v), Some(c)) = (line.strip_prefix("name = "), code.take()) {
                policy.push((c, v.trim_matches('"').to_owned()));
            }
        }
        policy.sort();
        let ours: Vec<(Srv, String)> = DUIS_SRVS
            .iter()
            .map(|(s, n)| (*s, (*n).to_owned()))
            .collect();
        assert_eq!(policy, ours);
    }
}
