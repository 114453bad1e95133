//! First start and every start: the PKI a server trusts, and the state it begins with.
//!
//! With no PKI directory, `serve` writes a demo PKI there (as `dcc-sign pki init` would) so that
//! a test team has a working server and client credentials in one command. The router then
//! learns every User under `users/` — its Organisation Certificate (certificate store) and its
//! User Roles (an Approved Party) — and registers `demo_devices` devices:
//!
//! | device *i* (0-based) | value |
//! |---|---|
//! | EUI-64 | [`DEMO_DEVICE_BASE`] + *i* (`02-DC-D0-00-00-00-00-00` + *i*) |
//! | registered Supplier | the *i* mod *k*-th of the *k* Supplier Users that are not SRPs, by name |
//! | registered Network Operator | the first Network Operator User, by name |
//! | payment mode | prepayment when *i* mod 100 < `prepayment_percent`, else credit |
//!
//! The rule is a pure function of *i*, so a load generator can aim at these devices without
//! asking the server.

use std::path::Path;

use dcc_signing::pki::demo::{load_directory_users, DemoPki, DirectoryUser};
use dcc_signing::pki::OrgCertificate;
use dcc_signing::{Eui64, RemotePartyRole};

use crate::state::{CertRecord, Device, Party, PaymentMode};
use crate::AdminHandle;

/// Where demo device EUI-64s start.
pub const DEMO_DEVICE_BASE: u64 = 0x02DC_D000_0000_0000;

/// The EUI-64 of demo device `i`.
pub const fn demo_device(i: u64) -> Eui64 {
    Eui64::from_u64(DEMO_DEVICE_BASE + i)
}

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
    /// A certificate was refused by the certificate store.
    #[error("certificate of {user}: {reason}")]
    Certificate {
        /// Directory name of the User.
        user: String,
        /// Why.
        reason: String,
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

/// Makes sure `dir` holds a PKI (writing a demo one if it holds none) and reads its Users.
/// Returns the Users and whether the PKI was created now.
pub fn ensure_pki(dir: &Path, now: u64) -> Result<(Vec<DirectoryUser>, bool), BootstrapError> {
    let err = |source| BootstrapError::Pki {
        dir: dir.to_path_buf(),
        source,
    };
    let created = if dir.join("ca").join("root.pem").exists() {
        false
    } else {
        DemoPki::generate(now)
            .and_then(|pki| pki.write_to_dir(dir, false))
            .map_err(err)?;
        true
    };
    Ok((load_directory_users(dir).map_err(err)?, created))
}

/// Registers Users (certificate + Party) and demo devices through the admin handle.
pub fn populate(
    admin: &AdminHandle,
    users: &[DirectoryUser],
    devices: u64,
    prepayment_percent: u8,
) -> Result<(), BootstrapError> {
    for u in users {
        admin
            .add_certificate(cert_record(&u.cert))
            .map_err(|e| BootstrapError::Certificate {
                user: u.name.clone(),
                reason: e.to_string(),
            })?;
        admin.upsert_party(u.cert.subject_eui64, Party::approved(&u.user_roles));
    }
    let mut sorted: Vec<&DirectoryUser> = users.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let suppliers: Vec<Eui64> = sorted
        .iter()
        .filter(|u| u.cert.role == RemotePartyRole::Supplier && u.name != "srp")
        .map(|u| u.cert.subject_eui64)
        .collect();
    let netop = sorted
        .iter()
        .find(|u| u.cert.role == RemotePartyRole::NetworkOperator)
        .map(|u| u.cert.subject_eui64);
    if suppliers.is_empty() {
        return Ok(());
    }
    for i in 0..devices {
        let mut d = Device::new(suppliers[(i % suppliers.len() as u64) as usize]);
        d.network_operator = netop;
        if i % 100 < u64::from(prepayment_percent) {
            d.payment_mode = PaymentMode::Prepayment;
        }
        admin.upsert_device(demo_device(i), d);
    }
    Ok(())
}
