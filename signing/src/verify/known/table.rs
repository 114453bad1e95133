//! Fixed-base tables: the multiples a signed-window scalar multiplication needs, in affine form,
//! so that `k·B` is a sum of table entries — with no doublings when every window is stored, and
//! `(stride - 1)·bits` of them when only every `stride`-th window is (a comb, see
//! [`TableShape`]).

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{AffinePoint, FieldElement};

use super::point::{Affine, Jacobian};
use super::window::{SignedDigits, TableShape, MAX_WINDOWS};

/// Stored window `k`, entry `j - 1` holds `j·2^(bits·stride·k)·B` for `j ∈ 1..=2^(bits-1)`.
pub(crate) struct FixedBaseTable {
    shape: TableShape,
    entries: Vec<Affine>,
}

impl std::fmt::Debug for FixedBaseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBaseTable")
            .field("shape", &self.shape)
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

/// `(x, y)` of an affine point as field elements.
pub(crate) fn affine_coordinates(p: &AffinePoint) -> Result<Affine, InvalidBase> {
    let enc = p.to_encoded_point(false);
    let (Some(x), Some(y)) = (enc.x(), enc.y()) else {
        return Err(InvalidBase);
    };
    Ok(Affine {
        x: Option::<FieldElement>::from(FieldElement::from_bytes(x)).ok_or(InvalidBase)?,
        y: Option::<FieldElement>::from(FieldElement::from_bytes(y)).ok_or(InvalidBase)?,
    })
}

impl FixedBaseTable {
    /// Builds the table for a public point (an affine, non-identity point of the curve).
    ///
    /// Each stored window's multiples come from repeated mixed additions, the next stored
    /// window's base from `bits·stride` doublings and one inversion, and all entries are
    /// normalised to affine with one shared inversion (Montgomery's trick). About 2 ms for a
    /// full `w = 8` table, far less for combs: call it off the hot path.
    pub(crate) fn build(base: &AffinePoint, shape: TableShape) -> Result<Self, InvalidBase> {
        let mut b = affine_coordinates(base)?;
        let per = shape.entries_per_window();
        let stored = shape.stored_windows();
        let total = stored * per;
        let mut jac: Vec<Jacobian> = Vec::with_capacity(total);
        for k in 0..stored {
            let mut acc = Jacobian::INFINITY;
            for _ in 0..per {
                acc.add_affine(&b.x, &b.y);
                jac.push(acc);
            }
            if k + 1 < stored {
                // acc = 2^(bits-1)·b; doubling it 1 + (stride-1)·bits times gives
                // 2^(bits·stride)·b, the next stored window's base.
                for _ in 0..=shape.doublings() {
                    acc.double();
                }
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
        Ok(Self { shape, entries })
    }

    pub(crate) fn shape(&self) -> TableShape {
        self.shape
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Affine>()
    }

    /// `acc += k·B` for the recoded scalar `k` (recoded for this table's width).
    ///
    /// With a comb (`stride > 1`) `acc` is doubled between passes, so it must start at
    /// infinity or hold only what should be scaled along (callers accumulate comb tables
    /// first).
    ///
    /// Each pass first copies the entries it needs into a buffer and only then adds them: the
    /// loads are independent, so when the table is not in cache (thousands of keys loaded)
    /// their misses overlap instead of stalling one addition after another.
    #[inline]
    pub(crate) fn accumulate(&self, acc: &mut Jacobian, digits: &SignedDigits) {
        let per = self.shape.entries_per_window();
        let stride = usize::from(self.shape.stride());
        let digits = digits.as_slice();
        let mut buf = [(
            Affine {
                x: FieldElement::ZERO,
                y: FieldElement::ZERO,
            },
            false,
        ); MAX_WINDOWS];
        for pass in (0..stride).rev() {
            if pass + 1 < stride {
                for _ in 0..self.shape.bits() {
                    acc.double();
                }
            }
            let mut n = 0;
            for (k, &d) in digits.iter().skip(pass).step_by(stride).enumerate() {
                if d == 0 {
                    continue;
                }
                let idx = k * per + usize::from(d.unsigned_abs()) - 1;
                // `recode` keeps |d| ≤ per and the digit count equal to the window count, so
                // the index is in range; `get` keeps a logic error from becoming a panic.
                if let (Some(&e), Some(slot)) = (self.entries.get(idx), buf.get_mut(n)) {
                    *slot = (e, d < 0);
                    n += 1;
                }
            }
            for (p, neg) in &buf[..n] {
                add_signed(acc, p, *neg);
            }
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
        let mut shapes: Vec<TableShape> = (4u8..=8)
            .flat_map(|b| (1..=8).map(move |m| TableShape::new(b, m).unwrap()))
            .collect();
        shapes.extend([10, 12, 14].map(TableShape::wide));
        for wb in shapes {
            let t = FixedBaseTable::build(&base.to_affine(), wb).unwrap();
            assert_eq!(t.heap_bytes(), wb.table_bytes());
            for k in &ks {
                let mut acc = Jacobian::INFINITY;
                let bytes: [u8; 32] = k.to_bytes().into();
                t.accumulate(&mut acc, &SignedDigits::recode(&bytes, wb));
                let (x, z2) = acc.x_and_z2().unwrap();
                let expect = x_of(&(base * k));
                assert_eq!(expect.multiply(&z2), x, "shape {wb}");
            }
        }
    }
}
