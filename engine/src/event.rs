//! Normalized events and commands: the only things that cross thread boundaries.
//!
//! Every type here is a fixed-size `Copy` value with no heap pointer, so it moves through the
//! preallocated rings without allocation and can be journaled or replayed as plain bytes. Each
//! market event carries the venue's time (when given), the local receive time taken right after
//! the socket read, and the venue sequence ids the book sequencer needs for gap detection.

use rust_decimal::Decimal;

use crate::fixed::{Px, Qty, Rate};
use crate::instrument::{InstrumentId, VenueId};

/// Buy or sell; for a trade, the aggressor's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buying: pays the ask.
    Buy,
    /// Selling: hits the bid.
    Sell,
}

impl Side {
    /// +1 for a buy, -1 for a sell: the sign a fill adds to a position.
    pub const fn sign(self) -> i64 {
        match self {
            Self::Buy => 1,
            Self::Sell => -1,
        }
    }

    /// The other side.
    pub const fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }

    /// Lowercase name, as reports and `crossbar decode` print it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

/// Venue sequence ids of one message, `0` where the venue gives none.
///
/// Binance diffs: `first`=`U`, `last`=`u`, `prev`=`pu` (futures). Bybit: `last`=`u`.
/// OKX: `last`=`seqId`, `prev`=`prevSeqId`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqIds {
    /// First update id covered by the message.
    pub first: u64,
    /// Last update id covered by the message.
    pub last: u64,
    /// Update id of the message that must precede this one.
    pub prev: u64,
}

/// Best bid and ask, as a venue's book ticker gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quote {
    /// Best bid price.
    pub bid_px: Px,
    /// Quantity at the best bid.
    pub bid_qty: Qty,
    /// Best ask price.
    pub ask_px: Px,
    /// Quantity at the best ask.
    pub ask_qty: Qty,
}

/// One price level: absolute quantity at a price; zero removes the level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Level {
    /// Price of the level.
    pub px: Px,
    /// Absolute quantity resting there.
    pub qty: Qty,
}

/// Levels carried by one [`BookChunk`]. A venue message with more levels becomes several chunks,
/// so events stay fixed-size however deep the update.
pub const BOOK_CHUNK_LEVELS: usize = 4;

/// Whether a book message replaces the book or amends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookUpdateKind {
    /// Replaces every level (Bybit `snapshot`, OKX `snapshot`, depth-N partials).
    Snapshot,
    /// Amends the listed levels (Binance `depthUpdate`, Bybit and OKX deltas).
    Delta,
}

/// Part of one venue book message: up to [`BOOK_CHUNK_LEVELS`] levels, bids and asks mixed.
///
/// Chunks of one message are consecutive on the ring; `first`/`last` mark its bounds so the
/// book applies sequence checks once per message, not once per chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookChunk {
    /// Snapshot or delta.
    pub kind: BookUpdateKind,
    /// True on the message's first chunk.
    pub first: bool,
    /// True on the message's last chunk.
    pub last: bool,
    /// Number of valid entries in `levels`.
    pub len: u8,
    /// Bit `i` set: `levels[i]` is an ask; clear: a bid.
    pub ask_mask: u8,
    /// The levels, in message order (bids first, then asks).
    pub levels: [Level; BOOK_CHUNK_LEVELS],
}

impl BookChunk {
    /// An empty chunk of `kind`.
    pub const fn new(kind: BookUpdateKind) -> Self {
        Self {
            kind,
            first: false,
            last: false,
            len: 0,
            ask_mask: 0,
            levels: [Level { px: Px(0), qty: Qty(0) }; BOOK_CHUNK_LEVELS],
        }
    }

    /// Appends a level; returns false when the chunk is full.
    #[inline]
    pub fn push(&mut self, side: Side, level: Level) -> bool {
        let i = usize::from(self.len);
        if i >= BOOK_CHUNK_LEVELS {
            return false;
        }
        self.levels[i] = level;
        if side == Side::Sell {
            self.ask_mask |= 1 << i;
        }
        self.len += 1;
        true
    }

    /// The valid levels with their side (`Buy` = bid, `Sell` = ask).
    pub fn iter(&self) -> impl Iterator<Item = (Side, Level)> + '_ {
        self.levels[..usize::from(self.len)].iter().enumerate().map(|(i, l)| {
            let side = if self.ask_mask & (1 << i) != 0 { Side::Sell } else { Side::Buy };
            (side, *l)
        })
    }
}

/// Longest venue trade id kept verbatim (a UUID is 36 bytes).
pub const TRADE_ID_MAX: usize = 46;

/// A venue's public trade id, kept verbatim inline: numeric on Binance and OKX, a UUID on
/// Bybit. Inline bytes keep the event `Copy` and allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TradeId {
    len: u8,
    bytes: [u8; TRADE_ID_MAX],
}

impl TradeId {
    /// The id spelled by `bytes`; `None` when longer than [`TRADE_ID_MAX`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut id = Self { len: 0, bytes: [0; TRADE_ID_MAX] };
        id.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        id.len = bytes.len() as u8;
        Some(id)
    }

    /// A numeric id, written in decimal.
    pub fn from_u64(mut v: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        Self::from_bytes(&digits[i..]).unwrap_or_default()
    }

    /// The id's bytes as the venue sent them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The id as text (venue ids are ASCII; anything else prints as `?`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl Default for TradeId {
    fn default() -> Self {
        Self { len: 0, bytes: [0; TRADE_ID_MAX] }
    }
}

impl core::fmt::Debug for TradeId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TradeId({:?})", self.as_str())
    }
}

/// A public trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// Trade price.
    pub px: Px,
    /// Trade quantity.
    pub qty: Qty,
    /// Side of the taker.
    pub aggressor: Side,
    /// Venue trade id (aggregate id for `aggTrade`).
    pub trade_id: TradeId,
}

/// Mark price, index price and funding of a perpetual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funding {
    /// Mark price at [`crate::fixed::REFERENCE_SCALE`] (not the tick's scale), `Px(0)` when the
    /// venue gives none.
    pub mark_px: Px,
    /// Index price at [`crate::fixed::REFERENCE_SCALE`], `Px(0)` when the venue gives none.
    pub index_px: Px,
    /// Funding rate for the next settlement.
    pub rate: Rate,
    /// Venue time (ms) of the next funding settlement; comes from the venue, never assumed.
    pub next_funding_ms: u64,
}

/// Health of a feed or of one instrument's book, so strategies can stop trading on bad data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedStatus {
    /// Connected and subscribed.
    Connected,
    /// The connection is down; data for its instruments is stale.
    Disconnected,
    /// A sequence gap was detected; the book is not whole until resynced.
    Gap,
    /// The book is whole again after a resync.
    Resynced,
}

/// What a market event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketBody {
    /// Best bid/ask.
    Quote(Quote),
    /// Book levels (one chunk of a message).
    Book(BookChunk),
    /// A public trade.
    Trade(Trade),
    /// Mark, index and funding.
    Funding(Funding),
    /// Feed or book health.
    Status(FeedStatus),
    /// An AMM pool's reserves as of a new block; the pool's pending state restarts from them.
    PoolState(PoolState),
    /// A pending swap on an AMM pool, with the pool's pending-adjusted reserves after it.
    PendingSwap(PendingSwap),
}

/// An unsigned 128-bit amount as two `u64` words `[low, high]`: a `u128` field would raise the
/// event's alignment to 16 and its size past the ring's slot, two words keep it at 8.
/// Uniswap V2 reserves are `uint112`, so they always fit; larger calldata amounts saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount128(pub [u64; 2]);

impl Amount128 {
    /// The amount `v`.
    pub const fn new(v: u128) -> Self {
        Self([v as u64, (v >> 64) as u64])
    }

    /// The amount as a `u128`.
    pub const fn get(self) -> u128 {
        (self.0[0] as u128) | ((self.0[1] as u128) << 64)
    }
}

/// Both reserves of a two-token pool, oriented by the instrument (base, quote), in base units
/// of each token (wei, satoshi, …): exact integers, as the pool contract holds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolReserves {
    /// Reserve of the instrument's base token.
    pub base: Amount128,
    /// Reserve of the instrument's quote token.
    pub quote: Amount128,
}

/// A pool at a block: its confirmed reserves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Reserves after the block.
    pub reserves: PoolReserves,
    /// The block number.
    pub block: u64,
}

/// One pending swap on a pool, as the mempool showed it, priced against the pending state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingSwap {
    /// The pool's reserves once this swap and every pending swap seen before it apply
    /// (unchanged from before when the swap would revert).
    pub reserves: PoolReserves,
    /// Amount paid into the pool (base units of the token sold). The amount out is the
    /// fall of the other reserve from the previous pending state (kept by
    /// [`crate::pool::Pools`]): leaving it out keeps the event within its 128 bytes.
    pub amount_in: Amount128,
    /// True when the swap sells the base token into the pool (pushes the price down).
    pub sells_base: bool,
    /// True when it would revert (its limit, deadline or the pool's liquidity).
    pub would_revert: bool,
}

/// One normalized market-data event, as it travels from an I/O thread to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketEvent {
    /// The instrument it is about.
    pub instrument: InstrumentId,
    /// Venue time in ms (transaction time when given, else event time); 0 when none.
    pub exch_ts_ms: u64,
    /// Local monotonic ns, taken right after the socket read that brought the frame.
    pub recv_ns: u64,
    /// Local monotonic ns after decoding; a latency stamp.
    pub decoded_ns: u64,
    /// Venue sequence ids.
    pub seq: SeqIds,
    /// The payload.
    pub body: MarketBody,
}

const _: () = assert!(core::mem::size_of::<MarketEvent>() <= 128);

/// A process-unique client order id, chosen by the engine so retries are idempotent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientOrderId(pub u64);

impl ClientOrderId {
    /// Low bits of an id that name the strategy that sent it (see `Oms::next_client_id`).
    pub const STRATEGY_BITS: u32 = 8;

    /// The strategy that sent this order, as its id records it.
    pub fn strategy(self) -> crate::strategy::StrategyId {
        crate::strategy::StrategyId((self.0 & ((1 << Self::STRATEGY_BITS) - 1)) as u16)
    }
}

/// How long an order may rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Immediate or cancel: takes what it can now, the rest expires.
    Ioc,
    /// Good till cancelled.
    Gtc,
}

/// A new limit order, as the core asks a gateway to send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Idempotency key.
    pub client_id: ClientOrderId,
    /// What to trade.
    pub instrument: InstrumentId,
    /// Its venue (copied from the registry so the I/O side needs no lookup).
    pub venue: VenueId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub px: Px,
    /// Quantity.
    pub qty: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// Only reduce an existing position.
    pub reduce_only: bool,
}

/// Latency stamps an order carries from the tick that caused it to the socket write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderStamps {
    /// `recv_ns` of the triggering market event.
    pub tick_recv_ns: u64,
    /// When the strategy decided.
    pub decision_ns: u64,
    /// When pre-trade risk passed.
    pub risk_passed_ns: u64,
}

/// What the core asks an I/O thread to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderCommand {
    /// Send a new order.
    New {
        /// The order.
        order: NewOrder,
        /// Latency stamps.
        stamps: OrderStamps,
    },
    /// Make an instrument's depth book whole again: fetch a snapshot or resubscribe, as the
    /// venue's procedure says. Sent by the core's sequencer after a gap (or to start a sync).
    Resync {
        /// The instrument whose book is not whole.
        instrument: InstrumentId,
        /// Its venue.
        venue: VenueId,
        /// What the venue's procedure requires.
        how: crate::orderbook::Resync,
    },
    /// Cancel a resting order.
    Cancel {
        /// The order to cancel.
        client_id: ClientOrderId,
        /// Its instrument.
        instrument: InstrumentId,
        /// Its venue.
        venue: VenueId,
    },
}

const _: () = assert!(core::mem::size_of::<OrderCommand>() <= 128);

/// Why a venue or gateway refused an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Not enough balance or margin.
    InsufficientBalance,
    /// Price or quantity breaks the venue's filters.
    InvalidOrder,
    /// The venue's rate limit.
    RateLimited,
    /// The instrument is not trading.
    MarketClosed,
    /// The gateway could not reach the venue; the order's fate is known only after reconcile.
    Transport,
    /// Any other venue reason.
    Other,
}

/// A fill of (part of) an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Execution price.
    pub px: Px,
    /// Executed quantity.
    pub qty: Qty,
    /// Quantity still open after this fill.
    pub leaves_qty: Qty,
    /// Fee in quote currency (negative for a rebate).
    pub fee: Decimal,
    /// True when the order took liquidity.
    pub taker: bool,
    /// Venue trade id, for de-duplication.
    pub trade_id: u64,
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEventKind {
    /// The venue accepted it.
    Accepted,
    /// It (partly) filled.
    Filled(Fill),
    /// It was cancelled on request.
    Cancelled,
    /// The unfilled rest of an IOC order expired.
    Expired,
    /// The venue refused it.
    Rejected(RejectReason),
}

/// An order acknowledgement, fill or end, as it travels from an I/O thread to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderEvent {
    /// The order it is about.
    pub client_id: ClientOrderId,
    /// Its instrument.
    pub instrument: InstrumentId,
    /// The order's side, as the venue echoes it.
    pub side: Side,
    /// Venue time in ms, 0 when none.
    pub exch_ts_ms: u64,
    /// Local monotonic ns of receipt.
    pub recv_ns: u64,
    /// What happened.
    pub kind: OrderEventKind,
}

const _: () = assert!(core::mem::size_of::<OrderEvent>() <= 128);
