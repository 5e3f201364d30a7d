//! AD-structure walk, generic fields, beacon frames and their JSON: arbitrary bytes never panic,
//! and every frame found re-encodes and decodes to itself.
#![no_main]

use dwell_shared::ad::AdFields;
use dwell_shared::frame::{self, Frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fields = AdFields::parse(data);
    let _ = serde_json::to_string(&fields);
    for f in frame::frames(data) {
        let _ = serde_json::to_string(&f);
        let mut buf = [0u8; 64];
        let n = f.encode(&mut buf).expect("every decoded frame re-encodes");
        let back: Vec<Frame> = frame::frames(&buf[..n]).collect();
        assert_eq!(back, vec![f]);
    }
});
