//! `dwell-edge replay`: recorded sightings through the live pipeline, offline, as fast as the CPU
//! allows, with time taken from the records. Output: the events the gateway would have published,
//! one JSON object per line, numbered with `seq` from 1 as the outbox would number them.
//!
//! Unreadable records are counted and reported (the first few with their line numbers), never
//! silently skipped; the run goes on.

use crate::config::Config;
use crate::pipeline::{Pipeline, PipelineStats};
use crate::source::{Observation, SourceError};
use crate::track::{TrackEvent, TrackStats};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// What kind of file a replay input is, by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Recorded sightings, JSON lines (the documented replay format).
    Jsonl,
    /// A btsnoop capture (`btmon -w`, Android HCI snoop log).
    Btsnoop,
    /// A pcap or pcapng Wi-Fi capture.
    Pcap,
}

/// Recognises capture files by their magic numbers; anything else is read as JSON lines.
pub fn sniff(first_bytes: &[u8]) -> InputKind {
    const PCAP_MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a], // pcapng section header block
    ];
    if first_bytes.starts_with(b"btsnoop\0") {
        InputKind::Btsnoop
    } else if first_bytes.len() >= 4 && PCAP_MAGICS.iter().any(|m| first_bytes[..4] == *m) {
        InputKind::Pcap
    } else {
        InputKind::Jsonl
    }
}

/// How many bad records are described individually before only counting.
const REPORTED_ERRORS: usize = 10;

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplaySummary {
    pub records: u64,
    pub bad_records: u64,
    /// The first few bad records, described.
    pub first_errors: Vec<String>,
    pub events: u64,
    pub by_type: BTreeMap<&'static str, u64>,
    pub pipeline: PipelineStats,
    pub tracker: TrackStats,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records ({} bad), {} events",
            self.records, self.bad_records, self.events
        )?;
        for (t, n) in &self.by_type {
            write!(f, ", {t} {n}")?;
        }
        Ok(())
    }
}

/// Runs `input` through the pipeline of `config`, writing events to `out`. `progress` is called
/// every 100,000 records with the count so far (for a progress line).
pub fn run<I>(
    config: &Config,
    input: I,
    mut out: impl Write,
    mut progress: impl FnMut(u64),
) -> io::Result<ReplaySummary>
where
    I: Iterator<Item = Result<Observation, SourceError>>,
{
    let mut pipeline = Pipeline::new(config);
    let mut summary = ReplaySummary::default();
    let mut events: Vec<TrackEvent> = Vec::new();
    let mut seq = 0u64;
    let mut last_tick_s = i64::MIN;
    let mut write = |events: &mut Vec<TrackEvent>, summary: &mut ReplaySummary| -> io::Result<()> {
        for e in events.drain(..) {
            seq += 1;
            *summary.by_type.entry(e.kind.type_name()).or_default() += 1;
            summary.events += 1;
            serde_json::to_writer(&mut out, &e.into_event(seq))?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    for item in input {
        summary.records += 1;
        if summary.records % 100_000 == 0 {
            progress(summary.records);
        }
        match item {
            Ok(obs) => {
                // Advance the tracker's clock once per second of record time, before the record,
                // so time-driven events interleave with sightings as they would live.
                let s = obs.ts_ms.div_euclid(1000);
                if s > last_tick_s {
                    last_tick_s = s;
                    pipeline.tick(obs.ts_ms, &mut events);
                }
                pipeline.observe(&obs, &mut events);
            }
            Err(e) if e.is_fatal() => return Err(io::Error::other(e.to_string())),
            Err(e) => {
                summary.bad_records += 1;
                if summary.first_errors.len() < REPORTED_ERRORS {
                    summary.first_errors.push(e.to_string());
                }
            }
        }
        write(&mut events, &mut summary)?;
    }
    pipeline.finish(&mut events);
    write(&mut events, &mut summary)?;
    out.flush()?;
    summary.pipeline = pipeline.stats();
    summary.tracker = pipeline.tracker().stats();
    Ok(summary)
}
