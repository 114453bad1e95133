//! A demo PKI, generated in memory: root CA, issuing CA, and DCC Users with signing
//! (Organisation) and TLS certificates. Used by tests, by `dcc-sign pki init` and by the load
//! generator, with or without a disk.
//!
//! # Users and their EUI-64s
//!
//! EUI-64s are deterministic: [`DEMO_EUI_PREFIX`] (`02-DC-C0-…`, the locally administered bit
//! set so that they never collide with a real manufacturer's range) plus a small number.
//!
//! | name | EUI-64 | remote-party role (OU) | User Roles |
//! |------|--------|------------------------|------------|
//! | `supplier-a` | `02-DC-C0-00-00-00-00-01` | supplier `02` | IS, GS |
//! | `supplier-b` | `02-DC-C0-00-00-00-00-02` | supplier `02` | IS, GS |
//! | `netop` | `02-DC-C0-00-00-00-00-03` | network operator `03` | ED |
//! | `srp` (Shared Resource Provider, acts for others) | `02-DC-C0-00-00-00-00-04` | supplier `02` | IS, ES, GS |
//! | `admin` | `02-DC-C0-00-00-00-00-7F` | other `7F` | OU |
//! | `user-00001`… ([`DemoPki::generate_with_users`]) | `02-DC-C0-00-00-01-00-00` + *i* | supplier `02` | IS, GS |
//! | `supplier-0001`… ([`DemoPki::generate_population`]) | `02-DC-C0-00-00-02-00-00` + *i* | supplier `02` | IS, ES, GS |
//! | `netop-0001`… ([`DemoPki::generate_population`]) | `02-DC-C0-00-00-03-00-00` + *i* | network operator `03` | ED |
//!
//! A national population ([`Population`]: hundreds of Suppliers, tens of network operators)
//! gives each of its Users several Organisation Certificates, as real DCC Users hold (one per
//! system, plus rollovers): the first is `cert.pem`/`key.pem`, the others `cert-2.pem`/
//! `key-2.pem`… ([`DemoUser::more_certs`]), all issued by the same issuing CA with the
//! User's EUI-64 and remote-party role.
//!
//! Keys are random ([`DemoPki::generate`], [`DemoPki::generate_with_users`]) or derived from a
//! seed ([`DemoPki::generate_seeded`]: byte-identical output for the same inputs, so separate
//! processes can agree on a PKI without files; test use only).
//!
//! # Directory layout ([`DemoPki::write_to_dir`], [`DemoPki::load_from_dir`])
//!
//! ```text
//! D/ca/root.pem  root-key.pem  issuing.pem  issuing-key.pem  chain.pem (issuing + root)
//! D/ca/server-cert.pem  server-key.pem          TLS server certificate for localhost/127.0.0.1
//! D/ca/server-chain.pem                         server certificate + issuing CA (what a TLS server sends)
//! D/users/<name>/cert.pem  key.pem              Organisation Certificate + PKCS#8 key
//! D/users/<name>/cert-2.pem  key-2.pem  …       more Organisation Certificates (national population)
//! D/users/<name>/tls-cert.pem  tls-key.pem      TLS client certificate (clientAuth) + key
//! D/users/<name>/tls-chain.pem                  client certificate + issuing CA
//! D/users/<name>/user.json                      name, EUI-64, OU, User Roles
//! ```
//!
//! # The CA keys apart ([`DemoPki::write_with_ca_keys_apart`])
//!
//! `dcc-sign pki init` is the CA tool: it writes the CA keys in `D/ca/` as above. A server
//! needs none of them, so the demo PKI that `dcc-router serve` creates on first start keeps
//! them out of the directory the server reads, in a sibling [`CA_KEYS_DIR`] (mode 0700, keys
//! 0600), next to copies of the two CA certificates so that it is a CA directory of its own
//! (`dcc-sign crl --ca-dir DATA_DIR/ca-keys`):
//!
//! ```text
//! DATA_DIR/pki/ca/root.pem  issuing.pem  chain.pem  server-*.pem    what the server reads
//! DATA_DIR/pki/users/…
//! DATA_DIR/ca-keys/root.pem  root-key.pem  issuing.pem  issuing-key.pem
//! ```
//!
//! [`DemoPki::load_from_dir`] finds the CA keys in `D/ca/`, else in `D/../ca-keys/`, so that
//! what issues certificates from a server's demo PKI (tests, the load generator) keeps
//! working with either layout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::cert::{CaCertificate, OrgCertificate};
use super::chain::{ChainValidator, TrustAnchors};
use super::issue::{ca_subject, org_subject, CertificateAuthority, OrgCertRequest, TlsCertRequest};
use super::pem::{key_to_pem, to_pem};
use super::PkiError;
use crate::{Eui64, RemotePartyRole, Signer, UserRole};

/// The EUI-64 prefix of demo Users: `02-DC-C0-00-00-00-00-00`.
pub const DEMO_EUI_PREFIX: u64 = 0x02DC_C000_0000_0000;
/// Where the EUI-64s of the numbered load-generation Users start.
pub const DEMO_BULK_EUI_BASE: u64 = DEMO_EUI_PREFIX + 0x0001_0000;
/// Where the EUI-64s of a national population's Suppliers start (`supplier-0001` is + 1).
pub const DEMO_SUPPLIER_EUI_BASE: u64 = DEMO_EUI_PREFIX + 0x0002_0000;
/// Where the EUI-64s of a national population's network operators start (`netop-0001` is + 1).
pub const DEMO_NETOP_EUI_BASE: u64 = DEMO_EUI_PREFIX + 0x0003_0000;
/// Most Suppliers, network operators and certificates per User of a [`Population`].
pub const MAX_POPULATION: Population = Population {
    bulk_users: MAX_DIR_USERS,
    suppliers: 9_999,
    network_operators: 9_999,
    certs_per_user: 16,
};

/// Which Users beyond the standard five a demo PKI has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Population {
    /// Numbered supplier Users `user-00001`… (one certificate each).
    pub bulk_users: usize,
    /// National-population Suppliers `supplier-0001`… (IS, ES, GS).
    pub suppliers: usize,
    /// National-population network operators `netop-0001`… (ED).
    pub network_operators: usize,
    /// Organisation Certificates per national-population User (at least 1).
    pub certs_per_user: usize,
}

impl Population {
    /// Why the population is over [`MAX_POPULATION`], if it is.
    pub fn check(&self) -> Result<(), PkiError> {
        let m = MAX_POPULATION;
        for (what, n, max) in [
            ("users", self.bulk_users, m.bulk_users),
            ("suppliers", self.suppliers, m.suppliers),
            (
                "network operators",
                self.network_operators,
                m.network_operators,
            ),
            (
                "certificates per user",
                self.certs_per_user,
                m.certs_per_user,
            ),
        ] {
            if n > max {
                return Err(PkiError::Demo(format!(
                    "{n} {what} is over the maximum {max}"
                )));
            }
        }
        Ok(())
    }
}

const DAY: u64 = 86_400;
/// Backdating of every `not_before`, to tolerate clock skew.
const BACKDATE: u64 = DAY;
const CA_LIFETIME: u64 = 30 * 365 * DAY;
const USER_LIFETIME: u64 = 10 * 365 * DAY;
/// Hard limit on the number of Users read back from a directory.
pub const MAX_DIR_USERS: usize = 100_000;
/// The directory, a sibling of the PKI directory, where [`DemoPki::write_with_ca_keys_apart`]
/// puts the CA keys (and where [`DemoPki::load_from_dir`] looks for them second).
pub const CA_KEYS_DIR: &str = "ca-keys";
/// The CA key files, relative to the PKI directory, in the `dcc-sign pki init` layout.
const CA_KEY_FILES: [&str; 2] = ["ca/root-key.pem", "ca/issuing-key.pem"];

/// A TLS identity: certificate and private key.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PKCS#8 PEM.
    pub key_pem: String,
    /// The key.
    pub signer: Signer,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// One demo DCC User.
#[derive(Clone, Debug)]
pub struct DemoUser {
    /// Short name, also its directory name (`supplier-a`).
    pub name: String,
    /// The User's EUI-64 (its certificate's `x500UniqueIdentifier`).
    pub eui64: Eui64,
    /// The remote-party role of its certificate.
    pub role: RemotePartyRole,
    /// The DUIS User Roles it may send in.
    pub user_roles: Vec<UserRole>,
    /// Its signing key.
    pub signer: Signer,
    /// Its Organisation Certificate (digitalSignature).
    pub cert: OrgCertificate,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PKCS#8 PEM.
    pub key_pem: String,
    /// Its TLS client certificate (separate key, same subject, clientAuth).
    pub tls: TlsIdentity,
    /// Its other Organisation Certificates (`cert-2.pem`…), same subject, other keys.
    pub more_certs: Vec<SigningCert>,
}

/// One more Organisation Certificate of a User, with its key.
#[derive(Clone, Debug)]
pub struct SigningCert {
    /// Its signing key.
    pub signer: Signer,
    /// The certificate.
    pub cert: OrgCertificate,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The key, PKCS#8 PEM.
    pub key_pem: String,
}

/// A whole demo PKI.
#[derive(Clone, Debug)]
pub struct DemoPki {
    /// The root CA.
    pub root: CertificateAuthority,
    /// The issuing CA (signed by the root), which issues every User certificate.
    pub issuing: CertificateAuthority,
    /// The Users.
    pub users: Vec<DemoUser>,
    /// A TLS server certificate for `localhost`, `127.0.0.1` and `::1` (serverAuth).
    pub server_tls: TlsIdentity,
}

struct UserSpec {
    name: String,
    eui64: Eui64,
    role: RemotePartyRole,
    user_roles: Vec<UserRole>,
    certs: usize,
}

fn standard_users() -> Vec<UserSpec> {
    use RemotePartyRole as R;
    use UserRole as U;
    let spec = |name: &str, n: u64, role, user_roles: &[UserRole]| UserSpec {
        name: name.to_owned(),
        eui64: Eui64::from_u64(DEMO_EUI_PREFIX + n),
        role,
        user_roles: user_roles.to_vec(),
        certs: 1,
    };
    vec![
        spec(
            "supplier-a",
            1,
            R::Supplier,
            &[U::ImportSupplier, U::GasSupplier],
        ),
        spec(
            "supplier-b",
            2,
            R::Supplier,
            &[U::ImportSupplier, U::GasSupplier],
        ),
        spec("netop", 3, R::NetworkOperator, &[U::ElectricityDistributor]),
        spec(
            "srp",
            4,
            R::Supplier,
            &[U::ImportSupplier, U::ExportSupplier, U::GasSupplier],
        ),
        spec("admin", 0x7F, R::Other, &[U::OtherUser]),
    ]
}

/// The User Roles a remote-party role usually sends in (used when `user.json` is absent).
fn default_user_roles(role: RemotePartyRole) -> Vec<UserRole> {
    match role {
        RemotePartyRole::Supplier => vec![UserRole::ImportSupplier, UserRole::GasSupplier],
        RemotePartyRole::NetworkOperator => vec![UserRole::ElectricityDistributor],
        _ => vec![UserRole::OtherUser],
    }
}

fn tls_identity(der: Vec<u8>, signer: Signer) -> Result<TlsIdentity, PkiError> {
    Ok(TlsIdentity {
        cert_pem: to_pem("CERTIFICATE", &der),
        cert_der: der,
        key_pem: key_to_pem(&signer)?,
        signer,
    })
}

/// Where demo keys and serial numbers come from.
#[derive(Clone, Copy)]
enum Source {
    Random,
    Seeded(u64),
}

impl Source {
    fn hash(&self, kind: &str, label: &str, counter: u32) -> [u8; 32] {
        use sha2::Digest;
        let seed = match self {
            Source::Seeded(s) => *s,
            Source::Random => 0,
        };
        let mut h = sha2::Sha256::new();
        h.update(b"dcc-router demo PKI v1\0");
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(seed.to_be_bytes());
        h.update(label.as_bytes());
        h.update([0]);
        h.update(counter.to_be_bytes());
        h.finalize().into()
    }

    fn signer(&self, label: &str) -> Signer {
        match self {
            Source::Random => Signer::random(),
            // A 32-byte hash is a valid P-256 scalar unless it is zero or >= n (probability
            // about 2^-32); the next counter is tried then.
            Source::Seeded(_) => (0u32..64)
                .find_map(|c| {
                    p256::ecdsa::SigningKey::from_bytes(&self.hash("key", label, c).into()).ok()
                })
                .map(Signer::new)
                .unwrap_or_else(Signer::random),
        }
    }

    fn serial(&self, label: &str) -> Vec<u8> {
        match self {
            Source::Random => super::issue::random_serial(),
            Source::Seeded(_) => {
                let mut b = self.hash("serial", label, 0)[..16].to_vec();
                b[0] = (b[0] & 0x7F) | 0x40;
                b
            }
        }
    }
}

impl DemoPki {
    /// The standard demo PKI (see the module docs), valid from a day before `now_unix`, with
    /// fresh random keys.
    pub fn generate(now_unix: u64) -> Result<Self, PkiError> {
        Self::generate_with_users(now_unix, 0)
    }

    /// The standard demo PKI plus `n` numbered supplier Users `user-00001`… for load
    /// generation.
    pub fn generate_with_users(now_unix: u64, n: usize) -> Result<Self, PkiError> {
        Self::generate_population(
            now_unix,
            &Population {
                bulk_users: n,
                ..Population::default()
            },
            None,
        )
    }

    /// The standard demo PKI plus `population` (see the module docs), with fresh random keys,
    /// or keys derived from `seed` as [`DemoPki::generate_seeded`] does.
    pub fn generate_population(
        now_unix: u64,
        population: &Population,
        seed: Option<u64>,
    ) -> Result<Self, PkiError> {
        population.check()?;
        let src = seed.map_or(Source::Random, Source::Seeded);
        Self::build(now_unix, population, src)
    }

    /// Like [`DemoPki::generate_with_users`], but every key and serial number is derived from
    /// `seed`: the same `(now_unix, n, seed)` gives byte-identical certificates and keys, so
    /// that separate processes (a router and a load generator) can agree on a PKI without
    /// sharing files. **Test use only**: whoever knows the seed has every private key.
    pub fn generate_seeded(now_unix: u64, n: usize, seed: u64) -> Result<Self, PkiError> {
        let population = Population {
            bulk_users: n,
            ..Population::default()
        };
        Self::generate_population(now_unix, &population, Some(seed))
    }

    fn build(now_unix: u64, population: &Population, src: Source) -> Result<Self, PkiError> {
        let nb = now_unix.saturating_sub(BACKDATE);
        let root = CertificateAuthority::new_root_with_serial(
            "DCC-ROUTER-DEMO-ROOT",
            src.signer("ca/root"),
            nb,
            now_unix + CA_LIFETIME,
            &src.serial("ca/root"),
        )?;
        let issuing = root.issue_ca_with_serial(
            "DCC-ROUTER-DEMO-ISSUING",
            src.signer("ca/issuing"),
            nb,
            now_unix + CA_LIFETIME,
            &src.serial("ca/issuing"),
        )?;
        let mut specs = standard_users();
        for i in 1..=population.bulk_users {
            specs.push(UserSpec {
                name: format!("user-{i:05}"),
                eui64: Eui64::from_u64(DEMO_BULK_EUI_BASE + i as u64),
                role: RemotePartyRole::Supplier,
                user_roles: vec![UserRole::ImportSupplier, UserRole::GasSupplier],
                certs: 1,
            });
        }
        let certs = population.certs_per_user.max(1);
        for i in 1..=population.suppliers {
            specs.push(UserSpec {
                name: format!("supplier-{i:04}"),
                eui64: Eui64::from_u64(DEMO_SUPPLIER_EUI_BASE + i as u64),
                role: RemotePartyRole::Supplier,
                user_roles: vec![
                    UserRole::ImportSupplier,
                    UserRole::ExportSupplier,
                    UserRole::GasSupplier,
                ],
                certs,
            });
        }
        for i in 1..=population.network_operators {
            specs.push(UserSpec {
                name: format!("netop-{i:04}"),
                eui64: Eui64::from_u64(DEMO_NETOP_EUI_BASE + i as u64),
                role: RemotePartyRole::NetworkOperator,
                user_roles: vec![UserRole::ElectricityDistributor],
                certs,
            });
        }
        let mut users = Vec::with_capacity(specs.len());
        for s in specs {
            users.push(issue_user(&issuing, s, nb, now_unix + USER_LIFETIME, src)?);
        }
        let server_key = src.signer("ca/server");
        let server_der = issuing.issue_tls(&TlsCertRequest {
            subject: ca_server_subject()?,
            public_key: server_key.public_key(),
            not_before: nb,
            not_after: now_unix + USER_LIFETIME,
            client_auth: false,
            server_auth: true,
            dns_names: vec!["localhost".into()],
            ip_addrs: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            serial: Some(src.serial("ca/server")),
        })?;
        Ok(DemoPki {
            root,
            issuing,
            users,
            server_tls: tls_identity(server_der, server_key)?,
        })
    }

    /// The User called `name`.
    pub fn user(&self, name: &str) -> Option<&DemoUser> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The User whose EUI-64 is `eui64`.
    pub fn user_by_eui64(&self, eui64: Eui64) -> Option<&DemoUser> {
        self.users.iter().find(|u| u.eui64 == eui64)
    }

    /// A validator trusting this PKI's root, with its issuing CA as intermediate.
    pub fn chain_validator(&self) -> ChainValidator {
        ChainValidator::new(TrustAnchors::new(vec![self.root.cert.clone()]))
            .with_intermediate(self.issuing.cert.clone())
    }

    /// Every file of the directory layout, relative path → contents.
    fn files(&self) -> Result<Vec<(PathBuf, String, bool)>, PkiError> {
        let mut f = vec![
            (PathBuf::from("ca/root.pem"), self.root.cert.to_pem(), false),
            (PathBuf::from("ca/root-key.pem"), self.root.key_pem()?, true),
            (
                PathBuf::from("ca/issuing.pem"),
                self.issuing.cert.to_pem(),
                false,
            ),
            (
                PathBuf::from("ca/issuing-key.pem"),
                self.issuing.key_pem()?,
                true,
            ),
            (
                PathBuf::from("ca/chain.pem"),
                format!("{}{}", self.issuing.cert.to_pem(), self.root.cert.to_pem()),
                false,
            ),
            (
                PathBuf::from("ca/server-cert.pem"),
                self.server_tls.cert_pem.clone(),
                false,
            ),
            (
                PathBuf::from("ca/server-key.pem"),
                self.server_tls.key_pem.clone(),
                true,
            ),
            (
                PathBuf::from("ca/server-chain.pem"),
                format!("{}{}", self.server_tls.cert_pem, self.issuing.cert.to_pem()),
                false,
            ),
        ];
        for u in &self.users {
            let d = PathBuf::from("users").join(&u.name);
            let meta = serde_json::json!({
                "name": u.name,
                "eui64": u.eui64.to_string(),
                "role": u.role.to_ou(),
                "user_roles": u.user_roles.iter().map(|r| r.abbrev()).collect::<Vec<_>>(),
            });
            f.push((d.join("cert.pem"), u.cert_pem.clone(), false));
            f.push((d.join("key.pem"), u.key_pem.clone(), true));
            f.push((d.join("tls-cert.pem"), u.tls.cert_pem.clone(), false));
            f.push((d.join("tls-key.pem"), u.tls.key_pem.clone(), true));
            f.push((
                d.join("tls-chain.pem"),
                format!("{}{}", u.tls.cert_pem, self.issuing.cert.to_pem()),
                false,
            ));
            f.push((d.join("user.json"), format!("{meta:#}\n"), false));
            for (k, c) in u.more_certs.iter().enumerate() {
                f.push((d.join(more_cert_file(k, "cert")), c.cert_pem.clone(), false));
                f.push((d.join(more_cert_file(k, "key")), c.key_pem.clone(), true));
            }
        }
        Ok(f)
    }

    /// Writes the PKI under `dir` (layout in the module docs). Refuses to overwrite any
    /// existing file unless `force`; then writes nothing. Returns the paths written.
    pub fn write_to_dir(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, PkiError> {
        let files = self
            .files()?
            .into_iter()
            .map(|(rel, contents, secret)| (dir.join(rel), contents, secret))
            .collect();
        write_files(files, force)
    }

    /// Writes the PKI under `dir` like [`DemoPki::write_to_dir`], except the CA keys: those go
    /// to `keys_dir` (created 0700; keys 0600), with copies of `root.pem` and `issuing.pem`, so
    /// that `dir` holds nothing a server does not need (see the module docs). Refuses to
    /// overwrite anything; then writes nothing. Returns the paths written.
    pub fn write_with_ca_keys_apart(
        &self,
        dir: &Path,
        keys_dir: &Path,
    ) -> Result<Vec<PathBuf>, PkiError> {
        let mut files: Vec<(PathBuf, String, bool)> = Vec::new();
        for (rel, contents, secret) in self.files()? {
            let is_ca_key = CA_KEY_FILES.iter().any(|k| rel == Path::new(k));
            if is_ca_key || rel == Path::new("ca/root.pem") || rel == Path::new("ca/issuing.pem") {
                if let Some(name) = rel.file_name() {
                    files.push((keys_dir.join(name), contents.clone(), secret));
                }
            }
            if !is_ca_key {
                files.push((dir.join(rel), contents, secret));
            }
        }
        // The keys' directory is private before anything is written into it.
        std::fs::create_dir_all(keys_dir).map_err(|source| PkiError::Io {
            path: keys_dir.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(keys_dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| PkiError::Io {
                    path: keys_dir.to_path_buf(),
                    source,
                },
            )?;
        }
        write_files(files, false)
    }

    /// Reads back a PKI written by [`DemoPki::write_to_dir`] (or `dcc-sign pki init`),
    /// checking that every key matches its certificate.
    pub fn load_from_dir(dir: &Path) -> Result<Self, PkiError> {
        let ca = dir.join("ca");
        let root = load_ca(&ca.join("root.pem"), &ca_key_path(dir, "root-key.pem"))?;
        let issuing = load_ca(
            &ca.join("issuing.pem"),
            &ca_key_path(dir, "issuing-key.pem"),
        )?;
        let server_tls = load_tls(&ca.join("server-cert.pem"), &ca.join("server-key.pem"))?;
        let users_dir = dir.join("users");
        let mut names = Vec::new();
        let entries = std::fs::read_dir(&users_dir).map_err(|source| PkiError::Io {
            path: users_dir.clone(),
            source,
        })?;
        for e in entries {
            let e = e.map_err(|source| PkiError::Io {
                path: users_dir.clone(),
                source,
            })?;
            if e.path().is_dir() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
            if names.len() > MAX_DIR_USERS {
                return Err(PkiError::Demo(format!("more than {MAX_DIR_USERS} users")));
            }
        }
        names.sort();
        let mut users = Vec::with_capacity(names.len());
        for name in names {
            let d = users_dir.join(&name);
            let first = load_signing_cert(&d.join("cert.pem"), &d.join("key.pem"))?;
            let mut more_certs = Vec::new();
            for k in 0..MAX_POPULATION.certs_per_user {
                let cert_path = d.join(more_cert_file(k, "cert"));
                if !cert_path.exists() {
                    break;
                }
                more_certs.push(load_signing_cert(
                    &cert_path,
                    &d.join(more_cert_file(k, "key")),
                )?);
            }
            let SigningCert {
                signer,
                cert,
                cert_pem,
                key_pem,
            } = first;
            let meta = d.join("user.json");
            let user_roles = if meta.exists() {
                parse_user_roles(&read(&meta)?)
                    .ok_or_else(|| PkiError::Demo("malformed user.json".into()).in_file(&meta))?
            } else {
                default_user_roles(cert.role)
            };
            let tls = load_tls(&d.join("tls-cert.pem"), &d.join("tls-key.pem"))?;
            users.push(DemoUser {
                name,
                eui64: cert.subject_eui64,
                role: cert.role,
                user_roles,
                signer,
                cert,
                cert_pem,
                key_pem,
                tls,
                more_certs,
            });
        }
        Ok(DemoPki {
            root,
            issuing,
            users,
            server_tls,
        })
    }
}

/// The file name of a User's certificate or key number `k + 2` (`cert-2.pem`, `key-2.pem`…).
fn more_cert_file(k: usize, what: &str) -> String {
    format!("{what}-{}.pem", k + 2)
}

/// An Organisation Certificate and its key, checked to match; an error names the file.
fn load_signing_cert(cert_path: &Path, key_path: &Path) -> Result<SigningCert, PkiError> {
    let cert_pem = String::from_utf8(read(cert_path)?)
        .map_err(|_| PkiError::Pem("not UTF-8".into()).in_file(cert_path))?;
    let key_pem = String::from_utf8(read(key_path)?)
        .map_err(|_| PkiError::Pem("not UTF-8".into()).in_file(key_path))?;
    let cert = OrgCertificate::parse(cert_pem.as_bytes()).map_err(|e| e.in_file(cert_path))?;
    let signer = Signer::from_pkcs8(key_pem.as_bytes())
        .map_err(|e| PkiError::Key(e.to_string()).in_file(key_path))?;
    if signer.public_key() != cert.public_key {
        return Err(PkiError::KeyMismatch.in_file(key_path));
    }
    Ok(SigningCert {
        signer,
        cert,
        cert_pem,
        key_pem,
    })
}

/// Where the CA key `file` of the PKI directory `dir` is: `dir/ca/file` (`dcc-sign pki init`),
/// else `dir/../ca-keys/file` ([`DemoPki::write_with_ca_keys_apart`]); the first when neither
/// exists, so that the error names the usual place.
fn ca_key_path(dir: &Path, file: &str) -> PathBuf {
    let usual = dir.join("ca").join(file);
    if usual.exists() {
        return usual;
    }
    let apart = dir.join("..").join(CA_KEYS_DIR).join(file);
    if apart.exists() {
        apart
    } else {
        usual
    }
}

/// A CA from its certificate and key files; an error names the file at fault.
fn load_ca(cert: &Path, key: &Path) -> Result<CertificateAuthority, PkiError> {
    let parsed = CaCertificate::parse(&read(cert)?).map_err(|e| e.in_file(cert))?;
    let signer =
        Signer::from_pkcs8(&read(key)?).map_err(|e| PkiError::Key(e.to_string()).in_file(key))?;
    CertificateAuthority::from_parts(parsed, signer).map_err(|e| e.in_file(key))
}

/// Writes `files` (absolute path, contents, secret), creating parent directories. Refuses to
/// overwrite any existing file unless `force`; then writes nothing.
fn write_files(files: Vec<(PathBuf, String, bool)>, force: bool) -> Result<Vec<PathBuf>, PkiError> {
    if !force {
        if let Some((p, _, _)) = files.iter().find(|(p, _, _)| p.exists()) {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (path, contents, secret) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| PkiError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        write_file(&path, contents.as_bytes(), secret)?;
        written.push(path);
    }
    Ok(written)
}

fn ca_server_subject() -> Result<x509_cert::name::Name, PkiError> {
    // `OU=07, CN=localhost`: the router is a DCC system, named like its CA.
    ca_subject("localhost")
}

fn issue_user(
    issuing: &CertificateAuthority,
    s: UserSpec,
    not_before: u64,
    not_after: u64,
    src: Source,
) -> Result<DemoUser, PkiError> {
    let signing = |label: String| -> Result<SigningCert, PkiError> {
        let signer = src.signer(&label);
        let mut req =
            OrgCertRequest::signing(s.eui64, s.role, signer.public_key(), not_before, not_after);
        req.common_name = Some(s.name.to_uppercase());
        req.serial = Some(src.serial(&label));
        let cert = issuing.issue_org(&req)?;
        Ok(SigningCert {
            cert_pem: cert.to_pem(),
            key_pem: key_to_pem(&signer)?,
            signer,
            cert,
        })
    };
    let SigningCert {
        signer,
        cert,
        cert_pem,
        key_pem,
    } = signing(format!("users/{}", s.name))?;
    let more_certs = (2..=s.certs)
        .map(|k| signing(format!("users/{}/{k}", s.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let tls_key = src.signer(&format!("users/{}/tls", s.name));
    let tls_der = issuing.issue_tls(&TlsCertRequest {
        subject: org_subject(Some(&s.name.to_uppercase()), s.role, s.eui64)?,
        public_key: tls_key.public_key(),
        not_before,
        not_after,
        client_auth: true,
        server_auth: false,
        dns_names: Vec::new(),
        ip_addrs: Vec::new(),
        serial: Some(src.serial(&format!("users/{}/tls", s.name))),
    })?;
    Ok(DemoUser {
        name: s.name,
        eui64: s.eui64,
        role: s.role,
        user_roles: s.user_roles,
        cert_pem,
        key_pem,
        signer,
        cert,
        tls: tls_identity(tls_der, tls_key)?,
        more_certs,
    })
}

fn parse_user_roles(bytes: &[u8]) -> Option<Vec<UserRole>> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("user_roles")?
        .as_array()?
        .iter()
        .map(|r| r.as_str()?.parse().ok())
        .collect()
}

fn load_tls(cert: &Path, key: &Path) -> Result<TlsIdentity, PkiError> {
    let cert_bytes = read(cert)?;
    let key_bytes = read(key)?;
    let der = super::pem::one_der(&cert_bytes, "CERTIFICATE", super::MAX_DER_LEN)
        .map_err(|e| e.in_file(cert))?;
    let parsed = super::cert::parse_common(&der).map_err(|e| e.in_file(cert))?;
    let signer =
        Signer::from_pkcs8(&key_bytes).map_err(|e| PkiError::Key(e.to_string()).in_file(key))?;
    if signer.public_key() != parsed.public_key {
        return Err(PkiError::KeyMismatch.in_file(key));
    }
    tls_identity(der, signer)
}

/// Reads a file of at most [`super::MAX_PEM_LEN`] bytes.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    use std::io::Read;
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    f.take(super::MAX_PEM_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() > super::MAX_PEM_LEN {
        return Err(PkiError::TooLarge {
            len: buf.len(),
            max: super::MAX_PEM_LEN,
        }
        .in_file(path));
    }
    Ok(buf)
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, contents).map_err(io)?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}

/// Parses every User's Organisation Certificate of a demo directory (`users/*/cert.pem`),
/// sorted by User name, without reading any private key: what a router needs.
pub fn load_user_certs(dir: &Path) -> Result<Vec<(String, OrgCertificate)>, PkiError> {
    let users_dir = dir.join("users");
    let io = |source| PkiError::Io {
        path: users_dir.clone(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(&users_dir).map_err(io)? {
        let e = e.map_err(io)?;
        if !e.path().is_dir() {
            continue;
        }
        // A User directory without its certificate is an error naming the file: skipping it
        // would start a router that silently refuses that User.
        let cert = e.path().join("cert.pem");
        if out.len() >= MAX_DIR_USERS {
            return Err(PkiError::Demo(format!("more than {MAX_DIR_USERS} users")));
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let parsed = OrgCertificate::parse(&read(&cert)?).map_err(|e| e.in_file(&cert))?;
        out.push((name, parsed));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Parses the root and issuing CA certificates of a demo directory (no keys needed).
pub fn load_ca_certs(dir: &Path) -> Result<(CaCertificate, CaCertificate), PkiError> {
    let ca = dir.join("ca");
    let parse = |path: PathBuf| CaCertificate::parse(&read(&path)?).map_err(|e| e.in_file(&path));
    Ok((parse(ca.join("root.pem"))?, parse(ca.join("issuing.pem"))?))
}

/// A User read back from a demo directory without its private keys.
#[derive(Clone, Debug)]
pub struct DirectoryUser {
    /// Directory name.
    pub name: String,
    /// Its Organisation Certificate.
    pub cert: OrgCertificate,
    /// The DUIS User Roles it may send in (`user.json`, or defaults for its certificate role).
    pub user_roles: Vec<UserRole>,
    /// Its other Organisation Certificates (`cert-2.pem`…).
    pub more_certs: Vec<OrgCertificate>,
}

impl DirectoryUser {
    /// The file under `pki_dir` that certificate number `index` came from: 0 is `cert.pem`
    /// ([`Self::cert`]), `k + 1` is `more_certs[k]` (`cert-2.pem`…) — so that an error about
    /// one certificate names its own file.
    pub fn cert_file(&self, pki_dir: &Path, index: usize) -> PathBuf {
        let d = pki_dir.join("users").join(&self.name);
        match index {
            0 => d.join("cert.pem"),
            k => d.join(more_cert_file(k - 1, "cert")),
        }
    }
}

/// Reads every User of a demo directory — certificate and User Roles, never a private key:
/// what a router serving that PKI needs.
pub fn load_directory_users(dir: &Path) -> Result<Vec<DirectoryUser>, PkiError> {
    load_user_certs(dir)?
        .into_iter()
        .map(|(name, cert)| {
            let d = dir.join("users").join(&name);
            let meta = d.join("user.json");
            let user_roles = if meta.exists() {
                parse_user_roles(&read(&meta)?)
                    .ok_or_else(|| PkiError::Demo("malformed user.json".into()).in_file(&meta))?
            } else {
                default_user_roles(cert.role)
            };
            let mut more_certs = Vec::new();
            for k in 0..MAX_POPULATION.certs_per_user {
                let path = d.join(more_cert_file(k, "cert"));
                if !path.exists() {
                    break;
                }
                more_certs
                    .push(OrgCertificate::parse(&read(&path)?).map_err(|e| e.in_file(&path))?);
            }
            Ok(DirectoryUser {
                name,
                cert,
                user_roles,
                more_certs,
            })
        })
        .collect()
}
