//! SHA-256 cost by input size (the digest every verification needs). Throughput in bytes, so
//! criterion reports bytes/s; the per-KB figure is `1024 / (bytes/s)`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::{Digest, Sha256};

fn sha256(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256");
    for size in [64usize, 256, 1024, 4096, 16384] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, d| {
            b.iter(|| black_box(Sha256::digest(black_box(d))))
        });
    }
    g.finish();
}

criterion_group!(benches, sha256);
criterion_main!(benches);
