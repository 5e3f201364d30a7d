//! The gateway's processing stages for one store, in order: observation → identify → track.
//!
//! Live scanning and offline replay both drive this one type with observations and clock ticks,
//! so `dwell-edge replay` produces exactly the events the gateway would have published. It is
//! synchronous and owns no I/O; the live gateway runs it as one stage between the sources and the
//! outbox.
//!
//! Besides what the tracker concludes, the pipeline counts iOS background "overflow area"
//! advertisements as `app_presence` per presence window: distinct addresses, held in memory for
//! one window only and never emitted.

use crate::config::Config;
use crate::identify::{Identifier, Identity};
use crate::source::{Observation, Radio};
use crate::track::{DeviceKey, Sighting, TrackEvent, Tracker};
use dwell_shared::Uuid;
use dwell_shared::hex::Hex;
use dwell_shared::node_report::{Identity as NodeIdentity, Report};
use dwell_shared::wire::{DeviceTier, EventKind};
use std::collections::HashSet;

/// What the pipeline has seen, beyond what the tracker counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub observations: u64,
    /// Advertisements of the store's own beacons (gateways, zone nodes): ignored.
    pub own_beacons: u64,
    /// iOS overflow-area advertisements counted as app presence.
    pub app_presence: u64,
    /// Zone-node reports taken.
    pub node_reports: u64,
}

#[derive(Debug)]
pub struct Pipeline {
    identifier: Identifier,
    tracker: Tracker,
    interval_ms: i64,
    app_window: Option<i64>,
    app_seen: HashSet<[u8; 6]>,
    stats: PipelineStats,
}

impl Pipeline {
    pub fn new(config: &Config) -> Pipeline {
        Pipeline {
            identifier: Identifier::new(
                config.salt_schedule(),
                config.beacon.as_ref().map(|b| b.uuid),
            ),
            tracker: Tracker::new(config.store_layout(), config.tracking),
            interval_ms: i64::from(config.tracking.presence_interval_s.max(1)) * 1000,
            app_window: None,
            app_seen: HashSet::new(),
            stats: PipelineStats::default(),
        }
    }

    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    /// Follows the layout `config` now has (after [`Config::replace_layout`]): the tracker's
    /// receivers, zones and visit thresholds, and the store's time zone for the daily salt.
    pub fn replace_layout(&mut self, config: &Config, now_ms: i64, out: &mut Vec<TrackEvent>) {
        self.tracker
            .replace_layout(config.store_layout(), now_ms, out);
        self.identifier.set_schedule(config.salt_schedule());
    }

    /// Identifies and tracks one observation; concluded events are appended to `out`.
    pub fn observe(&mut self, obs: &Observation, out: &mut Vec<TrackEvent>) {
        self.stats.observations += 1;
        self.roll_app_window(obs.ts_ms, out);
        let identity = match &obs.radio {
            Radio::Ble {
                addr,
                addr_type,
                ad,
            } => {
                let id = self.identifier.ble(obs.ts_ms, *addr, *addr_type, ad);
                if id == Identity::AppPresence {
                    self.app_seen.insert(*addr);
                }
                id
            }
            Radio::Wifi { sa } => self.identifier.wifi(obs.ts_ms, *sa),
        };
        match identity {
            Identity::Device {
                device,
                tier,
                randomized,
                power_1m,
            } => {
                let s = Sighting {
                    ts_ms: obs.ts_ms,
                    receiver: &obs.receiver,
                    device: DeviceKey {
                        id: &device,
                        tier,
                        randomized,
                    },
                    rssi: obs.rssi,
                    power_1m,
                };
                self.tracker.observe(&s, out);
            }
            Identity::AppPresence => self.stats.app_presence += 1,
            Identity::OwnBeacon => self.stats.own_beacons += 1,
        }
    }

    /// Takes a zone node's report for one window. Each sighting was identified on the node (same
    /// privacy tiers: beacon ids, EIDs, or a node-salted address hash — never an address) and
    /// becomes one reading at the node, `receiver` (the node's id from its topic), with the
    /// window's mean RSSI at the window's end. Door counts become a `door` event.
    ///
    /// A node without a synchronised clock reports windows in seconds since boot; those (and any
    /// window end more than a day from `received_ms`) are placed at `received_ms` instead.
    pub fn observe_node_report(
        &mut self,
        receiver: &str,
        report: &Report<'_>,
        received_ms: i64,
        out: &mut Vec<TrackEvent>,
    ) {
        let h = &report.header;
        let window_end = (i64::from(h.window_start_s) + i64::from(h.window_len_s)) * 1000;
        let ts_ms = if (window_end - received_ms).abs() <= 86_400_000 {
            window_end
        } else {
            received_ms
        };
        self.stats.node_reports += 1;
        self.roll_app_window(ts_ms, out);
        if h.door_in > 0 || h.door_out > 0 {
            out.push(TrackEvent {
                ts_ms,
                kind: EventKind::Door {
                    node: receiver.to_owned(),
                    entered: u32::from(h.door_in),
                    exited: u32::from(h.door_out),
                    window_s: u32::from(h.window_len_s),
                },
            });
        }
        for s in report.sightings() {
            self.stats.observations += 1;
            let (device, tier, randomized) = match s.identity {
                NodeIdentity::Eid(e) => (format!("eid:{}", Hex(&e)), DeviceTier::Consented, false),
                NodeIdentity::IBeacon { uuid, major, minor } => (
                    format!("ibeacon:{}:{major}:{minor}", Uuid::from_bytes(uuid)),
                    DeviceTier::Static,
                    false,
                ),
                NodeIdentity::AltBeacon { id1, id2, id3 } => (
                    format!("altbeacon:{}:{id2}:{id3}", Uuid::from_bytes(id1)),
                    DeviceTier::Static,
                    false,
                ),
                NodeIdentity::EddystoneUid {
                    namespace,
                    instance,
                } => (
                    format!("eddystone:{}:{}", Hex(&namespace), Hex(&instance)),
                    DeviceTier::Static,
                    false,
                ),
                // The node's salt is its own, so its hashes only ever meet its own readings;
                // whether the address was randomized is unknown there: count it as traffic.
                NodeIdentity::AddrHash(hash) => (
                    format!("n:{receiver}:{}", Hex(&hash)),
                    DeviceTier::Anonymous,
                    true,
                ),
            };
            let sighting = Sighting {
                ts_ms,
                receiver,
                device: DeviceKey {
                    id: &device,
                    tier,
                    randomized,
                },
                rssi: s.rssi_mean,
                power_1m: None,
            };
            self.tracker.observe(&sighting, out);
        }
    }

    /// Advances time to `now_ms` (milestones, exits, visit ends, counts).
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<TrackEvent>) {
        self.roll_app_window(now_ms, out);
        self.tracker.tick(now_ms, out);
    }

    /// Ends everything still open (end of a replay).
    pub fn finish(&mut self, out: &mut Vec<TrackEvent>) {
        if let Some(w) = self.app_window {
            self.emit_app_presence(w + self.interval_ms, out);
        }
        self.tracker.finish(out);
    }

    fn roll_app_window(&mut self, now_ms: i64, out: &mut Vec<TrackEvent>) {
        let start = now_ms.div_euclid(self.interval_ms) * self.interval_ms;
        match self.app_window {
            None => self.app_window = Some(start),
            Some(w) if start > w => {
                self.emit_app_presence(w + self.interval_ms, out);
                self.app_window = Some(start);
            }
            Some(_) => {}
        }
    }

    fn emit_app_presence(&mut self, at_ms: i64, out: &mut Vec<TrackEvent>) {
        if self.app_seen.is_empty() {
            return;
        }
        out.push(TrackEvent {
            ts_ms: at_ms,
            kind: EventKind::AppPresence {
                count: self.app_seen.len() as u32,
                window_s: (self.interval_ms / 1000) as u32,
            },
        });
        self.app_seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::frame::{Frame, IBeacon};
    use std::sync::Arc;

    fn config(beacon: &str) -> Config {
        let text = format!(
            "[gateway]\nid = \"gw-1\"\nstore = \"s1\"\n[[receivers]]\nid = \"gw-1\"\nx = 0\ny = 0\n\
             [[zones]]\nid = \"z\"\nname = \"Z\"\npolygon = [[-5,-5],[5,-5],[5,5],[-5,5]]\n{beacon}"
        );
        Config::from_toml_str(&text, "t.toml").unwrap()
    }

    fn ibeacon(uuid: dwell_shared::Uuid) -> Observation {
        let mut b = [0u8; 31];
        let n = Frame::IBeacon(IBeacon {
            uuid,
            major: 42,
            minor: 3,
            tx_power: -59,
        })
        .encode(&mut b)
        .unwrap();
        Observation {
            ts_ms: 1_767_258_000_000,
            receiver: Arc::from("gw-1"),
            rssi: -50,
            radio: Radio::Ble {
                addr: [0xc0, 1, 2, 3, 4, 5],
                addr_type: 1,
                ad: b[..n].to_vec(),
            },
        }
    }

    #[test]
    fn own_store_beacons_are_never_tracked() {
        let uuid: dwell_shared::Uuid = "e2c56db5-dffb-48d2-b060-d0f5a71096e0".parse().unwrap();
        let mut p = Pipeline::new(&config(
            "[beacon]\nuuid = \"e2c56db5-dffb-48d2-b060-d0f5a71096e0\"\nstore_number = 42\nzone_number = 3\n",
        ));
        let mut out = Vec::new();
        p.observe(&ibeacon(uuid), &mut out);
        assert_eq!(p.stats().own_beacons, 1);
        assert_eq!(p.tracker().devices(), 0);
        // Another UUID is a static beacon like any other (a staff badge, a shelf beacon).
        p.observe(&ibeacon(dwell_shared::Uuid::from_bytes([7; 16])), &mut out);
        assert_eq!(p.tracker().devices(), 1);
        // Without [beacon], the store's UUID is just another beacon.
        let mut q = Pipeline::new(&config(""));
        q.observe(&ibeacon(uuid), &mut out);
        assert_eq!((q.stats().own_beacons, q.tracker().devices()), (0, 1));
    }
}
