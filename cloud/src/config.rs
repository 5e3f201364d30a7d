//! The cloud's configuration: one TOML file, one typed [`Config`], validated on load.
//!
//! Like the gateway's: the commented default ([`DEFAULT_CONFIG`], `deploy/cloud/dwell-cloud.toml`,
//! embedded so `dwell-cloud print-default-config` and the shipped file can never differ) documents
//! every key; unknown keys are refused and named; every error names the file, the key and the fix
//! (`dwell-cloud.toml: gateways[1].store: …; …`), with the line for syntax and type errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dwell_shared::topic;
use serde::Deserialize;

use crate::ingest::{BrokerTls, DEFAULT_GROUP, WorkerConfig};
use crate::store::DatabaseUrl;

/// The shipped, commented default config (`deploy/cloud/dwell-cloud.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/cloud/dwell-cloud.toml");

/// Where a package would install the config file.
pub const DEFAULT_PATH: &str = "/etc/dwell-cloud/dwell-cloud.toml";

const SEE_DEFAULT: &str = "`dwell-cloud print-default-config` shows every key with its meaning";

/// The whole cloud configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub broker: BrokerConfig,
    pub database: DatabaseConfig,
    pub ingest: IngestConfig,
    pub api: ApiConfig,
    pub engine: EngineConfig,
    pub retention: RetentionConfig,
    /// Behavioural tag rules (`[[tag_rules]]`).
    pub tag_rules: Vec<crate::profiles::rules::TagRule>,
    /// Registered gateways: only these may publish (unless `allow_unknown_gateways`).
    pub gateways: Vec<GatewayRegistration>,
}

/// `[engine]`: identity resolution, campaigns and coupons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Where the coupon signing key (`coupon.key`) and the holdout salt (`holdout.salt`) live;
    /// both are created (random, mode 0600) on first start. Every worker of a deployment must
    /// share them: tills verify codes with the same key.
    pub secrets_dir: PathBuf,
    /// Phone clock error tolerated when resolving EIDs, seconds.
    pub eid_drift_s: u32,
    /// How far back the live EID table reaches, seconds.
    pub eid_lookback_s: u32,
    /// The retailer's iBeacon proximity UUID (lowercase, hyphenated): app-reported sightings of
    /// other UUIDs are refused.
    pub beacon_uuid: String,
}

/// `[retention]`: how long personal and raw data are kept, in days, and how often that is
/// enforced ([`crate::retention`]). Aggregated, anonymous roll-ups (footfall, zones, paths) are
/// kept whatever these say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Raw gateway events (`events`), by the event's `ts_ms`.
    pub events_days: u32,
    /// Refused messages (`dead_letters`), by `received_ms`.
    pub dead_letters_days: u32,
    /// Store beacons shoppers' apps reported (`app_sightings`), by `ts_ms`.
    pub app_sightings_days: u32,
    /// Shoppers' stitched visits (`visits`, with their `visit_parts`), by `end_ms`.
    pub visits_days: u32,
    /// Expired coupons (by `expires_ms`), campaign decisions (by `ts_ms`) and frequency-cap windows
    /// (once the window has ended). At most `visits_days`: campaign lift looks for each decision's
    /// visits.
    pub coupons_days: u32,
    /// Seconds between two enforcements.
    pub interval_s: u64,
}

impl RetentionConfig {
    pub const DEFAULT_EVENTS_DAYS: u32 = 90;
    pub const DEFAULT_DEAD_LETTERS_DAYS: u32 = 30;
    pub const DEFAULT_APP_SIGHTINGS_DAYS: u32 = 90;
    pub const DEFAULT_VISITS_DAYS: u32 = 365;
    pub const DEFAULT_COUPONS_DAYS: u32 = 365;
    pub const DEFAULT_INTERVAL_S: u64 = 3_600;
    /// The longest limit accepted: 100 years (and far from overflowing unix milliseconds).
    pub const MAX_DAYS: u32 = 36_500;
    /// Enforce at least daily (limits are in days) and at most every minute.
    pub const INTERVAL_RANGE_S: std::ops::RangeInclusive<u64> = 60..=86_400;
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            events_days: Self::DEFAULT_EVENTS_DAYS,
            dead_letters_days: Self::DEFAULT_DEAD_LETTERS_DAYS,
            app_sightings_days: Self::DEFAULT_APP_SIGHTINGS_DAYS,
            visits_days: Self::DEFAULT_VISITS_DAYS,
            coupons_days: Self::DEFAULT_COUPONS_DAYS,
            interval_s: Self::DEFAULT_INTERVAL_S,
        }
    }
}

/// `[broker]`.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    pub host: String,
    pub port: u16,
    /// The MQTT client id, stable across restarts (the broker keeps the session and its unacked
    /// messages). With several workers, `-1`, `-2`… are appended.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Shared-subscription group: all workers of one deployment use the same.
    pub group: String,
    pub keep_alive_s: u64,
    /// TLS (`mqtts://`), verified against `ca_file`; `None`: plain TCP (`mqtt://`).
    pub tls: Option<BrokerTls>,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("group", &self.group)
            .field("keep_alive_s", &self.keep_alive_s)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `[database]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    /// PostgreSQL pool size (SQLite uses a small fixed pool).
    pub max_connections: u32,
}

/// `[ingest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// Accept gateways not listed in `[[gateways]]`, binding each to the store it first
    /// publishes for. For demos only.
    pub allow_unknown_gateways: bool,
    /// MQTT connections (workers) in this process.
    pub workers: u32,
    pub max_messages_per_tx: usize,
    pub drain_timeout_s: u64,
}

/// `[api]`: the HTTP API, `/metrics` and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Where to listen; `None` (`listen = ""`, or no `[api]` section) serves no HTTP at all.
    pub listen: Option<std::net::SocketAddr>,
}

/// One `[[gateways]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRegistration {
    pub store: String,
    pub id: String,
}

/// Why a config file can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{origin}: cannot read the config file: {error}; check the path given to --config (default {DEFAULT_PATH})"
    )]
    Read {
        origin: String,
        error: std::io::Error,
    },
    #[error("{}", message(.origin, *.line, .key, .problem, .fix))]
    Invalid {
        origin: String,
        line: Option<usize>,
        key: String,
        problem: String,
        fix: String,
    },
}

impl ConfigError {
    /// The key to fix, if the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } if !key.is_empty() => Some(key),
            _ => None,
        }
    }
}

fn message(origin: &str, line: Option<usize>, key: &str, problem: &str, fix: &str) -> String {
    let mut m = origin.to_owned();
    if let Some(line) = line {
        m += &format!(":{line}");
    }
    m += ": ";
    if !key.is_empty() {
        m += key;
        m += ": ";
    }
    m += problem;
    if !fix.is_empty() {
        m += "; ";
        m += fix;
    }
    m
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    broker: RawBroker,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    tag_rules: Vec<crate::profiles::rules::TagRule>,
    #[serde(default)]
    gateways: Vec<GatewayRegistration>,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawEngine {
    secrets_dir: PathBuf,
    eid_drift_s: u32,
    eid_lookback_s: u32,
    beacon_uuid: String,
}

impl Default for RawEngine {
    fn default() -> Self {
        RawEngine {
            secrets_dir: "/var/lib/dwell-cloud".into(),
            eid_drift_s: 120,
            eid_lookback_s: 900,
            beacon_uuid: "e2c56db5-dffb-48d2-b060-d0f5a71096e0".into(),
        }
    }
}

/// `[retention]`, read as signed integers so a negative value gets the same clear error as 0.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRetention {
    events_days: i64,
    dead_letters_days: i64,
    app_sightings_days: i64,
    visits_days: i64,
    coupons_days: i64,
    interval_s: i64,
}

impl Default for RawRetention {
    fn default() -> Self {
        let d = RetentionConfig::default();
        RawRetention {
            events_days: d.events_days.into(),
            dead_letters_days: d.dead_letters_days.into(),
            app_sightings_days: d.app_sightings_days.into(),
            visits_days: d.visits_days.into(),
            coupons_days: d.coupons_days.into(),
            interval_s: d.interval_s as i64,
        }
    }
}

impl RawRetention {
    /// Checks every key (and what the rest of the config needs from them).
    fn into_config(
        self,
        tag_rules: &[crate::profiles::rules::TagRule],
    ) -> Result<RetentionConfig, Problem> {
        let days = |key: &str, v: i64, default: u32| -> Result<u32, Problem> {
            match u32::try_from(v) {
                Ok(d @ 1..=RetentionConfig::MAX_DAYS) => Ok(d),
                _ => Err(problem(
                    format!("retention.{key}"),
                    format!(
                        "{v} is not a number of days from 1 to {}",
                        RetentionConfig::MAX_DAYS
                    ),
                    format!("give a whole number of days, e.g. {default} (the default)"),
                )),
            }
        };
        let r = RetentionConfig {
            events_days: days(
                "events_days",
                self.events_days,
                RetentionConfig::DEFAULT_EVENTS_DAYS,
            )?,
            dead_letters_days: days(
                "dead_letters_days",
                self.dead_letters_days,
                RetentionConfig::DEFAULT_DEAD_LETTERS_DAYS,
            )?,
            app_sightings_days: days(
                "app_sightings_days",
                self.app_sightings_days,
                RetentionConfig::DEFAULT_APP_SIGHTINGS_DAYS,
            )?,
            visits_days: days(
                "visits_days",
                self.visits_days,
                RetentionConfig::DEFAULT_VISITS_DAYS,
            )?,
            coupons_days: days(
                "coupons_days",
                self.coupons_days,
                RetentionConfig::DEFAULT_COUPONS_DAYS,
            )?,
            interval_s: match u64::try_from(self.interval_s) {
                Ok(s) if RetentionConfig::INTERVAL_RANGE_S.contains(&s) => s,
                _ => {
                    return Err(problem(
                        "retention.interval_s",
                        format!(
                            "{} is not a number of seconds from {} to {}",
                            self.interval_s,
                            RetentionConfig::INTERVAL_RANGE_S.start(),
                            RetentionConfig::INTERVAL_RANGE_S.end()
                        ),
                        format!(
                            "{} (hourly, the default) keeps data at most an hour past its limit",
                            RetentionConfig::DEFAULT_INTERVAL_S
                        ),
                    ));
                }
            },
        };
        if r.coupons_days > r.visits_days {
            return Err(problem(
                "retention.coupons_days",
                format!(
                    "{} is longer than retention.visits_days ({}): campaign lift would count the \
                     shoppers of decisions older than the visits kept as never having come back",
                    r.coupons_days, r.visits_days
                ),
                "make coupons_days at most visits_days",
            ));
        }
        if let Some((n, rule)) = tag_rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.days > r.visits_days)
        {
            return Err(problem(
                "retention.visits_days",
                format!(
                    "{} is shorter than tag_rules[{n}].days ({}): the rule would look for visits \
                     that are no longer kept",
                    r.visits_days, rule.days
                ),
                format!(
                    "keep visits at least {} days, or shorten the rule",
                    rule.days
                ),
            ));
        }
        Ok(r)
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawBroker {
    url: String,
    client_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    group: String,
    keep_alive_s: u64,
}

impl Default for RawBroker {
    fn default() -> Self {
        RawBroker {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            group: DEFAULT_GROUP.into(),
            keep_alive_s: 30,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDatabase {
    url: String,
    max_connections: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: "sqlite:///var/lib/dwell-cloud/dwell.db".into(),
            max_connections: 8,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawIngest {
    allow_unknown_gateways: bool,
    workers: u32,
    max_messages_per_tx: usize,
    drain_timeout_s: u64,
}

impl Default for RawIngest {
    fn default() -> Self {
        RawIngest {
            allow_unknown_gateways: false,
            workers: 1,
            max_messages_per_tx: 100,
            drain_timeout_s: 10,
        }
    }
}

/// `[api]`. Without the key (or the section) no port is opened: a config written before the API
/// existed keeps doing exactly what it did. The shipped file turns it on.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawApi {
    listen: String,
}

/// (key, problem, fix)
type Problem = (String, String, String);

fn problem(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    (key.into(), problem.into(), fix.into())
}

/// Where the broker is, from `[broker] url`.
#[derive(Debug, PartialEq, Eq)]
struct BrokerUrl {
    host: String,
    port: u16,
    tls: bool,
}

/// `mqtt://host[:port]` (default 1883) or `mqtts://host[:port]` (TLS, default 8883).
fn parse_broker_url(url: &str) -> Result<BrokerUrl, Problem> {
    let fix = "write it as mqtt://host:1883, or mqtts://host:8883 for TLS";
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| problem("broker.url", format!("{url:?} has no scheme"), fix))?;
    let (tls, default_port) = match scheme {
        "mqtt" | "tcp" => (false, 1883),
        "mqtts" | "ssl" => (true, 8883),
        other => {
            return Err(problem(
                "broker.url",
                format!("scheme {other:?} is not mqtt or mqtts"),
                fix,
            ));
        }
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| problem("broker.url", format!("port {p:?} is not a number"), fix))?;
            (h, port)
        }
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(problem(
            "broker.url",
            format!("{url:?} has no host name"),
            fix,
        ));
    }
    Ok(BrokerUrl {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// This machine's host name, for the default client id.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into())
}

impl RawConfig {
    fn into_config(self, base: &Path) -> Result<Config, Problem> {
        let b = self.broker;
        let BrokerUrl { host, port, tls } = parse_broker_url(&b.url)?;
        let tls = match (tls, &b.ca_file) {
            (true, Some(file)) => {
                let file = base.join(file);
                Some(BrokerTls::from_ca_file(&file).map_err(|e| {
                    problem(
                        "broker.ca_file",
                        e,
                        "point it at the PEM file of the CA that signed the broker's certificate, \
                         readable by dwell-cloud",
                    )
                })?)
            }
            (true, None) => {
                return Err(problem(
                    "broker.ca_file",
                    format!("is required with {:?} (TLS)", b.url),
                    "set ca_file to the PEM file of the CA that signed the broker's certificate",
                ));
            }
            (false, Some(_)) => {
                return Err(problem(
                    "broker.ca_file",
                    format!("is set but {:?} is not TLS", b.url),
                    "use mqtts://host:8883 for TLS, or remove ca_file",
                ));
            }
            (false, None) => None,
        };
        if let Err(e) = topic::shared_events(&b.group) {
            return Err(problem(
                "broker.group",
                format!("{:?} can't be a subscription group: {e}", b.group),
                format!("use a plain name like {DEFAULT_GROUP:?}"),
            ));
        }
        let client_id = b
            .client_id
            .unwrap_or_else(|| format!("dwell-cloud-{}", hostname()));
        if client_id.is_empty() || client_id.len() > 200 {
            return Err(problem(
                "broker.client_id",
                "must be 1 to 200 characters",
                "give each worker machine its own stable id",
            ));
        }
        let password = match (&b.password, &b.password_file) {
            (Some(_), Some(_)) => {
                return Err(problem(
                    "broker.password_file",
                    "is set together with broker.password",
                    "keep one of them",
                ));
            }
            (_, Some(file)) => {
                let file = base.join(file);
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    problem(
                        "broker.password_file",
                        format!("cannot read {}: {e}", file.display()),
                        "check the path and that dwell-cloud can read it",
                    )
                })?;
                Some(text.lines().next().unwrap_or_default().to_owned())
            }
            (p, None) => p.clone(),
        };
        if password.is_some() && b.username.is_none() {
            return Err(problem(
                "broker.password",
                "is set without broker.username",
                "set both or neither",
            ));
        }
        if b.keep_alive_s < 5 {
            return Err(problem(
                "broker.keep_alive_s",
                "must be at least 5",
                "30 suits most brokers",
            ));
        }
        let url = DatabaseUrl::parse(&self.database.url).map_err(|p| {
            problem(
                "database.url",
                p,
                "use sqlite:///var/lib/dwell-cloud/dwell.db or postgres://user:password@host/dwell",
            )
        })?;
        if self.database.max_connections == 0 {
            return Err(problem(
                "database.max_connections",
                "must be at least 1",
                "8 suits one worker",
            ));
        }
        let i = self.ingest;
        if i.workers == 0 || i.workers > 64 {
            return Err(problem(
                "ingest.workers",
                "must be 1 to 64",
                "1 is enough for most deployments; run more processes to scale out",
            ));
        }
        if i.max_messages_per_tx == 0 {
            return Err(problem(
                "ingest.max_messages_per_tx",
                "must be at least 1",
                "100 matches the broker's in-flight window",
            ));
        }
        let listen = match self.api.listen.trim() {
            "" => None,
            addr => Some(addr.parse::<std::net::SocketAddr>().map_err(|_| {
                problem(
                    "api.listen",
                    format!("{addr:?} is not an address and port"),
                    "write it as \"127.0.0.1:8080\" (or \"0.0.0.0:8080\" behind a TLS proxy), \
                     or \"\" to serve no HTTP",
                )
            })?),
        };
        if !(1..=3600).contains(&self.engine.eid_drift_s) {
            return Err(problem(
                "engine.eid_drift_s",
                "must be 1 to 3600",
                "120 tolerates the clock error of ordinary phones",
            ));
        }
        for (n, r) in self.tag_rules.iter().enumerate() {
            if let Err(e) = crate::profiles::shoppers::check_tag(&r.tag) {
                return Err(problem(format!("tag_rules[{n}].tag"), e.to_string(), ""));
            }
            if r.visits == 0 || r.days == 0 {
                return Err(problem(
                    format!("tag_rules[{n}]"),
                    "visits and days must be at least 1",
                    "e.g. visits = 3, days = 30",
                ));
            }
        }
        let retention = self.retention.into_config(&self.tag_rules)?;
        let mut seen = std::collections::HashMap::new();
        for (n, g) in self.gateways.iter().enumerate() {
            if let Err(e) = topic::events(&g.store, &g.id) {
                let key = match e {
                    topic::TopicError::InvalidId {
                        kind: topic::IdKind::Store,
                        ..
                    } => "store",
                    _ => "id",
                };
                return Err(problem(
                    format!("gateways[{n}].{key}"),
                    format!("can't be used in a topic: {e}"),
                    "use the same ids as the gateway's own [gateway] section",
                ));
            }
            if let Some(first) = seen.insert(g.id.as_str(), n) {
                return Err(problem(
                    format!("gateways[{n}].id"),
                    format!("gateway {:?} is already listed at gateways[{first}]", g.id),
                    "gateway ids are unique across all stores ((gateway, seq) identifies an event); \
                     remove or rename one",
                ));
            }
        }
        if self.gateways.is_empty() && !i.allow_unknown_gateways {
            return Err(problem(
                "gateways",
                "no gateway is registered and ingest.allow_unknown_gateways is false, so every \
                 message would be refused",
                "add a [[gateways]] entry (store = \"…\", id = \"…\") for each gateway",
            ));
        }
        Ok(Config {
            broker: BrokerConfig {
                host,
                port,
                client_id,
                username: b.username,
                password,
                group: b.group,
                keep_alive_s: b.keep_alive_s,
                tls,
            },
            database: DatabaseConfig {
                url,
                max_connections: self.database.max_connections,
            },
            ingest: IngestConfig {
                allow_unknown_gateways: i.allow_unknown_gateways,
                workers: i.workers,
                max_messages_per_tx: i.max_messages_per_tx,
                drain_timeout_s: i.drain_timeout_s,
            },
            api: ApiConfig { listen },
            engine: EngineConfig {
                secrets_dir: base.join(&self.engine.secrets_dir),
                eid_drift_s: self.engine.eid_drift_s,
                eid_lookback_s: self.engine.eid_lookback_s,
                beacon_uuid: self
                    .engine
                    .beacon_uuid
                    .parse::<dwell_shared::Uuid>()
                    .map_err(|_| {
                        problem(
                            "engine.beacon_uuid",
                            format!("{:?} is not a UUID", self.engine.beacon_uuid),
                            "use the proximity UUID your app monitors, e.g. e2c56db5-dffb-48d2-b060-d0f5a71096e0",
                        )
                    })?
                    .hyphenated()
                    .to_string(),
            },
            retention,
            tag_rules: self.tag_rules,
            gateways: self.gateways,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// Reads and validates the file at `path` (errors name it as given).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            origin: origin.clone(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml_str(&text, &origin, base)
    }

    /// The shipped default.
    pub fn shipped_default() -> Config {
        // Checked by the `shipped_default_is_valid` test, so this cannot fail in a built binary.
        Config::from_toml_str(
            DEFAULT_CONFIG,
            "dwell-cloud.toml (built-in default)",
            Path::new("."),
        )
        .expect("the shipped default config is valid")
    }

    /// Parses and validates TOML text; `origin` names it in errors, relative paths in it are
    /// taken from `base`.
    pub fn from_toml_str(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |line, key: String, problem: String, fix: String| ConfigError::Invalid {
            origin: origin.into(),
            line,
            key,
            problem,
            fix,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            invalid(
                line,
                String::new(),
                e.message().trim().to_owned(),
                SEE_DEFAULT.into(),
            )
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let e = e.into_inner();
            let line = e.span().map(|s| line_of(text, s.start));
            let key = if key == "." { String::new() } else { key };
            invalid(line, key, e.message().trim().to_owned(), SEE_DEFAULT.into())
        })?;
        raw.into_config(base)
            .map_err(|(key, problem, fix)| invalid(None, key, problem, fix))
    }

    /// One [`WorkerConfig`] per `ingest.workers`, with distinct client ids.
    pub fn worker_configs(&self) -> Vec<WorkerConfig> {
        let n = self.ingest.workers;
        (1..=n)
            .map(|i| {
                let client_id = if n == 1 {
                    self.broker.client_id.clone()
                } else {
                    format!("{}-{i}", self.broker.client_id)
                };
                WorkerConfig {
                    username: self.broker.username.clone(),
                    password: self.broker.password.clone(),
                    group: self.broker.group.clone(),
                    keep_alive_s: self.broker.keep_alive_s,
                    max_messages_per_tx: self.ingest.max_messages_per_tx,
                    drain_timeout: Duration::from_secs(self.ingest.drain_timeout_s),
                    tls: self.broker.tls.clone(),
                    ..WorkerConfig::new(&self.broker.host, self.broker.port, client_id)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, "test.toml", Path::new("."))
    }

    const MINIMAL: &str = "[[gateways]]\nstore = \"store-001\"\nid = \"gw-1\"\n";

    #[test]
    fn shipped_default_is_valid() {
        let c = Config::shipped_default();
        assert_eq!(c.broker.port, 1883);
        assert_eq!(c.broker.group, "dwell-cloud");
        assert!(matches!(c.database.url, DatabaseUrl::Sqlite(_)));
        assert!(!c.ingest.allow_unknown_gateways);
        assert!(!c.gateways.is_empty());
        assert_eq!(c.api.listen, Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn deploy_file_is_the_embedded_default() {
        let on_disk = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/cloud/dwell-cloud.toml"
        ))
        .unwrap();
        assert_eq!(on_disk, DEFAULT_CONFIG);
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!((c.broker.host.as_str(), c.broker.port), ("127.0.0.1", 1883));
        assert!(c.broker.client_id.starts_with("dwell-cloud-"));
        assert_eq!(c.worker_configs().len(), 1);
        assert_eq!(c.worker_configs()[0].client_id, c.broker.client_id);
        assert_eq!(c.api.listen, None, "no [api] section: no port opened");
    }

    #[test]
    fn api_listen_is_an_address_or_empty() {
        let c = parse(&format!("[api]\nlisten = \"127.0.0.1:0\"\n{MINIMAL}")).unwrap();
        assert_eq!(c.api.listen, Some("127.0.0.1:0".parse().unwrap()));
        let c = parse(&format!("[api]\nlisten = \"\"\n{MINIMAL}")).unwrap();
        assert_eq!(c.api.listen, None);
        let e = parse(&format!("[api]\nlisten = \"localhost\"\n{MINIMAL}")).unwrap_err();
        assert_eq!(e.key(), Some("api.listen"), "{e}");
        assert!(e.to_string().contains("127.0.0.1:8080"), "{e}");
    }

    #[test]
    fn several_workers_get_distinct_client_ids() {
        let c = parse(&format!(
            "[broker]\nclient_id = \"w\"\n[ingest]\nworkers = 3\n{MINIMAL}"
        ))
        .unwrap();
        let ids: Vec<_> = c
            .worker_configs()
            .into_iter()
            .map(|w| w.client_id)
            .collect();
        assert_eq!(ids, ["w-1", "w-2", "w-3"]);
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let cases: &[(&str, &str, &str)] = &[
            ("[broker]\nurl = \"http://x\"\n", "broker.url", "mqtt://"),
            (
                "[broker]\nurl = \"mqtts://x\"\n",
                "broker.ca_file",
                "is required",
            ),
            (
                "[broker]\nurl = \"mqtts://x\"\nca_file = \"/nonexistent/ca.pem\"\n",
                "broker.ca_file",
                "cannot read CA file /nonexistent/ca.pem",
            ),
            (
                "[broker]\nca_file = \"ca.pem\"\n",
                "broker.ca_file",
                "mqtts://",
            ),
            ("[broker]\nurl = \"mqtt://x:99999\"\n", "broker.url", "port"),
            ("[broker]\ngroup = \"a/b\"\n", "broker.group", "plain name"),
            ("[broker]\npassword = \"p\"\n", "broker.password", "both"),
            (
                "[database]\nurl = \"mysql://x\"\n",
                "database.url",
                "postgres://",
            ),
            ("[ingest]\nworkers = 0\n", "ingest.workers", "1 to 64"),
            ("[broker]\nurll = \"x\"\n", "broker", "unknown field"),
            (
                "[[gateways]]\nstore = \"shoppers\"\nid = \"g\"\n",
                "gateways[0].store",
                "reserved",
            ),
            (
                "[[gateways]]\nstore = \"s\"\nid = \"a b\"\n",
                "gateways[0].id",
                "topic",
            ),
            (
                "[[gateways]]\nstore = \"s\"\nid = \"g\"\n[[gateways]]\nstore = \"t\"\nid = \"g\"\n",
                "gateways[1].id",
                "already listed at gateways[0]",
            ),
        ];
        for (extra, key, needle) in cases {
            let text = if extra.contains("[[gateways]]") {
                extra.to_string()
            } else {
                format!("{extra}{MINIMAL}")
            };
            let e = parse(&text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("test.toml"), "{msg}");
            assert!(msg.contains(key), "{key}: {msg}");
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
    }

    #[test]
    fn retention_defaults_and_values() {
        assert_eq!(
            Config::shipped_default().retention,
            RetentionConfig::default(),
            "the shipped file states the defaults"
        );
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.retention, RetentionConfig::default());
        assert_eq!(
            (c.retention.events_days, c.retention.visits_days),
            (90, 365)
        );
        let c = parse(&format!(
            "[retention]\nevents_days = 7\ndead_letters_days = 1\napp_sightings_days = 14\n\
             visits_days = 60\ncoupons_days = 60\ninterval_s = 60\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(
            c.retention,
            RetentionConfig {
                events_days: 7,
                dead_letters_days: 1,
                app_sightings_days: 14,
                visits_days: 60,
                coupons_days: 60,
                interval_s: 60,
            }
        );
    }

    #[test]
    fn retention_refuses_zero_negative_and_absurd_values_naming_the_key() {
        let keys = [
            "events_days",
            "dead_letters_days",
            "app_sightings_days",
            "visits_days",
            "coupons_days",
        ];
        for key in keys {
            for bad in ["0", "-1", "-365", "36501", "9223372036854775807"] {
                let e = parse(&format!("[retention]\n{key} = {bad}\n{MINIMAL}")).unwrap_err();
                let full = format!("retention.{key}");
                assert_eq!(e.key(), Some(full.as_str()), "{key} = {bad}: {e}");
                let msg = e.to_string();
                assert!(msg.starts_with("test.toml: retention."), "{msg}");
                assert!(msg.contains(bad), "names the value: {msg}");
                assert!(msg.contains("1 to 36500"), "says what is accepted: {msg}");
            }
            // Not a whole number: refused by type, still naming the key (and the line).
            let e = parse(&format!("{MINIMAL}[retention]\n{key} = 1.5\n")).unwrap_err();
            assert_eq!(e.key(), Some(format!("retention.{key}").as_str()), "{e}");
            assert!(e.to_string().starts_with("test.toml:5: retention."), "{e}");
        }
        for bad in ["0", "-60", "59", "86401"] {
            let e = parse(&format!("[retention]\ninterval_s = {bad}\n{MINIMAL}")).unwrap_err();
            assert_eq!(e.key(), Some("retention.interval_s"), "{e}");
            assert!(e.to_string().contains("60 to 86400"), "{e}");
        }
        let e = parse(&format!("[retention]\nevent_days = 30\n{MINIMAL}")).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn retention_keeps_what_lift_and_tag_rules_read() {
        let e = parse(&format!(
            "[retention]\nvisits_days = 30\ncoupons_days = 31\n{MINIMAL}"
        ))
        .unwrap_err();
        assert_eq!(e.key(), Some("retention.coupons_days"), "{e}");
        assert!(e.to_string().contains("visits_days (30)"), "{e}");
        // The default coupons_days (365) is longer than a shortened visits_days, too.
        let e = parse(&format!("[retention]\nvisits_days = 30\n{MINIMAL}")).unwrap_err();
        assert_eq!(e.key(), Some("retention.coupons_days"), "{e}");

        let rule = "[[tag_rules]]\ntag = \"regular\"\nzone = \"z\"\nmin_dwell_s = 60\nvisits = 3\n";
        let e = parse(&format!(
            "[retention]\nvisits_days = 20\ncoupons_days = 20\n{rule}days = 30\n{MINIMAL}"
        ))
        .unwrap_err();
        assert_eq!(e.key(), Some("retention.visits_days"), "{e}");
        assert!(e.to_string().contains("tag_rules[0].days (30)"), "{e}");
        let c = parse(&format!(
            "[retention]\nvisits_days = 30\ncoupons_days = 20\n{rule}days = 30\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(
            (c.retention.visits_days, c.retention.coupons_days),
            (30, 20)
        );
    }

    #[test]
    fn no_gateways_without_the_demo_flag_is_refused() {
        let e = parse("").unwrap_err();
        assert_eq!(e.key(), Some("gateways"));
        assert!(e.to_string().contains("[[gateways]]"));
        let c = parse("[ingest]\nallow_unknown_gateways = true\n").unwrap();
        assert!(c.ingest.allow_unknown_gateways);
    }

    #[test]
    fn type_errors_give_the_line() {
        let e = parse(&format!("{MINIMAL}[ingest]\nworkers = \"two\"\n")).unwrap_err();
        assert!(
            e.to_string().starts_with("test.toml:5: ingest.workers"),
            "{e}"
        );
    }

    #[test]
    fn broker_urls() {
        let url = |host: &str, port, tls| {
            Ok(BrokerUrl {
                host: host.into(),
                port,
                tls,
            })
        };
        assert_eq!(
            parse_broker_url("mqtt://mq.example:1884"),
            url("mq.example", 1884, false)
        );
        assert_eq!(parse_broker_url("mqtt://mq"), url("mq", 1883, false));
        assert_eq!(
            parse_broker_url("tcp://[::1]:1885"),
            url("::1", 1885, false)
        );
        assert_eq!(parse_broker_url("mqtts://mq"), url("mq", 8883, true));
        assert_eq!(parse_broker_url("ssl://mq:8884"), url("mq", 8884, true));
        assert!(parse_broker_url("mqtt://").is_err());
        assert!(parse_broker_url("mqtts://").is_err());
    }

    /// A self-signed CA certificate (P-256), only parsed here, never used to connect.
    const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBhTCCASqgAwIBAgIUTVt5oYx2JsSUWXGHhDI+nSeyPkgwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwURHdlbGwgY29uZmlnIHRlc3QgQ0EwIBcNMjYxMTI0MTE1NTIy
WhgPMjEyNjEwMzExMTU1MjJaMB8xHTAbBgNVBAMMFER3ZWxsIGNvbmZpZyB0ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGaK/+RTFuy+18ZNKHsAcs058
zt7K0gvbjcGw7Ud7JahS7DP1leYAOFC+SKDtWoDhJoTw0jOp0tMRNT6pEBUaKKNC
MEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFMcn
fsfGx+G9Jr693DIWTo4Nd6SjMAoGCCqGSM49BAMCA0kAMEYCIQC7LL+XPX/kn8tt
PUo9LbHRz7p0ABn6SquDW6wyLnCYxAIhAOuRAM03TJsUO8QRo43rBOFCOlMwlJiN
5jHtadoPne3M
-----END CERTIFICATE-----
";

    #[test]
    fn mqtts_takes_its_ca_file_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/broker-ca.pem"), TEST_CA_PEM).unwrap();
        std::fs::write(dir.path().join("broker-password"), "s3cret\n").unwrap();
        let path = dir.path().join("dwell-cloud.toml");
        std::fs::write(
            &path,
            format!(
                "[broker]\nurl = \"mqtts://mq.example\"\nca_file = \"certs/broker-ca.pem\"\n\
                 username = \"cloud\"\npassword_file = \"broker-password\"\n\
                 [ingest]\nworkers = 2\n{MINIMAL}"
            ),
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            (c.broker.host.as_str(), c.broker.port),
            ("mq.example", 8883)
        );
        let tls = c.broker.tls.as_ref().expect("mqtts:// turns TLS on");
        assert_eq!(tls.ca_file(), dir.path().join("certs/broker-ca.pem"));
        assert_eq!(c.broker.password.as_deref(), Some("s3cret"));
        for w in c.worker_configs() {
            assert_eq!(w.tls.as_ref(), Some(tls), "every worker uses TLS");
            assert_eq!(w.port, 8883);
        }
        assert!(format!("{c:?}").contains("broker-ca.pem"));

        // A file that holds no certificate is refused at load, naming the file.
        std::fs::write(
            dir.path().join("certs/broker-ca.pem"),
            "not a certificate\n",
        )
        .unwrap();
        let e = Config::load(&path).unwrap_err();
        assert_eq!(e.key(), Some("broker.ca_file"), "{e}");
        assert!(e.to_string().contains("broker-ca.pem"), "{e}");
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn password_never_shows_in_debug() {
        let c = parse(&format!(
            "[broker]\nusername = \"u\"\npassword = \"hunter2\"\n{MINIMAL}"
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.worker_configs()).contains("hunter2"));
    }
}
