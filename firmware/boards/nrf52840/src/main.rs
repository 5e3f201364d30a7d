//! Zone sensor node on an nRF52840-DK (PCA10056): wires the chip's peripherals to
//! [`dwell_node::Node`] and nothing else. All node logic (HCI, door counting, beacon schedule,
//! aggregation, report encoding) is `dwell-node`'s; see README.md for pins and transport.
//!
//! - UARTE0 ↔ the external Bluetooth controller (HCI H4, 1 Mbaud, RTS/CTS flow control).
//! - P1.05 → the controller's reset line; P1.06 / P1.07 ← beam A / beam B (pull-ups).
//! - RTC0 on the 32.768 kHz crystal → the millisecond clock; SysTick → the blocking delay.
//! - RNG → the address-hash salt, drawn at boot and again at the first window end of each day.
//! - UARTE1 → each report as a frame `[len: u16 LE][report bytes]` on the DK's J-Link VCOM.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use dwell_node::{Config, Node};
use embedded_io::{ErrorType, Read, ReadReady, Write};
use nrf52840_hal::{
    Clocks, Delay, Rng, Rtc,
    clocks::LfOscConfiguration,
    gpio::{Level, p0, p1},
    pac::{self, RTC0, UARTE0},
    uarte::{self, Baudrate, Parity, Uarte, UarteRx, UarteTx},
};
use panic_halt as _;

/// Store number and zone of this node (the zone beacon's major and minor).
const STORE: u16 = 1;
const ZONE: u16 = 1;
/// The retailer's iBeacon UUID; `None`: the node scans only and never advertises.
const RETAILER_UUID: Option<[u8; 16]> = None;
/// Devices per window the node tells apart (rows of the sighting table).
const TABLE: usize = 128;
/// Largest report frame: 2-byte length + the report for a full table.
const FRAME: usize = 2 + dwell_node::node_report::max_encoded_len(TABLE);
/// The HCI UART's rate; it must match the controller's HCI firmware.
const HCI_BAUD: Baudrate = Baudrate::BAUD1M;
/// The report UART's rate (the J-Link VCOM); a full frame blocks the loop for ~34 ms at 1 Mbaud.
const REPORT_BAUD: Baudrate = Baudrate::BAUD1M;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The two halves of the HCI UARTE as the one `Read + ReadReady + Write` the node takes.
struct HciUart {
    tx: UarteTx<UARTE0>,
    rx: UarteRx<UARTE0>,
}

impl ErrorType for HciUart {
    type Error = uarte::Error;
}

impl Read for HciUart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, uarte::Error> {
        self.rx.read(buf)
    }
}

impl ReadReady for HciUart {
    fn read_ready(&mut self) -> Result<bool, uarte::Error> {
        self.rx.read_ready()
    }
}

impl Write for HciUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, uarte::Error> {
        self.tx.write(buf)
    }
    fn flush(&mut self) -> Result<(), uarte::Error> {
        self.tx.flush()
    }
}

/// Milliseconds since boot from RTC0's 24-bit counter at 32.768 kHz, widened to 64 bits. The
/// counter wraps every 512 s, so `now_ms` must run at least that often; `Node::poll` blocks for
/// seconds at most (a bring-up with every command timing out).
struct Millis {
    rtc: Rtc<RTC0>,
    last: u32,
    ticks: u64,
}

impl Millis {
    fn now_ms(&mut self) -> u64 {
        let c = self.rtc.get_counter();
        self.ticks += u64::from(c.wrapping_sub(self.last) & 0x00FF_FFFF);
        self.last = c;
        self.ticks * 1000 / 32_768
    }
}

#[entry]
fn main() -> ! {
    let p = pac::Peripherals::take().unwrap();
    let core = pac::CorePeripherals::take().unwrap();

    // HFXO for accurate UART baud rates, the 32.768 kHz crystal for the RTC (both on the DK).
    let _clocks = Clocks::new(p.CLOCK)
        .enable_ext_hfosc()
        .set_lfclk_src_external(LfOscConfiguration::NoExternalNoBypass)
        .start_lfclk();
    let rtc = Rtc::new(p.RTC0, 0).unwrap();
    rtc.enable_counter();
    let mut clock = Millis {
        rtc,
        last: 0,
        ticks: 0,
    };

    let mut rng = Rng::new(p.RNG);
    let mut salt = [0u8; 16];
    rng.random(&mut salt);

    let port0 = p0::Parts::new(p.P0);
    let port1 = p1::Parts::new(p.P1);

    let hci = Uarte::new(
        p.UARTE0,
        uarte::Pins {
            rxd: port1.p1_01.into_floating_input().degrade(),
            txd: port1.p1_02.into_push_pull_output(Level::High).degrade(),
            cts: Some(port1.p1_04.into_floating_input().degrade()),
            rts: Some(port1.p1_03.into_push_pull_output(Level::High).degrade()),
        },
        Parity::EXCLUDED,
        HCI_BAUD,
    );
    // One-byte DMA buffers: nrf-hal 0.19's `UarteTx::write` panics when given fewer bytes than
    // its buffer has room for, which cannot happen with a buffer of one byte (see README.md).
    let tx_buf: &'static mut [u8; 1] = cortex_m::singleton!(: [u8; 1] = [0; 1]).unwrap();
    let rx_buf: &'static mut [u8; 1] = cortex_m::singleton!(: [u8; 1] = [0; 1]).unwrap();
    let (tx, rx) = hci.split(tx_buf, rx_buf).unwrap();

    let mut reports = Uarte::new(
        p.UARTE1,
        uarte::Pins {
            rxd: port0.p0_08.into_floating_input().degrade(),
            txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
            cts: None,
            rts: None,
        },
        Parity::EXCLUDED,
        REPORT_BAUD,
    );

    let reset = port1.p1_05.into_push_pull_output(Level::High);
    let beam_a = port1.p1_06.into_pullup_input();
    let beam_b = port1.p1_07.into_pullup_input();

    let mut cfg = Config::new(p.FICR.deviceid[0].read().bits(), STORE, ZONE, salt);
    cfg.retailer_uuid = RETAILER_UUID.map(dwell_shared::Uuid::from_bytes);

    let mut node: Node<_, _, _, _, _, TABLE> = Node::new(
        cfg,
        HciUart { tx, rx },
        Some(reset),
        beam_a,
        beam_b,
        Delay::new(core.SYST),
    );

    // EasyDMA reads from RAM only: the frame lives in a static.
    let frame: &'static mut [u8; FRAME] = cortex_m::singleton!(: [u8; FRAME] = [0; FRAME]).unwrap();
    let mut next_salt_ms = DAY_MS;
    loop {
        let now = clock.now_ms();
        // Errors are counted in `node.stats()` and the node brings the controller up again by
        // itself; there is nowhere to print them on this board.
        if let Ok(Some(n)) = node.poll(now, &mut frame[2..]) {
            frame[..2].copy_from_slice(&(n as u16).to_le_bytes());
            let _ = reports.write(&frame[..2 + n]);
            // A new salt at a window boundary, so no device is split across two hashes in one
            // window.
            if now >= next_salt_ms {
                rng.random(&mut salt);
                node.set_salt(salt);
                next_salt_ms = now + DAY_MS;
            }
        }
    }
}
