//! Change of Supplier state: the gaining Supplier of each device whose supply is changing
//! ([`GainingSuppliers`]), and the router's own private keys ([`RouterKeys`]) — the CoS
//! Party keys that counter-sign SRV 6.23 ([`crate::pipeline::cos`]) and the DUIS
//! response-signing key.
//!
//! # Why the keys live here
//!
//! BEIS 2022 (beis-2022-sec-changes-consultation.txt, 3.1–3.3) lets the DCC "transfer a
//! Private Key from the systems of one Service Provider to another subject to the DCC gaining
//! the SMKI PMA's approval" — e.g. the TCoS key to the ECoS Party, "so that devices still
//! holding TCoS certificates keep working" (domain.md). For the router that means: keys of
//! its own, held in its store, moved in with a recorded approval reference (the audit entry of
//! [`AdminHandle::import_key`](crate::AdminHandle::import_key) carries the PMA reference), and
//! old and new serving side by side until the old one is retired.
//!
//! Several active keys of one purpose take turns ([`RouterKeys::serving`]): during a transfer
//! the old holder and the new one both sign, and retiring the old one changes nothing a
//! device can see. For the CoS purposes every active key must be the *same* key pair (the
//! device verifies with the public key of the CoS certificate it holds): importing a
//! different key pair under a purpose that has one is refused — a new CoS certificate is a
//! re-keying of every device, not a transfer.
//!
//! # Keys at rest
//!
//! The private scalar is written, in hex, to the router's store file (`DATA_DIR/state.redb`,
//! metadata `router-key/<id>`), which the router creates readable by its own user only
//! (mode 0600 on Unix). What that protects against: other local users. What it does not: root,
//! anyone who can read the store file or its backups, and a memory dump of the running
//! process — there is no encryption at rest and no HSM here. A deployment holding real DCC
//! keys would keep them in an HSM and store only a handle; the [`RouterKey`] seam (sign a
//! digest, name the key) is what such a backend would implement. The audit log records key
//! ids, purposes, public keys and PMA references, never the private key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use dashmap::DashMap;
use dcc_signing::{Eui64, Signer};
use serde::{Deserialize, Serialize};

use super::devices::CosCertificate;

/// Device → the gaining Supplier named by registration data (a pending Change of Supplier).
///
/// Sparse: only devices whose supply is changing have an entry (the device record stays
/// small). The entry is removed when the gaining Supplier's 6.23 has been counter-signed and
/// dispatched — the device is then registered to it.
#[derive(Debug, Default)]
pub struct GainingSuppliers {
    map: DashMap<Eui64, Eui64>,
}

impl GainingSuppliers {
    /// The gaining Supplier of `device`, if its supply is changing.
    pub fn get(&self, device: Eui64) -> Option<Eui64> {
        self.map.get(&device).map(|g| *g)
    }

    /// How many devices have a pending Change of Supplier.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none has.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn set(&self, device: Eui64, gaining: Option<Eui64>) {
        match gaining {
            Some(g) => {
                self.map.insert(device, g);
            }
            None => {
                self.map.remove(&device);
            }
        }
    }
}

/// What a router key is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyPurpose {
    /// The Transitional CoS Party key (devices holding the TCoS certificate).
    Tcos,
    /// The Enduring CoS Party key (devices holding the ECoS certificate).
    Ecos,
    /// Signing the router's DUIS responses (DCC XML signing, role 89).
    DuisSign,
}

impl KeyPurpose {
    /// Every purpose.
    pub const ALL: [KeyPurpose; 3] = [KeyPurpose::Tcos, KeyPurpose::Ecos, KeyPurpose::DuisSign];

    /// The admin channel's spelling: `tcos`, `ecos`, `duis-sign`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Tcos => "tcos",
            KeyPurpose::Ecos => "ecos",
            KeyPurpose::DuisSign => "duis-sign",
        }
    }

    /// Parses [`KeyPurpose::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        KeyPurpose::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The CoS key that counter-signs for a device holding `cert`.
    pub fn for_certificate(cert: CosCertificate) -> Self {
        match cert {
            CosCertificate::Ecos => KeyPurpose::Ecos,
            _ => KeyPurpose::Tcos,
        }
    }

    /// Whether every active key of this purpose must be one key pair (the CoS purposes: the
    /// devices verify with their certificate's public key).
    pub fn is_cos(self) -> bool {
        matches!(self, KeyPurpose::Tcos | KeyPurpose::Ecos)
    }
}

/// One of the router's own private keys.
#[derive(Clone)]
pub struct RouterKey {
    /// The operator's name for it (unique), e.g. `tcos@ecos-party-2022`.
    pub id: String,
    /// What it signs.
    pub purpose: KeyPurpose,
    /// The private key.
    pub signer: Signer,
    /// When it was imported, Unix seconds.
    pub imported_at: u64,
    /// The SMKI PMA's approval reference for its transfer.
    pub pma_ref: String,
}

impl std::fmt::Debug for RouterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterKey")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl RouterKey {
    /// The public key, SEC1 uncompressed, hex (what the audit log and `admin key list` show).
    pub fn public_key_hex(&self) -> String {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        hex::encode(self.signer.public_key().to_encoded_point(false).as_bytes())
    }

    /// The stored form (the private scalar in hex: see the module doc on keys at rest).
    pub fn stored(&self) -> StoredKey {
        StoredKey {
            id: self.id.clone(),
            purpose: self.purpose,
            secret: hex::encode(self.signer.signing_key().to_bytes()),
            imported_at: self.imported_at,
            pma_ref: self.pma_ref.clone(),
        }
    }
}

/// A router key as stored (JSON in the store's metadata, key [`StoredKey::meta_key`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// [`RouterKey::id`].
    pub id: String,
    /// [`RouterKey::purpose`].
    pub purpose: KeyPurpose,
    /// The private scalar, hex.
    pub secret: String,
    /// [`RouterKey::imported_at`].
    pub imported_at: u64,
    /// [`RouterKey::pma_ref`].
    pub pma_ref: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// The metadata prefix of stored router keys.
pub const KEY_META_PREFIX: &str = "router-key/";

/// The metadata prefix of pending Changes of Supplier (`cos-gaining/<device>` → gaining EUI-64).
pub const GAINING_META_PREFIX: &str = "cos-gaining/";

impl StoredKey {
    /// Its metadata key.
    pub fn meta_key(id: &str) -> String {
        format!("{KEY_META_PREFIX}{id}")
    }

    /// Back to a key, or why the stored scalar is not a P-256 private key.
    pub fn to_key(&self) -> Result<RouterKey, String> {
        let bytes = hex::decode(&self.secret).map_err(|e| format!("secret: {e}"))?;
        let key = p256::ecdsa::SigningKey::from_slice(&bytes)
            .map_err(|_| "secret: not a P-256 private key".to_owned())?;
        Ok(RouterKey {
            id: self.id.clone(),
            purpose: self.purpose,
            signer: Signer::new(key),
            imported_at: self.imported_at,
            pma_ref: self.pma_ref.clone(),
        })
    }
}

/// The router's keys in force, replaced whole on every change (readers take a snapshot: an
/// import or retirement never leaves a request half-way between two key sets).
#[derive(Debug, Default)]
pub struct RouterKeys {
    keys: RwLock<Arc<Vec<Arc<RouterKey>>>>,
    turn: AtomicUsize,
}

impl RouterKeys {
    /// Every key in force, in import order.
    pub fn all(&self) -> Arc<Vec<Arc<RouterKey>>> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The key named `id`.
    pub fn get(&self, id: &str) -> Option<Arc<RouterKey>> {
        self.all().iter().find(|k| k.id == id).cloned()
    }

    /// The key that signs the next `purpose` signature: the active keys of the purpose take
    /// turns, so during a transfer both the old and the new holder serve.
    pub fn serving(&self, purpose: KeyPurpose) -> Option<Arc<RouterKey>> {
        let all = self.all();
        let n = all.iter().filter(|k| k.purpose == purpose).count();
        if n == 0 {
            return None;
        }
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        all.iter().filter(|k| k.purpose == purpose).nth(i).cloned()
    }

    pub(crate) fn replace(&self, keys: Vec<Arc<RouterKey>>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }
}
