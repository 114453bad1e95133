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
    /// Signs as `user` into `out`.
    fn sign(&self, user: &str, out: &Path, extra: &[&str]) -> Output {
        let key = self.user(user, "key.pem");
        let cert = self.user(user, "cert.pem");
        let mut args = vec![
            "sign",
            "--key",
            s(&key),
            "--cert",
            s(&cert),
            "--srv",
            "2.2",
            "--target",
            TARGET,
            "--counter",
            "1000",
            "--out",
            s(out),
        ];
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
