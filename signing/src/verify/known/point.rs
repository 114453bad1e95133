//! Variable-time Jacobian point arithmetic over `p256::FieldElement`, just enough for a sum of
//! precomputed affine points.
//!
//! Verification handles public data only (public key, message digest, signature), so the
//! branches here (on zero digits, on the exceptional cases of the addition law) leak nothing
//! secret. Never use these routines with secret scalars or secret points.

use p256::FieldElement;

/// An affine point `(x, y)` known not to be the point at infinity (a table entry).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Affine {
    pub(crate) x: FieldElement,
    pub(crate) y: FieldElement,
}

/// A point in Jacobian coordinates: `(X : Y : Z)` stands for `(X / Z², Y / Z³)`.
///
/// The point at infinity is a flag rather than `Z = 0`, so the addition law can test it with
/// one branch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian {
    pub(crate) x: FieldElement,
    pub(crate) y: FieldElement,
    pub(crate) z: FieldElement,
    pub(crate) infinity: bool,
}

impl Jacobian {
    pub(crate) const INFINITY: Self = Self {
        x: FieldElement::ZERO,
        y: FieldElement::ONE,
        z: FieldElement::ZERO,
        infinity: true,
    };

    /// `self += (x2, y2)`: mixed addition, "madd-2004-hmv" (8M + 3S), with the exceptional
    /// cases (adding a point to itself or to its negation) handled by branches.
    #[inline]
    pub(crate) fn add_affine(&mut self, x2: &FieldElement, y2: &FieldElement) {
        if self.infinity {
            self.x = *x2;
            self.y = *y2;
            self.z = FieldElement::ONE;
            self.infinity = false;
            return;
        }
        let z1z1 = self.z.square();
        let u2 = x2.multiply(&z1z1);
        let s2 = y2.multiply(&self.z).multiply(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if bool::from(h.is_zero()) {
            if bool::from(r.is_zero()) {
                // Same point: the chord degenerates into the tangent.
                self.double();
            } else {
                // P + (-P).
                *self = Self::INFINITY;
            }
            return;
        }
        let hh = h.square();
        let hhh = h.multiply(&hh);
        let v = self.x.multiply(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.multiply(&v.sub(&x3)).sub(&self.y.multiply(&hhh));
        let z3 = self.z.multiply(&h);
        self.x = x3;
        self.y = y3;
        self.z = z3;
    }

    /// `self = 2·self` for `a = -3`, "dbl-2001-b" (3M + 5S). P-256 has prime order, so no
    /// finite point has `y = 0`; the check is there for robustness only.
    pub(crate) fn double(&mut self) {
        if self.infinity || bool::from(self.y.is_zero()) {
            *self = Self::INFINITY;
            return;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.multiply(&gamma);
        let t = self.x.sub(&delta).multiply(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha.multiply(&beta4.sub(&x3)).sub(&gamma2_8);
        self.x = x3;
        self.y = y3;
        self.z = z3;
    }

    /// The affine x-coordinate times `Z²`, i.e. `X`; and `Z²`, so that a caller can test
    /// `x(P) = c` as `X = c·Z²` without inverting `Z`.
    pub(crate) fn x_and_z2(&self) -> Option<(FieldElement, FieldElement)> {
        if self.infinity {
            None
        } else {
            Some((self.x, self.z.square()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::{AffinePoint, ProjectivePoint, Scalar};

    fn affine_of(p: &ProjectivePoint) -> Affine {
        let enc = p.to_affine().to_encoded_point(false);
        Affine {
            x: FieldElement::from_bytes(enc.x().unwrap()).unwrap(),
            y: FieldElement::from_bytes(enc.y().unwrap()).unwrap(),
        }
    }

    fn to_projective(j: &Jacobian) -> ProjectivePoint {
        if j.infinity {
            return ProjectivePoint::IDENTITY;
        }
        let zi = j.z.invert().unwrap();
        let zi2 = zi.square();
        let x = j.x.multiply(&zi2);
        let y = j.y.multiply(&zi2).multiply(&zi);
        let enc = p256::EncodedPoint::from_affine_coordinates(&x.to_bytes(), &y.to_bytes(), false);
        let a = AffinePoint::try_from(&enc).unwrap();
        ProjectivePoint::from(a)
    }

    #[test]
    fn additions_match_p256_including_exceptional_cases() {
        let g = ProjectivePoint::GENERATOR;
        let pts: Vec<ProjectivePoint> = (1u64..=6).map(|k| g * Scalar::from(k)).collect();
        // Sum of several points, then P + P (doubling) and P + (-P) (infinity).
        let mut acc = Jacobian::INFINITY;
        let mut expect = ProjectivePoint::IDENTITY;
        for p in &pts {
            let a = affine_of(p);
            acc.add_affine(&a.x, &a.y);
            expect += p;
            assert_eq!(to_projective(&acc), expect);
        }
        // acc = 21·G; add 21·G → doubling branch.
        let same = affine_of(&expect);
        acc.add_affine(&same.x, &same.y);
        expect = expect + expect;
        assert_eq!(to_projective(&acc), expect);
        // acc = 42·G; add -42·G → infinity branch.
        let neg = affine_of(&(-expect));
        acc.add_affine(&neg.x, &neg.y);
        assert!(acc.infinity);
        assert!(acc.x_and_z2().is_none());
        // Infinity + P = P.
        let p = affine_of(&g);
        acc.add_affine(&p.x, &p.y);
        assert_eq!(to_projective(&acc), g);
    }
}
