//! btsnoop files (H1, H4, Linux monitor) read from arbitrary bytes: the reader never panics, never
//! loops, never yields more than the bytes hold, and every event record it yields goes through the
//! HCI advertising-report parser and the beacon-frame walk without panicking.
#![no_main]

use dwell_shared::btsnoop::{BtsnoopError, BtsnoopReader, PacketKind};
use dwell_shared::{frame, hci};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

/// File header, then at least a 24-byte record header per record.
const HEADER_LEN: usize = 16;
const RECORD_HEADER_LEN: usize = 24;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = BtsnoopReader::new(Cursor::new(data)) else {
        return;
    };
    // Every record, read or refused, consumes at least its 24-byte header, so a reader that yields
    // more items than that has lost its place in the file.
    let max_items = (data.len() - HEADER_LEN) / RECORD_HEADER_LEN + 1;
    let mut items = 0;
    let mut last_number = 0;
    for item in reader {
        items += 1;
        assert!(items <= max_items, "more items than the file can hold");
        let record = match item {
            Ok(r) => r,
            Err(BtsnoopError::EmptyRecord { number, .. }) => {
                assert!(number > last_number);
                last_number = number;
                continue;
            }
            Err(_) => continue,
        };
        assert!(record.number > last_number, "record numbers go up");
        last_number = record.number;
        assert!(record.packet.bytes.len() <= data.len());
        if record.packet.kind == PacketKind::Event
            && let Ok(reports) = hci::parse_event(&record.packet.bytes)
        {
            for r in reports.flatten() {
                assert!(r.data.len() <= record.packet.bytes.len());
                frame::frames(r.data).count();
            }
        }
        // The H4 form is what live H4 transports hand over; it must parse the same way.
        let h4 = record.h4_bytes();
        let _ = hci::parse_h4(&h4).map(|reports| reports.count());
        let _ = hci::salvage_single_legacy(&h4);
    }
});
