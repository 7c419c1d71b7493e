//! Property tests of the JSON scanner: it never panics, whatever the bytes, and it accepts
//! exactly what a reference parser (`serde_json`) accepts.

use crossbar_connectors::feed::DecodeError;
use crossbar_connectors::json::{Elements, Members, Value, parse_u64, validate};
use proptest::prelude::*;

/// Valid venue-like messages the mutations start from.
const SEEDS: &[&str] = &[
    r#"{"stream":"bnbbtc@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}"#,
    r#"{"e": "aggTrade", "E": 1672515782136, "s": "BNBBTC", "a": 12345, "p": "0.001", "q": "100", "T": 1672515782136, "m": true, "M": false}"#,
    r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
    r#"{"result":null,"id":1,"x":[-1.5e+3,0,{},[],"a\"b\\c\/\n"]}"#,
    "[1, 2.5, true, false, null, {\"k\": [\"v\"]}]",
];

/// Walks every value of `doc` (recursively through the returned sub-slices) and returns how
/// many values it saw, or the first error.
fn walk_all(doc: &[u8]) -> Result<usize, DecodeError> {
    fn walk_value(v: Value<'_>) -> Result<usize, DecodeError> {
        match v {
            Value::Object(o) => walk_object(o).map(|n| n + 1),
            Value::Array(a) => walk_array(a).map(|n| n + 1),
            _ => Ok(1),
        }
    }
    fn walk_object(doc: &[u8]) -> Result<usize, DecodeError> {
        let mut n = 0;
        for member in Members::new(doc) {
            n += walk_value(member?.1)?;
        }
        Ok(n)
    }
    fn walk_array(doc: &[u8]) -> Result<usize, DecodeError> {
        let mut n = 0;
        for element in Elements::new(doc) {
            n += walk_value(element?)?;
        }
        Ok(n)
    }
    match doc.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => walk_array(doc),
        _ => walk_object(doc),
    }
}

/// A seed with a few random edits (insert, delete, overwrite) drawn from JSON's own alphabet,
/// so that the result is often almost valid.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    const ALPHABET: &[u8] = b"{}[]\":,\\ 0123456789-+.eEtruefalsn/\tabc";
    let edit = (0usize..4, any::<prop::sample::Index>(), prop::sample::select(ALPHABET));
    (prop::sample::select(SEEDS), prop::collection::vec(edit, 1..6)).prop_map(|(seed, edits)| {
        let mut doc = seed.as_bytes().to_vec();
        for (op, at, byte) in edits {
            let i = at.index(doc.len() + 1);
            match op {
                0 => doc.insert(i, byte),
                1 if i < doc.len() => {
                    doc.remove(i);
                }
                2 if i < doc.len() => doc[i] = byte,
                _ => doc.truncate(i),
            }
        }
        doc
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes_never_panic(doc in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = validate(&doc);
        let _ = walk_all(&doc);
        let _ = Elements::new(&doc).count();
    }

    #[test]
    fn mutated_messages_never_panic(doc in mutated()) {
        let _ = walk_all(&doc);
        let _ = validate(&doc);
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts(doc in mutated()) {
        // Known, deliberate differences are left out: `\u` escapes (serde_json also checks
        // surrogate pairing) and numbers beyond f64's range (serde_json refuses them).
        let reference = serde_json::from_slice::<serde_json::Value>(&doc);
        let out_of_range = matches!(&reference, Err(e) if e.to_string().contains("out of range"));
        prop_assume!(!out_of_range && !doc.windows(2).any(|w| w == b"\\u"));
        prop_assert_eq!(validate(&doc).is_ok(), reference.is_ok(), "{}", String::from_utf8_lossy(&doc));
        // For objects and arrays, walking every member agrees with validation.
        if matches!(doc.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'[')) {
            prop_assert_eq!(walk_all(&doc).is_ok(), reference.is_ok());
        }
    }

    #[test]
    fn generated_json_is_accepted(v in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) };
        let text = text.unwrap();
        prop_assert!(validate(text.as_bytes()).is_ok(), "{}", text);
        if let serde_json::Value::Object(map) = &v {
            let keys: Vec<Vec<u8>> = Members::new(text.as_bytes())
                .map(|m| m.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()
                .unwrap();
            let expected: Vec<Vec<u8>> = map.keys().map(|k| k.as_bytes().to_vec()).collect();
            prop_assert_eq!(keys, expected);
        }
    }
}

/// Arbitrary JSON values with escape-free keys, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        (-1e12f64..1e12).prop_map(J::from),
        "[ -~]{0,12}".prop_map(J::String),
        "\\PC{0,6}".prop_map(J::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..6).prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

// ---- examples: walking, one-pass descent ----------------------------------------------------

#[test]
fn walks_members_of_every_type() {
    let doc = br#" { "s" : "BNB", "n":-1.5e+3, "t":true, "f":false, "z":null,
        "o":{"x":[1,{}]}, "a":[], "e":"a\"b" } "#;
    let m = members(doc).unwrap();
    assert_eq!(
        m,
        vec![
            (&b"s"[..], Value::Str(b"BNB")),
            (b"n", Value::Num(b"-1.5e+3")),
            (b"t", Value::Bool(true)),
            (b"f", Value::Bool(false)),
            (b"z", Value::Null),
            (b"o", Value::Object(br#"{"x":[1,{}]}"#)),
            (b"a", Value::Array(b"[]")),
            (b"e", Value::EscapedStr(br#"a\"b"#)),
        ]
    );
    let inner = members(br#"{"x":[1,{}]}"#).unwrap();
    assert_eq!(inner, vec![(&b"x"[..], Value::Array(b"[1,{}]"))]);
    let elems: Vec<_> = Elements::new(b"[1,{}]").collect::<Result<_, _>>().unwrap();
    assert_eq!(elems, vec![Value::Num(b"1"), Value::Object(b"{}")]);
    assert_eq!(members(b"{}").unwrap(), vec![]);
}

#[test]
fn enters_nested_containers_in_one_pass() {
    let doc = br#"{"stream":"x","data":{"b":[["1","2"],["3","4"]]},"z":0}"#;
    let mut top = Members::new(doc);
    assert_eq!(top.next_key().unwrap(), Some(&b"stream"[..]));
    assert_eq!(top.enter_object().unwrap().map(|_| ()), None);
    assert_eq!(top.value().unwrap(), Value::Str(b"x"));
    assert_eq!(top.next_key().unwrap(), Some(&b"data"[..]));
    let mut data = top.enter_object().unwrap().unwrap();
    // The parent refuses to move on while the child is open.
    let mut copy = top;
    assert!(copy.next_key().is_err());
    assert_eq!(data.next_key().unwrap(), Some(&b"b"[..]));
    let Value::Array(levels) = data.value().unwrap() else { panic!("not an array") };
    assert_eq!(data.next_key().unwrap(), None);
    top.resume(&data).unwrap();
    assert_eq!(top.next_key().unwrap(), Some(&b"z"[..]));
    assert_eq!(top.value().unwrap(), Value::Num(b"0"));
    assert_eq!(top.next_key().unwrap(), None);

    let mut outer = Elements::new(levels);
    let mut seen = Vec::new();
    while outer.advance().unwrap() {
        let mut pair = outer.enter_array().unwrap().unwrap();
        while let Some(v) = pair.next_value().unwrap() {
            seen.push(v);
        }
        outer.resume(&pair).unwrap();
    }
    assert_eq!(seen, [Value::Str(b"1"), Value::Str(b"2"), Value::Str(b"3"), Value::Str(b"4")]);
}

#[test]
fn resume_refuses_an_unfinished_child() {
    let doc = br#"{"d":{"a":1,"b":2}}"#;
    let mut top = Members::new(doc);
    top.next_key().unwrap();
    let mut d = top.enter_object().unwrap().unwrap();
    d.next_key().unwrap();
    d.value().unwrap();
    assert!(matches!(top.resume(&d), Err(DecodeError::Json { .. })));
}

#[test]
fn errors_are_sticky() {
    let mut m = Members::new(br#"{"a":x}"#);
    assert_eq!(m.next_key().unwrap(), Some(&b"a"[..]));
    let first = m.value().unwrap_err();
    assert_eq!(m.next_key().unwrap_err(), first);
    assert_eq!(m.next(), None);
}

// ---- examples: every defect reported with its offset ----------------------------------------

fn members(doc: &[u8]) -> Result<Vec<(&[u8], Value<'_>)>, DecodeError> {
    Members::new(doc).collect()
}

fn json_err(doc: &[u8]) -> DecodeError {
    members(doc).unwrap_err()
}

#[test]
fn rejects_malformed_documents_with_offsets() {
    let e = |at, what| DecodeError::Json { at, what };
    assert_eq!(json_err(b""), e(0, "expected '{'"));
    assert_eq!(json_err(b"[]"), e(0, "expected '{'"));
    assert_eq!(json_err(br#"{"a":"x"#), e(5, "unterminated string"));
    assert_eq!(json_err(br#"{"a":1"#), e(6, "expected ',' or '}'"));
    assert_eq!(json_err(br#"{"a":1}x"#), e(7, "trailing characters after the document"));
    assert_eq!(json_err(br#"{"a":1}}"#), e(7, "trailing characters after the document"));
    assert_eq!(json_err(br#"{"a":[1}"#), e(7, "expected ',' or ']'"));
    assert_eq!(json_err(br#"{"a":{"b":1]}"#), e(11, "expected ',' or '}'"));
    assert_eq!(json_err(br#"{"a":tru}"#), e(5, "expected a value"));
    assert_eq!(json_err(br#"{"a":01}"#), e(6, "expected ',' or '}'"));
    assert_eq!(json_err(br#"{"a":1.}"#), e(6, "invalid number: no digit after '.'"));
    assert_eq!(json_err(br#"{"a":1e}"#), e(7, "invalid number: no digit in exponent"));
    assert_eq!(json_err(br#"{"a":-}"#), e(6, "invalid number"));
    assert_eq!(json_err(br#"{"a" 1}"#), e(5, "expected ':' after key"));
    assert_eq!(json_err(br#"{a:1}"#), e(1, "expected a string key"));
    assert_eq!(json_err(br#"{"a":1,}"#), e(7, "expected a string key"));
    assert_eq!(json_err(br#"{"a":[1,]}"#), e(8, "expected a value"));
    assert_eq!(json_err(br#"{"a":"\x"}"#), e(6, "invalid escape"));
    assert_eq!(json_err(br#"{"a":"\u12g4"}"#), e(6, "invalid \\u escape"));
    assert_eq!(json_err(b"{\"a\":\"\x01\"}"), e(6, "control character in string"));
    assert_eq!(json_err(br#"{"a":NaN}"#), e(5, "expected a value"));
}

#[test]
fn escaped_quotes_do_not_end_strings() {
    let m = members(br#"{"a":"x\\","b":"\"}\"","c":1}"#).unwrap();
    assert_eq!(m[0], (&b"a"[..], Value::EscapedStr(br"x\\")));
    assert_eq!(m[1], (&b"b"[..], Value::EscapedStr(br#"\"}\""#)));
    assert_eq!(m[2], (&b"c"[..], Value::Num(b"1")));
}

#[test]
fn limits_nesting_depth() {
    let ok = format!("{{\"a\":{}{}}}", "[".repeat(31), "]".repeat(31));
    assert!(members(ok.as_bytes()).is_ok());
    assert!(validate(ok.as_bytes()).is_ok());
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(32), "]".repeat(32));
    assert_eq!(json_err(deep.as_bytes()), DecodeError::Json { at: 36, what: "nesting too deep" });
    assert!(validate(deep.as_bytes()).is_err());
    let huge = "[".repeat(100_000);
    assert!(validate(huge.as_bytes()).is_err());
}

#[test]
fn parses_unsigned_integers_strictly() {
    assert_eq!(parse_u64(b"0", "x"), Ok(0));
    assert_eq!(parse_u64(b"18446744073709551615", "x"), Ok(u64::MAX));
    for bad in [&b"18446744073709551616"[..], b"-1", b"1.0", b"1e3", b"", b" 1"] {
        assert_eq!(parse_u64(bad, "x"), Err(DecodeError::BadInteger("x")), "{bad:?}");
    }
    assert_eq!(Value::Str(b"1").u64("x"), Err(DecodeError::WrongType("x")));
    assert_eq!(Value::Num(b"7").u64("x"), Ok(7));
    assert_eq!(Value::Null.bool("x"), Err(DecodeError::WrongType("x")));
    assert_eq!(Value::EscapedStr(b"a").str("x"), Err(DecodeError::WrongType("x")));
}

#[test]
fn validates_any_top_level_value() {
    assert!(validate(b" [1, \"a\", {\"b\": null}] ").is_ok());
    assert!(validate(b"3").is_ok());
    assert!(validate(b"3 4").is_err());
    assert!(validate(b"").is_err());
}
