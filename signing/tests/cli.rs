//! The `dcc-sign` binary, end to end, from a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fixed time: the PKI is issued "at" it and verification happens at it.
const NOW: u64 = 1_780_000_000;
const TARGET: &str = "00-DB-12-34-56-78-00-04";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dcc-sign"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a refusal: non-zero exit, exactly one line on stderr, containing `needle`.
fn assert_refused(o: &Output, needle: &str) {
    assert!(!o.status.success(), "accepted: {}", stdout(o));
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "not one line: {e:?}");
    assert!(e.starts_with("dcc-sign: "), "{e}");
    assert!(e.contains(needle), "{e:?} lacks {needle:?}");
}

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

struct Pki {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn init() -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let o = run(&["pki", "init", "--dir", s(&dir), "--now", &NOW.to_string()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("ca/root.pem"));
        Pki { _tmp: tmp, dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    fn user(&self, name: &str, file: &str) -> PathBuf {
        self.dir.join("users").join(name).join(file)
    }
    /// Signs as `user` into `out`, at `NOW` unless `extra` gives `--now`.
    fn sign(&self, user: &str, out: &Path, extra: &[&str]) -> Output {
        let key = self.user(user, "key.pem");
        self.sign_with(&key, &self.user(user, "cert.pem"), out, extra)
    }
    /// Signs SRV 2.2 (unless `extra` gives `--srv`) with any key and certificate.
    fn sign_with(&self, key: &Path, cert: &Path, out: &Path, extra: &[&str]) -> Output {
        let now = NOW.to_string();
        let mut args = vec![
            "sign",
            "--key",
            s(key),
            "--cert",
            s(cert),
            "--target",
            TARGET,
            "--counter",
            "1000",
            "--out",
            s(out),
        ];
        if !extra.contains(&"--srv") {
            args.extend_from_slice(&["--srv", "2.2"]);
        }
        if !extra.contains(&"--now") {
            args.extend_from_slice(&["--now", &now]);
        }
        args.extend_from_slice(extra);
        run(&args)
    }
    fn verify(&self, user: &str, file: &Path, extra: &[&str]) -> Output {
        let root = self.p("ca/root.pem");
        let cert = self.user(user, "cert.pem");
        let at = NOW.to_string();
        let mut args = vec!["verify", "--ca", s(&root), "--cert", s(&cert)];
        if !extra.contains(&"--at") {
            args.extend_from_slice(&["--at", &at]);
        }
        args.extend_from_slice(extra);
        args.push(s(file));
        run(&args)
    }
}

#[test]
fn init_sign_verify_accepts_and_tampering_is_refused() {
    let pki = Pki::init();
    let env = pki.dir.join("req.dcsr");
    let o = pki.sign("supplier-a", &env, &["--body-hex", "00112233445566778899"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pki.verify("supplier-a", &env, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("OK: 02-DC-C0-00-00-00-00-01:00-DB-12-34-56-78-00-04:1000"));

    let good = std::fs::read(&env).unwrap();
    let bad = pki.dir.join("bad.dcsr");
    // One flipped byte in the body, then in the signature.
    let body_at = 77 + 3;
    let sig_at = good.len() - 10;
    for (at, needle) in [
        (body_at, "signature does not verify"),
        (sig_at, "signature does not verify"),
    ] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        std::fs::write(&bad, &b).unwrap();
        assert_refused(&pki.verify("supplier-a", &bad, &[]), needle);
    }
    // Every single flipped byte, anywhere, is refused.
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x80;
        std::fs::write(&bad, &b).unwrap();
        let o = pki.verify("supplier-a", &bad, &[]);
        assert!(!o.status.success(), "flip at byte {i} accepted");
        assert_eq!(stderr(&o).lines().count(), 1);
    }
    // A truncated file and a stranger's file are refused as malformed.
    std::fs::write(&bad, &good[..good.len() - 1]).unwrap();
    assert_refused(&pki.verify("supplier-a", &bad, &[]), "malformed envelope");
    std::fs::write(&bad, b"hello").unwrap();
    assert_refused(&pki.verify("supplier-a", &bad, &[]), "too-short");
}

#[test]
fn wrong_certificate_other_ca_and_expiry_are_refused() {
    let pki = Pki::init();
    let env = pki.dir.join("req.dcsr");
    assert!(pki.sign("supplier-a", &env, &[]).status.success());
    // Another User's certificate.
    assert_refused(
        &pki.verify("supplier-b", &env, &[]),
        "is not the certificate",
    );
    // Another PKI's root: the chain does not hold.
    let other = Pki::init();
    let o = run(&[
        "verify",
        "--ca",
        s(&other.p("ca/root.pem")),
        "--cert",
        s(&pki.user("supplier-a", "cert.pem")),
        "--at",
        &NOW.to_string(),
        s(&env),
    ]);
    assert_refused(&o, "refused: certificate");
    // Without the issuing CA (explicit empty chain: a --chain with the root only).
    let o = run(&[
        "verify",
        "--ca",
        s(&pki.p("ca/root.pem")),
        "--chain",
        s(&pki.p("ca/root.pem")),
        "--cert",
        s(&pki.user("supplier-a", "cert.pem")),
        "--at",
        &NOW.to_string(),
        s(&env),
    ]);
    assert_refused(&o, "is not a trusted or known CA");
    // A PEM bundle as --ca works too (issuing + root, no sibling lookup needed).
    let o = run(&[
        "verify",
        "--ca",
        s(&pki.p("ca/chain.pem")),
        "--cert",
        s(&pki.user("supplier-a", "cert.pem")),
        "--at",
        &NOW.to_string(),
        s(&env),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Expired: 11 years on.
    let later = (NOW + 11 * 365 * 86_400).to_string();
    assert_refused(
        &pki.verify("supplier-a", &env, &["--at", &later]),
        "expired",
    );
    // Not yet valid: before issuance.
    assert_refused(
        &pki.verify("supplier-a", &env, &["--at", "1000000000"]),
        "not valid before",
    );
}

#[test]
fn sign_checks_key_roles_and_arguments() {
    let pki = Pki::init();
    let out = pki.dir.join("r.dcsr");
    // Key of another User.
    let o = run(&[
        "sign",
        "--key",
        s(&pki.user("supplier-b", "key.pem")),
        "--cert",
        s(&pki.user("supplier-a", "cert.pem")),
        "--srv",
        "2.2",
        "--target",
        TARGET,
        "--counter",
        "1",
        "--out",
        s(&out),
    ]);
    assert_refused(&o, "does not match the certificate");
    assert!(!out.exists());

    // Default roles from the certificate.
    let inspect = |p: &Path| -> serde_json::Value {
        let o = run(&["inspect", "--json", s(p)]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert!(pki.sign("netop", &out, &[]).status.success());
    assert_eq!(inspect(&out)["user_role"], "ED");
    assert!(pki.verify("netop", &out, &[]).status.success());
    assert!(pki.sign("srp", &out, &[]).status.success());
    assert_eq!(inspect(&out)["user_role"], "IS");
    assert_refused(&pki.sign("admin", &out, &[]), "pass --role");
    assert!(pki.sign("admin", &out, &["--role", "OU"]).status.success());
    assert_eq!(inspect(&out)["user_role"], "OU");

    // Future-dated, CV 4, GS.
    let o = pki.sign(
        "supplier-a",
        &out,
        &[
            "--role",
            "GS",
            "--cv",
            "4",
            "--execution",
            "future-dated",
            "--at",
            "1893456000",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j = inspect(&out);
    assert_eq!(j["user_role"], "GS");
    assert_eq!(j["command_variant"], 4);
    assert_eq!(j["execution"], "future-dated");
    assert_eq!(j["execute_at"], 1_893_456_000u64);
    assert_eq!(j["srv"], "2.2");
    assert_eq!(j["counter"], 1000);
    assert_eq!(j["originator"], "02-DC-C0-00-00-00-00-01");
    assert_eq!(j["target"], TARGET);
    assert!(pki.verify("supplier-a", &out, &[]).status.success());

    assert_refused(
        &pki.sign("supplier-a", &out, &["--execution", "future-dated"]),
        "needs --at",
    );
    assert_refused(&pki.sign("supplier-a", &out, &["--cv", "9"]), "not 1..=8");
    assert_refused(&pki.sign("supplier-a", &out, &["--role", "XX"]), "XX");
    assert_refused(
        &pki.sign("supplier-a", &out, &["--body-hex", "zz"]),
        "--body-hex",
    );
    // Usage errors: exit 2, one line.
    let o = run(&["sign", "--srv", "2.2"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn inspect_prints_every_field() {
    let pki = Pki::init();
    let out = pki.dir.join("r.dcsr");
    assert!(pki
        .sign("supplier-a", &out, &["--body-hex", "ABCDEF"])
        .status
        .success());
    let o = run(&["inspect", s(&out)]);
    assert!(o.status.success());
    let text = stdout(&o);
    for field in [
        "version",
        "user role         IS (1)",
        "command variant   1",
        "execution         on-demand",
        "execute at        0",
        "SRV               2.2",
        "request id        02-DC-C0-00-00-00-00-01:00-DB-12-34-56-78-00-04:1000",
        "signer",
        "body length       3",
        "body (hex)        abcdef",
        "signature r||s",
        "digest (SHA-256)",
    ] {
        assert!(text.contains(field), "{field:?} missing from\n{text}");
    }
    let j: serde_json::Value =
        serde_json::from_slice(&run(&["inspect", "--json", s(&out)]).stdout).unwrap();
    assert_eq!(j["signature"].as_str().unwrap().len(), 128);
    assert_eq!(j["digest"].as_str().unwrap().len(), 64);
    assert_eq!(j["body_length"], 3);
    assert_eq!(j["length"], 77 + 3 + 64);
}

#[test]
fn crl_revokes_and_openssl_agrees() {
    let pki = Pki::init();
    let env = pki.dir.join("req.dcsr");
    assert!(pki.sign("supplier-a", &env, &[]).status.success());
    let crl = pki.dir.join("crl.pem");
    let o = run(&[
        "crl",
        "--ca-dir",
        s(&pki.p("ca")),
        "--revoke-cert",
        s(&pki.user("supplier-a", "cert.pem")),
        "--revoke",
        "0x01:02",
        "--now",
        &NOW.to_string(),
        "--out",
        s(&crl),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 revoked"));
    let crl_s = s(&crl).to_owned();
    assert_refused(
        &pki.verify("supplier-a", &env, &["--crl", &crl_s]),
        "revoked",
    );
    // Others are unaffected.
    let env_b = pki.dir.join("b.dcsr");
    assert!(pki.sign("supplier-b", &env_b, &[]).status.success());
    assert!(pki
        .verify("supplier-b", &env_b, &["--crl", &crl_s])
        .status
        .success());
    // A CRL from another PKI is refused.
    let other = Pki::init();
    let crl2 = pki.dir.join("crl2.pem");
    assert!(run(&[
        "crl",
        "--ca-dir",
        s(&other.p("ca")),
        "--revoke",
        "05",
        "--out",
        s(&crl2)
    ])
    .status
    .success());
    assert_refused(
        &pki.verify("supplier-b", &env_b, &["--crl", s(&crl2)]),
        "not signed by a trusted CA",
    );
    // Revoking a certificate of another CA is refused.
    assert_refused(
        &run(&[
            "crl",
            "--ca-dir",
            s(&other.p("ca")),
            "--revoke-cert",
            s(&pki.user("supplier-a", "cert.pem")),
            "--out",
            s(&crl2),
        ]),
        "issued by",
    );
    assert_refused(
        &run(&[
            "crl",
            "--ca-dir",
            s(&pki.p("ca")),
            "--revoke",
            "00",
            "--out",
            s(&crl2),
        ]),
        "not a serial",
    );
    if !have_openssl() {
        return;
    }
    let o = Command::new("openssl")
        .args(["crl", "-noout", "-verify", "-in"])
        .arg(&crl)
        .arg("-CAfile")
        .arg(pki.p("ca/issuing.pem"))
        .output()
        .unwrap();
    assert!(
        o.status.success() && stderr(&o).contains("verify OK"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pki_init_refuses_to_overwrite_and_certificates_chain_under_openssl() {
    let pki = Pki::init();
    let o = run(&["pki", "init", "--dir", s(&pki.dir)]);
    assert_refused(&o, "already exists");
    let o = run(&["pki", "init", "--dir", s(&pki.dir), "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "ca/root.pem",
        "ca/root-key.pem",
        "ca/issuing.pem",
        "ca/issuing-key.pem",
    ] {
        assert!(pki.p(f).is_file(), "{f}");
    }
    let users = ["supplier-a", "supplier-b", "netop", "srp", "admin"];
    for u in users {
        assert!(pki.user(u, "cert.pem").is_file());
        let key = std::fs::read_to_string(pki.user(u, "key.pem")).unwrap();
        assert!(
            key.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{u}: not PKCS#8"
        );
    }
    if !have_openssl() {
        return;
    }
    for u in users {
        let o = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(pki.p("ca/root.pem"))
            .arg("-untrusted")
            .arg(pki.p("ca/issuing.pem"))
            .arg(pki.user(u, "cert.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{u}: {}", stderr(&o));
        assert!(stdout(&o).contains(": OK"), "{u}: {}", stdout(&o));
        // The PKCS#8 key is readable by OpenSSL too.
        let o = Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(pki.user(u, "key.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{u}: {}", stderr(&o));
    }
}

#[test]
fn help_on_every_subcommand() {
    for args in [
        vec!["--help"],
        vec!["pki", "--help"],
        vec!["pki", "init", "--help"],
        vec!["sign", "--help"],
        vec!["verify", "--help"],
        vec!["inspect", "--help"],
        vec!["crl", "--help"],
    ] {
        let o = run(&args);
        assert!(o.status.success(), "{args:?}");
        let text = stdout(&o);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
        if args.len() > 1 {
            assert!(
                text.contains("Examples:"),
                "{args:?} has no examples: {text}"
            );
        }
    }
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn pki_init_with_a_seed_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let now = NOW.to_string();
    for d in ["a", "b"] {
        let dir = tmp.path().join(d);
        let o = run(&[
            "pki",
            "init",
            "--dir",
            s(&dir),
            "--seed",
            "7",
            "--now",
            &now,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in [
        "ca/root.pem",
        "ca/issuing-key.pem",
        "users/srp/cert.pem",
        "users/srp/key.pem",
    ] {
        let a = std::fs::read(tmp.path().join("a").join(f)).unwrap();
        let b = std::fs::read(tmp.path().join("b").join(f)).unwrap();
        assert_eq!(a, b, "{f} differs");
    }
}

/// Runs `openssl` with `args`, asserting success.
fn openssl(args: &[&str]) {
    let o = Command::new("openssl").args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
}

/// Asserts that signing with `key` (and supplier-a's certificate) is refused, with a message
/// that names the key file, `found` (what the key really is) and what dcc-sign needs, and not
/// the P-256 OID a decoder expected.
fn assert_key_refused(pki: &Pki, key: &Path, found: &str) {
    let out = pki.dir.join("wrong-key.dcsr");
    let o = pki.sign_with(key, &pki.user("supplier-a", "cert.pem"), &out, &[]);
    assert_refused(&o, &format!("{}: {found}", s(key)));
    assert_refused(&o, "dcc-sign needs an ECDSA P-256 key (prime256v1)");
    assert!(
        !stderr(&o).contains("1.2.840.10045.3.1.7"),
        "names the expected OID: {}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn sign_names_a_p384_key() {
    if !have_openssl() {
        return;
    }
    let pki = Pki::init();
    // SEC1 (`EC PARAMETERS` + `EC PRIVATE KEY`, as `ecparam -genkey` writes it) and PKCS#8.
    let sec1 = pki.dir.join("p384-sec1.pem");
    let p8 = pki.dir.join("p384.pem");
    openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-out", s(&sec1)]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        s(&sec1),
        "-out",
        s(&p8),
    ]);
    for key in [&sec1, &p8] {
        assert_key_refused(&pki, key, "an EC key on secp384r1 (1.3.132.0.34)");
    }
    // A certificate for that key, issued by the demo issuing CA with ecdsa-with-SHA256: the
    // certificate is refused for its public key, named the same way.
    let csr = pki.dir.join("p384.csr");
    let cert = pki.dir.join("p384-cert.pem");
    openssl(&[
        "req",
        "-new",
        "-key",
        s(&p8),
        "-subj",
        "/CN=p384",
        "-out",
        s(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&pki.p("ca/issuing.pem")),
        "-CAkey",
        s(&pki.p("ca/issuing-key.pem")),
        "-set_serial",
        "7",
        "-days",
        "1",
        "-sha256",
        "-out",
        s(&cert),
    ]);
    let o = pki.sign_with(&p8, &cert, &pki.dir.join("r.dcsr"), &[]);
    assert_refused(
        &o,
        &format!(
            "{}: the certificate's public key is an EC key on secp384r1 (1.3.132.0.34); \
             dcc-sign needs an ECDSA P-256 key (prime256v1)",
            s(&cert)
        ),
    );
    // A SEC1 key on P-256 itself is refused for its format, with the conversion.
    let p256 = pki.dir.join("p256-sec1.pem");
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-out",
        s(&p256),
    ]);
    let o = pki.sign_with(
        &p256,
        &pki.user("supplier-a", "cert.pem"),
        &pki.dir.join("r"),
        &[],
    );
    assert_refused(&o, "a SEC1 \"EC PRIVATE KEY\", not PKCS#8");
    assert_refused(&o, "openssl pkcs8 -topk8 -nocrypt");
}

#[test]
fn sign_names_an_rsa_key() {
    if !have_openssl() {
        return;
    }
    let pki = Pki::init();
    let p8 = pki.dir.join("rsa.pem");
    let pkcs1 = pki.dir.join("rsa-pkcs1.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&p8),
    ]);
    openssl(&["rsa", "-in", s(&p8), "-traditional", "-out", s(&pkcs1)]);
    for key in [&p8, &pkcs1] {
        assert_key_refused(&pki, key, "an RSA key (1.2.840.113549.1.1.1)");
    }
    // DER too: PKCS#8, and PKCS#1 as `openssl pkey -outform DER` writes it.
    let p8_der = pki.dir.join("rsa.p8.der");
    let pkcs1_der = pki.dir.join("rsa.der");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        s(&p8),
        "-outform",
        "DER",
        "-out",
        s(&p8_der),
    ]);
    openssl(&[
        "pkey",
        "-in",
        s(&p8),
        "-outform",
        "DER",
        "-out",
        s(&pkcs1_der),
    ]);
    for key in [&p8_der, &pkcs1_der] {
        assert_key_refused(&pki, key, "an RSA key (1.2.840.113549.1.1.1)");
    }
}

#[test]
fn sign_names_an_ed25519_key() {
    if !have_openssl() {
        return;
    }
    let pki = Pki::init();
    let key = pki.dir.join("ed25519.pem");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&key)]);
    assert_key_refused(&pki, &key, "an Ed25519 key (1.3.101.112)");
}

#[test]
fn sign_refuses_a_certificate_file_as_key() {
    let pki = Pki::init();
    let cert = pki.user("supplier-a", "cert.pem");
    let o = pki.sign_with(&cert, &cert, &pki.dir.join("r"), &[]);
    assert_refused(
        &o,
        &format!(
            "{}: no private key in the PEM text (found: CERTIFICATE)",
            s(&cert)
        ),
    );
}

/// The user certificates of a PKI issued at `NOW` run from `NOW - 1 day` to `NOW + 10 years`.
const NOT_BEFORE: &str = "2026-05-27T20:26:40Z";
const NOT_AFTER: &str = "2036-05-25T20:26:40Z";

#[test]
fn sign_refuses_an_expired_certificate_unless_forced() {
    let pki = Pki::init();
    let out = pki.dir.join("r.dcsr");
    let later = (NOW + 11 * 365 * 86_400).to_string();
    let o = pki.sign("supplier-a", &out, &["--now", &later]);
    assert_refused(
        &o,
        &format!(
            "{}: certificate expired (not after {NOT_AFTER}; signing time 2037-05-25T20:26:40Z); \
             use --force to sign anyway",
            s(&pki.user("supplier-a", "cert.pem"))
        ),
    );
    assert!(!out.exists());
    // One second after not-after is refused; not-after itself is still valid.
    let end = NOW + 10 * 365 * 86_400;
    assert_refused(
        &pki.sign("supplier-a", &out, &["--now", &(end + 1).to_string()]),
        "certificate expired",
    );
    assert!(pki
        .sign("supplier-a", &out, &["--now", &end.to_string()])
        .status
        .success());
    std::fs::remove_file(&out).unwrap();
    // Forced: signed, with one warning line naming the dates.
    let o = pki.sign("supplier-a", &out, &["--now", &later, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(e.starts_with("dcc-sign: warning: "), "{e}");
    assert!(
        e.contains(&format!("certificate expired (not after {NOT_AFTER}")),
        "{e}"
    );
    assert!(e.contains("signing anyway (--force)"), "{e}");
    assert!(stdout(&o).contains("signed SRV 2.2"), "{}", stdout(&o));
    // The envelope is well signed: it verifies while the certificate was valid.
    assert!(pki.verify("supplier-a", &out, &[]).status.success());
}

#[test]
fn sign_refuses_a_not_yet_valid_certificate_unless_forced() {
    let pki = Pki::init();
    let out = pki.dir.join("r.dcsr");
    let o = pki.sign("supplier-a", &out, &["--now", "1000000000"]);
    assert_refused(
        &o,
        &format!(
            "{}: certificate not yet valid (not before {NOT_BEFORE}; signing time \
             2001-09-09T01:46:40Z); use --force to sign anyway",
            s(&pki.user("supplier-a", "cert.pem"))
        ),
    );
    assert!(!out.exists());
    let o = pki.sign("supplier-a", &out, &["--now", "1000000000", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(
        e.contains(&format!(
            "warning: {}: certificate not yet valid (not before {NOT_BEFORE}",
            s(&pki.user("supplier-a", "cert.pem"))
        )),
        "{e}"
    );
    assert!(pki.verify("supplier-a", &out, &[]).status.success());
}

#[test]
fn sign_checks_validity_against_the_clock_by_default() {
    // A PKI issued far in the future (2096): its certificates are not yet valid now.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let o = run(&["pki", "init", "--dir", s(&dir), "--now", "4000000000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let user = dir.join("users/supplier-a");
    let o = run(&[
        "sign",
        "--key",
        s(&user.join("key.pem")),
        "--cert",
        s(&user.join("cert.pem")),
        "--srv",
        "2.2",
        "--target",
        TARGET,
        "--counter",
        "1",
        "--out",
        s(&tmp.path().join("r")),
    ]);
    assert_refused(
        &o,
        "certificate not yet valid (not before 2096-10-01T07:06:40Z",
    );
}

#[test]
fn sign_refuses_an_srv_outside_the_catalogue_unless_forced() {
    let pki = Pki::init();
    let out = pki.dir.join("r.dcsr");
    let o = pki.sign("supplier-a", &out, &["--srv", "99.99"]);
    assert_refused(
        &o,
        "SRV 99.99 is not in the DUIS catalogue; use --force to sign anyway",
    );
    assert!(!out.exists());
    // A three-part SRV whose two-part reference exists is still unknown.
    assert_refused(
        &pki.sign("supplier-a", &out, &["--srv", "2.2.1"]),
        "SRV 2.2.1 is not in the DUIS catalogue",
    );
    let o = pki.sign("supplier-a", &out, &["--srv", "99.99", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(
        e,
        "dcc-sign: warning: SRV 99.99 is not in the DUIS catalogue; signing anyway (--force)\n"
    );
    let j: serde_json::Value =
        serde_json::from_slice(&run(&["inspect", "--json", s(&out)]).stdout).unwrap();
    assert_eq!(j["srv"], "99.99");
    assert!(pki.verify("supplier-a", &out, &[]).status.success());
}

#[test]
fn sign_force_overrides_both_checks_at_once_but_not_the_key() {
    let pki = Pki::init();
    let out = pki.dir.join("r.dcsr");
    let later = (NOW + 11 * 365 * 86_400).to_string();
    // Without --force both reasons are given, on one line.
    let o = pki.sign("supplier-a", &out, &["--srv", "99.99", "--now", &later]);
    assert_refused(&o, "certificate expired");
    assert_refused(&o, "SRV 99.99 is not in the DUIS catalogue");
    let o = pki.sign(
        "supplier-a",
        &out,
        &["--srv", "99.99", "--now", &later, "--force"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 2, "{e:?}");
    assert!(
        e.lines().all(|l| l.starts_with("dcc-sign: warning: ")),
        "{e}"
    );
    // --force does not make another User's key acceptable.
    let o = pki.sign_with(
        &pki.user("supplier-b", "key.pem"),
        &pki.user("supplier-a", "cert.pem"),
        &out,
        &["--force"],
    );
    assert_refused(&o, "does not match the certificate");
    // --help explains --force.
    let help = stdout(&run(&["sign", "--help"]));
    assert!(help.contains("--force"), "{help}");
    assert!(help.contains("Refused unless --force"), "{help}");
}
