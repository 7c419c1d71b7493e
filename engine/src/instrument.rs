//! The instrument registry: every tradable thing gets a small integer id at start.
//!
//! Strings (venue names, symbols) are looked up once, when config is loaded and when a connector
//! builds its symbol table; afterwards the hot path carries [`InstrumentId`] and [`VenueId`] only.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::fixed::{FixedError, Px, Qty, Scale};

/// Index of an instrument in the [`Registry`], assigned at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstrumentId(pub u32);

impl InstrumentId {
    /// The id as a vector index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a venue in the [`Registry`], assigned at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VenueId(pub u8);

impl VenueId {
    /// The id as a vector index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// What kind of contract an instrument is; decides how positions turn into exposure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstrumentKind {
    /// Spot: buying it delivers the base asset.
    Spot,
    /// Perpetual swap: a linear contract with funding, no expiry.
    Perpetual,
    /// European option on the base asset.
    Option,
    /// An AMM liquidity pool of base against quote (Uniswap V2); watched, not traded through a
    /// gateway. Configured under `[dex]`, its market events are pool states and pending swaps.
    Pool,
}

/// Static description of one tradable instrument on one venue, as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct Instrument {
    /// Its id in the registry.
    pub id: InstrumentId,
    /// The venue it trades on.
    pub venue: VenueId,
    /// The venue's own symbol (`BTCUSDT`, `BTC-USDT-SWAP`).
    pub symbol: String,
    /// Spot, perpetual or option.
    pub kind: InstrumentKind,
    /// Base asset (`BTC`): the underlying whose exposure this instrument carries.
    pub base: String,
    /// Quote asset (`USDT`): the currency of prices, fees and PnL.
    pub quote: String,
    /// Minimum price increment.
    pub tick: Px,
    /// Minimum quantity increment.
    pub lot: Qty,
    /// Decimal places of prices.
    pub price_scale: Scale,
    /// Decimal places of quantities.
    pub qty_scale: Scale,
    /// Units of base per contract (1 for spot and linear perpetuals quoted in base).
    pub contract_size: Decimal,
    /// Fee charged on the notional of a taking fill, as a fraction (0.0004 = 4 bps).
    pub taker_fee: Decimal,
    /// Fee charged on the notional of a resting fill, as a fraction.
    pub maker_fee: Decimal,
}

impl Instrument {
    /// The exact decimal value of a price of this instrument.
    pub fn px(&self, px: Px) -> Decimal {
        px.to_decimal(self.price_scale)
    }

    /// The exact decimal value of a quantity of this instrument.
    pub fn qty(&self, qty: Qty) -> Decimal {
        qty.to_decimal(self.qty_scale)
    }
}

/// Configuration of one instrument, before ids are assigned.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// Venue name, one of the configured venues.
    pub venue: String,
    /// The venue's own symbol.
    pub symbol: String,
    /// Spot, perpetual or option.
    pub kind: InstrumentKind,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Price tick as a decimal string; its decimal places set the price scale.
    #[serde(with = "rust_decimal::serde::str")]
    pub tick: Decimal,
    /// Lot size as a decimal string; its decimal places set the quantity scale.
    #[serde(with = "rust_decimal::serde::str")]
    pub lot: Decimal,
    /// Units of base per contract.
    #[serde(default = "one", with = "rust_decimal::serde::str")]
    pub contract_size: Decimal,
    /// Taker fee fraction.
    #[serde(with = "rust_decimal::serde::str")]
    pub taker_fee: Decimal,
    /// Maker fee fraction.
    #[serde(with = "rust_decimal::serde::str")]
    pub maker_fee: Decimal,
}

fn one() -> Decimal {
    Decimal::ONE
}

/// Why the instrument list was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An instrument names a venue that is not configured.
    #[error("instrument {symbol}: unknown venue {venue:?}")]
    UnknownVenue {
        /// The instrument's symbol.
        symbol: String,
        /// The venue it named.
        venue: String,
    },
    /// The same venue and symbol twice.
    #[error("instrument {symbol} on {venue} is listed twice")]
    Duplicate {
        /// The symbol.
        symbol: String,
        /// The venue.
        venue: String,
    },
    /// A tick or lot that is not a positive decimal with at most 18 places.
    #[error("instrument {symbol}: {what} {source}")]
    BadStep {
        /// The symbol.
        symbol: String,
        /// `tick` or `lot`.
        what: &'static str,
        /// The defect.
        source: FixedError,
    },
    /// More venues or instruments than the id types hold.
    #[error("too many {0}")]
    TooMany(&'static str),
}

/// Every venue and instrument of this run, with ids assigned in config order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    venues: Vec<String>,
    instruments: Vec<Instrument>,
}

impl Registry {
    /// Builds the registry; venue ids follow `venues` order, instrument ids follow `instruments`.
    ///
    /// # Errors
    /// A [`RegistryError`] for an unknown venue, a duplicate, or a malformed tick or lot.
    pub fn new(venues: &[String], instruments: &[InstrumentConfig]) -> Result<Self, RegistryError> {
        if venues.len() > usize::from(u8::MAX) {
            return Err(RegistryError::TooMany("venues"));
        }
        let mut out = Self { venues: venues.to_vec(), instruments: Vec::with_capacity(instruments.len()) };
        for cfg in instruments {
            let venue = out
                .venue_id(&cfg.venue)
                .ok_or_else(|| RegistryError::UnknownVenue { symbol: cfg.symbol.clone(), venue: cfg.venue.clone() })?;
            if out.find(venue, &cfg.symbol).is_some() {
                return Err(RegistryError::Duplicate { symbol: cfg.symbol.clone(), venue: cfg.venue.clone() });
            }
            let step = |what: &'static str, v: Decimal| -> Result<(Scale, i64), RegistryError> {
                let bad = |source| RegistryError::BadStep { symbol: cfg.symbol.clone(), what, source };
                if v <= Decimal::ZERO {
                    return Err(bad(FixedError::Negative));
                }
                let scale = Scale::of_step(v).map_err(bad)?;
                let m = crate::fixed::from_decimal(v, scale).map_err(bad)?;
                Ok((scale, m))
            };
            let (price_scale, tick) = step("tick", cfg.tick)?;
            let (qty_scale, lot) = step("lot", cfg.lot)?;
            let id = u32::try_from(out.instruments.len()).map_err(|_| RegistryError::TooMany("instruments"))?;
            out.instruments.push(Instrument {
                id: InstrumentId(id),
                venue,
                symbol: cfg.symbol.clone(),
                kind: cfg.kind,
                base: cfg.base.clone(),
                quote: cfg.quote.clone(),
                tick: Px(tick),
                lot: Qty(lot),
                price_scale,
                qty_scale,
                contract_size: cfg.contract_size,
                taker_fee: cfg.taker_fee,
                maker_fee: cfg.maker_fee,
            });
        }
        Ok(out)
    }

    /// The id of a venue by name.
    pub fn venue_id(&self, name: &str) -> Option<VenueId> {
        self.venues.iter().position(|v| v == name).map(|i| VenueId(i as u8))
    }

    /// The name of a venue.
    pub fn venue_name(&self, id: VenueId) -> &str {
        &self.venues[id.index()]
    }

    /// All venue names, in id order.
    pub fn venues(&self) -> &[String] {
        &self.venues
    }

    /// An instrument by id.
    ///
    /// # Panics
    /// On an id this registry did not assign: ids only come from it, so that is a bug.
    pub fn get(&self, id: InstrumentId) -> &Instrument {
        &self.instruments[id.index()]
    }

    /// All instruments, in id order.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// True when no instrument is configured.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    /// The instrument with this venue symbol, if any.
    pub fn find(&self, venue: VenueId, symbol: &str) -> Option<&Instrument> {
        self.instruments.iter().find(|i| i.venue == venue && i.symbol == symbol)
    }
}
