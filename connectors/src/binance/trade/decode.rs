//! Private frames of Binance's WebSocket API and user data streams, read in place without
//! allocation: request responses (`{"id","status","result"|"error","rateLimits"}`), spot user
//! data events wrapped as `{"subscriptionId":N,"event":{...}}`, and USD-M user stream events
//! sent raw (`{"e":"ORDER_TRADE_UPDATE","E":..,"T":..,"o":{...}}`).

use crate::feed::DecodeError;
use crate::json::{Elements, Members, Value, parse_u64};

/// One private frame, classified.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Frame<'a> {
    /// The answer to one of our requests.
    Response(Response<'a>),
    /// A user data stream event (the event object itself).
    Event(&'a [u8]),
    /// Valid JSON of no kind the session uses.
    Other,
}

/// A WebSocket API response.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Response<'a> {
    /// The request id we sent, as a string (numbers and null give an empty id).
    pub id: &'a [u8],
    /// HTTP-like status.
    pub status: u64,
    /// The result, when it succeeded.
    pub result: Option<Value<'a>>,
    /// The error code, when it failed (Binance codes are negative).
    pub code: i64,
    /// The error message, raw.
    pub msg: &'a [u8],
    /// The `rateLimits` array, raw.
    pub rate_limits: Option<&'a [u8]>,
}

/// Classifies a frame from either connection.
pub(crate) fn classify(frame: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let mut m = Members::new(frame);
    let mut resp = Response::default();
    let (mut has_status, mut event, mut raw_event) = (false, None, false);
    while let Some(key) = m.next_key()? {
        let v = m.value()?;
        match key {
            b"id" => {
                if let Value::Str(s) = v {
                    resp.id = s;
                }
            }
            b"status" => {
                resp.status = v.u64("status")?;
                has_status = true;
            }
            b"result" => resp.result = Some(v),
            b"error" => {
                let Value::Object(obj) = v else { return Err(DecodeError::WrongType("error")) };
                let mut e = Members::new(obj);
                while let Some(k) = e.next_key()? {
                    let ev = e.value()?;
                    match k {
                        b"code" => resp.code = i64_of(ev, "code")?,
                        b"msg" => {
                            if let Value::Str(s) | Value::EscapedStr(s) = ev {
                                resp.msg = s;
                            }
                        }
                        _ => {}
                    }
                }
            }
            b"rateLimits" => {
                if let Value::Array(a) = v {
                    resp.rate_limits = Some(a);
                }
            }
            b"event" => {
                let Value::Object(obj) = v else { return Err(DecodeError::WrongType("event")) };
                event = Some(obj);
            }
            b"e" => raw_event = true,
            _ => {}
        }
    }
    if let Some(obj) = event {
        Ok(Frame::Event(obj))
    } else if raw_event {
        Ok(Frame::Event(frame))
    } else if has_status {
        Ok(Frame::Response(resp))
    } else {
        Ok(Frame::Other)
    }
}

/// A JSON integer that may be negative (error codes, `"t":-1`).
pub(crate) fn i64_of(v: Value<'_>, field: &'static str) -> Result<i64, DecodeError> {
    let Value::Num(n) = v else { return Err(DecodeError::WrongType(field)) };
    match n {
        [b'-', rest @ ..] => {
            let u = parse_u64(rest, field)?;
            i64::try_from(u).map(|x| -x).map_err(|_| DecodeError::BadInteger(field))
        }
        _ => i64::try_from(parse_u64(n, field)?).map_err(|_| DecodeError::BadInteger(field)),
    }
}

/// The fields of an `executionReport` (spot) or `ORDER_TRADE_UPDATE` (USD-M, with the order's
/// fields under `o`) the session maps to order events.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Exec<'a> {
    /// Event type.
    pub e: &'a [u8],
    /// Event time.
    pub event_ms: u64,
    /// Transaction (trade) time.
    pub trade_ms: u64,
    /// Symbol.
    pub symbol: &'a [u8],
    /// Client order id (spot: of the cancel request on a cancel).
    pub c: &'a [u8],
    /// Spot: the cancelled order's original client id.
    pub orig_c: &'a [u8],
    /// Side.
    pub side: &'a [u8],
    /// Execution type.
    pub x: &'a [u8],
    /// Spot reject reason.
    pub reject: &'a [u8],
    /// Order quantity.
    pub q: &'a [u8],
    /// Last executed quantity.
    pub l: &'a [u8],
    /// Cumulative filled quantity.
    pub z: &'a [u8],
    /// Last executed price.
    pub last_px: &'a [u8],
    /// Commission.
    pub n: &'a [u8],
    /// Commission asset (empty when null or absent).
    pub fee_asset: &'a [u8],
    /// Trade id (`-1` when none).
    pub t: i64,
    /// Maker side of the trade.
    pub maker: bool,
}

/// Reads an execution event (either venue's shape) into `ex`.
pub(crate) fn read_exec<'a>(obj: &'a [u8], ex: &mut Exec<'a>) -> Result<(), DecodeError> {
    let mut m = Members::new(obj);
    while let Some(key) = m.next_key()? {
        let v = m.value()?;
        match key {
            b"e" => ex.e = v.str("e")?,
            b"E" => ex.event_ms = v.u64("E")?,
            b"T" => ex.trade_ms = v.u64("T")?,
            b"s" => ex.symbol = v.str("s")?,
            b"c" => ex.c = v.str("c")?,
            b"C" => ex.orig_c = str_or_null(v, "C")?,
            b"S" => ex.side = v.str("S")?,
            b"x" => ex.x = v.str("x")?,
            b"r" => ex.reject = str_or_null(v, "r")?,
            b"q" => ex.q = v.str("q")?,
            b"l" => ex.l = v.str("l")?,
            b"z" => ex.z = v.str("z")?,
            b"L" => ex.last_px = v.str("L")?,
            b"n" => ex.n = str_or_null(v, "n")?,
            b"N" => ex.fee_asset = str_or_null(v, "N")?,
            b"t" => ex.t = i64_of(v, "t")?,
            b"m" => ex.maker = v.bool("m")?,
            b"o" => {
                if let Value::Object(inner) = v {
                    read_exec(inner, ex)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn str_or_null<'a>(v: Value<'a>, field: &'static str) -> Result<&'a [u8], DecodeError> {
    match v {
        Value::Null => Ok(b""),
        other => other.str(field),
    }
}

/// The most used rate-limit window of a `rateLimits` array: `(count, limit)` of the entry with
/// the highest `count / limit`; `None` when the array has none.
pub(crate) fn busiest_rate_limit(arr: &[u8]) -> Result<Option<(u64, u64)>, DecodeError> {
    let mut best: Option<(u64, u64)> = None;
    let mut els = Elements::new(arr);
    while els.advance()? {
        let Value::Object(obj) = els.value()? else { return Err(DecodeError::WrongType("rateLimits")) };
        let (mut count, mut limit) = (None, None);
        let mut m = Members::new(obj);
        while let Some(k) = m.next_key()? {
            let v = m.value()?;
            match k {
                b"count" => count = Some(v.u64("count")?),
                b"limit" => limit = Some(v.u64("limit")?),
                _ => {}
            }
        }
        let (Some(count), Some(limit)) = (count, limit) else { return Err(DecodeError::MissingField("count")) };
        // count/limit > best_count/best_limit, in integers.
        let better = match best {
            None => true,
            Some((bc, bl)) => u128::from(count) * u128::from(bl) > u128::from(bc) * u128::from(limit),
        };
        if better {
            best = Some((count, limit));
        }
    }
    Ok(best)
}

/// A member of a result object: `key`'s value, if present.
pub(crate) fn member<'a>(obj: &'a [u8], key: &[u8]) -> Result<Option<Value<'a>>, DecodeError> {
    let mut m = Members::new(obj);
    let mut found = None;
    while let Some(k) = m.next_key()? {
        let v = m.value()?;
        if k == key {
            found = Some(v);
        }
    }
    Ok(found)
}
