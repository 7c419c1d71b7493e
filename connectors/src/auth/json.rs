//! Small writers for the login frames: JSON strings and decimal integers, appended to a buffer the
//! caller sized, so a secret is written once into zeroizing memory and nowhere else (a
//! `serde_json::Value` would leave copies in ordinary heap memory).

/// Appends `s` as a JSON string literal (quotes included), escaping `"`, `\` and control
/// characters.
pub(crate) fn push_str_literal(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let v = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[v >> 4]));
                out.push(char::from(HEX[v & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Longest decimal `u64`.
pub(crate) const U64_DIGITS: usize = 20;

/// Writes `n` in decimal into the end of `buf` and returns the digits, without allocating.
pub(crate) fn u64_digits(mut n: u64, buf: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut i = U64_DIGITS;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut String, n: u64) {
    let mut buf = [0u8; U64_DIGITS];
    for &d in u64_digits(n, &mut buf) {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_round_trip_through_serde_json() {
        for s in ["plain", "quo\"te", "back\\slash", "tab\tnl\n\u{1}", "１２３"] {
            let mut out = String::new();
            push_str_literal(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn integers_print_like_display() {
        for n in [0u64, 7, 10, 1_662_350_400_000, u64::MAX] {
            let mut buf = [0u8; U64_DIGITS];
            assert_eq!(u64_digits(n, &mut buf), n.to_string().as_bytes());
        }
    }
}
