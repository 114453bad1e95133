//! A fast ECDSA P-256 signer for load generation and test fixtures — **not a production
//! signer**.
//!
//! Plain `p256` signing computes `k·G` with a constant-time ladder and inverts `k` by Fermat
//! exponentiation: about 130 µs a signature on the dev machines, several times what the router's
//! known-signer verifier spends checking one, so a load generator signing with it is the
//! bottleneck. This signer reuses the verifier's machinery: `k·G` is a sum of 22 entries of the
//! shared generator table (no doublings), `k⁻¹` and `x(R)`'s `Z⁻²` come from the variable-time
//! binary extended Euclid.
//!
//! # Same signatures as `p256`
//!
//! The nonce is RFC 6979's (`rfc6979::generate_k` with HMAC-SHA-256, no extra data), derived
//! exactly as `p256`'s `SigningKey::sign_prehash` derives it, and `s` is not normalised to low-s
//! (nor is it there). So for every key and digest the signature is **byte for byte the one
//! `p256` makes**: the tests check that, verify every signature with `p256` and with OpenSSL, and
//! deterministic nonces mean no random generator can repeat a nonce.
//!
//! # Not constant time
//!
//! The table lookups are indexed by the nonce's digits, the additions branch on them, and the
//! inversion of `k` takes time that depends on `k`. Someone who can time this signer closely (a
//! co-tenant watching the cache, a peer timing many signatures) could learn bits of the nonces
//! and from them the private key. That is acceptable for what it is for — signing load with the
//! demo PKI's keys, and bench fixtures — and is why it lives apart from [`crate::Signer`], which
//! real Users' keys go through.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::bigint::U256;
use p256::elliptic_curve::ff::Field;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::PrimeField;
use p256::{FieldBytes, Scalar};
use sha2::Sha256;

use crate::envelope::Header;
use crate::verify::known::inverse::invert_field_vartime;
use crate::verify::known::point::Jacobian;
use crate::verify::known::{g_table, invert, table::FixedBaseTable, SignedDigits};
use crate::{SignError, Signer};

/// The group order `n`, big-endian (RFC 6979's `q`).
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// A variable-time ECDSA P-256 signer over the shared generator table (see the module docs:
/// for load generation and fixtures, not for keys that matter).
#[derive(Clone)]
pub struct FastSigner {
    d: Scalar,
    d_bytes: FieldBytes,
    g: &'static FixedBaseTable,
}

impl std::fmt::Debug for FastSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastSigner").finish_non_exhaustive()
    }
}

impl FastSigner {
    /// A fast signer for `key`. `None` only if the generator table could not be built (it
    /// always can: the generator is a valid point).
    pub fn new(key: &SigningKey) -> Option<Self> {
        let d: Scalar = **key.as_nonzero_scalar();
        Some(Self {
            d,
            d_bytes: d.to_repr(),
            g: g_table()?,
        })
    }

    /// A fast signer for the same key as `signer`.
    pub fn from_signer(signer: &Signer) -> Option<Self> {
        Self::new(signer.signing_key())
    }

    /// Signs a SHA-256 digest, returning `r ‖ s` — the same bytes `p256` would return.
    pub fn sign_prehash(&self, digest: &[u8; 32]) -> Result<[u8; 64], SignError> {
        let z = FieldBytes::from(*digest);
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&z);
        // RFC 6979 with HMAC-SHA-256 over (d, z), as `p256` does: `k ∈ [1, n-1]`.
        let k_bytes = rfc6979::generate_k::<Sha256, _>(&self.d_bytes, &ORDER.into(), &z, &[]);
        let k: Scalar = Option::from(Scalar::from_repr(k_bytes))
            .ok_or_else(|| SignError::Ecdsa("nonce out of range".into()))?;
        let k_be: [u8; 32] = k_bytes.into();
        let mut acc = Jacobian::INFINITY;
        self.g
            .accumulate(&mut acc, &SignedDigits::recode(&k_be, self.g.shape()));
        let (x_z2, z2) = acc
            .x_and_z2()
            .ok_or_else(|| SignError::Ecdsa("k·G at infinity".into()))?;
        let z2_inv =
            invert_field_vartime(&z2).ok_or_else(|| SignError::Ecdsa("k·G at infinity".into()))?;
        let x = x_z2.multiply(&z2_inv);
        let r = <Scalar as Reduce<U256>>::reduce_bytes(&x.to_bytes());
        let k_inv = invert(&k).ok_or_else(|| SignError::Ecdsa("k = 0".into()))?;
        let s = k_inv * (e + r * self.d);
        if bool::from(r.is_zero()) || bool::from(s.is_zero()) {
            // Probability about 2^-256 per signature; p256 refuses these too.
            return Err(SignError::Ecdsa("r or s is zero".into()));
        }
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r.to_bytes());
        out[32..].copy_from_slice(&s.to_bytes());
        Ok(out)
    }

    /// Encodes and signs a whole envelope (as [`Signer::sign_envelope`], same bytes).
    pub fn sign_envelope(&self, header: &Header, body: &[u8]) -> Result<Vec<u8>, SignError> {
        crate::sign::sign_envelope_with(header, body, |d| self.sign_prehash(d))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn signatures_are_byte_identical_to_p256() {
        for i in 0..20u8 {
            let signer = Signer::random();
            let fast = FastSigner::from_signer(&signer).unwrap();
            let digest = [i; 32];
            assert_eq!(
                fast.sign_prehash(&digest).unwrap(),
                signer.sign_prehash(&digest).unwrap()
            );
        }
    }
}
