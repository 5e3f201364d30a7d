//! Sources: where observations come from — radios, captures, recordings, the simulator.
//!
//! Every source implements [`Scanner`] and yields [`Observation`]s: one advertisement or probe
//! request heard by one receiver, with the raw address still in it (the identify stage is the
//! first thing that sees an observation, and the last that sees a raw address). Recorded sources
//! take time from their records, so replaying a capture gives exactly what live scanning would
//! have; they run as fast as the CPU allows.
//!
//! A record that cannot be read is yielded as an error item — counted and logged by the caller —
//! and the source goes on: bad input never stops a gateway and is never silently dropped.
//!
//! # Layout
//! - [`jsonl`] — recorded sightings, the `dwell-edge replay` input format.
//! - [`capture`] — btsnoop (`btmon -w`, Android) and pcap/pcapng Wi-Fi captures.
//! - [`hci_socket`] — live BLE through the kernel's HCI user channel (Linux), duplicate filtering
//!   off — preferred for presence; also puts the store iBeacon on air.
//! - [`btleplug`] — live BLE through BlueZ over D-Bus (feature `bluez`); RSSI stalls under
//!   BlueZ's de-duplication, so it is the fallback.
//! - [`wifi_monitor`] — live Wi-Fi probe requests from a monitor-mode interface (Linux).
//! - [`probe`] — `dwell-edge doctor`'s radio checks: adapters, capabilities, BlueZ, backend.

pub mod btleplug;
pub mod capture;
pub mod hci_socket;
pub mod jsonl;
pub mod probe;
pub mod wifi_monitor;

use std::future::Future;
use std::sync::Arc;

/// One advertisement or probe request, as one receiver heard it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// When it was heard, UTC Unix milliseconds.
    pub ts_ms: i64,
    /// Which receiver heard it: the gateway itself or a zone node (ids from the store layout).
    pub receiver: Arc<str>,
    pub rssi: i8,
    pub radio: Radio,
}

/// What was heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Radio {
    /// A BLE advertisement: device address (display order), HCI address type, AD structures.
    Ble {
        addr: [u8; 6],
        addr_type: u8,
        ad: Vec<u8>,
    },
    /// A Wi-Fi probe request's source address.
    Wifi { sa: [u8; 6] },
}

/// Why a source could not produce an observation.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// One record was unreadable; the source goes on.
    #[error("{source_name} record {record}: {reason}")]
    BadRecord {
        source_name: &'static str,
        record: u64,
        reason: String,
    },
    /// The source cannot go on (file unreadable, device gone).
    #[error("{source_name}: {reason}")]
    Fatal {
        source_name: &'static str,
        reason: String,
    },
}

impl SourceError {
    pub fn is_fatal(&self) -> bool {
        matches!(self, SourceError::Fatal { .. })
    }
}

/// A source of observations. `next` resolves to `None` when a recording ends; live sources only
/// end on error or shutdown.
pub trait Scanner: Send {
    /// A short name for logs and metrics (`jsonl`, `btsnoop`, `pcap`, `btleplug`, `hci`, …).
    fn name(&self) -> &'static str;

    fn next(&mut self) -> impl Future<Output = Option<Result<Observation, SourceError>>> + Send;
}

/// Parses `aa:bb:cc:dd:ee:ff` (or bare hex) into display-order bytes.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    dwell_shared::hex::decode_array::<6>(s).map_err(|e| format!("address {s:?}: {e}"))
}
