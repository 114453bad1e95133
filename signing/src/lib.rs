//! # dcc-signing
//!
//! The ground the DCC Service Request router stands on:
//!
//! * domain types: [`Eui64`], [`RequestId`], [`UserRole`], [`RemotePartyRole`], [`Srv`],
//!   [`CommandVariant`], [`ExecutionKind`], [`CertId`];
//! * [`duis`]: DUIS XML Service Requests and Responses, XML-DSig verified and signed as DCC
//!   Boxed does;
//! * [`envelope`]: the binary, versioned, signed Service Request format (byte table there);
//! * [`pki`]: an SMKI-profile test PKI — issue and parse Organisation Certificates and CRLs,
//!   validate chains; it also reads the real DCC Boxed certificates;
//! * [`cli`]: the `dcc-sign` command line (as a library module, testable in-process);
//! * [`sign`] and [`verify`]: ECDSA P-256/SHA-256 signing, and verification behind a trait so
//!   that faster backends slot in beside the plain `p256` reference;
//! * [`sign_fast`]: a fast, variable-time signer for load generation (same signatures as
//!   [`Signer`], not for keys that matter).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod duis;
pub mod envelope;
mod eui64;
mod ids;
mod key_kind;
pub mod pki;
mod role;
pub mod sign;
pub mod sign_fast;
mod srv;
pub mod verify;

pub use eui64::{Eui64, Eui64ParseError};
pub use ids::{CertId, RequestId, RequestIdParseError, MAX_SERIAL_LEN};
pub use key_kind::KeyKind;
pub use role::{RemotePartyRole, UserRole, UserRoleParseError};
pub use sign::{SignError, Signer};
pub use sign_fast::FastSigner;
pub use srv::{CommandVariant, ExecutionKind, Srv, SrvParseError, DUIS_SRVS};
