//! The demo PKI's TLS certificates are accepted by rustls' webpki verifiers, as the router's
//! QUIC endpoint will use them: the server certificate for `localhost`/127.0.0.1, and each
//! User's client certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dcc_signing::pki::DemoPki;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::RootCertStore;

const NOW: u64 = 1_780_000_000;

fn pkcs8_der(pem: &str) -> Vec<u8> {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    p256::SecretKey::from_pkcs8_pem(pem)
        .unwrap()
        .to_pkcs8_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn webpki_accepts_server_and_client_certificates() {
    let pki = DemoPki::generate(NOW).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.root.cert.der.clone()))
        .unwrap();
    let roots = Arc::new(roots);
    let intermediates = [CertificateDer::from(pki.issuing.cert.der.clone())];
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW));

    let server = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let leaf = CertificateDer::from(pki.server_tls.cert_der.clone());
    for name in ["localhost", "127.0.0.1", "::1"] {
        let sn = ServerName::try_from(name).unwrap();
        server
            .verify_server_cert(&leaf, &intermediates, &sn, &[], now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = ServerName::try_from("example.com").unwrap();
    assert!(server
        .verify_server_cert(&leaf, &intermediates, &wrong, &[], now)
        .is_err());
    // A User's client certificate is not a server certificate.
    let client_leaf = CertificateDer::from(pki.users[0].tls.cert_der.clone());
    assert!(server
        .verify_server_cert(
            &client_leaf,
            &intermediates,
            &ServerName::try_from("localhost").unwrap(),
            &[],
            now
        )
        .is_err());

    let client =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .unwrap();
    for u in &pki.users {
        let leaf = CertificateDer::from(u.tls.cert_der.clone());
        client
            .verify_client_cert(&leaf, &intermediates, now)
            .unwrap_or_else(|e| panic!("{}: {e}", u.name));
        // Its key loads into rustls, and is not the signing key.
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_der(&u.tls.key_pem)));
        provider.key_provider.load_private_key(key).unwrap();
        assert_ne!(u.tls.signer.public_key(), u.signer.public_key());
    }
    // Expired by then.
    let later = UnixTime::since_unix_epoch(Duration::from_secs(NOW + 11 * 365 * 86_400));
    let leaf = CertificateDer::from(pki.users[0].tls.cert_der.clone());
    assert!(client
        .verify_client_cert(&leaf, &intermediates, later)
        .is_err());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_der(&pki.server_tls.key_pem)));
    provider.key_provider.load_private_key(key).unwrap();
}
