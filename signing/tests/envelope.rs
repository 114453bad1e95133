//! Envelope format: golden vectors, one test per decode error, round-trip properties, and
//! signature coverage of every byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dcc_signing::envelope::{
    encode_unsigned, DecodeError, Envelope, Header, HEADER_LEN, MAX_BODY_LEN, MAX_ENVELOPE_LEN,
    SIGNATURE_LEN,
};
use dcc_signing::verify::{P256Verifier, Verifier};
use dcc_signing::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Signer, Srv, UserRole};
use proptest::prelude::*;

/// The golden key: a fixed scalar, so RFC 6979 signatures are reproducible byte for byte.
fn golden_signer() -> Signer {
    let scalar = [0x11u8; 32];
    Signer::new(p256::ecdsa::SigningKey::from_bytes(&scalar.into()).unwrap())
}

fn golden_header() -> Header {
    Header {
        role: UserRole::ImportSupplier,
        command_variant: CommandVariant::NON_CRITICAL_WAN,
        execution: ExecutionKind::OnDemand,
        srv: "2.2".parse().unwrap(),
        request_id: RequestId {
            originator: "90-B3-D5-1F-30-01-00-00".parse().unwrap(),
            target: "00-DB-12-34-56-78-00-04".parse().unwrap(),
            counter: 1_000_001,
        },
        execute_at: 0,
        signer: CertId::new(
            [0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18],
            &[0x1C, 0x06, 0x3B],
        )
        .unwrap(),
    }
}

const GOLDEN_BODY: &[u8] = b"GBCS:top-up:2000p";

fn golden_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/envelope-v1-topup.hex")
}

/// The committed golden envelope is exactly what this build encodes and signs, and decodes back
/// to the same fields. A change of layout breaks this test on purpose: bump the version instead.
#[test]
fn golden_vector_is_stable() {
    let bytes = golden_signer()
        .sign_envelope(&golden_header(), GOLDEN_BODY)
        .unwrap();
    let text = std::fs::read_to_string(golden_path()).expect("golden file");
    let golden = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
    assert_eq!(hex::encode(&bytes), hex::encode(&golden));

    // Spot-check the byte table against the golden bytes.
    assert_eq!(&golden[0..4], b"DCSR");
    assert_eq!(golden[4], 1, "version");
    assert_eq!(golden[6], 1, "role IS");
    assert_eq!(golden[7], 1, "CV 1");
    assert_eq!(&golden[9..12], &[2, 2, 0], "SRV 2.2");
    assert_eq!(&golden[28..36], &1_000_001u64.to_be_bytes(), "counter");
    assert_eq!(golden[52], 3, "serial length");
    assert_eq!(&golden[53..56], &[0x1C, 0x06, 0x3B]);
    assert_eq!(&golden[73..77], &(GOLDEN_BODY.len() as u32).to_be_bytes());
    assert_eq!(golden.len(), HEADER_LEN + GOLDEN_BODY.len() + SIGNATURE_LEN);

    let env = Envelope::decode(&golden).unwrap();
    assert_eq!(env.header, golden_header());
    assert_eq!(env.body, GOLDEN_BODY);
    let key = P256Verifier.prepare(&golden_signer().public_key());
    key.verify_prehash(&env.digest(), env.signature).unwrap();
}

/// Writes the golden file when `DCC_WRITE_GOLDEN=1` (run once after a deliberate format change).
#[test]
fn write_golden_when_asked() {
    if std::env::var("DCC_WRITE_GOLDEN").as_deref() == Ok("1") {
        let bytes = golden_signer()
            .sign_envelope(&golden_header(), GOLDEN_BODY)
            .unwrap();
        let hex = hex::encode(bytes);
        let lines: Vec<&str> = hex
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        std::fs::write(golden_path(), lines.join("\n") + "\n").unwrap();
    }
}

fn valid() -> Vec<u8> {
    golden_signer()
        .sign_envelope(&golden_header(), GOLDEN_BODY)
        .unwrap()
}

fn with(mut b: Vec<u8>, at: usize, v: u8) -> Vec<u8> {
    b[at] = v;
    b
}

#[test]
fn each_decode_error_kind() {
    let ok = valid();
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (
            ok[..HEADER_LEN + SIGNATURE_LEN - 1].to_vec(),
            DecodeError::TooShort(140),
        ),
        (
            vec![0; MAX_ENVELOPE_LEN + 1],
            DecodeError::TooLong(MAX_ENVELOPE_LEN + 1),
        ),
        (with(ok.clone(), 0, b'X'), DecodeError::BadMagic),
        (with(ok.clone(), 4, 2), DecodeError::UnsupportedVersion(2)),
        (with(ok.clone(), 5, 0x80), DecodeError::ReservedFlags(0x80)),
        (with(ok.clone(), 6, 0), DecodeError::BadRole(0)),
        (with(ok.clone(), 6, 8), DecodeError::BadRole(8)),
        (with(ok.clone(), 7, 9), DecodeError::BadCommandVariant(9)),
        (with(ok.clone(), 8, 3), DecodeError::BadExecution(3)),
        (with(ok.clone(), 9, 0), DecodeError::BadSrv([0, 2, 0])),
        // Future-dated with execute-at 0.
        (with(ok.clone(), 8, 1), DecodeError::ExecuteAtMismatch),
        // On-demand with a non-zero execute-at.
        (with(ok.clone(), 43, 1), DecodeError::ExecuteAtMismatch),
        (with(ok.clone(), 52, 0), DecodeError::BadSerialLength(0)),
        (with(ok.clone(), 52, 21), DecodeError::BadSerialLength(21)),
        (with(ok.clone(), 53, 0), DecodeError::NonCanonicalSerial),
        (with(ok.clone(), 60, 7), DecodeError::NonCanonicalSerial),
        (
            {
                let mut b = ok.clone();
                b[73..77].copy_from_slice(&(MAX_BODY_LEN as u32 + 1).to_be_bytes());
                b
            },
            DecodeError::BodyTooLong(MAX_BODY_LEN as u32 + 1),
        ),
        (
            with(ok.clone(), 76, GOLDEN_BODY.len() as u8 + 1),
            DecodeError::LengthMismatch {
                declared: GOLDEN_BODY.len() as u32 + 1,
                actual: GOLDEN_BODY.len(),
            },
        ),
        (
            {
                let mut b = ok.clone();
                b.push(0);
                b
            },
            DecodeError::LengthMismatch {
                declared: GOLDEN_BODY.len() as u32,
                actual: GOLDEN_BODY.len() + 1,
            },
        ),
    ];
    let mut codes = std::collections::BTreeSet::new();
    for (bytes, want) in cases {
        let got = Envelope::decode(&bytes).map(|_| ()).unwrap_err();
        assert_eq!(got, want);
        assert!(!got.to_string().is_empty());
        codes.insert(got.code());
    }
    // Every variant is covered by at least one case above.
    assert_eq!(codes.len(), 14, "{codes:?}");
}

#[test]
fn every_flipped_bit_fails_verification() {
    let signer = golden_signer();
    let key = P256Verifier.prepare(&signer.public_key());
    let ok = valid();
    for byte in 0..ok.len() {
        for bit in 0..8 {
            let mut b = ok.clone();
            b[byte] ^= 1 << bit;
            // Either the envelope no longer decodes, or its signature no longer verifies.
            if let Ok(env) = Envelope::decode(&b) {
                assert!(
                    key.verify_prehash(&env.digest(), env.signature).is_err(),
                    "flip of bit {bit} in byte {byte} still verifies"
                );
            }
        }
    }
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        1u8..=7,
        1u8..=8,
        0u8..=2,
        (1u8..=255, 1u8..=255, 0u8..=255),
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        any::<u64>(),
        1u64..,
        any::<[u8; 8]>(),
        proptest::collection::vec(any::<u8>(), 1..=20),
    )
        .prop_filter_map(
            "serial must be non-zero",
            |(role, cv, ex, (a, b, c), o, t, counter, at, issuer, serial)| {
                let execution = ExecutionKind::from_code(ex)?;
                Some(Header {
                    role: UserRole::from_code(role)?,
                    command_variant: CommandVariant::new(cv)?,
                    execution,
                    srv: Srv::from_bytes([a, b, c])?,
                    request_id: RequestId {
                        originator: Eui64(o),
                        target: Eui64(t),
                        counter,
                    },
                    execute_at: if execution == ExecutionKind::OnDemand {
                        0
                    } else {
                        at
                    },
                    signer: CertId::new(issuer, &serial)?,
                })
            },
        )
}

proptest! {
    #[test]
    fn round_trip(h in arb_header(), body in proptest::collection::vec(any::<u8>(), 0..512), sig in any::<[u8; 32]>()) {
        let mut bytes = encode_unsigned(&h, &body).unwrap();
        bytes.extend_from_slice(&sig);
        bytes.extend_from_slice(&sig);
        let env = Envelope::decode(&bytes).unwrap();
        prop_assert_eq!(env.header, h);
        prop_assert_eq!(env.body, &body[..]);
        prop_assert_eq!(&env.signature[..32], &sig[..]);
        prop_assert_eq!(env.signed.len(), bytes.len() - SIGNATURE_LEN);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Envelope::decode(&bytes);
    }

    /// Mutating a valid envelope never panics, and whatever still decodes re-encodes to the
    /// same bytes (the format has one encoding per value).
    #[test]
    fn mutations_decode_canonically(at in 0usize..(HEADER_LEN + GOLDEN_BODY.len() + SIGNATURE_LEN), v in any::<u8>()) {
        let b = with(valid(), at, v);
        if let Ok(env) = Envelope::decode(&b) {
            let mut again = encode_unsigned(&env.header, env.body).unwrap();
            again.extend_from_slice(env.signature);
            prop_assert_eq!(again, b);
        }
    }
}

#[test]
fn encode_refuses_oversize_body_and_bad_execute_at() {
    let h = golden_header();
    assert!(encode_unsigned(&h, &vec![0; MAX_BODY_LEN + 1]).is_err());
    assert!(encode_unsigned(&h, &vec![0; MAX_BODY_LEN]).is_ok());
    let mut dated = h;
    dated.execution = ExecutionKind::FutureDated;
    assert!(encode_unsigned(&dated, b"").is_err());
    dated.execute_at = 1_900_000_000;
    assert!(encode_unsigned(&dated, b"").is_ok());
}
