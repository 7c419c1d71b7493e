//! A bounds-checked, zero-copy reader for Solidity ABI-encoded calldata.
//!
//! Router calldata is read field by field straight out of the decoded input bytes: a [`Words`]
//! is a view on one ABI "head" (the region a tuple's offsets are relative to), and every access
//! checks its bounds, so arbitrary bytes produce a [`CalldataError`], never a panic and never an
//! allocation. Values are validated as Solidity's decoder would: an `address` with dirty upper
//! bytes, a `bool` other than 0/1 or an offset beyond the data is an error (the router would
//! revert on it, so the transaction is not a swap the engine should predict).

use alloy_primitives::{Address, U256};

/// Why calldata could not be decoded as the ABI of its selector says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalldataError {
    /// Fewer than four bytes: no selector.
    #[error("calldata shorter than a selector")]
    NoSelector,
    /// A word, offset or length points past the end of the data.
    #[error("calldata too short: {what} at byte {at}")]
    OutOfBounds {
        /// Byte offset (relative to the region read) of the access.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A value that does not fit its Solidity type (dirty address bits, a bool that is not 0/1,
    /// an offset or length too large to be real).
    #[error("calldata value out of range for {0}")]
    BadValue(&'static str),
    /// A swap path that is empty, too long for [`crate::eth::MAX_PATH_TOKENS`], or whose length
    /// does not match the V3 `token (20) | fee (3) | token ...` layout.
    #[error("malformed swap path: {0}")]
    BadPath(&'static str),
    /// Nested calls (multicall in multicall) deeper than the decoder follows.
    #[error("calls nested too deep")]
    TooDeep,
}

/// The size of one ABI word.
pub const WORD: usize = 32;

/// A view on one ABI-encoded head: word `i` is at byte `32 * i`; offsets read from it are
/// relative to its start.
#[derive(Clone, Copy, Debug)]
pub struct Words<'a> {
    data: &'a [u8],
}

impl<'a> Words<'a> {
    /// A view on `data` (calldata after the selector, or a nested tuple/array body).
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The raw bytes of the view.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Word `i`.
    ///
    /// # Errors
    /// [`CalldataError::OutOfBounds`] when the word is not entirely inside the view.
    pub fn word(&self, i: usize, what: &'static str) -> Result<&'a [u8; 32], CalldataError> {
        let at = i.checked_mul(WORD).ok_or(CalldataError::OutOfBounds { at: usize::MAX, what })?;
        let end = at.checked_add(WORD).ok_or(CalldataError::OutOfBounds { at, what })?;
        self.data.get(at..end).and_then(|s| s.try_into().ok()).ok_or(CalldataError::OutOfBounds { at, what })
    }

    /// Word `i` as a `uint256`.
    ///
    /// # Errors
    /// [`CalldataError::OutOfBounds`] as [`Words::word`].
    pub fn u256(&self, i: usize, what: &'static str) -> Result<U256, CalldataError> {
        Ok(U256::from_be_bytes(*self.word(i, what)?))
    }

    /// Word `i` as an `address` (upper 12 bytes must be zero).
    ///
    /// # Errors
    /// [`CalldataError::OutOfBounds`], or [`CalldataError::BadValue`] on dirty upper bytes.
    pub fn address(&self, i: usize, what: &'static str) -> Result<Address, CalldataError> {
        let w = self.word(i, what)?;
        if w[..12].iter().any(|&b| b != 0) {
            return Err(CalldataError::BadValue(what));
        }
        Ok(Address::from_slice(&w[12..]))
    }

    /// Word `i` as an unsigned integer of `bits` bits (`uint24`, `uint8`, ...), at most 64.
    ///
    /// # Errors
    /// [`CalldataError::OutOfBounds`], or [`CalldataError::BadValue`] when it does not fit.
    pub fn uint(&self, i: usize, bits: u32, what: &'static str) -> Result<u64, CalldataError> {
        let w = self.word(i, what)?;
        if w[..24].iter().any(|&b| b != 0) {
            return Err(CalldataError::BadValue(what));
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&w[24..]);
        let v = u64::from_be_bytes(low);
        if bits < 64 && v >> bits != 0 {
            return Err(CalldataError::BadValue(what));
        }
        Ok(v)
    }

    /// Word `i` as a `bool`.
    ///
    /// # Errors
    /// [`CalldataError::OutOfBounds`], or [`CalldataError::BadValue`] when not 0 or 1.
    pub fn bool(&self, i: usize, what: &'static str) -> Result<bool, CalldataError> {
        match self.uint(i, 1, what)? {
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    /// Word `i` as an offset or length, checked to lie within the view.
    fn small(&self, i: usize, what: &'static str) -> Result<usize, CalldataError> {
        let v = self.uint(i, 64, what)?;
        let v = usize::try_from(v).map_err(|_| CalldataError::BadValue(what))?;
        if v > self.data.len() {
            return Err(CalldataError::BadValue(what));
        }
        Ok(v)
    }

    /// The dynamic value whose offset is word `i`: a view starting at that offset.
    ///
    /// # Errors
    /// [`CalldataError::OutOfBounds`] or [`CalldataError::BadValue`] when the offset is outside.
    pub fn tail(&self, i: usize, what: &'static str) -> Result<Words<'a>, CalldataError> {
        let off = self.small(i, what)?;
        Ok(Words { data: self.data.get(off..).ok_or(CalldataError::OutOfBounds { at: off, what })? })
    }

    /// The `bytes` value whose offset is word `i`.
    ///
    /// # Errors
    /// [`CalldataError`] when the offset, the length or the contents are outside the view.
    pub fn dyn_bytes(&self, i: usize, what: &'static str) -> Result<&'a [u8], CalldataError> {
        let t = self.tail(i, what)?;
        let len = t.small(0, what)?;
        t.data.get(WORD..WORD + len).ok_or(CalldataError::OutOfBounds { at: WORD, what })
    }

    /// The dynamic array whose offset is word `i`: its length and a view on its elements
    /// (element `k` of a static type is word `k`; of a dynamic type, offset word `k`).
    ///
    /// # Errors
    /// [`CalldataError`] when the offset or the length is outside the view.
    pub fn array(&self, i: usize, what: &'static str) -> Result<(usize, Words<'a>), CalldataError> {
        let t = self.tail(i, what)?;
        let len = t.small(0, what)?;
        let body = Words { data: t.data.get(WORD..).ok_or(CalldataError::OutOfBounds { at: WORD, what })? };
        // Every element takes at least one word of head.
        if len > body.data.len() / WORD {
            return Err(CalldataError::OutOfBounds { at: WORD, what });
        }
        Ok((len, body))
    }
}

/// Splits calldata into its 4-byte selector and the argument words.
///
/// # Errors
/// [`CalldataError::NoSelector`] when shorter than four bytes.
pub fn split_selector(input: &[u8]) -> Result<([u8; 4], Words<'_>), CalldataError> {
    let (sel, rest) = input.split_first_chunk::<4>().ok_or(CalldataError::NoSelector)?;
    Ok((*sel, Words::new(rest)))
}
