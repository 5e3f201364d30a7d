//! Live BLE through a raw HCI socket: the kernel's HCI *user channel*, scanning with duplicate
//! filtering off — the backend Dwell prefers for presence.
//!
//! BlueZ and the kernel de-duplicate advertisements by default, so through D-Bus (the
//! [`btleplug`](super::btleplug) backend) a device's RSSI stops updating while its payload stays the
//! same (deviceplug/btleplug#289, hbldh/bleak#235). Presence needs every advertisement. The user
//! channel (`AF_BLUETOOTH` / `SOCK_RAW` / `BTPROTO_HCI`, bound with `HCI_CHANNEL_USER`) hands the
//! whole controller to one program: we send the commands ourselves — the same bytes the zone-node
//! firmware sends over its UART, built by [`dwell_shared::hci::Command`] — and read every event.
//!
//! Bring-up ([`bring_up_commands`]): `HCI_Reset`, `Set_Event_Mask` (with LE Meta),
//! `LE_Set_Event_Mask`, `LE_Set_Scan_Parameters` (passive), `LE_Set_Scan_Enable` (enable,
//! filter duplicates **off**). Each waits for its Command Complete. Then every LE Advertising
//! Report event becomes one [`Observation`] per report, through [`decode_h4`] — the same function
//! the tests feed recorded btsnoop packets through. A Hardware Error event (the controller reset
//! itself) runs the bring-up again, and re-enables the store beacon.
//!
//! What the user channel needs, and what the errors say when it is missing:
//! - a kernel with Bluetooth (`AF_BLUETOOTH`; otherwise `EAFNOSUPPORT`);
//! - the adapter `hciN` (`ENODEV`: check `ls /sys/class/bluetooth`);
//! - `CAP_NET_ADMIN` (`EPERM`: run as root or `setcap cap_net_admin+ep /usr/bin/dwell-edge`);
//! - the adapter **down** and not owned by BlueZ (`EBUSY`: `btmgmt -i hci0 power off` or
//!   `hciconfig hci0 down`). While we hold the channel BlueZ cannot use the adapter; closing the
//!   socket gives it back.
//!
//! # The store beacon
//! Through this backend the gateway also advertises the store's iBeacon (retailer UUID, major =
//! store number, minor = the gateway's zone) so a shopper app's background region monitoring
//! wakes up in the store ([`StoreBeacon`], [`HciSource::advertise`]). Scanning is *not* stopped
//! for it: a controller can scan passively and advertise non-connectably at the same time when
//! its LE Supported States include that combination, as nearly every 4.x+ controller's do. Each
//! advertising event takes the radio for a millisecond or two on the three advertising channels,
//! so at the 100 ms interval iOS expects, scanning loses a few percent of air time and no
//! advertisement is missed for long. A controller that cannot do both refuses
//! `LE_Set_Advertising_Enable` with Command Disallowed (0x0C): [`HciSource::advertise`] returns
//! that as a [`CommandError`], the caller logs it, and scanning carries on untouched.

use super::{Observation, Radio, Scanner, SourceError};
use dwell_shared::Uuid;
use dwell_shared::frame::{Frame, IBeacon};
use dwell_shared::hci::{
    self, ADV_NONCONN_IND, AdvReport, Command, CommandResult, EVENT_HARDWARE_ERROR, EVENT_LE_META,
    EVENT_MASK_WITH_LE_META, H4_EVENT, HciError, LE_EVENT_MASK_DEFAULT, ScanParams, opcode,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The source's name in logs, metrics and errors.
pub const SOURCE_NAME: &str = "hci";

/// How long a command may wait for its Command Complete. Controllers answer in microseconds to
/// a few milliseconds; `HCI_Reset` on a USB dongle can take a few hundred.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The controller bring-up, in order; see the module docs.
pub fn bring_up_commands(scan: &ScanParams) -> [Command; 5] {
    [
        Command::reset(),
        Command::set_event_mask(EVENT_MASK_WITH_LE_META),
        Command::le_set_event_mask(LE_EVENT_MASK_DEFAULT),
        Command::le_set_scan_parameters(scan),
        Command::le_set_scan_enable(true),
    ]
}

/// The store's iBeacon, as the gateway advertises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreBeacon {
    /// The retailer's proximity UUID (registered in its app).
    pub uuid: Uuid,
    /// iBeacon major: the store number.
    pub store: u16,
    /// iBeacon minor: the gateway's zone.
    pub zone: u16,
    /// Calibrated RSSI at 1 m, dBm.
    pub measured_power: i8,
    /// Advertising interval in 0.625 ms units (160 = 100 ms, what iOS region monitoring expects).
    pub interval: u16,
}

impl StoreBeacon {
    /// 100 ms, in 0.625 ms units.
    pub const DEFAULT_INTERVAL: u16 = 160;

    pub fn frame(&self) -> Frame {
        Frame::IBeacon(IBeacon {
            uuid: self.uuid,
            major: self.store,
            minor: self.zone,
            tx_power: self.measured_power,
        })
    }

    /// `LE_Set_Advertising_Parameters` (non-connectable, 3 channels), `LE_Set_Advertising_Data`
    /// (the shared iBeacon encoding), `LE_Set_Advertising_Enable`: the commands that put the
    /// beacon on air, in order. Scanning is left as it is.
    pub fn commands(&self) -> [Command; 3] {
        let mut payload = [0u8; hci::MAX_LEGACY_ADV_DATA];
        let data = self
            .frame()
            .encode(&mut payload)
            .ok()
            .and_then(|n| Command::le_set_adv_data(&payload[..n]));
        // An iBeacon with flags is 30 bytes: it always fits the 31 of a legacy advertisement.
        let data = data.expect("an iBeacon fits a legacy advertisement");
        [
            Command::le_set_adv_parameters(self.interval, ADV_NONCONN_IND),
            data,
            Command::le_set_adv_enable(true),
        ]
    }
}

/// Why a command sent to the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("controller refused {} (0x{opcode:04x}) with status 0x{status:02x} ({})", opcode_name(*opcode), status_name(*status))]
    Refused { opcode: u16, status: u8 },
    #[error("controller did not answer {} (0x{opcode:04x}) within {:?}", opcode_name(*opcode), COMMAND_TIMEOUT)]
    Timeout { opcode: u16 },
    #[error("controller reported hardware error 0x{0:02x} (it reset itself)")]
    HardwareError(u8),
    #[error("HCI socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The command's name as the Core specification spells it.
pub fn opcode_name(op: u16) -> &'static str {
    match op {
        opcode::RESET => "HCI_Reset",
        opcode::SET_EVENT_MASK => "HCI_Set_Event_Mask",
        opcode::LE_SET_EVENT_MASK => "HCI_LE_Set_Event_Mask",
        opcode::LE_SET_SCAN_PARAMETERS => "HCI_LE_Set_Scan_Parameters",
        opcode::LE_SET_SCAN_ENABLE => "HCI_LE_Set_Scan_Enable",
        opcode::LE_SET_ADV_PARAMETERS => "HCI_LE_Set_Advertising_Parameters",
        opcode::LE_SET_ADV_DATA => "HCI_LE_Set_Advertising_Data",
        opcode::LE_SET_ADV_ENABLE => "HCI_LE_Set_Advertising_Enable",
        _ => "command",
    }
}

/// The common HCI error codes (Core spec Vol 1 Part F).
fn status_name(status: u8) -> &'static str {
    match status {
        0x01 => "Unknown HCI Command",
        0x07 => "Memory Capacity Exceeded",
        0x0c => "Command Disallowed",
        0x11 => "Unsupported Feature or Parameter Value",
        0x12 => "Invalid HCI Command Parameters",
        _ => "see the Core spec error codes",
    }
}

/// What one packet from the controller was, after [`decode_h4`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// An LE Advertising Report event: `observations` were queued, `bad` reports were queued as
    /// [`SourceError::BadRecord`], `without_rssi` reports carried no RSSI and were skipped (a
    /// report without RSSI says nothing about distance).
    Reports {
        observations: usize,
        bad: usize,
        without_rssi: usize,
    },
    /// A Command Complete or Command Status.
    Command(CommandResult),
    /// The controller reset itself: bring it up again.
    HardwareError(u8),
    /// Anything else (ACL data, other events).
    Other,
}

/// One report as an observation; `None` without RSSI.
fn observation(r: &AdvReport<'_>, ts_ms: i64, receiver: &Arc<str>) -> Option<Observation> {
    Some(Observation {
        ts_ms,
        receiver: receiver.clone(),
        rssi: r.rssi?,
        radio: Radio::Ble {
            addr: r.addr,
            addr_type: r.addr_type,
            ad: r.data.to_vec(),
        },
    })
}

/// Decodes one H4 packet (indicator byte first, as the HCI user channel and btsnoop datalink
/// 1002 carry it) read at `ts_ms`: advertising reports are queued on `out` as observations (or
/// bad records, numbered `packet_no`); what else it was is returned. The socket loop and the
/// recorded-bytes tests both go through here.
pub fn decode_h4(
    h4: &[u8],
    ts_ms: i64,
    receiver: &Arc<str>,
    packet_no: u64,
    out: &mut VecDeque<Result<Observation, SourceError>>,
) -> Incoming {
    let [H4_EVENT, event @ ..] = h4 else {
        return Incoming::Other;
    };
    let bad = |reason: String| SourceError::BadRecord {
        source_name: SOURCE_NAME,
        record: packet_no,
        reason,
    };
    match event {
        [EVENT_LE_META, ..] => match hci::parse_event(event) {
            Ok(reports) => {
                let (mut observations, mut bad_reports, mut without_rssi) = (0, 0, 0);
                for r in reports {
                    match r {
                        Ok(r) => match observation(&r, ts_ms, receiver) {
                            Some(o) => {
                                observations += 1;
                                out.push_back(Ok(o));
                            }
                            None => without_rssi += 1,
                        },
                        Err(e) => {
                            bad_reports += 1;
                            out.push_back(Err(bad(e.to_string())));
                        }
                    }
                }
                Incoming::Reports {
                    observations,
                    bad: bad_reports,
                    without_rssi,
                }
            }
            // Connection, PHY, … LE Meta subevents: not ours.
            Err(HciError::NotAdvertisingReport(_)) => Incoming::Other,
            Err(e) => {
                out.push_back(Err(bad(e.to_string())));
                Incoming::Reports {
                    observations: 0,
                    bad: 1,
                    without_rssi: 0,
                }
            }
        },
        [EVENT_HARDWARE_ERROR, _, code, ..] => Incoming::HardwareError(*code),
        [EVENT_HARDWARE_ERROR, ..] => Incoming::HardwareError(0),
        _ => hci::parse_command_result(event).map_or(Incoming::Other, Incoming::Command),
    }
}

/// Wall-clock Unix milliseconds: live radios stamp what they hear with the time they heard it.
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn fatal(reason: impl Into<String>) -> SourceError {
    SourceError::Fatal {
        source_name: SOURCE_NAME,
        reason: reason.into(),
    }
}

/// The one-line cause and fix for an error opening or binding the user channel of `hci{dev}`.
pub fn open_error_reason(dev: u16, e: &std::io::Error) -> String {
    #[cfg(target_os = "linux")]
    {
        match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT) => {
                "this kernel has no Bluetooth support (AF_BLUETOOTH): load it with \
                 `modprobe bluetooth` or run on a host whose kernel has CONFIG_BT"
                    .to_string()
            }
            Some(libc::ENODEV) => format!(
                "no hci{dev}: check `ls /sys/class/bluetooth` (is an adapter plugged in? set \
                 `device` in the source config)"
            ),
            Some(libc::EPERM | libc::EACCES) => format!(
                "the HCI user channel of hci{dev} needs CAP_NET_ADMIN: run as root or \
                 `setcap cap_net_admin+ep /usr/bin/dwell-edge`"
            ),
            Some(libc::EBUSY) => format!(
                "hci{dev} is up and owned by BlueZ: `btmgmt -i hci{dev} power off` or \
                 `hciconfig hci{dev} down` first"
            ),
            Some(libc::EUSERS | libc::EALREADY) => format!(
                "another program holds the HCI user channel of hci{dev}: stop it (another \
                 dwell-edge?)"
            ),
            Some(libc::ERFKILL) => {
                format!("hci{dev} is blocked by rfkill: `rfkill unblock bluetooth`")
            }
            _ => format!("opening the HCI user channel of hci{dev}: {e}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        format!(
            "opening hci{dev}: {e}: raw HCI sockets exist only on Linux; use kind = \"btleplug\""
        )
    }
}

#[cfg(target_os = "linux")]
pub use linux::HciSource;

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
    use std::io::{self, Read, Write};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// `AF_BLUETOOTH` (linux/socket.h); libc has no constant on every target.
    pub(crate) const AF_BLUETOOTH: i32 = 31;
    /// `BTPROTO_HCI` (net/bluetooth/bluetooth.h).
    pub(crate) const BTPROTO_HCI: i32 = 1;
    /// `HCI_CHANNEL_USER` (net/bluetooth/hci_sock.h): exclusive access, H4 framing.
    pub const HCI_CHANNEL_USER: u16 = 1;
    /// Largest packet read: H4 indicator + ACL header + the biggest ACL payload a controller
    /// sends; events are at most 258 bytes.
    const READ_BUF: usize = 4096;

    /// `struct sockaddr_hci` (net/bluetooth/hci_sock.h).
    #[repr(C)]
    struct SockaddrHci {
        hci_family: libc::sa_family_t,
        hci_dev: u16,
        hci_channel: u16,
    }

    fn sockaddr_hci(dev: u16, channel: u16) -> SockAddr {
        let mut storage = SockAddrStorage::zeroed();
        let len = std::mem::size_of::<SockaddrHci>() as libc::socklen_t;
        #[allow(unsafe_code)]
        // SAFETY: `SockaddrHci` is `#[repr(C)]` and laid out exactly as the kernel's
        // `struct sockaddr_hci` (three u16 fields, 6 bytes), which is the sockaddr type of
        // AF_BLUETOOTH/BTPROTO_HCI sockets; `view_as` asserts it fits the storage. The length
        // given to `SockAddr::new` is that struct's size and the family field is AF_BLUETOOTH,
        // so family, length and contents agree as `SockAddr::new` requires.
        let addr = unsafe {
            *storage.view_as::<SockaddrHci>() = SockaddrHci {
                hci_family: AF_BLUETOOTH as libc::sa_family_t,
                hci_dev: dev,
                hci_channel: channel,
            };
            SockAddr::new(storage, len)
        };
        addr
    }

    /// Registers a non-blocking socket with tokio's reactor (inside a runtime).
    pub(crate) fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("must run inside a tokio runtime"));
        }
        #[allow(unsafe_code)]
        // SAFETY: `socket2::Socket` owns its file descriptor (an `OwnedFd` inside): it is valid
        // and open from construction until the `Socket` is dropped, and `as_raw_fd` always
        // returns that same descriptor. The `AsyncFd` takes ownership of the `Socket`, so the
        // descriptor stays open and unchanged for the `AsyncFd`'s whole life, as `register`
        // requires.
        let registered = unsafe { AsyncFd::register(socket) };
        registered.map_err(|e| e.into_parts().1)
    }

    /// Opens a raw HCI socket (not yet bound): fails where the kernel has no Bluetooth.
    pub(crate) fn raw_hci_socket() -> io::Result<Socket> {
        Socket::new(
            Domain::from(AF_BLUETOOTH),
            Type::RAW,
            Some(Protocol::from(BTPROTO_HCI)),
        )
    }

    /// Live BLE from `hciN`'s user channel; see the module docs.
    #[derive(Debug)]
    pub struct HciSource {
        dev: u16,
        io: AsyncFd<Socket>,
        receiver: Arc<str>,
        scan: ScanParams,
        beacon: Option<StoreBeacon>,
        pending: VecDeque<Result<Observation, SourceError>>,
        buf: Box<[u8]>,
        packets: u64,
        failed: bool,
        /// Reports skipped for lack of RSSI.
        pub without_rssi: u64,
        /// Controller resets (Hardware Error events) recovered from.
        pub hardware_errors: u64,
    }

    impl HciSource {
        /// Opens the user channel of `hci{device}` and brings the controller up as a passive
        /// scanner with the default timing (continuous listening). Must run inside a tokio
        /// runtime. Errors are one line: cause and fix.
        pub async fn open(device: u16, receiver: &str) -> Result<Self, SourceError> {
            Self::open_with(device, receiver, ScanParams::default()).await
        }

        pub async fn open_with(
            device: u16,
            receiver: &str,
            scan: ScanParams,
        ) -> Result<Self, SourceError> {
            let reason = |e: io::Error| fatal(open_error_reason(device, &e));
            let socket = raw_hci_socket().map_err(reason)?;
            socket
                .bind(&sockaddr_hci(device, HCI_CHANNEL_USER))
                .map_err(reason)?;
            socket.set_nonblocking(true).map_err(reason)?;
            let io = register(socket).map_err(reason)?;
            let mut src = HciSource {
                dev: device,
                io,
                receiver: Arc::from(receiver),
                scan,
                beacon: None,
                pending: VecDeque::new(),
                buf: vec![0u8; READ_BUF].into_boxed_slice(),
                packets: 0,
                failed: false,
                without_rssi: 0,
                hardware_errors: 0,
            };
            src.bring_up().await.map_err(|e| {
                fatal(format!(
                    "bringing up hci{device}: {e}: check `btmon` for what the controller says, \
                     or re-plug the adapter"
                ))
            })?;
            tracing::info!(device, "hci: scanning, duplicate filtering off");
            Ok(src)
        }

        pub fn device(&self) -> u16 {
            self.dev
        }

        async fn bring_up(&mut self) -> Result<(), CommandError> {
            for cmd in bring_up_commands(&self.scan) {
                self.command(&cmd).await?;
            }
            Ok(())
        }

        /// Puts the store beacon on air beside scanning (see the module docs). Remembered, so a
        /// controller reset re-enables it. A refusal leaves scanning running.
        pub async fn advertise(&mut self, beacon: &StoreBeacon) -> Result<(), CommandError> {
            for cmd in beacon.commands() {
                self.command(&cmd).await?;
            }
            self.beacon = Some(*beacon);
            Ok(())
        }

        /// Takes the store beacon off air; scanning goes on.
        pub async fn stop_advertising(&mut self) -> Result<(), CommandError> {
            self.beacon = None;
            self.command(&Command::le_set_adv_enable(false)).await
        }

        /// Reads one packet into `buf`; returns its length.
        async fn read_packet(&mut self) -> io::Result<usize> {
            let HciSource { io, buf, .. } = self;
            io.async_io(Interest::READABLE, |mut s: &Socket| s.read(buf))
                .await
        }

        /// Sends `cmd` and waits for its result. Advertising reports that arrive meanwhile are
        /// queued, not dropped.
        async fn command(&mut self, cmd: &Command) -> Result<(), CommandError> {
            let bytes = cmd.as_bytes();
            self.io
                .async_io(Interest::WRITABLE, |mut s: &Socket| s.write(bytes))
                .await?;
            let op = cmd.opcode();
            let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
            loop {
                let n = match tokio::time::timeout_at(deadline, self.read_packet()).await {
                    Err(_) => return Err(CommandError::Timeout { opcode: op }),
                    Ok(r) => r?,
                };
                self.packets += 1;
                let incoming = decode_h4(
                    &self.buf[..n],
                    unix_now_ms(),
                    &self.receiver,
                    self.packets,
                    &mut self.pending,
                );
                match incoming {
                    Incoming::Command(r) if r.opcode() == op => match r {
                        CommandResult::Complete { status: 0, .. } => return Ok(()),
                        // Accepted; the Command Complete is still to come.
                        CommandResult::Status { status: 0, .. } => {}
                        _ => {
                            return Err(CommandError::Refused {
                                opcode: op,
                                status: r.status(),
                            });
                        }
                    },
                    Incoming::HardwareError(code) => {
                        self.hardware_errors += 1;
                        return Err(CommandError::HardwareError(code));
                    }
                    Incoming::Reports { without_rssi, .. } => {
                        self.without_rssi += without_rssi as u64;
                    }
                    Incoming::Command(_) | Incoming::Other => {}
                }
            }
        }

        /// After a Hardware Error: bring-up again, and the beacon back on air.
        async fn recover(&mut self, code: u8) -> Result<(), SourceError> {
            self.hardware_errors += 1;
            tracing::warn!(
                device = self.dev,
                code,
                "hci: controller reset itself; bringing it up again"
            );
            self.bring_up().await.map_err(|e| {
                fatal(format!(
                    "hci{}: controller reset (hardware error 0x{code:02x}) and bring-up failed: \
                     {e}: re-plug the adapter",
                    self.dev
                ))
            })?;
            if let Some(b) = self.beacon
                && let Err(e) = self.advertise(&b).await
            {
                tracing::warn!(device = self.dev, error = %e, "hci: store beacon not restored");
            }
            Ok(())
        }

        pub async fn next_observation(&mut self) -> Option<Result<Observation, SourceError>> {
            loop {
                if let Some(p) = self.pending.pop_front() {
                    return Some(p);
                }
                if self.failed {
                    return None;
                }
                let n = match self.read_packet().await {
                    Ok(n) => n,
                    Err(e) => {
                        self.failed = true;
                        let hint = match e.raw_os_error() {
                            Some(libc::ENODEV | libc::ENXIO) => {
                                "the adapter went away (unplugged?)"
                            }
                            _ => "check `dmesg` and `btmon`",
                        };
                        return Some(Err(fatal(format!("reading hci{}: {e}: {hint}", self.dev))));
                    }
                };
                self.packets += 1;
                match decode_h4(
                    &self.buf[..n],
                    unix_now_ms(),
                    &self.receiver,
                    self.packets,
                    &mut self.pending,
                ) {
                    Incoming::Reports { without_rssi, .. } => {
                        self.without_rssi += without_rssi as u64;
                    }
                    Incoming::HardwareError(code) => {
                        if let Err(e) = self.recover(code).await {
                            self.failed = true;
                            return Some(Err(e));
                        }
                    }
                    Incoming::Command(_) | Incoming::Other => {}
                }
            }
        }
    }

    impl Scanner for HciSource {
        fn name(&self) -> &'static str {
            SOURCE_NAME
        }
        async fn next(&mut self) -> Option<Result<Observation, SourceError>> {
            self.next_observation().await
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{raw_hci_socket, register};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_without_rssi_is_skipped_and_counted() {
        let mut b = [0u8; 64];
        let n =
            hci::encode_legacy_report(&mut b, 0, 0, &[1, 2, 3, 4, 5, 6], &[2, 1, 6], 127).unwrap();
        let mut out = VecDeque::new();
        let got = decode_h4(&b[..n], 5, &Arc::from("gw"), 1, &mut out);
        assert_eq!(
            got,
            Incoming::Reports {
                observations: 0,
                bad: 0,
                without_rssi: 1
            }
        );
        assert!(out.is_empty());
    }

    #[test]
    fn control_events_are_told_apart() {
        let mut out = VecDeque::new();
        let rx: Arc<str> = Arc::from("gw");
        assert_eq!(
            decode_h4(&[0x04, 0x10, 0x01, 0x2a], 0, &rx, 1, &mut out),
            Incoming::HardwareError(0x2a)
        );
        assert_eq!(
            decode_h4(
                &[0x04, 0x0e, 0x04, 0x01, 0x0c, 0x20, 0x00],
                0,
                &rx,
                2,
                &mut out
            ),
            Incoming::Command(CommandResult::Complete {
                opcode: opcode::LE_SET_SCAN_ENABLE,
                status: 0
            })
        );
        // LE Connection Complete: an LE Meta event that is not an advertising report.
        assert_eq!(
            decode_h4(&[0x04, 0x3e, 0x02, 0x01, 0x00], 0, &rx, 3, &mut out),
            Incoming::Other
        );
        assert_eq!(
            decode_h4(&[0x02, 0x00], 0, &rx, 4, &mut out),
            Incoming::Other
        );
        assert_eq!(decode_h4(&[], 0, &rx, 5, &mut out), Incoming::Other);
        assert!(out.is_empty());
        // A broken advertising report is a bad record, numbered by packet.
        assert_eq!(
            decode_h4(&[0x04, 0x3e, 0x05, 0x02], 0, &rx, 6, &mut out),
            Incoming::Reports {
                observations: 0,
                bad: 1,
                without_rssi: 0
            }
        );
        assert!(matches!(
            out.pop_front(),
            Some(Err(SourceError::BadRecord { record: 6, .. }))
        ));
    }

    #[test]
    fn refusals_name_the_command_and_status() {
        let e = CommandError::Refused {
            opcode: opcode::LE_SET_ADV_ENABLE,
            status: 0x0c,
        };
        assert_eq!(
            e.to_string(),
            "controller refused HCI_LE_Set_Advertising_Enable (0x200a) with status 0x0c \
             (Command Disallowed)"
        );
    }
}
