//! Interleaved verify throughput: every verifier (and `openssl speed`, if on the PATH) gets a
//! short time slice in turn, round after round, and the table reports each one's median over
//! the rounds with ratios to plain `p256`, to `aws-lc-rs` and to OpenSSL. On a shared, noisy
//! machine this is fairer than criterion's one-after-another groups: drift hits all alike.
//!
//! `taskset -c 1 cargo run --release -p dcc-benches --features compare-c --example verify_ratios
//! [rounds] [slice_ms]` (defaults 9 rounds of 300 ms; 0 rounds: only time `prepare`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcc_benches::interleave::{self, median, Work};
use dcc_benches::{signed_digests, signer, FixtureRng};
use dcc_signing::verify::known::{KnownSignerVerifier, TableBudget, WindowBits};
use dcc_signing::verify::{P256Verifier, PreparedKey, Verifier, VerifyJob};
use dcc_signing::Signer;

const SIGS: usize = 1024;
const BATCH: usize = 64;

type Sig = (usize, [u8; 32], [u8; 64]);

fn single(keys: Vec<Arc<dyn PreparedKey>>, sigs: Arc<Vec<Sig>>) -> Work {
    let mut i = 0usize;
    Box::new(move || {
        for _ in 0..BATCH {
            let (k, d, s) = &sigs[i % sigs.len()];
            i = i.wrapping_add(1);
            assert!(keys[*k].verify_prehash(black_box(d), black_box(s)).is_ok());
        }
        BATCH
    })
}

fn batched(v: KnownSignerVerifier, keys: Vec<Arc<dyn PreparedKey>>, sigs: Arc<Vec<Sig>>) -> Work {
    let mut i = 0usize;
    let mut out = vec![false; BATCH];
    Box::new(move || {
        let start = (i * BATCH) % sigs.len();
        i = i.wrapping_add(1);
        let jobs: Vec<VerifyJob<'_>> = sigs[start..start + BATCH]
            .iter()
            .map(|(k, d, s)| VerifyJob {
                key: keys[*k].as_ref(),
                digest: d,
                signature: s,
            })
            .collect();
        v.verify_batch(&jobs, &mut out);
        assert!(out.iter().all(|&o| o));
        BATCH
    })
}

fn prepare(v: &dyn Verifier, signers: &[Signer]) -> Vec<Arc<dyn PreparedKey>> {
    signers.iter().map(|s| v.prepare(&s.public_key())).collect()
}

/// OpenSSL's verify/s on this core, from `openssl speed -elapsed -seconds N ecdsap256`: wall-clock
/// time like ours (by default `openssl speed` divides by user CPU time, which flatters it on a
/// loaded machine).
fn openssl_verify_per_s(seconds: u32) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-elapsed",
            "-seconds",
            &seconds.to_string(),
            "ecdsap256",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("ecdsa (nistp256)"))?;
    line.split_whitespace().last()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(9);
    let slice = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300));

    let mut rng = FixtureRng::new(0x7a71_0001);
    let one: Vec<Signer> = vec![signer(&mut rng)];
    let many: Vec<Signer> = (0..256).map(|_| signer(&mut rng)).collect();
    let sigs_one = Arc::new(signed_digests(&mut rng, &one, SIGS));
    let sigs_many = Arc::new(signed_digests(&mut rng, &many, SIGS));

    // Cost of `prepare` (table building) per window width, off the hot path.
    KnownSignerVerifier::default().warm_up();
    for w in WindowBits::MIN.get()..=WindowBits::MAX.get() {
        let wb = WindowBits::new(w).unwrap();
        let v = KnownSignerVerifier::new(wb, TableBudget(usize::MAX));
        let start = Instant::now();
        let keys = prepare(&v, &many[..32]);
        let each = start.elapsed() / 32;
        println!(
            "prepare w{w}: {each:?} per key, {} table bytes per key",
            keys[0].heap_bytes()
        );
    }
    if rounds == 0 {
        return;
    }

    let mut work: Vec<(String, Work)> = Vec::new();
    work.push((
        "p256".into(),
        single(prepare(&P256Verifier, &one), sigs_one.clone()),
    ));
    for w in WindowBits::MIN.get()..=WindowBits::MAX.get() {
        let v = KnownSignerVerifier::new(WindowBits::new(w).unwrap(), TableBudget(usize::MAX));
        work.push((
            format!("known w{w}, 1 key"),
            single(prepare(&v, &one), sigs_one.clone()),
        ));
        work.push((
            format!("known w{w}, 1 key, batch {BATCH}"),
            batched(v.clone(), prepare(&v, &one), sigs_one.clone()),
        ));
    }
    for w in [5u8, 8] {
        let v = KnownSignerVerifier::new(WindowBits::new(w).unwrap(), TableBudget(usize::MAX));
        work.push((
            format!("known w{w}, 256 keys"),
            single(prepare(&v, &many), sigs_many.clone()),
        ));
        work.push((
            format!("known w{w}, 256 keys, batch {BATCH}"),
            batched(v.clone(), prepare(&v, &many), sigs_many.clone()),
        ));
    }
    #[cfg(feature = "compare-c")]
    compare_c(&mut work, &one[0]);

    let with_openssl = openssl_verify_per_s(1).is_some();
    let mut openssl: Vec<f64> = Vec::new();
    let rates = interleave::run(&mut work, rounds, slice, |round| {
        if with_openssl {
            if let Some(r) = openssl_verify_per_s(1) {
                openssl.push(r);
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    });

    let med: Vec<f64> = rates.iter().map(|r| median(r)).collect();
    let p256 = med[0];
    let aws = work
        .iter()
        .position(|(n, _)| n == "aws-lc-rs")
        .map(|i| med[i]);
    let ossl = (!openssl.is_empty()).then(|| median(&openssl));
    println!("| verifier | verify/s (median of {rounds}) | × p256 | × aws-lc-rs | × OpenSSL |");
    println!("|---|---:|---:|---:|---:|");
    let fmt = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{x:.2}"));
    for ((name, _), m) in work.iter().zip(&med) {
        println!(
            "| {name} | {m:.0} | {:.2} | {} | {} |",
            m / p256,
            fmt(aws.map(|a| m / a)),
            fmt(ossl.map(|o| m / o))
        );
    }
    if let Some(o) = ossl {
        println!(
            "| openssl speed ecdsap256 | {o:.0} | {:.2} | {} | 1.00 |",
            o / p256,
            fmt(aws.map(|a| o / a))
        );
    }
}

#[cfg(feature = "compare-c")]
fn compare_c(work: &mut Vec<(String, Work)>, signer: &Signer) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use sha2::{Digest, Sha256};

    let mut rng = FixtureRng::new(0x00c0_4a4e);
    let msgs: Arc<Vec<([u8; 64], [u8; 64])>> = Arc::new(
        (0..SIGS)
            .map(|_| {
                let mut m = [0u8; 64];
                m[..32].copy_from_slice(&rng.bytes32());
                m[32..].copy_from_slice(&rng.bytes32());
                let d: [u8; 32] = Sha256::digest(m).into();
                (m, signer.sign_prehash(&d).unwrap())
            })
            .collect(),
    );
    let public = signer
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    {
        let msgs = msgs.clone();
        let public = public.clone();
        let mut i = 0usize;
        work.push((
            "aws-lc-rs".into(),
            Box::new(move || {
                use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
                let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
                for _ in 0..BATCH {
                    let (m, s) = &msgs[i % msgs.len()];
                    i = i.wrapping_add(1);
                    assert!(key.verify(black_box(m), black_box(s)).is_ok());
                }
                BATCH
            }),
        ));
    }
    let mut i = 0usize;
    work.push((
        "ring".into(),
        Box::new(move || {
            use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
            let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
            for _ in 0..BATCH {
                let (m, s) = &msgs[i % msgs.len()];
                i = i.wrapping_add(1);
                assert!(key.verify(black_box(m), black_box(s)).is_ok());
            }
            BATCH
        }),
    ));
}
