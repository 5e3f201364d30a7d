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
    /// Run the cloud: ingest gateways' events from the broker into the database and serve the
    /// HTTP API and dashboard ([api] listen), until SIGINT/SIGTERM (then finish writing and
    /// acknowledging what was received).
    Run {
        #[arg(long, default_value = dwell_cloud::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// The whole product on this machine: an embedded MQTT broker, SQLite in a temporary
    /// directory, simulated stores with in-process gateways, opted-in shoppers, campaigns, coupons
    /// printed as they fire, and the dashboard on a printed URL. Ctrl-C stops it.
    Demo {
        /// Dashboard and API address (a taken port falls back to a free one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Stores with a simulated gateway (1..=8).
        #[arg(long, default_value_t = 4)]
        stores: u32,
        /// Shoppers passing each store per hour.
        #[arg(long, default_value_t = 600)]
        shoppers_per_hour: u32,
        /// Opted-in shoppers with the app.
        #[arg(long, default_value_t = 2_000)]
        app_shoppers: u32,
        /// Days of simulated history to load first.
        #[arg(long, default_value_t = 7)]
        history_days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep the data in this directory (default: a temporary one).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Stop after this many minutes.
        #[arg(long)]
        minutes: Option<u64>,
        /// Use this HQ token (at least 16 characters) instead of a random one.
        #[arg(long)]
        token: Option<String>,
    },
    /// Import a CRM export (CSV: member_id, and optionally phone, email, wechat_openid, app_user,
    /// tags, home_city, lat, lon, profiling) into shopper profiles, with a progress bar and a
    /// report of the rows that were rejected and why.
    ImportCrm {
        #[arg(long, default_value = dwell_cloud::config::DEFAULT_PATH)]
        config: PathBuf,
        /// The CSV file.
        #[arg(long)]
        csv: PathBuf,
    },
    /// Print the shipped, commented default configuration.
    PrintDefaultConfig,
    /// Create an API token and print it (shown once: only its SHA-256 is stored). Open the
    /// dashboard with http://ADDRESS/#token=TOKEN.
    Token {
        #[arg(long, default_value = dwell_cloud::config::DEFAULT_PATH)]
        config: PathBuf,
        /// hq (everything), manager (one store, needs --store), pos (a till), app (the
        /// retailer's app backend).
        #[arg(long, value_parser = ["hq", "manager", "pos", "app"])]
        role: String,
        /// The store a manager (or a till) is limited to.
        #[arg(long)]
        store: Option<String>,
        /// What the token is for, kept beside it (e.g. "Lyon store manager").
        #[arg(long, default_value = "")]
        label: String,
    },
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
    /// Regional expansion for analysts: customers vs stores per region, H3 density and
    /// candidate cities for new stores, as GeoJSON (and CSV).
    Expansion(dwell_cloud::expansion::command::ExpansionArgs),
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
            init_tracing("info");
            until_signal(|shutdown| async move {
                dwell_cloud::run::run(&config, shutdown).await?;
                Ok(())
            })?;
        }
        Command::Demo {
            listen,
            stores,
            shoppers_per_hour,
            app_shoppers,
            history_days,
            seed,
            data_dir,
            minutes,
            token,
        } => {
            // rumqttd logs every client that disconnects abruptly as an error
            init_tracing("warn,rumqttd=off");
            let opts = dwell_cloud::demo::DemoOptions {
                listen,
                stores,
                shoppers_per_hour,
                app_shoppers,
                history_days,
                seed,
                data_dir,
                minutes,
                token,
            };
            until_signal(|shutdown| dwell_cloud::demo::run(opts, shutdown))?;
        }
        Command::ImportCrm { config, csv } => {
            let config = dwell_cloud::config::Config::load(&config)?;
            let file =
                std::fs::File::open(&csv).with_context(|| format!("opening {}", csv.display()))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = if io::stderr().is_terminal() {
                indicatif::ProgressBar::new(size)
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "importing [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let reader = bar.wrap_read(std::io::BufReader::new(file));
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let report = runtime.block_on(async {
                let db = dwell_cloud::store::AnyStore::open(
                    &config.database.url,
                    config.database.max_connections,
                )
                .await
                .context("opening the database ([database] url)")?;
                let r = dwell_cloud::profiles::import::import(
                    &db,
                    reader,
                    dwell_cloud::ingest::now_ms(),
                    |rows| bar.set_message(format!("{rows} rows")),
                )
                .await;
                dwell_cloud::store::Store::close(&db).await;
                anyhow::Ok(r?)
            })?;
            bar.finish_and_clear();
            println!(
                "{} rows: {} profiles created, {} updated, {} rejected",
                report.rows, report.created, report.updated, report.rejected
            );
            for r in &report.rejections {
                println!("  line {}: {}", r.line, r.reason);
            }
            if report.rejected as usize > report.rejections.len() {
                println!(
                    "  … and {} more",
                    report.rejected as usize - report.rejections.len()
                );
            }
        }
        Command::PrintDefaultConfig => print!("{}", dwell_cloud::config::DEFAULT_CONFIG),
        Command::Token {
            config,
            role,
            store,
            label,
        } => {
            let config = dwell_cloud::config::Config::load(&config)?;
            let role: dwell_cloud::api::Role = role.parse().map_err(anyhow::Error::msg)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let token = runtime.block_on(async {
                let db = dwell_cloud::store::AnyStore::open(
                    &config.database.url,
                    config.database.max_connections,
                )
                .await
                .context("opening the database ([database] url)")?;
                let token =
                    dwell_cloud::api::auth::create_token(&db, role, store.as_deref(), None, &label)
                        .await;
                dwell_cloud::store::Store::close(&db).await;
                anyhow::Ok(token?)
            })?;
            println!("{token}");
        }
        Command::Eid {
            identity_key,
            exponent,
            time,
        } => {
            let key = dwell_cloud::identity::parse_identity_key(&identity_key)?;
            println!("{}", dwell_cloud::identity::eid_hex(&key, exponent, time)?);
        }
        Command::Expansion(args) => {
            dwell_cloud::expansion::command::run(&args, &mut io::stdout())?;
        }
    }
    Ok(())
}

/// Logs to stderr, filtered by `RUST_LOG` or else `default`.
fn init_tracing(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
}

/// Runs `work` on a new runtime with a shutdown token that SIGINT/SIGTERM cancels.
fn until_signal<F, Fut>(work: F) -> anyhow::Result<()>
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            dwell_edge::signal::wait_for_signal().await;
            on_signal.cancel();
        });
        work(shutdown).await
    })
}
