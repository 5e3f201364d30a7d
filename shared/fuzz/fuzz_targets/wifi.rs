//! Wi-Fi capture packets from arbitrary bytes: the radiotap walk, the 802.11 frame (with and
//! without FCS) and the pcap packet decoder never panic; what they return stays inside the input
//! and agrees between the layered and the one-call paths.
#![no_main]

use dwell_shared::wifi::ieee80211::{self, Frame};
use dwell_shared::wifi::{pcap, radiotap};
use libfuzzer_sys::fuzz_target;

/// Whether `inner` is a sub-slice of `outer`.
fn within(inner: &[u8], outer: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

/// Parses one 802.11 frame; true when it is a probe request.
fn check_80211(frame: &[u8], fcs_at_end: bool) -> bool {
    match ieee80211::parse(frame, fcs_at_end) {
        Ok(Frame::ProbeRequest(p)) => {
            assert!(within(p.ies, frame));
            // The SSID borrows its element's data; absent, it is the empty wildcard.
            assert!(p.ssid.is_empty() || within(p.ssid, p.ies));
            let fcs = if fcs_at_end { ieee80211::FCS_LEN } else { 0 };
            assert!(p.ies.len() + ieee80211::MGMT_HEADER_LEN + fcs <= frame.len());
            let mut walk = p.elements();
            for e in walk.by_ref() {
                assert!(within(e.data, p.ies));
            }
            let _ = walk.truncated();
            p.ie_ids().count();
            let _ = p.ssid_lossy();
            true
        }
        Ok(Frame::Other(_)) | Err(_) => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut radiotap_probe = false;
    if let Ok(rt) = radiotap::parse(data) {
        assert!(rt.len >= 8 && rt.len <= data.len());
        let _ = rt.bad_fcs();
        radiotap_probe = check_80211(&data[rt.len..], rt.fcs_at_end);
    }
    let plain_probe = check_80211(data, false);
    check_80211(data, true);

    let a = pcap::decode_packet(true, 0, data);
    assert_eq!(
        a.is_some(),
        radiotap_probe,
        "decode_packet(radiotap) agrees with the layers"
    );
    let b = pcap::decode_packet(false, 0, data);
    assert_eq!(
        b.is_some(),
        plain_probe,
        "decode_packet(plain) agrees with the layers"
    );
    if let Some(r) = b {
        assert_eq!((r.rssi, r.freq_mhz), (None, None), "no radiotap, no signal");
    }
});
