//! `crossbar`: the command line. It wires config to connectors, strategies and the engine, and
//! nothing else: every piece of trading logic lives in the library crates.

mod bench;
mod config;
mod decode;
mod mempool;
mod report;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Low-latency cross-venue execution engine for crypto markets.
#[derive(Debug, Parser)]
#[command(name = "crossbar", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine. Without --config: the embedded demo against the built-in simulator.
    Run(RunArgs),
    /// Run the venue simulator alone and print the URLs it serves.
    Sim(SimArgs),
    /// Decode raw venue frames (one per line, from FILE or stdin) into normalized JSON lines.
    Decode(decode::DecodeArgs),
    /// Benchmark the real pipeline on a replayed stream and gate it against a latency budget.
    Bench(bench::BenchArgs),
    /// Watch a node's mempool: one JSON line per decoded pending Uniswap swap, V2 legs priced.
    Mempool(mempool::MempoolArgs),
}

/// Arguments of `crossbar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file (TOML). Default: the embedded demo config.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seconds to run before stopping and reporting (Ctrl-C stops earlier).
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Also write the report as JSON to this path.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
}

/// Arguments of `crossbar sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Config file whose instruments and [simulator] section to serve. Default: the demo's.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Sim(args) => run::sim(&args),
        Command::Decode(args) => decode::decode(&args),
        Command::Mempool(args) => mempool::mempool(&args),
        Command::Bench(args) => bench::bench(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(cfg) = e.downcast_ref::<config::ConfigError>() {
                eprintln!("crossbar: {cfg}");
                return ExitCode::from(2);
            }
            eprintln!("crossbar: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
