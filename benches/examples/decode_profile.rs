//! A fixed amount of decode work for `valgrind --tool=callgrind`, whose instruction counts are
//! reproducible on a noisy machine where wall-clock medians are not:
//!
//! ```text
//! cargo build --release -p crossbar-benches --example decode_profile
//! valgrind --tool=callgrind ./target/release/examples/decode_profile book_ticker 100000
//! ```
//!
//! Kinds: `book_ticker`, `depth_5x5` (and `book_ticker_stream`, `depth_5x5_stream`: the same in
//! the combined-stream wrapper), `px_parse`, `serde_book_ticker` (the serde_json baseline), `validate` / `members` (the scanner alone on
//! the book ticker). Instructions per message ≈ total / N.

use std::hint::black_box;

use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::{FeedDecoder, SymbolTable};
use crossbar_engine::event::MarketEvent;
use crossbar_engine::fixed::{Px, Scale};

const BOOK_TICKER: &[u8] =
    br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
const DEPTH_5_5: &[u8] = br#"{"e":"depthUpdate","E":1764000000123,"T":1764000000121,"s":"BTCUSDT","U":9001,"u":9004,"pu":9000,"b":[["65000.1","1.250"],["65000.0","0.004"],["64999.9","3.100"],["64999.8","0.020"],["64999.7","7.000"]],"a":[["65000.2","0.800"],["65000.3","2.000"],["65000.4","0.015"],["65000.5","4.400"],["65000.6","1.000"]]}"#;

const BOOK_TICKER_STREAM: &[u8] = br#"{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#;
const DEPTH_5_5_STREAM: &[u8] = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1764000000123,"T":1764000000121,"s":"BTCUSDT","U":9001,"u":9004,"pu":9000,"b":[["65000.1","1.250"],["65000.0","0.004"],["64999.9","3.100"],["64999.8","0.020"],["64999.7","7.000"]],"a":[["65000.2","0.800"],["65000.3","2.000"],["65000.4","0.015"],["65000.5","4.400"],["65000.6","1.000"]]}}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "book_ticker".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let s = |p| Scale::new(p).expect("scale");
    let (raw, market, px, qty) = match kind.as_str() {
        "book_ticker" => (BOOK_TICKER, BinanceMarket::Spot, s(8), s(8)),
        "depth_5x5" => (DEPTH_5_5, BinanceMarket::UsdM, s(1), s(3)),
        // The same payloads in the combined-stream wrapper the I/O thread receives.
        "book_ticker_stream" => (BOOK_TICKER_STREAM, BinanceMarket::Spot, s(8), s(8)),
        "depth_5x5_stream" => (DEPTH_5_5_STREAM, BinanceMarket::UsdM, s(1), s(3)),
        "validate" => {
            let mut ok = 0usize;
            for _ in 0..n {
                ok += usize::from(crossbar_connectors::json::validate(black_box(BOOK_TICKER)).is_ok());
            }
            println!("{ok}");
            return;
        }
        "members" => {
            let mut count = 0usize;
            for _ in 0..n {
                for m in crossbar_connectors::json::Members::new(black_box(BOOK_TICKER)) {
                    count += m.map_or(0, |(k, _)| k.len());
                }
            }
            println!("{count}");
            return;
        }
        "serde_book_ticker" => {
            // The plain baseline of `stages.rs`: serde_json into owned strings, same exact parse.
            #[derive(serde::Deserialize)]
            #[allow(dead_code, non_snake_case)]
            struct T {
                u: u64,
                s: String,
                b: String,
                B: String,
                a: String,
                A: String,
            }
            let mut acc = 0i64;
            for _ in 0..n {
                let t: T = serde_json::from_slice(black_box(BOOK_TICKER)).expect("baseline");
                acc ^= Px::parse(t.b.as_bytes(), s(8)).map_or(0, |p| p.0)
                    ^ Px::parse(t.a.as_bytes(), s(8)).map_or(0, |p| p.0);
            }
            println!("{acc}");
            return;
        }
        "px_parse" => {
            let mut acc = 0i64;
            for _ in 0..n {
                acc ^= Px::parse(black_box(b"25.35190000"), s(8)).map_or(0, |p| p.0);
            }
            println!("{acc}");
            return;
        }
        other => panic!("unknown kind {other}"),
    };
    let mut dec = BinanceDecoder::new(market, SymbolTable::learning(px, qty));
    let mut out: Vec<MarketEvent> = Vec::with_capacity(64);
    let mut buf = raw.to_vec();
    let mut events = 0usize;
    for _ in 0..n {
        buf.copy_from_slice(raw);
        out.clear();
        dec.decode(black_box(&mut buf), 1, &mut out).expect("decodes");
        events += out.len();
    }
    println!("{events} events");
}
