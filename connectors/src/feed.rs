//! The plug-in point of a market-data connector: frame in, normalized events out.
//!
//! A [`FeedDecoder`] is a pure function of the frame (no I/O, no clock), so it is unit-tested on
//! recorded frames and benchmarked alone. The I/O thread owns one per connection, hands it each
//! text frame with the receive time taken right after the socket read, and pushes what it wrote
//! into `out` onto the core's ring.

use crossbar_engine::event::MarketEvent;
use crossbar_engine::fixed::{FixedError, Scale};
use crossbar_engine::instrument::{InstrumentId, Registry, VenueId};

/// Why a frame could not be decoded. The frame is dropped and counted; the connection goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not well-formed JSON, or not the JSON shape the venue documents.
    #[error("malformed JSON at byte {at}: {what}")]
    Json {
        /// Byte offset of the defect.
        at: usize,
        /// What was expected there.
        what: &'static str,
    },
    /// A field the message kind requires is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A field has the wrong JSON type (a number where the venue sends a string, say).
    #[error("field {0:?} has the wrong type")]
    WrongType(&'static str),
    /// A numeric string that is not an exact plain decimal at the instrument's scale.
    #[error("field {field:?}: {source}")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        source: FixedError,
    },
    /// An integer field (id, time) that is not a non-negative integer fitting 64 bits.
    #[error("field {0:?} is not a valid unsigned integer")]
    BadInteger(&'static str),
}

/// What a frame turned out to be, beyond the events it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Market data: events were appended to `out`.
    Market,
    /// Market data for a symbol this connection does not track: ignored, counted.
    UnknownSymbol,
    /// A reply to our subscribe request.
    SubscribeAck,
    /// The venue announced it will close this connection soon: reconnect now.
    ServerShutdown,
    /// Valid JSON of a kind this decoder does not know: ignored, counted.
    Unknown,
    /// A heartbeat reply (Bybit `{"op":"pong"}`, OKX's plain-text `pong`): no data, not counted.
    Pong,
}

/// Decodes one venue's frames.
///
/// Called only by the I/O thread that owns the connection; must not block, allocate after
/// warm-up, or read the clock. `out` is cleared by the caller; a decoder appends to it.
pub trait FeedDecoder {
    /// Decodes `frame` (which it may modify in place) into `out`, stamping every event with
    /// `recv_ns`.
    ///
    /// # Errors
    /// A [`DecodeError`] for a malformed frame; events already appended for it must be removed
    /// by the decoder, so a bad frame never produces half its events.
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError>;

    /// Turns a REST book snapshot of `instrument` into one snapshot message (chunks with
    /// `BookUpdateKind::Snapshot`, `seq.last` = the snapshot's update id) appended to `out`.
    /// Returns false for venues whose books never need a REST snapshot. Called on resync, not
    /// per event, so it may allocate.
    ///
    /// # Errors
    /// A [`DecodeError`] for a malformed body; `out` is then left as it was.
    fn snapshot(
        &mut self,
        body: &[u8],
        instrument: InstrumentId,
        recv_ns: u64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<bool, DecodeError> {
        let _ = (body, instrument, recv_ns, out);
        Ok(false)
    }
}

/// One tracked symbol: how its strings map to ids and scales.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolEntry {
    /// The venue's symbol exactly as its messages spell it.
    pub symbol: Box<[u8]>,
    /// The engine's id for it.
    pub instrument: InstrumentId,
    /// Scale of its prices.
    pub price_scale: Scale,
    /// Scale of its quantities.
    pub qty_scale: Scale,
}

/// The symbols one connection tracks. Lookups are a linear scan over a few short byte strings,
/// which beats hashing for the handful of symbols a connection carries.
///
/// In learning mode (for `crossbar decode`, which has no registry) an unknown symbol is added
/// with default scales instead of being ignored.
#[derive(Clone, Debug)]
pub struct SymbolTable {
    entries: Vec<SymbolEntry>,
    learn: Option<(Scale, Scale)>,
}

impl SymbolTable {
    /// The symbols of `venue` in `registry`. `case` maps a registry symbol to the spelling the
    /// venue uses in messages.
    pub fn for_venue(registry: &Registry, venue: VenueId) -> Self {
        let entries = registry
            .instruments()
            .iter()
            .filter(|i| i.venue == venue)
            .map(|i| SymbolEntry {
                symbol: i.symbol.as_bytes().into(),
                instrument: i.id,
                price_scale: i.price_scale,
                qty_scale: i.qty_scale,
            })
            .collect();
        Self { entries, learn: None }
    }

    /// An empty table that learns every symbol it sees, at the given scales.
    pub fn learning(price_scale: Scale, qty_scale: Scale) -> Self {
        Self { entries: Vec::with_capacity(64), learn: Some((price_scale, qty_scale)) }
    }

    /// The entry for `symbol`, learning it when in learning mode.
    #[inline]
    pub fn lookup(&mut self, symbol: &[u8]) -> Option<&SymbolEntry> {
        if let Some(i) = self.entries.iter().position(|e| &*e.symbol == symbol) {
            return Some(&self.entries[i]);
        }
        let (price_scale, qty_scale) = self.learn?;
        let instrument = InstrumentId(u32::try_from(self.entries.len()).ok()?);
        self.entries.push(SymbolEntry { symbol: symbol.into(), instrument, price_scale, qty_scale });
        self.entries.last()
    }

    /// The entry of an instrument id.
    pub fn by_id(&self, id: InstrumentId) -> Option<&SymbolEntry> {
        self.entries.iter().find(|e| e.instrument == id)
    }

    /// Every tracked symbol.
    pub fn entries(&self) -> &[SymbolEntry] {
        &self.entries
    }
}
