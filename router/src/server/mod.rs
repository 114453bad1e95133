//! `dcc-router serve`: the router behind a QUIC ingress, with an admin channel and metrics.
//!
//! * [`config`]: the TOML configuration and its defaults.
//! * [`bootstrap`]: the PKI on first start, and the Users and devices the router starts with.
//! * [`admin_proto`]: JSON admin operations for admin certificates.
//! * [`metrics`]: the Prometheus endpoint.
//!
//! This module only wires things together: the pipeline is [`crate::Router`], the transport is
//! [`crate::ingress`].

pub mod admin_proto;
pub mod bootstrap;
/// The capacity estimate (measured in the core, published by the server).
pub use crate::capacity;
pub mod config;
pub mod duis;
pub mod metrics;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use dcc_signing::pki::CaCertificate;
use dcc_signing::Eui64;

use crate::ingress::identity::PeerIdentity;
use crate::ingress::server::{Answer, Handler, Limits, Server};
use crate::ingress::tls::{https_server_config, server_config, TlsMaterial};
use crate::ingress::wire::{self, peek_request_id, WireAnswer};
use crate::{Policy, Response, ResponseCode, Router, Sender, State};

pub use config::ServeConfig;
use metrics::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// PKI or initial state.
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    /// The policy file: refused, with the file (and line).
    #[error("{}", policy_message(path, source))]
    Policy {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: crate::PolicyError,
    },
    /// TLS material (the error names the file).
    #[error("TLS: {0}")]
    Tls(#[from] crate::ingress::tls::TlsError),
    /// The router.
    #[error("router: {0}")]
    Router(#[from] crate::BuildError),
    /// The DUIS signing identity could not be loaded or made.
    #[error(transparent)]
    Duis(#[from] duis::DuisSetupError),
    /// The state store cannot be opened or read: the server does not start with empty state.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The data directory cannot be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Binding a socket.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// `FILE:LINE: reason` for a policy file, as for the configuration file.
fn policy_message(path: &std::path::Path, e: &crate::PolicyError) -> String {
    match e {
        crate::PolicyError::Invalid { line, reason } => {
            format!("{}:{line}: {reason}", path.display())
        }
        // Already names the file.
        crate::PolicyError::Io { .. } => e.to_string(),
        _ => format!("{}: {e}", path.display()),
    }
}

/// Serves Service Requests (and admin operations) arriving over QUIC.
#[derive(Debug)]
pub struct RouterHandler {
    router: Router,
    admin_users: HashSet<Eui64>,
    issuing: Option<Arc<CaCertificate>>,
    metrics: Arc<Metrics>,
}

impl RouterHandler {
    /// A handler over `router`; connections of `admin_users` speak the admin protocol.
    pub fn new(
        router: Router,
        admin_users: impl IntoIterator<Item = Eui64>,
        issuing: Option<CaCertificate>,
        metrics: Arc<Metrics>,
    ) -> Self {
        RouterHandler {
            router,
            admin_users: admin_users.into_iter().collect(),
            issuing: issuing.map(Arc::new),
            metrics,
        }
    }
}

/// Appends the wire form of a router response to `out` (no intermediate [`WireAnswer`]).
pub fn encode_response(out: &mut Vec<u8>, r: &Response) {
    wire::encode_into(
        out,
        r.request_id,
        r.lane.map(|l| l as u8),
        u32::try_from(r.timings.total.as_micros()).unwrap_or(u32::MAX),
        r.code.code(),
        r.detail.unwrap_or(""),
    );
}

impl Handler for RouterHandler {
    fn handle(&self, peer: &Arc<PeerIdentity>, request: Vec<u8>, answer: Answer) {
        if self.admin_users.contains(&peer.user) {
            if request.len() > admin_proto::MAX_ADMIN_REQUEST {
                answer.send(b"{\"ok\":false,\"message\":\"admin request too large\"}");
                return;
            }
            tracing::info!(admin = %peer.user, "admin operation");
            // An admin change waits for its fsync (and for the admin lock): off the async
            // runtime, so that it never stalls the connections this thread drives.
            let (router, issuing, who) = (self.router.clone(), self.issuing.clone(), peer.user);
            let capacity = self.metrics.capacity();
            let run = move || {
                let mut reply =
                    admin_proto::handle_frame(&router, issuing.as_deref(), who, &request, capacity);
                if reply.len() > crate::ingress::frame::MAX_FRAME_LEN {
                    reply = b"{\"ok\":false,\"message\":\"the answer is larger than one frame: narrow the request (e.g. audit --limit)\",\"code\":\"answer-too-large\"}".to_vec();
                }
                answer.send(&reply);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(run);
                }
                Err(_) => run(),
            }
            return;
        }
        // The router decodes the request (once), binds the connection's User to its
        // originator (admission check 0) and answers undecodable requests R1 with the defect.
        // The answer is encoded and queued on the worker thread that produced it.
        let metrics = Arc::clone(&self.metrics);
        self.router
            .submit_from(Sender::User(peer.user), request, move |r| {
                metrics.observe(&r);
                answer.send_with(64, |out| encode_response(out, &r));
            });
    }

    fn is_admin(&self, peer: &PeerIdentity) -> bool {
        self.admin_users.contains(&peer.user)
    }

    fn shutdown_answer(&self, request: &[u8]) -> Vec<u8> {
        WireAnswer {
            request_id: peek_request_id(request).ok(),
            lane: None,
            router_micros: 0,
            // The router answers R11 "shutting-down" to what it can no longer serve: a request
            // the ingress read after the stop is in the same situation and gets the same code.
            code: ResponseCode::Unavailable.code().to_owned(),
            detail: "shutting-down".into(),
        }
        .encode()
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The router.
    pub router: Router,
    /// The QUIC server.
    pub server: Server,
    /// The QUIC address bound.
    pub addr: SocketAddr,
    /// The metrics address bound, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The DUIS HTTPS address bound, if enabled.
    pub duis_addr: Option<SocketAddr>,
    /// The DUIS plain-HTTP address bound, if enabled.
    pub duis_plain_addr: Option<SocketAddr>,
    /// The certificate DUIS answers are signed under (clients pin it).
    pub duis_cert: Option<std::path::PathBuf>,
    duis_servers: Vec<crate::ingress::https::HttpsServer>,
    /// Whether the PKI was created by this start.
    pub created_pki: bool,
    /// What was restored from the store.
    pub restored: crate::admin::RestoreReport,
    /// What the PKI directory and demo population added.
    pub populated: bootstrap::Populated,
    /// How long restoring and populating the state took.
    pub state_load: std::time::Duration,
    /// Resident memory (bytes) just before the state was built and just after it was
    /// loaded; `None` where the platform does not say (it is read from `/proc/self/status`).
    pub resident: Option<(u64, u64)>,
    /// The verifier in force.
    pub verifier: config::VerifierMode,
    /// The capacity estimate measured at start (also in `admin status` and the metrics).
    pub capacity: capacity::CapacityEstimate,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Graceful shutdown: stop accepting, drain (bounded), answer the rest R11, stop workers.
    pub async fn shutdown(self) {
        for s in self.duis_servers {
            s.shutdown().await;
        }
        self.server.shutdown().await;
        if let Some(t) = self.metrics_task {
            t.abort();
        }
        let router = self.router;
        let _ = tokio::task::spawn_blocking(move || router.shutdown()).await;
    }
}

/// Starts a server from a configuration. Call from within a tokio runtime.
///
/// The order is what makes a failed start leave nothing behind: first everything that can be
/// refused without writing (the configuration's values, the policy file, a configured
/// `pki_dir`), then the sockets are bound (a port in use is the commonest failure), and only
/// then is anything written — the demo PKI on first start, the data directory, the store.
/// The TLS material, CA certificates and Users are read and checked before the store is
/// opened, so a bad PKI file does not create one either.
pub async fn start(cfg: &ServeConfig) -> Result<Running, ServeError> {
    let now = dcc_signing::pki::now_unix();
    // 1. Refusals that write nothing.
    cfg.validate()?;
    let policy = match &cfg.policy {
        Some(p) => Policy::load(p).map_err(|source| ServeError::Policy {
            path: p.clone(),
            source,
        })?,
        None => Policy::default(),
    };
    let pki_dir = cfg.pki_dir();
    if !cfg.pki_is_demo() {
        bootstrap::check_pki_dir(&pki_dir)?;
    }
    // 2. The sockets.
    let udp = std::net::UdpSocket::bind(cfg.listen).map_err(|source| ServeError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let tcp = |a: Option<SocketAddr>| -> Result<Option<std::net::TcpListener>, ServeError> {
        a.map(|addr| {
            std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })
        })
        .transpose()
    };
    let duis_listener = tcp(cfg.duis)?;
    let duis_plain_listener = tcp(cfg.duis_plain)?;
    let metrics_listener = match cfg.metrics {
        Some(m) => Some(
            std::net::TcpListener::bind(m)
                .map_err(|source| ServeError::Bind { addr: m, source })?,
        ),
        None => None,
    };
    // 3. The PKI: created if it is the demo one on first start, then read and checked.
    let data_dir = || {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| ServeError::DataDir {
            path: cfg.data_dir.clone(),
            source,
        })
    };
    let demo_keys = cfg
        .pki_is_demo()
        .then(|| cfg.data_dir.join(dcc_signing::pki::demo::CA_KEYS_DIR));
    if demo_keys.is_some() {
        // The demo PKI lives in the data directory: a data directory that cannot be created
        // is said as such, not as a PKI file that cannot be written.
        data_dir()?;
    }
    let (users, created_pki) =
        bootstrap::ensure_pki(&pki_dir, demo_keys.as_deref(), now, &cfg.demo_population())?;
    let (trust, issuing_ca) = bootstrap::trust_from_pki_dir(&pki_dir)?;
    let tls = TlsMaterial::server_from_pki_dir(&pki_dir)?;
    let limits: Limits = cfg.limits.into();
    let quic = server_config(&tls, limits.max_streams_per_connection)?;
    // 4. The store, and the state it holds.
    let store: Arc<dyn crate::store::Store> = match cfg.store {
        config::StoreMode::Memory => Arc::new(crate::store::MemoryStore::default()),
        config::StoreMode::Durable => {
            data_dir()?;
            Arc::new(crate::store::RedbStore::open(&cfg.store_path())?)
        }
    };
    let resident_before = resident_bytes();
    let router = Router::builder()
        .policy(policy)
        .state(Arc::new(State::with_device_capacity(
            usize::try_from(cfg.demo_devices).unwrap_or(0),
        )))
        .store(store)
        .trust(trust)
        .verifier(cfg.verifier.build())
        .workers(cfg.workers_in_force())
        .clock(match cfg.simulated_clock_start {
            // Tests and demonstrations only (see `ServeConfig::simulated_clock_start`).
            Some(start) => crate::Clock::simulated(start),
            None => crate::Clock::system(),
        })
        .build()?;
    let loading = std::time::Instant::now();
    let admin = router.admin();
    let restored = admin
        .restore(Some(&issuing_ca))
        .map_err(bootstrap::BootstrapError::Store)?;
    let populated = bootstrap::populate(
        &admin,
        &pki_dir,
        &users,
        cfg.demo_devices,
        cfg.prepayment_percent,
        &restored,
    )?;
    let state_load = loading.elapsed();
    let resident = resident_before.zip(resident_bytes());
    // 5. Serving, on the sockets bound in 2.
    let metrics = Arc::new(Metrics::default());
    // Before the listener answers anything: the machine is idle and the keys are loaded.
    // The router's own prepared keys, as its workers will use them.
    let certs = &router.state().certs;
    let keys: Vec<_> = certs
        .list()
        .into_iter()
        .take(64)
        .filter_map(|(r, _)| certs.get(&r.id).map(|e| Arc::clone(e.key())))
        .collect();
    let capacity = capacity::calibrate(&keys, router.verifier().as_ref(), cfg.workers_in_force());
    tracing::info!(
        requests_per_s = capacity.requests_per_s,
        workers = capacity.workers,
        verify_per_s = capacity.verify_per_s,
        keys = capacity.keys,
        verifier = cfg.verifier.name(),
        "capacity estimate"
    );
    metrics.set_capacity(capacity);
    let handler = Arc::new(RouterHandler::new(
        router.clone(),
        cfg.admin_users.iter().copied(),
        Some(issuing_ca),
        Arc::clone(&metrics),
    ));
    let server =
        Server::start_on(udp, quic, limits, handler).map_err(|source| ServeError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = server.local_addr().map_err(|source| ServeError::Bind {
        addr: cfg.listen,
        source,
    })?;
    // DUIS: HTTPS with the QUIC server's TLS material and client CA, and plain HTTP for test
    // rigs when configured; both sign their answers with the DCC XML-signing key.
    let mut duis_servers = Vec::new();
    let mut duis_cert = None;
    if duis_listener.is_some() || duis_plain_listener.is_some() {
        data_dir()?;
        let stored: Vec<_> = router
            .state()
            .keys
            .all()
            .iter()
            .filter(|k| k.purpose == crate::state::KeyPurpose::DuisSign)
            .cloned()
            .collect();
        let duis::SigningIdentity {
            signer,
            public_key,
            cert,
            to_import,
        } = duis::signing_identity(
            cfg.duis_signing_key.as_deref(),
            cfg.duis_signing_cert.as_deref(),
            &cfg.data_dir,
            router.policy().dcc_eui,
            now,
            &stored,
        )?;
        if let Some((path, pem)) = to_import {
            move_key_into_store(&router, &path, &pem, public_key);
        }
        duis_cert = Some(cert);
        let front: Arc<dyn crate::ingress::https::DuisHandler> = Arc::new(duis::DuisFront::new(
            router.clone(),
            signer,
            Arc::clone(&metrics),
        ));
        let limits = cfg.http_limits();
        for (listener, tls) in [
            (duis_listener, Some(https_server_config(&tls)?)),
            (duis_plain_listener, None),
        ] {
            if let Some(l) = listener {
                let addr = l.local_addr().map_err(|source| ServeError::Bind {
                    addr: cfg.listen,
                    source,
                })?;
                let s =
                    crate::ingress::https::HttpsServer::start(l, tls, limits, Arc::clone(&front))
                        .map_err(|source| ServeError::Bind { addr, source })?;
                duis_servers.push(s);
            }
        }
    }
    let (metrics_addr, metrics_task) = match (metrics_listener, cfg.metrics) {
        (Some(l), Some(m)) => {
            let (a, t) = metrics::serve_on(l, router.clone(), metrics, server.connection_counter())
                .map_err(|source| ServeError::Bind { addr: m, source })?;
            (Some(a), Some(t))
        }
        _ => (None, None),
    };
    let mut duis_addrs = duis_servers.iter().map(|s| s.local_addr());
    let (duis_addr, duis_plain_addr) = match (cfg.duis.is_some(), cfg.duis_plain.is_some()) {
        (true, true) => (duis_addrs.next(), duis_addrs.next()),
        (true, false) => (duis_addrs.next(), None),
        (false, true) => (None, duis_addrs.next()),
        (false, false) => (None, None),
    };
    Ok(Running {
        router,
        server,
        addr,
        duis_addr,
        duis_plain_addr,
        duis_cert,
        duis_servers,
        metrics_addr,
        created_pki,
        restored,
        populated,
        state_load,
        resident,
        verifier: cfg.verifier,
        capacity,
        metrics_task,
    })
}

/// Moves the router's DUIS response-signing key from its file into the store (issue 13 item
/// 8: the router holds its own keys in its store), then removes the file. A failure leaves the
/// file in place (and is logged): the key is read from it again at the next start.
fn move_key_into_store(
    router: &Router,
    path: &std::path::Path,
    pem: &[u8],
    public: p256::PublicKey,
) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let fingerprint = hex::encode(&public.to_encoded_point(true).as_bytes()[1..5]);
    let id = format!("duis-sign@{fingerprint}");
    let r = router
        .admin()
        .acting_as(
            "bootstrap",
            Some(format!(
                "DUIS response-signing key moved from {} into the store",
                path.display()
            )),
        )
        .import_key(
            &id,
            crate::state::KeyPurpose::DuisSign,
            pem,
            "none: the router's own key, made at its first start",
        );
    match r {
        Ok(()) => {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "DUIS signing key stored, but its file could not be removed");
            }
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "DUIS signing key not moved into the store; still read from its file");
        }
    }
}

/// This process's resident set size in bytes (`VmRSS` in `/proc/self/status`; Linux only).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
