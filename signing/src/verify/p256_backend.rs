use std::sync::Arc;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};

use super::{BadSignature, PreparedKey, Verifier};

/// Plain `p256` ECDSA verification: the portable reference every faster backend is tested
/// against.
#[derive(Debug, Clone, Copy, Default)]
pub struct P256Verifier;

#[derive(Debug)]
struct P256Key(VerifyingKey);

impl PreparedKey for P256Key {
    fn verify_prehash(&self, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), BadSignature> {
        // `from_slice` refuses r or s equal to zero or not below n.
        let sig = Signature::from_slice(sig).map_err(|_| BadSignature)?;
        self.0
            .verify_prehash(digest, &sig)
            .map_err(|_| BadSignature)
    }
}

impl Verifier for P256Verifier {
    fn name(&self) -> &str {
        "p256"
    }

    fn prepare(&self, key: &p256::PublicKey) -> Arc<dyn PreparedKey> {
        Arc::new(P256Key(VerifyingKey::from(key)))
    }
}
