//! The device table at national scale (issue 14.4 and the memory curve of 14.5): resident
//! bytes per device, load time and lookup rate of the router's table, side by side with a
//! `dashmap` of whole [`Device`]s (the table it replaced) built from the same devices.
//!
//! `cargo bench -p dcc-benches --bench devices` measures, for each count in
//! `DCC_BENCH_DEVICE_COUNTS` (default `1000000,2000000,5000000,10000000`) and each table, in a
//! fresh child process (so the resident-memory growth is that table's alone):
//! * `router`: a router on the in-memory store, pre-sized, loaded through
//!   `AdminHandle::upsert_devices` in batches of 100,000 — what `dcc-router serve
//!   --demo-devices N --in-memory` does at a first start;
//! * `dashmap`: `DashMap<Eui64, Device>::with_capacity(n)`, one insert per device.
//!
//! Devices are spread over 200 Suppliers and 20 Network Operators (every 10th prepayment,
//! every 11th without WAN, every 5th with an export Supplier). Lookups: 2,000,000 random hits
//! per thread, on 1 and 2 threads. Each result is one CSV line,
//! `devices,table,bytes_per_device,load_s,lookups_per_s_1t,lookups_per_s_2t`, on stdout and
//! appended to `DCC_BENCH_CSV` when set — `plot` draws it (BENCHMARKS.md has the commands).
//! `cargo test --benches` runs 20,000 devices per table as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use dcc_benches::FixtureRng;
use dcc_router::state::{PaymentMode, WanState};
use dcc_router::store::MemoryStore;
use dcc_router::{Device, Party, Router, State};
use dcc_signing::{Eui64, UserRole};

const SUPPLIERS: u64 = 200;
const NETWORK_OPERATORS: u64 = 20;
const FIRST_DEVICE: u64 = 0x02DC_D000_0000_0000;
const LOOKUPS: u64 = 2_000_000;

fn supplier(i: u64) -> Eui64 {
    Eui64::from_u64(0x90B3_D51F_3000_0000 + i)
}

fn network_operator(i: u64) -> Eui64 {
    Eui64::from_u64(0x90B3_D51F_4000_0000 + i)
}

fn device(i: u64) -> (Eui64, Device) {
    let mut d = Device::new(supplier(i % SUPPLIERS));
    d.network_operator = Some(network_operator(i % NETWORK_OPERATORS));
    if i.is_multiple_of(5) {
        d.export_supplier = Some(supplier((i + 1) % SUPPLIERS));
    }
    if i.is_multiple_of(10) {
        d.payment_mode = PaymentMode::Prepayment;
    }
    if i.is_multiple_of(11) {
        d.wan = WanState::None;
    }
    (Eui64::from_u64(FIRST_DEVICE + i), d)
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .map_or(0, |kib: u64| kib * 1024)
}

/// Random-hit lookups per second on `threads` threads; panics on a miss.
fn lookup_rate(n: u64, threads: u64, get: &(dyn Fn(Eui64) -> Option<Device> + Sync)) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..threads {
            s.spawn(move || {
                let mut rng = FixtureRng::new(k + 1);
                let mut prepayment = 0u64;
                for _ in 0..LOOKUPS {
                    let id = Eui64::from_u64(FIRST_DEVICE + rng.next_u64() % n);
                    let d = get(id).expect("every looked-up device is there");
                    prepayment += u64::from(d.payment_mode == PaymentMode::Prepayment);
                }
                std::hint::black_box(prepayment);
            });
        }
    });
    (LOOKUPS * threads) as f64 / t.elapsed().as_secs_f64()
}

/// Builds one table of `n` devices in this process and prints its CSV line.
fn measure(table: &str, n: u64) -> String {
    let rss0 = rss_bytes();
    let t = Instant::now();
    let (load, rss, rates) = match table {
        "router" => {
            let router = Router::builder()
                .state(Arc::new(State::with_device_capacity(n as usize)))
                .store(Arc::new(MemoryStore::default()))
                .workers(1)
                .build()
                .unwrap();
            let admin = router.admin();
            for i in 0..SUPPLIERS {
                let roles = [UserRole::ImportSupplier, UserRole::ExportSupplier];
                admin
                    .upsert_party(supplier(i), Party::approved(&roles))
                    .unwrap();
            }
            for i in 0..NETWORK_OPERATORS {
                let roles = [UserRole::ElectricityDistributor];
                admin
                    .upsert_party(network_operator(i), Party::approved(&roles))
                    .unwrap();
            }
            let mut batch = Vec::with_capacity(100_000);
            for i in 0..n {
                batch.push(device(i));
                if batch.len() == 100_000 || i + 1 == n {
                    admin.upsert_devices(&batch).unwrap();
                    batch.clear();
                }
            }
            drop(batch);
            let load = t.elapsed();
            let rss = rss_bytes();
            let devices = &router.state().devices;
            assert_eq!(devices.len() as u64, n);
            let get = |id| devices.get(id);
            let rates = (lookup_rate(n, 1, &get), lookup_rate(n, 2, &get));
            (load, rss, rates)
        }
        _ => {
            let map: DashMap<Eui64, Device> = DashMap::with_capacity(n as usize);
            for i in 0..n {
                let (id, d) = device(i);
                map.insert(id, d);
            }
            let load = t.elapsed();
            let rss = rss_bytes();
            let get = |id| map.get(&id).map(|d| *d);
            let rates = (lookup_rate(n, 1, &get), lookup_rate(n, 2, &get));
            (load, rss, rates)
        }
    };
    format!(
        "{n},{table},{:.1},{:.2},{:.0},{:.0}",
        rss.saturating_sub(rss0) as f64 / n as f64,
        load.as_secs_f64(),
        rates.0,
        rates.1
    )
}

fn main() {
    if let Ok(job) = std::env::var("DCC_BENCH_DEVICES_CHILD") {
        let (table, n) = job.split_once(':').unwrap();
        println!("{}", measure(table, n.parse().unwrap()));
        return;
    }
    let real = std::env::args().any(|a| a == "--bench");
    let counts: Vec<u64> = if real {
        std::env::var("DCC_BENCH_DEVICE_COUNTS")
            .unwrap_or_else(|_| "1000000,2000000,5000000,10000000".into())
            .split(',')
            .map(|c| c.trim().parse().expect("DCC_BENCH_DEVICE_COUNTS: numbers"))
            .collect()
    } else {
        vec![20_000]
    };
    let tables =
        std::env::var("DCC_BENCH_DEVICE_TABLES").unwrap_or_else(|_| "router,dashmap".into());
    const HEADER: &str = "devices,table,bytes_per_device,load_s,lookups_per_s_1t,lookups_per_s_2t";
    let mut csv = std::env::var("DCC_BENCH_CSV").ok().map(|p| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        if f.metadata().unwrap().len() == 0 {
            writeln!(f, "{HEADER}").unwrap();
        }
        f
    });
    println!("{HEADER}");
    for &n in &counts {
        for table in tables.split(',') {
            let out = Command::new(std::env::current_exe().unwrap())
                .env("DCC_BENCH_DEVICES_CHILD", format!("{table}:{n}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{table} {n}: {out:?}");
            let line = String::from_utf8(out.stdout).unwrap();
            let line = line.trim();
            println!("{line}");
            if let Some(f) = csv.as_mut() {
                writeln!(f, "{line}").unwrap();
            }
        }
    }
}
