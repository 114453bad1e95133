//! Seeded random differential test: the known-signer verifier must give exactly plain `p256`'s
//! verdict on valid signatures and on every kind of broken one — wrong key, flipped bits in the
//! digest, r or s, r or s = 0, = n, ≥ n, high s, random garbage — and on crafted signatures
//! whose point R has x(R) ≥ n (the `r + n < p` branch of the projective comparison).
//!
//! `differential_default` runs `DCC_DIFF_CASES` cases (default 20,000: a few seconds in the
//! test profile). The ignored `differential_million` runs `DCC_DIFF_CASES` (default 1,000,000)
//! on all cores: `cargo test --release -p dcc-signing --test differential -- --ignored`.
//! `DCC_DIFF_SEED` changes the seed.
//!
//! The fast signer's differential (`fast_signer_matches_p256`) is at the end of this file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dcc_signing::verify::known::{KnownSignerVerifier, TableBudget, TableShape, WindowBits};
use dcc_signing::verify::{P256Verifier, PreparedKey, Verifier, VerifyJob};
use dcc_signing::{FastSigner, Signer};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::point::DecompressPoint;
use p256::elliptic_curve::subtle::Choice;
use p256::elliptic_curve::{Field, PrimeField};
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};

/// n, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        b
    }
    fn scalar(&mut self) -> Scalar {
        loop {
            let s: Option<Scalar> = Scalar::from_repr(self.bytes32().into()).into();
            if let Some(s) = s.filter(|s| !bool::from(s.is_zero())) {
                return s;
            }
        }
    }
}

/// A signer under test with both backends' prepared keys.
struct Key {
    signing: SigningKey,
    plain: Arc<dyn PreparedKey>,
    known: Arc<dyn PreparedKey>,
}

/// One key per table shape the budget policy can choose (full tables and combs), and one per
/// widest width under the adaptive policy (base table, then promoted), so every path is
/// exercised in every run.
fn keys(rng: &mut Rng) -> Vec<Key> {
    let pinned = TableShape::frontier(WindowBits::MAX)
        .into_iter()
        .map(|shape| KnownSignerVerifier::with_shape(shape, TableBudget::default()));
    let adaptive = (WindowBits::MIN.get()..=WindowBits::MAX.get()).map(|w| {
        KnownSignerVerifier::new(WindowBits::new(w).unwrap(), TableBudget::default())
            .promote_after(5)
    });
    pinned
        .chain(adaptive)
        .map(|known| {
            let signing = SigningKey::from_bytes(&rng.scalar().to_bytes()).unwrap();
            let public = p256::PublicKey::from(signing.verifying_key());
            Key {
                plain: P256Verifier.prepare(&public),
                known: known.prepare(&public),
                signing,
            }
        })
        .collect()
}

fn add_be(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let t = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = t as u8;
        carry = t >> 8;
    }
    out
}

/// One case: digest, r ‖ s, key index to verify under.
type Case = ([u8; 32], [u8; 64], usize);

/// A batch of cases derived from one fresh signature: the valid one and its mutations.
fn cases_from_signature(rng: &mut Rng, keys: &[Key]) -> Vec<Case> {
    let k = rng.below(keys.len() as u64) as usize;
    let digest = rng.bytes32();
    let sig: Signature = keys[k].signing.sign_prehash(&digest).unwrap();
    let raw: [u8; 64] = sig.to_bytes().into();
    let mut out = vec![(digest, raw, k)];
    // Wrong key.
    out.push((digest, raw, (k + 1) % keys.len()));
    // High s: (r, n - s) is valid too (no low-s rule).
    let (r, s) = sig.split_scalars();
    let mut high = raw;
    high[32..].copy_from_slice(&(-*s).to_bytes());
    out.push((digest, high, k));
    // Flipped bits in digest, r, s.
    let mut d = digest;
    d[rng.below(32) as usize] ^= 1 << rng.below(8);
    out.push((d, raw, k));
    let mut m = raw;
    m[rng.below(32) as usize] ^= 1 << rng.below(8);
    out.push((digest, m, k));
    let mut m = raw;
    m[32 + rng.below(32) as usize] ^= 1 << rng.below(8);
    out.push((digest, m, k));
    // r or s = 0, = n, ≥ n, = n + (r or s).
    let special = rng.below(6);
    let half = rng.below(2) as usize * 32;
    let mut m = raw;
    let value: [u8; 32] = match special {
        0 => [0u8; 32],
        1 => ORDER,
        2 => [0xff; 32],
        3 => {
            let mut one = [0u8; 32];
            one[31] = 1;
            add_be(&ORDER, &one)
        }
        4 => {
            // n + x for the original value x when it does not overflow 2^256.
            let orig: [u8; 32] = if half == 0 {
                r.to_bytes().into()
            } else {
                s.to_bytes().into()
            };
            let sum = add_be(&ORDER, &orig);
            if sum < ORDER {
                [0xfe; 32]
            } else {
                sum
            }
        }
        _ => rng.bytes32(),
    };
    m[half..half + 32].copy_from_slice(&value);
    out.push((digest, m, k));
    // Garbage signature.
    let mut g = [0u8; 64];
    g[..32].copy_from_slice(&rng.bytes32());
    g[32..].copy_from_slice(&rng.bytes32());
    out.push((digest, g, k));
    out
}

/// A valid signature whose R has x(R) ≥ n, so r = x(R) - n: pick R with x ∈ [n, p), random u1
/// and u2, and solve for the key Q = u2⁻¹·(R - u1·G); then s = r·u2⁻¹ and e = u1·s.
/// Returns the key, the valid case, and mutations (r = x(R) unreduced, s off by one, wrong r).
fn crafted_high_x(rng: &mut Rng, known: &KnownSignerVerifier) -> Option<(Key, Vec<Case>)> {
    let mut x = ORDER;
    let t = rng.bytes32();
    // x = n + t with t < 2^120: stays below p (p - n ≈ 2^126.07).
    x = add_be(&x, &{
        let mut small = [0u8; 32];
        small[17..].copy_from_slice(&t[17..]);
        small[17] &= 0x7f;
        small
    });
    let r_point: Option<AffinePoint> =
        AffinePoint::decompress(&FieldBytes::from(x), Choice::from(t[0] & 1)).into();
    let r_point = ProjectivePoint::from(r_point?);
    let r_bytes: [u8; 32] = {
        // r = x - n = t-part (small)
        let mut small = [0u8; 32];
        small[17..].copy_from_slice(&t[17..]);
        small[17] &= 0x7f;
        small
    };
    let r: Scalar = Option::from(Scalar::from_repr(r_bytes.into()))?;
    if bool::from(r.is_zero()) {
        return None;
    }
    let u1 = rng.scalar();
    let u2 = rng.scalar();
    let u2_inv: Scalar = Option::from(u2.invert())?;
    let q = (r_point - ProjectivePoint::GENERATOR * u1) * u2_inv;
    let public = p256::PublicKey::from_affine(q.to_affine()).ok()?;
    let s = r * u2_inv;
    let e = u1 * s;
    let digest: [u8; 32] = e.to_bytes().into();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(&s.to_bytes());
    let key = Key {
        signing: SigningKey::from_bytes(&rng.scalar().to_bytes()).ok()?, // unused for these
        plain: P256Verifier.prepare(&public),
        known: known.prepare(&public),
    };
    let mut unreduced = sig;
    unreduced[..32].copy_from_slice(&x);
    let mut s_plus = sig;
    s_plus[32..].copy_from_slice(&(s + Scalar::ONE).to_bytes());
    let mut r_plus = sig;
    r_plus[..32].copy_from_slice(&(r + Scalar::ONE).to_bytes());
    Some((
        key,
        vec![
            (digest, sig, 0),
            (digest, unreduced, 0),
            (digest, s_plus, 0),
            (digest, r_plus, 0),
        ],
    ))
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    cases: u64,
    accepted: u64,
    crafted_valid: u64,
}

/// Runs `count` cases from `seed`; panics on the first disagreement.
fn run(seed: u64, count: u64) -> Tally {
    let mut rng = Rng(seed | 1);
    let known = KnownSignerVerifier::default();
    let keys = keys(&mut rng);
    let mut tally = Tally::default();
    let mut batch: Vec<(Case, bool)> = Vec::new();
    while tally.cases < count {
        let mut cases = cases_from_signature(&mut rng, &keys);
        let mut crafted = None;
        if rng.below(64) == 0 {
            crafted = crafted_high_x(&mut rng, &known);
        }
        let check = |case: &Case, key: &Key, crafted_first: bool| {
            let (d, s, _) = case;
            let want = key.plain.verify_prehash(d, s).is_ok();
            let got = key.known.verify_prehash(d, s).is_ok();
            assert_eq!(got, want, "seed {seed}: digest {d:02x?} sig {s:02x?}");
            if crafted_first {
                assert!(want, "crafted x(R) ≥ n signature must verify");
            }
            want
        };
        if let Some((key, ccases)) = &crafted {
            for (i, c) in ccases.iter().enumerate() {
                let ok = check(c, key, i == 0);
                tally.cases += 1;
                tally.accepted += u64::from(ok);
            }
            tally.crafted_valid += 1;
        }
        for c in cases.drain(..) {
            let ok = check(&c, &keys[c.2], false);
            tally.cases += 1;
            tally.accepted += u64::from(ok);
            batch.push((c, ok));
        }
        // Batches must agree with single verdicts (and so with p256).
        if batch.len() >= 96 {
            let jobs: Vec<VerifyJob<'_>> = batch
                .iter()
                .map(|((d, s, k), _)| VerifyJob {
                    key: keys[*k].known.as_ref(),
                    digest: d,
                    signature: s,
                })
                .collect();
            let mut out = vec![false; jobs.len()];
            known.verify_batch(&jobs, &mut out);
            for ((_, want), got) in batch.iter().zip(&out) {
                assert_eq!(got, want, "seed {seed}: batch verdict differs");
            }
            batch.clear();
        }
    }
    tally
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn differential_default() {
    let seed = env_u64("DCC_DIFF_SEED", 0x5eed_0001);
    let count = env_u64("DCC_DIFF_CASES", 20_000);
    let t = run(seed, count);
    // Valid and high-s cases are accepted: about a quarter of all cases.
    assert!(t.accepted > t.cases / 5, "{t:?}");
    println!("differential: {t:?}");
}

#[test]
#[ignore = "long: run in release, see the module docs"]
fn differential_million() {
    let seed = env_u64("DCC_DIFF_SEED", 0x5eed_1000);
    let count = env_u64("DCC_DIFF_CASES", 1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let per = count.div_ceil(threads);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| s.spawn(move || run(seed.wrapping_add(i * 0x9e37_79b9), per)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = tallies.iter().fold(Tally::default(), |a, t| Tally {
        cases: a.cases + t.cases,
        accepted: a.accepted + t.accepted,
        crafted_valid: a.crafted_valid + t.crafted_valid,
    });
    println!(
        "differential_million: {total:?} (seed {seed:#x}, {threads} threads), 0 disagreements"
    );
    assert!(total.cases >= count);
}

// The fast (load-generation) signer, `dcc_signing::sign_fast`: every signature it makes must be
// byte for byte the one `p256` makes for the same key and digest (RFC 6979 nonces), verify
// under `p256`'s verifier and the known-signer verifier, and fail under another key. The
// OpenSSL side is in `interop.rs` (`fast_signer_signatures_verify_under_openssl`).
// `fast_signer_matches_p256` signs `DCC_SIGN_CASES` digests (default 2,000); the ignored
// `fast_signer_matches_p256_long` 200,000 in release.

/// Signs `count` digests over a new key every 16 signatures; panics on the first difference.
fn run_signer(seed: u64, count: u64) {
    let mut rng = Rng(seed | 1);
    let known = KnownSignerVerifier::default();
    let mut signed = 0u64;
    while signed < count {
        let Ok(key) = SigningKey::from_bytes(&rng.bytes32().into()) else {
            continue;
        };
        let signer = Signer::new(key);
        let fast = FastSigner::from_signer(&signer).unwrap();
        let public = signer.public_key();
        let plain = P256Verifier.prepare(&public);
        let prepared = known.prepare(&public);
        let other = P256Verifier.prepare(&Signer::random().public_key());
        for _ in 0..16 {
            // Digests at the edges too: zero, all ones (≥ n, reduced), random.
            let digest = match rng.below(8) {
                0 => [0u8; 32],
                1 => [0xff; 32],
                _ => rng.bytes32(),
            };
            let sig = fast.sign_prehash(&digest).unwrap();
            assert_eq!(
                sig,
                signer.sign_prehash(&digest).unwrap(),
                "seed {seed}: digest {digest:02x?}"
            );
            assert!(plain.verify_prehash(&digest, &sig).is_ok());
            assert!(prepared.verify_prehash(&digest, &sig).is_ok());
            assert!(other.verify_prehash(&digest, &sig).is_err());
            signed += 1;
        }
    }
}

#[test]
fn fast_signer_matches_p256() {
    run_signer(
        env_u64("DCC_SIGN_SEED", 0x5eed_5160),
        env_u64("DCC_SIGN_CASES", 2_000),
    );
}

#[test]
#[ignore = "long: run in release, see the module docs"]
fn fast_signer_matches_p256_long() {
    run_signer(
        env_u64("DCC_SIGN_SEED", 0x5eed_5161),
        env_u64("DCC_SIGN_CASES", 200_000),
    );
}
