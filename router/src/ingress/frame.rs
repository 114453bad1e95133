//! Length-delimited frames on QUIC streams.
//!
//! Every request and every response travels as one frame: a 4-byte big-endian length followed
//! by that many bytes. A stream carries any number of frames in each direction, so a client may
//! pipeline many requests on a few long-lived streams (see `ingress` docs for why) or send one
//! request per stream: the server treats both alike.
//!
//! The length is checked against a hard maximum *before* any buffer is allocated, so a peer
//! cannot make the server reserve memory it did not send.

use quinn::{ReadExactError, RecvStream, SendStream};

/// The largest frame either side accepts: one maximal envelope.
pub const MAX_FRAME_LEN: usize = dcc_signing::envelope::MAX_ENVELOPE_LEN;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer declared a frame over [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes is over the maximum {MAX_FRAME_LEN}")]
    TooLong(u32),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The stream failed (reset, connection lost).
    #[error("stream error: {0}")]
    Stream(String),
}

/// Reads the next frame; `Ok(None)` when the peer finished the stream between frames.
pub async fn read_frame(recv: &mut RecvStream) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(_)) => return Err(FrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => return Err(FrameError::Stream(e.to_string())),
    }
    let n = u32::from_be_bytes(len);
    if n as usize > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(n));
    }
    let mut buf = vec![0u8; n as usize];
    match recv.read_exact(&mut buf).await {
        Ok(()) => Ok(Some(buf)),
        Err(ReadExactError::FinishedEarly(_)) => Err(FrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => Err(FrameError::Stream(e.to_string())),
    }
}

/// Writes one frame.
///
/// Length and payload go to quinn in one `write_all`: each call takes the connection's lock and
/// wakes its driver, so one call per frame instead of two saves both per request.
pub async fn write_frame(send: &mut SendStream, payload: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME_LEN)
        .ok_or(FrameError::TooLong(u32::MAX))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    send.write_all(&buf)
        .await
        .map_err(|e| FrameError::Stream(e.to_string()))
}
