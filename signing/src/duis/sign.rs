//! Signing DUIS documents the way DCC Boxed does, and building the router's signed DUIS
//! Responses and Acknowledgements.
//!
//! The signature is an enveloped `ds:Signature`, last child of the root, declaring its own
//! `ds` prefix (so it does not depend on what the root declares), with exclusive C14N,
//! ECDSA-SHA256, one Reference `URI=""` with the enveloped-signature transform and SHA-256, a
//! one-line base64 `SignatureValue` (raw `r ‖ s`) and `X509IssuerSerial` naming the signer.
//! An existing Signature (such as a template's placeholder) is replaced where it stands; the
//! rest of the document is kept byte for byte.
//!
//! Why the SignedInfo is written by hand: its exclusive canonical form depends only on itself
//! (it uses the `ds` prefix alone), so the bytes ECDSA signs are known without re-parsing; the
//! tests re-parse every signed document and check that the verifier sees the same bytes.

use sha2::{Digest, Sha256};

use super::parse::{prepare, DuisDocument, Limits};
use super::text::{base64_encode, escape_text};
use super::verify::IssuerSerial;
use super::{DuisError, DSIG_NS, ECDSA_SHA256, ENVELOPED, EXC_C14N, SHA256, SR_NS};
use crate::pki::OrgCertificate;
use crate::{RequestId, Signer, Srv};

/// Signs DUIS documents with one key under one certificate.
#[derive(Debug)]
pub struct XmlSigner {
    signer: Signer,
    id: IssuerSerial,
}

impl XmlSigner {
    /// A signer for `cert`'s key; refuses a key that is not the certificate's.
    pub fn new(signer: Signer, cert: &OrgCertificate) -> Result<Self, DuisError> {
        if signer.public_key() != cert.public_key {
            return Err(DuisError::KeyMismatch);
        }
        Ok(XmlSigner {
            signer,
            id: IssuerSerial::of(cert),
        })
    }

    /// The `X509IssuerSerial` this signer writes.
    pub fn issuer_serial(&self) -> &IssuerSerial {
        &self.id
    }

    /// Signs a DUIS document: inserts (or replaces) its enveloped `ds:Signature`.
    pub fn sign_document(&self, input: &[u8]) -> Result<Vec<u8>, DuisError> {
        let limits = Limits::default();
        let s = prepare(input, &limits)?;
        let doc = DuisDocument::parse_with(s.as_bytes(), &limits)?;
        let (cut_from, cut_to) = match doc.signature_span {
            Some(span) => span,
            None => {
                let at = doc
                    .root_end
                    .ok_or(DuisError::Missing("the root's end tag"))?;
                if !s.get(at..).is_some_and(|r| r.starts_with("</")) {
                    return Err(DuisError::invalid(
                        "root",
                        doc.root(),
                        "must not be an empty element",
                    ));
                }
                (at, at)
            }
        };
        // The Reference digest: the canonical form already excludes any old Signature, and
        // removing it from the bytes joins the text around it — the same characters.
        let digest: [u8; 32] = Sha256::digest(&doc.canonical).into();
        let signature = self.signature_element(&digest)?;
        let mut out = Vec::with_capacity(s.len() + signature.len());
        out.extend_from_slice(s.get(..cut_from).unwrap_or_default().as_bytes());
        out.extend_from_slice(signature.as_bytes());
        out.extend_from_slice(s.get(cut_to..).unwrap_or_default().as_bytes());
        Ok(out)
    }

    /// The `ds:Signature` element for a document whose Reference digest is `digest`.
    fn signature_element(&self, digest: &[u8; 32]) -> Result<String, DuisError> {
        signature_element_with(&self.id, digest, |prehash| {
            self.signer.sign_prehash(prehash)
        })
    }

    /// Builds and signs a DUIS Response.
    pub fn sign_response(&self, response: &DuisResponse) -> Result<Vec<u8>, DuisError> {
        self.sign_document(response.to_xml().as_bytes())
    }
}

/// The enveloped `ds:Signature` element, as [`XmlSigner::sign_document`] writes it, for a
/// document whose Reference digest (SHA-256 of [`DuisDocument::canonical`]) is `digest`,
/// naming the signer `id` and signing the SignedInfo's prehash with `sign` (which returns the
/// raw `r ‖ s`).
///
/// Why public: a load generator signs the same document shape thousands of times a second
/// with only the RequestID changing; it keeps the canonical and written forms of the shape,
/// hashes the two with the new RequestID in between, and signs with a faster (variable-time)
/// signer of its own — see `loadgen`'s DUIS module. Everyone else calls
/// [`XmlSigner::sign_document`].
pub fn signature_element_with(
    id: &IssuerSerial,
    digest: &[u8; 32],
    sign: impl FnOnce(&[u8; 32]) -> Result<[u8; 64], crate::SignError>,
) -> Result<String, DuisError> {
    let (written, canonical) = signed_info(&base64_encode(digest));
    let prehash: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
    let sig = sign(&prehash).map_err(|_| DuisError::KeyMismatch)?;
    let mut issuer = Vec::new();
    escape_text(&mut issuer, &id.issuer);
    Ok(format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\">{written}<ds:SignatureValue>{}</ds:SignatureValue>\
<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>{}</ds:X509IssuerName>\
<ds:X509SerialNumber>{}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature>",
        base64_encode(&sig),
        String::from_utf8_lossy(&issuer),
        id.serial_decimal()
    ))
}

/// `SignedInfo` as written into the document and in its exclusive canonical form.
fn signed_info(digest_b64: &str) -> (String, String) {
    let written = format!(
        "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
<ds:SignatureMethod Algorithm=\"{ECDSA_SHA256}\"/><ds:Reference URI=\"\"><ds:Transforms>\
<ds:Transform Algorithm=\"{ENVELOPED}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/>\
<ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
    );
    let canonical = format!(
        "<ds:SignedInfo xmlns:ds=\"{DSIG_NS}\"><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\">\
</ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"{ECDSA_SHA256}\"></ds:SignatureMethod>\
<ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"></ds:Transform>\
</ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod>\
<ds:DigestValue>{digest_b64}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
    );
    (written, canonical)
}

/// What goes in a DUIS Response's Body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseBody {
    /// `ResponseMessage` with ServiceReference and ServiceReferenceVariant only (an
    /// acknowledgement, or a refusal).
    Plain,
    /// `ResponseMessage/GBCSPayload` (base64).
    GbcsPayload(String),
    /// `ResponseMessage/PreCommand/GBCSPayload` (base64): the answer to a CV 4 request.
    PreCommand(String),
}

/// A DUIS Response or Acknowledgement to build and sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuisResponse {
    /// The request's ID, echoed (absent when the request's could not be read).
    pub request_id: Option<RequestId>,
    /// `ResponseID`: by default the request ID with the two EUIs swapped.
    pub response_id: Option<RequestId>,
    /// `ResponseCode`: `I0`, `I99`, an `E` code, or one of the router's `R` codes.
    pub response_code: String,
    /// `ResponseDateTime`, Unix milliseconds.
    pub response_time_ms: u64,
    /// The SRV answered (absent when unknown).
    pub srv: Option<Srv>,
    /// The Body.
    pub body: ResponseBody,
    /// `schemaVersion` (default `5.4`).
    pub schema_version: String,
}

impl DuisResponse {
    /// A response to `request_id` with `code` at `time_ms`: ResponseID derived (EUIs swapped),
    /// plain body.
    pub fn new(request_id: RequestId, srv: Option<Srv>, code: &str, time_ms: u64) -> Self {
        DuisResponse {
            request_id: Some(request_id),
            response_id: Some(request_id.response_id()),
            response_code: code.to_owned(),
            response_time_ms: time_ms,
            srv,
            body: ResponseBody::Plain,
            schema_version: "5.4".into(),
        }
    }

    /// An acknowledgement (no ResponseID), as DCC Boxed sends for I99 and refusals.
    pub fn acknowledgement(
        request_id: RequestId,
        srv: Option<Srv>,
        code: &str,
        time_ms: u64,
    ) -> Self {
        DuisResponse {
            response_id: None,
            ..Self::new(request_id, srv, code, time_ms)
        }
    }

    /// The unsigned document.
    pub fn to_xml(&self) -> String {
        let mut x = String::with_capacity(1024);
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><sr:Response xmlns:sr=\"");
        x.push_str(SR_NS);
        x.push_str("\" schemaVersion=\"");
        push_text(&mut x, &self.schema_version);
        x.push_str("\"><sr:Header>");
        if let Some(r) = self.request_id {
            x.push_str(&format!("<sr:RequestID>{r}</sr:RequestID>"));
        }
        if let Some(r) = self.response_id {
            x.push_str(&format!("<sr:ResponseID>{r}</sr:ResponseID>"));
        }
        x.push_str("<sr:ResponseCode>");
        push_text(&mut x, &self.response_code);
        x.push_str("</sr:ResponseCode><sr:ResponseDateTime>");
        x.push_str(&date_time_ms(self.response_time_ms));
        x.push_str("</sr:ResponseDateTime></sr:Header><sr:Body><sr:ResponseMessage>");
        if let Some(srv) = self.srv {
            let (a, b) = srv.reference();
            x.push_str(&format!(
                "<sr:ServiceReference>{a}.{b}</sr:ServiceReference>\
<sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant>"
            ));
        }
        match &self.body {
            ResponseBody::Plain => {}
            ResponseBody::GbcsPayload(p) => {
                x.push_str("<sr:GBCSPayload>");
                push_text(&mut x, p);
                x.push_str("</sr:GBCSPayload>");
            }
            ResponseBody::PreCommand(p) => {
                x.push_str("<sr:PreCommand><sr:GBCSPayload>");
                push_text(&mut x, p);
                x.push_str("</sr:GBCSPayload></sr:PreCommand>");
            }
        }
        x.push_str("</sr:ResponseMessage></sr:Body></sr:Response>");
        x
    }
}

fn push_text(x: &mut String, s: &str) {
    let mut b = Vec::new();
    escape_text(&mut b, s);
    x.push_str(&String::from_utf8_lossy(&b));
}

/// Unix milliseconds as `xs:dateTime` in UTC with milliseconds, as DCC Boxed writes
/// `ResponseDateTime` (`2022-08-17T15:45:42.790Z`).
pub fn date_time_ms(ms: u64) -> String {
    let base = crate::pki::rfc3339(ms / 1000);
    match base.strip_suffix('Z') {
        Some(b) => format!("{b}.{:03}Z", ms % 1000),
        None => base,
    }
}
