//! The gateway's configuration: one TOML file, one typed [`Config`], validated on load.
//!
//! Store IT edits this file by hand on a small Linux box, so it is strict and it explains itself:
//! - the commented default ([`DEFAULT_CONFIG`], `deploy/edge/dwell-edge.toml`, embedded here so
//!   `dwell-edge print-default-config` and the packaged file can never differ) documents every key;
//! - unknown keys are refused and named (a misspelt `zone_exit_s` silently ignored would be worse
//!   than an error);
//! - every error names the file, the key (as a path, `zones[1].polygon`) and the fix:
//!   `dwell-edge.toml: zones[1].polygon: needs at least 3 points; give the zone's corners in
//!   metres`.
//!   Syntax and type errors also give the line (`dwell-edge.toml:12: …`).
//!
//! The store layout part (`[gateway] store/timezone/entrance`, `[[receivers]]`, `[[zones]]`,
//! `[visit]`) becomes a [`wire::StoreConfig`](StoreConfig) and is checked by
//! [`StoreConfig::validate`] — the same check the cloud's pushed layout goes through, so the file
//! and the retained `dwell/v1/{store}/config` topic accept exactly the same layouts;
//! [`Config::replace_layout`] swaps in a pushed one at run time. `StoreConfig::validate` checks
//! only the time zone's spelling (`shared` links no tz database); here, for the file and pushed
//! layouts alike, it must also be a zone of the bundled tz database, because the daily salt
//! rotates on the store's local clock (`[privacy] salt_rotates_at`).
//!
//! The file's sections are read into private mirror structs with `deny_unknown_fields` (the wire
//! types deliberately tolerate unknown fields, a file must not), then converted.

use crate::identify::{DEFAULT_SALT_ROTATES_AT, SaltRotation, SaltSchedule};
use crate::outbox::OutboxConfig;
use crate::track::TrackOptions;
use crate::uplink::{TlsConfig, UplinkConfig};
use dwell_shared::definitions::{
    DEFINITIONS_VERSION, DefinitionsError, Milestones, VisitDefinitions,
};
use dwell_shared::topic;
use dwell_shared::wire::{Receiver, StoreConfig, StoreConfigError, Version, Zone};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The shipped, commented default config (`deploy/edge/dwell-edge.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/edge/dwell-edge.toml");

/// Where the package installs the config file.
pub const DEFAULT_PATH: &str = "/etc/dwell-edge/dwell-edge.toml";

/// Smallest outbox cap accepted: below this a short outage would already drop events.
pub const MIN_OUTBOX_BYTES: u64 = 1 << 20;

/// Where a config pointing readers at the documentation sends them.
const SEE_DEFAULT: &str = "`dwell-edge print-default-config` shows every key with its meaning";

/// How to fix `[gateway] timezone`, misspelt or unknown.
const TIMEZONE_FIX: &str =
    "use an IANA name such as \"Europe/Paris\" or \"America/New_York\", or \"UTC\"";

/// The whole gateway configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub gateway: GatewayConfig,
    /// Receivers, zones, entrance and visit thresholds, in wire form. Private so it only changes
    /// through validation ([`Config::replace_layout`]).
    layout: StoreConfig,
    /// The layout's `timezone`, looked up in the tz database; changes with the layout.
    time_zone: TimeZone,
    /// `[tracking]`, with `counts_only` set from `[privacy]`.
    pub tracking: TrackOptions,
    pub broker: BrokerConfig,
    pub outbox: OutboxConfig,
    pub privacy: PrivacyConfig,
    pub metrics: MetricsConfig,
    /// `[beacon]`: the store iBeacon this gateway advertises, if any.
    pub beacon: Option<BeaconConfig>,
    pub sources: Vec<SourceConfig>,
}

/// `[beacon]`: the store's iBeacon, advertised through the HCI backend so shoppers' apps wake up
/// in the store (iOS apps can only listen in the background). Its UUID is also how the gateway
/// recognises its own and the zone nodes' beacons, which are never counted as people.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeaconConfig {
    /// The retailer's proximity UUID, as registered in its app.
    pub uuid: dwell_shared::Uuid,
    /// iBeacon major: the store number.
    pub store_number: u16,
    /// iBeacon minor: the zone number of this gateway's position.
    pub zone_number: u16,
    /// Calibrated RSSI at 1 m, dBm.
    #[serde(default = "default_measured_power")]
    pub measured_power: i8,
}

fn default_measured_power() -> i8 {
    -59
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the `/metrics` HTTP endpoint; empty turns it off. Loopback by default: put a
    /// reverse proxy or the node exporter's textfile in front of it to expose it further.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// `[gateway]`: who this gateway is. (Its `store`, `timezone` and `entrance` are part of the
/// layout: [`Config::store_layout`].)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    pub id: String,
}

/// `[broker]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub url: String,
    /// Default: `dwell-edge-{store}-{gateway}` ([`Config::client_id`]).
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// A file holding the password (first line), instead of `password`.
    pub password_file: Option<PathBuf>,
    /// Default: on for `mqtts://`.
    pub tls: Option<bool>,
    /// Extra CA certificate (PEM) trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    pub keep_alive_s: u16,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: "mqtt://localhost:1883".into(),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            tls: None,
            ca_file: None,
            keep_alive_s: 30,
        }
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("keep_alive_s", &self.keep_alive_s)
            .finish()
    }
}

/// Where the broker is, from `url` and `tls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerConfig {
    /// Parses `url` (and applies `tls`). The error says what is wrong with it.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .ok_or_else(|| format!("{:?} has no scheme", self.url))?;
        let (scheme_tls, default_port) = match scheme {
            "mqtt" | "tcp" => (false, 1883),
            "mqtts" | "ssl" => (true, 8883),
            other => return Err(format!("scheme {other:?} is not mqtt or mqtts")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '@', '?', '#']) {
            return Err(format!(
                "{:?} has a path, user or query; only host and port belong here",
                self.url
            ));
        }
        // [v6::addr]:port, host:port, or host alone.
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{:?}: unclosed '['", self.url))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{:?} has no host", self.url));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
            },
        };
        let tls = match self.tls {
            Some(false) if scheme_tls => {
                return Err(format!("tls = false contradicts the {scheme}:// scheme"));
            }
            Some(tls) => tls,
            None => scheme_tls,
        };
        Ok(Endpoint {
            host: host.into(),
            port,
            tls,
        })
    }
}

/// A password: read from the file, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[privacy]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivacyConfig {
    pub salt_rotation: SaltRotation,
    /// Local time of day (in `[gateway] timezone`) the daily salt changes at; `"HH:MM"` in the
    /// file.
    pub salt_rotates_at: Time,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            salt_rotation: SaltRotation::Daily,
            salt_rotates_at: DEFAULT_SALT_ROTATES_AT,
        }
    }
}

/// One `[[sources]]` entry. `receiver` is the `[[receivers]]` id its sightings are attributed to
/// (default: the gateway's id; see [`Config::receiver_of`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// BLE through a raw HCI socket (HCI user channel), duplicate filtering off.
    Hci {
        #[serde(default)]
        device: u16,
        #[serde(default)]
        receiver: Option<String>,
    },
    /// BLE through BlueZ over D-Bus (btleplug).
    Btleplug {
        #[serde(default)]
        adapter: Option<String>,
        #[serde(default)]
        receiver: Option<String>,
    },
    /// Wi-Fi probe requests from a monitor-mode interface.
    Wifi {
        interface: String,
        #[serde(default)]
        receiver: Option<String>,
    },
    /// Zone sensor nodes' reports (`dwell/v1/{store}/nodes/{node}/report`); each node is its own
    /// receiver.
    Nodes {},
    /// Replay of a btsnoop capture.
    Btsnoop {
        path: PathBuf,
        #[serde(default)]
        receiver: Option<String>,
        /// Replay speed (1 = as recorded; 60 = an hour a minute).
        #[serde(default = "real_time")]
        speed: f64,
    },
    /// Replay of a pcap/pcapng Wi-Fi capture.
    Pcap {
        path: PathBuf,
        #[serde(default)]
        receiver: Option<String>,
        #[serde(default = "real_time")]
        speed: f64,
    },
    /// Replay of recorded sightings (JSONL); each record names its receiver.
    Jsonl {
        path: PathBuf,
        #[serde(default = "real_time")]
        speed: f64,
    },
    /// Simulated shoppers walking this floor plan.
    Simulator {
        #[serde(default = "default_shoppers")]
        shoppers: u32,
        #[serde(default)]
        seed: u64,
        /// App users' keys from a pool of this many (0: fresh keys): see `SimParams::app_key_pool`.
        #[serde(default)]
        app_key_pool: u32,
        #[serde(default)]
        app_key_seed: u64,
    },
}

fn real_time() -> f64 {
    1.0
}

fn default_shoppers() -> u32 {
    20
}

impl SourceConfig {
    /// The `kind` value.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Hci { .. } => "hci",
            SourceConfig::Btleplug { .. } => "btleplug",
            SourceConfig::Wifi { .. } => "wifi",
            SourceConfig::Nodes {} => "nodes",
            SourceConfig::Btsnoop { .. } => "btsnoop",
            SourceConfig::Pcap { .. } => "pcap",
            SourceConfig::Jsonl { .. } => "jsonl",
            SourceConfig::Simulator { .. } => "simulator",
        }
    }

    /// Whether all its sightings come from one receiver (the others name theirs per record).
    pub fn has_receiver(&self) -> bool {
        matches!(
            self,
            SourceConfig::Hci { .. }
                | SourceConfig::Btleplug { .. }
                | SourceConfig::Wifi { .. }
                | SourceConfig::Btsnoop { .. }
                | SourceConfig::Pcap { .. }
        )
    }

    fn receiver(&self) -> Option<&str> {
        match self {
            SourceConfig::Hci { receiver, .. }
            | SourceConfig::Btleplug { receiver, .. }
            | SourceConfig::Wifi { receiver, .. }
            | SourceConfig::Btsnoop { receiver, .. }
            | SourceConfig::Pcap { receiver, .. } => receiver.as_deref(),
            _ => None,
        }
    }
}

/// Why a config file was refused. The `Display` form is the whole message for store IT.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{origin}: cannot read the config file: {error}; check the path given to --config (default {DEFAULT_PATH}) and that the dwell-edge user can read it"
    )]
    Read {
        origin: String,
        /// Shown in the message, so not also a `source` (it would print twice).
        error: std::io::Error,
    },
    #[error("{}", invalid_message(.origin, *.line, .key, .problem, .fix))]
    Invalid {
        origin: String,
        /// 1-based line, for syntax and type errors.
        line: Option<usize>,
        /// The key path (`zones[1].polygon`); empty for a syntax error with no key.
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

fn invalid_message(
    origin: &str,
    line: Option<usize>,
    key: &str,
    problem: &str,
    fix: &str,
) -> String {
    let mut m = String::from(origin);
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

/// A layout pushed on the config topic that this gateway refuses (it keeps the one it has).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutRejected {
    #[error("store config for store {pushed:?} pushed to a gateway of store {ours:?}")]
    OtherStore { ours: String, pushed: String },
    #[error("store config has no receivers; the gateway keeps its layout")]
    NoReceivers,
    #[error("store config refused: timezone: {0:?} is not a time zone in the tz database")]
    UnknownTimeZone(String),
    #[error("store config refused: {0}")]
    Invalid(#[from] StoreConfigError),
}

impl Config {
    /// Reads and validates the file at `path` (errors name it as given).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            origin: origin.clone(),
            error,
        })?;
        Config::from_toml_str(&text, &origin)
    }

    /// The shipped default.
    pub fn shipped_default() -> Config {
        // The shipped file is checked by a unit test (`shipped_default_is_valid`), so this
        // cannot fail in a built binary.
        Config::from_toml_str(DEFAULT_CONFIG, "dwell-edge.toml (built-in default)")
            .expect("the shipped default config is valid")
    }

    /// Parses and validates `text`; `origin` (a file name) starts every error message.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
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
                e.message().trim().to_string(),
                SEE_DEFAULT.into(),
            )
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let e = e.into_inner();
            let line = e.span().map(|s| line_of(text, s.start));
            let (key, problem, fix) = explain_shape_error(&path, e.message().trim());
            invalid(line, key, problem, fix)
        })?;
        raw.into_config()
            .map_err(|(key, problem, fix)| invalid(None, key, problem, fix))
    }

    /// The store layout in wire form: what the retained config topic carries.
    pub fn store_layout(&self) -> &StoreConfig {
        &self.layout
    }

    pub fn store(&self) -> &str {
        &self.layout.store
    }

    /// The MQTT client id: `[broker] client_id`, or `dwell-edge-{store}-{gateway}`.
    pub fn client_id(&self) -> String {
        self.broker
            .client_id
            .clone()
            .unwrap_or_else(|| format!("dwell-edge-{}-{}", self.layout.store, self.gateway.id))
    }

    /// The receiver a source's sightings are attributed to (`None`: named per record).
    pub fn receiver_of<'a>(&'a self, source: &'a SourceConfig) -> Option<&'a str> {
        source
            .has_receiver()
            .then(|| source.receiver().unwrap_or(&self.gateway.id))
    }

    /// Replaces the layout with one pushed by the cloud, after the same validation the file's
    /// layout went through; on error the current layout stays.
    pub fn replace_layout(&mut self, pushed: StoreConfig) -> Result<(), LayoutRejected> {
        if pushed.store != self.layout.store {
            return Err(LayoutRejected::OtherStore {
                ours: self.layout.store.clone(),
                pushed: pushed.store,
            });
        }
        pushed.validate()?;
        if pushed.receivers.is_empty() {
            return Err(LayoutRejected::NoReceivers);
        }
        let time_zone = TimeZone::get(&pushed.timezone)
            .map_err(|_| LayoutRejected::UnknownTimeZone(pushed.timezone.clone()))?;
        self.layout = pushed;
        self.time_zone = time_zone;
        Ok(())
    }

    /// The store's time zone (`[gateway] timezone`, or the pushed layout's).
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// When the anonymous-tier salt changes: `[privacy]` on the store's clock.
    pub fn salt_schedule(&self) -> SaltSchedule {
        match self.privacy.salt_rotation {
            SaltRotation::Daily => {
                SaltSchedule::daily(self.privacy.salt_rotates_at, self.time_zone.clone())
            }
            SaltRotation::Strict => SaltSchedule::strict(),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turns a serde error at `path` into (key, problem, fix).
fn explain_shape_error(path: &str, message: &str) -> (String, String, String) {
    let path = if path == "." { "" } else { path };
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = |rest: &str| {
        rest.split_once('`')
            .map(|(name, after)| (name.to_string(), after.to_string()))
    };
    if let Some((name, after)) = message.strip_prefix("unknown field `").and_then(quoted) {
        let expected = after.trim_start_matches(',').trim();
        let fix = if expected.is_empty() {
            "remove it".to_string()
        } else {
            format!("remove it or fix its spelling ({expected})")
        };
        return (join(&name), "unknown key".into(), fix);
    }
    if let Some((name, _)) = message.strip_prefix("missing field `").and_then(quoted) {
        return (
            join(&name),
            "required key is missing".into(),
            format!("add it; {SEE_DEFAULT}"),
        );
    }
    if message.starts_with("unknown variant") {
        return (
            path.into(),
            message.replace("unknown variant", "unknown value"),
            "use one of the values listed".into(),
        );
    }
    (path.into(), message.into(), SEE_DEFAULT.into())
}

// ---- the file's shape ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: RawGateway,
    #[serde(default)]
    receivers: Vec<RawReceiver>,
    #[serde(default)]
    zones: Vec<RawZone>,
    #[serde(default)]
    visit: RawVisit,
    #[serde(default)]
    tracking: TrackOptions,
    #[serde(default)]
    broker: BrokerConfig,
    #[serde(default)]
    outbox: OutboxConfig,
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    metrics: MetricsConfig,
    #[serde(default)]
    beacon: Option<BeaconConfig>,
    #[serde(default)]
    sources: Vec<SourceConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    id: String,
    store: String,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default)]
    entrance: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

/// `[privacy]`, with the rotation time as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPrivacy {
    salt_rotation: SaltRotation,
    salt_rotates_at: String,
}

impl Default for RawPrivacy {
    fn default() -> Self {
        let d = PrivacyConfig::default();
        RawPrivacy {
            salt_rotation: d.salt_rotation,
            salt_rotates_at: format!(
                "{:02}:{:02}",
                d.salt_rotates_at.hour(),
                d.salt_rotates_at.minute()
            ),
        }
    }
}

/// `"HH:MM"`, 24-hour clock, exactly two digits each.
fn parse_time_of_day(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    let two_digits = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !(two_digits(h) && two_digits(m)) {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    id: String,
    x: f64,
    y: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    id: String,
    /// Defaults to the id.
    #[serde(default)]
    name: Option<String>,
    /// Points as read, checked to be pairs: serde reads `[x, y, z]` into `[f64; 2]` silently.
    polygon: Vec<Vec<f64>>,
}

/// `[visit]`: [`VisitDefinitions`] field for field, but refusing unknown keys (the wire type
/// accepts them so newer clouds can add fields). A test keeps the two in step.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawVisit {
    version: u32,
    visitor_rssi_dbm: i16,
    passerby_rssi_dbm: i16,
    min_visit_s: u32,
    session_timeout_s: u32,
    engaged_s: u32,
    zone_enter_s: u32,
    zone_exit_s: u32,
    milestones_s: Vec<u32>,
}

impl Default for RawVisit {
    fn default() -> Self {
        let d = VisitDefinitions::DEFAULT;
        RawVisit {
            version: d.version,
            visitor_rssi_dbm: d.visitor_rssi_dbm,
            passerby_rssi_dbm: d.passerby_rssi_dbm,
            min_visit_s: d.min_visit_s,
            session_timeout_s: d.session_timeout_s,
            engaged_s: d.engaged_s,
            zone_enter_s: d.zone_enter_s,
            zone_exit_s: d.zone_exit_s,
            milestones_s: d.milestones_s.as_slice().to_vec(),
        }
    }
}

type Problem = (String, String, String);

fn problem(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    (key.into(), problem.into(), fix.into())
}

impl RawConfig {
    fn into_config(self) -> Result<Config, Problem> {
        const ID_FIX: &str =
            "use at most 64 bytes with no '/', '+', '#', spaces or control characters";
        topic::validate_id(&self.gateway.id)
            .map_err(|e| problem("gateway.id", format!("{:?}: {e}", self.gateway.id), ID_FIX))?;

        let v = &self.visit;
        let milestones =
            Milestones::from_slice(&v.milestones_s).map_err(|e| explain_definitions_error(&e))?;
        let mut zones = Vec::with_capacity(self.zones.len());
        for (i, z) in self.zones.into_iter().enumerate() {
            let mut polygon = Vec::with_capacity(z.polygon.len());
            for (k, point) in z.polygon.iter().enumerate() {
                match point.as_slice() {
                    &[x, y] => polygon.push([x, y]),
                    other => {
                        return Err(problem(
                            format!("zones[{i}].polygon[{k}]"),
                            format!("a corner has {} numbers", other.len()),
                            "give each corner as [x, y] in metres",
                        ));
                    }
                }
            }
            zones.push(Zone {
                name: z.name.unwrap_or_else(|| z.id.clone()),
                id: z.id,
                polygon,
            });
        }
        let layout = StoreConfig {
            v: Version,
            store: self.gateway.store,
            timezone: self.gateway.timezone,
            receivers: self
                .receivers
                .into_iter()
                .map(|r| Receiver {
                    id: r.id,
                    x: r.x,
                    y: r.y,
                })
                .collect(),
            zones,
            entrance: self.gateway.entrance,
            visit: VisitDefinitions {
                version: v.version,
                visitor_rssi_dbm: v.visitor_rssi_dbm,
                passerby_rssi_dbm: v.passerby_rssi_dbm,
                min_visit_s: v.min_visit_s,
                session_timeout_s: v.session_timeout_s,
                engaged_s: v.engaged_s,
                zone_enter_s: v.zone_enter_s,
                zone_exit_s: v.zone_exit_s,
                milestones_s: milestones,
            },
        };
        layout
            .validate()
            .map_err(|e| explain_layout_error(&e, &layout))?;
        if layout.receivers.is_empty() {
            return Err(problem(
                "receivers",
                "no receivers",
                "add a [[receivers]] entry with the gateway's id and position (id, x, y in metres)",
            ));
        }
        // Well spelt (validate above); now it must exist: the daily salt follows its clock.
        let time_zone = TimeZone::get(&layout.timezone).map_err(|_| {
            problem(
                "gateway.timezone",
                format!(
                    "{:?} is not a time zone in the tz database",
                    layout.timezone
                ),
                TIMEZONE_FIX,
            )
        })?;

        let privacy = PrivacyConfig {
            salt_rotation: self.privacy.salt_rotation,
            salt_rotates_at: parse_time_of_day(&self.privacy.salt_rotates_at).ok_or_else(|| {
                problem(
                    "privacy.salt_rotates_at",
                    format!(
                        "{:?} is not a time of day as HH:MM",
                        self.privacy.salt_rotates_at
                    ),
                    "give the store's local time on a 24-hour clock at an hour it is closed, e.g. \"04:00\"",
                )
            })?,
        };

        let mut tracking = self.tracking;
        tracking
            .validate()
            .map_err(|e| problem(format!("tracking.{}", e.key), e.problem, e.fix))?;
        tracking.counts_only = privacy.salt_rotation == SaltRotation::Strict;

        let broker = self.broker;
        broker.endpoint().map_err(|e| {
            let key = if e.starts_with("tls") {
                "broker.tls"
            } else {
                "broker.url"
            };
            problem(
                key,
                e,
                "write it as mqtt://host:port, or mqtts://host:port for TLS",
            )
        })?;
        if let Some(id) = &broker.client_id
            && (id.is_empty()
                || id.len() > 128
                || id.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(problem(
                "broker.client_id",
                format!("{id:?} is empty, longer than 128 bytes or has spaces"),
                "use a short stable name, or remove it for dwell-edge-{store}-{gateway}",
            ));
        }
        if broker.password.is_some() && broker.password_file.is_some() {
            return Err(problem(
                "broker.password",
                "both password and password_file are set",
                "keep one (password_file is preferred)",
            ));
        }
        if (broker.password.is_some() || broker.password_file.is_some())
            && broker.username.is_none()
        {
            return Err(problem(
                "broker.username",
                "a password is set without a username",
                "add username, or remove the password",
            ));
        }
        if broker.keep_alive_s == 0 {
            return Err(problem(
                "broker.keep_alive_s",
                "must be at least 1 second",
                "30 is usual",
            ));
        }

        if self.outbox.path.as_os_str().is_empty() {
            return Err(problem(
                "outbox.path",
                "is empty",
                "give a directory the dwell-edge user can write, e.g. /var/lib/dwell-edge/outbox",
            ));
        }
        if self.outbox.max_bytes < MIN_OUTBOX_BYTES {
            return Err(problem(
                "outbox.max_bytes",
                format!("{} bytes is below the 1 MiB minimum", self.outbox.max_bytes),
                "give at least 1048576; a day of a busy store is well under 1 GiB",
            ));
        }

        let gateway = GatewayConfig {
            id: self.gateway.id,
        };
        for (i, source) in self.sources.iter().enumerate() {
            if let SourceConfig::Btsnoop { speed, .. }
            | SourceConfig::Pcap { speed, .. }
            | SourceConfig::Jsonl { speed, .. } = source
                && !(speed.is_finite() && *speed > 0.0)
            {
                return Err(problem(
                    format!("sources[{i}].speed"),
                    format!("{speed} is not a positive number"),
                    "1 replays as recorded, 60 replays an hour a minute",
                ));
            }
            let receiver = match source.receiver() {
                Some(r) => r,
                None if source.has_receiver() => &gateway.id,
                None => continue,
            };
            if !layout.receivers.iter().any(|r| r.id == receiver) {
                let key = if source.receiver().is_some() {
                    format!("sources[{i}].receiver")
                } else {
                    format!("sources[{i}]")
                };
                return Err(problem(
                    key,
                    format!(
                        "receiver {receiver:?} is not in [[receivers]] (a {} source without `receiver` uses the gateway's id)",
                        source.kind()
                    ),
                    "add a [[receivers]] entry with that id and its position, or set `receiver`",
                ));
            }
        }

        Ok(Config {
            gateway,
            layout,
            time_zone,
            tracking,
            broker,
            outbox: self.outbox,
            privacy,
            metrics: self.metrics,
            beacon: self.beacon,
            sources: self.sources,
        })
    }
}

/// A layout error as (key in the file, problem, fix). The wire error's field paths are the file's
/// except for the three `[gateway]` keys.
fn explain_layout_error(e: &StoreConfigError, layout: &StoreConfig) -> Problem {
    let text = e.to_string();
    // Every StoreConfigError displays as "<field path>: <problem>".
    let (field, rest) = text.split_once(": ").unwrap_or(("", &text));
    let key = match field {
        "store" | "timezone" | "entrance" => format!("gateway.{field}"),
        other => other.to_string(),
    };
    let (problem, fix): (String, String) = match e {
        StoreConfigError::InvalidId { .. } => (
            rest.into(),
            "use at most 64 bytes with no '/', '+', '#', spaces or control characters (and not \"shoppers\" as a store)".into(),
        ),
        StoreConfigError::Timezone { .. } => (rest.into(), TIMEZONE_FIX.into()),
        StoreConfigError::DuplicateId { .. } => (rest.into(), "give each one its own id".into()),
        StoreConfigError::NonFinite { .. } => (rest.into(), "give a number in metres".into()),
        StoreConfigError::DegeneratePolygon { points, .. } => (
            if *points < 3 {
                "needs at least 3 points".into()
            } else {
                "has no area (its points are on one line)".into()
            },
            "give the zone's corners in metres".into(),
        ),
        StoreConfigError::UnknownEntrance { .. } => {
            let ids: Vec<&str> = layout.zones.iter().map(|z| z.id.as_str()).collect();
            (
                rest.into(),
                if ids.is_empty() {
                    "add the zone under [[zones]], or remove entrance".into()
                } else {
                    format!("use one of the zone ids: {}", ids.join(", "))
                },
            )
        }
        StoreConfigError::Visit(d) => {
            let (_, _, fix) = explain_definitions_error(d);
            (rest.into(), fix)
        }
    };
    (key, problem, fix)
}

fn explain_definitions_error(e: &DefinitionsError) -> Problem {
    let text = e.to_string();
    let (field, rest) = text.split_once(": ").unwrap_or((e.field(), &text));
    let fix = match e {
        DefinitionsError::UnsupportedVersion { .. } => {
            format!("set version = {DEFINITIONS_VERSION}, or remove it")
        }
        DefinitionsError::RssiOutOfRange { .. } => {
            "use dBm between -127 and 20 (defaults: -75 visitor, -90 passer-by floor)".into()
        }
        DefinitionsError::RssiInverted { .. } => {
            "the passer-by floor must be weaker (more negative) than the visitor threshold, e.g. -90 and -75".into()
        }
        DefinitionsError::Zero { .. } => "use a positive number of seconds".into(),
        DefinitionsError::EngagedBelowMinVisit { .. } => {
            "raise engaged_s or lower min_visit_s".into()
        }
        DefinitionsError::MilestoneNotIncreasing { .. } => {
            "list seconds above 0 in increasing order, e.g. [30, 60, 120, 300, 600]".into()
        }
        DefinitionsError::TooManyMilestones { .. } => "keep at most 16".into(),
    };
    (format!("visit.{field}"), rest.into(), fix)
}

impl Config {
    /// The uplink's settings: ids from `[gateway]`, connection from `[broker]`. Reads
    /// `password_file` now, so a missing file is a config error at start-up, not a failed connect.
    pub fn uplink(&self, origin: &str) -> Result<UplinkConfig, ConfigError> {
        let invalid = |key: &str, problem: String, fix: &str| ConfigError::Invalid {
            origin: origin.to_owned(),
            line: None,
            key: key.to_owned(),
            problem,
            fix: fix.to_owned(),
        };
        let ep = self
            .broker
            .endpoint()
            .map_err(|p| invalid("broker.url", p, "use mqtt://host:1883 or mqtts://host:8883"))?;
        let password = match (&self.broker.password, &self.broker.password_file) {
            (Some(p), _) => Some(p.expose().to_owned()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| {
                        invalid(
                            "broker.password_file",
                            format!("{}: {e}", f.display()),
                            "point it at a file the dwell-edge user can read",
                        )
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let tls = if ep.tls {
            let ca_file = self.broker.ca_file.clone().ok_or_else(|| {
                invalid(
                    "broker.ca_file",
                    "a TLS broker needs the CA certificate that signed its certificate".into(),
                    "set ca_file = \"/etc/dwell-edge/ca.pem\" (PEM)",
                )
            })?;
            Some(TlsConfig {
                ca_file,
                client_cert_file: None,
                client_key_file: None,
            })
        } else {
            None
        };
        let mut u = UplinkConfig::new(self.store(), self.gateway.id.clone());
        u.host = ep.host;
        u.port = ep.port;
        u.client_id = Some(self.client_id());
        u.username = self.broker.username.clone();
        u.password = password;
        u.tls = tls;
        u.keep_alive_s = u64::from(self.broker.keep_alive_s);
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store layout exactly as issue 6 gives it.
    const ISSUE_EXAMPLE: &str = r#"
[gateway]
id = "gw-1"
store = "store-001"
[[receivers]]
id = "gw-1"
x = 0.0
y = 0.0
[[zones]]
id = "entrance"
name = "Entrance"
polygon = [[0.0, 0.0], [6.0, 0.0], [6.0, 4.0], [0.0, 4.0]]
[visit]
visitor_rssi_dbm = -75
passerby_rssi_dbm = -90
min_visit_s = 120
session_timeout_s = 900
zone_enter_s = 5
zone_exit_s = 10
milestones_s = [30, 60, 120, 300, 600]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, "dwell-edge.toml")
    }

    /// The issue's example with `edit` applied (a `(from, to)` text replacement, or appended).
    fn refused(from: &str, to: &str) -> ConfigError {
        let text = if from.is_empty() {
            format!("{ISSUE_EXAMPLE}{to}")
        } else {
            assert!(ISSUE_EXAMPLE.contains(from), "{from}");
            ISSUE_EXAMPLE.replacen(from, to, 1)
        };
        parse(&text).unwrap_err()
    }

    #[test]
    fn shipped_default_is_valid() {
        let c = Config::shipped_default();
        assert_eq!(c.gateway.id, "gw-1");
        assert_eq!(c.store(), "store-001");
        let layout = c.store_layout();
        assert_eq!(layout.timezone, "UTC");
        assert_eq!(layout.receivers.len(), 1);
        assert_eq!(layout.zones[0].id, "entrance");
        assert_eq!(layout.zones[0].area(), 24.0);
        assert_eq!(layout.visit, VisitDefinitions::DEFAULT);
        assert_eq!(c.tracking, TrackOptions::DEFAULT);
        assert_eq!(c.privacy.salt_rotation, SaltRotation::Daily);
        assert_eq!(c.outbox, OutboxConfig::default());
        assert_eq!(c.broker, BrokerConfig::default());
        assert_eq!(
            c.broker.endpoint(),
            Ok(Endpoint {
                host: "localhost".into(),
                port: 1883,
                tls: false
            })
        );
        assert_eq!(c.client_id(), "dwell-edge-store-001-gw-1");
        assert_eq!(
            c.sources,
            [SourceConfig::Hci {
                device: 0,
                receiver: None
            }]
        );
        assert_eq!(c.receiver_of(&c.sources[0]), Some("gw-1"));
    }

    #[test]
    fn shipped_default_spells_out_every_default() {
        // Uncommented values in the shipped file are the built-in defaults, so the file documents
        // what an omitted key means.
        let minimal = parse("[gateway]\nid = \"gw-1\"\nstore = \"store-001\"\n[[receivers]]\nid = \"gw-1\"\nx = 0\ny = 0\n").unwrap();
        let shipped = Config::shipped_default();
        assert_eq!(minimal.tracking, shipped.tracking);
        assert_eq!(minimal.broker, shipped.broker);
        assert_eq!(minimal.outbox, shipped.outbox);
        assert_eq!(minimal.privacy, shipped.privacy);
        assert_eq!(minimal.store_layout().visit, shipped.store_layout().visit);
    }

    #[test]
    fn issue_example_parses() {
        let c = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.store_layout().zones[0].name, "Entrance");
        assert_eq!(c.store_layout().visit, VisitDefinitions::DEFAULT);
        assert!(c.sources.is_empty());
    }

    #[test]
    fn layout_round_trips_through_the_wire_form() {
        let c = parse(ISSUE_EXAMPLE).unwrap();
        let json = serde_json::to_string(c.store_layout()).unwrap();
        let back: StoreConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, c.store_layout());
        assert_eq!(back.validate(), Ok(()));
    }

    #[test]
    fn errors_name_file_key_and_fix() {
        let polygon = "polygon = [[0.0, 0.0], [6.0, 0.0], [6.0, 4.0], [0.0, 4.0]]";
        let e = refused(
            polygon,
            &format!("{polygon}\n[[zones]]\nid = \"aisle\"\npolygon = [[0, 0], [1, 1]]"),
        );
        assert_eq!(
            e.to_string(),
            "dwell-edge.toml: zones[1].polygon: needs at least 3 points; give the zone's corners in metres"
        );
        assert_eq!(e.key(), Some("zones[1].polygon"));
        let e = refused(polygon, "polygon = [[0, 0], [6, 0, 1], [6, 4]]");
        assert_eq!(
            e.to_string(),
            "dwell-edge.toml: zones[0].polygon[1]: a corner has 3 numbers; give each corner as [x, y] in metres"
        );

        let e = refused("passerby_rssi_dbm = -90", "passerby_rssi_dbm = -70");
        assert_eq!(
            e.to_string(),
            "dwell-edge.toml: visit.passerby_rssi_dbm: -70 dBm must be below visitor_rssi_dbm (-75 dBm); the passer-by floor must be weaker (more negative) than the visitor threshold, e.g. -90 and -75"
        );
        let e = refused(
            "milestones_s = [30, 60, 120, 300, 600]",
            "milestones_s = [30, 20]",
        );
        assert_eq!(e.key(), Some("visit.milestones_s[1]"));
        let e = refused("zone_exit_s = 10", "zone_exit_s = 0");
        assert_eq!(e.key(), Some("visit.zone_exit_s"));
        let e = refused(
            "milestones_s = [30, 60, 120, 300, 600]",
            &format!("milestones_s = {:?}", [1u32; 17]),
        );
        assert_eq!(e.key(), Some("visit.milestones_s"));

        let e = refused("store = \"store-001\"", "store = \"shoppers\"");
        assert_eq!(e.key(), Some("gateway.store"));
        let e = refused(
            "store = \"store-001\"",
            "store = \"store-001\"\ntimezone = \"Europe Paris\"",
        );
        assert_eq!(e.key(), Some("gateway.timezone"), "{e}");
        assert!(e.to_string().contains("Europe/Paris"), "{e}");
        let e = refused(
            "store = \"store-001\"",
            "store = \"store-001\"\nentrance = \"door\"",
        );
        assert_eq!(
            e.to_string(),
            "dwell-edge.toml: gateway.entrance: \"door\" is not the id of any zone; use one of the zone ids: entrance"
        );
        let e = refused("id = \"gw-1\"\nstore", "id = \"gw 1\"\nstore");
        assert_eq!(e.key(), Some("gateway.id"));
        let e = refused(
            "id = \"gw-1\"\nx",
            "id = \"entrance\"\nx = 0.0\ny = 0.0\n[[receivers]]\nid = \"entrance\"\nx",
        );
        assert_eq!(e.key(), Some("receivers[1].id"));
        let e = refused("[[receivers]]\nid = \"gw-1\"\nx = 0.0\ny = 0.0\n", "");
        assert_eq!(e.key(), Some("receivers"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        for (from, to, key) in [
            ("", "[gatway]\nid = 1\n", "gatway"),
            (
                "store = \"store-001\"",
                "store = \"store-001\"\nstore_id = 3",
                "gateway.store_id",
            ),
            ("x = 0.0", "x = 0.0\nz = 1.0", "receivers[0].z"),
            (
                "name = \"Entrance\"",
                "name = \"Entrance\"\ncolour = \"red\"",
                "zones[0].colour",
            ),
            (
                "zone_exit_s = 10",
                "zone_exit_s = 10\nzone_exit = 10",
                "visit.zone_exit",
            ),
            (
                "",
                "[tracking]\npositionning = \"wls\"\n",
                "tracking.positionning",
            ),
            ("", "[broker]\nhost = \"x\"\n", "broker.host"),
            ("", "[outbox]\nmax_size = 1\n", "outbox.max_size"),
            ("", "[privacy]\nsalt = \"x\"\n", "privacy.salt"),
        ] {
            let e = refused(from, to);
            assert_eq!(e.key(), Some(key), "{e}");
            let text = e.to_string();
            assert!(text.starts_with("dwell-edge.toml:"), "{text}");
            assert!(text.contains(": unknown key; remove it"), "{text}");
        }
        // A source's unknown key: the path may stop at the source (serde buffers tagged enums),
        // but the key is named in the message.
        let e = refused("", "[[sources]]\nkind = \"hci\"\ndevic = 1\n");
        assert!(e.to_string().contains("devic"), "{e}");
        assert!(e.key().unwrap().starts_with("sources[0]"), "{e}");
    }

    #[test]
    fn type_and_syntax_errors_give_the_line() {
        let e = refused("x = 0.0", "x = \"zero\"");
        assert_eq!(e.key(), Some("receivers[0].x"));
        let text = e.to_string();
        assert!(
            text.starts_with("dwell-edge.toml:7: receivers[0].x: "),
            "{text}"
        );

        let e = refused("[visit]", "[visit");
        assert!(e.to_string().starts_with("dwell-edge.toml:13: "), "{e}");

        let e = refused(
            "id = \"gw-1\"\nstore = \"store-001\"",
            "store = \"store-001\"",
        );
        assert!(
            e.to_string()
                .contains("gateway.id: required key is missing"),
            "{e}"
        );

        let e = refused("", "[privacy]\nsalt_rotation = \"hourly\"\n");
        assert_eq!(e.key(), Some("privacy.salt_rotation"));
        assert!(e.to_string().contains("`daily`"), "{e}");
    }

    #[test]
    fn timezone_must_be_a_real_zone() {
        // Well spelt, but no such zone: the format check alone would let it through.
        for tz in ["Mars/Olympus", "Europe/Pariss", "Asia/Peking"] {
            let e = refused(
                "store = \"store-001\"",
                &format!("store = \"store-001\"\ntimezone = \"{tz}\""),
            );
            assert_eq!(e.key(), Some("gateway.timezone"), "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "dwell-edge.toml: gateway.timezone: \"{tz}\" is not a time zone in the tz database; {TIMEZONE_FIX}"
                )
            );
        }
        let c = parse(&ISSUE_EXAMPLE.replace(
            "store = \"store-001\"",
            "store = \"store-001\"\ntimezone = \"Asia/Shanghai\"",
        ))
        .unwrap();
        assert_eq!(c.time_zone(), &TimeZone::get("Asia/Shanghai").unwrap());
        assert_eq!(
            c.salt_schedule(),
            SaltSchedule::daily(
                jiff::civil::time(4, 0, 0, 0),
                TimeZone::get("Asia/Shanghai").unwrap()
            )
        );
        assert_eq!(parse(ISSUE_EXAMPLE).unwrap().time_zone(), &TimeZone::UTC);

        // A pushed layout goes through the same check, and a good one moves the salt's clock.
        let mut c = parse(ISSUE_EXAMPLE).unwrap();
        let mut pushed = c.store_layout().clone();
        pushed.timezone = "Mars/Olympus".into();
        assert_eq!(
            c.replace_layout(pushed.clone()),
            Err(LayoutRejected::UnknownTimeZone("Mars/Olympus".into()))
        );
        assert_eq!(c.store_layout().timezone, "UTC");
        pushed.timezone = "Europe/Paris".into();
        c.replace_layout(pushed).unwrap();
        assert_eq!(
            c.salt_schedule().time_zone,
            TimeZone::get("Europe/Paris").unwrap()
        );
    }

    #[test]
    fn salt_rotates_at_is_a_local_hh_mm() {
        let at = |v: &str| {
            parse(&format!(
                "{ISSUE_EXAMPLE}[privacy]\nsalt_rotates_at = \"{v}\"\n"
            ))
        };
        assert_eq!(
            parse(ISSUE_EXAMPLE).unwrap().privacy.salt_rotates_at,
            jiff::civil::time(4, 0, 0, 0),
            "default 04:00"
        );
        assert_eq!(
            at("23:30").unwrap().privacy.salt_rotates_at,
            jiff::civil::time(23, 30, 0, 0)
        );
        assert_eq!(
            at("00:00").unwrap().privacy.salt_rotates_at,
            jiff::civil::time(0, 0, 0, 0)
        );
        for bad in [
            "4:00", "04:0", "24:00", "04:60", "4am", "04:00:00", "", "+4:00", "04-00",
        ] {
            let e = at(bad).unwrap_err();
            assert_eq!(e.key(), Some("privacy.salt_rotates_at"), "{bad:?}: {e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "dwell-edge.toml: privacy.salt_rotates_at: {bad:?} is not a time of day as HH:MM; give the store's local time on a 24-hour clock at an hour it is closed, e.g. \"04:00\""
                )
            );
        }
        let e = parse(&format!("{ISSUE_EXAMPLE}[privacy]\nsalt_rotates_at = 4\n")).unwrap_err();
        assert_eq!(e.key(), Some("privacy.salt_rotates_at"), "{e}");

        // Strict mode keeps its minutes whatever the rotation time.
        let c = parse(&format!(
            "{ISSUE_EXAMPLE}[privacy]\nsalt_rotation = \"strict\"\nsalt_rotates_at = \"05:00\"\n"
        ))
        .unwrap();
        assert_eq!(c.salt_schedule(), SaltSchedule::strict());
    }

    #[test]
    fn coordinates_may_be_integers_and_names_default_to_ids() {
        let c = parse(&ISSUE_EXAMPLE.replace(
            "name = \"Entrance\"\npolygon = [[0.0, 0.0], [6.0, 0.0], [6.0, 4.0], [0.0, 4.0]]",
            "polygon = [[0, 0], [6, 0], [6, 4], [0, 4]]",
        ))
        .unwrap();
        assert_eq!(c.store_layout().zones[0].name, "entrance");
        assert_eq!(c.store_layout().zones[0].polygon[2], [6.0, 4.0]);
    }

    #[test]
    fn raw_visit_mirrors_visit_definitions() {
        // Every field of the wire type is a key of [visit]; a field added there without a key
        // here fails this test (deny_unknown_fields).
        let json = serde_json::to_value(VisitDefinitions::DEFAULT).unwrap();
        let table: toml::Table = serde_json::from_value(json).unwrap();
        let text = format!(
            "{}\n[visit]\n{}",
            ISSUE_EXAMPLE.split("[visit]").next().unwrap(),
            toml::to_string(&table).unwrap()
        );
        assert_eq!(
            parse(&text).unwrap().store_layout().visit,
            VisitDefinitions::DEFAULT
        );
    }

    #[test]
    fn broker_settings() {
        let broker = |url: &str, tls: Option<bool>| BrokerConfig {
            url: url.into(),
            tls,
            ..BrokerConfig::default()
        };
        let ok = |host: &str, port, tls| {
            Ok(Endpoint {
                host: host.into(),
                port,
                tls,
            })
        };
        assert_eq!(
            broker("mqtts://mq.example:8884", None).endpoint(),
            ok("mq.example", 8884, true)
        );
        assert_eq!(
            broker("mqtts://mq.example", None).endpoint(),
            ok("mq.example", 8883, true)
        );
        assert_eq!(
            broker("mqtt://[::1]:1884/", None).endpoint(),
            ok("::1", 1884, false)
        );
        assert_eq!(
            broker("mqtt://10.0.0.2", Some(true)).endpoint(),
            ok("10.0.0.2", 1883, true)
        );
        for bad in [
            "localhost:1883",
            "http://x",
            "mqtt://",
            "mqtt://x:0",
            "mqtt://x:99999",
            "mqtt://u@x",
            "mqtt://x/topic",
        ] {
            assert!(broker(bad, None).endpoint().is_err(), "{bad}");
        }

        let e = refused("", "[broker]\nurl = \"mqtt//x\"\n");
        assert_eq!(e.key(), Some("broker.url"));
        let e = refused("", "[broker]\nurl = \"mqtts://x\"\ntls = false\n");
        assert_eq!(e.key(), Some("broker.tls"));
        let e = refused(
            "",
            "[broker]\nusername = \"u\"\npassword = \"p\"\npassword_file = \"/f\"\n",
        );
        assert_eq!(e.key(), Some("broker.password"));
        let e = refused("", "[broker]\npassword = \"p\"\n");
        assert_eq!(e.key(), Some("broker.username"));

        let c = parse(&format!(
            "{ISSUE_EXAMPLE}[broker]\nusername = \"gw\"\npassword = \"hunter2\"\n"
        ))
        .unwrap();
        assert_eq!(c.broker.password.as_ref().unwrap().expose(), "hunter2");
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "Debug must not print the password"
        );
    }

    #[test]
    fn beacon_section_is_optional_and_checked() {
        let minimal = "[gateway]\nid = \"gw-1\"\nstore = \"s1\"\n[[receivers]]\nid = \"gw-1\"\nx = 0\ny = 0\n\
                       [[zones]]\nid = \"z\"\nname = \"Z\"\npolygon = [[0,0],[1,0],[1,1]]\n";
        assert_eq!(
            Config::from_toml_str(minimal, "t.toml").unwrap().beacon,
            None
        );
        let with = format!(
            "{minimal}[beacon]\nuuid = \"e2c56db5-dffb-48d2-b060-d0f5a71096e0\"\nstore_number = 42\nzone_number = 3\n"
        );
        let b = Config::from_toml_str(&with, "t.toml")
            .unwrap()
            .beacon
            .unwrap();
        assert_eq!(
            (b.store_number, b.zone_number, b.measured_power),
            (42, 3, -59)
        );
        let bad = format!(
            "{minimal}[beacon]\nuuid = \"not-a-uuid\"\nstore_number = 1\nzone_number = 1\n"
        );
        let e = Config::from_toml_str(&bad, "t.toml").unwrap_err();
        assert!(e.to_string().contains("beacon"), "{e}");
        let missing =
            format!("{minimal}[beacon]\nuuid = \"e2c56db5-dffb-48d2-b060-d0f5a71096e0\"\n");
        assert!(Config::from_toml_str(&missing, "t.toml").is_err());
    }

    #[test]
    fn tracking_outbox_privacy_sources() {
        let e = refused("", "[tracking]\npath_loss_exponent = 9.0\n");
        assert_eq!(e.key(), Some("tracking.path_loss_exponent"));
        let e = refused("", "[tracking]\npositioning = \"gps\"\n");
        assert_eq!(e.key(), Some("tracking.positioning"));
        let e = refused("", "[outbox]\nmax_bytes = 1000\n");
        assert_eq!(e.key(), Some("outbox.max_bytes"));

        let c = parse(&format!(
            "{ISSUE_EXAMPLE}[privacy]\nsalt_rotation = \"strict\"\n"
        ))
        .unwrap();
        assert!(c.tracking.counts_only, "strict privacy sends counts only");

        let e = refused(
            "",
            "[[sources]]\nkind = \"wifi\"\ninterface = \"wlan0mon\"\nreceiver = \"node-9\"\n",
        );
        assert_eq!(e.key(), Some("sources[0].receiver"));
        let e = refused("", "[[sources]]\nkind = \"radar\"\n");
        assert!(e.to_string().contains("radar"), "{e}");
        let e = refused("", "[[sources]]\nkind = \"wifi\"\n");
        assert!(e.to_string().contains("interface"), "{e}");

        let c = parse(&format!(
            "{ISSUE_EXAMPLE}[[sources]]\nkind = \"nodes\"\n[[sources]]\nkind = \"simulator\"\nseed = 7\n[[sources]]\nkind = \"btleplug\"\nadapter = \"hci1\"\nreceiver = \"gw-1\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.sources,
            [
                SourceConfig::Nodes {},
                SourceConfig::Simulator {
                    shoppers: 20,
                    seed: 7,
                    app_key_pool: 0,
                    app_key_seed: 0,
                },
                SourceConfig::Btleplug {
                    adapter: Some("hci1".into()),
                    receiver: Some("gw-1".into())
                },
            ]
        );
        assert_eq!(c.receiver_of(&c.sources[0]), None);
        assert_eq!(c.receiver_of(&c.sources[2]), Some("gw-1"));
    }

    #[test]
    fn pushed_layout_is_validated_before_replacing() {
        let mut c = parse(ISSUE_EXAMPLE).unwrap();
        let mut pushed = c.store_layout().clone();
        pushed.zones[0].polygon.truncate(2);
        assert!(matches!(
            c.replace_layout(pushed.clone()),
            Err(LayoutRejected::Invalid(
                StoreConfigError::DegeneratePolygon { .. }
            ))
        ));
        pushed.store = "store-002".into();
        assert!(matches!(
            c.replace_layout(pushed),
            Err(LayoutRejected::OtherStore { .. })
        ));
        let mut empty = c.store_layout().clone();
        empty.receivers.clear();
        assert_eq!(c.replace_layout(empty), Err(LayoutRejected::NoReceivers));
        assert_eq!(
            c.store_layout(),
            parse(ISSUE_EXAMPLE).unwrap().store_layout()
        );

        let mut good = c.store_layout().clone();
        good.visit.min_visit_s = 60;
        good.visit.engaged_s = 60;
        c.replace_layout(good).unwrap();
        assert_eq!(c.store_layout().visit.min_visit_s, 60);
    }

    #[test]
    fn unreadable_file_says_so() {
        let e = Config::load(Path::new("/nonexistent/dwell-edge.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/dwell-edge.toml: cannot read"),
            "{e}"
        );
    }
}
