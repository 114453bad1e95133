//! `dcc-router serve` configuration: one TOML file, every field optional.
//!
//! ```toml
//! listen = "127.0.0.1:4433"        # QUIC (UDP) address
//! metrics = "127.0.0.1:9464"       # Prometheus text endpoint; omit or "" to disable
//! duis = "127.0.0.1:8443"          # DUIS XML over HTTPS (client certificates as on QUIC); "" disables
//! duis_plain = ""                  # DUIS over plain HTTP for test rigs (DCC Boxed clients); keep it on loopback
//! duis_max_connections_per_source = 256 # 1..=1000000; DUIS (HTTPS and plain) connections from one address
//! # duis_signing_key = "k.pem"     # the DCC XML-signing key and certificate the router signs DUIS
//! # duis_signing_cert = "c.pem"    # responses with; unset: one made at first start in data_dir/dcc-xml-sign
//! data_dir = "dcc-router-data"     # demo PKI and the state store (state.redb) live here
//! store = "durable"                # or "memory": nothing survives a restart (benchmarks)
//! verifier = "known-signer"        # or "p256": plain p256 verification, ~5–10× slower (overload demos)
//! # pki_dir = "ca/pki"              # a `dcc-sign pki init` directory; must exist. Unset: the
//!                                  # demo PKI in data_dir/pki, created on first start
//! # policy = "policy.toml"         # SRV catalogue, lanes, capacities, rate limits
//! workers = 0                      # 0..=1024 verify worker threads; 0 = one per core
//! io_threads = 1                   # 0..=1024 async runtime threads (QUIC, TLS, ingress); 0 = one per core
//! admin_users = ["02-DC-C0-00-00-00-00-7F"]
//! demo_devices = 10000             # 0..=100000000 devices registered at start (see `bootstrap`)
//! prepayment_percent = 30          # 0..=100
//! demo_suppliers = 0               # 0..=9999 national-population Suppliers in a demo PKI created now
//! demo_network_operators = 0       # 0..=9999 national-population network operators, likewise
//! demo_certs_per_user = 1          # 1..=16 Organisation Certificates each of those Users holds
//!
//! [limits]                         # every value is checked: out of range is an error
//! max_connections = 1024           # 1..=1000000; authenticated connections, admins' included
//! admin_reserved_connections = 2   # 0..max_connections; of those, only admins may use these
//! max_handshakes = 64              # 1..=100000; in progress; past half, unvalidated peers get a Retry
//! handshake_timeout_ms = 3000      # 100..=60000
//! max_connections_per_source = 64  # 1..=1000000; per source IP, handshakes included
//! max_handshakes_per_source = 8    # 1..=max_handshakes; handshakes in progress per source IP
//! max_connections_per_user = 8     # 1..=1000000; authenticated connections per User
//! idle_timeout_ms = 10000          # 1000..=3600000; silent this long = abandoned, slot freed
//! max_streams_per_connection = 64  # 1..=100000; concurrent bidirectional streams
//! stream_receive_window = 131072   # 4096..=16777216 bytes; QUIC flow control per stream
//! connection_receive_window = 1048576 # stream_receive_window..=1073741824 bytes, per connection
//! send_window = 1048576            # 4096..=1073741824 bytes unacknowledged, per connection
//! max_in_flight_per_connection = 4096 # 1..=1000000
//! drain_timeout_ms = 5000          # 0..=600000
//! ```
//!
//! Every value is checked, top level as in `[limits]`: out of range is an error naming the
//! file and line, never a value quietly replaced by another.
//!
//! # Memory bound
//!
//! One connection can make the server hold at most (see the `ingress` docs, "Memory", and
//! [`Limits::memory_per_connection`]):
//!
//! ```text
//! 2 × connection_receive_window + max_streams_per_connection × (65540 + 8 KiB)
//!   + max_in_flight_per_connection × 256 + send_window + 256 KiB
//! ```
//!
//! ≈ 8.75 MiB with the defaults; the server's total is that × (`max_connections` +
//! `max_handshakes`, a handshake holding far less), plus the
//! router's queues (shared). Size `max_connections` and `max_streams_per_connection` to the
//! memory the host has.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcc_signing::Eui64;
use serde::{Deserialize, Serialize};

use crate::ingress::https::HttpLimits;
use crate::ingress::server::Limits;
use crate::router::{default_workers, MAX_WORKERS};

pub use crate::client::demo::DEMO_ADMIN;

/// Largest `io_threads`.
pub const MAX_IO_THREADS: usize = 1024;
/// Most `demo_devices`: 100 million demo devices take tens of GiB of state; more is a typo.
pub const MAX_DEMO_DEVICES: u64 = 100_000_000;

/// A top-level value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value} is out of range {range}")]
pub struct InvalidValue {
    /// The key.
    pub key: &'static str,
    /// The value given.
    pub value: u64,
    /// The values allowed, as text (`0..=1024 (0: one per core)`).
    pub range: String,
}

/// `duis_max_connections_per_source`: how many DUIS connections (HTTPS and plain HTTP, TLS
/// handshakes included) one source address may hold; see
/// [`HttpLimits::max_connections_per_source`]. A value out of 1..=1000000 cannot be built, so
/// a file that gives one is refused with its line when read, and no code path can hand the
/// ingress a 0 (which would refuse every client) or a cap that is no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct DuisConnectionsPerSource(usize);

impl DuisConnectionsPerSource {
    /// The configuration key.
    pub const KEY: &'static str = "duis_max_connections_per_source";
    /// The most allowed (as QUIC's `[limits] max_connections_per_source`).
    pub const MAX: usize = 1_000_000;

    /// The cap.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for DuisConnectionsPerSource {
    /// The HTTPS ingress's own default (one default, kept with [`HttpLimits`]).
    fn default() -> Self {
        DuisConnectionsPerSource(HttpLimits::default().max_connections_per_source)
    }
}

impl TryFrom<u64> for DuisConnectionsPerSource {
    type Error = InvalidValue;

    fn try_from(value: u64) -> Result<Self, InvalidValue> {
        match usize::try_from(value) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(DuisConnectionsPerSource(n)),
            _ => Err(InvalidValue {
                key: Self::KEY,
                value,
                range: format!("1..={}", Self::MAX),
            }),
        }
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value of a configuration not read from a file (built in code, or changed by a
    /// command-line flag) is out of range.
    #[error("configuration: {0}")]
    Value(#[from] InvalidValue),
    /// A `[limits]` value of a configuration not read from a file is out of range.
    #[error("configuration: {0}")]
    Limit(#[from] InvalidLimit),
}

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// Prometheus endpoint (`None` disables it).
    #[serde(deserialize_with = "optional_addr")]
    pub metrics: Option<SocketAddr>,
    /// DUIS over HTTPS (`None` disables it).
    #[serde(deserialize_with = "optional_addr")]
    pub duis: Option<SocketAddr>,
    /// DUIS over plain HTTP, for test rigs (`None`, the default, disables it).
    #[serde(deserialize_with = "optional_addr")]
    pub duis_plain: Option<SocketAddr>,
    /// Connections one source address may hold on each DUIS listener.
    pub duis_max_connections_per_source: DuisConnectionsPerSource,
    /// The DCC XML-signing key (PKCS#8 PEM) for DUIS responses; with `duis_signing_cert`.
    pub duis_signing_key: Option<PathBuf>,
    /// Its certificate (PEM).
    pub duis_signing_cert: Option<PathBuf>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where state is kept.
    pub store: StoreMode,
    /// Which signature verifier the workers use.
    pub verifier: VerifierMode,
    /// PKI directory (default `data_dir/pki`).
    pub pki_dir: Option<PathBuf>,
    /// Policy file (default: the embedded policy).
    pub policy: Option<PathBuf>,
    /// Verify workers, 0..=[`MAX_WORKERS`]; 0 = [`default_workers`] (one per core). The one
    /// default lives with the router builder, so that `serve` and a router built in code
    /// agree.
    pub workers: usize,
    /// Threads of the async runtime that runs QUIC, TLS and the ingress (0 = one per core).
    ///
    /// Why one by default: a quinn endpoint is one UDP socket driven by one task, so a handful
    /// of connections keeps one thread busy at most, while every further runtime thread adds
    /// cross-thread wake-ups per request (measured in BENCHMARKS.md, "QUIC ingress"). The
    /// signature work — most of a request's CPU — runs on the `workers`. Raise it for many busy
    /// connections.
    pub io_threads: usize,
    /// Users whose connections speak the admin protocol.
    pub admin_users: Vec<Eui64>,
    /// Demo devices registered at start.
    pub demo_devices: u64,
    /// Share of demo devices in prepayment mode.
    pub prepayment_percent: u8,
    /// National-population Suppliers (`supplier-0001`…) of a demo PKI created at this start
    /// (`dcc_signing::pki::demo::Population`); an existing PKI is never changed.
    pub demo_suppliers: usize,
    /// National-population network operators (`netop-0001`…), likewise.
    pub demo_network_operators: usize,
    /// Organisation Certificates each national-population User holds.
    pub demo_certs_per_user: usize,
    /// Connection limits.
    pub limits: LimitsConfig,
    /// **Tests and demonstrations only**: run the router's wall clock (certificate validity,
    /// revocation-delay ends, DP092 maintenance windows) from this Unix time at the real rate,
    /// e.g. to cross a maintenance window (20:00–08:00 UTC only) at any time of day. Never in
    /// production: validity and delay ends would be judged at the wrong time.
    pub simulated_clock_start: Option<u64>,
}

impl ServeConfig {
    /// The national population of a demo PKI created at this start.
    pub fn demo_population(&self) -> dcc_signing::pki::demo::Population {
        dcc_signing::pki::demo::Population {
            bulk_users: 0,
            suppliers: self.demo_suppliers,
            network_operators: self.demo_network_operators,
            certs_per_user: self.demo_certs_per_user,
        }
    }
}

/// Where the server keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StoreMode {
    /// `DATA_DIR/state.redb`: revocations, delays, Parties, devices, CRLs, the audit log and
    /// anti-replay marks survive a crash; an accepted answer waits for its group commit.
    #[default]
    Durable,
    /// Nothing survives a restart (benchmarks, throwaway test servers). Said at start.
    Memory,
}

/// Which signature verifier the verify workers use (also loadgen's, for its embedded router
/// and its scenario files: one type, so the names cannot drift apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VerifierMode {
    /// Per-key precomputed tables ([`dcc_signing::verify::KnownSignerVerifier`]): the fast
    /// path, and the default.
    #[default]
    KnownSigner,
    /// Plain `p256` verification, several times slower. For demonstrations of overload on a
    /// small machine: a load generator sharing the server's cores can offer twice a
    /// plain-p256 worker's capacity, not twice a known-signer worker's (BENCHMARKS.md, "QUIC
    /// overload"). The published capacity estimate is measured with the verifier in force.
    P256,
}

impl VerifierMode {
    /// The verifier itself.
    pub fn build(self) -> std::sync::Arc<dyn dcc_signing::verify::Verifier> {
        match self {
            VerifierMode::KnownSigner => {
                std::sync::Arc::new(dcc_signing::verify::KnownSignerVerifier::default())
            }
            VerifierMode::P256 => std::sync::Arc::new(dcc_signing::verify::P256Verifier),
        }
    }

    /// Its name in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            VerifierMode::KnownSigner => "known-signer",
            VerifierMode::P256 => "p256",
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// See [`Limits::max_connections`].
    pub max_connections: usize,
    /// See [`Limits::admin_reserved_connections`].
    pub admin_reserved_connections: usize,
    /// See [`Limits::max_handshakes`].
    pub max_handshakes: usize,
    /// See [`Limits::handshake_timeout`].
    pub handshake_timeout_ms: u64,
    /// See [`Limits::max_connections_per_source`].
    pub max_connections_per_source: usize,
    /// See [`Limits::max_handshakes_per_source`].
    pub max_handshakes_per_source: usize,
    /// See [`Limits::max_connections_per_user`].
    pub max_connections_per_user: usize,
    /// See [`Limits::idle_timeout`].
    pub idle_timeout_ms: u64,
    /// See [`Limits::max_streams_per_connection`].
    pub max_streams_per_connection: u32,
    /// See [`Limits::stream_receive_window`] (bytes).
    pub stream_receive_window: u32,
    /// See [`Limits::connection_receive_window`] (bytes).
    pub connection_receive_window: u32,
    /// See [`Limits::send_window`] (bytes).
    pub send_window: u32,
    /// See [`Limits::max_in_flight_per_connection`].
    pub max_in_flight_per_connection: usize,
    /// See [`Limits::drain_timeout`].
    pub drain_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_connections: l.max_connections,
            admin_reserved_connections: l.admin_reserved_connections,
            max_handshakes: l.max_handshakes,
            handshake_timeout_ms: l.handshake_timeout.as_millis() as u64,
            max_connections_per_source: l.max_connections_per_source,
            max_handshakes_per_source: l.max_handshakes_per_source,
            max_connections_per_user: l.max_connections_per_user,
            idle_timeout_ms: l.idle_timeout.as_millis() as u64,
            max_streams_per_connection: l.max_streams_per_connection,
            stream_receive_window: l.stream_receive_window,
            connection_receive_window: l.connection_receive_window,
            send_window: l.send_window,
            max_in_flight_per_connection: l.max_in_flight_per_connection,
            drain_timeout_ms: l.drain_timeout.as_millis() as u64,
        }
    }
}

/// A `[limits]` value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[limits] {key} = {value} is out of range {range}")]
pub struct InvalidLimit {
    /// The key.
    pub key: &'static str,
    /// The value given.
    pub value: u64,
    /// The values allowed, as text (`1..=1000000`).
    pub range: String,
}

impl LimitsConfig {
    /// Checks every value against its range. Why ranges and not clamping: a 0 would stop the
    /// server serving (no connection, no stream, no request), an absurd value would remove the
    /// bound it stands for, and either is a typo the operator should hear about, with the line.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        fn check(key: &'static str, value: u64, lo: u64, hi: u64) -> Result<(), InvalidLimit> {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(InvalidLimit {
                    key,
                    value,
                    range: format!("{lo}..={hi}"),
                })
            }
        }
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        check("max_connections", n(self.max_connections), 1, 1_000_000)?;
        check(
            "admin_reserved_connections",
            n(self.admin_reserved_connections),
            0,
            n(self.max_connections) - 1,
        )?;
        check("max_handshakes", n(self.max_handshakes), 1, 100_000)?;
        check(
            "handshake_timeout_ms",
            self.handshake_timeout_ms,
            100,
            60_000,
        )?;
        check(
            "max_connections_per_source",
            n(self.max_connections_per_source),
            1,
            1_000_000,
        )?;
        check(
            "max_handshakes_per_source",
            n(self.max_handshakes_per_source),
            1,
            n(self.max_handshakes),
        )?;
        check(
            "max_connections_per_user",
            n(self.max_connections_per_user),
            1,
            1_000_000,
        )?;
        check("idle_timeout_ms", self.idle_timeout_ms, 1_000, 3_600_000)?;
        check(
            "max_streams_per_connection",
            u64::from(self.max_streams_per_connection),
            1,
            100_000,
        )?;
        let window = u64::from(self.stream_receive_window);
        check("stream_receive_window", window, 4096, 16 << 20)?;
        check(
            "connection_receive_window",
            u64::from(self.connection_receive_window),
            window,
            1 << 30,
        )?;
        check("send_window", u64::from(self.send_window), 4096, 1 << 30)?;
        check(
            "max_in_flight_per_connection",
            n(self.max_in_flight_per_connection),
            1,
            1_000_000,
        )?;
        check("drain_timeout_ms", self.drain_timeout_ms, 0, 600_000)?;
        Ok(())
    }
}

/// The ingress limits of a configuration; call [`LimitsConfig::validate`] first (values are
/// taken as they are).
impl From<LimitsConfig> for Limits {
    fn from(c: LimitsConfig) -> Self {
        Limits {
            max_connections: c.max_connections,
            admin_reserved_connections: c.admin_reserved_connections,
            max_handshakes: c.max_handshakes,
            handshake_timeout: Duration::from_millis(c.handshake_timeout_ms),
            max_connections_per_source: c.max_connections_per_source,
            max_handshakes_per_source: c.max_handshakes_per_source,
            max_connections_per_user: c.max_connections_per_user,
            idle_timeout: Duration::from_millis(c.idle_timeout_ms),
            max_streams_per_connection: c.max_streams_per_connection,
            stream_receive_window: c.stream_receive_window,
            connection_receive_window: c.connection_receive_window,
            send_window: c.send_window,
            max_in_flight_per_connection: c.max_in_flight_per_connection,
            drain_timeout: Duration::from_millis(c.drain_timeout_ms),
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            duis: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
            duis_plain: None,
            duis_max_connections_per_source: DuisConnectionsPerSource::default(),
            duis_signing_key: None,
            duis_signing_cert: None,
            data_dir: PathBuf::from("dcc-router-data"),
            store: StoreMode::Durable,
            verifier: VerifierMode::KnownSigner,
            pki_dir: None,
            policy: None,
            workers: 0,
            io_threads: 1,
            admin_users: vec![DEMO_ADMIN],
            demo_devices: crate::client::demo::DEFAULT_DEMO_DEVICES,
            prepayment_percent: crate::client::demo::DEFAULT_PREPAYMENT_PERCENT,
            demo_suppliers: 0,
            demo_network_operators: 0,
            demo_certs_per_user: 1,
            limits: LimitsConfig::default(),
            simulated_clock_start: None,
        }
    }
}

fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

impl ServeConfig {
    /// Parses configuration text; `path` names it in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: ServeConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: e
                .span()
                .map(|s| {
                    text.as_bytes()[..s.start.min(text.len())]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1
                })
                .unwrap_or(0),
            message: e.message().to_owned(),
        })?;
        cfg.validate_top().map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, e.key),
            message: e.to_string(),
        })?;
        cfg.limits.validate().map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, e.key),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// Checks every value against its range (the top level, then `[limits]`). A file is
    /// checked when read, with its lines; this is for a configuration built in code or changed
    /// by flags since. Why refuse rather than clamp: a value quietly replaced is a server that
    /// does not run as configured, and the operator never hears of the typo.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_top()?;
        self.limits.validate()?;
        Ok(())
    }

    /// The top-level checks of [`ServeConfig::validate`].
    pub fn validate_top(&self) -> Result<(), InvalidValue> {
        fn check(key: &'static str, value: u64, hi: u64, note: &str) -> Result<(), InvalidValue> {
            if value <= hi {
                Ok(())
            } else {
                Err(InvalidValue {
                    key,
                    value,
                    range: format!("0..={hi}{note}"),
                })
            }
        }
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        check(
            "workers",
            n(self.workers),
            n(MAX_WORKERS),
            " (0: one per core)",
        )?;
        check(
            "io_threads",
            n(self.io_threads),
            n(MAX_IO_THREADS),
            " (0: one per core)",
        )?;
        check("demo_devices", self.demo_devices, MAX_DEMO_DEVICES, "")?;
        let most = dcc_signing::pki::demo::MAX_POPULATION;
        check(
            "demo_suppliers",
            n(self.demo_suppliers),
            n(most.suppliers),
            "",
        )?;
        check(
            "demo_network_operators",
            n(self.demo_network_operators),
            n(most.network_operators),
            "",
        )?;
        if !(1..=most.certs_per_user).contains(&self.demo_certs_per_user) {
            return Err(InvalidValue {
                key: "demo_certs_per_user",
                value: n(self.demo_certs_per_user),
                range: format!("1..={}", most.certs_per_user),
            });
        }
        check(
            "prepayment_percent",
            u64::from(self.prepayment_percent),
            100,
            "",
        )?;
        Ok(())
    }

    /// The verify workers this configuration starts: `workers`, or [`default_workers`] for 0.
    pub fn workers_in_force(&self) -> usize {
        if self.workers == 0 {
            default_workers()
        } else {
            self.workers
        }
    }

    /// Whether the PKI directory is the default demo one (`pki_dir` unset), which `serve`
    /// creates on first start; a `pki_dir` given must exist.
    pub fn pki_is_demo(&self) -> bool {
        self.pki_dir.is_none()
    }

    /// Reads a configuration file (at most 1 MiB).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: 0,
                message: format!("file is over {MAX_CONFIG_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_toml_str(&text, path)
    }

    /// The DUIS ingress limits in force: the HTTPS ingress's defaults, with the configured
    /// per-source cap.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            max_connections_per_source: self.duis_max_connections_per_source.get(),
            ..HttpLimits::default()
        }
    }

    /// The state store file (durable mode).
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(crate::store::redb_store::FILE_NAME)
    }

    /// The PKI directory in force.
    pub fn pki_dir(&self) -> PathBuf {
        self.pki_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pki"))
    }
}

/// The 1-based line where `key` is set (`key = …`), 0 if none.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = ServeConfig::from_toml_str("", Path::new("x")).unwrap();
        assert_eq!(c.listen.port(), 4433);
        assert_eq!(c.admin_users, vec![DEMO_ADMIN]);
        assert_eq!((c.workers, c.io_threads), (0, 1));
        let c = ServeConfig::from_toml_str(
            "listen = \"127.0.0.1:0\"\nmetrics = \"\"\nio_threads = 4\n[limits]\nmax_connections = 3\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert!(c.metrics.is_none());
        assert_eq!(c.limits.max_connections, 3);
        assert_eq!(c.io_threads, 4);
        assert_eq!(c.verifier, VerifierMode::KnownSigner);
    }

    #[test]
    fn the_verifier_is_chosen_by_name() {
        let c = ServeConfig::from_toml_str("verifier = \"p256\"\n", Path::new("x")).unwrap();
        assert_eq!(c.verifier, VerifierMode::P256);
        assert_eq!(c.verifier.name(), "p256");
        let e =
            ServeConfig::from_toml_str("workers = 1\nverifier = \"fast\"\n", Path::new("c.toml"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("c.toml:2") && e.contains("known-signer"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e =
            ServeConfig::from_toml_str("workers = 2\nlisten = \"nowhere\"\n", Path::new("c.toml"))
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("c.toml:2:"), "{e}");
        let e = ServeConfig::from_toml_str("\n\nbogus = 1\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:3:") && e.contains("bogus"), "{e}");
        let e = ServeConfig::from_toml_str("prepayment_percent = 101\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:1:"), "{e}");
    }

    #[test]
    fn top_level_values_out_of_range_are_refused_not_clamped() {
        for (text, key) in [
            ("workers = 1025", "workers"),
            ("io_threads = 1025", "io_threads"),
            ("demo_devices = 100000001", "demo_devices"),
        ] {
            let e = ServeConfig::from_toml_str(
                &format!("listen = \"127.0.0.1:1\"\n{text}\n"),
                Path::new("c.toml"),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.starts_with("c.toml:2:") && e.contains(key) && e.contains("range"),
                "{e}"
            );
        }
        let ok = ServeConfig::from_toml_str(
            "workers = 1024\nio_threads = 1024\ndemo_devices = 100000000\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(ok.workers_in_force(), 1024);
        // One default for workers: the router builder's.
        let c = ServeConfig::default();
        assert_eq!(c.workers_in_force(), crate::router::default_workers());
        // A configuration built in code is checked by `validate`.
        let c = ServeConfig {
            workers: 5000,
            ..ServeConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::Value(v)) if v.key == "workers"));
    }

    /// `duis_max_connections_per_source` reaches the DUIS ingress's limits; a value out of
    /// range is refused with its line, never clamped.
    #[test]
    fn the_duis_per_source_cap_is_configured_and_checked() {
        let c = ServeConfig::default();
        assert_eq!(c.http_limits(), HttpLimits::default());
        let c = ServeConfig::from_toml_str(
            "workers = 1\nduis_max_connections_per_source = 3\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.duis_max_connections_per_source.get(), 3);
        assert_eq!(c.http_limits().max_connections_per_source, 3);
        assert_eq!(
            c.http_limits().max_body,
            HttpLimits::default().max_body,
            "the other limits keep their defaults"
        );
        for (value, why) in [
            ("0", "out of range 1..=1000000"),
            ("1000001", "out of range 1..=1000000"),
            ("-1", "u64"),
            ("\"many\"", "u64"),
        ] {
            let e = ServeConfig::from_toml_str(
                &format!("workers = 1\n\nduis_max_connections_per_source = {value}\n"),
                Path::new("c.toml"),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.starts_with("c.toml:3:") && e.contains(why),
                "{value}: {e}"
            );
        }
        assert!(DuisConnectionsPerSource::try_from(1_000_000).is_ok());
    }

    #[test]
    fn limits_out_of_range_are_refused_with_their_line() {
        let cases = [
            ("max_connections = 0", 3),
            ("max_connections_per_user = 0", 3),
            ("idle_timeout_ms = 0", 3),
            ("idle_timeout_ms = 99999999999", 3),
            ("max_streams_per_connection = 0", 3),
            ("max_in_flight_per_connection = 0", 3),
            ("drain_timeout_ms = 86400000", 3),
            ("stream_receive_window = 0", 3),
            ("stream_receive_window = 4000000000", 3),
            ("connection_receive_window = 1024", 3),
            ("send_window = 0", 3),
            ("admin_reserved_connections = 1024", 3),
            ("max_handshakes = 0", 3),
            ("handshake_timeout_ms = 0", 3),
            ("max_connections_per_source = 0", 3),
        ];
        for (line, at) in cases {
            let text = format!("workers = 1\n[limits]\n{line}\n");
            let e = ServeConfig::from_toml_str(&text, Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            let key = line.split(' ').next().unwrap();
            assert!(
                e.starts_with(&format!("c.toml:{at}:")) && e.contains(key) && e.contains("range"),
                "{line}: {e}"
            );
        }
        // The line of the key itself, not of a longer key that starts with it.
        let e = ServeConfig::from_toml_str(
            "[limits]\nmax_connections_per_user = 2\nmax_connections = 0\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:3:"), "{e}");
        let ok = ServeConfig::from_toml_str(
            "[limits]\nmax_connections_per_user = 2\nidle_timeout_ms = 1500\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let l: Limits = ok.limits.into();
        assert_eq!(l.max_connections_per_user, 2);
        assert_eq!(l.connection_receive_window, 1 << 20);
        assert_eq!(l.idle_timeout, Duration::from_millis(1500));
    }
}
