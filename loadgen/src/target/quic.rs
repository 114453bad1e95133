//! `quic://host:port`: a router over QUIC with client certificates from a PKI directory.
//!
//! Not supported yet: it depends on the router's QUIC ingress (a later issue). The target string
//! is recognised so that the error says so plainly instead of "unknown target".

use super::TargetError;

/// Always an error until the QUIC ingress exists.
pub fn connect(addr: &str) -> Result<std::convert::Infallible, TargetError> {
    Err(TargetError::NotSupported(format!(
        "target quic://{addr} is not yet supported: the QUIC ingress of dcc-router is a later \
         issue; use --target inproc (the default) or --target mock"
    )))
}
