//! Identify: who (or rather what) sent an observation, by privacy tier — before anything is kept.
//!
//! This stage is where raw addresses stop. Its output never contains a MAC address, so nothing
//! downstream (tracker, outbox on disk, MQTT) can leak one.
//! - **Consented** — an Eddystone-EID frame passes through as `eid:<16 hex>`. The gateway cannot
//!   tell who it is; only the cloud, holding the opted-in shopper's identity key, can.
//! - **Static** — fixed beacons (staff badges, trolley tags, shelf beacons) by their advertised
//!   ids: `ibeacon:<uuid>:<major>:<minor>`, `altbeacon:<id1>:<id2>:<id3>`,
//!   `eddystone:<namespace>:<instance>`.
//! - **Anonymous** — everything else (Wi-Fi probe requests, phones without the app): the address is
//!   hashed, `h:<16 hex>` = [`dwell_shared::anon`]'s keyed hash (AES-128 under the salt, the same
//!   function the zone nodes use), with a salt that rotates
//!   (daily by default; every minute in strict mode, where the tracker emits counts only). The salt
//!   is random, lives only in memory, and is replaced at each rotation, so hashes of different
//!   periods cannot be linked, not even by whoever holds the gateway afterwards.
//!
//! The daily salt changes at a quiet hour of the store's own clock (`[privacy] salt_rotates_at`,
//! default 04:00, in `[gateway] timezone`), not at UTC midnight, which in Shanghai would split a
//! day's shoppers at 08:00. A timestamp's period is the local date of (local time − rotation
//! time), so the salt changes exactly when the store's clock shows the rotation time, daylight
//! saving included: across a DST change the period is simply 23 or 25 hours long. Where the clock
//! skips the rotation time (a spring-forward gap) the salt changes at the jump; where it shows it
//! twice (a fall-back fold) it changes at the first, and the repeated hour stays in the new period.
//! Time comes from the observations, so replay rotates exactly as live would.
//!
//! Randomized addresses (BLE non-resolvable/resolvable private, Wi-Fi locally administered) are
//! flagged: they rotate, so counting them as unique visitors would inflate footfall; the cloud
//! reports them as a traffic index instead.
//!
//! The store's own iBeacon (which gateways and zone nodes advertise so shoppers' apps wake up) is
//! recognised and ignored, and iOS background "overflow area" advertisements are counted as app
//! presence, not as people.

use dwell_shared::Uuid;
use dwell_shared::anon::{AnonKey, KIND_WIFI};
use dwell_shared::frame::{self, Frame, ibeacon};
use dwell_shared::hex::Hex;
use dwell_shared::wire::DeviceTier;
use dwell_shared::{ad, distance};
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use std::fmt::Write as _;

/// How often the anonymous-tier salt changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaltRotation {
    /// Once a day, at [`SaltSchedule::rotates_at`] on the store's local clock: repeat visits
    /// within a store day are recognised, across days they are not.
    Daily,
    /// Every minute (UTC-aligned minutes); the tracker then publishes counts only.
    Strict,
}

/// The local time of day a daily salt changes at when `[privacy] salt_rotates_at` is not set: an
/// hour when shops are closed, so no visit is split by the rotation.
pub const DEFAULT_SALT_ROTATES_AT: Time = jiff::civil::time(4, 0, 0, 0);

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// When the anonymous-tier salt changes: the rotation, and for a daily one the store's local
/// time of day and time zone.
#[derive(Clone, Debug, PartialEq)]
pub struct SaltSchedule {
    pub rotation: SaltRotation,
    /// Local time of day a daily salt changes at (`[privacy] salt_rotates_at`).
    pub rotates_at: Time,
    /// The store's time zone (`[gateway] timezone`).
    pub time_zone: TimeZone,
}

/// The instants one salt is used for: UTC milliseconds, `start_ms` included, `end_ms` not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaltPeriod {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl SaltPeriod {
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.start_ms <= ts_ms && ts_ms < self.end_ms
    }

    /// Periods of `len_ms` starting `offset_ms` past the Unix epoch (and every `len_ms` since).
    fn fixed(ts_ms: i64, len_ms: i64, offset_ms: i64) -> SaltPeriod {
        // Saturating: a corrupt clock near i64's ends gets a clamped period, not a panic.
        let start_ms = ts_ms
            .saturating_sub(offset_ms)
            .div_euclid(len_ms)
            .saturating_mul(len_ms)
            .saturating_add(offset_ms);
        SaltPeriod {
            start_ms,
            end_ms: start_ms.saturating_add(len_ms),
        }
    }
}

impl SaltSchedule {
    /// A daily salt changing at `rotates_at` local time in `time_zone`.
    pub fn daily(rotates_at: Time, time_zone: TimeZone) -> SaltSchedule {
        SaltSchedule {
            rotation: SaltRotation::Daily,
            rotates_at,
            time_zone,
        }
    }

    /// A salt changing every UTC minute.
    pub fn strict() -> SaltSchedule {
        SaltSchedule {
            rotation: SaltRotation::Strict,
            rotates_at: DEFAULT_SALT_ROTATES_AT,
            time_zone: TimeZone::UTC,
        }
    }

    /// The period the salt for an observation at `ts_ms` covers.
    pub fn period_of(&self, ts_ms: i64) -> SaltPeriod {
        match self.rotation {
            SaltRotation::Strict => SaltPeriod::fixed(ts_ms, MINUTE_MS, 0),
            SaltRotation::Daily => self.store_day(ts_ms).unwrap_or_else(|| {
                // Beyond what a calendar can name (years past ±9999: a corrupt clock): days of
                // 24 h at the rotation time as if it were UTC.
                let at_ms = i64::from(self.rotates_at.hour()) * 3_600_000
                    + i64::from(self.rotates_at.minute()) * MINUTE_MS;
                SaltPeriod::fixed(ts_ms, DAY_MS, at_ms)
            }),
        }
    }

    /// The store day `ts_ms` falls in: from the rotation time on the local date of
    /// (local time − rotation time) to the rotation time the next day.
    fn store_day(&self, ts_ms: i64) -> Option<SaltPeriod> {
        let ts = Timestamp::from_millisecond(ts_ms).ok()?;
        let local = self.time_zone.to_datetime(ts);
        let mut day = if local.time() >= self.rotates_at {
            local.date()
        } else {
            local.date().yesterday().ok()?
        };
        let mut start = self.day_start(day)?;
        // Where the clock jumps around the rotation time the local reading alone can mislead:
        // the periods are placed by their starts, so they follow each other without overlap.
        if ts < start {
            day = day.yesterday().ok()?;
            start = self.day_start(day)?;
        }
        let mut end = self.day_start(day.tomorrow().ok()?)?;
        if ts >= end {
            // The repeated hour of a fall-back fold, when the rotation time is in it.
            day = day.tomorrow().ok()?;
            start = end;
            end = self.day_start(day.tomorrow().ok()?)?;
        }
        let period = SaltPeriod {
            start_ms: start.as_millisecond(),
            end_ms: end.as_millisecond(),
        };
        period.contains(ts_ms).then_some(period)
    }

    /// The first instant the store's clock shows `day` at the rotation time: the first of two in a
    /// fall-back fold, the jump itself when a spring-forward gap skips it.
    fn day_start(&self, day: Date) -> Option<Timestamp> {
        let at = self
            .time_zone
            .to_ambiguous_timestamp(day.to_datetime(self.rotates_at));
        let gap = matches!(at.offset(), AmbiguousOffset::Gap { .. });
        // Unambiguous: the instant; fold: its first; gap: the same wall time before the jump.
        let earliest = at.earlier().ok()?;
        if gap {
            self.time_zone
                .following(earliest)
                .next()
                .map(|t| t.timestamp())
        } else {
            Some(earliest)
        }
    }
}

/// The radio a raw address was seen on, with what identify needs to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawAddr {
    /// BLE device address (display order) and its HCI address type (0 public, 1 random, …).
    Ble { addr: [u8; 6], addr_type: u8 },
    /// 802.11 transmitter (source) address.
    Wifi { sa: [u8; 6] },
}

impl RawAddr {
    /// Whether the address is of a kind that rotates, so one device shows up under many.
    pub fn is_randomized(&self) -> bool {
        match *self {
            // Random address whose top two bits are not 11 (static random): private addresses.
            RawAddr::Ble { addr, addr_type } => {
                (addr_type == 1 || addr_type == 3) && addr[0] >> 6 != 0b11
            }
            // Locally administered bit of the first octet.
            RawAddr::Wifi { sa } => sa[0] & 0x02 != 0,
        }
    }
}

/// What an observation is, once identified. Contains no raw address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A device to track.
    Device {
        device: String,
        tier: DeviceTier,
        randomized: bool,
        /// RSSI at 1 m the advertisement states (iBeacon measured power, AltBeacon reference
        /// RSSI, Eddystone's 0 m power − 41 dB), for ranging.
        power_1m: Option<i8>,
    },
    /// An iOS app in the background, advertising in Apple's overflow area: presence of the app,
    /// not a person.
    AppPresence,
    /// The store's own beacon (a gateway or zone node): not a shopper.
    OwnBeacon,
}

/// Per-observation identification with the rotating salt.
#[derive(Debug)]
pub struct Identifier {
    schedule: SaltSchedule,
    /// The retailer's iBeacon UUID: frames with it are our own store beacons.
    own_beacon_uuid: Option<Uuid>,
    /// What the current salt covers; `None` until the first anonymous observation.
    period: Option<SaltPeriod>,
    key: AnonKey,
}

/// Apple continuity message type for the background "overflow area" (service UUIDs of
/// backgrounded apps), in manufacturer data of company 0x004c.
const APPLE_OVERFLOW: u8 = 0x01;

impl Identifier {
    pub fn new(schedule: SaltSchedule, own_beacon_uuid: Option<Uuid>) -> Self {
        Identifier {
            schedule,
            own_beacon_uuid,
            period: None,
            // Replaced by a random salt before first use (the period check in `key_for`).
            key: AnonKey::new(&[0; 16]),
        }
    }

    pub fn rotation(&self) -> SaltRotation {
        self.schedule.rotation
    }

    pub fn schedule(&self) -> &SaltSchedule {
        &self.schedule
    }

    /// Follows a new schedule (the cloud pushed a layout with another time zone). A different
    /// schedule starts a fresh salt with the next anonymous observation: the current period was
    /// placed by the old one, and ending it early can only shorten a salt's life, never stretch
    /// it past a day.
    pub fn set_schedule(&mut self, schedule: SaltSchedule) {
        if schedule != self.schedule {
            self.schedule = schedule;
            self.period = None;
        }
    }

    /// Replaces the salt when `ts_ms` falls outside the current period. Time comes from the
    /// observations, so replay rotates exactly as live would.
    ///
    /// Salts only move forward: an observation that arrives late from the previous period (a
    /// receiver's clock a little behind, a node report in flight across 04:00) is hashed under
    /// the current salt. The previous salt is gone (that is the point of rotating), and making a
    /// fresh one for it would split the devices of the current period in two.
    fn key_for(&mut self, ts_ms: i64) -> &AnonKey {
        let late = self.period.is_some_and(|p| ts_ms < p.start_ms);
        if !late && !self.period.is_some_and(|p| p.contains(ts_ms)) {
            let mut salt = [0u8; 16];
            // If the OS cannot give randomness the gateway must not run with a guessable salt.
            getrandom::fill(&mut salt).expect("operating system random source available");
            self.key = AnonKey::new(&salt);
            self.period = Some(self.schedule.period_of(ts_ms));
        }
        &self.key
    }

    /// Identifies a BLE advertisement (`payload` = its AD structures).
    pub fn ble(&mut self, ts_ms: i64, addr: [u8; 6], addr_type: u8, payload: &[u8]) -> Identity {
        let mut stat: Option<(String, i8)> = None;
        for f in frame::frames(payload) {
            match f {
                Frame::EddystoneEid(e) => {
                    return Identity::Device {
                        device: format!("eid:{}", Hex(&e.eid)),
                        tier: DeviceTier::Consented,
                        randomized: false,
                        power_1m: Some(distance::eddystone_power_at_1m(e.tx_power)),
                    };
                }
                Frame::IBeacon(b) if Some(b.uuid) == self.own_beacon_uuid => {
                    return Identity::OwnBeacon;
                }
                Frame::IBeacon(b) => {
                    stat.get_or_insert_with(|| {
                        (
                            format!("ibeacon:{}:{}:{}", b.uuid, b.major, b.minor),
                            b.tx_power,
                        )
                    });
                }
                Frame::AltBeacon(b) => {
                    stat.get_or_insert_with(|| {
                        (
                            format!("altbeacon:{}:{}:{}", b.id1, b.id2, b.id3),
                            b.ref_rssi,
                        )
                    });
                }
                Frame::EddystoneUid(u) => {
                    stat.get_or_insert_with(|| {
                        (
                            format!("eddystone:{}:{}", Hex(&u.namespace), Hex(&u.instance)),
                            distance::eddystone_power_at_1m(u.tx_power),
                        )
                    });
                }
                // URL and TLM frames do not identify a beacon by themselves.
                Frame::EddystoneUrl(_) | Frame::EddystoneTlm(_) => {}
            }
        }
        if let Some((device, power)) = stat {
            return Identity::Device {
                device,
                tier: DeviceTier::Static,
                randomized: false,
                // 0 means "not calibrated" in practice: let the tracker assume its default.
                power_1m: (power != 0).then_some(power),
            };
        }
        if is_apple_overflow(payload) {
            return Identity::AppPresence;
        }
        self.anonymous(ts_ms, RawAddr::Ble { addr, addr_type })
    }

    /// Identifies a Wi-Fi probe request by its source address.
    pub fn wifi(&mut self, ts_ms: i64, sa: [u8; 6]) -> Identity {
        self.anonymous(ts_ms, RawAddr::Wifi { sa })
    }

    fn anonymous(&mut self, ts_ms: i64, raw: RawAddr) -> Identity {
        let randomized = raw.is_randomized();
        let (kind, addr) = match raw {
            RawAddr::Ble { addr, addr_type } => (addr_type, addr),
            RawAddr::Wifi { sa } => (KIND_WIFI, sa),
        };
        let hash = self.key_for(ts_ms).hash(kind, &addr);
        let mut device = String::with_capacity(18);
        device.push_str("h:");
        for b in &hash {
            // Writing to a String cannot fail.
            let _ = write!(device, "{b:02x}");
        }
        Identity::Device {
            device,
            tier: DeviceTier::Anonymous,
            randomized,
            power_1m: None,
        }
    }
}

/// iOS moves a backgrounded app's advertised service UUIDs into Apple manufacturer data, message
/// type 0x01 ("overflow area"). Such an advertisement says an app is near, not who.
pub fn is_apple_overflow(payload: &[u8]) -> bool {
    ad::structures(payload).any(|st| {
        matches!(
            st.manufacturer_data(),
            Some((ibeacon::APPLE, [APPLE_OVERFLOW, ..]))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::frame::{EddystoneEid, IBeacon};

    const PHONE: [u8; 6] = [0x4a, 0x11, 0x22, 0x33, 0x44, 0x55]; // random, top bits 01: resolvable

    /// Daily at UTC midnight: the arithmetic of the tests that do not care about time zones.
    fn utc_midnight() -> SaltSchedule {
        SaltSchedule::daily(jiff::civil::time(0, 0, 0, 0), TimeZone::UTC)
    }

    fn daily_at(hh: i8, mm: i8, zone: &str) -> SaltSchedule {
        SaltSchedule::daily(
            jiff::civil::time(hh, mm, 0, 0),
            TimeZone::get(zone).unwrap(),
        )
    }

    /// UTC milliseconds of a local wall time (unambiguous ones only) in `zone`.
    fn local_ms(zone: &str, wall: &str) -> i64 {
        let dt: jiff::civil::DateTime = wall.parse().unwrap();
        dt.to_zoned(TimeZone::get(zone).unwrap())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    /// UTC milliseconds of an RFC 3339 instant.
    fn utc_ms(instant: &str) -> i64 {
        instant.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// The hash of `PHONE` at each instant.
    fn hashes(schedule: SaltSchedule, at_ms: &[i64]) -> Vec<String> {
        let mut id = Identifier::new(schedule, None);
        at_ms.iter().map(|&t| device(id.wifi(t, PHONE)).0).collect()
    }

    fn payload(f: Frame) -> Vec<u8> {
        let mut b = [0u8; 31];
        let n = f.encode(&mut b).unwrap();
        b[..n].to_vec()
    }

    fn device(i: Identity) -> (String, DeviceTier, bool) {
        match i {
            Identity::Device {
                device,
                tier,
                randomized,
                ..
            } => (device, tier, randomized),
            other => panic!("not a device: {other:?}"),
        }
    }

    #[test]
    fn eid_passes_through_as_consented() {
        let mut id = Identifier::new(utc_midnight(), None);
        let p = payload(Frame::EddystoneEid(EddystoneEid {
            tx_power: -20,
            eid: [0xa9, 0xb7, 0x6a, 0x71, 0xc5, 0xf8, 0x92, 0x90],
        }));
        let (d, tier, randomized) = device(id.ble(0, PHONE, 1, &p));
        assert_eq!(d, "eid:a9b76a71c5f89290");
        assert_eq!((tier, randomized), (DeviceTier::Consented, false));
    }

    #[test]
    fn static_beacons_by_their_ids_and_own_beacon_ignored() {
        let store = Uuid::from_bytes([7; 16]);
        let mut id = Identifier::new(utc_midnight(), Some(store));
        let badge = IBeacon {
            uuid: Uuid::from_bytes([1; 16]),
            major: 3,
            minor: 9,
            tx_power: -59,
        };
        let (d, tier, _) = device(id.ble(0, PHONE, 0, &payload(Frame::IBeacon(badge))));
        assert_eq!(d, "ibeacon:01010101-0101-0101-0101-010101010101:3:9");
        assert_eq!(tier, DeviceTier::Static);
        let own = IBeacon {
            uuid: store,
            ..badge
        };
        assert_eq!(
            id.ble(0, PHONE, 0, &payload(Frame::IBeacon(own))),
            Identity::OwnBeacon
        );
    }

    #[test]
    fn anonymous_hash_hides_the_address_and_rotates_with_the_salt() {
        let mut id = Identifier::new(utc_midnight(), None);
        let (a, tier, randomized) = device(id.wifi(1_000, PHONE));
        assert_eq!(tier, DeviceTier::Anonymous);
        assert!(randomized, "locally administered bit set");
        assert!(a.starts_with("h:") && a.len() == 18, "{a}");
        assert!(!a.contains("4a11") && !a.contains("4a:11"));
        // same day: same hash; next day: another
        assert_eq!(device(id.wifi(86_399_999, PHONE)).0, a);
        assert_ne!(device(id.wifi(86_400_000, PHONE)).0, a);
    }

    #[test]
    fn daily_salt_rotates_at_04_00_store_time_in_shanghai() {
        let sh = |wall| local_ms("Asia/Shanghai", wall);
        let h = hashes(
            daily_at(4, 0, "Asia/Shanghai"),
            &[
                sh("2026-01-14T22:00"),
                sh("2026-01-15T03:59:59.999"),
                sh("2026-01-15T04:00"),
                sh("2026-01-15T21:00"),
            ],
        );
        assert_eq!(h[1], h[0], "03:59 is still the evening's store day");
        assert_ne!(h[2], h[1], "04:00 local starts a new salt");
        assert_eq!(h[3], h[2]);
        // A late observation from before 04:00 neither brings back the old salt nor makes a new
        // one: it takes the current salt, and the day's devices keep one hash.
        let late = hashes(
            daily_at(4, 0, "Asia/Shanghai"),
            &[
                sh("2026-01-15T04:00:00.100"),
                sh("2026-01-15T03:59:59.900"),
                sh("2026-01-15T04:00:00.200"),
            ],
        );
        assert_eq!(
            late[1], late[0],
            "a late observation takes the current salt"
        );
        assert_eq!(late[2], late[0], "and the salt after it is still the same");
        // 04:00 in Shanghai (UTC+8) is 20:00 UTC the day before.
        assert_eq!(
            daily_at(4, 0, "Asia/Shanghai").period_of(sh("2026-01-15T12:00")),
            SaltPeriod {
                start_ms: utc_ms("2026-01-14T20:00:00Z"),
                end_ms: utc_ms("2026-01-15T20:00:00Z"),
            }
        );
    }

    #[test]
    fn daily_salt_holds_across_utc_midnight_in_the_store_day() {
        // 08:00 in Shanghai is UTC midnight, and 12:00 is 04:00 UTC: the store is open.
        let h = hashes(
            daily_at(4, 0, "Asia/Shanghai"),
            &[
                utc_ms("2026-01-14T23:59:59.999Z"),
                utc_ms("2026-01-15T00:00:00Z"),
                utc_ms("2026-01-15T03:59:59.999Z"),
                utc_ms("2026-01-15T04:00:00Z"),
            ],
        );
        assert!(
            h.iter().all(|x| *x == h[0]),
            "one store day, whatever UTC's date: {h:?}"
        );
    }

    #[test]
    fn daily_salt_follows_daylight_saving_in_paris() {
        let paris = |wall| local_ms("Europe/Paris", wall);
        let schedule = daily_at(4, 0, "Europe/Paris");
        // Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: 04:00 local is 02:00 UTC.
        let h = hashes(
            schedule.clone(),
            &[
                paris("2026-03-28T18:00"),
                paris("2026-03-29T01:59"),
                paris("2026-03-29T03:00"),
                paris("2026-03-29T03:59:59.999"),
                paris("2026-03-29T04:00"),
            ],
        );
        assert!(h[..4].iter().all(|x| *x == h[0]), "{h:?}");
        assert_ne!(h[4], h[3]);
        assert_eq!(paris("2026-03-29T04:00"), utc_ms("2026-03-29T02:00:00Z"));
        let short = schedule.period_of(paris("2026-03-28T18:00"));
        assert_eq!(
            (short.start_ms, short.end_ms - short.start_ms),
            (utc_ms("2026-03-28T03:00:00Z"), 23 * 3_600_000),
            "the 23-hour store day"
        );

        // Fall back, 2026-10-25 03:00 CEST -> 02:00 CET: 04:00 local is 03:00 UTC; the repeated
        // hour stays in the old store day.
        let h = hashes(
            schedule.clone(),
            &[
                paris("2026-10-24T18:00"),
                utc_ms("2026-10-25T00:30:00Z"), // 02:30 CEST
                utc_ms("2026-10-25T01:30:00Z"), // 02:30 CET
                paris("2026-10-25T03:59:59.999"),
                paris("2026-10-25T04:00"),
            ],
        );
        assert!(h[..4].iter().all(|x| *x == h[0]), "{h:?}");
        assert_ne!(h[4], h[3]);
        assert_eq!(paris("2026-10-25T04:00"), utc_ms("2026-10-25T03:00:00Z"));
        let long = schedule.period_of(paris("2026-10-24T18:00"));
        assert_eq!(
            (long.start_ms, long.end_ms - long.start_ms),
            (utc_ms("2026-10-24T02:00:00Z"), 25 * 3_600_000),
            "the 25-hour store day"
        );
    }

    #[test]
    fn rotation_time_skipped_or_repeated_by_dst_rotates_once() {
        // New York springs forward 2026-03-08 at 02:00 EST (07:00 UTC) to 03:00 EDT: a 02:30
        // rotation happens at the jump.
        let gap = daily_at(2, 30, "America/New_York");
        assert_eq!(
            gap.period_of(utc_ms("2026-03-08T07:00:00Z")).start_ms,
            utc_ms("2026-03-08T07:00:00Z")
        );
        assert!(
            gap.period_of(utc_ms("2026-03-08T06:59:59.999Z"))
                .contains(utc_ms("2026-03-07T12:00:00Z"))
        );
        // It falls back 2026-11-01 at 02:00 EDT (06:00 UTC) to 01:00 EST: a 01:30 rotation
        // happens at the first 01:30 (05:30 UTC), not again at the second (06:30 UTC).
        let h = hashes(
            daily_at(1, 30, "America/New_York"),
            &[
                utc_ms("2026-11-01T05:29:59.999Z"),
                utc_ms("2026-11-01T05:30:00Z"),
                utc_ms("2026-11-01T06:15:00Z"), // 01:15 EST, after the rotation
                utc_ms("2026-11-01T06:30:00Z"),
                utc_ms("2026-11-01T20:00:00Z"),
            ],
        );
        assert_ne!(h[1], h[0]);
        assert!(h[1..].iter().all(|x| *x == h[1]), "{h:?}");
    }

    #[test]
    fn a_new_time_zone_starts_a_new_salt() {
        let mut id = Identifier::new(daily_at(4, 0, "Europe/Paris"), None);
        let a = device(id.wifi(utc_ms("2026-05-01T10:00:00Z"), PHONE)).0;
        id.set_schedule(daily_at(4, 0, "Europe/Paris"));
        assert_eq!(device(id.wifi(utc_ms("2026-05-01T10:01:00Z"), PHONE)).0, a);
        id.set_schedule(daily_at(4, 0, "Asia/Shanghai"));
        let b = device(id.wifi(utc_ms("2026-05-01T10:02:00Z"), PHONE)).0;
        assert_ne!(b, a);
        // ...which then rotates on the new zone's clock: 04:00 in Shanghai is 20:00 UTC.
        assert_eq!(device(id.wifi(utc_ms("2026-05-01T19:59:00Z"), PHONE)).0, b);
        assert_ne!(device(id.wifi(utc_ms("2026-05-01T20:00:00Z"), PHONE)).0, b);
    }

    #[test]
    fn strict_mode_rotates_every_minute() {
        let mut id = Identifier::new(SaltSchedule::strict(), None);
        let a = device(id.wifi(0, PHONE)).0;
        assert_eq!(device(id.wifi(59_999, PHONE)).0, a);
        assert_ne!(device(id.wifi(60_000, PHONE)).0, a);
    }

    #[test]
    fn randomized_flags_follow_the_address_kind() {
        assert!(
            RawAddr::Ble {
                addr: PHONE,
                addr_type: 1
            }
            .is_randomized()
        );
        assert!(
            !RawAddr::Ble {
                addr: [0xc0, 0, 0, 0, 0, 1],
                addr_type: 1
            }
            .is_randomized()
        );
        assert!(
            !RawAddr::Ble {
                addr: PHONE,
                addr_type: 0
            }
            .is_randomized()
        );
        assert!(
            !RawAddr::Wifi {
                sa: [0xb0, 0xfc, 0x36, 0x2f, 0x07, 0x44]
            }
            .is_randomized()
        );
    }

    #[test]
    fn ios_overflow_area_counts_as_app_presence() {
        // Apple mfg data, type 0x01 then the 16-byte overflow bitmap.
        let mut p = vec![0x14, 0xff, 0x4c, 0x00, 0x01];
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0]);
        let mut id = Identifier::new(utc_midnight(), None);
        assert_eq!(id.ble(0, PHONE, 1, &p), Identity::AppPresence);
    }
}
