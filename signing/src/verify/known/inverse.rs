//! Variable-time inversion modulo the group order `n`: binary extended Euclid on plain 64-bit
//! limbs. `s` is public, so the data-dependent loop is fine here; it costs a few microseconds
//! against tens for the constant-time Fermat exponentiation `p256` uses.

use p256::elliptic_curve::PrimeField;
use p256::{FieldBytes, Scalar};

type Limbs = [u64; 4];

/// `n`, little-endian limbs.
const N: Limbs = [
    0xf3b9_cac2_fc63_2551,
    0xbce6_faad_a717_9e84,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_0000_0000,
];

fn to_limbs(s: &Scalar) -> Limbs {
    let be: [u8; 32] = s.to_bytes().into();
    let mut l = [0u64; 4];
    for (i, limb) in l.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&be[24 - 8 * i..32 - 8 * i]);
        *limb = u64::from_be_bytes(b);
    }
    l
}

fn from_limbs(l: &Limbs) -> Option<Scalar> {
    let mut be = [0u8; 32];
    for (i, limb) in l.iter().enumerate() {
        be[24 - 8 * i..32 - 8 * i].copy_from_slice(&limb.to_be_bytes());
    }
    Scalar::from_repr(FieldBytes::from(be)).into()
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

/// `-n⁻¹ mod 2⁶⁴`, for Montgomery-style division by powers of two.
const N_PRIME: u64 = {
    let mut inv = 1u64;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(N[0].wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
};

/// `x = x / 2^k mod n` for `x < n`, `1 ≤ k ≤ 63`: add the multiple `m·n` that clears the low
/// `k` bits (`m = x·(-n⁻¹) mod 2^k`), shift, and subtract `n` if needed.
#[inline]
fn div_pow2_mod(x: &mut Limbs, k: u32) {
    let m = x[0].wrapping_mul(N_PRIME) & ((1u64 << k) - 1);
    let mut carry = 0u128;
    let mut t = [0u64; 5];
    for i in 0..4 {
        let acc = u128::from(x[i]) + u128::from(m) * u128::from(N[i]) + carry;
        t[i] = acc as u64;
        carry = acc >> 64;
    }
    t[4] = carry as u64;
    for i in 0..4 {
        x[i] = (t[i] >> k) | (t[i + 1] << (64 - k));
    }
    let top = t[4] >> k;
    if top != 0 || geq(x, &N) {
        sub_assign(x, &N);
    }
}

/// `x = x - y mod n` for `x, y < n`.
#[inline]
fn sub_mod(x: &mut Limbs, y: &Limbs) {
    if sub_assign(x, y) {
        add_assign(x, &N);
    }
}

/// Makes `u` odd, dividing `x` by the same power of two mod `n`.
#[inline]
fn strip_twos(u: &mut Limbs, x: &mut Limbs) {
    while u[0] & 1 == 0 {
        let k = if u[0] == 0 { 63 } else { u[0].trailing_zeros() };
        shr(u, k);
        div_pow2_mod(x, k);
    }
}

/// `s⁻¹ mod n`, or `None` for `s = 0`.
pub(crate) fn invert_vartime(s: &Scalar) -> Option<Scalar> {
    let mut u = to_limbs(s);
    if is_zero(&u) {
        return None;
    }
    let mut v = N;
    // Invariants: x1·s ≡ u and x2·s ≡ v (mod n).
    let mut x1: Limbs = [1, 0, 0, 0];
    let mut x2: Limbs = [0; 4];
    loop {
        if is_one(&u) {
            return from_limbs(&x1);
        }
        if is_one(&v) {
            return from_limbs(&x2);
        }
        // n is prime and 0 < s < n, so gcd(u, v) = 1 and neither reaches zero; the checks keep
        // a logic error from looping forever.
        if is_zero(&u) || is_zero(&v) {
            return None;
        }
        strip_twos(&mut u, &mut x1);
        strip_twos(&mut v, &mut x2);
        if geq(&u, &v) {
            sub_assign(&mut u, &v);
            sub_mod(&mut x1, &x2);
        } else {
            sub_assign(&mut v, &u);
            sub_mod(&mut x2, &x1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

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
            let mut be = [0u8; 32];
            for b in be.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
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
}
