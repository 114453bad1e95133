//! The `dcc-router` command line: `serve` and `admin`. `main.rs` only calls [`run`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dcc_signing::{CertId, Eui64, Srv};

use crate::ingress::client::client_endpoint;
use crate::ingress::frame::{read_frame, write_frame};
use crate::ingress::tls::{TlsMaterial, ALPN};
use crate::server::admin_proto::{AdminAnswer, AdminRequest, Mode, Right};
use crate::server::{self, ServeConfig};

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

Configuration keys (all optional; see the crate docs of server::config):
  listen, metrics, data_dir, pki_dir, policy, workers, io_threads, admin_users, demo_devices,
  prepayment_percent.
  [limits] (default): max_connections (1024), admin_reserved_connections (2), max_handshakes
  (64), handshake_timeout_ms (3000), max_connections_per_source (64), max_connections_per_user
  (8), idle_timeout_ms (10000), max_streams_per_connection (64), stream_receive_window (131072),
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
    /// Data directory (demo PKI under DATA_DIR/pki).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Verify worker threads (0 = one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Async runtime threads for QUIC, TLS and the ingress (0 = one per core; default 1).
    #[arg(long)]
    io_threads: Option<usize>,
    /// Demo devices to register.
    #[arg(long)]
    demo_devices: Option<u64>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dcc-router admin status
  dcc-router admin revoke dcc-router-data/pki/users/supplier-a/cert.pem
  dcc-router admin delay dcc-router-data/pki/users/supplier-b/cert.pem --srp 02-DC-C0-00-00-00-00-04 --for 14d
  dcc-router admin end-delay 5A1B2C3D4E5F6071/1C063B
  dcc-router admin suspend 02-DC-C0-00-00-00-00-01 --right elective
  dcc-router admin payment-mode 02-DC-D0-00-00-00-00-07 prepayment
  dcc-router admin load-crl crl.pem

CERT is a certificate id (ISSUERHASH/SERIAL, as `status` prints) or a PEM certificate file.")]
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
    #[command(subcommand)]
    op: AdminOp,
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
    /// Delay a failed Supplier's certificate revocation (MP134A safe mode).
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
    /// End a delay: the certificate is revoked from now on.
    EndDelay {
        /// Certificate id or PEM file.
        cert: String,
    },
    /// Revoke every certificate a CRL (PEM, signed by the issuing CA) lists.
    LoadCrl {
        /// CRL file.
        file: PathBuf,
    },
    /// Suspend rights of a Party (SEC M8.5).
    Suspend {
        /// The Party's EUI-64.
        user: Eui64,
        /// Rights (repeat).
        #[arg(long = "right", required = true, value_enum)]
        rights: Vec<Right>,
    },
    /// Restore rights of a Party.
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
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-thread runtime with `threads` workers (0: one per core).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The configuration in force: the file (if any), then the flags over it.
fn serve_config(a: ServeArgs) -> Result<ServeConfig, String> {
    let mut cfg = match &a.config {
        Some(p) => ServeConfig::load(p).map_err(|e| e.to_string())?,
        None => ServeConfig::default(),
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(m) = a.metrics {
        cfg.metrics = if m.trim().is_empty() {
            None
        } else {
            Some(m.parse().map_err(|e| format!("--metrics {m:?}: {e}"))?)
        };
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
    Ok(cfg)
}

async fn serve(cfg: ServeConfig) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .ok();
    let running = server::start(&cfg).await.map_err(|e| e.to_string())?;
    let pki = cfg.pki_dir();
    println!(
        "dcc-router listening on quic://{} (ALPN {})",
        running.addr,
        String::from_utf8_lossy(ALPN)
    );
    println!(
        "  PKI        {}{}",
        pki.display(),
        if running.created_pki {
            " (demo PKI created now)"
        } else {
            ""
        }
    );
    if let Some(m) = running.metrics_addr {
        println!("  metrics    http://{m}/metrics");
    }
    println!(
        "  state      {} certificates, {} parties, {} devices ({}% prepayment, from {})",
        running.router.state().certs.len(),
        running.router.state().parties.len(),
        running.router.state().devices.len(),
        cfg.prepayment_percent,
        server::bootstrap::demo_device(0)
    );
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
    wait_for_signal().await;
    eprintln!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Reads a certificate argument: an id, or a PEM file whose id is computed.
fn cert_arg(s: &str) -> Result<CertId, String> {
    if let Ok(id) = s.parse::<CertId>() {
        return Ok(id);
    }
    let bytes = std::fs::read(s).map_err(|e| format!("{s}: not a certificate id, and {e}"))?;
    dcc_signing::pki::OrgCertificate::parse(&bytes)
        .map(|c| c.id)
        .map_err(|e| format!("{s}: {e}"))
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 90s, 30m, 12h, 14d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

fn read_file(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

async fn admin(a: AdminArgs) -> Result<(), String> {
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
                None => dcc_signing::pki::now_unix() + duration_arg(&for_)?.as_secs(),
            },
        },
        AdminOp::EndDelay { cert } => AdminRequest::EndDelay {
            cert: cert_arg(&cert)?,
        },
        AdminOp::LoadCrl { file } => AdminRequest::LoadCrl {
            pem: String::from_utf8(read_file(&file)?)
                .map_err(|_| format!("{}: not a PEM file", file.display()))?,
        },
        AdminOp::Suspend { user, rights } => AdminRequest::Suspend { user, rights },
        AdminOp::Restore { user, rights } => AdminRequest::Restore { user, rights },
        AdminOp::PaymentMode { device, mode } => AdminRequest::SetPaymentMode { device, mode },
    };
    let tls = TlsMaterial::client_from_pki_dir(&a.pki, &a.as_user).map_err(|e| e.to_string())?;
    let answer = admin_call(a.server, &a.server_name, &tls, &request).await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?
        );
    } else if let Some(s) = &answer.status {
        println!(
            "queued   L0 {}  L1 {}  L2 {}  L3 {}",
            s.queued[0], s.queued[1], s.queued[2], s.queued[3]
        );
        println!("parties  {}   devices {}", s.parties, s.devices);
        println!("responses (lane code count):");
        for (lane, code, n) in &s.counters {
            println!("  {lane:<4} {code:<5} {n}");
        }
        println!("certificates (id owner status):");
        for (id, owner, status) in &s.certificates {
            println!("  {id}  {owner}  {status}");
        }
    } else {
        println!("{}", answer.message);
    }
    if answer.ok {
        Ok(())
    } else {
        Err(answer.message)
    }
}

/// Sends one admin request and returns the answer.
pub async fn admin_call(
    server: SocketAddr,
    server_name: &str,
    tls: &TlsMaterial,
    request: &AdminRequest,
) -> Result<AdminAnswer, String> {
    let endpoint = client_endpoint(server, tls).map_err(|e| e.to_string())?;
    let conn = endpoint
        .connect(server, server_name)
        .map_err(|e| format!("connect {server}: {e}"))?
        .await
        .map_err(|e| format!("connect {server}: {e}"))?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    write_frame(&mut send, &body)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    let frame = read_frame(&mut recv)
        .await
        .map_err(|e| format!("admin answer: {e}"))?
        .ok_or("the server closed the stream without answering (is this certificate an admin?)")?;
    conn.close(quinn::VarInt::from_u32(0), b"done");
    endpoint.wait_idle().await;
    serde_json::from_slice(&frame).map_err(|e| {
        match crate::ingress::wire::WireAnswer::decode(&frame) {
            Ok(a) => format!(
                "the server treated this as a Service Request ({} {}): the certificate is not an admin's",
                a.code, a.detail
            ),
            Err(_) => format!("admin answer: {e}"),
        }
    })
}
