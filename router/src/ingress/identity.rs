//! Who is on the other end of a connection.
//!
//! The TLS client certificate (already verified against the TLS CA by rustls) names one DCC
//! User: its subject carries the User's EUI-64 as `x500UniqueIdentifier`, as Organisation
//! Certificates do. A connection may send Service Requests whose originator is that User —
//! or, for a Shared Resource Provider, a failed Supplier's requests while a revocation delay
//! names that SRP (the router's admission decides that, since it owns the delay state).

use dcc_signing::Eui64;

/// The authenticated peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The User the client certificate names.
    pub user: Eui64,
}

/// Why a connection's peer has no usable identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No client certificate (cannot happen with the server's verifier; kept for safety).
    #[error("no client certificate")]
    NoCertificate,
    /// The certificate's subject carries no EUI-64.
    #[error("client certificate: {0}")]
    Certificate(#[from] dcc_signing::pki::PkiError),
}

impl PeerIdentity {
    /// Reads the identity from an established connection's client certificate.
    pub fn from_connection(conn: &quinn::Connection) -> Result<Self, IdentityError> {
        let certs = conn
            .peer_identity()
            .and_then(|any| {
                any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                    .ok()
            })
            .ok_or(IdentityError::NoCertificate)?;
        let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
        Self::from_cert_der(leaf.as_ref())
    }

    /// Reads the identity from a DER certificate.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, IdentityError> {
        let user = dcc_signing::pki::OrgCertificate::from_der(der)?.subject_eui64;
        Ok(PeerIdentity { user })
    }
}
