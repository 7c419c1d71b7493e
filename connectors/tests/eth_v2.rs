//! Uniswap V2 exact pricing with hand-computed numbers: the pair formulas, pair addresses, the
//! pending-state pool map (several swaps on one pair, two hops, exact out, reverse direction),
//! revert predictions and price impact.

use alloy_primitives::{Address, U256, address};
use crossbar_connectors::eth::router::{Exact, Method, Path, Protocol, SwapCall};
use crossbar_connectors::eth::v2::{self, RevertReason, V2Error, V2Pools, impact_bps, pair_address};
use crossbar_connectors::eth::{MAINNET_V2_FACTORY, MAINNET_WETH};

const A: Address = address!("1111111111111111111111111111111111111111");
const B: Address = address!("2222222222222222222222222222222222222222");
const C: Address = address!("3333333333333333333333333333333333333333");
const FACTORY: Address = address!("5fbdb2315678afecb367f032d93f642f64180aa3");

fn u(v: u128) -> U256 {
    U256::from(v)
}

fn swap(exact: Exact, path: &[Address], amount: u128, limit: u128, deadline: u128) -> SwapCall {
    let method = match exact {
        Exact::In => Method::SwapExactTokensForTokens,
        Exact::Out => Method::SwapTokensForExactTokens,
    };
    SwapCall {
        protocol: Protocol::UniswapV2,
        method,
        exact,
        path: Path::from_tokens(path).unwrap(),
        amount: u(amount),
        limit: u(limit),
        deadline: Some(u(deadline)),
        recipient: A,
    }
}

#[test]
fn pair_formulas_match_hand_computation() {
    // 1000·997·10000 / (10000·1000 + 1000·997) = 9 970 000 000 / 10 997 000 = 906.6…
    assert_eq!(v2::amount_out(u(1000), u(10_000), u(10_000)), Ok(u(906)));
    // 10000·906·1000 / ((10000 − 906)·997) + 1 = 9 060 000 000 / 9 066 718 + 1 = 999 + 1
    assert_eq!(v2::amount_in(u(906), u(10_000), u(10_000)), Ok(u(1000)));
    let e18 = 1_000_000_000_000_000_000u128;
    assert_eq!(v2::amount_out(u(e18), u(100 * e18), u(200 * e18)), Ok(u(1_974_316_068_794_122_597)));
    assert_eq!(v2::amount_out(U256::ZERO, u(1), u(1)), Err(V2Error::InsufficientAmount));
    assert_eq!(v2::amount_out(u(1), U256::ZERO, u(1)), Err(V2Error::InsufficientLiquidity));
    assert_eq!(v2::amount_in(u(10), u(10), u(10)), Err(V2Error::InsufficientLiquidity));
    assert_eq!(v2::amount_out(U256::MAX, u(1), u(1)), Err(V2Error::Overflow));
}

#[test]
fn pair_address_is_mainnet_create2() {
    let usdc = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
    let pair = address!("B4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc");
    assert_eq!(pair_address(MAINNET_V2_FACTORY, usdc, MAINNET_WETH, v2::PAIR_INIT_CODE_HASH), pair);
    assert_eq!(pair_address(MAINNET_V2_FACTORY, MAINNET_WETH, usdc, v2::PAIR_INIT_CODE_HASH), pair);
}

fn pools() -> V2Pools {
    let mut p = V2Pools::new(FACTORY, None);
    let ab = p.pair_for(A, B);
    p.set_reserves(ab, A, B, u(10_000), u(10_000));
    p
}

#[test]
fn pending_swaps_on_one_pool_apply_in_arrival_order() {
    let mut p = pools();
    let ab = p.pair_for(A, B);
    let s1 = p.predict(&swap(Exact::In, &[A, B], 1000, 900, 100), 50).unwrap();
    assert_eq!(s1.amounts(), &[u(1000), u(906)]);
    assert_eq!(s1.pools(), &[ab]);
    assert!(!s1.would_revert());
    assert_eq!(p.get(&ab).unwrap().pending, (u(11_000), u(9094)));
    // 1000·997·9094 / (11000·1000 + 997 000) = 755.7…
    let s2 = p.predict(&swap(Exact::In, &[A, B], 1000, 0, 100), 50).unwrap();
    assert_eq!(s2.amount_out(), u(755));
    // Exact out from (12000, 8339): 12000·500·1000 / (7839·997) + 1 = 767 + 1
    let s3 = p.predict(&swap(Exact::Out, &[A, B], 500, 768, 100), 50).unwrap();
    assert_eq!(s3.amount_in(), u(768));
    assert!(!s3.would_revert());
    assert_eq!(p.get(&ab).unwrap().pending, (u(12_768), u(7839)));
    // The other direction: B in, A out, from (12768, 7839).
    let s4 = p.predict(&swap(Exact::In, &[B, A], 1000, 0, 100), 50).unwrap();
    let want = 1000u128 * 997 * 12_768 / (7839 * 1000 + 997_000);
    assert_eq!(s4.amount_out(), u(want));
    assert_eq!(p.get(&ab).unwrap().pending, (u(12_768 - want), u(8839)));
    p.reset_pending();
    assert_eq!(p.get(&ab).unwrap().pending, (u(10_000), u(10_000)));
}

#[test]
fn two_hop_paths_exact_in_and_out() {
    let mut p = V2Pools::new(FACTORY, None);
    let (ab, bc) = (p.pair_for(A, B), p.pair_for(B, C));
    p.set_reserves(ab, A, B, u(1_000_000), u(2_000_000));
    p.set_reserves(bc, B, C, u(3_000_000), u(1_000_000));
    let r = p.predict(&swap(Exact::In, &[A, B, C], 10_000, 0, 100), 0).unwrap();
    assert_eq!(r.amounts(), &[u(10_000), u(19_743), u(6518)]);
    assert_eq!(r.pools(), &[ab, bc]);
    p.reset_pending();
    let r = p.predict(&swap(Exact::Out, &[A, B, C], 5000, 10_000, 100), 0).unwrap();
    assert_eq!(r.amounts(), &[u(7642), u(15_121), u(5000)]);
}

#[test]
fn reverting_swaps_are_flagged_and_not_applied() {
    let mut p = pools();
    let ab = p.pair_for(A, B);
    let r = p.predict(&swap(Exact::In, &[A, B], 1000, 907, 100), 0).unwrap();
    assert_eq!(r.revert, Some(RevertReason::InsufficientOutput));
    assert_eq!(r.amount_out(), u(906));
    let r = p.predict(&swap(Exact::Out, &[A, B], 906, 999, 100), 0).unwrap();
    assert_eq!(r.revert, Some(RevertReason::ExcessiveInput));
    let r = p.predict(&swap(Exact::In, &[A, B], 1000, 0, 99), 100).unwrap();
    assert_eq!(r.revert, Some(RevertReason::Expired));
    let r = p.predict(&swap(Exact::Out, &[A, B], 10_000, u128::MAX, 100), 0).unwrap();
    assert_eq!(r.revert, Some(RevertReason::Pair(V2Error::InsufficientLiquidity)));
    assert_eq!(p.get(&ab).unwrap().pending, (u(10_000), u(10_000)));
    // ETH variants must start at WETH when WETH is known.
    let mut q = V2Pools::new(FACTORY, Some(C));
    q.set_reserves(ab, A, B, u(10_000), u(10_000));
    let mut s = swap(Exact::In, &[A, B], 1000, 0, 100);
    s.method = Method::SwapExactEthForTokens;
    assert_eq!(q.predict(&s, 0).unwrap().revert, Some(RevertReason::InvalidPath));
    // Unknown pools are reported, not guessed.
    assert!(p.missing_pool(&swap(Exact::In, &[A, C], 1, 0, 1)).is_some());
    assert!(p.predict(&swap(Exact::In, &[A, C], 1, 0, 1), 0).is_err());
}

#[test]
fn price_impact_in_bps() {
    // ideal = 1000·10000·997/(10000·1000) = 997; (997 − 906)·10000/997 = 912.7
    assert_eq!(impact_bps(u(1000), u(906), &[(u(10_000), u(10_000))]), 912);
    assert_eq!(impact_bps(u(1), u(0), &[(u(1_000_000), u(1_000_000))]), 0);
    let mut p = pools();
    assert_eq!(p.predict(&swap(Exact::In, &[A, B], 1000, 0, 100), 0).unwrap().price_impact_bps, 912);
    // A tiny trade on a deep pool has no impact beyond rounding.
    let mut q = V2Pools::new(FACTORY, None);
    let ab = q.pair_for(A, B);
    let e24 = 1_000_000_000_000_000_000_000_000u128;
    q.set_reserves(ab, A, B, u(e24), u(2 * e24));
    assert_eq!(q.predict(&swap(Exact::In, &[A, B], 1_000_000_000, 0, 100), 0).unwrap().price_impact_bps, 0);
}
