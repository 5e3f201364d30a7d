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
use std::fmt::Write as _;

/// How often the anonymous-tier salt changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaltRotation {
    /// Once a day (at `rotation_offset_s` past UTC midnight): repeat visits within a day are
    /// recognised, across days they are not.
    Daily,
    /// Every minute; the tracker then publishes counts only.
    Strict,
}

impl SaltRotation {
    pub fn period_ms(self) -> i64 {
        match self {
            SaltRotation::Daily => 86_400_000,
            SaltRotation::Strict => 60_000,
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
    rotation: SaltRotation,
    rotation_offset_ms: i64,
    /// The retailer's iBeacon UUID: frames with it are our own store beacons.
    own_beacon_uuid: Option<Uuid>,
    period: i64,
    key: AnonKey,
}

/// Apple continuity message type for the background "overflow area" (service UUIDs of
/// backgrounded apps), in manufacturer data of company 0x004c.
const APPLE_OVERFLOW: u8 = 0x01;

impl Identifier {
    pub fn new(
        rotation: SaltRotation,
        rotation_offset_s: u32,
        own_beacon_uuid: Option<Uuid>,
    ) -> Self {
        Identifier {
            rotation,
            rotation_offset_ms: i64::from(rotation_offset_s) * 1000,
            own_beacon_uuid,
            period: i64::MIN,
            // Replaced by a random salt before first use (the period check in `key_for`).
            key: AnonKey::new(&[0; 16]),
        }
    }

    pub fn rotation(&self) -> SaltRotation {
        self.rotation
    }

    /// Replaces the salt when `ts_ms` falls in a new period. Time comes from the observations, so
    /// replay rotates exactly as live would.
    fn key_for(&mut self, ts_ms: i64) -> &AnonKey {
        let period = (ts_ms - self.rotation_offset_ms).div_euclid(self.rotation.period_ms());
        if period != self.period {
            let mut salt = [0u8; 16];
            // If the OS cannot give randomness the gateway must not run with a guessable salt.
            getrandom::fill(&mut salt).expect("operating system random source available");
            self.key = AnonKey::new(&salt);
            self.period = period;
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
        let mut id = Identifier::new(SaltRotation::Daily, 0, None);
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
        let mut id = Identifier::new(SaltRotation::Daily, 0, Some(store));
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
        let mut id = Identifier::new(SaltRotation::Daily, 0, None);
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
    fn strict_mode_rotates_every_minute() {
        let mut id = Identifier::new(SaltRotation::Strict, 0, None);
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
        let mut id = Identifier::new(SaltRotation::Daily, 0, None);
        assert_eq!(id.ble(0, PHONE, 1, &p), Identity::AppPresence);
    }
}
