//! TLS 1.3 configuration for the QUIC ingress: mutual authentication against a TLS CA.
//!
//! Both sides use rustls with the `ring` provider. The server demands a client certificate
//! issued by the configured TLS CA: a peer without one, or with one from another CA, never
//! completes the handshake. Which User ids a connection may send for is decided afterwards
//! from the certificate's subject (see `identity`).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocol id of the Service Request transport, version 1.
pub const ALPN: &[u8] = b"dcc-sr/1";

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no certificate.
    #[error("{0}: no certificate found in PEM")]
    NoCertificate(&'static str),
    /// A PEM input was not a private key.
    #[error("{what}: not a PEM private key: {source}")]
    Key {
        /// Which input.
        what: &'static str,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A CA certificate was refused as a trust anchor.
    #[error("TLS configuration: {what}: {source}")]
    Root {
        /// Which input.
        what: &'static str,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The key does not go with the certificate chain's leaf.
    #[error("TLS configuration: {source} (certificate chain {})", chain.display())]
    KeyMismatch {
        /// The chain file.
        chain: std::path::PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built (e.g. no usable CA).
    #[error("TLS configuration: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The rustls configuration has no cipher suite QUIC can use.
    #[error("TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// A file of a PKI directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of a PKI directory was read but refused: which file, and why.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<TlsError>,
    },
}

impl TlsError {
    fn in_file(self, path: &std::path::Path) -> Self {
        TlsError::File {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// PEM-encoded TLS material for one side of a connection.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA that issued the *peer's* certificate (PEM, one or more certificates).
    pub ca_pem: Vec<u8>,
    /// This side's certificate chain (PEM, leaf first).
    pub cert_pem: Vec<u8>,
    /// This side's private key (PKCS#8 PEM).
    pub key_pem: Vec<u8>,
}

/// Largest TLS PEM file read (a chain of a few certificates is a few KiB).
const MAX_TLS_FILE: u64 = 1024 * 1024;

fn read(path: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_TLS_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_TLS_FILE {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("over {MAX_TLS_FILE} bytes"),
        )));
    }
    Ok(buf)
}

/// Reads the material of one side from its three files and checks it as
/// [`server_config`]/[`client_config`] will, so that an error names the file at fault (the
/// configuration builders see bytes, not files): `ca` holds certificates, `chain` holds
/// certificates (leaf first), `key` is a private key that belongs to the leaf.
fn from_files(
    ca: &std::path::Path,
    chain: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<TlsMaterial, TlsError> {
    let m = TlsMaterial {
        ca_pem: read(ca)?,
        cert_pem: read(chain)?,
        key_pem: read(key_file)?,
    };
    roots(&m.ca_pem, "CA").map_err(|e| e.in_file(ca))?;
    let leaf = certs(&m.cert_pem, "certificate chain").map_err(|e| e.in_file(chain))?;
    let k = key(&m.key_pem, "private key").map_err(|e| e.in_file(key_file))?;
    let certified = rustls::sign::CertifiedKey::from_der(leaf, k, &provider());
    if let Err(source) = certified {
        return Err(TlsError::KeyMismatch {
            chain: chain.to_path_buf(),
            source,
        }
        .in_file(key_file));
    }
    Ok(m)
}

impl TlsMaterial {
    /// The client material of User `name` of a PKI directory (`dcc-sign pki init` or
    /// `dcc-router serve` layout): trusts `ca/root.pem`, presents `users/NAME/tls-chain.pem`.
    pub fn client_from_pki_dir(pki: &std::path::Path, name: &str) -> Result<Self, TlsError> {
        let user = pki.join("users").join(name);
        from_files(
            &pki.join("ca").join("root.pem"),
            &user.join("tls-chain.pem"),
            &user.join("tls-key.pem"),
        )
    }

    /// The server material of a PKI directory: trusts `ca/root.pem` for clients, presents
    /// `ca/server-chain.pem` with `ca/server-key.pem`. Each file is checked here: an error
    /// names the file and why.
    pub fn server_from_pki_dir(pki: &std::path::Path) -> Result<Self, TlsError> {
        let ca = pki.join("ca");
        from_files(
            &ca.join("root.pem"),
            &ca.join("server-chain.pem"),
            &ca.join("server-key.pem"),
        )
    }

    /// The client material of User `name` of an in-memory demo PKI (tests, benches).
    pub fn client_of_demo(pki: &dcc_signing::pki::DemoPki, name: &str) -> Option<Self> {
        let u = pki.user(name)?;
        Some(TlsMaterial {
            ca_pem: pki.root.cert.to_pem().into_bytes(),
            cert_pem: format!("{}{}", u.tls.cert_pem, pki.issuing.cert.to_pem()).into_bytes(),
            key_pem: u.tls.key_pem.clone().into_bytes(),
        })
    }

    /// The server material of an in-memory demo PKI (tests, benches).
    pub fn server_of_demo(pki: &dcc_signing::pki::DemoPki) -> Self {
        TlsMaterial {
            ca_pem: pki.root.cert.to_pem().into_bytes(),
            cert_pem: format!("{}{}", pki.server_tls.cert_pem, pki.issuing.cert.to_pem())
                .into_bytes(),
            key_pem: pki.server_tls.key_pem.clone().into_bytes(),
        }
    }
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what));
    }
    Ok(certs)
}

fn key(pem: &[u8], what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|source| TlsError::Key { what, source })
}

fn roots(pem: &[u8], what: &'static str) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for c in certs(pem, what)? {
        store
            .add(c)
            .map_err(|source| TlsError::Root { what, source })?;
    }
    Ok(Arc::new(store))
}

/// The client side's transport: no streams accepted from the server, and keep-alives every
/// `keep_alive` so that an idle but live connection is not taken for an abandoned one by the
/// server's idle timeout (which must be longer than `keep_alive`).
pub fn client_transport(keep_alive: std::time::Duration) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    // The effective idle timeout is the smaller of the two sides': the server's decides.
    t.max_idle_timeout(Some(quinn::VarInt::from_u32(60_000).into()));
    t.keep_alive_interval(Some(keep_alive));
    Arc::new(t)
}

/// The server side: demands a client certificate from `m.ca_pem`'s CA. Its transport allows
/// `max_streams` concurrent streams per connection, with the other settings of
/// [`Limits::default`](super::server::Limits); [`Server::start`](super::server::Server::start)
/// installs the transport of the limits it is given.
pub fn server_config(m: &TlsMaterial, max_streams: u32) -> Result<quinn::ServerConfig, TlsError> {
    let cfg = rustls_server_config(m, &[&rustls::version::TLS13], ALPN)?;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(cfg)?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let limits = super::server::Limits {
        max_streams_per_connection: max_streams,
        ..super::server::Limits::default()
    };
    sc.transport_config(Arc::new(limits.transport_config()));
    Ok(sc)
}

/// The HTTPS (DUIS) ingress's server side: the same CA-verified client certificates as QUIC,
/// ALPN `http/1.1`; TLS 1.2 too, which DCC Users' HTTPS stacks may still speak.
pub fn https_server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    rustls_server_config(
        m,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        HTTP_ALPN,
    )
    .map(Arc::new)
}

/// The ALPN protocol id of the HTTPS ingress.
pub const HTTP_ALPN: &[u8] = b"http/1.1";

fn rustls_server_config(
    m: &TlsMaterial,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots(&m.ca_pem, "client CA")?,
        provider(),
    )
    .build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            certs(&m.cert_pem, "server certificate")?,
            key(&m.key_pem, "server key")?,
        )?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

fn rustls_client_config(m: &TlsMaterial, alpn: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(&m.ca_pem, "server CA")?)
        .with_client_auth_cert(
            certs(&m.cert_pem, "client certificate")?,
            key(&m.key_pem, "client key")?,
        )?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// The HTTPS (DUIS) client side: trusts `m.ca_pem` for the server and presents `m.cert_pem`.
pub fn https_client_config(m: &TlsMaterial) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    rustls_client_config(m, HTTP_ALPN).map(Arc::new)
}

/// The client side: trusts `m.ca_pem` for the server and presents `m.cert_pem`.
pub fn client_config(m: &TlsMaterial) -> Result<quinn::ClientConfig, TlsError> {
    let cfg = rustls_client_config(m, ALPN)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg)?;
    let mut cc = quinn::ClientConfig::new(Arc::new(quic));
    cc.transport_config(client_transport(crate::client::quic::DEFAULT_KEEP_ALIVE));
    Ok(cc)
}
