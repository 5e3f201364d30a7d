//! One edge event: what the tracker concluded (visit start/end, zone enter/dwell/exit) or counted
//! (zone presence, randomized traffic, iOS app presence), as it travels inside an
//! [`EventBatch`](super::EventBatch) and as `dwell-edge replay` prints it.
//!
//! The JSON is flat — `{"seq":7,"ts_ms":1,"type":"zone_dwell","device":"eid:..","zone":"cosmetics",
//! "dwell_s":30}` — because other tools read it line by line; in Rust it is the common fields
//! ([`Event`]) plus an internally tagged [`EventKind`] flattened into them, so a match on the kind
//! is exhaustive while the wire stays flat. An event `type` this build does not know (sent by a
//! newer gateway) reads as [`EventKind::Unknown`] rather than failing its whole batch; ingest
//! should count and skip those, not drop them silently.

use crate::definitions::VisitClass;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// One event: the gateway's sequence number, the time, and what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The gateway's monotonic sequence number, never reused (survives restarts);
    /// `(gateway, seq)` is the idempotency key on ingest.
    pub seq: u64,
    /// When it happened, unix milliseconds UTC.
    pub ts_ms: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened; the `type` field on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A device was first inside: a visit began. `zone` if it was already placed in one.
    VisitStart {
        #[serde(flatten)]
        device: DeviceRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// A device entered a zone (after `zone_enter_s` of hysteresis).
    ZoneEnter {
        #[serde(flatten)]
        device: DeviceRef,
        zone: String,
    },
    /// A device has stayed in a zone for `dwell_s`, a configured milestone.
    ZoneDwell {
        #[serde(flatten)]
        device: DeviceRef,
        zone: String,
        dwell_s: u32,
    },
    /// A device left a zone after staying `dwell_s`.
    ZoneExit {
        #[serde(flatten)]
        device: DeviceRef,
        zone: String,
        dwell_s: u32,
    },
    /// A visit ended (session timeout passed), classified, with its path.
    VisitEnd {
        #[serde(flatten)]
        device: DeviceRef,
        class: VisitClass,
        start_ms: i64,
        end_ms: i64,
        #[serde(default)]
        path: Vec<PathStay>,
    },
    /// Devices currently placed in each zone, over the last `window_s`.
    Presence {
        zones: BTreeMap<String, u32>,
        window_s: u32,
    },
    /// Randomized-address devices seen in the window: a traffic index, not unique visitors.
    Traffic { count: u32, window_s: u32 },
    /// iOS background "overflow area" advertisements of the retailer's app seen in the window:
    /// app presence, not people.
    AppPresence { count: u32, window_s: u32 },
    /// People through the entrance, counted by a zone node's break-beams over `window_s`.
    Door {
        /// The receiver id of the node that counted.
        node: String,
        #[serde(rename = "in")]
        entered: u32,
        #[serde(rename = "out")]
        exited: u32,
        window_s: u32,
    },
    /// An event type this build does not know (a newer gateway's). Serializes as
    /// `"type":"unknown"`; never produce one deliberately.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The wire `type` string.
    pub const fn type_name(&self) -> &'static str {
        match self {
            EventKind::VisitStart { .. } => "visit_start",
            EventKind::ZoneEnter { .. } => "zone_enter",
            EventKind::ZoneDwell { .. } => "zone_dwell",
            EventKind::ZoneExit { .. } => "zone_exit",
            EventKind::VisitEnd { .. } => "visit_end",
            EventKind::Presence { .. } => "presence",
            EventKind::Traffic { .. } => "traffic",
            EventKind::AppPresence { .. } => "app_presence",
            EventKind::Door { .. } => "door",
            EventKind::Unknown => "unknown",
        }
    }

    /// The device the event is about, for the per-device kinds.
    pub fn device(&self) -> Option<&DeviceRef> {
        match self {
            EventKind::VisitStart { device, .. }
            | EventKind::ZoneEnter { device, .. }
            | EventKind::ZoneDwell { device, .. }
            | EventKind::ZoneExit { device, .. }
            | EventKind::VisitEnd { device, .. } => Some(device),
            _ => None,
        }
    }
}

/// The device fields of a per-device event, flat on the wire: `device`, and when known `tier` and
/// `randomized`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceRef {
    /// `eid:<16 hex>`, `ibeacon:<uuid>:<major>:<minor>`, `h:<hex>` (salted hash), …
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<DeviceTier>,
    /// Whether the address was randomized (locally administered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomized: Option<bool>,
}

impl DeviceRef {
    /// A device with no tier or randomization information.
    pub fn new(device: impl Into<String>) -> Self {
        DeviceRef {
            device: device.into(),
            tier: None,
            randomized: None,
        }
    }
}

/// The privacy tier a device id belongs to (PRODUCT.md, "Privacy tiers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceTier {
    /// Hashed with the rotating salt.
    Anonymous,
    /// An opted-in shopper's Eddystone-EID, resolved in the cloud.
    Consented,
    /// A stable id that is not a person (the store's own tags, fixed beacons).
    Static,
}

/// One zone stay of a visit's path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathStay {
    pub zone: String,
    pub enter_ms: i64,
    pub exit_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden::{assert_golden, assert_tolerates_unknown};
    use alloc::string::ToString;
    use alloc::vec;

    fn dev(id: &str) -> DeviceRef {
        DeviceRef::new(id)
    }

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            ts_ms: 1_760_000_000_000,
            kind,
        }
    }

    #[test]
    fn golden_every_kind() {
        let consented = DeviceRef {
            device: "eid:0123456789abcdef".into(),
            tier: Some(DeviceTier::Consented),
            randomized: Some(false),
        };
        let cases = [
            (
                ev(
                    1,
                    EventKind::VisitStart {
                        device: consented.clone(),
                        zone: None,
                    },
                ),
                r#"{"seq":1,"ts_ms":1760000000000,"type":"visit_start","device":"eid:0123456789abcdef","tier":"consented","randomized":false}"#,
            ),
            (
                ev(
                    2,
                    EventKind::VisitStart {
                        device: dev("h:ab12"),
                        zone: Some("entrance".into()),
                    },
                ),
                r#"{"seq":2,"ts_ms":1760000000000,"type":"visit_start","device":"h:ab12","zone":"entrance"}"#,
            ),
            (
                ev(
                    3,
                    EventKind::ZoneEnter {
                        device: dev("h:ab12"),
                        zone: "cosmetics".into(),
                    },
                ),
                r#"{"seq":3,"ts_ms":1760000000000,"type":"zone_enter","device":"h:ab12","zone":"cosmetics"}"#,
            ),
            (
                ev(
                    7,
                    EventKind::ZoneDwell {
                        device: dev("eid:0123456789abcdef"),
                        zone: "cosmetics".into(),
                        dwell_s: 30,
                    },
                ),
                r#"{"seq":7,"ts_ms":1760000000000,"type":"zone_dwell","device":"eid:0123456789abcdef","zone":"cosmetics","dwell_s":30}"#,
            ),
            (
                ev(
                    8,
                    EventKind::ZoneExit {
                        device: dev("h:ab12"),
                        zone: "cosmetics".into(),
                        dwell_s: 95,
                    },
                ),
                r#"{"seq":8,"ts_ms":1760000000000,"type":"zone_exit","device":"h:ab12","zone":"cosmetics","dwell_s":95}"#,
            ),
            (
                ev(
                    9,
                    EventKind::VisitEnd {
                        device: DeviceRef {
                            device: "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:2".into(),
                            tier: Some(DeviceTier::Static),
                            randomized: None,
                        },
                        class: VisitClass::Visitor,
                        start_ms: 1_759_999_000_000,
                        end_ms: 1_760_000_000_000,
                        path: vec![
                            PathStay {
                                zone: "entrance".into(),
                                enter_ms: 1_759_999_000_000,
                                exit_ms: 1_759_999_100_000,
                            },
                            PathStay {
                                zone: "cosmetics".into(),
                                enter_ms: 1_759_999_100_000,
                                exit_ms: 1_759_999_900_000,
                            },
                        ],
                    },
                ),
                r#"{"seq":9,"ts_ms":1760000000000,"type":"visit_end","device":"ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:2","tier":"static","class":"visitor","start_ms":1759999000000,"end_ms":1760000000000,"path":[{"zone":"entrance","enter_ms":1759999000000,"exit_ms":1759999100000},{"zone":"cosmetics","enter_ms":1759999100000,"exit_ms":1759999900000}]}"#,
            ),
            (
                ev(
                    10,
                    EventKind::Presence {
                        zones: [("cosmetics".to_string(), 1), ("entrance".to_string(), 3)].into(),
                        window_s: 60,
                    },
                ),
                r#"{"seq":10,"ts_ms":1760000000000,"type":"presence","zones":{"cosmetics":1,"entrance":3},"window_s":60}"#,
            ),
            (
                ev(
                    11,
                    EventKind::Traffic {
                        count: 42,
                        window_s: 60,
                    },
                ),
                r#"{"seq":11,"ts_ms":1760000000000,"type":"traffic","count":42,"window_s":60}"#,
            ),
            (
                ev(
                    12,
                    EventKind::AppPresence {
                        count: 4,
                        window_s: 60,
                    },
                ),
                r#"{"seq":12,"ts_ms":1760000000000,"type":"app_presence","count":4,"window_s":60}"#,
            ),
            (
                ev(
                    13,
                    EventKind::Door {
                        node: "n-1".into(),
                        entered: 5,
                        exited: 3,
                        window_s: 60,
                    },
                ),
                r#"{"seq":13,"ts_ms":1760000000000,"type":"door","node":"n-1","in":5,"out":3,"window_s":60}"#,
            ),
        ];
        for (event, json) in &cases {
            assert_golden(event, json);
            assert!(json.contains(&alloc::format!(r#""type":"{}""#, event.kind.type_name())));
        }
    }

    #[test]
    fn tolerates_unknown_fields() {
        assert_tolerates_unknown(
            &ev(
                7,
                EventKind::ZoneDwell {
                    device: dev("h:ab12"),
                    zone: "z".into(),
                    dwell_s: 30,
                },
            ),
            r#"{"seq":7,"rssi":-60,"ts_ms":1760000000000,"type":"zone_dwell","device":"h:ab12","zone":"z","dwell_s":30,"x":{"y":[1]}}"#,
        );
        assert_tolerates_unknown(
            &ev(
                9,
                EventKind::VisitEnd {
                    device: dev("h:ab12"),
                    class: VisitClass::Passerby,
                    start_ms: 1,
                    end_ms: 2,
                    path: vec![PathStay {
                        zone: "z".into(),
                        enter_ms: 1,
                        exit_ms: 2,
                    }],
                },
            ),
            r#"{"seq":9,"ts_ms":1760000000000,"type":"visit_end","device":"h:ab12","class":"passerby","start_ms":1,"end_ms":2,"path":[{"zone":"z","enter_ms":1,"exit_ms":2,"confidence":0.9}],"engaged":false}"#,
        );
    }

    #[test]
    fn unknown_type_reads_as_unknown() {
        let e: Event = serde_json::from_str(
            r#"{"seq":5,"ts_ms":1,"type":"zone_heat","device":"h:1","grid":[[1,2]]}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            Event {
                seq: 5,
                ts_ms: 1,
                kind: EventKind::Unknown
            }
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            r#"{"seq":1,"ts_ms":1,"device":"h:1","zone":"z"}"#, // no type
            r#"{"seq":1,"ts_ms":1,"type":"zone_enter","device":"h:1"}"#, // no zone
            r#"{"seq":-1,"ts_ms":1,"type":"traffic","count":1,"window_s":1}"#, // negative seq
            r#"{"seq":1,"ts_ms":1,"type":"zone_dwell","device":"h:1","zone":"z","dwell_s":"30"}"#,
            r#"{"seq":1,"ts_ms":1,"type":"visit_end","device":"h:1","class":"shopper","start_ms":1,"end_ms":2,"path":[]}"#,
        ] {
            assert!(serde_json::from_str::<Event>(bad).is_err(), "{bad}");
        }
    }
}
