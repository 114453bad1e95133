//! Signing Service Requests with an Organisation Certificate's private key.

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

use crate::envelope::{self, Header};

/// Why a key could not be loaded or a request not signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key is not a PKCS#8 P-256 private key.
    #[error("not a PKCS#8 ECDSA P-256 private key: {0}")]
    Key(String),
    /// The envelope could not be encoded.
    #[error(transparent)]
    Encode(#[from] envelope::EncodeError),
    /// The ECDSA primitive failed (practically unreachable).
    #[error("signing failed: {0}")]
    Ecdsa(String),
}

/// An ECDSA P-256 signer.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// Wraps a signing key.
    pub fn new(key: SigningKey) -> Self {
        Signer { key }
    }

    /// Loads a PKCS#8 key, PEM (`-----BEGIN PRIVATE KEY-----`) or DER.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, SignError> {
        let key = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => SigningKey::from_pkcs8_pem(text),
            _ => SigningKey::from_pkcs8_der(bytes),
        }
        .map_err(|e| SignError::Key(e.to_string()))?;
        Ok(Signer { key })
    }

    /// A fresh random key (for tests, demo PKIs and load generation).
    pub fn random() -> Self {
        Signer {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The matching public key.
    pub fn public_key(&self) -> p256::PublicKey {
        p256::PublicKey::from(self.key.verifying_key())
    }

    /// Signs a SHA-256 digest, returning `r ‖ s`.
    pub fn sign_prehash(&self, digest: &[u8; 32]) -> Result<[u8; 64], SignError> {
        let sig: Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|e| SignError::Ecdsa(e.to_string()))?;
        Ok(sig.to_bytes().into())
    }

    /// Encodes and signs a whole envelope.
    pub fn sign_envelope(&self, header: &Header, body: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut bytes = envelope::encode_unsigned(header, body)?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let sig = self.sign_prehash(&digest)?;
        bytes.extend_from_slice(&sig);
        Ok(bytes)
    }
}
