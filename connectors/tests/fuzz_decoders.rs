//! Fuzz targets, one per decoder, run as bounded property tests inside `cargo test`: Binance
//! (spot, USD-M), Bybit (spot, linear), OKX, the Ethereum notification decoder and
//! `crossbar decode`'s line handling never panic on arbitrary bytes or on mutated venue frames,
//! and keep their contracts while failing (a frame that is not market data leaves `out` as it
//! was; every stdout line of `crossbar decode` is JSON, every stderr line names its line).
//! Two differential targets hold the scanner's fast paths to the general walkers.
//!
//! The seeds are every documented frame in `../shared/reference`. Cases per target: 1,000 by
//! default; CI runs many more with `CROSSBAR_FUZZ_CASES` (see `.ci/run`).

use std::path::Path;
use std::sync::OnceLock;

use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::bybit::{BybitCategory, BybitDecoder};
use crossbar_connectors::decode_tool::{VENUES, run_decode};
use crossbar_connectors::eth::decode_notification_line;
use crossbar_connectors::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crossbar_connectors::json::{Elements, Members, PairLog, Value, compact_members, for_each_string_row, validate};
use crossbar_connectors::okx::OkxDecoder;
use crossbar_engine::event::MarketEvent;
use crossbar_engine::fixed::Scale;
use proptest::prelude::*;

/// Every fixture line under the venue and Ethereum reference directories.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference");
        let mut out = Vec::new();
        for dir in ["binance/spot", "binance/usdm", "bybit", "okx", "ethereum/anvil"] {
            let mut files: Vec<_> =
                std::fs::read_dir(root.join(dir)).expect("reference dir").map(|e| e.expect("entry").path()).collect();
            files.sort();
            for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
                let text = std::fs::read(&file).expect("fixture");
                // A one-line frame as is; a pretty-printed document as one frame too.
                out.push(text.trim_ascii().to_vec());
            }
        }
        assert!(out.len() >= 40, "expected the reference fixtures, found {}", out.len());
        out
    })
}

/// `doc` without whitespace outside strings: the compact layout venues send.
fn minify(doc: &[u8]) -> Vec<u8> {
    let (mut out, mut in_str, mut escaped) = (Vec::with_capacity(doc.len()), false, false);
    for &b in doc {
        if in_str {
            in_str = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if b == b'"' {
            in_str = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        out.push(b);
    }
    out
}

/// Every fixture minified, bare and wrapped as a Binance combined-stream frame, plus the
/// bench frames: what the decoders' fast passes take.
fn compact_seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for seed in seeds() {
            let bare = minify(seed);
            let mut wrapped = br#"{"stream":"bnbusdt@depth5@100ms","data":"#.to_vec();
            wrapped.extend_from_slice(&bare);
            wrapped.push(b'}');
            out.push(bare);
            out.push(wrapped);
        }
        out.push(br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#.to_vec());
        out.push(br#"{"e":"depthUpdate","E":1764000000123,"T":1764000000121,"s":"BTCUSDT","U":9001,"u":9004,"pu":9000,"b":[["65000.1","1.250"],["65000.0","0.004"],["64999.9","3.100"],["64999.8","0.020"],["64999.7","7.000"]],"a":[["65000.2","0.800"],["65000.3","2.000"],["65000.4","0.015"],["65000.5","4.400"],["65000.6","1.000"]]}"#.to_vec());
        out
    })
}

fn cases() -> u32 {
    std::env::var("CROSSBAR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}

/// A fixture with a few edits: JSON-alphabet or arbitrary bytes inserted, overwritten or
/// deleted, a truncation, or a slice of another fixture spliced in.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    mutated_from(seeds)
}

/// Compact fixtures (see [`compact_seeds`]) with the same edits as [`mutated`].
fn compact_mutated() -> impl Strategy<Value = Vec<u8>> {
    mutated_from(compact_seeds)
}

/// A seed of `seeds` with a few edits.
fn mutated_from(seeds: fn() -> &'static [Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    const ALPHABET: &[u8] = b"{}[]\":,\\ 0123456789-+.eE\"tnfulsa";
    let byte = prop_oneof![3 => prop::sample::select(ALPHABET), 1 => any::<u8>()];
    let edit =
        (0usize..6, any::<prop::sample::Index>(), byte, any::<prop::sample::Index>(), any::<prop::sample::Index>());
    (any::<prop::sample::Index>(), prop::collection::vec(edit, 0..5)).prop_map(move |(pick, edits)| {
        let seeds = seeds();
        let mut doc = seeds[pick.index(seeds.len())].clone();
        for (op, at, b, other, len) in edits {
            let i = at.index(doc.len() + 1);
            match op {
                0 => doc.insert(i, b),
                1 if i < doc.len() => doc[i] = b,
                2 if i < doc.len() => {
                    doc.remove(i);
                }
                3 => doc.truncate(i),
                4 => {
                    let src = &seeds[other.index(seeds.len())];
                    let start = len.index(src.len() + 1);
                    let end = (start + 40).min(src.len());
                    doc.splice(i..i, src[start..end].iter().copied());
                }
                _ => {
                    // Duplicate a run (repeated keys, doubled levels).
                    let end = (i + len.index(32)).min(doc.len());
                    let run = doc[i..end].to_vec();
                    doc.splice(i..i, run);
                }
            }
        }
        doc
    })
}

/// Mutated fixtures most of the time, plain random bytes sometimes.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![9 => mutated(), 1 => prop::collection::vec(any::<u8>(), 0..300)]
}

fn scale(p: u8) -> Scale {
    Scale::new(p).expect("scale")
}

/// Decodes `frame` with `dec` into an `out` that already holds one event; checks the
/// decoder contract: anything but market data leaves `out` exactly as it was.
fn check_decoder(dec: &mut impl FeedDecoder, frame: &[u8]) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let mut ticker = br#"{"u":1,"s":"X","b":"1","B":"2","a":"3","A":"4"}"#.to_vec();
    let mut binance = BinanceDecoder::new(BinanceMarket::Spot, SymbolTable::learning(scale(0), scale(0)));
    prop_assert_eq!(binance.decode(&mut ticker, 7, &mut out), Ok(FrameKind::Market));
    let sentinel: MarketEvent = out[0];
    let mut buf = frame.to_vec();
    let result = dec.decode(&mut buf, 1, &mut out);
    prop_assert_eq!(out.first(), Some(&sentinel));
    if result != Ok(FrameKind::Market) {
        prop_assert_eq!(out.len(), 1, "{:?} left events behind", result);
    }
    Ok(())
}

/// The first two strings of each row.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// The general walk that [`for_each_string_row`] replaces on validated arrays: every row an
/// array of `width` escape-free strings, read with [`Elements`].
fn rows_reference(array: &[u8], width: usize, stop_at_extra: bool) -> Result<Rows, DecodeError> {
    let wrong = DecodeError::WrongType("f");
    let mut rows = Vec::new();
    let mut it = Elements::new(array);
    while it.advance()? {
        let Some(mut entry) = it.enter_array()? else {
            return Err(wrong);
        };
        let a = entry.next_value()?.ok_or(wrong)?.str("f")?;
        let b = entry.next_value()?.ok_or(wrong)?.str("f")?;
        let mut n = 2;
        while let Some(extra) = entry.next_value()? {
            if stop_at_extra && n >= width {
                return Err(wrong);
            }
            extra.str("f")?;
            n += 1;
        }
        if n != width {
            return Err(wrong);
        }
        it.resume(&entry)?;
        rows.push((a.to_vec(), b.to_vec()));
    }
    Ok(rows)
}

/// Level arrays, valid and almost valid.
fn level_array() -> impl Strategy<Value = Vec<u8>> {
    const PARTS: &[&str] = &["[", "]", "\"1.5\"", "\"0\"", "\"a\\\"b\"", ",", " ", "7", "null", "{}", "[]", "\"\""];
    prop_oneof![
        prop::collection::vec(prop::sample::select(PARTS), 0..24).prop_map(|p| p.concat().into_bytes()),
        (prop::collection::vec((0usize..3, 2usize..6), 0..5), any::<bool>()).prop_map(|(rows, ws)| {
            let sep = if ws { ", " } else { "," };
            let rows: Vec<String> = rows
                .iter()
                .map(|&(kind, n)| {
                    let cells: Vec<String> = (0..n)
                        .map(|i| match (kind, i) {
                            (1, 1) => "3".to_string(),
                            (2, 0) => "\"x\\ty\"".to_string(),
                            _ => format!("\"{i}.25\""),
                        })
                        .collect();
                    format!("[{}]", cells.join(sep))
                })
                .collect();
            format!("[{}]", rows.join(sep)).into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn binance_decoders_never_panic(frame in frame()) {
        for market in [BinanceMarket::Spot, BinanceMarket::UsdM] {
            check_decoder(&mut BinanceDecoder::new(market, SymbolTable::learning(scale(8), scale(8))), &frame)?;
            // Coarse scales too: most prices then have too many decimals.
            check_decoder(&mut BinanceDecoder::new(market, SymbolTable::learning(scale(0), scale(1))), &frame)?;
        }
    }

    #[test]
    fn bybit_decoders_never_panic(frame in frame()) {
        for category in [BybitCategory::Spot, BybitCategory::Linear] {
            check_decoder(&mut BybitDecoder::new(category, SymbolTable::learning(scale(8), scale(8))), &frame)?;
            check_decoder(&mut BybitDecoder::new(category, SymbolTable::learning(scale(0), scale(1))), &frame)?;
        }
    }

    #[test]
    fn okx_decoder_never_panics(frame in frame()) {
        check_decoder(&mut OkxDecoder::new(SymbolTable::learning(scale(8), scale(8))), &frame)?;
        check_decoder(&mut OkxDecoder::new(SymbolTable::learning(scale(0), scale(1))), &frame)?;
    }

    #[test]
    fn ethereum_notification_decoder_never_panics(frame in frame()) {
        let mut out = String::new();
        let _ = decode_notification_line(&frame, &mut out);
    }

    #[test]
    fn decode_tool_lines_never_panic(lines in prop::collection::vec(frame(), 1..6), venue in prop::sample::select(&VENUES[..])) {
        let mut input = Vec::new();
        for line in &lines {
            input.extend(line.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
            input.push(b'\n');
        }
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let malformed = run_decode(venue, &input[..], &mut stdout, &mut stderr);
        prop_assert!(malformed.is_ok(), "{:?}", malformed.err());
        for line in String::from_utf8_lossy(&stdout).lines() {
            prop_assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "stdout line is not JSON: {}", line);
        }
        for line in String::from_utf8_lossy(&stderr).lines() {
            prop_assert!(line.starts_with("line "), "stderr line without its line number: {}", line);
        }
        prop_assert_eq!(malformed.ok(), Some(!stderr.is_empty()));
    }

    /// The shape-only second walk of a validated level array agrees with the general walker.
    #[test]
    fn string_rows_match_the_general_walk(array in level_array(), width in 2usize..5, stop in any::<bool>()) {
        // Only validated arrays reach it (the scanner returns them); the rest is skipped.
        if validate(&array).is_err() || array.first() != Some(&b'[') {
            return Ok(());
        }
        let mut fast = Vec::new();
        let got = for_each_string_row(&array, width, stop, DecodeError::WrongType("f"), |a, b| {
            fast.push((a.to_vec(), b.to_vec()));
            Ok(())
        });
        let want = rows_reference(&array, width, stop);
        prop_assert_eq!(got.map(|()| fast), want, "{}", String::from_utf8_lossy(&array));
    }

    /// The compact fast pass yields exactly what the general walker yields on the object it
    /// accepted, and accepts only well-formed objects.
    #[test]
    fn compact_members_match_the_walker(doc in compact_mutated()) {
        let mut got = Vec::new();
        let mut log = PairLog::default();
        if let Some(end) = compact_members(&doc, 0, 1, Some(&mut log), |k, v| got.push((k.to_vec(), v))) {
            let mut want = Vec::new();
            let result = Members::new(&doc[..end]).members_until(None, |k, v| want.push((k.to_vec(), v)));
            prop_assert_eq!(result, Ok(false), "{}", String::from_utf8_lossy(&doc));
            // The rows it kept are those of the shape-checked walk of a side of pairs.
            for (_, value) in &got {
                let Value::Array(array) = *value else { continue };
                let Some(kept) = log.pairs(&doc, array) else { continue };
                let kept: Rows = kept.map(|(a, b)| (a.to_vec(), b.to_vec())).collect();
                prop_assert_eq!(Ok(kept), rows_reference(array, 2, true));
            }
            prop_assert_eq!(got, want);
        }
    }

    /// The Binance decoder's fast pass gives the same result and the same events as the
    /// general pass on compact frames, valid or not, at fine and coarse scales.
    #[test]
    fn binance_fast_pass_matches_the_general_pass(frame in compact_mutated()) {
        for market in [BinanceMarket::Spot, BinanceMarket::UsdM] {
            for (px, qty) in [(8, 8), (1, 3), (0, 1)] {
                let mut fast = BinanceDecoder::new(market, SymbolTable::learning(scale(px), scale(qty)));
                let mut general = fast.clone();
                let (mut got, mut want) = (Vec::new(), Vec::new());
                let mut buf = frame.clone();
                let result = fast.decode(&mut buf, 1, &mut got);
                prop_assert_eq!(result, general.decode_general(&frame, 1, &mut want), "{}", String::from_utf8_lossy(&frame));
                prop_assert_eq!(got, want);
            }
        }
    }

    /// `members_until` yields what the `Members` iterator yields, and fails where it fails.
    #[test]
    fn members_until_matches_the_iterator(doc in mutated(), stop_pick in 0usize..4) {
        let stop: Option<&[u8]> = [None, Some(&b"data"[..]), Some(&b"arg"[..]), Some(&b"s"[..])][stop_pick];
        let mut want: Vec<(Vec<u8>, Value<'_>)> = Vec::new();
        let mut want_err = false;
        for member in Members::new(&doc) {
            match member {
                Ok((k, _)) if stop == Some(k) => {
                    want.push((k.to_vec(), Value::Null));
                    break;
                }
                Ok((k, v)) => want.push((k.to_vec(), v)),
                Err(_) => {
                    want_err = true;
                    break;
                }
            }
        }
        let mut got = Vec::new();
        let mut walker = Members::new(&doc);
        let result = walker.members_until(stop, |k, v| got.push((k.to_vec(), v)));
        match result {
            Ok(true) => {
                // Stopped at the stop key: its value is pending.
                got.push((stop.unwrap_or_default().to_vec(), Value::Null));
                prop_assert!(walker.value().is_ok() || want_err);
                if !want_err {
                    prop_assert_eq!(got, want);
                }
            }
            Ok(false) => {
                prop_assert!(!want_err);
                prop_assert_eq!(got, want);
                prop_assert_eq!(walker.next_key(), Ok(None));
            }
            Err(_) => {
                prop_assert!(want_err, "members_until failed where the iterator did not");
                prop_assert_eq!(got, want);
            }
        }
    }
}

/// The fast pass is not vacuous: it takes every compact fixture (none has whitespace left or
/// an escaped key) and yields what the walker yields.
#[test]
fn compact_members_take_every_compact_fixture() {
    let (mut objects, mut kept_sides) = (0, 0);
    for doc in compact_seeds().iter().filter(|d| d.first() == Some(&b'{')) {
        let mut got = Vec::new();
        let mut log = PairLog::default();
        let end = compact_members(doc, 0, 1, Some(&mut log), |k, v| got.push((k.to_vec(), v)));
        assert_eq!(end, Some(doc.len()), "{}", String::from_utf8_lossy(doc));
        for (_, value) in &got {
            if let Value::Array(array) = *value
                && let Some(rows) = log.pairs(doc, array)
            {
                let rows: Rows = rows.map(|(a, b)| (a.to_vec(), b.to_vec())).collect();
                assert_eq!(Ok(rows), rows_reference(array, 2, true));
                kept_sides += 1;
            }
        }
        let mut want = Vec::new();
        assert_eq!(Members::new(doc).members_until(None, |k, v| want.push((k.to_vec(), v))), Ok(false));
        assert_eq!(got, want);
        objects += 1;
    }
    assert!(objects >= 80, "{objects} compact objects");
    // Book sides of the Binance depth fixtures (bare and wrapped), Bybit's and the bench's.
    assert!(kept_sides >= 10, "{kept_sides} book sides kept as pairs");
}
