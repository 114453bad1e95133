//! QUIC ingress: the thin network shell around the pipeline.
//!
//! * [`tls`]: TLS 1.3 with mutual authentication (rustls, ring), ALPN `dcc-sr/1`.
//! * [`identity`]: which User a connection speaks for, from its client certificate.
//! * [`frame`]: length-delimited frames with a hard maximum; a chunked, cancel-safe reader and
//!   batched writes.
//! * [`wire`]: the answer frame's layout.
//! * [`server`]: accept loop, limits, concurrent handling, graceful shutdown.
//! * [`client`]: the client library loadgen and embedding programs use.
//!
//! # Why pipelined frames on long-lived streams
//!
//! Both framings work against the same server. The client defaults to pipelining because
//! measurement (BENCHMARKS.md, "QUIC ingress", "Stream mode") showed it cheaper: 31 µs of server
//! CPU per request against 45 µs for a stream per request, and higher throughput. A stream per
//! request pays stream setup and teardown and two tasks per stream, and cannot share a write (or
//! a packet) with other requests; stream-per-request stays available for clients that prefer
//! isolation from another request's head-of-line blocking.
//!
//! # Per-request cost
//!
//! The ingress keeps per-request work to a frame copy and a queue push: no task, future or
//! lock per request (see [`server`]). Answers are queued from the verify worker through
//! [`Router::submit_with`](crate::Router::submit_with) and written in batches; the client
//! packs requests issued together into one write (and usually one packet).

pub mod client;
pub mod frame;
pub mod identity;
pub mod server;
pub mod tls;
pub mod wire;
