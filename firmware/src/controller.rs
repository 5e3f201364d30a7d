//! The Bluetooth controller on the other end of the UART: HCI commands, bring-up, and events.
//!
//! The node drives any controller that runs standard HCI firmware over H4 (Zephyr's `hci_uart`,
//! Nordic's HCI samples, ESP32 in HCI mode, a USB dongle behind a UART bridge). Bring-up is the
//! same sequence BlueZ uses for an LE scanner, kept minimal:
//! 1. pulse the controller's reset line, if the board wired one (low for `reset_low_ms`, then
//!    `boot_ms` for the controller's firmware to start);
//! 2. `HCI_Reset`;
//! 3. `HCI_Set_Event_Mask` with the LE Meta event enabled — it is *not* in the default mask, and
//!    without it a strict controller never reports an advertisement;
//! 4. `LE_Set_Scan_Parameters`, passive (a node only listens; no scan requests on air);
//! 5. `LE_Set_Scan_Enable` with duplicate filtering **off**: presence needs every advertisement,
//!    not one per device per scan.
//!
//! Every command waits for its Command Complete (or a failing Command Status) and checks the status
//! byte; a controller that answers nothing within `command_timeout_ms` is a typed timeout. A
//! Hardware Error event (0x10) means the controller reset itself: [`Controller::poll_event`]
//! returns it and the caller runs [`Controller::bring_up`] again. Errors are [`Error<E>`] carrying
//! the UART's own error (eldruin's driver style), so the board keeps its HAL's error detail.

use core::fmt;

use dwell_shared::hci::{self, AdvReports, HciError};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, OutputPin};
use embedded_io::{Read, ReadReady, Write};

use crate::h4::{Event, H4Reader};

/// HCI command opcodes (OGF << 10 | OCF) the node sends, and the commands themselves: built in
/// `dwell_shared::hci`, so the gateway's raw HCI socket sends the very same bytes.
pub use dwell_shared::hci::{Command, ScanParams, opcode};

/// HCI event codes the node reads.
pub mod event {
    pub const COMMAND_COMPLETE: u8 = 0x0e;
    pub const COMMAND_STATUS: u8 = 0x0f;
    pub const HARDWARE_ERROR: u8 = 0x10;
    pub const LE_META: u8 = 0x3e;
}

/// The default event mask (Core spec: `0x00001FFFFFFFFFFF`) plus bit 61, LE Meta.
pub const EVENT_MASK: u64 = hci::EVENT_MASK_WITH_LE_META;

/// Longest parameter block the node sends (LE Set Advertising Data: 1 + 31).
pub const MAX_PARAMS: usize = hci::MAX_COMMAND_PARAMS;

/// Timing of bring-up and command exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub scan: ScanParams,
    /// How long the reset line is held low.
    pub reset_low_ms: u32,
    /// How long the controller's firmware needs after reset before it reads commands.
    pub boot_ms: u32,
    /// How long to wait for a command's Command Complete.
    pub command_timeout_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scan: ScanParams::default(),
            reset_low_ms: 10,
            boot_ms: 100,
            command_timeout_ms: 1000,
        }
    }
}

/// Errors talking to the controller; `E` is the UART's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The UART failed.
    Uart(E),
    /// The reset GPIO failed.
    ResetPin(digital::ErrorKind),
    /// No Command Complete for `opcode` within the configured time.
    Timeout { opcode: u16 },
    /// The controller refused `opcode` with this HCI status code.
    CommandFailed { opcode: u16, status: u8 },
    /// The controller reported a hardware error (it reset itself) while a command was in flight.
    HardwareError(u8),
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Uart(e) => write!(f, "UART error: {e:?}"),
            Error::ResetPin(k) => write!(f, "controller reset pin error: {k:?}"),
            Error::Timeout { opcode } => {
                write!(f, "controller did not answer command 0x{opcode:04x}")
            }
            Error::CommandFailed { opcode, status } => write!(
                f,
                "controller refused command 0x{opcode:04x} with status 0x{status:02x}"
            ),
            Error::HardwareError(code) => {
                write!(f, "controller hardware error 0x{code:02x} (it reset)")
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// A stand-in for boards without a controller reset line: `None::<NoResetPin>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResetPin;

impl digital::ErrorType for NoResetPin {
    type Error = core::convert::Infallible;
}

impl OutputPin for NoResetPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Counters for the node's health report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerStats {
    /// Completed bring-ups (the first one included).
    pub bring_ups: u32,
    /// Hardware Error events seen.
    pub hardware_errors: u32,
    /// Events that arrived while waiting for a Command Complete and were dropped.
    pub events_dropped_waiting: u32,
}

/// What [`Controller::poll_event`] read.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// An LE Advertising Report event, parsed by the shared HCI code.
    Advertising(AdvReports<'a>),
    /// An LE Meta advertising event the shared parser rejected.
    Malformed(HciError),
    /// The controller reset itself; run [`Controller::bring_up`] again.
    HardwareError(u8),
    /// Any other event (Command Complete stragglers, vendor events …).
    Other(Event<'a>),
}

/// An HCI controller on an H4 UART, with an optional reset line.
#[derive(Debug)]
pub struct Controller<U, RST, D> {
    uart: U,
    reset: Option<RST>,
    delay: D,
    reader: H4Reader,
    cfg: Config,
    stats: ControllerStats,
}

impl<U, RST, D> Controller<U, RST, D>
where
    U: Read + ReadReady + Write,
    RST: OutputPin,
    D: DelayNs,
{
    pub fn new(uart: U, reset: Option<RST>, delay: D, cfg: Config) -> Self {
        Controller {
            uart,
            reset,
            delay,
            reader: H4Reader::new(),
            cfg,
            stats: ControllerStats::default(),
        }
    }

    /// Gives the peripherals back.
    pub fn release(self) -> (U, Option<RST>, D) {
        (self.uart, self.reset, self.delay)
    }

    pub fn stats(&self) -> ControllerStats {
        self.stats
    }

    pub fn reader(&self) -> &H4Reader {
        &self.reader
    }

    pub fn reader_mut(&mut self) -> &mut H4Reader {
        &mut self.reader
    }

    /// Resets and configures the controller and leaves it scanning; see the module docs.
    pub fn bring_up(&mut self) -> Result<(), Error<U::Error>> {
        if let Some(pin) = self.reset.as_mut() {
            pin.set_low()
                .map_err(|e| Error::ResetPin(digital::Error::kind(&e)))?;
            self.delay.delay_ms(self.cfg.reset_low_ms);
            pin.set_high()
                .map_err(|e| Error::ResetPin(digital::Error::kind(&e)))?;
            self.delay.delay_ms(self.cfg.boot_ms);
        }
        // Whatever half-packet was on the line belongs to the controller's previous life.
        self.reader.abandon_partial();
        self.command(&Command::reset())?;
        self.command(&Command::set_event_mask(EVENT_MASK))?;
        self.command(&Command::le_set_scan_parameters(&self.cfg.scan))?;
        self.command(&Command::le_set_scan_enable(true))?;
        self.stats.bring_ups += 1;
        Ok(())
    }

    /// Sends a command and waits for its Command Complete with status 0.
    pub fn command(&mut self, cmd: &Command) -> Result<(), Error<U::Error>> {
        self.uart.write_all(cmd.as_bytes()).map_err(Error::Uart)?;
        self.uart.flush().map_err(Error::Uart)?;
        let op = cmd.opcode();
        let mut waited_ms = 0u32;
        loop {
            let Some(ev) = self
                .reader
                .read_packet(&mut self.uart)
                .map_err(Error::Uart)?
            else {
                if waited_ms >= self.cfg.command_timeout_ms {
                    return Err(Error::Timeout { opcode: op });
                }
                self.delay.delay_ms(1);
                waited_ms += 1;
                continue;
            };
            match (ev.code(), ev.params()) {
                // num_packets, opcode, status, return parameters…
                (event::COMMAND_COMPLETE, [_, lo, hi, status, ..])
                    if u16::from_le_bytes([*lo, *hi]) == op =>
                {
                    return match *status {
                        0 => Ok(()),
                        status => Err(Error::CommandFailed { opcode: op, status }),
                    };
                }
                // status, num_packets, opcode: only a failure ends the wait; success means the
                // Command Complete is still to come.
                (event::COMMAND_STATUS, [status, _, lo, hi])
                    if u16::from_le_bytes([*lo, *hi]) == op && *status != 0 =>
                {
                    return Err(Error::CommandFailed {
                        opcode: op,
                        status: *status,
                    });
                }
                (event::HARDWARE_ERROR, params) => {
                    self.stats.hardware_errors += 1;
                    return Err(Error::HardwareError(params.first().copied().unwrap_or(0)));
                }
                _ => self.stats.events_dropped_waiting += 1,
            }
        }
    }

    /// Reads what the UART has, without blocking; returns the next event, if one completed.
    pub fn poll_event(&mut self) -> Result<Option<Incoming<'_>>, Error<U::Error>> {
        let Some(ev) = self
            .reader
            .read_packet(&mut self.uart)
            .map_err(Error::Uart)?
        else {
            return Ok(None);
        };
        Ok(Some(match ev.code() {
            event::LE_META => match hci::parse_event(ev.0) {
                Ok(reports) => Incoming::Advertising(reports),
                Err(HciError::NotAdvertisingReport(_)) => Incoming::Other(ev),
                Err(e) => Incoming::Malformed(e),
            },
            event::HARDWARE_ERROR => {
                self.stats.hardware_errors += 1;
                Incoming::HardwareError(ev.params().first().copied().unwrap_or(0))
            }
            _ => Incoming::Other(ev),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_bytes() {
        assert_eq!(Command::reset().as_bytes(), &[0x01, 0x03, 0x0c, 0x00]);
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
            Command::set_event_mask(EVENT_MASK).as_bytes(),
            &[
                0x01, 0x01, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x20
            ]
        );
        assert!(Command::new(0x2008, &[0; 33]).is_none());
    }
}
