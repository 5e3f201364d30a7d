//! The shopper coupons topic payload: a coupon issued to one opted-in shopper, pushed to the app
//! while the shopper is still in the aisle.
//!
//! `ts_ms` is the time of the trigger (the dwell milestone or zone entry that fired the campaign),
//! kept apart from `issued_ms` so trigger-to-phone latency can be measured; `code` is what the POS
//! redeems, and its authenticity is checked by the cloud, not by this type.

use super::Version;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// `dwell/v1/shoppers/{shopper}/coupons`, QoS 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub v: Version,
    /// The redeemable code.
    pub code: String,
    pub campaign: String,
    pub shopper: String,
    pub store: String,
    /// The zone the trigger happened in, for zone campaigns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// What the app shows.
    pub title: String,
    /// The trigger's time, unix ms UTC.
    pub ts_ms: i64,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden::{assert_golden, assert_tolerates_unknown, assert_version_checked};

    const GOLDEN: &str = r#"{"v":1,"code":"DW-7F3K-92QX","campaign":"spring-lipstick","shopper":"s-42","store":"store-001","zone":"cosmetics","title":"20% off lipstick today","ts_ms":1760000000000,"issued_ms":1760000000350,"expires_ms":1760086400000}"#;

    fn coupon() -> Coupon {
        Coupon {
            v: Version,
            code: "DW-7F3K-92QX".into(),
            campaign: "spring-lipstick".into(),
            shopper: "s-42".into(),
            store: "store-001".into(),
            zone: Some("cosmetics".into()),
            title: "20% off lipstick today".into(),
            ts_ms: 1_760_000_000_000,
            issued_ms: 1_760_000_000_350,
            expires_ms: 1_760_086_400_000,
        }
    }

    #[test]
    fn golden() {
        assert_golden(&coupon(), GOLDEN);
        let storewide = Coupon {
            zone: None,
            ..coupon()
        };
        assert_golden(
            &storewide,
            &GOLDEN.replacen(r#""zone":"cosmetics","#, "", 1),
        );
    }

    #[test]
    fn version_checked() {
        assert_version_checked::<Coupon>(GOLDEN);
    }

    #[test]
    fn tolerates_unknown_fields() {
        let extras = GOLDEN.replacen(
            r#""title""#,
            r#""image_url":"https://x.invalid/a.png","title""#,
            1,
        );
        assert_tolerates_unknown(&coupon(), &extras);
    }
}
