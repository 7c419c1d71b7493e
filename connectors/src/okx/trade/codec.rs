//! OKX v5 private websocket, wire side: order and cancel frames written into caller-owned
//! buffers, and the decoder that turns `login`/`subscribe` events, `order`/`cancel-order`
//! answers and `orders` channel pushes into the engine's [`OrderEvent`]s.
//!
//! ```text
//! out  {"id":"o42","op":"order","args":[{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy",
//!        "ordType":"ioc","px":"100.5","sz":"2","clOrdId":"xb42","reduceOnly":true}]}
//!      (tdMode "cash" for spot; reduceOnly only when set; ordType "limit" for GTC)
//! out  {"id":"c42","op":"cancel-order","args":[{"instId":"BTC-USDT-SWAP","clOrdId":"xb42"}]}
//! in   {"id":"o42","op":"order","code":"0","msg":"","data":[{"ordId":"..","clOrdId":"xb42",
//!        "tag":"","ts":"..","sCode":"0","sMsg":""}],"inTime":"<µs>","outTime":"<µs>"}
//!      -> Accepted (once per order); sCode != 0 -> Rejected(reason from sCode); a format error
//!         (code != 0, empty data) -> Rejected(reason from code)
//! in   {"arg":{"channel":"orders",..},"data":[{instId, clOrdId, side, ordType, state, sz,
//!        accFillSz, fillPx, fillSz, tradeId, fillFee, execType, fillTime, uTime, ..}]}
//!      -> Accepted when not yet acknowledged; Filled when tradeId is set and fillSz > 0 (fee =
//!         -fillFee, OKX writes charges negative; a tradeId seen before is dropped and counted);
//!         state canceled -> Expired for ioc/fok (the unfilled rest), else Cancelled
//! in   {"event":"login","code":"0",..} / {"event":"subscribe","arg":{"channel":"orders",..}}
//!      / {"event":"error","code":"60009","msg":"Login failed.",..} / pong
//! ```
//!
//! Request ids are `o<client id>` for orders and `c<client id>` for cancels, so every answer
//! names its order even when the venue returns no data. Nothing here allocates per frame once
//! the order table and the trade-id ring have reached their working size.

use crossbar_engine::event::{
    ClientOrderId, Fill, NewOrder, OrderEvent, OrderEventKind, RejectReason, Side, TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty, parse_mantissa};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind};
use rust_decimal::Decimal;

use crate::feed::DecodeError;
use crate::json::{Members, Value};
use crate::order::{SessionInstrument, SessionStats, parse_client_id, write_client_id, write_fixed, write_u64};

/// The subscribe request for the `orders` channel of every instrument type.
pub const ORDERS_SUBSCRIBE: &str = r#"{"op":"subscribe","args":[{"channel":"orders","instType":"ANY"}]}"#;

/// How many recent trade ids are remembered to drop repeated fills.
const SEEN_TRADES: usize = 1024;

/// The trade mode OKX wants for an instrument: `cash` for spot, `cross` margin otherwise.
pub fn td_mode(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Spot => "cash",
        _ => "cross",
    }
}

/// Writes the `order` request for `order` on `inst` into `out` (cleared first).
pub fn encode_order(out: &mut Vec<u8>, inst: &SessionInstrument, order: &NewOrder) {
    out.clear();
    out.extend_from_slice(b"{\"id\":\"o");
    write_u64(out, order.client_id.0);
    out.extend_from_slice(b"\",\"op\":\"order\",\"args\":[{\"instId\":\"");
    out.extend_from_slice(inst.symbol.as_bytes());
    out.extend_from_slice(b"\",\"tdMode\":\"");
    out.extend_from_slice(td_mode(inst.kind).as_bytes());
    out.extend_from_slice(match order.side {
        Side::Buy => b"\",\"side\":\"buy",
        Side::Sell => b"\",\"side\":\"sell",
    });
    out.extend_from_slice(match order.tif {
        TimeInForce::Ioc => b"\",\"ordType\":\"ioc" as &[u8],
        TimeInForce::Gtc => b"\",\"ordType\":\"limit",
    });
    out.extend_from_slice(b"\",\"px\":\"");
    write_fixed(out, order.px.0, inst.price_scale);
    out.extend_from_slice(b"\",\"sz\":\"");
    write_fixed(out, order.qty.0, inst.qty_scale);
    out.extend_from_slice(b"\",\"clOrdId\":\"");
    write_client_id(out, order.client_id);
    out.push(b'"');
    if order.reduce_only {
        out.extend_from_slice(b",\"reduceOnly\":true");
    }
    out.extend_from_slice(b"}]}");
}

/// Writes the `cancel-order` request for `client_id` on `inst` into `out` (cleared first).
pub fn encode_cancel(out: &mut Vec<u8>, inst: &SessionInstrument, client_id: ClientOrderId) {
    out.clear();
    out.extend_from_slice(b"{\"id\":\"c");
    write_u64(out, client_id.0);
    out.extend_from_slice(b"\",\"op\":\"cancel-order\",\"args\":[{\"instId\":\"");
    out.extend_from_slice(inst.symbol.as_bytes());
    out.extend_from_slice(b"\",\"clOrdId\":\"");
    write_client_id(out, client_id);
    out.extend_from_slice(b"\"}]}");
}

/// What a private frame meant for the connection, beyond the order events it produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Nothing for the connection (order answers and pushes).
    None,
    /// The text `pong`.
    Pong,
    /// `login` succeeded.
    LoggedIn,
    /// The `orders` subscription is acknowledged.
    Subscribed,
    /// An `error` event (a failed login, a refused subscription) with OKX's code.
    Error(u64),
}

/// An order the session sent and has not seen end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracked {
    client_id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    ioc: bool,
    acked: bool,
}

/// The order-state half of an OKX session: which orders are open, which fills were seen, and
/// the decoding of every private frame into [`OrderEvent`]s and [`SessionStats`] counts.
#[derive(Debug)]
pub struct PrivateDecoder {
    instruments: Vec<SessionInstrument>,
    orders: Vec<Tracked>,
    seen: Vec<u64>,
    seen_next: usize,
}

/// The members of one `orders` push row this decoder reads.
#[derive(Default)]
struct Row<'a> {
    inst_id: &'a [u8],
    cl_ord_id: &'a [u8],
    side: &'a [u8],
    ord_type: &'a [u8],
    state: &'a [u8],
    sz: &'a [u8],
    acc_fill_sz: &'a [u8],
    fill_px: &'a [u8],
    fill_sz: &'a [u8],
    trade_id: &'a [u8],
    fill_fee: &'a [u8],
    exec_type: &'a [u8],
    fill_time: &'a [u8],
    u_time: &'a [u8],
}

/// The members of an `order`/`cancel-order` answer this decoder reads.
#[derive(Default)]
struct Ack<'a> {
    id: &'a [u8],
    op: &'a [u8],
    code: &'a [u8],
    s_code: &'a [u8],
    ts: &'a [u8],
    in_time: &'a [u8],
    out_time: &'a [u8],
}

fn str_of<'a>(v: Value<'a>, field: &'static str) -> Result<&'a [u8], DecodeError> {
    v.str(field)
}

fn int(s: &[u8], field: &'static str) -> Result<u64, DecodeError> {
    crate::json::parse_u64(s, field)
}

fn opt_int(s: &[u8]) -> u64 {
    crate::json::parse_u64(s, "").unwrap_or(0)
}

impl PrivateDecoder {
    /// A decoder for the session's instruments.
    pub fn new(instruments: Vec<SessionInstrument>) -> Self {
        Self { instruments, orders: Vec::with_capacity(1024), seen: Vec::with_capacity(SEEN_TRADES), seen_next: 0 }
    }

    /// The instrument of `id`, when this session trades it.
    pub fn instrument(&self, id: InstrumentId) -> Option<&SessionInstrument> {
        self.instruments.iter().find(|i| i.id == id)
    }

    fn by_symbol(&self, symbol: &[u8]) -> Option<&SessionInstrument> {
        self.instruments.iter().find(|i| i.symbol.as_bytes() == symbol)
    }

    /// Starts following a new order the session is about to write.
    pub fn track(&mut self, order: &NewOrder) {
        if self.orders.iter().any(|o| o.client_id == order.client_id) {
            return;
        }
        self.orders.push(Tracked {
            client_id: order.client_id,
            instrument: order.instrument,
            side: order.side,
            ioc: order.tif == TimeInForce::Ioc,
            acked: false,
        });
    }

    /// The orders followed now (sent, not seen end): what a reconnect cancels.
    pub fn open_orders(&self) -> impl Iterator<Item = (ClientOrderId, InstrumentId)> + '_ {
        self.orders.iter().map(|o| (o.client_id, o.instrument))
    }

    fn untrack(&mut self, client_id: ClientOrderId) {
        if let Some(i) = self.orders.iter().position(|o| o.client_id == client_id) {
            self.orders.swap_remove(i);
        }
    }

    /// True when `trade_id` was seen before; remembers it otherwise.
    fn seen_before(&mut self, trade_id: u64) -> bool {
        if self.seen.contains(&trade_id) {
            return true;
        }
        if self.seen.len() < SEEN_TRADES {
            self.seen.push(trade_id);
        } else {
            self.seen[self.seen_next] = trade_id;
            self.seen_next = (self.seen_next + 1) % SEEN_TRADES;
        }
        false
    }

    /// Decodes one private frame: order events go to `out`, counts to `stats`. `wall_ms` is
    /// the local wall clock (the venue clock offset is estimated from answers' `inTime` and
    /// `outTime`). A frame that cannot be understood counts as malformed and produces nothing.
    pub fn decode(
        &mut self,
        frame: &[u8],
        recv_ns: u64,
        wall_ms: i64,
        stats: &mut SessionStats,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Control {
        if frame == b"pong" {
            return Control::Pong;
        }
        match self.decode_json(frame, recv_ns, wall_ms, stats, out) {
            Ok(c) => c,
            Err(_) => {
                stats.malformed += 1;
                Control::None
            }
        }
    }

    fn decode_json(
        &mut self,
        frame: &[u8],
        recv_ns: u64,
        wall_ms: i64,
        stats: &mut SessionStats,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<Control, DecodeError> {
        crate::json::validate(frame)?;
        let mut event: &[u8] = b"";
        let mut code: &[u8] = b"";
        let mut channel: &[u8] = b"";
        let mut data: Option<&[u8]> = None;
        let mut ack = Ack::default();
        let mut m = Members::new(frame);
        while let Some(key) = m.next_key()? {
            let v = m.value()?;
            match key {
                b"event" => event = str_of(v, "event")?,
                b"code" => code = str_of(v, "code")?,
                b"id" => ack.id = str_of(v, "id")?,
                b"op" => ack.op = str_of(v, "op")?,
                b"inTime" => ack.in_time = str_of(v, "inTime")?,
                b"outTime" => ack.out_time = str_of(v, "outTime")?,
                b"arg" => {
                    if let Value::Object(o) = v {
                        for kv in Members::new(o) {
                            let (k, v) = kv?;
                            if k == b"channel" {
                                channel = str_of(v, "channel")?;
                            }
                        }
                    }
                }
                b"data" => match v {
                    Value::Array(a) => data = Some(a),
                    _ => return Err(DecodeError::WrongType("data")),
                },
                _ => {}
            }
        }
        ack.code = code;
        if !event.is_empty() {
            return Ok(match event {
                b"login" if code == b"0" => Control::LoggedIn,
                b"login" => Control::Error(opt_int(code)),
                b"subscribe" if channel == b"orders" => Control::Subscribed,
                b"error" => Control::Error(int(code, "code")?),
                _ => {
                    stats.unknown += 1;
                    Control::None
                }
            });
        }
        if !ack.op.is_empty() {
            let data = data.ok_or(DecodeError::MissingField("data"))?;
            self.on_ack(ack, data, recv_ns, wall_ms, stats, out)?;
            return Ok(Control::None);
        }
        if channel == b"orders" {
            let data = data.ok_or(DecodeError::MissingField("data"))?;
            let mut rows = crate::json::Elements::new(data);
            while let Some(row) = rows.next_value()? {
                let Value::Object(row) = row else { return Err(DecodeError::WrongType("data")) };
                self.on_row(row, recv_ns, stats, out)?;
            }
            return Ok(Control::None);
        }
        stats.unknown += 1;
        Ok(Control::None)
    }

    fn on_ack<'a>(
        &mut self,
        mut ack: Ack<'a>,
        data: &'a [u8],
        recv_ns: u64,
        wall_ms: i64,
        stats: &mut SessionStats,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        let mut rows = crate::json::Elements::new(data);
        if let Some(Value::Object(row)) = rows.next_value()? {
            for kv in Members::new(row) {
                let (k, v) = kv?;
                match k {
                    b"sCode" => ack.s_code = str_of(v, "sCode")?,
                    b"ts" => ack.ts = str_of(v, "ts")?,
                    _ => {}
                }
            }
        }
        if let (Ok(i), Ok(o)) = (int(ack.in_time, "inTime"), int(ack.out_time, "outTime")) {
            let venue_ms = ((u128::from(i) + u128::from(o)) / 2000) as i64;
            stats.clock_offset_ms = venue_ms - wall_ms;
        }
        let cancel = match ack.op {
            b"order" => false,
            b"cancel-order" => true,
            _ => {
                stats.unknown += 1;
                return Ok(());
            }
        };
        let digits = ack.id.get(1..).ok_or(DecodeError::MissingField("id"))?;
        let client_id = ClientOrderId(int(digits, "id")?);
        // The order's status code, or the request's when the venue refused its format.
        let failure = if ack.code != b"0" || (!ack.s_code.is_empty() && ack.s_code != b"0") {
            Some(if ack.s_code.is_empty() || ack.s_code == b"0" { opt_int(ack.code) } else { opt_int(ack.s_code) })
        } else {
            None
        };
        let tracked = self.orders.iter_mut().find(|o| o.client_id == client_id);
        let exch_ts_ms = opt_int(ack.ts);
        match (failure, tracked) {
            (None, Some(t)) if !cancel && !t.acked => {
                t.acked = true;
                stats.acks += 1;
                let t = *t;
                out(event(t.client_id, t.instrument, t.side, exch_ts_ms, recv_ns, OrderEventKind::Accepted));
            }
            (None, _) => {}
            (Some(code), tracked) => {
                stats.rejects += 1;
                let reason = reject_reason(code);
                if reason == RejectReason::RateLimited {
                    stats.rate_limited += 1;
                }
                let Some(t) = tracked.copied() else { return Ok(()) };
                if !cancel {
                    self.untrack(client_id);
                    out(event(
                        t.client_id,
                        t.instrument,
                        t.side,
                        exch_ts_ms,
                        recv_ns,
                        OrderEventKind::Rejected(reason),
                    ));
                } else if code == CANCEL_UNKNOWN && !t.acked {
                    // A cancel sent after a reconnect for an order whose fate was unknown: the
                    // venue never took it.
                    self.untrack(client_id);
                    let kind = OrderEventKind::Rejected(RejectReason::Transport);
                    out(event(t.client_id, t.instrument, t.side, exch_ts_ms, recv_ns, kind));
                }
            }
        }
        Ok(())
    }

    fn on_row(
        &mut self,
        obj: &[u8],
        recv_ns: u64,
        stats: &mut SessionStats,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        let mut r = Row::default();
        for kv in Members::new(obj) {
            let (k, v) = kv?;
            let slot = match k {
                b"instId" => &mut r.inst_id,
                b"clOrdId" => &mut r.cl_ord_id,
                b"side" => &mut r.side,
                b"ordType" => &mut r.ord_type,
                b"state" => &mut r.state,
                b"sz" => &mut r.sz,
                b"accFillSz" => &mut r.acc_fill_sz,
                b"fillPx" => &mut r.fill_px,
                b"fillSz" => &mut r.fill_sz,
                b"tradeId" => &mut r.trade_id,
                b"fillFee" => &mut r.fill_fee,
                b"execType" => &mut r.exec_type,
                b"fillTime" => &mut r.fill_time,
                b"uTime" => &mut r.u_time,
                _ => continue,
            };
            *slot = str_of(v, "orders")?;
        }
        let Some(client_id) = parse_client_id(r.cl_ord_id) else {
            // Not crossbar's order (placed by hand or another system on the account).
            stats.unknown += 1;
            return Ok(());
        };
        let Some(inst) = self.by_symbol(r.inst_id) else {
            stats.unknown += 1;
            return Ok(());
        };
        let (instrument, price_scale, qty_scale) = (inst.id, inst.price_scale, inst.qty_scale);
        let side = match r.side {
            b"buy" => Side::Buy,
            b"sell" => Side::Sell,
            _ => return Err(DecodeError::WrongType("side")),
        };
        let ended = match r.state {
            b"live" | b"partially_filled" => false,
            b"filled" | b"canceled" | b"mmp_canceled" => true,
            _ => return Err(DecodeError::WrongType("state")),
        };
        let u_time = opt_int(r.u_time);
        // Parse the fill before acting, so a malformed row leaves no half of its events behind.
        let fill = if r.trade_id.is_empty() {
            None
        } else {
            let qty = parse_mantissa(r.fill_sz, qty_scale, false)
                .map_err(|source| DecodeError::BadNumber { field: "fillSz", source })?;
            if qty == 0 {
                None
            } else {
                let px = parse_mantissa(r.fill_px, price_scale, false)
                    .map_err(|source| DecodeError::BadNumber { field: "fillPx", source })?;
                let sz = parse_mantissa(r.sz, qty_scale, false).unwrap_or(0);
                let acc = parse_mantissa(r.acc_fill_sz, qty_scale, false).unwrap_or(0);
                let fee = if r.fill_fee.is_empty() {
                    Decimal::ZERO
                } else {
                    let text = std::str::from_utf8(r.fill_fee).map_err(|_| DecodeError::WrongType("fillFee"))?;
                    -Decimal::from_str_exact(text).map_err(|_| DecodeError::WrongType("fillFee"))?
                };
                let trade_id = int(r.trade_id, "tradeId")?;
                let ts = if r.fill_time.is_empty() { u_time } else { opt_int(r.fill_time) };
                let leaves = if ended { 0 } else { (sz - acc).max(0) };
                Some((
                    Fill {
                        px: Px(px),
                        qty: Qty(qty),
                        leaves_qty: Qty(leaves),
                        fee,
                        taker: r.exec_type != b"M",
                        trade_id,
                    },
                    ts,
                ))
            }
        };
        let tracked = self.orders.iter_mut().find(|o| o.client_id == client_id);
        let ioc =
            tracked.as_ref().is_some_and(|t| t.ioc) || matches!(r.ord_type, b"ioc" | b"fok" | b"optimal_limit_ioc");
        let accept = match tracked {
            Some(t) if !t.acked => {
                t.acked = true;
                true
            }
            Some(_) => false,
            None => r.state == b"live",
        };
        if accept {
            stats.acks += 1;
            out(event(client_id, instrument, side, u_time, recv_ns, OrderEventKind::Accepted));
        }
        if let Some((fill, ts)) = fill {
            if self.seen_before(fill.trade_id) {
                stats.duplicate_fills += 1;
            } else {
                stats.fills += 1;
                out(event(client_id, instrument, side, ts, recv_ns, OrderEventKind::Filled(fill)));
            }
        }
        if ended {
            self.untrack(client_id);
            if r.state != b"filled" {
                let kind = if ioc { OrderEventKind::Expired } else { OrderEventKind::Cancelled };
                out(event(client_id, instrument, side, u_time, recv_ns, kind));
            }
        }
        Ok(())
    }
}

/// OKX's code for a cancel of an order that is filled, cancelled or unknown.
pub const CANCEL_UNKNOWN: u64 = 51400;

/// The engine's reason for an OKX order status code.
pub fn reject_reason(code: u64) -> RejectReason {
    match code {
        51008 | 51127 | 51131 => RejectReason::InsufficientBalance,
        50011 | 50013 | 50061 | 60014 => RejectReason::RateLimited,
        51021 | 51022 | 51027 | 51028 | 51029 | 51030 => RejectReason::MarketClosed,
        51000..=51007 | 51016 | 51020 | 51121 | 51169 | 51137 | 51138 | 60013 => RejectReason::InvalidOrder,
        _ => RejectReason::Other,
    }
}

fn event(
    client_id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    exch_ts_ms: u64,
    recv_ns: u64,
    kind: OrderEventKind,
) -> OrderEvent {
    OrderEvent { client_id, instrument, side, exch_ts_ms, recv_ns, kind }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The ISO-8601 UTC text OKX's REST API wants in `OK-ACCESS-TIMESTAMP`
/// (`2020-12-08T09:08:57.715Z`) for Unix milliseconds `ms`.
pub fn iso8601_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Parses [`iso8601_ms`]'s format (`YYYY-MM-DDTHH:MM:SS.sssZ`, milliseconds optional) back
/// to Unix milliseconds; `None` for anything else.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d, h, mi, se) = (num(0, 4)?, num(5, 2)?, num(8, 2)?, num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let ms = match b.len() {
        20 if sep(19, b'Z') => 0,
        24 if sep(19, b'.') && sep(23, b'Z') => num(20, 3)?,
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400_000 + h * 3_600_000 + mi * 60_000 + se * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps_round_trip() {
        assert_eq!(iso8601_ms(1_607_418_537_715), "2020-12-08T09:08:57.715Z");
        assert_eq!(parse_iso8601_ms("2020-12-08T09:08:57.715Z"), Some(1_607_418_537_715));
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_iso8601_ms("2024-02-29T23:59:59Z"), Some(1_709_251_199_000));
        for bad in ["", "2020-12-08 09:08:57.715Z", "2020-13-08T09:08:57.715Z", "1607418537715"] {
            assert_eq!(parse_iso8601_ms(bad), None, "{bad}");
        }
    }
}
