//! What the binary's integration suites share.

use crossbar_engine::instrument::{InstrumentConfig, Registry};

/// The embedded demo's config text.
pub const DEMO: &str = include_str!("../../config/demo.toml");

/// The demo's instruments, numbered as the engine numbers them, to read its journals with.
pub fn demo_registry() -> Registry {
    #[derive(serde::Deserialize)]
    struct Venue {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Demo {
        venues: Vec<Venue>,
        instruments: Vec<InstrumentConfig>,
    }
    let d: Demo = toml::from_str(DEMO).unwrap();
    let venues: Vec<String> = d.venues.into_iter().map(|v| v.name).collect();
    Registry::new(&venues, &d.instruments).unwrap()
}
