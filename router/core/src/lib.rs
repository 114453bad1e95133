//! # dcc-router-core
//!
//! The routing core for GB smart-metering DCC Service Requests, as a library a DCC stand-in
//! embeds: the pipeline, state, policy, admin, store and response types, with no network,
//! TLS, HTTP or command-line dependency. The `dcc-router` crate wraps it in thin ingresses
//! (QUIC, HTTPS/DUIS) that all enter through [`Router::submit_from`] with the [`Sender`]
//! they authenticated, and re-exports everything here. A request goes through six stages, one module each under [`pipeline`]:
//!
//! ```text
//!  submit_from(sender, bytes)                                          egress
//!    │                                                                   ▲
//!    ▼                                                                   │
//!  decode ──► admit ──► lanes[L0..L3] ──► verify workers ──► commit ──► dispatch ──► Response
//!  (zero-copy (cheap     (bounded flume;   (OS threads;       (cert state  (I0 on delivery,
//!   header)   checks in   full → busy;     deadline → busy;    re-checked,  I99 for dated /
//!             domain      weighted rounds, SHA-256 + batched   anti-replay  scheduled)
//!             order,      highest first)   ECDSA P-256)        committed,
//!             classify,                                        under the
//!             rate limit)                                      cert's lock)
//! ```
//!
//! * Where is …? decode: [`pipeline`]`/decode.rs`; the checks and their order:
//!   `pipeline/admit.rs`; lanes and the scheduler: [`pipeline::lanes`]; ECDSA:
//!   `pipeline/verify.rs`; anti-replay commit and the revocation race: `pipeline/commit.rs` and
//!   [`state::replay`]; response codes: [`response`].
//! * State lives in `dashmap`s ([`state`]) and changes only through [`AdminHandle`].
//! * Policy is data ([`policy`], embedded `default-policy.toml`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use dcc_router_core::{Policy, Router, State};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let router = Router::builder()
//!     .policy(Policy::default())
//!     .state(Arc::new(State::new()))
//!     .workers(4)
//!     .build()?;
//! // router.admin().add_certificate(..), upsert_party(..), upsert_device(..)
//! // let response = router.submit(envelope_bytes).await;
//! router.shutdown();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod capacity;
pub mod clock;
pub mod counters;
pub mod egress;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod response;
pub mod router;
pub mod sender;
pub mod state;
pub mod store;

/// The README's embedding snippet, compiled as a doctest so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use admin::{Actor, AdminError, AdminHandle};
pub use clock::Clock;
pub use counters::{Counters, CountersSnapshot};
pub use egress::{Command, CosCounterSignature, DispatchReply, Dispatcher, SimulatedWan, WanModel};
pub use pipeline::lanes::Lane;
pub use pipeline::outbox::after_answers;
pub use policy::{Policy, PolicyError};
pub use response::{Response, ResponseCode, Timings, UnknownResponseCode};
pub use router::{BuildError, ResponseFuture, Router, RouterBuilder};
pub use sender::Sender;
pub use state::{
    AssuranceStatus, CertRecord, CertStatus, CosCertificate, Device, DeviceStatus, KeyPurpose,
    Party, PaymentMode, State, SuspendedRights,
};
