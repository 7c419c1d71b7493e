//! The order journal: every order command and order event, appended to a file, so a restarted
//! engine rebuilds its orders and positions exactly and a crash loses nothing it had seen.
//!
//! # Why this shape
//! The core must never wait for a disk. It pushes fixed-size `Copy` [`Record`]s into a lossless
//! [`Ring`] (no allocation, no syscall); a journal writer thread encodes them, writes them and
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

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::book::FundingSettled;
use crate::event::{
    ClientOrderId, Fill, NewOrder, OrderEvent, OrderEventKind, OrderStamps, RejectReason, Side, TimeInForce,
};
use crate::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate};
use crate::instrument::{InstrumentId, Registry, VenueId};
use crate::oms::{Applied, Oms};
use crate::portfolio::Portfolio;
use crate::ring::Ring;
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

// ---------------------------------------------------------------------------------------------
// Encoding

fn side_byte(s: Side) -> u8 {
    match s {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

fn reason_byte(r: RejectReason) -> u8 {
    match r {
        RejectReason::InsufficientBalance => 0,
        RejectReason::InvalidOrder => 1,
        RejectReason::RateLimited => 2,
        RejectReason::MarketClosed => 3,
        RejectReason::Transport => 4,
        RejectReason::Other => 5,
    }
}

fn scales(registry: &Registry, id: InstrumentId) -> (u8, u8) {
    registry.instruments().get(id.index()).map_or((0, 0), |i| (i.price_scale.places(), i.qty_scale.places()))
}

/// Appends `rec`'s frame (length, checksum, payload) to `out`. `registry` supplies the scales.
/// With `out` reused and its capacity reached, this does not allocate.
pub fn encode(rec: &Record, seq: u64, registry: &Registry, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    out.push(VERSION);
    match rec {
        Record::New { order, strategy, tag, stamps } => {
            let (ps, qs) = scales(registry, order.instrument);
            out.push(KIND_NEW);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&order.client_id.0.to_le_bytes());
            out.extend_from_slice(&order.instrument.0.to_le_bytes());
            out.push(order.venue.0);
            out.push(side_byte(order.side));
            out.extend_from_slice(&order.px.0.to_le_bytes());
            out.push(ps);
            out.extend_from_slice(&order.qty.0.to_le_bytes());
            out.push(qs);
            out.push(match order.tif {
                TimeInForce::Ioc => 0,
                TimeInForce::Gtc => 1,
            });
            out.push(u8::from(order.reduce_only));
            out.extend_from_slice(&strategy.0.to_le_bytes());
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&stamps.tick_recv_ns.to_le_bytes());
            out.extend_from_slice(&stamps.decision_ns.to_le_bytes());
            out.extend_from_slice(&stamps.risk_passed_ns.to_le_bytes());
        }
        Record::Cancel { client_id, instrument, venue } => {
            out.push(KIND_CANCEL);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&client_id.0.to_le_bytes());
            out.extend_from_slice(&instrument.0.to_le_bytes());
            out.push(venue.0);
        }
        Record::Funding { instrument, settled } => {
            out.push(KIND_FUNDING);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&instrument.0.to_le_bytes());
            out.extend_from_slice(&settled.at_ms.to_le_bytes());
            out.extend_from_slice(&settled.rate.0.to_le_bytes());
            out.push(RATE_SCALE.places());
            out.extend_from_slice(&settled.mark_px.0.to_le_bytes());
            out.push(REFERENCE_SCALE.places());
        }
        Record::Event(e) | Record::Resolved(e) => {
            out.push(if matches!(rec, Record::Event(_)) { KIND_EVENT } else { KIND_RESOLVED });
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&e.client_id.0.to_le_bytes());
            out.extend_from_slice(&e.instrument.0.to_le_bytes());
            out.push(side_byte(e.side));
            out.extend_from_slice(&e.exch_ts_ms.to_le_bytes());
            out.extend_from_slice(&e.recv_ns.to_le_bytes());
            match e.kind {
                OrderEventKind::Accepted => out.push(0),
                OrderEventKind::Filled(f) => {
                    let (ps, qs) = scales(registry, e.instrument);
                    out.push(1);
                    out.extend_from_slice(&f.px.0.to_le_bytes());
                    out.push(ps);
                    out.extend_from_slice(&f.qty.0.to_le_bytes());
                    out.push(qs);
                    out.extend_from_slice(&f.leaves_qty.0.to_le_bytes());
                    out.extend_from_slice(&f.fee.mantissa().to_le_bytes());
                    out.push(f.fee.scale() as u8);
                    out.push(u8::from(f.taker));
                    out.extend_from_slice(&f.trade_id.to_le_bytes());
                }
                OrderEventKind::Cancelled => out.push(2),
                OrderEventKind::Expired => out.push(3),
                OrderEventKind::Rejected(r) => {
                    out.push(4);
                    out.push(reason_byte(r));
                }
            }
        }
    }
    let payload_len = out.len() - start - FRAME_LEN;
    debug_assert!(payload_len <= MAX_PAYLOAD);
    let crc = crc32fast::hash(&out[start + FRAME_LEN..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The file header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = VERSION;
    h
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A cursor over one payload; every read fails cleanly past the end.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.at..self.at + N)?;
        self.at += N;
        s.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    fn i128(&mut self) -> Option<i128> {
        self.take().map(i128::from_le_bytes)
    }
}

fn side_of(b: u8) -> Option<Side> {
    match b {
        0 => Some(Side::Buy),
        1 => Some(Side::Sell),
        _ => None,
    }
}

fn bool_of(b: u8) -> Option<bool> {
    match b {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Decodes one payload (checksum already verified). `Err` names what is wrong.
fn decode_payload(p: &[u8], registry: &Registry) -> Result<(u64, Record), &'static str> {
    const SHORT: &str = "record body too short";
    let mut c = Cursor { b: p, at: 0 };
    let version = c.u8().ok_or(SHORT)?;
    if version != VERSION {
        return Err("record version not supported");
    }
    let rec_kind = c.u8().ok_or(SHORT)?;
    let seq = c.u64().ok_or(SHORT)?;
    let instrument_scales = |id: u32| -> Result<(InstrumentId, u8, u8), &'static str> {
        let inst = registry.instruments().get(id as usize).ok_or("unknown instrument id")?;
        Ok((inst.id, inst.price_scale.places(), inst.qty_scale.places()))
    };
    let rec = match rec_kind {
        KIND_NEW => {
            let client_id = ClientOrderId(c.u64().ok_or(SHORT)?);
            let (instrument, ps, qs) = instrument_scales(c.u32().ok_or(SHORT)?)?;
            let venue = VenueId(c.u8().ok_or(SHORT)?);
            let side = side_of(c.u8().ok_or(SHORT)?).ok_or("bad side")?;
            let px = Px(c.i64().ok_or(SHORT)?);
            if c.u8().ok_or(SHORT)? != ps {
                return Err("price scale differs from the instrument's");
            }
            let qty = Qty(c.i64().ok_or(SHORT)?);
            if c.u8().ok_or(SHORT)? != qs {
                return Err("quantity scale differs from the instrument's");
            }
            let tif = match c.u8().ok_or(SHORT)? {
                0 => TimeInForce::Ioc,
                1 => TimeInForce::Gtc,
                _ => return Err("bad time in force"),
            };
            let reduce_only = bool_of(c.u8().ok_or(SHORT)?).ok_or("bad flag")?;
            let strategy = StrategyId(c.u16().ok_or(SHORT)?);
            let tag = c.u32().ok_or(SHORT)?;
            let stamps = OrderStamps {
                tick_recv_ns: c.u64().ok_or(SHORT)?,
                decision_ns: c.u64().ok_or(SHORT)?,
                risk_passed_ns: c.u64().ok_or(SHORT)?,
            };
            let order = NewOrder { client_id, instrument, venue, side, px, qty, tif, reduce_only };
            Record::New { order, strategy, tag, stamps }
        }
        KIND_CANCEL => {
            let client_id = ClientOrderId(c.u64().ok_or(SHORT)?);
            let (instrument, _, _) = instrument_scales(c.u32().ok_or(SHORT)?)?;
            Record::Cancel { client_id, instrument, venue: VenueId(c.u8().ok_or(SHORT)?) }
        }
        KIND_EVENT | KIND_RESOLVED => {
            let client_id = ClientOrderId(c.u64().ok_or(SHORT)?);
            let (instrument, ps, qs) = instrument_scales(c.u32().ok_or(SHORT)?)?;
            let side = side_of(c.u8().ok_or(SHORT)?).ok_or("bad side")?;
            let exch_ts_ms = c.u64().ok_or(SHORT)?;
            let recv_ns = c.u64().ok_or(SHORT)?;
            let kind = match c.u8().ok_or(SHORT)? {
                0 => OrderEventKind::Accepted,
                1 => {
                    let px = Px(c.i64().ok_or(SHORT)?);
                    if c.u8().ok_or(SHORT)? != ps {
                        return Err("price scale differs from the instrument's");
                    }
                    let qty = Qty(c.i64().ok_or(SHORT)?);
                    if c.u8().ok_or(SHORT)? != qs {
                        return Err("quantity scale differs from the instrument's");
                    }
                    let leaves_qty = Qty(c.i64().ok_or(SHORT)?);
                    let m = c.i128().ok_or(SHORT)?;
                    let s = c.u8().ok_or(SHORT)?;
                    let fee = Decimal::try_from_i128_with_scale(m, u32::from(s)).map_err(|_| "bad fee")?;
                    let taker = bool_of(c.u8().ok_or(SHORT)?).ok_or("bad flag")?;
                    let trade_id = c.u64().ok_or(SHORT)?;
                    OrderEventKind::Filled(Fill { px, qty, leaves_qty, fee, taker, trade_id })
                }
                2 => OrderEventKind::Cancelled,
                3 => OrderEventKind::Expired,
                4 => OrderEventKind::Rejected(match c.u8().ok_or(SHORT)? {
                    0 => RejectReason::InsufficientBalance,
                    1 => RejectReason::InvalidOrder,
                    2 => RejectReason::RateLimited,
                    3 => RejectReason::MarketClosed,
                    4 => RejectReason::Transport,
                    5 => RejectReason::Other,
                    _ => return Err("bad reject reason"),
                }),
                _ => return Err("bad event kind"),
            };
            let e = OrderEvent { client_id, instrument, side, exch_ts_ms, recv_ns, kind };
            if rec_kind == KIND_EVENT { Record::Event(e) } else { Record::Resolved(e) }
        }
        KIND_FUNDING => {
            let (instrument, _, _) = instrument_scales(c.u32().ok_or(SHORT)?)?;
            let at_ms = c.u64().ok_or(SHORT)?;
            let rate = Rate(c.i64().ok_or(SHORT)?);
            if c.u8().ok_or(SHORT)? != RATE_SCALE.places() {
                return Err("rate scale differs from the engine's");
            }
            let mark_px = Px(c.i64().ok_or(SHORT)?);
            if c.u8().ok_or(SHORT)? != REFERENCE_SCALE.places() {
                return Err("mark price scale differs from the engine's");
            }
            Record::Funding { instrument, settled: FundingSettled { at_ms, rate, mark_px } }
        }
        _ => return Err("unknown record kind"),
    };
    if c.at != p.len() {
        return Err("record longer than its kind");
    }
    Ok((seq, rec))
}

/// A torn tail found (and, by [`JournalWriter::open`], cut off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the torn record starts: the file's new length.
    pub offset: u64,
    /// Bytes after it that were dropped.
    pub bytes: u64,
}

/// What a journal file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// Every whole record, in file order.
    pub records: Vec<Record>,
    /// Length of the whole records (with the header): where the next record goes.
    pub valid_len: u64,
    /// A half-written last record, when there is one.
    pub torn: Option<TornTail>,
    /// Sequence number of the last whole record (0: none).
    pub last_seq: u64,
}

/// Reads a journal's bytes: whole records, and a torn tail if the last one is half written.
///
/// # Errors
/// [`JournalError::BadHeader`]/[`JournalError::Version`] for a foreign file,
/// [`JournalError::Corrupt`] for a bad record with data after it (or a sequence gap), and
/// [`JournalError::Mismatch`] for a record naming an instrument or scale the registry lacks.
pub fn parse(bytes: &[u8], registry: &Registry) -> Result<Contents, JournalError> {
    let mut out = Contents::default();
    if bytes.len() < HEADER_LEN {
        // A header cut short at creation is a torn tail of an empty journal.
        if header().starts_with(bytes) {
            out.torn = (!bytes.is_empty()).then_some(TornTail { offset: 0, bytes: bytes.len() as u64 });
            return Ok(out);
        }
        return Err(JournalError::BadHeader);
    }
    if &bytes[..8] != MAGIC {
        return Err(JournalError::BadHeader);
    }
    if bytes[8] != VERSION {
        return Err(JournalError::Version(bytes[8]));
    }
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let offset = at as u64;
        let torn = Some(TornTail { offset, bytes: rest.len() as u64 });
        if rest.len() < FRAME_LEN {
            out.torn = torn;
            break;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
        if len == 0 && rest.iter().all(|&b| b == 0) {
            // Space the file system allocated but the write never filled.
            out.torn = torn;
            break;
        }
        if len == 0 || len > MAX_PAYLOAD {
            return Err(JournalError::Corrupt { offset, what: "impossible record length" });
        }
        if rest.len() < FRAME_LEN + len {
            out.torn = torn;
            break;
        }
        let payload = &rest[FRAME_LEN..FRAME_LEN + len];
        let at_end = rest.len() == FRAME_LEN + len;
        if crc32fast::hash(payload) != crc {
            if at_end {
                out.torn = torn;
                break;
            }
            return Err(JournalError::Corrupt { offset, what: "checksum mismatch" });
        }
        let (seq, rec) = decode_payload(payload, registry).map_err(|what| {
            if what.contains("instrument") || what.contains("scale") {
                JournalError::Mismatch { offset, what }
            } else {
                JournalError::Corrupt { offset, what }
            }
        })?;
        if seq != out.last_seq + 1 {
            return Err(JournalError::Corrupt { offset, what: "record sequence number out of order" });
        }
        out.last_seq = seq;
        out.records.push(rec);
        at += FRAME_LEN + len;
        out.valid_len = at as u64;
    }
    if out.valid_len == 0 {
        out.valid_len = HEADER_LEN as u64;
    }
    Ok(out)
}

/// Reads the journal at `path` without changing it (a missing file is an empty journal).
///
/// # Errors
/// As [`parse`], plus [`JournalError::Io`].
pub fn read(path: &Path, registry: &Registry) -> Result<Contents, JournalError> {
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes, registry),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contents::default()),
        Err(source) => Err(JournalError::Io { path: path.to_owned(), source }),
    }
}

// ---------------------------------------------------------------------------------------------
// Rebuilding state

/// OMS and positions rebuilt from a journal.
#[derive(Debug)]
pub struct Rebuilt {
    /// Every journaled order in the state the journal leaves it.
    pub oms: Oms,
    /// Positions from every journaled fill the OMS applied.
    pub portfolio: Portfolio,
    /// Highest client order id journaled: new ids start after it.
    pub last_client_id: u64,
    /// Records replayed.
    pub records: u64,
}

/// Replays `records` through the same OMS and portfolio code the core runs, in order: the state
/// a core reaches from them. `strategies` and `oms_capacity` must match the core's.
pub fn rebuild(records: &[Record], registry: &Registry, strategies: usize, oms_capacity: usize) -> Rebuilt {
    let last_client_id = records
        .iter()
        .filter_map(|r| match r {
            Record::New { order, .. } => Some(order.client_id.0),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut oms = Oms::new(oms_capacity, last_client_id);
    let mut portfolio = Portfolio::new(registry.len(), strategies);
    for r in records {
        replay_one(&mut oms, &mut portfolio, registry, r);
    }
    Rebuilt { oms, portfolio, last_client_id, records: records.len() as u64 }
}

/// Applies one record to an OMS and portfolio exactly as the core applies what it stands for.
pub fn replay_one(oms: &mut Oms, portfolio: &mut Portfolio, registry: &Registry, r: &Record) {
    match r {
        Record::New { order, strategy, tag, .. } => oms.on_sent(*order, *strategy, *tag),
        Record::Cancel { client_id, .. } => {
            oms.on_cancel_sent(*client_id);
        }
        Record::Funding { instrument, settled } => {
            portfolio.apply_funding(registry, *instrument, settled);
        }
        Record::Event(ev) | Record::Resolved(ev) => {
            if let Applied::Fill(fill) = oms.apply(ev.client_id, &ev.kind)
                && let Some(o) = oms.get(ev.client_id)
            {
                portfolio.apply_fill(registry, o.strategy, o.order.instrument, o.order.side, &fill);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

/// One order as the venue reports it open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueOrder {
    /// The engine's id, echoed by the venue.
    pub client_id: ClientOrderId,
    /// Its instrument.
    pub instrument: InstrumentId,
    /// Its venue.
    pub venue: VenueId,
    /// Quantity still open.
    pub open_qty: Qty,
}

/// What a venue (or the paper gateway) says the account holds, for comparison with the
/// journal's state after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VenueState {
    /// Orders open at the venue.
    pub open_orders: Vec<VenueOrder>,
    /// Signed positions per instrument, when the venue reports them (`None`: not known, e.g. the
    /// paper gateway keeps none).
    pub positions: Option<Vec<(InstrumentId, Decimal)>>,
}

/// A difference between the journal's state and the venue's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// Open in the journal, unknown to the venue (it ended while the engine was down, or never
    /// arrived). Resolved by ending it locally.
    MissingAtVenue {
        /// The order.
        client_id: ClientOrderId,
    },
    /// Open at the venue, not open in the journal. Resolved by cancelling it at the venue.
    UnknownLocally {
        /// The venue's order.
        order: VenueOrder,
    },
    /// Open in both, with different open quantities: fills the engine has not seen.
    OpenQty {
        /// The order.
        client_id: ClientOrderId,
        /// Open quantity by the journal.
        local: Qty,
        /// Open quantity by the venue.
        venue: Qty,
    },
    /// The account's position differs: needs the venue's fills (or an operator).
    Position {
        /// The instrument.
        instrument: InstrumentId,
        /// Position by the journal.
        local: Decimal,
        /// Position by the venue.
        venue: Decimal,
    },
}

/// Compares the journal's orders and positions with the venue's, so every difference is
/// reported (and, where [`Difference::resolution`] says how, resolved), never ignored. The
/// result is sorted by kind and id, so reports are stable.
pub fn reconcile(oms: &Oms, portfolio: &Portfolio, venue: &VenueState) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut local: Vec<_> = oms.open_orders().copied().collect();
    local.sort_by_key(|o| o.order.client_id);
    for o in &local {
        let local_open = Qty(o.order.qty.0 - o.filled.0);
        match venue.open_orders.iter().find(|v| v.client_id == o.order.client_id) {
            None => out.push(Difference::MissingAtVenue { client_id: o.order.client_id }),
            Some(v) if v.open_qty != local_open => {
                out.push(Difference::OpenQty { client_id: o.order.client_id, local: local_open, venue: v.open_qty });
            }
            Some(_) => {}
        }
    }
    let mut unknown: Vec<_> =
        venue.open_orders.iter().filter(|v| oms.get(v.client_id).is_none_or(|o| o.state.is_final())).copied().collect();
    unknown.sort_by_key(|v| v.client_id);
    out.extend(unknown.into_iter().map(|order| Difference::UnknownLocally { order }));
    if let Some(positions) = &venue.positions {
        for (id, p) in portfolio.positions().iter().enumerate() {
            let id = InstrumentId(id as u32);
            let v = positions.iter().find(|(i, _)| *i == id).map_or(Decimal::ZERO, |(_, q)| *q);
            if v != p.qty {
                out.push(Difference::Position { instrument: id, local: p.qty, venue: v });
            }
        }
    }
    out
}

/// How a difference is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Apply (and journal as [`Record::Resolved`]) this event locally.
    Local(OrderEvent),
    /// Cancel this order at the venue.
    CancelAtVenue(VenueOrder),
    /// Nothing the engine can decide alone: report it and do not trade the instrument blind.
    Operator,
}

impl Difference {
    /// The resolution of this difference given the engine's OMS.
    pub fn resolution(&self, oms: &Oms) -> Resolution {
        match *self {
            Self::MissingAtVenue { client_id } => match oms.get(client_id) {
                Some(o) => Resolution::Local(OrderEvent {
                    client_id,
                    instrument: o.order.instrument,
                    side: o.order.side,
                    exch_ts_ms: 0,
                    recv_ns: 0,
                    kind: OrderEventKind::Expired,
                }),
                None => Resolution::Operator,
            },
            Self::UnknownLocally { order } => Resolution::CancelAtVenue(order),
            Self::OpenQty { .. } | Self::Position { .. } => Resolution::Operator,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// When the writer makes written records durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `fdatasync` after every record: nothing acknowledged is ever lost, slowest.
    Every,
    /// `fdatasync` every `batch_records` records or `batch_ms` ms, whichever comes first.
    #[default]
    Batched,
    /// Never sync: records reach the OS at once (they survive a process crash, not a power cut).
    Off,
}

/// `[journal]` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The journal file; created when missing, appended to (after recovery) when present.
    pub path: PathBuf,
    /// Sync policy.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Records per sync under `batched`.
    #[serde(default = "default_batch_records")]
    pub batch_records: u32,
    /// Longest a written record waits for its sync under `batched`, in ms.
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
    /// Slots of the ring from the core to the writer (a power of two).
    #[serde(default = "default_ring")]
    pub ring: usize,
}

fn default_batch_records() -> u32 {
    64
}
fn default_batch_ms() -> u64 {
    5
}
fn default_ring() -> usize {
    65_536
}

impl JournalConfig {
    /// A config with defaults for everything but the path.
    pub fn new(path: impl Into<PathBuf>, fsync: FsyncPolicy) -> Self {
        Self {
            path: path.into(),
            fsync,
            batch_records: default_batch_records(),
            batch_ms: default_batch_ms(),
            ring: default_ring(),
        }
    }

    /// Checks the numbers.
    ///
    /// # Errors
    /// One line naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.ring < 2 || !self.ring.is_power_of_two() {
            return Err(format!("journal.ring = {}: ring capacity must be a power of two ≥ 2", self.ring));
        }
        if self.batch_records == 0 {
            return Err("journal.batch_records must be at least 1".into());
        }
        Ok(())
    }
}

/// Counters of the writer, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Records written this run.
    pub records: AtomicU64,
    /// Bytes written this run.
    pub bytes: AtomicU64,
    /// Syncs done this run.
    pub fsyncs: AtomicU64,
    /// Set when a write failed: the run must stop, it can no longer journal.
    pub failed: AtomicBool,
}

/// Appends records to a journal file: the writer thread's side.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    registry: Arc<Registry>,
    cfg: JournalConfig,
    seq: u64,
    buf: Vec<u8>,
    unsynced: u32,
    unsynced_since: Option<Instant>,
    stats: Arc<JournalStats>,
}

/// What opening a journal found.
#[derive(Debug)]
pub struct Opened {
    /// The writer, positioned after the last whole record.
    pub writer: JournalWriter,
    /// The records found, for [`rebuild`].
    pub contents: Contents,
}

impl JournalWriter {
    /// Opens (or creates) the journal, reads it, truncates a torn tail, and positions the writer
    /// after the last whole record.
    ///
    /// # Errors
    /// As [`read`]: a corrupt or foreign journal is refused, never overwritten.
    pub fn open(cfg: &JournalConfig, registry: Arc<Registry>) -> Result<Opened, JournalError> {
        let path = cfg.path.clone();
        let io = |source| JournalError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut contents = parse(&bytes, &registry)?;
        if contents.torn.is_some() || bytes.len() < HEADER_LEN {
            let keep = if bytes.len() < HEADER_LEN { 0 } else { contents.valid_len };
            file.set_len(keep).map_err(io)?;
            if keep == 0 {
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                file.write_all(&header()).map_err(io)?;
                contents.valid_len = HEADER_LEN as u64;
            }
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let writer = Self {
            file,
            path,
            registry,
            cfg: cfg.clone(),
            seq: contents.last_seq,
            buf: Vec::with_capacity(64 * 1024),
            unsynced: 0,
            unsynced_since: None,
            stats: Arc::new(JournalStats::default()),
        };
        Ok(Opened { writer, contents })
    }

    /// The counters (shared; they keep counting while the writer runs).
    pub fn stats(&self) -> Arc<JournalStats> {
        Arc::clone(&self.stats)
    }

    /// Encodes `rec` into the write buffer (written by the next [`JournalWriter::flush`]).
    pub fn append(&mut self, rec: &Record) {
        self.seq += 1;
        let before = self.buf.len();
        encode(rec, self.seq, &self.registry, &mut self.buf);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add((self.buf.len() - before) as u64, Ordering::Relaxed);
        self.unsynced += 1;
        self.unsynced_since.get_or_insert_with(Instant::now);
    }

    /// Writes the buffer to the file and syncs as the policy says is due.
    ///
    /// # Errors
    /// [`JournalError::Io`] when the write or the sync fails.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        let io = |source| JournalError::Io { path: self.path.clone(), source };
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(io)?;
            self.buf.clear();
        }
        let due = match self.cfg.fsync {
            FsyncPolicy::Off => false,
            FsyncPolicy::Every => self.unsynced > 0,
            FsyncPolicy::Batched => {
                self.unsynced >= self.cfg.batch_records
                    || self.unsynced_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(self.cfg.batch_ms))
            }
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(|source| JournalError::Io { path: self.path.clone(), source })?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.unsynced = 0;
        self.unsynced_since = None;
        Ok(())
    }

    /// The writer thread's loop: drains `ring` until `stop` is set and the ring is empty, then
    /// writes and (unless the policy is `off`) syncs everything. The core pushes losslessly, so
    /// after a write error the loop keeps draining (sets [`JournalStats::failed`]) rather than
    /// stall the core; the run must stop on that flag.
    ///
    /// # Errors
    /// The first write error.
    pub fn run(mut self, ring: &Ring<Record>, stop: &AtomicBool) -> Result<(), JournalError> {
        let mut first_error = None;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            let mut n = 0;
            while let Some(rec) = ring.pop() {
                if first_error.is_none() {
                    self.append(&rec);
                    // Under `every`, each record is written and synced on its own.
                    if self.cfg.fsync == FsyncPolicy::Every
                        && let Err(e) = self.flush()
                    {
                        self.stats.failed.store(true, Ordering::Release);
                        first_error = Some(e);
                    }
                }
                n += 1;
                if n == 4_096 {
                    break;
                }
            }
            if first_error.is_none()
                && let Err(e) = self.flush()
            {
                self.stats.failed.store(true, Ordering::Release);
                first_error = Some(e);
            }
            if stopping && ring.is_empty() {
                break;
            }
            if n == 0 {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if self.cfg.fsync != FsyncPolicy::Off && self.unsynced > 0 {
            self.sync()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_and_version() {
        assert_eq!(&header(), b"XBJOURNL\x01\0\0\0\0\0\0\0");
    }
}
