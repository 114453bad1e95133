//! Envelope decode: parse and bounds-check a signed Service Request (borrowing, no copies), and
//! decode plus the SHA-256 digest the verifier needs. Throughput in envelopes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dcc_benches::{sample_header, signer, FixtureRng};
use dcc_signing::envelope::Envelope;

fn envelope(c: &mut Criterion) {
    let mut rng = FixtureRng::new(0x0e40_e10e);
    let signer = signer(&mut rng);
    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(1));
    for body_len in [0usize, 256, 1024] {
        let body: Vec<u8> = (0..body_len).map(|i| i as u8).collect();
        let bytes = signer
            .sign_envelope(&sample_header(42, 0x1001), &body)
            .unwrap();
        assert!(Envelope::decode(&bytes).is_ok());
        g.bench_with_input(BenchmarkId::new("decode", body_len), &bytes, |b, bytes| {
            b.iter(|| black_box(Envelope::decode(black_box(bytes)).is_ok()))
        });
        g.bench_with_input(
            BenchmarkId::new("decode+digest", body_len),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let e = Envelope::decode(black_box(bytes)).unwrap();
                    black_box(e.digest())
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
