//! Invalid policy files are refused at load, with the line and the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dcc_router::policy::DEFAULT_POLICY_TOML;
use dcc_router::{Policy, PolicyError};

/// The default policy with `from` (which must occur) replaced by `to`; returns the text and
/// the 1-based line where the replacement starts.
fn edit(from: &str, to: &str) -> (String, usize) {
    let at = DEFAULT_POLICY_TOML.find(from).expect("fragment present");
    let line = DEFAULT_POLICY_TOML[..at].matches('\n').count() + 1;
    (DEFAULT_POLICY_TOML.replacen(from, to, 1), line)
}

fn refused(text: &str) -> (usize, String) {
    match Policy::from_toml_str(text) {
        Err(PolicyError::Invalid { line, reason }) => (line, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_values_are_refused_with_their_line() {
    let cases = [
        (
            "capacity = 8192",
            "capacity = 0",
            "L0 capacity 0 is out of range",
        ),
        ("weight = 1", "weight = -3", "L3 weight -3 is out of range"),
        (
            "deadline_ms = 2000",
            "deadline_ms = 99999999999",
            "deadline_ms",
        ),
        (
            "roles = [\"IS\", \"GS\"]",
            "roles = [\"IS\", \"XX\"]",
            "unknown User Role",
        ),
        ("lane = \"L2\"", "lane = \"L9\"", "unknown lane"),
        (
            "code = \"2.2\"",
            "code = \"2.0\"",
            "not a Service Reference Variant",
        ),
        ("code = \"2.3\"", "code = \"2.2\"", "duplicate SRV 2.2"),
        (
            "dcc_eui = \"00-00-00-00-00-00-00-00\"",
            "dcc_eui = \"nope\"",
            "EUI-64",
        ),
        (
            "per_second = 2000",
            "per_second = 0",
            "per_second 0 is out of range",
        ),
    ];
    for (from, to, why) in cases {
        let (text, line) = edit(from, to);
        let (got_line, reason) = refused(&text);
        assert_eq!(got_line, line, "{to}: {reason}");
        assert!(reason.contains(why), "{to}: {reason}");
    }
    // Command variants listed explicitly are checked too.
    let (text, line) = edit("code = \"2.2\"\n", "code = \"2.2\"\ncvs = [1, 9]\n");
    let (got, reason) = refused(&text);
    assert_eq!(got, line + 1);
    assert!(reason.contains("command variant 9"), "{reason}");
}

#[test]
fn syntax_errors_unknown_keys_and_missing_sections_have_lines() {
    let (text, line) = edit("weight = 64", "wieght = 64");
    let (got, reason) = refused(&text);
    assert_eq!(got, line);
    assert!(reason.contains("unknown field"), "{reason}");
    let (text, line) = edit("safe_mode = true", "safe_mode = yes");
    assert_eq!(refused(&text).0, line);
    let (text, line) = edit("[lanes.L3]", "[lanes.L4]");
    assert_eq!(refused(&text).0, line);
    let (_, reason) = refused("dcc_eui = \"00-00-00-00-00-00-00-01\"\n");
    assert!(reason.contains("lanes"), "{reason}");
}

#[test]
fn files_load_and_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        DEFAULT_POLICY_TOML.replace("capacity = 2048", "capacity = 16"),
    )
    .unwrap();
    let p = Policy::load(&good).unwrap();
    assert_eq!(p.lanes[3].capacity.get(), 16);
    assert_eq!(p.catalogue.len(), 129);
    let bad = dir.path().join("bad.toml");
    let (text, line) = edit("capacity = 2048", "capacity = \"lots\"");
    std::fs::write(&bad, text).unwrap();
    let e = Policy::load(&bad).unwrap_err();
    assert_eq!(e.line(), Some(line));
    assert!(
        e.to_string().starts_with(&format!("policy line {line}:")),
        "{e}"
    );
    assert!(matches!(
        Policy::load(dir.path().join("missing.toml")),
        Err(PolicyError::Io { .. })
    ));
}
