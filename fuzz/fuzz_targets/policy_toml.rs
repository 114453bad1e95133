//! Policy text (TOML: SRV catalogue, lanes, capacities, rate limits). Parsing never panics; a
//! refusal names a line of the text.
#![no_main]
use dcc_router::{Policy, PolicyError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match Policy::from_toml_str(text) {
        Ok(_) => {}
        Err(PolicyError::Invalid { line, .. }) => {
            let lines = text.matches('\n').count() + 1;
            assert!(
                (1..=lines).contains(&line),
                "error on line {line} of a {lines}-line text"
            );
        }
        Err(PolicyError::TooLarge(_)) => {}
        Err(e) => panic!("unexpected error parsing a string: {e}"),
    }
});
