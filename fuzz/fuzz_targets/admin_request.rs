//! Admin protocol frames (JSON, from any connection whose certificate names an admin User).
//! Decoding never panics; what decodes as an `AdminCall` or `AdminRequest` re-encodes and
//! decodes to the same value; `handle_frame` on any frame never panics and always answers
//! with a JSON `AdminAnswer`.
//!
//! `handle_frame` runs against one in-memory Router (built once, with the seeded demo PKI as
//! trust and issuing CA, so `add-certificate` and `load-crl` reach chain validation and CRL
//! parsing). Its state carries over between inputs: replay a crash input on its own first.
#![no_main]
use std::sync::OnceLock;

use dcc_router::server::admin_proto::{handle_frame, AdminAnswer, AdminCall, AdminRequest};
use dcc_router::Router;
use dcc_signing::pki::demo::DemoPki;
use dcc_signing::pki::CaCertificate;
use dcc_signing::Eui64;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    router: Router,
    issuing: CaCertificate,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pki = DemoPki::generate_seeded(1_800_000_000, 0, 11).expect("demo PKI");
        let router = Router::builder()
            .workers(1)
            .trust(pki.chain_validator())
            .build()
            .expect("router");
        Fixture {
            router,
            issuing: pki.issuing.cert.clone(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = serde_json::from_slice::<AdminCall>(data) {
        let again = serde_json::to_vec(&call).expect("an AdminCall encodes");
        assert_eq!(
            serde_json::from_slice::<AdminCall>(&again).expect("re-encoded AdminCall decodes"),
            call
        );
    }
    if let Ok(req) = serde_json::from_slice::<AdminRequest>(data) {
        let again = serde_json::to_vec(&req).expect("an AdminRequest encodes");
        assert_eq!(
            serde_json::from_slice::<AdminRequest>(&again).expect("re-encoded AdminRequest decodes"),
            req
        );
    }
    let f = fixture();
    let who = Eui64::from_u64(0x02DC_C000_0000_007F);
    let answer = handle_frame(&f.router, Some(&f.issuing), who, data, None);
    serde_json::from_slice::<AdminAnswer>(&answer).expect("the answer is an AdminAnswer");
});
