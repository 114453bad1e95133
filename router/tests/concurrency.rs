//! Concurrency: no counter accepted twice under interleaved parallel submission, and nothing
//! dispatched after a revocation returned.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use dcc_router::policy::RateLimit;
use dcc_router::{Policy, ResponseCode as C};
use dcc_signing::verify::P256Verifier;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn seed() -> u64 {
    std::env::var("DCC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234_ABCD_0001)
}

fn unthrottled() -> Policy {
    Policy {
        rate_limit: RateLimit::new(RateLimit::MAX, RateLimit::MAX).unwrap(),
        ..Policy::default()
    }
}

/// Six threads submit 1,500 distinct counters of one originator, each counter three times, in
/// seeded random interleavings (copies of one counter are often verified in parallel on
/// different workers). Every counter must be accepted exactly once.
#[test]
fn interleaved_counters_are_accepted_exactly_once() {
    let seed = seed();
    println!("seed {seed:#x} (set DCC_TEST_SEED to replay)");
    let w = Arc::new(World::with(unthrottled(), Arc::new(P256Verifier), 2));
    const N: u64 = 1_500;
    const THREADS: usize = 6;
    let s = w.supplier.clone();
    // Mixed lanes reorder even more: every fifth counter is an L1 top-up, the rest L2.
    let signed: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..N)
            .map(|c| {
                let (srv, target) = if c % 5 == 0 {
                    ("2.2", w.prepay())
                } else {
                    ("3.1", w.credit())
                };
                Req::new(&s, srv, 1, target, 1_000 + c).sign(&s)
            })
            .collect(),
    );
    let mut rng = XorShift(seed | 1);
    let mut plans: Vec<Vec<usize>> = vec![Vec::new(); THREADS];
    for c in 0..N as usize {
        let first = (rng.next() % THREADS as u64) as usize;
        for k in 0..3 {
            plans[(first + k * 2) % THREADS].push(c);
        }
    }
    for p in &mut plans {
        rng.shuffle(p);
    }
    let handles: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let (w, signed) = (Arc::clone(&w), Arc::clone(&signed));
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for chunk in plan.chunks(32) {
                    let futs: Vec<_> = chunk
                        .iter()
                        .map(|&c| (c, w.router.submit(signed[c].clone())))
                        .collect();
                    out.extend(futs.into_iter().map(|(c, f)| (c, f.wait().code)));
                }
                out
            })
        })
        .collect();
    let mut accepted: HashMap<usize, usize> = HashMap::new();
    let mut replayed = 0;
    for h in handles {
        for (c, code) in h.join().unwrap() {
            match code {
                C::Success => *accepted.entry(c).or_default() += 1,
                C::Replayed => replayed += 1,
                other => panic!("counter {c}: unexpected {other}"),
            }
        }
    }
    assert_eq!(accepted.len(), N as usize, "every counter accepted");
    assert!(
        accepted.values().all(|&n| n == 1),
        "a counter was accepted twice"
    );
    assert_eq!(replayed, 2 * N as usize);
    let mut dispatched: Vec<u64> = w
        .recorder
        .snapshot()
        .iter()
        .map(|d| d.request_id.counter)
        .collect();
    dispatched.sort_unstable();
    dispatched.dedup();
    assert_eq!(dispatched.len(), N as usize);
    assert_eq!(w.router.counters().total(C::Replayed), 2 * N);
}

/// Submitters keep requests signed with one certificate in flight while another thread revokes
/// it. Every dispatch of that certificate must be sequenced before the revoke returned. Each
/// hand-off takes 200 µs, so a commit that checked the certificate and then dispatched without
/// holding off the revocation would be caught.
#[test]
fn nothing_dispatched_after_revoke_returned() {
    let recorder = Recorder {
        hold: Some(std::time::Duration::from_micros(200)),
        ..Recorder::default()
    };
    let w = Arc::new(World::with_recorder(
        unthrottled(),
        Arc::new(P256Verifier),
        2,
        recorder,
    ));
    let s = w.supplier.clone();
    const PER_THREAD: u64 = 400;
    let submitters: Vec<_> = (0..4u64)
        .map(|t| {
            let (w, s) = (Arc::clone(&w), s.clone());
            let signed: Vec<Vec<u8>> = (0..PER_THREAD)
                .map(|i| Req::new(&s, "3.1", 1, w.credit(), t * PER_THREAD + i).sign(&s))
                .collect();
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for chunk in signed.chunks(64) {
                    let futs: Vec<_> = chunk.iter().map(|b| w.router.submit(b.clone())).collect();
                    codes.extend(futs.into_iter().map(|f| f.wait().code));
                }
                codes
            })
        })
        .collect();
    // Revoke once a fair number went through, with many more still queued or to come.
    while w.recorder.log.lock().unwrap().len() < 100 {
        std::thread::yield_now();
    }
    w.router.admin().revoke(&s.cert).unwrap();
    let revoked_at = next_seq();

    let mut codes = Vec::new();
    for h in submitters {
        codes.extend(h.join().unwrap());
    }
    let log = w.recorder.snapshot();
    let late: Vec<_> = log
        .iter()
        .filter(|d| d.signer == s.cert && d.seq > revoked_at)
        .collect();
    assert!(
        late.is_empty(),
        "{} dispatched after revoke returned: {:?}",
        late.len(),
        late.first()
    );
    let ok = codes.iter().filter(|c| **c == C::Success).count();
    let revoked = codes
        .iter()
        .filter(|c| **c == C::CertificateRevoked)
        .count();
    assert_eq!(ok, log.len());
    assert_eq!(ok + revoked, codes.len(), "only successes and revocations");
    assert!(ok >= 100 && revoked > 0, "ok {ok}, revoked {revoked}");
}

/// Deterministic version: requests already queued (the only worker is held in verification)
/// when a revocation, the end of a delay, or an MP185 device move lands are refused at commit.
#[test]
fn state_changes_while_queued_win_at_commit() {
    let gate = Arc::new(GatedVerifier::default());
    let w = World::with(unthrottled(), gate.clone(), 1);
    let (s, b, srp) = (&w.supplier, &w.supplier_b, &w.srp);
    let admin = w.router.admin();
    let b_dev = dcc_signing::Eui64::from_u64(0xB0B);
    admin
        .upsert_device(b_dev, dcc_router::Device::new(b.eui))
        .unwrap();
    admin
        .delay_revocation(&s.cert, [srp.eui], ["7.3".parse().unwrap()], NOW + 600)
        .unwrap();

    // The worker takes the first request and blocks in the verifier.
    let blocker = w.router.submit(Req::new(b, "3.1", 1, b_dev, 1).sign(b));
    gate.wait_entered(1);
    // Queued behind it: B's own request, two SRP requests under the delay (credit meter and
    // prepayment meter, both registered to the failed Supplier S).
    let b_own = w.router.submit(Req::new(b, "3.1", 1, b_dev, 2).sign(b));
    let srp_a = w.router.submit(
        Req::new(srp, "7.3", 5, w.credit(), 1)
            .signed_with(s.cert)
            .sign(s),
    );
    let srp_b = w.router.submit(
        Req::new(srp, "7.3", 5, w.prepay(), 2)
            .signed_with(s.cert)
            .sign(s),
    );
    assert_eq!(w.router.queued().iter().sum::<usize>(), 3);

    admin.revoke(&b.cert).unwrap(); // B revoked while its request waits
    admin.set_registered_supplier(w.credit(), b.eui).unwrap(); // MP185 move while queued
    gate.open();

    assert_eq!(blocker.wait().code, C::CertificateRevoked);
    assert_eq!(b_own.wait().code, C::CertificateRevoked);
    assert_eq!(srp_a.wait().code, C::NotAuthorisedForDevice);
    assert_eq!(srp_b.wait().code, C::Success);
    // Only the SRP's request to the device still registered to S went out.
    let log = w.recorder.snapshot();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].request_id.target, w.prepay());

    // The delay ends while an SRP request is queued.
    let gate2 = Arc::new(GatedVerifier::default());
    let w2 = World::with(unthrottled(), gate2.clone(), 1);
    let (s2, srp2) = (&w2.supplier, &w2.srp);
    let admin2 = w2.router.admin();
    admin2
        .delay_revocation(&s2.cert, [srp2.eui], ["7.3".parse().unwrap()], NOW + 600)
        .unwrap();
    let first = w2.router.submit(
        Req::new(srp2, "7.3", 5, w2.prepay(), 1)
            .signed_with(s2.cert)
            .sign(s2),
    );
    gate2.wait_entered(1);
    let second = w2.router.submit(
        Req::new(srp2, "7.3", 5, w2.prepay(), 2)
            .signed_with(s2.cert)
            .sign(s2),
    );
    admin2.end_delay(&s2.cert).unwrap();
    gate2.open();
    assert_eq!(first.wait().code, C::CertificateRevoked);
    assert_eq!(second.wait().code, C::CertificateRevoked);
    assert!(w2.recorder.snapshot().is_empty());
}
