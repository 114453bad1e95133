//! X.509 CRLs: issued by a [`CertificateAuthority`], parsed back only after their signature
//! verifies against the issuing CA.

use der::asn1::{BitString, OctetString, Uint};
use der::{Decode, Encode};
use p256::ecdsa::signature::Signer as _;
use spki::AlgorithmIdentifierOwned;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Version;

use super::cert::{CaCertificate, SignedPart};
use super::issue::CertificateAuthority;
use super::pem::{one_der, to_pem};
use super::time::{from_x509, to_x509};
use super::{key_identifier, PkiError, OID_AKI, OID_CRL_NUMBER, OID_ECDSA_SHA256};
use crate::CertId;

/// Hard limit on a CRL (DER), about 25 000 entries.
pub const MAX_CRL_LEN: usize = 1024 * 1024;

/// A verified CRL.
#[derive(Clone, Debug)]
pub struct Crl {
    /// The issuer Name, RFC 4514 string.
    pub issuer: String,
    /// When it was issued, Unix seconds.
    pub this_update: u64,
    /// When the next one is due, Unix seconds.
    pub next_update: Option<u64>,
    /// The CRL number, when present and at most 64 bits.
    pub crl_number: Option<u64>,
    /// The revoked certificates, as the ids envelopes name signers by.
    pub revoked: Vec<CertId>,
    /// The whole CRL, DER.
    pub der: Vec<u8>,
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    }
}

impl Crl {
    /// Parses a CRL (PEM `X509 CRL` or DER), verifying that `issuer` signed it.
    pub fn parse_verified(input: &[u8], issuer: &CaCertificate) -> Result<Self, PkiError> {
        let der = one_der(input, "X509 CRL", MAX_CRL_LEN)?;
        let signed = SignedPart::parse(&der)?;
        let list = CertificateList::from_der(&der)?;
        let tbs = &list.tbs_cert_list;
        let issuer_der = tbs.issuer.to_der()?;
        if issuer_der != issuer.subject_der() {
            return Err(PkiError::CrlIssuer {
                crl: tbs.issuer.to_string(),
                expected: issuer.subject.clone(),
            });
        }
        if !signed.verified_by(&issuer.public_key) {
            return Err(PkiError::CrlSignature(issuer.subject.clone()));
        }
        let hash = CertId::issuer_hash_of(&issuer_der);
        let revoked = tbs
            .revoked_certificates
            .iter()
            .flatten()
            .map(|r| CertId::new(hash, r.serial_number.as_bytes()).ok_or(PkiError::Serial))
            .collect::<Result<Vec<_>, _>>()?;
        let mut crl_number = None;
        for e in tbs.crl_extensions.iter().flatten() {
            if e.extn_id == OID_CRL_NUMBER {
                let n = CrlNumber::from_der(e.extn_value.as_bytes()).map_err(|e| {
                    PkiError::Extension {
                        name: "CRL number",
                        reason: e.to_string(),
                    }
                })?;
                let b = n.0.as_bytes();
                if b.len() <= 8 {
                    let mut a = [0u8; 8];
                    a[8 - b.len()..].copy_from_slice(b);
                    crl_number = Some(u64::from_be_bytes(a));
                }
            }
        }
        Ok(Crl {
            issuer: tbs.issuer.to_string(),
            this_update: from_x509(tbs.this_update),
            next_update: tbs.next_update.map(from_x509),
            crl_number,
            revoked,
            der,
        })
    }

    /// Whether the certificate is on this CRL.
    pub fn is_revoked(&self, id: &CertId) -> bool {
        self.revoked.contains(id)
    }

    /// The CRL as PEM (`-----BEGIN X509 CRL-----`).
    pub fn to_pem(&self) -> String {
        to_pem("X509 CRL", &self.der)
    }
}

impl CertificateAuthority {
    /// Issues a v2 CRL revoking the given serial numbers (big-endian magnitudes), with a CRL
    /// number and the authority key identifier.
    pub fn issue_crl(
        &self,
        revoked_serials: &[Vec<u8>],
        this_update: u64,
        next_update: u64,
        crl_number: u64,
    ) -> Result<Crl, PkiError> {
        let at = to_x509(this_update)?;
        let mut revoked = Vec::with_capacity(revoked_serials.len());
        for s in revoked_serials {
            let first = s.iter().position(|&b| b != 0).ok_or(PkiError::Serial)?;
            if s.len() - first > crate::MAX_SERIAL_LEN {
                return Err(PkiError::Serial);
            }
            revoked.push(RevokedCert {
                serial_number: SerialNumber::new(&s[first..])?,
                revocation_date: at,
                crl_entry_extensions: None,
            });
        }
        let key_id = self
            .cert
            .subject_key_id()
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| key_identifier(&self.cert.public_key).to_vec());
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_id)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let number = CrlNumber(Uint::new(&crl_number.to_be_bytes())?);
        let tbs = TbsCertList {
            version: Version::V2,
            signature: ecdsa_sha256(),
            issuer: self.cert.name().clone(),
            this_update: at,
            next_update: Some(to_x509(next_update)?),
            revoked_certificates: if revoked.is_empty() {
                None
            } else {
                Some(revoked)
            },
            crl_extensions: Some(vec![
                Extension {
                    extn_id: OID_AKI,
                    critical: false,
                    extn_value: OctetString::new(aki.to_der()?)?,
                },
                Extension {
                    extn_id: OID_CRL_NUMBER,
                    critical: false,
                    extn_value: OctetString::new(number.to_der()?)?,
                },
            ]),
        };
        let tbs_der = tbs.to_der()?;
        let sig: p256::ecdsa::Signature = self.signer.signing_key().sign(&tbs_der);
        let list = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: ecdsa_sha256(),
            signature: BitString::from_bytes(sig.to_der().as_bytes())?,
        };
        Crl::parse_verified(&list.to_der()?, &self.cert)
    }
}
