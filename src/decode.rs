//! `crossbar decode`: raw venue frames in, normalized events out as JSON lines, for people
//! debugging a feed and for tests. The work is `crossbar_connectors::decode_tool`; this is I/O.

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use crossbar_connectors::decode_tool::{DecodeToolError, run_decode};

use crate::config::ConfigError;

/// Arguments of `crossbar decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Venue protocol of the frames: binance-spot, binance-usdm, bybit-spot, bybit-linear, okx.
    #[arg(long)]
    pub venue: String,
    /// File with one raw websocket text frame per line (default: standard input).
    pub file: Option<PathBuf>,
}

/// Decodes every line; exit status 1 when any line was malformed, else 0.
pub fn decode(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let input: Box<dyn BufRead> = match &args.file {
        Some(p) => {
            Box::new(BufReader::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?))
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr().lock();
    let malformed = match run_decode(&args.venue, input, &mut stdout, &mut stderr) {
        Ok(m) => m,
        Err(DecodeToolError::UnknownVenue(_)) => {
            return Err(ConfigError(format!(
                "--venue {:?}: not a venue; one of {}",
                args.venue,
                crossbar_connectors::decode_tool::VENUES.join(", ")
            ))
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    stdout.flush()?;
    Ok(if malformed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
