//! First start and every start: the PKI a server trusts, and the state it begins with.
//!
//! With no `pki_dir` configured and nothing yet in `DATA_DIR/pki`, `serve` writes a demo PKI
//! there (as `dcc-sign pki init` would) so that a test team has a working server and client
//! credentials in one command — except the CA keys, which go to `DATA_DIR/ca-keys/` (0700,
//! keys 0600): the server never reads them, and keeping them out of the directory it reads
//! means a server's files never include what issues certificates (see
//! [`DemoPki::write_with_ca_keys_apart`]). A `pki_dir` that is configured is never written:
//! missing, it is an error saying how to create it. The state is then
//! restored from the store ([`crate::store`]: the truth at start), and the router learns what
//! the store does not know yet: every User under `users/` — its Organisation Certificate,
//! chain-validated (all of them: `cert.pem`, `cert-2.pem`…), and its User Roles (an Approved
//! Party) — and, once per store, `demo_devices`
//! devices:
//!
//! | device *i* (0-based) | value |
//! |---|---|
//! | EUI-64 | [`DEMO_DEVICE_BASE`] + *i* (`02-DC-D0-00-00-00-00-00` + *i*) |
//! | registered Supplier | of the *k* Supplier Users that are not SRPs, by name, the [`DemoMarket`]'s: the *i* mod *k*-th for *k* ≤ 4, else Zipf shares (a national population) |
//! | registered Network Operator | the *i* mod *m*-th of the *m* Network Operator Users, by name |
//! | payment mode | prepayment when *i* mod 100 < `prepayment_percent`, else credit |
//! | SM WAN (DP094) | none for a prepayment device with (*i* / 100) mod 11 = 10 (≈ 9 % of them, [`demo_device_without_wan`]), else ok |
//!
//! The rule is a pure function of *i*, so a load generator can aim at these devices without
//! asking the server.

use std::path::{Path, PathBuf};

use dcc_signing::pki::demo::{
    load_ca_certs, load_directory_users, DemoPki, DirectoryUser, Population,
};
use dcc_signing::pki::{CaCertificate, ChainValidator, OrgCertificate, TrustAnchors};
use dcc_signing::{Eui64, RemotePartyRole};

use crate::admin::{RestoreReport, MAX_DEVICES_PER_CALL};
use crate::state::{CertRecord, Device, Party, PaymentMode, WanState};
use crate::{AdminError, AdminHandle};

pub use crate::client::demo::{demo_device, demo_device_without_wan, DemoMarket, DEMO_DEVICE_BASE};

/// Why the server could not prepare its PKI or state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// Reading or writing the PKI failed.
    #[error("PKI at {dir}: {source}")]
    Pki {
        /// The PKI directory.
        dir: std::path::PathBuf,
        /// Why.
        source: dcc_signing::pki::PkiError,
    },
    /// A User's certificate or Party was refused.
    #[error("{file}: {source}")]
    Certificate {
        /// The certificate file.
        file: PathBuf,
        /// Why.
        source: AdminError,
    },
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] AdminError),
    /// The configured `pki_dir` does not exist (it is never created: only the default demo
    /// PKI is).
    #[error(
        "pki_dir {} does not exist: create it with `dcc-sign pki init --dir {}`, or omit \
         pki_dir to use a demo PKI in DATA_DIR/pki",
        dir.display(),
        dir.display()
    )]
    PkiDirMissing {
        /// The directory.
        dir: PathBuf,
    },
    /// The configured `pki_dir` exists but holds no PKI.
    #[error(
        "pki_dir {}: {} is missing (a `dcc-sign pki init --dir` directory is expected; omit \
         pki_dir to use a demo PKI in DATA_DIR/pki)",
        dir.display(),
        file.display()
    )]
    NotAPkiDir {
        /// The directory.
        dir: PathBuf,
        /// The file looked for.
        file: PathBuf,
    },
}

/// Converts a parsed Organisation Certificate into what the certificate store keeps.
pub fn cert_record(cert: &OrgCertificate) -> CertRecord {
    CertRecord {
        id: cert.id,
        owner: cert.subject_eui64,
        public_key: cert.public_key,
        not_before: cert.not_before,
        not_after: cert.not_after,
    }
}

/// Checks that a configured PKI directory holds a PKI, writing nothing: for before anything
/// else is done at start.
pub fn check_pki_dir(dir: &Path) -> Result<(), BootstrapError> {
    if !dir.exists() {
        return Err(BootstrapError::PkiDirMissing {
            dir: dir.to_path_buf(),
        });
    }
    let root = dir.join("ca").join("root.pem");
    if !root.exists() {
        return Err(BootstrapError::NotAPkiDir {
            dir: dir.to_path_buf(),
            file: root,
        });
    }
    Ok(())
}

/// Makes sure `dir` holds a PKI and reads its Users. With `demo_keys`, a `dir` without one
/// gets a demo PKI with `population` beyond the standard Users, its CA keys written to
/// `demo_keys` instead; without, it is an error
/// ([`check_pki_dir`]). Returns the Users and whether the PKI was created now. A User
/// directory without a readable `cert.pem` is an error naming the file.
pub fn ensure_pki(
    dir: &Path,
    demo_keys: Option<&Path>,
    now: u64,
    population: &Population,
) -> Result<(Vec<DirectoryUser>, bool), BootstrapError> {
    let err = |source| BootstrapError::Pki {
        dir: dir.to_path_buf(),
        source,
    };
    let created = match demo_keys {
        Some(keys) if !dir.join("ca").join("root.pem").exists() => {
            DemoPki::generate_population(now, population, None)
                .and_then(|pki| pki.write_with_ca_keys_apart(dir, keys))
                .map_err(err)?;
            true
        }
        _ => {
            check_pki_dir(dir)?;
            false
        }
    };
    Ok((load_directory_users(dir).map_err(err)?, created))
}

/// The chain validator for a PKI directory (root and issuing CA), and the issuing CA (CRLs
/// are verified against it).
pub fn trust_from_pki_dir(dir: &Path) -> Result<(ChainValidator, CaCertificate), BootstrapError> {
    let (root, issuing) = load_ca_certs(dir).map_err(|source| BootstrapError::Pki {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok((
        ChainValidator::new(TrustAnchors::new(vec![root])).with_intermediate(issuing.clone()),
        issuing,
    ))
}

/// The metadata key recording that demo devices were registered (they are seeded once).
pub const META_DEMO_DEVICES: &str = "demo-devices";

/// What [`populate`] added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Populated {
    /// Certificates added from the PKI directory.
    pub certs: usize,
    /// Parties added.
    pub parties: usize,
    /// Demo devices registered.
    pub devices: u64,
}

/// Registers what the store does not know yet: each PKI-directory User's Party (its roles from
/// `user.json`) and certificate — chain-validated, its OU role checked against the Party, as
/// any added certificate is — and, once per store, the demo devices. What the store already
/// holds wins: a certificate revoked there stays revoked although its file is still here.
pub fn populate(
    admin: &AdminHandle,
    pki_dir: &Path,
    users: &[DirectoryUser],
    devices: u64,
    prepayment_percent: u8,
    restored: &RestoreReport,
) -> Result<Populated, BootstrapError> {
    let admin = admin.acting_as("bootstrap", Some("PKI directory at start".into()));
    let mut done = Populated::default();
    for u in users {
        let refused = |index: usize| {
            let file = u.cert_file(pki_dir, index);
            move |source| BootstrapError::Certificate { file, source }
        };
        let eui = u.cert.subject_eui64;
        if admin.state().parties.get(eui).is_none() {
            admin
                .upsert_party(eui, Party::approved(&u.user_roles))
                .map_err(refused(0))?;
            done.parties += 1;
        }
        for (index, cert) in std::iter::once(&u.cert).chain(&u.more_certs).enumerate() {
            if admin.state().certs.get(&cert.id).is_none() {
                admin
                    .add_certificate_pem(cert.to_pem().as_bytes())
                    .map_err(refused(index))?;
                done.certs += 1;
            }
        }
    }
    if restored.meta(META_DEMO_DEVICES).is_some() || devices == 0 {
        return Ok(done);
    }
    let mut sorted: Vec<&DirectoryUser> = users.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let suppliers: Vec<Eui64> = sorted
        .iter()
        .filter(|u| u.cert.role == RemotePartyRole::Supplier && u.name != "srp")
        .map(|u| u.cert.subject_eui64)
        .collect();
    let netops: Vec<Eui64> = sorted
        .iter()
        .filter(|u| u.cert.role == RemotePartyRole::NetworkOperator)
        .map(|u| u.cert.subject_eui64)
        .collect();
    if suppliers.is_empty() {
        return Ok(done);
    }
    let market = DemoMarket::new(suppliers.len(), devices);
    let mut chunk = Vec::with_capacity(MAX_DEVICES_PER_CALL.min(devices as usize));
    for i in 0..devices {
        let mut d = Device::new(suppliers[market.supplier_of(i)]);
        d.network_operator =
            (!netops.is_empty()).then(|| netops[(i % netops.len() as u64) as usize]);
        if i % 100 < u64::from(prepayment_percent) {
            d.payment_mode = PaymentMode::Prepayment;
        }
        if demo_device_without_wan(i, prepayment_percent) {
            d.wan = WanState::None;
        }
        chunk.push((demo_device(i), d));
        if chunk.len() == MAX_DEVICES_PER_CALL || i + 1 == devices {
            admin.upsert_devices(&chunk)?;
            chunk.clear();
        }
    }
    admin.set_meta(META_DEMO_DEVICES, &devices.to_string())?;
    done.devices = devices;
    Ok(done)
}
