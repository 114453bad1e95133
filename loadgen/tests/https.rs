//! The `https://` and `http://` targets as a user runs them: the `loadgen` binary against a
//! `dcc-router serve` instance's DUIS ingress (the server started in this test's process —
//! cargo hands a test only its own package's binaries — with DUIS over HTTPS and plain HTTP
//! on free ports). The scenario's requests go as DUIS XML built from the DCC Reference Test
//! Data Set's templates (or loadgen's built-in minimal documents), signed with each User's
//! key; critical ones through the Transform service first.
//!
//! Short, low-rate runs (debug builds on a 2-core CI machine); count assertions only (the
//! steady scenario's latency expectation is not asserted: no timed assertions in tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dcc_router::server::{self, Running, ServeConfig};
use serde_json::Value;

const DEVICES: u64 = 1000;
const LIMIT: Duration = Duration::from_secs(120);

// Runtime-agnostic, so it serialises tests that each run their own runtime.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn templates() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/dccboxed/templates");
    if dir.is_dir() {
        return dir.display().to_string();
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI needs ../shared/vectors/dccboxed/templates"
    );
    eprintln!("../shared/vectors/dccboxed/templates absent: using loadgen's built-in documents");
    "builtin".into()
}

async fn start() -> (tempfile::TempDir, Running, PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics: None,
        duis: Some("127.0.0.1:0".parse().unwrap()),
        duis_plain: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: data.path().to_path_buf(),
        workers: 1,
        demo_devices: DEVICES,
        ..ServeConfig::default()
    };
    let running = server::start(&cfg).await.unwrap();
    let pki = cfg.pki_dir();
    (data, running, pki)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the loadgen binary to completion (killed after [`LIMIT`]) off the runtime's workers,
/// which keep serving.
async fn loadgen(args: Vec<String>) -> Out {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = read(Box::new(child.stdout.take().unwrap()));
        let err = read(Box::new(child.stderr.take().unwrap()));
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("loadgen {args:?} did not finish within {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Out {
            code: status.code().unwrap_or(-1),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// The report's counts are consistent: every request sent was answered, every answer is in
/// one lane row and one class, no transport error; returns (ok, answered).
fn check_counts(r: &Value) -> (u64, u64) {
    let g = &r["generator"];
    assert_eq!(
        n(&g["sent"]) + n(&g["replay_unavailable"]),
        n(&g["scheduled"])
    );
    let lanes = r["lanes"].as_array().unwrap();
    let sum = |k: &str| lanes.iter().map(|l| n(&l[k])).sum::<u64>();
    let answered = sum("answered");
    assert_eq!(answered, n(&g["sent"]), "every request sent was answered");
    for l in lanes {
        let classes: u64 = ["ok", "refused", "busy", "throttled", "error"]
            .iter()
            .map(|k| n(&l[*k]))
            .sum();
        assert_eq!(classes, n(&l["answered"]), "{l}");
    }
    assert_eq!(sum("error"), 0, "no transport errors: {}", r["codes"]);
    // The report lists the codes of every answer that was not ok.
    let codes = r["codes"].as_array().unwrap();
    assert_eq!(
        codes.iter().map(|c| n(&c["count"])).sum::<u64>(),
        answered - sum("ok"),
        "every answer not ok has its code"
    );
    assert!(
        codes
            .iter()
            .all(|c| c["code"] != "TRANSPORT" && c["code"] != "E1" && c["code"] != "BAD-ANSWER"),
        "{}",
        r["codes"]
    );
    (sum("ok"), answered)
}

/// A count of lane `name`'s row (0 when the report has no row for it: no answers).
fn lane(r: &Value, name: &str, key: &str) -> u64 {
    r["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lane"] == name)
        .map_or(0, |l| n(&l[key]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_over_https_with_the_reference_templates() {
    let _guard = ONE_AT_A_TIME.lock().await;
    let (_data, running, pki) = start().await;
    let out_dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "--target",
        &format!("https://{}", running.duis_addr.unwrap()),
        "--admin",
        &running.addr.to_string(),
        "--pki",
        pki.to_str().unwrap(),
        "--devices",
        &DEVICES.to_string(),
        "--duis-templates",
        &templates(),
        "--scenario",
        "steady",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--senders",
        "2",
        "--json",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    let out = loadgen(args).await;
    running.shutdown().await;
    // 0 or 1: the run happened (1 only if the latency expectation failed on a slow machine).
    assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(r["target"].as_str().unwrap().starts_with("https://"));
    let (ok, answered) = check_counts(&r);
    // Steady traffic is all valid, critical commands included (transformed, then sent signed).
    assert!(ok > 0);
    assert_eq!(ok, answered, "{}", r["codes"]);
    // Every answer came with its lane: nothing in the unclassified column, and the prepayment
    // and read lanes carried some.
    assert_eq!(lane(&r, "none", "answered"), 0, "{}", r["lanes"]);
    assert!(lane(&r, "L1", "ok") > 0, "{}", r["lanes"]);
    assert!(lane(&r, "L3", "ok") > 0, "{}", r["lanes"]);
    let critical: u64 = r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            ["tariff", "update-debt", "emergency-credit", "arm-supply"]
                .contains(&t["tag"].as_str().unwrap())
        })
        .map(|t| n(&t["ok"]))
        .sum();
    assert!(critical > 0, "{}", r["tags"]);
    // The same per-lane .hlog as for QUIC.
    let hlog = std::fs::read_to_string(out_dir.path().join("latency.hlog")).unwrap();
    assert!(hlog.contains("https://"), "the log names its target");
    assert!(hlog.lines().any(|l| l.contains("L1")), "{hlog}");
    assert!(out.stderr.contains("DUIS templates from"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_over_plain_http_with_the_builtin_documents() {
    let _guard = ONE_AT_A_TIME.lock().await;
    let (_data, running, pki) = start().await;
    let args: Vec<String> = [
        "--target",
        &format!("http://{}", running.duis_plain_addr.unwrap()),
        "--pki",
        pki.to_str().unwrap(),
        "--devices",
        &DEVICES.to_string(),
        "--duis-templates",
        "builtin",
        "--scenario",
        "steady",
        "--rate",
        "40",
        "--duration",
        "1s",
        "--senders",
        "2",
        "--json",
        "--quiet",
    ]
    .map(str::to_owned)
    .to_vec();
    let out = loadgen(args).await;
    running.shutdown().await;
    assert!(matches!(out.code, 0 | 1), "{}", out.stderr);
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    let (ok, answered) = check_counts(&r);
    assert!(ok > 0);
    assert_eq!(ok, answered, "{}", r["codes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_templates_directory_is_named_with_the_way_out() {
    let _guard = ONE_AT_A_TIME.lock().await;
    let (_data, running, pki) = start().await;
    let args: Vec<String> = [
        "--target",
        &format!("https://{}", running.duis_addr.unwrap()),
        "--pki",
        pki.to_str().unwrap(),
        "--devices",
        &DEVICES.to_string(),
        "--duis-templates",
        "/nonexistent/dccboxed/templates",
        "--quiet",
    ]
    .map(str::to_owned)
    .to_vec();
    let out = loadgen(args).await;
    running.shutdown().await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("/nonexistent/dccboxed/templates not found")
            && out.stderr.contains("--duis-templates builtin"),
        "{}",
        out.stderr
    );
}
