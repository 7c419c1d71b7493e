//! A small, validating, allocation-free JSON scanner for venue frames.
//!
//! Venue decoders read a handful of fields out of small JSON objects. This scanner walks the
//! bytes once, in place, and hands out slices of the input: no tree, no `String`, no heap.
//!
//! - [`Members`] walks the members of an object, yielding `(key, Value)` in wire order; field
//!   order is the caller's business (decoders collect what they need, then act).
//! - [`Elements`] walks the elements of an array.
//! - A container value is returned as [`Value::Object`] / [`Value::Array`], the raw sub-slice
//!   (brackets included), already validated and ready to be walked again. To avoid a second
//!   pass, [`Members::enter_object`] and [`Elements::enter_array`] walk a nested container
//!   straight away; [`Members::resume`] / [`Elements::resume`] continue the parent after it.
//!
//! Everything that is walked is validated against the JSON grammar (RFC 8259): strings (escape
//! sequences, no raw control characters), numbers, literals, commas, colons, bracket matching,
//! and nothing but whitespace after the document. Nesting deeper than [`MAX_DEPTH`] is refused.
//! Defects are [`DecodeError::Json`] with the byte offset (relative to the slice the walker was
//! built on). Two things are deliberately not checked: UTF-8 validity of string contents (the
//! WebSocket layer validates text frames) and duplicate keys (every member is yielded; decoders
//! in this crate let the last one win).
//!
//! Strings are returned raw, without unescaping: [`Value::Str`] when the string has no
//! backslash, [`Value::EscapedStr`] when it has one, so an escaped string is never taken for the
//! plain text it spells. Keys are compared raw as well. The scanner never panics: every byte is
//! read through `get`, which is fuzzed by `tests/json_props.rs`.

use crate::feed::DecodeError;

/// Deepest nesting accepted; the outermost container is level 1.
pub const MAX_DEPTH: u32 = 32;

// The container stack is a bit per level in a u64.
const _: () = assert!(MAX_DEPTH < 64);

/// One JSON value, borrowing the scanned bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string without escapes: the bytes between the quotes.
    Str(&'a [u8]),
    /// A string containing backslash escapes, raw (not unescaped) between the quotes.
    EscapedStr(&'a [u8]),
    /// A number, exactly as written (validated against the JSON number grammar).
    Num(&'a [u8]),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object, braces included; walk it with [`Members::new`].
    Object(&'a [u8]),
    /// An array, brackets included; walk it with [`Elements::new`].
    Array(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The contents of an escape-free string.
    ///
    /// # Errors
    /// [`DecodeError::WrongType`] naming `field` for any other value (escaped strings included:
    /// venue symbols and numbers never contain escapes).
    #[inline]
    pub fn str(self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(DecodeError::WrongType(field)),
        }
    }

    /// A JSON number as an unsigned 64-bit integer.
    ///
    /// # Errors
    /// [`DecodeError::WrongType`] when not a number, [`DecodeError::BadInteger`] when it is
    /// negative, has a fraction or an exponent, or overflows (see [`parse_u64`]).
    #[inline]
    pub fn u64(self, field: &'static str) -> Result<u64, DecodeError> {
        match self {
            Value::Num(n) => parse_u64(n, field),
            _ => Err(DecodeError::WrongType(field)),
        }
    }

    /// A JSON boolean.
    ///
    /// # Errors
    /// [`DecodeError::WrongType`] naming `field` for any other value.
    #[inline]
    pub fn bool(self, field: &'static str) -> Result<bool, DecodeError> {
        match self {
            Value::Bool(b) => Ok(b),
            _ => Err(DecodeError::WrongType(field)),
        }
    }
}

/// Parses the digits of a JSON number as a `u64`.
///
/// # Errors
/// [`DecodeError::BadInteger`] naming `field` when `num` is empty, has a sign, a fraction, an
/// exponent or any non-digit, or does not fit 64 bits.
#[inline]
pub fn parse_u64(num: &[u8], field: &'static str) -> Result<u64, DecodeError> {
    if num.is_empty() {
        return Err(DecodeError::BadInteger(field));
    }
    // Up to 19 digits cannot overflow: no checks but the digit test.
    if num.len() <= 19 {
        let mut acc: u64 = 0;
        for &b in num {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(DecodeError::BadInteger(field));
            }
            acc = acc * 10 + u64::from(d);
        }
        return Ok(acc);
    }
    let mut acc: u64 = 0;
    for &b in num {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(DecodeError::BadInteger(field));
        }
        acc = acc.checked_mul(10).and_then(|v| v.checked_add(u64::from(d))).ok_or(DecodeError::BadInteger(field))?;
    }
    Ok(acc)
}

/// Checks that `doc` is exactly one well-formed JSON value, with optional surrounding
/// whitespace.
///
/// # Errors
/// [`DecodeError::Json`] at the first defect.
pub fn validate(doc: &[u8]) -> Result<(), DecodeError> {
    let start = skip_ws(doc, 0);
    let (_, end) = read_value(doc, start, 1)?;
    let end = skip_ws(doc, end);
    if end != doc.len() {
        return Err(err(end, "trailing characters after the document"));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn err(at: usize, what: &'static str) -> DecodeError {
    DecodeError::Json { at, what }
}

#[inline(always)]
fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = buf.get(i) {
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` that interrupts a plain run of string contents (a
/// quote, a backslash or a control character), or `buf.len()`. Looks at eight bytes at a time:
/// the lowest flagged byte of each SWAR test is exact (false flags only ever sit above a true
/// one), so the lowest flag of their union is the answer.
#[inline(always)]
fn plain_run_end(buf: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let v = u64::from_le_bytes(word);
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let flags = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v))
            & HIGH;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = buf.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Scans the string whose opening quote is at `pos`; returns it and the offset after it.
#[inline(always)]
fn scan_string(buf: &[u8], pos: usize) -> Result<(Value<'_>, usize), DecodeError> {
    let start = pos + 1;
    let mut i = start;
    let mut escaped = false;
    loop {
        i = plain_run_end(buf, i);
        match buf.get(i) {
            None => return Err(err(pos, "unterminated string")),
            Some(b'"') => {
                let s = buf.get(start..i).unwrap_or_default();
                let v = if escaped { Value::EscapedStr(s) } else { Value::Str(s) };
                return Ok((v, i + 1));
            }
            Some(b'\\') => {
                escaped = true;
                match buf.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = buf.get(i + 2..i + 6).ok_or_else(|| err(i, "unterminated \\u escape"))?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(err(i, "invalid \\u escape"));
                        }
                        i += 6;
                    }
                    _ => return Err(err(i, "invalid escape")),
                }
            }
            Some(_) => return Err(err(i, "control character in string")),
        }
    }
}

/// Index of the first byte at or after `i` that is not an ASCII digit, or `buf.len()`. Eight
/// bytes at a time (venue times have 13 digits): a byte is flagged when it is below `0`
/// (the subtraction borrows), above `9` (adding 0x46 reaches the high bit) or has its high bit
/// set; false flags only ever sit above a true one, so the lowest flag is exact.
#[inline(always)]
fn skip_digits(buf: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(word) = buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let v = u64::from_le_bytes(word);
        let flags = (v.wrapping_sub(ONES * 0x30) | v.wrapping_add(ONES * 0x46) | v) & HIGH;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(b'0'..=b'9') = buf.get(i) {
        i += 1;
    }
    i
}

/// Scans the number starting at `pos` (a `-` or a digit); returns the offset after it.
#[inline(always)]
fn scan_number(buf: &[u8], pos: usize) -> Result<usize, DecodeError> {
    let mut i = pos;
    if buf.get(i) == Some(&b'-') {
        i += 1;
    }
    match buf.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = skip_digits(buf, i + 1),
        _ => return Err(err(i, "invalid number")),
    }
    if buf.get(i) == Some(&b'.') {
        if !matches!(buf.get(i + 1), Some(b'0'..=b'9')) {
            return Err(err(i, "invalid number: no digit after '.'"));
        }
        i = skip_digits(buf, i + 1);
    }
    if let Some(b'e' | b'E') = buf.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = buf.get(i) {
            i += 1;
        }
        if !matches!(buf.get(i), Some(b'0'..=b'9')) {
            return Err(err(i, "invalid number: no digit in exponent"));
        }
        i = skip_digits(buf, i);
    }
    Ok(i)
}

/// Scans a scalar (not a container) at `pos`, whitespace already skipped.
#[inline(always)]
fn scan_scalar(buf: &[u8], pos: usize) -> Result<(Value<'_>, usize), DecodeError> {
    match buf.get(pos) {
        Some(b'"') => scan_string(buf, pos),
        Some(b'-' | b'0'..=b'9') => {
            let end = scan_number(buf, pos)?;
            Ok((Value::Num(buf.get(pos..end).unwrap_or_default()), end))
        }
        Some(b't') if buf.get(pos..pos + 4) == Some(b"true") => Ok((Value::Bool(true), pos + 4)),
        Some(b'f') if buf.get(pos..pos + 5) == Some(b"false") => Ok((Value::Bool(false), pos + 5)),
        Some(b'n') if buf.get(pos..pos + 4) == Some(b"null") => Ok((Value::Null, pos + 4)),
        None => Err(err(pos, "unexpected end, expected a value")),
        Some(_) => Err(err(pos, "expected a value")),
    }
}

/// Reads a `"key"` and its `:` at `pos` (whitespace already skipped); returns the key and the
/// offset after the colon.
#[inline(always)]
fn scan_key(buf: &[u8], pos: usize) -> Result<(&[u8], usize), DecodeError> {
    if buf.get(pos) != Some(&b'"') {
        return Err(err(pos, "expected a string key"));
    }
    let (key, end) = scan_string(buf, pos)?;
    let key = match key {
        Value::Str(k) | Value::EscapedStr(k) => k,
        _ => &[],
    };
    let colon = skip_ws(buf, end);
    if buf.get(colon) != Some(&b':') {
        return Err(err(colon, "expected ':' after key"));
    }
    Ok((key, colon + 1))
}

/// Skips a whole container opening at `start`, validating it; `level` is its nesting level.
/// Iterative, with the object/array kind of each open level kept as a bit of a `u64`.
fn skip_container(buf: &[u8], start: usize, level: u32) -> Result<usize, DecodeError> {
    let mut pos = start;
    let mut open: u32 = 0;
    let mut objects: u64 = 0;
    loop {
        // At a value.
        pos = skip_ws(buf, pos);
        match buf.get(pos) {
            Some(&b @ (b'{' | b'[')) => {
                if level + open > MAX_DEPTH {
                    return Err(err(pos, "nesting too deep"));
                }
                let is_obj = b == b'{';
                objects = (objects << 1) | u64::from(is_obj);
                open += 1;
                pos = skip_ws(buf, pos + 1);
                let close = if is_obj { b'}' } else { b']' };
                if buf.get(pos) == Some(&close) {
                    pos += 1;
                    open -= 1;
                    objects >>= 1;
                } else {
                    if is_obj {
                        pos = scan_key(buf, pos)?.1;
                    }
                    continue;
                }
            }
            _ => pos = scan_scalar(buf, pos)?.1,
        }
        // After a value: commas and closing brackets.
        loop {
            if open == 0 {
                return Ok(pos);
            }
            pos = skip_ws(buf, pos);
            let in_obj = objects & 1 == 1;
            match buf.get(pos) {
                Some(b',') => {
                    pos += 1;
                    if in_obj {
                        pos = scan_key(buf, skip_ws(buf, pos))?.1;
                    }
                    break;
                }
                Some(b'}') if in_obj => {
                    pos += 1;
                    open -= 1;
                    objects >>= 1;
                }
                Some(b']') if !in_obj => {
                    pos += 1;
                    open -= 1;
                    objects >>= 1;
                }
                _ if in_obj => return Err(err(pos, "expected ',' or '}'")),
                _ => return Err(err(pos, "expected ',' or ']'")),
            }
        }
    }
}

/// Reads any value at `pos` (whitespace already skipped) at nesting `level`.
#[inline(always)]
fn read_value(buf: &[u8], pos: usize, level: u32) -> Result<(Value<'_>, usize), DecodeError> {
    match buf.get(pos) {
        Some(b'{') => {
            let end = skip_container(buf, pos, level)?;
            Ok((Value::Object(buf.get(pos..end).unwrap_or_default()), end))
        }
        Some(b'[') => {
            let end = skip_container(buf, pos, level)?;
            Ok((Value::Array(buf.get(pos..end).unwrap_or_default()), end))
        }
        _ => scan_scalar(buf, pos),
    }
}

/// The fast path for the compact objects venues send (`{"k":v,"k":v}`, no whitespace):
/// reads the object whose `{` is at `start` and calls `each(key, value)` for every member in
/// wire order, exactly as [`Members::members_until`] (with no stop key) would on the same
/// bytes; returns the offset after the closing `}`. `level` is the object's nesting level
/// (1 for a whole frame).
///
/// It accepts only a subset of JSON: no whitespace anywhere, escape-free keys, any scalar
/// value, containers validated as usual (book-level arrays such as `[["1.5","2"],["1.4","3"]]`
/// through a cheaper loop that validates while it scans). On anything else, or on any defect,
/// it returns `None` and the caller must start again with [`Members`], which accepts the
/// remaining valid JSON and names every defect: `each` may have been called for some members
/// by then, so the caller drops what it collected. `Some` is only returned for bytes that are
/// a well-formed object, so the fast path never accepts what the walker refuses; a
/// differential fuzz target holds the two equal.
#[inline(always)]
pub fn compact_members<'a>(
    buf: &'a [u8],
    start: usize,
    level: u32,
    mut log: Option<&mut PairLog>,
    mut each: impl FnMut(&'a [u8], Value<'a>),
) -> Option<usize> {
    if let Some(log) = log.as_deref_mut() {
        log.clear();
    }
    if buf.get(start) != Some(&b'{') || level > MAX_DEPTH {
        return None;
    }
    let mut pos = start + 1;
    if buf.get(pos) == Some(&b'}') {
        return Some(pos + 1);
    }
    loop {
        let (key, at) = compact_key(buf, pos)?;
        let (value, end) = compact_value(buf, at, level + 1, log.as_deref_mut())?;
        each(key, value);
        match buf.get(end) {
            Some(b',') => pos = end + 1,
            Some(b'}') => return Some(end + 1),
            _ => return None,
        }
    }
}

/// The escape-free string whose opening quote is at `pos`, and the offset after its closing
/// quote; `None` for anything else (an escaped string included).
#[inline(always)]
pub fn compact_str(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if buf.get(pos) != Some(&b'"') {
        return None;
    }
    let end = plain_run_end(buf, pos + 1);
    if buf.get(end) != Some(&b'"') {
        return None;
    }
    Some((buf.get(pos + 1..end)?, end + 1))
}

/// A compact `"key":` at `pos`: the key and the offset after the colon. Venue keys are mostly
/// one byte, which is checked without a scan.
#[inline(always)]
fn compact_key(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if let Some(&[b'"', k, b'"', b':']) = buf.get(pos..pos + 4)
        && k >= 0x20
        && k != b'"'
        && k != b'\\'
    {
        return Some((buf.get(pos + 1..pos + 2)?, pos + 4));
    }
    let (key, end) = compact_str(buf, pos)?;
    if buf.get(end) != Some(&b':') {
        return None;
    }
    Some((key, end + 1))
}

/// A value at `pos` (no whitespace before it) whose containers sit at nesting `level`.
#[inline(always)]
fn compact_value<'a>(buf: &'a [u8], pos: usize, level: u32, log: Option<&mut PairLog>) -> Option<(Value<'a>, usize)> {
    match buf.get(pos)? {
        b'"' => {
            let end = plain_run_end(buf, pos + 1);
            if buf.get(end) == Some(&b'"') {
                Some((Value::Str(buf.get(pos + 1..end)?), end + 1))
            } else {
                scan_string(buf, pos).ok()
            }
        }
        b'[' => {
            let end = match compact_rows(buf, pos, log) {
                Some(end) if level < MAX_DEPTH => end,
                _ => skip_container(buf, pos, level).ok()?,
            };
            Some((Value::Array(buf.get(pos..end)?), end))
        }
        b'{' => {
            let end = skip_container(buf, pos, level).ok()?;
            Some((Value::Object(buf.get(pos..end)?), end))
        }
        _ => scan_scalar(buf, pos).ok(),
    }
}

/// The end of the compact array of arrays of escape-free strings opening at `pos` (a book
/// side: `[["1.5","2"],["1.4","3"]]`, or `[]`), which is then well-formed JSON two levels
/// deep; `None` for anything else. With a `log`, an array whose rows are all pairs of strings
/// is kept in it, when there is room.
#[inline(always)]
fn compact_rows(buf: &[u8], pos: usize, log: Option<&mut PairLog>) -> Option<usize> {
    let Some(log) = log else {
        return scan_rows(buf, pos, |_, _| {});
    };
    let first = log.len;
    let mut pairs = log.arrays_len < PAIR_LOG_ARRAYS;
    let end = scan_rows(buf, pos, |row, width| {
        pairs &= width == 2;
        if pairs {
            match log.rows.get_mut(log.len) {
                Some(slot) => {
                    *slot = row;
                    log.len += 1;
                }
                None => pairs = false,
            }
        }
    });
    match (end, log.arrays.get_mut(log.arrays_len)) {
        (Some(_), Some(slot)) if pairs => {
            *slot = PairArray { at: pos, first, rows: log.len - first };
            log.arrays_len += 1;
        }
        _ => log.len = first,
    }
    end
}

/// [`compact_rows`]' scan: `row(offsets, width)` after each row, with the offsets of its first
/// two strings' contents (start, end, start, end; zero when absent) and its number of strings.
#[inline(always)]
fn scan_rows(buf: &[u8], pos: usize, mut row: impl FnMut([u32; 4], usize)) -> Option<usize> {
    let mut i = pos + 1;
    if buf.get(i) == Some(&b']') {
        return Some(i + 1);
    }
    loop {
        if buf.get(i) != Some(&b'[') {
            return None;
        }
        i += 1;
        let mut offsets = [0u32; 4];
        let mut width = 0;
        loop {
            let (s, after) = compact_str(buf, i)?;
            if let Some(pair) = offsets.get_mut(2 * width..2 * width + 2) {
                let start = u32::try_from(i + 1).ok()?;
                pair.copy_from_slice(&[start, start + u32::try_from(s.len()).ok()?]);
            }
            width += 1;
            i = after;
            match buf.get(i) {
                Some(b',') => i += 1,
                Some(b']') => break,
                _ => return None,
            }
        }
        row(offsets, width);
        match buf.get(i + 1) {
            Some(b',') => i += 2,
            Some(b']') => return Some(i + 2),
            _ => return None,
        }
    }
}

/// Rows one [`PairLog`] holds; a longer book side is walked again instead.
pub const PAIR_LOG_ROWS: usize = 64;
/// Arrays one [`PairLog`] holds.
pub const PAIR_LOG_ARRAYS: usize = 4;

/// One array kept in a [`PairLog`].
#[derive(Clone, Copy, Debug, Default)]
struct PairArray {
    /// Offset of its `[` in the frame.
    at: usize,
    /// Its first row in `rows`.
    first: usize,
    /// Its number of rows.
    rows: usize,
}

/// Where [`compact_members`] keeps the rows of the book-level arrays it validates, so that a
/// decoder reads the levels from it instead of walking the array a second time. Offsets into
/// the frame, so it can live in the decoder and be reused frame after frame without
/// initialising it again; every `compact_members` call clears it.
#[derive(Clone, Debug)]
pub struct PairLog {
    /// Per row: start and end of the first string's contents, then of the second's.
    rows: [[u32; 4]; PAIR_LOG_ROWS],
    len: usize,
    arrays: [PairArray; PAIR_LOG_ARRAYS],
    arrays_len: usize,
}

impl Default for PairLog {
    fn default() -> Self {
        Self { rows: [[0; 4]; PAIR_LOG_ROWS], len: 0, arrays: [PairArray::default(); PAIR_LOG_ARRAYS], arrays_len: 0 }
    }
}

impl PairLog {
    /// Forgets every array.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.arrays_len = 0;
    }

    /// The rows of `array`, a [`Value::Array`] slice of `buf` returned by the last
    /// [`compact_members`] call on `buf` with this log, as `(first string, second string)`:
    /// `Some` when every row was exactly two escape-free strings and all were kept, `None`
    /// otherwise (walk it with [`for_each_string_row`] then).
    #[inline]
    pub fn pairs<'a>(&self, buf: &'a [u8], array: &'a [u8]) -> Option<impl Iterator<Item = (&'a [u8], &'a [u8])>> {
        let rows = self.rows(buf, array)?;
        Some(rows.map(move |[a, b, c, d]| (buf.get(a..b).unwrap_or_default(), buf.get(c..d).unwrap_or_default())))
    }

    /// As [`PairLog::pairs`], each row as the offsets in `buf` of its two strings' contents:
    /// `[start, end, start, end]`.
    #[inline]
    pub fn rows<'a>(&'a self, buf: &[u8], array: &[u8]) -> Option<impl Iterator<Item = [usize; 4]> + 'a> {
        let at = (array.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        if !core::ptr::eq(buf.get(at..at.checked_add(array.len())?)?, array) {
            return None;
        }
        let kept = self.arrays.get(..self.arrays_len)?.iter().find(|a| a.at == at)?;
        let rows = self.rows.get(kept.first..kept.first + kept.rows)?;
        Some(rows.iter().map(|r| r.map(|o| o as usize)))
    }
}

/// Calls `each` with the first two strings of every row of `array`, an array of arrays of
/// escape-free strings such as a book side (`[["65000.1","1.250"],["65000.0","0.004"]]`).
///
/// `array` must be a [`Value::Array`] slice this scanner returned, which it has already
/// validated: this second walk does not validate the grammar again, it only checks the shape.
/// Each row must hold `width` strings (at least two); with `stop_at_extra` a row is refused at
/// its first element past `width`, otherwise after all its elements were read as strings. Any
/// other shape (a row that is not an array, an element that is not an escape-free string, a
/// wrong count) is `shape_err`, exactly where a validating [`Elements`] walk would find it. On
/// bytes that are not valid JSON this returns an error too, never panics. A row's callback runs
/// after the whole row was read, so a shape error in a row comes before `each`'s error for it.
///
/// # Errors
/// `shape_err`, or the first error `each` returns.
#[inline]
pub fn for_each_string_row<'a>(
    array: &'a [u8],
    width: usize,
    stop_at_extra: bool,
    shape_err: DecodeError,
    mut each: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut c = Cursor { buf: array, pos: 0 };
    if !c.eat(b'[') {
        return Err(shape_err);
    }
    c.ws();
    if c.eat(b']') {
        return Ok(());
    }
    loop {
        c.ws();
        // The compact row venues send, `["1.5","2"]`, in one go; any other spelling (and every
        // shape error) is read from the row's start by the general steps.
        let compact = if width == 2 { compact_pair(array, c.pos) } else { None };
        if let Some((first, second, end)) = compact {
            each(first, second)?;
            c.pos = end;
        } else {
            read_row(&mut c, width, stop_at_extra, shape_err, &mut each)?;
        }
        c.ws();
        if c.eat(b']') {
            return Ok(());
        }
        if !c.eat(b',') {
            return Err(shape_err);
        }
    }
}

/// One row of [`for_each_string_row`] in any spelling, `each` called once it was read whole.
#[inline(always)]
fn read_row<'a>(
    c: &mut Cursor<'a>,
    width: usize,
    stop_at_extra: bool,
    shape_err: DecodeError,
    each: &mut impl FnMut(&'a [u8], &'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    if !c.eat(b'[') {
        return Err(shape_err);
    }
    c.ws();
    let first = c.plain_string().ok_or(shape_err)?;
    c.ws();
    if !c.eat(b',') {
        return Err(shape_err);
    }
    c.ws();
    let second = c.plain_string().ok_or(shape_err)?;
    let mut n = 2;
    loop {
        c.ws();
        if c.eat(b']') {
            break;
        }
        if !c.eat(b',') || (stop_at_extra && n >= width) {
            return Err(shape_err);
        }
        c.ws();
        c.plain_string().ok_or(shape_err)?;
        n += 1;
    }
    if n != width {
        return Err(shape_err);
    }
    each(first, second)
}

/// The compact row `["a","b"]` of two escape-free strings at `pos`: both strings and the
/// offset after the `]`; `None` for anything else.
#[inline(always)]
fn compact_pair(buf: &[u8], pos: usize) -> Option<(&[u8], &[u8], usize)> {
    if buf.get(pos) != Some(&b'[') {
        return None;
    }
    let (first, i) = compact_str(buf, pos + 1)?;
    if buf.get(i) != Some(&b',') {
        return None;
    }
    let (second, i) = compact_str(buf, i + 1)?;
    if buf.get(i) != Some(&b']') {
        return None;
    }
    Some((first, second, i + 1))
}

/// A read position in already-validated bytes, for [`for_each_string_row`].
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        self.pos = skip_ws(self.buf, self.pos);
    }

    /// Consumes `b` when it is the next byte.
    #[inline(always)]
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.buf.get(self.pos) == Some(&b);
        self.pos += usize::from(hit);
        hit
    }

    /// The contents of the escape-free string at the cursor, consumed; `None` when the next
    /// value is not such a string.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let end = plain_run_end(self.buf, start);
        if self.buf.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        self.buf.get(start..end)
    }
}

/// Where a walker is within its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Before the opening bracket.
    Open,
    /// A key (objects) or an element start (arrays) was read; its value is next.
    Value,
    /// A nested walker returned by `enter` owns the input until `resume`.
    Nested,
    /// After a value.
    After,
    /// After the closing bracket.
    Done,
    /// A defect was found; it is returned again on every call.
    Failed(DecodeError),
}

/// The state shared by [`Members`] and [`Elements`].
#[derive(Clone, Copy, Debug)]
struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Nesting level of this container (1 = outermost).
    level: u32,
    step: Step,
    /// Built on a whole document: only whitespace may follow the closing bracket.
    document: bool,
    is_obj: bool,
}

impl<'a> Walker<'a> {
    fn document(buf: &'a [u8], is_obj: bool) -> Self {
        Self { buf, pos: 0, level: 1, step: Step::Open, document: true, is_obj }
    }

    #[inline]
    fn fail<T>(&mut self, e: DecodeError) -> Result<T, DecodeError> {
        self.step = Step::Failed(e);
        Err(e)
    }

    #[inline]
    fn close(&self) -> u8 {
        if self.is_obj { b'}' } else { b']' }
    }

    /// Moves to the next member or element: `Some(key)` (empty for arrays) or `None` at the end.
    #[inline(always)]
    fn advance(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.advance_inner() {
            Ok(v) => Ok(v),
            Err(e) => self.fail(e),
        }
    }

    #[inline(always)]
    fn advance_inner(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let buf = self.buf;
        let mut pos = skip_ws(buf, self.pos);
        match self.step {
            Step::Open => {
                let open = if self.is_obj { b'{' } else { b'[' };
                if buf.get(pos) != Some(&open) {
                    return Err(err(pos, if self.is_obj { "expected '{'" } else { "expected '['" }));
                }
                pos = skip_ws(buf, pos + 1);
                if buf.get(pos) == Some(&self.close()) {
                    return self.finish(pos + 1);
                }
            }
            Step::After => match buf.get(pos) {
                Some(b',') => pos = skip_ws(buf, pos + 1),
                Some(&c) if c == self.close() => return self.finish(pos + 1),
                _ if self.is_obj => return Err(err(pos, "expected ',' or '}'")),
                _ => return Err(err(pos, "expected ',' or ']'")),
            },
            Step::Done => return Ok(None),
            Step::Failed(e) => return Err(e),
            Step::Value | Step::Nested => return Err(err(pos, "previous value was not read")),
        }
        let key = if self.is_obj {
            let (key, after) = scan_key(buf, pos)?;
            pos = after;
            key
        } else {
            &[]
        };
        self.pos = pos;
        self.step = Step::Value;
        Ok(Some(key))
    }

    fn finish(&mut self, end: usize) -> Result<Option<&'a [u8]>, DecodeError> {
        self.pos = end;
        self.step = Step::Done;
        if self.document {
            let rest = skip_ws(self.buf, end);
            if rest != self.buf.len() {
                return Err(err(rest, "trailing characters after the document"));
            }
        }
        Ok(None)
    }

    /// The tight loop behind [`Members::members_until`]: object members in wire order, each
    /// scanned once, with no per-member state bookkeeping.
    #[inline(always)]
    fn members_until(
        &mut self,
        stop: Option<&[u8]>,
        mut each: impl FnMut(&'a [u8], Value<'a>),
    ) -> Result<bool, DecodeError> {
        let Some(mut key) = self.advance()? else {
            return Ok(false);
        };
        let buf = self.buf;
        // `advance` left the walker at a value (`Step::Value`), which is what it stays in this
        // loop: `self.pos` is always just after the current key's colon.
        loop {
            if stop == Some(key) {
                return Ok(true);
            }
            let at = skip_ws(buf, self.pos);
            let end = match read_value(buf, at, self.level + 1) {
                Ok((value, end)) => {
                    each(key, value);
                    end
                }
                Err(e) => return self.fail(e),
            };
            let pos = skip_ws(buf, end);
            match buf.get(pos) {
                Some(b',') => match scan_key(buf, skip_ws(buf, pos + 1)) {
                    Ok((next, after)) => {
                        key = next;
                        self.pos = after;
                    }
                    Err(e) => return self.fail(e),
                },
                Some(b'}') => {
                    return match self.finish(pos + 1) {
                        Ok(_) => Ok(false),
                        Err(e) => self.fail(e),
                    };
                }
                _ => return self.fail(err(pos, "expected ',' or '}'")),
            }
        }
    }

    #[inline(always)]
    fn value(&mut self) -> Result<Value<'a>, DecodeError> {
        match self.step {
            Step::Value => {}
            Step::Failed(e) => return Err(e),
            _ => return self.fail(err(self.pos, "no value to read: call next first")),
        }
        let pos = skip_ws(self.buf, self.pos);
        match read_value(self.buf, pos, self.level + 1) {
            Ok((v, end)) => {
                self.pos = end;
                self.step = Step::After;
                Ok(v)
            }
            Err(e) => self.fail(e),
        }
    }

    fn enter(&mut self, is_obj: bool) -> Result<Option<Walker<'a>>, DecodeError> {
        match self.step {
            Step::Value => {}
            Step::Failed(e) => return Err(e),
            _ => return self.fail(err(self.pos, "no value to enter: call next first")),
        }
        let pos = skip_ws(self.buf, self.pos);
        let open = if is_obj { b'{' } else { b'[' };
        if self.buf.get(pos) != Some(&open) {
            return Ok(None);
        }
        if self.level + 1 > MAX_DEPTH {
            return self.fail(err(pos, "nesting too deep"));
        }
        self.step = Step::Nested;
        Ok(Some(Walker { buf: self.buf, pos, level: self.level + 1, step: Step::Open, document: false, is_obj }))
    }

    fn resume(&mut self, child: &Walker<'a>) -> Result<(), DecodeError> {
        if self.step != Step::Nested || !core::ptr::eq(self.buf, child.buf) {
            return self.fail(err(child.pos, "resume without a matching enter"));
        }
        match child.step {
            Step::Done => {
                self.pos = child.pos;
                self.step = Step::After;
                Ok(())
            }
            Step::Failed(e) => self.fail(e),
            _ => self.fail(err(child.pos, "nested container was not read to its end")),
        }
    }
}

/// Walks the members of one JSON object in wire order.
///
/// Every member is validated as it is passed; after `next_key` returns `Ok(None)` the whole
/// object (and, for a document, the absence of trailing bytes) has been checked. Duplicate keys
/// are all yielded. After an error every further call returns the same error.
#[derive(Clone, Copy, Debug)]
pub struct Members<'a>(Walker<'a>);

impl<'a> Members<'a> {
    /// A walker over `doc`, which must hold one object and nothing but whitespace around it
    /// (a whole frame, or a [`Value::Object`] slice).
    pub fn new(doc: &'a [u8]) -> Self {
        Self(Walker::document(doc, true))
    }

    /// The next member's key (raw bytes between the quotes), or `None` after the last member.
    /// Read its value with [`Members::value`] or [`Members::enter_object`] before calling again.
    ///
    /// # Errors
    /// [`DecodeError::Json`] on malformed input or when the previous value was not read.
    #[inline]
    pub fn next_key(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        self.0.advance()
    }

    /// The value of the member whose key was just returned; a nested container is validated
    /// and returned whole.
    ///
    /// # Errors
    /// [`DecodeError::Json`] on malformed input or when no key was read.
    #[inline]
    pub fn value(&mut self) -> Result<Value<'a>, DecodeError> {
        self.0.value()
    }

    /// Reads members in one tight loop, calling `each(key, value)` for every one, until the
    /// object ends (`Ok(false)`: the walker is done, as after `next_key` returned `None`) or
    /// until a member whose key is `stop`, when given (`Ok(true)`: its value is pending, for
    /// [`Members::value`] or [`Members::enter_object`], and the walk goes on from there with
    /// any method). The same validation as `next_key` + `value`, with less bookkeeping per
    /// member: the hot path of every venue decoder.
    ///
    /// # Errors
    /// [`DecodeError::Json`] on malformed input or when the previous value was not read.
    #[inline]
    pub fn members_until(
        &mut self,
        stop: Option<&[u8]>,
        each: impl FnMut(&'a [u8], Value<'a>),
    ) -> Result<bool, DecodeError> {
        self.0.members_until(stop, each)
    }

    /// When the pending value is an object, a walker over it that reads it in this same pass
    /// (hand it back to [`Members::resume`] once it returned `None`); `Ok(None)` when the value
    /// is something else, which is then still pending for [`Members::value`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] when no key was read or nesting is too deep.
    pub fn enter_object(&mut self) -> Result<Option<Members<'a>>, DecodeError> {
        Ok(self.0.enter(true)?.map(Members))
    }

    /// Continues after the nested object `child` returned by [`Members::enter_object`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] when `child` failed, was not read to its end, or does not belong to
    /// this walker.
    pub fn resume(&mut self, child: &Members<'a>) -> Result<(), DecodeError> {
        self.0.resume(&child.0)
    }

    /// Byte offset of the walker in its input.
    pub fn offset(&self) -> usize {
        self.0.pos
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a [u8], Value<'a>), DecodeError>;

    /// The next `(key, value)`; `None` at the end and after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if matches!(self.0.step, Step::Failed(_)) {
            return None;
        }
        match self.next_key() {
            Ok(Some(key)) => Some(self.value().map(|v| (key, v))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Walks the elements of one JSON array in order; the counterpart of [`Members`].
#[derive(Clone, Copy, Debug)]
pub struct Elements<'a>(Walker<'a>);

impl<'a> Elements<'a> {
    /// A walker over `doc`, which must hold one array and nothing but whitespace around it
    /// (a whole frame, or a [`Value::Array`] slice).
    pub fn new(doc: &'a [u8]) -> Self {
        Self(Walker::document(doc, false))
    }

    /// Moves to the next element: `true` when there is one (read it with
    /// [`Elements::value`] or [`Elements::enter_array`]), `false` after the last.
    ///
    /// # Errors
    /// [`DecodeError::Json`] on malformed input or when the previous value was not read.
    #[inline]
    pub fn advance(&mut self) -> Result<bool, DecodeError> {
        Ok(self.0.advance()?.is_some())
    }

    /// The element [`Elements::advance`] moved to.
    ///
    /// # Errors
    /// [`DecodeError::Json`] on malformed input or when not positioned on an element.
    #[inline]
    pub fn value(&mut self) -> Result<Value<'a>, DecodeError> {
        self.0.value()
    }

    /// The next element, or `None` after the last: [`Elements::advance`] then
    /// [`Elements::value`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] on malformed input.
    #[inline]
    pub fn next_value(&mut self) -> Result<Option<Value<'a>>, DecodeError> {
        if self.advance()? { self.value().map(Some) } else { Ok(None) }
    }

    /// When the pending element is an array, a walker over it that reads it in this same pass
    /// (hand it back to [`Elements::resume`] once it is exhausted); `Ok(None)` otherwise, the
    /// element then still pending for [`Elements::value`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] when not positioned on an element or nesting is too deep.
    #[inline]
    pub fn enter_array(&mut self) -> Result<Option<Elements<'a>>, DecodeError> {
        Ok(self.0.enter(false)?.map(Elements))
    }

    /// When the pending element is an object, a walker over it that reads it in this same pass
    /// (hand it back to [`Elements::resume_object`] once it is done); `Ok(None)` otherwise, the
    /// element then still pending for [`Elements::value`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] when not positioned on an element or nesting is too deep.
    #[inline]
    pub fn enter_object(&mut self) -> Result<Option<Members<'a>>, DecodeError> {
        Ok(self.0.enter(true)?.map(Members))
    }

    /// Continues after the nested object `child` returned by [`Elements::enter_object`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] when `child` failed, was not read to its end, or does not belong to
    /// this walker.
    #[inline]
    pub fn resume_object(&mut self, child: &Members<'a>) -> Result<(), DecodeError> {
        self.0.resume(&child.0)
    }

    /// Continues after the nested array `child` returned by [`Elements::enter_array`].
    ///
    /// # Errors
    /// [`DecodeError::Json`] when `child` failed, was not read to its end, or does not belong to
    /// this walker.
    #[inline]
    pub fn resume(&mut self, child: &Elements<'a>) -> Result<(), DecodeError> {
        self.0.resume(&child.0)
    }

    /// Byte offset of the walker in its input.
    pub fn offset(&self) -> usize {
        self.0.pos
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Value<'a>, DecodeError>;

    /// The next element; `None` at the end and after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if matches!(self.0.step, Step::Failed(_)) {
            return None;
        }
        self.next_value().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn skip_digits_matches_a_byte_loop(
            buf in proptest::collection::vec(proptest::prop_oneof![
                20 => proptest::sample::select(&b"0123456789"[..]),
                1 => proptest::prelude::any::<u8>(),
                1 => proptest::sample::select(&[b'/', b':', 0x2f, 0x3a, 0x7f, 0x80, 0xb0, 0xb9, 0xba, 0xff, 0x00][..]),
            ], 0..48),
            start in 0usize..48,
        ) {
            let start = start.min(buf.len());
            let naive = buf[start..].iter().position(|c| !c.is_ascii_digit()).map_or(buf.len(), |p| start + p);
            proptest::prop_assert_eq!(skip_digits(&buf, start), naive);
        }

        #[test]
        fn parse_u64_matches_the_standard_parser(num in "[0-9]{0,22}|[0-9+a-]{1,4}") {
            let want = if num.bytes().all(|b| b.is_ascii_digit()) { num.parse::<u64>().ok() } else { None };
            proptest::prop_assert_eq!(parse_u64(num.as_bytes(), "n").ok(), want);
        }

        #[test]
        fn plain_run_end_matches_a_byte_loop(
            buf in proptest::collection::vec(proptest::prop_oneof![
                20 => proptest::sample::select(&[b'a', b' ', b'!', b'#', b']', 0x7f, 0x80, 0x9f, 0xa0, 0xdf, 0xe0, 0xff][..]),
                1 => proptest::sample::select(&[b'"', b'\\', 0x00, 0x01, 0x1f][..]),
            ], 0..48),
            start in 0usize..48,
        ) {
            let start = start.min(buf.len());
            let naive = buf[start..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .map_or(buf.len(), |p| start + p);
            proptest::prop_assert_eq!(plain_run_end(&buf, start), naive);
        }
    }
}
