//! Fixed-base tables: every multiple a signed-window scalar multiplication can need, in affine
//! form, so that `k·B` is a sum of table entries — additions only, no doublings.

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{AffinePoint, FieldElement};

use super::point::{Affine, Jacobian};
use super::window::{SignedDigits, WindowBits};

/// Window `i`, entry `j - 1` holds `j·2^(w·i)·B` for `j ∈ 1..=2^(w-1)`.
pub(crate) struct FixedBaseTable {
    window: WindowBits,
    entries: Vec<Affine>,
}

impl std::fmt::Debug for FixedBaseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBaseTable")
            .field("window", &self.window)
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// `P` in affine coordinates (one inversion), or `None` at infinity.
fn to_affine(p: &Jacobian) -> Option<Affine> {
    if p.infinity {
        return None;
    }
    let z_inv = Option::<FieldElement>::from(p.z.invert())?;
    let z_inv2 = z_inv.square();
    Some(Affine {
        x: p.x.multiply(&z_inv2),
        y: p.y.multiply(&z_inv2).multiply(&z_inv),
    })
}

/// A table entry came out as the point at infinity: impossible for a point of prime order
/// (`j·2^(w·i)` is never a multiple of `n`), so the base was not a valid public key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InvalidBase;

impl FixedBaseTable {
    /// Builds the table for a public point (an affine, non-identity point of the curve).
    ///
    /// Each window's multiples come from repeated mixed additions, the next window's base from
    /// `w` doublings and one inversion, and all entries are normalised to affine with one
    /// shared inversion (Montgomery's trick). About 2 ms at `w = 8`: call it off the hot path.
    pub(crate) fn build(base: &AffinePoint, window: WindowBits) -> Result<Self, InvalidBase> {
        let enc = base.to_encoded_point(false);
        let (Some(x), Some(y)) = (enc.x(), enc.y()) else {
            return Err(InvalidBase);
        };
        let mut b = Affine {
            x: Option::<FieldElement>::from(FieldElement::from_bytes(x)).ok_or(InvalidBase)?,
            y: Option::<FieldElement>::from(FieldElement::from_bytes(y)).ok_or(InvalidBase)?,
        };
        let per = window.entries_per_window();
        let total = window.windows() * per;
        let mut jac: Vec<Jacobian> = Vec::with_capacity(total);
        for i in 0..window.windows() {
            let mut acc = Jacobian::INFINITY;
            for _ in 0..per {
                acc.add_affine(&b.x, &b.y);
                jac.push(acc);
            }
            if i + 1 < window.windows() {
                // acc = 2^(w-1)·b; one more doubling gives 2^w·b, the next window's base.
                acc.double();
                b = to_affine(&acc).ok_or(InvalidBase)?;
            }
        }
        // Batched normalisation: invert the product of all Z once.
        let mut prefix = Vec::with_capacity(total);
        let mut product = FieldElement::ONE;
        for p in &jac {
            if p.infinity {
                return Err(InvalidBase);
            }
            prefix.push(product);
            product = product.multiply(&p.z);
        }
        let mut inv = Option::<FieldElement>::from(product.invert()).ok_or(InvalidBase)?;
        let mut entries = vec![
            Affine {
                x: FieldElement::ZERO,
                y: FieldElement::ZERO,
            };
            total
        ];
        for ((p, pre), e) in jac.iter().zip(&prefix).zip(entries.iter_mut()).rev() {
            let z_inv = inv.multiply(pre);
            inv = inv.multiply(&p.z);
            let z_inv2 = z_inv.square();
            e.x = p.x.multiply(&z_inv2);
            e.y = p.y.multiply(&z_inv2).multiply(&z_inv);
        }
        Ok(Self { window, entries })
    }

    pub(crate) fn window(&self) -> WindowBits {
        self.window
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Affine>()
    }

    /// `acc += k·B` for the recoded scalar `k` (recoded for this table's width).
    ///
    /// Software-pipelined: entry `i + 1` is loaded before addition `i` runs, so that when the
    /// table is not in cache (many keys loaded) the memory latency overlaps with arithmetic.
    #[inline]
    pub(crate) fn accumulate(&self, acc: &mut Jacobian, digits: &SignedDigits) {
        let per = self.window.entries_per_window();
        let mut pending: Option<(Affine, bool)> = None;
        for (i, &d) in digits.as_slice().iter().enumerate() {
            if d == 0 {
                continue;
            }
            let idx = i * per + usize::from(d.unsigned_abs()) - 1;
            // `recode` keeps |d| ≤ per and the digit count equal to the window count, so the
            // index is in range; `get` keeps a logic error from becoming a panic.
            let Some(&next) = self.entries.get(idx) else {
                continue;
            };
            if let Some((p, neg)) = pending.replace((next, d < 0)) {
                add_signed(acc, &p, neg);
            }
        }
        if let Some((p, neg)) = pending {
            add_signed(acc, &p, neg);
        }
    }
}

#[inline]
fn add_signed(acc: &mut Jacobian, p: &Affine, neg: bool) {
    if neg {
        acc.add_affine(&p.x, &p.y.neg());
    } else {
        acc.add_affine(&p.x, &p.y);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use p256::elliptic_curve::PrimeField;
    use p256::{ProjectivePoint, Scalar};

    fn x_of(p: &ProjectivePoint) -> FieldElement {
        let enc = p.to_affine().to_encoded_point(false);
        FieldElement::from_bytes(enc.x().unwrap()).unwrap()
    }

    #[test]
    fn table_multiplication_matches_p256() {
        let base = ProjectivePoint::GENERATOR * Scalar::from(0x1234_5678_9abcu64);
        let ks: Vec<Scalar> = vec![
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(0xdead_beefu64),
            Scalar::from_repr(
                [0x7fu8; 32].into(), // a large scalar below n
            )
            .unwrap(),
            -Scalar::from(12345u64),
        ];
        for w in [4u8, 5, 7, 8] {
            let wb = WindowBits::new(w).unwrap();
            let t = FixedBaseTable::build(&base.to_affine(), wb).unwrap();
            assert_eq!(t.heap_bytes(), wb.table_bytes());
            for k in &ks {
                let mut acc = Jacobian::INFINITY;
                let bytes: [u8; 32] = k.to_bytes().into();
                t.accumulate(&mut acc, &SignedDigits::recode(&bytes, wb));
                let (x, z2) = acc.x_and_z2().unwrap();
                let expect = x_of(&(base * k));
                assert_eq!(expect.multiply(&z2), x, "w = {w}");
            }
        }
    }
}
