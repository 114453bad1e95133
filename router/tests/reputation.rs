//! Signature reputation (`pipeline::reputation`): an originator whose signatures keep failing
//! is demoted to L3, then refused (R9 `bad-signatures`), and recovers as its score decays; a
//! valid originator is never affected.
//!
//! The score decays in real time (`Instant`), so the policy here uses a 1 s half-life and
//! thresholds 2 (demote) and 4 (refuse); assertions allow for the few milliseconds of decay
//! between one request and the next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use dcc_router::policy::{BadSignatureScore, ReputationConfig, ReputationHalfLife};
use dcc_router::{Device, Lane, PaymentMode, Policy, Response, ResponseCode as C};
use dcc_signing::verify::P256Verifier;
use dcc_signing::Eui64;

const PREPAY_B: u64 = 0x00DB_1234_5678_00B2;

fn policy() -> Policy {
    Policy {
        reputation: ReputationConfig::new(
            ReputationHalfLife::from_millis(1000).unwrap(),
            BadSignatureScore::new(2).unwrap(),
            BadSignatureScore::new(4).unwrap(),
        )
        .unwrap(),
        ..Policy::default()
    }
}

/// Supplier B gets a prepayment meter of its own, for its valid L1 traffic.
fn add_prepay_b(w: &World) -> Eui64 {
    let mut d = Device::new(w.supplier_b.eui);
    d.payment_mode = PaymentMode::Prepayment;
    let id = Eui64::from_u64(PREPAY_B);
    w.router.admin().upsert_device(id, d).unwrap();
    id
}

/// A top-up (L1) from the supplier with one bit of the signature flipped.
fn forged(w: &World, counter: u64) -> Vec<u8> {
    let s = &w.supplier;
    let mut bytes = Req::new(s, "2.2", 1, w.prepay(), counter).sign(s);
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    bytes
}

fn seen(r: &Response) -> (C, Option<Lane>, Option<&'static str>) {
    (r.code, r.lane, r.detail)
}

const REFUSED: (C, Option<Lane>, Option<&str>) = (C::Throttled, None, Some("bad-signatures"));

#[test]
fn bad_signatures_demote_then_refuse_and_the_score_decays() {
    let w = World::with(policy(), Arc::new(P256Verifier), 1);
    let prepay_b = add_prepay_b(&w);
    let (s, b) = (&w.supplier, &w.supplier_b);

    // Forged L1 claims, one at a time: L1 while the score is under 2, L3 from 2, refused from
    // 4.
    let mut answers = Vec::new();
    for counter in 1..=10 {
        let r = w.send(forged(&w, counter));
        answers.push(seen(&r));
        if r.code == C::Throttled {
            break;
        }
    }
    let l1 = answers
        .iter()
        .take_while(|a| **a == (C::BadSignature, Some(Lane::L1), None))
        .count();
    let l3 = answers[l1..]
        .iter()
        .take_while(|a| **a == (C::BadSignature, Some(Lane::L3), None))
        .count();
    // Scores at admission: 0, 1, 2−ε, 3−ε, 4−ε, 5−ε (ε: decay between requests).
    assert!((2..=3).contains(&l1), "{answers:?}");
    assert!((1..=3).contains(&l3), "{answers:?}");
    assert!((4..=5).contains(&(l1 + l3)), "{answers:?}");
    assert_eq!(answers[l1 + l3..], [REFUSED], "{answers:?}");

    // Refused whatever it sends, a correctly signed request included, and whatever lane it
    // claims (emergency credit, L0).
    let r = w.send(Req::new(s, "2.2", 1, w.prepay(), 100).sign(s));
    assert_eq!(seen(&r), REFUSED);
    let r = w.send(Req::new(s, "2.5", 5, w.prepay(), 101).sign(s));
    assert_eq!(seen(&r), REFUSED);

    // Another originator is not affected.
    let r = w.send(Req::new(b, "2.2", 1, prepay_b, 1).sign(b));
    assert_eq!(seen(&r), (C::Success, Some(Lane::L1), None));

    // Recovery: polled with valid top-ups, the supplier is refused, then served in L3
    // (demoted: the score is between 2 and 4 for one half-life), then served in L1 again.
    let start = Instant::now();
    let mut polled = Vec::new();
    for counter in 200.. {
        assert!(start.elapsed() < Duration::from_secs(10), "{polled:?}");
        let r = w.send(Req::new(s, "2.2", 1, w.prepay(), counter).sign(s));
        polled.push(seen(&r));
        if seen(&r) == (C::Success, Some(Lane::L1), None) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(polled[0], REFUSED, "{polled:?}");
    let demoted = polled
        .iter()
        .filter(|a| **a == (C::Success, Some(Lane::L3), None))
        .count();
    assert!(demoted >= 3, "{polled:?}");
    // The order is refused* → L3* → L1, never back.
    let rank = |a: &(C, Option<Lane>, Option<&str>)| match a.1 {
        None => 0,
        Some(Lane::L3) => 1,
        _ => 2,
    };
    assert!(
        polled.windows(2).all(|p| rank(&p[0]) <= rank(&p[1])),
        "{polled:?}"
    );
    // Valid requests never add to the score: the supplier's L1 traffic stays in L1.
    let r = w.send(Req::new(s, "2.5", 5, w.prepay(), 1000).sign(s));
    assert_eq!(seen(&r), (C::Success, Some(Lane::L0), None));
}

#[test]
fn a_queued_flood_is_refused_at_the_worker_without_verifying() {
    // One worker taking one request at a time, held at the gate until the whole flood is
    // queued: every forged request is admitted into L1 (the score is still 0), then the first
    // ~4 fail verification and the rest are refused by the worker before any ECDSA.
    let gate = Arc::new(GatedVerifier::default());
    let w = World::with_batch(policy(), gate.clone(), 1, 1);
    let prepay_b = add_prepay_b(&w);
    let (tx, rx) = mpsc::channel();
    let flood = 20;
    for counter in 1..=flood {
        let tx = tx.clone();
        w.router
            .submit_with(forged(&w, counter), move |r| tx.send(r).unwrap());
        if counter == 1 {
            gate.wait_entered(1);
        }
    }
    // A valid L1 request from another User, queued behind the flood.
    let tx_b = tx.clone();
    let b = &w.supplier_b;
    w.router
        .submit_with(Req::new(b, "2.2", 1, prepay_b, 1).sign(b), move |r| {
            tx_b.send(r).unwrap()
        });
    drop(tx);
    let entered_before = gate.entered.load(std::sync::atomic::Ordering::SeqCst);
    gate.open();
    let answers: Vec<Response> = rx.iter().take(flood as usize + 1).collect();
    let count =
        |want: (C, Option<Lane>, Option<&str>)| answers.iter().filter(|r| seen(r) == want).count();
    let bad = count((C::BadSignature, Some(Lane::L1), None));
    let refused = count((C::Throttled, Some(Lane::L1), Some("bad-signatures")));
    assert!((4..=5).contains(&bad), "{bad} R6");
    assert_eq!(bad + refused, flood as usize);
    assert_eq!(count((C::Success, Some(Lane::L1), None)), 1);
    // Only the failed ones and the valid one reached the verifier.
    let batches = gate.entered.load(std::sync::atomic::Ordering::SeqCst) - entered_before;
    assert_eq!(batches as usize, bad);
}
