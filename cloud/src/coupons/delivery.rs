//! Delivering coupons to shoppers' apps: `dwell/v1/shoppers/{shopper}/coupons`, QoS 1.

use dwell_shared::topic;
use dwell_shared::wire::Coupon;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Where issued coupons go.
pub trait CouponSink: Send + Sync + std::fmt::Debug {
    fn deliver<'a>(
        &'a self,
        coupon: &'a Coupon,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// Publishes over MQTT with QoS 1 (the client's event loop is driven by its owner).
#[derive(Debug, Clone)]
pub struct MqttSink {
    client: rumqttc::AsyncClient,
}

impl MqttSink {
    pub fn new(client: rumqttc::AsyncClient) -> Self {
        MqttSink { client }
    }
}

impl CouponSink for MqttSink {
    fn deliver<'a>(
        &'a self,
        coupon: &'a Coupon,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let t = topic::Topic::shopper_coupons(&coupon.shopper).map_err(|e| e.to_string())?;
            let payload = serde_json::to_vec(coupon).map_err(|e| e.to_string())?;
            self.client
                .publish(t.to_string(), rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Keeps what it is given (tests, and `demo` without a broker).
#[derive(Debug, Default)]
pub struct MemorySink {
    pub coupons: Mutex<Vec<Coupon>>,
}

impl CouponSink for MemorySink {
    fn deliver<'a>(
        &'a self,
        coupon: &'a Coupon,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            self.coupons
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(coupon.clone());
            Ok(())
        })
    }
}
