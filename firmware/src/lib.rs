//! `dwell-node`: the zone sensor node firmware, hardware-independent.
//!
//! A zone node scans BLE through a Bluetooth controller on a UART (standard HCI over H4), counts
//! people through the entrance with two infrared break-beams, advertises its zone's iBeacon
//! between scan windows, and sends the gateway a compact report per window. The crate is
//! `#![no_std]` without an allocator and generic over `embedded-hal` 1.0 (pins, delay) and
//! `embedded-io` (the UART), so a board binary only wires peripherals to [`node::Node`] and the
//! whole logic runs on the host in tests. HCI parsing, beacon frames and the report codec are
//! `dwell_shared`'s: the node and the gateway read the same bytes with the same code.
//!
//! # Layout
//! - [`h4`] — cuts the UART byte stream into HCI packets; resyncs on garbage.
//! - [`controller`] — HCI commands, controller bring-up and recovery, typed `Error<E>`.
//! - [`aggregate`] — per-window sighting table (beacon identity or salted address hash).
//! - [`door`] — the two-beam people counter: debounce, direction, backing out, tailgating.
//! - [`beacon`] — the zone iBeacon's HCI commands and the scan/advertise [`beacon::Schedule`].
//! - [`node`] — the node: one `poll` step that ties everything together and emits reports.
//! - `host` (feature `std`) — host stand-ins for the peripherals: a recorded H4 stream, idle
//!   beams, a host delay; for the host example and end-to-end tests.
//!
//! The report format itself is [`dwell_shared::node_report`].
#![no_std]

#[cfg(feature = "std")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod aggregate;
pub mod beacon;
pub mod controller;
pub mod door;
pub mod h4;
#[cfg(feature = "std")]
pub mod host;
pub mod node;

pub use dwell_shared::node_report;
pub use node::{Config, Node};
