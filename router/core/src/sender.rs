//! Who handed a request to the router: the identity an ingress authenticated.
//!
//! Every ingress (QUIC, HTTPS/DUIS, an embedding program) enters the pipeline through one
//! entry point, [`Router::submit_from`](crate::Router::submit_from), with the [`Sender`] it
//! established. The binding of that identity to the request's originator is admission
//! **check 0** (`pipeline/admit.rs`): it runs after the request is decoded — once — and
//! before anything else, so no ingress has to decode a request twice to police it and no
//! ingress can forget to.

use dcc_signing::Eui64;

/// Who handed a request to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sender {
    /// The embedding program itself (tests, benches, a stand-in that authenticates its callers
    /// elsewhere): trusted to submit for any originator, so check 0 does not apply.
    Embedder,
    /// A connection whose client certificate names this DCC User: it may submit requests
    /// that this User originates (check 0 refuses others E1 `connection-not-originator`).
    User(Eui64),
}

impl Sender {
    /// The authenticated User, if any.
    pub fn user(self) -> Option<Eui64> {
        match self {
            Sender::Embedder => None,
            Sender::User(u) => Some(u),
        }
    }
}
