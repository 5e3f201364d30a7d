//! The events topic payload: a batch of [`Event`]s from one gateway, as the outbox sends them.
//!
//! Batching amortises MQTT and TLS overhead while catching up after an outage; each event keeps its
//! own `seq`, so ingest stays idempotent per event however batches are split or redelivered.

use super::{Event, Version};
use crate::topic::Topic;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// `dwell/v1/{store}/{gateway}/events`, QoS 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    pub v: Version,
    pub store: String,
    pub gateway: String,
    /// When the gateway sent the batch, unix ms UTC (events carry their own `ts_ms`).
    pub sent_ms: i64,
    pub events: Vec<Event>,
}

impl EventBatch {
    pub fn new(
        store: impl Into<String>,
        gateway: impl Into<String>,
        sent_ms: i64,
        events: Vec<Event>,
    ) -> Self {
        EventBatch {
            v: Version,
            store: store.into(),
            gateway: gateway.into(),
            sent_ms,
            events,
        }
    }

    /// Whether the payload's store and gateway are the ones in the topic it arrived on. Ingest
    /// should refuse a batch that fails this: it is either misrouted or a gateway speaking for
    /// another (broker ACLs are per topic, so the topic is the trustworthy half).
    pub fn matches_topic(&self, topic: &Topic<'_>) -> bool {
        matches!(*topic, Topic::Events { store, gateway } if store == self.store && gateway == self.gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EventKind;
    use crate::wire::golden::{assert_golden, assert_tolerates_unknown, assert_version_checked};
    use alloc::vec;

    const GOLDEN: &str = r#"{"v":1,"store":"store-001","gateway":"gw-1","sent_ms":1760000001000,"events":[{"seq":7,"ts_ms":1760000000000,"type":"traffic","count":42,"window_s":60},{"seq":8,"ts_ms":1760000000500,"type":"zone_enter","device":"h:ab12","zone":"cosmetics"}]}"#;

    fn batch() -> EventBatch {
        EventBatch::new(
            "store-001",
            "gw-1",
            1_760_000_001_000,
            vec![
                Event {
                    seq: 7,
                    ts_ms: 1_760_000_000_000,
                    kind: EventKind::Traffic {
                        count: 42,
                        window_s: 60,
                    },
                },
                Event {
                    seq: 8,
                    ts_ms: 1_760_000_000_500,
                    kind: EventKind::ZoneEnter {
                        device: crate::wire::DeviceRef::new("h:ab12"),
                        zone: "cosmetics".into(),
                    },
                },
            ],
        )
    }

    #[test]
    fn golden() {
        assert_golden(&batch(), GOLDEN);
    }

    #[test]
    fn version_checked() {
        assert_version_checked::<EventBatch>(GOLDEN);
    }

    #[test]
    fn tolerates_unknown_fields() {
        let extras = GOLDEN
            .replacen(r#""sent_ms""#, r#""compression":"none","sent_ms""#, 1)
            .replacen(r#""count":42"#, r#""count":42,"unique":40"#, 1);
        assert_tolerates_unknown(&batch(), &extras);
    }

    #[test]
    fn matches_its_topic_only() {
        let b = batch();
        assert!(b.matches_topic(&Topic::events("store-001", "gw-1").unwrap()));
        assert!(!b.matches_topic(&Topic::events("store-001", "gw-2").unwrap()));
        assert!(!b.matches_topic(&Topic::status("store-001", "gw-1").unwrap()));
    }
}
