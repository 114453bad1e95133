//! Certificate-state lookup under contention: `DashMap<CertId, _>` against a
//! `RwLock<HashMap<CertId, _>>` baseline, with N threads doing lookups (and one write in 1,024
//! operations, as CRL or certificate loads would) over a few hundred certificates.
//! Throughput in lookups (all threads together).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use dcc_benches::cert_id;
use dcc_signing::CertId;

/// What the router keeps per certificate (stand-in of the same size class).
#[derive(Debug, Clone, Copy)]
struct CertState {
    revoked: bool,
    key_slot: u32,
    not_after: u64,
}

const CERTS: u32 = 300;
const WRITE_EVERY: u64 = 1024;

trait Store: Sync {
    fn get(&self, id: &CertId) -> Option<CertState>;
    fn set(&self, id: CertId, st: CertState);
}

impl Store for DashMap<CertId, CertState> {
    fn get(&self, id: &CertId) -> Option<CertState> {
        DashMap::get(self, id).map(|r| *r)
    }
    fn set(&self, id: CertId, st: CertState) {
        self.insert(id, st);
    }
}

impl Store for RwLock<HashMap<CertId, CertState>> {
    fn get(&self, id: &CertId) -> Option<CertState> {
        self.read().ok().and_then(|m| m.get(id).copied())
    }
    fn set(&self, id: CertId, st: CertState) {
        if let Ok(mut m) = self.write() {
            m.insert(id, st);
        }
    }
}

fn state(i: u32) -> CertState {
    CertState {
        revoked: false,
        key_slot: i,
        not_after: 2_000_000_000,
    }
}

/// `threads` threads each do `iters` operations; returns the wall time.
fn run(store: &dyn Store, ids: &[CertId], threads: u64, iters: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut hits = 0u64;
                let mut x = t.wrapping_mul(0x9e37_79b9) | 1;
                for i in 0..iters {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = &ids[(x % ids.len() as u64) as usize];
                    if i % WRITE_EVERY == WRITE_EVERY - 1 {
                        store.set(*id, state(i as u32));
                    } else if let Some(st) = store.get(id) {
                        hits += u64::from(!st.revoked && st.not_after > u64::from(st.key_slot));
                    }
                }
                black_box(hits);
            });
        }
    });
    start.elapsed()
}

fn certstate(c: &mut Criterion) {
    let ids: Vec<CertId> = (1..=CERTS).map(cert_id).collect();
    let dash: DashMap<CertId, CertState> = ids.iter().map(|id| (*id, state(0))).collect();
    let rw: RwLock<HashMap<CertId, CertState>> =
        RwLock::new(ids.iter().map(|id| (*id, state(0))).collect());
    let mut g = c.benchmark_group("certstate");
    for threads in [1u64, 2, 4] {
        g.throughput(Throughput::Elements(threads));
        let stores: [(&str, &dyn Store); 2] = [("dashmap", &dash), ("rwlock-hashmap", &rw)];
        for (name, store) in stores {
            g.bench_function(BenchmarkId::new(name, format!("threads{threads}")), |b| {
                b.iter_custom(|iters| run(store, &ids, threads, iters))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, certstate);
criterion_main!(benches);
