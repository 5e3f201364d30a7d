//! The zone sensor node: the controller, the two beams, the table and the schedule, stepped by
//! one function.
//!
//! [`Node::poll`] is the whole firmware loop body, so the board's `main` is a loop around it and
//! a host test can drive it with scripted bytes and a scripted clock. Each call, in this order:
//! 1. samples both beams into the door counter (first, so nothing else delays it);
//! 2. at a window end, writes the window's report into the caller's buffer, clears the window and
//!    returns the length — a broken controller can therefore never stop door counts or reports;
//! 3. brings the controller up if it is not (at boot, after a hardware error, after a failure —
//!    retried no more often than every `retry_ms`);
//! 4. switches between scanning and advertising when the [`Schedule`] says so;
//! 5. reads up to [`MAX_EVENTS_PER_POLL`] events and folds their advertising reports into the
//!    table; a Hardware Error event triggers bring-up at once;
//! 6. drops a partial H4 packet if the line has been silent mid-packet for `stall_ms` (a truncated
//!    packet), so the next packet is read from its start.
//!
//! Windows are aligned to multiples of the window length on the clock given to `poll` (Unix
//! milliseconds if the board has wall time, else time since boot): every node in a store closes
//! its windows together. The first window after boot is therefore partial.
//!
//! Controller commands wait (blocking, up to `command_timeout_ms`) for their answer; boards whose
//! door beams cannot tolerate that pause should sample the beams from a timer interrupt and keep
//! the command timeout short.

use core::fmt;

use dwell_shared::Uuid;
use dwell_shared::node_report::{self, Header, ReportWriter};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_io::{Read, ReadReady, Write};

use crate::aggregate::Table;
use crate::beacon::{Phase, Schedule, ZoneBeacon};
use crate::controller::{self, Command, Controller, Incoming};
use crate::door::{Door, DoorCounts};

/// Events read per poll at most, so a flood of advertisements cannot delay the door sampling.
pub const MAX_EVENTS_PER_POLL: usize = 16;

/// Everything a node is told at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub node_id: u32,
    /// Store number (the beacon's major).
    pub store: u16,
    /// Zone number (the beacon's minor).
    pub zone: u16,
    /// The retailer's iBeacon UUID; `None`: this node does not advertise.
    pub retailer_uuid: Option<Uuid>,
    /// The beacon's calibrated RSSI at 1 m.
    pub measured_power: i8,
    /// Advertising interval, 0.625 ms units.
    pub adv_interval: u16,
    pub schedule: Schedule,
    /// Reporting window, seconds.
    pub window_s: u16,
    /// Door beam debounce, ms.
    pub debounce_ms: u32,
    /// True if a beam input reads low while the beam is broken.
    pub beam_active_low: bool,
    /// Key of the address hash (see [`crate::aggregate`]); from the board's RNG.
    pub salt: [u8; 16],
    pub controller: controller::Config,
    /// Least time between bring-up attempts after a failure, ms.
    pub retry_ms: u32,
    /// Silence mid-packet after which the partial packet is dropped, ms.
    pub stall_ms: u32,
}

impl Config {
    /// A node with defaults: 60 s windows, 30 ms debounce, beams active-high, the default schedule.
    pub fn new(node_id: u32, store: u16, zone: u16, salt: [u8; 16]) -> Self {
        Config {
            node_id,
            store,
            zone,
            retailer_uuid: None,
            measured_power: -59,
            adv_interval: 160,
            schedule: Schedule::default(),
            window_s: 60,
            debounce_ms: 30,
            beam_active_low: false,
            salt,
            controller: controller::Config::default(),
            retry_ms: 5000,
            stall_ms: 50,
        }
    }

    /// The zone beacon, if the node advertises one.
    pub fn beacon(&self) -> Option<ZoneBeacon> {
        self.retailer_uuid.map(|uuid| ZoneBeacon {
            uuid,
            store: self.store,
            zone: self.zone,
            measured_power: self.measured_power,
            interval: self.adv_interval,
        })
    }
}

/// Errors of one poll; `E` is the UART's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    Controller(controller::Error<E>),
    /// A beam input could not be read.
    Beam(digital::ErrorKind),
    /// The report buffer cannot hold even an empty report
    /// ([`node_report::max_encoded_len`] gives the size for a full table).
    ReportBuffer,
}

impl<E> From<controller::Error<E>> for Error<E> {
    fn from(e: controller::Error<E>) -> Self {
        Error::Controller(e)
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Controller(e) => e.fmt(f),
            Error::Beam(k) => write!(f, "door beam input error: {k:?}"),
            Error::ReportBuffer => f.write_str("report buffer smaller than an empty report"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Health counters since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Reports written.
    pub reports: u32,
    /// Advertising reports folded into the table.
    pub advertisements: u32,
    /// LE advertising events (or single reports) the shared parser rejected.
    pub malformed: u32,
    /// Hardware Error events that made the node bring the controller up again.
    pub controller_resets: u32,
    /// Failed bring-ups or commands.
    pub controller_errors: u32,
}

/// The node; see the module docs.
pub struct Node<U, RST, A, B, D, const N: usize> {
    cfg: Config,
    controller: Controller<U, RST, D>,
    beam_a: A,
    beam_b: B,
    door: Door,
    table: Table<N>,
    window_start_ms: Option<u64>,
    schedule_start_ms: u64,
    up: bool,
    last_attempt_ms: Option<u64>,
    phase: Phase,
    rx_bytes: u32,
    last_rx_ms: u64,
    stats: NodeStats,
}

impl<U, RST, A, B, D, const N: usize> fmt::Debug for Node<U, RST, A, B, D, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.cfg.node_id)
            .field("up", &self.up)
            .field("phase", &self.phase)
            .field("door", &self.door.counts())
            .field("rows", &self.table.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<U, RST, A, B, D, const N: usize> Node<U, RST, A, B, D, N>
where
    U: Read + ReadReady + Write,
    RST: OutputPin,
    A: InputPin,
    B: InputPin,
    D: DelayNs,
{
    /// A node; nothing is sent to the controller until the first [`Node::poll`].
    pub fn new(cfg: Config, uart: U, reset: Option<RST>, beam_a: A, beam_b: B, delay: D) -> Self {
        Node {
            controller: Controller::new(uart, reset, delay, cfg.controller),
            beam_a,
            beam_b,
            door: Door::new(cfg.debounce_ms),
            table: Table::new(cfg.salt),
            window_start_ms: None,
            schedule_start_ms: 0,
            up: false,
            last_attempt_ms: None,
            phase: Phase::Scan,
            rx_bytes: 0,
            last_rx_ms: 0,
            stats: NodeStats::default(),
            cfg,
        }
    }

    /// One step of the firmware loop at `now_ms`; returns the length of a report written into
    /// `report` when a window ended.
    pub fn poll(
        &mut self,
        now_ms: u64,
        report: &mut [u8],
    ) -> Result<Option<usize>, Error<U::Error>> {
        self.sample_beams(now_ms)?;
        let window_ms = u64::from(self.cfg.window_s).max(1) * 1000;
        let start = *self
            .window_start_ms
            .get_or_insert(now_ms - now_ms % window_ms);
        if now_ms.saturating_sub(start) >= window_ms {
            let n = self.write_report(start, report)?;
            let mut next = start + window_ms;
            if now_ms.saturating_sub(next) >= window_ms {
                // The loop stalled for more than a window: start afresh at the current one.
                next = now_ms - now_ms % window_ms;
            }
            self.window_start_ms = Some(next);
            return Ok(Some(n));
        }
        if let Err(e) = self.radio(now_ms) {
            self.stats.controller_errors += 1;
            self.up = false;
            self.last_attempt_ms = Some(now_ms);
            return Err(e.into());
        }
        Ok(None)
    }

    fn sample_beams(&mut self, now_ms: u64) -> Result<(), Error<U::Error>> {
        let a = self
            .beam_a
            .is_high()
            .map_err(|e| Error::Beam(digital::Error::kind(&e)))?;
        let b = self
            .beam_b
            .is_high()
            .map_err(|e| Error::Beam(digital::Error::kind(&e)))?;
        let inv = self.cfg.beam_active_low;
        self.door.poll(now_ms, a != inv, b != inv);
        Ok(())
    }

    fn write_report(&mut self, start_ms: u64, out: &mut [u8]) -> Result<usize, Error<U::Error>> {
        let door = self.door.take_counts();
        let sat = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        let header = Header {
            node: self.cfg.node_id,
            store: self.cfg.store,
            zone: self.cfg.zone,
            window_start_s: (start_ms / 1000) as u32,
            window_len_s: self.cfg.window_s,
            door_in: sat(door.people_in),
            door_out: sat(door.people_out),
            dropped: sat(self.table.dropped()),
        };
        let mut w = ReportWriter::new(out, &header).map_err(|_| Error::ReportBuffer)?;
        let entries = self.table.entries();
        for (i, e) in entries.iter().enumerate() {
            if w.push(&e.sighting()).is_err() {
                // Whatever does not fit is counted, not silently lost.
                w.add_dropped((entries.len() - i) as u32);
                break;
            }
        }
        let n = w.finish();
        self.table.clear();
        self.stats.reports += 1;
        Ok(n)
    }

    fn bring_up(&mut self, now_ms: u64) -> Result<(), controller::Error<U::Error>> {
        self.last_attempt_ms = Some(now_ms);
        self.controller.bring_up()?;
        if let Some(b) = self.cfg.beacon() {
            self.controller.command(&b.set_parameters())?;
            self.controller.command(&b.set_data())?;
        }
        self.phase = Phase::Scan;
        self.schedule_start_ms = now_ms;
        self.up = true;
        Ok(())
    }

    fn radio(&mut self, now_ms: u64) -> Result<(), controller::Error<U::Error>> {
        if !self.up {
            let due = self
                .last_attempt_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= u64::from(self.cfg.retry_ms));
            if !due {
                return Ok(());
            }
            self.bring_up(now_ms)?;
        }
        if self.cfg.retailer_uuid.is_some() {
            let want = self
                .cfg
                .schedule
                .phase_at(now_ms.saturating_sub(self.schedule_start_ms));
            if want != self.phase {
                let (off, on) = match want {
                    Phase::Advertise => (
                        Command::le_set_scan_enable(false),
                        Command::le_set_adv_enable(true),
                    ),
                    Phase::Scan => (
                        Command::le_set_adv_enable(false),
                        Command::le_set_scan_enable(true),
                    ),
                };
                self.controller.command(&off)?;
                self.controller.command(&on)?;
                self.phase = want;
            }
        }
        for _ in 0..MAX_EVENTS_PER_POLL {
            let reset = match self.controller.poll_event()? {
                None => break,
                Some(Incoming::Advertising(reports)) => {
                    for r in reports {
                        match r {
                            Ok(r) => {
                                self.table.record(&r);
                                self.stats.advertisements += 1;
                            }
                            Err(_) => self.stats.malformed += 1,
                        }
                    }
                    false
                }
                Some(Incoming::Malformed(_)) => {
                    self.stats.malformed += 1;
                    false
                }
                Some(Incoming::HardwareError(_)) => true,
                Some(Incoming::Other(_)) => false,
            };
            if reset {
                self.stats.controller_resets += 1;
                self.up = false;
                self.bring_up(now_ms)?;
            }
        }
        let rx = self.controller.reader().stats().bytes;
        if rx != self.rx_bytes {
            self.rx_bytes = rx;
            self.last_rx_ms = now_ms;
        } else if self.controller.reader().is_mid_packet()
            && now_ms.saturating_sub(self.last_rx_ms) >= u64::from(self.cfg.stall_ms)
        {
            self.controller.reader_mut().abandon_partial();
        }
        Ok(())
    }

    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    pub fn controller(&self) -> &Controller<U, RST, D> {
        &self.controller
    }

    /// Door counts of the window so far.
    pub fn door_counts(&self) -> DoorCounts {
        self.door.counts()
    }

    /// The window's table so far.
    pub fn table(&self) -> &Table<N> {
        &self.table
    }

    /// Rotates the address-hash salt (the board calls this daily, from its RNG).
    pub fn set_salt(&mut self, salt: [u8; 16]) {
        self.table.set_salt(salt);
    }

    /// True once the controller is configured and has not failed since.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The radio's current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Size of a buffer that always holds this node's report.
    pub const fn report_capacity() -> usize {
        node_report::max_encoded_len(N)
    }

    /// Gives the peripherals back: `(uart, reset, beam_a, beam_b, delay)`.
    pub fn release(self) -> (U, Option<RST>, A, B, D) {
        let (u, r, d) = self.controller.release();
        (u, r, self.beam_a, self.beam_b, d)
    }
}
