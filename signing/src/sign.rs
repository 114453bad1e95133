//! Signing Service Requests with an Organisation Certificate's private key.

use der::asn1::{AnyRef, BitStringRef, OctetStringRef, UintRef};
use der::Decode;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

use crate::envelope::{self, Header};
use crate::KeyKind;

/// Hard limit on one private key's DER: an RSA-16384 PKCS#8 key is about 9.5 KiB, so any key
/// worth naming in an error fits.
const MAX_KEY_DER_LEN: usize = 16 * 1024;

/// Why a key could not be loaded or a request not signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key is not a PKCS#8 P-256 private key: malformed, or not a key at all.
    #[error("not a PKCS#8 ECDSA P-256 private key: {0}")]
    Key(String),
    /// A well-formed private key of another kind (RSA, Ed25519, EC on another curve, …),
    /// named by what it is rather than by the P-256 OID a decoder expected.
    #[error("{0}, not an ECDSA P-256 key (prime256v1)")]
    WrongKey(KeyKind),
    /// A SEC1 (`EC PRIVATE KEY`) key on P-256 or on a curve it does not name: this crate reads
    /// PKCS#8 only, as the SMKI tooling writes it.
    #[error(
        "a SEC1 \"EC PRIVATE KEY\", not PKCS#8: convert it with \
         `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8.pem`"
    )]
    Sec1,
    /// An encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`): there is no passphrase to give.
    #[error(
        "an encrypted PKCS#8 key: decrypt it first with `openssl pkcs8 -in KEY -out PLAIN.pem`"
    )]
    Encrypted,
    /// PEM text without any private key block: labels of the blocks found.
    #[error("no private key in the PEM text (found: {})", found_labels(.0))]
    NoKey(Vec<String>),
    /// The envelope could not be encoded.
    #[error(transparent)]
    Encode(#[from] envelope::EncodeError),
    /// The ECDSA primitive failed (practically unreachable).
    #[error("signing failed: {0}")]
    Ecdsa(String),
}

/// The PEM labels of [`SignError::NoKey`], for its message.
fn found_labels(labels: &[String]) -> String {
    if labels.is_empty() {
        "no PEM block".to_owned()
    } else {
        labels.join(", ")
    }
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

    /// Loads a PKCS#8 P-256 key, PEM (`-----BEGIN PRIVATE KEY-----`) or DER.
    ///
    /// Any other key is refused with what it is ([`SignError::WrongKey`], [`SignError::Sec1`],
    /// [`SignError::Encrypted`]). PEM blocks that hold no private key (`EC PARAMETERS`, as
    /// `openssl ecparam -genkey` writes; a certificate kept with its key) are skipped.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, SignError> {
        let key = if crate::pki::pem::looks_like_pem(bytes) {
            let mut labels = Vec::new();
            let keys = crate::pki::pem::labelled_blocks(bytes, MAX_KEY_DER_LEN, |label| {
                labels.push(label.chars().take(40).collect::<String>());
                label.ends_with("PRIVATE KEY")
            })
            .map_err(|e| SignError::Key(e.to_string()))?;
            match keys.as_slice() {
                [] => return Err(SignError::NoKey(labels)),
                [(label, der)] => match label.as_str() {
                    "PRIVATE KEY" => pkcs8_p256(der)?,
                    "EC PRIVATE KEY" => return Err(sec1_error(der)),
                    "RSA PRIVATE KEY" => return Err(SignError::WrongKey(KeyKind::Rsa)),
                    "DSA PRIVATE KEY" => return Err(SignError::WrongKey(KeyKind::Dsa)),
                    "ENCRYPTED PRIVATE KEY" => return Err(SignError::Encrypted),
                    other => {
                        return Err(SignError::Key(format!("unsupported PEM block \"{other}\"")))
                    }
                },
                more => {
                    return Err(SignError::Key(format!(
                        "{} private keys in one input; give one",
                        more.len()
                    )))
                }
            }
        } else if bytes.len() > MAX_KEY_DER_LEN {
            return Err(SignError::Key(format!(
                "{} bytes of DER (at most {MAX_KEY_DER_LEN})",
                bytes.len()
            )));
        } else if pkcs8::PrivateKeyInfo::from_der(bytes).is_ok() {
            pkcs8_p256(bytes)?
        } else if Sec1PrivateKey::from_der(bytes).is_ok() {
            return Err(sec1_error(bytes));
        } else if EncryptedKeyInfo::from_der(bytes).is_ok() {
            return Err(SignError::Encrypted);
        } else if Pkcs1RsaKey::from_der(bytes).is_ok() {
            // `openssl pkey -outform DER` writes RSA keys this way.
            return Err(SignError::WrongKey(KeyKind::Rsa));
        } else {
            pkcs8_p256(bytes)?
        };
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
        sign_envelope_with(header, body, |d| self.sign_prehash(d))
    }
}

/// Encodes an envelope and appends the signature `sign` makes over its SHA-256 digest.
pub(crate) fn sign_envelope_with(
    header: &Header,
    body: &[u8],
    sign: impl FnOnce(&[u8; 32]) -> Result<[u8; 64], SignError>,
) -> Result<Vec<u8>, SignError> {
    let mut bytes = envelope::encode_unsigned(header, body)?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&sign(&digest)?);
    Ok(bytes)
}

/// Decodes a PKCS#8 `PrivateKeyInfo` after checking from its algorithm identifier that it is a
/// P-256 key, so that any other key is refused by name (`p256`'s own decoder would report the
/// P-256 OID it expected, not the one it found).
fn pkcs8_p256(der: &[u8]) -> Result<SigningKey, SignError> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| SignError::Key(e.to_string()))?;
    let kind = KeyKind::from_algorithm(info.algorithm.oid, info.algorithm.parameters);
    if !kind.is_p256() {
        return Err(SignError::WrongKey(kind));
    }
    SigningKey::from_pkcs8_der(der).map_err(|e| SignError::Key(e.to_string()))
}

/// SEC1 `ECPrivateKey` (RFC 5915), read only far enough to name its curve.
#[derive(der::Sequence)]
struct Sec1PrivateKey<'a> {
    version: u8,
    private_key: OctetStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    parameters: Option<AnyRef<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    public_key: Option<BitStringRef<'a>>,
}

/// PKCS#8 `EncryptedPrivateKeyInfo`, recognised only (the `pkcs5` decryption is not built).
#[derive(der::Sequence)]
struct EncryptedKeyInfo<'a> {
    algorithm: spki::AlgorithmIdentifierRef<'a>,
    encrypted_data: OctetStringRef<'a>,
}

/// PKCS#1 `RSAPrivateKey` (RFC 8017), recognised only, to name it.
#[derive(der::Sequence)]
struct Pkcs1RsaKey<'a> {
    version: u8,
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
    private_exponent: UintRef<'a>,
    prime1: UintRef<'a>,
    prime2: UintRef<'a>,
    exponent1: UintRef<'a>,
    exponent2: UintRef<'a>,
    coefficient: UintRef<'a>,
    #[asn1(optional = "true")]
    other_prime_infos: Option<AnyRef<'a>>,
}

/// Why a SEC1 key is refused: its curve when that is not P-256, else that it is not PKCS#8.
fn sec1_error(der: &[u8]) -> SignError {
    let key = match Sec1PrivateKey::from_der(der) {
        Ok(k) if k.version == 1 => k,
        Ok(k) => return SignError::Key(format!("SEC1 EC key version {}", k.version)),
        Err(e) => return SignError::Key(format!("malformed SEC1 EC key: {e}")),
    };
    match KeyKind::from_algorithm(const_oid::db::rfc5912::ID_EC_PUBLIC_KEY, key.parameters) {
        kind @ KeyKind::Ec { .. } if !kind.is_p256() => SignError::WrongKey(kind),
        _ => SignError::Sec1,
    }
}
