//! Single-core ECDSA P-256 verification: plain `p256` (the reference), the known-signer backend
//! per window width (single and batched, 1 and 256 keys loaded), and — with `--features
//! compare-c` — `aws-lc-rs` and `ring`; and group `verify_keys`: rate against signer keys
//! loaded and used evenly (1 to 16,384). Throughput is in signatures.
//!
//! Run on one core: `taskset -c 1 cargo bench -p dcc-benches --features compare-c --bench verify
//! -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dcc_benches::{evenly_signed_messages, signed_digests, signer, FixtureRng};
use dcc_signing::verify::known::{KnownSignerVerifier, TableBudget, WindowBits};
use dcc_signing::verify::{P256Verifier, PreparedKey, Verifier, VerifyJob};
use dcc_signing::Signer;

/// Signatures per fixture: enough to defeat branch predictors, few enough to sign quickly.
const SIGS: usize = 1024;
/// Batch size for the batched path.
const BATCH: usize = 64;

struct Fixture {
    signers: Vec<Signer>,
    sigs: Vec<(usize, [u8; 32], [u8; 64])>,
}

fn fixture(keys: usize) -> Fixture {
    let mut rng = FixtureRng::new(0xbe4c_4000 + keys as u64);
    let signers: Vec<Signer> = (0..keys).map(|_| signer(&mut rng)).collect();
    let sigs = signed_digests(&mut rng, &signers, SIGS);
    Fixture { signers, sigs }
}

fn prepare_all(v: &dyn Verifier, signers: &[Signer]) -> Vec<Arc<dyn PreparedKey>> {
    signers.iter().map(|s| v.prepare(&s.public_key())).collect()
}

/// One verification per iteration, cycling through the fixture.
fn bench_single(c: &mut Criterion, group: &str, id: BenchmarkId, v: &dyn Verifier, f: &Fixture) {
    let keys = prepare_all(v, &f.signers);
    // A verifier that refused everything would look fast: check the fixture first.
    for (k, d, s) in f.sigs.iter().take(64) {
        assert!(keys[*k].verify_prehash(d, s).is_ok(), "fixture must verify");
    }
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function(id, |b| {
        b.iter(|| {
            let (k, d, s) = &f.sigs[i % f.sigs.len()];
            i = i.wrapping_add(1);
            black_box(keys[*k].verify_prehash(black_box(d), black_box(s)).is_ok())
        })
    });
    g.finish();
}

/// `BATCH` verifications per iteration through `Verifier::verify_batch`.
fn bench_batch(c: &mut Criterion, group: &str, id: BenchmarkId, v: &dyn Verifier, f: &Fixture) {
    let keys = prepare_all(v, &f.signers);
    let jobs: Vec<VerifyJob<'_>> = f
        .sigs
        .iter()
        .map(|(k, d, s)| VerifyJob {
            key: keys[*k].as_ref(),
            digest: d,
            signature: s,
        })
        .collect();
    let mut out = vec![false; BATCH];
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut i = 0usize;
    g.bench_function(id, |b| {
        b.iter(|| {
            let start = (i * BATCH) % jobs.len();
            i = i.wrapping_add(1);
            v.verify_batch(black_box(&jobs[start..start + BATCH]), &mut out);
            black_box(out[BATCH - 1])
        })
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let one = fixture(1);
    let many = fixture(256);

    bench_single(
        c,
        "verify",
        BenchmarkId::new("p256", "keys1"),
        &P256Verifier,
        &one,
    );

    let known = |w: u8| {
        let v = KnownSignerVerifier::new(WindowBits::new(w).unwrap(), TableBudget(usize::MAX));
        v.warm_up();
        v
    };
    for w in WindowBits::MIN.get()..=WindowBits::MAX.get() {
        let v = known(w);
        let name = format!("known-w{w}");
        bench_single(c, "verify", BenchmarkId::new(&name, "keys1"), &v, &one);
        bench_batch(
            c,
            "verify",
            BenchmarkId::new(format!("{name}-batch{BATCH}"), "keys1"),
            &v,
            &one,
        );
    }
    for w in [6u8, 8] {
        let v = known(w);
        let name = format!("known-w{w}");
        bench_single(c, "verify", BenchmarkId::new(&name, "keys256"), &v, &many);
        bench_batch(
            c,
            "verify",
            BenchmarkId::new(format!("{name}-batch{BATCH}"), "keys256"),
            &v,
            &many,
        );
    }

    #[cfg(feature = "compare-c")]
    compare_c(c, &one);
}

/// Verify rate against signer keys loaded and used evenly (issue 14.1): the known-signer
/// verifier with its default budget (keys promoted by a first pass, as the first seconds of
/// traffic would), plain `p256` and, with `compare-c`, `aws-lc-rs` with parsed keys. The full
/// curve, interleaved, is `examples/keys_curve.rs`.
fn verify_keys(c: &mut Criterion) {
    // `cargo test --benches` (CI's smoke run) passes no `--bench`: keep its setup small.
    let counts: &[usize] = if std::env::args().any(|a| a == "--bench") {
        &[1, 1024, 4096, 16384]
    } else {
        &[1, 16]
    };
    for &n in counts {
        let mut rng = FixtureRng::new(0x6b65_7900 + n as u64);
        let signers: Vec<Signer> = (0..n).map(|_| signer(&mut rng)).collect();
        let items = evenly_signed_messages(&mut rng, &signers, 4096usize.div_ceil(n).max(4));
        let known = KnownSignerVerifier::default();
        let plain = prepare_all(&P256Verifier, &signers);
        let keys = prepare_all(&known, &signers);
        for m in &items {
            assert!(keys[m.key].verify_prehash(&m.digest, &m.sig).is_ok());
        }
        let mut g = c.benchmark_group("verify_keys");
        g.throughput(Throughput::Elements(1));
        for (name, keys) in [("known-signer", &keys), ("p256", &plain)] {
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    let m = &items[i % items.len()];
                    i = i.wrapping_add(1);
                    black_box(
                        keys[m.key]
                            .verify_prehash(black_box(&m.digest), &m.sig)
                            .is_ok(),
                    )
                })
            });
        }
        #[cfg(feature = "compare-c")]
        {
            let parsed = dcc_benches::aws_parsed_keys(&signers);
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new("aws-lc-rs", n), |b| {
                b.iter(|| {
                    let m = &items[i % items.len()];
                    i = i.wrapping_add(1);
                    black_box(parsed[m.key].verify_sig(black_box(&m.msg), &m.sig).is_ok())
                })
            });
        }
        g.finish();
    }
}

#[cfg(feature = "compare-c")]
fn compare_c(c: &mut Criterion, f: &Fixture) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use sha2::{Digest, Sha256};

    // The C-backed APIs hash the message themselves: give them a 64-byte message and its
    // signature (SHA-256 of 64 bytes costs well under 1 % of a verification).
    let mut rng = FixtureRng::new(0x00c0_4a4e);
    let msgs: Vec<([u8; 64], [u8; 64])> = (0..SIGS)
        .map(|_| {
            let mut m = [0u8; 64];
            m[..32].copy_from_slice(&rng.bytes32());
            m[32..].copy_from_slice(&rng.bytes32());
            let d: [u8; 32] = Sha256::digest(m).into();
            (m, f.signers[0].sign_prehash(&d).unwrap())
        })
        .collect();
    let public = f.signers[0].public_key().to_encoded_point(false);
    let public = public.as_bytes().to_vec();

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    {
        use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("aws-lc-rs", "keys1"), |b| {
            b.iter(|| {
                let (m, s) = &msgs[i % msgs.len()];
                i = i.wrapping_add(1);
                black_box(key.verify(black_box(m), black_box(s)).is_ok())
            })
        });
    }
    {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("ring", "keys1"), |b| {
            b.iter(|| {
                let (m, s) = &msgs[i % msgs.len()];
                i = i.wrapping_add(1);
                black_box(key.verify(black_box(m), black_box(s)).is_ok())
            })
        });
    }
    // Check once that the fixtures verify (a refusing verifier would look fast).
    g.finish();
    let (m, s) = &msgs[0];
    assert!(aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        &public
    )
    .verify(m, s)
    .is_ok());
    assert!(ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        &public
    )
    .verify(m, s)
    .is_ok());
}

criterion_group!(benches, verify, verify_keys);
criterion_main!(benches);
