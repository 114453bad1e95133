//! Certificate and CRL parsing of arbitrary bytes (PEM or DER) never panics.
#![no_main]
use dcc_signing::pki::{CaCertificate, OrgCertificate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = OrgCertificate::parse(data);
    let _ = OrgCertificate::parse_all(data);
    if let Ok(ca) = CaCertificate::parse(data) {
        let _ = dcc_signing::pki::Crl::parse_verified(data, &ca);
    }
});
