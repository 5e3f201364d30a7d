//! HCI LE Advertising Report events: the controller's word for "I heard this advertisement".
//!
//! The gateway's raw-socket backend, btsnoop replay and the zone-node firmware (over an H4 UART) all
//! receive advertisements as HCI LE Meta events, and all of them parse them here, so a report means
//! the same thing on every side. Both forms are read:
//! - legacy reports (subevent 0x02), several per event, each `event_type, addr_type, addr[6],
//!   data_len, data…, rssi`, laid out one report after the other as the Linux kernel and BlueZ read
//!   them;
//! - extended reports (subevent 0x0D), each with a 24-byte header (event type bits, PHYs, SID, TX
//!   power, RSSI, periodic interval, direct address) before its data.
//!
//! Parsing borrows the event bytes and never allocates. A length that runs past the event is an
//! error for that report and ends the walk; reports before it stand.
//!
//! The other direction lives here too: [`Command`] builds the HCI commands that bring a controller
//! up as a passive LE scanner with duplicate filtering off, and that make it advertise a beacon.
//! The zone-node firmware writes them to its UART and the gateway's raw HCI socket writes them to
//! the kernel's HCI user channel, byte for byte the same; [`parse_command_result`] reads the
//! controller's answer.

use core::fmt;

/// H4 (UART) packet indicator of an HCI event.
pub const H4_EVENT: u8 = 0x04;
/// HCI event code of LE Meta events.
pub const EVENT_LE_META: u8 = 0x3e;
/// LE Meta subevent: LE Advertising Report.
pub const SUBEVENT_ADV_REPORT: u8 = 0x02;
/// LE Meta subevent: LE Extended Advertising Report.
pub const SUBEVENT_EXT_ADV_REPORT: u8 = 0x0d;
/// RSSI / TX power value meaning "not available".
pub const NOT_AVAILABLE: i8 = 127;

const LEGACY_HEADER: usize = 1 + 1 + 6 + 1; // event type, address type, address, data length
const EXTENDED_HEADER: usize = 24;

/// Which form of report an event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Legacy,
    Extended,
}

/// One advertising report, borrowed from its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvReport<'a> {
    pub kind: ReportKind,
    /// Legacy: 0 ADV_IND, 1 ADV_DIRECT_IND, 2 ADV_SCAN_IND, 3 ADV_NONCONN_IND, 4 SCAN_RSP.
    /// Extended: the event-type bit field (connectable, scannable, directed, scan response,
    /// legacy, data status).
    pub event_type: u16,
    /// 0 public, 1 random, 2 public identity, 3 random (static) identity; 0xff anonymous.
    pub addr_type: u8,
    /// The device address in display order (most significant byte first); on air it is reversed.
    pub addr: [u8; 6],
    /// Received signal strength in dBm, if the controller measured it.
    pub rssi: Option<i8>,
    /// Advertised TX power (extended reports only).
    pub tx_power: Option<i8>,
    /// The advertising data: AD structures, see [`crate::ad`].
    pub data: &'a [u8],
}

impl AdvReport<'_> {
    /// A random address whose two top bits are 00 is non-resolvable private (changes often);
    /// 01 is resolvable private (RPA, rotates about every 15 min); 11 is static random.
    pub fn random_subtype(&self) -> Option<RandomAddr> {
        if self.addr_type != 1 {
            return None;
        }
        Some(match self.addr[0] >> 6 {
            0b00 => RandomAddr::NonResolvable,
            0b01 => RandomAddr::Resolvable,
            0b11 => RandomAddr::Static,
            _ => RandomAddr::Reserved,
        })
    }

    /// For legacy reports, the PDU name as the Core specification spells it.
    pub fn legacy_event_name(&self) -> Option<&'static str> {
        if self.kind != ReportKind::Legacy {
            return None;
        }
        Some(match self.event_type {
            0 => "ADV_IND",
            1 => "ADV_DIRECT_IND",
            2 => "ADV_SCAN_IND",
            3 => "ADV_NONCONN_IND",
            4 => "SCAN_RSP",
            _ => "reserved",
        })
    }
}

/// Sub-kinds of random device addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomAddr {
    NonResolvable,
    Resolvable,
    Static,
    Reserved,
}

/// Why an event could not be read as advertising reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HciError {
    /// Fewer bytes than an event header.
    TooShort,
    /// The H4 packet indicator is not 0x04 (event).
    NotAnEvent(u8),
    /// An HCI event, but not LE Meta (carries the event code).
    NotLeMeta(u8),
    /// An LE Meta event, but not an advertising report (carries the subevent).
    NotAdvertisingReport(u8),
    /// The parameter length byte disagrees with the bytes present.
    LengthMismatch { declared: usize, actual: usize },
    /// The event announces no reports.
    NoReports,
    /// Report number `index` (from 0) runs past the end of the event.
    TruncatedReport { index: u8 },
}

impl fmt::Display for HciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HciError::TooShort => f.write_str("HCI event shorter than its header"),
            HciError::NotAnEvent(t) => write!(f, "H4 packet type 0x{t:02x} is not an event (0x04)"),
            HciError::NotLeMeta(c) => write!(f, "HCI event 0x{c:02x} is not LE Meta (0x3e)"),
            HciError::NotAdvertisingReport(s) => {
                write!(f, "LE Meta subevent 0x{s:02x} is not an advertising report")
            }
            HciError::LengthMismatch { declared, actual } => write!(
                f,
                "event declares {declared} parameter bytes but carries {actual}"
            ),
            HciError::NoReports => f.write_str("advertising report event with zero reports"),
            HciError::TruncatedReport { index } => {
                write!(
                    f,
                    "advertising report {index} runs past the end of the event"
                )
            }
        }
    }
}

impl core::error::Error for HciError {}

/// Iterator over the reports of one event. After a [`HciError::TruncatedReport`] item it ends.
#[derive(Clone, Debug)]
pub struct AdvReports<'a> {
    kind: ReportKind,
    rest: &'a [u8],
    remaining: u8,
    index: u8,
}

impl<'a> AdvReports<'a> {
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// Reports not yet yielded.
    pub fn remaining(&self) -> u8 {
        self.remaining
    }
}

/// Parses an HCI event that starts at the event code (0x3e), as btsnoop H1/monitor records and
/// raw HCI sockets deliver it.
pub fn parse_event(bytes: &[u8]) -> Result<AdvReports<'_>, HciError> {
    let [code, plen, params @ ..] = bytes else {
        return Err(HciError::TooShort);
    };
    if *code != EVENT_LE_META {
        return Err(HciError::NotLeMeta(*code));
    }
    if usize::from(*plen) != params.len() {
        return Err(HciError::LengthMismatch {
            declared: usize::from(*plen),
            actual: params.len(),
        });
    }
    let [subevent, num, rest @ ..] = params else {
        return Err(HciError::TooShort);
    };
    let kind = match *subevent {
        SUBEVENT_ADV_REPORT => ReportKind::Legacy,
        SUBEVENT_EXT_ADV_REPORT => ReportKind::Extended,
        s => return Err(HciError::NotAdvertisingReport(s)),
    };
    if *num == 0 {
        return Err(HciError::NoReports);
    }
    Ok(AdvReports {
        kind,
        rest,
        remaining: *num,
        index: 0,
    })
}

/// Parses an H4 packet (`04 3e …`), as UARTs and btsnoop datalink 1002 carry it.
pub fn parse_h4(bytes: &[u8]) -> Result<AdvReports<'_>, HciError> {
    match bytes {
        [H4_EVENT, event @ ..] => parse_event(event),
        [t, ..] => Err(HciError::NotAnEvent(*t)),
        [] => Err(HciError::TooShort),
    }
}

fn addr_from_air(b: &[u8]) -> [u8; 6] {
    [b[5], b[4], b[3], b[2], b[1], b[0]]
}

fn opt_power(v: u8) -> Option<i8> {
    let v = v as i8;
    (v != NOT_AVAILABLE).then_some(v)
}

impl<'a> Iterator for AdvReports<'a> {
    type Item = Result<AdvReport<'a>, HciError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let index = self.index;
        self.remaining -= 1;
        self.index += 1;
        let parsed = match self.kind {
            ReportKind::Legacy => legacy(self.rest),
            ReportKind::Extended => extended(self.rest),
        };
        match parsed {
            Some((report, rest)) => {
                self.rest = rest;
                Some(Ok(report))
            }
            None => {
                self.remaining = 0;
                Some(Err(HciError::TruncatedReport { index }))
            }
        }
    }
}

fn legacy(b: &[u8]) -> Option<(AdvReport<'_>, &[u8])> {
    let header = b.get(..LEGACY_HEADER)?;
    let data_len = usize::from(header[8]);
    let data = b.get(LEGACY_HEADER..LEGACY_HEADER + data_len)?;
    let rssi = *b.get(LEGACY_HEADER + data_len)?;
    Some((
        AdvReport {
            kind: ReportKind::Legacy,
            event_type: u16::from(header[0]),
            addr_type: header[1],
            addr: addr_from_air(&header[2..8]),
            rssi: opt_power(rssi),
            tx_power: None,
            data,
        },
        &b[LEGACY_HEADER + data_len + 1..],
    ))
}

fn extended(b: &[u8]) -> Option<(AdvReport<'_>, &[u8])> {
    let h = b.get(..EXTENDED_HEADER)?;
    let data_len = usize::from(h[23]);
    let data = b.get(EXTENDED_HEADER..EXTENDED_HEADER + data_len)?;
    Some((
        AdvReport {
            kind: ReportKind::Extended,
            event_type: u16::from_le_bytes([h[0], h[1]]),
            addr_type: h[2],
            addr: addr_from_air(&h[3..9]),
            tx_power: opt_power(h[12]),
            rssi: opt_power(h[13]),
            data,
        },
        &b[EXTENDED_HEADER + data_len..],
    ))
}

/// Reads a legacy single-report event whose length bytes are inconsistent, the way hcidump-era
/// tools (and beacontools) do: address at its fixed offset, RSSI as the last byte, and everything
/// between the data-length byte and the RSSI as advertising data. Only for events that
/// [`parse_h4`] / [`parse_event`] reject; callers must flag the result as salvaged.
///
/// `bytes` starts at the H4 indicator (whatever its value: some tools' logs carry 0x41 there).
pub fn salvage_single_legacy(bytes: &[u8]) -> Option<AdvReport<'_>> {
    // [0] indicator, [1] 0x3e, [2] plen, [3] subevent, [4] num, [5] event type, [6] addr type,
    // [7..13] addr, [13] data len, [14..n-1] data, [n-1] rssi.
    if bytes.len() < 15
        || bytes[1] != EVENT_LE_META
        || bytes[3] != SUBEVENT_ADV_REPORT
        || bytes[4] != 1
    {
        return None;
    }
    let last = bytes.len() - 1;
    Some(AdvReport {
        kind: ReportKind::Legacy,
        event_type: u16::from(bytes[5]),
        addr_type: bytes[6],
        addr: addr_from_air(&bytes[7..13]),
        rssi: opt_power(bytes[last]),
        tx_power: None,
        data: &bytes[14..last],
    })
}

/// Builds a legacy single-report LE Advertising Report event in H4 form (`04 3e …`) into `out`;
/// returns the length. Used by the firmware's tests, the simulator and fuzz seeds.
pub fn encode_legacy_report(
    out: &mut [u8],
    event_type: u8,
    addr_type: u8,
    addr: &[u8; 6],
    data: &[u8],
    rssi: i8,
) -> Option<usize> {
    let plen = 2 + LEGACY_HEADER + data.len() + 1;
    let total = 3 + plen;
    if plen > 255 || data.len() > 255 || out.len() < total {
        return None;
    }
    out[0] = H4_EVENT;
    out[1] = EVENT_LE_META;
    out[2] = plen as u8;
    out[3] = SUBEVENT_ADV_REPORT;
    out[4] = 1;
    out[5] = event_type;
    out[6] = addr_type;
    out[7..13].copy_from_slice(&addr_from_air(addr));
    out[13] = data.len() as u8;
    out[14..14 + data.len()].copy_from_slice(data);
    out[14 + data.len()] = rssi as u8;
    Some(total)
}

/// H4 packet indicator of an HCI command (host → controller).
pub const H4_COMMAND: u8 = 0x01;
/// HCI event code of Command Complete.
pub const EVENT_COMMAND_COMPLETE: u8 = 0x0e;
/// HCI event code of Command Status.
pub const EVENT_COMMAND_STATUS: u8 = 0x0f;
/// HCI event code of Hardware Error (the controller reset itself).
pub const EVENT_HARDWARE_ERROR: u8 = 0x10;

/// HCI command opcodes (OGF << 10 | OCF) Dwell sends.
pub mod opcode {
    pub const SET_EVENT_MASK: u16 = 0x0c01;
    pub const RESET: u16 = 0x0c03;
    pub const LE_SET_EVENT_MASK: u16 = 0x2001;
    pub const LE_SET_ADV_PARAMETERS: u16 = 0x2006;
    pub const LE_SET_ADV_DATA: u16 = 0x2008;
    pub const LE_SET_ADV_ENABLE: u16 = 0x200a;
    pub const LE_SET_SCAN_PARAMETERS: u16 = 0x200b;
    pub const LE_SET_SCAN_ENABLE: u16 = 0x200c;
}

/// The default event mask (Core spec: `0x00001FFFFFFFFFFF`) plus bit 61, LE Meta. LE Meta is *not*
/// in the default mask, and without it a strict controller never reports an advertisement.
pub const EVENT_MASK_WITH_LE_META: u64 = 0x2000_1fff_ffff_ffff;

/// LE event mask: the spec's default five LE events (connection complete, advertising report,
/// connection update, remote features, LTK request). Sent explicitly after reset so a controller
/// that kept another host's mask still reports legacy advertisements (bit 1).
pub const LE_EVENT_MASK_DEFAULT: u64 = 0x0000_0000_0000_001f;

/// Non-connectable undirected advertising (ADV_NONCONN_IND): a beacon accepts no connections.
pub const ADV_NONCONN_IND: u8 = 0x03;

/// Longest parameter block Dwell sends (LE Set Advertising Data: 1 + 31).
pub const MAX_COMMAND_PARAMS: usize = 32;

/// Longest legacy advertising payload.
pub const MAX_LEGACY_ADV_DATA: usize = 31;

/// One HCI command in H4 form (`01`, opcode LE, length, parameters), ready to write to a UART or
/// an HCI user-channel socket. Fixed-size, no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command {
    buf: [u8; 4 + MAX_COMMAND_PARAMS],
    len: u8,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({})", crate::hex::Hex(self.as_bytes()))
    }
}

impl Command {
    /// A command with up to [`MAX_COMMAND_PARAMS`] parameter bytes; `None` if longer.
    pub fn new(opcode: u16, params: &[u8]) -> Option<Self> {
        if params.len() > MAX_COMMAND_PARAMS {
            return None;
        }
        let mut buf = [0u8; 4 + MAX_COMMAND_PARAMS];
        buf[0] = H4_COMMAND;
        buf[1..3].copy_from_slice(&opcode.to_le_bytes());
        buf[3] = params.len() as u8;
        buf[4..4 + params.len()].copy_from_slice(params);
        Some(Command {
            buf,
            len: (4 + params.len()) as u8,
        })
    }

    /// A command whose parameter length is checked at compile time.
    pub fn fixed<const P: usize>(opcode: u16, params: [u8; P]) -> Self {
        const { assert!(P <= MAX_COMMAND_PARAMS) };
        match Self::new(opcode, &params) {
            Some(c) => c,
            // The const assertion above rules this out.
            None => unreachable!(),
        }
    }

    pub fn opcode(&self) -> u16 {
        u16::from_le_bytes([self.buf[1], self.buf[2]])
    }

    /// The parameter bytes.
    pub fn params(&self) -> &[u8] {
        &self.buf[4..usize::from(self.len)]
    }

    /// The H4 bytes to write: indicator, opcode, length, parameters.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// `HCI_Reset`: `01 03 0c 00`.
    pub fn reset() -> Self {
        Self::fixed(opcode::RESET, [])
    }

    /// `HCI_Set_Event_Mask`.
    pub fn set_event_mask(mask: u64) -> Self {
        Self::fixed(opcode::SET_EVENT_MASK, mask.to_le_bytes())
    }

    /// `HCI_LE_Set_Event_Mask`.
    pub fn le_set_event_mask(mask: u64) -> Self {
        Self::fixed(opcode::LE_SET_EVENT_MASK, mask.to_le_bytes())
    }

    /// `LE_Set_Scan_Parameters`: passive, public own address, accept all advertisers.
    pub fn le_set_scan_parameters(p: &ScanParams) -> Self {
        let i = p.interval.to_le_bytes();
        let w = p.window.to_le_bytes();
        Self::fixed(
            opcode::LE_SET_SCAN_PARAMETERS,
            [0x00, i[0], i[1], w[0], w[1], 0x00, 0x00],
        )
    }

    /// `LE_Set_Scan_Enable`, duplicate filtering always off: presence needs every advertisement,
    /// not one per device per scan.
    pub fn le_set_scan_enable(enable: bool) -> Self {
        Self::fixed(opcode::LE_SET_SCAN_ENABLE, [u8::from(enable), 0x00])
    }

    /// `LE_Set_Advertising_Parameters`: `interval` (0.625 ms units) as both minimum and maximum,
    /// `adv_type` (e.g. [`ADV_NONCONN_IND`]), public own address, undirected, all three channels,
    /// no filter.
    pub fn le_set_adv_parameters(interval: u16, adv_type: u8) -> Self {
        let i = interval.to_le_bytes();
        Self::fixed(
            opcode::LE_SET_ADV_PARAMETERS,
            [
                i[0], i[1], i[0], i[1], adv_type, 0x00, // own address: public
                0x00, // peer address type (unused when undirected)
                0, 0, 0, 0, 0, 0,    // peer address
                0x07, // channels 37, 38, 39
                0x00, // no filter
            ],
        )
    }

    /// `LE_Set_Advertising_Data`: length byte, then the payload zero-padded to 31 bytes. `None`
    /// if the payload is longer than a legacy advertisement holds.
    pub fn le_set_adv_data(payload: &[u8]) -> Option<Self> {
        if payload.len() > MAX_LEGACY_ADV_DATA {
            return None;
        }
        let mut params = [0u8; 1 + MAX_LEGACY_ADV_DATA];
        params[0] = payload.len() as u8;
        params[1..1 + payload.len()].copy_from_slice(payload);
        Some(Self::fixed(opcode::LE_SET_ADV_DATA, params))
    }

    /// `LE_Set_Advertising_Enable`.
    pub fn le_set_adv_enable(enable: bool) -> Self {
        Self::fixed(opcode::LE_SET_ADV_ENABLE, [u8::from(enable)])
    }
}

/// Scan timing, in the controller's units of 0.625 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanParams {
    /// Time between scan starts (0x0004..=0x4000).
    pub interval: u16,
    /// Time listening per interval (≤ interval). Equal to the interval: listen continuously.
    pub window: u16,
}

impl Default for ScanParams {
    /// 60 ms interval and window: continuous listening, hopping channel every 60 ms.
    fn default() -> Self {
        ScanParams {
            interval: 0x0060,
            window: 0x0060,
        }
    }
}

/// The controller's answer to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandResult {
    /// Command Complete: the command ran; `status` 0 is success.
    Complete { opcode: u16, status: u8 },
    /// Command Status: accepted (`status` 0, a Command Complete or another event follows) or
    /// refused.
    Status { opcode: u16, status: u8 },
}

impl CommandResult {
    pub fn opcode(&self) -> u16 {
        match *self {
            CommandResult::Complete { opcode, .. } | CommandResult::Status { opcode, .. } => opcode,
        }
    }

    pub fn status(&self) -> u8 {
        match *self {
            CommandResult::Complete { status, .. } | CommandResult::Status { status, .. } => status,
        }
    }
}

/// Reads a Command Complete or Command Status event (starting at the event code, like
/// [`parse_event`]); `None` for any other event or a short one.
pub fn parse_command_result(event: &[u8]) -> Option<CommandResult> {
    match event {
        // num_packets, opcode, status, return parameters…
        [EVENT_COMMAND_COMPLETE, _, _, lo, hi, status, ..] => Some(CommandResult::Complete {
            opcode: u16::from_le_bytes([*lo, *hi]),
            status: *status,
        }),
        // status, num_packets, opcode
        [EVENT_COMMAND_STATUS, _, status, _, lo, hi, ..] => Some(CommandResult::Status {
            opcode: u16::from_le_bytes([*lo, *hi]),
            status: *status,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex: &str, buf: &mut [u8; 300]) -> usize {
        crate::hex::decode_into(hex, buf).unwrap()
    }

    #[test]
    fn legacy_event_from_a_real_scanner() {
        // From beacontools' test suite: a well-formed single report, RSSI -86.
        let mut b = [0u8; 300];
        let n = bytes(
            "043e290201000043565b570b001d02010605021a18001809ff7204fe10bc0c375909094d6f6e2035363433aa",
            &mut b,
        );
        let mut it = parse_h4(&b[..n]).unwrap();
        let r = it.next().unwrap().unwrap();
        assert_eq!(r.addr, [0x00, 0x0b, 0x57, 0x5b, 0x56, 0x43]);
        assert_eq!(r.addr_type, 0);
        assert_eq!(r.event_type, 0);
        assert_eq!(r.rssi, Some(-86));
        assert_eq!(r.data.len(), 29);
        assert!(it.next().is_none());
    }

    #[test]
    fn several_legacy_reports_in_one_event() {
        let mut b = [0u8; 300];
        // two reports: ADV_IND public 11:22:33:44:55:66 data 020106 rssi -40;
        // SCAN_RSP random c0:..:01 no data rssi -70
        let n = bytes(
            "043e190202 00 00 665544332211 03 020106 d8 04 01 0100000000c0 00 ba",
            &mut b,
        );
        let reports: [_; 2] = {
            let mut it = parse_h4(&b[..n]).unwrap();
            [it.next().unwrap().unwrap(), it.next().unwrap().unwrap()]
        };
        assert_eq!(reports[0].addr, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
        assert_eq!(reports[0].data, &[0x02, 0x01, 0x06]);
        assert_eq!(reports[0].rssi, Some(-40));
        assert_eq!(reports[1].event_type, 4);
        assert_eq!(reports[1].legacy_event_name(), Some("SCAN_RSP"));
        assert_eq!(reports[1].random_subtype(), Some(RandomAddr::Static));
        assert_eq!(reports[1].rssi, Some(-70));
        assert!(reports[1].data.is_empty());
    }

    #[test]
    fn extended_report_reads_tx_power_and_rssi() {
        let mut b = [0u8; 300];
        let n = bytes(
            "043e1d0d01 1300 01 665544332211 01 00 ff 7f c4 0000 00 000000000000 03 020106",
            &mut b,
        );
        let r = parse_h4(&b[..n]).unwrap().next().unwrap().unwrap();
        assert_eq!(r.kind, ReportKind::Extended);
        assert_eq!(r.event_type, 0x13);
        assert_eq!(r.tx_power, None);
        assert_eq!(r.rssi, Some(-60));
        assert_eq!(r.data, &[0x02, 0x01, 0x06]);
    }

    #[test]
    fn truncated_report_is_an_error_item_not_a_panic() {
        let mut b = [0u8; 300];
        // declares 2 reports but the second is cut short
        let n = bytes(
            "043e130202 00 00 665544332211 03 020106 d8 04 01 0100",
            &mut b,
        );
        let mut it = parse_h4(&b[..n]).unwrap();
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(HciError::TruncatedReport { index: 1 })));
        assert!(it.next().is_none());
    }

    #[test]
    fn wrong_lengths_and_kinds_are_named() {
        assert_eq!(
            parse_h4(&[0x04, 0x3e, 0x05, 0x02]).err(),
            Some(HciError::LengthMismatch {
                declared: 5,
                actual: 1
            })
        );
        assert_eq!(
            parse_h4(&[0x01, 0x03, 0x0c, 0x00]).err(),
            Some(HciError::NotAnEvent(1))
        );
        assert_eq!(
            parse_event(&[0x0e, 0x00]).err(),
            Some(HciError::NotLeMeta(0x0e))
        );
        assert_eq!(
            parse_event(&[0x3e, 0x02, 0x01, 0x00]).err(),
            Some(HciError::NotAdvertisingReport(1))
        );
        assert_eq!(
            parse_event(&[0x3e, 0x02, 0x02, 0x00]).err(),
            Some(HciError::NoReports)
        );
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let mut b = [0u8; 64];
        let addr = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01];
        let n = encode_legacy_report(&mut b, 3, 1, &addr, &[2, 1, 6], -55).unwrap();
        let r = parse_h4(&b[..n]).unwrap().next().unwrap().unwrap();
        assert_eq!(
            (r.addr, r.addr_type, r.event_type, r.rssi),
            (addr, 1, 3, Some(-55))
        );
        assert_eq!(r.data, &[2, 1, 6]);
    }

    #[test]
    fn command_golden_bytes() {
        assert_eq!(Command::reset().as_bytes(), &[0x01, 0x03, 0x0c, 0x00]);
        assert_eq!(
            Command::set_event_mask(EVENT_MASK_WITH_LE_META).as_bytes(),
            &[
                0x01, 0x01, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x20
            ]
        );
        assert_eq!(
            Command::le_set_event_mask(LE_EVENT_MASK_DEFAULT).as_bytes(),
            &[0x01, 0x01, 0x20, 0x08, 0x1f, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Command::le_set_scan_parameters(&ScanParams::default()).as_bytes(),
            &[
                0x01, 0x0b, 0x20, 0x07, 0x00, 0x60, 0x00, 0x60, 0x00, 0x00, 0x00
            ]
        );
        assert_eq!(
            Command::le_set_scan_enable(true).as_bytes(),
            &[0x01, 0x0c, 0x20, 0x02, 0x01, 0x00]
        );
        assert_eq!(
            Command::le_set_adv_parameters(160, ADV_NONCONN_IND).as_bytes(),
            &[
                0x01, 0x06, 0x20, 0x0f, 0xa0, 0x00, 0xa0, 0x00, 0x03, 0x00, 0x00, 0, 0, 0, 0, 0, 0,
                0x07, 0x00
            ]
        );
        assert_eq!(
            Command::le_set_adv_enable(true).as_bytes(),
            &[0x01, 0x0a, 0x20, 0x01, 0x01]
        );
        let data = Command::le_set_adv_data(&[2, 1, 6]).unwrap();
        assert_eq!(data.as_bytes().len(), 4 + 32);
        assert_eq!(&data.as_bytes()[..8], &[0x01, 0x08, 0x20, 0x20, 3, 2, 1, 6]);
        assert!(data.as_bytes()[8..].iter().all(|&b| b == 0));
        assert!(Command::le_set_adv_data(&[0; 32]).is_none());
        assert!(Command::new(0x2008, &[0; 33]).is_none());
        assert_eq!(data.opcode(), opcode::LE_SET_ADV_DATA);
        assert_eq!(data.params().len(), 32);
    }

    #[test]
    fn command_results_are_read() {
        assert_eq!(
            parse_command_result(&[0x0e, 0x04, 0x01, 0x03, 0x0c, 0x00]),
            Some(CommandResult::Complete {
                opcode: opcode::RESET,
                status: 0
            })
        );
        assert_eq!(
            parse_command_result(&[0x0f, 0x04, 0x0c, 0x01, 0x0a, 0x20]),
            Some(CommandResult::Status {
                opcode: opcode::LE_SET_ADV_ENABLE,
                status: 0x0c
            })
        );
        assert_eq!(parse_command_result(&[0x0e, 0x01, 0x01]), None);
        assert_eq!(parse_command_result(&[0x3e, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
