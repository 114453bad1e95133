//! The SMKI test PKI: issuance in the profile, parsing, chain validation, CRLs, demo PKI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use dcc_signing::envelope::{Envelope, Header};
use dcc_signing::pki::{
    CaCertificate, CertificateAuthority, ChainError, ChainValidator, Crl, DemoPki, KeyUsage,
    OrgCertRequest, OrgCertificate, PkiError, TrustAnchors,
};
use dcc_signing::verify::{P256Verifier, Verifier};
use dcc_signing::{
    CommandVariant, Eui64, ExecutionKind, RemotePartyRole, RequestId, Signer, Srv, UserRole,
};

/// A fixed "now" (2026-05-28T20:26:40Z) so that every validity check is deterministic.
const NOW: u64 = 1_780_000_000;
const YEAR: u64 = 365 * 86_400;

fn demo() -> DemoPki {
    DemoPki::generate(NOW).unwrap()
}

/// `true` when the OpenSSL CLI is available; otherwise prints one line and returns `false`,
/// unless CI=true, where its absence fails the test.
fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl CLI missing on CI"
        );
        println!("skipping: openssl CLI not found");
    }
    ok
}

#[test]
fn demo_users_are_in_the_profile_and_chain_to_the_root() {
    let pki = demo();
    let v = pki.chain_validator();
    let names: Vec<_> = pki.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["supplier-a", "supplier-b", "netop", "srp", "admin"]);
    for u in &pki.users {
        let c = &u.cert;
        assert_eq!(c.subject_eui64, u.eui64);
        assert_eq!(c.role, u.role);
        assert_eq!(c.key_usage, KeyUsage::SIGNING, "{}", u.name);
        assert!(!c.is_ca);
        assert_eq!(c.public_key, u.signer.public_key());
        assert_eq!(c.not_before, NOW - 86_400);
        v.validate(c, NOW).unwrap();
        // The PEM form parses back to the same certificate.
        let again = OrgCertificate::parse(u.cert_pem.as_bytes()).unwrap();
        assert_eq!(again.id, c.id);
        assert_eq!(again.der, c.der);
        // The id is issuer hash + serial, the issuer being the issuing CA.
        assert_eq!(
            c.id.issuer_hash(),
            pki.issuing.cert.issued_cert_issuer_hash()
        );
        assert_eq!(c.id.serial(), c.serial.as_slice());
    }
    let a = pki.user("supplier-a").unwrap();
    assert_eq!(a.eui64.to_string(), "02-DC-C0-00-00-00-00-01");
    assert_eq!(a.role, RemotePartyRole::Supplier);
    assert_eq!(
        a.user_roles,
        [UserRole::ImportSupplier, UserRole::GasSupplier]
    );
    let n = pki.user("netop").unwrap();
    assert_eq!(n.role, RemotePartyRole::NetworkOperator);
    assert_eq!(n.user_roles, [UserRole::ElectricityDistributor]);
    assert_eq!(pki.user("admin").unwrap().role, RemotePartyRole::Other);
    assert_eq!(pki.user("srp").unwrap().role, RemotePartyRole::Supplier);
    // Two generations give the same EUI-64s, different keys.
    let other = demo();
    assert_eq!(
        other.user("srp").unwrap().eui64,
        pki.user("srp").unwrap().eui64
    );
    assert_ne!(
        other.user("srp").unwrap().cert.public_key,
        pki.user("srp").unwrap().cert.public_key
    );
}

#[test]
fn bulk_users_for_load_generation() {
    let pki = DemoPki::generate_with_users(NOW, 3).unwrap();
    assert_eq!(pki.users.len(), 8);
    let u = pki.user("user-00003").unwrap();
    assert_eq!(u.eui64.to_string(), "02-DC-C0-00-00-01-00-03");
    pki.chain_validator().validate(&u.cert, NOW).unwrap();
    assert_eq!(pki.user_by_eui64(u.eui64).unwrap().name, "user-00003");
}

#[test]
fn certificate_from_another_ca_is_refused() {
    let pki = demo();
    let v = pki.chain_validator();
    let user = Signer::random();
    let req = OrgCertRequest::signing(
        Eui64::from_u64(42),
        RemotePartyRole::Supplier,
        user.public_key(),
        NOW - 10,
        NOW + YEAR,
    );

    // A different CA with a different name: nobody known issued it.
    let rogue =
        CertificateAuthority::new_root("ROGUE", Signer::random(), NOW - 10, NOW + YEAR).unwrap();
    let cert = rogue.issue_org(&req).unwrap();
    assert!(matches!(
        v.validate(&cert, NOW),
        Err(ChainError::UnknownIssuer { .. })
    ));

    // An impostor CA with the issuing CA's very name but its own key: the signature fails.
    let impostor_root = CertificateAuthority::new_root(
        "DCC-ROUTER-DEMO-ROOT",
        Signer::random(),
        NOW - 10,
        NOW + YEAR,
    )
    .unwrap();
    let impostor = impostor_root
        .issue_ca(
            "DCC-ROUTER-DEMO-ISSUING",
            Signer::random(),
            NOW - 10,
            NOW + YEAR,
        )
        .unwrap();
    let cert = impostor.issue_org(&req).unwrap();
    assert_eq!(cert.issuer, pki.issuing.cert.subject);
    assert!(matches!(
        v.validate(&cert, NOW),
        Err(ChainError::BadSignature { .. })
    ));
    // And the impostor issuing CA itself does not chain to the real root.
    assert!(matches!(
        v.validate_ca(&impostor.cert, NOW),
        Err(ChainError::BadSignature { .. })
    ));
    v.validate_ca(&pki.issuing.cert, NOW).unwrap();

    // With only the root and no intermediate, a user certificate cannot be chained.
    let bare = ChainValidator::new(TrustAnchors::new(vec![pki.root.cert.clone()]));
    assert!(matches!(
        bare.validate(&pki.users[0].cert, NOW),
        Err(ChainError::UnknownIssuer { .. })
    ));
}

#[test]
fn expired_and_not_yet_valid_are_refused() {
    let pki = demo();
    let v = pki.chain_validator();
    let key = Signer::random();
    let mut req = OrgCertRequest::signing(
        Eui64::from_u64(7),
        RemotePartyRole::Supplier,
        key.public_key(),
        NOW - 2 * YEAR,
        NOW - YEAR,
    );
    let expired = pki.issuing.issue_org(&req).unwrap();
    assert_eq!(
        v.validate(&expired, NOW),
        Err(ChainError::Expired {
            subject: expired.subject.clone(),
            not_after: NOW - YEAR,
            at: NOW
        })
    );
    // The same certificate was fine while it was valid (the CAs were backdated by a day).
    let v_then = ChainValidator::new(TrustAnchors::new(vec![pki.root.cert.clone()]))
        .with_intermediate(pki.issuing.cert.clone());
    assert!(matches!(
        v_then.validate(&expired, NOW - YEAR - 10),
        Err(ChainError::NotYetValid { .. }) // the *issuing CA* was not valid then
    ));

    req.not_before = NOW + YEAR;
    req.not_after = NOW + 2 * YEAR;
    let future = pki.issuing.issue_org(&req).unwrap();
    assert!(matches!(
        v.validate(&future, NOW),
        Err(ChainError::NotYetValid { .. })
    ));
    v.validate(&future, NOW + YEAR).unwrap();

    // Users outlive nothing: after the user lifetime every certificate is expired.
    assert!(matches!(
        v.validate(&pki.users[0].cert, NOW + 11 * YEAR),
        Err(ChainError::Expired { .. })
    ));
}

#[test]
fn certificate_without_digital_signature_is_refused() {
    let pki = demo();
    let v = pki.chain_validator();
    let key = Signer::random();
    let mut req = OrgCertRequest::signing(
        Eui64::from_u64(8),
        RemotePartyRole::Supplier,
        key.public_key(),
        NOW - 10,
        NOW + YEAR,
    );
    req.key_usage = KeyUsage::KEY_AGREEMENT;
    let ka = pki.issuing.issue_org(&req).unwrap();
    assert!(ka.key_usage.key_agreement && !ka.key_usage.digital_signature);
    assert_eq!(
        v.validate(&ka, NOW),
        Err(ChainError::NotForSigning(ka.subject.clone()))
    );
}

#[test]
fn crl_round_trip_and_revocation() {
    let pki = demo();
    let b = pki.user("supplier-b").unwrap();
    let crl = pki
        .issuing
        .issue_crl(
            &[b.cert.serial.clone(), vec![0x01, 0x02]],
            NOW,
            NOW + 7 * 86_400,
            3,
        )
        .unwrap();
    let parsed = Crl::parse_verified(crl.to_pem().as_bytes(), &pki.issuing.cert).unwrap();
    assert_eq!(parsed.this_update, NOW);
    assert_eq!(parsed.next_update, Some(NOW + 7 * 86_400));
    assert_eq!(parsed.crl_number, Some(3));
    assert_eq!(parsed.revoked.len(), 2);
    assert!(parsed.is_revoked(&b.cert.id));
    assert!(!parsed.is_revoked(&pki.user("supplier-a").unwrap().cert.id));
    assert_eq!(parsed.issuer, pki.issuing.cert.subject);

    // Not the issuer: refused by name.
    assert!(matches!(
        Crl::parse_verified(&crl.der, &pki.root.cert),
        Err(PkiError::CrlIssuer { .. })
    ));
    // Same name, other key: refused by signature.
    let impostor = pki
        .root
        .issue_ca(
            "DCC-ROUTER-DEMO-ISSUING",
            Signer::random(),
            NOW - 10,
            NOW + YEAR,
        )
        .unwrap();
    assert!(matches!(
        Crl::parse_verified(&crl.der, &impostor.cert),
        Err(PkiError::CrlSignature(_))
    ));
    // A tampered CRL (its CRL number changed) no longer verifies.
    let mut bad = crl.der.clone();
    let i = bad.len() - 80; // inside the TBS, before the signature
    bad[i] ^= 1;
    assert!(Crl::parse_verified(&bad, &pki.issuing.cert).is_err());

    // The validator refuses revoked certificates.
    let mut v = pki.chain_validator();
    v.add_revoked(parsed.revoked.iter().copied());
    assert_eq!(
        v.validate(&b.cert, NOW),
        Err(ChainError::Revoked(b.cert.id))
    );
    v.validate(&pki.user("supplier-a").unwrap().cert, NOW)
        .unwrap();

    // An empty CRL is fine too.
    let empty = pki.issuing.issue_crl(&[], NOW, NOW + 1, 4).unwrap();
    assert!(Crl::parse_verified(&empty.der, &pki.issuing.cert)
        .unwrap()
        .revoked
        .is_empty());
}

#[test]
fn openssl_accepts_certificates_and_crl() {
    if !have_openssl() {
        return;
    }
    let pki = demo();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to_dir(dir.path(), false).unwrap();
    let p = |s: &str| dir.path().join(s);
    for u in &pki.users {
        let out = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(p("ca/root.pem"))
            .arg("-untrusted")
            .arg(p("ca/issuing.pem"))
            .arg(p(&format!("users/{}/cert.pem", u.name)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            u.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(p(&format!("users/{}/cert.pem", u.name)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("ecdsa-with-SHA256"), "{text}");
        assert!(text.contains("Version: 3"), "{text}");
        assert!(text.contains("1.2.826.0.1.8641679.1.2.1.4"), "{text}");
        let ou = u.role.to_ou();
        let uid = format!("x500UniqueIdentifier = #030900{}", u.eui64.to_plain_hex());
        assert!(text.contains(&format!("OU = {ou}")), "{text}");
        assert!(text.contains(&uid), "{text}");
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
            "{text}"
        );
        // TLS client certificates chain too, for clientAuth.
        let out = Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile"])
            .arg(p("ca/root.pem"))
            .arg("-untrusted")
            .arg(p("ca/issuing.pem"))
            .arg(p(&format!("users/{}/tls-cert.pem", u.name)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            u.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(p("ca/root.pem"))
        .arg("-untrusted")
        .arg(p("ca/issuing.pem"))
        .arg(p("ca/server-cert.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let crl = pki
        .issuing
        .issue_crl(&[pki.users[1].cert.serial.clone()], NOW, NOW + 86_400, 1)
        .unwrap();
    std::fs::write(p("crl.pem"), crl.to_pem()).unwrap();
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(p("crl.pem"))
        .arg("-CAfile")
        .arg(p("ca/issuing.pem"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&pki.users[1].cert.serial_hex()),
        "serial missing"
    );
    assert!(
        stderr.contains("verify OK") || !stderr.contains("failure"),
        "{stderr}"
    );
    // And with -verify explicitly.
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-verify", "-in"])
        .arg(p("crl.pem"))
        .arg("-CAfile")
        .arg(p("ca/issuing.pem"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("verify OK"),
        "{stderr}"
    );
}

#[test]
fn demo_pki_directory_round_trip() {
    let pki = demo();
    let dir = tempfile::tempdir().unwrap();
    let written = pki.write_to_dir(dir.path(), false).unwrap();
    for f in [
        "ca/root.pem",
        "ca/root-key.pem",
        "ca/issuing.pem",
        "ca/issuing-key.pem",
        "ca/server-cert.pem",
        "ca/server-key.pem",
        "users/supplier-a/cert.pem",
        "users/supplier-a/key.pem",
        "users/netop/tls-cert.pem",
        "users/netop/tls-key.pem",
    ] {
        assert!(written.contains(&dir.path().join(f)), "{f} not written");
    }
    // Refuses to overwrite without force, and writes nothing then.
    assert!(matches!(
        pki.write_to_dir(dir.path(), false),
        Err(PkiError::Exists(_))
    ));
    let back = DemoPki::load_from_dir(dir.path()).unwrap();
    assert_eq!(back.root.cert.der, pki.root.cert.der);
    assert_eq!(back.issuing.cert.der, pki.issuing.cert.der);
    assert_eq!(back.users.len(), pki.users.len());
    for u in &pki.users {
        let b = back.user(&u.name).unwrap();
        assert_eq!(b.cert.der, u.cert.der);
        assert_eq!(b.user_roles, u.user_roles);
        assert_eq!(b.signer.public_key(), u.signer.public_key());
        assert_eq!(b.tls.cert_der, u.tls.cert_der);
    }
    // Certificates alone, without keys.
    let certs = dcc_signing::pki::load_user_certs(dir.path()).unwrap();
    let names: Vec<_> = certs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["admin", "netop", "srp", "supplier-a", "supplier-b"]);
    assert_eq!(certs[3].1.der, pki.user("supplier-a").unwrap().cert.der);
    let (root, issuing) = dcc_signing::pki::load_ca_certs(dir.path()).unwrap();
    assert_eq!(root.der, pki.root.cert.der);
    assert_eq!(issuing.der, pki.issuing.cert.der);
    let chain = std::fs::read_to_string(dir.path().join("users/netop/tls-chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    // Overwriting with force replaces the keys.
    let other = demo();
    other.write_to_dir(dir.path(), true).unwrap();
    let back = DemoPki::load_from_dir(dir.path()).unwrap();
    assert_eq!(back.root.cert.der, other.root.cert.der);
    // A key that does not match its certificate is refused.
    std::fs::copy(
        dir.path().join("users/netop/key.pem"),
        dir.path().join("users/supplier-a/key.pem"),
    )
    .unwrap();
    // ... and the error names the key file.
    match DemoPki::load_from_dir(dir.path()) {
        Err(PkiError::File { path, source }) => {
            assert!(matches!(*source, PkiError::KeyMismatch));
            assert!(path.ends_with("users/supplier-a/key.pem"), "{path:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ca_keys_apart_are_outside_the_pki_dir_and_still_found() {
    let pki = demo();
    let dir = tempfile::tempdir().unwrap();
    let (pki_dir, keys) = (dir.path().join("pki"), dir.path().join("ca-keys"));
    pki.write_with_ca_keys_apart(&pki_dir, &keys).unwrap();
    assert!(!pki_dir.join("ca/root-key.pem").exists());
    assert!(!pki_dir.join("ca/issuing-key.pem").exists());
    for f in ["root.pem", "root-key.pem", "issuing.pem", "issuing-key.pem"] {
        assert!(keys.join(f).exists(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o700);
        assert_eq!(mode(&keys.join("issuing-key.pem")), 0o600);
    }
    // The loader finds the keys in the sibling directory.
    let back = DemoPki::load_from_dir(&pki_dir).unwrap();
    assert_eq!(back.issuing.cert.der, pki.issuing.cert.der);
    // Without them, the error names the usual place.
    std::fs::remove_dir_all(&keys).unwrap();
    let e = DemoPki::load_from_dir(&pki_dir).unwrap_err().to_string();
    assert!(e.contains("ca/root-key.pem"), "{e}");
    // What a server reads needs no key.
    dcc_signing::pki::load_ca_certs(&pki_dir).unwrap();
    // A garbage certificate is refused naming the file.
    std::fs::write(pki_dir.join("ca/root.pem"), "garbage").unwrap();
    let e = dcc_signing::pki::load_ca_certs(&pki_dir)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ca/root.pem"), "{e}");
}

#[test]
fn demo_user_signs_envelopes_that_verify_with_its_certificate_key() {
    let pki = demo();
    let u = pki.user("supplier-a").unwrap();
    let header = Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::NON_CRITICAL_WAN,
        execution: ExecutionKind::OnDemand,
        srv: Srv::new2(2, 2),
        request_id: RequestId {
            originator: u.eui64,
            target: Eui64::from_u64(0x00DB_1234_5678_0004),
            counter: 1,
        },
        execute_at: 0,
        signer: u.cert.id,
    };
    let bytes = u.signer.sign_envelope(&header, b"body").unwrap();
    let env = Envelope::decode(&bytes).unwrap();
    assert_eq!(env.header.signer, u.cert.id);
    let key = P256Verifier.prepare(&u.cert.public_key);
    key.verify_prehash(&env.digest(), env.signature).unwrap();
    let other = P256Verifier.prepare(&pki.user("supplier-b").unwrap().cert.public_key);
    assert!(other.verify_prehash(&env.digest(), env.signature).is_err());
}

#[test]
fn hostile_inputs_are_refused_without_panic() {
    let pki = demo();
    let der = pki.users[0].cert.der.clone();
    // Every truncation.
    for n in 0..der.len() {
        assert!(
            OrgCertificate::parse(&der[..n]).is_err(),
            "truncated at {n} accepted"
        );
    }
    // Every single-byte corruption either fails to parse or parses (the signature would then
    // fail the chain); it never panics.
    let v = pki.chain_validator();
    for i in 0..der.len() {
        let mut d = der.clone();
        d[i] ^= 0x5A;
        if let Ok(c) = OrgCertificate::parse(&d) {
            assert!(
                v.validate(&c, NOW).is_err(),
                "corruption at {i} still validates"
            );
        }
    }
    // Oversized input.
    let big = vec![0x30u8; 2 * 1024 * 1024];
    assert!(matches!(
        OrgCertificate::parse(&big),
        Err(PkiError::TooLarge { .. })
    ));
    // PEM with no certificate, or a key instead.
    assert!(OrgCertificate::parse(b"hello").is_err());
    assert!(OrgCertificate::parse(pki.users[0].key_pem.as_bytes()).is_err());
    assert!(OrgCertificate::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
    // A CA certificate is not an Organisation Certificate (no EUI-64), and vice versa.
    assert!(matches!(
        OrgCertificate::parse(pki.root.cert.to_pem().as_bytes()),
        Err(PkiError::MissingEui64)
    ));
    assert!(matches!(
        CaCertificate::parse(&der),
        Err(PkiError::NotCa(_))
    ));
    // A bundle parses into its members.
    let bundle = format!("{}{}", pki.issuing.cert.to_pem(), pki.root.cert.to_pem());
    assert_eq!(
        CaCertificate::parse_all(bundle.as_bytes()).unwrap().len(),
        2
    );
    assert!(CaCertificate::parse(bundle.as_bytes()).is_err());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn fixture() -> &'static (DemoPki, Crl) {
        static F: OnceLock<(DemoPki, Crl)> = OnceLock::new();
        F.get_or_init(|| {
            let pki = demo();
            let crl = pki
                .issuing
                .issue_crl(&[vec![1, 2, 3]], NOW, NOW + 86_400, 1)
                .unwrap();
            (pki, crl)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let (pki, _) = fixture();
            let _ = OrgCertificate::parse(&bytes);
            let _ = CaCertificate::parse_all(&bytes);
            let _ = Crl::parse_verified(&bytes, &pki.issuing.cert);
        }

        #[test]
        fn mutated_certificates_and_crls_never_validate_wrongly(
            i in any::<prop::sample::Index>(),
            x in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let (pki, crl) = fixture();
            let mut d = pki.users[0].cert.der.clone();
            let at = i.index(d.len());
            d[at] ^= x;
            if let Ok(c) = OrgCertificate::parse(&d) {
                prop_assert!(pki.chain_validator().validate(&c, NOW).is_err());
            }
            let mut c = crl.der.clone();
            let at = i.index(c.len());
            c[at] ^= x;
            prop_assert!(Crl::parse_verified(&c, &pki.issuing.cert).is_err());
            let n = cut.index(crl.der.len());
            prop_assert!(Crl::parse_verified(&crl.der[..n], &pki.issuing.cert).is_err());
        }
    }
}

#[test]
fn seeded_generation_is_reproducible() {
    let a = DemoPki::generate_seeded(NOW, 2, 7).unwrap();
    let b = DemoPki::generate_seeded(NOW, 2, 7).unwrap();
    let c = DemoPki::generate_seeded(NOW, 2, 8).unwrap();
    assert_eq!(a.root.cert.der, b.root.cert.der);
    assert_eq!(a.issuing.cert.der, b.issuing.cert.der);
    assert_eq!(a.server_tls.cert_der, b.server_tls.cert_der);
    assert_eq!(a.server_tls.key_pem, b.server_tls.key_pem);
    assert_eq!(a.users.len(), 7);
    for (x, y) in a.users.iter().zip(&b.users) {
        assert_eq!(x.cert.der, y.cert.der);
        assert_eq!(x.key_pem, y.key_pem);
        assert_eq!(x.tls.cert_der, y.tls.cert_der);
        assert_ne!(x.signer.public_key(), x.tls.signer.public_key());
    }
    assert_ne!(a.root.cert.der, c.root.cert.der);
    assert_ne!(a.users[0].key_pem, c.users[0].key_pem);
    // Distinct keys and serials everywhere, and it validates like a random one.
    let keys: std::collections::HashSet<_> = a
        .users
        .iter()
        .map(|u| u.signer.public_key().to_sec1_bytes().to_vec())
        .collect();
    assert_eq!(keys.len(), a.users.len());
    let ids: std::collections::HashSet<_> = a.users.iter().map(|u| u.cert.id).collect();
    assert_eq!(ids.len(), a.users.len());
    for u in &a.users {
        a.chain_validator().validate(&u.cert, NOW).unwrap();
    }
}
