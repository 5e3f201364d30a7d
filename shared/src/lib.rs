//! `dwell-shared`: the bytes every side of Dwell speaks.
//!
//! The gateway (`dwell-edge`), the cloud (`dwell-cloud`) and the zone-node firmware all decode and
//! encode with this one crate, so a frame means the same thing everywhere. The core is `no_std` and
//! allocation-free (the firmware links it); `alloc` adds owned views and lookup tables, `std` adds
//! capture-file readers, `serde` adds the JSON forms used on the wire and by `dwell-edge decode`.
//!
//! # Layout
//! - [`anon`] — the anonymous tier's keyed address hash (gateway and firmware alike).
//! - [`ad`] — the BLE advertising-data (AD structure) walk and the generic AD fields.
//! - [`frame`] — beacon frames, decode and encode: iBeacon, AltBeacon, Eddystone UID/URL/TLM/EID.
//! - [`eid`] — Eddystone-EID computation (AES-128) and, with `alloc`, the resolver.
//! - [`hci`] — HCI LE Advertising Report events (legacy and extended).
//! - [`distance`] — RSSI → distance (log-distance path loss).
//! - [`definitions`] — the versioned visit definitions: thresholds, dwell buckets, visitor vs passer-by.
//! - [`wifi`] — radiotap and 802.11 probe-request parsing; with `std`, pcap/pcapng reading.
//! - [`btsnoop`] (`std`) — btsnoop capture files (`btmon -w`, Android HCI snoop logs).
//! - [`wire`] (`alloc` + `serde`) — the v1 MQTT payloads; [`topic`] — the v1 topic names.
//! - [`hex`] — allocation-free lowercase hex and UUID formatting.
//! - [`node_report`] — the zone-node report: compact versioned binary with CRC, encode and decode.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod ad;
pub mod anon;
pub mod definitions;
pub mod distance;
pub mod eid;
pub mod frame;
pub mod hci;
pub mod hex;
pub mod node_report;
pub mod topic;
pub mod wifi;

#[cfg(feature = "std")]
pub mod btsnoop;
#[cfg(all(feature = "alloc", feature = "serde"))]
pub mod wire;

pub use uuid::Uuid;
