//! Wi-Fi probe requests: from capture bytes to the fields Dwell counts.
//!
//! Phones looking for networks send 802.11 probe requests; a monitor-mode radio hears them with a
//! radiotap header in front (signal, channel, flags). This module owns that path, one layer per
//! file so each can be tested against its own golden bytes:
//! - [`radiotap`] — the radiotap header walk (`no_std`, allocation-free): signal, frequency, rate,
//!   TSFT, and whether the frame carries its FCS;
//! - [`ieee80211`] — the 802.11 MAC header and the probe-request body with its information
//!   elements (`no_std`, allocation-free);
//! - [`pcap`] (`std`) — pcap and pcapng files (linktypes 127 and 105) turned into
//!   [`pcap::ProbeRecord`]s, with counts of everything that was not one.
//!
//! The byte parsers never panic on outside bytes and never allocate, so the firmware and fuzz
//! targets use exactly the code the edge runs.

pub mod ieee80211;
pub mod radiotap;

#[cfg(feature = "std")]
pub mod pcap;
