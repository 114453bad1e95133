//! Lane scheduling overhead: the four bounded lanes with the weighted-round pick against a
//! bare flume channel, and the whole pipeline's per-request overhead with verification taken
//! out (a verifier that accepts everything), so that what is left is decode, admission, lanes,
//! worker hand-over, commit and dispatch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dcc_router::pipeline::lanes::{Lane, Lanes, Round};
use dcc_router::policy::{LaneCapacity, RateLimit};
use dcc_router::state::CertRecord;
use dcc_router::{Device, Party, Policy, ResponseCode, Router, State};
use dcc_signing::envelope::Header;
use dcc_signing::verify::{BadSignature, PreparedKey, Verifier};
use dcc_signing::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Signer, Srv, UserRole};

const ITEMS: usize = 64;

fn bench_lanes(c: &mut Criterion) {
    let policy = Policy::default();
    let mut g = c.benchmark_group("lanes");
    g.throughput(Throughput::Elements(ITEMS as u64));

    let lanes: Lanes<u64> = Lanes::new(&policy);
    let mut round = Round::new(&policy);
    let mut out = Vec::with_capacity(8);
    g.bench_function("rounds_4_lanes_push_fill_batch8", |b| {
        b.iter(|| {
            for i in 0..ITEMS {
                lanes.push(Lane::ALL[i % 4], i as u64).unwrap();
            }
            let mut got = 0;
            while got < ITEMS {
                out.clear();
                lanes.fill(&mut round, &mut out, 8);
                got += out.len();
            }
            got
        })
    });

    let (tx, rx) = flume::bounded::<u64>(4096);
    g.bench_function("flume_1_channel_baseline", |b| {
        b.iter(|| {
            for i in 0..ITEMS {
                tx.try_send(i as u64).unwrap();
            }
            let mut got = 0;
            while rx.try_recv().is_ok() {
                got += 1;
            }
            got
        })
    });
    g.finish();
}

#[derive(Debug)]
struct AcceptAll;
#[derive(Debug)]
struct AnyKey;
impl PreparedKey for AnyKey {
    fn verify_prehash(&self, _: &[u8; 32], _: &[u8; 64]) -> Result<(), BadSignature> {
        Ok(())
    }
}
impl Verifier for AcceptAll {
    fn name(&self) -> &str {
        "accept-all"
    }
    fn prepare(&self, _: &p256::PublicKey) -> Arc<dyn PreparedKey> {
        Arc::new(AnyKey)
    }
}

fn bench_overhead(c: &mut Criterion) {
    let n: u64 = if std::env::args().any(|a| a == "--bench") {
        4096
    } else {
        32
    };
    let supplier = Eui64::from_u64(0x90B3_D51F_3001_0000);
    let meter = Eui64::from_u64(0x00DB_1234_5678_0001);
    let cert = CertId::new([0xCA; 8], &[1]).unwrap();
    let signer = Signer::random();
    let requests: Vec<Vec<u8>> = (1..=n)
        .map(|counter| {
            let h = Header {
                role: UserRole::ImportSupplier,
                command_variant: CommandVariant::NON_CRITICAL_WAN,
                execution: ExecutionKind::OnDemand,
                srv: Srv::new2(3, 1),
                request_id: RequestId {
                    originator: supplier,
                    target: meter,
                    counter,
                },
                execute_at: 0,
                signer: cert,
            };
            signer.sign_envelope(&h, &[0x5A; 64]).unwrap()
        })
        .collect();
    let router = |workers| {
        let mut policy = Policy {
            rate_limit: RateLimit::new(RateLimit::MAX, RateLimit::MAX).unwrap(),
            ..Policy::default()
        };
        policy.lanes[Lane::L2.index()].capacity = LaneCapacity::new(1 << 14).unwrap();
        let r = Router::builder()
            .policy(policy)
            .state(Arc::new(State::new()))
            .verifier(Arc::new(AcceptAll))
            .workers(workers)
            .build()
            .unwrap();
        let admin = r.admin();
        admin
            .upsert_party(supplier, Party::approved(&[UserRole::ImportSupplier]))
            .unwrap();
        admin
            .add_certificate(CertRecord {
                id: cert,
                owner: supplier,
                public_key: signer.public_key(),
                not_before: 0,
                not_after: u64::MAX,
            })
            .unwrap();
        admin.upsert_device(meter, Device::new(supplier)).unwrap();
        r
    };
    let mut g = c.benchmark_group("pipeline_overhead");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    for w in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("no_verify_workers", w), &w, |b, &w| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = router(w);
                    let start = Instant::now();
                    let futs: Vec<_> = requests.iter().map(|b| r.submit(b.clone())).collect();
                    for f in futs {
                        assert_eq!(f.wait().code, ResponseCode::Success);
                    }
                    total += start.elapsed();
                    r.shutdown();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_lanes, bench_overhead);
criterion_main!(benches);
