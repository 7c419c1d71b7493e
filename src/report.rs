//! The end-of-run report: what a desk reads after `crossbar run`, as a table and as JSON.
//!
//! Money and quantities are decimal strings (exact), latencies are integer nanoseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crossbar_connectors::eth::feed::DexCounters;
use crossbar_connectors::io::IoReport;
use crossbar_engine::core::Core;
use crossbar_engine::event::Side;
use crossbar_engine::gateway::VenueCounters;
use crossbar_engine::instrument::VenueId;
use crossbar_engine::latency::{LatencyRecorder, Stage, StageSummary};
use crossbar_engine::oms::OrderState;
use crossbar_engine::strategy::{Strategy, StrategyId};
use crossbar_strategies::AnyStrategy;
use rust_decimal::Decimal;
use serde::Serialize;

/// The JSON report; key names are a contract with users' tooling.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Wall-clock seconds the engine ran.
    pub duration_s: f64,
    /// Market events.
    pub events: Events,
    /// Orders.
    pub orders: Orders,
    /// Stage name → percentiles.
    pub latency_ns: BTreeMap<&'static str, StageSummary>,
    /// Non-flat positions.
    pub positions: Vec<PositionRow>,
    /// PnL in total.
    pub pnl: Pnl,
    /// Per strategy figures.
    pub strategies: BTreeMap<String, StrategyRow>,
    /// Pre-trade risk.
    pub risk: RiskRow,
    /// Delta hedging: underlying → net delta, band, worst |net| after a hedge, hedges.
    pub delta: BTreeMap<String, DeltaRow>,
    /// Portfolio greeks per hedged underlying.
    pub greeks: BTreeMap<String, GreeksRow>,
    /// Smart order router.
    pub router: RouterRow,
    /// Depth books: `venue:symbol` → sequencing health.
    pub books: BTreeMap<String, BookRow>,
    /// I/O thread counters (bad input, reconnects, conflation).
    pub io: Io,
    /// Feed health per venue: connection and book-sync counters, time to whole.
    pub feeds: BTreeMap<String, FeedRow>,
    /// Gateway protocol per venue.
    pub gateway: &'static str,
    /// Order entry per venue: the protocol its orders went over and what it did.
    pub venues: BTreeMap<String, VenueRow>,
    /// Where the config came from.
    pub config: String,
    /// The order journal (all zeros when no `[journal]` is configured).
    pub journal: JournalRow,
    /// The DEX feed and its pools (present when `[dex]` is configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dex: Option<DexRow>,
}

/// One underlying's delta hedging.
#[derive(Debug, Serialize)]
pub struct DeltaRow {
    /// Net delta at the end, units of the underlying.
    pub net: String,
    /// Band at the end, units of the underlying.
    pub band: String,
    /// Largest |net delta| right after a hedge completed (≤ band when every hedge filled).
    pub max_abs_after_hedge: String,
    /// Hedge orders that filled.
    pub hedges: u64,
}

/// One underlying's portfolio greeks (options and LP; delta includes positions).
#[derive(Debug, Serialize)]
pub struct GreeksRow {
    /// Net delta, units of underlying.
    pub delta: String,
    /// Gamma, units of underlying per unit of price.
    pub gamma: String,
    /// Theta, quote per year.
    pub theta: String,
    /// Vega, quote per 1.00 of volatility.
    pub vega: String,
}

/// `dex` section.
#[derive(Debug, Serialize)]
pub struct DexRow {
    /// What the feed thread did.
    pub feed: DexCounters,
    /// Pool symbol → its state at the end of the run.
    pub pools: BTreeMap<String, PoolRow>,
}

/// One pool at the end of the run.
#[derive(Debug, Serialize)]
pub struct PoolRow {
    /// Block of the confirmed reserves.
    pub block: u64,
    /// Confirmed reserves (base, quote), base units, as decimal strings.
    pub reserves: [String; 2],
    /// Pending-adjusted reserves (base, quote).
    pub pending_reserves: [String; 2],
    /// Quote per base at the last block.
    pub price: Option<String>,
    /// Quote per base after the pending swaps.
    pub pending_price: Option<String>,
    /// Pending swaps seen since that block.
    pub pending_swaps: u32,
}

/// `journal` section: what the order journal wrote this run and what it recovered at start.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct JournalRow {
    /// Records written this run (recovered ones not included).
    pub records: u64,
    /// Bytes written this run.
    pub bytes: u64,
    /// Syncs to disk this run.
    pub fsyncs: u64,
    /// Records read back from the journal at start and replayed into orders and positions.
    pub recovered_records: u64,
    /// Bytes of a torn last record cut off at start (0: the journal ended cleanly).
    pub truncated_bytes: u64,
    /// Differences found reconciling the recovered orders with the venue at start.
    pub reconciled: u64,
}

/// `events` section.
#[derive(Debug, Serialize)]
pub struct Events {
    /// Market events that reached the core.
    pub market: u64,
    /// Market events dropped (conflated quotes).
    pub dropped: u64,
    /// Market events per second.
    pub per_s: f64,
    /// Order events that reached the core.
    pub order: u64,
    /// Funding settlements booked.
    pub funding_settlements: u64,
}

/// `orders` section.
#[derive(Debug, Serialize)]
pub struct Orders {
    /// Orders sent.
    pub sent: u64,
    /// Orders completely filled.
    pub filled: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Individual fills.
    pub fills: u64,
    /// Orders cancelled or expired (IOC remainder).
    pub cancelled: u64,
    /// Intents refused by pre-trade risk.
    pub risk_refused: u64,
    /// Duplicate order events ignored.
    pub duplicates: u64,
    /// Order state → times an order entered it (new, sent, acked, partially_filled, filled,
    /// cancel_pending, cancelled, rejected, expired).
    pub transitions: BTreeMap<&'static str, u64>,
    /// Fills that arrived before their order's ack.
    pub fill_before_ack: u64,
    /// Order events for orders this engine never sent.
    pub unknown: u64,
}

/// One position.
#[derive(Debug, Serialize)]
pub struct PositionRow {
    /// Venue name.
    pub venue: String,
    /// Venue symbol.
    pub symbol: String,
    /// Signed quantity.
    pub qty: String,
    /// Average entry price.
    pub avg_px: String,
    /// Realized PnL.
    pub realized: String,
    /// Fees paid.
    pub fees: String,
    /// Funding received (negative: paid).
    pub funding: String,
}

/// `pnl` section.
#[derive(Debug, Serialize)]
pub struct Pnl {
    /// Realized, before fees and funding.
    pub realized: String,
    /// Unrealized at mark.
    pub unrealized: String,
    /// Fees paid.
    pub fees: String,
    /// Funding received (negative: paid).
    pub funding: String,
    /// realized + unrealized − fees + funding.
    pub net: String,
}

/// One depth book's health.
#[derive(Debug, Serialize)]
pub struct BookRow {
    /// In sequence at the end of the run.
    pub whole: bool,
    /// Sequence gaps detected (each made the book not whole and triggered a resync).
    pub gaps: u64,
    /// Resyncs completed.
    pub resyncs: u64,
    /// Stale or duplicate messages ignored.
    pub stale: u64,
    /// Longest time from a gap (or disconnect) to whole again, ns.
    pub max_time_to_whole_ns: u64,
    /// Bid and ask levels held.
    pub levels: [usize; 2],
}

/// One venue's feed health (`feeds` section).
#[derive(Debug, Default, Serialize)]
pub struct FeedRow {
    /// Connections made after the first one per feed.
    pub reconnects: u64,
    /// Connections lost (errors, closes, shutdown notices).
    pub disconnects: u64,
    /// Venue shutdown notices received (each answered by a reconnect).
    pub server_shutdowns: u64,
    /// Malformed frames dropped.
    pub malformed: u64,
    /// Sequence gaps detected in the venue's depth books.
    pub gaps: u64,
    /// Duplicate or stale book messages ignored.
    pub duplicates: u64,
    /// Times a depth book became whole again after a gap or a disconnect.
    pub resyncs: u64,
    /// From a gap or disconnect to the book whole again, ms: `last` is the largest of the
    /// venue's books' latest (`null` before any), `max` the longest seen.
    pub time_to_whole_ms: Millis,
    /// From a lost connection to connected again, ms.
    pub reconnect_ms: Millis,
}

/// One venue's order entry (`venues` section).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct VenueRow {
    /// The protocol its orders went over (`binance-ws-api`, `bybit-v5-ws`, `okx-v5-ws`), or
    /// `paper` when configured so.
    pub gateway: &'static str,
    /// New orders written to the venue.
    pub orders_sent: u64,
    /// Orders the venue accepted.
    pub acks: u64,
    /// Fills received (each partial fill counts).
    pub fills: u64,
    /// Orders or cancels the venue refused.
    pub rejects: u64,
    /// Cancels written to the venue.
    pub cancels_sent: u64,
    /// Fills seen twice (same trade id) and dropped.
    pub duplicate_fills: u64,
    /// Private frames that could not be decoded.
    pub malformed: u64,
    /// Private frames of a kind the session does not use.
    pub unknown: u64,
    /// Account pushes (balances, positions) read and not acted on.
    pub account_updates: u64,
    /// Successful connects and logins.
    pub connects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Commands refused because the session was not connected and logged in.
    pub not_ready: u64,
    /// Cancel-all requests sent on reconnect.
    pub cancel_alls: u64,
    /// Requests the venue refused for its rate limit.
    pub rate_limited: u64,
    /// Venue clock minus local wall clock, ms (latest estimate).
    pub clock_offset_ms: i64,
    /// Rate-limit budget used in the venue's current window, as it reported.
    pub rate_used: u64,
    /// That window's limit (0: not reported).
    pub rate_limit: u64,
}

impl From<&VenueCounters> for VenueRow {
    fn from(c: &VenueCounters) -> Self {
        Self {
            gateway: c.gateway,
            orders_sent: c.orders_sent,
            acks: c.acks,
            fills: c.fills,
            rejects: c.rejects,
            cancels_sent: c.cancels_sent,
            duplicate_fills: c.duplicate_fills,
            malformed: c.malformed,
            unknown: c.unknown,
            account_updates: c.account_updates,
            connects: c.connects,
            disconnects: c.disconnects,
            not_ready: c.not_ready,
            cancel_alls: c.cancel_alls,
            rate_limited: c.rate_limited,
            clock_offset_ms: c.clock_offset_ms,
            rate_used: c.rate_used,
            rate_limit: c.rate_limit,
        }
    }
}

/// The `venues` section: one row per venue the gateway reported, by venue name.
pub fn venue_rows(counters: &[VenueCounters], venue_name: impl Fn(VenueId) -> String) -> BTreeMap<String, VenueRow> {
    counters.iter().map(|c| (venue_name(c.venue), VenueRow::from(c))).collect()
}

/// A latest and a longest duration, ms.
#[derive(Debug, Default, Serialize)]
pub struct Millis {
    /// The latest, `null` when none happened.
    pub last: Option<f64>,
    /// The longest (0 when none happened).
    pub max: f64,
}

fn ms(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// `risk` section.
#[derive(Debug, Serialize)]
pub struct RiskRow {
    /// Refusal reason → count (every reason listed, zeros included).
    pub refusals: BTreeMap<&'static str, u64>,
    /// True when the kill switch was engaged during the run.
    pub kill_switch: bool,
    /// True when the drawdown circuit breaker tripped.
    pub circuit_breaker: bool,
    /// Drawdown of total PnL from its peak at the last check, quote currency.
    pub drawdown: String,
}

/// `router` section.
#[derive(Debug, Serialize)]
pub struct RouterRow {
    /// Intents routed.
    pub intents: u64,
    /// IOC child orders sent.
    pub children: u64,
    /// Unfilled rests routed again.
    pub reroutes: u64,
    /// Venues skipped while planning (book not whole, stale, rate-limited).
    pub venues_skipped: u64,
    /// Intents that ended with quantity unfilled.
    pub unfilled: u64,
}

/// Per-strategy figures.
#[derive(Debug, Serialize)]
pub struct StrategyRow {
    /// Orders sent.
    pub orders: u64,
    /// Fills received.
    pub fills: u64,
    /// Realized PnL of its own book.
    pub realized: String,
    /// Unrealized PnL at mark.
    pub unrealized: String,
    /// Fees paid.
    pub fees: String,
    /// Funding received (negative: paid).
    pub funding: String,
    /// Entries decided.
    pub entries: u64,
    /// Exits decided.
    pub exits: u64,
    /// Residual repairs.
    pub repairs: u64,
    /// Longest time quantity stayed unhedged, ns.
    pub max_unhedged_ns: u64,
}

/// `io` section.
#[derive(Debug, Serialize)]
pub struct Io {
    /// Frames read.
    pub frames: u64,
    /// Malformed frames dropped.
    pub decode_errors: u64,
    /// Frames of unknown kind.
    pub unknown_frames: u64,
    /// Connects.
    pub connects: u64,
    /// Disconnects.
    pub disconnects: u64,
    /// Venue shutdown notices.
    pub server_shutdowns: u64,
    /// Commands the gateway refused.
    pub gateway_errors: u64,
}

fn money(d: Decimal) -> String {
    d.round_dp(8).normalize().to_string()
}

impl Report {
    /// Gathers the report from the stopped threads.
    pub fn build(core: &Core<AnyStrategy>, io: &IoReport, duration_s: f64, config: String) -> Self {
        let mut latency = LatencyRecorder::new();
        latency.merge(core.latency());
        latency.merge(&io.latency);
        let registry = core.registry();
        let oms = core.oms().counters();
        let totals = core.portfolio().totals(registry, core.books());
        let positions = registry
            .instruments()
            .iter()
            .filter_map(|inst| {
                let p = core.portfolio().get(inst.id);
                (p.fills > 0).then(|| PositionRow {
                    venue: registry.venue_name(inst.venue).to_owned(),
                    symbol: inst.symbol.clone(),
                    qty: p.qty.normalize().to_string(),
                    avg_px: money(p.avg_px),
                    realized: money(p.realized),
                    fees: money(p.fees),
                    funding: money(p.funding),
                })
            })
            .collect();
        let strategies = core
            .strategies()
            .iter()
            .zip(core.strategy_counters())
            .enumerate()
            .map(|(i, (s, counters))| {
                let (entries, exits, repairs, max_unhedged_ns) = match s {
                    AnyStrategy::Basis(b) => (b.entries, b.exits, b.repairs, b.max_unhedged_seen_ns),
                    AnyStrategy::Hedger(h) => (h.hedges, 0, 0, 0),
                    AnyStrategy::Fade(f) => (f.clips, 0, 0, 0),
                };
                let pnl = core.portfolio().strategy_totals(StrategyId(i as u16), registry, core.books());
                let row = StrategyRow {
                    orders: counters.orders,
                    fills: counters.fills,
                    realized: money(pnl.realized),
                    unrealized: money(pnl.unrealized),
                    fees: money(pnl.fees),
                    funding: money(pnl.funding),
                    entries,
                    exits,
                    repairs,
                    max_unhedged_ns,
                };
                (s.name().to_owned(), row)
            })
            .collect();
        let (mut delta, mut greeks) = (BTreeMap::new(), BTreeMap::new());
        for s in core.strategies() {
            let AnyStrategy::Hedger(h) = s else { continue };
            delta.insert(
                h.underlying.clone(),
                DeltaRow {
                    net: money(h.greeks.delta),
                    band: money(h.band),
                    max_abs_after_hedge: money(h.max_abs_after_hedge),
                    hedges: h.hedges,
                },
            );
            let f = |x: f64| money(Decimal::from_f64_retain(x).unwrap_or_default());
            greeks.insert(
                h.underlying.clone(),
                GreeksRow {
                    delta: money(h.greeks.delta),
                    gamma: f(h.greeks.gamma),
                    theta: f(h.greeks.theta),
                    vega: f(h.greeks.vega),
                },
            );
        }
        let books = registry
            .instruments()
            .iter()
            .filter_map(|inst| {
                let sync = core.depth_books().get(inst.id)?;
                let st = sync.stats();
                let row = BookRow {
                    whole: sync.whole(),
                    gaps: st.gaps,
                    resyncs: st.resyncs,
                    stale: st.stale + st.duplicates,
                    max_time_to_whole_ns: st.max_time_to_whole_ns,
                    levels: [sync.book().depth(Side::Buy), sync.book().depth(Side::Sell)],
                };
                Some((format!("{}:{}", registry.venue_name(inst.venue), inst.symbol), row))
            })
            .collect();
        let mut feeds: BTreeMap<String, FeedRow> = BTreeMap::new();
        for f in &io.feeds {
            let row = feeds.entry(f.venue.clone()).or_default();
            row.reconnects += f.connects.saturating_sub(1);
            row.disconnects += f.disconnects;
            row.server_shutdowns += f.server_shutdowns;
            row.malformed += f.malformed;
            if let Some(last) = f.last_reconnect_ns {
                row.reconnect_ms.last = Some(row.reconnect_ms.last.unwrap_or(0.0).max(ms(last)));
            }
            row.reconnect_ms.max = row.reconnect_ms.max.max(ms(f.max_reconnect_ns));
        }
        for inst in registry.instruments() {
            let Some(sync) = core.depth_books().get(inst.id) else { continue };
            let st = sync.stats();
            let row = feeds.entry(registry.venue_name(inst.venue).to_owned()).or_default();
            row.gaps += st.gaps;
            row.duplicates += st.duplicates + st.stale;
            row.resyncs += st.resyncs;
            if let Some(last) = st.last_time_to_whole_ns {
                row.time_to_whole_ms.last = Some(row.time_to_whole_ms.last.unwrap_or(0.0).max(ms(last)));
            }
            row.time_to_whole_ms.max = row.time_to_whole_ms.max.max(ms(st.max_time_to_whole_ns));
        }
        let risk = RiskRow {
            refusals: core.risk().refusals().map(|(r, n)| (r.name(), n)).collect(),
            kill_switch: core.halted(),
            circuit_breaker: core.risk().breaker_tripped(),
            drawdown: money(core.risk().drawdown()),
        };
        let rc = core.router().counters();
        let router = RouterRow {
            intents: rc.intents,
            children: rc.children,
            reroutes: rc.reroutes,
            venues_skipped: rc.venues_skipped,
            unfilled: rc.unfilled,
        };
        let c = core.counters();
        let ioc = io.counters;
        Self {
            duration_s,
            events: Events {
                market: c.market_events,
                dropped: ioc.quotes_conflated,
                per_s: if duration_s > 0.0 { c.market_events as f64 / duration_s } else { 0.0 },
                order: c.order_events,
                funding_settlements: c.funding_settlements,
            },
            orders: Orders {
                sent: oms.sent,
                filled: oms.filled,
                rejected: oms.rejected,
                fills: oms.fills,
                cancelled: oms.cancelled,
                risk_refused: c.refused,
                duplicates: oms.duplicates,
                transitions: OrderState::ALL.iter().map(|st| (st.name(), oms.entered(*st))).collect(),
                fill_before_ack: oms.fill_before_ack,
                unknown: oms.unknown,
            },
            latency_ns: Stage::ALL.iter().map(|s| (s.name(), latency.summary(*s))).collect(),
            positions,
            pnl: Pnl {
                realized: money(totals.realized),
                unrealized: money(totals.unrealized),
                fees: money(totals.fees),
                funding: money(totals.funding),
                net: money(totals.net()),
            },
            strategies,
            risk,
            delta,
            greeks,
            router,
            books,
            io: Io {
                frames: ioc.frames,
                decode_errors: ioc.decode_errors,
                unknown_frames: ioc.unknown_frames,
                connects: ioc.connects,
                disconnects: ioc.disconnects,
                server_shutdowns: ioc.server_shutdowns,
                gateway_errors: ioc.gateway_errors,
            },
            feeds,
            gateway: io.gateway,
            venues: venue_rows(&io.venues, |v| registry.venue_name(v).to_owned()),
            config,
            journal: JournalRow::default(),
            dex: None,
        }
    }

    /// Adds the `dex` section: the feed's counters and every pool's final state.
    pub fn add_dex(&mut self, core: &Core<AnyStrategy>, feed: Option<DexCounters>) {
        let Some(feed) = feed else { return };
        let registry = core.registry();
        let pools = registry
            .instruments()
            .iter()
            .filter_map(|inst| {
                let p = core.pools().get(inst.id)?;
                let pair = |r: Option<crossbar_engine::event::PoolReserves>| {
                    let r = r.unwrap_or_default();
                    [r.base.get().to_string(), r.quote.get().to_string()]
                };
                let row = PoolRow {
                    block: p.block,
                    reserves: pair(p.confirmed),
                    pending_reserves: pair(p.pending),
                    price: p.confirmed_price().map(money),
                    pending_price: p.pending_price().map(money),
                    pending_swaps: p.pending_swaps,
                };
                Some((inst.symbol.clone(), row))
            })
            .collect();
        self.dex = Some(DexRow { feed, pools });
    }

    /// The human-readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "crossbar run: {:.1} s, {} ({})", self.duration_s, self.config, self.gateway);
        let _ = writeln!(
            s,
            "events   market {} ({:.0}/s), dropped {}, order events {}, funding settlements {}",
            self.events.market,
            self.events.per_s,
            self.events.dropped,
            self.events.order,
            self.events.funding_settlements
        );
        let o = &self.orders;
        let _ = writeln!(
            s,
            "orders   sent {}, filled {}, fills {}, cancelled/expired {}, rejected {}, risk refused {}",
            o.sent, o.filled, o.fills, o.cancelled, o.rejected, o.risk_refused
        );
        let j = &self.journal;
        if j.records + j.recovered_records + j.truncated_bytes > 0 {
            let _ = writeln!(
                s,
                "journal  records {}, bytes {}, fsyncs {}, recovered {}, truncated {} bytes, reconciled {}",
                j.records, j.bytes, j.fsyncs, j.recovered_records, j.truncated_bytes, j.reconciled
            );
        }
        let _ = writeln!(
            s,
            "\nlatency (ns)                    count        p50        p90        p99      p99.9        max"
        );
        for (name, l) in &self.latency_ns {
            let _ = writeln!(
                s,
                "  {name:<28} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
                l.count, l.p50, l.p90, l.p99, l.p999, l.max
            );
        }
        let _ = writeln!(s, "\npositions");
        for p in &self.positions {
            let _ = writeln!(
                s,
                "  {:<14} {:<10} qty {:>12}  avg {:>12}  realized {:>10}  fees {:>10}  funding {:>10}",
                p.venue, p.symbol, p.qty, p.avg_px, p.realized, p.fees, p.funding
            );
        }
        let p = &self.pnl;
        let _ = writeln!(
            s,
            "\npnl      realized {}  unrealized {}  fees {}  funding {}  net {}",
            p.realized, p.unrealized, p.fees, p.funding, p.net
        );
        for (name, st) in &self.strategies {
            let _ = writeln!(
                s,
                "strategy {name}: orders {}, fills {}, entries {}, exits {}, repairs {}; realized {} unrealized {} fees {} funding {}",
                st.orders, st.fills, st.entries, st.exits, st.repairs, st.realized, st.unrealized, st.fees, st.funding
            );
        }
        let refused: Vec<String> =
            self.risk.refusals.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(
            s,
            "risk     refusals: {}; kill switch {}; drawdown breaker {} (drawdown {})",
            if refused.is_empty() { "none".to_owned() } else { refused.join(", ") },
            if self.risk.kill_switch { "ENGAGED" } else { "off" },
            if self.risk.circuit_breaker { "TRIPPED" } else { "off" },
            self.risk.drawdown
        );
        for (u, d) in &self.delta {
            let g = &self.greeks[u];
            let _ = writeln!(
                s,
                "delta    {u}: net {} band {} max |net| after hedge {} hedges {}; gamma {} theta {} vega {}",
                d.net, d.band, d.max_abs_after_hedge, d.hedges, g.gamma, g.theta, g.vega
            );
        }
        let r = &self.router;
        if r.intents > 0 {
            let _ = writeln!(
                s,
                "router   intents {}, children {}, reroutes {}, venues skipped {}, unfilled {}",
                r.intents, r.children, r.reroutes, r.venues_skipped, r.unfilled
            );
        }
        for (name, b) in &self.books {
            let _ = writeln!(
                s,
                "book     {name:<22} {} levels {}/{}, gaps {}, resyncs {}, stale {}, max time to whole {} ns",
                if b.whole { "whole" } else { "NOT WHOLE" },
                b.levels[0],
                b.levels[1],
                b.gaps,
                b.resyncs,
                b.stale,
                b.max_time_to_whole_ns
            );
        }
        if let Some(d) = &self.dex {
            let f = &d.feed;
            let _ = writeln!(
                s,
                "dex      pool states {}, pending swaps {}, other swaps {}, connects {}, disconnects {}, reorgs {}",
                f.pool_states, f.pending_swaps, f.other_swaps, f.connects, f.disconnects, f.reorgs
            );
            for (name, p) in &d.pools {
                let _ = writeln!(
                    s,
                    "pool     {name:<22} block {}  price {}  pending {} ({} pending swaps)",
                    p.block,
                    p.price.as_deref().unwrap_or("-"),
                    p.pending_price.as_deref().unwrap_or("-"),
                    p.pending_swaps
                );
            }
        }
        let i = &self.io;
        let _ = writeln!(
            s,
            "io       frames {}, decode errors {}, unknown {}, connects {}, disconnects {}, shutdown notices {}",
            i.frames, i.decode_errors, i.unknown_frames, i.connects, i.disconnects, i.server_shutdowns
        );
        if !self.venues.is_empty() {
            let _ = writeln!(
                s,
                "\nvenues                  gateway            sent   acks  fills rejects cancels  connects disconnects not-ready rate-limited"
            );
            for (venue, v) in &self.venues {
                let _ = writeln!(
                    s,
                    "  {venue:<22} {:<16} {:>6} {:>6} {:>6} {:>7} {:>7} {:>9} {:>11} {:>9} {:>12}",
                    v.gateway,
                    v.orders_sent,
                    v.acks,
                    v.fills,
                    v.rejects,
                    v.cancels_sent,
                    v.connects,
                    v.disconnects,
                    v.not_ready,
                    v.rate_limited
                );
            }
        }
        for (venue, f) in &self.feeds {
            let _ = writeln!(
                s,
                "feed     {venue:<22} reconnects {}, shutdown notices {}, malformed {}, gaps {}, resyncs {}, time to whole last {} ms max {:.1} ms",
                f.reconnects,
                f.server_shutdowns,
                f.malformed,
                f.gaps,
                f.resyncs,
                f.time_to_whole_ms.last.map_or_else(|| "-".to_owned(), |t| format!("{t:.1}")),
                f.time_to_whole_ms.max
            );
        }
        s
    }
}
