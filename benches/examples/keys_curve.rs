//! Verify rate against the number of signer keys loaded and used evenly (issue 14.1): the
//! known-signer verifier with its default 256 MiB table budget (one by one, and batched), plain
//! `p256`, and — with `--features compare-c` — `aws-lc-rs` with parsed keys. For each key count
//! the contenders are measured interleaved (see `dcc_benches::interleave`), so each row's ratios
//! compare things measured side by side.
//!
//! ```sh
//! cargo build --release -p dcc-benches --features compare-c --example keys_curve --example plot
//! taskset -c 1 target/release/examples/keys_curve 5 300 1,16,256,1024,4096,16384 keys.csv
//! target/release/examples/plot keys.csv docs/verify-vs-keys.svg
//! ```
//!
//! Arguments: rounds (5), slice in ms (300), key counts (comma-separated, default
//! 1,4,16,64,256,1024,2048,4096,8192,16384), CSV output (`keys_curve.csv`). The CSV has one
//! row per key count and contender: `keys,contender,rate,ratio_aws,ratio_p256`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dcc_benches::interleave::{self, median, Work};
use dcc_benches::{evenly_signed_messages, signer, FixtureRng, SignedMessage};
use dcc_signing::verify::known::KnownKey;
use dcc_signing::verify::{KnownSignerVerifier, P256Verifier, PreparedKey, Verifier, VerifyJob};
use dcc_signing::Signer;

/// Verifications per call of a contender's work.
const CHUNK: usize = 64;

/// Verifies the messages in turn with `verify`, `CHUNK` per call.
fn cycle(
    items: Arc<Vec<SignedMessage>>,
    verify: impl Fn(&SignedMessage) -> bool + 'static,
) -> Work {
    let mut i = 0usize;
    Box::new(move || {
        for _ in 0..CHUNK {
            let it = &items[i % items.len()];
            i = i.wrapping_add(1);
            assert!(verify(black_box(it)));
        }
        CHUNK
    })
}

fn single(keys: Vec<Arc<dyn PreparedKey>>, items: Arc<Vec<SignedMessage>>) -> Work {
    cycle(items, move |it| {
        keys[it.key].verify_prehash(&it.digest, &it.sig).is_ok()
    })
}

fn batched(
    v: KnownSignerVerifier,
    keys: Vec<Arc<dyn PreparedKey>>,
    items: Arc<Vec<SignedMessage>>,
) -> Work {
    let mut i = 0usize;
    let mut out = [false; CHUNK];
    Box::new(move || {
        let jobs: Vec<VerifyJob<'_>> = (0..CHUNK)
            .map(|j| {
                let it = &items[(i + j) % items.len()];
                VerifyJob {
                    key: keys[it.key].as_ref(),
                    digest: &it.digest,
                    signature: &it.sig,
                }
            })
            .collect();
        i = i.wrapping_add(CHUNK);
        v.verify_batch(&jobs, &mut out);
        assert!(out.iter().all(|&o| o));
        CHUNK
    })
}

#[cfg(feature = "compare-c")]
fn aws(signers: &[Signer], items: Arc<Vec<SignedMessage>>) -> Work {
    let keys = dcc_benches::aws_parsed_keys(signers);
    cycle(items, move |it| {
        keys[it.key].verify_sig(&it.msg, &it.sig).is_ok()
    })
}

/// How many keys got which table shape (or none: plain p256).
fn shapes(keys: &[Arc<dyn PreparedKey>]) -> String {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        let name = k
            .as_any()
            .and_then(|a| a.downcast_ref::<KnownKey>())
            .map_or("p256".to_string(), |k| k.shape().to_string());
        *count.entry(name).or_default() += 1;
    }
    count
        .iter()
        .map(|(s, n)| format!("{s} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let slice = Duration::from_millis(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300));
    let counts: Vec<usize> = args
        .get(3)
        .map(|a| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16, 64, 256, 1024, 2048, 4096, 8192, 16384]);
    let csv_path = args.get(4).cloned().unwrap_or("keys_curve.csv".into());
    let mut csv = std::fs::File::create(&csv_path).expect("CSV output");
    writeln!(csv, "keys,contender,rate,ratio_aws,ratio_p256").unwrap();

    KnownSignerVerifier::default().warm_up();
    let mut rng = FixtureRng::new(0x6b65_7973);
    println!("| keys | contender | verify/s (median of {rounds}) | × aws-lc-rs | × p256 |");
    println!("|---:|---|---:|---:|---:|");
    for &n in &counts {
        let setup = Instant::now();
        let signers: Vec<Signer> = (0..n).map(|_| signer(&mut rng)).collect();
        // At least 4 uses per key (the default promotion count), at least 4,096 messages.
        let per_key = 4096usize.div_ceil(n).max(4);
        let items = Arc::new(evenly_signed_messages(&mut rng, &signers, per_key));
        let known = KnownSignerVerifier::default();
        let known_keys: Vec<_> = signers
            .iter()
            .map(|s| known.prepare(&s.public_key()))
            .collect();
        // One pass promotes every key, as the first seconds of traffic would.
        for it in items.iter() {
            assert!(known_keys[it.key]
                .verify_prehash(&it.digest, &it.sig)
                .is_ok());
        }
        let plain: Vec<_> = signers
            .iter()
            .map(|s| P256Verifier.prepare(&s.public_key()))
            .collect();
        let layout = shapes(&known_keys);
        let bytes = known.table_bytes_in_use();
        let mut work: Vec<(String, Work)> = vec![
            (
                "known-signer".into(),
                single(known_keys.clone(), items.clone()),
            ),
            (
                "known-signer batch 64".into(),
                batched(known.clone(), known_keys, items.clone()),
            ),
            ("p256".into(), single(plain, items.clone())),
        ];
        #[cfg(feature = "compare-c")]
        work.push(("aws-lc-rs".into(), aws(&signers, items.clone())));
        eprintln!(
            "{n} keys: set up in {:.1} s; tables {:.1} MiB: {layout}",
            setup.elapsed().as_secs_f64(),
            bytes as f64 / f64::from(1u32 << 20)
        );
        let rates = interleave::run(&mut work, rounds, slice, |_| {});
        let med: Vec<f64> = rates.iter().map(|r| median(r)).collect();
        let find = |name: &str| {
            work.iter()
                .position(|(w, _)| w == name)
                .and_then(|i| med.get(i).copied())
        };
        let aws_rate = find("aws-lc-rs");
        let p256_rate = find("p256");
        for ((name, _), m) in work.iter().zip(&med) {
            let ra = aws_rate.map_or(String::new(), |a| format!("{:.2}", m / a));
            let rp = p256_rate.map_or(String::new(), |p| format!("{:.2}", m / p));
            println!("| {n} | {name} | {m:.0} | {ra} | {rp} |");
            writeln!(csv, "{n},{name},{m:.1},{ra},{rp}").unwrap();
        }
        println!(
            "| {n} | (tables: {:.1} MiB; {layout}) | | | |",
            bytes as f64 / f64::from(1u32 << 20)
        );
    }
}
