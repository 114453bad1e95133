//! Interoperability with an independent ECDSA implementation (the OpenSSL CLI), both ways:
//! signatures made here verify under `openssl dgst -verify`, and signatures made by
//! `openssl dgst -sign` verify with [`P256Verifier`] and pass `dcc-sign verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use dcc_signing::envelope::{encode_unsigned, Envelope, Header};
use dcc_signing::pki::DemoPki;
use dcc_signing::verify::{P256Verifier, Verifier};
use dcc_signing::{CommandVariant, Eui64, ExecutionKind, FastSigner, RequestId, Srv, UserRole};
use p256::ecdsa::Signature;
use sha2::{Digest, Sha256};

const NOW: u64 = 1_780_000_000;

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

fn openssl(args: &[&str], files: &[&Path]) -> std::process::Output {
    let mut c = Command::new("openssl");
    c.args(args);
    for f in files {
        c.arg(f);
    }
    c.output().unwrap()
}

fn header(u: &dcc_signing::pki::DemoUser, counter: u64) -> Header {
    Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::NON_CRITICAL_WAN,
        execution: ExecutionKind::OnDemand,
        srv: Srv::new2(2, 2),
        request_id: RequestId {
            originator: u.eui64,
            target: Eui64::from_u64(0x00DB_1234_5678_0004),
            counter,
        },
        execute_at: 0,
        signer: u.cert.id,
    }
}

#[test]
fn our_signatures_verify_under_openssl() {
    if !have_openssl() {
        return;
    }
    let pki = DemoPki::generate(NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to_dir(dir.path(), false).unwrap();
    let p = |s: &str| dir.path().join(s);
    // OpenSSL extracts the public key from the certificate itself.
    let u = pki.user("supplier-a").unwrap();
    let o = openssl(
        &["x509", "-pubkey", "-noout", "-in"],
        &[&p("users/supplier-a/cert.pem")],
    );
    assert!(o.status.success());
    std::fs::write(p("pub.pem"), &o.stdout).unwrap();

    for counter in 1..=8u64 {
        let body = vec![counter as u8; counter as usize * 7];
        let env_bytes = u.signer.sign_envelope(&header(u, counter), &body).unwrap();
        let env = Envelope::decode(&env_bytes).unwrap();
        let o = openssl_verify(dir.path(), env.signed, env.signature);
        assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Verified OK"),
            "counter {counter}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // And OpenSSL refuses it over other data.
        let mut other = env.signed.to_vec();
        other[20] ^= 1;
        let o = openssl_verify(dir.path(), &other, env.signature);
        assert!(!o.status.success(), "OpenSSL accepted tampered data");
    }
}

/// `openssl dgst -sha256 -verify DIR/pub.pem` of `signed` against `r ‖ s` (written as DER).
fn openssl_verify(dir: &Path, signed: &[u8], rs: &[u8]) -> std::process::Output {
    std::fs::write(dir.join("data"), signed).unwrap();
    // r‖s → DER, as OpenSSL wants it.
    let der = Signature::from_slice(rs).unwrap().to_der();
    std::fs::write(dir.join("sig.der"), der.as_bytes()).unwrap();
    openssl(
        &["dgst", "-sha256", "-verify"],
        &[
            &dir.join("pub.pem"),
            Path::new("-signature"),
            &dir.join("sig.der"),
            &dir.join("data"),
        ],
    )
}

/// The load generator's fast signer (`dcc_signing::sign_fast`): every signature it makes here,
/// over several Users' keys, verifies under OpenSSL, equals `p256`'s byte for byte, and is
/// refused by OpenSSL over other data.
#[test]
fn fast_signer_signatures_verify_under_openssl() {
    if !have_openssl() {
        return;
    }
    let pki = DemoPki::generate(NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to_dir(dir.path(), false).unwrap();
    let mut checked = 0;
    for name in ["supplier-a", "supplier-b", "netop"] {
        let Some(u) = pki.user(name) else { continue };
        let cert = dir.path().join(format!("users/{name}/cert.pem"));
        let o = openssl(&["x509", "-pubkey", "-noout", "-in"], &[&cert]);
        assert!(o.status.success());
        std::fs::write(dir.path().join("pub.pem"), &o.stdout).unwrap();
        let fast = FastSigner::from_signer(&u.signer).unwrap();
        for counter in 1..=12u64 {
            let body = vec![counter as u8 ^ 0x5a; counter as usize * 11];
            let h = header(u, counter);
            let env_bytes = fast.sign_envelope(&h, &body).unwrap();
            assert_eq!(env_bytes, u.signer.sign_envelope(&h, &body).unwrap());
            let env = Envelope::decode(&env_bytes).unwrap();
            let o = openssl_verify(dir.path(), env.signed, env.signature);
            assert!(
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Verified OK"),
                "{name} counter {counter}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let mut other = env.signed.to_vec();
            other[7] ^= 0x80;
            let o = openssl_verify(dir.path(), &other, env.signature);
            assert!(!o.status.success(), "OpenSSL accepted tampered data");
            checked += 1;
        }
    }
    assert!(
        checked >= 24,
        "at least two demo Users signed ({checked} signatures)"
    );
}

#[test]
fn dcc_sign_cli_signatures_verify_under_openssl() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    let bin = env!("CARGO_BIN_EXE_dcc-sign");
    let o = Command::new(bin)
        .args(["pki", "init", "--dir"])
        .arg(p("pki"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = Command::new(bin)
        .args(["sign", "--key"])
        .arg(p("pki/users/netop/key.pem"))
        .arg("--cert")
        .arg(p("pki/users/netop/cert.pem"))
        .args([
            "--srv",
            "6.23",
            "--target",
            "00DB123456780004",
            "--counter",
            "9",
            "--body-hex",
            "cafe",
            "--out",
        ])
        .arg(p("req"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(p("req")).unwrap();
    let env = Envelope::decode(&bytes).unwrap();
    std::fs::write(p("data"), env.signed).unwrap();
    std::fs::write(
        p("sig.der"),
        Signature::from_slice(env.signature)
            .unwrap()
            .to_der()
            .as_bytes(),
    )
    .unwrap();
    let o = openssl(
        &["x509", "-pubkey", "-noout", "-in"],
        &[&p("pki/users/netop/cert.pem")],
    );
    std::fs::write(p("pub.pem"), &o.stdout).unwrap();
    let o = openssl(
        &["dgst", "-sha256", "-verify"],
        &[
            &p("pub.pem"),
            Path::new("-signature"),
            &p("sig.der"),
            &p("data"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn openssl_signatures_verify_with_p256_verifier_and_dcc_sign() {
    if !have_openssl() {
        return;
    }
    let pki = DemoPki::generate(NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to_dir(dir.path(), false).unwrap();
    let p = |s: &str| dir.path().join(s);
    let u = pki.user("supplier-b").unwrap();
    let key = P256Verifier.prepare(&u.cert.public_key);
    for counter in 1..=8u64 {
        // OpenSSL signs the unsigned envelope with the User's PKCS#8 key file.
        let unsigned = encode_unsigned(&header(u, counter), b"from openssl").unwrap();
        std::fs::write(p("data"), &unsigned).unwrap();
        let o = openssl(
            &["dgst", "-sha256", "-sign"],
            &[
                &p("users/supplier-b/key.pem"),
                Path::new("-out"),
                &p("sig.der"),
                &p("data"),
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // DER → r‖s.
        let sig = Signature::from_der(&std::fs::read(p("sig.der")).unwrap()).unwrap();
        let rs: [u8; 64] = sig.to_bytes().into();
        let digest: [u8; 32] = Sha256::digest(&unsigned).into();
        key.verify_prehash(&digest, &rs).unwrap();
        // Not with another User's key.
        let other = P256Verifier.prepare(&pki.user("supplier-a").unwrap().cert.public_key);
        assert!(other.verify_prehash(&digest, &rs).is_err());

        // The completed envelope passes `dcc-sign verify` (chain, validity, signature).
        let mut env = unsigned.clone();
        env.extend_from_slice(&rs);
        std::fs::write(p("req"), &env).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_dcc-sign"))
            .args(["verify", "--ca"])
            .arg(p("ca/root.pem"))
            .arg("--cert")
            .arg(p("users/supplier-b/cert.pem"))
            .args(["--at", &NOW.to_string()])
            .arg(p("req"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn openssl_signs_with_a_dcc_boxed_key() {
    // A real DCC Boxed key (PKCS#8 DER): OpenSSL signs, our verifier checks against the public
    // key parsed from its certificate.
    let dir = std::env::var_os("DCC_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
        })
        .join("dccboxed/certs");
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "shared vectors not found at {} (required on CI)",
            dir.display()
        );
        println!("skipping: shared vectors not found at {}", dir.display());
        return;
    }
    if !have_openssl() {
        return;
    }
    let cert = dcc_signing::pki::OrgCertificate::parse(
        &std::fs::read(dir.join("xml-sign-00DB123456780004-ds.pem")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sig = tmp.path().join("sig.der");
    std::fs::write(&data, b"GB smart metering").unwrap();
    let o = openssl(
        &["dgst", "-sha256", "-keyform", "DER", "-sign"],
        &[
            &dir.join("xml-sign-00DB123456780004-ds.key"),
            Path::new("-out"),
            &sig,
            &data,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = Signature::from_der(&std::fs::read(&sig).unwrap()).unwrap();
    let rs: [u8; 64] = s.to_bytes().into();
    let digest: [u8; 32] = Sha256::digest(b"GB smart metering").into();
    P256Verifier
        .prepare(&cert.public_key)
        .verify_prehash(&digest, &rs)
        .unwrap();
}
