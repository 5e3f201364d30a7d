//! HCI LE Advertising Report events (H4 and bare), and the salvage path: never panic, every
//! report's data stays inside the event.
#![no_main]

use dwell_shared::{frame, hci};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for reports in [hci::parse_h4(data), hci::parse_event(data)]
        .into_iter()
        .flatten()
    {
        for r in reports.flatten() {
            assert!(r.data.len() <= data.len());
            frame::frames(r.data).count();
        }
    }
    if let Some(r) = hci::salvage_single_legacy(data) {
        assert!(r.data.len() < data.len());
    }
});
