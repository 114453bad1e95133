//! The `dcc-router` command line: `serve` and `admin`. `main.rs` only calls [`run`].
//!
//! * [`CliError`] (in `error`): why a command failed, its causes kept; [`report`] is the text
//!   printed.
//! * [`read_device_file`] (in `device_file`): the bulk import's JSON-lines / CSV files.

mod device_file;
mod error;

pub use device_file::{read_device_file, CsvProblem, DeviceFileError};
pub use error::{report, CliError};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dcc_signing::{CertId, Eui64, Srv, UserRole};

use crate::client::admin::{admin_call_with, AdminClient};
use crate::ingress::tls::{TlsMaterial, ALPN};
use crate::server::admin_proto::{
    AdminCall, AdminRequest, CosCert, DevStatus, DeviceRow, Mode, Right, Wan,
};
use crate::server::{self, ServeConfig};
use crate::state::KeyPurpose;
use crate::store::AuditFilter;

/// dcc-router: a routing core for GB smart-metering DCC Service Requests.
#[derive(Debug, Parser)]
#[command(
    version,
    propagate_version = true,
    after_help = "\
Start a server on embedded defaults (a demo PKI is created in ./dcc-router-data on first start):
  dcc-router serve
Then, from another terminal:
  dcc-router admin status
  cargo run --release -p loadgen -- --target quic://127.0.0.1:4433 --pki dcc-router-data/pki"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the router behind a QUIC (mutual TLS) ingress, with admin channel and metrics.
    #[command(after_help = "\
Examples:
  dcc-router serve                                # embedded defaults, ./dcc-router-data
  dcc-router serve --config router.toml
  dcc-router serve --listen 0.0.0.0:4433 --workers 8 --metrics ''

State: revocations, delays, Parties, devices, CRLs, the audit log and anti-replay marks are
kept in DATA_DIR/state.redb and survive a crash or restart; an admin change is answered once it
is on disk, a request is answered accepted once its anti-replay mark is (group commit).
--in-memory keeps nothing (benchmarks); the start-up line says which.

Configuration keys (all optional; see the crate docs of server::config):
  listen, metrics, duis, duis_plain, duis_max_connections_per_source (256: DUIS connections,
  HTTPS and plain, one address may hold; 1..=1000000), data_dir, store (durable | memory),
  verifier (known-signer | p256), pki_dir, policy, workers, io_threads, admin_users,
  demo_devices, prepayment_percent, demo_suppliers, demo_network_operators, demo_certs_per_user
  (a national population in a demo PKI created at first start: `--demo-suppliers 200
  --demo-network-operators 20 --demo-certs-per-user 3`).
  [limits] (default): max_connections (1024), admin_reserved_connections (2), max_handshakes
  (64), handshake_timeout_ms (3000), max_connections_per_source (64), max_handshakes_per_source
  (8), max_connections_per_user (8), idle_timeout_ms (10000), max_streams_per_connection (64), stream_receive_window (131072),
  connection_receive_window (1048576), send_window (1048576), max_in_flight_per_connection
  (4096), drain_timeout_ms (5000). Out-of-range limits are refused with their line.
  Memory per connection is bounded by 2 x connection_receive_window + max_streams_per_connection
  x 72 KiB + max_in_flight_per_connection x 256 B + send_window + 256 KiB (8.75 MiB by default).
Flags override the file. SIGINT/SIGTERM drain in-flight requests and exit 0.")]
    Serve(ServeArgs),
    /// Change or inspect a running server's state (needs an admin certificate).
    Admin(AdminArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// QUIC listen address (UDP).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Prometheus endpoint address; '' disables it.
    #[arg(long)]
    metrics: Option<String>,
    /// DUIS over HTTPS (POST /api/v1/serviceS|T|D, client certificates as on QUIC); '' disables
    /// it [default: 127.0.0.1:8443]
    #[arg(long)]
    duis: Option<String>,
    /// DUIS over plain HTTP for test rigs such as DCC Boxed's clients (no transport identity:
    /// the XML signature is the only authentication; keep it on loopback); '' disables it
    /// [default: off]
    #[arg(long)]
    duis_plain: Option<String>,
    /// Data directory (demo PKI under DATA_DIR/pki).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Verify worker threads (0 = one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Async runtime threads for QUIC, TLS and the ingress (0 = one per core; default 1).
    #[arg(long)]
    io_threads: Option<usize>,
    /// Demo devices to register (once per store: a durable store keeps them).
    #[arg(long)]
    demo_devices: Option<u64>,
    /// Keep state in memory only: nothing survives a restart (for benchmarks).
    #[arg(long)]
    in_memory: bool,
    /// TESTS AND DEMONSTRATIONS ONLY: the router's wall clock (certificate validity, delay
    /// ends, DP092 maintenance windows) starts at this moment — Unix seconds, or
    /// YYYY-MM-DDTHH:MM:SSZ — and runs at the real rate, e.g. to cross a maintenance window
    /// (20:00-08:00 UTC only) at any time of day. Never in production.
    #[arg(long, value_parser = parse_clock_start)]
    simulated_clock_start: Option<u64>,
    /// National-population Suppliers (supplier-0001…, Zipf market shares of the demo devices)
    /// in the demo PKI created at a first start; an existing PKI is never changed.
    #[arg(long)]
    demo_suppliers: Option<usize>,
    /// National-population network operators (netop-0001…) in a demo PKI created now.
    #[arg(long)]
    demo_network_operators: Option<usize>,
    /// Organisation Certificates (signing keys) per national-population User [default: 1].
    #[arg(long)]
    demo_certs_per_user: Option<usize>,
    /// Signature verifier: known-signer (per-key tables, the default) or p256 (plain, several
    /// times slower: for overload demonstrations where the load generator shares the cores)
    #[arg(long, value_enum)]
    verifier: Option<crate::server::config::VerifierMode>,
}

/// `--simulated-clock-start`: Unix seconds, or an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_clock_start(s: &str) -> Result<u64, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let bad = || format!("{s:?}: expected Unix seconds or YYYY-MM-DDTHH:MM:SSZ");
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r).and_then(|t| t.parse::<i64>().ok()).ok_or_else(bad)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).map_err(|_| bad())
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dcc-router admin status
  dcc-router admin revoke dcc-router-data/pki/users/supplier-a/cert.pem
  dcc-router admin delay dcc-router-data/pki/users/supplier-b/cert.pem --srp 02-DC-C0-00-00-00-00-04 --for 14d
  dcc-router admin --reason 'SMKI PMA decision of 30 Nov' pma-delay dcc-router-data/pki/users/supplier-b/cert.pem
  dcc-router admin --reason 'Authority direction of 1 Dec' authority-direct 5A1B2C3D4E5F6071/1C063B --srp 02-DC-C0-00-00-00-00-04
  dcc-router admin end-delay 5A1B2C3D4E5F6071/1C063B
  dcc-router admin --reason 'Authority approval ref 2026-11' suspend 02-DC-C0-00-00-00-00-01 --right f   # SEC M8.6 (d)..(h)
  dcc-router admin payment-mode 02-DC-D0-00-00-00-00-07 prepayment
  dcc-router admin load-crl crl.pem
  dcc-router admin --reason 'key rollover' add-cert new-cert.pem
  dcc-router admin retire-cert 5A1B2C3D4E5F6071/1C063B
  dcc-router admin party 02-DC-C0-00-00-00-00-09 --role IS --role GS --assurance approved
  dcc-router admin assurance 02-DC-C0-00-00-00-00-09 deferred
  dcc-router admin device 02-DC-D0-00-00-00-FF-01 --supplier 02-DC-C0-00-00-00-00-01 --payment-mode prepayment
  dcc-router admin --reason 'CSP incident 4711' device 02-DC-D0-00-00-00-00-07 --wan none   # DP094
  dcc-router admin decommission 02-DC-D0-00-00-00-FF-01
  dcc-router admin change-supplier 02-DC-D0-00-00-00-00-07 02-DC-C0-00-00-00-00-02
  dcc-router admin change-supplier --pending 02-DC-D0-00-00-00-00-07 02-DC-C0-00-00-00-00-02   # ECoS: moves on its 6.23
  dcc-router admin device 02-DC-D0-00-00-00-00-07 --cos-cert ecos   # after the device's ECoS migration
  dcc-router admin --reason 'TCoS key to the ECoS Party' key import tcos.pem --id tcos@ecos-party --purpose tcos --pma-ref PMA-2022-17
  dcc-router admin --reason 'TCoS service shut down' key retire tcos@tcos-sp --pma-ref PMA-2022-17
  dcc-router admin key list
  dcc-router admin rate-limit 02-DC-C0-00-00-00-00-01 --per-second 50 --burst 100
  dcc-router admin import-devices devices.jsonl        # or .csv; progress bar, one transaction per batch
  dcc-router admin audit --device 02-DC-D0-00-00-00-00-07

CERT is a certificate id (ISSUERHASH/SERIAL, as `status` prints) or a PEM certificate file.
Every change is durable before it is answered, and audited with the admin certificate and
--reason.

import-devices FILE: JSON lines, one object per device
  {\"device\":\"02-DC-D0-00-00-00-00-01\",\"supplier\":\"02-DC-C0-00-00-00-00-01\",\"network_operator\":\"…\",
   \"export_supplier\":\"…\",\"payment_mode\":\"prepayment\",\"status\":\"commissioned\",\"wan\":\"none\",\"cos\":\"ecos\"}
or CSV with a header naming any of those columns (device first).")]
struct AdminArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:4433")]
    server: SocketAddr,
    /// TLS server name to expect.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// PKI directory holding ca/root.pem and users/<as>/tls-*.pem.
    #[arg(long, default_value = "dcc-router-data/pki")]
    pki: PathBuf,
    /// The admin User (directory name under users/).
    #[arg(long = "as", default_value = "admin")]
    as_user: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// Why (written to the audit log with the change).
    #[arg(long, global = true)]
    reason: Option<String>,
    #[command(subcommand)]
    op: AdminOp,
}

#[derive(Debug, Subcommand)]
enum KeyOp {
    /// Move a private key (PKCS#8 P-256, PEM) into the router; it serves at once, beside any
    /// key of the same purpose (a CoS purpose's keys must be one key pair: a transfer).
    Import {
        /// The PEM key file.
        file: PathBuf,
        /// The key's name (unique), e.g. tcos@ecos-party.
        #[arg(long)]
        id: String,
        /// What it signs: tcos, ecos (CoS Party keys, SRV 6.23) or duis-sign.
        #[arg(long, value_parser = parse_purpose)]
        purpose: KeyPurpose,
        /// The SMKI PMA's approval reference (recorded in the audit log).
        #[arg(long)]
        pma_ref: String,
    },
    /// Retire a key (the old holder stops signing); the last key of a purpose is refused.
    Retire {
        /// The key's name.
        id: String,
        /// The SMKI PMA's approval reference (recorded in the audit log).
        #[arg(long)]
        pma_ref: String,
    },
    /// The keys in force: names, purposes, public keys, PMA references.
    List,
}

fn parse_purpose(s: &str) -> Result<KeyPurpose, String> {
    KeyPurpose::parse(s).ok_or_else(|| format!("{s:?}: expected tcos, ecos or duis-sign"))
}

#[derive(Debug, Subcommand)]
enum AdminOp {
    /// Lanes, counters, certificates.
    Status,
    /// Revoke a certificate now.
    Revoke {
        /// Certificate id or PEM file.
        cert: String,
    },
    /// Delay a failed Supplier's certificate revocation and direct SRPs in one step, in the
    /// SRP-own-EUI variant (the SRPs originate with their own EUI-64). MP134A as written:
    /// pma-delay, then authority-direct.
    Delay {
        /// Certificate id or PEM file.
        cert: String,
        /// A Shared Resource Provider allowed to use it (repeat for several).
        #[arg(long = "srp", required = true)]
        srps: Vec<Eui64>,
        /// A safe-mode SRV allowed (repeat); default: the server policy's safe-mode set.
        #[arg(long = "srv")]
        srvs: Vec<Srv>,
        /// End of the delay, Unix seconds.
        #[arg(long, conflicts_with = "for_")]
        until: Option<u64>,
        /// Length of the delay: 90s, 30m, 12h, 14d.
        #[arg(long = "for", default_value = "28d")]
        for_: String,
    },
    /// The SMKI PMA's decision: delay a failed Supplier's certificate revocation (MP134A as
    /// written). No SRP may use it until the Authority directs one (authority-direct).
    PmaDelay {
        /// Certificate id or PEM file.
        cert: String,
        /// A safe-mode SRV allowed (repeat); default: the server policy's safe-mode set.
        #[arg(long = "srv")]
        srvs: Vec<Srv>,
        /// End of the delay, Unix seconds (default: no term; the PMA ends it with end-delay).
        #[arg(long, conflicts_with = "for_")]
        until: Option<u64>,
        /// Length of the delay: 90s, 30m, 12h, 14d (default: no term).
        #[arg(long = "for")]
        for_: Option<String>,
    },
    /// The Authority's direction under a running delay: the SRPs that send the failed
    /// Supplier's requests, signed with its key and originated as it, over their own
    /// connections (MP134A as written).
    AuthorityDirect {
        /// Certificate id or PEM file.
        cert: String,
        /// A Shared Resource Provider directed (repeat; none: withdraw the direction).
        #[arg(long = "srp")]
        srps: Vec<Eui64>,
        /// The variant: the SRPs originate with their own EUI-64 instead.
        #[arg(long)]
        srp_own_eui: bool,
    },
    /// Plan a maintenance window (DP092: 20:00-08:00 UTC, at most 6 h, one high-impact and
    /// three low-impact a month); during it the policy's lanes are answered busy.
    MaintenanceAdd {
        /// Start, Unix seconds.
        #[arg(long)]
        start: u64,
        /// Length in minutes.
        #[arg(long)]
        minutes: u64,
        /// low or high.
        #[arg(long, value_parser = ["low", "high"])]
        impact: String,
    },
    /// Remove an admin-planned maintenance window by its start.
    MaintenanceRemove {
        /// Start, Unix seconds.
        start: u64,
    },
    /// The SMKI PMA ends a delay: the certificate is revoked from now on.
    EndDelay {
        /// Certificate id or PEM file.
        cert: String,
    },
    /// Revoke every certificate a CRL (PEM, signed by the issuing CA) lists.
    LoadCrl {
        /// CRL file.
        file: PathBuf,
    },
    /// Suspend service rights of a Party, SEC M8.6 (d)-(h) (with the Authority's approval: say so in --reason).
    Suspend {
        /// The Party's EUI-64.
        user: Eui64,
        /// Rights (repeat).
        #[arg(long = "right", required = true, value_enum)]
        rights: Vec<Right>,
    },
    /// Restore service rights of a Party, SEC M8.6 (d)-(h).
    Restore {
        /// The Party's EUI-64.
        user: Eui64,
        /// Rights (repeat).
        #[arg(long = "right", required = true, value_enum)]
        rights: Vec<Right>,
    },
    /// Set a device's payment mode.
    PaymentMode {
        /// The device's EUI-64.
        device: Eui64,
        /// credit or prepayment.
        #[arg(value_enum)]
        mode: Mode,
    },
    /// Add a User's Organisation Certificate (PEM): chain-validated against the server's root
    /// and issuing CA; its OU role must be one of the Party's roles. A second certificate for
    /// the same User is a key rollover: both serve until the old one is retired.
    AddCert {
        /// PEM certificate file.
        file: PathBuf,
    },
    /// Retire a certificate after a key rollover (refused from now on).
    RetireCert {
        /// Certificate id or PEM file.
        cert: String,
    },
    /// Add a Party (DCC User) or change its User Roles.
    Party {
        /// The Party's EUI-64.
        user: Eui64,
        /// A User Role: IS, ES, GS, ED, GT, OU, RSA (repeat).
        #[arg(long = "role", required = true)]
        roles: Vec<UserRole>,
        /// Security assurance status (a new Party: approved).
        #[arg(long, value_parser = ["approved", "approved-with-conditions", "deferred", "rejected"])]
        assurance: Option<String>,
    },
    /// Set a Party's security assurance status.
    Assurance {
        /// The Party's EUI-64.
        user: Eui64,
        /// approved, approved-with-conditions, deferred or rejected.
        #[arg(value_parser = ["approved", "approved-with-conditions", "deferred", "rejected"])]
        status: String,
    },
    /// Add a device, or change the fields given.
    Device {
        /// The device's EUI-64.
        device: Eui64,
        /// Registered (import) Supplier.
        #[arg(long)]
        supplier: Option<Eui64>,
        /// Registered export Supplier.
        #[arg(long)]
        export_supplier: Option<Eui64>,
        /// Registered Network Operator.
        #[arg(long)]
        network_operator: Option<Eui64>,
        /// Payment mode.
        #[arg(long, value_enum)]
        payment_mode: Option<Mode>,
        /// Status.
        #[arg(long, value_enum)]
        status: Option<DevStatus>,
        /// SM WAN state (DP094): ok, poor, or none (WAN-only command variants are refused E20,
        /// CV 2/3 answered for local delivery).
        #[arg(long, value_enum)]
        wan: Option<Wan>,
        /// The CoS certificate the device holds (tcos, or ecos after its ECoS migration):
        /// which CoS Party key counter-signs its SRV 6.23.
        #[arg(long, value_enum)]
        cos_cert: Option<CosCert>,
    },
    /// Decommission a device (its requests are refused E5 from now on).
    Decommission {
        /// The device's EUI-64.
        device: Eui64,
    },
    /// Change of Supplier: the device's registration moves to SUPPLIER.
    ChangeSupplier {
        /// The device's EUI-64.
        device: Eui64,
        /// The gaining Supplier.
        supplier: Eui64,
        /// Move the export registration instead of the import one.
        #[arg(long)]
        export: bool,
        /// ECoS: record SUPPLIER as the gaining Supplier (from registration data) instead of
        /// moving the device now; the device moves when SUPPLIER's SRV 6.23 has been
        /// counter-signed by the CoS Party.
        #[arg(long, conflicts_with = "export")]
        pending: bool,
    },
    /// The router's own keys (CoS Party keys, DUIS response signing): BEIS 2022 key transfer,
    /// each import and retirement audited with --reason and the SMKI PMA's approval reference.
    #[command(subcommand)]
    Key(KeyOp),
    /// Set a User's rate limit, or --clear it (back to the policy's).
    RateLimit {
        /// The Party's EUI-64.
        user: Eui64,
        /// Sustained requests per second.
        #[arg(long, required_unless_present = "clear")]
        per_second: Option<u32>,
        /// Burst.
        #[arg(long, required_unless_present = "clear")]
        burst: Option<u32>,
        /// Back to the policy's limit.
        #[arg(long, conflicts_with_all = ["per_second", "burst"])]
        clear: bool,
    },
    /// Register many devices from a file (JSON lines or CSV), with a progress bar.
    ImportDevices {
        /// The file (.jsonl / .json / .csv).
        file: PathBuf,
    },
    /// The audit log (newest first), optionally about one certificate, Party or device.
    Audit {
        /// Only entries about this certificate (id or PEM file).
        #[arg(long)]
        cert: Option<String>,
        /// Only entries about this Party.
        #[arg(long)]
        party: Option<Eui64>,
        /// Only entries about this device.
        #[arg(long)]
        device: Option<Eui64>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve_config(a)
            .and_then(|cfg| runtime(cfg.io_threads).and_then(|rt| rt.block_on(serve(cfg)))),
        Command::Admin(a) => runtime(1).and_then(|rt| rt.block_on(admin(a))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// A multi-thread runtime with `threads` workers (0: one per core).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, CliError> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.enable_all()
        .build()
        .map_err(|source| CliError::Runtime { source })
}

/// The configuration in force: the file (if any), then the flags over it.
fn serve_config(a: ServeArgs) -> Result<ServeConfig, CliError> {
    let mut cfg = match &a.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    let addr = |flag: &'static str, v: String| -> Result<Option<SocketAddr>, CliError> {
        if v.trim().is_empty() {
            Ok(None)
        } else {
            v.parse().map(Some).map_err(|source| CliError::FlagAddress {
                flag,
                value: v,
                source,
            })
        }
    };
    if let Some(m) = a.metrics {
        cfg.metrics = addr("metrics", m)?;
    }
    if let Some(d) = a.duis {
        cfg.duis = addr("duis", d)?;
    }
    if let Some(d) = a.duis_plain {
        cfg.duis_plain = addr("duis-plain", d)?;
    }
    if let Some(d) = a.data_dir {
        cfg.data_dir = d;
    }
    if let Some(w) = a.workers {
        cfg.workers = w;
    }
    if let Some(t) = a.io_threads {
        cfg.io_threads = t;
    }
    if let Some(n) = a.demo_devices {
        cfg.demo_devices = n;
    }
    if a.in_memory {
        cfg.store = crate::server::config::StoreMode::Memory;
    }
    if let Some(t) = a.simulated_clock_start {
        cfg.simulated_clock_start = Some(t);
    }
    if let Some(n) = a.demo_suppliers {
        cfg.demo_suppliers = n;
    }
    if let Some(n) = a.demo_network_operators {
        cfg.demo_network_operators = n;
    }
    if let Some(n) = a.demo_certs_per_user {
        cfg.demo_certs_per_user = n;
    }
    if let Some(v) = a.verifier {
        cfg.verifier = v;
    }
    // The file was checked when read; a flag's value is checked here, and named as a flag.
    let flags = [
        ("workers", a.workers.is_some()),
        ("io_threads", a.io_threads.is_some()),
        ("demo_devices", a.demo_devices.is_some()),
        ("demo_suppliers", a.demo_suppliers.is_some()),
        ("demo_network_operators", a.demo_network_operators.is_some()),
        ("demo_certs_per_user", a.demo_certs_per_user.is_some()),
    ];
    if let Err(source) = cfg.validate_top() {
        let flag = flags.iter().any(|(k, given)| *given && *k == source.key);
        return Err(if flag {
            CliError::FlagValue { source }
        } else {
            CliError::Value(source)
        });
    }
    Ok(cfg)
}

async fn serve(cfg: ServeConfig) -> Result<(), CliError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .ok();
    let stop = stop_signal();
    let running = server::start(&cfg).await?;
    let pki = cfg.pki_dir();
    println!(
        "dcc-router listening on quic://{} (ALPN {})",
        running.addr,
        String::from_utf8_lossy(ALPN)
    );
    if let Some(t) = cfg.simulated_clock_start {
        println!("  CLOCK      SIMULATED, started at Unix {t} (tests and demonstrations only)");
    }
    println!(
        "  PKI        {}{}",
        pki.display(),
        if running.created_pki {
            " (demo PKI created now)"
        } else {
            ""
        }
    );
    if running.created_pki {
        println!(
            "  CA keys    {} (apart: the server does not read them)",
            cfg.data_dir
                .join(dcc_signing::pki::demo::CA_KEYS_DIR)
                .display()
        );
    }
    if let Some(m) = running.metrics_addr {
        println!("  metrics    http://{m}/metrics");
    }
    if let Some(a) = running.duis_addr {
        println!(
            "  DUIS       https://{a}/api/v1/service{{S,T,D}} (client certificates as on QUIC)"
        );
    }
    if let Some(a) = running.duis_plain_addr {
        println!(
            "  DUIS       http://{a}/api/v1/service{{S,T,D}} (plain HTTP: no transport identity)"
        );
    }
    if let Some(c) = &running.duis_cert {
        println!(
            "  DUIS signs answers under {} (pin it to verify them)",
            c.display()
        );
    }
    println!("  store      {}", running.router.admin().store().describe());
    println!(
        "  verify     {} × {}, capacity estimate {}/s",
        running.capacity.workers,
        running.verifier.name(),
        running.capacity.requests_per_s
    );
    println!(
        "  state      {} certificates, {} parties, {} devices, {} anti-replay marks \
         (restored {} devices from the store, added {} certificates, {} parties, {} demo devices; {:.2} s)",
        running.router.state().certs.len(),
        running.router.state().parties.len(),
        running.router.state().devices.len(),
        running.router.state().replay.len(),
        running.restored.devices,
        running.populated.certs,
        running.populated.parties,
        running.populated.devices,
        running.state_load.as_secs_f64(),
    );
    let devices = &running.router.state().devices;
    if let Some((before, after)) = running.resident {
        let n = devices.len().max(1) as f64;
        println!(
            "  memory     {} MiB resident (+{} MiB while loading the state = {:.1} B/device); \
             device table {} MiB = {:.1} B/device",
            after >> 20,
            after.saturating_sub(before) >> 20,
            after.saturating_sub(before) as f64 / n,
            devices.heap_bytes() >> 20,
            devices.heap_bytes() as f64 / n,
        );
    }
    println!("Point a client at it:");
    println!(
        "  cargo run --release -p loadgen -- --target quic://{} --pki {}",
        running.addr,
        pki.display()
    );
    println!(
        "  dcc-router admin --server {} --pki {} status",
        running.addr,
        pki.display()
    );
    stop.await;
    eprintln!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

/// SIGINT or SIGTERM, registered when this is called (not when awaited). Why: the handlers
/// must be in place before the server prints that it listens, or a SIGTERM sent as soon as
/// that line is read meets the default action and kills the process instead of draining it.
#[cfg(unix)]
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn stop_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Reads a certificate argument: an id, or a PEM file whose id is computed.
fn cert_arg(s: &str) -> Result<CertId, CliError> {
    if let Ok(id) = s.parse::<CertId>() {
        return Ok(id);
    }
    let bytes = std::fs::read(s).map_err(|source| CliError::CertArgRead {
        arg: s.to_owned(),
        source,
    })?;
    dcc_signing::pki::OrgCertificate::parse(&bytes)
        .map(|c| c.id)
        .map_err(|source| CliError::Certificate {
            arg: s.to_owned(),
            source,
        })
}

/// `--for`: 90s, 30m, 12h, 14d (no unit: seconds).
fn duration_arg(s: &str) -> Result<Duration, CliError> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|source| CliError::Duration {
        text: s.to_owned(),
        source,
    })?;
    let per = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(CliError::DurationUnit { text: s.to_owned() });
        }
    };
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| CliError::DurationTooLong { text: s.to_owned() })
}

/// The end of a delay `for_` long from now, Unix seconds.
fn delay_end(for_: &str) -> Result<u64, CliError> {
    let d = duration_arg(for_)?.as_secs();
    dcc_signing::pki::now_unix()
        .checked_add(d)
        .ok_or_else(|| CliError::DurationTooLong {
            text: for_.to_owned(),
        })
}

/// A PEM file named on the command line, as text.
fn read_pem(p: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(p).map_err(|source| CliError::Read {
        path: p.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|source| CliError::NotPem {
        path: p.to_path_buf(),
        source,
    })
}

/// `admin key …` is audited with a reason, always.
fn needs_reason(reason: Option<&str>, op: &'static str) -> Result<(), CliError> {
    if reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(CliError::NeedsReason { op });
    }
    Ok(())
}

async fn admin(a: AdminArgs) -> Result<(), CliError> {
    let request = match a.op {
        AdminOp::Status => AdminRequest::Status,
        AdminOp::Revoke { cert } => AdminRequest::Revoke {
            cert: cert_arg(&cert)?,
        },
        AdminOp::Delay {
            cert,
            srps,
            srvs,
            until,
            for_,
        } => AdminRequest::DelayRevocation {
            cert: cert_arg(&cert)?,
            srps,
            srvs,
            until: match until {
                Some(u) => u,
                None => delay_end(&for_)?,
            },
        },
        AdminOp::PmaDelay {
            cert,
            srvs,
            until,
            for_,
        } => AdminRequest::PmaDelay {
            cert: cert_arg(&cert)?,
            srvs,
            until: match (until, for_) {
                (Some(u), _) => Some(u),
                (None, Some(f)) => Some(delay_end(&f)?),
                (None, None) => None,
            },
        },
        AdminOp::AuthorityDirect {
            cert,
            srps,
            srp_own_eui,
        } => AdminRequest::AuthorityDirect {
            cert: cert_arg(&cert)?,
            srps,
            srp_own_eui,
        },
        AdminOp::MaintenanceAdd {
            start,
            minutes,
            impact,
        } => AdminRequest::AddMaintenanceWindow {
            start,
            minutes,
            impact: if impact == "high" {
                dcc_router_core::state::maintenance::Impact::High
            } else {
                dcc_router_core::state::maintenance::Impact::Low
            },
        },
        AdminOp::MaintenanceRemove { start } => AdminRequest::RemoveMaintenanceWindow { start },
        AdminOp::EndDelay { cert } => AdminRequest::EndDelay {
            cert: cert_arg(&cert)?,
        },
        AdminOp::LoadCrl { file } => AdminRequest::LoadCrl {
            pem: read_pem(&file)?,
        },
        AdminOp::Suspend { user, rights } => AdminRequest::Suspend { user, rights },
        AdminOp::Restore { user, rights } => AdminRequest::Restore { user, rights },
        AdminOp::PaymentMode { device, mode } => AdminRequest::SetPaymentMode { device, mode },
        AdminOp::AddCert { file } => AdminRequest::AddCertificate {
            pem: read_pem(&file)?,
        },
        AdminOp::RetireCert { cert } => AdminRequest::RetireCertificate {
            cert: cert_arg(&cert)?,
        },
        AdminOp::Party {
            user,
            roles,
            assurance,
        } => AdminRequest::SetParty {
            user,
            roles,
            assurance,
        },
        AdminOp::Assurance { user, status } => AdminRequest::SetAssurance { user, status },
        AdminOp::Device {
            device,
            supplier,
            export_supplier,
            network_operator,
            payment_mode,
            status,
            wan,
            cos_cert,
        } => AdminRequest::SetDevice {
            row: DeviceRow {
                device,
                supplier,
                export_supplier,
                network_operator,
                payment_mode,
                status,
                wan,
                cos: cos_cert,
            },
        },
        AdminOp::Decommission { device } => AdminRequest::SetDeviceStatus {
            device,
            status: DevStatus::Decommissioned,
        },
        AdminOp::ChangeSupplier {
            device,
            supplier,
            export,
            pending,
        } => AdminRequest::ChangeSupplier {
            device,
            supplier,
            export,
            pending,
        },
        AdminOp::Key(KeyOp::Import {
            file,
            id,
            purpose,
            pma_ref,
        }) => {
            needs_reason(a.reason.as_deref(), "key import")?;
            AdminRequest::KeyImport {
                id,
                purpose,
                pem: read_pem(&file)?,
                pma_ref,
            }
        }
        AdminOp::Key(KeyOp::Retire { id, pma_ref }) => {
            needs_reason(a.reason.as_deref(), "key retire")?;
            AdminRequest::KeyRetire { id, pma_ref }
        }
        AdminOp::Key(KeyOp::List) => AdminRequest::KeyList,
        AdminOp::RateLimit {
            user,
            per_second,
            burst,
            clear: _,
        } => AdminRequest::SetRateLimit {
            user,
            limit: per_second.zip(burst),
        },
        AdminOp::ImportDevices { file } => {
            let tls = TlsMaterial::client_from_pki_dir(&a.pki, &a.as_user)?;
            return import_devices(&a.server, &a.server_name, &tls, &file, a.reason).await;
        }
        AdminOp::Audit {
            cert,
            party,
            device,
            limit,
        } => AdminRequest::Audit {
            filter: AuditFilter {
                subject: match (cert, party, device) {
                    (Some(c), _, _) => Some(cert_arg(&c)?.to_string()),
                    (None, Some(p), _) => Some(p.to_string()),
                    (None, None, Some(d)) => Some(d.to_string()),
                    (None, None, None) => None,
                },
                limit,
            },
        },
    };
    let tls = TlsMaterial::client_from_pki_dir(&a.pki, &a.as_user)?;
    let call = AdminCall {
        request,
        reason: a.reason,
    };
    let answer = admin_call_with(a.server, &a.server_name, &tls, &call).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else if let Some(s) = &answer.status {
        println!("store    {}", s.store);
        println!(
            "queued   L0 {}  L1 {}  L2 {}  L3 {}",
            s.queued[0], s.queued[1], s.queued[2], s.queued[3]
        );
        println!("parties  {}   devices {}", s.parties, s.devices);
        if let Some(c) = &s.capacity {
            println!(
                "capacity {}/s  ({} verify workers × {}/s measured at start on {} loaded keys)",
                c.requests_per_s, c.workers, c.verify_per_s, c.keys
            );
        }
        println!("responses (lane code count):");
        for (lane, code, n) in &s.counters {
            println!("  {lane:<4} {code:<5} {n}");
        }
        println!("certificates (id owner status):");
        for (id, owner, status) in &s.certificates {
            println!("  {id}  {owner}  {status}");
        }
    } else if let Some(entries) = &answer.audit {
        println!("{} entries, newest first:", entries.len());
        for e in entries {
            println!(
                "#{} {} {} {} [{}] {}{}",
                e.seq,
                dcc_signing::pki::rfc3339(e.at),
                e.who,
                e.op,
                e.subjects.join(" "),
                e.detail,
                e.reason
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" — reason: {r}"))
            );
        }
    } else {
        println!("{}", answer.message);
    }
    if answer.ok {
        Ok(())
    } else {
        Err(CliError::Refused {
            message: answer.message,
        })
    }
}

/// Bytes of device rows per admin frame in a bulk import: a frame is at most 64 KiB, and the
/// request's envelope and reason take the rest. Rows are counted by their encoded size (a row
/// is 40–160 bytes, depending on the fields it carries).
const IMPORT_BYTES_PER_FRAME: usize = crate::ingress::frame::MAX_FRAME_LEN - 2048;

async fn import_devices(
    server: &SocketAddr,
    server_name: &str,
    tls: &TlsMaterial,
    file: &Path,
    reason: Option<String>,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let rows = read_device_file(file)?;
    let read = started.elapsed();
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} devices  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let reason = reason.map(|r| {
        r.chars()
            .take(crate::server::admin_proto::MAX_REASON)
            .collect::<String>()
    });
    let conn = AdminClient::connect(*server, server_name, tls).await?;
    let mut done = 0usize;
    let mut rest = rows.as_slice();
    while !rest.is_empty() {
        let mut bytes = 0usize;
        let n = rest
            .iter()
            .take_while(|r| {
                bytes += serde_json::to_vec(r).map_or(0, |v| v.len() + 1);
                bytes <= IMPORT_BYTES_PER_FRAME
            })
            .count()
            .max(1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let call = AdminCall {
            request: AdminRequest::ImportDevices {
                devices: chunk.to_vec(),
            },
            reason: reason.clone(),
        };
        let answer = conn.call(&call).await.map_err(|source| {
            bar.abandon();
            CliError::ImportStopped {
                file: file.to_path_buf(),
                done,
                source: Box::new(source),
            }
        })?;
        if !answer.ok {
            bar.abandon();
            return Err(CliError::ImportRefused {
                file: file.to_path_buf(),
                done,
                message: answer.message,
            });
        }
        done += chunk.len();
        bar.set_position(done as u64);
    }
    bar.finish();
    conn.close().await;
    println!(
        "{done} devices imported in {:.1} s (file read in {:.1} s)",
        started.elapsed().as_secs_f64(),
        read.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn simulated_clock_starts_parse_as_unix_seconds_or_rfc_3339_utc() {
        assert_eq!(parse_clock_start("2026-12-01T20:00:00Z"), Ok(1_796_155_200));
        assert_eq!(parse_clock_start("2000-02-29T23:59:59Z"), Ok(951_868_799));
        assert_eq!(parse_clock_start("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_clock_start("1796155200"), Ok(1_796_155_200));
        for bad in [
            "2026-13-01T20:00:00Z",
            "2026-12-01 20:00:00",
            "tomorrow",
            "2026-12-01T24:00:00Z",
        ] {
            assert!(parse_clock_start(bad).is_err(), "{bad}");
        }
    }
}
