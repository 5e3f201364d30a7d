//! The status topic payload: is a gateway online, and is it healthy.
//!
//! Published retained, so a dashboard subscribing later still sees every gateway's last state; the
//! `offline` form is also registered as the MQTT last will, so a gateway that dies or loses its
//! network is shown offline by the broker itself. Health fields are optional because the last will
//! is fixed at connect time and can't know them.

use super::Version;
use crate::topic::Topic;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// `dwell/v1/{store}/{gateway}/status`, retained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub v: Version,
    pub store: String,
    pub gateway: String,
    pub state: GatewayState,
    /// When this status was produced, unix ms UTC (for the last will: when it was registered).
    pub ts_ms: i64,
    /// The gateway's software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Events waiting in the outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// Names of the running sources (e.g. `ble`, `wifi`, `nodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
}

impl GatewayStatus {
    /// A status with no health fields: what the last will carries (with [`GatewayState::Offline`]).
    pub fn new(
        store: impl Into<String>,
        gateway: impl Into<String>,
        state: GatewayState,
        ts_ms: i64,
    ) -> Self {
        GatewayStatus {
            v: Version,
            store: store.into(),
            gateway: gateway.into(),
            state,
            ts_ms,
            version: None,
            backlog: None,
            sources: None,
            uptime_s: None,
        }
    }

    /// Whether the payload's store and gateway are the ones in the topic it arrived on.
    pub fn matches_topic(&self, topic: &Topic<'_>) -> bool {
        matches!(*topic, Topic::Status { store, gateway } if store == self.store && gateway == self.gateway)
    }
}

/// Online or offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayState {
    Online,
    Offline,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden::{assert_golden, assert_tolerates_unknown, assert_version_checked};
    use alloc::vec;

    const ONLINE: &str = r#"{"v":1,"store":"store-001","gateway":"gw-1","state":"online","ts_ms":1760000000000,"version":"0.1.0","backlog":12,"sources":["ble","wifi"],"uptime_s":3600}"#;
    const WILL: &str =
        r#"{"v":1,"store":"store-001","gateway":"gw-1","state":"offline","ts_ms":1760000000000}"#;

    fn online() -> GatewayStatus {
        GatewayStatus {
            version: Some("0.1.0".into()),
            backlog: Some(12),
            sources: Some(vec!["ble".into(), "wifi".into()]),
            uptime_s: Some(3600),
            ..GatewayStatus::new("store-001", "gw-1", GatewayState::Online, 1_760_000_000_000)
        }
    }

    #[test]
    fn golden() {
        assert_golden(&online(), ONLINE);
        assert_golden(
            &GatewayStatus::new(
                "store-001",
                "gw-1",
                GatewayState::Offline,
                1_760_000_000_000,
            ),
            WILL,
        );
    }

    #[test]
    fn version_checked() {
        assert_version_checked::<GatewayStatus>(ONLINE);
        assert_version_checked::<GatewayStatus>(WILL);
    }

    #[test]
    fn tolerates_unknown_fields() {
        let extras = ONLINE.replacen(
            r#""backlog":12"#,
            r#""backlog":12,"disk_free_mb":900,"clock":{"ok":true}"#,
            1,
        );
        assert_tolerates_unknown(&online(), &extras);
    }

    #[test]
    fn rejects_unknown_state() {
        let bad = WILL.replacen("offline", "sleeping", 1);
        assert!(serde_json::from_str::<GatewayStatus>(&bad).is_err());
    }
}
