//! Binance wire formats for the simulator: stream names, event payloads, REST depth bodies and
//! the websocket control messages, exactly as Binance spot and USD-M futures print them.
//!
//! Everything is written from integer mantissas: no price ever passes through `f64` here.
//! Spot pads prices and quantities to 8 decimals (`"25.35190000"`), USD-M uses the instrument's
//! own precision (`"7403.90"`, `"0.002"`); ids and times are JSON integers, `m` a boolean.

use std::fmt::Write as _;

use crossbar_engine::instrument::Instrument;
use serde_json::Value;

use super::book::BookSnapshot;
use super::model::SimEvent;

/// Which Binance API a venue speaks, from its name prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `binance-spot…`: spot streams and `/api/v3/depth`.
    Spot,
    /// `binance-usdm…`: USD-M futures streams and `/fapi/v1/depth`.
    Usdm,
}

impl Protocol {
    /// The protocol of a venue name, if the simulator speaks it.
    pub(crate) fn of_venue(name: &str) -> Option<Self> {
        if name.starts_with("binance-spot") {
            Some(Self::Spot)
        } else if name.starts_with("binance-usdm") {
            Some(Self::Usdm)
        } else {
            None
        }
    }

    /// Path of the REST depth snapshot, after the venue prefix.
    pub(crate) fn depth_path(self) -> &'static str {
        match self {
            Self::Spot => "/api/v3/depth",
            Self::Usdm => "/fapi/v1/depth",
        }
    }

    /// Largest `limit` the depth endpoint accepts.
    pub(crate) fn max_depth_limit(self) -> usize {
        match self {
            Self::Spot => 5_000,
            Self::Usdm => 1_000,
        }
    }
}

/// The streams the simulator publishes per instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum StreamKind {
    /// `<sym>@bookTicker`.
    BookTicker,
    /// `<sym>@depth@100ms`.
    Depth,
    /// `<sym>@aggTrade`.
    AggTrade,
    /// `<sym>@markPrice@1s` (USD-M only).
    MarkPrice,
}

impl StreamKind {
    const ALL: [Self; 4] = [Self::BookTicker, Self::Depth, Self::AggTrade, Self::MarkPrice];

    /// The stream name after `<sym>@`.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Self::BookTicker => "bookTicker",
            Self::Depth => "depth@100ms",
            Self::AggTrade => "aggTrade",
            Self::MarkPrice => "markPrice@1s",
        }
    }

    /// The stream kind a suffix names on a protocol.
    pub(crate) fn of_suffix(suffix: &str, protocol: Protocol) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.suffix() == suffix && (*k != Self::MarkPrice || protocol == Protocol::Usdm))
    }

    /// The stream an event is published on; `None` for events no public stream carries.
    pub(crate) fn of_event(ev: &SimEvent) -> Option<Self> {
        match ev {
            SimEvent::BookTicker { .. } => Some(Self::BookTicker),
            SimEvent::Depth { .. } => Some(Self::Depth),
            SimEvent::Trade { .. } => Some(Self::AggTrade),
            SimEvent::Mark { .. } => Some(Self::MarkPrice),
            SimEvent::FundingSettled { .. } => None,
        }
    }
}

/// How one instrument looks on the wire: symbol, stream names and decimal places.
#[derive(Clone, Debug)]
pub(crate) struct WireSymbol {
    /// The venue symbol (`BTCUSDT`).
    pub(crate) symbol: String,
    /// Its lowercase form, as stream names use it.
    pub(crate) lower: String,
    /// The venue's protocol.
    pub(crate) protocol: Protocol,
    price_scale: u8,
    qty_scale: u8,
    price_places: u8,
    qty_places: u8,
}

impl WireSymbol {
    /// The wire description of an instrument on a venue of `protocol`.
    pub(crate) fn new(inst: &Instrument, protocol: Protocol) -> Self {
        let (price_scale, qty_scale) = (inst.price_scale.places(), inst.qty_scale.places());
        let places = |scale: u8| match protocol {
            Protocol::Spot => scale.max(8),
            Protocol::Usdm => scale,
        };
        Self {
            symbol: inst.symbol.clone(),
            lower: inst.symbol.to_ascii_lowercase(),
            protocol,
            price_scale,
            qty_scale,
            price_places: places(price_scale),
            qty_places: places(qty_scale),
        }
    }

    /// The full stream name (`btcusdt@bookTicker`).
    pub(crate) fn stream_name(&self, kind: StreamKind) -> String {
        format!("{}@{}", self.lower, kind.suffix())
    }

    fn px(&self, out: &mut String, m: i64) {
        write_fixed(out, m, self.price_scale, self.price_places);
    }

    fn qty(&self, out: &mut String, m: i64) {
        write_fixed(out, m, self.qty_scale, self.qty_places);
    }

    /// Writes `"px","qty"` pairs as a JSON array of arrays.
    fn levels(&self, out: &mut String, levels: impl Iterator<Item = (i64, i64)>) {
        out.push('[');
        for (i, (px, qty)) in levels.enumerate() {
            out.push_str(if i == 0 { "[\"" } else { ",[\"" });
            self.px(out, px);
            out.push_str("\",\"");
            self.qty(out, qty);
            out.push_str("\"]");
        }
        out.push(']');
    }
}

/// Writes `mantissa × 10^-scale` as a plain decimal with exactly `places` decimals
/// (`places >= scale`: the extra ones are zeros).
pub(crate) fn write_fixed(out: &mut String, mantissa: i64, scale: u8, places: u8) {
    debug_assert!(places >= scale);
    let unit = 10u64.pow(u32::from(scale));
    let abs = mantissa.unsigned_abs();
    let sign = if mantissa < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{}", abs / unit);
    if places > 0 {
        out.push('.');
        if scale > 0 {
            let width = usize::from(scale);
            let _ = write!(out, "{:0width$}", abs % unit);
        }
        out.extend(std::iter::repeat_n('0', usize::from(places - scale)));
    }
}

/// Writes an event's `data` payload into `out`; returns the stream it belongs to, or `None`
/// (and writes nothing) for events with no public stream.
pub(crate) fn write_event(out: &mut String, ev: &SimEvent, w: &WireSymbol) -> Option<StreamKind> {
    let usdm = w.protocol == Protocol::Usdm;
    let sym = &w.symbol;
    match ev {
        SimEvent::BookTicker { update_id, time_ms, bid, ask, .. } => {
            if usdm {
                let _ =
                    write!(out, r#"{{"e":"bookTicker","u":{update_id},"E":{time_ms},"T":{time_ms},"s":"{sym}","b":""#);
            } else {
                let _ = write!(out, r#"{{"u":{update_id},"s":"{sym}","b":""#);
            }
            w.px(out, bid.px);
            out.push_str(r#"","B":""#);
            w.qty(out, bid.qty);
            out.push_str(r#"","a":""#);
            w.px(out, ask.px);
            out.push_str(r#"","A":""#);
            w.qty(out, ask.qty);
            out.push_str("\"}");
        }
        SimEvent::Depth { time_ms, diff, .. } => {
            let (first, last) = (diff.first_update_id, diff.last_update_id);
            if usdm {
                let pu = diff.prev_last_update_id;
                let _ = write!(
                    out,
                    r#"{{"e":"depthUpdate","E":{time_ms},"T":{time_ms},"s":"{sym}","U":{first},"u":{last},"pu":{pu},"b":"#
                );
            } else {
                let _ = write!(out, r#"{{"e":"depthUpdate","E":{time_ms},"s":"{sym}","U":{first},"u":{last},"b":"#);
            }
            w.levels(out, diff.bids.iter().copied());
            out.push_str(r#","a":"#);
            w.levels(out, diff.asks.iter().copied());
            out.push('}');
        }
        SimEvent::Trade { time_ms, agg_id, px, qty, first_trade_id, last_trade_id, buyer_maker, .. } => {
            let _ = write!(out, r#"{{"e":"aggTrade","E":{time_ms},"s":"{sym}","a":{agg_id},"p":""#);
            w.px(out, *px);
            out.push_str(r#"","q":""#);
            w.qty(out, *qty);
            if usdm {
                out.push_str(r#"","nq":""#);
                w.qty(out, *qty);
            }
            let _ = write!(out, r#"","f":{first_trade_id},"l":{last_trade_id},"T":{time_ms},"m":{buyer_maker}"#);
            out.push_str(if usdm { "}" } else { r#","M":true}"# });
        }
        SimEvent::Mark { time_ms, mark_px, index_e8, funding_rate_e8, next_funding_ms, .. } => {
            let places = w.price_scale.max(8);
            let _ = write!(out, r#"{{"e":"markPriceUpdate","E":{time_ms},"s":"{sym}","p":""#);
            write_fixed(out, *mark_px, w.price_scale, places);
            out.push_str(r#"","i":""#);
            write_fixed(out, *index_e8, 8, 8);
            out.push_str(r#"","P":""#);
            write_fixed(out, *index_e8, 8, 8);
            out.push_str(r#"","r":""#);
            write_fixed(out, *funding_rate_e8, 8, 8);
            let _ = write!(out, r#"","T":{next_funding_ms}}}"#);
        }
        SimEvent::FundingSettled { .. } => return None,
    }
    StreamKind::of_event(ev)
}

/// The body of a REST depth snapshot (`GET /api/v3/depth` or `/fapi/v1/depth`).
pub(crate) fn depth_snapshot_body(w: &WireSymbol, snap: &BookSnapshot, time_ms: i64) -> String {
    let mut out = String::with_capacity(64 + 48 * (snap.bids.len() + snap.asks.len()));
    let _ = write!(out, r#"{{"lastUpdateId":{}"#, snap.last_update_id);
    if w.protocol == Protocol::Usdm {
        let _ = write!(out, r#","E":{time_ms},"T":{time_ms}"#);
    }
    out.push_str(r#","bids":"#);
    w.levels(&mut out, snap.bids.iter().map(|(p, q)| (p.0, q.0)));
    out.push_str(r#","asks":"#);
    w.levels(&mut out, snap.asks.iter().map(|(p, q)| (p.0, q.0)));
    out.push('}');
    out
}

/// A combined-stream frame: `{"stream":"<name>","data":<data>}`.
pub(crate) fn combined(stream: &str, data: &str) -> String {
    let mut out = String::with_capacity(stream.len() + data.len() + 22);
    let _ = write!(out, r#"{{"stream":"{stream}","data":{data}}}"#);
    out
}

/// The `serverShutdown` event Binance spot sends before closing a connection.
pub(crate) fn server_shutdown(time_ms: i64) -> String {
    format!(r#"{{"e":"serverShutdown","E":{time_ms}}}"#)
}

/// A control request a client sent on an open websocket.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Control {
    /// `SUBSCRIBE` these stream names.
    Subscribe(Vec<String>),
    /// `UNSUBSCRIBE` these stream names.
    Unsubscribe(Vec<String>),
    /// `LIST_SUBSCRIPTIONS`.
    List,
}

/// A refused control request: Binance's error code and message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ControlError {
    /// 0 unknown property, 1 invalid value type, 2 invalid request, 3 invalid JSON.
    pub(crate) code: i32,
    /// Human-readable reason.
    pub(crate) msg: String,
}

/// Parses a control request; the request `id` is returned in every case so the reply can
/// echo it (`null` when absent or unreadable).
pub(crate) fn parse_control(text: &str) -> (Value, Result<Control, ControlError>) {
    let err = |code, msg: &str| Err(ControlError { code, msg: msg.to_owned() });
    let Ok(Value::Object(req)) = serde_json::from_str::<Value>(text) else {
        return (Value::Null, err(3, "Invalid JSON: expected an object"));
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::Number(_) | Value::String(_)) {
        return (Value::Null, err(1, "Invalid value type: expected an integer or string id"));
    }
    if let Some(key) = req.keys().find(|k| !matches!(k.as_str(), "method" | "params" | "id")) {
        return (id, err(0, &format!("Unknown property '{key}'")));
    }
    let streams = || -> Result<Vec<String>, ControlError> {
        let Some(Value::Array(params)) = req.get("params") else {
            return Err(ControlError { code: 1, msg: "Invalid value type: expected an array of streams".into() });
        };
        params
            .iter()
            .map(|p| p.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(ControlError { code: 1, msg: "Invalid value type: stream names are strings".into() })
    };
    let parsed = match req.get("method").and_then(Value::as_str) {
        Some("SUBSCRIBE") => streams().map(Control::Subscribe),
        Some("UNSUBSCRIBE") => streams().map(Control::Unsubscribe),
        Some("LIST_SUBSCRIPTIONS") => Ok(Control::List),
        _ => err(2, "Invalid request: unknown method"),
    };
    (id, parsed)
}

/// The success reply `{"result":<result>,"id":<id>}` (`result` is `null` for (un)subscribe).
pub(crate) fn control_result(result: &Value, id: &Value) -> String {
    format!(r#"{{"result":{result},"id":{id}}}"#)
}

/// The error reply `{"error":{"code":..,"msg":..},"id":<id>}`.
pub(crate) fn control_error(e: &ControlError, id: &Value) -> String {
    format!(r#"{{"error":{{"code":{},"msg":{}}},"id":{id}}}"#, e.code, Value::String(e.msg.clone()))
}

#[cfg(test)]
mod tests {
    use crossbar_engine::fixed::{Px, Qty, Scale, to_decimal};
    use crossbar_engine::instrument::InstrumentId;

    use super::*;
    use crate::sim::book::{DepthDiff, Level};
    use crate::sim::tests::registry;

    fn fixed(m: i64, scale: u8, places: u8) -> String {
        let mut s = String::new();
        write_fixed(&mut s, m, scale, places);
        s
    }

    #[test]
    fn fixed_decimals_match_the_exact_value() {
        assert_eq!(fixed(2_535_190, 5, 8), "25.35190000");
        assert_eq!(fixed(740_390, 2, 2), "7403.90");
        assert_eq!(fixed(2, 3, 3), "0.002");
        assert_eq!(fixed(-38_167, 8, 8), "-0.00038167");
        assert_eq!(fixed(431, 0, 8), "431.00000000");
        assert_eq!(fixed(431, 0, 0), "431");
        for (m, scale) in [(1i64, 8u8), (123_456_789, 4), (0, 2), (-5, 1), (99, 0)] {
            let want = to_decimal(m, Scale::new(scale).unwrap()).to_string();
            assert_eq!(fixed(m, scale, scale), want, "{m} @ {scale}");
        }
    }

    fn wire(venue: usize) -> WireSymbol {
        let reg = registry();
        let inst = reg.get(InstrumentId(u32::try_from(venue).unwrap()));
        WireSymbol::new(inst, Protocol::of_venue(reg.venue_name(inst.venue)).unwrap())
    }

    fn keys(json: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(json).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn payloads_have_the_fixture_fields() {
        let (spot, usdm) = (wire(0), wire(1));
        let fixture = |path: &str| {
            let p = format!("{}/../../shared/reference/binance/{path}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(p).ok().map(|s| keys(&s))
        };
        let (i, t) = (InstrumentId(0), 1_767_225_600_000);
        let ticker = SimEvent::BookTicker {
            instrument: i,
            update_id: 7,
            time_ms: t,
            bid: Level { px: 10_000_000, qty: 5 },
            ask: Level { px: 10_000_001, qty: 6 },
        };
        let diff = DepthDiff {
            first_update_id: 5,
            last_update_id: 9,
            prev_last_update_id: 4,
            bids: vec![(10_000_000, 0)],
            asks: vec![(10_000_002, 3)],
        };
        let depth = SimEvent::Depth { instrument: i, time_ms: t, diff };
        let trade = SimEvent::Trade {
            instrument: i,
            time_ms: t,
            agg_id: 1,
            px: 10_000_000,
            qty: 3,
            first_trade_id: 1,
            last_trade_id: 2,
            buyer_maker: true,
        };
        let mark = SimEvent::Mark {
            instrument: i,
            time_ms: t,
            mark_px: 1_000_005,
            index_e8: 10_000_000_000_000,
            funding_rate_e8: 10_000,
            next_funding_ms: t + 1,
        };
        let cases = [
            (&spot, &ticker, "spot/bookTicker.json"),
            (&spot, &depth, "spot/depthUpdate_diff_depth.json"),
            (&spot, &trade, "spot/aggTrade.json"),
            (&usdm, &ticker, "usdm/bookTicker.json"),
            (&usdm, &depth, "usdm/depthUpdate_diff_depth.json"),
            (&usdm, &trade, "usdm/aggTrade.json"),
            (&usdm, &mark, "usdm/markPriceUpdate.json"),
        ];
        for (w, ev, path) in cases {
            let mut out = String::new();
            assert!(write_event(&mut out, ev, w).is_some());
            if let Some(want) = fixture(path) {
                assert_eq!(keys(&out), want, "{path}: {out}");
            }
        }
        let mut out = String::new();
        write_event(&mut out, &ticker, &spot);
        assert_eq!(
            out,
            r#"{"u":7,"s":"BTCUSDT","b":"100000.00000000","B":"0.00005000","a":"100000.01000000","A":"0.00006000"}"#
        );
        out.clear();
        write_event(&mut out, &depth, &usdm);
        assert_eq!(
            out,
            r#"{"e":"depthUpdate","E":1767225600000,"T":1767225600000,"s":"BTCUSDT","U":5,"u":9,"pu":4,"b":[["1000000.0","0.000"]],"a":[["1000000.2","0.003"]]}"#
        );
        let snap = BookSnapshot { last_update_id: 3, bids: vec![(Px(10), Qty(1))], asks: vec![] };
        assert_eq!(
            depth_snapshot_body(&spot, &snap, t),
            r#"{"lastUpdateId":3,"bids":[["0.10000000","0.00001000"]],"asks":[]}"#
        );
        if let Some(want) = fixture("usdm/rest_depth_snapshot_GET_fapi_v1_depth.json") {
            assert_eq!(keys(&depth_snapshot_body(&usdm, &snap, t)), want);
        }
    }

    #[test]
    fn control_requests_parse_and_replies_echo_the_id() {
        let (id, c) = parse_control(r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}"#);
        assert_eq!(c, Ok(Control::Subscribe(vec!["btcusdt@aggTrade".into(), "btcusdt@depth".into()])));
        assert_eq!(control_result(&Value::Null, &id), r#"{"result":null,"id":1}"#);
        let (id, c) = parse_control(r#"{"method":"LIST_SUBSCRIPTIONS","id":"x"}"#);
        assert_eq!((id.clone(), c), (Value::String("x".into()), Ok(Control::List)));
        let (id, c) = parse_control(r#"{"method":"SUBSCRIBE","params":"nope","id":3}"#);
        let e = c.unwrap_err();
        assert_eq!(control_error(&e, &id), format!(r#"{{"error":{{"code":1,"msg":"{}"}},"id":3}}"#, e.msg));
        assert_eq!(parse_control("not json").1.unwrap_err().code, 3);
        assert_eq!(parse_control(r#"{"method":"SUBSCRIBE","params":[],"id":1,"x":1}"#).1.unwrap_err().code, 0);
    }

    #[test]
    fn stream_suffixes_depend_on_the_protocol() {
        assert_eq!(StreamKind::of_suffix("markPrice@1s", Protocol::Usdm), Some(StreamKind::MarkPrice));
        assert_eq!(StreamKind::of_suffix("markPrice@1s", Protocol::Spot), None);
        assert_eq!(StreamKind::of_suffix("depth@100ms", Protocol::Spot), Some(StreamKind::Depth));
        assert_eq!(StreamKind::of_suffix("bookticker", Protocol::Spot), None);
        assert_eq!(wire(0).stream_name(StreamKind::BookTicker), "btcusdt@bookTicker");
    }
}
