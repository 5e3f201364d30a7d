//! Live BLE through BlueZ over D-Bus, with btleplug — behind dwell-edge's `bluez` cargo feature
//! (off by default: btleplug needs `libdbus-1-dev` and `pkg-config` to build).
//!
//! BlueZ hands us devices, not advertisements: a [`CentralEvent`] says a device's properties
//! changed, and the source reads them back (`PeripheralProperties`) and rebuilds the AD bytes
//! from them with [`AdWriter`] ([`rebuild_ad`]): manufacturer data, service data, service UUIDs,
//! TX power, local name — so the identify stage reads the same frames it reads from raw HCI
//! reports. Address and address type (public/random) come from BlueZ, RSSI from the properties.
//!
//! **Prefer the raw HCI backend for presence** ([`hci_socket`](super::hci_socket)). BlueZ and
//! the kernel de-duplicate advertisements: BlueZ signals a property only when its value changes,
//! and the kernel may still enable the controller's duplicate filter while discovering
//! (hbldh/bleak#235; bluez/bluez#1113) even though btleplug asks for `DuplicateData`
//! (deviceplug/btleplug#290). RSSI updates then stall while a device's payload stays the same,
//! and a shopper standing still looks like a shopper who left. This backend is for hosts where
//! the HCI user channel is not available (BlueZ must keep the adapter, or no `CAP_NET_ADMIN`).
//! `btmon` shows which is happening; `dwell-edge doctor` says which backend is in use and why.
//!
//! One BlueZ signal can carry several changed properties, which btleplug turns into several
//! events: an observation identical to the one just yielded (same device, RSSI and payload,
//! within [`BURST_MS`]) is the same advertisement and is not yielded twice.
//!
//! Failures are one line, cause and fix: no system bus ("Failed to connect to socket
//! /run/dbus/system_bus_socket"), no BlueZ on the bus ("org.bluez was not provided"), no adapter
//! (an empty list, not an error). `Manager::new()` can block and D-Bus calls time out only after
//! 30 s, so every call is bounded by [`DBUS_TIMEOUT`].
//!
//! [`CentralEvent`]: https://docs.rs/btleplug/0.13/btleplug/api/enum.CentralEvent.html
//! [`AdWriter`]: dwell_shared::ad::AdWriter

use super::SourceError;
use dwell_shared::Uuid;
use dwell_shared::ad::{AdWriter, EncodeError, ad_type, uuid_from_u32};
use std::collections::BTreeMap;
use std::time::Duration;

/// The source's name in logs, metrics and errors.
pub const SOURCE_NAME: &str = "btleplug";

/// Bound on each D-Bus call while opening (connecting, listing adapters, starting the scan).
pub const DBUS_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on reading one device's properties; a device that vanished is a bad record.
pub const PROPERTIES_TIMEOUT: Duration = Duration::from_secs(5);
/// Events for one advertisement arrive together; identical observations closer than this are
/// one advertisement.
pub const BURST_MS: i64 = 50;
/// Where the D-Bus system bus listens.
pub const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";

/// The one-line reasons, exactly as operators see them.
pub mod reason {
    pub const NO_SYSTEM_BUS: &str =
        "no D-Bus system bus: start dbus (systemctl start dbus) or run on a host with BlueZ";
    pub const NO_BLUEZ: &str =
        "BlueZ is not running: apt-get install bluez; systemctl start bluetooth";
    pub const NO_ADAPTER: &str =
        "no Bluetooth adapter found: plug one in, check `hciconfig`/`bluetoothctl list`";
    pub const ACCESS_DENIED: &str = "D-Bus denied access to BlueZ: run as root or allow the user \
         in /etc/dbus-1/system.d/bluetooth.conf (group `bluetooth`)";
    pub const NOT_BUILT: &str = "this dwell-edge was built without the `bluez` feature: rebuild \
         with `cargo build -p dwell-edge --features bluez` (needs libdbus-1-dev) or use \
         kind = \"hci\"";
}

/// Maps a btleplug / D-Bus error message to the operator's one-line cause and fix.
pub fn classify_error(message: &str) -> String {
    let m = message;
    if m.contains("system_bus_socket")
        || m.contains("Failed to connect to socket")
        || m.contains("DBUS_SYSTEM_BUS_ADDRESS")
    {
        reason::NO_SYSTEM_BUS.to_string()
    } else if m.contains("org.bluez was not provided")
        || m.contains("ServiceUnknown")
        || m.contains("NameHasNoOwner")
    {
        reason::NO_BLUEZ.to_string()
    } else if m.contains("AccessDenied") || m.contains("not allowed") {
        reason::ACCESS_DENIED.to_string()
    } else if m.contains("NoAdapterAvailable") || m.contains("No Bluetooth adapter") {
        reason::NO_ADAPTER.to_string()
    } else {
        // Unknown: keep it on one line, and still point at the usual suspects.
        let one_line = m.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "BlueZ error: {one_line}: check `systemctl status bluetooth` and `bluetoothctl list`"
        )
    }
}

/// The reason when the adapter asked for is not among those BlueZ lists (`found` are the ids,
/// `hci0` …).
pub fn no_adapter_reason(wanted: Option<&str>, found: &[String]) -> String {
    match (wanted, found) {
        (_, []) => reason::NO_ADAPTER.to_string(),
        (Some(w), found) => format!(
            "no Bluetooth adapter {w}: BlueZ has {}; set `adapter` to one of them",
            found.join(", ")
        ),
        (None, _) => reason::NO_ADAPTER.to_string(),
    }
}

/// The advertisement fields BlueZ keeps for a device, without btleplug types (so the rebuild is
/// tested on any build).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdvertisedFields {
    /// The advertised name (BlueZ `Name`, not `Alias`: the alias defaults to the address).
    pub local_name: Option<String>,
    pub tx_power: Option<i16>,
    pub manufacturer_data: BTreeMap<u16, Vec<u8>>,
    pub service_data: BTreeMap<Uuid, Vec<u8>>,
    pub services: Vec<Uuid>,
}

/// The 16-bit form of a UUID on the Bluetooth Base UUID.
fn short_uuid(u: &Uuid) -> Option<u16> {
    let b = u.as_bytes();
    let base = uuid_from_u32(0);
    (b[..2] == [0, 0] && b[4..] == base.as_bytes()[4..]).then(|| u16::from_be_bytes([b[2], b[3]]))
}

/// On-air (little-endian) bytes of a 128-bit UUID.
fn uuid_le(u: &Uuid) -> [u8; 16] {
    let mut b = *u.as_bytes();
    b.reverse();
    b
}

/// The largest payload rebuilt: an extended advertisement's data.
const MAX_REBUILT: usize = 1650;

/// Rebuilds AD structures from what BlueZ reports, beacon-bearing structures first
/// (manufacturer data, service data), then service UUIDs, TX power, local name; maps in key
/// order, so the bytes are deterministic. A structure that cannot be written (longer than an AD
/// structure holds) is left out; the others stand.
pub fn rebuild_ad(f: &AdvertisedFields) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_REBUILT];
    let mut w = AdWriter::new(&mut buf);
    // A structure longer than one AD structure holds (or past the buffer) is left out; the
    // others stand.
    let push = |w: &mut AdWriter<'_>, t: u8, parts: &[&[u8]]| {
        let _: Result<(), EncodeError> = w.push(t, parts);
    };
    for (company, data) in &f.manufacturer_data {
        push(
            &mut w,
            ad_type::MANUFACTURER_DATA,
            &[&company.to_le_bytes(), data],
        );
    }
    for (uuid, data) in &f.service_data {
        match short_uuid(uuid) {
            Some(s) => push(&mut w, ad_type::SERVICE_DATA16, &[&s.to_le_bytes(), data]),
            None => push(&mut w, ad_type::SERVICE_DATA128, &[&uuid_le(uuid), data]),
        }
    }
    let (short, long): (Vec<_>, Vec<_>) = f.services.iter().partition(|u| short_uuid(u).is_some());
    if !short.is_empty() {
        let bytes: Vec<u8> = short
            .iter()
            .filter_map(short_uuid)
            .flat_map(u16::to_le_bytes)
            .collect();
        push(&mut w, ad_type::UUID16_COMPLETE, &[&bytes]);
    }
    if !long.is_empty() {
        let bytes: Vec<u8> = long.iter().flat_map(uuid_le).collect();
        push(&mut w, ad_type::UUID128_COMPLETE, &[&bytes]);
    }
    if let Some(p) = f.tx_power {
        let p = p.clamp(i16::from(i8::MIN), i16::from(i8::MAX)) as i8;
        push(&mut w, ad_type::TX_POWER_LEVEL, &[&[p as u8]]);
    }
    if let Some(name) = &f.local_name {
        push(&mut w, ad_type::COMPLETE_LOCAL_NAME, &[name.as_bytes()]);
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// RSSI as BlueZ reports it (i16) in the observation's i8.
pub fn rssi_i8(rssi: i16) -> i8 {
    rssi.clamp(i16::from(i8::MIN), i16::from(i8::MAX)) as i8
}

#[cfg(feature = "bluez")]
pub use live::BtleplugSource;

#[cfg(feature = "bluez")]
mod live {
    use super::*;
    use crate::source::hci_socket::unix_now_ms;
    use crate::source::{Observation, Radio, Scanner};
    use btleplug::api::{
        AddressType, Central, CentralEvent, Manager as _, Peripheral as _, PeripheralProperties,
        ScanFilter,
    };
    use btleplug::platform::{Adapter, Manager, PeripheralId};
    use futures_util::stream::{Stream, StreamExt};
    use std::fmt;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    fn fatal(reason: impl Into<String>) -> SourceError {
        SourceError::Fatal {
            source_name: SOURCE_NAME,
            reason: reason.into(),
        }
    }

    /// Runs one D-Bus step with a bound; a btleplug error becomes its one-line reason.
    async fn bounded<T>(
        step: &str,
        f: impl Future<Output = btleplug::Result<T>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(DBUS_TIMEOUT, f).await {
            Err(_) => Err(fatal(format!(
                "BlueZ did not answer {step} within {}s over D-Bus: check `systemctl status \
                 bluetooth` and `busctl status org.bluez`",
                DBUS_TIMEOUT.as_secs()
            ))),
            Ok(Err(e)) => Err(fatal(classify_error(&format!("{e} {e:?}")))),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Connects to the system bus: `Manager::new()` may block its thread, so it runs on its own
    /// task and the wait is bounded.
    pub(crate) async fn connect() -> Result<Manager, SourceError> {
        let task = tokio::spawn(Manager::new());
        match tokio::time::timeout(DBUS_TIMEOUT, task).await {
            Err(_) => Err(fatal(format!(
                "connecting to the D-Bus system bus took more than {}s: {}",
                DBUS_TIMEOUT.as_secs(),
                reason::NO_SYSTEM_BUS
            ))),
            Ok(Err(join)) => Err(fatal(format!("connecting to D-Bus failed: {join}"))),
            Ok(Ok(Err(e))) => Err(fatal(classify_error(&format!("{e} {e:?}")))),
            Ok(Ok(Ok(m))) => Ok(m),
        }
    }

    /// The adapters BlueZ lists, with their ids (`hci0` …).
    pub(crate) async fn adapters(manager: &Manager) -> Result<Vec<(String, Adapter)>, SourceError> {
        let list = bounded("the adapter list", manager.adapters()).await?;
        let mut out = Vec::with_capacity(list.len());
        for a in list {
            let info = bounded("adapter info", a.adapter_info()).await?;
            // "hci0 (usb:v1D6Bp0246d0537)"
            let id = info
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            out.push((id, a));
        }
        Ok(out)
    }

    /// One device's properties, bounded by [`PROPERTIES_TIMEOUT`]. (A free function over the
    /// `Sync` adapter, so the source's future stays `Send` although its event stream is not
    /// `Sync`.)
    async fn read_properties(
        adapter: &Adapter,
        id: &PeripheralId,
    ) -> Result<Option<PeripheralProperties>, String> {
        let read = async {
            let p = adapter.peripheral(id).await?;
            p.properties().await
        };
        match tokio::time::timeout(PROPERTIES_TIMEOUT, read).await {
            Err(_) => Err(format!(
                "device properties not read within {}s",
                PROPERTIES_TIMEOUT.as_secs()
            )),
            Ok(r) => r.map_err(|e| e.to_string()),
        }
    }

    /// Live BLE through BlueZ; see the module docs.
    pub struct BtleplugSource {
        adapter_id: String,
        adapter: Adapter,
        /// Keeps the D-Bus session alive.
        _manager: Manager,
        events: Pin<Box<dyn Stream<Item = CentralEvent> + Send>>,
        receiver: Arc<str>,
        last: Option<Observation>,
        failed: bool,
        /// Property reads that failed or timed out (the device vanished).
        pub unreadable: u64,
    }

    impl fmt::Debug for BtleplugSource {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("BtleplugSource")
                .field("adapter", &self.adapter_id)
                .field("receiver", &self.receiver)
                .field("failed", &self.failed)
                .finish_non_exhaustive()
        }
    }

    impl BtleplugSource {
        /// Connects to BlueZ, picks `adapter` (`hci0` …) or the first one, and starts an
        /// unfiltered scan. Must run inside a tokio runtime. Errors are one line: cause and fix.
        pub async fn open(adapter: Option<&str>, receiver: &str) -> Result<Self, SourceError> {
            let manager = connect().await?;
            let all = adapters(&manager).await?;
            let ids: Vec<String> = all.iter().map(|(id, _)| id.clone()).collect();
            let picked = match adapter {
                None => all.into_iter().next(),
                Some(w) => all.into_iter().find(|(id, _)| id == w),
            };
            let Some((adapter_id, adapter)) = picked else {
                return Err(fatal(no_adapter_reason(adapter, &ids)));
            };
            // Subscribe before scanning, so no discovery is missed.
            let events = bounded("the event subscription", adapter.events()).await?;
            bounded("StartDiscovery", adapter.start_scan(ScanFilter::default())).await?;
            tracing::info!(
                adapter = %adapter_id,
                "btleplug: scanning through BlueZ (RSSI may stall: BlueZ de-duplicates; prefer kind = \"hci\")"
            );
            Ok(BtleplugSource {
                adapter_id,
                adapter,
                _manager: manager,
                events,
                receiver: Arc::from(receiver),
                last: None,
                failed: false,
                unreadable: 0,
            })
        }

        pub fn adapter_id(&self) -> &str {
            &self.adapter_id
        }

        fn observation(&self, p: PeripheralProperties, ts_ms: i64) -> Option<Observation> {
            let rssi = rssi_i8(p.rssi?);
            let fields = AdvertisedFields {
                local_name: p.advertisement_name,
                tx_power: p.tx_power_level,
                manufacturer_data: p.manufacturer_data.into_iter().collect(),
                service_data: p.service_data.into_iter().collect(),
                services: p.services,
            };
            Some(Observation {
                ts_ms,
                receiver: self.receiver.clone(),
                rssi,
                radio: Radio::Ble {
                    addr: p.address.into_inner(),
                    // BlueZ always knows the type; unknown is read as public (HCI 0).
                    addr_type: u8::from(p.address_type == Some(AddressType::Random)),
                    ad: rebuild_ad(&fields),
                },
            })
        }

        /// Whether `o` repeats the last observation (one advertisement, several events).
        fn repeats_last(&self, o: &Observation) -> bool {
            self.last.as_ref().is_some_and(|l| {
                l.radio == o.radio && l.rssi == o.rssi && o.ts_ms - l.ts_ms < BURST_MS
            })
        }

        pub async fn next_observation(&mut self) -> Option<Result<Observation, SourceError>> {
            loop {
                if self.failed {
                    return None;
                }
                let Some(ev) = self.events.next().await else {
                    self.failed = true;
                    return Some(Err(fatal(format!(
                        "BlueZ stopped sending events for {}: bluetoothd stopped or the adapter \
                         was removed; check `systemctl status bluetooth`",
                        self.adapter_id
                    ))));
                };
                let id = match ev {
                    CentralEvent::DeviceDiscovered(id)
                    | CentralEvent::DeviceUpdated(id)
                    | CentralEvent::ManufacturerDataAdvertisement { id, .. }
                    | CentralEvent::ServiceDataAdvertisement { id, .. }
                    | CentralEvent::ServicesAdvertisement { id, .. }
                    | CentralEvent::RssiUpdate { id, .. } => id,
                    _ => continue,
                };
                let props = match read_properties(&self.adapter, &id).await {
                    Ok(Some(p)) => p,
                    Ok(None) => continue,
                    Err(reason) => {
                        self.unreadable += 1;
                        return Some(Err(SourceError::BadRecord {
                            source_name: SOURCE_NAME,
                            record: self.unreadable,
                            reason,
                        }));
                    }
                };
                // Without RSSI a sighting says nothing about distance.
                let Some(o) = self.observation(props, unix_now_ms()) else {
                    continue;
                };
                if self.repeats_last(&o) {
                    continue;
                }
                self.last = Some(o.clone());
                return Some(Ok(o));
            }
        }
    }

    impl Scanner for BtleplugSource {
        fn name(&self) -> &'static str {
            SOURCE_NAME
        }
        async fn next(&mut self) -> Option<Result<Observation, SourceError>> {
            self.next_observation().await
        }
    }
}

#[cfg(feature = "bluez")]
pub(crate) use live::{adapters, connect};

/// Without the `bluez` feature the source exists but cannot be opened: the error says how to
/// build it in.
#[cfg(not(feature = "bluez"))]
#[derive(Debug)]
pub struct BtleplugSource {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "bluez"))]
impl BtleplugSource {
    /// Always fails: built without the `bluez` feature.
    pub async fn open(_adapter: Option<&str>, _receiver: &str) -> Result<Self, SourceError> {
        Err(SourceError::Fatal {
            source_name: SOURCE_NAME,
            reason: reason::NOT_BUILT.to_string(),
        })
    }
}

#[cfg(not(feature = "bluez"))]
impl super::Scanner for BtleplugSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }
    async fn next(&mut self) -> Option<Result<super::Observation, SourceError>> {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwell_shared::frame::{self, Frame};

    #[test]
    fn errors_map_to_the_three_causes() {
        assert_eq!(
            classify_error(
                "D-Bus error: Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory"
            ),
            reason::NO_SYSTEM_BUS
        );
        assert_eq!(
            classify_error(
                "org.freedesktop.DBus.Error.ServiceUnknown: The name org.bluez was not provided by any .service files"
            ),
            reason::NO_BLUEZ
        );
        assert_eq!(no_adapter_reason(None, &[]), reason::NO_ADAPTER);
        assert_eq!(
            no_adapter_reason(Some("hci1"), &["hci0".into()]),
            "no Bluetooth adapter hci1: BlueZ has hci0; set `adapter` to one of them"
        );
        let other = classify_error("something\nodd");
        assert!(!other.contains('\n') && other.contains("systemctl status bluetooth"));
    }

    #[test]
    fn rebuilt_ad_carries_the_beacon_frames() {
        let mut f = AdvertisedFields::default();
        // An iBeacon as BlueZ reports it: Apple's company id split off.
        let mut ib = vec![0x02, 0x15];
        ib.extend_from_slice(
            Uuid::parse_str("41424344-4546-4748-4940-414243444546")
                .unwrap()
                .as_bytes(),
        );
        ib.extend_from_slice(&[0, 1, 0, 2, 0xf8]);
        f.manufacturer_data.insert(0x004c, ib);
        // An Eddystone-UID in 0xFEAA service data.
        let mut uid = vec![0x00, 0xee];
        uid.extend_from_slice(&[0x11; 10]);
        uid.extend_from_slice(&[0x22; 6]);
        uid.extend_from_slice(&[0, 0]);
        f.service_data.insert(uuid_from_u32(0xfeaa), uid);
        f.services = vec![uuid_from_u32(0xfeaa)];
        f.tx_power = Some(-4);
        f.local_name = Some("tag".into());
        let ad = rebuild_ad(&f);
        let frames: Vec<Frame> = frame::frames(&ad).collect();
        assert_eq!(frames.len(), 2, "{}", dwell_shared::hex::Hex(&ad));
        assert!(matches!(frames[0], Frame::IBeacon(b) if b.major == 1 && b.minor == 2));
        assert!(matches!(frames[1], Frame::EddystoneUid(_)));
        // UUID list, TX power and name at the end, in that order.
        let tail = &ad[ad.len() - (4 + 3 + 5)..];
        assert_eq!(
            tail,
            &[
                3, 0x03, 0xaa, 0xfe, 2, 0x0a, 0xfc, 4, 0x09, b't', b'a', b'g'
            ]
        );
    }

    #[test]
    fn long_uuids_go_on_air_little_endian() {
        let u = Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        let f = AdvertisedFields {
            services: vec![u],
            ..AdvertisedFields::default()
        };
        let ad = rebuild_ad(&f);
        assert_eq!(ad[..2], [17, ad_type::UUID128_COMPLETE]);
        assert_eq!(ad[2], 0xff);
        assert_eq!(ad[17], 0x00);
    }

    #[test]
    fn rssi_is_clamped() {
        assert_eq!(rssi_i8(-300), -128);
        assert_eq!(rssi_i8(-60), -60);
    }
}
