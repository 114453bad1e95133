//! The state store's failure modes at start: a corrupted `state.redb` (damaged at the start
//! and in the middle), a store locked by a running server, and a data directory that cannot
//! be created. Each time `dcc-router serve` must exit non-zero naming what is wrong — never
//! start with empty state, never panic, never touch the file it refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dcc-router");
const START_TIMEOUT: Duration = Duration::from_secs(30);
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

// ---- processes ----

/// A `dcc-router serve` child; killed on drop.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    pki: PathBuf,
}

/// How a server start failed: exit code and stderr.
#[derive(Debug)]
struct StartFailure {
    code: Option<i32>,
    stderr: String,
}

impl Server {
    /// Starts `serve --data-dir DATA ARGS…` and waits for its listening line; a child that
    /// exits first is a [`StartFailure`].
    fn try_start(data_dir: &Path, pki: &Path, args: &[&str]) -> Result<Server, StartFailure> {
        // An anonymous file: the data dir may be unusable (that is what some tests check).
        let mut log = tempfile::tempfile().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics", ""])
            .args(["--workers", "1", "--demo-devices", "20"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            addr: "127.0.0.1:0".parse().unwrap(),
            pki: pki.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("dcc-router listening on quic://") {
                        server.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                        return Ok(server);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the child is exiting.
                    let status = server.wait_exit(Duration::from_secs(20));
                    return Err(StartFailure {
                        code: status.code(),
                        stderr: read_log(&mut log),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "server neither started nor exited within {START_TIMEOUT:?}; stderr:\n{}",
                    read_log(&mut log)
                ),
            }
        }
    }

    fn start(data_dir: &Path) -> Server {
        Self::try_start(data_dir, &data_dir.join("pki"), &[]).unwrap()
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> ExitStatus {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.wait_exit(Duration::from_secs(20))
    }

    /// `dcc-router admin --server ADDR --pki PKI ARGS…`.
    fn admin(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.arg("admin")
            .args(["--server", &self.addr.to_string()])
            .arg("--pki")
            .arg(&self.pki)
            .args(args);
        run(cmd)
    }

    fn status(&self) -> Value {
        let out = self.admin(&["--json", "status"]);
        assert_eq!(out.code, 0, "{out:?}");
        serde_json::from_str::<Value>(&out.stdout).unwrap()["status"].clone()
    }
}

fn read_log(log: &mut std::fs::File) -> String {
    use std::io::Seek;
    let mut s = String::new();
    log.rewind().unwrap();
    let _ = log.read_to_string(&mut s);
    s
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command to completion (killed after [`CMD_TIMEOUT`]).
fn run(mut cmd: Command) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {CMD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

// ---- helpers ----

/// A data directory with a store that a server wrote and closed cleanly (SIGTERM, exit 0),
/// holding one admin change besides the bootstrap state.
fn stopped_data_dir(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let srv = Server::start(&data);
    let out = srv.admin(&[
        "--reason",
        "before the damage",
        "assurance",
        "02-DC-C0-00-00-00-00-02",
        "deferred",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(srv.stop().success());
    data
}

/// Asserts a start on `data` fails: non-zero exit (not a panic), stderr naming the store file,
/// and the file left exactly as it was.
#[track_caller]
fn assert_refuses_store(data: &Path, why: &[&str]) -> StartFailure {
    let store = data.join("state.redb");
    let before = std::fs::read(&store).unwrap();
    let failure = match Server::try_start(data, &data.join("pki"), &[]) {
        Ok(srv) => {
            let st = srv.status();
            panic!("started on a damaged store, with {} devices", st["devices"]);
        }
        Err(f) => f,
    };
    // Exit 1 is `error: …`; a panic would be 101.
    assert_eq!(failure.code, Some(1), "{failure:?}");
    assert!(
        failure.stderr.contains(&store.display().to_string()),
        "names the file {}: {failure:?}",
        store.display()
    );
    assert!(
        why.iter().any(|w| failure.stderr.contains(w)),
        "says why ({why:?}): {failure:?}"
    );
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the refused file was modified"
    );
    failure
}

#[test]
fn store_damaged_at_the_start_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = stopped_data_dir(dir.path());
    let store = data.join("state.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    // The header: magic number, commit slots.
    bytes[..4096].fill(0xA5);
    std::fs::write(&store, &bytes).unwrap();
    assert_refuses_store(&data, &["cannot open", "integrity"]);
    // Still refused the second time (nothing was "repaired" into an empty store).
    assert_refuses_store(&data, &["cannot open", "integrity"]);
}

#[test]
fn store_damaged_in_the_middle_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = stopped_data_dir(dir.path());
    let store = data.join("state.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    let n = bytes.len();
    assert!(n >= 16 * 1024, "{n}");
    // The middle half of the file: B-tree and allocator pages, header intact.
    bytes[n / 4..3 * n / 4].fill(0xA5);
    std::fs::write(&store, &bytes).unwrap();
    assert_refuses_store(
        &data,
        &["integrity", "corrupt", "cannot open", "read failed"],
    );
}

#[test]
fn store_locked_by_a_running_server_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(&data);
    let out = first.admin(&[
        "--reason",
        "first",
        "assurance",
        "02-DC-C0-00-00-00-00-02",
        "deferred",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let status = first.status();
    let store = data.join("state.redb");
    let failure = match Server::try_start(&data, &data.join("pki"), &[]) {
        Ok(second) => {
            let st = second.status();
            panic!(
                "a second server started on a locked store, with {} devices",
                st["devices"]
            );
        }
        Err(f) => f,
    };
    assert_eq!(failure.code, Some(1), "{failure:?}");
    assert!(
        failure.stderr.contains(&store.display().to_string()),
        "names the file: {failure:?}"
    );
    assert!(
        failure.stderr.contains("already open") || failure.stderr.contains("lock"),
        "says why: {failure:?}"
    );
    // The first server is unharmed, its state intact, and it still takes changes.
    assert_eq!(first.status()["devices"], status["devices"]);
    assert_eq!(first.status()["certificates"], status["certificates"]);
    let out = first.admin(&["assurance", "02-DC-C0-00-00-00-00-02", "approved"]);
    assert_eq!(out.code, 0, "{out:?}");
    let audit = first.admin(&["--json", "audit"]);
    let audit: Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(audit["audit"][1]["reason"], "first", "{audit}");
    assert!(first.stop().success());
    // Once the first has stopped, the store opens.
    let again = Server::start(&data);
    assert_eq!(again.status()["devices"], status["devices"]);
    assert!(again.stop().success());
}

#[test]
fn data_dir_that_cannot_be_created_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    // Under a regular file, and a regular file itself.
    for data in [file.join("data"), file.clone()] {
        let failure = match Server::try_start(&data, &data.join("pki"), &[]) {
            Ok(_) => panic!("started with data dir {}", data.display()),
            Err(f) => f,
        };
        assert_eq!(failure.code, Some(1), "{failure:?}");
        assert!(
            failure
                .stderr
                .contains(&format!("data directory {}", data.display())),
            "names the directory: {failure:?}"
        );
        assert!(
            failure.stderr.contains("Not a directory") || failure.stderr.contains("File exists"),
            "says why: {failure:?}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    // A read-only parent (meaningless as root, who may write anywhere: then skipped).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(ro.join("probe"), b"").is_err() {
            let data = ro.join("data");
            let failure = match Server::try_start(&data, &data.join("pki"), &[]) {
                Ok(_) => panic!("started with data dir {}", data.display()),
                Err(f) => f,
            };
            assert_eq!(failure.code, Some(1), "{failure:?}");
            assert!(
                failure.stderr.contains(&data.display().to_string())
                    && failure.stderr.contains("ermission denied"),
                "{failure:?}"
            );
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
