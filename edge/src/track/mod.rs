//! The tracker stage: identified sightings in, visits, zone stays, dwell milestones, paths and
//! periodic counts out — PRODUCT.md's "Visit semantics" applied on the gateway.
//!
//! A synchronous state machine with no clock of its own: every input carries its time
//! ([`Sighting::ts_ms`], [`Tracker::tick`]'s `now_ms`), and every event is stamped with the exact
//! moment it happened (a milestone at `enter + 30 s`, a visit end at `last inside + session
//! timeout`), however coarsely the tracker is ticked. Replay drives it with the records' times,
//! the live gateway with one clock, tests with literals — and all three get the same events.
//!
//! # Semantics
//! - **Smoothing** (`track/smooth.rs`): per (device, receiver), a median of the last three
//!   readings and a time-constant EWMA (`[tracking] smoothing`, `smoothing_s`). A receiver's
//!   reading counts for `reading_ttl_s` after it last heard the device.
//! - **Inside / outside / unseen**: at each sighting, the strongest fresh smoothed RSSI over the
//!   store's receivers, through [`VisitDefinitions::rssi_band`].
//! - **Visit**: starts at the first sighting that is inside (`visit_start`, with the zone the
//!   device is placed in then, if any); ends `session_timeout_s` after the last sighting that was
//!   inside (`visit_end` stamped then), with `end_ms` = that last inside sighting, classified by
//!   `end_ms − start_ms` through [`VisitDefinitions::classify`], and the path.
//! - **Zone**, only while the device is inside (a device outside the store is in no zone): with
//!   `positioning = "zone"` (the default), the zone filter's decision (`track/bayes.rs`: a Bayes
//!   filter over points of the zones and of rings outside the floor (outside is no zone), fed
//!   every raw reading from the device's first moment inside to the end of its visit, deciding
//!   once the device stands still and dating the placement back to when it walked in,
//!   [`ZoneMachine`]'s `place_since`); otherwise a position
//!   (`track/position.rs`) from every receiver hearing the device at or above the passer-by floor,
//!   and the first zone in layout order whose polygon contains it ([`Zone::contains`]).
//! - **Zone stays** (`track/zone.rs`): hysteresis, milestones and exits as documented there.
//!   Placements only come from sightings, so a stay's dwell never runs past the device's last sighting: when a
//!   device goes quiet, from its last sighting on it counts as placed in no zone (detected once its
//!   readings expire), and its stay ends by the exit rule.
//! - **Path**: the visit's zone stays in order (zone, enter, exit); at most [`MAX_PATH_STAYS`], the
//!   rest counted in [`TrackStats::path_stays_dropped`] (their zone events are still sent).
//! - **Presence and traffic** ([`Tracker::tick`]): every `presence_interval_s`, at whole multiples
//!   of it in tracker time, `presence` with the devices in a confirmed stay per zone (every zone,
//!   zeros included) as of that tick, and `traffic` with the distinct randomized-address devices
//!   sighted in the window just ended.
//! - **Memory**: a device is forgotten once it has no open visit and has not been sighted for
//!   `session_timeout_s`; past `max_devices` the least recently seen (CLOCK, see
//!   `track/table.rs`) is evicted — its open visit is ended then, not lost — and counted.
//! - **Time going backwards**: a device's sighting older than its previous one is taken as
//!   happening at the previous one's time (and counted as late); the state machines never rewind.
//! - **Strict privacy** ([`TrackOptions::counts_only`]): only `presence` and `traffic` are emitted.

mod bayes;
mod position;
mod smooth;
mod table;
mod zone;

#[cfg(test)]
mod tests;

pub use position::Positioning;
pub use smooth::Smoothing;

use bayes::{ZoneFilter, ZoneModel};
use dwell_shared::definitions::{RssiBand, VisitDefinitions};
use dwell_shared::hci;
use dwell_shared::wire::{DeviceRef, DeviceTier, Event, EventKind, PathStay, StoreConfig, Zone};
use position::{Heard, PathLoss};
use serde::{Deserialize, Serialize};
use smooth::Reading;
use std::collections::{BTreeMap, HashMap};
use table::DeviceTable;
use zone::{Rules, ZoneChange, ZoneMachine};

/// Most zone stays kept in one visit's path. Six hours of a zone change a minute is 360; a path
/// longer than this is a device parked between two zones, and the cap keeps its memory bounded.
pub const MAX_PATH_STAYS: usize = 256;

/// The tracker's own knobs (`[tracking]` in the config file); the visit thresholds come with the
/// layout ([`StoreConfig::visit`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackOptions {
    pub positioning: Positioning,
    pub smoothing: Smoothing,
    /// EWMA time constant, seconds (0: no averaging).
    pub smoothing_s: f32,
    /// A receiver's reading counts this long after its last sighting.
    pub reading_ttl_s: u32,
    /// Log-distance path-loss exponent.
    pub path_loss_exponent: f32,
    /// RSSI at 1 m for devices whose advertisements don't state it.
    pub measured_power_dbm: i8,
    /// Most devices tracked at once.
    pub max_devices: u32,
    /// Period of `presence` and `traffic`, seconds.
    pub presence_interval_s: u32,
    /// Emit counts only (`[privacy] salt_rotation = "strict"`); not a `[tracking]` key.
    #[serde(skip)]
    pub counts_only: bool,
}

impl TrackOptions {
    pub const DEFAULT: TrackOptions = TrackOptions {
        positioning: Positioning::Zone,
        smoothing: Smoothing::MedianEwma,
        smoothing_s: 2.0,
        reading_ttl_s: 15,
        path_loss_exponent: 2.5,
        measured_power_dbm: -59,
        max_devices: 50_000,
        presence_interval_s: 60,
        counts_only: false,
    };

    /// Checks the values; the error names the key (under `[tracking]`) and the fix.
    pub fn validate(&self) -> Result<(), OptionError> {
        let err = |key, problem: String, fix| Err(OptionError { key, problem, fix });
        if !(self.smoothing_s.is_finite() && (0.0..=60.0).contains(&self.smoothing_s)) {
            return err(
                "smoothing_s",
                format!("{} is not between 0 and 60 seconds", self.smoothing_s),
                "2.0 suits phones; 0 turns averaging off",
            );
        }
        if self.reading_ttl_s == 0 {
            return err(
                "reading_ttl_s",
                "must be at least 1 second".into(),
                "15 suits BLE phones",
            );
        }
        if !(self.path_loss_exponent.is_finite() && (1.0..=6.0).contains(&self.path_loss_exponent))
        {
            return err(
                "path_loss_exponent",
                format!("{} is not between 1 and 6", self.path_loss_exponent),
                "use 2 for open space, 2.5-4 indoors",
            );
        }
        if !(-100..=0).contains(&self.measured_power_dbm) {
            return err(
                "measured_power_dbm",
                format!(
                    "{} dBm is not a plausible RSSI at 1 m",
                    self.measured_power_dbm
                ),
                "phones are around -59; measure one at 1 m from a receiver",
            );
        }
        if self.max_devices == 0 || self.max_devices > 10_000_000 {
            return err(
                "max_devices",
                format!("{} is not between 1 and 10000000", self.max_devices),
                "50000 covers a busy store with room to spare",
            );
        }
        if self.presence_interval_s == 0 {
            return err(
                "presence_interval_s",
                "must be at least 1 second".into(),
                "60 is the usual reporting period",
            );
        }
        Ok(())
    }
}

impl Default for TrackOptions {
    fn default() -> Self {
        TrackOptions::DEFAULT
    }
}

/// A bad `[tracking]` value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}; {fix}")]
pub struct OptionError {
    pub key: &'static str,
    pub problem: String,
    pub fix: &'static str,
}

/// An identified device: the id the identify stage produced and what it knows about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceKey<'a> {
    /// `eid:…`, `ibeacon:…`, `h:…` (salted hash).
    pub id: &'a str,
    pub tier: DeviceTier,
    /// A randomized (locally administered) address: counted in `traffic`.
    pub randomized: bool,
}

/// One device heard by one receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting<'a> {
    /// Unix milliseconds UTC: the record's time in replay, the clock's in live.
    pub ts_ms: i64,
    /// The receiver's id in the layout.
    pub receiver: &'a str,
    pub device: DeviceKey<'a>,
    /// dBm; 127 ("not available") is counted and dropped.
    pub rssi: i8,
    /// The RSSI at 1 m the advertisement states (iBeacon/AltBeacon measured power, Eddystone's
    /// 0 m power − 41), if any; otherwise `[tracking] measured_power_dbm` is assumed.
    pub power_1m: Option<i8>,
}

/// An event the tracker concluded, before the outbox gives it a sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackEvent {
    pub ts_ms: i64,
    pub kind: EventKind,
}

impl TrackEvent {
    pub fn into_event(self, seq: u64) -> Event {
        Event {
            seq,
            ts_ms: self.ts_ms,
            kind: self.kind,
        }
    }
}

/// What the tracker counted rather than emitted. Never silent: each of these is a metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackStats {
    pub sightings: u64,
    /// Sightings from a receiver the layout doesn't list (dropped).
    pub unknown_receiver: u64,
    /// Sightings with RSSI 127, "not available" (dropped).
    pub no_rssi: u64,
    /// Sightings older than the device's previous one (taken at the previous one's time).
    pub late: u64,
    /// Devices forgotten after their visit ended or unseen for the session timeout.
    pub evicted_idle: u64,
    /// Devices evicted because `max_devices` was reached.
    pub evicted_cap: u64,
    /// Of those, how many had an open visit (ended at eviction).
    pub visits_ended_by_eviction: u64,
    /// Zone stays not added to a path past [`MAX_PATH_STAYS`].
    pub path_stays_dropped: u64,
}

#[derive(Clone, Debug)]
struct ReceiverAt {
    x: f64,
    y: f64,
}

#[derive(Clone, Debug)]
struct ZoneShape {
    zone: Zone,
    /// min x, min y, max x, max y: a cheap rejection before the polygon test.
    bbox: [f64; 4],
}

impl ZoneShape {
    fn new(zone: &Zone) -> ZoneShape {
        let mut bbox = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for &[x, y] in &zone.polygon {
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x),
                bbox[3].max(y),
            ];
        }
        ZoneShape {
            zone: zone.clone(),
            bbox,
        }
    }

    fn contains(&self, [x, y]: [f64; 2]) -> bool {
        let [x0, y0, x1, y1] = self.bbox;
        (x0..=x1).contains(&x) && (y0..=y1).contains(&y) && self.zone.contains(x, y)
    }
}

/// One tracked device.
#[derive(Debug)]
pub(crate) struct Device {
    key: DeviceRef,
    power_1m: Option<i8>,
    readings: Vec<Reading>,
    last_seen_ms: i64,
    /// The traffic window this device was last counted in.
    traffic_window: i64,
    visit: Option<Visit>,
    zones: ZoneMachine,
    /// `positioning = "zone"`: the device's zone filter (empty until it is first inside).
    filter: ZoneFilter,
    /// CLOCK's second-chance bit ([`table`]).
    referenced: bool,
}

#[derive(Debug)]
struct Visit {
    start_ms: i64,
    last_inside_ms: i64,
    path: Vec<PathStay>,
}

/// The tracker: see the module docs for what it does with what.
#[derive(Debug)]
pub struct Tracker {
    table: DeviceTable,
    core: Core,
}

/// Everything but the device table, so a device can be borrowed from the table while the rest
/// is borrowed mutably.
#[derive(Debug)]
struct Core {
    defs: VisitDefinitions,
    rules: Rules,
    opts: TrackOptions,
    receivers: Vec<ReceiverAt>,
    receiver_index: HashMap<String, u16>,
    zones: Vec<ZoneShape>,
    /// The zone filter's precomputed layout (`positioning = "zone"` only).
    zone_model: ZoneModel,
    now_ms: Option<i64>,
    next_presence_ms: Option<i64>,
    /// Randomized devices per traffic window (window = ts / presence interval).
    traffic: BTreeMap<i64, u32>,
    stats: TrackStats,
    /// Scratch buffers, kept to avoid an allocation per sighting.
    heard: Vec<Heard>,
    changes: Vec<ZoneChange>,
}

impl Tracker {
    /// A tracker for a validated layout ([`StoreConfig::validate`]; the visit thresholds are
    /// `layout.visit`) and validated options.
    pub fn new(layout: &StoreConfig, opts: TrackOptions) -> Tracker {
        let mut core = Core {
            defs: layout.visit,
            rules: rules(&layout.visit),
            opts,
            receivers: Vec::new(),
            receiver_index: HashMap::new(),
            zones: Vec::new(),
            zone_model: ZoneModel::default(),
            now_ms: None,
            next_presence_ms: None,
            traffic: BTreeMap::new(),
            stats: TrackStats::default(),
            heard: Vec::new(),
            changes: Vec::new(),
        };
        core.set_receivers(layout);
        core.zones = layout.zones.iter().map(ZoneShape::new).collect();
        core.build_zone_model(layout);
        Tracker {
            table: DeviceTable::new(opts.max_devices as usize),
            core,
        }
    }

    /// Takes in one sighting; events it concludes (for this device) are appended to `out`.
    pub fn observe(&mut self, s: &Sighting<'_>, out: &mut Vec<TrackEvent>) {
        let core = &mut self.core;
        core.stats.sightings += 1;
        if s.rssi == hci::NOT_AVAILABLE {
            core.stats.no_rssi += 1;
            return;
        }
        let Some(&receiver) = core.receiver_index.get(s.receiver) else {
            core.stats.unknown_receiver += 1;
            return;
        };
        core.clock(s.ts_ms);
        let slot = match self.table.find(s.device.id) {
            Some(slot) => slot,
            None => {
                let (slot, evicted) = self.table.insert(Device::new(&s.device, s.ts_ms));
                if let Some(mut victim) = evicted {
                    core.stats.evicted_cap += 1;
                    core.evict(&mut victim, s.ts_ms, out);
                }
                slot
            }
        };
        if let Some(device) = self.table.get_mut(slot) {
            core.sighting(device, s, receiver, out);
        }
    }

    /// Advances to `now_ms`: ends visits whose session timed out, confirms pending zone exits,
    /// forgets idle devices, and emits `presence`/`traffic` when a period boundary has passed.
    /// Cheap when nothing is due except for a sweep over the devices; call it about once a second
    /// (live: from the clock; replay: whenever the records' time passes a whole second). Events are
    /// appended to `out` in time order.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<TrackEvent>) {
        let core = &mut self.core;
        let now = core.clock(now_ms);
        let start = out.len();
        let timeout = core.rules_timeout_ms();
        for slot in 0..self.table.slot_count() {
            let Some(device) = self.table.get_mut(slot) else {
                continue;
            };
            core.catch_up(device, now, out);
            if device.visit.is_none() && now - device.last_seen_ms >= timeout {
                self.table.remove(slot);
                core.stats.evicted_idle += 1;
            }
        }
        core.presence(now, &self.table, out);
        out[start..].sort_by_key(|e| e.ts_ms);
    }

    /// End of input (a replay's last record): ticks far enough ahead that every open visit ends
    /// as it would with no further sightings.
    pub fn finish(&mut self, out: &mut Vec<TrackEvent>) {
        if let Some(now) = self.core.now_ms {
            let ttl = i64::from(self.core.opts.reading_ttl_s) * 1000;
            let exit = self.core.rules.exit_ms;
            self.tick(now + self.core.rules_timeout_ms() + ttl + exit, out);
        }
    }

    /// Replaces the layout and visit thresholds at run time (the retained config topic), keeping
    /// visits and stays: readings are kept for receivers whose id remains, stays for zones whose
    /// id remains (renumbered); a stay in a removed zone ends at `now_ms`. The caller validates
    /// the new layout first, and keeps the old one if it fails.
    pub fn replace_layout(&mut self, layout: &StoreConfig, now_ms: i64, out: &mut Vec<TrackEvent>) {
        let core = &mut self.core;
        let now = core.clock(now_ms);
        let old_receivers: Vec<(String, u16)> = core.receiver_index.drain().collect();
        core.set_receivers(layout);
        let mut receiver_map = vec![None; core.receivers.len().max(old_receivers.len())];
        for (id, old) in old_receivers {
            if let (Some(slot), Some(&new)) = (
                receiver_map.get_mut(old as usize),
                core.receiver_index.get(&id),
            ) {
                *slot = Some(new);
            }
        }
        let zone_map: Vec<Option<u32>> = core
            .zones
            .iter()
            .map(|z| {
                layout
                    .zones
                    .iter()
                    .position(|n| n.id == z.zone.id)
                    .map(|i| i as u32)
            })
            .collect();
        for device in self.table.devices_mut() {
            device.readings.retain_mut(|r| {
                match receiver_map.get(r.receiver as usize).copied().flatten() {
                    Some(new) => {
                        r.receiver = new;
                        true
                    }
                    None => false,
                }
            });
            device.zones.remap(&zone_map, now, &mut core.changes);
            // The zone filter starts afresh on the new zones.
            device.filter.reset(&zone_map);
            // Removed zones are named from the old layout, so flush before replacing it.
            core.flush(device, out);
        }
        core.zones = layout.zones.iter().map(ZoneShape::new).collect();
        core.build_zone_model(layout);
        core.defs = layout.visit;
        core.rules = rules(&layout.visit);
    }

    /// Devices tracked now.
    pub fn devices(&self) -> usize {
        self.table.len()
    }

    pub fn stats(&self) -> TrackStats {
        self.core.stats
    }

    /// The latest time the tracker has seen (sighting or tick).
    pub fn now_ms(&self) -> Option<i64> {
        self.core.now_ms
    }

    pub fn definitions(&self) -> &VisitDefinitions {
        &self.core.defs
    }

    pub fn options(&self) -> &TrackOptions {
        &self.core.opts
    }
}

fn rules(defs: &VisitDefinitions) -> Rules {
    Rules {
        enter_ms: i64::from(defs.zone_enter_s) * 1000,
        exit_ms: i64::from(defs.zone_exit_s) * 1000,
        milestones: defs.milestones_s,
    }
}

impl Device {
    fn new(key: &DeviceKey<'_>, ts_ms: i64) -> Device {
        Device {
            key: DeviceRef {
                device: key.id.to_owned(),
                tier: Some(key.tier),
                randomized: Some(key.randomized),
            },
            power_1m: None,
            readings: Vec::new(),
            last_seen_ms: ts_ms,
            traffic_window: i64::MIN,
            visit: None,
            zones: ZoneMachine::default(),
            filter: ZoneFilter::default(),
            referenced: true,
        }
    }
}

impl Core {
    fn set_receivers(&mut self, layout: &StoreConfig) {
        self.receivers.clear();
        self.receiver_index.clear();
        // Receiver indexes are u16 in every reading (memory per device); a store has tens.
        for r in layout.receivers.iter().take(usize::from(u16::MAX)) {
            self.receiver_index
                .insert(r.id.clone(), self.receivers.len() as u16);
            self.receivers.push(ReceiverAt { x: r.x, y: r.y });
        }
    }

    fn build_zone_model(&mut self, layout: &StoreConfig) {
        self.zone_model = if self.opts.positioning == Positioning::Zone {
            let receivers: Vec<[f64; 2]> = self.receivers.iter().map(|r| [r.x, r.y]).collect();
            ZoneModel::new(&receivers, &layout.zones, self.opts.path_loss_exponent)
        } else {
            ZoneModel::default()
        };
    }

    fn rules_timeout_ms(&self) -> i64 {
        i64::from(self.defs.session_timeout_s) * 1000
    }

    fn ttl_ms(&self) -> i64 {
        i64::from(self.opts.reading_ttl_s) * 1000
    }

    fn interval_ms(&self) -> i64 {
        i64::from(self.opts.presence_interval_s.max(1)) * 1000
    }

    /// Moves the tracker's clock forward (never back) and returns it.
    fn clock(&mut self, t: i64) -> i64 {
        let now = self.now_ms.map_or(t, |n| n.max(t));
        self.now_ms = Some(now);
        if self.next_presence_ms.is_none() {
            let iv = self.interval_ms();
            self.next_presence_ms = Some((now.div_euclid(iv) + 1) * iv);
        }
        now
    }

    fn sighting(
        &mut self,
        device: &mut Device,
        s: &Sighting<'_>,
        receiver: u16,
        out: &mut Vec<TrackEvent>,
    ) {
        let mut ts = s.ts_ms;
        if ts < device.last_seen_ms {
            ts = device.last_seen_ms;
            self.stats.late += 1;
        }
        device.referenced = true;
        // Conclude what silence since the last sighting implies (timeouts, exits) first.
        self.catch_up(device, ts, out);

        let ttl = self.ttl_ms();
        device.readings.retain(|r| ts - r.last_ms < ttl);
        let tau_ms = self.opts.smoothing_s * 1000.0;
        match device.readings.iter_mut().find(|r| r.receiver == receiver) {
            Some(r) => r.update(s.rssi, ts, self.opts.smoothing, tau_ms),
            None => device.readings.push(Reading::new(receiver, s.rssi, ts)),
        }
        if s.power_1m.is_some() {
            device.power_1m = s.power_1m;
        }
        device.last_seen_ms = ts;
        if s.device.randomized {
            let window = ts.div_euclid(self.interval_ms());
            if device.traffic_window != window {
                device.traffic_window = window;
                *self.traffic.entry(window).or_default() += 1;
            }
        }

        let strongest = device
            .readings
            .iter()
            .map(|r| r.smoothed)
            .fold(f32::NAN, f32::max);
        let inside = self.defs.rssi_band(strongest) == RssiBand::Inside;
        if self.opts.positioning == Positioning::Zone && (inside || device.visit.is_some()) {
            // Every reading is evidence for the zone filter, from the device's first moment
            // inside to the end of its visit.
            let power = f32::from(device.power_1m.unwrap_or(self.opts.measured_power_dbm));
            self.zone_model
                .observe(&mut device.filter, receiver, f32::from(s.rssi), power, ts);
        }
        if inside {
            let zone = self.locate(device);
            let visit = device.visit.get_or_insert_with(|| {
                if !self.opts.counts_only {
                    out.push(TrackEvent {
                        ts_ms: ts,
                        kind: EventKind::VisitStart {
                            device: device.key.clone(),
                            zone: zone.map(|z| self.zones[z as usize].zone.id.clone()),
                        },
                    });
                }
                Visit {
                    start_ms: ts,
                    last_inside_ms: ts,
                    path: Vec::new(),
                }
            });
            visit.last_inside_ms = ts;
            if self.opts.positioning == Positioning::Zone {
                // The filter decides once the device stands still, and knows when it came in.
                let since = device.filter.since_ms();
                device
                    .zones
                    .place_since(ts, zone, since, &self.rules, &mut self.changes);
            } else {
                device.zones.place(ts, zone, &self.rules, &mut self.changes);
            }
        } else if device.visit.is_some() {
            device.zones.place(ts, None, &self.rules, &mut self.changes);
        }
        self.flush(device, out);
    }

    /// The zone the device's current readings place it in.
    fn locate(&mut self, device: &Device) -> Option<u32> {
        if self.opts.positioning == Positioning::Zone {
            return device.filter.decided();
        }
        let floor = f32::from(self.defs.passerby_rssi_dbm);
        self.heard.clear();
        self.heard.extend(
            device
                .readings
                .iter()
                .filter(|r| r.smoothed >= floor)
                .filter_map(|r| {
                    let at = self.receivers.get(usize::from(r.receiver))?;
                    Some(Heard {
                        x: at.x,
                        y: at.y,
                        rssi: r.smoothed,
                    })
                }),
        );
        let model = PathLoss {
            power_1m: device.power_1m.unwrap_or(self.opts.measured_power_dbm),
            exponent: self.opts.path_loss_exponent,
        };
        let at = position::estimate(self.opts.positioning, &self.heard, model)?;
        self.zones
            .iter()
            .position(|z| z.contains(at))
            .map(|i| i as u32)
    }

    /// Concludes, for one device, what its silence up to `t` implies: expired readings (placed in
    /// no zone from its last sighting on), zone exits, and the end of its visit.
    fn catch_up(&mut self, device: &mut Device, t: i64, out: &mut Vec<TrackEvent>) {
        let Some(visit) = &device.visit else {
            return;
        };
        let end = visit.last_inside_ms + self.rules_timeout_ms();
        if device.zones.placed().is_some() && t >= device.last_seen_ms + self.ttl_ms() {
            device
                .zones
                .place(device.last_seen_ms, None, &self.rules, &mut self.changes);
        }
        if t >= end {
            self.end_visit(device, end, out);
        } else if device.zones.placed().is_none() {
            // Only "no zone" runs on without sightings; a placement in a zone is only extended
            // by the next sighting (see the module docs).
            device.zones.advance(t, &self.rules, &mut self.changes);
            self.flush(device, out);
        }
    }

    /// Ends the device's visit at `at`: pending zone exits, then any open stay, then `visit_end`.
    fn end_visit(&mut self, device: &mut Device, at: i64, out: &mut Vec<TrackEvent>) {
        if device.zones.placed().is_none() {
            device.zones.advance(at, &self.rules, &mut self.changes);
        }
        device
            .zones
            .close(at, device.last_seen_ms, &self.rules, &mut self.changes);
        self.flush(device, out);
        // The zone filter's memory goes with the visit; a next visit starts afresh.
        device.filter = ZoneFilter::default();
        let Some(visit) = device.visit.take() else {
            return;
        };
        let duration_s = u64::try_from(visit.last_inside_ms - visit.start_ms).unwrap_or(0) / 1000;
        if !self.opts.counts_only {
            out.push(TrackEvent {
                ts_ms: at,
                kind: EventKind::VisitEnd {
                    device: device.key.clone(),
                    class: self.defs.classify(duration_s),
                    start_ms: visit.start_ms,
                    end_ms: visit.last_inside_ms,
                    path: visit.path,
                },
            });
        }
    }

    /// A device pushed out by the cap: its open visit ends now rather than vanishing.
    fn evict(&mut self, device: &mut Device, now: i64, out: &mut Vec<TrackEvent>) {
        if device.visit.is_some() {
            self.stats.visits_ended_by_eviction += 1;
            self.end_visit(device, now.max(device.last_seen_ms), out);
        }
    }

    /// Turns the zone machine's conclusions into events and path stays.
    fn flush(&mut self, device: &mut Device, out: &mut Vec<TrackEvent>) {
        for change in self.changes.drain(..) {
            let name = |zone: u32| {
                self.zones
                    .get(zone as usize)
                    .map_or_else(String::new, |z| z.zone.id.clone())
            };
            let (ts_ms, kind) = match change {
                ZoneChange::Enter { zone, ts } => (
                    ts,
                    EventKind::ZoneEnter {
                        device: device.key.clone(),
                        zone: name(zone),
                    },
                ),
                ZoneChange::Dwell { zone, dwell_s, ts } => (
                    ts,
                    EventKind::ZoneDwell {
                        device: device.key.clone(),
                        zone: name(zone),
                        dwell_s,
                    },
                ),
                ZoneChange::Exit {
                    zone,
                    enter_ms,
                    exit_ms,
                    ts,
                } => {
                    // A stay the zone filter took back whole (it dated the next zone to
                    // before this one began: the decision was a fluke) ends where it began; its
                    // zone_exit closes the zone_enter already announced, but it is no stay of
                    // the path.
                    if let Some(visit) = device.visit.as_mut().filter(|_| exit_ms > enter_ms) {
                        if visit.path.len() < MAX_PATH_STAYS {
                            visit.path.push(PathStay {
                                zone: name(zone),
                                enter_ms,
                                exit_ms,
                            });
                        } else {
                            self.stats.path_stays_dropped += 1;
                        }
                    }
                    let dwell_s = u32::try_from((exit_ms - enter_ms) / 1000).unwrap_or(u32::MAX);
                    (
                        ts,
                        EventKind::ZoneExit {
                            device: device.key.clone(),
                            zone: name(zone),
                            dwell_s,
                        },
                    )
                }
            };
            if !self.opts.counts_only {
                out.push(TrackEvent { ts_ms, kind });
            }
        }
    }

    /// `presence` and `traffic` once a period boundary has passed.
    fn presence(&mut self, now: i64, table: &DeviceTable, out: &mut Vec<TrackEvent>) {
        let iv = self.interval_ms();
        let Some(next) = self.next_presence_ms else {
            return;
        };
        if now < next {
            return;
        }
        let boundary = now.div_euclid(iv) * iv;
        self.next_presence_ms = Some(boundary + iv);
        let window_s = self.opts.presence_interval_s;

        let mut counts = vec![0u32; self.zones.len()];
        for device in table.devices() {
            if let Some(count) = device
                .zones
                .stay()
                .and_then(|stay| counts.get_mut(stay.zone as usize))
            {
                *count += 1;
            }
        }
        let zones = self
            .zones
            .iter()
            .zip(counts)
            .map(|(z, n)| (z.zone.id.clone(), n))
            .collect();
        out.push(TrackEvent {
            ts_ms: boundary,
            kind: EventKind::Presence { zones, window_s },
        });

        // The window that just ended; older unreported ones (ticks too sparse) are dropped.
        let window = boundary.div_euclid(iv) - 1;
        let count = self.traffic.get(&window).copied().unwrap_or(0);
        self.traffic = self.traffic.split_off(&(window + 1));
        out.push(TrackEvent {
            ts_ms: boundary,
            kind: EventKind::Traffic { count, window_s },
        });
    }
}
