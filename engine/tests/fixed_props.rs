//! Property tests: decimal strings round-trip through `Px`/`Qty` exactly, and anything that is
//! not a plain decimal fitting the scale gets a typed error, never a rounded value.

use std::str::FromStr;

use crossbar_engine::fixed::{FixedError, Px, Qty, Rate, Scale, display};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Formats `m` at `scale` with exactly `scale` decimals plus `extra_zeros` trailing zeros.
fn format_fixed(m: u64, scale: u8, extra_zeros: usize) -> String {
    let unit = 10u128.pow(u32::from(scale));
    let (int, frac) = (u128::from(m) / unit, u128::from(m) % unit);
    if scale == 0 && extra_zeros == 0 {
        return int.to_string();
    }
    format!("{int}.{frac:0width$}{}", "0".repeat(extra_zeros), width = usize::from(scale))
}

proptest! {
    #[test]
    fn px_and_qty_round_trip_exactly(m in 0u64..=i64::MAX as u64, scale in 0u8..=18, extra in 0usize..4) {
        let s = format_fixed(m, scale, extra);
        let sc = Scale::new(scale).unwrap();
        let px = Px::parse(s.as_bytes(), sc);
        // Values whose integer part times 10^scale overflows i64 are refused, never wrapped.
        prop_assert_eq!(px, Ok(Px(m as i64)), "{}", s);
        prop_assert_eq!(Qty::parse(s.as_bytes(), sc), Ok(Qty(m as i64)));
        prop_assert_eq!(px.unwrap().to_decimal(sc), Decimal::from_str(&s).unwrap());
        prop_assert_eq!(display(m as i64, sc).to_string(), Decimal::from_str(&s).unwrap().normalize().to_string());
    }

    #[test]
    fn signed_rates_round_trip(m in i64::MIN + 1..=i64::MAX, scale in 0u8..=18) {
        let sc = Scale::new(scale).unwrap();
        let s = Decimal::new(m, u32::from(scale)).to_string();
        prop_assert_eq!(Rate::parse(s.as_bytes(), sc), Ok(Rate(m)), "{}", s);
    }

    #[test]
    fn too_many_decimals_is_refused(m in 1u64..1_000_000_000, scale in 0u8..=8, digit in 1u8..=9) {
        let s = format!("{}{}", format_fixed(m, scale, 0), if scale == 0 { format!(".{digit}") } else { digit.to_string() });
        prop_assert_eq!(Px::parse(s.as_bytes(), Scale::new(scale).unwrap()), Err(FixedError::TooManyDecimals { scale }));
    }

    #[test]
    fn any_string_parses_exactly_or_errs(s in "[-+0-9.eEnaNif]{0,24}", scale in 0u8..=18) {
        let sc = Scale::new(scale).unwrap();
        match Px::parse(s.as_bytes(), sc) {
            Ok(px) => {
                // Whatever parses must be exactly the decimal the string names.
                prop_assert_eq!(px.to_decimal(sc), Decimal::from_str(&s).unwrap());
                prop_assert!(px.0 >= 0);
            }
            Err(e) => {
                let plain = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                if plain && s.matches('.').count() <= 1 && !s.starts_with('.') && !s.ends_with('.') && !s.is_empty() {
                    prop_assert!(matches!(e, FixedError::TooManyDecimals { .. } | FixedError::Overflow), "{} -> {:?}", s, e);
                }
            }
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap(extra in 1u64..1000, scale in 0u8..=18) {
        let sc = Scale::new(scale).unwrap();
        let limit = i128::from(i64::MAX) / 10i128.pow(u32::from(scale));
        let s = (limit + i128::from(extra)).to_string();
        prop_assert_eq!(Px::parse(s.as_bytes(), sc), Err(FixedError::Overflow));
    }
}

#[test]
fn malformed_strings_get_typed_errors() {
    let sc = Scale::new(8).unwrap();
    let cases: &[(&str, FixedError)] = &[
        ("", FixedError::Empty),
        ("1e-5", FixedError::Exponent),
        ("2E10", FixedError::Exponent),
        ("NaN", FixedError::NotANumber),
        ("nan", FixedError::NotANumber),
        ("-1.5", FixedError::Negative),
        ("1.000000001", FixedError::TooManyDecimals { scale: 8 }),
        ("99999999999999999999", FixedError::Overflow),
        ("1..2", FixedError::MisplacedPoint),
        ("12a", FixedError::InvalidChar { byte: 'a', pos: 2 }),
        (" 1", FixedError::InvalidChar { byte: ' ', pos: 0 }),
    ];
    for (s, want) in cases {
        assert_eq!(Px::parse(s.as_bytes(), sc), Err(*want), "{s:?}");
    }
}
