//! The Wycheproof ECDSA P-256/SHA-256 suites through the `Verifier` trait, for every backend.
//!
//! Sets: `ecdsa_secp256r1_sha256` (DER signatures) and `ecdsa_secp256r1_sha256_p1363` (`r ‖ s`).
//! Every "valid" vector must be accepted and every "invalid" one refused. These sets hold no
//! "acceptable" vectors today; should a later set add some, we require them to be refused — the
//! strict choice (the flags behind them in other sets, e.g. BER encodings, are refused by our
//! strict DER parser) — see `expected_accept`.
//!
//! DER signatures are turned into `r ‖ s` by a strict DER parser (the `der` crate: minimal
//! lengths and integers, no trailing bytes, non-negative integers). An encoding it refuses, or
//! an integer longer than 32 bytes (so ≥ 2²⁵⁶ > n), counts as a refusal — the verifier never
//! sees it. Everything else, including r or s = 0 or ≥ n, goes to the verifier.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dcc_signing::verify::known::{KnownSignerVerifier, TableBudget, TableShape, WindowBits};
use dcc_signing::verify::{P256Verifier, Verifier, VerifyJob};
use der::asn1::UintRef;
use der::{Decode, Sequence};
use sha2::{Digest, Sha256};
use wycheproof::ecdsa::{TestName, TestSet};
use wycheproof::TestResult;

#[derive(Sequence)]
struct DerSignature<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

#[derive(Clone, Copy)]
enum Encoding {
    Der,
    P1363,
}

/// `r ‖ s` from a signature encoding, or `None` if the encoding is refused.
fn to_raw(sig: &[u8], enc: Encoding) -> Option<[u8; 64]> {
    match enc {
        Encoding::P1363 => sig.try_into().ok(),
        Encoding::Der => {
            let parsed = DerSignature::from_der(sig).ok()?;
            let mut raw = [0u8; 64];
            for (half, int) in raw.chunks_mut(32).zip([parsed.r, parsed.s]) {
                let b = int.as_bytes();
                if b.len() > 32 {
                    return None;
                }
                half[32 - b.len()..].copy_from_slice(b);
            }
            Some(raw)
        }
    }
}

fn expected_accept(result: TestResult) -> bool {
    match result {
        TestResult::Valid => true,
        TestResult::Invalid | TestResult::Acceptable => false,
    }
}

/// Runs one set through `verifier`, one by one and as batches (one batch per key group).
/// Returns (vectors checked, accepted).
fn run(verifier: &dyn Verifier, name: TestName, enc: Encoding) -> (usize, usize) {
    let set = TestSet::load(name).unwrap();
    let mut failures = Vec::new();
    let (mut checked, mut accepted) = (0, 0);
    for group in &set.test_groups {
        let key = p256::PublicKey::from_sec1_bytes(&group.key.key).unwrap();
        let prepared = verifier.prepare(&key);
        let mut batch: Vec<([u8; 32], [u8; 64], bool, usize)> = Vec::new();
        for test in &group.tests {
            let digest: [u8; 32] = Sha256::digest(&test.msg[..]).into();
            let verdict = match to_raw(&test.sig, enc) {
                Some(raw) => {
                    let ok = prepared.verify_prehash(&digest, &raw).is_ok();
                    batch.push((digest, raw, ok, test.tc_id));
                    ok
                }
                None => false,
            };
            checked += 1;
            accepted += usize::from(verdict);
            if verdict != expected_accept(test.result) {
                failures.push(format!(
                    "tc {} ({:?}, {}): got {}",
                    test.tc_id, test.result, test.comment, verdict
                ));
            }
        }
        let jobs: Vec<VerifyJob<'_>> = batch
            .iter()
            .map(|(d, s, _, _)| VerifyJob {
                key: prepared.as_ref(),
                digest: d,
                signature: s,
            })
            .collect();
        let mut out = vec![false; jobs.len()];
        verifier.verify_batch(&jobs, &mut out);
        for ((_, _, single, tc), batched) in batch.iter().zip(&out) {
            if single != batched {
                failures.push(format!(
                    "tc {tc}: batch verdict {batched} != single {single}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} on {:?}: {} failures:\n{}",
        verifier.name(),
        name,
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, set.number_of_tests);
    (checked, accepted)
}

fn run_both_sets(verifier: &dyn Verifier) {
    let (n, ok) = run(verifier, TestName::EcdsaSecp256r1Sha256, Encoding::Der);
    assert!(n > 400 && ok > 100, "DER set: {n} vectors, {ok} accepted");
    let (n, ok) = run(
        verifier,
        TestName::EcdsaSecp256r1Sha256P1363,
        Encoding::P1363,
    );
    assert!(n > 200 && ok > 100, "P1363 set: {n} vectors, {ok} accepted");
}

#[test]
fn p256_backend_passes_wycheproof() {
    run_both_sets(&P256Verifier);
}

#[test]
fn known_signer_passes_wycheproof_at_every_table_shape() {
    // Every shape the budget policy can choose (full tables and combs), pinned one at a time.
    for shape in TableShape::frontier(WindowBits::MAX) {
        let v = KnownSignerVerifier::with_shape(shape, TableBudget::default());
        run_both_sets(&v);
    }
}

#[test]
fn known_signer_passes_wycheproof_across_promotion() {
    // The adaptive policy at every widest width: each key starts on its base table and is
    // promoted part-way through its group's vectors, so both tables see them.
    for w in WindowBits::MIN.get()..=WindowBits::MAX.get() {
        let v = KnownSignerVerifier::new(WindowBits::new(w).unwrap(), TableBudget::default())
            .promote_after(3);
        run_both_sets(&v);
    }
}

#[test]
fn known_signer_fallback_to_p256_passes_wycheproof() {
    // A zero budget forces every key onto the plain p256 fallback, batch path included.
    let v = KnownSignerVerifier::new(WindowBits::MAX, TableBudget(0));
    run_both_sets(&v);
}
