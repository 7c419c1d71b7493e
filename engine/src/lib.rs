//! crossbar's engine: everything between a decoded market event and an order command.
//!
//! It owns the hot-path types (fixed-point prices, `Copy` events), the rings and pinned threads
//! that move them, the single-owner core (books, strategies through the [`strategy::Strategy`]
//! trait, risk, OMS, positions and PnL) and latency recording. It knows no venue and no strategy:
//! connectors and strategies plug in through its traits.
#![forbid(unsafe_code)]

pub mod book;
pub mod clock;
pub mod core;
pub mod event;
pub mod fixed;
pub mod gateway;
pub mod instrument;
pub mod journal;
pub mod latency;
pub mod oms;
pub mod orderbook;
pub mod paper;
pub mod pool;
pub mod portfolio;
pub mod ring;
pub mod risk;
pub mod router;
pub mod runtime;
pub mod strategy;
