//! The stream frame parser (`FrameBuffer`, both ends of every QUIC stream) never panics, never
//! yields more bytes than it was given, and refuses any declared length over the maximum.
//! The input's first byte chooses where the rest is cut into chunks.
#![no_main]
use dcc_router::ingress::frame::{FrameBuffer, FrameError, MAX_FRAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut b = FrameBuffer::default();
    let mut taken = 0usize;
    for chunk in rest.chunks(step) {
        b.extend(chunk);
        loop {
            match b.take() {
                Ok(Some(f)) => {
                    assert!(f.len() <= MAX_FRAME_LEN);
                    taken += 4 + f.len();
                }
                Ok(None) => break,
                Err(FrameError::TooLong(n)) => {
                    assert!(n as usize > MAX_FRAME_LEN);
                    return;
                }
                Err(e) => panic!("unexpected error from a buffer: {e}"),
            }
        }
    }
    assert!(taken <= rest.len());
});
