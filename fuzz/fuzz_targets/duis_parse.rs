//! Reading arbitrary bytes as DUIS XML must never panic, whatever the header and signature
//! checks then say; and what reads is canonicalised idempotently (C14N of C14N is itself).
#![no_main]
use dcc_signing::duis::{canonicalize, C14nMode, DuisDocument, SignedDuis};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = DuisDocument::parse(data) else {
        return;
    };
    let _ = doc.request_header();
    let _ = doc.response_header();
    if let Ok(signed) = SignedDuis::from_document(doc.clone()) {
        let _ = signed.check_reference();
        let _ = signed.signature.signed_info_digest();
    }
    for mode in [C14nMode::Inclusive, C14nMode::Exclusive] {
        let once = canonicalize(data, mode).expect("a document that parses canonicalises");
        let twice = canonicalize(&once, mode).expect("canonical XML parses");
        assert_eq!(once, twice, "{mode:?} canonicalisation is not idempotent");
    }
});
