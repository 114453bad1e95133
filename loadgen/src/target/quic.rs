//! `quic://host:port`: a `dcc-router serve` instance over QUIC, with client certificates from a
//! PKI directory.
//!
//! The server only accepts, on a connection, requests whose originator is the User named by the
//! connection's TLS client certificate. So the target opens one [`Client`] per User of the
//! world (with `users/<name>/tls-chain.pem` and `tls-key.pem`, trusting `ca/root.pem`) and sends
//! each request on the connection of its [`Request::via`] User. The world must be the server's
//! own population ([`World::from_pki_dir`]): the server registers the directory's Users and its
//! demo devices at start, so [`Target::setup`] registers nothing; it only checks, through the
//! admin channel when the `admin` User's credentials are there, that the server has at least as
//! many devices as the world aims at.
//!
//! Scenario events (a Supplier failing) go through the admin protocol as the `admin` User
//! (`dcc_router::client::admin_call`). The server's capacity estimate (verify workers × the
//! verify rate it measured at start on its loaded keys) is read once, at connect, from
//! `admin status` ([`Target::capacity_hint`]); a server too old to publish one, or a PKI
//! without the admin User's credentials, gives none, and loadgen then finds the capacity with
//! its calibration ramp (`crate::calibrate`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dcc_router::client::admin::{AdminAnswer, AdminRequest};
use dcc_router::client::{Client, ClientError, StreamMode, TlsMaterial, WireAnswer};

use super::inproc::outcome_of_code;
use super::{OutcomeFuture, Request, Target, TargetError};
use crate::outcome::{Lane, Outcome, OutcomeClass};
use crate::population::{World, PKI_ADMIN_NAME};
use crate::scenario::EventSpec;

/// The TLS server name the demo server certificate carries.
pub const SERVER_NAME: &str = "localhost";
/// How long a revocation delay lasts (as for the in-process target).
const DELAY: Duration = Duration::from_secs(28 * 86_400);

/// A router over QUIC.
#[derive(Debug)]
pub struct QuicTarget {
    addr: SocketAddr,
    /// One connection per User of the world, by index (`None`: the User sends nothing).
    clients: Vec<Option<Arc<Client>>>,
    admin: AdminLink,
    mode: StreamMode,
    /// The server's capacity estimate from `admin status`, requests/s.
    capacity: Option<f64>,
}

/// The server's admin channel (QUIC), as the PKI directory's `admin` User: scenario events,
/// the device-count check at setup, the capacity estimate. Shared by the QUIC and HTTPS
/// targets (the DUIS ingress has no admin protocol).
#[derive(Debug, Clone)]
pub struct AdminLink {
    addr: SocketAddr,
    tls: Option<TlsMaterial>,
    pki: PathBuf,
    /// The start of the maintenance window a `maintenance_start` event planned.
    window: std::sync::Arc<super::PlannedWindow>,
}

/// The TLS material of User `name` of the PKI directory `pki`.
pub fn user_tls(pki: &Path, name: &str) -> Result<TlsMaterial, TargetError> {
    TlsMaterial::client_from_pki_dir(pki, name).map_err(|e| TargetError::Admin(e.to_string()))
}

/// Resolves `host:port` (a name such as `localhost:4433` is looked up).
pub async fn resolve(addr: &str) -> Result<SocketAddr, TargetError> {
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| {
            TargetError::Admin(format!(
                "{addr}: not a HOST:PORT that resolves (e.g. 127.0.0.1:4433)"
            ))
        })
}

/// Connects one client per User of `world` to the server at `addr` (`host:port`), with the
/// credentials of the PKI directory `pki`.
pub async fn connect(
    addr: &str,
    pki: &Path,
    world: &World,
    mode: StreamMode,
) -> Result<QuicTarget, TargetError> {
    let server = resolve(addr).await?;
    let mut clients = Vec::with_capacity(world.users.len());
    // One connection per User, all from this host's address: a national population needs
    // more than the server's default per-address cap, and a refusal should say so.
    let per_source = dcc_router::ingress::server::Limits::default().max_connections_per_source;
    let hint = if world.users.len() >= per_source {
        format!(
            " (loadgen opens one connection per User, {} here plus the admin's, all from one \
             address, and the server caps connections per address: `[limits] \
             max_connections_per_source`, {per_source} by default — raise it in the server's \
             --config)",
            world.users.len()
        )
    } else {
        String::new()
    };
    for u in &world.users {
        let tls = user_tls(pki, &u.name)?;
        let c = Client::connect(server, SERVER_NAME, &tls, mode)
            .await
            .map_err(|e| {
                TargetError::Admin(format!(
                    "quic://{addr}: connecting as {} ({}): {e}{hint}",
                    u.name, u.eui
                ))
            })?;
        clients.push(Some(Arc::new(c)));
    }
    let admin = AdminLink::new(server, pki);
    let capacity = admin.capacity().await;
    Ok(QuicTarget {
        addr: server,
        clients,
        admin,
        mode,
        capacity,
    })
}

/// The server's published capacity estimate, requests/s: `None` when the status call fails or
/// the server publishes none (an older server), so that the caller calibrates instead.
pub async fn server_capacity(server: SocketAddr, admin: &TlsMaterial) -> Option<f64> {
    let answer = dcc_router::client::admin_call(server, SERVER_NAME, admin, &AdminRequest::Status)
        .await
        .ok()?;
    let c = answer.status?.capacity?;
    (c.requests_per_s > 0).then_some(c.requests_per_s as f64)
}

/// Builds the QUIC target, boxed.
pub async fn build(addr: &str, pki: &Path, world: &World) -> Result<Arc<dyn Target>, TargetError> {
    Ok(Arc::new(
        connect(addr, pki, world, StreamMode::default()).await?,
    ))
}

/// Maps a wire answer to an outcome, as [`super::inproc::outcome_of`] maps a router response.
pub fn outcome_of_wire(a: &WireAnswer) -> Outcome {
    outcome_of_code(&a.code, a.lane().into())
}

/// Maps a client error (no answer) to an outcome.
fn outcome_of_error(e: &ClientError) -> Outcome {
    match e {
        // The client will not send a second request with the ID of one in flight (a replay of
        // an unanswered request): refused locally, as the router would refuse it (R7).
        ClientError::Duplicate(_) => {
            Outcome::new(OutcomeClass::Refused, "DUP-IN-FLIGHT", Lane::None)
        }
        ClientError::NotAnEnvelope(_) => Outcome::new(OutcomeClass::Refused, "DECODE", Lane::None),
        _ => Outcome::new(OutcomeClass::Error, "TRANSPORT", Lane::None),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AdminLink {
    /// The admin channel of the server whose QUIC address is `addr`, with the `admin` User's
    /// credentials from `pki` when they are there.
    pub fn new(addr: SocketAddr, pki: &Path) -> Self {
        AdminLink {
            addr,
            tls: user_tls(pki, PKI_ADMIN_NAME).ok(),
            pki: pki.to_path_buf(),
            window: std::sync::Arc::default(),
        }
    }

    /// The server's capacity estimate (`None` without admin credentials or an estimate).
    pub async fn capacity(&self) -> Option<f64> {
        server_capacity(self.addr, self.tls.as_ref()?).await
    }

    /// Runs one admin request as the `admin` User. Blocking: it runs on a thread of its own
    /// with its own runtime, so that it works from synchronous trait methods whatever runtime
    /// the caller is on (events are rare; a handshake costs milliseconds).
    pub fn call_blocking(&self, request: AdminRequest) -> Result<AdminAnswer, TargetError> {
        let tls = self.tls.clone().ok_or_else(|| {
            TargetError::Admin(format!(
                "no admin credentials under {}/users/{PKI_ADMIN_NAME}",
                self.pki.display()
            ))
        })?;
        let addr = self.addr;
        let h = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(dcc_router::client::admin_call(
                addr,
                SERVER_NAME,
                &tls,
                &request,
            ))
            .map_err(|e| e.to_string())
        });
        // Waiting blocks this thread: on a multi-thread runtime, hand its queued tasks to
        // another worker first (tasks stuck behind a blocked worker could be the very server
        // or connection tasks the admin call waits for).
        let join = move || h.join();
        let joined = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(join),
            _ => join(),
        };
        let answer = joined
            .map_err(|_| TargetError::Admin("admin thread panicked".into()))?
            .map_err(TargetError::Admin)?;
        if answer.ok {
            Ok(answer)
        } else {
            Err(TargetError::Admin(answer.message))
        }
    }

    /// [`Target::setup`] for a server target: the server registered its Users and demo
    /// devices when it started; checks that it has the devices the world aims at (unregistered
    /// devices would be refused E7). Nothing to check without admin credentials.
    pub fn check_devices(&self, world: &World) -> Result<(), TargetError> {
        if self.tls.is_none() {
            return Ok(());
        }
        let answer = self.call_blocking(AdminRequest::Status)?;
        if let Some(s) = answer.status {
            if (s.devices as u64) < world.devices {
                return Err(TargetError::Admin(format!(
                    "the server has {} devices and the run aims at {}: pass --devices {} (or \
                     start the server with more demo devices)",
                    s.devices, world.devices, s.devices
                )));
            }
        }
        Ok(())
    }

    /// [`Target::apply`] for a server target: the event as an admin request.
    pub fn apply(&self, world: &World, event: &EventSpec) -> Result<(), TargetError> {
        match event {
            EventSpec::MaintenanceStart { impact } => {
                // The window starts at the server's "now" (its clock may be simulated:
                // `serve --simulated-clock-start`, tests only), read over the admin channel.
                let now = self
                    .call_blocking(AdminRequest::Status)?
                    .status
                    .map(|s| s.clock_unix)
                    .filter(|t| *t > 0)
                    .ok_or_else(|| TargetError::Admin("the server reports no clock".into()))?;
                let minutes = super::inproc::WINDOW.as_secs() / 60;
                self.call_blocking(AdminRequest::AddMaintenanceWindow {
                    start: now,
                    minutes,
                    impact: *impact,
                })?;
                self.window.set(now);
                return Ok(());
            }
            EventSpec::MaintenanceEnd => {
                let start = self.window.take()?;
                return self
                    .call_blocking(AdminRequest::RemoveMaintenanceWindow { start })
                    .map(|_| ());
            }
            _ => {}
        }
        let failed = world
            .failed
            .ok_or_else(|| TargetError::Admin("the population has no failed Supplier".into()))?;
        let cert = world.users[failed].cert;
        let request = match event {
            // MP134A as written: the SMKI PMA's delay, then the Authority's direction of the
            // SRPs, which send as the failed Supplier over their own connections.
            EventSpec::DelayRevocation => {
                self.call_blocking(AdminRequest::PmaDelay {
                    cert,
                    // Empty: the server's policy's safe-mode set.
                    srvs: Vec::new(),
                    until: Some(now_unix() + DELAY.as_secs()),
                })?;
                AdminRequest::AuthorityDirect {
                    cert,
                    srps: world.srps.iter().map(|&i| world.users[i].eui).collect(),
                    srp_own_eui: false,
                }
            }
            EventSpec::Revoke => AdminRequest::Revoke { cert },
            EventSpec::EndDelay => AdminRequest::EndDelay { cert },
            _ => return Err(TargetError::Admin(format!("event {event:?} not supported"))),
        };
        self.call_blocking(request).map(|_| ())
    }
}

impl QuicTarget {
    /// Runs one admin request as the `admin` User (see [`AdminLink::call_blocking`]).
    pub fn admin_blocking(&self, request: AdminRequest) -> Result<AdminAnswer, TargetError> {
        self.admin.call_blocking(request)
    }
}

impl Target for QuicTarget {
    fn describe(&self) -> String {
        format!(
            "quic://{} ({} client connections, {:?})",
            self.addr,
            self.clients.iter().flatten().count(),
            self.mode
        )
    }

    fn setup(&self, world: &World) -> Result<(), TargetError> {
        self.admin.check_devices(world)
    }

    fn send(&self, request: Request) -> OutcomeFuture {
        let client = request
            .via
            .and_then(|i| self.clients.get(i))
            .and_then(Option::clone);
        Box::pin(async move {
            let Some(client) = client else {
                return Outcome::new(OutcomeClass::Error, "NO-CONNECTION", Lane::None);
            };
            match client.send(request.bytes).await {
                Ok(a) => outcome_of_wire(&a),
                Err(e) => outcome_of_error(&e),
            }
        })
    }

    fn apply(&self, world: &World, event: &EventSpec) -> Result<(), TargetError> {
        self.admin.apply(world, event)
    }

    fn capacity_hint(&self) -> Option<f64> {
        self.capacity
    }
}
