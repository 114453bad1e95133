//! Window width of a fixed-base table, and signed-digit recoding of scalars for it.

/// Width in bits of the windows of a fixed-base table: 4 to 8.
///
/// A table for width `w` holds `⌈257 / w⌉` windows of `2^(w-1)` affine points (64 bytes each),
/// and a scalar multiplication with it costs `⌈257 / w⌉` point additions and no doubling.
/// Wider windows mean fewer additions but more memory (and more cache misses):
///
/// | w | additions | bytes per key |
/// |---|-----------|---------------|
/// | 4 | 65        | 33,280        |
/// | 5 | 52        | 53,248        |
/// | 6 | 43        | 88,064        |
/// | 7 | 37        | 151,552       |
/// | 8 | 33        | 270,336       |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBits(u8);

/// A window width outside `4..=8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("window width {0} bits is outside {min}..={max}", min = WindowBits::MIN.0, max = WindowBits::MAX.0)]
pub struct WindowBitsError(pub u8);

/// Bytes of one table entry: an affine point, two field elements.
const ENTRY_BYTES: usize = 64;

/// Most windows any supported width needs (`w = 4`).
pub(crate) const MAX_WINDOWS: usize = 65;

impl WindowBits {
    /// Narrowest supported window (smallest tables).
    pub const MIN: Self = Self(4);
    /// Widest supported window (fastest on the machines measured, see BENCHMARKS.md).
    pub const MAX: Self = Self(8);

    /// A window width, if within `4..=8`.
    pub const fn new(bits: u8) -> Result<Self, WindowBitsError> {
        if bits >= Self::MIN.0 && bits <= Self::MAX.0 {
            Ok(Self(bits))
        } else {
            Err(WindowBitsError(bits))
        }
    }

    /// The width in bits.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Number of windows: enough for a 256-bit scalar plus the carry of signed recoding.
    pub const fn windows(self) -> usize {
        257_usize.div_ceil(self.0 as usize)
    }

    /// Entries per window: the multiples `1·B … 2^(w-1)·B` (negatives come free).
    pub const fn entries_per_window(self) -> usize {
        1 << (self.0 - 1)
    }

    /// Heap bytes of one table of this width.
    pub const fn table_bytes(self) -> usize {
        self.windows() * self.entries_per_window() * ENTRY_BYTES
    }

    /// The next narrower width, if any.
    pub(crate) const fn narrower(self) -> Option<Self> {
        if self.0 > Self::MIN.0 {
            Some(Self(self.0 - 1))
        } else {
            None
        }
    }
}

impl Default for WindowBits {
    fn default() -> Self {
        Self::MAX
    }
}

impl TryFrom<u8> for WindowBits {
    type Error = WindowBitsError;
    fn try_from(bits: u8) -> Result<Self, Self::Error> {
        Self::new(bits)
    }
}

/// Signed digits of a scalar for windows of `w` bits: `k = Σ dᵢ·2^(w·i)` with
/// `dᵢ ∈ [-(2^(w-1) - 1), 2^(w-1)]`, least significant first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedDigits {
    digits: [i16; MAX_WINDOWS],
    len: usize,
}

impl SignedDigits {
    /// Recodes a big-endian 256-bit scalar.
    pub(crate) fn recode(be: &[u8; 32], w: WindowBits) -> Self {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            let mut b = [0u8; 8];
            b.copy_from_slice(&be[start..start + 8]);
            *limb = u64::from_be_bytes(b);
        }
        let bits = usize::from(w.get());
        let full = 1i32 << bits;
        let half = full >> 1;
        let mask = (1u64 << bits) - 1;
        let mut digits = [0i16; MAX_WINDOWS];
        let len = w.windows();
        let mut carry = 0i32;
        for (i, d) in digits.iter_mut().enumerate().take(len) {
            let off = i * bits;
            let li = off / 64;
            let sh = off % 64;
            let mut v = if li < 4 { limbs[li] >> sh } else { 0 };
            if sh + bits > 64 && li + 1 < 4 {
                v |= limbs[li + 1] << (64 - sh);
            }
            // `mask` keeps `w ≤ 8` bits, so the cast is lossless.
            let mut x = (v & mask) as i32 + carry;
            if x > half {
                x -= full;
                carry = 1;
            } else {
                carry = 0;
            }
            // |x| ≤ 128 fits in i16.
            *d = x as i16;
        }
        debug_assert_eq!(carry, 0, "⌈257/w⌉ windows absorb the final carry");
        Self { digits, len }
    }

    /// The digits, least significant first.
    pub(crate) fn as_slice(&self) -> &[i16] {
        &self.digits[..self.len]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Recombines digits into a big-endian 264-bit value (33 bytes), for checking.
    fn recombine(d: &SignedDigits, w: u32) -> Vec<u8> {
        // Work in i128 limbs of w bits via a simple bignum over u32 little-endian words.
        let mut acc = vec![0i64; 40];
        for (i, &di) in d.as_slice().iter().enumerate() {
            let bit = i as u32 * w;
            let word = (bit / 16) as usize;
            let sh = bit % 16;
            acc[word] += i64::from(di) << sh;
        }
        // Normalise base 2^16 with signed carries.
        for i in 0..acc.len() - 1 {
            let c = acc[i].div_euclid(1 << 16);
            acc[i] = acc[i].rem_euclid(1 << 16);
            acc[i + 1] += c;
        }
        let mut out = Vec::new();
        for i in (0..16).rev() {
            out.extend_from_slice(&(acc[i] as u16).to_be_bytes());
        }
        assert!(acc[16..].iter().all(|&x| x == 0), "no bits above 256");
        out
    }

    #[test]
    fn recoding_round_trips_and_stays_in_range() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut cases: Vec<[u8; 32]> = vec![[0u8; 32], [0xff; 32], {
            let mut x = [0u8; 32];
            x[31] = 1;
            x
        }];
        for _ in 0..200 {
            let mut x = [0u8; 32];
            for b in x.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            cases.push(x);
        }
        for w in 4..=8u8 {
            let wb = WindowBits::new(w).unwrap();
            let half = 1i16 << (w - 1);
            for c in &cases {
                let d = SignedDigits::recode(c, wb);
                assert_eq!(d.as_slice().len(), wb.windows());
                assert!(d.as_slice().iter().all(|&x| x > -half && x <= half));
                assert_eq!(recombine(&d, u32::from(w)), c.to_vec(), "w = {w}");
            }
        }
    }

    #[test]
    fn widths_outside_range_are_refused() {
        assert!(WindowBits::new(3).is_err());
        assert!(WindowBits::new(9).is_err());
        assert_eq!(WindowBits::new(8).unwrap().table_bytes(), 270_336);
        assert_eq!(WindowBits::new(4).unwrap().table_bytes(), 33_280);
    }
}
