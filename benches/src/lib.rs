//! Shared fixtures of crossbar's benches and hot-path tests: a small instrument set, recorded
//! style frames, and a harness that drives the real per-event path without sockets.
//!
//! It also holds what `crossbar bench` is made of: a loopback [`replay`] venue for market data,
//! the real threaded [`pipeline`] under it (its orders signed and written to an embedded venue
//! simulator's order sockets, or to the paper matcher), the same-run [`floor`]s, and the latency
//! gate's [`budget`].
#![forbid(unsafe_code)]

pub mod budget;
pub mod floor;
pub mod pipeline;
pub mod replay;

use std::sync::Arc;

use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::SymbolTable;
use crossbar_connectors::io::FramePipeline;
use crossbar_engine::core::Core;
use crossbar_engine::event::{MarketEvent, OrderCommand, OrderEvent};
use crossbar_engine::gateway::Gateway;
use crossbar_engine::instrument::{InstrumentConfig, InstrumentKind, Registry};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::Ring;
use crossbar_engine::risk::RiskConfig;
use crossbar_strategies::{AnyStrategy, BasisConfig, basis::LegRef};

/// Venue names of the fixture.
pub const SPOT: &str = "binance-spot";
/// Venue names of the fixture.
pub const USDM: &str = "binance-usdm";

/// BTCUSDT on Binance spot and USD-M, with the demo's ticks, lots and fees.
pub fn registry() -> Arc<Registry> {
    let inst = |venue: &str, kind, tick: &str, lot: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        kind,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: tick.parse().unwrap(),
        lot: lot.parse().unwrap(),
        contract_size: 1.into(),
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0.0002".parse().unwrap(),
    };
    let venues = [SPOT.to_owned(), USDM.to_owned()];
    Arc::new(
        Registry::new(
            &venues,
            &[
                inst(SPOT, InstrumentKind::Spot, "0.01", "0.00001"),
                inst(USDM, InstrumentKind::Perpetual, "0.1", "0.001"),
            ],
        )
        .unwrap(),
    )
}

/// A basis strategy on the fixture's two instruments, eager to trade.
pub fn basis_strategy(registry: &Registry) -> AnyStrategy {
    let cfg = BasisConfig {
        name: "basis".into(),
        spot: LegRef { venue: SPOT.into(), symbol: "BTCUSDT".into() },
        perp: LegRef { venue: USDM.into(), symbol: "BTCUSDT".into() },
        qty: "0.01".parse().unwrap(),
        entry_bps: "2".parse().unwrap(),
        exit_bps: "1".parse().unwrap(),
        max_clips: 3,
        cooldown_ms: 0,
        hedge_slippage_bps: "5".parse().unwrap(),
        horizon_ms: 0,
        funding_interval_ms: 8 * 3_600_000,
        max_unhedged_ms: 500,
        max_unhedged_qty: "0".parse().unwrap(),
        exit_on_negative_funding: true,
    };
    AnyStrategy::Basis(crossbar_strategies::BasisStrategy::new(&cfg, registry).unwrap())
}

/// A spot `bookTicker` frame as Binance sends it on a combined stream.
pub fn spot_book_ticker(update_id: u64, bid: &str, ask: &str) -> Vec<u8> {
    format!(r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{update_id},"s":"BTCUSDT","b":"{bid}","B":"1.50000000","a":"{ask}","A":"2.25000000"}}}}"#).into_bytes()
}

/// A USD-M `bookTicker` frame as Binance sends it on a combined stream.
pub fn usdm_book_ticker(update_id: u64, bid: &str, ask: &str) -> Vec<u8> {
    format!(r#"{{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{update_id},"E":1568014460893,"T":1568014460891,"s":"BTCUSDT","b":"{bid}","B":"3.000","a":"{ask}","A":"4.000"}}}}"#).into_bytes()
}

/// The whole per-event path of one I/O thread and one core, driven synchronously: frame →
/// decode → ring → core (books, strategy, risk, OMS) → command ring → gateway → order events →
/// core. Exactly the functions the threads call, minus the sockets.
pub struct HotPath {
    /// Spot decoder.
    pub spot: BinanceDecoder,
    /// USD-M decoder.
    pub usdm: BinanceDecoder,
    /// The I/O side's frame pipeline.
    pub pipeline: FramePipeline,
    /// Paper gateway.
    pub gateway: PaperGateway,
    /// Core.
    pub core: Core<AnyStrategy>,
    /// Market ring.
    pub market: Arc<Ring<MarketEvent>>,
    /// Command ring.
    pub commands: Arc<Ring<OrderCommand>>,
    /// Order-event ring.
    pub orders: Arc<Ring<OrderEvent>>,
    /// Frame buffer.
    pub frame: Vec<u8>,
}

impl HotPath {
    /// Builds the path with the fixture registry and a basis strategy; paper latency zero so
    /// fills come back on the next poll.
    pub fn new() -> Self {
        let registry = registry();
        let venue = |n: &str| registry.venue_id(n).unwrap();
        let strategy = basis_strategy(&registry);
        Self {
            spot: BinanceDecoder::new(BinanceMarket::Spot, SymbolTable::for_venue(&registry, venue(SPOT))),
            usdm: BinanceDecoder::new(BinanceMarket::UsdM, SymbolTable::for_venue(&registry, venue(USDM))),
            pipeline: FramePipeline::new(),
            gateway: PaperGateway::new(Arc::clone(&registry), &PaperConfig { latency_us: 0, max_resting: 64 }),
            core: Core::new(Arc::clone(&registry), vec![strategy], RiskConfig::default()),
            market: Ring::new(1024),
            commands: Ring::new(256),
            orders: Ring::new(256),
            frame: Vec::with_capacity(4096),
        }
    }

    /// Runs one frame through everything; `usdm` picks the decoder. Returns commands sent.
    pub fn step(&mut self, frame: &[u8], usdm: bool, now_ns: u64) -> u64 {
        self.frame.clear();
        self.frame.extend_from_slice(frame);
        let decoder = if usdm { &mut self.usdm } else { &mut self.spot };
        self.pipeline.on_frame(decoder, &mut self.frame, now_ns, &mut self.gateway, &self.market);
        let commands = &self.commands;
        let mut sent = 0;
        while let Some(ev) = self.market.pop() {
            self.core.on_market(&ev, now_ns, now_ns, &mut |c| {
                sent += 1;
                commands.push_lossless(c);
            });
        }
        while let Some(cmd) = self.commands.pop() {
            self.pipeline.on_command(&cmd, &mut self.gateway);
        }
        let orders = &self.orders;
        self.gateway.poll(u64::MAX, &mut |ev| orders.push_lossless(ev));
        while let Some(ev) = self.orders.pop() {
            self.core.on_order(&ev, now_ns, &mut |c| {
                sent += 1;
                commands.push_lossless(c);
            });
        }
        sent
    }
}

impl Default for HotPath {
    fn default() -> Self {
        Self::new()
    }
}
