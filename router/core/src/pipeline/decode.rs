//! Stage 1: decode the envelope without copying the body (bounded sizes, typed errors).

use dcc_signing::envelope::{DecodeError, Envelope, MAGIC};
use dcc_signing::{Eui64, RequestId};

/// Decodes, or names the defect (answered R1 with [`DecodeError::code`] as detail).
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    Envelope::decode(bytes)
}

/// The Request ID of an envelope that failed to decode, when its bytes are there to read
/// (magic right, header long enough), so that the refusal can still be correlated.
pub(crate) fn salvage_request_id(bytes: &[u8]) -> Option<RequestId> {
    let get = |at: usize| -> Option<[u8; 8]> { bytes.get(at..at + 8)?.try_into().ok() };
    if bytes.get(..4)? != MAGIC {
        return None;
    }
    Some(RequestId {
        originator: Eui64(get(12)?),
        target: Eui64(get(20)?),
        counter: u64::from_be_bytes(get(28)?),
    })
}
