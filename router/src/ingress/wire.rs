//! The answer frame's layout.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 1  | version `1` |
//! | 1  | 1  | flags: bit 0 = Request ID present |
//! | 2  | 24 | Request ID: originator, target, counter (zeros when the request did not decode) |
//! | 26 | 1  | lane 0..=3, or `0xFF` when the request was refused before classification |
//! | 27 | 4  | microseconds the router held the request |
//! | 31 | 1  | code length *c* (1..=16) |
//! | 32 | *c* | response code, ASCII (`I0`, `E2`, `R-BAD-SIG`, …) |
//! | 32+*c* | 2 | detail length *d* (≤ 1024) |
//! | 34+*c* | *d* | detail, UTF-8 |

use dcc_signing::{Eui64, RequestId};

use crate::{Lane, ResponseCode, UnknownResponseCode};

const VERSION: u8 = 1;
const MAX_CODE: usize = 16;
const MAX_DETAIL: usize = 1024;

/// Why an answer frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerDecodeError {
    /// The frame ends before a field.
    #[error("answer too short")]
    TooShort,
    /// Another version of the answer format.
    #[error("unknown answer version {0}")]
    Version(u8),
    /// A lane byte that is no lane.
    #[error("bad lane {0}")]
    Lane(u8),
    /// A code length of 0 or over the maximum.
    #[error("bad code length {0}")]
    CodeLength(usize),
    /// The code is not UTF-8.
    #[error("code is not UTF-8")]
    CodeNotUtf8(#[source] std::str::Utf8Error),
    /// The detail length is over the maximum or disagrees with the frame's.
    #[error("bad detail length")]
    DetailLength,
}

impl AnswerDecodeError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AnswerDecodeError::TooShort => "answer-too-short",
            AnswerDecodeError::Version(_) => "answer-version",
            AnswerDecodeError::Lane(_) => "answer-lane",
            AnswerDecodeError::CodeLength(_) => "answer-code-length",
            AnswerDecodeError::CodeNotUtf8(_) => "answer-code-utf8",
            AnswerDecodeError::DetailLength => "answer-detail-length",
        }
    }
}

/// An answer as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireAnswer {
    /// The request's ID, when it decoded.
    pub request_id: Option<RequestId>,
    /// The lane it was classified into.
    pub lane: Option<u8>,
    /// Time spent in the router.
    pub router_micros: u32,
    /// The response code.
    pub code: String,
    /// Human-readable detail (why refused).
    pub detail: String,
}

impl WireAnswer {
    /// The code, typed: the router's [`ResponseCode`], or the string it did not know.
    pub fn response_code(&self) -> Result<ResponseCode, UnknownResponseCode> {
        self.code.parse()
    }

    /// The lane, typed (`None` when the request was refused before classification).
    pub fn lane(&self) -> Option<Lane> {
        self.lane.and_then(|l| Lane::try_from(l).ok())
    }

    /// Encodes the answer (code and detail are truncated to their maximum lengths).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(34 + self.code.len() + self.detail.len());
        encode_into(
            &mut out,
            self.request_id,
            self.lane,
            self.router_micros,
            &self.code,
            &self.detail,
        );
        out
    }

    /// Decodes an answer frame.
    pub fn decode(b: &[u8]) -> Result<WireAnswer, AnswerDecodeError> {
        let get = |r: std::ops::Range<usize>| b.get(r).ok_or(AnswerDecodeError::TooShort);
        let version = *get(0..1)?.first().unwrap_or(&0);
        if version != VERSION {
            return Err(AnswerDecodeError::Version(version));
        }
        let flags = get(1..2)?[0];
        let eui = |r| -> Result<Eui64, AnswerDecodeError> {
            let mut a = [0u8; 8];
            a.copy_from_slice(get(r)?);
            Ok(Eui64(a))
        };
        let mut counter = [0u8; 8];
        counter.copy_from_slice(get(18..26)?);
        let request_id =
            (flags & 1 == 1)
                .then_some(())
                .map(|_| -> Result<RequestId, AnswerDecodeError> {
                    Ok(RequestId {
                        originator: eui(2..10)?,
                        target: eui(10..18)?,
                        counter: u64::from_be_bytes(counter),
                    })
                });
        let request_id = request_id.transpose()?;
        let lane = match get(26..27)?[0] {
            0xFF => None,
            l @ 0..=3 => Some(l),
            other => return Err(AnswerDecodeError::Lane(other)),
        };
        let mut micros = [0u8; 4];
        micros.copy_from_slice(get(27..31)?);
        let c = get(31..32)?[0] as usize;
        if c == 0 || c > MAX_CODE {
            return Err(AnswerDecodeError::CodeLength(c));
        }
        let code = std::str::from_utf8(get(32..32 + c)?)
            .map_err(AnswerDecodeError::CodeNotUtf8)?
            .to_owned();
        let mut dl = [0u8; 2];
        dl.copy_from_slice(get(32 + c..34 + c)?);
        let d = u16::from_be_bytes(dl) as usize;
        if d > MAX_DETAIL || b.len() != 34 + c + d {
            return Err(AnswerDecodeError::DetailLength);
        }
        let detail = String::from_utf8_lossy(&b[34 + c..]).into_owned();
        Ok(WireAnswer {
            request_id,
            lane,
            router_micros: u32::from_be_bytes(micros),
            code,
            detail,
        })
    }
}

/// Appends an answer to `out` from its parts, without building a [`WireAnswer`] (the server's
/// hot path: no owned strings per answer). Code and detail are truncated to their maxima.
pub fn encode_into(
    out: &mut Vec<u8>,
    request_id: Option<RequestId>,
    lane: Option<u8>,
    router_micros: u32,
    code: &str,
    detail: &str,
) {
    let code = truncate(code, MAX_CODE);
    let detail = truncate(detail, MAX_DETAIL);
    out.reserve(34 + code.len() + detail.len());
    out.push(VERSION);
    out.push(u8::from(request_id.is_some()));
    let id = request_id.unwrap_or(RequestId {
        originator: Eui64::default(),
        target: Eui64::default(),
        counter: 0,
    });
    out.extend_from_slice(id.originator.as_bytes());
    out.extend_from_slice(id.target.as_bytes());
    out.extend_from_slice(&id.counter.to_be_bytes());
    out.push(lane.unwrap_or(0xFF));
    out.extend_from_slice(&router_micros.to_be_bytes());
    out.push(code.len() as u8);
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(&(detail.len() as u16).to_be_bytes());
    out.extend_from_slice(detail.as_bytes());
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The Request ID of an encoded envelope, checking only what that needs.
pub fn peek_request_id(envelope: &[u8]) -> Result<RequestId, dcc_signing::envelope::DecodeError> {
    dcc_signing::envelope::Envelope::decode(envelope).map(|e| e.header.request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(o in any::<[u8; 8]>(), t in any::<[u8; 8]>(), c in any::<u64>(), has in any::<bool>(),
                      lane in proptest::option::of(0u8..=3), us in any::<u32>(), code in "[A-Z0-9-]{1,16}", detail in ".{0,100}") {
            let a = WireAnswer {
                request_id: has.then_some(RequestId { originator: Eui64(o), target: Eui64(t), counter: c }),
                lane, router_micros: us, code, detail,
            };
            prop_assert_eq!(WireAnswer::decode(&a.encode()), Ok(a));
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = WireAnswer::decode(&b);
        }
    }
}
