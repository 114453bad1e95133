//! `https://host:port` (and `http://host:port`): a `dcc-router serve` instance's DUIS ingress,
//! sent the same scenario as DUIS XML.
//!
//! The population is the server's, read from its PKI directory, as for `quic://`. Requests are
//! prepared by the signing threads in the [`WireForm::Duis`] form (`crate::duis`: the DCC
//! Reference Test Data Set's templates re-addressed and signed with each User's key) and
//! posted to the DUIS service their command variant belongs to (`/api/v1/serviceS`, `T` or
//! `D`); a Signed Pre-Command (CV 5–7) is preceded by its transform (CV 4 to the Transform
//! service), and its latency covers both round trips. The answer's signed DUIS Response is
//! read for its `ResponseCode`, mapped through `ResponseCode: FromStr` into the same outcome
//! classes as the other targets; the lane comes from the router's
//! [`LANE_HEADER`](dcc_router::ingress::https::LANE_HEADER). The answers' signatures are not
//! verified (the router's tests do that; here it would cost the generator an ECDSA
//! verification per answer).
//!
//! HTTP/1.1 carries one request at a time per connection, so each User has a pool of
//! keep-alive connections (up to [`MAX_CONNECTIONS_PER_USER`]), opened as the load needs
//! them with the User's TLS client certificate (`https`; `http` has none: the plain ingress of
//! a test rig, where the XML signature is the only authentication). A request that finds every
//! connection of its User busy waits for one, and that wait is part of its latency.
//!
//! The DUIS ingress has no admin protocol: scenario events, the device-count check and the
//! server's capacity estimate go over the QUIC admin channel when `--admin HOST:PORT` names
//! it ([`AdminLink`]); without it a scenario event fails (and says why) and a rate relative to
//! capacity is found by the calibration ramp.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use dcc_router::client::{DuisClient, DuisClientError, DuisReply, TlsMaterial};
use dcc_router::ingress::https::DuisService;
use dcc_signing::duis::DuisDocument;

use super::inproc::outcome_of_code;
use super::quic::{resolve, user_tls, AdminLink, SERVER_NAME};
use super::{OutcomeFuture, Request, Target, TargetError, WireForm};
use crate::duis::{command_variant_of, DuisEncoder, TemplateSet};
use crate::outcome::{Lane, Outcome, OutcomeClass};
use crate::population::World;
use crate::scenario::{EventSpec, Scenario};
use crate::workload::request_kinds;

/// Most connections one User opens (the server's default cap is 1,024 in all).
pub const MAX_CONNECTIONS_PER_USER: usize = 64;

/// One User's keep-alive connections.
#[derive(Debug)]
struct Conns {
    server: SocketAddr,
    tls: Option<TlsMaterial>,
    idle: Mutex<Vec<DuisClient>>,
    slots: tokio::sync::Semaphore,
}

impl Conns {
    async fn connect(&self) -> Result<DuisClient, DuisClientError> {
        match &self.tls {
            Some(tls) => DuisClient::connect_tls(self.server, SERVER_NAME, tls).await,
            None => DuisClient::connect_plain(self.server).await,
        }
    }

    /// POSTs on an idle connection (or a new one); a connection that failed is dropped.
    async fn post(
        &self,
        service: DuisService,
        body: Vec<u8>,
    ) -> Result<DuisReply, DuisClientError> {
        // The semaphore is never closed.
        let _slot = self.slots.acquire().await;
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut client = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        let reply = client.post(service, body).await;
        if reply.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(client);
        }
        reply
    }
}

/// A router's DUIS ingress.
#[derive(Debug)]
pub struct HttpsTarget {
    addr: SocketAddr,
    tls: bool,
    users: Vec<Arc<Conns>>,
    encoder: Arc<DuisEncoder>,
    templates: String,
    admin: Option<AdminLink>,
    capacity: Option<f64>,
}

/// The DUIS service a document with command variant `cv` is posted to.
pub fn service_of(cv: u8) -> DuisService {
    DuisService::ALL
        .into_iter()
        .find(|s| s.accepts(cv))
        .unwrap_or(DuisService::SendCommand)
}

/// Reads a DUIS answer into an outcome.
pub fn outcome_of_reply(r: &DuisReply) -> Outcome {
    if r.status.as_u16() != 200 {
        return Outcome::error(format!("HTTP-{}", r.status.as_u16()));
    }
    let lane = Lane::from(r.lane);
    match DuisDocument::parse(&r.body) {
        Ok(doc) => match doc.header_field("ResponseCode") {
            Some(code) => outcome_of_code(code.trim(), lane),
            None => Outcome::new(OutcomeClass::Error, "NO-RESPONSE-CODE", Lane::None),
        },
        Err(_) => Outcome::new(OutcomeClass::Error, "BAD-ANSWER", Lane::None),
    }
}

/// Connects to the DUIS ingress at `addr` (`host:port`; HTTPS when `tls`), opening one
/// connection per User of `world` now (so that bad credentials fail the setup, not the run),
/// and shapes `templates` for `scenario`'s requests. `admin`: the server's QUIC address, for
/// the admin channel.
pub async fn connect(
    addr: &str,
    tls: bool,
    pki: &Path,
    world: &World,
    scenario: &Scenario,
    templates: &TemplateSet,
    admin: Option<&str>,
) -> Result<HttpsTarget, TargetError> {
    let server = resolve(addr).await?;
    let encoder = DuisEncoder::new(templates, request_kinds(scenario))?;
    let mut users = Vec::with_capacity(world.users.len());
    for u in &world.users {
        let conns = Conns {
            server,
            tls: if tls {
                Some(user_tls(pki, &u.name)?)
            } else {
                None
            },
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(MAX_CONNECTIONS_PER_USER),
        };
        let first = conns.connect().await.map_err(|e| {
            TargetError::Admin(format!(
                "{}://{addr}: connecting as {} ({}): {e}",
                if tls { "https" } else { "http" },
                u.name,
                u.eui
            ))
        })?;
        conns
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(first);
        users.push(Arc::new(conns));
    }
    let admin = match admin {
        Some(a) => Some(AdminLink::new(resolve(a).await?, pki)),
        None => None,
    };
    let capacity = match &admin {
        Some(a) => a.capacity().await,
        None => None,
    };
    Ok(HttpsTarget {
        addr: server,
        tls,
        users,
        encoder: Arc::new(encoder),
        templates: templates.source().to_owned(),
        admin,
        capacity,
    })
}

impl HttpsTarget {
    /// Which template serves which SRV, for the run's log.
    pub fn templates_chosen(&self) -> String {
        self.encoder
            .chosen
            .iter()
            .map(|(srv, name)| format!("{srv} {name}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn admin(&self) -> Result<&AdminLink, TargetError> {
        self.admin.as_ref().ok_or_else(|| {
            TargetError::Admin(
                "the DUIS ingress has no admin protocol: pass --admin HOST:PORT (the server's \
                 QUIC address) for scenario events"
                    .into(),
            )
        })
    }
}

async fn post(conns: &Conns, body: Vec<u8>) -> Outcome {
    let Some(cv) = command_variant_of(&body) else {
        return Outcome::new(OutcomeClass::Error, "NOT-DUIS", Lane::None);
    };
    match conns.post(service_of(cv), body).await {
        Ok(r) => outcome_of_reply(&r),
        Err(_) => Outcome::new(OutcomeClass::Error, "TRANSPORT", Lane::None),
    }
}

impl Target for HttpsTarget {
    fn describe(&self) -> String {
        format!(
            "{}://{} (DUIS XML from {}; up to {} connections per User, {} Users)",
            if self.tls { "https" } else { "http" },
            self.addr,
            self.templates,
            MAX_CONNECTIONS_PER_USER,
            self.users.len()
        )
    }

    fn setup(&self, world: &World) -> Result<(), TargetError> {
        match &self.admin {
            Some(a) => a.check_devices(world),
            None => Ok(()),
        }
    }

    fn send(&self, request: Request) -> OutcomeFuture {
        let conns = request.via.and_then(|i| self.users.get(i)).map(Arc::clone);
        Box::pin(async move {
            let Some(conns) = conns else {
                return Outcome::new(OutcomeClass::Error, "NO-CONNECTION", Lane::None);
            };
            if let Some(transform) = request.transform {
                let o = post(&conns, transform).await;
                if o.class != OutcomeClass::Ok {
                    return o;
                }
            }
            post(&conns, request.bytes).await
        })
    }

    fn apply(&self, world: &World, event: &EventSpec) -> Result<(), TargetError> {
        self.admin()?.apply(world, event)
    }

    fn capacity_hint(&self) -> Option<f64> {
        self.capacity
    }

    fn wire(&self) -> WireForm {
        WireForm::Duis(Arc::clone(&self.encoder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_variants_go_to_their_duis_service() {
        for (cv, s) in [
            (1, DuisService::SendCommand),
            (3, DuisService::SendCommand),
            (4, DuisService::Transform),
            (5, DuisService::SendCommand),
            (2, DuisService::NonDevice),
            (8, DuisService::NonDevice),
        ] {
            assert_eq!(service_of(cv), s, "CV {cv}");
        }
    }
}
