//! Parsing certificates: Organisation Certificates (end entities) and CA certificates.
//!
//! Every input is hostile: sizes are bounded ([`super::MAX_PEM_LEN`], [`super::MAX_DER_LEN`]),
//! the DER is decoded by `x509-cert`, and each defect maps to a [`PkiError`] variant.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use p256::pkcs8::DecodePublicKey;
use spki::AlgorithmIdentifierRef;
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage as X509KeyUsage,
};
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::pem::{der_items, one_der, to_pem};
use super::time::from_x509;
use super::{
    oid_with_name, PkiError, OID_AKI, OID_BASIC_CONSTRAINTS, OID_CERT_POLICIES, OID_CN,
    OID_ECDSA_SHA256, OID_EKU, OID_KEY_USAGE, OID_OU, OID_SAN, OID_SKI, OID_X500_UNIQUE_IDENTIFIER,
};
use crate::{CertId, Eui64, KeyKind, RemotePartyRole};

/// The key usage bits this domain cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyUsage {
    /// `digitalSignature`: the key may sign Service Requests.
    pub digital_signature: bool,
    /// `keyAgreement`: the key is for ECDH (SMKI issues separate certificates for it).
    pub key_agreement: bool,
    /// `keyCertSign`: the key may sign certificates (CAs).
    pub key_cert_sign: bool,
    /// `cRLSign`: the key may sign CRLs (CAs).
    pub crl_sign: bool,
}

impl KeyUsage {
    /// `digitalSignature` only: the SMKI profile for a signing Organisation Certificate.
    pub const SIGNING: KeyUsage = KeyUsage {
        digital_signature: true,
        key_agreement: false,
        key_cert_sign: false,
        crl_sign: false,
    };
    /// `keyAgreement` only.
    pub const KEY_AGREEMENT: KeyUsage = KeyUsage {
        digital_signature: false,
        key_agreement: true,
        key_cert_sign: false,
        crl_sign: false,
    };
    /// `keyCertSign, cRLSign`: a CA.
    pub const CA: KeyUsage = KeyUsage {
        digital_signature: false,
        key_agreement: false,
        key_cert_sign: true,
        crl_sign: true,
    };
}

/// A parsed signed structure: the exact bytes that were signed and the ECDSA signature.
#[derive(Clone, Debug)]
pub(crate) struct SignedPart {
    pub(crate) tbs: Vec<u8>,
    pub(crate) signature: p256::ecdsa::Signature,
}

#[derive(Sequence)]
struct RawSigned<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
}

impl SignedPart {
    /// Splits a DER `SEQUENCE { tbs, algorithm, BIT STRING }` (certificate or CRL) keeping
    /// the signed bytes exactly as received.
    pub(crate) fn parse(der: &[u8]) -> Result<Self, PkiError> {
        let raw = RawSigned::from_der(der)?;
        if raw.algorithm.oid != OID_ECDSA_SHA256 {
            return Err(PkiError::SignatureAlgorithm(oid_with_name(
                &raw.algorithm.oid,
            )));
        }
        let sig = raw
            .signature
            .as_bytes()
            .ok_or(PkiError::SignatureEncoding)?;
        let signature =
            p256::ecdsa::Signature::from_der(sig).map_err(|_| PkiError::SignatureEncoding)?;
        Ok(SignedPart {
            tbs: raw.tbs.to_der()?,
            signature,
        })
    }

    /// Whether `key` signed the TBS bytes (ECDSA P-256, SHA-256).
    pub(crate) fn verified_by(&self, key: &p256::PublicKey) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        p256::ecdsa::VerifyingKey::from(key)
            .verify(&self.tbs, &self.signature)
            .is_ok()
    }
}

/// What both kinds of certificate share.
#[derive(Clone, Debug)]
pub(crate) struct Common {
    pub(crate) subject: String,
    pub(crate) subject_der: Vec<u8>,
    pub(crate) issuer: String,
    pub(crate) issuer_der: Vec<u8>,
    pub(crate) serial: Vec<u8>,
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
    pub(crate) public_key: p256::PublicKey,
    pub(crate) key_usage: Option<KeyUsage>,
    pub(crate) is_ca: bool,
    pub(crate) path_len: Option<u8>,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
    pub(crate) extended_key_usage: Vec<ObjectIdentifier>,
    pub(crate) unknown_critical: Option<ObjectIdentifier>,
    pub(crate) signed: SignedPart,
    pub(crate) der: Vec<u8>,
    pub(crate) name: Name,
}

fn ext_err(name: &'static str) -> impl Fn(der::Error) -> PkiError {
    move |e| PkiError::Extension {
        name,
        reason: e.to_string(),
    }
}

pub(crate) fn parse_common(der: &[u8]) -> Result<Common, PkiError> {
    if der.len() > super::MAX_DER_LEN {
        return Err(PkiError::TooLarge {
            len: der.len(),
            max: super::MAX_DER_LEN,
        });
    }
    let cert = Certificate::from_der(der)?;
    let tbs = &cert.tbs_certificate;
    // The subject key's kind first: an RSA or P-384 certificate is usually signed with
    // something other than ecdsa-with-SHA256 too, and "an RSA key" says more than the
    // signature algorithm does.
    let spki = &tbs.subject_public_key_info;
    let kind = KeyKind::from_algorithm(
        spki.algorithm.oid,
        spki.algorithm.parameters.as_ref().map(AnyRef::from),
    );
    if !kind.is_p256() {
        return Err(PkiError::PublicKeyKind(kind));
    }
    let signed = SignedPart::parse(der)?;
    if tbs.version != x509_cert::Version::V3 {
        return Err(PkiError::NotV3);
    }
    let serial = {
        let b = tbs.serial_number.as_bytes();
        let first = b.iter().position(|&x| x != 0).ok_or(PkiError::Serial)?;
        let s = &b[first..];
        if s.len() > crate::MAX_SERIAL_LEN {
            return Err(PkiError::Serial);
        }
        s.to_vec()
    };
    let spki_der = tbs.subject_public_key_info.to_der()?;
    let public_key = p256::PublicKey::from_public_key_der(&spki_der)
        .map_err(|e| PkiError::PublicKey(e.to_string()))?;

    let mut c = Common {
        subject: tbs.subject.to_string(),
        subject_der: tbs.subject.to_der()?,
        issuer: tbs.issuer.to_string(),
        issuer_der: tbs.issuer.to_der()?,
        serial,
        not_before: from_x509(tbs.validity.not_before),
        not_after: from_x509(tbs.validity.not_after),
        public_key,
        key_usage: None,
        is_ca: false,
        path_len: None,
        subject_key_id: None,
        authority_key_id: None,
        extended_key_usage: Vec::new(),
        unknown_critical: None,
        signed,
        der: der.to_vec(),
        name: tbs.subject.clone(),
    };
    for ext in tbs.extensions.iter().flatten() {
        let v = ext.extn_value.as_bytes();
        match ext.extn_id {
            OID_KEY_USAGE => {
                let ku = X509KeyUsage::from_der(v).map_err(ext_err("key usage"))?;
                c.key_usage = Some(KeyUsage {
                    digital_signature: ku.digital_signature(),
                    key_agreement: ku.key_agreement(),
                    key_cert_sign: ku.key_cert_sign(),
                    crl_sign: ku.crl_sign(),
                });
            }
            OID_BASIC_CONSTRAINTS => {
                let bc = BasicConstraints::from_der(v).map_err(ext_err("basic constraints"))?;
                c.is_ca = bc.ca;
                c.path_len = bc.path_len_constraint;
            }
            OID_SKI => {
                let o = OctetString::from_der(v).map_err(ext_err("subject key identifier"))?;
                c.subject_key_id = Some(o.as_bytes().to_vec());
            }
            OID_AKI => {
                let a = AuthorityKeyIdentifier::from_der(v)
                    .map_err(ext_err("authority key identifier"))?;
                c.authority_key_id = a.key_identifier.map(|k| k.as_bytes().to_vec());
            }
            OID_EKU => {
                let e = ExtendedKeyUsage::from_der(v).map_err(ext_err("extended key usage"))?;
                c.extended_key_usage = e.0;
            }
            // Understood well enough: policies are fixed by the profile, SANs matter to TLS only.
            OID_CERT_POLICIES | OID_SAN => {}
            other => {
                if ext.critical && c.unknown_critical.is_none() {
                    c.unknown_critical = Some(other);
                }
            }
        }
    }
    Ok(c)
}

/// The values of every attribute of type `oid` in a Name.
fn attributes<'n>(name: &'n Name, oid: ObjectIdentifier) -> impl Iterator<Item = AnyRef<'n>> + 'n {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(move |atv| atv.oid == oid)
        .map(|atv| AnyRef::from(&atv.value))
}

fn single<'n>(
    name: &'n Name,
    oid: ObjectIdentifier,
    missing: PkiError,
) -> Result<AnyRef<'n>, PkiError> {
    let mut it = attributes(name, oid);
    match (it.next(), it.next()) {
        (Some(v), None) => Ok(v),
        _ => Err(missing),
    }
}

fn directory_string(v: AnyRef<'_>) -> Option<String> {
    match DirectoryString::from_der(&v.to_der().ok()?).ok()? {
        DirectoryString::PrintableString(s) => Some(s.to_string()),
        DirectoryString::TeletexString(s) => Some(s.to_string()),
        DirectoryString::Utf8String(s) => Some(s),
    }
}

/// The subject's `CN`, if it has exactly one readable one.
fn common_name(name: &Name) -> Option<String> {
    let mut it = attributes(name, OID_CN);
    match (it.next(), it.next()) {
        (Some(v), None) => directory_string(v),
        _ => None,
    }
}

/// The EUI-64 in a subject's `x500UniqueIdentifier` (a 64-bit BIT STRING).
pub(crate) fn subject_eui64(name: &Name) -> Result<Eui64, PkiError> {
    let v = single(name, OID_X500_UNIQUE_IDENTIFIER, PkiError::MissingEui64)?;
    let bits = v
        .decode_as::<BitStringRef<'_>>()
        .map_err(|_| PkiError::BadEui64)?;
    let bytes = bits.as_bytes().ok_or(PkiError::BadEui64)?;
    let arr: [u8; 8] = bytes.try_into().map_err(|_| PkiError::BadEui64)?;
    Ok(Eui64(arr))
}

/// The remote-party role in a subject's `OU`.
pub(crate) fn subject_role(name: &Name) -> Result<RemotePartyRole, PkiError> {
    let v = single(name, OID_OU, PkiError::MissingRole)?;
    let s = directory_string(v).ok_or_else(|| PkiError::BadRole("<not a string>".into()))?;
    RemotePartyRole::from_ou(&s).ok_or_else(|| PkiError::BadRole(s.chars().take(20).collect()))
}

/// An SMKI Organisation Certificate: an end-entity certificate naming a User (EUI-64) and its
/// remote-party role.
#[derive(Clone, Debug)]
pub struct OrgCertificate {
    /// Issuer hash + serial: how envelopes name their signer.
    pub id: CertId,
    /// The serial number's magnitude, big-endian, leading zeros stripped.
    pub serial: Vec<u8>,
    /// The issuer Name, RFC 4514 string.
    pub issuer: String,
    /// The subject Name, RFC 4514 string.
    pub subject: String,
    /// The subject `CN`, when there is one.
    pub common_name: Option<String>,
    /// The User's EUI-64 (`x500UniqueIdentifier`).
    pub subject_eui64: Eui64,
    /// The remote-party role (`OU`).
    pub role: RemotePartyRole,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity (inclusive), Unix seconds.
    pub not_after: u64,
    /// The subject's public key.
    pub public_key: p256::PublicKey,
    /// Key usage (all false when the extension is absent).
    pub key_usage: KeyUsage,
    /// Whether basic constraints say `CA:TRUE` (never, for a proper Organisation Certificate).
    pub is_ca: bool,
    /// Extended key usages (TLS certificates carry clientAuth / serverAuth).
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// The whole certificate, DER.
    pub der: Vec<u8>,
    pub(crate) common: Common,
}

impl OrgCertificate {
    /// Parses a certificate given as PEM (exactly one `CERTIFICATE` block) or DER.
    pub fn parse(input: &[u8]) -> Result<Self, PkiError> {
        Self::from_der(&one_der(input, "CERTIFICATE", super::MAX_DER_LEN)?)
    }

    /// Parses every certificate in a PEM bundle (or one DER certificate).
    pub fn parse_all(input: &[u8]) -> Result<Vec<Self>, PkiError> {
        der_items(input, "CERTIFICATE", super::MAX_DER_LEN)?
            .iter()
            .map(|d| Self::from_der(d))
            .collect()
    }

    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let c = parse_common(der)?;
        let subject_eui64 = subject_eui64(&c.name)?;
        let role = subject_role(&c.name)?;
        let id = CertId::new(CertId::issuer_hash_of(&c.issuer_der), &c.serial)
            .ok_or(PkiError::Serial)?;
        Ok(OrgCertificate {
            id,
            serial: c.serial.clone(),
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
            common_name: common_name(&c.name),
            subject_eui64,
            role,
            not_before: c.not_before,
            not_after: c.not_after,
            public_key: c.public_key,
            key_usage: c.key_usage.unwrap_or_default(),
            is_ca: c.is_ca,
            extended_key_usage: c.extended_key_usage.clone(),
            der: c.der.clone(),
            common: c,
        })
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        to_pem("CERTIFICATE", &self.der)
    }

    /// Whether `at` (Unix seconds) lies within the validity period (both ends inclusive).
    pub fn is_valid_at(&self, at: u64) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// The serial number in upper-case hex.
    pub fn serial_hex(&self) -> String {
        hex::encode_upper(&self.serial)
    }

    /// Whether `ca` issued this certificate: the issuer Name is the CA's subject and the CA's
    /// key verifies the signature (validity and CA constraints are [`super::ChainValidator`]'s
    /// business).
    pub fn is_issued_by(&self, ca: &CaCertificate) -> bool {
        self.common.issuer_der == ca.common.subject_der
            && self.common.signed.verified_by(&ca.public_key)
    }

    /// The DER of the issuer Name (what [`CertId::issuer_hash_of`] hashes).
    pub fn issuer_der(&self) -> &[u8] {
        &self.common.issuer_der
    }
}

/// A CA certificate (root or issuing CA): what chains are validated against.
#[derive(Clone, Debug)]
pub struct CaCertificate {
    /// The subject Name, RFC 4514 string.
    pub subject: String,
    /// The issuer Name, RFC 4514 string (equal to `subject` for a root).
    pub issuer: String,
    /// The serial number's magnitude, big-endian.
    pub serial: Vec<u8>,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity (inclusive), Unix seconds.
    pub not_after: u64,
    /// The CA's public key.
    pub public_key: p256::PublicKey,
    /// Key usage, when the extension is present.
    pub key_usage: Option<KeyUsage>,
    /// The basic constraints path length, if any.
    pub path_len: Option<u8>,
    /// The whole certificate, DER.
    pub der: Vec<u8>,
    pub(crate) common: Common,
}

impl CaCertificate {
    /// Parses a CA certificate given as PEM (exactly one block) or DER.
    pub fn parse(input: &[u8]) -> Result<Self, PkiError> {
        Self::from_der(&one_der(input, "CERTIFICATE", super::MAX_DER_LEN)?)
    }

    /// Parses every certificate of a PEM bundle as a CA certificate.
    pub fn parse_all(input: &[u8]) -> Result<Vec<Self>, PkiError> {
        der_items(input, "CERTIFICATE", super::MAX_DER_LEN)?
            .iter()
            .map(|d| Self::from_der(d))
            .collect()
    }

    /// Parses one DER CA certificate; refuses one whose basic constraints do not say CA.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let c = parse_common(der)?;
        if !c.is_ca {
            return Err(PkiError::NotCa(c.subject));
        }
        Ok(CaCertificate {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: c.serial.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            public_key: c.public_key,
            key_usage: c.key_usage,
            path_len: c.path_len,
            der: c.der.clone(),
            common: c,
        })
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        to_pem("CERTIFICATE", &self.der)
    }

    /// The DER of the subject Name.
    pub fn subject_der(&self) -> &[u8] {
        &self.common.subject_der
    }

    /// The issuer hash CRLs and envelopes use for certificates this CA issues.
    pub fn issued_cert_issuer_hash(&self) -> [u8; 8] {
        CertId::issuer_hash_of(&self.common.subject_der)
    }

    /// Whether it is self-issued (subject equals issuer).
    pub fn is_self_issued(&self) -> bool {
        self.common.subject_der == self.common.issuer_der
    }

    /// The subject key identifier, when present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.common.subject_key_id.as_deref()
    }

    pub(crate) fn name(&self) -> &Name {
        &self.common.name
    }
}
