//! The simulator's venue back office: accounts, orders, matching and fills, shared by every
//! venue's order-entry front end (`binance_trade`, `bybit_trade`, `okx_trade`).
//!
//! It is venue-neutral: the front ends parse and verify the venue's requests (signatures,
//! timestamps, parameters), call [`Exchange`] in integer mantissas at the instrument's scales,
//! and render its answers and [`ExecReport`]s in the venue's own formats and error codes.
//!
//! Orders take liquidity from the model's books ([`super::SimBook::take`], so the public depth
//! stream shows the trade's impact) level by level up to their limit; the rest of a GTC order
//! rests here, invisible to the public book, and fills as maker when the opposite best price
//! reaches it ([`Exchange::on_market`]). Fees come from each instrument's configured maker and
//! taker rates, in the quote asset, exact. Spot accounts hold asset balances; perpetual accounts
//! hold quote-asset margin and signed positions.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crossbar_engine::fixed::{Scale, to_decimal};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, Registry};
use rust_decimal::Decimal;

use super::book::Side;
use super::model::Market;
use crate::order::Credentials;

/// An account's index in the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u32);

/// Starting balances of every new account.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountDefaults {
    /// Per asset (`USDT`, `BTC`, …), the free balance a new spot account starts with; the quote
    /// asset's entry is also the margin a new perpetual account starts with.
    pub balances: Vec<(String, Decimal)>,
    /// Leverage of perpetual positions: initial margin is notional / leverage.
    pub leverage: u32,
}

impl Default for AccountDefaults {
    fn default() -> Self {
        Self {
            balances: vec![
                ("USDT".to_owned(), Decimal::from(10_000_000)),
                ("USDC".to_owned(), Decimal::from(10_000_000)),
                ("BTC".to_owned(), Decimal::from(100)),
                ("ETH".to_owned(), Decimal::from(2_000)),
            ],
            leverage: 10,
        }
    }
}

/// How long an order may rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tif {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// Post only: refused (expired) when it would take liquidity.
    PostOnly,
}

/// A new order as a front end parsed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceRequest {
    /// The instrument (the front end resolved the venue's symbol).
    pub instrument: InstrumentId,
    /// The client's order id (`newClientOrderId`, `orderLinkId`, `clOrdId`); empty when none
    /// was given (the exchange then makes one up).
    pub client_id: String,
    /// Buy or sell.
    pub side: Side,
    /// Limit price mantissa; `None` for a market order.
    pub px: Option<i64>,
    /// Quantity mantissa.
    pub qty: i64,
    /// Time in force.
    pub tif: Tif,
    /// Only reduce the position (perpetuals).
    pub reduce_only: bool,
}

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Accepted, nothing filled, resting.
    New,
    /// Partly filled, the rest resting.
    PartiallyFilled,
    /// Completely filled.
    Filled,
    /// Cancelled on request (possibly after partial fills).
    Canceled,
    /// The rest of an IOC/FOK/post-only order ended unfilled.
    Expired,
}

impl OrderStatus {
    /// True for a status that never changes again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Filled | Self::Canceled | Self::Expired)
    }
}

/// An order as the exchange holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// Owner.
    pub account: AccountId,
    /// The exchange's order id.
    pub order_id: u64,
    /// The client's id.
    pub client_id: String,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Limit price mantissa (`None`: market).
    pub px: Option<i64>,
    /// Ordered quantity mantissa.
    pub qty: i64,
    /// Filled so far, mantissa.
    pub filled_qty: i64,
    /// Sum of price × quantity of its fills, exact, in quote units.
    pub filled_quote: Decimal,
    /// Time in force.
    pub tif: Tif,
    /// Reduce only.
    pub reduce_only: bool,
    /// Status.
    pub status: OrderStatus,
    /// When it was accepted, ms (the simulator's market clock).
    pub created_ms: i64,
    /// Last change, ms.
    pub updated_ms: i64,
}

/// One fill of one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillView {
    /// Owner.
    pub account: AccountId,
    /// The exchange's trade id (unique per exchange).
    pub trade_id: u64,
    /// The order.
    pub order_id: u64,
    /// The order's client id.
    pub client_id: String,
    /// Instrument.
    pub instrument: InstrumentId,
    /// The order's side.
    pub side: Side,
    /// Price mantissa.
    pub px: i64,
    /// Quantity mantissa.
    pub qty: i64,
    /// Fee in the quote asset (negative: rebate), exact.
    pub fee: Decimal,
    /// The fee's asset.
    pub fee_asset: String,
    /// True when the order was the maker.
    pub maker: bool,
    /// When, ms.
    pub time_ms: i64,
}

/// What changed for an account: what a private stream publishes (Binance `executionReport` /
/// `ORDER_TRADE_UPDATE`, Bybit `order`/`execution`, OKX `orders`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecReport {
    /// The order after the change.
    pub order: OrderView,
    /// The fill that caused it, if one did.
    pub fill: Option<FillView>,
}

/// A signed position in a perpetual.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PositionView {
    /// Signed quantity mantissa (long > 0).
    pub qty: i64,
    /// Average entry price, exact (0 when flat).
    pub entry_px: Decimal,
    /// Realized PnL so far, quote asset.
    pub realized: Decimal,
}

/// One asset balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceView {
    /// Asset.
    pub asset: String,
    /// Free to use.
    pub free: Decimal,
    /// Locked by open orders (spot) or as margin (perpetuals).
    pub locked: Decimal,
}

/// Why the exchange refused a request. Front ends map each to the venue's own code and text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The instrument is not traded here.
    #[error("unknown instrument")]
    UnknownInstrument,
    /// Price not a positive multiple of the tick.
    #[error("invalid price")]
    InvalidPrice,
    /// Quantity not a positive multiple of the lot.
    #[error("invalid quantity")]
    InvalidQuantity,
    /// Not enough balance (spot) or margin (perpetuals).
    #[error("insufficient balance")]
    InsufficientBalance,
    /// No such order (or no longer open, for a cancel).
    #[error("unknown order")]
    UnknownOrder,
    /// The client id is in use by an open order of the account.
    #[error("duplicate client order id")]
    DuplicateClientId,
    /// Reduce-only order that would not reduce the position.
    #[error("reduce-only order would increase the position")]
    ReduceOnly,
    /// The market order found no liquidity.
    #[error("no liquidity")]
    NoLiquidity,
}

/// How a front end names an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef<'a> {
    /// By the exchange's order id.
    Id(u64),
    /// By the client's id.
    Client(&'a str),
}

/// One registered API key.
#[derive(Debug)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// The venue (simulator venue name) it belongs to.
    pub venue: String,
    /// Its credentials (the simulator is the venue: it knows the secret to verify HMACs, and
    /// derives the Ed25519 public key from the private key it was given).
    pub credentials: Credentials,
}

/// Ended orders kept for [`Exchange::order`]; the oldest ended one is dropped beyond this.
pub const MAX_ENDED_ORDERS: usize = 100_000;

/// Fills kept for [`Exchange::fills`]; the oldest is dropped beyond this.
pub const MAX_FILLS: usize = 200_000;

/// What the exchange keeps of a tradable instrument (spot or perpetual).
#[derive(Debug)]
struct Inst {
    perp: bool,
    base: String,
    quote: String,
    tick: i64,
    lot: i64,
    price_scale: Scale,
    qty_scale: Scale,
    contract_size: Decimal,
    taker_fee: Decimal,
    maker_fee: Decimal,
}

impl Inst {
    fn qty(&self, qty: i64) -> Decimal {
        to_decimal(qty, self.qty_scale)
    }

    /// Price × quantity × contract size, exact, in the quote asset.
    fn notional(&self, px: i64, qty: i64) -> Decimal {
        to_decimal(px, self.price_scale) * self.qty(qty) * self.contract_size
    }

    /// The asset an order of `side` locks: the quote for buys and all perpetual orders, the
    /// base for spot sells.
    fn lock_asset(&self, side: Side) -> &str {
        if !self.perp && side == Side::Ask { &self.base } else { &self.quote }
    }

    /// What an order locks for `rem` of its quantity still open: spot buys the notional at
    /// its lock price plus the larger fee, spot sells the base quantity, perpetuals the initial
    /// margin of the part that increases the position. `None` when it overflows a `Decimal`
    /// (absurd price × quantity: no account holds that much). Fills never overflow once the
    /// lock did not: they trade at most the order's quantity at book prices, at or better than
    /// its limit.
    fn lock_of(&self, leverage: Decimal, order: &Order, rem: i64) -> Option<Decimal> {
        if rem <= 0 {
            return Some(Decimal::ZERO);
        }
        let notional = |qty: i64| {
            to_decimal(order.lock_px, self.price_scale).checked_mul(self.qty(qty))?.checked_mul(self.contract_size)
        };
        match (self.perp, order.view.side) {
            (false, Side::Bid) => {
                let rate = self.taker_fee.max(self.maker_fee).max(Decimal::ZERO);
                notional(rem)?.checked_mul(Decimal::ONE + rate)
            }
            (false, Side::Ask) => Some(self.qty(rem)),
            (true, _) => notional(rem.min(order.inc_qty))?.checked_div(leverage),
        }
    }
}

/// One asset balance of an account; `free + locked` is the wallet.
#[derive(Debug, Default)]
struct Bal {
    free: Decimal,
    locked: Decimal,
}

/// A perpetual position: `cost` is the entry notional of the open quantity (so the average
/// entry is `cost / (|qty| × contract size)` and closing everything realizes exactly), `margin`
/// the initial margin locked for it.
#[derive(Debug, Default)]
struct Pos {
    qty: i64,
    cost: Decimal,
    realized: Decimal,
    margin: Decimal,
}

/// Balances, positions and client ids of one account.
#[derive(Debug, Default)]
struct AccountState {
    balances: BTreeMap<String, Bal>,
    positions: BTreeMap<InstrumentId, Pos>,
    /// Client id → the latest order that used it.
    clients: HashMap<String, u64>,
}

/// An order with what it locks.
#[derive(Debug)]
struct Order {
    view: OrderView,
    /// Amount of the lock asset still locked for it.
    locked: Decimal,
    /// Price its lock is computed at (its limit, or a market order's worst level).
    lock_px: i64,
    /// Perpetuals: how much of its quantity increases the position (locks margin).
    inc_qty: i64,
}

impl Order {
    fn remaining(&self) -> i64 {
        self.view.qty - self.view.filled_qty
    }
}

fn bal<'a>(balances: &'a mut BTreeMap<String, Bal>, asset: &str) -> &'a mut Bal {
    if !balances.contains_key(asset) {
        balances.insert(asset.to_owned(), Bal::default());
    }
    balances.get_mut(asset).expect("just inserted")
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Bid => Side::Ask,
        Side::Ask => Side::Bid,
    }
}

/// True when a level at `level_px` on the opposite side trades with an order of `side`
/// limited at `limit` (`None`: market, any price).
fn crosses(side: Side, limit: Option<i64>, level_px: i64) -> bool {
    match (limit, side) {
        (None, _) => true,
        (Some(px), Side::Bid) => level_px <= px,
        (Some(px), Side::Ask) => level_px >= px,
    }
}

/// Money and history: instruments, account states, fills and queued reports. Split from the
/// order lists so an open order can be settled in place.
#[derive(Debug)]
struct Ledger {
    insts: Vec<Option<Inst>>,
    states: Vec<AccountState>,
    leverage: Decimal,
    fills: VecDeque<FillView>,
    reports: Vec<ExecReport>,
    next_trade_id: u64,
}

impl Ledger {
    fn inst(&self, id: InstrumentId) -> &Inst {
        self.insts[id.index()].as_ref().expect("orders only exist on known instruments")
    }

    fn report(&mut self, order: &Order, fill: Option<FillView>) {
        self.reports.push(ExecReport { order: order.view.clone(), fill });
    }

    /// Unlocks whatever the order still locks.
    fn release(&mut self, order: &mut Order) {
        let inst = self.insts[order.view.instrument.index()].as_ref().expect("known instrument");
        let b = bal(&mut self.states[order.view.account.0 as usize].balances, inst.lock_asset(order.view.side));
        b.locked -= order.locked;
        b.free += order.locked;
        order.locked = Decimal::ZERO;
    }

    /// Ends an open order with `status` (cancelled or expired): unlocks and reports it.
    fn end(&mut self, order: &mut Order, status: OrderStatus, time_ms: i64) {
        self.release(order);
        order.view.status = status;
        order.view.updated_ms = time_ms;
        self.report(order, None);
    }

    /// Settles one fill of `qty` at `px` of `order` and reports it.
    fn fill(&mut self, order: &mut Order, px: i64, qty: i64, maker: bool, time_ms: i64) {
        let inst = self.insts[order.view.instrument.index()].as_ref().expect("known instrument");
        let st = &mut self.states[order.view.account.0 as usize];
        let notional = inst.notional(px, qty);
        let fee = notional * if maker { inst.maker_fee } else { inst.taker_fee };
        let rem_after = order.remaining() - qty;
        // Less than the order's full lock, which was computed: keep the lock if it ever were not.
        let new_lock = inst.lock_of(self.leverage, order, rem_after).unwrap_or(order.locked);
        let release = order.locked - new_lock;
        order.locked = new_lock;
        match (inst.perp, order.view.side) {
            (false, Side::Bid) => {
                let q = bal(&mut st.balances, &inst.quote);
                q.locked -= release;
                q.free += release - notional - fee;
                bal(&mut st.balances, &inst.base).free += inst.qty(qty);
            }
            (false, Side::Ask) => {
                let b = bal(&mut st.balances, &inst.base);
                b.locked -= release;
                b.free += release - inst.qty(qty);
                bal(&mut st.balances, &inst.quote).free += notional - fee;
            }
            (true, side) => {
                let signed = if side == Side::Bid { qty } else { -qty };
                let pos = st.positions.entry(order.view.instrument).or_default();
                let realized = trade_position(pos, signed, notional, inst.notional(px, 1));
                let margin = pos.cost / self.leverage;
                let dm = margin - pos.margin;
                pos.margin = margin;
                pos.realized += realized;
                let q = bal(&mut st.balances, &inst.quote);
                q.locked += dm - release;
                q.free += release - fee + realized - dm;
            }
        }
        let fill = FillView {
            account: order.view.account,
            trade_id: self.next_trade_id,
            order_id: order.view.order_id,
            client_id: order.view.client_id.clone(),
            instrument: order.view.instrument,
            side: order.view.side,
            px,
            qty,
            fee,
            fee_asset: inst.quote.clone(),
            maker,
            time_ms,
        };
        self.next_trade_id += 1;
        order.view.filled_qty += qty;
        order.view.filled_quote += notional;
        order.view.status = if rem_after == 0 { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
        order.view.updated_ms = time_ms;
        if self.fills.len() >= MAX_FILLS {
            self.fills.pop_front();
        }
        self.fills.push_back(fill.clone());
        self.report(order, Some(fill));
    }
}

/// Applies a fill of signed quantity `signed` (notional `notional`) to a position; returns the
/// PnL it realized. `unit` is the notional of one quantity mantissa at the fill price.
fn trade_position(pos: &mut Pos, signed: i64, notional: Decimal, unit: Decimal) -> Decimal {
    if pos.qty == 0 || pos.qty.signum() == signed.signum() {
        pos.qty += signed;
        pos.cost += notional;
        return Decimal::ZERO;
    }
    let held = pos.qty.abs();
    let close = held.min(signed.abs());
    let closed_cost = if close == held { pos.cost } else { pos.cost * Decimal::from(close) / Decimal::from(held) };
    let exit = unit * Decimal::from(close);
    let realized = if pos.qty > 0 { exit - closed_cost } else { closed_cost - exit };
    pos.cost -= closed_cost;
    pos.qty += signed;
    let opened = signed.abs() - close;
    if opened > 0 {
        pos.cost = unit * Decimal::from(opened);
    }
    realized
}

/// The back office of every simulated venue.
#[derive(Debug)]
pub struct Exchange {
    accounts: Vec<Account>,
    by_key: HashMap<(String, String), AccountId>,
    defaults: AccountDefaults,
    ledger: Ledger,
    /// Open orders, oldest first.
    open: Vec<Order>,
    /// Ended orders by id, and their ids oldest first (to drop the oldest beyond the cap).
    ended: HashMap<u64, OrderView>,
    ended_order: VecDeque<u64>,
    next_order_id: u64,
}

impl Exchange {
    /// An exchange for `registry`'s instruments (the simulator's venue registry: tick, lot,
    /// fees, kind, base and quote of each), with no accounts yet.
    pub fn new(registry: &Registry, defaults: AccountDefaults) -> Self {
        let insts = registry
            .instruments()
            .iter()
            .map(|i| {
                matches!(i.kind, InstrumentKind::Spot | InstrumentKind::Perpetual).then(|| Inst {
                    perp: i.kind == InstrumentKind::Perpetual,
                    base: i.base.clone(),
                    quote: i.quote.clone(),
                    tick: i.tick.0,
                    lot: i.lot.0,
                    price_scale: i.price_scale,
                    qty_scale: i.qty_scale,
                    contract_size: i.contract_size,
                    taker_fee: i.taker_fee,
                    maker_fee: i.maker_fee,
                })
            })
            .collect();
        let ledger = Ledger {
            insts,
            states: Vec::new(),
            leverage: Decimal::from(defaults.leverage.max(1)),
            fills: VecDeque::new(),
            reports: Vec::new(),
            next_trade_id: 1,
        };
        Self {
            accounts: Vec::new(),
            by_key: HashMap::new(),
            defaults,
            ledger,
            open: Vec::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            next_order_id: 1,
        }
    }

    /// Registers an API key on `venue` with the default balances. A key registered twice keeps
    /// its first account.
    pub fn add_account(&mut self, venue: &str, credentials: Credentials) -> AccountId {
        let key = (venue.to_owned(), credentials.api_key.expose().to_owned());
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let id = AccountId(self.accounts.len() as u32);
        self.accounts.push(Account { id, venue: venue.to_owned(), credentials });
        self.by_key.insert(key, id);
        let mut state = AccountState::default();
        for (asset, amount) in &self.defaults.balances {
            bal(&mut state.balances, asset).free += *amount;
        }
        self.ledger.states.push(state);
        id
    }

    /// Every account, in registration order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The account of an API key on `venue`, to verify a request's signature with.
    pub fn account_by_key(&self, venue: &str, api_key: &str) -> Option<&Account> {
        let id = self.by_key.get(&(venue.to_owned(), api_key.to_owned()))?;
        self.accounts.get(id.0 as usize)
    }

    /// Places an order at market time `time_ms`: validates it, takes liquidity from `market`'s
    /// book up to its limit, rests what is left (GTC, post-only) or expires it (IOC, FOK, market;
    /// a post-only order that would take liquidity and a FOK order that cannot fill completely
    /// expire without trading).
    /// Returns the order as it stands after matching; its reports (accepted, each fill,
    /// expiry) are queued for [`Exchange::drain_reports`].
    ///
    /// A market order (`px: None`) is immediate-or-cancel unless it is FOK. A reduce-only
    /// order must be opposite a perpetual position and at most its size (the flag means nothing
    /// on spot). Balance checks: a spot buy needs the quote for its quantity at its limit (a
    /// market buy: the worst level it would reach) plus the larger fee, a spot sell the base
    /// quantity, a perpetual order initial margin (notional / leverage) for the part that
    /// increases the position; that much is locked while the order is open. An account this
    /// exchange did not register has no balance.
    ///
    /// # Errors
    /// An [`ExchangeError`]; a refused order leaves no trace but the error.
    pub fn place(
        &mut self,
        account: AccountId,
        req: &PlaceRequest,
        market: &mut Market,
        time_ms: i64,
    ) -> Result<OrderView, ExchangeError> {
        let inst = self
            .ledger
            .insts
            .get(req.instrument.index())
            .and_then(Option::as_ref)
            .ok_or(ExchangeError::UnknownInstrument)?;
        if req.px.is_some_and(|px| px <= 0 || px % inst.tick != 0) {
            return Err(ExchangeError::InvalidPrice);
        }
        if req.qty <= 0 || req.qty % inst.lot != 0 {
            return Err(ExchangeError::InvalidQuantity);
        }
        let st = self.ledger.states.get(account.0 as usize).ok_or(ExchangeError::InsufficientBalance)?;
        if !req.client_id.is_empty()
            && st.clients.get(&req.client_id).is_some_and(|id| self.open.iter().any(|o| o.view.order_id == *id))
        {
            return Err(ExchangeError::DuplicateClientId);
        }
        let pos = if inst.perp { st.positions.get(&req.instrument).map_or(0, |p| p.qty) } else { 0 };
        let signed = if req.side == Side::Bid { req.qty } else { -req.qty };
        if inst.perp && req.reduce_only && (pos == 0 || pos.signum() == signed.signum() || req.qty > pos.abs()) {
            return Err(ExchangeError::ReduceOnly);
        }
        let inc_qty = if pos == 0 || pos.signum() == signed.signum() { req.qty } else { (req.qty - pos.abs()).max(0) };
        // What the book offers within the limit: the quantity, and the worst level reached.
        let opp = opposite(req.side);
        let (mut avail, mut worst) = (0i64, None);
        for l in market.book(req.instrument).map_or(&[][..], |b| b.levels(opp)) {
            if avail >= req.qty || !crosses(req.side, req.px, l.px) {
                break;
            }
            worst = Some(l.px);
            avail = avail.saturating_add(l.qty);
        }
        let lock_px = match (req.px, worst) {
            (Some(px), _) => px,
            (None, Some(px)) => px,
            (None, None) => return Err(ExchangeError::NoLiquidity),
        };
        let id = self.next_order_id;
        let mut order = Order {
            view: OrderView {
                account,
                order_id: id,
                client_id: if req.client_id.is_empty() { format!("sim{id}") } else { req.client_id.clone() },
                instrument: req.instrument,
                side: req.side,
                px: req.px,
                qty: req.qty,
                filled_qty: 0,
                filled_quote: Decimal::ZERO,
                tif: req.tif,
                reduce_only: req.reduce_only,
                status: OrderStatus::New,
                created_ms: time_ms,
                updated_ms: time_ms,
            },
            locked: Decimal::ZERO,
            lock_px,
            inc_qty,
        };
        let need = inst.lock_of(self.ledger.leverage, &order, req.qty).ok_or(ExchangeError::InsufficientBalance)?;
        let asset = inst.lock_asset(req.side);
        let st = &mut self.ledger.states[account.0 as usize];
        let b = st.balances.get_mut(asset).filter(|b| b.free >= need).ok_or(ExchangeError::InsufficientBalance)?;
        b.free -= need;
        b.locked += need;
        order.locked = need;
        st.clients.insert(order.view.client_id.clone(), id);
        self.next_order_id += 1;
        self.ledger.report(&order, None);

        let tif = if req.px.is_none() && req.tif != Tif::Fok { Tif::Ioc } else { req.tif };
        let refuse = match tif {
            Tif::PostOnly => worst.is_some(),
            Tif::Fok => avail < req.qty,
            Tif::Gtc | Tif::Ioc => false,
        };
        if !refuse {
            while order.remaining() > 0 {
                let Some(book) = market.book_mut(req.instrument) else { break };
                let Some(best) = book.best(opp).filter(|l| crosses(req.side, req.px, l.px)) else { break };
                let Some((px, qty)) = book.take(opp, order.remaining()).filter(|t| t.1 > 0) else { break };
                debug_assert_eq!(px, best.px);
                self.ledger.fill(&mut order, px, qty, false, time_ms);
            }
        }
        if order.remaining() > 0 {
            if !refuse && matches!(tif, Tif::Gtc | Tif::PostOnly) {
                let view = order.view.clone();
                self.open.push(order);
                return Ok(view);
            }
            self.ledger.end(&mut order, OrderStatus::Expired, time_ms);
        }
        let view = order.view.clone();
        self.retire(order);
        Ok(view)
    }

    /// Keeps an ended order for [`Exchange::order`], dropping the oldest beyond the cap.
    fn retire(&mut self, order: Order) {
        let id = order.view.order_id;
        self.ended.insert(id, order.view);
        self.ended_order.push_back(id);
        while self.ended_order.len() > MAX_ENDED_ORDERS {
            let Some(old) = self.ended_order.pop_front() else { break };
            if let Some(v) = self.ended.remove(&old) {
                let clients = &mut self.ledger.states[v.account.0 as usize].clients;
                if clients.get(&v.client_id) == Some(&old) {
                    clients.remove(&v.client_id);
                }
            }
        }
    }

    /// The exchange order id `order` names for the account, if any order (open or kept) has it.
    fn resolve(&self, account: AccountId, order: OrderRef<'_>) -> Option<u64> {
        match order {
            OrderRef::Id(id) => Some(id),
            OrderRef::Client(cid) => self.ledger.states.get(account.0 as usize)?.clients.get(cid).copied(),
        }
    }

    /// Cancels an open order; returns it as cancelled.
    ///
    /// # Errors
    /// [`ExchangeError::UnknownOrder`] when the account has no such open order.
    pub fn cancel(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        order: OrderRef<'_>,
        time_ms: i64,
    ) -> Result<OrderView, ExchangeError> {
        let id = self.resolve(account, order).ok_or(ExchangeError::UnknownOrder)?;
        let i = self
            .open
            .iter()
            .position(|o| o.view.order_id == id && o.view.account == account && o.view.instrument == instrument)
            .ok_or(ExchangeError::UnknownOrder)?;
        let mut o = self.open.remove(i);
        self.ledger.end(&mut o, OrderStatus::Canceled, time_ms);
        let view = o.view.clone();
        self.retire(o);
        Ok(view)
    }

    /// Cancels every open order of the account (on one instrument, or all); returns them.
    pub fn cancel_all(&mut self, account: AccountId, instrument: Option<InstrumentId>, time_ms: i64) -> Vec<OrderView> {
        let mut out = Vec::new();
        let mut keep = Vec::with_capacity(self.open.len());
        for mut o in std::mem::take(&mut self.open) {
            if o.view.account == account && instrument.is_none_or(|i| i == o.view.instrument) {
                self.ledger.end(&mut o, OrderStatus::Canceled, time_ms);
                out.push(o.view.clone());
                self.retire(o);
            } else {
                keep.push(o);
            }
        }
        self.open = keep;
        out
    }

    /// An order of the account, open or ended (ended orders are kept).
    pub fn order(&self, account: AccountId, instrument: InstrumentId, order: OrderRef<'_>) -> Option<OrderView> {
        let id = self.resolve(account, order)?;
        let view = match self.open.iter().find(|o| o.view.order_id == id) {
            Some(o) => &o.view,
            None => self.ended.get(&id)?,
        };
        (view.account == account && view.instrument == instrument).then(|| view.clone())
    }

    /// The account's orders on `instrument`, open and ended (as far as history is kept), by
    /// order id: what Binance's `allOrders` answers.
    pub fn orders(&self, account: AccountId, instrument: InstrumentId) -> Vec<OrderView> {
        let mine = |v: &&OrderView| v.account == account && v.instrument == instrument;
        let mut all: Vec<OrderView> = self
            .ended_order
            .iter()
            .filter_map(|id| self.ended.get(id))
            .chain(self.open.iter().map(|o| &o.view))
            .filter(mine)
            .cloned()
            .collect();
        all.sort_by_key(|v| v.order_id);
        all
    }

    /// The account's open orders (on one instrument, or all), oldest first.
    pub fn open_orders(&self, account: AccountId, instrument: Option<InstrumentId>) -> Vec<OrderView> {
        self.open
            .iter()
            .filter(|o| o.view.account == account && instrument.is_none_or(|i| i == o.view.instrument))
            .map(|o| o.view.clone())
            .collect()
    }

    /// The account's fills (on one instrument, or all) at or after `since_ms`, oldest first.
    pub fn fills(&self, account: AccountId, instrument: Option<InstrumentId>, since_ms: i64) -> Vec<FillView> {
        self.ledger
            .fills
            .iter()
            .filter(|f| f.account == account && f.time_ms >= since_ms && instrument.is_none_or(|i| i == f.instrument))
            .cloned()
            .collect()
    }

    /// The account's perpetual positions (flat ones included once traded).
    pub fn positions(&self, account: AccountId) -> Vec<(InstrumentId, PositionView)> {
        let Some(st) = self.ledger.states.get(account.0 as usize) else { return Vec::new() };
        st.positions
            .iter()
            .map(|(id, p)| {
                let entry_px = if p.qty == 0 {
                    Decimal::ZERO
                } else {
                    let inst = self.ledger.inst(*id);
                    let size = inst.qty(p.qty.abs()) * inst.contract_size;
                    p.cost.checked_div(size).unwrap_or(Decimal::ZERO).normalize()
                };
                (*id, PositionView { qty: p.qty, entry_px, realized: p.realized })
            })
            .collect()
    }

    /// The account's asset balances, by asset name.
    pub fn balances(&self, account: AccountId) -> Vec<BalanceView> {
        let Some(st) = self.ledger.states.get(account.0 as usize) else { return Vec::new() };
        st.balances
            .iter()
            .map(|(asset, b)| BalanceView { asset: asset.clone(), free: b.free, locked: b.locked })
            .collect()
    }

    /// Fills resting orders the market has reached (maker fills at the order's price), after a
    /// model step: each order crossed by the opposite best level fills against that level
    /// only, taking what it fills from the book. A reduce-only order fills at most the
    /// position and expires once nothing is left to reduce. Cost: a book look-up per open
    /// order; no allocation unless an order ends.
    pub fn on_market(&mut self, market: &mut Market, time_ms: i64) {
        let mut ended = false;
        for o in &mut self.open {
            let opp = opposite(o.view.side);
            let Some(book) = market.book_mut(o.view.instrument) else { continue };
            let Some(best) = book.best(opp).filter(|l| crosses(o.view.side, o.view.px, l.px)) else { continue };
            let mut qty = o.remaining().min(best.qty);
            if o.view.reduce_only && self.ledger.inst(o.view.instrument).perp {
                let pos = self.ledger.states[o.view.account.0 as usize].positions.get(&o.view.instrument);
                let pos = pos.map_or(0, |p| p.qty);
                let reducible = if (o.view.side == Side::Ask) == (pos > 0) { pos.abs() } else { 0 };
                if reducible == 0 {
                    self.ledger.end(o, OrderStatus::Expired, time_ms);
                    ended = true;
                    continue;
                }
                qty = qty.min(reducible);
            }
            let Some((_, qty)) = book.take(opp, qty) else { continue };
            let px = o.view.px.unwrap_or(best.px);
            self.ledger.fill(o, px, qty, true, time_ms);
            ended |= o.view.status.is_final();
        }
        if ended {
            let mut keep = Vec::with_capacity(self.open.len());
            for o in std::mem::take(&mut self.open) {
                if o.view.status.is_final() {
                    self.retire(o);
                } else {
                    keep.push(o);
                }
            }
            self.open = keep;
        }
    }

    /// Leverage of every perpetual position (initial margin is notional / leverage), for the
    /// front ends' position and account answers.
    pub fn leverage(&self) -> u32 {
        self.defaults.leverage.max(1)
    }

    /// Moves every queued report to `out`, in the order they happened.
    pub fn drain_reports(&mut self, out: &mut Vec<ExecReport>) {
        out.append(&mut self.ledger.reports);
    }
}

#[cfg(test)]
mod tests {
    use crossbar_engine::instrument::{InstrumentConfig, InstrumentKind, Registry};

    use super::*;
    use crate::auth::SecretString;
    use crate::order::SecretKey;
    use crate::sim::Level;
    use crate::sim::tests::config;

    const SPOT: InstrumentId = InstrumentId(0);
    const PERP: InstrumentId = InstrumentId(1);
    const USDC: InstrumentId = InstrumentId(2);

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// Spot BTCUSDT: tick 0.01 (price scale 2), lot 0.00001 (qty scale 5). Perpetual BTCUSDT:
    /// tick 0.5 (scale 1, mantissa 5), lot 0.001 (scale 3). Taker 4 bps, maker 2 bps. Spot
    /// BTCUSDC: tick 0.1, lot 0.0001, taker 5 bps, maker -1 bp (a rebate).
    fn registry() -> Registry {
        let inst = |venue: &str, kind, tick: &str, lot: &str| InstrumentConfig {
            venue: venue.into(),
            symbol: "BTCUSDT".into(),
            kind,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick: d(tick),
            lot: d(lot),
            contract_size: Decimal::ONE,
            taker_fee: d("0.0004"),
            maker_fee: d("0.0002"),
        };
        let usdc = InstrumentConfig {
            symbol: "BTCUSDC".into(),
            quote: "USDC".into(),
            taker_fee: d("0.0005"),
            maker_fee: d("-0.0001"),
            ..inst("sim-spot", InstrumentKind::Spot, "0.1", "0.0001")
        };
        let venues = ["sim-spot".to_owned(), "sim-perp".to_owned()];
        Registry::new(
            &venues,
            &[
                inst("sim-spot", InstrumentKind::Spot, "0.01", "0.00001"),
                inst("sim-perp", InstrumentKind::Perpetual, "0.5", "0.001"),
                usdc,
            ],
        )
        .unwrap()
    }

    fn creds(key: &str) -> Credentials {
        Credentials {
            api_key: SecretString::new(key.into()),
            key: SecretKey::Hmac(SecretString::new("secret".into())),
            passphrase: None,
        }
    }

    /// An exchange with one spot and one perpetual account, and a market with empty books.
    fn setup() -> (Exchange, Market, AccountId, AccountId) {
        let reg = registry();
        let mut market = Market::new(&config(), &reg).unwrap();
        for id in [SPOT, PERP, USDC] {
            let book = market.book_mut(id).unwrap();
            for side in [Side::Bid, Side::Ask] {
                for l in book.levels(side).to_vec() {
                    book.set(side, l.px, 0);
                }
            }
        }
        let mut ex = Exchange::new(&reg, AccountDefaults::default());
        let spot = ex.add_account("sim-spot", creds("spot-key"));
        let perp = ex.add_account("sim-perp", creds("perp-key"));
        (ex, market, spot, perp)
    }

    fn req(instrument: InstrumentId, side: Side, px: Option<i64>, qty: i64, tif: Tif) -> PlaceRequest {
        PlaceRequest { instrument, client_id: String::new(), side, px, qty, tif, reduce_only: false }
    }

    fn bal(ex: &Exchange, account: AccountId, asset: &str) -> (Decimal, Decimal) {
        let b = ex.balances(account).into_iter().find(|b| b.asset == asset).unwrap();
        (b.free, b.locked)
    }

    fn drain(ex: &mut Exchange) -> Vec<ExecReport> {
        let mut out = Vec::new();
        ex.drain_reports(&mut out);
        out
    }

    #[test]
    fn a_taker_buy_walks_two_levels() {
        let (mut ex, mut m, a, _) = setup();
        let book = m.book_mut(SPOT).unwrap();
        book.set(Side::Ask, 5_000_000, 10_000); // 50000.00 x 0.1
        book.set(Side::Ask, 5_000_100, 20_000); // 50001.00 x 0.2
        book.set(Side::Bid, 4_999_900, 100_000);
        let r = PlaceRequest { client_id: "a1".into(), ..req(SPOT, Side::Bid, Some(5_000_100), 25_000, Tif::Gtc) };
        let o = ex.place(a, &r, &mut m, 1_000).unwrap();
        assert_eq!((o.status, o.filled_qty, o.filled_quote), (OrderStatus::Filled, 25_000, d("12500.15")));
        let fills = ex.fills(a, Some(SPOT), 0);
        let got: Vec<_> = fills.iter().map(|f| (f.trade_id, f.px, f.qty, f.fee, f.maker)).collect();
        assert_eq!(got, [(1, 5_000_000, 10_000, d("2"), false), (2, 5_000_100, 15_000, d("3.00006"), false)]);
        assert_eq!(fills[0].fee_asset, "USDT");
        // 10_000_000 - (5000 + 2) - (7500.15 + 3.00006)
        assert_eq!(bal(&ex, a, "USDT"), (d("9987494.84994"), Decimal::ZERO));
        assert_eq!(bal(&ex, a, "BTC"), (d("100.25"), Decimal::ZERO));
        let book = m.book(SPOT).unwrap();
        assert_eq!(book.levels(Side::Ask), [Level { px: 5_000_100, qty: 5_000 }]);
        let reports = drain(&mut ex);
        let got: Vec<_> = reports.iter().map(|r| (r.order.status, r.fill.as_ref().map(|f| f.trade_id))).collect();
        assert_eq!(
            got,
            [(OrderStatus::New, None), (OrderStatus::PartiallyFilled, Some(1)), (OrderStatus::Filled, Some(2))]
        );
        assert_eq!(reports[1].order.filled_qty, 10_000);
        assert!(ex.open_orders(a, None).is_empty());
        assert_eq!(ex.order(a, SPOT, OrderRef::Client("a1")).unwrap().status, OrderStatus::Filled);
        assert_eq!(ex.order(a, SPOT, OrderRef::Id(o.order_id)).unwrap(), o);
        assert_eq!(ex.order(a, PERP, OrderRef::Id(o.order_id)), None);
    }

    #[test]
    fn market_orders_walk_without_limit_and_expire_the_rest() {
        let (mut ex, mut m, a, _) = setup();
        let sell = req(SPOT, Side::Ask, None, 10_000, Tif::Ioc);
        assert_eq!(ex.place(a, &sell, &mut m, 1), Err(ExchangeError::NoLiquidity));
        let book = m.book_mut(SPOT).unwrap();
        book.set(Side::Ask, 5_000_000, 4_000);
        book.set(Side::Ask, 5_000_200, 100_000);
        let o = ex.place(a, &req(SPOT, Side::Bid, None, 10_000, Tif::Gtc), &mut m, 1).unwrap();
        assert_eq!((o.status, o.filled_quote), (OrderStatus::Filled, d("5000.12")));
        // 2000 + 0.8 + 3000.12 + 1.200048
        assert_eq!(bal(&ex, a, "USDT"), (d("9994997.879952"), Decimal::ZERO));
        m.book_mut(SPOT).unwrap().set(Side::Bid, 4_999_900, 5_000);
        let o = ex.place(a, &sell, &mut m, 2).unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::Expired, 5_000));
        // + 2499.95 - 0.99998
        assert_eq!(bal(&ex, a, "USDT"), (d("9997496.829972"), Decimal::ZERO));
        assert_eq!(bal(&ex, a, "BTC"), (d("100.05"), Decimal::ZERO));
        assert!(m.book(SPOT).unwrap().levels(Side::Bid).is_empty());
        let last: Vec<_> = drain(&mut ex).iter().rev().take(2).map(|r| (r.order.status, r.fill.is_some())).collect();
        assert_eq!(last, [(OrderStatus::Expired, false), (OrderStatus::PartiallyFilled, true)]);
    }

    #[test]
    fn a_resting_gtc_fills_as_maker_at_its_price() {
        let (mut ex, mut m, a, _) = setup();
        let book = m.book_mut(SPOT).unwrap();
        book.set(Side::Bid, 4_999_900, 100_000);
        book.set(Side::Ask, 5_002_000, 100_000);
        let o = ex.place(a, &req(SPOT, Side::Ask, Some(5_001_000), 20_000, Tif::Gtc), &mut m, 1_000).unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::New, 0));
        assert_eq!(bal(&ex, a, "BTC"), (d("99.8"), d("0.2")));
        assert_eq!(ex.open_orders(a, Some(SPOT)), std::slice::from_ref(&o));
        ex.on_market(&mut m, 1_500);
        assert_eq!(drain(&mut ex).len(), 1);
        assert_eq!(m.book(SPOT).unwrap().best(Side::Bid), Some(Level { px: 4_999_900, qty: 100_000 }));

        m.book_mut(SPOT).unwrap().set(Side::Bid, 5_001_000, 15_000);
        ex.on_market(&mut m, 2_000);
        let o = ex.order(a, SPOT, OrderRef::Id(o.order_id)).unwrap();
        assert_eq!((o.status, o.filled_qty, o.updated_ms), (OrderStatus::PartiallyFilled, 15_000, 2_000));
        assert_eq!(m.book(SPOT).unwrap().qty_at(Side::Bid, 5_001_000), 0);
        // + 7501.5 - 1.5003 maker fee
        assert_eq!(bal(&ex, a, "USDT"), (d("10007499.9997"), Decimal::ZERO));
        assert_eq!(bal(&ex, a, "BTC"), (d("99.8"), d("0.05")));

        // A bid above the order fills it at the order's price.
        m.book_mut(SPOT).unwrap().set(Side::Bid, 5_001_500, 100_000);
        ex.on_market(&mut m, 3_000);
        assert_eq!(m.book(SPOT).unwrap().qty_at(Side::Bid, 5_001_500), 95_000);
        assert_eq!(bal(&ex, a, "USDT"), (d("10009999.9996"), Decimal::ZERO));
        assert_eq!(bal(&ex, a, "BTC"), (d("99.8"), Decimal::ZERO));
        assert!(ex.open_orders(a, None).is_empty());
        let fills = ex.fills(a, None, 0);
        let got: Vec<_> = fills.iter().map(|f| (f.trade_id, f.px, f.qty, f.fee, f.maker, f.time_ms)).collect();
        assert_eq!(
            got,
            [(1, 5_001_000, 15_000, d("1.5003"), true, 2_000), (2, 5_001_000, 5_000, d("0.5001"), true, 3_000)]
        );
        assert_eq!(ex.fills(a, None, 3_000).len(), 1);
        let statuses: Vec<_> = drain(&mut ex).iter().map(|r| r.order.status).collect();
        assert_eq!(statuses, [OrderStatus::PartiallyFilled, OrderStatus::Filled]);
        assert_eq!(ex.order(a, SPOT, OrderRef::Id(o.order_id)).unwrap().status, OrderStatus::Filled);
    }

    #[test]
    fn fok_that_cannot_fill_expires_without_fills() {
        let (mut ex, mut m, a, _) = setup();
        let book = m.book_mut(SPOT).unwrap();
        book.set(Side::Ask, 5_000_000, 10_000);
        book.set(Side::Ask, 5_000_100, 20_000);
        book.set(Side::Ask, 5_000_200, 90_000);
        let o = ex.place(a, &req(SPOT, Side::Bid, Some(5_000_100), 50_000, Tif::Fok), &mut m, 1).unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::Expired, 0));
        assert!(ex.fills(a, None, 0).is_empty());
        assert_eq!(m.book(SPOT).unwrap().levels(Side::Ask).len(), 3);
        assert_eq!(bal(&ex, a, "USDT"), (d("10000000"), Decimal::ZERO));
        let statuses: Vec<_> = drain(&mut ex).iter().map(|r| r.order.status).collect();
        assert_eq!(statuses, [OrderStatus::New, OrderStatus::Expired]);
        let o = ex.place(a, &req(SPOT, Side::Bid, Some(5_000_100), 30_000, Tif::Fok), &mut m, 2).unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::Filled, 30_000));
    }

    #[test]
    fn post_only_that_would_cross_expires() {
        let (mut ex, mut m, a, _) = setup();
        let book = m.book_mut(SPOT).unwrap();
        book.set(Side::Ask, 5_000_000, 10_000);
        book.set(Side::Bid, 4_999_900, 10_000);
        let o = ex.place(a, &req(SPOT, Side::Bid, Some(5_000_000), 10_000, Tif::PostOnly), &mut m, 1).unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::Expired, 0));
        assert_eq!(m.book(SPOT).unwrap().qty_at(Side::Ask, 5_000_000), 10_000);
        assert_eq!(bal(&ex, a, "USDT"), (d("10000000"), Decimal::ZERO));
        let o = ex.place(a, &req(SPOT, Side::Bid, Some(4_999_950), 10_000, Tif::PostOnly), &mut m, 2).unwrap();
        assert_eq!(o.status, OrderStatus::New);
        // 4999.95 + 1.99998 (the larger fee) locked.
        assert_eq!(bal(&ex, a, "USDT"), (d("9994998.05002"), d("5001.94998")));
        assert_eq!(ex.open_orders(a, None).len(), 1);
    }

    #[test]
    fn cancel_releases_and_unknown_orders_are_refused() {
        let (mut ex, mut m, a, b) = setup();
        let r = PlaceRequest { client_id: "c1".into(), ..req(SPOT, Side::Bid, Some(4_999_000), 10_000, Tif::Gtc) };
        let o = ex.place(a, &r, &mut m, 1).unwrap();
        // 4999 + 1.9996 fee locked.
        assert_eq!(bal(&ex, a, "USDT"), (d("9994999.0004"), d("5000.9996")));
        assert_eq!(ex.cancel(a, PERP, OrderRef::Client("c1"), 2), Err(ExchangeError::UnknownOrder));
        assert_eq!(ex.cancel(b, SPOT, OrderRef::Id(o.order_id), 2), Err(ExchangeError::UnknownOrder));
        let c = ex.cancel(a, SPOT, OrderRef::Client("c1"), 3).unwrap();
        assert_eq!((c.order_id, c.status, c.updated_ms), (o.order_id, OrderStatus::Canceled, 3));
        assert_eq!(bal(&ex, a, "USDT"), (d("10000000"), Decimal::ZERO));
        assert_eq!(ex.cancel(a, SPOT, OrderRef::Client("c1"), 4), Err(ExchangeError::UnknownOrder));
        assert_eq!(ex.cancel(a, SPOT, OrderRef::Id(999), 4), Err(ExchangeError::UnknownOrder));
        assert_eq!(ex.order(a, SPOT, OrderRef::Client("c1")).unwrap().status, OrderStatus::Canceled);
        let statuses: Vec<_> = drain(&mut ex).iter().map(|r| r.order.status).collect();
        assert_eq!(statuses, [OrderStatus::New, OrderStatus::Canceled]);

        ex.place(a, &req(SPOT, Side::Bid, Some(4_999_000), 10_000, Tif::Gtc), &mut m, 5).unwrap();
        ex.place(a, &req(SPOT, Side::Ask, Some(5_100_000), 10_000, Tif::Gtc), &mut m, 5).unwrap();
        ex.place(b, &req(PERP, Side::Ask, Some(510_000), 1_000, Tif::Gtc), &mut m, 5).unwrap();
        assert!(ex.cancel_all(a, Some(PERP), 6).is_empty());
        let all = ex.cancel_all(a, None, 6);
        assert_eq!(all.iter().map(|o| o.status).collect::<Vec<_>>(), [OrderStatus::Canceled; 2]);
        assert!(ex.open_orders(a, None).is_empty());
        assert_eq!(ex.open_orders(b, None).len(), 1);
        assert_eq!(bal(&ex, a, "USDT"), (d("10000000"), Decimal::ZERO));
        assert_eq!(bal(&ex, a, "BTC"), (d("100"), Decimal::ZERO));
    }

    #[test]
    fn bad_requests_are_refused_without_trace() {
        let (mut ex, mut m, a, p) = setup();
        let bad = |r: PlaceRequest| r;
        let cases = [
            (bad(req(InstrumentId(7), Side::Bid, Some(5), 1_000, Tif::Gtc)), ExchangeError::UnknownInstrument),
            (bad(req(PERP, Side::Bid, Some(500_001), 1_000, Tif::Gtc)), ExchangeError::InvalidPrice),
            (bad(req(PERP, Side::Bid, Some(0), 1_000, Tif::Gtc)), ExchangeError::InvalidPrice),
            (bad(req(PERP, Side::Bid, Some(500_000), 0, Tif::Gtc)), ExchangeError::InvalidQuantity),
            (bad(req(PERP, Side::Bid, Some(-5), 1_000, Tif::Gtc)), ExchangeError::InvalidPrice),
        ];
        for (r, e) in cases {
            assert_eq!(ex.place(p, &r, &mut m, 1), Err(e), "{r:?}");
        }
        // 199.99 BTC at 50000 needs 9999500 + 3999.8 fee > 10M; 199.9 needs 9998998.
        let buy = |qty| req(SPOT, Side::Bid, Some(5_000_000), qty, Tif::Gtc);
        assert_eq!(ex.place(a, &buy(19_999_000), &mut m, 1), Err(ExchangeError::InsufficientBalance));
        ex.place(a, &buy(19_990_000), &mut m, 1).unwrap();
        assert_eq!(bal(&ex, a, "USDT"), (d("1002"), d("9998998")));
        let sell = req(SPOT, Side::Ask, Some(5_100_000), 10_000_001, Tif::Gtc);
        assert_eq!(ex.place(a, &sell, &mut m, 1), Err(ExchangeError::InsufficientBalance));
        // Perpetual: 10M margin at leverage 10 opens at most 100M notional = 2000 BTC at 50000.
        let long = |qty| req(PERP, Side::Bid, Some(500_000), qty, Tif::Gtc);
        assert_eq!(ex.place(p, &long(2_000_001), &mut m, 1), Err(ExchangeError::InsufficientBalance));
        ex.place(p, &long(2_000_000), &mut m, 1).unwrap();
        assert_eq!(bal(&ex, p, "USDT"), (Decimal::ZERO, d("10000000")));
        assert_eq!(ex.place(AccountId(9), &long(1_000), &mut m, 1), Err(ExchangeError::InsufficientBalance));
        // Price x quantity beyond any Decimal is refused, not a panic.
        let huge = req(PERP, Side::Bid, Some(i64::MAX / 5 * 5), i64::MAX / 1_000 * 1_000, Tif::Gtc);
        assert_eq!(ex.place(p, &huge, &mut m, 1), Err(ExchangeError::InsufficientBalance));
        let huge = req(SPOT, Side::Bid, Some(i64::MAX), i64::MAX, Tif::Gtc);
        assert_eq!(ex.place(a, &huge, &mut m, 1), Err(ExchangeError::InsufficientBalance));
        assert_eq!(drain(&mut ex).len(), 2);
        assert!(ex.fills(a, None, 0).is_empty());
    }

    #[test]
    fn client_ids_are_unique_among_open_orders() {
        let (mut ex, mut m, a, b) = setup();
        let r = PlaceRequest { client_id: "dup".into(), ..req(SPOT, Side::Bid, Some(4_000_000), 1_000, Tif::Gtc) };
        let first = ex.place(a, &r, &mut m, 1).unwrap();
        assert_eq!(ex.place(a, &r, &mut m, 2), Err(ExchangeError::DuplicateClientId));
        ex.place(b, &PlaceRequest { instrument: PERP, px: Some(400_000), ..r.clone() }, &mut m, 2).unwrap();
        ex.cancel(a, SPOT, OrderRef::Client("dup"), 3).unwrap();
        let again = ex.place(a, &r, &mut m, 4).unwrap();
        assert_ne!(again.order_id, first.order_id);
        assert_eq!(ex.order(a, SPOT, OrderRef::Client("dup")).unwrap().order_id, again.order_id);
        let x = ex.place(a, &req(SPOT, Side::Bid, Some(4_000_000), 1_000, Tif::Gtc), &mut m, 5).unwrap();
        let y = ex.place(a, &req(SPOT, Side::Bid, Some(4_000_000), 1_000, Tif::Gtc), &mut m, 5).unwrap();
        assert_eq!((x.client_id.as_str(), y.client_id.as_str()), ("sim4", "sim5"));
        let open: Vec<_> = ex.open_orders(a, None).iter().map(|o| o.order_id).collect();
        assert_eq!(open, [again.order_id, x.order_id, y.order_id]);
    }

    #[test]
    fn reduce_only_never_increases_the_position() {
        let (mut ex, mut m, _, p) = setup();
        let ro = |side, qty| PlaceRequest { reduce_only: true, ..req(PERP, side, Some(550_000), qty, Tif::Gtc) };
        assert_eq!(ex.place(p, &ro(Side::Ask, 1_000), &mut m, 1), Err(ExchangeError::ReduceOnly));
        m.book_mut(PERP).unwrap().set(Side::Ask, 500_000, 1_000);
        ex.place(p, &req(PERP, Side::Bid, Some(500_000), 1_000, Tif::Ioc), &mut m, 1).unwrap();
        assert_eq!(ex.place(p, &ro(Side::Bid, 500), &mut m, 2), Err(ExchangeError::ReduceOnly));
        assert_eq!(ex.place(p, &ro(Side::Ask, 2_000), &mut m, 2), Err(ExchangeError::ReduceOnly));
        let o = ex.place(p, &ro(Side::Ask, 1_000), &mut m, 2).unwrap();
        assert_eq!(o.status, OrderStatus::New);
        // Closing the position elsewhere leaves the reduce-only order nothing to reduce.
        m.book_mut(PERP).unwrap().set(Side::Bid, 500_000, 1_000);
        ex.place(p, &req(PERP, Side::Ask, Some(500_000), 1_000, Tif::Ioc), &mut m, 3).unwrap();
        m.book_mut(PERP).unwrap().set(Side::Bid, 560_000, 5_000);
        ex.on_market(&mut m, 4);
        let o = ex.order(p, PERP, OrderRef::Id(o.order_id)).unwrap();
        assert_eq!((o.status, o.filled_qty), (OrderStatus::Expired, 0));
        assert_eq!(m.book(PERP).unwrap().qty_at(Side::Bid, 560_000), 5_000);
    }

    #[test]
    fn perpetual_position_opens_increases_reduces_and_flips() {
        let (mut ex, mut m, _, p) = setup();
        let mut trade = |side, px: i64, qty| {
            let book = m.book_mut(PERP).unwrap();
            book.set(opposite(side), px, 10_000);
            let o = ex.place(p, &req(PERP, side, Some(px), qty, Tif::Ioc), &mut m, 1).unwrap();
            assert_eq!(o.status, OrderStatus::Filled);
            m.book_mut(PERP).unwrap().set(opposite(side), px, 0);
            let pos = ex.positions(p);
            assert_eq!(pos.len(), 1);
            (pos[0].1.clone(), bal(&ex, p, "USDT"), bal(&ex, p, "BTC"), ex.fills(p, Some(PERP), 0))
        };
        let pos = |qty, entry: &str, realized: &str| PositionView { qty, entry_px: d(entry), realized: d(realized) };
        // Buy 1 at 50000: fee 20, margin 5000.
        let t = |r: (PositionView, (Decimal, Decimal), (Decimal, Decimal), Vec<FillView>)| (r.0, r.1);
        assert_eq!(t(trade(Side::Bid, 500_000, 1_000)), (pos(1_000, "50000", "0"), (d("9994980"), d("5000"))));
        // Buy 1 at 51000: entry 50500, fee 20.4, margin 10100.
        assert_eq!(t(trade(Side::Bid, 510_000, 1_000)), (pos(2_000, "50500", "0"), (d("9989859.6"), d("10100"))));
        // Sell 0.5 at 52000: realized (52000 - 50500) x 0.5 = 750, fee 10.4, margin 7575.
        assert_eq!(t(trade(Side::Ask, 520_000, 500)), (pos(1_500, "50500", "750"), (d("9993124.2"), d("7575"))));
        // Sell 3 at 49000: realized (49000 - 50500) x 1.5 = -2250, short 1.5 at 49000, fee 58.8.
        let wallet = d("10000000") - d("109.6") - d("1500");
        assert_eq!(
            t(trade(Side::Ask, 490_000, 3_000)),
            (pos(-1_500, "49000", "-1500"), (wallet - d("7350"), d("7350")))
        );
        assert_eq!(wallet - d("7350"), d("9991040.4"));
        // Buying 1.5 back at 48000 realizes (49000 - 48000) x 1.5 = 1500 and frees the margin.
        let (flat, usdt, btc, fills) = trade(Side::Bid, 480_000, 1_500);
        assert_eq!((flat, usdt, btc), (pos(0, "0", "0"), (d("9999861.6"), Decimal::ZERO), (d("100"), Decimal::ZERO)));
        let fees: Decimal = fills.iter().map(|f| f.fee).sum();
        assert_eq!(fees, d("138.4"));
    }

    #[test]
    fn a_negative_maker_fee_is_a_rebate() {
        let (mut ex, mut m, a, _) = setup();
        // Buy 0.5 at 60000.0: locks 30000 + 15 (the larger, taker, fee).
        let o = ex.place(a, &req(USDC, Side::Bid, Some(600_000), 5_000, Tif::Gtc), &mut m, 1).unwrap();
        assert_eq!(bal(&ex, a, "USDC"), (d("9969985"), d("30015")));
        m.book_mut(USDC).unwrap().set(Side::Ask, 599_000, 9_000);
        ex.on_market(&mut m, 2);
        let fill = &ex.fills(a, Some(USDC), 0)[0];
        assert_eq!((fill.px, fill.qty, fill.fee, fill.fee_asset.as_str()), (600_000, 5_000, d("-3"), "USDC"));
        assert_eq!(bal(&ex, a, "USDC"), (d("9970003"), Decimal::ZERO));
        assert_eq!(bal(&ex, a, "BTC"), (d("100.5"), Decimal::ZERO));
        assert_eq!(m.book(USDC).unwrap().qty_at(Side::Ask, 599_000), 4_000);
        assert_eq!(ex.order(a, USDC, OrderRef::Id(o.order_id)).unwrap().status, OrderStatus::Filled);
    }

    #[test]
    fn ended_orders_are_kept_up_to_the_cap() {
        let (mut ex, mut m, a, _) = setup();
        let ioc = req(SPOT, Side::Bid, Some(100), 1, Tif::Ioc);
        let mut reports = Vec::new();
        for _ in 0..=MAX_ENDED_ORDERS {
            assert_eq!(ex.place(a, &ioc, &mut m, 1).unwrap().status, OrderStatus::Expired);
            ex.drain_reports(&mut reports);
            reports.clear();
        }
        assert_eq!(ex.order(a, SPOT, OrderRef::Id(1)), None);
        assert_eq!(ex.order(a, SPOT, OrderRef::Client("sim1")), None);
        assert_eq!(ex.order(a, SPOT, OrderRef::Client("sim2")).unwrap().order_id, 2);
        let last = MAX_ENDED_ORDERS as u64 + 1;
        assert_eq!(ex.order(a, SPOT, OrderRef::Id(last)).unwrap().status, OrderStatus::Expired);
    }
}
