//! Why a DUIS document was refused: one typed error, a stable short code for logs and metrics,
//! and the response code the router answers with.
//!
//! DUIS defines codes for what it checks after the document is read (E12: Command Variant not
//! valid for the SRV, E13: wrong service). It gives no public code for a document that is not
//! well-formed or schema-valid, nor for a bad signature or an unknown signer; for those the
//! router answers with its own codes (`R1` malformed, `R2` unknown certificate, `R6` bad
//! signature, documented in `router/src/response.rs`). [`DuisError::response_code`] says which.

/// A DUIS document refused while reading, checking or verifying it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DuisError {
    /// Larger than the configured limit.
    #[error("document is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The document's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Elements nested deeper than the configured limit.
    #[error("elements nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A `<!DOCTYPE …>`: refused outright (entity expansion, external entities: XXE).
    #[error("DOCTYPE declarations are refused (XXE)")]
    Doctype,
    /// An entity reference other than the five predefined ones and character references.
    #[error("entity reference &{0}; refused (only the predefined entities and character references are allowed)")]
    Entity(String),
    /// Not well-formed XML, or not UTF-8.
    #[error("not well-formed XML at byte {pos}: {msg}")]
    Xml {
        /// Byte offset where the parser stopped.
        pos: u64,
        /// What was wrong.
        msg: String,
    },
    /// The root element is not a DUIS document of the expected kind.
    #[error("root element is {found}, expected {expected}")]
    WrongRoot {
        /// The root's qualified name as written.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A required element is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An element that may appear once appears again.
    #[error("{0} appears more than once")]
    Duplicate(&'static str),
    /// A field does not match its schema type.
    #[error("{field} {value:?} is not valid: {why}")]
    Invalid {
        /// The element.
        field: &'static str,
        /// Its value (truncated).
        value: String,
        /// What the schema requires.
        why: &'static str,
    },
    /// The Command Variant is not allowed for the SRV (DUIS E12).
    #[error("command variant {cv} is not valid for SRV {srv}")]
    CommandVariantNotAllowed {
        /// The SRV.
        srv: crate::Srv,
        /// The CV.
        cv: u8,
    },
    /// No `ds:Signature` where one is required.
    #[error("no ds:Signature")]
    NoSignature,
    /// The signature uses an algorithm, transform or structure DUIS does not use.
    #[error("unsupported signature: {0}")]
    UnsupportedSignature(&'static str),
    /// No certificate known under the signature's `X509IssuerSerial`.
    #[error("unknown signer: issuer {issuer:?}, serial {serial}")]
    UnknownSigner {
        /// `X509IssuerName`.
        issuer: String,
        /// `X509SerialNumber`, decimal.
        serial: String,
    },
    /// The reference digest does not match the document.
    #[error("digest mismatch: the document was changed after it was signed")]
    DigestMismatch,
    /// The ECDSA signature over `SignedInfo` does not verify.
    #[error("bad signature: the signature value does not verify over SignedInfo")]
    BadSignature,
    /// Signing: the private key is not the certificate's.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
}

impl DuisError {
    /// A stable short code for logs, metrics and tests.
    pub fn code(&self) -> &'static str {
        match self {
            DuisError::TooLarge { .. } => "too-large",
            DuisError::TooDeep { .. } => "too-deep",
            DuisError::Doctype => "doctype",
            DuisError::Entity(_) => "entity",
            DuisError::Xml { .. } => "not-well-formed",
            DuisError::WrongRoot { .. } => "wrong-root",
            DuisError::Missing(_) => "missing-element",
            DuisError::Duplicate(_) => "duplicate-element",
            DuisError::Invalid { .. } => "invalid-value",
            DuisError::CommandVariantNotAllowed { .. } => "cv-not-allowed",
            DuisError::NoSignature => "no-signature",
            DuisError::UnsupportedSignature(_) => "unsupported-signature",
            DuisError::UnknownSigner { .. } => "unknown-signer",
            DuisError::DigestMismatch => "digest-mismatch",
            DuisError::BadSignature => "bad-signature",
            DuisError::KeyMismatch => "key-mismatch",
        }
    }

    /// The response code the router answers with: a DUIS code where DUIS defines one (`E12`),
    /// otherwise the router's own (`R1` malformed, `R2` unknown certificate, `R6` bad
    /// signature).
    pub fn response_code(&self) -> &'static str {
        match self {
            DuisError::CommandVariantNotAllowed { .. } => "E12",
            DuisError::UnknownSigner { .. } => "R2",
            DuisError::NoSignature | DuisError::DigestMismatch | DuisError::BadSignature => "R6",
            _ => "R1",
        }
    }

    pub(crate) fn invalid(field: &'static str, value: &str, why: &'static str) -> Self {
        DuisError::Invalid {
            field,
            value: value.chars().take(80).collect(),
            why,
        }
    }
}
