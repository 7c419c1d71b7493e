//! Local level-2 order books kept in sync with their venues.
//!
//! [`L2Book`] is the book itself: sorted fixed-capacity price levels, allocation-free after
//! construction, with the reads the core needs (best bid/ask, crossed check, an exact depth walk
//! for the router). [`BookSync`] owns one and feeds it a venue's book messages by that venue's
//! documented procedure ([`SyncRule`]): Binance spot `U`/`u` and USD-M `pu` continuity with a REST
//! snapshot and a pre-snapshot buffer, Bybit v5 snapshot/delta `u`, OKX v5 `seqId`/`prevSeqId`.
//! Every gap is detected from the venue's own ids; the book is then not whole and the caller is
//! told how to resync. Both are pure: no I/O, no clock, no threads.

mod levels;
mod sync;

pub use levels::{L2Book, LevelChange, LevelMismatch, Walk};
pub use sync::{BookSync, Resync, SyncOutcome, SyncPhase, SyncRule, SyncStats};

use crate::event::{BOOK_CHUNK_LEVELS, BookChunk, BookUpdateKind, Level, Side};

/// Splits one venue message into the engine's fixed-size [`BookChunk`]s, in order, marking the
/// first and last, and hands each to `f`; an empty message gives one empty chunk. Decoders,
/// the simulator and tests use it so a message is chunked one way everywhere. No allocation.
pub fn for_each_chunk(kind: BookUpdateKind, levels: &[(Side, Level)], mut f: impl FnMut(BookChunk)) {
    let mut chunk = BookChunk::new(kind);
    chunk.first = true;
    if levels.is_empty() {
        chunk.last = true;
        f(chunk);
        return;
    }
    let n = levels.len();
    for (i, &(side, level)) in levels.iter().enumerate() {
        chunk.push(side, level);
        let end = i + 1 == n;
        if end || usize::from(chunk.len) == BOOK_CHUNK_LEVELS {
            chunk.last = end;
            f(chunk);
            chunk = BookChunk::new(kind);
        }
    }
}
