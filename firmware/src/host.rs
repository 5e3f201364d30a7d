//! Host-side stand-ins for the node's peripherals (`std` feature): a recorded H4 stream as the
//! controller's UART, beams that are never broken, and a delay that sleeps or not. The host
//! example runs the node over them, and the gateway's end-to-end tests use them to produce real
//! node reports from real captures.

use alloc::vec::Vec;
use embedded_io::{ErrorKind, ErrorType, Read, ReadReady, Write};
use std::collections::VecDeque;

/// A recorded stream, with a Command Complete injected after each command the node writes.
#[derive(Debug)]
pub struct Replay {
    /// Answers waiting to be read; they go before the recording.
    pub answers: VecDeque<u8>,
    pub recording: VecDeque<u8>,
    /// Bytes of a command being written.
    pub cmd: Vec<u8>,
}

impl ErrorType for Replay {
    type Error = ErrorKind;
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        for &b in buf {
            self.cmd.push(b);
            if self.cmd.len() >= 4 && self.cmd.len() == 4 + usize::from(self.cmd[3]) {
                self.answers
                    .extend([0x04, 0x0e, 0x04, 0x01, self.cmd[1], self.cmd[2], 0x00]);
                self.cmd.clear();
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl ReadReady for Replay {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        Ok(!self.answers.is_empty() || !self.recording.is_empty())
    }
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let mut n = 0;
        while n < buf.len() {
            let Some(b) = self
                .answers
                .pop_front()
                .or_else(|| self.recording.pop_front())
            else {
                break;
            };
            buf[n] = b;
            n += 1;
        }
        Ok(n)
    }
}

impl Replay {
    /// A controller that sends `recording` (controller → host H4 bytes) and answers every command.
    pub fn new(recording: VecDeque<u8>) -> Self {
        Replay {
            answers: VecDeque::new(),
            recording,
            cmd: Vec::new(),
        }
    }
}

/// A door with no beams wired: both always clear.
#[derive(Debug)]
pub struct NoBeam;

impl embedded_hal::digital::ErrorType for NoBeam {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::InputPin for NoBeam {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Sleeps for real (serial) or not at all (replay).
#[derive(Debug)]
pub struct HostDelay(pub bool);

impl embedded_hal::delay::DelayNs for HostDelay {
    fn delay_ns(&mut self, ns: u32) {
        if self.0 {
            std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)));
        }
    }
}

/// A recording as controller → host H4 bytes: raw H4 as is, or the received packets of a btsnoop
/// file (`btmon -w`, Android HCI snoop log).
pub fn h4_from_file(bytes: &[u8]) -> Result<VecDeque<u8>, dwell_shared::btsnoop::BtsnoopError> {
    if !bytes.starts_with(b"btsnoop\0") {
        return Ok(bytes.iter().copied().collect());
    }
    let mut out = VecDeque::new();
    for rec in dwell_shared::btsnoop::BtsnoopReader::new(bytes)? {
        let rec = rec?;
        if rec.direction == dwell_shared::btsnoop::Direction::Received {
            out.extend(rec.h4_bytes());
        }
    }
    Ok(out)
}
