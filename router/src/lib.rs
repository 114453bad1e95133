//! # dcc-router
//!
//! The DCC Service Request router as a server: the routing core ([`dcc_router_core`], re-exported
//! here whole, so `dcc_router::pipeline`, `dcc_router::Router`… name the same items) wrapped in
//! thin network shells, and the `dcc-router` command.
//!
//! * [`ingress`] — QUIC: mutual TLS, framing, limits; every request enters the core through
//!   [`Router::submit_from`] with the connection's [`Sender`], so the originator binding is
//!   admission check 0.
//! * [`server`] — `dcc-router serve`: configuration, start-up order, the admin protocol,
//!   metrics.
//! * [`client`] — the public client API (Service Requests and admin over QUIC, the demo
//!   population): what loadgen and other programs use.
//! * [`cli`] — the command line (as a library module, testable in-process).
//!
//! Embedders that need no network should depend on `dcc-router-core` alone: it builds without
//! quinn, rustls, an HTTP stack or clap.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use dcc_router_core::*;

pub mod cli;
pub mod client;
pub mod ingress;
pub mod server;
