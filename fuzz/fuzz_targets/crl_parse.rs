//! CRL parsing (`admin load-crl`: PEM text from an admin, verified against the issuing CA).
//!
//! The first input byte chooses: even, the rest is parsed as a CRL (PEM or DER) against a
//! fixed issuing CA — never panics; odd, the rest is cut into serial numbers, the CA issues a
//! CRL listing them, and that CRL parses back with exactly those certificates revoked.
#![no_main]
use std::sync::OnceLock;

use dcc_signing::pki::demo::DemoPki;
use dcc_signing::pki::Crl;
use dcc_signing::CertId;
use libfuzzer_sys::fuzz_target;

fn pki() -> &'static DemoPki {
    static P: OnceLock<DemoPki> = OnceLock::new();
    P.get_or_init(|| DemoPki::generate_seeded(1_800_000_000, 0, 11).expect("demo PKI"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ca = &pki().issuing;
    if mode & 1 == 0 {
        if let Ok(crl) = Crl::parse_verified(rest, &ca.cert) {
            // Whatever verifies is the CA's own; it must parse again from its PEM.
            let again = Crl::parse_verified(crl.to_pem().as_bytes(), &ca.cert).expect("reparse");
            assert_eq!(again.revoked, crl.revoked);
        }
        return;
    }
    // Serials: each chunk's first byte is its length (1..=32), then that many bytes.
    let mut serials = Vec::new();
    let mut r = rest;
    while let Some((&n, tail)) = r.split_first() {
        let n = usize::from(n % 32) + 1;
        if tail.len() < n {
            break;
        }
        serials.push(tail[..n].to_vec());
        r = &tail[n..];
    }
    let Ok(crl) = ca.issue_crl(&serials, 1_800_000_000, 1_800_086_400, u64::from(mode)) else {
        return;
    };
    let back = Crl::parse_verified(crl.to_pem().as_bytes(), &ca.cert).expect("own CRL verifies");
    let hash = ca.cert.issued_cert_issuer_hash();
    let want: Vec<CertId> = serials
        .iter()
        .map(|s| {
            let first = s.iter().position(|&b| b != 0).unwrap_or(s.len());
            CertId::new(hash, &s[first..]).expect("a serial issue_crl accepted")
        })
        .collect();
    assert_eq!(back.revoked, want);
    assert_eq!(back.crl_number, Some(u64::from(mode)));
});
