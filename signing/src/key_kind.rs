//! What kind of key a PKCS#8 private key, a SEC1 key or a certificate's public key holds.
//!
//! The `p256` decoders refuse any other key with `spki`'s "unknown OID" error, which names the
//! OID they *expected* (P-256's) rather than the one they found, so someone who passed an RSA
//! or P-384 key is told about prime256v1 and nothing else. [`KeyKind`] is read from the
//! `AlgorithmIdentifier` itself, before any decoding, so that errors name what was given.

use std::fmt;

use const_oid::db::{rfc5912, rfc8410, DB};
use der::asn1::{AnyRef, ObjectIdentifier};

/// The kind of a key, from its algorithm identifier (and, for EC keys, its curve).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// `rsaEncryption` (PKCS#8, SPKI or a PKCS#1 `RSA PRIVATE KEY`).
    Rsa,
    /// `id-RSASSA-PSS`.
    RsaPss,
    /// `id-dsa`.
    Dsa,
    /// `id-ecPublicKey` on a named curve.
    Ec {
        /// The curve's OID.
        curve: ObjectIdentifier,
    },
    /// `id-ecPublicKey` with explicit curve parameters or none at all.
    EcUnnamedCurve,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// X25519 (key agreement only).
    X25519,
    /// X448 (key agreement only).
    X448,
    /// Any other algorithm.
    Other {
        /// The algorithm OID.
        algorithm: ObjectIdentifier,
    },
}

impl KeyKind {
    /// The kind named by an `AlgorithmIdentifier`'s OID and parameters.
    pub fn from_algorithm(oid: ObjectIdentifier, parameters: Option<AnyRef<'_>>) -> Self {
        match oid {
            rfc5912::RSA_ENCRYPTION => KeyKind::Rsa,
            rfc5912::ID_RSASSA_PSS => KeyKind::RsaPss,
            rfc5912::ID_DSA => KeyKind::Dsa,
            rfc5912::ID_EC_PUBLIC_KEY => parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map_or(KeyKind::EcUnnamedCurve, |curve| KeyKind::Ec { curve }),
            rfc8410::ID_ED_25519 => KeyKind::Ed25519,
            rfc8410::ID_ED_448 => KeyKind::Ed448,
            rfc8410::ID_X_25519 => KeyKind::X25519,
            rfc8410::ID_X_448 => KeyKind::X448,
            algorithm => KeyKind::Other { algorithm },
        }
    }

    /// Whether this is an EC key on P-256, the only kind this crate signs and verifies with.
    pub fn is_p256(&self) -> bool {
        matches!(self, KeyKind::Ec { curve } if *curve == rfc5912::SECP_256_R_1)
    }

    /// The algorithm OID (for an EC key, `id-ecPublicKey`).
    pub fn algorithm(&self) -> ObjectIdentifier {
        match self {
            KeyKind::Rsa => rfc5912::RSA_ENCRYPTION,
            KeyKind::RsaPss => rfc5912::ID_RSASSA_PSS,
            KeyKind::Dsa => rfc5912::ID_DSA,
            KeyKind::Ec { .. } | KeyKind::EcUnnamedCurve => rfc5912::ID_EC_PUBLIC_KEY,
            KeyKind::Ed25519 => rfc8410::ID_ED_25519,
            KeyKind::Ed448 => rfc8410::ID_ED_448,
            KeyKind::X25519 => rfc8410::ID_X_25519,
            KeyKind::X448 => rfc8410::ID_X_448,
            KeyKind::Other { algorithm } => *algorithm,
        }
    }
}

/// A curve's usual name: OpenSSL's for P-256 (what `openssl ecparam -list_curves` prints and
/// what users search for), else the OID database's.
fn curve_name(curve: &ObjectIdentifier) -> Option<&'static str> {
    if *curve == rfc5912::SECP_256_R_1 {
        Some("prime256v1")
    } else {
        DB.by_oid(curve)
    }
}

impl fmt::Display for KeyKind {
    /// "an RSA key (1.2.840.113549.1.1.1)", "an EC key on secp384r1 (1.3.132.0.34)", …: the
    /// name a user knows and the OID that proves it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let oid = self.algorithm();
        match self {
            KeyKind::Rsa => write!(f, "an RSA key ({oid})"),
            KeyKind::RsaPss => write!(f, "an RSASSA-PSS key ({oid})"),
            KeyKind::Dsa => write!(f, "a DSA key ({oid})"),
            KeyKind::Ec { curve } => match curve_name(curve) {
                Some(name) => write!(f, "an EC key on {name} ({curve})"),
                None => write!(f, "an EC key on an unknown curve ({curve})"),
            },
            KeyKind::EcUnnamedCurve => {
                f.write_str("an EC key with explicit (unnamed) curve parameters")
            }
            KeyKind::Ed25519 => write!(f, "an Ed25519 key ({oid})"),
            KeyKind::Ed448 => write!(f, "an Ed448 key ({oid})"),
            KeyKind::X25519 => write!(f, "an X25519 key ({oid})"),
            KeyKind::X448 => write!(f, "an X448 key ({oid})"),
            KeyKind::Other { algorithm } => match DB.by_oid(algorithm) {
                Some(name) => write!(f, "a key of algorithm {name} ({algorithm})"),
                None => write!(f, "a key of unknown algorithm {algorithm}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    fn ec(curve: ObjectIdentifier) -> KeyKind {
        let der = curve.to_der().unwrap_or_default();
        let any = AnyRef::try_from(der.as_slice()).ok();
        KeyKind::from_algorithm(rfc5912::ID_EC_PUBLIC_KEY, any)
    }

    #[test]
    fn names_what_it_finds() {
        assert!(ec(rfc5912::SECP_256_R_1).is_p256());
        assert_eq!(
            ec(rfc5912::SECP_256_R_1).to_string(),
            "an EC key on prime256v1 (1.2.840.10045.3.1.7)"
        );
        assert_eq!(
            ec(rfc5912::SECP_384_R_1).to_string(),
            "an EC key on secp384r1 (1.3.132.0.34)"
        );
        assert!(!ec(rfc5912::SECP_384_R_1).is_p256());
        assert_eq!(
            KeyKind::from_algorithm(rfc5912::ID_EC_PUBLIC_KEY, None),
            KeyKind::EcUnnamedCurve
        );
        assert_eq!(
            KeyKind::from_algorithm(rfc5912::RSA_ENCRYPTION, None).to_string(),
            "an RSA key (1.2.840.113549.1.1.1)"
        );
        assert_eq!(
            KeyKind::from_algorithm(rfc8410::ID_ED_25519, None).to_string(),
            "an Ed25519 key (1.3.101.112)"
        );
        let odd = ObjectIdentifier::new_unwrap("1.2.3.4.5");
        assert_eq!(
            KeyKind::from_algorithm(odd, None).to_string(),
            "a key of unknown algorithm 1.2.3.4.5"
        );
    }
}
