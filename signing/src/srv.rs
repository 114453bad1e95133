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
}
