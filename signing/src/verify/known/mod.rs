//! The known-signer verifier: ECDSA P-256 verification with precomputed tables per public key.
//!
//! A router verifies millions of signatures from a few hundred signers. Plain verification
//! computes `u1·G + u2·Q` with about 256 doublings and ~100 additions per signature. Here, when
//! a key is prepared (a certificate loads), a fixed-base table of `Q`'s multiples is built; a
//! shared table for the generator `G` is built once per process. `u1·G + u2·Q` then becomes a
//! sum of about `2·⌈257/w⌉` precomputed affine points: additions only, no doublings. The
//! x-coordinate of the result is compared with `r` projectively (`X = r·Z²`, and `X = (r+n)·Z²`
//! when `r + n < p`), so no field inversion is needed either.
//!
//! # Variable time
//!
//! The arithmetic here branches on the scalars' digits and on exceptional cases of the addition
//! law. That is deliberate and safe: verification handles public data only (public key, digest,
//! signature). Do not reuse these routines with secrets.
//!
//! # Memory
//!
//! Per key, one table of `⌈257/w⌉ · 2^(w-1)` affine points of 64 bytes ([`WindowBits`]):
//! 33,280 bytes at `w = 4`, 53,248 at 5, 88,064 at 6, 151,552 at 7, 270,336 at 8 (the default,
//! fastest as measured in BENCHMARKS.md). Plus 270,336 bytes once for the generator's table.
//!
//! # Cache policy when many keys are loaded
//!
//! A [`TableBudget`] bounds the bytes of all live tables of one verifier (and its clones).
//! [`Verifier::prepare`] takes the configured width if its table fits in what remains, else
//! the widest narrower one that fits, else falls back to plain `p256` verification for that key
//! (correct, just slower). Dropping a prepared key gives its bytes back. First come, first
//! served: load the busiest signers' certificates first if the budget is tight.
//!
//! # Batches
//!
//! [`Verifier::verify_batch`] shares one scalar inversion (`s⁻¹`) across up to
//! [`BATCH_CHUNK`] signatures with Montgomery's trick. Each verdict equals the one
//! [`PreparedKey::verify_prehash`] gives for that job alone.

mod budget;
mod inverse;
mod point;
mod table;
mod window;

use std::any::Any;
use std::sync::{Arc, OnceLock};

use p256::elliptic_curve::bigint::U256;
use p256::elliptic_curve::ff::Field;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::PrimeField;
use p256::{AffinePoint, FieldBytes, FieldElement, Scalar};

pub use budget::TableBudget;
pub use window::{WindowBits, WindowBitsError};

use self::budget::{BudgetLedger, Reservation};
use self::point::Jacobian;
use self::table::FixedBaseTable;
use self::window::SignedDigits;
use super::{BadSignature, P256Verifier, PreparedKey, Verifier, VerifyJob};

/// Window width of the shared generator table.
pub const G_WINDOW: WindowBits = WindowBits::MAX;

/// Most signatures that share one inversion in [`Verifier::verify_batch`]; longer batches are
/// processed in chunks of this size (fixed-size stack buffers, no allocation).
pub const BATCH_CHUNK: usize = 64;

/// `p - n` big-endian: when `r < p - n`, `r + n` is also a field element and a candidate x(R).
const P_MINUS_N: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x43, 0x19, 0x05, 0x53, 0x58, 0xe8, 0x61, 0x7b,
    0x0c, 0x46, 0x35, 0x3d, 0x03, 0x9c, 0xda, 0xae,
];

/// The group order `n`, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The generator's table, built on first use and shared by every key of every verifier.
fn g_table() -> Option<&'static FixedBaseTable> {
    static G: OnceLock<Option<FixedBaseTable>> = OnceLock::new();
    G.get_or_init(|| FixedBaseTable::build(&AffinePoint::GENERATOR, G_WINDOW).ok())
        .as_ref()
}

/// ECDSA P-256 verification with per-key fixed-base tables (see the module docs).
#[derive(Debug, Clone)]
pub struct KnownSignerVerifier {
    window: WindowBits,
    ledger: Arc<BudgetLedger>,
    name: String,
}

impl KnownSignerVerifier {
    /// A verifier building tables of `window` bits per key, within `budget` bytes in total.
    pub fn new(window: WindowBits, budget: TableBudget) -> Self {
        Self {
            window,
            ledger: BudgetLedger::new(budget),
            name: format!("known-signer-w{}", window.get()),
        }
    }

    /// The configured (widest) window width.
    pub fn window(&self) -> WindowBits {
        self.window
    }

    /// Bytes of per-key tables alive now, against the budget.
    pub fn table_bytes_in_use(&self) -> usize {
        self.ledger.used()
    }

    /// Builds the shared generator table now rather than at the first `prepare`.
    pub fn warm_up(&self) {
        let _ = g_table();
    }
}

impl Default for KnownSignerVerifier {
    fn default() -> Self {
        Self::new(WindowBits::default(), TableBudget::default())
    }
}

impl Verifier for KnownSignerVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, key: &p256::PublicKey) -> Arc<dyn PreparedKey> {
        let Some(g) = g_table() else {
            return P256Verifier.prepare(key);
        };
        let mut width = Some(self.window);
        while let Some(w) = width {
            if let Some(reservation) = self.ledger.try_reserve(w.table_bytes()) {
                return match FixedBaseTable::build(key.as_affine(), w) {
                    Ok(q) => Arc::new(KnownKey {
                        g,
                        q,
                        _reservation: reservation,
                    }),
                    // Unreachable for a valid `PublicKey`; stay correct regardless.
                    Err(_) => P256Verifier.prepare(key),
                };
            }
            width = w.narrower();
        }
        P256Verifier.prepare(key)
    }

    fn verify_batch(&self, jobs: &[VerifyJob<'_>], out: &mut [bool]) {
        for (jobs, out) in jobs.chunks(BATCH_CHUNK).zip(out.chunks_mut(BATCH_CHUNK)) {
            verify_chunk(jobs, out);
        }
    }
}

/// A public key with its fixed-base table.
#[derive(Debug)]
pub struct KnownKey {
    g: &'static FixedBaseTable,
    q: FixedBaseTable,
    _reservation: Reservation,
}

impl KnownKey {
    /// The window width this key's table was built with (may be narrower than configured when
    /// the budget was tight).
    pub fn window(&self) -> WindowBits {
        self.q.window()
    }

    /// The second half of verification, given `s⁻¹`.
    fn finish(&self, sig: &ParsedSig, s_inv: &Scalar) -> Result<(), BadSignature> {
        let u1: [u8; 32] = (sig.e * s_inv).to_bytes().into();
        let u2: [u8; 32] = (sig.r * s_inv).to_bytes().into();
        let mut acc = Jacobian::INFINITY;
        self.g
            .accumulate(&mut acc, &SignedDigits::recode(&u1, self.g.window()));
        self.q
            .accumulate(&mut acc, &SignedDigits::recode(&u2, self.q.window()));
        let (x, z2) = acc.x_and_z2().ok_or(BadSignature)?;
        // r < n < p, so r is a field element as it stands.
        let r_fe = field_element(&sig.r_bytes).ok_or(BadSignature)?;
        if r_fe.multiply(&z2) == x {
            return Ok(());
        }
        // x(R) ∈ [n, p) reduces to r too: x(R) = r + n, possible only when r < p - n.
        if sig.r_bytes < P_MINUS_N {
            let n_fe = field_element(&ORDER).ok_or(BadSignature)?;
            if r_fe.add(&n_fe).multiply(&z2) == x {
                return Ok(());
            }
        }
        Err(BadSignature)
    }
}

impl PreparedKey for KnownKey {
    fn verify_prehash(&self, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), BadSignature> {
        let sig = ParsedSig::parse(digest, sig)?;
        let s_inv = invert(&sig.s).ok_or(BadSignature)?;
        self.finish(&sig, &s_inv)
    }

    fn heap_bytes(&self) -> usize {
        self.q.heap_bytes()
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

fn field_element(be: &[u8; 32]) -> Option<FieldElement> {
    FieldElement::from_bytes(&FieldBytes::from(*be)).into()
}

/// Variable-time inversion mod `n` (binary extended Euclid): `s` is public.
fn invert(s: &Scalar) -> Option<Scalar> {
    inverse::invert_vartime(s)
}

/// A signature's scalars, range-checked as plain ECDSA requires: `r, s ∈ [1, n-1]`.
#[derive(Debug, Clone, Copy)]
struct ParsedSig {
    r: Scalar,
    s: Scalar,
    /// The digest reduced mod n.
    e: Scalar,
    r_bytes: [u8; 32],
}

impl ParsedSig {
    fn parse(digest: &[u8; 32], sig: &[u8; 64]) -> Result<Self, BadSignature> {
        let (rb, sb) = sig.split_at(32);
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(rb);
        let r = nonzero_scalar(rb)?;
        let s = nonzero_scalar(sb)?;
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*digest));
        Ok(Self { r, s, e, r_bytes })
    }
}

fn nonzero_scalar(be: &[u8]) -> Result<Scalar, BadSignature> {
    let mut arr = [0u8; 32];
    arr.copy_from_slice(be);
    let repr = FieldBytes::from(arr);
    let k: Option<Scalar> = Scalar::from_repr(repr).into();
    match k {
        Some(k) if !bool::from(k.is_zero()) => Ok(k),
        _ => Err(BadSignature),
    }
}

/// One chunk of a batch: parse, invert all `s` at once (Montgomery's trick), finish each.
fn verify_chunk(jobs: &[VerifyJob<'_>], out: &mut [bool]) {
    let mut items: [Option<(&KnownKey, ParsedSig)>; BATCH_CHUNK] = [None; BATCH_CHUNK];
    let mut prefix = [Scalar::ONE; BATCH_CHUNK];
    let mut product = Scalar::ONE;
    for (i, (job, o)) in jobs.iter().zip(out.iter_mut()).enumerate() {
        match job.key.as_any().and_then(|a| a.downcast_ref::<KnownKey>()) {
            Some(key) => match ParsedSig::parse(job.digest, job.signature) {
                Ok(sig) => {
                    prefix[i] = product;
                    product *= sig.s;
                    items[i] = Some((key, sig));
                }
                Err(_) => *o = false,
            },
            None => *o = job.key.verify_prehash(job.digest, job.signature).is_ok(),
        }
    }
    // A product of non-zero scalars mod the prime n is non-zero, so this always succeeds.
    let Some(mut inv) = invert(&product) else {
        for (job, o) in jobs.iter().zip(out.iter_mut()) {
            *o = job.key.verify_prehash(job.digest, job.signature).is_ok();
        }
        return;
    };
    for (i, o) in out.iter_mut().enumerate().take(jobs.len()).rev() {
        if let Some((key, sig)) = &items[i] {
            let s_inv = inv * prefix[i];
            inv *= sig.s;
            *o = key.finish(sig, &s_inv).is_ok();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::Signer;

    #[test]
    fn accepts_valid_and_refuses_tampered() {
        let signer = Signer::random();
        let v = KnownSignerVerifier::default();
        let key = v.prepare(&signer.public_key());
        let digest = [7u8; 32];
        let sig = signer.sign_prehash(&digest).unwrap();
        assert!(key.verify_prehash(&digest, &sig).is_ok());
        let mut bad = sig;
        bad[40] ^= 1;
        assert!(key.verify_prehash(&digest, &bad).is_err());
        assert!(key.verify_prehash(&[8u8; 32], &sig).is_err());
    }

    #[test]
    fn budget_narrows_windows_then_falls_back_and_is_returned() {
        let w8 = WindowBits::new(8).unwrap();
        let w7 = WindowBits::new(7).unwrap();
        // Room for one w=8 table plus one w=7 table, not two w=8 tables.
        let v = KnownSignerVerifier::new(w8, TableBudget(w8.table_bytes() + w7.table_bytes()));
        let signer = Signer::random();
        let digest = [1u8; 32];
        let sig = signer.sign_prehash(&digest).unwrap();
        let a = v.prepare(&signer.public_key());
        let b = v.prepare(&signer.public_key());
        let c = v.prepare(&signer.public_key());
        let window = |k: &Arc<dyn PreparedKey>| {
            k.as_any()
                .and_then(|a| a.downcast_ref::<KnownKey>())
                .map(KnownKey::window)
        };
        assert_eq!(window(&a), Some(w8));
        assert_eq!(window(&b), Some(w7));
        assert_eq!(window(&c), None, "beyond the budget: plain p256");
        for k in [&a, &b, &c] {
            assert!(k.verify_prehash(&digest, &sig).is_ok());
        }
        assert_eq!(v.table_bytes_in_use(), w8.table_bytes() + w7.table_bytes());
        drop(a);
        assert_eq!(v.table_bytes_in_use(), w7.table_bytes());
        let d = v.prepare(&signer.public_key());
        assert_eq!(window(&d), Some(w8));
    }

    #[test]
    fn batch_verdicts_equal_individual_verdicts() {
        let v = KnownSignerVerifier::default();
        let signers: Vec<Signer> = (0..3).map(|_| Signer::random()).collect();
        let keys: Vec<_> = signers.iter().map(|s| v.prepare(&s.public_key())).collect();
        let plain = P256Verifier.prepare(&signers[0].public_key());
        let mut digests = Vec::new();
        let mut sigs = Vec::new();
        for i in 0..150u8 {
            let d = [i; 32];
            let mut s = signers[usize::from(i) % 3].sign_prehash(&d).unwrap();
            match i % 5 {
                1 => s[5] ^= 0x10,       // bad r
                2 => s[32..].fill(0),    // s = 0
                3 => s[..32].fill(0xff), // r ≥ n
                _ => {}
            }
            digests.push(d);
            sigs.push(s);
        }
        let jobs: Vec<VerifyJob<'_>> = (0..150)
            .map(|i| VerifyJob {
                key: if i % 7 == 6 {
                    plain.as_ref()
                } else {
                    keys[i % 3].as_ref()
                },
                digest: &digests[i],
                signature: &sigs[i],
            })
            .collect();
        let mut out = vec![false; jobs.len()];
        v.verify_batch(&jobs, &mut out);
        let mut accepted = 0;
        for (j, o) in jobs.iter().zip(&out) {
            assert_eq!(*o, j.key.verify_prehash(j.digest, j.signature).is_ok());
            accepted += usize::from(*o);
        }
        assert!(accepted > 40, "most unmodified signatures verify");
    }
}
