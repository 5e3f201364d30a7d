//! `dwell-cloud expansion`: reads the analyst's files, runs the analysis with a progress spinner
//! on stderr (hidden when stderr is not a terminal), writes the GeoJSON (and CSV), and prints a
//! short summary on stdout.

use super::candidates::{compact, thousands};
use super::regions::{Boundaries, BuiltinBoundaries};
use super::{Dataset, Options, Phase, Report, ScoreBy, analyze_observed, choose_builtin};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `dwell-cloud expansion`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExpansionArgs {
    /// Stores CSV with header id,name,lat,lon,opened (an optional visits column adds in-store
    /// visits per store).
    #[arg(long, value_name = "S.csv")]
    pub stores: PathBuf,
    /// Customers or online orders CSV with header id,lat,lon,amount,date; a city or adcode
    /// column may stand instead of lat,lon. Rows with the same id are one customer's orders.
    #[arg(long, value_name = "C.csv")]
    pub customers: PathBuf,
    /// Your own boundaries: a GeoJSON FeatureCollection of Polygon/MultiPolygon features in
    /// longitude/latitude (region id = feature id, else properties.id / adcode).
    #[arg(long, value_name = "R.geojson", conflicts_with = "boundaries")]
    pub regions: Option<PathBuf>,
    /// Shipped boundaries: china-provinces, china-cities or world-countries [default: china-provinces
    /// if most customers are in China, else world-countries].
    #[arg(long, value_parser = parse_builtin)]
    pub boundaries: Option<BuiltinBoundaries>,
    /// Customers farther than this from every store are unserved; also the candidates' catchment.
    #[arg(long, default_value_t = 30.0)]
    pub radius_km: f64,
    /// k-anonymity: regions, hexagons and candidates with fewer customers are not shown.
    #[arg(long, default_value_t = 10)]
    pub k: u64,
    /// H3 resolution of the density hexagons (0..=15; 5 ≈ 250 km²).
    #[arg(long, default_value_t = 5)]
    pub h3_resolution: u8,
    /// Number of candidate cities to propose.
    #[arg(long, default_value_t = 10)]
    pub candidates: usize,
    /// Rank candidates by unserved customers or by their revenue.
    #[arg(long, default_value = "customers", value_parser = parse_score_by)]
    pub score_by: ScoreBy,
    /// Currency symbol for money in reasons and the summary (e.g. ¥).
    #[arg(long, default_value = "")]
    pub currency: String,
    /// Leave the H3 hexagons out of the GeoJSON.
    #[arg(long)]
    pub no_hexes: bool,
    /// Where to write the GeoJSON FeatureCollection.
    #[arg(long, value_name = "result.geojson")]
    pub out: PathBuf,
    /// Also write the regions table as CSV.
    #[arg(long, value_name = "regions.csv")]
    pub csv: Option<PathBuf>,
}

fn parse_builtin(s: &str) -> Result<BuiltinBoundaries, String> {
    s.parse()
}

fn parse_score_by(s: &str) -> Result<ScoreBy, String> {
    match s {
        "customers" => Ok(ScoreBy::Customers),
        "revenue" => Ok(ScoreBy::Revenue),
        _ => Err(format!("'{s}': use customers or revenue")),
    }
}

/// What went wrong, with the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: super::InputError,
    },
    #[error(transparent)]
    Boundaries(#[from] super::BoundaryError),
    #[error(transparent)]
    Analysis(#[from] super::AnalysisError),
    #[error("writing {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{0}")]
    Nothing(String),
}

fn open(path: &Path) -> Result<BufReader<File>, CommandError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| CommandError::File {
            action: "read",
            path: path.to_owned(),
            source,
        })
}

fn spinner() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs the command; the summary goes to `out`.
pub fn run(args: &ExpansionArgs, out: &mut dyn Write) -> Result<Report, CommandError> {
    let started = Instant::now();
    let bar = spinner();
    bar.set_message(format!("reading {}", args.stores.display()));
    let stores =
        super::input::read_stores(open(&args.stores)?).map_err(|source| CommandError::Input {
            path: args.stores.clone(),
            source,
        })?;
    bar.set_message(format!("reading {}", args.customers.display()));
    let customers_file = open(&args.customers)?;
    let size = customers_file
        .get_ref()
        .metadata()
        .map(|m| m.len())
        .unwrap_or(0);
    let read_bar = if bar.is_hidden() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(size);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} reading customers ({eta})")
        {
            b.set_style(style);
        }
        b
    };
    bar.finish_and_clear();
    let (customers, customer_rejections) =
        super::input::read_customers(read_bar.wrap_read(customers_file)).map_err(|source| {
            CommandError::Input {
                path: args.customers.clone(),
                source,
            }
        })?;
    read_bar.finish_and_clear();
    let data = Dataset {
        stores: stores.stores,
        customers,
        store_visits: stores.visits,
        store_rejections: stores.rejections,
        customer_rejections,
    };
    if data.customers.is_empty() {
        let mut msg = format!(
            "{}: no customer rows could be imported ({} rejected)",
            args.customers.display(),
            thousands(data.customer_rejections.total)
        );
        for r in data.customer_rejections.listed.iter().take(5) {
            let _ = write!(msg, "\n  line {}: {}", r.line, r.reason);
        }
        return Err(CommandError::Nothing(msg));
    }

    let bar = spinner();
    bar.set_message("loading boundaries");
    let boundaries = match (&args.regions, args.boundaries) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|source| CommandError::File {
                action: "read",
                path: path.clone(),
                source,
            })?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Boundaries::from_geojson_str(&text, &name)?
        }
        (None, Some(which)) => Boundaries::builtin(which)?,
        (None, None) => Boundaries::builtin(choose_builtin(&data.customers)?)?,
    };
    let options = Options {
        radius_km: args.radius_km,
        k: args.k,
        h3_resolution: args.h3_resolution,
        candidates: args.candidates,
        score_by: args.score_by,
        currency: args.currency.clone(),
    };
    let report = analyze_observed(&data, Arc::new(boundaries), &options, &mut |p: Phase| {
        bar.set_message(p.label());
    })?;
    bar.set_message("writing");
    let geojson = report.to_geojson_string(!args.no_hexes);
    std::fs::write(&args.out, geojson.as_bytes()).map_err(|source| CommandError::File {
        action: "write",
        path: args.out.clone(),
        source,
    })?;
    if let Some(path) = &args.csv {
        let file = File::create(path).map_err(|source| CommandError::File {
            action: "write",
            path: path.clone(),
            source,
        })?;
        report
            .write_regions_csv(BufWriter::new(file))
            .map_err(|source| CommandError::Csv {
                path: path.clone(),
                source,
            })?;
    }
    bar.finish_and_clear();
    let _ = out.write_all(summary(&report, args, started.elapsed()).as_bytes());
    Ok(report)
}

/// The short summary printed after a run.
pub fn summary(report: &Report, args: &ExpansionArgs, elapsed: Duration) -> String {
    let t = &report.totals;
    let money = |x: f64| format!("{}{}", report.options.currency, compact(x));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "expansion: {} stores, {} customers ({} orders, revenue {}), {} in-store visits",
        thousands(t.stores),
        thousands(t.customers),
        thousands(t.orders),
        money(t.revenue),
        thousands(t.visits),
    );
    let _ = writeln!(
        s,
        "boundaries: {} ({} regions, {} suppressed with fewer than {} customers)",
        report.boundaries, t.regions, t.regions_suppressed, report.options.k
    );
    if let Some(a) = &report.attribution {
        let _ = writeln!(s, "  source: {a}");
    }
    match t.customers_outside_regions {
        Some(0) => {}
        Some(n) => {
            let _ = writeln!(s, "  {} customers lie outside every region", thousands(n));
        }
        None => {
            let _ = writeln!(s, "  a few customers (suppressed) lie outside every region");
        }
    }
    let share = t.unserved_share.unwrap_or(0.0) * 100.0;
    match t.median_nearest_store_km {
        Some(d) => {
            let _ = writeln!(
                s,
                "unserved: {:.1}% of customers ({}) live farther than {} km from a store; median distance to the nearest store {:.1} km",
                share,
                thousands(t.unserved_customers),
                report.options.radius_km,
                d
            );
        }
        None => {
            let _ = writeln!(s, "unserved: every customer (there are no stores)");
        }
    }
    let _ = writeln!(
        s,
        "hexagons: {} at H3 resolution {} ({} with fewer than {} customers left out)",
        thousands(report.density.hexes.len() as u64),
        report.density.resolution,
        thousands(report.density.suppressed_hexes),
        report.options.k
    );
    if report.candidates.is_empty() {
        let _ = writeln!(
            s,
            "candidates: none (no unserved cluster of {}+ customers)",
            report.options.k
        );
    } else {
        let _ = writeln!(s, "candidates:");
        for c in &report.candidates {
            let _ = writeln!(
                s,
                "  {:>2}. {} ({}): {}",
                c.rank, c.name, c.country, c.reason
            );
        }
    }
    for (file, rejections) in [
        (&args.stores, &report.store_rejections),
        (&args.customers, &report.customer_rejections),
    ] {
        if rejections.total == 0 {
            continue;
        }
        let rows = if rejections.total == 1 { "row" } else { "rows" };
        let _ = writeln!(
            s,
            "rejected {} {rows} of {}:",
            thousands(rejections.total),
            file.display()
        );
        for r in rejections.listed.iter().take(20) {
            let _ = writeln!(s, "  line {}: {}", r.line, r.reason);
        }
        if rejections.total > 20 {
            let _ = writeln!(s, "  … and {} more", thousands(rejections.total - 20));
        }
    }
    let _ = write!(s, "wrote {}", args.out.display());
    if let Some(csv) = &args.csv {
        let _ = write!(s, " and {}", csv.display());
    }
    let _ = writeln!(s, " in {:.2} s", elapsed.as_secs_f64());
    s
}
