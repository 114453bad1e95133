//! `serve` configuration text (TOML). Parsing never panics; a refusal names a line of the text
//! (or 0, "unknown").
#![no_main]
use std::path::Path;

use dcc_router::server::config::{ConfigError, ServeConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match ServeConfig::from_toml_str(text, Path::new("fuzz.toml")) {
        Ok(_) => {}
        Err(ConfigError::Invalid { line, path, .. }) => {
            assert_eq!(path, Path::new("fuzz.toml"));
            let lines = text.matches('\n').count() + 1;
            assert!(line <= lines, "error on line {line} of a {lines}-line text");
        }
        Err(e) => panic!("unexpected error parsing a string: {e}"),
    }
});
