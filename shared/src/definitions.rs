//! Visit definitions: the one versioned set of thresholds that turns sightings into visits, used
//! by the edge (tracking) and the cloud (reporting) alike.
//!
//! Edge and cloud must agree on what a visit, a visitor, a dwell bucket or an engaged visit is,
//! or footfall figures would differ depending on who computed them; so the numbers and the small
//! functions that apply them live here, once. Defaults are the industry's published definitions
//! (see PRODUCT.md, "Visit semantics"); a store's config may override any of them, and
//! [`DEFINITIONS_VERSION`] says which meaning of the fields a config was written against.
//!
//! Everything here is `no_std` and allocation-free so the zone-node firmware can link it too. The
//! one list, the dwell milestones, is a fixed-capacity [`Milestones`] (at most
//! [`MAX_MILESTONES`]) rather than a `Vec`: that keeps [`VisitDefinitions`] `Copy` and complete
//! without `alloc`, and a store with more than a handful of milestones would spam campaigns anyway.
//! With `serde`, every field has `#[serde(default)]` so a config may give only the keys it changes,
//! and unknown keys are ignored (newer definitions can add fields).

use core::fmt;

/// The version of the definition set this build implements. Bump it when a field's meaning
/// changes (not when one is added with a default).
pub const DEFINITIONS_VERSION: u32 = 1;

/// Most milestones a definition set can hold (see [`Milestones`]).
pub const MAX_MILESTONES: usize = 16;

/// Default dwell milestones, in seconds: campaign triggers fire on these.
pub const DEFAULT_MILESTONES_S: [u32; 5] = [30, 60, 120, 300, 600];

/// Upper bounds (exclusive), in seconds, of the first four dwell buckets: <5 min, 5–20 min,
/// 20–60 min, 1–6 h. Anything at or above the last bound is [`DwellBucket::SixHoursPlus`].
pub const DWELL_BUCKET_UPPER_S: [u64; 4] = [5 * 60, 20 * 60, 60 * 60, 6 * 60 * 60];

/// The lowest and highest RSSI a BLE or Wi-Fi receiver reports (the HCI range, −127..=20 dBm);
/// a threshold outside it can never be met or is always met, so it is a config mistake.
const RSSI_RANGE_DBM: core::ops::RangeInclusive<i16> = -127..=20;

/// The thresholds that define visits, zone stays and milestones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct VisitDefinitions {
    /// Which meaning of these fields the set was written against; see [`DEFINITIONS_VERSION`].
    pub version: u32,
    /// A device is inside at or above this smoothed RSSI (dBm).
    pub visitor_rssi_dbm: i16,
    /// Below the visitor threshold but at or above this floor a device is outside (passing by);
    /// below it, unseen.
    pub passerby_rssi_dbm: i16,
    /// A visit lasting at least this long makes the device a visitor, otherwise a passer-by.
    pub min_visit_s: u32,
    /// A visit ends after this long without the device being inside.
    pub session_timeout_s: u32,
    /// A visit at least this long is engaged.
    pub engaged_s: u32,
    /// Zone hysteresis: a device enters a zone after being placed there this long...
    pub zone_enter_s: u32,
    /// ...and leaves it after being placed elsewhere this long.
    pub zone_exit_s: u32,
    /// Dwell milestones emitted while a device stays in a zone.
    pub milestones_s: Milestones,
}

impl VisitDefinitions {
    /// The defaults from PRODUCT.md.
    pub const DEFAULT: VisitDefinitions = VisitDefinitions {
        version: DEFINITIONS_VERSION,
        visitor_rssi_dbm: -75,
        passerby_rssi_dbm: -90,
        min_visit_s: 120,
        session_timeout_s: 900,
        engaged_s: 600,
        zone_enter_s: 5,
        zone_exit_s: 10,
        milestones_s: Milestones::DEFAULT,
    };

    /// Checks that the thresholds make sense together. Errors name the offending field.
    pub fn validate(&self) -> Result<(), DefinitionsError> {
        use DefinitionsError as E;
        if self.version != DEFINITIONS_VERSION {
            return Err(E::UnsupportedVersion {
                found: self.version,
            });
        }
        for (field, value) in [
            ("visitor_rssi_dbm", self.visitor_rssi_dbm),
            ("passerby_rssi_dbm", self.passerby_rssi_dbm),
        ] {
            if !RSSI_RANGE_DBM.contains(&value) {
                return Err(E::RssiOutOfRange { field, value });
            }
        }
        if self.passerby_rssi_dbm >= self.visitor_rssi_dbm {
            return Err(E::RssiInverted {
                visitor_rssi_dbm: self.visitor_rssi_dbm,
                passerby_rssi_dbm: self.passerby_rssi_dbm,
            });
        }
        if self.session_timeout_s == 0 {
            return Err(E::Zero {
                field: "session_timeout_s",
            });
        }
        if self.zone_exit_s == 0 {
            return Err(E::Zero {
                field: "zone_exit_s",
            });
        }
        if self.engaged_s < self.min_visit_s {
            return Err(E::EngagedBelowMinVisit {
                engaged_s: self.engaged_s,
                min_visit_s: self.min_visit_s,
            });
        }
        self.milestones_s.validate()
    }

    /// Visitor or passer-by, from how long the visit lasted: a visitor iff it lasted at least
    /// `min_visit_s`.
    pub fn classify(&self, visit_duration_s: u64) -> VisitClass {
        if visit_duration_s >= u64::from(self.min_visit_s) {
            VisitClass::Visitor
        } else {
            VisitClass::Passerby
        }
    }

    /// Whether a visit of this length counts as engaged (at least `engaged_s`).
    pub fn is_engaged(&self, visit_duration_s: u64) -> bool {
        visit_duration_s >= u64::from(self.engaged_s)
    }

    /// Where a smoothed RSSI puts a device. NaN (no smoothed value yet) is unseen.
    pub fn rssi_band(&self, smoothed_dbm: f32) -> RssiBand {
        if smoothed_dbm >= f32::from(self.visitor_rssi_dbm) {
            RssiBand::Inside
        } else if smoothed_dbm >= f32::from(self.passerby_rssi_dbm) {
            RssiBand::Outside
        } else {
            RssiBand::Unseen
        }
    }
}

impl Default for VisitDefinitions {
    fn default() -> Self {
        VisitDefinitions::DEFAULT
    }
}

/// Visitor or passer-by: the outcome of a finished visit. On the wire: `"visitor"`, `"passerby"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum VisitClass {
    Visitor,
    Passerby,
}

impl VisitClass {
    pub const fn label(self) -> &'static str {
        match self {
            VisitClass::Visitor => "visitor",
            VisitClass::Passerby => "passerby",
        }
    }
}

impl fmt::Display for VisitClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Where a device's smoothed RSSI places it relative to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RssiBand {
    /// At or above the visitor threshold.
    Inside,
    /// Between the passer-by floor (inclusive) and the visitor threshold.
    Outside,
    /// Below the passer-by floor.
    Unseen,
}

/// Visit-length buckets for dwell reports. On the wire and in exports: the [`label`](Self::label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DwellBucket {
    /// Under 5 minutes.
    #[cfg_attr(feature = "serde", serde(rename = "lt_5m"))]
    UnderFiveMinutes,
    /// 5 to 20 minutes.
    #[cfg_attr(feature = "serde", serde(rename = "5_20m"))]
    FiveToTwentyMinutes,
    /// 20 to 60 minutes.
    #[cfg_attr(feature = "serde", serde(rename = "20_60m"))]
    TwentyToSixtyMinutes,
    /// 1 to 6 hours.
    #[cfg_attr(feature = "serde", serde(rename = "1_6h"))]
    OneToSixHours,
    /// 6 hours or more.
    #[cfg_attr(feature = "serde", serde(rename = "6h_plus"))]
    SixHoursPlus,
}

impl DwellBucket {
    /// All buckets, shortest first (report column order).
    pub const ALL: [DwellBucket; 5] = [
        DwellBucket::UnderFiveMinutes,
        DwellBucket::FiveToTwentyMinutes,
        DwellBucket::TwentyToSixtyMinutes,
        DwellBucket::OneToSixHours,
        DwellBucket::SixHoursPlus,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            DwellBucket::UnderFiveMinutes => "lt_5m",
            DwellBucket::FiveToTwentyMinutes => "5_20m",
            DwellBucket::TwentyToSixtyMinutes => "20_60m",
            DwellBucket::OneToSixHours => "1_6h",
            DwellBucket::SixHoursPlus => "6h_plus",
        }
    }
}

impl fmt::Display for DwellBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The dwell bucket of a visit lasting `secs`. Bounds are exclusive upper bounds
/// ([`DWELL_BUCKET_UPPER_S`]): exactly 300 s is already 5–20 min.
pub fn dwell_bucket(secs: u64) -> DwellBucket {
    DWELL_BUCKET_UPPER_S
        .iter()
        .position(|&upper| secs < upper)
        .map_or(DwellBucket::SixHoursPlus, |i| DwellBucket::ALL[i])
}

/// Capture rate = visitors / (visitors + passers-by); `None` when nobody was seen at all (a rate
/// of 0 would claim the store captured no one out of some traffic).
pub fn capture_rate(visitors: u64, passersby: u64) -> Option<f64> {
    let total = visitors as f64 + passersby as f64;
    (total > 0.0).then(|| visitors as f64 / total)
}

/// Dwell milestones in seconds: strictly increasing, non-zero, at most [`MAX_MILESTONES`].
///
/// A fixed-capacity list so the definitions stay `Copy` and `no_std`; unused slots are kept zero
/// so the derived equality and hash only see the used prefix. On the wire: a plain JSON array.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Milestones {
    len: u8,
    secs: [u32; MAX_MILESTONES],
}

impl Milestones {
    /// [`DEFAULT_MILESTONES_S`].
    pub const DEFAULT: Milestones = match Milestones::from_slice(&DEFAULT_MILESTONES_S) {
        Ok(m) => m,
        Err(_) => panic!("default milestones fit"),
    };

    /// No milestones (a store that triggers nothing on dwell).
    pub const EMPTY: Milestones = Milestones {
        len: 0,
        secs: [0; MAX_MILESTONES],
    };

    /// Copies `secs` in. Only the capacity is checked here; order is checked by
    /// [`validate`](Self::validate) (and [`VisitDefinitions::validate`]), so a config loader
    /// can report every problem with its field name.
    pub const fn from_slice(secs: &[u32]) -> Result<Milestones, DefinitionsError> {
        if secs.len() > MAX_MILESTONES {
            return Err(DefinitionsError::TooManyMilestones { count: secs.len() });
        }
        let mut out = Milestones::EMPTY;
        let mut i = 0;
        while i < secs.len() {
            out.secs[i] = secs[i];
            i += 1;
        }
        out.len = secs.len() as u8;
        Ok(out)
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.secs[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Non-zero and strictly increasing.
    pub fn validate(&self) -> Result<(), DefinitionsError> {
        let s = self.as_slice();
        if let Some(index) = s.iter().position(|&m| m == 0) {
            return Err(DefinitionsError::MilestoneNotIncreasing { index });
        }
        if let Some(i) = s.windows(2).position(|w| w[1] <= w[0]) {
            return Err(DefinitionsError::MilestoneNotIncreasing { index: i + 1 });
        }
        Ok(())
    }

    /// The milestones reached when a stay grows from `from_s` (exclusive) to `to_s` (inclusive):
    /// what the tracker emits on each tick, so a coarse tick never skips one and none fires twice.
    pub fn crossed(&self, from_s: u32, to_s: u32) -> impl Iterator<Item = u32> + '_ {
        self.as_slice()
            .iter()
            .copied()
            .filter(move |&m| m > from_s && m <= to_s)
    }
}

impl Default for Milestones {
    fn default() -> Self {
        Milestones::DEFAULT
    }
}

impl fmt::Debug for Milestones {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Milestones {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Milestones {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Milestones;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a list of at most {MAX_MILESTONES} milestones in seconds"
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Milestones, A::Error> {
                let mut out = Milestones::EMPTY;
                while let Some(m) = seq.next_element::<u32>()? {
                    let slot = out.secs.get_mut(usize::from(out.len)).ok_or_else(|| {
                        serde::de::Error::custom(DefinitionsError::TooManyMilestones {
                            count: MAX_MILESTONES + 1,
                        })
                    })?;
                    *slot = m;
                    out.len += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// Why a definition set is unusable. Each variant names the field to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefinitionsError {
    /// `version` is not one this build implements.
    UnsupportedVersion { found: u32 },
    /// An RSSI threshold outside what receivers can report.
    RssiOutOfRange { field: &'static str, value: i16 },
    /// `passerby_rssi_dbm` is not below `visitor_rssi_dbm`.
    RssiInverted {
        visitor_rssi_dbm: i16,
        passerby_rssi_dbm: i16,
    },
    /// A duration that must be positive is zero.
    Zero { field: &'static str },
    /// `engaged_s` is below `min_visit_s`: an engaged visit could be a passer-by.
    EngagedBelowMinVisit { engaged_s: u32, min_visit_s: u32 },
    /// `milestones_s[index]` is zero or not above the one before it.
    MilestoneNotIncreasing { index: usize },
    /// More milestones than [`MAX_MILESTONES`] (`count` is a lower bound when read from JSON).
    TooManyMilestones { count: usize },
}

impl DefinitionsError {
    /// The key to fix.
    pub const fn field(&self) -> &'static str {
        match self {
            DefinitionsError::UnsupportedVersion { .. } => "version",
            DefinitionsError::RssiOutOfRange { field, .. } | DefinitionsError::Zero { field } => {
                field
            }
            DefinitionsError::RssiInverted { .. } => "passerby_rssi_dbm",
            DefinitionsError::EngagedBelowMinVisit { .. } => "engaged_s",
            DefinitionsError::MilestoneNotIncreasing { .. }
            | DefinitionsError::TooManyMilestones { .. } => "milestones_s",
        }
    }
}

impl fmt::Display for DefinitionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DefinitionsError::UnsupportedVersion { found } => write!(
                f,
                "version: visit definitions version {found} is not supported (this build implements {DEFINITIONS_VERSION})"
            ),
            DefinitionsError::RssiOutOfRange { field, value } => write!(
                f,
                "{field}: {value} dBm is outside the range receivers report ({}..={} dBm)",
                RSSI_RANGE_DBM.start(),
                RSSI_RANGE_DBM.end()
            ),
            DefinitionsError::RssiInverted {
                visitor_rssi_dbm,
                passerby_rssi_dbm,
            } => write!(
                f,
                "passerby_rssi_dbm: {passerby_rssi_dbm} dBm must be below visitor_rssi_dbm ({visitor_rssi_dbm} dBm)"
            ),
            DefinitionsError::Zero { field } => write!(f, "{field}: must be greater than 0"),
            DefinitionsError::EngagedBelowMinVisit {
                engaged_s,
                min_visit_s,
            } => write!(
                f,
                "engaged_s: {engaged_s} s must be at least min_visit_s ({min_visit_s} s)"
            ),
            DefinitionsError::MilestoneNotIncreasing { index } => write!(
                f,
                "milestones_s[{index}]: milestones must be non-zero and strictly increasing"
            ),
            DefinitionsError::TooManyMilestones { count } => write!(
                f,
                "milestones_s: {count} milestones given, at most {MAX_MILESTONES} are supported"
            ),
        }
    }
}

impl core::error::Error for DefinitionsError {}

#[cfg(test)]
mod tests {
    use super::*;

    const D: VisitDefinitions = VisitDefinitions::DEFAULT;

    #[test]
    fn defaults_match_product_and_validate() {
        assert_eq!(D.version, DEFINITIONS_VERSION);
        assert_eq!((D.visitor_rssi_dbm, D.passerby_rssi_dbm), (-75, -90));
        assert_eq!(
            (D.min_visit_s, D.session_timeout_s, D.engaged_s),
            (120, 900, 600)
        );
        assert_eq!((D.zone_enter_s, D.zone_exit_s), (5, 10));
        assert_eq!(D.milestones_s.as_slice(), &[30, 60, 120, 300, 600]);
        assert_eq!(VisitDefinitions::default(), D);
        assert_eq!(D.validate(), Ok(()));
    }

    #[test]
    fn dwell_bucket_edges() {
        use DwellBucket::*;
        for (secs, bucket) in [
            (0, UnderFiveMinutes),
            (299, UnderFiveMinutes),
            (300, FiveToTwentyMinutes),
            (1199, FiveToTwentyMinutes),
            (1200, TwentyToSixtyMinutes),
            (3599, TwentyToSixtyMinutes),
            (3600, OneToSixHours),
            (21599, OneToSixHours),
            (21600, SixHoursPlus),
            (u64::MAX, SixHoursPlus),
        ] {
            assert_eq!(dwell_bucket(secs), bucket, "{secs} s");
        }
        let labels = DwellBucket::ALL.map(DwellBucket::label);
        assert_eq!(labels, ["lt_5m", "5_20m", "20_60m", "1_6h", "6h_plus"]);
    }

    #[test]
    fn classify_at_min_visit() {
        assert_eq!(D.classify(119), VisitClass::Passerby);
        assert_eq!(D.classify(120), VisitClass::Visitor);
        assert_eq!(D.classify(0), VisitClass::Passerby);
    }

    #[test]
    fn engaged_at_threshold() {
        assert!(!D.is_engaged(599));
        assert!(D.is_engaged(600));
    }

    #[test]
    fn rssi_band_edges() {
        assert_eq!(D.rssi_band(-75.0), RssiBand::Inside);
        assert_eq!(D.rssi_band(-40.0), RssiBand::Inside);
        assert_eq!(D.rssi_band(-75.5), RssiBand::Outside);
        assert_eq!(D.rssi_band(-76.0), RssiBand::Outside);
        assert_eq!(D.rssi_band(-90.0), RssiBand::Outside);
        assert_eq!(D.rssi_band(-91.0), RssiBand::Unseen);
        assert_eq!(D.rssi_band(f32::NAN), RssiBand::Unseen);
    }

    #[test]
    fn capture_rate_handles_empty() {
        assert_eq!(capture_rate(0, 0), None);
        assert_eq!(capture_rate(1, 3), Some(0.25));
        assert_eq!(capture_rate(5, 0), Some(1.0));
    }

    #[test]
    fn milestones_crossed_once_each() {
        let m = D.milestones_s;
        let mut got = [0u32; 5];
        let mut n = 0;
        for (from, to) in [(0, 29), (29, 30), (30, 200), (200, 200), (200, 10_000)] {
            for s in m.crossed(from, to) {
                got[n] = s;
                n += 1;
            }
        }
        assert_eq!(&got[..n], &[30, 60, 120, 300, 600]);
    }

    #[test]
    fn validate_names_the_field() {
        let inverted = VisitDefinitions {
            passerby_rssi_dbm: -75,
            ..D
        };
        let e = inverted.validate().unwrap_err();
        assert_eq!(e.field(), "passerby_rssi_dbm");

        let no_exit = VisitDefinitions {
            zone_exit_s: 0,
            ..D
        };
        assert_eq!(
            no_exit.validate(),
            Err(DefinitionsError::Zero {
                field: "zone_exit_s"
            })
        );

        let no_timeout = VisitDefinitions {
            session_timeout_s: 0,
            ..D
        };
        assert_eq!(
            no_timeout.validate().unwrap_err().field(),
            "session_timeout_s"
        );

        let engaged = VisitDefinitions { engaged_s: 60, ..D };
        assert_eq!(engaged.validate().unwrap_err().field(), "engaged_s");

        let loud = VisitDefinitions {
            visitor_rssi_dbm: 30,
            ..D
        };
        assert_eq!(loud.validate().unwrap_err().field(), "visitor_rssi_dbm");

        let future = VisitDefinitions { version: 2, ..D };
        assert_eq!(
            future.validate(),
            Err(DefinitionsError::UnsupportedVersion { found: 2 })
        );

        let unordered = VisitDefinitions {
            milestones_s: Milestones::from_slice(&[30, 30]).unwrap(),
            ..D
        };
        assert_eq!(
            unordered.validate(),
            Err(DefinitionsError::MilestoneNotIncreasing { index: 1 })
        );
        let zero = Milestones::from_slice(&[0, 30]).unwrap();
        assert_eq!(
            zero.validate(),
            Err(DefinitionsError::MilestoneNotIncreasing { index: 0 })
        );
        assert!(Milestones::from_slice(&[1; MAX_MILESTONES + 1]).is_err());
    }

    #[cfg(feature = "serde")]
    mod json {
        // serde_json needs std anyway; linking it here keeps these tests in the no-alloc build.
        extern crate std;
        use super::*;
        use std::string::ToString;

        #[test]
        fn partial_config_takes_defaults() {
            let d: VisitDefinitions = serde_json::from_str(
                r#"{"min_visit_s": 60, "milestones_s": [10, 20], "future_key": true}"#,
            )
            .unwrap();
            assert_eq!(d.min_visit_s, 60);
            assert_eq!(d.milestones_s.as_slice(), &[10, 20]);
            assert_eq!(d.visitor_rssi_dbm, -75);
            assert_eq!(d.version, DEFINITIONS_VERSION);
        }

        #[test]
        fn golden() {
            let json = r#"{"version":1,"visitor_rssi_dbm":-75,"passerby_rssi_dbm":-90,"min_visit_s":120,"session_timeout_s":900,"engaged_s":600,"zone_enter_s":5,"zone_exit_s":10,"milestones_s":[30,60,120,300,600]}"#;
            assert_eq!(serde_json::to_string(&D).unwrap(), json);
            assert_eq!(serde_json::from_str::<VisitDefinitions>(json).unwrap(), D);
            assert_eq!(
                serde_json::to_string(&DwellBucket::ALL).unwrap(),
                r#"["lt_5m","5_20m","20_60m","1_6h","6h_plus"]"#
            );
            assert_eq!(
                serde_json::to_string(&VisitClass::Passerby).unwrap(),
                r#""passerby""#
            );
        }

        #[test]
        fn too_many_milestones_rejected() {
            let err =
                serde_json::from_str::<Milestones>("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]")
                    .unwrap_err();
            assert!(err.to_string().contains("milestones_s"), "{err}");
        }
    }
}
