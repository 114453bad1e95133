//! The same parser reads the real DCC Boxed Organisation Certificates (shared/vectors/dccboxed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dcc_signing::pki::{ChainError, ChainValidator, OrgCertificate, TrustAnchors};
use dcc_signing::{Eui64, RemotePartyRole, Signer};

/// 2025-09-15T00:00:00Z: every DCC Boxed certificate here was valid then.
const SEPT_2025: u64 = 1_757_894_400;
/// 2026-06-01T00:00:00Z: the Z1 and Z1b certificates have expired by then.
const JUNE_2026: u64 = 1_780_272_000;

mod common;
use common::vectors;

/// file stem, EUI-64, OU role code, not_after (Unix seconds).
const CERTS: &[(&str, &str, u8, u64)] = &[
    (
        "Z1-accessControlBroker-dSPXmlSign",
        "90-B3-D5-1F-30-00-00-02",
        0x89,
        2_072_303_999,
    ),
    (
        "Z1-accessControlBroker-ds",
        "90-B3-D5-1F-30-00-00-02",
        0x04,
        1_761_782_399,
    ),
    (
        "Z1-networkOperator-ds",
        "90-B3-D5-1F-30-02-00-00",
        0x03,
        1_761_782_399,
    ),
    (
        "Z1-recovery-ds",
        "90-B3-D5-1F-30-00-00-01",
        0x01,
        1_761_782_399,
    ),
    (
        "Z1-supplier-ds",
        "90-B3-D5-1F-30-01-00-00",
        0x02,
        1_761_782_399,
    ),
    (
        "Z1-supplier2-ds",
        "90-B3-D5-1F-30-03-00-00",
        0x02,
        1_766_447_999,
    ),
    (
        "Z1-transitionalCoS-ds",
        "90-B3-D5-1F-30-00-00-04",
        0x05,
        1_762_127_999,
    ),
    (
        "Z1-wanProvider-ds",
        "90-B3-D5-1F-30-00-00-07",
        0x06,
        1_761_782_399,
    ),
    (
        "Z1b-accessControlBroker-ds",
        "90-B3-D5-1F-30-00-00-02",
        0x04,
        1_768_003_199,
    ),
    (
        "Z1b-networkOperator-ds",
        "90-B3-D5-1F-30-02-00-00",
        0x03,
        1_768_003_199,
    ),
    (
        "Z1b-recovery-ds",
        "90-B3-D5-1F-30-00-00-01",
        0x01,
        1_768_003_199,
    ),
    (
        "Z1b-supplier-ds",
        "90-B3-D5-1F-30-01-00-00",
        0x02,
        1_768_003_199,
    ),
    (
        "Z1b-transitionalCoS-ds",
        "90-B3-D5-1F-30-00-00-04",
        0x05,
        1_768_003_199,
    ),
    (
        "Z1b-wanProvider-ds",
        "90-B3-D5-1F-30-00-00-07",
        0x06,
        1_768_003_199,
    ),
    // The legacy certificate whose OU is the decimal `137` (= 0x89).
    (
        "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1",
        "90-B3-D5-1F-30-00-00-02",
        0x89,
        4_670_438_400,
    ),
    (
        "dsp-xml-sign-90B3D51F30000002-ds",
        "90-B3-D5-1F-30-00-00-02",
        0x89,
        4_670_438_400,
    ),
    (
        "xml-sign-00DB123456780004-ds",
        "00-DB-12-34-56-78-00-04",
        0x87,
        4_670_438_400,
    ),
    (
        "xml-sign-90B3D51F30010000-ds",
        "90-B3-D5-1F-30-01-00-00",
        0x87,
        4_670_438_400,
    ),
    (
        "xml-sign-90B3D51F30020000-ds",
        "90-B3-D5-1F-30-02-00-00",
        0x87,
        4_670_438_400,
    ),
];

fn load(dir: &std::path::Path, stem: &str) -> OrgCertificate {
    let bytes = std::fs::read(dir.join("certs").join(format!("{stem}.pem"))).unwrap();
    OrgCertificate::parse(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"))
}

#[test]
fn every_dcc_boxed_certificate_parses_with_its_eui64_and_role() {
    let Some(dir) = vectors() else { return };
    // Every certificate file in the folder is in the table (none forgotten).
    let mut on_disk: Vec<String> = std::fs::read_dir(dir.join("certs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pem") && !n.ends_with(".key.pem"))
        .map(|n| n.trim_end_matches(".pem").to_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CERTS.iter().map(|c| c.0.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);

    for &(stem, eui, role, not_after) in CERTS {
        let c = load(&dir, stem);
        assert_eq!(c.subject_eui64, eui.parse::<Eui64>().unwrap(), "{stem}");
        assert_eq!(c.role.code(), role, "{stem}");
        assert_eq!(c.not_after, not_after, "{stem}");
        assert!(
            c.key_usage.digital_signature && !c.key_usage.key_agreement,
            "{stem}"
        );
        assert!(!c.is_ca, "{stem}");
        assert_eq!(c.issuer, "CN=Z1,OU=07", "{stem}"); // RFC 4514 order: last RDN first
        assert_eq!(c.id.serial(), c.serial.as_slice());
        // Its private key (PKCS#8 DER in the .key file) matches.
        let key = std::fs::read(dir.join("certs").join(format!("{stem}.key"))).unwrap();
        let signer = Signer::from_pkcs8(&key).unwrap_or_else(|e| panic!("{stem}.key: {e}"));
        assert_eq!(signer.public_key(), c.public_key, "{stem}");
    }
    let x = load(&dir, "xml-sign-00DB123456780004-ds");
    assert_eq!(x.subject_eui64.to_string(), "00-DB-12-34-56-78-00-04");
    assert_eq!(x.role, RemotePartyRole::XmlSigning);
    assert_eq!(x.serial_hex(), "1C063B7B4F241AADA23FFFF28E88B927");
    let legacy = load(&dir, "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1");
    assert_eq!(legacy.role, RemotePartyRole::DccXmlSigning);
    assert!(legacy.subject.contains("OU=137"), "{}", legacy.subject);
    let s = load(&dir, "Z1-supplier-ds");
    assert_eq!(s.common_name.as_deref(), Some("GITTESTSUPPLIER"));
    assert_eq!(s.role, RemotePartyRole::Supplier);
    // The PEM+PKCS#8 key variant parses too.
    let k = std::fs::read(dir.join("certs/dsp-xml-sign-90B3D51F30000002-ds.key.pem")).unwrap();
    assert_eq!(
        Signer::from_pkcs8(&k).unwrap().public_key(),
        load(&dir, "dsp-xml-sign-90B3D51F30000002-ds").public_key
    );
}

#[test]
fn z1_certificates_are_expired_at_a_fixed_time() {
    let Some(dir) = vectors() else { return };
    // These certificates do not chain to a CA we hold: trust them by pinning, so that only
    // validity and key usage are checked.
    let mut anchors = TrustAnchors::default();
    let certs: Vec<_> = CERTS.iter().map(|c| (c.0, load(&dir, c.0))).collect();
    for (_, c) in &certs {
        anchors.pin(c);
    }
    let v = ChainValidator::new(anchors);
    for (stem, c) in &certs {
        v.validate(c, SEPT_2025)
            .unwrap_or_else(|e| panic!("{stem} in Sept 2025: {e}"));
        let later = v.validate(c, JUNE_2026);
        if stem.starts_with("Z1") && !stem.contains("dSPXmlSign") {
            assert!(
                matches!(later, Err(ChainError::Expired { at: JUNE_2026, .. })),
                "{stem}: {later:?}"
            );
        } else {
            assert_eq!(later, Ok(()), "{stem}");
        }
    }
    // Unpinned, they do not chain to anything configured.
    let bare = ChainValidator::new(TrustAnchors::default());
    assert!(matches!(
        bare.validate(&certs[16].1, SEPT_2025),
        Err(ChainError::UnknownIssuer { .. })
    ));
}

/// A decimal string to big-endian magnitude bytes.
fn decimal_to_bytes(s: &str) -> Vec<u8> {
    let mut out: Vec<u8> = vec![0];
    for d in s.bytes() {
        let mut carry = u32::from(d - b'0');
        for b in out.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let first = out.iter().position(|&b| b != 0).unwrap_or(out.len());
    out[first..].to_vec()
}

#[test]
fn keystore_certificates_parse_and_match_their_entries() {
    let Some(dir) = vectors() else { return };
    let ks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("keystore.json")).unwrap()).unwrap();
    let mut n = 0;
    let mut key_agreement = 0;
    for (eui, usages) in ks.as_object().unwrap() {
        for (usage, entries) in usages.as_object().unwrap() {
            for (serial, e) in entries.as_object().unwrap() {
                let name = e["name"].as_str().unwrap();
                let c = OrgCertificate::parse(e["certificate"].as_str().unwrap().as_bytes())
                    .unwrap_or_else(|err| panic!("{name}: {err}"));
                assert_eq!(
                    c.subject_eui64.to_plain_hex().to_lowercase(),
                    *eui,
                    "{name}"
                );
                assert_eq!(
                    u64::from(c.role.code()),
                    e["role"].as_u64().unwrap(),
                    "{name}"
                );
                assert_eq!(c.serial, decimal_to_bytes(serial), "{name}");
                match usage.as_str() {
                    "digitalSignature" => {
                        assert!(c.key_usage.digital_signature && !c.key_usage.key_agreement)
                    }
                    "keyAgreement" => {
                        key_agreement += 1;
                        assert!(c.key_usage.key_agreement && !c.key_usage.digital_signature);
                        // Not a signing certificate: refused for signing even when pinned.
                        let mut a = TrustAnchors::default();
                        a.pin(&c);
                        let r = ChainValidator::new(a).validate(&c, c.not_before);
                        assert!(matches!(r, Err(ChainError::NotForSigning(_))), "{name}");
                    }
                    other => panic!("unexpected usage {other}"),
                }
                let signer = Signer::from_pkcs8(e["privateKey"].as_str().unwrap().as_bytes())
                    .unwrap_or_else(|err| panic!("{name} key: {err}"));
                assert_eq!(signer.public_key(), c.public_key, "{name}");
                n += 1;
            }
        }
    }
    assert_eq!(n, 33);
    assert_eq!(key_agreement, 13);
}

#[test]
fn decimal_conversion_helper() {
    assert_eq!(decimal_to_bytes("255"), [0xFF]);
    assert_eq!(decimal_to_bytes("256"), [1, 0]);
    assert_eq!(
        decimal_to_bytes("37250744094852421200045328576547436839"),
        hex::decode("1C063B7B4F241AADA23FFFF28E88B927").unwrap()
    );
}
