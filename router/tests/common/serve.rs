//! `dcc-router` as a child process, as a user runs it: a `serve` guard that is killed on drop
//! (every path, panics included), and commands run to completion with a time limit.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_dcc-router");
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

// ---- processes ----

/// A `dcc-router serve` child; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub pki: PathBuf,
    /// Its start-up lines on stdout, from `dcc-router listening on …` to `Point a client at
    /// it:` (the `state`, `store`, `PKI` … lines).
    pub banner: Vec<String>,
}

/// How [`Server::try_start_with`] starts `serve`: always on 127.0.0.1:0 without metrics or
/// DUIS, with `--data-dir`.
pub struct Start<'a> {
    /// `--data-dir`.
    pub data_dir: &'a Path,
    /// The PKI directory `admin` commands use (not passed to `serve`: a `pki_dir` comes from
    /// the test's configuration file, if any).
    pub pki: &'a Path,
    /// Add `--workers 1 --demo-devices 20` (a small, quick server). Off where the test's own
    /// arguments or configuration size the server: a flag given twice is a usage error.
    pub small: bool,
}

/// How a server start failed: exit code and stderr.
#[derive(Debug)]
pub struct StartFailure {
    pub code: Option<i32>,
    pub stderr: String,
}

impl Server {
    /// Starts a small `serve --data-dir DATA ARGS…` ([`Start::small`]) and waits for its
    /// banner; a child that exits first is a [`StartFailure`].
    pub fn try_start(data_dir: &Path, pki: &Path, args: &[&str]) -> Result<Server, StartFailure> {
        Self::try_start_with(
            &Start {
                data_dir,
                pki,
                small: true,
            },
            args,
        )
    }

    /// Starts `serve` as `start` says, with `args` after, and waits for its banner (to `Point
    /// a client at it:`); a child that exits first is a [`StartFailure`].
    pub fn try_start_with(start: &Start<'_>, args: &[&str]) -> Result<Server, StartFailure> {
        // An anonymous file: the data dir may be unusable (that is what some tests check).
        let mut log = tempfile::tempfile().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "",
            "--duis",
            "",
        ]);
        if start.small {
            cmd.args(["--workers", "1", "--demo-devices", "20"]);
        }
        let mut child = cmd
            .arg("--data-dir")
            .arg(start.data_dir)
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
            pki: start.pki.to_path_buf(),
            banner: Vec::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("dcc-router listening on quic://") {
                        server.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                    }
                    if server.banner.is_empty() && !line.starts_with("dcc-router listening") {
                        continue;
                    }
                    let done = line == "Point a client at it:";
                    server.banner.push(line);
                    if done {
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

    /// The banner line that starts (after its indent) with `word`, e.g. `state`.
    pub fn banner_line(&self, word: &str) -> &str {
        self.banner
            .iter()
            .find(|l| l.trim_start().starts_with(word))
            .unwrap_or_else(|| panic!("no {word:?} line in {:?}", self.banner))
    }

    pub fn start(data_dir: &Path) -> Server {
        Self::try_start(data_dir, &data_dir.join("pki"), &[]).unwrap()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
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
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.wait_exit(Duration::from_secs(20))
    }

    /// `dcc-router admin --server ADDR --pki PKI ARGS…`.
    pub fn admin(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.arg("admin")
            .args(["--server", &self.addr.to_string()])
            .arg("--pki")
            .arg(&self.pki)
            .args(args);
        run(cmd)
    }

    /// `admin --json status`, the status report.
    pub fn status(&self) -> Value {
        let out = self.admin(&["--json", "status"]);
        assert_eq!(out.code, 0, "{out:?}");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["ok"], true, "{out:?}");
        v["status"].clone()
    }

    /// `admin --json audit ARGS…`, the entries.
    pub fn audit(&self, args: &[&str]) -> Vec<Value> {
        let mut a = vec!["--json", "audit"];
        a.extend_from_slice(args);
        let out = self.admin(&a);
        assert_eq!(out.code, 0, "{out:?}");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        v["audit"].as_array().unwrap().clone()
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
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion (killed after [`CMD_TIMEOUT`]).
pub fn run(mut cmd: Command) -> Out {
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
