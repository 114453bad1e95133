//! What `dcc-router` prints when a command fails before it reaches a server, as a process: one
//! `error: ` line naming the file or flag with its cause said once, then a `caused by:` line
//! only for a cause the first line does not hold; exit code 1 (clap's usage errors stay 2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::serve::{run, Out, BIN};

fn dcc_router(args: &[&str]) -> Out {
    let mut c = Command::new(BIN);
    c.args(args);
    run(c)
}

#[test]
fn a_missing_file_is_named_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.pem");
    let out = dcc_router(&["admin", "add-cert", missing.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    let io = std::fs::read(&missing).unwrap_err();
    assert_eq!(
        out.stderr,
        format!("error: {}: {io}\n", missing.display()),
        "one line, the cause once"
    );
}

#[test]
fn a_cause_left_out_of_the_message_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("crl.pem");
    std::fs::write(&binary, [b'-', 0xff, 0xfe]).unwrap();
    let out = dcc_router(&["admin", "load-crl", binary.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("error: {}: not a PEM file", binary.display()).as_str()),
        "{out:?}"
    );
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[1].starts_with("  caused by: invalid utf-8 sequence"),
        "{out:?}"
    );
}

#[test]
fn argument_refusals_name_the_argument() {
    let out = dcc_router(&[
        "admin",
        "delay",
        "nowhere.pem",
        "--srp",
        "02-DC-C0-00-00-00-00-01",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("error: nowhere.pem: not a certificate id, and "),
        "{out:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dcc_router(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--metrics",
        "nowhere",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr, "error: --metrics \"nowhere\": invalid socket address syntax\n",
        "{out:?}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a refused start writes nothing"
    );
    // A value clap refuses is a usage error: exit 2, as before.
    let out = dcc_router(&["serve", "--workers", "many"]);
    assert_eq!(out.code, 2, "{out:?}");
}
