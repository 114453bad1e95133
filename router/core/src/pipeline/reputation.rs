//! Signature reputation: an originator whose requests keep failing signature verification is
//! demoted, then refused, so that a flood of forged L0/L1 claims cannot take the verify
//! workers' high-lane share from valid traffic.
//!
//! | # | where | check | outcome |
//! |---|-------|-------|---------|
//! | 1 | verify, a signature fails (R6) | — | the originator's score += 1 |
//! | 2 | admit, after the User checks (1–3) | score ≥ `refuse_at` | R9, detail `bad-signatures` |
//! | 3 | admit, lane classification (12) | score ≥ `demote_at` | lane L3 whatever the SRV's lane (then L3's per-User rate limit applies) |
//! | 4 | verify, before hashing | score ≥ `refuse_at` | R9, detail `bad-signatures`, without ECDSA |
//!
//! The score decays exponentially (it halves every `half_life`), so an originator recovers by
//! itself once its bad signatures stop; thresholds and half-life are policy
//! ([`ReputationConfig`], `[reputation]` in the policy file).
//!
//! Why these choices:
//!
//! * A bad signature is the only failure that costs the router real work (an ECDSA
//!   verification) *and* that admission cannot see coming: every cheaper failure is refused
//!   before a lane. So it is what the score counts; nothing else moves it.
//! * Demotion comes before refusal so that a User with a transient fault (a key rolled on one
//!   system and not another) is slowed, not cut off, while a flood is cut off within
//!   `refuse_at` failures.
//! * Check 4: by the time the score crosses `refuse_at`, lanes may already hold thousands of
//!   the flood's requests admitted a moment earlier. Refusing them at the worker, before any
//!   hashing or ECDSA, drains them at admission cost instead of verification cost.
//! * Refused requests do not add to the score (they were not verified). While refused, the
//!   score decays under `refuse_at` now and then, one request is let through (demoted), and if
//!   it fails again the originator is refused again: a persistent flood leaks about
//!   `refuse_at · ln 2 / half_life` verifications a second into L3.
//!
//! **Whose score.** The score is keyed by the originator EUI-64 that the request *claims*.
//! Admission check 0 answers E1 `connection-not-originator` to any request whose originator
//! is not the User its [`Sender`](crate::Sender) names — over QUIC, the User of the
//! connection's TLS client certificate — before any other check, so only a User's own
//! connections can spend that User's reputation. [`Sender::Embedder`](crate::Sender::Embedder)
//! (what [`Router::submit`](crate::Router::submit) uses) is bound to nothing: an embedder that
//! lets its callers submit as any User lets them get that User demoted or refused, so it must
//! authenticate them and pass [`Sender::User`](crate::Sender::User), as `serve` does.
//!
//! Memory: an entry exists only for an originator that passed admission (a known User with
//! its own certificate) and then failed verification, so the map is bounded by the number of
//! Users; entries are not removed (a decayed entry costs one lookup and a few bytes).

use std::time::{Duration, Instant};

use dashmap::DashMap;
use dcc_signing::Eui64;

use crate::policy::ReputationConfig;

/// What an originator's recent bad signatures have earned it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Standing {
    /// Under `demote_at`: classified as usual.
    Good,
    /// `demote_at` ≤ score < `refuse_at`: lane L3.
    Demoted,
    /// Score ≥ `refuse_at`: refused.
    Refused,
}

/// The detail of a refusal for bad signatures.
pub(crate) const DETAIL: &str = "bad-signatures";

#[derive(Debug, Clone, Copy)]
struct Score {
    value: f64,
    at: Instant,
}

fn decayed(s: Score, half_life: Duration, now: Instant) -> f64 {
    let dt = now.saturating_duration_since(s.at).as_secs_f64();
    // half_life is at least 100 ms (policy-checked): no division by zero.
    s.value * (-dt / half_life.as_secs_f64()).exp2()
}

/// Originator → decayed bad-signature score.
#[derive(Debug, Default)]
pub(crate) struct Reputation {
    scores: DashMap<Eui64, Score>,
}

impl Reputation {
    /// The originator's standing at `now`.
    pub(crate) fn standing(&self, who: Eui64, cfg: &ReputationConfig, now: Instant) -> Standing {
        // The common case (an originator that never failed) is one shard read and no write.
        let Some(score) = self.scores.get(&who).map(|s| *s) else {
            return Standing::Good;
        };
        let v = decayed(score, cfg.half_life.get(), now);
        if v >= f64::from(cfg.refuse_at.get()) {
            Standing::Refused
        } else if v >= f64::from(cfg.demote_at.get()) {
            Standing::Demoted
        } else {
            Standing::Good
        }
    }

    /// One more failed verification for `who`.
    pub(crate) fn record_bad(&self, who: Eui64, cfg: &ReputationConfig, now: Instant) {
        let mut e = self.scores.entry(who).or_insert(Score {
            value: 0.0,
            at: now,
        });
        // Workers race with slightly different `now`s: never move the reference time back.
        let at = now.max(e.at);
        e.value = decayed(*e, cfg.half_life.get(), at) + 1.0;
        e.at = at;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::{BadSignatureScore, ReputationHalfLife};

    fn cfg() -> ReputationConfig {
        ReputationConfig::new(
            ReputationHalfLife::from_millis(1000).unwrap(),
            BadSignatureScore::new(2).unwrap(),
            BadSignatureScore::new(4).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn demoted_then_refused_then_recovers() {
        let (r, c, t0) = (Reputation::default(), cfg(), Instant::now());
        let bad = Eui64::from_u64(1);
        let good = Eui64::from_u64(2);
        assert_eq!(r.standing(bad, &c, t0), Standing::Good);
        r.record_bad(bad, &c, t0);
        assert_eq!(r.standing(bad, &c, t0), Standing::Good);
        r.record_bad(bad, &c, t0);
        assert_eq!(r.standing(bad, &c, t0), Standing::Demoted);
        r.record_bad(bad, &c, t0);
        r.record_bad(bad, &c, t0);
        assert_eq!(r.standing(bad, &c, t0), Standing::Refused);
        assert_eq!(r.standing(good, &c, t0), Standing::Good);
        // 4 → 2 after one half-life (demoted), → 1 after two (good).
        let s = |ms| r.standing(bad, &c, t0 + Duration::from_millis(ms));
        assert_eq!(s(500), Standing::Demoted);
        assert_eq!(s(1000), Standing::Demoted);
        assert_eq!(s(1001), Standing::Good);
        // A failure after decay adds to the decayed score, not the old one.
        r.record_bad(bad, &c, t0 + Duration::from_millis(2000));
        assert_eq!(s(2000), Standing::Demoted);
        // An earlier `now` (a racing worker) neither panics nor rewinds time.
        r.record_bad(bad, &c, t0);
        r.record_bad(bad, &c, t0);
        assert_eq!(s(2000), Standing::Refused);
    }
}
