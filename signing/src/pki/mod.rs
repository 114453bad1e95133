//! SMKI-profile test PKI: issue, parse and validate Organisation Certificates and CRLs.
//!
//! # The profile
//!
//! The GB Smart Metering Key Infrastructure (SMKI) issues *Organisation Certificates* to DCC
//! Users. This module writes and reads them the way the DCC Boxed test certificates are
//! written (checked with `openssl x509 -text` against `shared/vectors/dccboxed/certs`):
//!
//! * X.509 v3, ECDSA P-256 keys, signed with `ecdsa-with-SHA256`;
//! * subject: an optional `CN`, `OU` = the remote-party role in two upper-case hex digits
//!   (`02` supplier, `03` network operator, `7F` other, …; one legacy certificate writes the
//!   decimal `137`), and `x500UniqueIdentifier` (OID 2.5.4.45) = the User's EUI-64 as a 64-bit
//!   BIT STRING;
//! * extensions: key usage, critical, `digitalSignature` *or* `keyAgreement` (never both);
//!   certificate policies, critical, `1.2.826.0.1.8641679.1.2.1.4`; an 8-byte subject key
//!   identifier and the issuer's 8-byte key identifier as authority key identifier; no basic
//!   constraints on end-entity certificates;
//! * CAs (root and issuing): subject `OU=07` (issuing authority) and a `CN`, basic constraints
//!   `CA:TRUE` (critical), key usage `keyCertSign, cRLSign` (critical).
//!
//! A certificate is identified as the DCC does, by issuer and serial: [`crate::CertId`].
//!
//! # Pieces
//!
//! * [`cert`]: parsing ([`OrgCertificate`], [`CaCertificate`]), PEM or DER, bounded, no panics;
//! * [`issue`]: a [`CertificateAuthority`] that issues sub-CAs, Organisation Certificates and
//!   TLS certificates;
//! * [`chain`]: [`TrustAnchors`] and [`ChainValidator`], validation at a given Unix time;
//! * [`crl`]: issue and verify X.509 CRLs ([`Crl`]);
//! * [`demo`]: [`DemoPki`], an in-memory demo PKI (root, issuing CA, Users) for tests, the CLI's
//!   `pki init` and the load generator.

pub mod cert;
pub mod chain;
pub mod crl;
pub mod demo;
pub mod issue;
pub(crate) mod pem;
mod time;

pub use cert::{CaCertificate, KeyUsage, OrgCertificate};
pub use chain::{ChainError, ChainValidator, TrustAnchors};
pub use crl::Crl;
pub use demo::{load_ca_certs, load_user_certs, DemoPki, DemoUser, TlsIdentity};
pub use issue::{CertificateAuthority, OrgCertRequest, TlsCertRequest};
pub use pem::{key_to_pem, MAX_DER_LEN, MAX_PEM_LEN};
pub use time::{now_unix, rfc3339};

use std::path::PathBuf;

use der::asn1::ObjectIdentifier;

/// The SMKI Organisation Certificate policy (as in the DCC Boxed certificates).
pub const SMKI_ORG_CERT_POLICY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.826.0.1.8641679.1.2.1.4");

/// `x500UniqueIdentifier`, the subject attribute carrying the EUI-64.
pub const OID_X500_UNIQUE_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.45");
pub(crate) const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
pub(crate) const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
pub(crate) const OID_ECDSA_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub(crate) const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
pub(crate) const OID_BASIC_CONSTRAINTS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.19");
pub(crate) const OID_CERT_POLICIES: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
pub(crate) const OID_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
pub(crate) const OID_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
pub(crate) const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
pub(crate) const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
pub(crate) const OID_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
/// TLS `clientAuth` extended key usage.
pub const OID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// TLS `serverAuth` extended key usage.
pub const OID_KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");

/// Why a certificate, key or CRL could not be parsed, issued, loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The input is larger than the hard limit for its kind.
    #[error("input too large: {len} bytes (at most {max})")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// PEM armour is malformed or has an unexpected label.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// The DER does not decode as the expected ASN.1 structure.
    #[error("bad DER: {0}")]
    Der(String),
    /// Not an X.509 version 3 certificate.
    #[error("not an X.509 v3 certificate")]
    NotV3,
    /// Signed with something else than ECDSA with SHA-256 (its name, when known, and OID).
    #[error("unsupported signature algorithm {0} (expected ecdsa-with-SHA256)")]
    SignatureAlgorithm(String),
    /// The signature value is not a DER ECDSA signature with valid r and s.
    #[error("malformed ECDSA signature value")]
    SignatureEncoding,
    /// The subject key claims P-256 but does not decode as a P-256 point.
    #[error("subject public key is not an ECDSA P-256 key: {0}")]
    PublicKey(String),
    /// The subject key is of another kind (RSA, Ed25519, EC on another curve, …), named by
    /// what it is.
    #[error("subject public key is {0}, not an ECDSA P-256 key (prime256v1)")]
    PublicKeyKind(crate::KeyKind),
    /// The serial number is zero, empty or longer than 20 octets.
    #[error("certificate serial number is empty, zero or longer than 20 octets")]
    Serial,
    /// The subject has no (or more than one) `x500UniqueIdentifier`.
    #[error("subject has no single x500UniqueIdentifier (EUI-64)")]
    MissingEui64,
    /// The `x500UniqueIdentifier` is not a 64-bit BIT STRING.
    #[error("x500UniqueIdentifier is not a 64-bit BIT STRING")]
    BadEui64,
    /// The subject has no (or more than one) `OU`.
    #[error("subject has no single OU (remote-party role)")]
    MissingRole,
    /// The subject `OU` is not a remote-party role code.
    #[error("subject OU {0:?} is not a remote-party role (two hex digits)")]
    BadRole(String),
    /// An extension's value does not decode.
    #[error("bad {name} extension: {reason}")]
    Extension {
        /// Which extension.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A CA certificate was expected but basic constraints do not say `CA:TRUE`.
    #[error("certificate {0} is not a CA certificate")]
    NotCa(String),
    /// The private key is not a PKCS#8 ECDSA P-256 key.
    #[error("bad private key: {0}")]
    Key(String),
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// The CRL was not issued by the given issuer (names differ).
    #[error("CRL issuer {crl} is not {expected}")]
    CrlIssuer {
        /// The CRL's issuer.
        crl: String,
        /// The expected issuer.
        expected: String,
    },
    /// The CRL's signature does not verify with the issuer's key.
    #[error("CRL signature does not verify with {0}'s key")]
    CrlSignature(String),
    /// Something could not be encoded while issuing (practically unreachable).
    #[error("encoding failed: {0}")]
    Encode(String),
    /// A time is outside what X.509 can represent.
    #[error("time {0} is outside the X.509 range")]
    Time(u64),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file exists and overwriting was not asked for.
    #[error("{} already exists (use --force to overwrite)", .0.display())]
    Exists(PathBuf),
    /// The demo PKI directory lacks something or holds something inconsistent.
    #[error("demo PKI: {0}")]
    Demo(String),
    /// A file was read but its contents were refused: the file, and why. Why a wrapper: the
    /// parsers see bytes, not paths, and an operator facing "bad PEM" needs to know which of
    /// a directory's files to fix.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: Box<PkiError>,
    },
}

impl PkiError {
    /// This error as being about `path` (an error that already names its file is kept as is).
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            e @ (PkiError::Io { .. } | PkiError::File { .. } | PkiError::Exists(_)) => e,
            e => PkiError::File {
                path: path.to_path_buf(),
                source: Box::new(e),
            },
        }
    }
}

/// "ecdsa-with-SHA384 (1.2.840.10045.4.3.3)": an OID with its name when the OID database
/// knows it, so that errors say what was found in words as well as digits.
pub(crate) fn oid_with_name(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

impl From<der::Error> for PkiError {
    fn from(e: der::Error) -> Self {
        PkiError::Der(e.to_string())
    }
}

/// The first 8 bytes of SHA-256 over a public key's SEC1 uncompressed point: the key
/// identifier this PKI writes (the DCC Boxed certificates use 8-byte identifiers too).
pub fn key_identifier(key: &p256::PublicKey) -> [u8; 8] {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use sha2::Digest;
    let d = sha2::Sha256::digest(key.to_encoded_point(false).as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}
