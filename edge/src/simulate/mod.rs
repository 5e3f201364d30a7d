//! The simulator: shoppers walking through a store's floor plan, heard by its receivers.
//!
//! Used to develop and measure the tracker without a store (`dwell-edge simulate`), and to drive
//! the simulated stores of `dwell-cloud demo`. Deterministic per seed: the same layout, parameters
//! and seed give byte-identical sightings.
//!
//! What it models:
//! - **Shoppers** arrive through the day. Visitors enter through the entrance zone, stop in one to
//!   four other zones (standing anywhere in the zone), walk between them at about 1 m/s and leave
//!   through the entrance; passers-by walk along the shop front, some glancing into the entrance.
//! - **Radio**: each advertisement is heard by every receiver with the log-distance path-loss model
//!   (`measured_power` at 1 m, exponent `path_loss_exponent`) plus Gaussian noise of `noise_db`
//!   (indoor: about 6 dB), with random packet loss and a sensitivity floor.
//! - **Devices**: app users advertise a rotating Eddystone-EID every second (identity keys from the
//!   seed; rotation exponent `eid_exponent`); other phones advertise with a private address that
//!   rotates every 15 minutes; many phones send Wi-Fi probe bursts with a fresh randomized MAC each
//!   burst (heard by the gateway's own receiver only); staff badges (iBeacon) move between zones all
//!   day; trolley tags (Eddystone-UID) stay put.
//!
//! The ground truth — each shopper's device ids over time, visit and zone stays — is written
//! beside the sightings so accuracy can be measured (see [`accuracy`]). A true zone stay is one
//! stop, widened to the person's whole time inside the stop's zone around it (walking in to where
//! they stand and out again); walking through a zone without stopping is no stay. Shoppers enter
//! and leave through the door in the middle of the entrance zone's street side.

pub mod accuracy;
mod walk;

use crate::source::{Observation, Radio, SourceError, parse_mac};
use dwell_shared::eid;
use dwell_shared::frame::{EddystoneEid, EddystoneUid, Frame, IBeacon};
use dwell_shared::hex::{self, MacAddr};
use dwell_shared::wire::StoreConfig;
use dwell_shared::{Uuid, distance};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::sync::Arc;
use walk::{Point, Trajectory};

/// Knobs of a simulation; the defaults describe a typical mid-size store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimParams {
    pub shoppers: u32,
    pub minutes: u32,
    pub seed: u64,
    /// Simulation start, UTC Unix ms.
    pub start_ms: i64,
    /// Standard deviation of RSSI noise, dB.
    pub noise_db: f32,
    pub path_loss_exponent: f32,
    /// RSSI at 1 m of phones and tags, dBm.
    pub measured_power: i8,
    /// Weakest RSSI a receiver reports, dBm.
    pub sensitivity_dbm: f32,
    /// Probability that one receiver misses one advertisement.
    pub packet_loss: f64,
    /// Share of shoppers who pass by without coming in.
    pub passerby_share: f64,
    /// Share of shoppers running the retailer's app (advertising an Eddystone-EID).
    pub app_share: f64,
    /// Share of shoppers whose phone sends Wi-Fi probe requests.
    pub wifi_share: f64,
    pub eid_exponent: u8,
    /// App users' identity keys: 0 = a fresh random key per app user; n > 0 = drawn from a pool of
    /// n keys ([`pool_key`] with `app_key_seed`), so the same shoppers come back and a cloud that
    /// registered the pool resolves them (the `dwell-cloud demo`).
    pub app_key_pool: u32,
    pub app_key_seed: u64,
    pub staff_badges: u32,
    pub trolley_tags: u32,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            shoppers: 100,
            minutes: 60,
            seed: 1,
            start_ms: 1_767_258_000_000, // 2026-01-01T09:00:00Z
            noise_db: 6.0,
            path_loss_exponent: 2.5,
            measured_power: -59,
            sensitivity_dbm: -100.0,
            packet_loss: 0.15,
            passerby_share: 0.3,
            app_share: 0.4,
            wifi_share: 0.6,
            eid_exponent: 10,
            app_key_pool: 0,
            app_key_seed: 0,
            staff_badges: 2,
            trolley_tags: 3,
        }
    }
}

/// Why a layout cannot be simulated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("the layout has no receivers: add [[receivers]] with positions in metres")]
    NoReceivers,
    #[error("the layout has no zones: add [[zones]] with polygons in metres")]
    NoZones,
    #[error("--minutes must be at least 1")]
    NoTime,
    #[error("replaying the simulation failed: {0}")]
    Replay(String),
}

/// One line of the sightings file: the `dwell-edge replay` input format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimSighting {
    pub ts_ms: i64,
    pub receiver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wifi_sa: Option<String>,
    pub rssi: i8,
}

/// Key `i` of the app-key pool `seed` (see [`SimParams::app_key_pool`]): deterministic, so the
/// party that registers the shoppers and the simulator agree without exchanging keys.
pub fn pool_key(seed: u64, i: u32) -> [u8; 16] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b65_795f_706f_6f6c);
    rng.set_stream(u64::from(i));
    rng.random()
}

/// A device id a simulated person used, over the time it used it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpan {
    /// The id the gateway's identify stage gives it (`eid:…`, `ibeacon:…`), or for anonymous
    /// devices the raw address (the gateway hashes it with a salt the simulator cannot know).
    pub id: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// One true zone stay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrueStay {
    pub zone: String,
    pub enter_ms: i64,
    pub exit_ms: i64,
}

/// What really happened to one shopper (or staff member, or tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruePerson {
    pub id: String,
    /// `visitor`, `passerby`, `staff` or `tag`.
    pub role: String,
    /// `app` (EID), `phone` (private BLE address), `badge`, `tag`.
    pub device_kind: String,
    pub devices: Vec<DeviceSpan>,
    /// Visit start and end (inside the store), if they came in at all.
    pub visit: Option<(i64, i64)>,
    pub stays: Vec<TrueStay>,
}

/// Ground truth of a simulation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub params: Option<SimParams>,
    pub people: Vec<TruePerson>,
}

/// A finished simulation: sightings in time order and the truth behind them.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    pub sightings: Vec<SimSighting>,
    pub truth: Truth,
}

impl Simulation {
    /// The sightings as observations, as a JSONL source would read them back.
    pub fn observations(&self) -> impl Iterator<Item = Result<Observation, SourceError>> + '_ {
        let mut receivers: Vec<Arc<str>> = Vec::new();
        self.sightings.iter().enumerate().map(move |(i, s)| {
            let receiver = match receivers.iter().find(|r| ***r == *s.receiver) {
                Some(r) => r.clone(),
                None => {
                    let r: Arc<str> = Arc::from(s.receiver.as_str());
                    receivers.push(r.clone());
                    r
                }
            };
            let bad = |reason: String| SourceError::BadRecord {
                source_name: "simulator",
                record: i as u64 + 1,
                reason,
            };
            let radio = match (&s.addr, &s.wifi_sa) {
                (Some(a), _) => Radio::Ble {
                    addr: parse_mac(a).map_err(bad)?,
                    addr_type: s.addr_type.unwrap_or(1),
                    ad: hex::decode(s.ad.as_deref().unwrap_or(""))
                        .map_err(|e| bad(e.to_string()))?,
                },
                (None, Some(sa)) => Radio::Wifi {
                    sa: parse_mac(sa).map_err(bad)?,
                },
                (None, None) => return Err(bad("no address".into())),
            };
            Ok(Observation {
                ts_ms: s.ts_ms,
                receiver,
                rssi: s.rssi,
                radio,
            })
        })
    }

    /// Writes the sightings as JSON lines.
    pub fn write_sightings(&self, mut out: impl Write) -> io::Result<()> {
        for s in &self.sightings {
            serde_json::to_writer(&mut out, s)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

/// Staff badges advertise this iBeacon UUID (major 1, minor = badge number).
pub const STAFF_BADGE_UUID: Uuid = Uuid::from_bytes([
    0x5a, 0xff, 0xba, 0xd9, 0x35, 0x11, 0x4c, 0x6e, 0x9a, 0x51, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
]);
/// Trolley tags advertise Eddystone-UID in this namespace.
pub const TROLLEY_NAMESPACE: [u8; 10] =
    [0xd0, 0xe1, 0x1a, 0x70, 0x11, 0xe7, 0x00, 0x00, 0x00, 0x01];

const WALK_SPEED_MPS: f64 = 1.0;
const EID_INTERVAL_MS: i64 = 1_000;
const PHONE_INTERVAL_MS: i64 = 2_000;
const BADGE_INTERVAL_MS: i64 = 1_000;
const RPA_ROTATION_MS: i64 = 15 * 60_000;

struct World<'a> {
    layout: &'a StoreConfig,
    p: &'a SimParams,
    rng: ChaCha8Rng,
    out: Vec<SimSighting>,
    entrance: usize,
    /// Bounding box of all zones: the shop floor.
    bbox: (Point, Point),
}

impl World<'_> {
    fn gauss(&mut self) -> f64 {
        // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn random_point_in_zone(&mut self, zone: usize) -> Point {
        let z = &self.layout.zones[zone];
        let (min, max) = walk::bbox(&z.polygon);
        for _ in 0..1000 {
            let p = Point {
                x: self.rng.random_range(min.x..=max.x),
                y: self.rng.random_range(min.y..=max.y),
            };
            if z.contains(p.x, p.y) {
                return p;
            }
        }
        walk::centroid(&z.polygon)
    }

    /// Emits one advertisement at `t` from `pos`, heard by each receiver (or only the first, for
    /// Wi-Fi) with path loss, noise and loss.
    fn emit(&mut self, t: i64, pos: Point, what: &Heard, wifi: bool) {
        let receivers = if wifi { 1 } else { self.layout.receivers.len() };
        for r in 0..receivers {
            if self.rng.random_bool(self.p.packet_loss) {
                continue;
            }
            let rx = &self.layout.receivers[r];
            let d = pos.dist(Point { x: rx.x, y: rx.y }) as f32;
            let mean = distance::rssi_at(d, self.p.measured_power, self.p.path_loss_exponent);
            let rssi = f64::from(mean) + self.gauss() * f64::from(self.p.noise_db);
            if rssi < f64::from(self.p.sensitivity_dbm) {
                continue;
            }
            let rssi = rssi.round().clamp(-127.0, 20.0) as i8;
            let receiver = rx.id.clone();
            self.out.push(match what {
                Heard::Ble { addr, ad } => SimSighting {
                    ts_ms: t,
                    receiver,
                    addr: Some(MacAddr(addr).to_string()),
                    addr_type: Some(1),
                    ad: Some(ad.clone()),
                    wifi_sa: None,
                    rssi,
                },
                Heard::Wifi { sa } => SimSighting {
                    ts_ms: t,
                    receiver,
                    addr: None,
                    addr_type: None,
                    ad: None,
                    wifi_sa: Some(MacAddr(sa).to_string()),
                    rssi,
                },
            });
        }
    }

    fn random_private_addr(&mut self) -> [u8; 6] {
        let mut a: [u8; 6] = self.rng.random();
        a[0] = (a[0] & 0x3f) | 0x40; // resolvable private address: top bits 01
        a
    }

    fn random_wifi_mac(&mut self) -> [u8; 6] {
        let mut a: [u8; 6] = self.rng.random();
        a[0] = (a[0] & 0xfc) | 0x02; // locally administered, unicast
        a
    }
}

enum Heard {
    Ble { addr: [u8; 6], ad: String },
    Wifi { sa: [u8; 6] },
}

fn frame_hex(f: Frame) -> String {
    let mut b = [0u8; 31];
    // Every frame the simulator builds fits a legacy advertisement.
    let n = f.encode(&mut b).expect("simulated frames fit 31 bytes");
    hex::encode(&b[..n])
}

/// The power every simulated advertisement states, so the gateway's path-loss model gets the
/// power the simulated radio really has: iBeacon states it at 1 m as it is.
fn p_measured(p: &SimParams) -> i8 {
    p.measured_power
}

/// Eddystone states its power at 0 m, and the gateway takes 41 dB less as the power at 1 m
/// ([`distance::eddystone_power_at_1m`]): −18 for the default −59 dBm at 1 m.
fn eddystone_tx_power(p: &SimParams) -> i8 {
    p.measured_power.saturating_add(41)
}

/// Beacon time of the simulated apps: seconds since the simulation's day started, like a phone
/// that registered its key at midnight.
/// The app's EID clock: seconds since the simulated day began; pooled keys (shoppers registered
/// with a cloud) count Unix seconds, as the cloud assumes for apps registered with no offset.
fn beacon_time(p: &SimParams, t: i64) -> u32 {
    if p.app_key_pool > 0 {
        return t.div_euclid(1000) as u32;
    }
    ((t - p.start_ms.div_euclid(86_400_000) * 86_400_000) / 1000) as u32
}

/// Runs a simulation over `layout`.
pub fn run(layout: &StoreConfig, p: &SimParams) -> Result<Simulation, SimError> {
    if layout.receivers.is_empty() {
        return Err(SimError::NoReceivers);
    }
    if layout.zones.is_empty() {
        return Err(SimError::NoZones);
    }
    if p.minutes == 0 {
        return Err(SimError::NoTime);
    }
    let entrance = layout
        .entrance
        .as_deref()
        .and_then(|e| layout.zones.iter().position(|z| z.id == e))
        .unwrap_or(0);
    let all: Vec<[f64; 2]> = layout
        .zones
        .iter()
        .flat_map(|z| z.polygon.iter().copied())
        .collect();
    let mut w = World {
        layout,
        p,
        rng: ChaCha8Rng::seed_from_u64(p.seed),
        out: Vec::new(),
        entrance,
        bbox: walk::bbox(&all),
    };
    let end = p.start_ms + i64::from(p.minutes) * 60_000;
    let mut people = Vec::new();

    for i in 0..p.shoppers {
        people.push(shopper(&mut w, i, end));
    }
    for i in 0..p.staff_badges {
        people.push(staff(&mut w, i, end));
    }
    for i in 0..p.trolley_tags {
        people.push(trolley(&mut w, i, end));
    }

    let mut sightings = w.out;
    // Stable sort: simultaneous sightings keep generation order, so output is deterministic.
    sightings.sort_by_key(|s| s.ts_ms);
    Ok(Simulation {
        sightings,
        truth: Truth {
            params: Some(p.clone()),
            people,
        },
    })
}

/// Walks through `via` to a random spot of zone `zone` and stands there for a random time in
/// `stand_ms`: the true stay.
fn step_in(
    w: &mut World<'_>,
    traj: &mut Trajectory,
    via: [Point; 2],
    zone: usize,
    stand_ms: std::ops::Range<i64>,
) -> TrueStay {
    let at = w.random_point_in_zone(zone);
    for p in via {
        traj.walk_to(p, WALK_SPEED_MPS);
    }
    let enter_ms = traj.walk_to(at, WALK_SPEED_MPS);
    let exit_ms = traj.wait(w.rng.random_range(stand_ms));
    TrueStay {
        zone: w.layout.zones[zone].id.clone(),
        enter_ms,
        exit_ms,
    }
}

fn shopper(w: &mut World<'_>, i: u32, end: i64) -> TruePerson {
    let p = w.p;
    let span = (end - p.start_ms).max(1);
    // Arrive in the first 80% of the period so most visits finish inside it.
    let arrive = p.start_ms + w.rng.random_range(0..(span * 4 / 5).max(1));
    let passerby = w.rng.random_bool(p.passerby_share);
    let app = w.rng.random_bool(p.app_share);
    let wifi = w.rng.random_bool(p.wifi_share);
    let ent = w.entrance;

    let mut traj = Trajectory::default();
    let mut stays = Vec::new();
    let mut visit = None;
    let door = walk::centroid(&w.layout.zones[ent].polygon);
    // The shop front runs along the entrance, outside the floor's bounding box.
    let (min, max) = w.bbox;
    let front_y = if door.y - min.y < max.y - door.y {
        min.y - 3.0
    } else {
        max.y + 3.0
    };
    let street_a = Point {
        x: min.x - 15.0,
        y: front_y,
    };
    let street_b = Point {
        x: max.x + 15.0,
        y: front_y,
    };
    // The door: the middle of the entrance zone's street-side edge, and the pavement in front of
    // it. Shoppers go in and out through it rather than cutting across other zones (or through
    // the shop's wall) on a straight line between the street and where they stand.
    let door_y = if front_y < door.y { min.y } else { max.y };
    let door_in = Point {
        x: door.x,
        y: door_y,
    };
    let pavement = Point {
        x: door.x,
        y: front_y,
    };

    if passerby {
        let (from, to) = if w.rng.random_bool(0.5) {
            (street_a, street_b)
        } else {
            (street_b, street_a)
        };
        traj.start(arrive, from);
        if w.rng.random_bool(0.3) {
            // glances into the entrance for a few seconds
            let stay = step_in(w, &mut traj, [pavement, door_in], ent, 3_000..20_000);
            visit = Some((stay.enter_ms, stay.exit_ms));
            stays.push(stay);
            traj.walk_to(door_in, WALK_SPEED_MPS);
            traj.walk_to(pavement, WALK_SPEED_MPS);
        }
        traj.walk_to(to, WALK_SPEED_MPS);
    } else {
        traj.start(arrive, street_a);
        let stay = step_in(w, &mut traj, [pavement, door_in], ent, 5_000..20_000);
        let t_in = stay.enter_ms;
        stays.push(stay);
        let others: Vec<usize> = (0..w.layout.zones.len()).filter(|&z| z != ent).collect();
        let n_stops = if others.is_empty() {
            0
        } else {
            w.rng.random_range(1..=4usize)
        };
        let mut last = usize::MAX;
        for _ in 0..n_stops {
            let mut z = others[w.rng.random_range(0..others.len())];
            if z == last && others.len() > 1 {
                z = others[(others.iter().position(|&o| o == z).unwrap_or(0) + 1) % others.len()];
            }
            last = z;
            let at = w.random_point_in_zone(z);
            let enter = traj.walk_to(at, WALK_SPEED_MPS);
            // Dwell: mostly short, some long (20 s – 10 min, skewed).
            let u: f64 = w.rng.random();
            let dwell = (20_000.0 + u * u * 580_000.0) as i64;
            let exit = traj.wait(dwell);
            stays.push(TrueStay {
                zone: w.layout.zones[z].id.clone(),
                enter_ms: enter,
                exit_ms: exit,
            });
        }
        let at = w.random_point_in_zone(ent);
        let t_back = traj.walk_to(at, WALK_SPEED_MPS);
        let t_leave = traj.wait(w.rng.random_range(3_000..10_000));
        stays.push(TrueStay {
            zone: w.layout.zones[ent].id.clone(),
            enter_ms: t_back,
            exit_ms: t_leave,
        });
        traj.walk_to(door_in, WALK_SPEED_MPS);
        traj.walk_to(pavement, WALK_SPEED_MPS);
        traj.walk_to(street_b, WALK_SPEED_MPS);
        visit = Some((t_in, t_leave));
    }

    extend_stays(w.layout, &traj, &mut stays);
    let (t0, t1) = (traj.start_ms(), traj.end_ms());
    let mut devices = Vec::new();
    if app {
        let key: [u8; 16] = if p.app_key_pool > 0 {
            pool_key(p.app_key_seed, w.rng.random_range(0..p.app_key_pool))
        } else {
            w.rng.random()
        };
        let addr = w.random_private_addr();
        let mut t = t0 + w.rng.random_range(0..EID_INTERVAL_MS);
        while t <= t1 {
            let bt = beacon_time(p, t);
            let e = eid::compute(&key, p.eid_exponent, bt);
            let id = format!("eid:{}", hex::encode(&e));
            match devices.last_mut() {
                Some(DeviceSpan {
                    id: last, to_ms, ..
                }) if *last == id => *to_ms = t,
                _ => devices.push(DeviceSpan {
                    id: id.clone(),
                    from_ms: t,
                    to_ms: t,
                }),
            }
            let ad = frame_hex(Frame::EddystoneEid(EddystoneEid {
                tx_power: eddystone_tx_power(p),
                eid: e,
            }));
            let pos = traj.at(t);
            w.emit(t, pos, &Heard::Ble { addr, ad }, false);
            t += EID_INTERVAL_MS;
        }
    } else {
        // A phone without the app: some continuity advertisement under a rotating private address.
        let mut t = t0 + w.rng.random_range(0..PHONE_INTERVAL_MS);
        let mut addr = w.random_private_addr();
        let mut rotate_at = t0 + w.rng.random_range(0..RPA_ROTATION_MS);
        while t <= t1 {
            if t >= rotate_at {
                addr = w.random_private_addr();
                rotate_at += RPA_ROTATION_MS;
            }
            let id = MacAddr(&addr).to_string();
            match devices.last_mut() {
                Some(DeviceSpan {
                    id: last, to_ms, ..
                }) if *last == id => *to_ms = t,
                _ => devices.push(DeviceSpan {
                    id: id.clone(),
                    from_ms: t,
                    to_ms: t,
                }),
            }
            let pos = traj.at(t);
            // Apple "nearby" style manufacturer data: not a beacon, not the overflow area.
            let ad = "0201061aff4c001005031c1e5e6e".to_string();
            w.emit(t, pos, &Heard::Ble { addr, ad }, false);
            t += PHONE_INTERVAL_MS;
        }
    }
    if wifi {
        let mut t = t0 + w.rng.random_range(0..30_000);
        while t <= t1 {
            let sa = w.random_wifi_mac();
            let pos = traj.at(t);
            for k in 0..w.rng.random_range(1..4i64) {
                w.emit(t + k * 20, pos, &Heard::Wifi { sa }, true);
            }
            t += w.rng.random_range(30_000..60_000);
        }
    }
    TruePerson {
        id: format!("shopper-{i}"),
        role: if visit.is_some_and(|(a, b)| b - a >= i64::from(w.layout.visit.min_visit_s) * 1000) {
            "visitor".into()
        } else {
            "passerby".into()
        },
        device_kind: if app { "app".into() } else { "phone".into() },
        devices,
        visit,
        stays,
    }
}

/// Step of the search for where a stop's time in its zone begins and ends.
const EXTEND_STEP_MS: i64 = 100;

/// Widens each stop to the person's whole time in the stop's zone around it: a stay in a zone
/// starts when they walk into its polygon on the way to where they stand and ends when they walk
/// out of it, which is what a zone stay means on the floor plan (and what a tracker with perfect
/// positions would report). Never past the neighbouring stays, nor the trajectory's ends.
fn extend_stays(layout: &StoreConfig, traj: &Trajectory, stays: &mut [TrueStay]) {
    let (t0, t1) = (traj.start_ms(), traj.end_ms());
    for i in 0..stays.len() {
        let Some(zone) = layout.zones.iter().find(|z| z.id == stays[i].zone) else {
            continue;
        };
        let inside = |t: i64| {
            let p = traj.at(t);
            zone.contains(p.x, p.y)
        };
        let lo = if i == 0 { t0 } else { stays[i - 1].exit_ms };
        let hi = stays.get(i + 1).map_or(t1, |n| n.enter_ms);
        let s = &mut stays[i];
        while s.enter_ms - EXTEND_STEP_MS >= lo && inside(s.enter_ms - EXTEND_STEP_MS) {
            s.enter_ms -= EXTEND_STEP_MS;
        }
        while s.exit_ms + EXTEND_STEP_MS <= hi && inside(s.exit_ms + EXTEND_STEP_MS) {
            s.exit_ms += EXTEND_STEP_MS;
        }
    }
}

fn staff(w: &mut World<'_>, i: u32, end: i64) -> TruePerson {
    let mut traj = Trajectory::default();
    let mut stays = Vec::new();
    let zones = w.layout.zones.len();
    let z0 = w.rng.random_range(0..zones);
    let start = w.random_point_in_zone(z0);
    traj.start(w.p.start_ms, start);
    let mut z = z0;
    let mut enter = w.p.start_ms;
    loop {
        let exit = traj.wait(w.rng.random_range(120_000..900_000));
        stays.push(TrueStay {
            zone: w.layout.zones[z].id.clone(),
            enter_ms: enter,
            exit_ms: exit.min(end),
        });
        if exit >= end {
            break;
        }
        z = w.rng.random_range(0..zones);
        let at = w.random_point_in_zone(z);
        enter = traj.walk_to(at, WALK_SPEED_MPS);
    }
    extend_stays(w.layout, &traj, &mut stays);
    if let Some(last) = stays.last_mut() {
        last.exit_ms = last.exit_ms.min(end);
    }
    let minor = i as u16;
    let id = format!("ibeacon:{}:1:{minor}", STAFF_BADGE_UUID);
    let ad = frame_hex(Frame::IBeacon(IBeacon {
        uuid: STAFF_BADGE_UUID,
        major: 1,
        minor,
        tx_power: p_measured(w.p),
    }));
    let addr = w.random_private_addr();
    let mut t = w.p.start_ms + w.rng.random_range(0..BADGE_INTERVAL_MS);
    while t < end {
        let pos = traj.at(t);
        w.emit(
            t,
            pos,
            &Heard::Ble {
                addr,
                ad: ad.clone(),
            },
            false,
        );
        t += BADGE_INTERVAL_MS;
    }
    TruePerson {
        id: format!("staff-{i}"),
        role: "staff".into(),
        device_kind: "badge".into(),
        devices: vec![DeviceSpan {
            id,
            from_ms: w.p.start_ms,
            to_ms: end,
        }],
        visit: Some((w.p.start_ms, end)),
        stays,
    }
}

fn trolley(w: &mut World<'_>, i: u32, end: i64) -> TruePerson {
    let z = w.entrance;
    let pos = w.random_point_in_zone(z);
    let mut instance = [0u8; 6];
    instance[2..].copy_from_slice(&i.to_be_bytes());
    let id = format!(
        "eddystone:{}:{}",
        hex::encode(&TROLLEY_NAMESPACE),
        hex::encode(&instance)
    );
    let ad = frame_hex(Frame::EddystoneUid(EddystoneUid {
        tx_power: eddystone_tx_power(w.p),
        namespace: TROLLEY_NAMESPACE,
        instance,
    }));
    let addr = w.random_private_addr();
    let mut t = w.p.start_ms + w.rng.random_range(0..5_000);
    while t < end {
        w.emit(
            t,
            pos,
            &Heard::Ble {
                addr,
                ad: ad.clone(),
            },
            false,
        );
        t += 5_000;
    }
    TruePerson {
        id: format!("tag-{i}"),
        role: "tag".into(),
        device_kind: "tag".into(),
        devices: vec![DeviceSpan {
            id,
            from_ms: w.p.start_ms,
            to_ms: end,
        }],
        visit: Some((w.p.start_ms, end)),
        stays: vec![TrueStay {
            zone: w.layout.zones[z].id.clone(),
            enter_ms: w.p.start_ms,
            exit_ms: end,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::wire::{Receiver, Zone};

    pub(crate) fn layout() -> StoreConfig {
        let zone = |id: &str, x0: f64, y0: f64, x1: f64, y1: f64| Zone {
            id: id.into(),
            name: id.into(),
            polygon: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
        };
        let rx = |id: &str, x: f64, y: f64| Receiver {
            id: id.into(),
            x,
            y,
        };
        serde_json::from_value::<StoreConfig>(serde_json::json!({
            "v": 1, "store": "store-001", "timezone": "Europe/Paris"
        }))
        .map(|mut c| {
            c.zones = vec![
                zone("entrance", 0.0, 0.0, 6.0, 4.0),
                zone("cosmetics", 0.0, 4.0, 6.0, 12.0),
                zone("snacks", 6.0, 0.0, 14.0, 6.0),
                zone("drinks", 6.0, 6.0, 14.0, 12.0),
            ];
            c.receivers = vec![
                rx("gw-1", 3.0, 2.0),
                rx("n-1", 3.0, 8.0),
                rx("n-2", 10.0, 3.0),
                rx("n-3", 10.0, 9.0),
            ];
            c.entrance = Some("entrance".into());
            c
        })
        .unwrap()
    }

    #[test]
    fn same_seed_same_sightings_other_seed_others() {
        let p = SimParams {
            shoppers: 5,
            minutes: 10,
            ..SimParams::default()
        };
        let a = run(&layout(), &p).unwrap();
        let b = run(&layout(), &p).unwrap();
        assert_eq!(a, b);
        let c = run(&layout(), &SimParams { seed: 2, ..p }).unwrap();
        assert_ne!(a.sightings, c.sightings);
    }

    #[test]
    fn sightings_are_time_ordered_and_replayable() {
        let p = SimParams {
            shoppers: 10,
            minutes: 15,
            ..SimParams::default()
        };
        let sim = run(&layout(), &p).unwrap();
        assert!(sim.sightings.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        let mut buf = Vec::new();
        sim.write_sightings(&mut buf).unwrap();
        let parsed: Vec<_> = crate::source::jsonl::JsonlSource::new(buf.as_slice()).collect();
        assert_eq!(parsed.len(), sim.sightings.len());
        assert!(parsed.iter().all(Result::is_ok));
    }

    #[test]
    fn truth_stays_lie_in_their_zones_and_in_order() {
        let p = SimParams {
            shoppers: 20,
            minutes: 30,
            passerby_share: 0.0,
            ..SimParams::default()
        };
        let sim = run(&layout(), &p).unwrap();
        for person in sim.truth.people.iter().filter(|p| p.role == "visitor") {
            assert_eq!(person.stays.first().unwrap().zone, "entrance");
            assert_eq!(person.stays.last().unwrap().zone, "entrance");
            assert!(
                person
                    .stays
                    .windows(2)
                    .all(|w| w[0].exit_ms <= w[1].enter_ms)
            );
            let (a, b) = person.visit.unwrap();
            assert!(
                b - a >= 120_000,
                "a visitor's visit lasts at least min_visit_s"
            );
        }
    }

    #[test]
    fn eid_devices_rotate_with_the_exponent() {
        let p = SimParams {
            shoppers: 30,
            minutes: 60,
            app_share: 1.0,
            passerby_share: 0.0,
            eid_exponent: 8,
            ..SimParams::default()
        };
        let sim = run(&layout(), &p).unwrap();
        let long = sim
            .truth
            .people
            .iter()
            .find(|p| p.visit.is_some_and(|(a, b)| b - a > 600_000))
            .unwrap();
        assert!(
            long.devices.len() >= 2,
            "a 10-minute visit spans several 256 s EID windows"
        );
        assert!(long.devices.iter().all(|d| d.id.starts_with("eid:")));
    }

    #[test]
    fn empty_layout_is_a_clear_error() {
        let mut l = layout();
        l.receivers.clear();
        assert_eq!(
            run(&l, &SimParams::default()).unwrap_err(),
            SimError::NoReceivers
        );
    }
}
