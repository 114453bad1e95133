//! `dcc-router serve` configuration: one TOML file, every field optional.
//!
//! ```toml
//! listen = "127.0.0.1:4433"        # QUIC (UDP) address
//! metrics = "127.0.0.1:9464"       # Prometheus text endpoint; omit or "" to disable
//! data_dir = "dcc-router-data"     # demo PKI and the state store (state.redb) live here
//! store = "durable"                # or "memory": nothing survives a restart (benchmarks)
//! # pki_dir = "dcc-router-data/pki" # a `dcc-sign pki init` directory (created if missing)
//! # policy = "policy.toml"         # SRV catalogue, lanes, capacities, rate limits
//! workers = 0                      # verify worker threads; 0 = one per core
//! io_threads = 1                   # async runtime threads (QUIC, TLS, ingress); 0 = one per core
//! admin_users = ["02-DC-C0-00-00-00-00-7F"]
//! demo_devices = 10000             # devices registered at start (see `bootstrap`)
//! prepayment_percent = 30
//!
//! [limits]
//! max_connections = 1024
//! max_streams_per_connection = 1024
//! max_in_flight_per_connection = 4096
//! drain_timeout_ms = 5000
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcc_signing::Eui64;
use serde::Deserialize;

use crate::ingress::server::Limits;

/// The demo admin User of `dcc-sign pki init`.
pub const DEMO_ADMIN: Eui64 = Eui64::from_u64(0x02DC_C000_0000_007F);

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
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where state is kept.
    pub store: StoreMode,
    /// PKI directory (default `data_dir/pki`).
    pub pki_dir: Option<PathBuf>,
    /// Policy file (default: the embedded policy).
    pub policy: Option<PathBuf>,
    /// Verify workers (0 = one per core).
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
    /// Connection limits.
    pub limits: LimitsConfig,
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

/// `[limits]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// See [`Limits::max_connections`].
    pub max_connections: usize,
    /// See [`Limits::max_streams_per_connection`].
    pub max_streams_per_connection: u32,
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
            max_streams_per_connection: l.max_streams_per_connection,
            max_in_flight_per_connection: l.max_in_flight_per_connection,
            drain_timeout_ms: l.drain_timeout.as_millis() as u64,
        }
    }
}

impl From<LimitsConfig> for Limits {
    fn from(c: LimitsConfig) -> Self {
        Limits {
            max_connections: c.max_connections.max(1),
            max_streams_per_connection: c.max_streams_per_connection.max(1),
            max_in_flight_per_connection: c.max_in_flight_per_connection.max(1),
            drain_timeout: Duration::from_millis(c.drain_timeout_ms),
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            data_dir: PathBuf::from("dcc-router-data"),
            store: StoreMode::Durable,
            pki_dir: None,
            policy: None,
            workers: 0,
            io_threads: 1,
            admin_users: vec![DEMO_ADMIN],
            demo_devices: 10_000,
            prepayment_percent: 30,
            limits: LimitsConfig::default(),
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
        if cfg.prepayment_percent > 100 {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of(text, "prepayment_percent"),
                message: "prepayment_percent must be 0..=100".into(),
            });
        }
        Ok(cfg)
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

fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
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
}
