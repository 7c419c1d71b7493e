//! The journal's binary encoding (see the format in the module above) and reading a file back,
//! with torn-tail detection.

use std::path::Path;

use rust_decimal::Decimal;

use super::{
    FRAME_LEN, HEADER_LEN, JournalError, KIND_CANCEL, KIND_EVENT, KIND_FUNDING, KIND_NEW, KIND_RESOLVED, MAGIC,
    MAX_PAYLOAD, Record, VERSION,
};
use crate::book::FundingSettled;
use crate::event::{
    ClientOrderId, Fill, NewOrder, OrderEvent, OrderEventKind, OrderStamps, RejectReason, Side, TimeInForce,
};
use crate::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate};
use crate::instrument::{InstrumentId, Registry, VenueId};
use crate::strategy::StrategyId;

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

/// A torn tail found (and, by [`JournalWriter::open`](super::JournalWriter::open), cut off).
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
