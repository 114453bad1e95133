//! The known-signer verifier: ECDSA P-256 verification with precomputed tables per public key.
//!
//! A router verifies millions of signatures from a few hundred to a few thousand signers. Plain
//! verification computes `u1·G + u2·Q` with about 256 doublings and ~100 additions per
//! signature. Here a fixed-base table of the generator `G`'s multiples is built once per process
//! (shared by every key, [`G_BITS`]-bit windows), and a table of `Q`'s multiples when a key is
//! prepared. `u1·G + u2·Q` then becomes a sum of precomputed affine points: additions only for
//! a full table, plus a few doublings for a comb ([`TableShape`]). The x-coordinate of the
//! result is compared with `r` projectively (`X = r·Z²`, and `X = (r+n)·Z²` when `r + n < p`),
//! so no field inversion is needed either.
//!
//! # Variable time
//!
//! The arithmetic here branches on the scalars' digits and on exceptional cases of the addition
//! law. That is deliberate and safe: verification handles public data only (public key, digest,
//! signature). Do not reuse these routines with secrets (the load generator's signer does, and
//! says why that is acceptable there: [`crate::sign_fast`]).
//!
//! # Memory: no cliff as keys grow
//!
//! A [`TableBudget`] (256 MiB by default) bounds the bytes of all per-key tables of one verifier
//! (and its clones); the generator's table (about 2.9 MB at 12 bits) is shared and not counted.
//! Tables come in shapes ([`TableShape::frontier`]): from a full `w = 8` table (270,336 bytes, 33
//! additions) down to a `w4/m8` comb (4,608 bytes, 65 additions and 28 doublings). Keys get
//! them in two steps:
//!
//! 1. [`Verifier::prepare`] gives every key the smallest shape (a *base* table, 4,608 bytes at
//!    the default width): cheap to build, and within budget for some 58,000 keys.
//! 2. After [`DEFAULT_PROMOTE_AFTER`] verifications under a key, the verification that reaches
//!    that count builds it a wider table (*promotion*): the fastest shape within an equal share
//!    of the budget left among the keys still waiting for theirs. Keys that are used get tables
//!    first (hot keys), keys never used keep their base table, and as more keys come the share
//!    shrinks step by step along the frontier. What a key leaves of its share goes to the keys
//!    after it, so with 1,024 keys evenly used most get full `w = 8` tables and the rest
//!    `w = 7`; 4,096 get `w7/m2`–`w7/m3` combs, 16,384 `w5/m4`–`w5/m5` combs (BENCHMARKS.md).
//!
//! Promotion runs once per key (1–2 ms, on the verifying thread); a key that does not find a
//! shape better than its base in its share keeps the base. Dropping a prepared key gives its
//! bytes back. When even a base table does not fit, that key falls back to plain `p256`
//! verification (correct, just slower). [`KnownSignerVerifier::with_shape`] pins one shape for
//! every key instead (tests and benches).
//!
//! # Batches
//!
//! [`Verifier::verify_batch`] shares one scalar inversion (`s⁻¹`) across up to
//! [`BATCH_CHUNK`] signatures with Montgomery's trick. Each verdict equals the one
//! [`PreparedKey::verify_prehash`] gives for that job alone.

mod budget;
pub(crate) mod inverse;
pub(crate) mod point;
pub(crate) mod table;
mod window;

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use p256::elliptic_curve::bigint::U256;
use p256::elliptic_curve::ff::Field;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::PrimeField;
use p256::{AffinePoint, FieldBytes, FieldElement, Scalar};

pub use budget::TableBudget;
pub use window::{TableShape, TableShapeError, WindowBits, WindowBitsError};

use self::budget::{BudgetLedger, Reservation};
use self::point::Jacobian;
use self::table::FixedBaseTable;
pub(crate) use self::window::SignedDigits;
use super::{BadSignature, P256Verifier, PreparedKey, Verifier, VerifyJob};

/// Window width of the shared generator table: 22 additions for `u1·G` (33 at 8 bits) for a
/// 2.9 MB table built once per process (about 20 ms). Measured in BENCHMARKS.md.
pub const G_BITS: u8 = 12;

/// Verifications under a key before it is promoted to a wider table (see the module docs).
pub const DEFAULT_PROMOTE_AFTER: u32 = 4;

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

/// The generator's table, built on first use and shared by every key of every verifier (and by
/// the fast signer).
pub(crate) fn g_table() -> Option<&'static FixedBaseTable> {
    static G: OnceLock<Option<FixedBaseTable>> = OnceLock::new();
    G.get_or_init(|| FixedBaseTable::build(&AffinePoint::GENERATOR, TableShape::wide(G_BITS)).ok())
        .as_ref()
}

/// How keys get their tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// A base table at `prepare`, a wider one after `promote_after` uses (module docs).
    Adaptive {
        widest: WindowBits,
        promote_after: u32,
    },
    /// This shape for every key, no promotion.
    Fixed(TableShape),
}

/// ECDSA P-256 verification with per-key fixed-base tables (see the module docs).
#[derive(Debug, Clone)]
pub struct KnownSignerVerifier {
    policy: Policy,
    ledger: Arc<BudgetLedger>,
    name: String,
}

impl KnownSignerVerifier {
    /// A verifier with tables up to `widest` bits per key, within `budget` bytes in total,
    /// shapes chosen as keys are prepared and used (module docs).
    pub fn new(widest: WindowBits, budget: TableBudget) -> Self {
        Self {
            policy: Policy::Adaptive {
                widest,
                promote_after: DEFAULT_PROMOTE_AFTER,
            },
            ledger: BudgetLedger::new(budget),
            name: format!("known-signer-w{}", widest.get()),
        }
    }

    /// A verifier giving every key a table of exactly `shape` while the budget lasts (plain
    /// `p256` after), never promoting: for tests and benches of one shape.
    pub fn with_shape(shape: TableShape, budget: TableBudget) -> Self {
        Self {
            policy: Policy::Fixed(shape),
            ledger: BudgetLedger::new(budget),
            name: format!("known-signer-{shape}"),
        }
    }

    /// Promote a key after `uses` verifications (at least 1) instead of
    /// [`DEFAULT_PROMOTE_AFTER`]. No effect on a [`with_shape`](Self::with_shape) verifier.
    pub fn promote_after(mut self, uses: u32) -> Self {
        if let Policy::Adaptive { promote_after, .. } = &mut self.policy {
            *promote_after = uses.max(1);
        }
        self
    }

    /// The widest window width a key's table may have.
    pub fn window(&self) -> WindowBits {
        match self.policy {
            Policy::Adaptive { widest, .. } => widest,
            Policy::Fixed(shape) => WindowBits::new(shape.bits()).unwrap_or(WindowBits::MAX),
        }
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
        let (shape, promotion) = match self.policy {
            Policy::Fixed(shape) => (shape, None),
            Policy::Adaptive {
                widest,
                promote_after,
            } => {
                let frontier = TableShape::frontier(widest);
                let Some(&base) = frontier.first() else {
                    return P256Verifier.prepare(key);
                };
                (
                    base,
                    Some(Promotion {
                        frontier,
                        after: promote_after,
                        uses: AtomicU32::new(0),
                        settled: AtomicBool::new(false),
                    }),
                )
            }
        };
        let Some(reservation) = self.ledger.try_reserve(shape.table_bytes()) else {
            return P256Verifier.prepare(key);
        };
        match FixedBaseTable::build(key.as_affine(), shape) {
            Ok(table) => {
                if promotion.is_some() {
                    self.ledger.wait();
                }
                Arc::new(KnownKey {
                    g,
                    point: *key.as_affine(),
                    base: Tier {
                        table,
                        _reservation: reservation,
                    },
                    promoted: OnceLock::new(),
                    promotion,
                    ledger: Arc::clone(&self.ledger),
                })
            }
            // Unreachable for a valid `PublicKey`; stay correct regardless.
            Err(_) => P256Verifier.prepare(key),
        }
    }

    fn verify_batch(&self, jobs: &[VerifyJob<'_>], out: &mut [bool]) {
        for (jobs, out) in jobs.chunks(BATCH_CHUNK).zip(out.chunks_mut(BATCH_CHUNK)) {
            verify_chunk(jobs, out);
        }
    }
}

/// A table and the budget bytes it holds.
#[derive(Debug)]
struct Tier {
    table: FixedBaseTable,
    _reservation: Reservation,
}

/// A key's way to a wider table.
#[derive(Debug)]
struct Promotion {
    frontier: Vec<TableShape>,
    after: u32,
    uses: AtomicU32,
    /// Promoted, or decided not to be: no more counting.
    settled: AtomicBool,
}

/// A public key with its fixed-base table(s).
#[derive(Debug)]
pub struct KnownKey {
    g: &'static FixedBaseTable,
    point: AffinePoint,
    base: Tier,
    /// Set once, by the verification that reaches the promotion count. A `OnceLock` rather
    /// than a lock: after it is set every reader takes one uncontended atomic load.
    promoted: OnceLock<Tier>,
    promotion: Option<Promotion>,
    ledger: Arc<BudgetLedger>,
}

impl KnownKey {
    /// The shape of the table verifications use now (it widens once, on promotion).
    pub fn shape(&self) -> TableShape {
        self.table().shape()
    }

    /// Heap bytes of this key's tables (base and promoted).
    fn bytes(&self) -> usize {
        self.base.table.heap_bytes() + self.promoted.get().map_or(0, |t| t.table.heap_bytes())
    }

    #[inline]
    fn table(&self) -> &FixedBaseTable {
        self.promoted.get().map_or(&self.base.table, |t| &t.table)
    }

    /// Counts a use; the one that reaches the count promotes the key.
    #[inline]
    fn count_use(&self) {
        let Some(p) = &self.promotion else {
            return;
        };
        if p.settled.load(Ordering::Relaxed) {
            return;
        }
        if p.uses.fetch_add(1, Ordering::Relaxed).saturating_add(1) == p.after {
            self.promote(p);
        }
    }

    /// Builds the fastest table that fits this key's share of the budget left, if it beats the
    /// base table, and settles either way.
    #[cold]
    fn promote(&self, p: &Promotion) {
        let share = self.ledger.free() / self.ledger.waiting().max(1);
        let base = self.base.table.shape();
        let best = p
            .frontier
            .iter()
            .rev()
            .find(|s| s.table_bytes() <= share)
            .copied()
            .filter(|s| s.cost() < base.cost());
        if let Some(shape) = best {
            if let Some(reservation) = self.ledger.try_reserve(shape.table_bytes()) {
                if let Ok(table) = FixedBaseTable::build(&self.point, shape) {
                    let _ = self.promoted.set(Tier {
                        table,
                        _reservation: reservation,
                    });
                }
            }
        }
        if !p.settled.swap(true, Ordering::AcqRel) {
            self.ledger.stop_waiting();
        }
    }

    /// The second half of verification, given `s⁻¹`.
    fn finish(&self, sig: &ParsedSig, s_inv: &Scalar) -> Result<(), BadSignature> {
        let u1: [u8; 32] = (sig.e * s_inv).to_bytes().into();
        let u2: [u8; 32] = (sig.r * s_inv).to_bytes().into();
        let q = self.table();
        let mut acc = Jacobian::INFINITY;
        // The key's table first: a comb doubles what has been accumulated so far.
        q.accumulate(&mut acc, &SignedDigits::recode(&u2, q.shape()));
        self.g
            .accumulate(&mut acc, &SignedDigits::recode(&u1, self.g.shape()));
        self.count_use();
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

impl Drop for KnownKey {
    fn drop(&mut self) {
        if let Some(p) = &self.promotion {
            if !p.settled.swap(true, Ordering::AcqRel) {
                self.ledger.stop_waiting();
            }
        }
    }
}

impl PreparedKey for KnownKey {
    fn verify_prehash(&self, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), BadSignature> {
        let sig = ParsedSig::parse(digest, sig)?;
        let s_inv = invert(&sig.s).ok_or(BadSignature)?;
        self.finish(&sig, &s_inv)
    }

    fn heap_bytes(&self) -> usize {
        self.bytes()
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

fn field_element(be: &[u8; 32]) -> Option<FieldElement> {
    FieldElement::from_bytes(&FieldBytes::from(*be)).into()
}

/// Variable-time inversion mod `n` (binary extended Euclid): `s` is public.
pub(crate) fn invert(s: &Scalar) -> Option<Scalar> {
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

    fn shape_of(k: &Arc<dyn PreparedKey>) -> Option<TableShape> {
        k.as_any()
            .and_then(|a| a.downcast_ref::<KnownKey>())
            .map(KnownKey::shape)
    }

    #[test]
    fn fixed_shape_falls_back_beyond_the_budget_and_bytes_are_returned() {
        let shape = TableShape::new(6, 2).unwrap();
        let v = KnownSignerVerifier::with_shape(shape, TableBudget(2 * shape.table_bytes()));
        let signer = Signer::random();
        let digest = [1u8; 32];
        let sig = signer.sign_prehash(&digest).unwrap();
        let a = v.prepare(&signer.public_key());
        let b = v.prepare(&signer.public_key());
        let c = v.prepare(&signer.public_key());
        assert_eq!(shape_of(&a), Some(shape));
        assert_eq!(shape_of(&b), Some(shape));
        assert_eq!(shape_of(&c), None, "beyond the budget: plain p256");
        for k in [&a, &b, &c] {
            for _ in 0..8 {
                assert!(k.verify_prehash(&digest, &sig).is_ok());
            }
        }
        assert_eq!(shape_of(&a), Some(shape), "a fixed shape is never promoted");
        assert_eq!(v.table_bytes_in_use(), 2 * shape.table_bytes());
        drop(a);
        assert_eq!(v.table_bytes_in_use(), shape.table_bytes());
        let d = v.prepare(&signer.public_key());
        assert_eq!(shape_of(&d), Some(shape));
    }

    #[test]
    fn keys_are_promoted_after_use_within_an_even_share_of_the_budget() {
        let widest = WindowBits::MAX;
        let frontier = TableShape::frontier(widest);
        let base = frontier[0];
        // Room for 4 base tables and 4 full w7 tables, not for 4 full w8 tables.
        let w7 = TableShape::full(WindowBits::new(7).unwrap());
        let budget = 4 * base.table_bytes() + 4 * w7.table_bytes() + 1000;
        let v = KnownSignerVerifier::new(widest, TableBudget(budget)).promote_after(3);
        let signers: Vec<Signer> = (0..4).map(|_| Signer::random()).collect();
        let keys: Vec<_> = signers.iter().map(|s| v.prepare(&s.public_key())).collect();
        let digest = [9u8; 32];
        for (k, s) in keys.iter().zip(&signers) {
            assert_eq!(shape_of(k), Some(base));
            let sig = s.sign_prehash(&digest).unwrap();
            for i in 0..3 {
                assert_eq!(shape_of(k), Some(base), "promoted after 3 uses, not {i}");
                assert!(k.verify_prehash(&digest, &sig).is_ok());
            }
            // The fastest shape within an even share: a full w7 table or a comb as good.
            let got = shape_of(k).unwrap();
            assert!(got.table_bytes() <= w7.table_bytes() + 1000, "{got}");
            assert!(got.cost() <= w7.cost() + 200, "{got}");
            assert!(k.verify_prehash(&digest, &sig).is_ok());
            let mut bad = sig;
            bad[3] ^= 4;
            assert!(k.verify_prehash(&digest, &bad).is_err());
        }
        assert!(v.table_bytes_in_use() <= budget);
        drop(keys);
        assert_eq!(v.table_bytes_in_use(), 0);
    }

    #[test]
    fn no_budget_means_plain_p256() {
        let v = KnownSignerVerifier::new(WindowBits::MAX, TableBudget(0));
        let signer = Signer::random();
        let k = v.prepare(&signer.public_key());
        assert_eq!(shape_of(&k), None);
        let digest = [3u8; 32];
        assert!(k
            .verify_prehash(&digest, &signer.sign_prehash(&digest).unwrap())
            .is_ok());
    }

    #[test]
    fn frontier_shrinks_tables_and_raises_costs_monotonically() {
        let f = TableShape::frontier(WindowBits::MAX);
        assert_eq!(f.first().copied(), Some(TableShape::new(4, 8).unwrap()));
        assert_eq!(f.last().copied(), Some(TableShape::full(WindowBits::MAX)));
        for pair in f.windows(2) {
            assert!(pair[0].table_bytes() < pair[1].table_bytes());
            assert!(pair[0].cost() > pair[1].cost());
        }
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
