//! The state store's failure modes at start: a corrupted `state.redb` (damaged at the start
//! and in the middle), a store locked by a running server, and a data directory that cannot
//! be created. Each time `dcc-router serve` must exit non-zero naming what is wrong — never
//! start with empty state, never panic, never touch the file it refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::serve::{Server, StartFailure};

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
