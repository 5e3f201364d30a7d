//! `dwell-edge decode`: advertisements and captures in, one JSON object per line out.
//!
//! Support and store IT use it to see what the gateway would make of bytes from the air; tests
//! outside the code use it to compare Dwell with other decoders. The formats are an interface
//! (PRODUCT.md): AD fields (`flags`, `local_name`, `tx_power_level`, `service_uuids`,
//! `manufacturer_data`, `service_data`) and the recognised beacon `frames`; from an HCI event also
//! `addr`, `addr_type`, `rssi`, `event_type`. A bad line prints `{"error": …}` and the run goes on.
//!
//! The decoding itself is `dwell-shared`'s; this module only chooses the input form and shapes the
//! output.

use dwell_shared::ad::AdFields;
use dwell_shared::btsnoop::{BtsnoopReader, PacketKind};
use dwell_shared::frame::{self, Frame};
use dwell_shared::hci::{self, AdvReport, ReportKind};
use dwell_shared::hex::{self, MacAddr};
use dwell_shared::wifi::pcap::ProbeReader;
use serde_json::{Map, Value, json};
use std::io::{self, BufRead, Write};
use std::path::Path;

/// Counts of what a decode run saw, printed on stderr at the end so nothing is silently dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub decoded: u64,
    pub errors: u64,
}

/// The JSON object for one advertising payload: AD fields and frames.
pub fn advertisement(payload: &[u8]) -> Map<String, Value> {
    let fields = AdFields::parse(payload);
    let mut obj = match serde_json::to_value(&fields) {
        Ok(Value::Object(m)) => m,
        // AdFields serializes as a map by construction; anything else would be a bug here.
        _ => Map::new(),
    };
    if let Some(e) = fields.error {
        obj.insert("ad_error".into(), Value::String(e.to_string()));
    }
    let mut it = frame::frames(payload);
    let frames: Vec<Frame> = it.by_ref().collect();
    obj.insert("frames".into(), json!(frames));
    if it.repaired() > 0 {
        warn(
            &mut obj,
            format!(
                "{} Eddystone frame(s) completed from bytes after an AD structure that declared too few",
                it.repaired()
            ),
        );
    }
    obj
}

/// Adds a notice to the object's `warnings` list: the output is still given, but the input was
/// not as the specification says.
fn warn(obj: &mut Map<String, Value>, text: String) {
    match obj
        .entry("warnings")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(list) => list.push(Value::String(text)),
        // `warnings` is only ever written here, as a list.
        other => *other = Value::Array(vec![Value::String(text)]),
    }
}

/// The JSON object for one HCI advertising report: address, type, RSSI, then the advertisement.
pub fn report(r: &AdvReport<'_>) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("addr".into(), Value::String(MacAddr(&r.addr).to_string()));
    obj.insert("addr_type".into(), json!(r.addr_type));
    obj.insert("event_type".into(), json!(r.event_type));
    obj.insert("rssi".into(), json!(r.rssi));
    if r.kind == ReportKind::Extended {
        obj.insert("extended".into(), Value::Bool(true));
        obj.insert("tx_power".into(), json!(r.tx_power));
    }
    obj.extend(advertisement(r.data));
    obj
}

/// Whether bytes are an HCI event rather than AD structures. `04 3e` is the H4 form. Some tools'
/// logs carry another first byte (beacontools' tests use 0x41): a second byte 0x3e whose first byte,
/// read as an AD length, would run past the end cannot be AD data, so it is read as an event.
fn is_hci_event(b: &[u8]) -> bool {
    match b {
        [hci::H4_EVENT, hci::EVENT_LE_META, ..] => true,
        [first, hci::EVENT_LE_META, _, ..] => usize::from(*first) >= b.len(),
        _ => false,
    }
}

/// Decodes one input line (hex of AD data or of an HCI event) into one JSON object.
pub fn line(text: &str) -> Value {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let bytes = match hex::decode(text) {
        Ok(b) => b,
        Err(e) => return json!({ "error": format!("not hex: {e}") }),
    };
    if !is_hci_event(&bytes) {
        return Value::Object(advertisement(&bytes));
    }
    let strict = if bytes[0] == hci::H4_EVENT {
        hci::parse_h4(&bytes)
    } else {
        Err(hci::HciError::NotAnEvent(bytes[0]))
    };
    match strict.map(|it| it.collect::<Result<Vec<_>, _>>()) {
        Ok(Ok(reports)) if reports.len() == 1 => Value::Object(report(&reports[0])),
        Ok(Ok(reports)) => json!({ "reports": reports.iter().map(report).collect::<Vec<_>>() }),
        Ok(Err(e)) | Err(e) => match hci::salvage_single_legacy(&bytes) {
            Some(r) => {
                let mut obj = report(&r);
                warn(
                    &mut obj,
                    format!("{e}; read as one report running to the last byte (RSSI)"),
                );
                Value::Object(obj)
            }
            None => json!({ "error": e.to_string() }),
        },
    }
}

/// Reads hex lines from `input` and writes one JSON line per input line to `out`.
pub fn lines(input: impl BufRead, mut out: impl Write) -> io::Result<Summary> {
    let mut s = Summary::default();
    for l in input.lines() {
        let l = l?;
        s.lines += 1;
        let v = line(&l);
        if v.get("error").is_some() {
            s.errors += 1;
        } else {
            s.decoded += 1;
        }
        write_line(&mut out, &v)?;
    }
    out.flush()?;
    Ok(s)
}

/// Decodes every LE advertising report of a btsnoop capture: one JSON object per report with the
/// capture's `ts_ms`, the capture's record number (`record`, as Wireshark numbers frames) and the
/// raw advertising data (`ad`, hex: the form `dwell-edge replay` reads). Records that are not advertising reports are counted, not printed; a report
/// event that does not parse prints an error object with its record number.
pub fn btsnoop_file(path: &Path, mut out: impl Write) -> anyhow::Result<Summary> {
    let reader = BtsnoopReader::open(path)?;
    let mut s = Summary::default();
    for rec in reader {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                s.errors += 1;
                write_line(&mut out, &json!({ "error": e.to_string() }))?;
                break;
            }
        };
        s.lines += 1;
        let bytes = &rec.packet.bytes;
        if rec.packet.kind != PacketKind::Event
            || !matches!(bytes.as_slice(), [hci::EVENT_LE_META, _, sub, ..]
                if *sub == hci::SUBEVENT_ADV_REPORT || *sub == hci::SUBEVENT_EXT_ADV_REPORT)
        {
            continue;
        }
        let reports = match hci::parse_event(bytes) {
            Ok(r) => r,
            Err(e) => {
                s.errors += 1;
                write_line(
                    &mut out,
                    &json!({ "ts_ms": rec.ts_ms, "record": rec.number, "error": e.to_string() }),
                )?;
                continue;
            }
        };
        for r in reports {
            let v = match r {
                Ok(r) => {
                    s.decoded += 1;
                    let mut obj = Map::new();
                    obj.insert("ts_ms".into(), json!(rec.ts_ms));
                    obj.insert("record".into(), json!(rec.number));
                    obj.extend(report(&r));
                    obj.insert("ad".into(), Value::String(hex::encode(r.data)));
                    Value::Object(obj)
                }
                Err(e) => {
                    s.errors += 1;
                    json!({ "ts_ms": rec.ts_ms, "record": rec.number, "error": e.to_string() })
                }
            };
            write_line(&mut out, &v)?;
        }
    }
    out.flush()?;
    Ok(s)
}

/// Decodes every 802.11 probe request of a pcap/pcapng capture: one JSON object per request.
/// Other frames and malformed packets are counted (see the stderr summary), never dropped silently.
pub fn pcap_file(path: &Path, mut out: impl Write) -> anyhow::Result<Summary> {
    let mut reader = ProbeReader::open(path)?;
    let mut s = Summary::default();
    for p in reader.by_ref() {
        match p {
            Ok(p) => {
                s.decoded += 1;
                write_line(
                    &mut out,
                    &json!({
                        "ts_ms": p.ts_ms,
                        "sa": MacAddr(&p.sa).to_string(),
                        "rssi": p.rssi,
                        "freq_mhz": p.freq_mhz,
                        "ssid": p.ssid,
                        "seq": p.seq,
                        "randomized": p.randomized,
                        "ie_ids": p.ie_ids,
                    }),
                )?;
            }
            Err(e) => {
                s.errors += 1;
                write_line(&mut out, &json!({ "error": e.to_string() }))?;
            }
        }
    }
    let stats = reader.stats();
    s.lines = stats.frames;
    s.errors += stats.malformed + stats.unsupported_linktype;
    out.flush()?;
    Ok(s)
}

fn write_line(out: &mut impl Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_line_prints_fields_and_frames() {
        let v = line("0201061aff4c0002154142434445464748494041424344454600010002f8");
        assert_eq!(v["flags"], 6);
        assert_eq!(v["frames"][0]["type"], "ibeacon");
        assert_eq!(
            v["frames"][0]["uuid"],
            "41424344-4546-4748-4940-414243444546"
        );
        assert_eq!(
            v["manufacturer_data"]["004c"],
            "02154142434445464748494041424344454600010002f8"
        );
    }

    #[test]
    fn hci_line_adds_address_and_rssi() {
        let v = line(
            "043e290201000043565b570b001d02010605021a18001809ff7204fe10bc0c375909094d6f6e2035363433aa",
        );
        assert_eq!(v["addr"], "00:0b:57:5b:56:43");
        assert_eq!(v["rssi"], -86);
        assert_eq!(v["local_name"], "Mon 5643");
        assert!(v.get("warnings").is_none());
    }

    #[test]
    fn bad_line_is_an_error_object() {
        assert!(line("zz").get("error").is_some());
        assert!(line("043e0502").get("error").is_some());
    }

    #[test]
    fn several_reports_print_as_a_list() {
        let v = line(
            "043e19020200006655443322110302010 6d8 04010100000000c000ba"
                .replace(' ', "")
                .as_str(),
        );
        assert_eq!(v["reports"].as_array().unwrap().len(), 2);
        assert_eq!(v["reports"][1]["addr"], "c0:00:00:00:00:01");
    }

    #[test]
    fn lines_keep_going_after_errors() {
        let input = b"zz\n020106\n".as_slice();
        let mut out = Vec::new();
        let s = lines(input, &mut out).unwrap();
        assert_eq!(
            s,
            Summary {
                lines: 2,
                decoded: 1,
                errors: 1
            }
        );
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }
}
