//! Router calldata decoding against an independent ABI encoder (`alloy-sol-types`), every
//! selector of the reference lists in `shared/reference/ethereum/uniswap`, the captured anvil
//! frames, and a property test that arbitrary calldata never panics.

use alloy_primitives::{Address, Bytes, U256, address, keccak256};
use alloy_sol_types::{SolCall, SolValue, sol};
use crossbar_connectors::eth::abi::CalldataError;
use crossbar_connectors::eth::router::selector;
use crossbar_connectors::eth::tx::{Notification, decode_hex_into, parse_notification};
use crossbar_connectors::eth::{
    DecodeLineError, Exact, Method, Protocol, SkipReason, SwapCall, decode_notification_line, decode_swaps,
};
use proptest::prelude::*;

sol! {
    interface IRouter02 {
        function swapExactTokensForTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapTokensForExactTokens(uint256 amountOut, uint256 amountInMax, address[] path, address to, uint256 deadline);
        function swapExactETHForTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapTokensForExactETH(uint256 amountOut, uint256 amountInMax, address[] path, address to, uint256 deadline);
        function swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapETHForExactTokens(uint256 amountOut, address[] path, address to, uint256 deadline);
        function swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapExactETHForTokensSupportingFeeOnTransferTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapExactTokensForETHSupportingFeeOnTransferTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
    }

    interface ISwapRouter {
        struct ExactInputSingleParams { address tokenIn; address tokenOut; uint24 fee; address recipient; uint256 deadline; uint256 amountIn; uint256 amountOutMinimum; uint160 sqrtPriceLimitX96; }
        struct ExactInputParams { bytes path; address recipient; uint256 deadline; uint256 amountIn; uint256 amountOutMinimum; }
        struct ExactOutputSingleParams { address tokenIn; address tokenOut; uint24 fee; address recipient; uint256 deadline; uint256 amountOut; uint256 amountInMaximum; uint160 sqrtPriceLimitX96; }
        struct ExactOutputParams { bytes path; address recipient; uint256 deadline; uint256 amountOut; uint256 amountInMaximum; }
        function exactInputSingle(ExactInputSingleParams params);
        function exactInput(ExactInputParams params);
        function exactOutputSingle(ExactOutputSingleParams params);
        function exactOutput(ExactOutputParams params);
        function multicall(bytes[] data);
    }

    interface ISwapRouter02 {
        struct ExactInputSingleParams { address tokenIn; address tokenOut; uint24 fee; address recipient; uint256 amountIn; uint256 amountOutMinimum; uint160 sqrtPriceLimitX96; }
        struct ExactInputParams { bytes path; address recipient; uint256 amountIn; uint256 amountOutMinimum; }
        struct ExactOutputSingleParams { address tokenIn; address tokenOut; uint24 fee; address recipient; uint256 amountOut; uint256 amountInMaximum; uint160 sqrtPriceLimitX96; }
        struct ExactOutputParams { bytes path; address recipient; uint256 amountOut; uint256 amountInMaximum; }
        function exactInputSingle(ExactInputSingleParams params);
        function exactInput(ExactInputParams params);
        function exactOutputSingle(ExactOutputSingleParams params);
        function exactOutput(ExactOutputParams params);
        function swapExactTokensForTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to);
        function swapTokensForExactTokens(uint256 amountOut, uint256 amountInMax, address[] path, address to);
        function multicall(uint256 deadline, bytes[] data);
        function multicall(bytes32 previousBlockhash, bytes[] data);
        function refundETH();
        function unwrapWETH9(uint256 amountMinimum, address recipient);
    }

    interface IUniversalRouter {
        function execute(bytes commands, bytes[] inputs);
        function execute(bytes commands, bytes[] inputs, uint256 deadline);
        function executeSigned(bytes commands, bytes[] inputs, bytes32 intent, bytes32 data, bool verifySender, bytes32 nonce, bytes signature, uint256 deadline);
    }
}

const A: Address = address!("1111111111111111111111111111111111111111");
const B: Address = address!("2222222222222222222222222222222222222222");
const C: Address = address!("3333333333333333333333333333333333333333");
const TO: Address = address!("f39fd6e51aad88f6f4ce6ab8827279cfffb92266");

fn u(v: u128) -> U256 {
    U256::from(v)
}

/// V3 packed path `t0 fee0 t1 fee1 t2 ...`.
fn packed(tokens: &[Address], fees: &[u32]) -> Bytes {
    let mut v = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        v.extend_from_slice(t.as_slice());
        if let Some(f) = fees.get(i) {
            v.extend_from_slice(&f.to_be_bytes()[1..]);
        }
    }
    v.into()
}

/// What a decoded leg must be.
struct Want {
    protocol: Protocol,
    method: Method,
    exact: Exact,
    path: Vec<Address>,
    fees: Vec<u32>,
    amount: U256,
    limit: U256,
    deadline: Option<U256>,
}

fn check(got: &SwapCall, want: &Want) {
    assert_eq!(got.protocol, want.protocol);
    assert_eq!(got.method, want.method);
    assert_eq!(got.exact, want.exact);
    assert_eq!(got.path.tokens(), want.path.as_slice());
    if !want.fees.is_empty() {
        assert_eq!(got.path.fees(), want.fees.as_slice());
    }
    assert_eq!(got.amount, want.amount, "{:?}", want.method);
    assert_eq!(got.limit, want.limit, "{:?}", want.method);
    assert_eq!(got.deadline, want.deadline, "{:?}", want.method);
    assert_eq!(got.recipient, TO);
}

fn v2(method: Method, exact: Exact, path: &[Address], amount: u128, limit: u128, deadline: Option<u128>) -> Want {
    Want {
        protocol: Protocol::UniswapV2,
        method,
        exact,
        path: path.to_vec(),
        fees: vec![],
        amount: u(amount),
        limit: u(limit),
        deadline: deadline.map(u),
    }
}

fn v3(
    method: Method,
    exact: Exact,
    path: &[Address],
    fees: &[u32],
    amount: u128,
    limit: u128,
    dl: Option<u128>,
) -> Want {
    Want {
        protocol: Protocol::UniswapV3,
        method,
        exact,
        path: path.to_vec(),
        fees: fees.to_vec(),
        amount: u(amount),
        limit: u(limit),
        deadline: dl.map(u),
    }
}

/// A selector, its calldata, the tx value and the expected legs.
type Case = ([u8; 4], Vec<u8>, U256, Vec<Want>);

/// Calldata, tx value and the expected legs for every swap selector the decoder supports.
fn swap_cases() -> Vec<Case> {
    use IRouter02 as R;
    let p2 = vec![A, B];
    let p3 = vec![A, B, C];
    let dl = 1_700_000_000u128;
    let mut cases = Vec::new();
    let mut add = |sel: [u8; 4], data: Vec<u8>, value: u128, wants: Vec<Want>| cases.push((sel, data, u(value), wants));

    let c = R::swapExactTokensForTokensCall {
        amountIn: u(10),
        amountOutMin: u(9),
        path: p3.clone(),
        to: TO,
        deadline: u(dl),
    };
    add(
        selector::SWAP_EXACT_TOKENS_FOR_TOKENS,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapExactTokensForTokens, Exact::In, &p3, 10, 9, Some(dl))],
    );
    let c = R::swapTokensForExactTokensCall {
        amountOut: u(5),
        amountInMax: u(7),
        path: p2.clone(),
        to: TO,
        deadline: u(dl),
    };
    add(
        selector::SWAP_TOKENS_FOR_EXACT_TOKENS,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapTokensForExactTokens, Exact::Out, &p2, 5, 7, Some(dl))],
    );
    let c = R::swapExactETHForTokensCall { amountOutMin: u(3), path: p2.clone(), to: TO, deadline: u(dl) };
    add(
        selector::SWAP_EXACT_ETH_FOR_TOKENS,
        c.abi_encode(),
        1000,
        vec![v2(Method::SwapExactEthForTokens, Exact::In, &p2, 1000, 3, Some(dl))],
    );
    let c =
        R::swapTokensForExactETHCall { amountOut: u(4), amountInMax: u(8), path: p3.clone(), to: TO, deadline: u(dl) };
    add(
        selector::SWAP_TOKENS_FOR_EXACT_ETH,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapTokensForExactEth, Exact::Out, &p3, 4, 8, Some(dl))],
    );
    let c =
        R::swapExactTokensForETHCall { amountIn: u(11), amountOutMin: u(1), path: p2.clone(), to: TO, deadline: u(dl) };
    add(
        selector::SWAP_EXACT_TOKENS_FOR_ETH,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapExactTokensForEth, Exact::In, &p2, 11, 1, Some(dl))],
    );
    let c = R::swapETHForExactTokensCall { amountOut: u(6), path: p2.clone(), to: TO, deadline: u(dl) };
    add(
        selector::SWAP_ETH_FOR_EXACT_TOKENS,
        c.abi_encode(),
        999,
        vec![v2(Method::SwapEthForExactTokens, Exact::Out, &p2, 6, 999, Some(dl))],
    );
    let c = R::swapExactTokensForTokensSupportingFeeOnTransferTokensCall {
        amountIn: u(12),
        amountOutMin: u(2),
        path: p3.clone(),
        to: TO,
        deadline: u(dl),
    };
    add(
        selector::SWAP_EXACT_TOKENS_FOR_TOKENS_FOT,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapExactTokensForTokensFot, Exact::In, &p3, 12, 2, Some(dl))],
    );
    let c = R::swapExactETHForTokensSupportingFeeOnTransferTokensCall {
        amountOutMin: u(2),
        path: p2.clone(),
        to: TO,
        deadline: u(dl),
    };
    add(
        selector::SWAP_EXACT_ETH_FOR_TOKENS_FOT,
        c.abi_encode(),
        77,
        vec![v2(Method::SwapExactEthForTokensFot, Exact::In, &p2, 77, 2, Some(dl))],
    );
    let c = R::swapExactTokensForETHSupportingFeeOnTransferTokensCall {
        amountIn: u(13),
        amountOutMin: u(2),
        path: p2.clone(),
        to: TO,
        deadline: u(dl),
    };
    add(
        selector::SWAP_EXACT_TOKENS_FOR_ETH_FOT,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapExactTokensForEthFot, Exact::In, &p2, 13, 2, Some(dl))],
    );

    // V3 SwapRouter (deadline in the struct).
    use ISwapRouter as S;
    let single_in = S::exactInputSingleCall {
        params: S::ExactInputSingleParams {
            tokenIn: A,
            tokenOut: B,
            fee: alloy_primitives::aliases::U24::from(3000),
            recipient: TO,
            deadline: u(dl),
            amountIn: u(100),
            amountOutMinimum: u(90),
            sqrtPriceLimitX96: alloy_primitives::aliases::U160::ZERO,
        },
    };
    add(
        selector::EXACT_INPUT_SINGLE,
        single_in.abi_encode(),
        0,
        vec![v3(Method::ExactInputSingle, Exact::In, &p2, &[3000], 100, 90, Some(dl))],
    );
    let c = S::exactInputCall {
        params: S::ExactInputParams {
            path: packed(&p3, &[500, 10000]),
            recipient: TO,
            deadline: u(dl),
            amountIn: u(1 << 100),
            amountOutMinimum: u(1),
        },
    };
    add(
        selector::EXACT_INPUT,
        c.abi_encode(),
        0,
        vec![v3(Method::ExactInput, Exact::In, &p3, &[500, 10000], 1 << 100, 1, Some(dl))],
    );
    let c = S::exactOutputSingleCall {
        params: S::ExactOutputSingleParams {
            tokenIn: A,
            tokenOut: B,
            fee: alloy_primitives::aliases::U24::from(500),
            recipient: TO,
            deadline: u(dl),
            amountOut: u(50),
            amountInMaximum: u(60),
            sqrtPriceLimitX96: alloy_primitives::aliases::U160::from(123u64),
        },
    };
    add(
        selector::EXACT_OUTPUT_SINGLE,
        c.abi_encode(),
        0,
        vec![v3(Method::ExactOutputSingle, Exact::Out, &p2, &[500], 50, 60, Some(dl))],
    );
    // Exact output paths are encoded output first.
    let c = S::exactOutputCall {
        params: S::ExactOutputParams {
            path: packed(&[C, B, A], &[100, 3000]),
            recipient: TO,
            deadline: u(dl),
            amountOut: u(70),
            amountInMaximum: u(80),
        },
    };
    add(
        selector::EXACT_OUTPUT,
        c.abi_encode(),
        0,
        vec![v3(Method::ExactOutput, Exact::Out, &p3, &[3000, 100], 70, 80, Some(dl))],
    );
    let mc = S::multicallCall {
        data: vec![single_in.abi_encode().into(), ISwapRouter02::refundETHCall {}.abi_encode().into()],
    };
    add(
        selector::MULTICALL,
        mc.abi_encode(),
        0,
        vec![v3(Method::ExactInputSingle, Exact::In, &p2, &[3000], 100, 90, Some(dl))],
    );

    // SwapRouter02 (no deadline in the structs; the multicall may carry one).
    use ISwapRouter02 as T;
    let s02 = T::exactInputSingleCall {
        params: T::ExactInputSingleParams {
            tokenIn: B,
            tokenOut: A,
            fee: alloy_primitives::aliases::U24::from(100),
            recipient: TO,
            amountIn: u(5),
            amountOutMinimum: u(4),
            sqrtPriceLimitX96: alloy_primitives::aliases::U160::ZERO,
        },
    };
    add(
        selector::EXACT_INPUT_SINGLE_02,
        s02.abi_encode(),
        0,
        vec![v3(Method::ExactInputSingle, Exact::In, &[B, A], &[100], 5, 4, None)],
    );
    let i02 = T::exactInputCall {
        params: T::ExactInputParams {
            path: packed(&p3, &[3000, 3000]),
            recipient: TO,
            amountIn: u(9),
            amountOutMinimum: u(8),
        },
    };
    add(
        selector::EXACT_INPUT_02,
        i02.abi_encode(),
        0,
        vec![v3(Method::ExactInput, Exact::In, &p3, &[3000, 3000], 9, 8, None)],
    );
    let c = T::exactOutputSingleCall {
        params: T::ExactOutputSingleParams {
            tokenIn: A,
            tokenOut: C,
            fee: alloy_primitives::aliases::U24::from(10000),
            recipient: TO,
            amountOut: u(15),
            amountInMaximum: u(16),
            sqrtPriceLimitX96: alloy_primitives::aliases::U160::ZERO,
        },
    };
    add(
        selector::EXACT_OUTPUT_SINGLE_02,
        c.abi_encode(),
        0,
        vec![v3(Method::ExactOutputSingle, Exact::Out, &[A, C], &[10000], 15, 16, None)],
    );
    let o02 = T::exactOutputCall {
        params: T::ExactOutputParams {
            path: packed(&[C, B, A], &[500, 500]),
            recipient: TO,
            amountOut: u(17),
            amountInMaximum: u(18),
        },
    };
    add(
        selector::EXACT_OUTPUT_02,
        o02.abi_encode(),
        0,
        vec![v3(Method::ExactOutput, Exact::Out, &p3, &[500, 500], 17, 18, None)],
    );
    let v2_02 = T::swapExactTokensForTokensCall { amountIn: u(21), amountOutMin: u(20), path: p2.clone(), to: TO };
    add(
        selector::SWAP_EXACT_TOKENS_FOR_TOKENS_02,
        v2_02.abi_encode(),
        0,
        vec![v2(Method::SwapExactTokensForTokens02, Exact::In, &p2, 21, 20, None)],
    );
    let c = T::swapTokensForExactTokensCall { amountOut: u(22), amountInMax: u(23), path: p3.clone(), to: TO };
    add(
        selector::SWAP_TOKENS_FOR_EXACT_TOKENS_02,
        c.abi_encode(),
        0,
        vec![v2(Method::SwapTokensForExactTokens02, Exact::Out, &p3, 22, 23, None)],
    );
    let items: Vec<Bytes> = vec![
        s02.abi_encode().into(),
        o02.abi_encode().into(),
        v2_02.abi_encode().into(),
        T::unwrapWETH9Call { amountMinimum: u(1), recipient: TO }.abi_encode().into(),
    ];
    let c = T::multicall_0Call { deadline: u(dl + 1), data: items.clone() };
    add(
        selector::MULTICALL_DEADLINE,
        c.abi_encode(),
        0,
        vec![
            v3(Method::ExactInputSingle, Exact::In, &[B, A], &[100], 5, 4, Some(dl + 1)),
            v3(Method::ExactOutput, Exact::Out, &p3, &[500, 500], 17, 18, Some(dl + 1)),
            v2(Method::SwapExactTokensForTokens02, Exact::In, &p2, 21, 20, Some(dl + 1)),
        ],
    );
    let c = T::multicall_1Call { previousBlockhash: [7u8; 32].into(), data: items[..1].to_vec() };
    add(
        selector::MULTICALL_BLOCKHASH,
        c.abi_encode(),
        0,
        vec![v3(Method::ExactInputSingle, Exact::In, &[B, A], &[100], 5, 4, None)],
    );

    // UniversalRouter: WRAP_ETH (0x0b, skipped), V2 in, V3 out with allow-revert flag, V3 in, V2 out.
    let wrap = (TO, u(1)).abi_encode_params();
    let v2_in = (TO, u(31), u(30), p3.clone(), true).abi_encode_params();
    let v3_out = (TO, u(32), u(33), packed(&[B, A], &[3000]), true).abi_encode_params();
    let v3_in = (TO, u(34), u(35), packed(&p3, &[500, 100]), false).abi_encode_params();
    let v2_out = (TO, u(36), u(37), p2.clone(), true).abi_encode_params();
    let commands: Bytes = vec![0x0b, 0x08, 0x81, 0x00, 0x09].into();
    let inputs: Vec<Bytes> = vec![wrap.into(), v2_in.into(), v3_out.into(), v3_in.into(), v2_out.into()];
    let ur = |d: Option<u128>| {
        vec![
            v2(Method::UrV2SwapExactIn, Exact::In, &p3, 31, 30, d),
            v3(Method::UrV3SwapExactOut, Exact::Out, &p2, &[3000], 32, 33, d),
            v3(Method::UrV3SwapExactIn, Exact::In, &p3, &[500, 100], 34, 35, d),
            v2(Method::UrV2SwapExactOut, Exact::Out, &p2, 36, 37, d),
        ]
    };
    let c = IUniversalRouter::execute_0Call { commands: commands.clone(), inputs: inputs.clone() };
    add(selector::EXECUTE, c.abi_encode(), 1, ur(None));
    let c = IUniversalRouter::execute_1Call { commands: commands.clone(), inputs: inputs.clone(), deadline: u(dl) };
    add(selector::EXECUTE_DEADLINE, c.abi_encode(), 1, ur(Some(dl)));
    let c = IUniversalRouter::executeSignedCall {
        commands,
        inputs,
        intent: [1u8; 32].into(),
        data: [2u8; 32].into(),
        verifySender: true,
        nonce: [3u8; 32].into(),
        signature: vec![9u8; 65].into(),
        deadline: u(dl + 5),
    };
    add(selector::EXECUTE_SIGNED, c.abi_encode(), 1, ur(Some(dl + 5)));
    cases
}

fn reference_dir() -> String {
    format!("{}/../../shared/reference/ethereum", env!("CARGO_MANIFEST_DIR"))
}

/// `(selector, signature)` of every line of the reference selector lists.
fn reference_selectors() -> Vec<([u8; 4], String)> {
    let mut out = Vec::new();
    let dir = format!("{}/uniswap", reference_dir());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let sig = v["signature"].as_str().unwrap().to_owned();
            let hex = v["selector"].as_str().unwrap();
            let mut sel = [0u8; 4];
            for (i, b) in sel.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 + 2 * i..4 + 2 * i], 16).unwrap();
            }
            assert_eq!(keccak256(sig.as_bytes())[..4], sel, "{sig}");
            out.push((sel, sig));
        }
    }
    assert!(out.len() > 60, "reference lists not found in {dir}");
    out
}

#[test]
fn every_swap_selector_decodes_to_its_encoded_fields() {
    for (sel, data, value, wants) in swap_cases() {
        assert_eq!(data[..4], sel);
        let mut out = Vec::new();
        let n = decode_swaps(&data, value, &mut out).unwrap_or_else(|e| panic!("{sel:02x?}: {e}"));
        assert_eq!(n, wants.len(), "{sel:02x?}");
        for (got, want) in out.iter().zip(&wants) {
            check(got, want);
        }
    }
}

#[test]
fn every_reference_selector_is_decoded_or_classified() {
    let cases = swap_cases();
    let refs = reference_selectors();
    for (sel, sig) in &refs {
        if let Some((_, data, value, _)) = cases.iter().find(|c| c.0 == *sel) {
            let mut out = Vec::new();
            assert!(decode_swaps(data, *value, &mut out).is_ok(), "{sig}");
            continue;
        }
        // A non-swap router function: classified by name, with or without arguments.
        let mut data = sel.to_vec();
        data.extend_from_slice(&[0u8; 64]);
        match decode_swaps(&data, U256::ZERO, &mut Vec::new()) {
            Err(SkipReason::NotASwap(name)) => assert!(sig.starts_with(name), "{sig} named {name}"),
            other => panic!("{sig}: {other:?}"),
        }
    }
    // Every swap selector the decoder supports is one of the references.
    for (sel, ..) in &cases {
        assert!(refs.iter().any(|(s, _)| s == sel), "{sel:02x?} not in the reference lists");
    }
}

#[test]
fn unknown_selectors_and_truncated_calldata_are_typed_skips() {
    let mut out = Vec::new();
    assert_eq!(
        decode_swaps(&[0xde, 0xad, 0xbe, 0xef], U256::ZERO, &mut out),
        Err(SkipReason::UnknownSelector([0xde, 0xad, 0xbe, 0xef]))
    );
    assert_eq!(decode_swaps(&[0x38, 0xed], U256::ZERO, &mut out), Err(SkipReason::NotASwap("no calldata")));
    assert_eq!(decode_swaps(&[], U256::ZERO, &mut out), Err(SkipReason::NotASwap("no calldata")));
    for (sel, data, value, _) in swap_cases() {
        // (Trailing padding is not required, as in Solidity's decoder: cut into the data.)
        for cut in [4, 36, data.len() / 2] {
            let r = decode_swaps(&data[..cut], value, &mut out);
            assert!(matches!(r, Err(SkipReason::Calldata(_))), "{sel:02x?} cut at {cut}: {r:?}");
        }
    }
    // A dirty address word.
    let mut data = IRouter02::swapExactTokensForTokensCall {
        amountIn: u(1),
        amountOutMin: u(1),
        path: vec![A, B],
        to: TO,
        deadline: u(1),
    }
    .abi_encode();
    data[4 + 3 * 32] = 1;
    assert!(matches!(decode_swaps(&data, U256::ZERO, &mut out), Err(SkipReason::Calldata(CalldataError::BadValue(_)))));
    // A one-token path.
    let data = IRouter02::swapExactTokensForTokensCall {
        amountIn: u(1),
        amountOutMin: u(1),
        path: vec![A],
        to: TO,
        deadline: u(1),
    }
    .abi_encode();
    assert!(matches!(decode_swaps(&data, U256::ZERO, &mut out), Err(SkipReason::Calldata(CalldataError::BadPath(_)))));
    // A multicall item shorter than a selector is malformed.
    let mc = ISwapRouter::multicallCall { data: vec![vec![0x04u8].into()] };
    assert_eq!(
        decode_swaps(&mc.abi_encode(), U256::ZERO, &mut out),
        Err(SkipReason::Calldata(CalldataError::NoSelector))
    );
    // A multicall of non-swaps.
    let mc = ISwapRouter::multicallCall { data: vec![ISwapRouter02::refundETHCall {}.abi_encode().into()] };
    assert!(matches!(decode_swaps(&mc.abi_encode(), U256::ZERO, &mut out), Err(SkipReason::NotASwap(_))));
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/anvil/{name}", reference_dir())).unwrap()
}

#[test]
fn captured_anvil_frames_decode_to_their_calldata() {
    let weth = address!("5fbdb2315678afecb367f032d93f642f64180aa3");
    let tka = address!("e7f1725e7734ce288f8367e1bb143e90bb3f0512");
    let tkb = address!("9fe46736679d2d9a65f0992f2272de9f3c7fa6e0");
    let router = address!("dc64a140aa3e981100a9beca4e685f962f0cf6c9");
    let e18 = 1_000_000_000_000_000_000u128;
    let dl = Some(0x2540be3ffu128);
    let cases = [
        (
            "06_notification_pendingTx_full.json",
            9,
            0u128,
            v2(Method::SwapExactTokensForTokens, Exact::In, &[tka, tkb], e18, 0, dl),
        ),
        (
            "09_notification_pendingTx_full.json",
            10,
            e18 / 10,
            v2(Method::SwapExactEthForTokens, Exact::In, &[weth, tka], e18 / 10, 0, dl),
        ),
        (
            "10_notification_pendingTx_full.json",
            11,
            0,
            v2(Method::SwapTokensForExactTokens, Exact::Out, &[tka, tkb], e18 / 2, e18, dl),
        ),
        (
            "13_notification_pendingTx_full.json",
            12,
            0,
            v2(Method::SwapExactTokensForEth, Exact::In, &[tka, weth], e18, 0, dl),
        ),
    ];
    for (name, nonce, value, want) in cases {
        let frame = fixture(name);
        let Ok(Notification::PendingTx(tx)) = parse_notification(&frame) else { panic!("{name}") };
        assert_eq!(tx.nonce, nonce);
        assert_eq!(tx.to, Some(router));
        assert_eq!(tx.from, TO);
        assert_eq!(tx.value, u(value));
        let mut input = Vec::new();
        decode_hex_into(tx.input_hex, &mut input, "input").unwrap();
        let mut out = Vec::new();
        decode_swaps(&input, tx.value, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        check(&out[0], &want);

        let mut line = String::new();
        assert_eq!(decode_notification_line(&frame, &mut line).unwrap(), 1);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["type"], "pending_swap");
        assert_eq!(v["nonce"], nonce);
        assert_eq!(v["router"], format!("{router:#x}"));
        assert_eq!(v["protocol"], "uniswap-v2");
        assert!(v["pools"].is_null() && v["would_revert"].is_null() && v["price_impact_bps"].is_null());
        assert!(v["seen_ms"].is_null());
        let amount = want.amount.to_string();
        match want.exact {
            Exact::In => {
                assert_eq!(v["amount_in"], amount);
                assert!(v["amount_out"].is_null() && v["amount_in_max"].is_null());
                assert_eq!(v["amount_out_min"], want.limit.to_string());
            }
            Exact::Out => {
                assert_eq!(v["amount_out"], amount);
                assert!(v["amount_in"].is_null() && v["amount_out_min"].is_null());
                assert_eq!(v["amount_in_max"], want.limit.to_string());
            }
        }
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 17);
    }
    let line = String::from_utf8(fixture("06_notification_pendingTx_full.json")).unwrap();
    let mut out = String::new();
    decode_notification_line(line.as_bytes(), &mut out).unwrap();
    assert!(out.starts_with(
        "{\"type\":\"pending_swap\",\"tx_hash\":\"0xa52a3942a630863cf9f8eef4ad2c62a5d8ca66a80adb6409658d6a4314a69082\",\"from\":\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\",\"nonce\":9,"
    ));
}

#[test]
fn other_frames_print_nothing_and_bad_frames_are_errors() {
    let mut out = String::new();
    for name in [
        "03_response_newHeads.json",
        "04_response_newPendingTransactions_fullTx.json",
        "07_notification_pendingTx_hash.json",
        "14_notification_newHead.json",
    ] {
        assert_eq!(decode_notification_line(&fixture(name), &mut out), Ok(0), "{name}");
    }
    assert!(out.is_empty());
    let Ok(Notification::Head(h)) = parse_notification(&fixture("14_notification_newHead.json")) else { panic!() };
    assert_eq!(h.number, 10);
    assert_eq!(h.timestamp, 0x6b0575a8);
    let Ok(Notification::PendingHash(_)) = parse_notification(&fixture("07_notification_pendingTx_hash.json")) else {
        panic!()
    };
    for bad in [&b"{"[..], b"[]", b"{\"method\":\"eth_subscription\"}", b"not json"] {
        assert!(decode_notification_line(bad, &mut out).is_err());
    }
    let frame = String::from_utf8(fixture("06_notification_pendingTx_full.json")).unwrap();
    // A plain ETH transfer is a valid frame without a swap.
    let start = frame.find("\"input\":\"0x").unwrap() + 11;
    let end = start + frame[start..].find('"').unwrap();
    let transfer = format!("{}{}", &frame[..start], &frame[end..]);
    assert_eq!(decode_notification_line(transfer.as_bytes(), &mut out), Ok(0));
    // Odd-length hex, and a swap with truncated calldata.
    let odd = frame.replace("\"input\":\"0x38ed", "\"input\":\"0x38e");
    assert!(decode_notification_line(odd.as_bytes(), &mut out).is_err());
    let cut = frame.replace("00000000000000000000000000000000000000000000000000000000000000a0", "00");
    assert!(matches!(decode_notification_line(cut.as_bytes(), &mut out), Err(DecodeLineError::Calldata(_))));
    assert!(out.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_calldata_never_panics(sel_pick in 0usize..64, body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let cases = swap_cases();
        let mut data = cases[sel_pick % cases.len()].0.to_vec();
        data.extend_from_slice(&body);
        let _ = decode_swaps(&data, U256::from(1), &mut Vec::new());
    }

    #[test]
    fn mutated_valid_calldata_never_panics(case in 0usize..64, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let cases = swap_cases();
        let mut data = cases[case % cases.len()].1.clone();
        for (at, b) in flips {
            let i = at % data.len();
            data[i] = b;
        }
        let _ = decode_swaps(&data, U256::from(1), &mut Vec::new());
    }

    #[test]
    fn arbitrary_frames_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_notification_line(&frame, &mut String::new());
    }
}

#[test]
fn extra_non_swap_selectors_match_their_signatures() {
    use crossbar_connectors::eth::router::NON_SWAP_SELECTORS;
    for sig in ["getAmountsOut(uint256,address[])", "getAmountsIn(uint256,address[])", "WETH()", "factory()"] {
        let sel: [u8; 4] = keccak256(sig.as_bytes())[..4].try_into().unwrap();
        let name = NON_SWAP_SELECTORS.iter().find(|(s, _)| *s == sel).map(|(_, n)| *n);
        assert_eq!(name, Some(&sig[..sig.find('(').unwrap()]), "{sig}");
    }
}
