//! PEM armour: bounded, tolerant of surrounding text, strict inside each block.

use der::pem::LineEnding;
use p256::pkcs8::EncodePrivateKey;

use super::PkiError;
use crate::Signer;

/// Hard limit on a PEM input (a certificate bundle or a PEM key): far above any real one.
pub const MAX_PEM_LEN: usize = 256 * 1024;
/// Hard limit on one DER certificate. SMKI certificates are about 500 bytes.
pub const MAX_DER_LEN: usize = 16 * 1024;

/// Whether the input looks like PEM text rather than DER.
pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    // DER starts with a SEQUENCE tag (0x30); PEM files may carry text before the armour
    // (`openssl x509 -text` output), so look for the armour anywhere in a text input.
    input.get(start) != Some(&0x30) && find(input, b"-----BEGIN ").is_some()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every PEM block labelled `label` in `input`, decoded; blocks with other labels are skipped.
pub(crate) fn pem_blocks(input: &[u8], label: &str, max: usize) -> Result<Vec<Vec<u8>>, PkiError> {
    let out: Vec<Vec<u8>> = labelled_blocks(input, max, |l| l == label)?
        .into_iter()
        .map(|(_, der)| der)
        .collect();
    if out.is_empty() {
        return Err(PkiError::Pem(format!("no {label} block found")));
    }
    Ok(out)
}

/// Every PEM block in `input` whose label `wanted` accepts, with its label, decoded (possibly
/// none). Private keys need this: their label (`PRIVATE KEY`, `EC PRIVATE KEY`,
/// `RSA PRIVATE KEY`, …) says what the key is before any DER is read.
pub(crate) fn labelled_blocks(
    input: &[u8],
    max: usize,
    mut wanted: impl FnMut(&str) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, PkiError> {
    // Base64 and line breaks grow DER by about 4/3; allow a bundle of several items.
    let max_input = MAX_PEM_LEN.max(max.saturating_mul(2));
    if input.len() > max_input {
        return Err(PkiError::TooLarge {
            len: input.len(),
            max: max_input,
        });
    }
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(begin) = find(rest, b"-----BEGIN ") {
        let block = &rest[begin..];
        let Some(end) = find(block, b"-----END ") else {
            return Err(PkiError::Pem("BEGIN without END".into()));
        };
        // The END line closes with five dashes after its label.
        let after_end = &block[end + 9..];
        let Some(close) = find(after_end, b"-----") else {
            return Err(PkiError::Pem("unterminated END line".into()));
        };
        let block_len = end + 9 + close + 5;
        let this = &block[..block_len];
        rest = &block[block_len..];
        let (got, der) = der::pem::decode_vec(this).map_err(|e| PkiError::Pem(e.to_string()))?;
        if !wanted(got) {
            continue;
        }
        if der.len() > max {
            return Err(PkiError::TooLarge {
                len: der.len(),
                max,
            });
        }
        out.push((got.to_owned(), der));
    }
    Ok(out)
}

/// The DER items in `input`: every `label` block when it is PEM, else the input itself as DER.
pub(crate) fn der_items(input: &[u8], label: &str, max: usize) -> Result<Vec<Vec<u8>>, PkiError> {
    if looks_like_pem(input) {
        pem_blocks(input, label, max)
    } else if input.len() > max {
        Err(PkiError::TooLarge {
            len: input.len(),
            max,
        })
    } else {
        Ok(vec![input.to_vec()])
    }
}

/// Exactly one DER item (PEM with exactly one `label` block, or DER).
pub(crate) fn one_der(input: &[u8], label: &str, max: usize) -> Result<Vec<u8>, PkiError> {
    let mut items = der_items(input, label, max)?;
    if items.len() != 1 {
        return Err(PkiError::Pem(format!(
            "expected one {label} block, found {}",
            items.len()
        )));
    }
    Ok(items.remove(0))
}

/// PEM armour for DER bytes, LF line endings.
pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    // Encoding into a String cannot fail for any label we use; fall back to an empty
    // string rather than panic.
    der::pem::encode_string(label, LineEnding::LF, der).unwrap_or_default()
}

/// A signer's private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn key_to_pem(signer: &Signer) -> Result<String, PkiError> {
    signer
        .signing_key()
        .to_pkcs8_pem(LineEnding::LF)
        .map(|z| z.to_string())
        .map_err(|e| PkiError::Key(e.to_string()))
}
