//! Decoding arbitrary bytes must never panic; what decodes must re-encode to the same bytes.
#![no_main]
use dcc_signing::envelope::{encode_unsigned, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::decode(data) {
        let mut again = encode_unsigned(&env.header, env.body).expect("decoded header re-encodes");
        again.extend_from_slice(env.signature);
        assert_eq!(again, data);
    }
});
