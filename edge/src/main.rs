//! `dwell-edge` command line: parses arguments and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dwell_edge::config::Config;
use dwell_edge::simulate::{self, SimParams};
use dwell_edge::source::jsonl::JsonlSource;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal};
use std::path::Path;
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
    /// Run recorded sightings (JSON lines) through the gateway's pipeline, offline, and write the
    /// events it would publish.
    Replay {
        #[arg(long)]
        config: PathBuf,
        /// Sightings, one JSON object per line (`-` for stdin).
        #[arg(long)]
        input: PathBuf,
        /// Where the events go, one JSON object per line (`-` for stdout).
        #[arg(long)]
        output: PathBuf,
    },
    /// Simulate shoppers in the configured store; write sightings (JSON lines, the replay input)
    /// and, beside them, the ground truth (`<out>.truth.json`).
    Simulate {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value_t = 100)]
        shoppers: u32,
        #[arg(long, default_value_t = 60)]
        minutes: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure tracking accuracy on a simulated store: zone accuracy, false zone stays, visit
    /// counts, for each positioning method beside the nearest-receiver baseline.
    Accuracy {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value_t = 200)]
        shoppers: u32,
        #[arg(long, default_value_t = 120)]
        minutes: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// RSSI noise, dB (indoor: about 6).
        #[arg(long, default_value_t = 6.0)]
        noise_db: f32,
    },
    /// Run the gateway: sources → pipeline → outbox → MQTT, until SIGINT/SIGTERM.
    Run {
        #[arg(long, default_value = dwell_edge::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Measure the hot path on this machine: sightings/s on one core through decode → identify →
    /// track → outbox, and resident memory with every device tracked.
    Bench {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Seconds of data (each device is heard by three receivers every second).
        #[arg(long, default_value_t = 30)]
        seconds: u32,
    },
    /// Check the Bluetooth stack, capture permissions, broker reachability and credentials, disk
    /// space, clock and metrics port, and say what to fix. Exits non-zero if anything failed.
    Doctor {
        #[arg(long, default_value = dwell_edge::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Print the shipped, commented default configuration.
    PrintDefaultConfig,
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
        Command::Run { config } => {
            let origin = config.display().to_string();
            let config = Config::load(&config)?;
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
                    dwell_edge::signal::wait_for_signal().await;
                    tracing::info!("shutting down: draining the pipeline and the uplink");
                    on_signal.cancel();
                });
                dwell_edge::gateway::run(config, &origin, shutdown).await
            })?;
        }
        Command::Replay {
            config,
            input,
            output,
        } => replay(&config, &input, &output)?,
        Command::Simulate {
            config,
            shoppers,
            minutes,
            seed,
            out,
        } => {
            let config = Config::load(&config)?;
            let params = SimParams {
                shoppers,
                minutes,
                seed,
                ..SimParams::default()
            };
            let sim = simulate::run(config.store_layout(), &params)?;
            let file = File::create(&out).with_context(|| format!("creating {}", out.display()))?;
            sim.write_sightings(BufWriter::new(file))
                .with_context(|| format!("writing {}", out.display()))?;
            let truth_path = out.with_extension("truth.json");
            let truth = File::create(&truth_path)
                .with_context(|| format!("creating {}", truth_path.display()))?;
            serde_json::to_writer_pretty(BufWriter::new(truth), &sim.truth)?;
            eprintln!(
                "dwell-edge simulate: {} sightings of {} people to {}, truth in {}",
                sim.sightings.len(),
                sim.truth.people.len(),
                out.display(),
                truth_path.display()
            );
        }
        Command::Accuracy {
            config,
            shoppers,
            minutes,
            seed,
            noise_db,
        } => {
            let config = Config::load(&config)?;
            let params = SimParams {
                shoppers,
                minutes,
                seed,
                noise_db,
                ..SimParams::default()
            };
            println!(
                "{:<10} {:>14} {:>12} {:>12} {:>13} {:>10}",
                "method", "zone accuracy", "true stays", "false stays", "false / real", "visits ±"
            );
            for (mode, r) in simulate::accuracy::compare(&config, &params)? {
                println!(
                    "{:<10} {:>13.1}% {:>12} {:>12} {:>13.3} {:>9.1}%",
                    format!("{mode:?}").to_lowercase(),
                    r.zone_accuracy * 100.0,
                    r.true_stays,
                    r.false_stays,
                    r.false_stays_per_real,
                    r.visit_count_error * 100.0
                );
            }
        }
        Command::Bench {
            config,
            devices,
            seconds,
        } => {
            let config = Config::load(&config)?;
            let dir = std::env::temp_dir().join(format!("dwell-edge-bench-{}", std::process::id()));
            let r = dwell_edge::bench::run(&config, devices, seconds, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            let r = r?;
            println!(
                "{} sightings of {} devices in {:.2} s: {:.0} sightings/s on one core; {} events; \
                 {} devices tracked; resident memory {:.1} MiB",
                r.sightings,
                r.devices,
                r.seconds,
                r.sightings_per_s,
                r.events,
                r.tracked_devices,
                r.rss_bytes as f64 / 1048576.0
            );
        }
        Command::Doctor { config } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let checks = runtime.block_on(dwell_edge::doctor::run(&config));
            if dwell_edge::doctor::print(&checks) {
                anyhow::bail!("doctor found problems; fix the FAIL lines above");
            }
        }
        Command::PrintDefaultConfig => print!("{}", dwell_edge::config::DEFAULT_CONFIG),
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

fn replay(config: &Path, input: &Path, output: &Path) -> anyhow::Result<()> {
    use dwell_edge::replay::{self, InputKind};
    use dwell_edge::source::capture::{BtsnoopSource, PcapSource};
    use io::Read;

    let config = Config::load(config)?;
    let kind = if input == Path::new("-") {
        InputKind::Jsonl
    } else {
        let mut head = [0u8; 8];
        let n = File::open(input)
            .and_then(|mut f| f.read(&mut head))
            .with_context(|| format!("opening {}", input.display()))?;
        replay::sniff(&head[..n])
    };
    let writer: Box<dyn io::Write> = if output == Path::new("-") {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        let f = File::create(output).with_context(|| format!("creating {}", output.display()))?;
        Box::new(BufWriter::new(f))
    };
    let bar = io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_message(format!("{n} records"));
            b.tick();
        }
    };
    // Captures are heard by the gateway's own receiver.
    let receiver = config.gateway.id.clone();
    let summary = match kind {
        InputKind::Jsonl => {
            let reader: Box<dyn io::BufRead + Send> = if input == Path::new("-") {
                Box::new(BufReader::new(io::stdin()))
            } else {
                Box::new(BufReader::new(File::open(input)?))
            };
            replay::run(&config, JsonlSource::new(reader), writer, progress)
        }
        InputKind::Btsnoop => replay::run(
            &config,
            BtsnoopSource::open(input, &receiver)?,
            writer,
            progress,
        ),
        InputKind::Pcap => replay::run(
            &config,
            PcapSource::open(input, &receiver)?,
            writer,
            progress,
        ),
    }
    .with_context(|| format!("replaying {}", input.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for e in &summary.first_errors {
        eprintln!("dwell-edge replay: skipped {e}");
    }
    eprintln!("dwell-edge replay: {summary}");
    Ok(())
}
