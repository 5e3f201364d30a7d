//! `dwell-cloud` command line: parses arguments and calls the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "dwell-cloud", version, about = "Dwell cloud aggregator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
