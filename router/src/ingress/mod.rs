//! QUIC ingress: the thin network shell around the pipeline.
//!
//! * [`tls`]: TLS 1.3 with mutual authentication (rustls, ring), ALPN `dcc-sr/1`.
//! * [`identity`]: which User a connection speaks for, from its client certificate.
//! * [`frame`]: length-delimited frames with a hard maximum; a chunked, cancel-safe reader and
//!   batched writes.
//! * [`wire`]: the answer frame's layout.
//! * [`server`]: accept loop, limits, concurrent handling, graceful shutdown.
//! * [`https`]: the HTTPS (DUIS) ingress on DCC Boxed's paths, over the same TLS material.
//! * the client library loadgen and embedding programs use is [`crate::client`].
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

//!
//! # Memory
//!
//! What one authenticated connection can make the server hold is bounded, whatever the peer
//! does (never reads its answers, opens every stream it may, sends as much as the windows
//! allow), and every term comes from `[limits]` (see `server::config`):
//!
//! ```text
//! per connection ≤ 2 × connection_receive_window
//!                + max_streams_per_connection × (4 + MAX_FRAME_LEN + STREAM_OVERHEAD)
//!                + max_in_flight_per_connection × REQUEST_OVERHEAD
//!                + send_window
//!                + CONNECTION_OVERHEAD
//! ```
//!
//! * quinn buffers at most `connection_receive_window` bytes the server has not read (QUIC
//!   connection flow control; `stream_receive_window` per stream), and may keep up to as much
//!   again as slack in its reassembly buffers (packet buffers shared by small frames);
//! * each stream's [`frame::FrameReader`] holds at most one frame (`4 + MAX_FRAME_LEN`, 64 KiB);
//!   bytes it has read returned their credit to the peer, so this term is per stream, not
//!   inside the windows: it dominates, and `max_streams_per_connection` is what bounds it;
//! * requests in flight hold only their answer ([`server::REQUEST_OVERHEAD`]) until written;
//! * answers written to quinn but not acknowledged are at most `send_window` bytes;
//! * [`server::STREAM_OVERHEAD`] and [`server::CONNECTION_OVERHEAD`] are allowances for tasks,
//!   channels, quinn and TLS state.
//!
//! With the defaults (1 MiB, 64 streams, 4,096 in flight, 1 MiB) that is ≈ 8.75 MiB per
//! connection ([`server::Limits::memory_per_connection`]); the server's total is that times
//! `max_connections` (plus `max_handshakes` handshakes, each far less), plus what the router
//! queues (its lane capacities × the request size), shared by all connections. The test
//! `serve_process` checks the bound against the RSS of a real server under clients that never
//! read.
//!
//! # Who gets in
//!
//! Before the handshake nobody is known, so strangers are held to what costs little
//! ([`server::Limits`]): handshakes in progress have a cap of their own (`max_handshakes`) and a
//! short timeout; past half the cap, or at a source's limit, an address that has not proved
//! itself is asked to (QUIC Retry, no server state), so spoofed floods hold nothing; one source
//! IP holds at most `max_connections_per_source` connections. After the handshake, a User holds
//! at most `max_connections_per_user`, and `admin_reserved_connections` of `max_connections`
//! are for admins only, so an admin can always get in.

pub mod frame;
pub mod https;
pub mod identity;
pub mod server;
pub mod tls;
pub mod wire;
