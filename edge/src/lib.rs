//! `dwell-edge`: the store gateway.
//!
//! Sources feed observations (a BLE advertisement or Wi-Fi probe request heard by one receiver)
//! through named stages: identify (privacy tiers: raw addresses stop here) → track (zones, dwell,
//! paths, visits) → outbox (durable on disk) → uplink (MQTT, QoS 1, deleted on PubAck).
//!
//! # Layout
//! - [`config`] — the gateway's one TOML file (`dwell-edge.toml`): typed, validated, commented
//!   default embedded.
//! - [`source`] — where observations come from: the `Scanner` trait and its sources.
//! - [`identify`] — privacy tiers: EIDs pass, static beacons by id, everything else salted-hashed.
//! - [`track`] — the tracker stage: smoothing, positioning, zone hysteresis, visits, dwell
//!   milestones, paths, presence and traffic counts.
//! - [`pipeline`] — the stages above joined for one store; live and replay both drive it.
//! - [`outbox`] — the durable, capped, seq-ordered store events wait in until the broker acks them.
//! - [`uplink`] — the forwarder: outbox → MQTT (QoS 1, delete on PubAck), a state machine.
//! - [`control`] — the gateway's subscription to its pushed layout and its zone nodes' reports.
//! - [`gateway`] — `dwell-edge run`: every stage joined by bounded channels, with shutdown.
//! - [`metrics`] — `/metrics` in the Prometheus text format.
//! - [`replay`] — `dwell-edge replay`: recorded sightings through the pipeline, offline.
//! - [`simulate`] — simulated shoppers in a floor plan, with ground truth and accuracy scoring.
//! - [`mod@bench`] — `dwell-edge bench`: sightings/s through the real stages, and resident memory.
//! - [`doctor`] — `dwell-edge doctor`: config, radios, broker, disk, clock, each with its fix.
//! - [`decode`] — `dwell-edge decode`: hex lines, btsnoop captures and pcap files to JSON lines.
// `deny`, not `forbid`: the raw HCI and AF_PACKET sockets (source/hci_socket.rs,
// source/wifi_monitor.rs) each build one sockaddr in a tiny `#[allow(unsafe_code)]` block with a
// `// SAFETY:` comment; nothing else may.
#![deny(unsafe_code)]

pub mod bench;
pub mod config;
pub mod control;
pub mod decode;
pub mod doctor;
pub mod gateway;
pub mod identify;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod replay;
pub mod signal;
pub mod simulate;
pub mod source;
pub mod track;
pub mod uplink;
