//! QUIC ingress: the thin network shell around the pipeline.
//!
//! * [`tls`]: TLS 1.3 with mutual authentication (rustls, ring), ALPN `dcc-sr/1`.
//! * [`identity`]: which User a connection speaks for, from its client certificate.
//! * [`frame`]: length-delimited frames with a hard maximum.
//! * [`wire`]: the answer frame's layout.
//! * [`server`]: accept loop, limits, concurrent handling, graceful shutdown.
//! * [`client`]: the client library loadgen and embedding programs use.
//!
//! # Why pipelined frames on long-lived streams
//!
//! Both framings work against the same server. The client defaults to pipelining because
//! measurement (see BENCHMARKS.md, "QUIC stream mode") showed it cheaper per request than a
//! stream per request; stream-per-request stays available for clients that prefer isolation.

pub mod client;
pub mod frame;
pub mod identity;
pub mod server;
pub mod tls;
pub mod wire;
