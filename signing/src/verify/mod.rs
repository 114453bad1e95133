//! Signature verification behind one trait, so that faster backends slot in.
//!
//! A router verifies millions of signatures from a few hundred keys. The trait therefore splits
//! verification in two: [`Verifier::prepare`] turns a public key into a [`PreparedKey`] once,
//! when a certificate is loaded (where a backend may precompute tables), and
//! [`PreparedKey::verify_prehash`] checks one signature on the hot path.
//!
//! [`P256Verifier`] is the portable reference backend: plain `p256` verification.

pub mod known;
mod p256_backend;

pub use known::{KnownSignerVerifier, TableBudget, WindowBits};
pub use p256_backend::P256Verifier;

use std::sync::Arc;

/// The signature does not verify (or is not a well-formed `r ‖ s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct BadSignature;

/// A public key made ready for repeated verification.
pub trait PreparedKey: Send + Sync + std::fmt::Debug {
    /// Verifies `sig` (`r ‖ s`, big-endian) over a SHA-256 `digest`.
    ///
    /// Must accept exactly what plain ECDSA P-256 verification accepts: `r, s ∈ [1, n-1]`, and
    /// both low-s and high-s signatures (SMKI does not require low-s normalisation).
    fn verify_prehash(&self, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), BadSignature>;

    /// Approximate heap bytes this prepared key holds (precomputed tables), for memory budgets.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// This key as `Any`, so a backend can recognise its own keys in
    /// [`Verifier::verify_batch`] and share work across them. `None` (the default) opts out.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// One signature to check in a batch.
#[derive(Debug, Clone, Copy)]
pub struct VerifyJob<'a> {
    /// The signer's prepared key.
    pub key: &'a dyn PreparedKey,
    /// SHA-256 of the signed bytes.
    pub digest: &'a [u8; 32],
    /// `r ‖ s`.
    pub signature: &'a [u8; 64],
}

/// A verification backend.
pub trait Verifier: Send + Sync + std::fmt::Debug {
    /// A short name for reports (`p256`, `known-signer-w8`, …).
    fn name(&self) -> &str;

    /// Prepares a key. May be expensive (table precomputation): call it off the hot path.
    fn prepare(&self, key: &p256::PublicKey) -> Arc<dyn PreparedKey>;

    /// Verifies a batch, writing one verdict per job into `out` (same length as `jobs`).
    /// The default checks each job on its own; backends may share work across the batch.
    fn verify_batch(&self, jobs: &[VerifyJob<'_>], out: &mut [bool]) {
        for (job, o) in jobs.iter().zip(out.iter_mut()) {
            *o = job.key.verify_prehash(job.digest, job.signature).is_ok();
        }
    }
}
