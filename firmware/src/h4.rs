//! The H4 (UART) transport: cuts the controller's byte stream into HCI packets.
//!
//! A UART has no framing: every packet is one indicator byte (`0x04` event, `0x02` ACL, `0x03` SCO,
//! `0x05` ISO) followed by a header that carries its length. After line noise, a dropped byte or a
//! controller reboot the reader may be in the middle of nothing it understands, so it resyncs: a
//! byte that is not a known indicator is skipped and counted, and the next known indicator starts a
//! new packet. Events (the only packets a scanning node needs) are buffered in a fixed 257-byte
//! buffer, which holds the largest event HCI allows (code, length, 255 parameter bytes); ACL, SCO
//! and ISO payloads are skipped without being buffered. Event code 0x00 does not exist, so an
//! `04 00` start is treated as garbage too.
//!
//! The reader is a byte-at-a-time state machine ([`H4Reader::push`]) so it can be fed from an
//! interrupt ring buffer, a test script or a file alike; [`H4Reader::read_packet`] drives it from
//! an `embedded-io` [`Read`] + [`ReadReady`] without blocking on an idle line.

use embedded_io::{Read, ReadReady};

/// H4 indicator: HCI command (host → controller only).
pub const H4_COMMAND: u8 = 0x01;
/// H4 indicator: ACL data.
pub const H4_ACL: u8 = 0x02;
/// H4 indicator: SCO data.
pub const H4_SCO: u8 = 0x03;
/// H4 indicator: HCI event.
pub const H4_EVENT: u8 = 0x04;
/// H4 indicator: ISO data.
pub const H4_ISO: u8 = 0x05;

/// Largest event: code, parameter length, 255 parameter bytes.
pub const MAX_EVENT_LEN: usize = 2 + 255;

/// Counters of what the reader threw away; never reset by the reader itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct H4Stats {
    /// Bytes skipped while looking for a packet indicator.
    pub garbage_bytes: u32,
    /// Complete ACL / SCO / ISO packets skipped.
    pub skipped_packets: u32,
    /// Events delivered.
    pub events: u32,
    /// Partial packets abandoned by [`H4Reader::abandon_partial`] (a stalled line).
    pub abandoned: u32,
    /// Every byte pushed (wrapping), so a caller can tell whether the line moved.
    pub bytes: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for an indicator byte.
    Idle,
    /// Event: reading code and length (`got` of 2 bytes so far).
    EventHeader { got: u8 },
    /// Event: reading `left` more parameter bytes into the buffer.
    EventBody { left: u8 },
    /// ACL/SCO/ISO: reading the header (3 bytes for SCO, 4 otherwise), `got` bytes so far.
    DataHeader { kind: u8, got: u8 },
    /// ACL/SCO/ISO: skipping `left` payload bytes.
    Skip { left: u16 },
}

/// A complete event, borrowed from the reader: the bytes start at the event code (no indicator),
/// the form [`dwell_shared::hci::parse_event`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a>(pub &'a [u8]);

impl<'a> Event<'a> {
    /// The HCI event code.
    pub fn code(&self) -> u8 {
        self.0[0]
    }

    /// The event parameters (after code and length).
    pub fn params(&self) -> &'a [u8] {
        &self.0[2..]
    }
}

/// The H4 packet cutter; see the module docs.
#[derive(Debug)]
pub struct H4Reader {
    buf: [u8; MAX_EVENT_LEN],
    len: usize,
    state: State,
    hdr: [u8; 4],
    stats: H4Stats,
}

impl Default for H4Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl H4Reader {
    pub const fn new() -> Self {
        H4Reader {
            buf: [0; MAX_EVENT_LEN],
            len: 0,
            state: State::Idle,
            hdr: [0; 4],
            stats: H4Stats {
                garbage_bytes: 0,
                skipped_packets: 0,
                events: 0,
                abandoned: 0,
                bytes: 0,
            },
        }
    }

    pub fn stats(&self) -> H4Stats {
        self.stats
    }

    /// True between the first and the last byte of a packet.
    pub fn is_mid_packet(&self) -> bool {
        self.state != State::Idle
    }

    /// Drops a partial packet (the caller saw the line stall mid-packet: a truncated packet), so
    /// the next byte is read as an indicator again.
    pub fn abandon_partial(&mut self) {
        if self.is_mid_packet() {
            self.stats.abandoned += 1;
            self.state = State::Idle;
            self.len = 0;
        }
    }

    /// Feeds one byte; returns true when it completed an event, which [`H4Reader::event`] then
    /// lends until the next push.
    pub fn push(&mut self, b: u8) -> bool {
        self.stats.bytes = self.stats.bytes.wrapping_add(1);
        match self.state {
            State::Idle => {
                self.len = 0;
                match b {
                    H4_EVENT => self.state = State::EventHeader { got: 0 },
                    H4_ACL | H4_SCO | H4_ISO => self.state = State::DataHeader { kind: b, got: 0 },
                    _ => self.stats.garbage_bytes += 1,
                }
                false
            }
            State::EventHeader { got } => {
                if got == 0 && b == 0x00 {
                    // No event has code 0: this `04` was noise. Count both bytes and resync.
                    self.stats.garbage_bytes += 2;
                    self.state = State::Idle;
                    return false;
                }
                self.buf[usize::from(got)] = b;
                self.len = usize::from(got) + 1;
                if got == 0 {
                    self.state = State::EventHeader { got: 1 };
                    false
                } else if b == 0 {
                    self.finish_event()
                } else {
                    self.state = State::EventBody { left: b };
                    false
                }
            }
            State::EventBody { left } => {
                self.buf[self.len] = b;
                self.len += 1;
                if left == 1 {
                    self.finish_event()
                } else {
                    self.state = State::EventBody { left: left - 1 };
                    false
                }
            }
            State::DataHeader { kind, got } => {
                self.hdr[usize::from(got)] = b;
                let got = got + 1;
                let need = if kind == H4_SCO { 3 } else { 4 };
                if got < need {
                    self.state = State::DataHeader { kind, got };
                    return false;
                }
                let left = match kind {
                    H4_SCO => u16::from(self.hdr[2]),
                    H4_ACL => u16::from_le_bytes([self.hdr[2], self.hdr[3]]),
                    // ISO: 14-bit length.
                    _ => u16::from_le_bytes([self.hdr[2], self.hdr[3]]) & 0x3fff,
                };
                if left == 0 {
                    self.stats.skipped_packets += 1;
                    self.state = State::Idle;
                } else {
                    self.state = State::Skip { left };
                }
                false
            }
            State::Skip { left } => {
                if left == 1 {
                    self.stats.skipped_packets += 1;
                    self.state = State::Idle;
                } else {
                    self.state = State::Skip { left: left - 1 };
                }
                false
            }
        }
    }

    fn finish_event(&mut self) -> bool {
        self.state = State::Idle;
        self.stats.events += 1;
        true
    }

    /// The last completed event (valid right after [`H4Reader::push`] returned true).
    pub fn event(&self) -> Event<'_> {
        Event(&self.buf[..self.len])
    }

    /// Reads bytes while the UART has them, until an event completes (`Ok(Some)`) or the line is
    /// idle (`Ok(None)`). Never blocks on an idle line: it asks [`ReadReady`] first.
    ///
    /// Bytes are read one at a time so nothing after the event is taken from the UART (an
    /// interrupt-driven UART driver buffers them anyway).
    pub fn read_packet<R: Read + ReadReady>(
        &mut self,
        uart: &mut R,
    ) -> Result<Option<Event<'_>>, R::Error> {
        loop {
            if !uart.read_ready()? {
                return Ok(None);
            }
            let mut b = [0u8; 1];
            if uart.read(&mut b)? == 0 {
                return Ok(None);
            }
            if self.push(b[0]) {
                return Ok(Some(self.event()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(r: &mut H4Reader, bytes: &[u8], out: &mut [[u8; 8]; 4]) -> usize {
        let mut n = 0;
        for &b in bytes {
            if r.push(b) {
                let e = r.event().0;
                out[n][..e.len().min(8)].copy_from_slice(&e[..e.len().min(8)]);
                n += 1;
            }
        }
        n
    }

    #[test]
    fn events_are_length_framed() {
        let mut r = H4Reader::new();
        let mut out = [[0u8; 8]; 4];
        // Command Complete for HCI_Reset, then a zero-parameter event.
        let n = feed(
            &mut r,
            &[0x04, 0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00, 0x04, 0x1a, 0x00],
            &mut out,
        );
        assert_eq!(n, 2);
        assert_eq!(&out[0][..6], &[0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00]);
        assert_eq!(&out[1][..2], &[0x1a, 0x00]);
        assert_eq!(r.stats().garbage_bytes, 0);
    }

    #[test]
    fn garbage_is_skipped_and_counted() {
        let mut r = H4Reader::new();
        let mut out = [[0u8; 8]; 4];
        let n = feed(
            &mut r,
            &[0xff, 0x00, 0x7e, 0x04, 0x00, 0x04, 0x10, 0x01, 0x03],
            &mut out,
        );
        assert_eq!(n, 1);
        assert_eq!(&out[0][..3], &[0x10, 0x01, 0x03]);
        assert_eq!(r.stats().garbage_bytes, 5);
    }

    #[test]
    fn acl_sco_and_iso_are_skipped_whole() {
        let mut r = H4Reader::new();
        let mut out = [[0u8; 8]; 4];
        let n = feed(
            &mut r,
            &[
                0x02, 0x01, 0x20, 0x03, 0x00, 0xaa, 0x04, 0x04, // ACL with 3 payload bytes
                0x03, 0x01, 0x00, 0x01, 0x04, // SCO with 1 payload byte (an 0x04 in it)
                0x05, 0x01, 0x00, 0x00, 0x00, // ISO, empty
                0x04, 0x10, 0x01, 0x03,
            ],
            &mut out,
        );
        assert_eq!(n, 1);
        assert_eq!(r.stats().skipped_packets, 3);
        assert_eq!(r.stats().garbage_bytes, 0);
    }

    #[test]
    fn a_stalled_partial_packet_can_be_abandoned() {
        let mut r = H4Reader::new();
        let mut out = [[0u8; 8]; 4];
        assert_eq!(feed(&mut r, &[0x04, 0x3e, 0x20, 0x02], &mut out), 0);
        assert!(r.is_mid_packet());
        r.abandon_partial();
        assert_eq!(feed(&mut r, &[0x04, 0x10, 0x01, 0x03], &mut out), 1);
        assert_eq!(r.stats().abandoned, 1);
    }
}
