//! `inproc`: an embedded dcc-router built from its embedded default policy.
//!
//! [`InProcTarget::setup`] registers the scenario's world through the router's admin API: every
//! User as an approved Party with its roles, its Organisation Certificate (id, owner, public
//! key, validity around now), and every device with its registered Supplier, network operator
//! and payment mode. Events map to admin calls (delay revocation with the policy's safe-mode
//! set, revoke, end delay).
//!
//! The capacity estimate used by `rate = "capacity"` scenarios is the router's worker count
//! times this machine's measured single-core verify rate (the verify workers are the
//! bottleneck by design; admission runs on the submitting thread).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::scenario::VerifierMode;
use dcc_router::state::maintenance::MaintenanceWindow;
use dcc_router::{
    CertRecord, Clock, Device, DeviceStatus, Party, PaymentMode, Policy, Response, ResponseCode,
    Router,
};
use dcc_signing::verify::P256Verifier;

use super::{OutcomeFuture, Request, Target, TargetError};
use crate::outcome::{Lane, Outcome, OutcomeClass};
use crate::population::World;
use crate::scenario::EventSpec;

/// How long a revocation delay lasts (the SoLR takes customers over in 2–4 weeks).
const DELAY: Duration = Duration::from_secs(28 * 86_400);

/// The embedded router.
#[derive(Debug)]
pub struct InProcTarget {
    router: Router,
    workers: usize,
    verify_rate: f64,
    /// The start of the maintenance window a `maintenance_start` event planned.
    window: super::PlannedWindow,
    /// The world's Shared Resource Providers: user index → EUI-64 (their requests are sent
    /// as from their connection).
    srps: std::sync::OnceLock<Vec<(usize, dcc_signing::Eui64)>>,
}

/// How long a window planned by `maintenance_start` lasts unless `maintenance_end` removes it.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// The next 20:00:00 UTC after `now` (Unix seconds): where a simulated clock starts so that a
/// DP092 maintenance window (20:00–08:00 only) can be planned at its "now".
pub fn next_evening(now: u64) -> u64 {
    let day = now - now % 86_400;
    let evening = day + 20 * 3600;
    if evening > now {
        evening
    } else {
        evening + 86_400
    }
}

/// Single-core verify rate of `verifier` on this machine (~100 ms): the same best-of-trials
/// measure a server publishes ([`dcc_router::capacity::calibrate`]).
pub fn measure_verify_rate(verifier: &dyn dcc_signing::verify::Verifier) -> f64 {
    dcc_router::capacity::calibrate(&[], verifier, 1).verify_per_s as f64
}

impl InProcTarget {
    /// Starts a router with the default policy and `workers` verify threads (default: cores).
    ///
    /// `night_clock`: run the router on a simulated clock starting at the next 20:00 UTC (for
    /// scenarios that plan a DP092 maintenance window; tests and demonstrations only).
    pub fn new(
        workers: Option<usize>,
        policy: Policy,
        verifier: VerifierMode,
        night_clock: bool,
    ) -> Result<Self, TargetError> {
        let mut b = Router::builder().policy(policy);
        if night_clock {
            b = b.clock(Clock::simulated(next_evening(now_unix())));
        }
        if verifier == VerifierMode::P256 {
            b = b.verifier(std::sync::Arc::new(P256Verifier));
        }
        if let Some(w) = workers {
            b = b.workers(w);
        }
        let router = b.build().map_err(|e| TargetError::Admin(e.to_string()))?;
        let workers = workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let verify_rate = measure_verify_rate(router.verifier().as_ref());
        Ok(InProcTarget {
            router,
            workers,
            verify_rate,
            window: super::PlannedWindow::default(),
            srps: std::sync::OnceLock::new(),
        })
    }

    /// Wraps a router built elsewhere (custom policy, verifier or dispatcher) with a known
    /// worker count and capacity estimate (requests/s).
    pub fn from_router(router: Router, workers: usize, capacity: f64) -> Self {
        InProcTarget {
            router,
            workers: workers.max(1),
            verify_rate: capacity / workers.max(1) as f64,
            window: super::PlannedWindow::default(),
            srps: std::sync::OnceLock::new(),
        }
    }

    /// The router (for counters and state in tests).
    pub fn router(&self) -> &Router {
        &self.router
    }
}

/// The outcome class of a response code (shared with the QUIC target).
pub fn class_of(code: ResponseCode) -> OutcomeClass {
    match code {
        c if c.is_success() => OutcomeClass::Ok,
        ResponseCode::Busy => OutcomeClass::Busy,
        ResponseCode::Throttled => OutcomeClass::Throttled,
        ResponseCode::Unavailable
        | ResponseCode::CosKeyUnavailable
        | ResponseCode::DeviceUnreachable
        | ResponseCode::NoDeviceResponse => OutcomeClass::Error,
        _ => OutcomeClass::Refused,
    }
}

/// Maps a response code as a remote target writes it (QUIC answer, DUIS `ResponseCode`) to an
/// outcome, through `ResponseCode: FromStr`. A code this build does not know (a newer server)
/// counts as a refusal under its own name rather than being dropped.
pub fn outcome_of_code(code: &str, lane: Lane) -> Outcome {
    match code.parse::<ResponseCode>() {
        Ok(c) => Outcome {
            class: class_of(c),
            code: c.code().into(),
            lane,
        },
        Err(_) => Outcome {
            class: OutcomeClass::Refused,
            code: code.chars().take(32).collect::<String>().into(),
            lane,
        },
    }
}

/// Maps a router response to an outcome.
pub fn outcome_of(r: &Response) -> Outcome {
    let class = class_of(r.code);
    Outcome {
        class,
        code: r.code.code().into(),
        lane: r.lane.into(),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Target for InProcTarget {
    fn describe(&self) -> String {
        format!(
            "inproc dcc-router ({} verify workers, default policy)",
            self.workers
        )
    }

    fn setup(&self, world: &World) -> Result<(), TargetError> {
        let _ = self.srps.set(
            world
                .srps
                .iter()
                .map(|&i| (i, world.users[i].eui))
                .collect(),
        );
        let admin = self.router.admin();
        let now = now_unix();
        for u in &world.users {
            admin
                .upsert_party(u.eui, Party::approved(&u.roles))
                .map_err(|e| TargetError::Admin(e.to_string()))?;
            admin
                .add_certificate(CertRecord {
                    id: u.cert,
                    owner: u.eui,
                    public_key: u.signer.public_key(),
                    not_before: now.saturating_sub(86_400),
                    not_after: now + 10 * 365 * 86_400,
                })
                .map_err(|e| TargetError::Admin(e.to_string()))?;
        }
        // In batches: one admin call (and one audit entry) per batch, not per device.
        let mut batch = Vec::with_capacity(dcc_router::admin::MAX_DEVICES_PER_CALL.min(4096));
        for d in 0..world.devices {
            let supplier = world.users[world.device_supplier(d)].eui;
            batch.push((
                world.device_eui(d),
                Device {
                    supplier: Some(supplier),
                    export_supplier: None,
                    network_operator: world.device_network_operator(d).map(|i| world.users[i].eui),
                    payment_mode: if world.device_prepayment(d) {
                        PaymentMode::Prepayment
                    } else {
                        PaymentMode::Credit
                    },
                    status: DeviceStatus::Commissioned,
                    gno_slot: Default::default(),
                    // loadgen's own world keeps every device on the WAN.
                    wan: Default::default(),
                    cos: Default::default(),
                },
            ));
            if batch.len() == dcc_router::admin::MAX_DEVICES_PER_CALL || d + 1 == world.devices {
                admin
                    .upsert_devices(&batch)
                    .map_err(|e| TargetError::Admin(e.to_string()))?;
                batch.clear();
            }
        }
        Ok(())
    }

    fn send(&self, request: Request) -> OutcomeFuture {
        // A Shared Resource Provider's request is carried by the SRP's "connection" (MP134A as
        // written: originated as the failed Supplier, sent by the SRP), as over QUIC.
        let srp = request.via.and_then(|i| {
            self.srps
                .get()
                .and_then(|m| m.iter().find(|(k, _)| *k == i).map(|(_, e)| *e))
        });
        if let Some(eui) = srp {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.router
                .submit_from(dcc_router::Sender::User(eui), request.bytes, move |r| {
                    let _ = tx.send(r);
                });
            return Box::pin(async move {
                match rx.await {
                    Ok(r) => outcome_of(&r),
                    Err(_) => {
                        Outcome::new(OutcomeClass::Error, "DROPPED", crate::outcome::Lane::None)
                    }
                }
            });
        }
        let fut = self.router.submit(request.bytes);
        Box::pin(async move { outcome_of(&fut.await) })
    }

    fn apply(&self, world: &World, event: &EventSpec) -> Result<(), TargetError> {
        let admin = self.router.admin();
        let err = |e: dcc_router::AdminError| TargetError::Admin(e.to_string());
        match event {
            EventSpec::MaintenanceStart { impact } => {
                let start = self.router.clock().now_unix();
                admin
                    .add_maintenance_window(MaintenanceWindow {
                        start,
                        end: start + WINDOW.as_secs(),
                        impact: *impact,
                    })
                    .map_err(err)?;
                self.window.set(start);
                return Ok(());
            }
            EventSpec::MaintenanceEnd => {
                let start = self.window.take()?;
                return admin.remove_maintenance_window(start).map_err(err);
            }
            _ => {}
        }
        let failed = world
            .failed
            .ok_or_else(|| TargetError::Admin("the population has no failed Supplier".into()))?;
        let cert = world.users[failed].cert;
        let r = match event {
            // MP134A as written: the SMKI PMA's delay (the policy's safe-mode set), then the
            // Authority's direction of the SRPs, which send as the failed Supplier.
            EventSpec::DelayRevocation => admin
                .pma_delay_revocation(
                    &cert,
                    self.router.policy().catalogue.safe_mode_srvs(),
                    Some(self.router.clock().now_unix() + DELAY.as_secs()),
                )
                .and_then(|()| {
                    admin.direct_srps(
                        &cert,
                        world.srps.iter().map(|&i| world.users[i].eui),
                        dcc_router::state::SrpSendsAs::FailedSupplier,
                    )
                }),
            EventSpec::Revoke => admin.revoke(&cert),
            EventSpec::EndDelay => admin.end_delay(&cert),
            _ => return Err(TargetError::Admin(format!("event {event:?} not supported"))),
        };
        r.map_err(err)
    }

    fn capacity_hint(&self) -> Option<f64> {
        (self.verify_rate > 0.0).then_some(self.verify_rate * self.workers as f64)
    }
}

/// Builds the embedded router target.
pub fn build(
    workers: Option<usize>,
    policy: Policy,
    verifier: VerifierMode,
    night_clock: bool,
) -> Result<Arc<dyn Target>, TargetError> {
    Ok(Arc::new(InProcTarget::new(
        workers,
        policy,
        verifier,
        night_clock,
    )?))
}
