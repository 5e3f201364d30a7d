//! Captures as sources: btsnoop files (`btmon -w` from a store, Android HCI snoop logs) and
//! pcap/pcapng Wi-Fi captures, decoded by `dwell-shared` exactly as the live backends decode.
//!
//! A capture is heard by one receiver, named when the source is opened (usually the gateway's own
//! id). Time comes from the capture.

use super::{Observation, Radio, Scanner, SourceError};
use dwell_shared::btsnoop::{BtsnoopReader, PacketKind};
use dwell_shared::hci;
use dwell_shared::wifi::pcap::ProbeReader;
use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

fn fatal(source_name: &'static str, reason: impl ToString) -> SourceError {
    SourceError::Fatal {
        source_name,
        reason: reason.to_string(),
    }
}

/// Every LE advertising report of a btsnoop capture, one observation each.
#[derive(Debug)]
pub struct BtsnoopSource {
    reader: BtsnoopReader<BufReader<File>>,
    receiver: Arc<str>,
    pending: VecDeque<Result<Observation, SourceError>>,
    done: bool,
}

impl BtsnoopSource {
    pub fn open(path: &Path, receiver: &str) -> Result<Self, SourceError> {
        let reader = BtsnoopReader::open(path)
            .map_err(|e| fatal("btsnoop", format!("{}: {e}", path.display())))?;
        Ok(BtsnoopSource {
            reader,
            receiver: Arc::from(receiver),
            pending: VecDeque::new(),
            done: false,
        })
    }

    pub fn next_record(&mut self) -> Option<Result<Observation, SourceError>> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Some(p);
            }
            if self.done {
                return None;
            }
            let rec = match self.reader.next()? {
                Ok(r) => r,
                Err(e) => {
                    // The reader cannot resynchronise after a broken record: report and end.
                    self.done = true;
                    return Some(Err(fatal("btsnoop", e)));
                }
            };
            let b = &rec.packet.bytes;
            let is_report = rec.packet.kind == PacketKind::Event
                && matches!(b.as_slice(), [hci::EVENT_LE_META, _, s, ..]
                    if *s == hci::SUBEVENT_ADV_REPORT || *s == hci::SUBEVENT_EXT_ADV_REPORT);
            if !is_report {
                continue;
            }
            match hci::parse_event(b) {
                Err(e) => self.pending.push_back(Err(SourceError::BadRecord {
                    source_name: "btsnoop",
                    record: rec.number,
                    reason: e.to_string(),
                })),
                Ok(reports) => {
                    for r in reports {
                        self.pending.push_back(match r {
                            // A report without RSSI says nothing about distance: not a sighting.
                            Ok(r) if r.rssi.is_none() => continue,
                            Ok(r) => Ok(Observation {
                                ts_ms: rec.ts_ms,
                                receiver: self.receiver.clone(),
                                rssi: r.rssi.unwrap_or(hci::NOT_AVAILABLE),
                                radio: Radio::Ble {
                                    addr: r.addr,
                                    addr_type: r.addr_type,
                                    ad: r.data.to_vec(),
                                },
                            }),
                            Err(e) => Err(SourceError::BadRecord {
                                source_name: "btsnoop",
                                record: rec.number,
                                reason: e.to_string(),
                            }),
                        });
                    }
                }
            }
        }
    }
}

impl Iterator for BtsnoopSource {
    type Item = Result<Observation, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

impl Scanner for BtsnoopSource {
    fn name(&self) -> &'static str {
        "btsnoop"
    }
    async fn next(&mut self) -> Option<Result<Observation, SourceError>> {
        self.next_record()
    }
}

/// Every probe request with a signal level in a pcap/pcapng capture.
#[derive(Debug)]
pub struct PcapSource {
    reader: ProbeReader<BufReader<File>>,
    receiver: Arc<str>,
    /// Probe requests without a dBm signal (plain 802.11 captures) cannot be placed.
    pub without_signal: u64,
}

impl PcapSource {
    pub fn open(path: &Path, receiver: &str) -> Result<Self, SourceError> {
        let reader = ProbeReader::open(path)
            .map_err(|e| fatal("pcap", format!("{}: {e}", path.display())))?;
        Ok(PcapSource {
            reader,
            receiver: Arc::from(receiver),
            without_signal: 0,
        })
    }

    /// Frames read, probe requests, other frames and malformed packets so far.
    pub fn stats(&self) -> dwell_shared::wifi::pcap::CaptureStats {
        self.reader.stats()
    }

    pub fn next_record(&mut self) -> Option<Result<Observation, SourceError>> {
        loop {
            return Some(match self.reader.next()? {
                Ok(p) => match p.rssi {
                    Some(rssi) => Ok(Observation {
                        ts_ms: p.ts_ms,
                        receiver: self.receiver.clone(),
                        rssi,
                        radio: Radio::Wifi { sa: p.sa },
                    }),
                    None => {
                        self.without_signal += 1;
                        continue;
                    }
                },
                Err(e) => Err(fatal("pcap", e)),
            });
        }
    }
}

impl Iterator for PcapSource {
    type Item = Result<Observation, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

impl Scanner for PcapSource {
    fn name(&self) -> &'static str {
        "pcap"
    }
    async fn next(&mut self) -> Option<Result<Observation, SourceError>> {
        self.next_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/captures");

    #[test]
    fn btsnoop_capture_yields_every_report_without_loss() {
        let path = format!("{FIXTURES}/horizon74_btsnoop_hci.log");
        let all: Vec<_> = BtsnoopSource::open(Path::new(&path), "gw-1")
            .unwrap()
            .collect();
        assert_eq!(all.len(), 412);
        assert!(all.iter().all(|o| o.is_ok()));
        let first = all[0].as_ref().unwrap();
        assert_eq!(&*first.receiver, "gw-1");
        assert_eq!(first.rssi, -49);
    }

    #[test]
    fn pcap_probe_request_becomes_a_wifi_observation() {
        let path = format!("{FIXTURES}/tcpdump_ieee802.11_meshid.pcap");
        let mut src = PcapSource::open(Path::new(&path), "gw-1").unwrap();
        let all: Vec<_> = src.by_ref().collect();
        assert_eq!(all.len(), 1);
        let o = all[0].as_ref().unwrap();
        assert_eq!(
            (o.rssi, &o.radio),
            (
                -38,
                &Radio::Wifi {
                    sa: [0xb0, 0xfc, 0x36, 0x2f, 0x07, 0x44]
                }
            )
        );
        assert_eq!(src.stats().malformed, 0);
    }

    #[test]
    fn missing_file_is_fatal_and_names_the_path() {
        let e = BtsnoopSource::open(Path::new("/nope.log"), "gw").unwrap_err();
        assert!(e.is_fatal() && e.to_string().contains("/nope.log"), "{e}");
    }
}
