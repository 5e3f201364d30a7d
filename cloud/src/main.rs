//! `dwell-cloud` command line: parses arguments and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "dwell-cloud", version, about = "Dwell cloud aggregator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the cloud: ingest gateways' events from the broker into the database, until
    /// SIGINT/SIGTERM (then finish writing and acknowledging what was received).
    Run {
        #[arg(long, default_value = dwell_cloud::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Print the shipped, commented default configuration.
    PrintDefaultConfig,
    /// Print the Eddystone-EID (16 hex digits) an identity key advertises at a beacon time.
    Eid {
        /// The 16-byte identity key, 32 hex digits.
        #[arg(long)]
        identity_key: String,
        /// Rotation exponent K (0..=15): the EID changes every 2^K seconds.
        #[arg(long)]
        exponent: u8,
        /// Beacon time in seconds (the beacon's 32-bit counter).
        #[arg(long)]
        time: u32,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dwell-cloud: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = dwell_cloud::config::Config::load(&config)?;
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(io::stderr)
                .with_ansi(io::stderr().is_terminal())
                .init();
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = tokio_util::sync::CancellationToken::new();
                let on_signal = shutdown.clone();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    on_signal.cancel();
                });
                dwell_cloud::ingest::run(&config, shutdown).await
            })?;
        }
        Command::PrintDefaultConfig => print!("{}", dwell_cloud::config::DEFAULT_CONFIG),
        Command::Eid {
            identity_key,
            exponent,
            time,
        } => {
            let key = dwell_cloud::identity::parse_identity_key(&identity_key)?;
            println!("{}", dwell_cloud::identity::eid_hex(&key, exponent, time)?);
        }
    }
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd stop).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
