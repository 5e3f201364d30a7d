//! The store config topic payload: a store's layout and visit definitions, pushed by the cloud to
//! the store's gateways (retained, so a gateway that connects later gets it at once).
//!
//! The same struct is the "Store layout" section of the edge's own config file, so one
//! [`StoreConfig::validate`] guards both paths. A config that fails it must be refused as a whole
//! (the gateway keeps the layout it had): a half-applied layout would silently mis-place every
//! device. Errors name the offending field as a path (`zones[2].polygon`), so the cloud operator or
//! store IT can find it.

use super::Version;
use crate::definitions::{DefinitionsError, VisitDefinitions};
use crate::topic::{self, IdError};
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// `dwell/v1/{store}/config`, retained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreConfig {
    pub v: Version,
    pub store: String,
    /// IANA time zone (`Europe/Paris`): daily and hourly figures follow the store's local time.
    pub timezone: String,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// The id of the entrance zone, if the store has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrance: Option<String>,
    #[serde(default)]
    pub visit: VisitDefinitions,
}

/// A receiver (gateway antenna or zone node) at a position on the floor plan, in metres.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receiver {
    pub id: String,
    pub x: f64,
    pub y: f64,
}

/// A zone: a polygon on the floor plan, in metres, `[[x, y], ...]` (closing point optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub polygon: Vec<[f64; 2]>,
}

impl Zone {
    /// Whether a point lies inside the polygon (even-odd rule; points exactly on an edge may fall
    /// either way, which hysteresis absorbs).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let p = &self.polygon;
        let mut inside = false;
        let mut j = p.len().wrapping_sub(1);
        for i in 0..p.len() {
            let ([xi, yi], [xj, yj]) = (p[i], p[j]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }

    /// Shoelace area in m² (absolute).
    pub fn area(&self) -> f64 {
        let p = &self.polygon;
        let twice: f64 = (0..p.len())
            .map(|i| {
                let ([x0, y0], [x1, y1]) = (p[i], p[(i + 1) % p.len()]);
                x0 * y1 - x1 * y0
            })
            .sum();
        (twice / 2.0).abs()
    }
}

impl StoreConfig {
    /// Checks ids, geometry, the entrance and the visit definitions. Errors name the field.
    pub fn validate(&self) -> Result<(), StoreConfigError> {
        use StoreConfigError as E;
        id_ok("store", &self.store)?;
        if self.store == topic::SHOPPERS {
            return Err(E::InvalidId {
                field: "store".into(),
                id: self.store.clone(),
                error: IdError::Reserved,
            });
        }
        if !timezone_shaped(&self.timezone) {
            return Err(E::Timezone {
                timezone: self.timezone.clone(),
            });
        }

        let mut seen = BTreeSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            id_ok(&format!("receivers[{i}].id"), &r.id)?;
            if !seen.insert(r.id.as_str()) {
                return Err(E::DuplicateId {
                    field: format!("receivers[{i}].id"),
                    id: r.id.clone(),
                });
            }
            for (axis, v) in [("x", r.x), ("y", r.y)] {
                if !v.is_finite() {
                    return Err(E::NonFinite {
                        field: format!("receivers[{i}].{axis}"),
                    });
                }
            }
        }

        let mut seen = BTreeSet::new();
        for (i, z) in self.zones.iter().enumerate() {
            id_ok(&format!("zones[{i}].id"), &z.id)?;
            if !seen.insert(z.id.as_str()) {
                return Err(E::DuplicateId {
                    field: format!("zones[{i}].id"),
                    id: z.id.clone(),
                });
            }
            for (k, point) in z.polygon.iter().enumerate() {
                if let Some(axis) = point.iter().position(|v| !v.is_finite()) {
                    return Err(E::NonFinite {
                        field: format!("zones[{i}].polygon[{k}][{axis}]"),
                    });
                }
            }
            // A closing point equal to the first doesn't count towards the minimum.
            let closed = z.polygon.len() > 1 && z.polygon.first() == z.polygon.last();
            let points = z.polygon.len() - usize::from(closed);
            if points < 3 || z.area() == 0.0 {
                return Err(E::DegeneratePolygon {
                    field: format!("zones[{i}].polygon"),
                    zone: z.id.clone(),
                    points,
                });
            }
        }

        if let Some(entrance) = &self.entrance
            && !self.zones.iter().any(|z| &z.id == entrance)
        {
            return Err(E::UnknownEntrance {
                entrance: entrance.clone(),
            });
        }

        self.visit.validate().map_err(E::Visit)
    }

    /// The zone with this id.
    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }
}

fn id_ok(field: &str, id: &str) -> Result<(), StoreConfigError> {
    topic::validate_id(id).map_err(|error| StoreConfigError::InvalidId {
        field: field.into(),
        id: id.into(),
        error,
    })
}

/// IANA names are `Area/Location[/Sub]` (or `UTC`) made of ASCII letters, digits, `_`, `-`, `+`.
/// Whether the zone exists is checked where a tz database is linked (edge and cloud), not here.
fn timezone_shaped(tz: &str) -> bool {
    !tz.is_empty()
        && tz.len() <= 64
        && tz.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        })
}

/// Why a store config is refused. [`field`](Self::field) is the path of the key to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfigError {
    /// An id that can't be used (it would break topics or lookups).
    InvalidId {
        field: String,
        id: String,
        error: IdError,
    },
    /// Not an IANA time zone name.
    Timezone { timezone: String },
    /// A receiver or zone id used twice (`field` is the second use).
    DuplicateId { field: String, id: String },
    /// A coordinate that is NaN or infinite.
    NonFinite { field: String },
    /// A zone polygon with fewer than 3 distinct points, or no area.
    DegeneratePolygon {
        field: String,
        zone: String,
        points: usize,
    },
    /// `entrance` names no zone of this config.
    UnknownEntrance { entrance: String },
    /// A bad visit definition (`visit.<key>`).
    Visit(DefinitionsError),
}

impl StoreConfigError {
    pub fn field(&self) -> String {
        match self {
            StoreConfigError::InvalidId { field, .. }
            | StoreConfigError::DuplicateId { field, .. }
            | StoreConfigError::NonFinite { field }
            | StoreConfigError::DegeneratePolygon { field, .. } => field.clone(),
            StoreConfigError::Timezone { .. } => "timezone".into(),
            StoreConfigError::UnknownEntrance { .. } => "entrance".into(),
            StoreConfigError::Visit(e) => format!("visit.{}", e.field()),
        }
    }
}

impl fmt::Display for StoreConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfigError::InvalidId { field, id, error } => {
                write!(f, "{field}: {id:?}: {error}")
            }
            StoreConfigError::Timezone { timezone } => write!(
                f,
                "timezone: {timezone:?} is not an IANA time zone name (like \"Europe/Paris\")"
            ),
            StoreConfigError::DuplicateId { field, id } => {
                write!(f, "{field}: id {id:?} is used twice")
            }
            StoreConfigError::NonFinite { field } => {
                write!(f, "{field}: coordinate is not a finite number")
            }
            StoreConfigError::DegeneratePolygon {
                field,
                zone,
                points,
            } => write!(
                f,
                "{field}: zone {zone:?} has {points} distinct points or no area; a zone needs at least 3 points enclosing an area"
            ),
            StoreConfigError::UnknownEntrance { entrance } => {
                write!(f, "entrance: {entrance:?} is not the id of any zone")
            }
            StoreConfigError::Visit(e) => write!(f, "visit.{e}"),
        }
    }
}

impl core::error::Error for StoreConfigError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            StoreConfigError::InvalidId { error, .. } => Some(error),
            StoreConfigError::Visit(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden::{assert_golden, assert_tolerates_unknown, assert_version_checked};
    use alloc::string::ToString;
    use alloc::vec;

    const GOLDEN: &str = r#"{"v":1,"store":"store-001","timezone":"Europe/Paris","receivers":[{"id":"gw-1","x":0.0,"y":0.0},{"id":"node-2","x":12.5,"y":4.0}],"zones":[{"id":"entrance","name":"Entrance","polygon":[[0.0,0.0],[4.0,0.0],[4.0,3.0],[0.0,3.0]]},{"id":"cosmetics","name":"Cosmetics","polygon":[[4.0,0.0],[12.0,0.0],[8.0,6.5]]}],"entrance":"entrance","visit":{"version":1,"visitor_rssi_dbm":-75,"passerby_rssi_dbm":-90,"min_visit_s":120,"session_timeout_s":900,"engaged_s":600,"zone_enter_s":5,"zone_exit_s":10,"milestones_s":[30,60,120,300,600]}}"#;

    fn config() -> StoreConfig {
        StoreConfig {
            v: Version,
            store: "store-001".into(),
            timezone: "Europe/Paris".into(),
            receivers: vec![
                Receiver {
                    id: "gw-1".into(),
                    x: 0.0,
                    y: 0.0,
                },
                Receiver {
                    id: "node-2".into(),
                    x: 12.5,
                    y: 4.0,
                },
            ],
            zones: vec![
                Zone {
                    id: "entrance".into(),
                    name: "Entrance".into(),
                    polygon: vec![[0.0, 0.0], [4.0, 0.0], [4.0, 3.0], [0.0, 3.0]],
                },
                Zone {
                    id: "cosmetics".into(),
                    name: "Cosmetics".into(),
                    polygon: vec![[4.0, 0.0], [12.0, 0.0], [8.0, 6.5]],
                },
            ],
            entrance: Some("entrance".into()),
            visit: VisitDefinitions::DEFAULT,
        }
    }

    #[test]
    fn golden() {
        assert_golden(&config(), GOLDEN);
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn version_checked() {
        assert_version_checked::<StoreConfig>(GOLDEN);
    }

    #[test]
    fn tolerates_unknown_fields_and_partial_visit() {
        let json = r##"{"v":1,"store":"store-001","timezone":"Europe/Paris","floor_plan":"plan.svg","receivers":[{"id":"gw-1","x":0,"y":0,"model":"rpi5"},{"id":"node-2","x":12.5,"y":4}],"zones":[{"id":"entrance","name":"Entrance","polygon":[[0,0],[4,0],[4,3],[0,3]],"color":"#ff0000"},{"id":"cosmetics","name":"Cosmetics","polygon":[[4,0],[12,0],[8,6.5]]}],"entrance":"entrance","visit":{"min_visit_s":120,"loyalty":{"daily":5}}}"##;
        assert_tolerates_unknown(&config(), json);
    }

    #[test]
    fn minimal_config_reads() {
        let c: StoreConfig =
            serde_json::from_str(r#"{"v":1,"store":"s","timezone":"UTC"}"#).unwrap();
        assert!(c.receivers.is_empty() && c.zones.is_empty() && c.entrance.is_none());
        assert_eq!(c.visit, VisitDefinitions::DEFAULT);
        assert_eq!(c.validate(), Ok(()));
    }

    fn refused(edit: impl FnOnce(&mut StoreConfig)) -> StoreConfigError {
        let mut c = config();
        edit(&mut c);
        c.validate().unwrap_err()
    }

    #[test]
    fn validate_names_the_field() {
        let e = refused(|c| c.entrance = Some("exit".into()));
        assert_eq!(e.field(), "entrance");
        assert_eq!(
            e.to_string(),
            r#"entrance: "exit" is not the id of any zone"#
        );

        let e = refused(|c| c.zones[1].polygon.truncate(2));
        assert_eq!(e.field(), "zones[1].polygon");
        assert!(matches!(
            e,
            StoreConfigError::DegeneratePolygon { points: 2, .. }
        ));

        // A closed triangle of two distinct points plus its closing point is still too small.
        let e = refused(|c| c.zones[1].polygon = vec![[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]);
        assert!(matches!(
            e,
            StoreConfigError::DegeneratePolygon { points: 2, .. }
        ));
        let e = refused(|c| c.zones[1].polygon = vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]);
        assert_eq!(e.field(), "zones[1].polygon", "collinear: no area");

        let e = refused(|c| c.zones[1].id = "entrance".into());
        assert_eq!(
            e,
            StoreConfigError::DuplicateId {
                field: "zones[1].id".into(),
                id: "entrance".into()
            }
        );

        let e = refused(|c| c.receivers[1].id = "gw-1".into());
        assert_eq!(e.field(), "receivers[1].id");

        let e = refused(|c| c.receivers[0].y = f64::NAN);
        assert_eq!(e.field(), "receivers[0].y");
        let e = refused(|c| c.zones[0].polygon[2][0] = f64::INFINITY);
        assert_eq!(e.field(), "zones[0].polygon[2][0]");

        let e = refused(|c| c.visit.passerby_rssi_dbm = -70);
        assert_eq!(e.field(), "visit.passerby_rssi_dbm");
        assert_eq!(
            e.to_string(),
            "visit.passerby_rssi_dbm: -70 dBm must be below visitor_rssi_dbm (-75 dBm)"
        );
        let e = refused(|c| c.visit.zone_exit_s = 0);
        assert_eq!(e.field(), "visit.zone_exit_s");

        let e = refused(|c| c.store = "shoppers".into());
        assert_eq!(e.field(), "store");
        let e = refused(|c| c.store = "store 1".into());
        assert_eq!(e.field(), "store");
        let e = refused(|c| c.zones[0].id = String::new());
        assert_eq!(e.field(), "zones[0].id");

        for tz in ["", "Europe/", "/Paris", "Europe Paris", "Europe//Paris"] {
            let e = refused(|c| c.timezone = tz.into());
            assert_eq!(e.field(), "timezone", "{tz:?}");
        }
        for tz in [
            "UTC",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+1",
            "America/Port-au-Prince",
        ] {
            let mut c = config();
            c.timezone = tz.into();
            assert_eq!(c.validate(), Ok(()), "{tz}");
        }
    }

    #[test]
    fn zone_geometry() {
        let c = config();
        let cosmetics = c.zone("cosmetics").unwrap();
        assert!(cosmetics.contains(8.0, 2.0));
        assert!(!cosmetics.contains(2.0, 2.0));
        assert!(c.zone("entrance").unwrap().contains(2.0, 2.0));
        assert_eq!(c.zone("entrance").unwrap().area(), 12.0);
        assert_eq!(cosmetics.area(), 26.0);
    }
}
