//! Chain validation: an Organisation Certificate, through issuing CAs, to a configured root.
//!
//! Time is a parameter (Unix seconds), never the wall clock, so that validation is
//! deterministic and testable. Each refusal has its own [`ChainError`] variant.

use std::collections::HashSet;

use super::cert::{CaCertificate, Common, OrgCertificate};
use crate::CertId;

/// The longest chain accepted: leaf, up to this many intermediates, root.
pub const MAX_INTERMEDIATES: usize = 4;

/// Why a certificate chain is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// No trust anchor or intermediate has the certificate's issuer as subject.
    #[error("{subject}: issuer {issuer} is not a trusted or known CA")]
    UnknownIssuer {
        /// The certificate.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// A CA of the right name exists but its key did not sign the certificate.
    #[error("{subject}: signature does not verify with the key of {issuer}")]
    BadSignature {
        /// The certificate.
        subject: String,
        /// Its claimed issuer.
        issuer: String,
    },
    /// The certificate expired before `at`.
    #[error("{subject}: expired (not after {not_after}, checked at {at})")]
    Expired {
        /// The certificate.
        subject: String,
        /// End of validity, Unix seconds.
        not_after: u64,
        /// The time checked, Unix seconds.
        at: u64,
    },
    /// The certificate is not valid yet at `at`.
    #[error("{subject}: not valid before {not_before} (checked at {at})")]
    NotYetValid {
        /// The certificate.
        subject: String,
        /// Start of validity, Unix seconds.
        not_before: u64,
        /// The time checked, Unix seconds.
        at: u64,
    },
    /// An issuer's basic constraints do not say `CA:TRUE`.
    #[error("{0}: issuer is not a CA")]
    IssuerNotCa(String),
    /// An issuer's key usage lacks `keyCertSign`.
    #[error("{0}: issuer key usage lacks keyCertSign")]
    IssuerCannotSign(String),
    /// The basic constraints path length is exceeded.
    #[error("{0}: path length constraint exceeded")]
    PathLength(String),
    /// The end-entity certificate's key usage lacks `digitalSignature`.
    #[error("{0}: key usage lacks digitalSignature (not a signing certificate)")]
    NotForSigning(String),
    /// The end-entity certificate claims to be a CA.
    #[error("{0}: an end-entity certificate must not be a CA")]
    LeafIsCa(String),
    /// A critical extension this validator does not understand.
    #[error("{subject}: unsupported critical extension {oid}")]
    UnsupportedCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension.
        oid: String,
    },
    /// The chain is longer than [`MAX_INTERMEDIATES`] intermediates.
    #[error("chain longer than {MAX_INTERMEDIATES} intermediates")]
    TooLong,
    /// The certificate is on a CRL.
    #[error("certificate {0} is revoked")]
    Revoked(CertId),
}

/// The configured roots, and certificates trusted by pinning.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    roots: Vec<CaCertificate>,
    pinned: Vec<Vec<u8>>,
}

impl TrustAnchors {
    /// Trusts these root CAs.
    pub fn new(roots: Vec<CaCertificate>) -> Self {
        TrustAnchors {
            roots,
            pinned: Vec::new(),
        }
    }

    /// Adds a root.
    pub fn add_root(&mut self, root: CaCertificate) {
        self.roots.push(root);
    }

    /// Trusts one end-entity certificate by its exact DER (the DCC Boxed XML-signing
    /// certificates do not chain to a published CA). Validity and key usage are still checked.
    pub fn pin(&mut self, cert: &OrgCertificate) {
        self.pinned.push(cert.der.clone());
    }

    /// The roots.
    pub fn roots(&self) -> &[CaCertificate] {
        &self.roots
    }
}

/// Validates Organisation Certificates against [`TrustAnchors`], through known intermediates.
#[derive(Clone, Debug, Default)]
pub struct ChainValidator {
    anchors: TrustAnchors,
    intermediates: Vec<CaCertificate>,
    revoked: HashSet<CertId>,
}

fn check_time(c: &Common, at: u64) -> Result<(), ChainError> {
    if at < c.not_before {
        return Err(ChainError::NotYetValid {
            subject: c.subject.clone(),
            not_before: c.not_before,
            at,
        });
    }
    if at > c.not_after {
        return Err(ChainError::Expired {
            subject: c.subject.clone(),
            not_after: c.not_after,
            at,
        });
    }
    Ok(())
}

fn check_critical(c: &Common) -> Result<(), ChainError> {
    match c.unknown_critical {
        Some(oid) => Err(ChainError::UnsupportedCriticalExtension {
            subject: c.subject.clone(),
            oid: oid.to_string(),
        }),
        None => Ok(()),
    }
}

impl ChainValidator {
    /// A validator for these anchors, with no intermediates yet.
    pub fn new(anchors: TrustAnchors) -> Self {
        ChainValidator {
            anchors,
            intermediates: Vec::new(),
            revoked: HashSet::new(),
        }
    }

    /// Adds an intermediate (issuing) CA. It is not trusted by itself: it must chain too.
    pub fn with_intermediate(mut self, ca: CaCertificate) -> Self {
        self.intermediates.push(ca);
        self
    }

    /// Adds intermediates.
    pub fn add_intermediate(&mut self, ca: CaCertificate) {
        self.intermediates.push(ca);
    }

    /// Marks certificates as revoked (from a verified [`super::Crl`]).
    pub fn add_revoked(&mut self, ids: impl IntoIterator<Item = CertId>) {
        self.revoked.extend(ids);
    }

    /// The anchors.
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Validates `leaf` at Unix time `at`: an unbroken chain of ECDSA P-256 signatures to a
    /// root, names chaining, every certificate within its validity, every issuer a CA allowed
    /// to sign certificates, and the leaf a non-CA with `digitalSignature`.
    pub fn validate(&self, leaf: &OrgCertificate, at: u64) -> Result<(), ChainError> {
        let c = &leaf.common;
        check_critical(c)?;
        if c.is_ca {
            return Err(ChainError::LeafIsCa(c.subject.clone()));
        }
        if !leaf.key_usage.digital_signature {
            return Err(ChainError::NotForSigning(c.subject.clone()));
        }
        check_time(c, at)?;
        if self.revoked.contains(&leaf.id) {
            return Err(ChainError::Revoked(leaf.id));
        }
        if self.anchors.pinned.contains(&leaf.der) {
            return Ok(());
        }
        self.chain_up(c, at, 0)
    }

    /// Validates a CA certificate itself (e.g. an issuing CA before trusting its CRLs).
    pub fn validate_ca(&self, ca: &CaCertificate, at: u64) -> Result<(), ChainError> {
        if self.anchors.roots.iter().any(|r| r.der == ca.der) {
            return check_time(&ca.common, at);
        }
        check_critical(&ca.common)?;
        check_time(&ca.common, at)?;
        self.chain_up(&ca.common, at, 1)
    }

    /// Finds and checks the issuer of `c`, recursing until a root. `depth` counts the
    /// intermediates already below.
    fn chain_up(&self, c: &Common, at: u64, depth: usize) -> Result<(), ChainError> {
        if depth > MAX_INTERMEDIATES {
            return Err(ChainError::TooLong);
        }
        let named = |ca: &&CaCertificate| ca.common.subject_der == c.issuer_der;
        let mut first_err = None;
        // Roots first: a chain that reaches one ends there.
        for root in self.anchors.roots.iter().filter(named) {
            match self.check_link(c, root, at, depth) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for ca in self.intermediates.iter().filter(named) {
            // A self-issued intermediate cannot lead anywhere new.
            if ca.common.der == c.der {
                continue;
            }
            let r = self.check_link(c, ca, at, depth).and_then(|()| {
                check_critical(&ca.common)?;
                self.chain_up(&ca.common, at, depth + 1)
            });
            match r {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| ChainError::UnknownIssuer {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
        }))
    }

    /// Checks that `issuer` signed `c` and may do so at `at`.
    fn check_link(
        &self,
        c: &Common,
        issuer: &CaCertificate,
        at: u64,
        depth: usize,
    ) -> Result<(), ChainError> {
        let i = &issuer.common;
        if !c.signed.verified_by(&i.public_key) {
            return Err(ChainError::BadSignature {
                subject: c.subject.clone(),
                issuer: i.subject.clone(),
            });
        }
        if !i.is_ca {
            return Err(ChainError::IssuerNotCa(i.subject.clone()));
        }
        if let Some(ku) = i.key_usage {
            if !ku.key_cert_sign {
                return Err(ChainError::IssuerCannotSign(i.subject.clone()));
            }
        }
        if let Some(n) = i.path_len {
            if depth > usize::from(n) {
                return Err(ChainError::PathLength(i.subject.clone()));
            }
        }
        check_time(i, at)
    }
}
