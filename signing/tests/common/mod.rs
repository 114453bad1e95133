//! Helpers shared by the integration tests that read the DCC Boxed vectors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// `shared/vectors/dccboxed` (or `$DCC_VECTORS/dccboxed`), or `None` with a one-line notice
/// when it is absent — except under `CI=true`, where its absence fails the test.
pub fn vectors() -> Option<PathBuf> {
    let dir = std::env::var_os("DCC_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    if dir.join("dccboxed").is_dir() {
        return Some(dir.join("dccboxed"));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "shared vectors not found at {} (required on CI)",
        dir.display()
    );
    println!("skipping: shared vectors not found at {}", dir.display());
    None
}

/// Whether an external tool answers `--version` (or `-c` for python); prints a one-line notice
/// when it does not.
pub fn tool(cmd: &str, args: &[&str]) -> bool {
    let ok = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("skipping: {cmd} not available");
    }
    ok
}
