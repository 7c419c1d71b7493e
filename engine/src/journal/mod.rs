//! The order journal: every order command and order event, appended to a file, so a restarted
//! engine rebuilds its orders and positions exactly and a crash loses nothing it had seen.
//!
//! # Why this shape
//! The core must never wait for a disk. It pushes fixed-size `Copy` [`Record`]s into a lossless
//! [`Ring`](crate::ring::Ring) (no allocation, no syscall); a journal writer thread encodes them, writes them and
//! syncs them as [`FsyncPolicy`] says. The order of records in the file is the order the core
//! saw things, so replaying the file through the same OMS and portfolio code gives the same state.
//!
//! A record is queued before the core acts on what it stands for (an event before it is applied,
//! a command before it goes to the I/O thread), but reaching the disk is asynchronous: a crash can
//! lose the last records the writer had not yet written. Those are things the venue knows (an
//! order it received, a fill it sent), so the restart's reconciliation with the venue
//! ([`reconcile`]) finds them, rather than the core waiting for the disk on every order.
//! Journaled: `OrderCommand::New` (with the strategy and tag that asked), `OrderCommand::Cancel`,
//! and every `OrderEvent` the core dequeues, duplicates included (the replay skips them the same
//! way), and every funding settlement the core books into positions. Not journaled: book resync
//! commands and market data.
//!
//! # File format (version 1, all integers little-endian)
//! ```text
//! file    := header record*
//! header  := "XBJOURNL" (8 bytes) format_version:u8 (=1) 7 zero bytes           16 bytes
//! record  := len:u32 crc:u32 payload[len]        crc = CRC-32 (IEEE) of payload
//! payload := version:u8 (=1) kind:u8 seq:u64 body
//!
//! kind 1 NEW     client_id:u64 instrument:u32 venue:u8 side:u8 px:i64 px_scale:u8
//!                qty:i64 qty_scale:u8 tif:u8 reduce_only:u8 strategy:u16 tag:u32
//!                tick_recv_ns:u64 decision_ns:u64 risk_passed_ns:u64
//! kind 2 CANCEL  client_id:u64 instrument:u32 venue:u8
//! kind 3 EVENT   client_id:u64 instrument:u32 side:u8 exch_ts_ms:u64 recv_ns:u64 what:u8 [detail]
//! kind 4 RESOLVED  same body as EVENT: an event reconciliation decided, not one a venue sent
//! kind 5 FUNDING instrument:u32 at_ms:u64 rate:i64 rate_scale:u8 (=16) mark_px:i64 mark_scale:u8 (=10)
//!
//! side: 0 buy, 1 sell          tif: 0 IOC, 1 GTC          reduce_only/taker: 0 or 1
//! what: 0 accepted, 1 filled, 2 cancelled, 3 expired, 4 rejected
//! detail of filled:   px:i64 px_scale:u8 qty:i64 qty_scale:u8 leaves_qty:i64
//!                     fee_mantissa:i128 fee_scale:u8 taker:u8 trade_id:u64
//! detail of rejected: reason:u8 (0 insufficient balance, 1 invalid order, 2 rate limited,
//!                     3 market closed, 4 transport, 5 other)
//! ```
//! Prices and quantities are the engine's fixed-point mantissas with the instrument's scale
//! written beside them (value = mantissa × 10^-scale); on replay a scale that differs from the
//! configured instrument's is an error, never a silent rescale. Fees are exact decimals.
//! `seq` starts at 1 and rises by one per record: a missing or repeated record is corruption.
//!
//! # Recovery
//! A crash can leave the last record half written. Reading stops at the first record that does
//! not check out: if it is the file's tail (too short for its length, or a bad checksum with
//! nothing after it, or only zero bytes left), it is a torn tail: reported and truncated. Anything
//! bad followed by more data is corruption in the middle: an error naming the offset, never
//! skipped. Book resync commands are not order commands and are not journaled.

mod codec;
mod replay;
mod writer;

pub use codec::{Contents, TornTail, encode, header, parse, read};
pub use replay::{
    ADOPTED_TAG, Difference, Rebuilt, Resolution, Resolved, VenueFill, VenueOrder, VenueState, rebuild, reconcile,
    replay_one, resolve,
};
pub use writer::{FsyncPolicy, JournalConfig, JournalStats, JournalWriter, Opened};

use std::path::PathBuf;

use crate::book::FundingSettled;
use crate::event::{ClientOrderId, NewOrder, OrderEvent, OrderStamps};
use crate::instrument::{InstrumentId, VenueId};
use crate::strategy::StrategyId;

/// First bytes of every journal file.
pub const MAGIC: &[u8; 8] = b"XBJOURNL";
/// Format version in the file header and in every record.
pub const VERSION: u8 = 1;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 16;
/// Bytes of a record's frame before its payload (length and checksum).
pub const FRAME_LEN: usize = 8;
/// Longest payload any record kind has; a longer length field is corruption.
pub const MAX_PAYLOAD: usize = 128;

const KIND_NEW: u8 = 1;
const KIND_CANCEL: u8 = 2;
const KIND_EVENT: u8 = 3;
const KIND_RESOLVED: u8 = 4;
const KIND_FUNDING: u8 = 5;

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start with the journal header.
    #[error("journal: not a crossbar journal (bad header)")]
    BadHeader,
    /// A format version this build cannot read.
    #[error("journal: format version {0} is not supported (this build reads {VERSION})")]
    Version(u8),
    /// A record that does not check out with more data after it: never skipped.
    #[error("journal corrupt at byte {offset}: {what}")]
    Corrupt {
        /// Offset of the bad record's frame.
        offset: u64,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A record's instrument or scale does not match the configured instruments.
    #[error("journal record at byte {offset}: {what}; was the instrument config changed?")]
    Mismatch {
        /// Offset of the record's frame.
        offset: u64,
        /// What does not match.
        what: &'static str,
    },
}

/// One journaled thing: `Copy` and fixed-size, so the core pushes it without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A new order the core handed to a gateway, with who asked for it.
    New {
        /// The order.
        order: NewOrder,
        /// The strategy that asked.
        strategy: StrategyId,
        /// The intent's tag.
        tag: u32,
        /// Latency stamps (kept for post-mortems).
        stamps: OrderStamps,
    },
    /// A cancel the core asked for.
    Cancel {
        /// The order to cancel.
        client_id: ClientOrderId,
        /// Its instrument.
        instrument: InstrumentId,
        /// Its venue.
        venue: VenueId,
    },
    /// An order event as the core received it (journaled before it is applied).
    Event(OrderEvent),
    /// An event decided by reconciliation after a restart (e.g. an order the venue does not
    /// know is ended locally), so a later replay reaches the same state.
    Resolved(OrderEvent),
    /// A funding settlement the core booked into positions (market-derived, but money).
    Funding {
        /// The perpetual.
        instrument: InstrumentId,
        /// Rate, mark and time of the settlement.
        settled: FundingSettled,
    },
}

impl Record {
    /// The client order id the record is about (`None` for a funding settlement).
    pub fn client_id(&self) -> Option<ClientOrderId> {
        match self {
            Self::New { order, .. } => Some(order.client_id),
            Self::Cancel { client_id, .. } => Some(*client_id),
            Self::Event(e) | Self::Resolved(e) => Some(e.client_id),
            Self::Funding { .. } => None,
        }
    }
}
