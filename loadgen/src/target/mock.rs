//! A scripted target for testing the generator itself.
//!
//! It decodes the envelope header (to pick a lane from the SRV, roughly as the default policy
//! does), waits a fixed service time and answers success. An optional *stall* holds every
//! request that is in service during a window until the window ends — the classic case where a
//! closed-loop generator under-reports latency (coordinated omission) and an open-loop one must
//! not.
//!
//! An optional *limit* gives the mock a known capacity: beyond that many requests per second
//! (a token bucket holding 50 ms of the rate) it answers R10 busy at once, as the router sheds
//! a lane that is over capacity. Capacity discovery is tested against it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dcc_signing::envelope::Envelope;

use super::{OutcomeFuture, Request, Target, TargetError};
use crate::clock::Clock;
use crate::outcome::{Lane, Outcome, OutcomeClass};
use crate::population::World;
use crate::scenario::EventSpec;

/// The mock's script.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Service time of every request.
    pub service_time: Duration,
    /// `(start, length)`: requests in service during the window complete no earlier than its
    /// end.
    pub stall: Option<(Duration, Duration)>,
    /// What `capacity_hint` reports.
    pub capacity: Option<f64>,
    /// Requests per second beyond which the mock answers busy (R10); `None`: no limit.
    pub limit: Option<f64>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            service_time: Duration::from_micros(200),
            stall: None,
            capacity: Some(20_000.0),
            limit: None,
        }
    }
}

/// The mock target over a clock.
#[derive(Debug)]
pub struct MockTarget<C: Clock> {
    cfg: MockConfig,
    clock: C,
    /// The limit's token bucket: tokens left, and when it was last filled.
    bucket: Mutex<(f64, Duration)>,
}

/// How much of the limit's rate the bucket holds (a burst it absorbs), in seconds.
const BURST_S: f64 = 0.05;

impl<C: Clock> MockTarget<C> {
    /// A mock with `cfg` reading `clock`.
    pub fn new(cfg: MockConfig, clock: C) -> Self {
        let full = cfg.limit.map_or(0.0, |l| l * BURST_S).max(1.0);
        let now = clock.now();
        MockTarget {
            cfg,
            clock,
            bucket: Mutex::new((full, now)),
        }
    }
}

/// The lane the default policy gives an SRV, roughly (enough for a mock).
pub fn rough_lane(major: u8, minor: u8) -> Lane {
    match (major, minor) {
        (2, 5) | (7, 1) | (7, 3) => Lane::L0,
        (1, 5) | (1, 6) | (2, _) | (4, 3) | (4, 13) | (4, 14) | (4, 18) => Lane::L1,
        (4, _) | (5, _) | (6, 2) | (6, 13) | (8, 2) | (8, 9) | (11, 2) | (12, _) => Lane::L3,
        _ => Lane::L2,
    }
}

impl<C: Clock> MockTarget<C> {
    /// Takes a token for one request; `false` when the limit is exceeded.
    fn admit(&self) -> bool {
        let Some(limit) = self.cfg.limit else {
            return true;
        };
        let now = self.clock.now();
        // A poisoned lock only means another sender panicked mid-update; the bucket is two
        // numbers and stays usable.
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let full = (limit * BURST_S).max(1.0);
        let dt = now.saturating_sub(b.1).as_secs_f64();
        b.0 = (b.0 + dt * limit).min(full);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl<C: Clock> Target for MockTarget<C> {
    fn describe(&self) -> String {
        format!(
            "mock (service {:?}{}{})",
            self.cfg.service_time,
            match self.cfg.limit {
                Some(l) => format!(", limit {l:.0}/s"),
                None => String::new(),
            },
            match self.cfg.stall {
                Some((a, l)) => format!(", stall {l:?} at {a:?}"),
                None => String::new(),
            }
        )
    }

    fn setup(&self, _world: &World) -> Result<(), TargetError> {
        Ok(())
    }

    fn send(&self, request: Request) -> OutcomeFuture {
        let lane = match Envelope::decode(&request.bytes) {
            Ok(env) => {
                let srv = env.header.srv.to_bytes();
                Some(rough_lane(srv[0], srv[1]))
            }
            Err(_) => None,
        };
        if let Some(lane) = lane {
            if !self.admit() {
                return Box::pin(async move { Outcome::new(OutcomeClass::Busy, "R10", lane) });
            }
        }
        let clock = self.clock.clone();
        let service = self.cfg.service_time;
        let stall = self.cfg.stall;
        Box::pin(async move {
            let Some(lane) = lane else {
                return Outcome::new(OutcomeClass::Refused, "DECODE", Lane::None);
            };
            let start = clock.now();
            let mut done = start + service;
            if let Some((a, len)) = stall {
                let end = a + len;
                if start < end && done > a {
                    done = done.max(end);
                }
            }
            clock.sleep_until(done).await;
            Outcome::ok(lane)
        })
    }

    fn apply(&self, _world: &World, _event: &EventSpec) -> Result<(), TargetError> {
        Ok(())
    }

    fn capacity_hint(&self) -> Option<f64> {
        self.cfg.capacity
    }
}

/// A mock on the Tokio clock, boxed as a shared target.
pub fn shared<C: Clock>(cfg: MockConfig, clock: C) -> Arc<dyn Target> {
    Arc::new(MockTarget::new(cfg, clock))
}
