//! Beacon-frame decoding never touches the heap: a counting global allocator proves it on the real
//! capture and the upstream vectors (the hot path of the gateway and the firmware).

// A counting allocator needs `unsafe impl GlobalAlloc`; this test file is the only place that does.
#![allow(unsafe_code)]

use dwell_shared::btsnoop::{BtsnoopReader, PacketKind};
use dwell_shared::{frame, hci};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// Delegates to the system allocator and counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hci_and_frame_decoding_do_not_allocate() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/captures/horizon74_btsnoop_hci.log"
    );
    let events: Vec<Vec<u8>> = BtsnoopReader::open(path)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|r| r.packet.kind == PacketKind::Event)
        .map(|r| r.packet.bytes)
        .collect();
    let mut beacon = [0u8; 31];
    let n = frame::Frame::EddystoneEid(frame::EddystoneEid {
        tx_power: -20,
        eid: [1, 2, 3, 4, 5, 6, 7, 8],
    })
    .encode(&mut beacon)
    .unwrap();

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut reports = 0;
    let mut frames = 0;
    for e in &events {
        if let Ok(it) = hci::parse_event(e) {
            for r in it.flatten() {
                reports += 1;
                frames += frame::frames(r.data).count();
            }
        }
    }
    frames += frame::frames(&beacon[..n]).count();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(reports, 412);
    assert!(frames >= 1);
    assert_eq!(after - before, 0, "decoding allocated");
}
