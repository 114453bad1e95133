//! The public client API: what a program that talks to a running `dcc-router serve` needs —
//! loadgen, the process tests and `dcc-router admin` use nothing else.
//!
//! * [`quic`]: the Service Request client ([`Client`]): pipelined frames over QUIC with
//!   mutual TLS, per-request timeouts, typed answers ([`WireAnswer::response_code`],
//!   [`WireAnswer::lane`] give the router's own [`ResponseCode`](crate::ResponseCode) and
//!   [`Lane`](crate::Lane)).
//! * [`admin`]: the admin client ([`AdminClient`], [`admin_call`]) and the protocol's types.
//! * [`https`]: the DUIS client ([`DuisClient`]): DUIS XML to the service paths over HTTPS
//!   with a client certificate, or plain HTTP.
//! * [`demo`]: the demo population of a server on embedded defaults.

pub mod admin;
pub mod demo;
pub mod https;
pub mod quic;

pub use crate::ingress::tls::TlsMaterial;
pub use crate::ingress::wire::WireAnswer;
pub use admin::{admin_call, admin_call_with, AdminClient, AdminClientError};
pub use https::{DuisClient, DuisClientError, DuisReply};
pub use quic::{Client, ClientError, ClientOptions, ConnectError, StreamMode, TransportError};
