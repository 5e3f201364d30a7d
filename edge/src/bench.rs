//! `dwell-edge bench`: the gateway's hot path measured on this machine.
//!
//! A synthetic but shaped load: `devices` devices in range at once — 40% app users advertising an
//! Eddystone-EID, 50% phones with a private BLE address (anonymous tier: hashed), 10% Wi-Fi probe
//! requests — each heard by three receivers every second of data time, with RSSI that depends on
//! where the device stands plus noise. Every sighting goes through the real stages on one thread:
//! decode (beacon frames) → identify (privacy tiers, keyed hash) → track (smoothing, positioning,
//! zones, visits) → outbox (sled, durable appends of 500-event batches).
//!
//! Reported: sightings per second on one core, and the process's resident memory (VmRSS) with the
//! tracker holding every device.

use crate::config::Config;
use crate::outbox::{Outbox, OutboxConfig, SledOutbox};
use crate::pipeline::Pipeline;
use crate::source::{Observation, Radio};
use crate::track::TrackEvent;
use dwell_shared::frame::{EddystoneEid, Frame};
use dwell_shared::wire::Event;
use std::sync::Arc;
use std::time::Instant;

/// What a bench run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub devices: usize,
    pub sightings: u64,
    pub events: u64,
    pub seconds: f64,
    pub sightings_per_s: f64,
    pub tracked_devices: usize,
    /// Resident memory of the whole process at the end, bytes (Linux; 0 elsewhere).
    pub rss_bytes: u64,
    pub outbox_records: u64,
}

/// Resident set size from /proc/self/status, if available.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A tiny deterministic noise source (xorshift), so the bench needs no RNG crate on its hot path.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> i8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 % 13) as i8) - 6
    }
}

/// Runs `data_seconds` seconds of data for `devices` devices; the outbox lives in `outbox_dir`.
pub fn run(
    config: &Config,
    devices: usize,
    data_seconds: u32,
    outbox_dir: &std::path::Path,
) -> anyhow::Result<BenchReport> {
    let layout = config.store_layout();
    anyhow::ensure!(!layout.receivers.is_empty(), "the layout has no receivers");
    let receivers: Vec<Arc<str>> = layout
        .receivers
        .iter()
        .map(|r| Arc::from(r.id.as_str()))
        .collect();
    let mut cfg = config.clone();
    cfg.tracking.max_devices = cfg.tracking.max_devices.max(devices as u32 * 2);
    let mut pipeline = Pipeline::new(&cfg);
    let outbox = SledOutbox::open(&OutboxConfig::new(outbox_dir))?;

    // Per device: three observations (one per receiver that hears it) reused every second.
    let start_ms: i64 = 1_767_258_000_000;
    let mut obs: Vec<(Observation, i8)> = Vec::with_capacity(devices * 3);
    for i in 0..devices {
        let n = i as u64;
        let mut addr = [
            0x40 | (n >> 40) as u8 & 0x3f,
            (n >> 32) as u8,
            (n >> 24) as u8,
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
        ];
        let radio = match i % 10 {
            0..=3 => {
                let mut eid = [0u8; 8];
                eid.copy_from_slice(&(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
                let mut b = [0u8; 31];
                let len =
                    Frame::EddystoneEid(EddystoneEid { tx_power: -18, eid }).encode(&mut b)?;
                Radio::Ble {
                    addr,
                    addr_type: 1,
                    ad: b[..len].to_vec(),
                }
            }
            4..=8 => Radio::Ble {
                addr,
                addr_type: 1,
                ad: vec![
                    0x02, 0x01, 0x1a, 0x0a, 0xff, 0x4c, 0x00, 0x10, 0x05, 0x03, 0x1c, 0x1e, 0x5e,
                    0x6e,
                ],
            },
            _ => {
                addr[0] = 0x02 | (addr[0] & 0xfc);
                Radio::Wifi { sa: addr }
            }
        };
        for k in 0..3 {
            let r = (i + k * 2) % receivers.len();
            // A device stands near its first receiver: strong there, weaker at the others.
            let base = -55 - 12 * k as i8;
            obs.push((
                Observation {
                    ts_ms: start_ms,
                    receiver: receivers[r].clone(),
                    rssi: base,
                    radio: radio.clone(),
                },
                base,
            ));
        }
    }

    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    let mut concluded: Vec<TrackEvent> = Vec::new();
    let mut pending: Vec<Event> = Vec::new();
    let (mut sightings, mut events) = (0u64, 0u64);
    let t0 = Instant::now();
    for s in 0..data_seconds {
        let now = start_ms + i64::from(s) * 1000;
        pipeline.tick(now, &mut concluded);
        for (j, (o, base)) in obs.iter_mut().enumerate() {
            // Spread the second's sightings over it, as a scanner delivers them.
            o.ts_ms = now + (j as i64 * 997) % 1000;
            o.rssi = *base + noise.next();
            pipeline.observe(o, &mut concluded);
            sightings += 1;
        }
        events += concluded.len() as u64;
        pending.extend(concluded.drain(..).map(|e| e.into_event(0)));
        for chunk in pending.chunks_mut(500) {
            outbox.append(chunk)?;
        }
        pending.clear();
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(BenchReport {
        devices,
        sightings,
        events,
        seconds,
        sightings_per_s: sightings as f64 / seconds,
        tracked_devices: pipeline.tracker().devices(),
        rss_bytes: rss_bytes(),
        outbox_records: outbox.stats().records,
    })
}
