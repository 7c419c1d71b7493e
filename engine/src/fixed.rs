//! Fixed-point prices, quantities and rates, parsed exactly from venue decimal strings.
//!
//! Venues send prices as decimal strings ("27000.01000000"). Going through `f64` would round some
//! of them, so the hot path never does: a string is parsed digit by digit into an `i64` mantissa
//! at the instrument's scale (value = mantissa × 10^-scale). Trailing zeros beyond the scale are
//! accepted; a non-zero digit beyond it is an error, never a silent rounding. Money (positions,
//! fees, PnL) leaves the hot path as [`rust_decimal::Decimal`] through [`to_decimal`].

use core::fmt;

use rust_decimal::Decimal;

/// Largest scale a fixed-point value may have: 10^18 still fits an `i64`.
pub const MAX_SCALE: u8 = 18;

/// Scale used for funding rates: OKX publishes 16 decimals (`0.0001875391284828`), and a rate
/// is far below 1, so 16 places fit an `i64` with room to spare and nothing is rounded.
pub const RATE_SCALE: Scale = Scale(16);

/// Scale of reference prices (mark, index) that venues publish with more decimals than the
/// instrument's tick: Binance sends BTCUSDT's mark as `11794.15000000` and its index as
/// `11784.62659091` while the tick is `0.1`. Ten places cover every venue; the i64 range at this
/// scale (±9.2e8) covers every crypto price quoted in a fiat-like currency.
pub const REFERENCE_SCALE: Scale = Scale(10);

/// Number of decimal places a fixed-point mantissa carries.
///
/// It lives on the instrument, not on each value, so events stay small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scale(u8);

impl Scale {
    /// A scale of `places` decimal places.
    ///
    /// # Errors
    /// [`FixedError::ScaleTooLarge`] above [`MAX_SCALE`].
    pub const fn new(places: u8) -> Result<Self, FixedError> {
        if places > MAX_SCALE { Err(FixedError::ScaleTooLarge) } else { Ok(Self(places)) }
    }

    /// The number of decimal places.
    pub const fn places(self) -> u8 {
        self.0
    }

    /// 10^places, the mantissa of one whole unit.
    pub const fn unit(self) -> i64 {
        10i64.pow(self.0 as u32)
    }

    /// The scale of a decimal step such as a tick size (`0.01` → 2), so instruments can be
    /// configured by tick and lot alone.
    pub fn of_step(step: Decimal) -> Result<Self, FixedError> {
        let places = u8::try_from(step.normalize().scale()).map_err(|_| FixedError::ScaleTooLarge)?;
        Self::new(places)
    }
}

/// Why a decimal string was refused. Every variant is a malformed input from a venue or a
/// config file; none is ever rounded away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixedError {
    /// The string had no characters.
    #[error("empty number")]
    Empty,
    /// A character that is not a digit, one `.` or a leading `-`.
    #[error("invalid character {byte:?} at position {pos}")]
    InvalidChar {
        /// Offending byte.
        byte: char,
        /// Its position in the string.
        pos: usize,
    },
    /// Scientific notation (`1e5`): venues never send it for prices, so it signals a bad feed.
    #[error("exponent notation is not accepted")]
    Exponent,
    /// `NaN` or `inf`.
    #[error("not a number")]
    NotANumber,
    /// A `-` where only non-negative values are valid (prices, quantities).
    #[error("negative value")]
    Negative,
    /// A `.` without digits on both sides, or a second `.`.
    #[error("misplaced decimal point")]
    MisplacedPoint,
    /// A non-zero digit past the instrument's scale: taking it would round.
    #[error("more decimals than scale {scale} holds")]
    TooManyDecimals {
        /// The scale the value had to fit.
        scale: u8,
    },
    /// The value does not fit an `i64` mantissa at this scale.
    #[error("value overflows the fixed-point range")]
    Overflow,
    /// A scale larger than [`MAX_SCALE`].
    #[error("scale larger than {MAX_SCALE}")]
    ScaleTooLarge,
}

/// Parses a decimal string into a mantissa at `scale`, exactly.
///
/// Accepts `digits[.digits]`, with a leading `-` only when `signed`.
///
/// Every venue string takes the single-pass fast path ([`parse_plain`]): integer digits, the
/// fraction's digits up to `scale` eight at a time, trailing zeros past it, one multiply by the
/// remaining power of ten. Whatever it does not accept exactly (an error, more than 18
/// significant digits) goes through the byte-by-byte reference parser, which names the defect.
///
/// # Errors
/// A [`FixedError`] naming what is wrong; nothing is ever rounded.
#[inline(always)]
pub fn parse_mantissa(s: &[u8], scale: Scale, signed: bool) -> Result<i64, FixedError> {
    let fast = match s {
        [b'-', rest @ ..] if signed => parse_plain(rest, scale.0).map(|m| -m),
        _ => parse_plain(s, scale.0),
    };
    match fast {
        Some(m) => Ok(m),
        None => parse_reference(s, scale, signed),
    }
}

/// 10^i for every scale.
const POW10: [i64; MAX_SCALE as usize + 1] = {
    let mut t = [1i64; MAX_SCALE as usize + 1];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Most significant digits the fast path accumulates: 10^18 - 1 fits an `i64`, so the
/// accumulation needs no overflow check.
const FAST_DIGITS: usize = 18;

/// The mantissa of a plain non-negative decimal (`digits[.digits]`) at `scale` places, or
/// `None` when the string is anything else or has more than [`FAST_DIGITS`] significant digits
/// (the caller then asks [`parse_reference`], which names the defect or handles the value).
/// Some(m) is always exactly what [`parse_reference`] returns; a property test holds it to that.
#[inline(always)]
fn parse_plain(s: &[u8], scale: u8) -> Option<i64> {
    if let Some(m) = parse_two_words(s, scale) {
        return Some(m);
    }
    let scale = usize::from(scale);
    // Integer part, byte by byte (prices have a handful of integer digits).
    let mut acc: u64 = 0;
    let mut int_len = 0;
    while let Some(&b) = s.get(int_len) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
        int_len += 1;
    }
    if int_len == 0 || int_len > FAST_DIGITS {
        return None;
    }
    let frac = match s.get(int_len) {
        None => &[][..],
        Some(b'.') => match s.get(int_len + 1..) {
            Some(f) if !f.is_empty() => f,
            _ => return None,
        },
        Some(_) => return None,
    };
    // Fraction digits that fit the scale, then only zeros.
    let take = frac.len().min(scale);
    if int_len + take > FAST_DIGITS {
        return None;
    }
    let (head, tail) = frac.split_at(take);
    acc = accumulate(acc, head)?;
    if !tail.iter().all(|&b| b == b'0') {
        return None;
    }
    // acc < 10^18, so it fits; the padding multiply is the only place that can overflow.
    let acc = i64::try_from(acc).ok()?;
    acc.checked_mul(*POW10.get(scale - take)?)
}

/// `LOW_BYTES[n]` keeps the low `n` bytes of a word.
const LOW_BYTES: [u64; 9] = {
    let mut t = [u64::MAX; 9];
    let mut n = 0;
    while n < 8 {
        t[n] = (1u64 << (8 * n)) - 1;
        n += 1;
    }
    t
};

/// Keeps the low `n` bytes of a word (all of it from 8 on).
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    LOW_BYTES.get(n).copied().unwrap_or(u64::MAX)
}

/// The mantissa of the plain non-negative decimal (`digits[.digits]`) in the low `len` bytes
/// of `word` (little-endian: the first character in the low byte; the bytes above are
/// ignored), at `scale`, when it has at most eight characters and at most `scale` fraction
/// digits; `None` for anything else (the caller then parses the slice the usual way). Some(m)
/// is always exactly what [`parse_reference`] returns; a property test holds it to that.
///
/// Branch-light: the point is found with a zero-byte test, cut out with two masks, the digits
/// are left-padded with `0`s to eight and checked and combined by [`eight_digits`].
#[inline(always)]
fn parse_word(word: u64, len: usize, scale: u8) -> Option<i64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if len == 0 || len > 8 {
        return None;
    }
    let v = word & low_bytes(len);
    // A zero byte of `x` is a '.'; the lowest flag is exact (false ones only sit above it),
    // and bytes past `len` are zero in `v`, so never a '.'.
    let x = v ^ (ONES * u64::from(b'.'));
    let points = x.wrapping_sub(ONES) & !x & HIGH;
    let (digits, n, frac) = if points == 0 {
        (v, len, 0)
    } else {
        let p = (points.trailing_zeros() / 8) as usize;
        if p == 0 || p + 1 >= len {
            return None;
        }
        let below = low_bytes(p);
        ((v & below) | ((v >> 8) & !below), len - 1, len - 1 - p)
    };
    if frac > usize::from(scale) {
        return None;
    }
    // `n` is 1..=8: pad in front (the low bytes) with '0's.
    let pad = 8 - n;
    let padded = if pad == 0 { digits } else { (digits << (8 * pad)) | ((ONES * 0x30) & low_bytes(pad)) };
    let m = i64::try_from(eight_digits(padded)?).ok()?;
    m.checked_mul(*POW10.get(usize::from(scale) - frac)?)
}

/// The mantissa of a plain decimal of 9 to 16 characters with its point among the first
/// eight and at most eight (and at most `scale`) fraction digits (`"25.35190000"`), read as
/// two overlapping words of `s` (its first and its last eight bytes); `None` for anything else
/// (the byte-wise path then decides). Some(m) is always exactly what [`parse_reference`]
/// returns: the property test of [`parse_mantissa`] holds it to that.
#[inline(always)]
fn parse_two_words(s: &[u8], scale: u8) -> Option<i64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let len = s.len();
    if !(9..=16).contains(&len) {
        return None;
    }
    let lo = u64::from_le_bytes(*s.first_chunk::<8>()?);
    let hi = u64::from_le_bytes(*s.last_chunk::<8>()?);
    let x = lo ^ (ONES * u64::from(b'.'));
    let points = x.wrapping_sub(ONES) & !x & HIGH;
    if points == 0 {
        return None;
    }
    // The first '.' (exact: false flags only sit above it), at 1..=7.
    let p = (points.trailing_zeros() / 8) as usize;
    let frac = len - p - 1;
    if p == 0 || frac > 8 || frac > usize::from(scale) {
        return None;
    }
    // Integer digits: the low `p` bytes of `lo`, padded in front with '0's.
    let int = eight_digits((lo << (8 * (8 - p))) | ((ONES * 0x30) & low_bytes(8 - p)))?;
    // Fraction digits: the top `frac` bytes of `hi` (a second '.' is refused here).
    let f = if frac == 8 {
        hi
    } else {
        ((hi >> (8 * (8 - frac))) << (8 * (8 - frac))) | ((ONES * 0x30) & low_bytes(8 - frac))
    };
    let f = eight_digits(f)?;
    // int < 10^7 and f < 10^8: no overflow before the scale's power.
    let m = i64::try_from(int * POW10.get(frac).copied()?.unsigned_abs() + f).ok()?;
    m.checked_mul(*POW10.get(usize::from(scale) - frac)?)
}

/// `acc` followed by the decimal digits `digits` (at most [`FAST_DIGITS`] in all), eight at a
/// time where it can; `None` at a non-digit.
#[inline(always)]
fn accumulate(mut acc: u64, mut digits: &[u8]) -> Option<u64> {
    while let Some((chunk, rest)) = digits.split_first_chunk::<8>() {
        acc = acc.wrapping_mul(100_000_000).wrapping_add(eight_digits(u64::from_le_bytes(*chunk))?);
        digits = rest;
    }
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    Some(acc)
}

/// The value of eight ASCII digits loaded little-endian (first digit in the low byte), or
/// `None` when one of the bytes is not a digit. SWAR: each byte must be `0x30..=0x39`, then
/// pairs, quads and the two halves are combined with three multiplies.
#[inline(always)]
fn eight_digits(v: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // High nibble 3 everywhere, and adding 6 to each byte (no carry leaves a byte whose high
    // nibble is 3) keeps it 3: the low nibble is at most 9.
    if v & HIGH_NIBBLES != ONES * 0x30 || v.wrapping_add(ONES * 6) & HIGH_NIBBLES != ONES * 0x30 {
        return None;
    }
    let d = v - ONES * 0x30;
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF)
}

/// The byte-by-byte parser: the reference the fast path is tested against, and the one that
/// names every defect.
#[cold]
#[inline(never)]
fn parse_reference(s: &[u8], scale: Scale, signed: bool) -> Result<i64, FixedError> {
    let (negative, digits) = match s.first() {
        None => return Err(FixedError::Empty),
        Some(b'-') => {
            if !signed {
                return Err(FixedError::Negative);
            }
            (true, &s[1..])
        }
        Some(_) => (false, s),
    };
    if digits.is_empty() {
        return Err(FixedError::Empty);
    }
    let mut acc: i64 = 0;
    let mut frac_digits: u8 = 0;
    let mut seen_point = false;
    let mut int_digits = 0usize;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                let d = i64::from(b - b'0');
                if seen_point {
                    if frac_digits >= scale.0 {
                        if d != 0 {
                            return Err(FixedError::TooManyDecimals { scale: scale.0 });
                        }
                        continue;
                    }
                    frac_digits += 1;
                } else {
                    int_digits += 1;
                }
                acc = acc.checked_mul(10).and_then(|v| v.checked_add(d)).ok_or(FixedError::Overflow)?;
            }
            b'.' => {
                if seen_point || int_digits == 0 || i + 1 == digits.len() {
                    return Err(FixedError::MisplacedPoint);
                }
                seen_point = true;
            }
            _ => return Err(classify_bad_byte(digits, i, usize::from(negative))),
        }
    }
    let pad = 10i64.pow(u32::from(scale.0 - frac_digits));
    let m = acc.checked_mul(pad).ok_or(FixedError::Overflow)?;
    Ok(if negative { -m } else { m })
}

#[cold]
fn classify_bad_byte(digits: &[u8], i: usize, offset: usize) -> FixedError {
    let b = digits[i];
    let lower: [u8; 3] = [
        digits.get(i).copied().unwrap_or(0).to_ascii_lowercase(),
        digits.get(i + 1).copied().unwrap_or(0).to_ascii_lowercase(),
        digits.get(i + 2).copied().unwrap_or(0).to_ascii_lowercase(),
    ];
    if (b == b'e' || b == b'E') && i > 0 {
        FixedError::Exponent
    } else if &lower == b"nan" || &lower == b"inf" {
        FixedError::NotANumber
    } else {
        FixedError::InvalidChar { byte: char::from(b), pos: i + offset }
    }
}

/// Converts a mantissa at `scale` to an exact [`Decimal`], for money and reports.
pub fn to_decimal(mantissa: i64, scale: Scale) -> Decimal {
    Decimal::new(mantissa, u32::from(scale.0))
}

/// Converts a [`Decimal`] to a mantissa at `scale`, refusing any rounding.
///
/// # Errors
/// [`FixedError::TooManyDecimals`] when the value has digits past `scale`,
/// [`FixedError::Overflow`] when it does not fit.
pub fn from_decimal(value: Decimal, scale: Scale) -> Result<i64, FixedError> {
    let mut v = value;
    v.rescale(u32::from(scale.0));
    if v != value {
        return Err(FixedError::TooManyDecimals { scale: scale.0 });
    }
    i64::try_from(v.mantissa()).map_err(|_| FixedError::Overflow)
}

/// Writes a mantissa at `scale` as a plain decimal string without trailing zeros.
pub fn display(mantissa: i64, scale: Scale) -> impl fmt::Display {
    to_decimal(mantissa, scale).normalize()
}

macro_rules! fixed_type {
    ($(#[$doc:meta])* $name:ident, signed = $signed:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(0);

            /// Parses a venue decimal string at `scale`, exactly.
            ///
            /// # Errors
            /// A [`FixedError`] naming the defect; nothing is rounded.
            #[inline]
            pub fn parse(s: &[u8], scale: Scale) -> Result<Self, FixedError> {
                parse_mantissa(s, scale, $signed).map(Self)
            }

            /// [`Self::parse`] of `buf[start..end]` (a string inside a frame being decoded),
            /// always with the same result, faster for short strings: it may read up to eight
            /// bytes from `start` in `buf` (never past `buf`) to take the string as one word.
            /// A range outside `buf` parses as the empty string.
            ///
            /// # Errors
            /// As [`Self::parse`] on the slice.
            #[inline(always)]
            pub fn parse_at(buf: &[u8], start: usize, end: usize, scale: Scale) -> Result<Self, FixedError> {
                if !$signed
                    && let Some(word) = buf.get(start..start.wrapping_add(8)).and_then(|w| <[u8; 8]>::try_from(w).ok())
                    && let Some(m) = parse_word(u64::from_le_bytes(word), end.wrapping_sub(start), scale.0)
                {
                    return Ok(Self(m));
                }
                Self::parse(buf.get(start..end).unwrap_or_default(), scale)
            }

            /// The exact decimal value at `scale`.
            pub fn to_decimal(self, scale: Scale) -> Decimal {
                to_decimal(self.0, scale)
            }

            /// The value of a decimal at `scale`, refusing any rounding.
            ///
            /// # Errors
            /// See [`from_decimal`].
            pub fn from_decimal(value: Decimal, scale: Scale) -> Result<Self, FixedError> {
                from_decimal(value, scale).map(Self)
            }

            /// True when zero.
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            /// Checked addition: overflow is an error, never a wrap.
            pub fn checked_add(self, other: Self) -> Option<Self> {
                self.0.checked_add(other.0).map(Self)
            }

            /// Checked subtraction.
            pub fn checked_sub(self, other: Self) -> Option<Self> {
                self.0.checked_sub(other.0).map(Self)
            }
        }
    };
}

fixed_type!(
    /// A price as a fixed-point mantissa at its instrument's price scale.
    Px,
    signed = false
);
fixed_type!(
    /// A quantity as a fixed-point mantissa at its instrument's quantity scale.
    Qty,
    signed = false
);
fixed_type!(
    /// A rate (funding, fee) as a signed mantissa at [`RATE_SCALE`].
    Rate,
    signed = true
);

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p: u8) -> Scale {
        Scale::new(p).unwrap()
    }

    #[test]
    fn parses_venue_strings_exactly() {
        assert_eq!(Px::parse(b"27000.01000000", s(2)), Ok(Px(2_700_001)));
        assert_eq!(Px::parse(b"0.0024", s(8)), Ok(Px(240_000)));
        assert_eq!(Px::parse(b"25.35190000", s(8)), Ok(Px(2_535_190_000)));
        assert_eq!(Qty::parse(b"0", s(3)), Ok(Qty(0)));
        assert_eq!(Rate::parse(b"-0.00010000", RATE_SCALE), Ok(Rate(-1_000_000_000_000)));
    }

    #[test]
    fn refuses_malformed_strings_with_typed_errors() {
        assert_eq!(Px::parse(b"", s(2)), Err(FixedError::Empty));
        assert_eq!(Px::parse(b"-", s(2)), Err(FixedError::Negative));
        assert_eq!(Rate::parse(b"-", RATE_SCALE), Err(FixedError::Empty));
        assert_eq!(Px::parse(b"1e5", s(2)), Err(FixedError::Exponent));
        assert_eq!(Px::parse(b"NaN", s(2)), Err(FixedError::NotANumber));
        assert_eq!(Px::parse(b"inf", s(2)), Err(FixedError::NotANumber));
        assert_eq!(Px::parse(b"-1", s(2)), Err(FixedError::Negative));
        assert_eq!(Px::parse(b"1.001", s(2)), Err(FixedError::TooManyDecimals { scale: 2 }));
        assert_eq!(Px::parse(b"1.2.3", s(2)), Err(FixedError::MisplacedPoint));
        assert_eq!(Px::parse(b".5", s(2)), Err(FixedError::MisplacedPoint));
        assert_eq!(Px::parse(b"5.", s(2)), Err(FixedError::MisplacedPoint));
        assert_eq!(Px::parse(b"1x", s(2)), Err(FixedError::InvalidChar { byte: 'x', pos: 1 }));
        assert_eq!(Px::parse(b"+1", s(2)), Err(FixedError::InvalidChar { byte: '+', pos: 0 }));
        assert_eq!(Px::parse(b"92233720368547758.08", s(2)), Err(FixedError::Overflow));
        assert_eq!(Px::parse(b"10000000000", s(9)), Err(FixedError::Overflow));
        assert_eq!(Scale::new(19), Err(FixedError::ScaleTooLarge));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The fast path agrees with the reference parser on every string, valid or not.
        #[test]
        fn fast_path_equals_the_reference(
            s in "-?[0-9]{0,21}(\\.[0-9]{0,21})?[0-9.x-]{0,2}",
            scale in 0u8..=18,
            signed in proptest::bool::ANY,
        ) {
            let sc = s_(scale);
            proptest::prop_assert_eq!(parse_mantissa(s.as_bytes(), sc, signed), parse_reference(s.as_bytes(), sc, signed), "{}", s);
        }

        /// The word path agrees with the reference parser whenever it answers, whatever
        /// follows the string in the word; `parse_at` always agrees with `parse`.
        #[test]
        fn word_path_equals_the_reference(
            s in "[0-9]{0,6}(\\.[0-9]{0,6})?[0-9.x-]{0,2}|[0-9.]{0,9}",
            after in proptest::collection::vec(proptest::num::u8::ANY, 0..9),
            scale in 0u8..=18,
        ) {
            let sc = s_(scale);
            let mut buf = s.as_bytes().to_vec();
            buf.extend_from_slice(&after);
            let mut word = [0u8; 8];
            let n = buf.len().min(8);
            word[..n].copy_from_slice(&buf[..n]);
            if let Some(m) = parse_word(u64::from_le_bytes(word), s.len(), scale) {
                proptest::prop_assert_eq!(Ok(m), parse_reference(s.as_bytes(), sc, false), "{}", s);
            }
            proptest::prop_assert_eq!(Px::parse_at(&buf, 0, s.len(), sc), Px::parse(s.as_bytes(), sc), "{}", s);
            proptest::prop_assert_eq!(Qty::parse_at(&buf, 0, s.len(), sc), Qty::parse(s.as_bytes(), sc), "{}", s);
            proptest::prop_assert_eq!(Rate::parse_at(&buf, 0, s.len(), sc), Rate::parse(s.as_bytes(), sc), "{}", s);
        }

        /// Venue-length prices (9 to 16 characters, the two-word path) agree with the
        /// reference, valid or not.
        #[test]
        fn two_word_path_equals_the_reference(s in "[0-9]{1,8}\\.?[0-9.x]{0,9}", scale in 0u8..=18) {
            let sc = s_(scale);
            proptest::prop_assert_eq!(parse_mantissa(s.as_bytes(), sc, false), parse_reference(s.as_bytes(), sc, false), "{}", s);
            proptest::prop_assert_eq!(parse_mantissa(s.as_bytes(), sc, true), parse_reference(s.as_bytes(), sc, true), "{}", s);
        }

        /// Eight-digit chunks with one byte anywhere in 0..=255 are refused unless all digits.
        #[test]
        fn eight_digits_checks_every_byte(digits in proptest::array::uniform8(b'0'..=b'9'), at in 0usize..8, byte in proptest::num::u8::ANY) {
            let mut chunk = digits;
            chunk[at] = byte;
            let want = chunk.iter().all(u8::is_ascii_digit).then(|| {
                chunk.iter().fold(0u64, |a, &b| a * 10 + u64::from(b - b'0'))
            });
            proptest::prop_assert_eq!(eight_digits(u64::from_le_bytes(chunk)), want);
        }
    }

    fn s_(p: u8) -> Scale {
        s(p)
    }

    #[test]
    fn word_path_takes_short_book_strings() {
        let word = |s: &[u8]| {
            let mut w = *b"\"],[\"9.9";
            w[..s.len()].copy_from_slice(s);
            u64::from_le_bytes(w)
        };
        assert_eq!(parse_word(word(b"65000.1"), 7, 1), Some(650_001));
        assert_eq!(parse_word(word(b"1.250"), 5, 3), Some(1_250));
        assert_eq!(parse_word(word(b"0.004"), 5, 8), Some(400_000));
        assert_eq!(parse_word(word(b"12345678"), 8, 2), Some(1_234_567_800));
        assert_eq!(parse_word(word(b"1.25"), 4, 1), None);
        assert_eq!(parse_word(word(b"1..5"), 4, 3), None);
        assert_eq!(parse_word(word(b".5"), 2, 3), None);
        assert_eq!(parse_word(word(b"5."), 2, 3), None);
        let frame = br#"["65000.1","1.250"]"#;
        assert_eq!(Px::parse_at(frame, 2, 9, s(1)), Ok(Px(650_001)));
        assert_eq!(Qty::parse_at(frame, 12, 17, s(3)), Ok(Qty(1_250)));
        // Past the scale: the word path declines, the usual parse takes the trailing zero.
        assert_eq!(Qty::parse_at(frame, 12, 17, s(2)), Ok(Qty(125)));
        assert_eq!(Qty::parse_at(frame, 12, 17, s(1)), Err(FixedError::TooManyDecimals { scale: 1 }));
        assert_eq!(Px::parse_at(frame, 30, 40, s(1)), Err(FixedError::Empty));
        assert_eq!(parse_two_words(b"25.35190000", 8), Some(2_535_190_000));
        assert_eq!(parse_two_words(b"1234567.12345678", 8), Some(123_456_712_345_678));
        assert_eq!(parse_two_words(b"25.35190000", 7), None);
        assert_eq!(parse_two_words(b"25.3519.000", 8), None);
    }

    #[test]
    fn decimal_conversion_refuses_rounding() {
        let d: Decimal = "1.005".parse().unwrap();
        assert_eq!(Px::from_decimal(d, s(3)), Ok(Px(1005)));
        assert_eq!(Px::from_decimal(d, s(2)), Err(FixedError::TooManyDecimals { scale: 2 }));
        assert_eq!(Px(1005).to_decimal(s(3)), d);
        assert_eq!(display(2_700_001, s(2)).to_string(), "27000.01");
        assert_eq!(Scale::of_step("0.0100".parse().unwrap()), Ok(s(2)));
    }
}
