use super::{Header, HEADER_LEN, MAGIC, MAX_BODY_LEN, VERSION};
use crate::ids::MAX_SERIAL_LEN;

/// Why an envelope cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The body is over [`MAX_BODY_LEN`].
    #[error("body of {0} bytes is over the maximum of {MAX_BODY_LEN}")]
    BodyTooLong(usize),
    /// `execute_at` must be 0 exactly for on-demand requests.
    #[error("execute-at must be 0 for on-demand requests and non-zero otherwise")]
    ExecuteAt,
}

/// Writes header and body: the bytes the signature covers. Append the 64-byte signature
/// (see [`crate::sign::Signer::sign_envelope`]) to complete the envelope.
pub fn encode_unsigned(h: &Header, body: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if body.len() > MAX_BODY_LEN {
        return Err(EncodeError::BodyTooLong(body.len()));
    }
    if (h.execution == crate::ExecutionKind::OnDemand) != (h.execute_at == 0) {
        return Err(EncodeError::ExecuteAt);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + super::SIGNATURE_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.push(h.role.code());
    out.push(h.command_variant.get());
    out.push(h.execution.code());
    out.extend_from_slice(&h.srv.to_bytes());
    out.extend_from_slice(h.request_id.originator.as_bytes());
    out.extend_from_slice(h.request_id.target.as_bytes());
    out.extend_from_slice(&h.request_id.counter.to_be_bytes());
    out.extend_from_slice(&h.execute_at.to_be_bytes());
    out.extend_from_slice(&h.signer.issuer_hash());
    let serial = h.signer.serial();
    out.push(serial.len() as u8);
    let mut padded = [0u8; MAX_SERIAL_LEN];
    padded[..serial.len()].copy_from_slice(serial);
    out.extend_from_slice(&padded);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(body);
    Ok(out)
}
