//! Request IDs and certificate IDs.

use std::fmt;
use std::str::FromStr;

use crate::Eui64;

/// A DUIS Request ID: `BusinessOriginatorID:BusinessTargetID:OriginatorCounter`.
///
/// The counter is the sender's anti-replay counter: the DCC accepts each value once per
/// originator, and (in DUIS) only above the last accepted one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RequestId {
    /// The sender's EUI-64.
    pub originator: Eui64,
    /// The target device's EUI-64 (or the DCC's for non-device requests).
    pub target: Eui64,
    /// The originator's counter.
    pub counter: u64,
}

impl RequestId {
    /// The Response ID DUIS derives from it: the two EUIs swapped, the same counter.
    pub const fn response_id(self) -> RequestId {
        RequestId {
            originator: self.target,
            target: self.originator,
            counter: self.counter,
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.originator, self.target, self.counter)
    }
}

/// Why a string is not a Request ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Request ID: expected ORIGINATOR-EUI:TARGET-EUI:COUNTER")]
pub struct RequestIdParseError(pub String);

impl FromStr for RequestId {
    type Err = RequestIdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RequestIdParseError(s.chars().take(80).collect());
        let mut it = s.trim().split(':');
        let (Some(o), Some(t), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(err());
        };
        Ok(RequestId {
            originator: o.parse().map_err(|_| err())?,
            target: t.parse().map_err(|_| err())?,
            counter: c.parse().map_err(|_| err())?,
        })
    }
}

/// The longest certificate serial number RFC 5280 allows, in octets.
pub const MAX_SERIAL_LEN: usize = 20;

/// Identifies a certificate as the DCC does: issuer plus serial number.
///
/// On the wire the issuer is carried as the first 8 bytes of the SHA-256 of its DER-encoded
/// Name (a fixed-size, collision-resistant-enough handle among a few issuing CAs) and the
/// serial as its magnitude in at most 20 octets, leading zeros stripped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertId {
    issuer: [u8; 8],
    serial_len: u8,
    serial: [u8; MAX_SERIAL_LEN],
}

impl CertId {
    /// Builds an id from an issuer hash and serial magnitude bytes (big-endian). Leading zero
    /// octets are stripped; `None` when the serial is empty, zero, or longer than 20 octets.
    pub fn new(issuer: [u8; 8], serial: &[u8]) -> Option<Self> {
        let first = serial.iter().position(|&b| b != 0)?;
        let s = &serial[first..];
        if s.len() > MAX_SERIAL_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_SERIAL_LEN];
        buf[..s.len()].copy_from_slice(s);
        Some(CertId {
            issuer,
            serial_len: s.len() as u8,
            serial: buf,
        })
    }

    /// The issuer handle: the first 8 bytes of SHA-256 over the issuer Name's DER.
    pub fn issuer_hash(&self) -> [u8; 8] {
        self.issuer
    }

    /// The serial number's magnitude, big-endian, without leading zeros.
    pub fn serial(&self) -> &[u8] {
        &self.serial[..self.serial_len as usize]
    }

    /// The issuer handle for a DER-encoded issuer Name.
    pub fn issuer_hash_of(issuer_name_der: &[u8]) -> [u8; 8] {
        use sha2::Digest;
        let d = sha2::Sha256::digest(issuer_name_der);
        let mut h = [0u8; 8];
        h.copy_from_slice(&d[..8]);
        h
    }
}

impl fmt::Display for CertId {
    /// `ISSUERHASH/SERIAL`, both in upper-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            hex::encode_upper(self.issuer),
            hex::encode_upper(self.serial())
        )
    }
}

impl fmt::Debug for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertId({self})")
    }
}

impl FromStr for CertId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err =
            || format!("{s:?} is not a certificate id: expected ISSUERHASH(16 hex)/SERIAL(hex)");
        let (i, sn) = s.trim().split_once('/').ok_or_else(err)?;
        let mut issuer = [0u8; 8];
        hex::decode_to_slice(i, &mut issuer).map_err(|_| err())?;
        let sn = if sn.len() % 2 == 1 {
            format!("0{sn}")
        } else {
            sn.to_owned()
        };
        let serial = hex::decode(sn).map_err(|_| err())?;
        CertId::new(issuer, &serial).ok_or_else(err)
    }
}

impl serde::Serialize for CertId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CertId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_round_trip_and_response_id() {
        let s = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-00-04:1000";
        let id: RequestId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(id.counter, 1000);
        let r = id.response_id();
        assert_eq!(r.originator, id.target);
        assert_eq!(r.target, id.originator);
        assert!("a:b:c".parse::<RequestId>().is_err());
        assert!(format!("{s}:1").parse::<RequestId>().is_err());
    }

    #[test]
    fn cert_id_strips_leading_zeros_and_bounds_length() {
        let a = CertId::new([1; 8], &[0, 0, 0x12, 0x34]).unwrap();
        assert_eq!(a.serial(), &[0x12, 0x34]);
        assert_eq!(a.to_string().parse::<CertId>(), Ok(a));
        assert!(CertId::new([1; 8], &[0, 0]).is_none());
        assert!(CertId::new([1; 8], &[]).is_none());
        assert!(CertId::new([1; 8], &[1; 21]).is_none());
        assert!(CertId::new([1; 8], &[1; 20]).is_some());
    }
}
