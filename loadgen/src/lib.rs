//! # loadgen
//!
//! Open-loop load generation for dcc-router, wrk2-style: requests are scheduled at fixed
//! intended times and latency is measured from the intended time (coordinated-omission
//! corrected), per lane and per outcome, in HdrHistograms.
//!
//! Pipeline of a run ([`run::run`]):
//!
//! ```text
//! scenario (TOML) ─► Plan (schedule, phases, events) ─► signer_pool threads (sign ahead)
//!     ─► per-sender channels ─► sender tasks (wait for intended time, send, never block)
//!     ─► target (inproc router | mock | quic | https) ─► per-task recorder ─► collector each second
//!     ─► report: text, JSON, .hgrm per lane, .hlog, HTML
//! ```
#![forbid(unsafe_code)]

pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod duis;
pub mod expect;
pub mod instance;
pub mod merge;
pub mod outcome;
pub mod population;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod sender;
pub mod signer_pool;
pub mod target;
pub mod workload;
