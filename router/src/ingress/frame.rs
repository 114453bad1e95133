//! Length-delimited frames on QUIC streams.
//!
//! Every request and every response travels as one frame: a 4-byte big-endian length followed
//! by that many bytes. A stream carries any number of frames in each direction, so a client may
//! pipeline many requests on a few long-lived streams (see `ingress` docs for why) or send one
//! request per stream: the server treats both alike.
//!
//! The length is checked against a hard maximum *before* any buffer is allocated, so a peer
//! cannot make the server reserve memory it did not send.

use bytes::Bytes;
use quinn::{ReadExactError, RecvStream, SendStream};

/// The largest frame either side accepts: one maximal envelope.
pub const MAX_FRAME_LEN: usize = dcc_signing::envelope::MAX_ENVELOPE_LEN;

/// Why a frame could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer declared a frame over [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes is over the maximum {MAX_FRAME_LEN}")]
    TooLong(u32),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// Reading the stream failed (reset by the peer, connection lost).
    #[error("stream error: {0}")]
    Read(#[from] quinn::ReadError),
    /// Writing the stream failed (stopped by the peer, connection lost).
    #[error("stream error: {0}")]
    Write(#[from] quinn::WriteError),
}

impl FrameError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::TooLong(_) => "frame-too-long",
            FrameError::Truncated => "frame-truncated",
            FrameError::Read(_) => "stream-read",
            FrameError::Write(_) => "stream-write",
        }
    }
}

/// Reads the next frame; `Ok(None)` when the peer finished the stream between frames.
pub async fn read_frame(recv: &mut RecvStream) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(_)) => return Err(FrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => return Err(FrameError::Read(e)),
    }
    let n = u32::from_be_bytes(len);
    if n as usize > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(n));
    }
    let mut buf = vec![0u8; n as usize];
    match recv.read_exact(&mut buf).await {
        Ok(()) => Ok(Some(buf)),
        Err(ReadExactError::FinishedEarly(_)) => Err(FrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => Err(FrameError::Read(e)),
    }
}

/// Writes one frame.
///
/// Length and payload go to quinn in one `write_all`: each call takes the connection's lock and
/// wakes its driver, so one call per frame instead of two saves both per request.
pub async fn write_frame(send: &mut SendStream, payload: &[u8]) -> Result<(), FrameError> {
    send.write_chunk(framed(payload)?)
        .await
        .map_err(FrameError::Write)
}

/// Bytes received but not yet taken as frames: the parsing half of [`FrameReader`], apart
/// from quinn so that it can be tested on any split of any byte stream.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl FrameBuffer {
    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            // Keep only the unconsumed tail (less than one frame).
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Exact growth: the buffer's capacity stays at the most that was ever buffered (at most
        // one frame, see `FrameReader`), not a power of two above it.
        self.buf.reserve_exact(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// Whether no byte is buffered (the stream may end here without truncating a frame).
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Bytes buffered and not yet taken.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether a complete frame is buffered (an error for a declared length over the maximum).
    pub fn has_frame(&self) -> Result<bool, FrameError> {
        let rest = &self.buf[self.start..];
        let Some(len) = rest.get(..4) else {
            return Ok(false);
        };
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if n as usize > MAX_FRAME_LEN {
            return Err(FrameError::TooLong(n));
        }
        Ok(rest.len() >= 4 + n as usize)
    }

    /// The next complete frame, if one is buffered. A declared length over [`MAX_FRAME_LEN`]
    /// is an error as soon as its four bytes are in, before anything else is buffered for it.
    pub fn take(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let rest = &self.buf[self.start..];
        let Some(len) = rest.get(..4) else {
            return Ok(None);
        };
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if n as usize > MAX_FRAME_LEN {
            return Err(FrameError::TooLong(n));
        }
        let Some(payload) = rest.get(4..4 + n as usize) else {
            return Ok(None);
        };
        let frame = payload.to_vec();
        self.start += 4 + n as usize;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(frame))
    }
}

/// Reads frames from a stream chunk by chunk: one quinn read (one lock of the connection
/// state) brings in as many frames as have arrived, instead of two `read_exact` calls per
/// frame. This is what the server uses on long-lived pipelined streams.
///
/// [`next`](Self::next) is **cancel-safe**: everything read is kept in the reader between calls
/// (quinn's `read_chunk` is cancel-safe; `read_exact` is not), so it may sit in a `select!`.
///
/// Memory held is bounded by one frame: it reads only while no complete frame is buffered, and
/// then at most the bytes that could still belong to the frame in progress, so the buffer never
/// holds more than `4 + MAX_FRAME_LEN` bytes. Why it matters: bytes read out of quinn return
/// flow-control credit to the peer, so what this buffer holds is not bounded by any receive
/// window; per stream it is this bound, and a connection has at most
/// `max_streams_per_connection` streams (see the `ingress` docs, "Memory").
#[derive(Debug)]
pub struct FrameReader {
    recv: RecvStream,
    buf: FrameBuffer,
}

impl FrameReader {
    /// A reader over `recv`.
    pub fn new(recv: RecvStream) -> Self {
        FrameReader {
            recv,
            buf: FrameBuffer::default(),
        }
    }

    /// The stream, e.g. to `stop` it after a framing error.
    pub fn stream_mut(&mut self) -> &mut RecvStream {
        &mut self.recv
    }

    /// The next frame; `Ok(None)` when the peer finished the stream between frames.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if !self.ready().await? {
            return Ok(None);
        }
        self.buf.take()
    }

    /// Waits until a complete frame is buffered, without taking it: `Ok(false)` when the peer
    /// finished the stream between frames. Cancel-safe. The server waits for a frame this way
    /// before it reserves room for the request, so that a stream waiting for room holds the
    /// frame once (in this buffer), not twice.
    pub async fn ready(&mut self) -> Result<bool, FrameError> {
        loop {
            if self.buf.has_frame()? {
                return Ok(true);
            }
            // No complete frame is buffered, so fewer than 4 + MAX_FRAME_LEN bytes are: read no
            // more than would complete the largest frame.
            let room = (4 + MAX_FRAME_LEN).saturating_sub(self.buf.len()).max(1);
            match self.recv.read_chunk(room, true).await {
                Ok(Some(chunk)) => self.buf.extend(&chunk.bytes),
                Ok(None) if self.buf.is_empty() => return Ok(false),
                Ok(None) => return Err(FrameError::Truncated),
                Err(e) => return Err(FrameError::Read(e)),
            }
        }
    }
}

/// One frame (length prefix and payload) as a single buffer, ready for [`write_frames`].
pub fn framed(payload: &[u8]) -> Result<Bytes, FrameError> {
    let mut buf = Vec::with_capacity(4 + payload.len());
    append_frame(&mut buf, payload)?;
    Ok(Bytes::from(buf))
}

/// One frame whose payload `fill` appends to the buffer (about `hint` bytes): the payload is
/// encoded in place, after the length prefix, with no buffer of its own.
pub fn framed_with(hint: usize, fill: impl FnOnce(&mut Vec<u8>)) -> Result<Bytes, FrameError> {
    let mut buf = Vec::with_capacity(4 + hint);
    buf.extend_from_slice(&[0; 4]);
    fill(&mut buf);
    let len = frame_len(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(buf))
}

/// Appends one frame to `out` (for many frames in one buffer); an oversize payload is refused
/// and `out` left as it was.
pub fn append_frame(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), FrameError> {
    let len = frame_len(payload.len())?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// The length prefix of a payload of `n` bytes, if a frame may carry it.
fn frame_len(n: usize) -> Result<u32, FrameError> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME_LEN)
        .ok_or(FrameError::TooLong(u32::MAX))
}

/// Writes a batch of [`framed`] buffers in one quinn call (one lock, one wake of the
/// connection driver, and usually one packet for many small frames). Empties `frames`.
pub async fn write_frames(
    send: &mut SendStream,
    frames: &mut Vec<Bytes>,
) -> Result<(), FrameError> {
    let r = send
        .write_all_chunks(frames)
        .await
        .map_err(FrameError::Write);
    frames.clear();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|f| framed(f).map(|b| b.to_vec()).unwrap_or_default())
            .collect()
    }

    proptest! {
        /// However the stream is cut into chunks, the same frames come out, in order, and
        /// nothing is left over.
        #[test]
        fn any_split_yields_the_same_frames(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
        ) {
            let bytes = encode(&frames);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            at.push(0);
            at.push(bytes.len());
            at.sort_unstable();
            let mut b = FrameBuffer::default();
            let mut out = Vec::new();
            for w in at.windows(2) {
                b.extend(&bytes[w[0]..w[1]]);
                while let Some(f) = b.take().expect("valid frames") {
                    out.push(f);
                }
            }
            prop_assert_eq!(out, frames);
            prop_assert!(b.is_empty());
        }

        /// Arbitrary bytes never panic the parser, and it never yields more than was sent.
        #[test]
        fn garbage_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..10)) {
            let mut b = FrameBuffer::default();
            let total: usize = chunks.iter().map(Vec::len).sum();
            let mut taken = 0;
            'outer: for c in &chunks {
                b.extend(c);
                loop {
                    match b.take() {
                        Ok(Some(f)) => taken += 4 + f.len(),
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
            prop_assert!(taken <= total);
        }
    }

    #[test]
    fn oversize_length_is_refused_before_its_payload_arrives() {
        let mut b = FrameBuffer::default();
        b.extend(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert!(matches!(b.take(), Err(FrameError::TooLong(n)) if n as usize == MAX_FRAME_LEN + 1));
    }

    #[test]
    fn partial_frame_is_not_empty_and_not_yet_a_frame() {
        let mut b = FrameBuffer::default();
        let f = framed(b"hello").expect("small");
        b.extend(&f[..6]);
        assert!(matches!(b.take(), Ok(None)));
        assert!(!b.is_empty(), "a stream ending here is truncated");
        b.extend(&f[6..]);
        assert_eq!(b.take().expect("frame"), Some(b"hello".to_vec()));
        assert!(b.is_empty());
    }

    #[test]
    fn the_three_ways_to_build_a_frame_agree() {
        let payload = b"an answer";
        let a = framed(payload).expect("small");
        let b = framed_with(1, |out| out.extend_from_slice(payload)).expect("small");
        let mut c = Vec::new();
        append_frame(&mut c, payload).expect("small");
        assert_eq!((&a[..], &b[..]), (&c[..], &c[..]));
        assert!(framed_with(0, |out| out
            .extend_from_slice(&vec![0u8; MAX_FRAME_LEN + 1]))
        .is_err());
        let mut d = Vec::new();
        assert!(append_frame(&mut d, &vec![0u8; MAX_FRAME_LEN + 1]).is_err());
        assert!(d.is_empty(), "a refused frame leaves the buffer as it was");
    }

    #[test]
    fn has_frame_says_whether_take_would_yield() {
        let mut b = FrameBuffer::default();
        let f = framed(b"abc").expect("small");
        for (i, byte) in f.iter().enumerate() {
            assert!(!b.has_frame().expect("valid"), "after {i} bytes");
            b.extend(&[*byte]);
        }
        assert!(b.has_frame().expect("valid"));
        assert_eq!(b.len(), f.len());
        assert_eq!(b.take().expect("frame"), Some(b"abc".to_vec()));
        assert_eq!(b.len(), 0);
        b.extend(&u32::MAX.to_be_bytes());
        assert!(b.has_frame().is_err());
    }

    #[test]
    fn framed_refuses_oversize_payloads() {
        assert!(framed(&vec![0u8; MAX_FRAME_LEN + 1]).is_err());
        assert_eq!(framed(&[]).expect("empty").len(), 4);
    }
}
