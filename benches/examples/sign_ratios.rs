//! Interleaved signing throughput (issue 15.1): plain `p256` signing, the fast signer
//! (`FastSigner`, same signatures), and — for "sign faster than the router verifies" — the
//! known-signer verifier on one key, all in one run on one core (see `dcc_benches::interleave`).
//!
//! `taskset -c 1 target/release/examples/sign_ratios [rounds] [slice_ms]` (defaults 9, 300).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use dcc_benches::interleave::{self, median, Work};
use dcc_benches::{signer, FixtureRng};
use dcc_signing::verify::{KnownSignerVerifier, Verifier};
use dcc_signing::FastSigner;

const CHUNK: usize = 32;

/// Calls `op` with a running counter, `CHUNK` times per call.
fn repeat(mut op: impl FnMut(usize) + 'static) -> Work {
    let mut i = 0usize;
    Box::new(move || {
        for _ in 0..CHUNK {
            i = i.wrapping_add(1);
            op(i);
        }
        CHUNK
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(9);
    let slice = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300));

    let mut rng = FixtureRng::new(0x5167_0002);
    let plain = signer(&mut rng);
    let fast = FastSigner::from_signer(&plain).unwrap();
    let digests: Vec<[u8; 32]> = (0..1024).map(|_| rng.bytes32()).collect();
    let digests2 = digests.clone();
    let signed: Vec<([u8; 32], [u8; 64])> = digests
        .iter()
        .map(|d| (*d, fast.sign_prehash(d).unwrap()))
        .collect();
    let known = KnownSignerVerifier::default();
    let key = known.prepare(&plain.public_key());

    let mut work: Vec<(String, Work)> = vec![
        (
            "p256 sign".into(),
            repeat(move |i| {
                black_box(plain.sign_prehash(&digests[i % 1024]).unwrap());
            }),
        ),
        (
            "fast sign".into(),
            repeat(move |i| {
                black_box(fast.sign_prehash(&digests2[i % 1024]).unwrap());
            }),
        ),
        (
            "known-signer verify, 1 key".into(),
            repeat(move |i| {
                let (d, s) = &signed[i % 1024];
                assert!(key.verify_prehash(d, s).is_ok());
            }),
        ),
    ];
    let rates = interleave::run(&mut work, rounds, slice, |r| {
        eprintln!("round {}/{rounds} done", r + 1)
    });
    let med: Vec<f64> = rates.iter().map(|r| median(r)).collect();
    println!("| operation | per second (median of {rounds}) | × p256 sign |");
    println!("|---|---:|---:|");
    for ((name, _), m) in work.iter().zip(&med) {
        println!("| {name} | {m:.0} | {:.2} |", m / med[0]);
    }
}
