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
/// # Errors
/// A [`FixedError`] naming what is wrong; nothing is ever rounded.
#[inline]
pub fn parse_mantissa(s: &[u8], scale: Scale, signed: bool) -> Result<i64, FixedError> {
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
