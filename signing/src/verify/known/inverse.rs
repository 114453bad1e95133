//! Variable-time inversion modulo the group order `n` (and the field prime `p`): binary extended
//! Euclid on plain 64-bit limbs. `s` is public, so the data-dependent loop is fine here; it
//! costs a few microseconds against tens for the constant-time Fermat exponentiation `p256` uses.
//! (The fast signer also inverts its nonce and `Z` with it: see `sign_fast` on why variable time
//! is acceptable there.)

use p256::elliptic_curve::PrimeField;
use p256::{FieldBytes, FieldElement, Scalar};

type Limbs = [u64; 4];

/// `n`, little-endian limbs.
const N: Limbs = [
    0xf3b9_cac2_fc63_2551,
    0xbce6_faad_a717_9e84,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_0000_0000,
];

fn to_limbs(s: &Scalar) -> Limbs {
    be_to_limbs(&s.to_bytes().into())
}

fn be_to_limbs(be: &[u8; 32]) -> Limbs {
    let mut l = [0u64; 4];
    for (i, limb) in l.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&be[24 - 8 * i..32 - 8 * i]);
        *limb = u64::from_be_bytes(b);
    }
    l
}

fn limbs_to_be(l: &Limbs) -> [u8; 32] {
    let mut be = [0u8; 32];
    for (i, limb) in l.iter().enumerate() {
        be[24 - 8 * i..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
    }
    be
}

fn from_limbs(l: &Limbs) -> Option<Scalar> {
    Scalar::from_repr(FieldBytes::from(limbs_to_be(l))).into()
}

fn is_zero(a: &Limbs) -> bool {
    a.iter().all(|&x| x == 0)
}

fn is_one(a: &Limbs) -> bool {
    a[0] == 1 && a[1] == 0 && a[2] == 0 && a[3] == 0
}

fn geq(a: &Limbs, b: &Limbs) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

/// `a -= b`, returning the borrow.
fn sub_assign(a: &mut Limbs, b: &Limbs) -> bool {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        *x = d2;
        borrow = b1 | b2;
    }
    borrow
}

/// `a += b`, returning the carry.
fn add_assign(a: &mut Limbs, b: &Limbs) -> bool {
    let mut carry = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (s1, c1) = x.overflowing_add(y);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        *x = s2;
        carry = c1 | c2;
    }
    carry
}

/// `a >>= k` for `1 ≤ k ≤ 63`.
#[inline]
fn shr(a: &mut Limbs, k: u32) {
    for i in 0..3 {
        a[i] = (a[i] >> k) | (a[i + 1] << (64 - k));
    }
    a[3] >>= k;
}

/// `p`, little-endian limbs.
const P: Limbs = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0x0000_0000_0000_0000,
    0xffff_ffff_0000_0001,
];

/// An odd 256-bit prime modulus with `-m⁻¹ mod 2⁶⁴`, for Montgomery-style division by powers
/// of two.
struct Modulus {
    m: Limbs,
    m_prime: u64,
}

const fn modulus(m: Limbs) -> Modulus {
    let mut inv = 1u64;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(m[0].wrapping_mul(inv)));
        i += 1;
    }
    Modulus {
        m,
        m_prime: inv.wrapping_neg(),
    }
}

const MOD_N: Modulus = modulus(N);
const MOD_P: Modulus = modulus(P);

/// `x = x / 2^k mod m` for `x < m`, `1 ≤ k ≤ 63`: add the multiple `t·m` that clears the low
/// `k` bits (`t = x·(-m⁻¹) mod 2^k`), shift, and subtract `m` if needed.
#[inline]
fn div_pow2_mod(x: &mut Limbs, k: u32, md: &Modulus) {
    let m = x[0].wrapping_mul(md.m_prime) & ((1u64 << k) - 1);
    let mut carry = 0u128;
    let mut t = [0u64; 5];
    for i in 0..4 {
        let acc = u128::from(x[i]) + u128::from(m) * u128::from(md.m[i]) + carry;
        t[i] = acc as u64;
        carry = acc >> 64;
    }
    t[4] = carry as u64;
    for i in 0..4 {
        x[i] = (t[i] >> k) | (t[i + 1] << (64 - k));
    }
    let top = t[4] >> k;
    if top != 0 || geq(x, &md.m) {
        sub_assign(x, &md.m);
    }
}

/// `x = x - y mod m` for `x, y < m`.
#[inline]
fn sub_mod(x: &mut Limbs, y: &Limbs, md: &Modulus) {
    if sub_assign(x, y) {
        add_assign(x, &md.m);
    }
}

/// Makes `u` odd, dividing `x` by the same power of two mod `m`.
#[inline]
fn strip_twos(u: &mut Limbs, x: &mut Limbs, md: &Modulus) {
    while u[0] & 1 == 0 {
        let k = if u[0] == 0 { 63 } else { u[0].trailing_zeros() };
        shr(u, k);
        div_pow2_mod(x, k, md);
    }
}

/// `s⁻¹ mod n`, or `None` for `s = 0`.
pub(crate) fn invert_vartime(s: &Scalar) -> Option<Scalar> {
    from_limbs(&invert_limbs(to_limbs(s), &MOD_N)?)
}

/// `a⁻¹ mod p`, or `None` for `a = 0`, in variable time.
pub(crate) fn invert_field_vartime(a: &FieldElement) -> Option<FieldElement> {
    let be: [u8; 32] = a.to_bytes().into();
    let inv = invert_limbs(be_to_limbs(&be), &MOD_P)?;
    FieldElement::from_bytes(&FieldBytes::from(limbs_to_be(&inv))).into()
}

/// `u⁻¹ mod m` for `0 < u < m`.
fn invert_limbs(mut u: Limbs, md: &Modulus) -> Option<Limbs> {
    if is_zero(&u) {
        return None;
    }
    let mut v = md.m;
    // Invariants: x1·s ≡ u and x2·s ≡ v (mod n).
    let mut x1: Limbs = [1, 0, 0, 0];
    let mut x2: Limbs = [0; 4];
    loop {
        if is_one(&u) {
            return Some(x1);
        }
        if is_one(&v) {
            return Some(x2);
        }
        // m is prime and 0 < u < m, so gcd(u, v) = 1 and neither reaches zero; the checks keep
        // a logic error from looping forever.
        if is_zero(&u) || is_zero(&v) {
            return None;
        }
        strip_twos(&mut u, &mut x1, md);
        strip_twos(&mut v, &mut x2, md);
        if geq(&u, &v) {
            sub_assign(&mut u, &v);
            sub_mod(&mut x1, &x2, md);
        } else {
            sub_assign(&mut v, &u);
            sub_mod(&mut x2, &x1, md);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// 32 bytes from a xorshift generator.
    fn random_be(seed: &mut u64) -> [u8; 32] {
        let mut be = [0u8; 32];
        for b in be.iter_mut() {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *b = *seed as u8;
        }
        be
    }

    #[test]
    fn inverts_like_fermat() {
        let mut seed = 0x0123_4567_89ab_cdefu64;
        let mut cases = vec![
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(2u64),
            -Scalar::from(2u64),
        ];
        for _ in 0..500 {
            let be = random_be(&mut seed);
            if let Some(s) = Option::<Scalar>::from(Scalar::from_repr(be.into())) {
                cases.push(s);
            }
        }
        for s in cases {
            let inv = invert_vartime(&s).unwrap();
            assert_eq!(inv, s.invert().unwrap());
            assert_eq!(inv * s, Scalar::ONE);
        }
        assert!(invert_vartime(&Scalar::ZERO).is_none());
    }

    #[test]
    fn field_inversion_matches_p256() {
        let mut seed = 0x0fed_cba9_8765_4321u64;
        let mut cases = vec![FieldElement::ONE, -FieldElement::ONE];
        for _ in 0..500 {
            let be = random_be(&mut seed);
            if let Some(a) = Option::<FieldElement>::from(FieldElement::from_bytes(&be.into())) {
                cases.push(a);
            }
        }
        for a in cases {
            assert_eq!(invert_field_vartime(&a).unwrap(), a.invert().unwrap());
        }
        assert!(invert_field_vartime(&FieldElement::ZERO).is_none());
    }
}
