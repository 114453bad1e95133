//! Single-core ECDSA P-256 signing (issue 15.1): plain `p256` (`Signer::sign_prehash`, the
//! reference) against the fast signer over the shared generator table (`FastSigner`, same
//! signatures). Throughput is in signatures. Ratios side by side: `examples/sign_ratios.rs`.
//!
//! `taskset -c 1 cargo bench -p dcc-benches --bench sign -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dcc_benches::{signer, FixtureRng};
use dcc_signing::FastSigner;

fn sign(c: &mut Criterion) {
    let mut rng = FixtureRng::new(0x5167_0001);
    let plain = signer(&mut rng);
    let fast = FastSigner::from_signer(&plain).unwrap();
    let digests: Vec<[u8; 32]> = (0..1024).map(|_| rng.bytes32()).collect();
    assert_eq!(
        fast.sign_prehash(&digests[0]).unwrap(),
        plain.sign_prehash(&digests[0]).unwrap()
    );
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("p256", "rfc6979"), |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(plain.sign_prehash(black_box(&digests[i % digests.len()])))
        })
    });
    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("fast", "rfc6979"), |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(fast.sign_prehash(black_box(&digests[i % digests.len()])))
        })
    });
    g.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
