//! The run's configuration: one TOML file, typed and validated before anything starts.
//!
//! Unknown fields are errors (a typo must not silently fall back to a default); cores must exist;
//! ring sizes must be powers of two; secrets never live here (they come from the environment).
//! Every problem becomes one readable line, and `crossbar` exits with status 2.

use std::path::Path;

use crossbar_connectors::eth::feed::{DEX_VENUE, DexConfig};
use crossbar_connectors::sim::SimConfig;
use crossbar_connectors::venue::VenueConfig;
use crossbar_engine::instrument::{InstrumentConfig, Registry};
use crossbar_engine::journal::JournalConfig;
use crossbar_engine::paper::PaperConfig;
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::runtime::RuntimeConfig;
use crossbar_strategies::StrategyConfig;
use serde::Deserialize;

/// The embedded demo: `crossbar run` with no `--config`.
pub const DEMO_TOML: &str = include_str!("../config/demo.toml");

/// A whole run's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Threads, cores, rings.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Venues and where they live.
    pub venues: Vec<VenueConfig>,
    /// Instruments traded or watched.
    pub instruments: Vec<InstrumentConfig>,
    /// Pre-trade risk limits.
    #[serde(default)]
    pub risk: RiskConfig,
    /// Paper gateway behaviour.
    #[serde(default)]
    pub paper: PaperConfig,
    /// The embedded simulator (used by venues whose `ws_url` is `sim`).
    #[serde(default)]
    pub simulator: SimConfig,
    /// Strategies to run.
    #[serde(default)]
    pub strategies: Vec<StrategyConfig>,
    /// The order journal (`None`: no journal, nothing survives a restart).
    #[serde(default)]
    pub journal: Option<JournalConfig>,
    /// The DEX side: an Ethereum node (or the simulator's endpoint) and the Uniswap V2 pools
    /// whose confirmed and pending-adjusted reserves reach the core.
    #[serde(default)]
    pub dex: Option<DexConfig>,
}

/// A config problem, already phrased as the one line the user sees.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads `path`, or the embedded demo when `None`.
    ///
    /// # Errors
    /// A one-line [`ConfigError`] naming the file, the line and the problem.
    pub fn load(path: Option<&Path>) -> Result<(Self, String), ConfigError> {
        let (text, origin) = match path {
            None => (DEMO_TOML.to_owned(), "embedded demo config".to_owned()),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError(format!("config {}: {}", p.display(), e)))?;
                (text, p.display().to_string())
            }
        };
        let cfg = Self::parse(&text).map_err(|e| ConfigError(format!("config {origin}: {e}")))?;
        Ok((cfg, origin))
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// The problem as one line (with its line number for syntax and schema errors).
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let mut msg = e.message().replace('\n', " ");
            // A secret pasted where a key source belongs must not be echoed back.
            if msg.contains("expected struct KeySource") {
                msg = "a secret is not written in config: give { env = \"VAR\" } or { file = \"path\" }".to_owned();
            }
            match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        self.runtime.validate().map_err(|e| e.to_string())?;
        if let Some(j) = &self.journal {
            j.validate()?;
        }
        if self.venues.is_empty() {
            return Err("no venues configured".into());
        }
        for (i, v) in self.venues.iter().enumerate() {
            if self.venues[..i].iter().any(|w| w.name == v.name) {
                return Err(format!("venue {:?} is listed twice", v.name));
            }
            if v.ws_url != "sim" && !v.ws_url.starts_with("ws://") && !v.ws_url.starts_with("wss://") {
                return Err(format!("venue {:?}: ws_url must be \"sim\", ws:// or wss://", v.name));
            }
            if v.rest_url != "sim" && !v.rest_url.starts_with("http://") && !v.rest_url.starts_with("https://") {
                return Err(format!("venue {:?}: rest_url must be \"sim\", http:// or https://", v.name));
            }
            if v.order_ws_url != "sim" && !v.order_ws_url.starts_with("ws://") && !v.order_ws_url.starts_with("wss://")
            {
                return Err(format!("venue {:?}: order_ws_url must be \"sim\", ws:// or wss://", v.name));
            }
            if v.recv_window_ms == 0 || v.recv_window_ms > 60_000 {
                return Err(format!("venue {:?}: recv_window_ms must be 1..=60000, not {}", v.name, v.recv_window_ms));
            }
            if let Some(c) = &v.credentials {
                c.validate().map_err(|e| format!("venue {:?}: {e}", v.name))?;
            }
        }
        if let Some(dex) = &self.dex {
            dex.validate()?;
            if self.venues.iter().any(|v| v.name == DEX_VENUE) {
                return Err(format!("venue name {DEX_VENUE:?} is reserved for the [dex] pools"));
            }
            if dex.rpc == "sim" && !self.venues.iter().any(|v| v.is_simulated()) {
                return Err("dex: rpc = \"sim\" needs the simulator (a venue with ws_url = \"sim\")".into());
            }
        }
        self.registry()?;
        Ok(())
    }

    /// The instrument registry this config describes.
    ///
    /// # Errors
    /// The registry's refusal, as text.
    pub fn registry(&self) -> Result<Registry, String> {
        let mut names: Vec<String> = self.venues.iter().map(|v| v.name.clone()).collect();
        let mut instruments = self.instruments.clone();
        if let Some(dex) = &self.dex {
            names.push(DEX_VENUE.to_owned());
            instruments.extend(dex.instruments());
        }
        Registry::new(&names, &instruments).map_err(|e| e.to_string())
    }

    /// The venues' instruments only, without the `[dex]` pools (which come after them, so ids
    /// agree with [`Config::registry`]): what the simulator's venues serve.
    ///
    /// # Errors
    /// The registry's refusal, as text.
    pub fn venue_registry(&self) -> Result<Registry, String> {
        let names: Vec<String> = self.venues.iter().map(|v| v.name.clone()).collect();
        Registry::new(&names, &self.instruments).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbar_engine::journal::FsyncPolicy;

    #[test]
    fn embedded_demo_is_valid() {
        Config::parse(DEMO_TOML).unwrap();
    }

    #[test]
    fn the_demo_has_dex_pools_after_the_venue_instruments() {
        let cfg = Config::parse(DEMO_TOML).unwrap();
        let all = cfg.registry().unwrap();
        let venues = cfg.venue_registry().unwrap();
        assert_eq!(all.len(), venues.len() + 2);
        let pool = all.get(crossbar_engine::instrument::InstrumentId(venues.len() as u32));
        assert_eq!((all.venue_name(pool.venue), pool.symbol.as_str()), (DEX_VENUE, "WETH-USDC"));
        assert_eq!(pool.kind, crossbar_engine::instrument::InstrumentKind::Pool);
        for (a, b) in venues.instruments().iter().zip(all.instruments()) {
            assert_eq!((a.id, &a.symbol), (b.id, &b.symbol), "venue instrument ids agree");
        }
    }

    #[test]
    fn bad_dex_sections_are_refused_with_one_line() {
        let demo = DEMO_TOML.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xnothex");
        assert_eq!(Config::parse(&demo).unwrap_err(), "dex: base_token \"0xnothex\" is not a 0x address");
        let demo = DEMO_TOML.replace("rpc = \"sim\"", "rpc = \"http://node\"");
        assert_eq!(Config::parse(&demo).unwrap_err(), "dex: rpc must be \"sim\" or ws://, not \"http://node\"");
        let demo = DEMO_TOML.replace("name = \"binance-usdm\"", "name = \"ethereum\"");
        assert_eq!(Config::parse(&demo).unwrap_err(), "venue name \"ethereum\" is reserved for the [dex] pools");
        let demo = DEMO_TOML.replace("base_decimals = 18", "base_decimals = 40");
        assert_eq!(Config::parse(&demo).unwrap_err(), "dex pool WETH-USDC: decimals must be at most 36");
        let demo = DEMO_TOML.replace("symbol = \"WBTC-USDC\"", "symbol = \"WETH-USDC\"");
        assert_eq!(Config::parse(&demo).unwrap_err(), "instrument WETH-USDC on ethereum is listed twice");
    }

    #[test]
    fn journal_section_parses_and_bad_values_are_one_line() {
        let on = DEMO_TOML.replace("# [journal]\n# path = ", "[journal]\npath = ");
        let cfg = Config::parse(&on).unwrap();
        let j = cfg.journal.unwrap();
        assert_eq!(j.path, std::path::Path::new("target/crossbar-journal/orders.jnl"));
        assert_eq!((j.fsync, j.batch_records, j.batch_ms, j.ring), (FsyncPolicy::Batched, 64, 5, 65_536));
        assert!(Config::parse(DEMO_TOML).unwrap().journal.is_none(), "off in the demo");
        let e = Config::parse(&on.replace("[journal]\n", "[journal]\nring = 1000\n")).unwrap_err();
        assert_eq!(e, "journal.ring = 1000: ring capacity must be a power of two ≥ 2");
        let e = Config::parse(&on.replace("[journal]\n", "[journal]\nfsync = \"sometimes\"\n")).unwrap_err();
        assert!(e.contains("unknown variant `sometimes`, expected one of `every`, `batched`, `off`"), "{e}");
    }

    #[test]
    fn venues_default_to_their_own_order_entry_and_credentials_name_env_or_file() {
        use crossbar_connectors::auth::KeySource;
        use crossbar_connectors::venue::GatewayKind;
        let cfg = Config::parse(DEMO_TOML).unwrap();
        for v in &cfg.venues {
            assert_eq!((v.gateway, v.order_ws_url.as_str(), v.recv_window_ms), (GatewayKind::Venue, "sim", 5_000));
            assert!(v.credentials.is_none() && v.orders_simulated(), "{}", v.name);
        }
        let no_keys = DEMO_TOML.replace("gateway = \"venue\"", "").replace("order_ws_url = \"sim\"", "");
        let cfg = Config::parse(&no_keys).unwrap();
        assert!(cfg.venues.iter().all(|v| v.gateway == GatewayKind::Venue), "venue is the default");
        let paper = DEMO_TOML.replacen("gateway = \"venue\"", "gateway = \"paper\"", 1);
        let cfg = Config::parse(&paper).unwrap();
        assert_eq!(cfg.venues[0].gateway, GatewayKind::Paper);
        assert!(!cfg.venues[0].orders_simulated());
        let okx = DEMO_TOML.replacen(
            "order_ws_url = \"sim\"",
            "order_ws_url = \"wss://ws.okx.com:8443\"\nrecv_window_ms = 2500\ncredentials = { api_key = { env = \"OKX_KEY\" }, secret = { file = \"/run/okx.secret\" }, passphrase = { env = \"OKX_PASS\" } }",
            1,
        );
        let cfg = Config::parse(&okx).unwrap();
        let v = &cfg.venues[0];
        assert_eq!((v.order_ws_url.as_str(), v.recv_window_ms), ("wss://ws.okx.com:8443", 2_500));
        let c = v.credentials.as_ref().unwrap();
        assert_eq!(c.api_key, KeySource::env("OKX_KEY"));
        assert_eq!(c.secret, Some(KeySource::file("/run/okx.secret")));
        assert_eq!((c.private_key.as_ref(), c.passphrase.as_ref()), (None, Some(&KeySource::env("OKX_PASS"))));
        let e = Config::parse(&DEMO_TOML.replacen("order_ws_url = \"sim\"", "recv_window_ms = 0", 1)).unwrap_err();
        assert_eq!(e, "venue \"binance-spot\": recv_window_ms must be 1..=60000, not 0");
        let e = Config::parse(&okx.replace("secret = { file", "secret = { env = \"X\", file")).unwrap_err();
        assert!(e.starts_with("venue \"binance-spot\": credentials.secret: key source names both"), "{e}");
        let written = okx.replace("secret = { file = \"/run/okx.secret\" }", "secret = \"hunter2\"");
        let line = written.lines().position(|l| l.contains("hunter2")).unwrap() + 1;
        let e = Config::parse(&written).unwrap_err();
        assert_eq!(
            e,
            format!(
                "line {line}: a secret is not written in config: give {{ env = \"VAR\" }} or {{ file = \"path\" }}"
            )
        );
    }

    #[test]
    fn the_readme_real_venue_example_is_a_valid_venue() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n[[venues]]").expect("README shows a [[venues]] example") + "```toml\n".len();
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let first = DEMO_TOML.find("[[venues]]").unwrap();
        let second = first + 1 + DEMO_TOML[first + 1..].find("[[venues]]").unwrap();
        let text = format!("{}{example}\n{}", &DEMO_TOML[..first], &DEMO_TOML[second..]);
        let cfg = Config::parse(&text).unwrap();
        let v = cfg.venues.iter().find(|v| v.name == "binance-spot").unwrap();
        assert_eq!(v.order_ws_url, "wss://ws-api.binance.com:443");
        let c = v.credentials.as_ref().unwrap();
        assert_eq!(c.api_key, crossbar_connectors::auth::KeySource::env("BINANCE_API_KEY"));
        assert!(c.secret.is_none() && c.private_key.is_some());
    }

    #[test]
    fn errors_are_one_line_with_position() {
        let e = Config::parse("venues = []\ninstruments = []\nbogus = 1\n").unwrap_err();
        assert!(e.starts_with("line 3: unknown field `bogus`"), "{e}");
        assert!(!e.contains('\n'));
        let e = Config::parse("[runtime]\nio_core = 4096\n[[venues]]\nname='a'\nprotocol='binance-spot'\n[[instruments]]\nvenue='a'\nsymbol='X'\nkind='spot'\nbase='X'\nquote='U'\ntick='0.1'\nlot='1'\ntaker_fee='0'\nmaker_fee='0'\n").unwrap_err();
        assert!(e.starts_with("runtime.io_core = 4096: this machine has cores 0.."), "{e}");
    }
}
