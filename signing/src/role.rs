//! The two kinds of role in this domain.
//!
//! * [`UserRole`]: the DUIS User Role a Service Request is sent in (Import Supplier, …). Which
//!   SRVs a role may send is policy (the router's catalogue), not code.
//! * [`RemotePartyRole`]: the SMKI role an Organisation Certificate is issued for, written as the
//!   subject OU in two hex digits (`02` supplier, `03` network operator, …).

use std::fmt;
use std::str::FromStr;

/// A DUIS User Role. The wire code is the 1-based position in this list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[non_exhaustive]
pub enum UserRole {
    /// IS
    ImportSupplier,
    /// ES
    ExportSupplier,
    /// GS
    GasSupplier,
    /// ED
    ElectricityDistributor,
    /// GT
    GasTransporter,
    /// OU
    OtherUser,
    /// RSA
    RegisteredSupplierAgent,
}

impl UserRole {
    /// Every role, in wire-code order.
    pub const ALL: [UserRole; 7] = [
        UserRole::ImportSupplier,
        UserRole::ExportSupplier,
        UserRole::GasSupplier,
        UserRole::ElectricityDistributor,
        UserRole::GasTransporter,
        UserRole::OtherUser,
        UserRole::RegisteredSupplierAgent,
    ];

    /// The one-byte wire code (1..=7).
    pub const fn code(self) -> u8 {
        match self {
            UserRole::ImportSupplier => 1,
            UserRole::ExportSupplier => 2,
            UserRole::GasSupplier => 3,
            UserRole::ElectricityDistributor => 4,
            UserRole::GasTransporter => 5,
            UserRole::OtherUser => 6,
            UserRole::RegisteredSupplierAgent => 7,
        }
    }

    /// The role for a wire code, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1..=7 => Some(Self::ALL[(code - 1) as usize]),
            _ => None,
        }
    }

    /// The DUIS abbreviation (`IS`, `ES`, `GS`, `ED`, `GT`, `OU`, `RSA`).
    pub const fn abbrev(self) -> &'static str {
        match self {
            UserRole::ImportSupplier => "IS",
            UserRole::ExportSupplier => "ES",
            UserRole::GasSupplier => "GS",
            UserRole::ElectricityDistributor => "ED",
            UserRole::GasTransporter => "GT",
            UserRole::OtherUser => "OU",
            UserRole::RegisteredSupplierAgent => "RSA",
        }
    }

    /// Whether this is one of the three Supplier roles.
    pub const fn is_supplier(self) -> bool {
        matches!(
            self,
            UserRole::ImportSupplier | UserRole::ExportSupplier | UserRole::GasSupplier
        )
    }

    /// Whether this is a Network Operator role (Electricity Distributor or Gas Transporter).
    pub const fn is_network_operator(self) -> bool {
        matches!(
            self,
            UserRole::ElectricityDistributor | UserRole::GasTransporter
        )
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbrev())
    }
}

/// Why a string is not a User Role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown User Role {0:?}: expected one of IS, ES, GS, ED, GT, OU, RSA")]
pub struct UserRoleParseError(pub String);

impl FromStr for UserRole {
    type Err = UserRoleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.abbrev().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UserRoleParseError(s.chars().take(40).collect()))
    }
}

impl serde::Serialize for UserRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.abbrev())
    }
}

impl<'de> serde::Deserialize<'de> for UserRole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The SMKI remote-party role of an Organisation Certificate (subject OU, two hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum RemotePartyRole {
    /// `01`
    Recovery,
    /// `02`
    Supplier,
    /// `03`
    NetworkOperator,
    /// `04`
    AccessControlBroker,
    /// `05`
    TransitionalCoS,
    /// `06`
    WanProvider,
    /// `07`
    IssuingAuthority,
    /// `7F`
    Other,
    /// `87`
    XmlSigning,
    /// `89`
    DccXmlSigning,
    /// A code this crate does not name.
    Unknown(u8),
}

impl RemotePartyRole {
    /// The numeric role code.
    pub const fn code(self) -> u8 {
        match self {
            RemotePartyRole::Recovery => 0x01,
            RemotePartyRole::Supplier => 0x02,
            RemotePartyRole::NetworkOperator => 0x03,
            RemotePartyRole::AccessControlBroker => 0x04,
            RemotePartyRole::TransitionalCoS => 0x05,
            RemotePartyRole::WanProvider => 0x06,
            RemotePartyRole::IssuingAuthority => 0x07,
            RemotePartyRole::Other => 0x7F,
            RemotePartyRole::XmlSigning => 0x87,
            RemotePartyRole::DccXmlSigning => 0x89,
            RemotePartyRole::Unknown(c) => c,
        }
    }

    /// The role for a code.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0x01 => RemotePartyRole::Recovery,
            0x02 => RemotePartyRole::Supplier,
            0x03 => RemotePartyRole::NetworkOperator,
            0x04 => RemotePartyRole::AccessControlBroker,
            0x05 => RemotePartyRole::TransitionalCoS,
            0x06 => RemotePartyRole::WanProvider,
            0x07 => RemotePartyRole::IssuingAuthority,
            0x7F => RemotePartyRole::Other,
            0x87 => RemotePartyRole::XmlSigning,
            0x89 => RemotePartyRole::DccXmlSigning,
            c => RemotePartyRole::Unknown(c),
        }
    }

    /// Parses the subject OU of an Organisation Certificate.
    ///
    /// The profile says two hex digits (`02`, `7F`); one legacy DCC Boxed certificate writes the
    /// decimal value (`137` for 0x89), so a three-digit decimal form is accepted too.
    pub fn from_ou(ou: &str) -> Option<Self> {
        let ou = ou.trim();
        match ou.len() {
            2 => u8::from_str_radix(ou, 16).ok().map(Self::from_code),
            3 if ou.bytes().all(|b| b.is_ascii_digit()) => {
                ou.parse::<u8>().ok().map(Self::from_code)
            }
            _ => None,
        }
    }

    /// The OU as the SMKI profile writes it: two upper-case hex digits.
    pub fn to_ou(self) -> String {
        format!("{:02X}", self.code())
    }

    /// A short human name.
    pub const fn name(self) -> &'static str {
        match self {
            RemotePartyRole::Recovery => "recovery",
            RemotePartyRole::Supplier => "supplier",
            RemotePartyRole::NetworkOperator => "network operator",
            RemotePartyRole::AccessControlBroker => "access control broker",
            RemotePartyRole::TransitionalCoS => "transitional CoS",
            RemotePartyRole::WanProvider => "WAN provider",
            RemotePartyRole::IssuingAuthority => "issuing authority",
            RemotePartyRole::Other => "other",
            RemotePartyRole::XmlSigning => "XML signing",
            RemotePartyRole::DccXmlSigning => "DCC XML signing",
            RemotePartyRole::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for RemotePartyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:02X})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_role_codes_round_trip() {
        for r in UserRole::ALL {
            assert_eq!(UserRole::from_code(r.code()), Some(r));
            assert_eq!(r.abbrev().parse::<UserRole>(), Ok(r));
        }
        assert_eq!(UserRole::from_code(0), None);
        assert_eq!(UserRole::from_code(8), None);
        assert!("XX".parse::<UserRole>().is_err());
    }

    #[test]
    fn ou_hex_and_legacy_decimal() {
        assert_eq!(
            RemotePartyRole::from_ou("02"),
            Some(RemotePartyRole::Supplier)
        );
        assert_eq!(RemotePartyRole::from_ou("7F"), Some(RemotePartyRole::Other));
        assert_eq!(
            RemotePartyRole::from_ou("87"),
            Some(RemotePartyRole::XmlSigning)
        );
        assert_eq!(
            RemotePartyRole::from_ou("137"),
            Some(RemotePartyRole::DccXmlSigning)
        );
        assert_eq!(RemotePartyRole::from_ou("999"), None);
        assert_eq!(RemotePartyRole::from_ou("2"), None);
        assert_eq!(RemotePartyRole::Supplier.to_ou(), "02");
    }
}
