//! DUIS XML: the DCC User Interface Specification's signed XML Service Requests and
//! Responses, read, checked, verified and signed exactly as DCC Boxed does.
//!
//! Why a module of its own: real DCC Users send DUIS XML with XML-DSig, not the router's binary
//! envelope. Both must go through the same pipeline, so this module turns a DUIS document into
//! the same facts the envelope carries (Request ID, SRV, CV, signer) plus the bytes to hash and
//! verify, and leaves the expensive work to the same verifier type.
//!
//! | module | concept |
//! |---|---|
//! | [`parse`] (via [`DuisDocument`]) | one streaming pass: hostile-input bounds, fields, canonical bytes |
//! | `c14n` | Canonical XML 1.0 and Exclusive C14N rendered as the document streams |
//! | `text` | character rules: references, normalisation, escaping, base64, decimal serials |
//! | [`request`] | the Request/Response header checked against the DUIS v5.4 schema |
//! | [`matrix`] | the 129 SRVs and the Command Variants each allows |
//! | [`verify`] | XML-DSig verification through [`crate::verify::PreparedKey`] |
//! | [`sign`] | signing documents, building signed Responses |
//!
//! For the router:
//! ```no_run
//! use dcc_signing::duis::{DuisRequest, XmlKeyring, XmlSigner, DuisResponse};
//! # fn demo(bytes: &[u8], keyring: &XmlKeyring, signer: &XmlSigner) -> Result<(), dcc_signing::duis::DuisError> {
//! let request = DuisRequest::decode(bytes)?;            // decode path: parse + c14n, no hashing
//! let entry = keyring.signer_of(&request.signed)?;      // X509IssuerSerial → certificate, key
//! request.signed.verify(entry.key.as_ref())?;           // worker: 2 × SHA-256 + ECDSA
//! let answer = DuisResponse::new(request.header.request_id, Some(request.header.srv), "I0", 0);
//! let signed_xml = signer.sign_response(&answer)?;
//! # Ok(()) }
//! ```

mod c14n;
mod error;
pub mod matrix;
pub mod parse;
pub mod request;
pub mod sign;
mod text;
pub mod verify;

pub use c14n::C14nMode;
pub use error::DuisError;
pub use parse::{canonicalize, DuisDocument, Limits};
pub use request::{parse_request_id, RequestHeader, ResponseHeader};
pub use sign::{date_time_ms, signature_element_with, DuisResponse, ResponseBody, XmlSigner};
pub use verify::{
    DuisRequest, IssuerSerial, KeyringEntry, SignedDuis, Verified, XmlKeyring, XmlSignature,
};

/// The DUIS namespace (`sr:`).
pub const SR_NS: &str = "http://www.dccinterface.co.uk/ServiceUserGateway";
/// The XML-DSig namespace (`ds:`).
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Exclusive XML Canonicalization 1.0, without comments.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// ECDSA with SHA-256.
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// The enveloped-signature transform.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// SHA-256.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
