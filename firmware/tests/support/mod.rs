//! Test doubles for the UART: an `embedded-io` port that plays a script of expected writes and
//! bytes to read, in order, and panics on the first byte that differs.
#![allow(dead_code)]

use std::collections::VecDeque;

use embedded_io::{ErrorKind, ErrorType, Read, ReadReady, Write};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The node must write exactly these bytes next.
    Write(Vec<u8>),
    /// These bytes arrive from the controller (readable once every earlier write happened).
    Read(Vec<u8>),
    /// The line is idle for one `read_ready` check (a pause between bytes).
    Gap,
}

/// The scripted UART.
#[derive(Debug, Default)]
pub struct ScriptedUart {
    steps: VecDeque<Step>,
    pos: usize,
    written: usize,
}

impl ScriptedUart {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        ScriptedUart {
            steps: steps
                .into_iter()
                .filter(|s| !matches!(s, Step::Read(b) | Step::Write(b) if b.is_empty()))
                .collect(),
            pos: 0,
            written: 0,
        }
    }

    /// Panics unless the whole script was played.
    pub fn done(&self) {
        assert!(
            self.steps.is_empty(),
            "script not finished at byte {} of {:02x?}",
            self.pos,
            self.steps.front()
        );
    }

    pub fn remaining(&self) -> usize {
        self.steps.len()
    }

    fn advance(&mut self, len: usize) {
        self.pos += 1;
        if self.pos == len {
            self.steps.pop_front();
            self.pos = 0;
        }
    }
}

impl ErrorType for ScriptedUart {
    type Error = ErrorKind;
}

impl Write for ScriptedUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        for &b in buf {
            let Some(Step::Write(expect)) = self.steps.front() else {
                panic!(
                    "unexpected write {b:02x} (byte {} written); next step {:02x?}",
                    self.written,
                    self.steps.front()
                );
            };
            assert_eq!(
                b, expect[self.pos],
                "written byte {} of {:02x?} differs",
                self.pos, expect
            );
            let len = expect.len();
            self.written += 1;
            self.advance(len);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl ReadReady for ScriptedUart {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        if self.steps.front() == Some(&Step::Gap) {
            self.steps.pop_front();
            return Ok(false);
        }
        Ok(matches!(self.steps.front(), Some(Step::Read(_))))
    }
}

impl Read for ScriptedUart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let mut n = 0;
        while n < buf.len() {
            let Some(Step::Read(bytes)) = self.steps.front() else {
                break;
            };
            buf[n] = bytes[self.pos];
            let len = bytes.len();
            n += 1;
            self.advance(len);
        }
        Ok(n)
    }
}

/// A beam input whose level the test sets.
#[derive(Clone, Debug, Default)]
pub struct FakeBeam(pub std::rc::Rc<std::cell::Cell<bool>>);

impl embedded_hal::digital::ErrorType for FakeBeam {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::InputPin for FakeBeam {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(self.0.get())
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.0.get())
    }
}

/// `04 0e 04 01 <opcode> 00`: Command Complete, success.
pub fn cc(opcode: u16) -> Vec<u8> {
    cc_status(opcode, 0)
}

pub fn cc_status(opcode: u16, status: u8) -> Vec<u8> {
    let [lo, hi] = opcode.to_le_bytes();
    vec![0x04, 0x0e, 0x04, 0x01, lo, hi, status]
}

pub const RESET: [u8; 4] = [0x01, 0x03, 0x0c, 0x00];
pub const SET_EVENT_MASK: [u8; 12] = [
    0x01, 0x01, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x20,
];
/// Passive, 60 ms interval and window, public address, no filter.
pub const SCAN_PARAMS: [u8; 11] = [
    0x01, 0x0b, 0x20, 0x07, 0x00, 0x60, 0x00, 0x60, 0x00, 0x00, 0x00,
];
/// Enable, filter duplicates off.
pub const SCAN_ON: [u8; 6] = [0x01, 0x0c, 0x20, 0x02, 0x01, 0x00];
pub const SCAN_OFF: [u8; 6] = [0x01, 0x0c, 0x20, 0x02, 0x00, 0x00];
pub const ADV_ON: [u8; 5] = [0x01, 0x0a, 0x20, 0x01, 0x01];
pub const ADV_OFF: [u8; 5] = [0x01, 0x0a, 0x20, 0x01, 0x00];

/// The exact exchange of a successful bring-up.
pub fn bring_up() -> Vec<Step> {
    vec![
        Step::Write(RESET.to_vec()),
        Step::Read(cc(0x0c03)),
        Step::Write(SET_EVENT_MASK.to_vec()),
        Step::Read(cc(0x0c01)),
        Step::Write(SCAN_PARAMS.to_vec()),
        Step::Read(cc(0x200b)),
        Step::Write(SCAN_ON.to_vec()),
        Step::Read(cc(0x200c)),
    ]
}

/// A command write answered by its Command Complete.
pub fn exchange(cmd: &[u8]) -> Vec<Step> {
    let opcode = u16::from_le_bytes([cmd[1], cmd[2]]);
    vec![Step::Write(cmd.to_vec()), Step::Read(cc(opcode))]
}

/// A legacy single-report LE Advertising Report event in H4 form.
pub fn adv_event(addr: [u8; 6], addr_type: u8, data: &[u8], rssi: i8) -> Vec<u8> {
    let mut b = [0u8; 300];
    let n = dwell_shared::hci::encode_legacy_report(&mut b, 0x03, addr_type, &addr, data, rssi)
        .expect("fits");
    b[..n].to_vec()
}

/// LE advertising report events (H4 form) from the real Android capture in the test fixtures.
pub fn capture_adv_events(max: usize) -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/captures/horizon74_btsnoop_hci.log"
    );
    let reader = dwell_shared::btsnoop::BtsnoopReader::open(path).expect("capture opens");
    reader
        .filter_map(Result::ok)
        .map(|r| r.h4_bytes())
        .filter(|b| b.len() > 4 && b[0] == 0x04 && b[1] == 0x3e && b[3] == 0x02)
        .take(max)
        .collect()
}
