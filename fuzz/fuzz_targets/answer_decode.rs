//! The QUIC answer frame decoder (client side) never panics; what decodes re-encodes.
#![no_main]
use dcc_router::ingress::wire::WireAnswer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = WireAnswer::decode(data) {
        assert_eq!(WireAnswer::decode(&a.encode()), Ok(a));
    }
});
