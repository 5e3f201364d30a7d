//! The v1 MQTT payloads (JSON), one message per file, each with a golden test.
//!
//! These structs are the contract between gateways, the cloud and shoppers' apps, and the field
//! names are relied on by tools outside this repository, so they change only by adding fields.
//! Two rules hold for every message:
//! - every payload carries `"v": 1`, written and checked by the one [`Version`] field type, so a
//!   payload of another (or no) version is refused with an error that says so, instead of being
//!   half-read;
//! - unknown fields are ignored on read, so a newer sender can add fields without breaking an
//!   older reader. Optional fields are omitted when absent.
//!
//! | message | topic ([`crate::topic`]) |
//! |---|---|
//! | [`EventBatch`] of [`Event`]s | `dwell/v1/{store}/{gateway}/events` |
//! | [`GatewayStatus`] | `dwell/v1/{store}/{gateway}/status` |
//! | [`StoreConfig`] | `dwell/v1/{store}/config` |
//! | [`Coupon`] | `dwell/v1/shoppers/{shopper}/coupons` |

use core::fmt;

mod batch;
mod coupon;
mod event;
mod status;
mod store_config;

pub use batch::EventBatch;
pub use coupon::Coupon;
pub use event::{DeviceRef, DeviceTier, Event, EventKind, PathStay};
pub use status::{GatewayState, GatewayStatus};
pub use store_config::{Receiver, StoreConfig, StoreConfigError, Zone};

/// The payload version this build writes and reads.
pub const WIRE_VERSION: u64 = 1;

/// The `"v"` field of every payload: always serializes as [`WIRE_VERSION`], and deserializing
/// anything else — another number, a non-number, `null`, or no `v` at all — fails with an error
/// naming the version. Zero-sized: a message holds it only to carry the check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Version;

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(WIRE_VERSION)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through `deserialize_option` on purpose: serde's derive hands a missing field to
        // `deserialize_option` (as `visit_none`), so "no `v`" reaches this visitor and gets the
        // same clear message as a wrong one, rather than a bare "missing field `v`".
        d.deserialize_option(VersionVisitor)
    }
}

struct VersionVisitor;

impl VersionVisitor {
    fn check<E: serde::de::Error>(found: impl fmt::Display, ok: bool) -> Result<Version, E> {
        if ok {
            Ok(Version)
        } else {
            Err(E::custom(format_args!(
                "unsupported payload version `v`: {found} (this build reads v{WIRE_VERSION})"
            )))
        }
    }
}

impl<'de> serde::de::Visitor<'de> for VersionVisitor {
    type Value = Version;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload version `v`: {WIRE_VERSION}")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Version, E> {
        Err(E::custom(format_args!(
            "missing payload version `v` (this build reads v{WIRE_VERSION})"
        )))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Version, E> {
        self.visit_none()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Version, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Version, E> {
        Self::check(v, v == WIRE_VERSION)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Version, E> {
        Self::check(v, v == WIRE_VERSION as i64)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Version, E> {
        Self::check(v, false)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Version, E> {
        Self::check(format_args!("{v:?}"), false)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Version, E> {
        Self::check(v, false)
    }
}

/// Shared test helpers: every message's golden and version tests go through these.
#[cfg(test)]
pub(crate) mod golden {
    use alloc::string::ToString;
    use serde::{Serialize, de::DeserializeOwned};

    /// Serializing `value` gives exactly `json`, and reading `json` gives `value` back.
    pub fn assert_golden<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(
        value: &T,
        json: &str,
    ) {
        assert_eq!(serde_json::to_string(value).unwrap(), json);
        assert_eq!(&serde_json::from_str::<T>(json).unwrap(), value);
    }

    /// `json` (a payload with `"v":1`) is refused with a version error once `v` is changed or
    /// removed.
    pub fn assert_version_checked<T: DeserializeOwned + core::fmt::Debug>(json: &str) {
        assert!(
            json.contains(r#""v":1,"#),
            "golden payload must start with v:1"
        );
        for (label, bad) in [
            ("v2", json.replacen(r#""v":1,"#, r#""v":2,"#, 1)),
            ("v0", json.replacen(r#""v":1,"#, r#""v":0,"#, 1)),
            ("string", json.replacen(r#""v":1,"#, r#""v":"1","#, 1)),
            ("null", json.replacen(r#""v":1,"#, r#""v":null,"#, 1)),
            ("missing", json.replacen(r#""v":1,"#, "", 1)),
        ] {
            let err = serde_json::from_str::<T>(&bad).unwrap_err().to_string();
            assert!(err.contains("payload version `v`"), "{label}: {err}");
        }
    }

    /// Extra fields, at the top level and (with `nested`) inside, are ignored.
    pub fn assert_tolerates_unknown<T: DeserializeOwned + PartialEq + core::fmt::Debug>(
        value: &T,
        json_with_extras: &str,
    ) {
        assert_eq!(&serde_json::from_str::<T>(json_with_extras).unwrap(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Probe {
        v: Version,
        x: u8,
    }

    #[test]
    fn version_round_trips() {
        golden::assert_golden(&Probe { v: Version, x: 3 }, r#"{"v":1,"x":3}"#);
        golden::assert_version_checked::<Probe>(r#"{"v":1,"x":3}"#);
    }

    #[test]
    fn version_errors_read_well() {
        let err = serde_json::from_str::<Probe>(r#"{"v":2,"x":3}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported payload version `v`: 2 (this build reads v1) at line 1 column 6"
        );
        let err = serde_json::from_str::<Probe>(r#"{"x":3}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("missing payload version `v` (this build reads v1)"),
            "{err}"
        );
    }
}
