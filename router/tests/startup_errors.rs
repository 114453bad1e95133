//! `dcc-router serve` refusing to start, as a process: every refusal names what to fix (the
//! file, and the line for configuration), and a refused start writes nothing. The first start
//! on defaults creates the demo PKI with the CA keys apart, and the server never reads them.
//! Every test uses temp dirs and 127.0.0.1 only, and is bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dcc_signing::pki::demo::DemoPki;

/// How long a refused start may take before the test fails.
const REFUSAL_WITHIN: Duration = Duration::from_secs(60);

/// A temp directory with `router.toml`: loopback, no metrics, a small demo, `extra` appended.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// Writes `router.toml` and returns its path.
    fn config(&self, extra: &str) -> PathBuf {
        let config = self.path("router.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nmetrics = \"\"\nduis = \"\"\ndata_dir = \"{}\"\nworkers = 1\n\
                 io_threads = 1\ndemo_devices = 10\n{extra}",
                self.data().display()
            ),
        )
        .unwrap();
        config
    }

    /// A `dcc-sign pki init` style PKI (CA keys included) at `pki`, for `pki_dir`.
    fn pki_dir(&self) -> PathBuf {
        let pki = self.path("pki");
        DemoPki::generate(dcc_signing::pki::now_unix())
            .unwrap()
            .write_to_dir(&pki, false)
            .unwrap();
        pki
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dcc-router"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    /// Runs `serve` with `args`, expecting a refusal: returns stderr.
    fn refused(&self, args: &[&str]) -> String {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if started.elapsed() > REFUSAL_WITHIN {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "still running after {REFUSAL_WITHIN:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        assert!(
            !status.success(),
            "started: {}{stderr}",
            String::from_utf8_lossy(&stdout)
        );
        assert!(stderr.contains("error: "), "{stderr}");
        stderr
    }

    /// Starts `serve --config CONFIG` and waits for it to listen.
    fn serve(&self, config: &Path) -> Running {
        let stderr_path = self.path(&format!(
            "stderr-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = self
            .command(&["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("dcc-router listening on quic://") {
                        break rest.split_whitespace().next().unwrap().parse().unwrap();
                    }
                    lines.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "server did not start: {lines:?} {}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    );
                }
            }
        };
        Running { child, addr, rx }
    }
}

/// A server process, stopped (SIGTERM, then kill) on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
    rx: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// The lines printed after the listening line, up to now (the start banner).
    fn banner(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.rx.recv_timeout(Duration::from_millis(200)) {
            out.push(l);
        }
        out
    }

    /// SIGTERM, and waits (bounded) for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every entry under `dir`, recursively, relative.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn garbage_ca_certificate_is_refused_naming_the_file() {
    let s = Setup::new();
    let pki = s.pki_dir();
    std::fs::write(pki.join("ca/root.pem"), "not a certificate\n").unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", pki.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(
        e.contains(&format!("{}", pki.join("ca/root.pem").display())),
        "{e}"
    );
    // The issuing CA too.
    let s = Setup::new();
    let pki = s.pki_dir();
    std::fs::write(
        pki.join("ca/issuing.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", pki.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("ca/issuing.pem"), "{e}");
    // Nothing written: no data directory, so no store.
    assert!(!s.data().exists());
}

#[test]
fn garbage_server_tls_files_are_refused_naming_the_file() {
    // An unparsable key.
    let s = Setup::new();
    let pki = s.pki_dir();
    std::fs::write(pki.join("ca/server-key.pem"), "garbage").unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", pki.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("ca/server-key.pem"), "{e}");
    assert!(!s.data().exists(), "{:?}", tree(s.dir.path()));
    // A key that belongs to another certificate.
    let s = Setup::new();
    let pki = s.pki_dir();
    std::fs::copy(
        pki.join("users/netop/tls-key.pem"),
        pki.join("ca/server-key.pem"),
    )
    .unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", pki.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("ca/server-key.pem"), "{e}");
    // An empty certificate chain.
    let s = Setup::new();
    let pki = s.pki_dir();
    std::fs::write(pki.join("ca/server-chain.pem"), "").unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", pki.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("ca/server-chain.pem"), "{e}");
    // An unreadable one (a directory in its place).
    std::fs::remove_file(pki.join("ca/server-chain.pem")).unwrap();
    std::fs::create_dir(pki.join("ca/server-chain.pem")).unwrap();
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("ca/server-chain.pem"), "{e}");
}

#[test]
fn garbage_user_certificate_is_refused_naming_the_file() {
    let s = Setup::new();
    let pki = s.pki_dir();
    std::fs::write(pki.join("users/srp/cert.pem"), "garbage").unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", pki.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("users/srp/cert.pem"), "{e}");
}

#[test]
fn missing_pki_dir_is_an_error_and_nothing_is_created() {
    let s = Setup::new();
    let nowhere = s.path("nowhere/pki");
    let config = s.config(&format!("pki_dir = \"{}\"\n", nowhere.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(
        e.contains(&format!("pki_dir {} does not exist", nowhere.display()))
            && e.contains("dcc-sign pki init --dir")
            && e.contains("omit pki_dir"),
        "{e}"
    );
    assert!(!s.path("nowhere").exists());
    assert!(!s.data().exists());
    // A directory that exists but holds no PKI is not filled with one either.
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let config = s.config(&format!("pki_dir = \"{}\"\n", empty.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("ca/root.pem is missing"), "{e}");
    assert!(tree(&empty).is_empty());
    assert!(!s.data().exists());
}

#[test]
fn port_in_use_leaves_no_files() {
    let s = Setup::new();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = s.config("");
    let e = s.refused(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(e.contains(&format!("cannot bind 127.0.0.1:{port}")), "{e}");
    assert!(!s.data().exists(), "{:?}", tree(s.dir.path()));
    // The metrics port as well.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let e = s.refused(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--metrics",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(e.contains(&format!("cannot bind 127.0.0.1:{port}")), "{e}");
    assert!(!s.data().exists(), "{:?}", tree(s.dir.path()));
    // An existing data directory gains nothing either.
    std::fs::create_dir(s.data()).unwrap();
    s.refused(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--metrics",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(tree(&s.data()).is_empty(), "{:?}", tree(&s.data()));
}

#[test]
fn bad_configuration_values_are_refused_with_file_and_line() {
    let s = Setup::new();
    let cases = [
        ("workers = 5000", "workers"),
        ("io_threads = 100000", "io_threads"),
        ("demo_devices = 200000000", "demo_devices"),
        ("prepayment_percent = 101", "prepayment_percent"),
        ("prepayment_percent = 300", "prepayment_percent"),
        ("listen = \"nowhere\"", "listen"),
        ("bogus = 1", "bogus"),
        ("[limits]\nmax_connections = 0", "max_connections"),
    ];
    for (text, key) in cases {
        let config = s.path("bad.toml");
        // The bad value on line 4.
        std::fs::write(
            &config,
            format!(
                "metrics = \"\"\nduis = \"\"\ndata_dir = \"{}\"\n{text}\n",
                s.data().display()
            ),
        )
        .unwrap();
        let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
        let line = if text.starts_with('[') { 5 } else { 4 };
        assert!(
            e.contains(&format!("{}:{line}:", config.display()))
                // serde's own messages (a type or syntax error) give the line, not the key.
                && (e.contains(key) || ["prepayment_percent = 300", "listen = \"nowhere\""].contains(&text)),
            "{text}: {e}"
        );
        assert!(!s.data().exists(), "{text}");
    }
    // A flag's value is checked too, and named as the flag.
    let config = s.config("");
    let e = s.refused(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--workers",
        "5000",
    ]);
    assert!(
        e.contains("--workers: workers = 5000 is out of range 0..=1024"),
        "{e}"
    );
    // An unreadable configuration file, and a policy file with an error.
    let e = s.refused(&["serve", "--config", "does-not-exist.toml"]);
    assert!(e.contains("does-not-exist.toml"), "{e}");
    let policy = s.path("policy.toml");
    std::fs::write(&policy, "\nbogus_key = 1\n").unwrap();
    let config = s.config(&format!("policy = \"{}\"\n", policy.display()));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains(&format!("{}:2:", policy.display())), "{e}");
    let config = s.config(&format!(
        "policy = \"{}\"\n",
        s.path("no-policy.toml").display()
    ));
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("no-policy.toml"), "{e}");
    assert!(!s.data().exists());
}

#[test]
fn first_start_keeps_the_ca_keys_apart_and_the_server_does_not_need_them() {
    let s = Setup::new();
    let config = s.config("");
    let server = s.serve(&config);
    let banner = server.banner().join("\n");
    assert!(banner.contains("demo PKI created now"), "{banner}");
    assert!(banner.contains("ca-keys"), "{banner}");
    let data = s.data();
    for f in ["root-key.pem", "issuing-key.pem"] {
        assert!(!data.join("pki/ca").join(f).exists(), "{f} in the PKI dir");
        assert!(data.join("ca-keys").join(f).exists(), "{f} not in ca-keys");
    }
    // No file under the PKI directory is a CA key.
    let root_key = std::fs::read(data.join("ca-keys/root-key.pem")).unwrap();
    let issuing_key = std::fs::read(data.join("ca-keys/issuing-key.pem")).unwrap();
    for rel in tree(&data.join("pki")) {
        let p = data.join("pki").join(&rel);
        if p.is_file() {
            let b = std::fs::read(&p).unwrap();
            assert!(b != root_key && b != issuing_key, "{rel:?} is a CA key");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(data.join("ca-keys")), 0o700);
        assert_eq!(mode(data.join("ca-keys/root-key.pem")), 0o600);
        assert_eq!(mode(data.join("ca-keys/issuing-key.pem")), 0o600);
    }
    // What issues certificates from this PKI still finds the keys.
    let pki = DemoPki::load_from_dir(&data.join("pki")).unwrap();
    assert!(pki.user("supplier-a").is_some());
    server.stop();
    // Without the CA keys the server starts and serves: an admin call answers.
    std::fs::remove_dir_all(data.join("ca-keys")).unwrap();
    let server = s.serve(&config);
    let banner = server.banner().join("\n");
    assert!(!banner.contains("demo PKI created now"), "{banner}");
    let out = s
        .command(&[
            "admin",
            "--server",
            &server.addr.to_string(),
            "--pki",
            data.join("pki").to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();
    assert!(
        !data.join("ca-keys").exists(),
        "the keys were written again"
    );
    // A garbage root certificate in the demo PKI is named too.
    std::fs::write(data.join("pki/ca/root.pem"), "garbage").unwrap();
    let e = s.refused(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("pki/ca/root.pem"), "{e}");
}
