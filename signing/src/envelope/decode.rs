use sha2::{Digest, Sha256};

use super::{Header, HEADER_LEN, MAGIC, MAX_BODY_LEN, MAX_ENVELOPE_LEN, SIGNATURE_LEN, VERSION};
use crate::ids::MAX_SERIAL_LEN;
use crate::{CertId, CommandVariant, Eui64, ExecutionKind, RequestId, Srv, UserRole};

/// A decoded envelope, borrowing the bytes it was decoded from.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// The fixed fields.
    pub header: Header,
    /// The opaque body.
    pub body: &'a [u8],
    /// Every byte the signature covers (header and body).
    pub signed: &'a [u8],
    /// `r ‖ s`.
    pub signature: &'a [u8; SIGNATURE_LEN],
}

/// What is wrong with an envelope. Each kind of defect has its own variant and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a header plus a signature.
    #[error("envelope of {0} bytes is shorter than the minimum {min}", min = HEADER_LEN + SIGNATURE_LEN)]
    TooShort(usize),
    /// Over [`MAX_ENVELOPE_LEN`].
    #[error("envelope of {0} bytes is over the maximum {MAX_ENVELOPE_LEN}")]
    TooLong(usize),
    /// The first four bytes are not `DCSR`.
    #[error("bad magic: not a DCC Service Request envelope")]
    BadMagic,
    /// A version this crate does not read.
    #[error("unsupported envelope version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// Reserved flag bits set.
    #[error("reserved flags {0:#04x} are set")]
    ReservedFlags(u8),
    /// Not a User Role code.
    #[error("unknown User Role code {0}")]
    BadRole(u8),
    /// Not a command variant.
    #[error("command variant {0} is not 1..=8")]
    BadCommandVariant(u8),
    /// Not an execution kind.
    #[error("unknown execution kind {0}")]
    BadExecution(u8),
    /// The SRV bytes do not form an SRV.
    #[error("malformed SRV bytes {0:?}")]
    BadSrv([u8; 3]),
    /// `execute_at` is zero for a dated request or non-zero for an on-demand one.
    #[error("execute-at does not match the execution kind")]
    ExecuteAtMismatch,
    /// Serial length 0 or over 20.
    #[error("signer serial length {0} is not 1..=20")]
    BadSerialLength(u8),
    /// Leading zero in the serial, or non-zero padding after it.
    #[error("signer serial is not canonical (leading zero or non-zero padding)")]
    NonCanonicalSerial,
    /// The declared body length is over [`MAX_BODY_LEN`].
    #[error("declared body length {0} is over the maximum {MAX_BODY_LEN}")]
    BodyTooLong(u32),
    /// The declared body length does not match the bytes received.
    #[error("declared body length {declared} but {actual} bytes are present")]
    LengthMismatch {
        /// From the header.
        declared: u32,
        /// Bytes between header and signature.
        actual: usize,
    },
}

impl DecodeError {
    /// A short, stable name for the defect (for response details, metrics and logs).
    pub const fn code(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) => "too-short",
            DecodeError::TooLong(_) => "too-long",
            DecodeError::BadMagic => "bad-magic",
            DecodeError::UnsupportedVersion(_) => "unsupported-version",
            DecodeError::ReservedFlags(_) => "reserved-flags",
            DecodeError::BadRole(_) => "bad-role",
            DecodeError::BadCommandVariant(_) => "bad-command-variant",
            DecodeError::BadExecution(_) => "bad-execution",
            DecodeError::BadSrv(_) => "bad-srv",
            DecodeError::ExecuteAtMismatch => "execute-at-mismatch",
            DecodeError::BadSerialLength(_) => "bad-serial-length",
            DecodeError::NonCanonicalSerial => "non-canonical-serial",
            DecodeError::BodyTooLong(_) => "body-too-long",
            DecodeError::LengthMismatch { .. } => "length-mismatch",
        }
    }
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl<'a> Envelope<'a> {
    /// Decodes an envelope without copying its body. Checks every field; never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let len = bytes.len();
        if len > MAX_ENVELOPE_LEN {
            return Err(DecodeError::TooLong(len));
        }
        if len < HEADER_LEN + SIGNATURE_LEN {
            return Err(DecodeError::TooShort(len));
        }
        // From here on every fixed offset below HEADER_LEN is in bounds.
        if bytes[0..4] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(DecodeError::UnsupportedVersion(bytes[4]));
        }
        if bytes[5] != 0 {
            return Err(DecodeError::ReservedFlags(bytes[5]));
        }
        let role = UserRole::from_code(bytes[6]).ok_or(DecodeError::BadRole(bytes[6]))?;
        let command_variant =
            CommandVariant::new(bytes[7]).ok_or(DecodeError::BadCommandVariant(bytes[7]))?;
        let execution =
            ExecutionKind::from_code(bytes[8]).ok_or(DecodeError::BadExecution(bytes[8]))?;
        let srv_bytes = arr::<3>(bytes, 9);
        let srv = Srv::from_bytes(srv_bytes).ok_or(DecodeError::BadSrv(srv_bytes))?;
        let originator = Eui64(arr(bytes, 12));
        let target = Eui64(arr(bytes, 20));
        let counter = u64::from_be_bytes(arr(bytes, 28));
        let execute_at = u64::from_be_bytes(arr(bytes, 36));
        if (execution == ExecutionKind::OnDemand) != (execute_at == 0) {
            return Err(DecodeError::ExecuteAtMismatch);
        }
        let issuer = arr::<8>(bytes, 44);
        let serial_len = bytes[52];
        if serial_len == 0 || serial_len as usize > MAX_SERIAL_LEN {
            return Err(DecodeError::BadSerialLength(serial_len));
        }
        let serial_field = &bytes[53..53 + MAX_SERIAL_LEN];
        let (serial, padding) = serial_field.split_at(serial_len as usize);
        if serial[0] == 0 || padding.iter().any(|&b| b != 0) {
            return Err(DecodeError::NonCanonicalSerial);
        }
        let signer = CertId::new(issuer, serial).ok_or(DecodeError::NonCanonicalSerial)?;
        let declared = u32::from_be_bytes(arr(bytes, 73));
        if declared as usize > MAX_BODY_LEN {
            return Err(DecodeError::BodyTooLong(declared));
        }
        let actual = len - HEADER_LEN - SIGNATURE_LEN;
        if declared as usize != actual {
            return Err(DecodeError::LengthMismatch { declared, actual });
        }
        let (signed, sig) = bytes.split_at(len - SIGNATURE_LEN);
        let signature: &[u8; SIGNATURE_LEN] = sig
            .try_into()
            .map_err(|_| DecodeError::LengthMismatch { declared, actual })?;
        Ok(Envelope {
            header: Header {
                role,
                command_variant,
                execution,
                srv,
                request_id: RequestId {
                    originator,
                    target,
                    counter,
                },
                execute_at,
                signer,
            },
            body: &signed[HEADER_LEN..],
            signed,
            signature,
        })
    }

    /// SHA-256 of the signed bytes: the prehash the signature is over.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.signed).into()
    }
}
