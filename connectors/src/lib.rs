//! crossbar's venue side: each venue's wire protocol, the I/O thread that speaks it, and the
//! loopback venue simulator that speaks the same protocols.
#![forbid(unsafe_code)]

pub mod auth;
pub mod binance;
pub mod bybit;
pub mod decode_tool;
pub mod eth;
pub mod feed;
pub mod io;
pub mod json;
pub mod okx;
pub mod order;
pub mod sim;
pub mod snapshot;
pub mod venue;
mod wire;
pub mod ws;
