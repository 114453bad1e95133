//! Where requests go: the [`Target`] trait and its implementations.
//!
//! * [`mock::MockTarget`]: a scripted stand-in (fixed service time, optional stall) used by the
//!   generator's own tests and by `--target mock` to measure the generator alone;
//! * [`inproc::InProcTarget`]: an embedded router (the default);
//! * [`quic::QuicTarget`]: `quic://host:port`, a `dcc-router serve` instance, one client
//!   connection per User with the TLS credentials of its PKI directory (`--pki`);
//! * [`https::HttpsTarget`]: `https://host:port` (or `http://` for a plain-HTTP test rig), the
//!   same server's DUIS ingress: the same requests as DUIS XML ([`WireForm::Duis`]), a pool of
//!   keep-alive connections per User.
//!
//! A target answers every request with an [`Outcome`] (class, response code, lane). Scenario
//! events (a Supplier failing, a revocation) are applied through [`Target::apply`], and the
//! scenario's population (Users, certificates, devices) through [`Target::setup`].

pub mod https;
pub mod inproc;
pub mod mock;
pub mod quic;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::duis::DuisEncoder;
use crate::outcome::Outcome;
use crate::population::World;
use crate::scenario::EventSpec;

/// A boxed future returning an [`Outcome`].
pub type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// The form requests take on the wire: what the signing threads prepare.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum WireForm {
    /// The router's binary envelope.
    #[default]
    Envelope,
    /// DUIS XML signed with XML-DSig, from the encoder's template shapes.
    Duis(Arc<DuisEncoder>),
}

/// One request as the generator hands it over.
#[derive(Clone, Debug)]
pub struct Request {
    /// The signed envelope or DUIS document (possibly deliberately damaged).
    pub bytes: Vec<u8>,
    /// DUIS only: for a Signed Pre-Command (CV 5–7), the same request as CV 4, which the
    /// target sends to the Transform service first.
    pub transform: Option<Vec<u8>>,
    /// The User whose connection carries the request (the originator; for a Shared Resource
    /// Provider acting for a failed Supplier, the SRP). Index into [`World::users`]; a QUIC
    /// target picks the client certificate from it.
    pub via: Option<usize>,
}

/// Why a target could not be set up or could not apply an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The target kind is recognised but not implemented yet.
    #[error("{0}")]
    NotSupported(String),
    /// The target string is not understood.
    #[error(
        "unknown target {0:?}: expected `inproc`, `mock`, `quic://HOST:PORT`, \
         `https://HOST:PORT` or `http://HOST:PORT`"
    )]
    Unknown(String),
    /// Setup or an admin operation failed.
    #[error("target admin operation failed: {0}")]
    Admin(String),
    /// The DUIS templates could not be used.
    #[error(transparent)]
    Templates(#[from] crate::duis::TemplateError),
}

/// Something that answers Service Requests.
pub trait Target: Send + Sync + 'static {
    /// A short description for reports (`inproc (4 workers)`, `mock`…).
    fn describe(&self) -> String;

    /// Registers the scenario's Users, certificates and devices.
    fn setup(&self, world: &World) -> Result<(), TargetError>;

    /// Sends one request; the future completes with the answer. Must not block the caller: the
    /// generator is open-loop and calls this at the intended time whatever is in flight.
    fn send(&self, request: Request) -> OutcomeFuture;

    /// Applies a scenario event (e.g. delay a failed Supplier's revocation).
    fn apply(&self, world: &World, event: &EventSpec) -> Result<(), TargetError>;

    /// The target's own estimate of its capacity in requests per second, used by scenarios whose
    /// rate is expressed relative to capacity.
    fn capacity_hint(&self) -> Option<f64> {
        None
    }

    /// The form the target takes requests in (default: the binary envelope).
    fn wire(&self) -> WireForm {
        WireForm::Envelope
    }
}

/// Parses a `--target` value into a target; `inproc` is resolved by the caller (it needs the
/// router crate), so this handles the others.
pub fn parse_kind(s: &str) -> Result<TargetKind, TargetError> {
    let s = s.trim();
    match s {
        "inproc" | "" => Ok(TargetKind::InProc),
        "mock" => Ok(TargetKind::Mock),
        _ if s.starts_with("quic://") => Ok(TargetKind::Quic(s["quic://".len()..].to_owned())),
        _ if s.starts_with("https://") => Ok(TargetKind::Https {
            addr: s["https://".len()..].trim_end_matches('/').to_owned(),
            tls: true,
        }),
        _ if s.starts_with("http://") => Ok(TargetKind::Https {
            addr: s["http://".len()..].trim_end_matches('/').to_owned(),
            tls: false,
        }),
        _ => Err(TargetError::Unknown(s.chars().take(100).collect())),
    }
}

/// The kinds of target `--target` names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetKind {
    /// An embedded router.
    InProc,
    /// The scripted mock.
    Mock,
    /// A router over QUIC at `host:port`.
    Quic(String),
    /// A router's DUIS ingress at `host:port`, over HTTPS (`tls`) or plain HTTP.
    Https {
        /// `host:port`.
        addr: String,
        /// HTTPS with the User's client certificate, else plain HTTP.
        tls: bool,
    },
}

impl TargetKind {
    /// Whether the target is a `dcc-router serve` instance, whose population comes from its
    /// PKI directory.
    pub fn is_server(&self) -> bool {
        matches!(self, TargetKind::Quic(_) | TargetKind::Https { .. })
    }
}

/// The maintenance window a `maintenance_start` event planned (its start, Unix seconds), for
/// the `maintenance_end` event that removes it.
#[derive(Debug, Default)]
pub struct PlannedWindow(std::sync::Mutex<Option<u64>>);

impl PlannedWindow {
    /// Records the window starting at `start`.
    pub fn set(&self, start: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(start);
    }

    /// The start of the planned window, forgotten; an error when none was planned.
    pub fn take(&self) -> Result<u64, TargetError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| TargetError::Admin("no maintenance window planned".into()))
    }
}
