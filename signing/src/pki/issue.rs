//! Issuing certificates in the SMKI profile with `x509-cert`, signed by a p256 key.
//!
//! The TBS structures are built field by field (rather than through
//! `x509_cert::builder::CertificateBuilder`, whose profiles add extensions the SMKI profile does
//! not have, such as `nonRepudiation` and 20-byte key identifiers), then DER-encoded and signed
//! with ECDSA P-256/SHA-256. Subject Names are built from raw `AttributeTypeAndValue`s because
//! the `x500UniqueIdentifier` is a BIT STRING, which string-based Name builders cannot write.

use std::net::IpAddr;

use der::asn1::{Any, BitString, Ia5String, OctetString, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use p256::ecdsa::signature::Signer as _;
use rand_core::RngCore;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage,
    KeyUsage as X509KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

use super::cert::{CaCertificate, KeyUsage, OrgCertificate};
use super::pem::key_to_pem;
use super::time::to_x509;
use super::{
    key_identifier, PkiError, OID_AKI, OID_BASIC_CONSTRAINTS, OID_CERT_POLICIES, OID_CN,
    OID_ECDSA_SHA256, OID_EKU, OID_KEY_USAGE, OID_KP_CLIENT_AUTH, OID_KP_SERVER_AUTH, OID_OU,
    OID_SAN, OID_SKI, OID_X500_UNIQUE_IDENTIFIER, SMKI_ORG_CERT_POLICY,
};
use crate::{Eui64, RemotePartyRole, Signer};

fn enc<E: std::fmt::Display>(e: E) -> PkiError {
    PkiError::Encode(e.to_string())
}

fn rdn(
    oid: der::asn1::ObjectIdentifier,
    value: Any,
) -> Result<RelativeDistinguishedName, PkiError> {
    let atv = AttributeTypeAndValue { oid, value };
    Ok(RelativeDistinguishedName(
        SetOfVec::try_from(vec![atv]).map_err(enc)?,
    ))
}

fn utf8(s: &str) -> Result<Any, PkiError> {
    Any::encode_from(&Utf8StringRef::new(s)?).map_err(enc)
}

/// An Organisation Certificate subject: `[CN=cn,] OU=<role hex>, x500UniqueIdentifier=<EUI-64>`,
/// in the DCC Boxed order.
pub fn org_subject(
    common_name: Option<&str>,
    role: RemotePartyRole,
    eui64: Eui64,
) -> Result<Name, PkiError> {
    let mut rdns = Vec::with_capacity(3);
    if let Some(cn) = common_name {
        rdns.push(rdn(OID_CN, utf8(cn)?)?);
    }
    rdns.push(rdn(OID_OU, utf8(&role.to_ou())?)?);
    let uid = Any::encode_from(&BitString::from_bytes(eui64.as_bytes())?).map_err(enc)?;
    rdns.push(rdn(OID_X500_UNIQUE_IDENTIFIER, uid)?);
    Ok(RdnSequence(rdns))
}

/// A CA subject: `OU=07, CN=cn` (as the DCC Boxed issuer `OU=07, CN=Z1`).
pub fn ca_subject(common_name: &str) -> Result<Name, PkiError> {
    Ok(RdnSequence(vec![
        rdn(OID_OU, utf8(&RemotePartyRole::IssuingAuthority.to_ou())?)?,
        rdn(OID_CN, utf8(common_name)?)?,
    ]))
}

fn ext<T: Encode>(
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn key_usage_ext(ku: KeyUsage) -> Result<Extension, PkiError> {
    let flags = [
        (ku.digital_signature, KeyUsages::DigitalSignature),
        (ku.key_agreement, KeyUsages::KeyAgreement),
        (ku.key_cert_sign, KeyUsages::KeyCertSign),
        (ku.crl_sign, KeyUsages::CRLSign),
    ];
    let mut set = flags.iter().filter(|(on, _)| *on).map(|(_, f)| *f);
    let first = set
        .next()
        .ok_or_else(|| PkiError::Encode("key usage with no bit set".into()))?;
    let mut value = X509KeyUsage(first.into());
    for f in set {
        value.0 |= f;
    }
    ext(OID_KEY_USAGE, true, &value)
}

fn ski_ext(key: &p256::PublicKey) -> Result<Extension, PkiError> {
    ext(
        OID_SKI,
        false,
        &SubjectKeyIdentifier(OctetString::new(key_identifier(key).to_vec())?),
    )
}

fn aki_ext(issuer_key_id: &[u8]) -> Result<Extension, PkiError> {
    ext(
        OID_AKI,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(issuer_key_id.to_vec())?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )
}

fn policies_ext(critical: bool) -> Result<Extension, PkiError> {
    ext(
        OID_CERT_POLICIES,
        critical,
        &CertificatePolicies(vec![PolicyInformation {
            policy_identifier: SMKI_ORG_CERT_POLICY,
            policy_qualifiers: None,
        }]),
    )
}

/// A fresh random positive 16-byte serial number.
pub fn random_serial() -> Vec<u8> {
    let mut b = vec![0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    // Positive, and exactly 16 octets (no leading zero to strip).
    b[0] = (b[0] & 0x7F) | 0x40;
    b
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    }
}

/// Builds, signs and DER-encodes a certificate.
#[allow(clippy::too_many_arguments)]
fn build(
    issuer: Name,
    signer: &Signer,
    subject: Name,
    key: &p256::PublicKey,
    serial: &[u8],
    not_before: u64,
    not_after: u64,
    extensions: Vec<Extension>,
) -> Result<Vec<u8>, PkiError> {
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(serial)?,
        signature: ecdsa_sha256(),
        issuer,
        validity: Validity {
            not_before: to_x509(not_before)?,
            not_after: to_x509(not_after)?,
        },
        subject,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_key(*key).map_err(enc)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der()?;
    let sig: p256::ecdsa::Signature = signer.signing_key().sign(&tbs_der);
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(sig.to_der().as_bytes())?,
    };
    Ok(cert.to_der()?)
}

/// What an Organisation Certificate is issued for.
#[derive(Clone, Debug)]
pub struct OrgCertRequest {
    /// The User's EUI-64.
    pub subject_eui64: Eui64,
    /// The remote-party role (subject OU).
    pub role: RemotePartyRole,
    /// An optional subject CN.
    pub common_name: Option<String>,
    /// The subject's public key.
    pub public_key: p256::PublicKey,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Key usage; the profile is [`KeyUsage::SIGNING`] (or [`KeyUsage::KEY_AGREEMENT`]).
    pub key_usage: KeyUsage,
    /// The serial; random when `None`.
    pub serial: Option<Vec<u8>>,
}

impl OrgCertRequest {
    /// A signing certificate request: key usage digitalSignature, random serial, no CN.
    pub fn signing(
        subject_eui64: Eui64,
        role: RemotePartyRole,
        public_key: p256::PublicKey,
        not_before: u64,
        not_after: u64,
    ) -> Self {
        OrgCertRequest {
            subject_eui64,
            role,
            common_name: None,
            public_key,
            not_before,
            not_after,
            key_usage: KeyUsage::SIGNING,
            serial: None,
        }
    }
}

/// What a TLS certificate (for the router's QUIC/TLS endpoints) is issued for.
#[derive(Clone, Debug)]
pub struct TlsCertRequest {
    /// The subject: an Organisation subject for a User's client certificate, or any Name.
    pub subject: Name,
    /// The subject's public key.
    pub public_key: p256::PublicKey,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Add extended key usage `clientAuth`.
    pub client_auth: bool,
    /// Add extended key usage `serverAuth`.
    pub server_auth: bool,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addrs: Vec<IpAddr>,
    /// The serial; random when `None`.
    pub serial: Option<Vec<u8>>,
}

/// A CA: its certificate and signing key. Issues sub-CAs, Organisation Certificates, TLS
/// certificates and CRLs ([`CertificateAuthority::issue_crl`]).
#[derive(Clone)]
pub struct CertificateAuthority {
    /// The CA's certificate.
    pub cert: CaCertificate,
    pub(crate) signer: Signer,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.cert.subject)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A self-signed root CA `OU=07, CN=common_name`.
    pub fn new_root(
        common_name: &str,
        signer: Signer,
        not_before: u64,
        not_after: u64,
    ) -> Result<Self, PkiError> {
        Self::new_root_with_serial(common_name, signer, not_before, not_after, &random_serial())
    }

    /// [`CertificateAuthority::new_root`] with a chosen serial number (big-endian magnitude).
    pub fn new_root_with_serial(
        common_name: &str,
        signer: Signer,
        not_before: u64,
        not_after: u64,
        serial: &[u8],
    ) -> Result<Self, PkiError> {
        let name = ca_subject(common_name)?;
        let key = signer.public_key();
        let exts = vec![
            ext(
                OID_BASIC_CONSTRAINTS,
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
            )?,
            key_usage_ext(KeyUsage::CA)?,
            ski_ext(&key)?,
        ];
        let der = build(
            name.clone(),
            &signer,
            name,
            &key,
            serial,
            not_before,
            not_after,
            exts,
        )?;
        Ok(CertificateAuthority {
            cert: CaCertificate::from_der(&der)?,
            signer,
        })
    }

    /// Issues a subordinate (issuing) CA `OU=07, CN=common_name` that may issue end-entity
    /// certificates only (path length 0).
    pub fn issue_ca(
        &self,
        common_name: &str,
        signer: Signer,
        not_before: u64,
        not_after: u64,
    ) -> Result<CertificateAuthority, PkiError> {
        self.issue_ca_with_serial(common_name, signer, not_before, not_after, &random_serial())
    }

    /// [`CertificateAuthority::issue_ca`] with a chosen serial number.
    pub fn issue_ca_with_serial(
        &self,
        common_name: &str,
        signer: Signer,
        not_before: u64,
        not_after: u64,
        serial: &[u8],
    ) -> Result<CertificateAuthority, PkiError> {
        let key = signer.public_key();
        let exts = vec![
            ext(
                OID_BASIC_CONSTRAINTS,
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: Some(0),
                },
            )?,
            key_usage_ext(KeyUsage::CA)?,
            ski_ext(&key)?,
            aki_ext(&self.key_id())?,
            // Non-critical here: TLS stacks (webpki) refuse unknown critical extensions on CAs.
            policies_ext(false)?,
        ];
        let der = build(
            self.cert.name().clone(),
            &self.signer,
            ca_subject(common_name)?,
            &key,
            serial,
            not_before,
            not_after,
            exts,
        )?;
        Ok(CertificateAuthority {
            cert: CaCertificate::from_der(&der)?,
            signer,
        })
    }

    /// Wraps a CA certificate and its key, checking that they match.
    pub fn from_parts(cert: CaCertificate, signer: Signer) -> Result<Self, PkiError> {
        if signer.public_key() != cert.public_key {
            return Err(PkiError::KeyMismatch);
        }
        Ok(CertificateAuthority { cert, signer })
    }

    /// Loads a CA from its certificate (PEM/DER) and PKCS#8 key (PEM/DER).
    pub fn load(cert: &[u8], key: &[u8]) -> Result<Self, PkiError> {
        if key.len() > super::MAX_PEM_LEN {
            return Err(PkiError::TooLarge {
                len: key.len(),
                max: super::MAX_PEM_LEN,
            });
        }
        let signer = Signer::from_pkcs8(key).map_err(|e| PkiError::Key(e.to_string()))?;
        Self::from_parts(CaCertificate::parse(cert)?, signer)
    }

    /// The CA's signing key.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The CA's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> Result<String, PkiError> {
        key_to_pem(&self.signer)
    }

    /// The key identifier written as AKI in what this CA issues: its own SKI when it has one.
    fn key_id(&self) -> Vec<u8> {
        self.cert
            .subject_key_id()
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| key_identifier(&self.cert.public_key).to_vec())
    }

    /// Issues an Organisation Certificate in the SMKI profile.
    pub fn issue_org(&self, req: &OrgCertRequest) -> Result<OrgCertificate, PkiError> {
        let exts = vec![
            key_usage_ext(req.key_usage)?,
            ski_ext(&req.public_key)?,
            policies_ext(true)?,
            aki_ext(&self.key_id())?,
        ];
        let serial = req.serial.clone().unwrap_or_else(random_serial);
        let der = build(
            self.cert.name().clone(),
            &self.signer,
            org_subject(req.common_name.as_deref(), req.role, req.subject_eui64)?,
            &req.public_key,
            &serial,
            req.not_before,
            req.not_after,
            exts,
        )?;
        OrgCertificate::from_der(&der)
    }

    /// Issues a TLS certificate (key usage digitalSignature, extended key usage as asked,
    /// subject alternative names as given). Returns DER.
    pub fn issue_tls(&self, req: &TlsCertRequest) -> Result<Vec<u8>, PkiError> {
        let mut exts = vec![
            key_usage_ext(KeyUsage::SIGNING)?,
            ski_ext(&req.public_key)?,
            aki_ext(&self.key_id())?,
        ];
        let mut eku = Vec::new();
        if req.server_auth {
            eku.push(OID_KP_SERVER_AUTH);
        }
        if req.client_auth {
            eku.push(OID_KP_CLIENT_AUTH);
        }
        if !eku.is_empty() {
            exts.push(ext(OID_EKU, false, &ExtendedKeyUsage(eku))?);
        }
        let mut san = Vec::new();
        for d in &req.dns_names {
            san.push(GeneralName::DnsName(Ia5String::new(d)?));
        }
        for ip in &req.ip_addrs {
            san.push(GeneralName::from(*ip));
        }
        if !san.is_empty() {
            exts.push(ext(OID_SAN, false, &SubjectAltName(san))?);
        }
        let der = build(
            self.cert.name().clone(),
            &self.signer,
            req.subject.clone(),
            &req.public_key,
            &req.serial.clone().unwrap_or_else(random_serial),
            req.not_before,
            req.not_after,
            exts,
        )?;
        // Check that what was written reads back.
        Certificate::from_der(&der)?;
        Ok(der)
    }
}
