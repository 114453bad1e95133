//! The binary, versioned Service Request envelope.
//!
//! A DUIS Service Request is an XML document with an enveloped XML-DSig signature. The router
//! carries the same facts in a compact binary form so that decoding costs nanoseconds, not the
//! microseconds of XML canonicalisation, and so that every length is checked before it is used.
//!
//! # Layout (version 1)
//!
//! All integers are big-endian. Offsets are in bytes.
//!
//! | offset | size | field | rule |
//! |-------:|-----:|-------|------|
//! | 0  | 4  | magic | `b"DCSR"` |
//! | 4  | 1  | version | `1` |
//! | 5  | 1  | flags | reserved, must be `0` |
//! | 6  | 1  | User Role | 1 IS, 2 ES, 3 GS, 4 ED, 5 GT, 6 OU, 7 RSA |
//! | 7  | 1  | command variant | 1..=8 |
//! | 8  | 1  | execution kind | 0 on-demand, 1 future-dated, 2 DCC-scheduled |
//! | 9  | 3  | SRV | `major, minor, variant` (variant 0 = two-component SRV) |
//! | 12 | 8  | originator EUI-64 | Request ID part 1 |
//! | 20 | 8  | target EUI-64 | Request ID part 2 |
//! | 28 | 8  | originator counter | Request ID part 3 |
//! | 36 | 8  | execute-at | Unix seconds; `0` exactly when on-demand |
//! | 44 | 8  | signer issuer hash | first 8 bytes of SHA-256(issuer Name DER) |
//! | 52 | 1  | signer serial length | 1..=20 |
//! | 53 | 20 | signer serial | magnitude, first byte non-zero, zero-padded to 20 |
//! | 73 | 4  | body length *n* | ≤ [`MAX_BODY_LEN`] |
//! | 77 | *n* | body | opaque (e.g. a GBCS payload) |
//! | 77+*n* | 64 | signature | ECDSA P-256 `r ‖ s`, 32 bytes each, over SHA-256 of bytes `0..77+n` |
//!
//! The whole envelope is at most [`MAX_ENVELOPE_LEN`] bytes and must be exactly
//! `77 + n + 64` long: trailing bytes are an error, not ignored.
//!
//! Decoding ([`Envelope::decode`]) borrows the input: the body and signature are slices of it.
//! Every defect has its own [`DecodeError`] variant with a stable short [`DecodeError::code`].

mod decode;
mod encode;

pub use decode::{DecodeError, Envelope};
pub use encode::{encode_unsigned, EncodeError};

use crate::{CertId, CommandVariant, ExecutionKind, RequestId, Srv, UserRole};

/// The envelope magic.
pub const MAGIC: [u8; 4] = *b"DCSR";
/// The only version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 77;
/// Signature length (`r ‖ s`).
pub const SIGNATURE_LEN: usize = 64;
/// Hard maximum size of a whole envelope.
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;
/// Hard maximum body size.
pub const MAX_BODY_LEN: usize = MAX_ENVELOPE_LEN - HEADER_LEN - SIGNATURE_LEN;

/// Every fixed-size field of a Service Request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// The User Role the request is sent in.
    pub role: UserRole,
    /// The command variant.
    pub command_variant: CommandVariant,
    /// On-demand, future-dated or DCC-scheduled.
    pub execution: ExecutionKind,
    /// What is asked.
    pub srv: Srv,
    /// Originator, target, counter.
    pub request_id: RequestId,
    /// Unix seconds for future-dated and scheduled requests, `0` for on-demand ones.
    pub execute_at: u64,
    /// The certificate whose key signed the request.
    pub signer: CertId,
}
