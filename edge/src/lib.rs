//! `dwell-edge`: the store gateway.
//!
//! Today the library holds the offline decoding tools the gateway is built on; the live pipeline
//! (sources → decode → identify → track → outbox → uplink) grows here stage by stage.
//!
//! # Layout
//! - [`decode`] — `dwell-edge decode`: hex lines, btsnoop captures and pcap files to JSON lines.
#![forbid(unsafe_code)]

pub mod decode;
