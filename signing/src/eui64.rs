//! EUI-64 identifiers: Users (DCC Users' business IDs), devices and the DCC itself.
//!
//! DUIS writes them as `00-11-22-33-44-55-66-77`; SMKI certificates carry them as a 64-bit
//! BIT STRING (`x500UniqueIdentifier`). Both spellings parse, plain hex included, so that a tester
//! can paste whatever their tool printed.

use std::fmt;
use std::str::FromStr;

/// A 64-bit Extended Unique Identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Eui64(pub [u8; 8]);

impl Eui64 {
    /// Builds an EUI-64 from its big-endian integer value.
    pub const fn from_u64(v: u64) -> Self {
        Self(v.to_be_bytes())
    }

    /// The big-endian integer value.
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// The raw bytes, most significant first.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// Plain upper-case hex without separators (`0011223344556677`), the form DUIS
    /// `BusinessOriginatorID` attributes and file names use.
    pub fn to_plain_hex(self) -> String {
        hex::encode_upper(self.0)
    }
}

/// Why a string is not an EUI-64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Eui64ParseError {
    /// Not 16 hex digits (optionally in eight `-` or `:` separated pairs).
    #[error(
        "an EUI-64 is 16 hex digits, optionally as eight pairs separated by '-' or ':' (got {0:?})"
    )]
    Format(String),
}

impl FromStr for Eui64 {
    type Err = Eui64ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || Eui64ParseError::Format(s.chars().take(40).collect());
        let t = s.trim();
        let digits: String = if t.len() == 23 {
            // Eight pairs with seven separators, all the same.
            let sep = t.as_bytes()[2];
            if sep != b'-' && sep != b':' {
                return Err(err());
            }
            let mut out = String::with_capacity(16);
            for (i, part) in t.split(sep as char).enumerate() {
                if i >= 8 || part.len() != 2 {
                    return Err(err());
                }
                out.push_str(part);
            }
            out
        } else if t.len() == 16 {
            t.to_owned()
        } else {
            return Err(err());
        };
        let mut b = [0u8; 8];
        hex::decode_to_slice(&digits, &mut b).map_err(|_| err())?;
        Ok(Eui64(b))
    }
}

impl fmt::Display for Eui64 {
    /// The DUIS spelling: `00-11-22-33-44-55-66-77` (upper-case hex).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

impl fmt::Debug for Eui64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Eui64({self})")
    }
}

impl serde::Serialize for Eui64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Eui64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_spellings() {
        let want = Eui64([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00]);
        assert_eq!("90-B3-D5-1F-30-01-00-00".parse::<Eui64>(), Ok(want));
        assert_eq!("90:b3:d5:1f:30:01:00:00".parse::<Eui64>(), Ok(want));
        assert_eq!("90B3D51F30010000".parse::<Eui64>(), Ok(want));
        assert_eq!(want.to_string(), "90-B3-D5-1F-30-01-00-00");
        assert_eq!(want.to_plain_hex(), "90B3D51F30010000");
        assert_eq!(Eui64::from_u64(want.to_u64()), want);
    }

    #[test]
    fn refuses_bad_spellings() {
        for bad in [
            "",
            "90-B3-D5-1F-30-01-00",
            "90-B3-D5-1F-30-01-00-0G",
            "90-B3:D5-1F-30-01-00-00",
            "90B3D51F3001000",
            "90B3D51F300100000",
            "9-0B3-D5-1F-30-01-00-00",
            "ééééééééééééééééééééééé",
        ] {
            assert!(bad.parse::<Eui64>().is_err(), "{bad:?} accepted");
        }
    }
}
