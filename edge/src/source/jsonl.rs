//! Recorded sightings in JSON lines, the format `dwell-edge replay` reads (PRODUCT.md):
//!
//! ```text
//! {"ts_ms": 1700000000000, "receiver": "gw-1", "addr": "aa:bb:cc:dd:ee:ff", "rssi": -60, "ad": "0201…"}
//! {"ts_ms": 1700000000000, "receiver": "gw-1", "wifi_sa": "aa:bb:cc:dd:ee:ff", "rssi": -70}
//! ```
//!
//! BLE records may add `addr_type` (HCI: 0 public, 1 random); without it the address is taken as
//! random, which is what phones use — it only affects the "randomized" flag, never privacy (every
//! anonymous address is hashed either way). Blank lines are skipped; any other unreadable line is
//! a counted [`SourceError::BadRecord`] naming the line.

use super::{Observation, Radio, Scanner, SourceError, parse_mac};
use serde::Deserialize;
use std::io::BufRead;
use std::sync::Arc;

#[derive(Deserialize)]
struct Line {
    ts_ms: i64,
    receiver: String,
    rssi: i8,
    addr: Option<String>,
    addr_type: Option<u8>,
    ad: Option<String>,
    wifi_sa: Option<String>,
}

/// Reads sightings from any buffered reader (a file, stdin).
#[derive(Debug)]
pub struct JsonlSource<R> {
    input: R,
    line_no: u64,
    buf: String,
    /// Receiver ids are shared: one allocation per distinct receiver, not per line.
    receivers: Vec<Arc<str>>,
}

impl<R: BufRead + Send> JsonlSource<R> {
    pub fn new(input: R) -> Self {
        JsonlSource {
            input,
            line_no: 0,
            buf: String::new(),
            receivers: Vec::new(),
        }
    }

    fn receiver(&mut self, id: &str) -> Arc<str> {
        if let Some(r) = self.receivers.iter().find(|r| &***r == id) {
            return r.clone();
        }
        let r: Arc<str> = Arc::from(id);
        self.receivers.push(r.clone());
        r
    }

    fn bad(&self, reason: impl Into<String>) -> SourceError {
        SourceError::BadRecord {
            source_name: "jsonl",
            record: self.line_no,
            reason: reason.into(),
        }
    }

    fn parse(&mut self, text: &str) -> Result<Observation, SourceError> {
        let l: Line = serde_json::from_str(text).map_err(|e| self.bad(e.to_string()))?;
        let radio = match (&l.addr, &l.wifi_sa) {
            (Some(addr), None) => Radio::Ble {
                addr: parse_mac(addr).map_err(|e| self.bad(e))?,
                addr_type: l.addr_type.unwrap_or(1),
                ad: dwell_shared::hex::decode(l.ad.as_deref().unwrap_or(""))
                    .map_err(|e| self.bad(format!("ad: {e}")))?,
            },
            (None, Some(sa)) => Radio::Wifi {
                sa: parse_mac(sa).map_err(|e| self.bad(e))?,
            },
            _ => return Err(self.bad("needs exactly one of \"addr\" (BLE) or \"wifi_sa\" (Wi-Fi)")),
        };
        if l.receiver.is_empty() {
            return Err(self.bad("\"receiver\" is empty"));
        }
        Ok(Observation {
            ts_ms: l.ts_ms,
            receiver: self.receiver(&l.receiver),
            rssi: l.rssi,
            radio,
        })
    }

    /// The next record, synchronously (replay drives this directly).
    pub fn next_record(&mut self) -> Option<Result<Observation, SourceError>> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            match self.input.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(SourceError::Fatal {
                        source_name: "jsonl",
                        reason: format!("line {}: {e}", self.line_no),
                    }));
                }
            }
            let text = std::mem::take(&mut self.buf);
            let trimmed = text.trim();
            if trimmed.is_empty() {
                self.buf = text;
                continue;
            }
            let r = self.parse(trimmed);
            self.buf = text;
            return Some(r);
        }
    }
}

impl<R: BufRead + Send> Iterator for JsonlSource<R> {
    type Item = Result<Observation, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

impl<R: BufRead + Send> Scanner for JsonlSource<R> {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    async fn next(&mut self) -> Option<Result<Observation, SourceError>> {
        self.next_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ble_and_wifi_and_counts_bad_lines() {
        let input = concat!(
            r#"{"ts_ms":1,"receiver":"gw-1","addr":"aa:bb:cc:dd:ee:ff","rssi":-60,"ad":"020106"}"#,
            "\n\n",
            r#"{"ts_ms":2,"receiver":"gw-1","wifi_sa":"02:00:00:00:00:01","rssi":-70}"#,
            "\nnot json\n",
            r#"{"ts_ms":3,"receiver":"gw-1","rssi":-70}"#,
            "\n",
            r#"{"ts_ms":4,"receiver":"n-2","addr":"zz","rssi":-70}"#,
            "\n"
        );
        let out: Vec<_> = JsonlSource::new(input.as_bytes()).collect();
        assert_eq!(out.len(), 5);
        let first = out[0].as_ref().unwrap();
        assert_eq!(first.ts_ms, 1);
        assert_eq!(
            first.radio,
            Radio::Ble {
                addr: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
                addr_type: 1,
                ad: vec![2, 1, 6]
            }
        );
        assert!(matches!(out[1].as_ref().unwrap().radio, Radio::Wifi { .. }));
        let errs: Vec<String> = out[2..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert!(errs[0].starts_with("jsonl record 4:"), "{errs:?}");
        assert!(errs[1].contains("exactly one of"), "{errs:?}");
        assert!(errs[2].contains("address"), "{errs:?}");
    }
}
