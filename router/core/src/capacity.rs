//! The capacity estimate: verify workers × the measured single-core verify rate of the
//! router's own verifier on the loaded certificates' prepared keys. `dcc-router serve`
//! publishes it (`admin status`, metrics); loadgen's embedded router uses the same measure.
//!
//! Measured once at start (a ~100 ms calibration: the best of five 20 ms trials) rather than kept as a running measurement
//! from the workers' batches: a running figure only exists once traffic flows, and under
//! overload it measures the contended machine (the QUIC threads and the load generator share
//! the cores), so it would drift down exactly when a load generator reads it to decide how hard
//! to push. The calibration runs before the listener answers anything, on an idle machine, with
//! the keys the workers will actually use (their prepared tables), so it is the ceiling the
//! verify lanes can reach — which is what "rate relative to capacity" scenarios need. The
//! keys are the router's own prepared keys, with their tables as they are at start; a verifier
//! that widens a busy key's table later verifies faster than this, so the figure errs low
//! (an overload at 2 × it is still an overload).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dcc_signing::verify::{PreparedKey, Verifier};
use dcc_signing::Signer;
use serde::{Deserialize, Serialize};

/// Calibration trials; the estimate is the best of them.
const TRIALS: usize = 5;
/// How long one trial runs (at least 16 verifications).
const TRIAL: Duration = Duration::from_millis(20);
/// How many loaded keys the calibration cycles through (enough to leave the cache-hot case).
const MAX_KEYS: usize = 64;

/// The capacity estimate published in `admin status` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityEstimate {
    /// Verify workers.
    pub workers: u32,
    /// Measured verifications per second on one core.
    pub verify_per_s: u64,
    /// workers × verify_per_s: requests per second the verify lanes can take.
    pub requests_per_s: u64,
    /// How many loaded keys the measurement used (0: no certificate was loaded, a fresh key
    /// stood in).
    pub keys: u32,
}

/// Measures the prepared keys `keys` (the router's own, as loaded from its certificates; a
/// fresh key prepared by `verifier` stands in when none is loaded) and scales by `workers`.
///
/// The signature checked is made by a fresh key, so against a loaded key it is invalid: an
/// ECDSA verification does the same work (u1·G + u2·Q, then the compare) whether or not the
/// signature matches, so the rate is the rate of real verifications with those keys' tables.
pub fn calibrate(
    keys: &[Arc<dyn PreparedKey>],
    verifier: &dyn Verifier,
    workers: usize,
) -> CapacityEstimate {
    let signer = Signer::random();
    let digest = [0x5a_u8; 32];
    let prepared: Vec<Arc<dyn PreparedKey>> = if keys.is_empty() {
        vec![verifier.prepare(&signer.public_key())]
    } else {
        keys.iter().take(MAX_KEYS).cloned().collect()
    };
    let sig = match signer.sign_prehash(&digest) {
        Ok(s) => s,
        // A fresh key that cannot sign is not possible in practice; report no rate rather
        // than a made-up one.
        Err(_) => return estimate(workers, 0, 0),
    };
    // Best of several short trials: interference (another process, a frequency change, the
    // scheduler) only ever slows a trial down, so the fastest trial is the closest to the
    // machine's ceiling and the figure stays put from one start to the next, where a single
    // longer trial moved with whatever else ran at that moment.
    let mut rate = 0u64;
    for _ in 0..TRIALS {
        let t0 = Instant::now();
        let mut n = 0u64;
        while n < 16 || t0.elapsed() < TRIAL {
            for key in &prepared {
                // The outcome does not matter: the work does (see above).
                let _ = std::hint::black_box(key.verify_prehash(&digest, &sig));
                n += 1;
            }
        }
        rate = rate.max((n as f64 / t0.elapsed().as_secs_f64()) as u64);
    }
    estimate(
        workers,
        rate,
        if keys.is_empty() { 0 } else { prepared.len() },
    )
}

fn estimate(workers: usize, verify_per_s: u64, keys: usize) -> CapacityEstimate {
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    CapacityEstimate {
        workers,
        verify_per_s,
        requests_per_s: verify_per_s.saturating_mul(u64::from(workers)),
        keys: u32::try_from(keys).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcc_signing::verify::P256Verifier;

    #[test]
    fn scales_by_workers_and_counts_keys() {
        let keys: Vec<_> = (0..3)
            .map(|_| P256Verifier.prepare(&Signer::random().public_key()))
            .collect();
        let e = calibrate(&keys, &P256Verifier, 4);
        assert_eq!(e.workers, 4);
        assert_eq!(e.keys, 3);
        assert!(e.verify_per_s > 0);
        assert_eq!(e.requests_per_s, e.verify_per_s * 4);
        let none = calibrate(&[], &P256Verifier, 0);
        assert_eq!((none.workers, none.keys), (1, 0));
    }
}
