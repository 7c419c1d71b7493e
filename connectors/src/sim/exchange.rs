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

use std::collections::HashMap;

use crossbar_engine::instrument::{InstrumentId, Registry};
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

/// The back office of every simulated venue.
#[derive(Debug)]
pub struct Exchange {
    accounts: Vec<Account>,
    by_key: HashMap<(String, String), AccountId>,
    defaults: AccountDefaults,
    reports: Vec<ExecReport>,
    // Implementation state (orders, fills, balances, positions, ids) goes here.
}

impl Exchange {
    /// An exchange for `registry`'s instruments (the simulator's venue registry: tick, lot,
    /// fees, kind, base and quote of each), with no accounts yet.
    pub fn new(registry: &Registry, defaults: AccountDefaults) -> Self {
        let _ = registry;
        Self { accounts: Vec::new(), by_key: HashMap::new(), defaults, reports: Vec::new() }
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
        let _ = &self.defaults;
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
    /// book up to its limit, rests what is left (GTC) or expires it (IOC, FOK, post-only).
    /// Returns the order as it stands after matching; its reports (accepted, each fill,
    /// expiry) are queued for [`Exchange::drain_reports`].
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
        let _ = (account, req, market, time_ms);
        unimplemented!("sim exchange: place")
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
        let _ = (account, instrument, order, time_ms);
        unimplemented!("sim exchange: cancel")
    }

    /// Cancels every open order of the account (on one instrument, or all); returns them.
    pub fn cancel_all(&mut self, account: AccountId, instrument: Option<InstrumentId>, time_ms: i64) -> Vec<OrderView> {
        let _ = (account, instrument, time_ms);
        unimplemented!("sim exchange: cancel_all")
    }

    /// An order of the account, open or ended (ended orders are kept).
    pub fn order(&self, account: AccountId, instrument: InstrumentId, order: OrderRef<'_>) -> Option<OrderView> {
        let _ = (account, instrument, order);
        unimplemented!("sim exchange: order")
    }

    /// The account's open orders (on one instrument, or all), oldest first.
    pub fn open_orders(&self, account: AccountId, instrument: Option<InstrumentId>) -> Vec<OrderView> {
        let _ = (account, instrument);
        unimplemented!("sim exchange: open_orders")
    }

    /// The account's fills (on one instrument, or all) at or after `since_ms`, oldest first.
    pub fn fills(&self, account: AccountId, instrument: Option<InstrumentId>, since_ms: i64) -> Vec<FillView> {
        let _ = (account, instrument, since_ms);
        unimplemented!("sim exchange: fills")
    }

    /// The account's perpetual positions (flat ones included once traded).
    pub fn positions(&self, account: AccountId) -> Vec<(InstrumentId, PositionView)> {
        let _ = account;
        unimplemented!("sim exchange: positions")
    }

    /// The account's asset balances.
    pub fn balances(&self, account: AccountId) -> Vec<BalanceView> {
        let _ = account;
        unimplemented!("sim exchange: balances")
    }

    /// Fills resting orders the market has reached (maker fills at the order's price), after a
    /// model step.
    pub fn on_market(&mut self, market: &mut Market, time_ms: i64) {
        let _ = (market, time_ms);
    }

    /// Moves every queued report to `out`, in the order they happened.
    pub fn drain_reports(&mut self, out: &mut Vec<ExecReport>) {
        out.append(&mut self.reports);
    }
}
