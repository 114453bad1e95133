//! XML-DSig verification as DCC Boxed does it, split so that the expensive half runs where the
//! router runs its envelope signatures: on worker threads, through the same [`PreparedKey`] /
//! [`Verifier`] (the known-signer tables serve XML and envelopes alike).
//!
//! The cheap half ([`SignedDuis::decode`], on the I/O path): one streaming pass that checks the
//! document and produces the canonical bytes. The expensive half ([`SignedDuis::verify`], or
//! [`SignedDuis::check_reference`] + a [`VerifyJob`] in a batch): two SHA-256 and one ECDSA.
//!
//! The signer is named by `X509IssuerSerial` only (issuer Name string, decimal serial), as DCC
//! Boxed writes it; [`XmlKeyring`] finds the certificate by that pair, comparing issuer Names
//! after removing the spaces between RDNs (`CN=U1, OU=07` is `CN=U1,OU=07`).

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::parse::{DuisDocument, Limits, RawSignature};
use super::request::RequestHeader;
use super::text::{base64_decode, bytes_to_decimal, decimal_to_bytes};
use super::DuisError;
use crate::pki::OrgCertificate;
use crate::verify::{PreparedKey, Verifier, VerifyJob};

/// A signer as `ds:X509IssuerSerial` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssuerSerial {
    /// `X509IssuerName`, as written (`CN=Z1,OU=07`).
    pub issuer: String,
    /// `X509SerialNumber` as big-endian magnitude bytes, no leading zeros.
    pub serial: Vec<u8>,
}

impl IssuerSerial {
    /// The pair for a certificate: its issuer Name (RFC 4514) and serial.
    pub fn of(cert: &OrgCertificate) -> Self {
        IssuerSerial {
            issuer: cert.issuer.clone(),
            serial: cert
                .serial
                .iter()
                .copied()
                .skip_while(|&b| b == 0)
                .collect(),
        }
    }

    /// The serial in decimal, as `X509SerialNumber` writes it.
    pub fn serial_decimal(&self) -> String {
        bytes_to_decimal(&self.serial)
    }

    /// The issuer Name compared as DCC Boxed's names compare: RDNs trimmed, attribute types
    /// upper-cased.
    fn normalized_issuer(&self) -> String {
        normalize_name(&self.issuer)
    }
}

fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, rdn) in name.split(',').enumerate() {
        if i > 0 {
            out.push(',');
        }
        let rdn = rdn.trim();
        match rdn.split_once('=') {
            Some((t, v)) => {
                out.push_str(&t.trim().to_ascii_uppercase());
                out.push('=');
                out.push_str(v.trim());
            }
            None => out.push_str(rdn),
        }
    }
    out
}

/// A `ds:Signature` as DUIS uses it, checked: the algorithms are exclusive C14N, ECDSA-SHA256,
/// one Reference to the whole document with the enveloped-signature transform and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlSignature {
    /// `SignedInfo`, exclusive C14N: the bytes the ECDSA signature is over.
    pub signed_info: Vec<u8>,
    /// The Reference's `DigestValue`.
    pub digest_value: [u8; 32],
    /// `SignatureValue`: raw `r ‖ s`.
    pub signature: [u8; 64],
    /// The signer.
    pub signer: IssuerSerial,
}

impl XmlSignature {
    pub(crate) fn from_raw(raw: &RawSignature) -> Result<Self, DuisError> {
        if let Some(what) = raw.unsupported {
            return Err(DuisError::UnsupportedSignature(what));
        }
        if !raw.signed_info_seen {
            return Err(DuisError::Missing("ds:SignedInfo"));
        }
        if raw.references == 0 {
            return Err(DuisError::Missing("ds:Reference"));
        }
        if raw.transforms == 0 {
            return Err(DuisError::UnsupportedSignature(
                "no enveloped-signature transform",
            ));
        }
        let dv = raw
            .digest_value
            .as_deref()
            .ok_or(DuisError::Missing("ds:DigestValue"))?;
        let digest_value: [u8; 32] = base64_decode(dv)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                DuisError::invalid("ds:DigestValue", dv, "must be 32 bytes of base64")
            })?;
        let sv = raw
            .signature_value
            .as_deref()
            .ok_or(DuisError::Missing("ds:SignatureValue"))?;
        let signature: [u8; 64] = base64_decode(sv)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                DuisError::invalid(
                    "ds:SignatureValue",
                    sv,
                    "must be 64 bytes (r ‖ s) of base64",
                )
            })?;
        let serial_text = raw
            .serial_number
            .as_deref()
            .ok_or(DuisError::Missing("ds:X509SerialNumber"))?;
        let issuer = raw
            .issuer_name
            .as_deref()
            .ok_or(DuisError::Missing("ds:X509IssuerName"))?
            .trim()
            .to_owned();
        let serial = decimal_to_bytes(serial_text).ok_or_else(|| {
            DuisError::invalid(
                "ds:X509SerialNumber",
                serial_text,
                "must be a decimal integer",
            )
        })?;
        Ok(XmlSignature {
            signed_info: raw.signed_info.clone(),
            digest_value,
            signature,
            signer: IssuerSerial { issuer, serial },
        })
    }

    /// SHA-256 of the canonical `SignedInfo`: the prehash ECDSA verifies.
    pub fn signed_info_digest(&self) -> [u8; 32] {
        Sha256::digest(&self.signed_info).into()
    }
}

/// A signed DUIS document, read and canonicalised, not yet verified.
#[derive(Debug, Clone)]
pub struct SignedDuis {
    /// The document (header fields, canonical form).
    pub document: DuisDocument,
    /// Its signature's parts.
    pub signature: XmlSignature,
}

impl SignedDuis {
    /// Reads a signed document (any root) under the default limits; refuses one without a
    /// well-formed DUIS signature.
    pub fn decode(input: &[u8]) -> Result<Self, DuisError> {
        Self::decode_with(input, &Limits::default())
    }

    /// As [`SignedDuis::decode`], under `limits`.
    pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Self, DuisError> {
        let document = DuisDocument::parse_with(input, limits)?;
        Self::from_document(document)
    }

    /// Takes the signature out of a parsed document.
    pub fn from_document(document: DuisDocument) -> Result<Self, DuisError> {
        let raw = document.signature.as_ref().ok_or(DuisError::NoSignature)?;
        let signature = XmlSignature::from_raw(raw)?;
        Ok(SignedDuis {
            document,
            signature,
        })
    }

    /// SHA-256 of the canonical document without its Signature: what `DigestValue` must be.
    pub fn reference_digest(&self) -> [u8; 32] {
        Sha256::digest(&self.document.canonical).into()
    }

    /// Checks the Reference: the document's digest equals `DigestValue`.
    pub fn check_reference(&self) -> Result<(), DuisError> {
        if self.reference_digest() == self.signature.digest_value {
            Ok(())
        } else {
            Err(DuisError::DigestMismatch)
        }
    }

    /// The ECDSA half as a batch job for [`Verifier::verify_batch`]: pass the
    /// [`XmlSignature::signed_info_digest`] computed by the caller (it must outlive the job).
    pub fn verify_job<'a>(
        &'a self,
        key: &'a dyn PreparedKey,
        signed_info_digest: &'a [u8; 32],
    ) -> VerifyJob<'a> {
        VerifyJob {
            key,
            digest: signed_info_digest,
            signature: &self.signature.signature,
        }
    }

    /// Verifies both halves with the signer's prepared key: the Reference digest, then the
    /// ECDSA signature over `SignedInfo`.
    pub fn verify(&self, key: &dyn PreparedKey) -> Result<(), DuisError> {
        self.check_reference()?;
        key.verify_prehash(
            &self.signature.signed_info_digest(),
            &self.signature.signature,
        )
        .map_err(|_| DuisError::BadSignature)
    }
}

/// A DUIS Service Request decoded for the router: the checked header and the signed document.
#[derive(Debug, Clone)]
pub struct DuisRequest {
    /// The typed, checked header.
    pub header: RequestHeader,
    /// The document and its signature, to verify on a worker thread.
    pub signed: SignedDuis,
}

impl DuisRequest {
    /// Reads and checks a signed `sr:Request` under the default limits: well-formed and
    /// bounded, header valid (RequestID, SRV, CV allowed for the SRV), signature present and
    /// of the DUIS form. Does no hashing of the document and no ECDSA.
    pub fn decode(input: &[u8]) -> Result<Self, DuisError> {
        Self::decode_with(input, &Limits::default())
    }

    /// As [`DuisRequest::decode`], under `limits`.
    pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Self, DuisError> {
        let document = DuisDocument::parse_with(input, limits)?;
        let header = document.request_header()?;
        let signed = SignedDuis::from_document(document)?;
        Ok(DuisRequest { header, signed })
    }
}

/// One signer's certificate and prepared key.
#[derive(Debug, Clone)]
pub struct KeyringEntry {
    /// The certificate.
    pub cert: OrgCertificate,
    /// Its key, prepared by the keyring's verifier.
    pub key: Arc<dyn PreparedKey>,
}

/// Certificates by `X509IssuerSerial`, their keys prepared once by one [`Verifier`] (such as
/// the known-signer verifier the router's workers use).
#[derive(Debug, Default)]
pub struct XmlKeyring {
    entries: HashMap<(String, Vec<u8>), KeyringEntry>,
}

/// A document whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The document and signature.
    pub signed: SignedDuis,
    /// The certificate that verified it.
    pub cert: OrgCertificate,
}

impl XmlKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a certificate, preparing its key with `verifier` (expensive for table-based
    /// verifiers: do it when the certificate is loaded).
    pub fn insert(&mut self, cert: OrgCertificate, verifier: &dyn Verifier) {
        let id = IssuerSerial::of(&cert);
        let key = verifier.prepare(&cert.public_key);
        self.entries.insert(
            (id.normalized_issuer(), id.serial),
            KeyringEntry { cert, key },
        );
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for a signer.
    pub fn get(&self, signer: &IssuerSerial) -> Option<&KeyringEntry> {
        self.entries
            .get(&(signer.normalized_issuer(), signer.serial.clone()))
    }

    /// Finds the signer of `signed` or says who is unknown.
    pub fn signer_of(&self, signed: &SignedDuis) -> Result<&KeyringEntry, DuisError> {
        let s = &signed.signature.signer;
        self.get(s).ok_or_else(|| DuisError::UnknownSigner {
            issuer: s.issuer.chars().take(120).collect(),
            serial: s.serial_decimal(),
        })
    }

    /// Reads, checks (header by its root) and verifies one document in one call.
    pub fn verify(&self, input: &[u8], limits: &Limits) -> Result<Verified, DuisError> {
        let document = DuisDocument::parse_with(input, limits)?;
        document.check_header()?;
        let signed = SignedDuis::from_document(document)?;
        let entry = self.signer_of(&signed)?;
        signed.verify(entry.key.as_ref())?;
        Ok(Verified {
            cert: entry.cert.clone(),
            signed,
        })
    }
}
