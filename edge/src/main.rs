//! `dwell-edge` command line: parses arguments and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "dwell-edge", version, about = "Dwell store gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode advertisements to JSON lines: hex lines from stdin (AD data or an HCI event), or a
    /// capture file.
    Decode {
        /// A btsnoop capture (`btmon -w`, Android HCI snoop log): one JSON object per LE
        /// advertising report.
        #[arg(long, conflicts_with = "pcap")]
        btsnoop: Option<PathBuf>,
        /// A pcap/pcapng Wi-Fi capture (radiotap or plain 802.11): one JSON object per probe
        /// request.
        #[arg(long)]
        pcap: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`| head`) is the reader saying it has enough, not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dwell-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Decode { btsnoop, pcap } => {
            let out = BufWriter::new(io::stdout().lock());
            let summary = match (btsnoop, pcap) {
                (Some(path), _) => dwell_edge::decode::btsnoop_file(&path, out)
                    .with_context(|| format!("decoding btsnoop capture {}", path.display()))?,
                (None, Some(path)) => dwell_edge::decode::pcap_file(&path, out)
                    .with_context(|| format!("decoding pcap capture {}", path.display()))?,
                (None, None) => dwell_edge::decode::lines(io::stdin().lock(), out)
                    .context("decoding hex lines from stdin")?,
            };
            eprintln!(
                "dwell-edge decode: {} input records, {} decoded, {} errors",
                summary.lines, summary.decoded, summary.errors
            );
        }
    }
    Ok(())
}
