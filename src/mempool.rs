//! `crossbar mempool`: watch a node's pending transactions and print one JSON line per decoded
//! Uniswap swap, with the exact V2 prediction against the pending state.
//!
//! The connection life cycle (full-transaction or hash subscriptions, heads, reconnect with
//! backoff, resubscribe, resync) is [`MempoolWatcher`]'s; this module wires the arguments and
//! prints. Reorgs and reconnects are reported on stderr, skip counts at the end. The line schema
//! is [`crossbar_connectors::eth::output`]'s.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbar_connectors::eth::output::write_pending_swap;
use crossbar_connectors::eth::rpc::RpcClient;
use crossbar_connectors::eth::tracker::SwapTracker;
use crossbar_connectors::eth::watch::{MempoolWatcher, WatchEvent};
use crossbar_connectors::eth::{Address, MAINNET_V2_FACTORY, MAINNET_V2_ROUTER02};

/// Arguments of `crossbar mempool`.
#[derive(Debug, clap::Args)]
pub struct MempoolArgs {
    /// The node's websocket JSON-RPC endpoint, `ws://HOST:PORT`.
    #[arg(long)]
    pub rpc: String,
    /// Uniswap V2 factory whose pairs are priced. Default: mainnet's.
    #[arg(long, default_value_t = MAINNET_V2_FACTORY)]
    pub factory: Address,
    /// Router addresses whose transactions are decoded (repeatable). Default: mainnet Router02.
    #[arg(long = "router")]
    pub routers: Vec<Address>,
    /// Seconds to run (default: until interrupted).
    #[arg(long)]
    pub duration: Option<f64>,
}

const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `crossbar mempool`.
///
/// # Errors
/// A bad `--duration`, or a write to stdout failing; node errors are retried, not returned.
pub fn mempool(args: &MempoolArgs) -> anyhow::Result<ExitCode> {
    let stop_at = match args.duration {
        Some(d) if d.is_finite() && d >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(d)),
        Some(d) => anyhow::bail!("--duration must be a non-negative number of seconds, not {d}"),
        None => None,
    };
    let routers = if args.routers.is_empty() { vec![MAINNET_V2_ROUTER02] } else { args.routers.clone() };
    // WETH from the first router (`WETH()`), for the ETH-variant path check; optional.
    let weth = RpcClient::connect(&args.rpc, RPC_TIMEOUT)
        .ok()
        .and_then(|mut c| c.eth_call(routers[0], &[0xad, 0x5c, 0x46, 0x48]).ok())
        .filter(|r| r.len() == 32)
        .map(|r| Address::from_slice(&r[12..]));
    let tracker = SwapTracker::new(args.factory, weth, routers);
    let mut watcher = MempoolWatcher::new(&args.rpc, tracker, RPC_TIMEOUT);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut line = String::with_capacity(1024);
    let mut events = Vec::with_capacity(8);
    let mut printed = 0u64;
    loop {
        let wait = match stop_at {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(1),
        };
        if wait.is_zero() {
            break;
        }
        events.clear();
        match watcher.poll(wait.min(Duration::from_secs(1)), &mut events) {
            WatchEvent::Disconnected(e) => eprintln!("crossbar mempool: {e}; reconnecting"),
            WatchEvent::Connected if watcher.connects > 1 => {
                eprintln!("crossbar mempool: reconnected, reserves reloaded")
            }
            WatchEvent::Head { number, reorg: true } => eprintln!("crossbar mempool: reorg at block {number}"),
            _ => {}
        }
        for ev in &events {
            line.clear();
            write_pending_swap(&mut line, &ev.meta, &ev.swap, ev.prediction.as_ref());
            out.write_all(line.as_bytes()).context("writing to stdout")?;
            printed += 1;
        }
        if !events.is_empty() {
            out.flush().context("writing to stdout")?;
        }
    }
    let s = watcher.tracker().skips;
    eprintln!(
        "crossbar mempool: {printed} pending swaps; skipped: {} not to a router, {} unknown selector, {} not a \
         swap, {} malformed",
        s.not_router, s.unknown_selector, s.not_a_swap, s.malformed
    );
    Ok(ExitCode::SUCCESS)
}
