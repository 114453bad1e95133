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

/// Widest window any table may use: the shared generator table (digits fit `i16` up to 15).
pub(crate) const MAX_TABLE_BITS: u8 = 14;

/// How a per-key table is laid out: windows of `bits` bits, and only every `stride`-th window
/// stored (a *comb*).
///
/// With `stride = 1` every window of the scalar has its own multiples in the table and a scalar
/// multiplication is additions only. With `stride = m > 1` the table holds windows
/// `0, m, 2m, …` and the multiplication runs `m` passes over them (Horner's rule), with `bits`
/// doublings between passes: the table shrinks `m` times for `(m - 1)·bits` doublings, about
/// 0.7 of an addition each. That is what lets thousands of keys keep a table within one budget
/// and lose speed gradually rather than fall off a cliff (see [`TableShape::frontier`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableShape {
    bits: u8,
    stride: u8,
}

/// A table shape out of range (`bits` 4..=8, `stride` 1..=8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("table shape w{bits}/m{stride} is outside w4..=8, m1..=8")]
pub struct TableShapeError {
    /// The window width asked for.
    pub bits: u8,
    /// The stride asked for.
    pub stride: u8,
}

/// What a doubling costs against a mixed addition (dbl-2001-b 3M+5S vs madd 8M+3S, with a
/// squaring at about 0.8 of a multiplication), in hundredths.
const DOUBLING_COST_PERCENT: usize = 70;

impl TableShape {
    /// Most windows skipped between stored ones.
    pub const MAX_STRIDE: u8 = 8;

    /// A shape: `bits` in 4..=8 (per-key widths), `stride` in 1..=8.
    pub const fn new(bits: u8, stride: u8) -> Result<Self, TableShapeError> {
        if bits >= WindowBits::MIN.0
            && bits <= WindowBits::MAX.0
            && stride >= 1
            && stride <= Self::MAX_STRIDE
        {
            Ok(Self { bits, stride })
        } else {
            Err(TableShapeError { bits, stride })
        }
    }

    /// Every window stored: the fastest shape of a width.
    pub const fn full(w: WindowBits) -> Self {
        Self {
            bits: w.0,
            stride: 1,
        }
    }

    /// A shape of any width up to [`MAX_TABLE_BITS`] (the generator's table), stride 1.
    pub(crate) const fn wide(bits: u8) -> Self {
        let bits = if bits > MAX_TABLE_BITS {
            MAX_TABLE_BITS
        } else if bits < WindowBits::MIN.0 {
            WindowBits::MIN.0
        } else {
            bits
        };
        Self { bits, stride: 1 }
    }

    /// Window width in bits.
    pub const fn bits(self) -> u8 {
        self.bits
    }

    /// Every how many windows one is stored.
    pub const fn stride(self) -> u8 {
        self.stride
    }

    /// Windows of a scalar (256 bits plus the carry of signed recoding).
    pub const fn windows(self) -> usize {
        257_usize.div_ceil(self.bits as usize)
    }

    /// Windows held in the table.
    pub const fn stored_windows(self) -> usize {
        self.windows().div_ceil(self.stride as usize)
    }

    /// Entries per stored window: `1·B … 2^(bits-1)·B`.
    pub const fn entries_per_window(self) -> usize {
        1 << (self.bits - 1)
    }

    /// Heap bytes of one table of this shape.
    pub const fn table_bytes(self) -> usize {
        self.stored_windows() * self.entries_per_window() * ENTRY_BYTES
    }

    /// Doublings per scalar multiplication.
    pub const fn doublings(self) -> usize {
        (self.stride as usize - 1) * self.bits as usize
    }

    /// Estimated cost of one scalar multiplication, in hundredths of a mixed addition.
    pub const fn cost(self) -> usize {
        self.windows() * 100 + self.doublings() * DOUBLING_COST_PERCENT
    }

    /// The shapes worth having, smallest table first: every shape of widths up to `widest`
    /// for which no other is both smaller and cheaper. Each step along the list buys speed
    /// with memory; the budget policy picks the cheapest that fits a key's share.
    pub fn frontier(widest: WindowBits) -> Vec<Self> {
        let mut all: Vec<Self> = (WindowBits::MIN.0..=widest.0)
            .flat_map(|bits| (1..=Self::MAX_STRIDE).map(move |stride| Self { bits, stride }))
            .collect();
        all.sort_by_key(|s| (s.table_bytes(), s.cost()));
        let mut out: Vec<Self> = Vec::new();
        for s in all {
            if out.last().is_none_or(|best| s.cost() < best.cost()) {
                out.push(s);
            }
        }
        out
    }
}

impl std::fmt::Display for TableShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "w{}/m{}", self.bits, self.stride)
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
    /// Recodes a big-endian 256-bit scalar for windows of `w.bits()` bits.
    pub(crate) fn recode(be: &[u8; 32], w: TableShape) -> Self {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = 32 - 8 * (i + 1);
            let mut b = [0u8; 8];
            b.copy_from_slice(&be[start..start + 8]);
            *limb = u64::from_be_bytes(b);
        }
        let bits = usize::from(w.bits());
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
            // `mask` keeps at most 14 bits, so the cast is lossless.
            let mut x = (v & mask) as i32 + carry;
            if x > half {
                x -= full;
                carry = 1;
            } else {
                carry = 0;
            }
            // |x| ≤ 2^13 fits in i16.
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
        for w in WindowBits::MIN.0..=MAX_TABLE_BITS {
            let wb = TableShape::wide(w);
            let half = 1i16 << (w - 1);
            for c in &cases {
                let d = SignedDigits::recode(c, wb);
                assert_eq!(d.as_slice().len(), wb.windows());
                assert!(d.as_slice().len() <= MAX_WINDOWS);
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
