//! `/metrics`: the gateway's counters in the Prometheus text format.
//!
//! Every stage already keeps its own counters (tracker, pipeline, outbox, uplink, control,
//! sources); this module renders snapshots of them on each scrape. Labels are fixed strings
//! (source kinds, event types, states): never device ids, shopper ids or addresses.

use std::fmt::Write;

/// One sample: (name suffix, label pairs, value); the suffix is "" except for the parts of a
/// histogram (`_bucket`, `_sum`, `_count`).
pub type Sample<'a> = (&'static str, Vec<(&'a str, String)>, f64);

/// One metric family being rendered.
#[derive(Debug)]
pub struct Family<'a> {
    pub name: &'a str,
    pub help: &'a str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'a str,
    pub samples: Vec<Sample<'a>>,
}

impl<'a> Family<'a> {
    pub fn single(name: &'a str, help: &'a str, kind: &'a str, value: f64) -> Self {
        Family {
            name,
            help,
            kind,
            samples: vec![("", Vec::new(), value)],
        }
    }
}

/// Renders families in the text exposition format (version 0.0.4). Shared with the cloud's
/// `/metrics`.
pub fn render(families: &[Family<'_>]) -> String {
    let mut out = String::new();
    for f in families {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (suffix, labels, value) in &f.samples {
            out.push_str(f.name);
            out.push_str(suffix);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    let _ = write!(out, "{k}=\"{v}\"");
                }
                out.push('}');
            }
            if value.is_infinite() {
                out.push_str(if *value > 0.0 { " +Inf\n" } else { " -Inf\n" });
            } else {
                let _ = writeln!(out, " {value}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_labels_and_escapes() {
        let text = render(&[
            Family::single("dwell_up", "Up.", "gauge", 1.0),
            Family {
                name: "dwell_events_total",
                help: "Events.",
                kind: "counter",
                samples: vec![("", vec![("type", "a\"b".into())], 3.0)],
            },
        ]);
        assert_eq!(
            text,
            "# HELP dwell_up Up.\n# TYPE dwell_up gauge\ndwell_up 1\n\
             # HELP dwell_events_total Events.\n# TYPE dwell_events_total counter\n\
             dwell_events_total{type=\"a\\\"b\"} 3\n"
        );
    }

    #[test]
    fn histogram_parts_carry_their_suffix_and_infinity_is_spelled_out() {
        let text = render(&[Family {
            name: "dwell_seconds",
            help: "Durations.",
            kind: "histogram",
            samples: vec![
                ("_bucket", vec![("le", "0.1".into())], 2.0),
                ("_bucket", vec![("le", "+Inf".into())], 3.0),
                ("_sum", Vec::new(), 0.25),
                ("_count", Vec::new(), 3.0),
                ("", Vec::new(), f64::NEG_INFINITY),
                ("", Vec::new(), f64::INFINITY),
            ],
        }]);
        assert_eq!(
            text,
            "# HELP dwell_seconds Durations.\n# TYPE dwell_seconds histogram\n\
             dwell_seconds_bucket{le=\"0.1\"} 2\ndwell_seconds_bucket{le=\"+Inf\"} 3\n\
             dwell_seconds_sum 0.25\ndwell_seconds_count 3\ndwell_seconds -Inf\ndwell_seconds +Inf\n"
        );
    }
}
