//! App-reported sightings: the store beacons a shopper's app heard when the phone woke it in the
//! background (`POST /api/v1/shoppers/{id}/sightings`, with the shopper's own token).
//!
//! iOS can't advertise in the background, but it wakes the app when it enters the store's iBeacon
//! region; the app then reports what it heard. Each report is checked before it counts:
//! - **unknown beacon** — not the retailer's UUID, or a major no store has (`stores.beacon_major`),
//!   or a minor that is no zone of that store's floor plan (minor = 1-based zone number; 0 = the
//!   store without a zone);
//! - **stale** — older than [`MAX_AGE_MS`] or more than [`MAX_FUTURE_MS`] ahead of the server
//!   clock (a replay, or a phone clock far off);
//! - **impossible travel** — faster than [`MAX_SPEED_KMH`] from the shopper's previous accepted
//!   sighting in another store (a shared or stolen token, a spoofed beacon);
//! - **implausible RSSI** — outside −127..=0 dBm.
//!
//! Rejections are counted by reason ([`SightingStats`]) and returned to the app; accepted ones are
//! stored and go to the engine like a gateway's events ([`crate::engine::Engine::app_sighting`]).

use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::store::AnyStore;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

pub const MAX_AGE_MS: i64 = 10 * 60_000;
pub const MAX_FUTURE_MS: i64 = 60_000;
pub const MAX_SPEED_KMH: f64 = 200.0;
/// Reports per request.
pub const MAX_BATCH: usize = 100;

/// One beacon the app heard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSighting {
    /// The iBeacon proximity UUID, hyphenated.
    pub uuid: String,
    pub major: u16,
    pub minor: u16,
    pub rssi: i16,
    /// When it was heard, unix ms.
    pub ts_ms: i64,
}

/// What became of one report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SightingResult {
    /// `accepted`, `unknown_beacon`, `stale`, `impossible_travel`, `implausible_rssi`.
    pub outcome: &'static str,
    pub store: Option<String>,
    pub zone: Option<String>,
}

/// Counters by outcome.
#[derive(Debug, Default)]
pub struct SightingStats {
    pub accepted: AtomicU64,
    pub unknown_beacon: AtomicU64,
    pub stale: AtomicU64,
    pub impossible_travel: AtomicU64,
    pub implausible_rssi: AtomicU64,
}

impl SightingStats {
    fn count(&self, outcome: &str) {
        let c = match outcome {
            "accepted" => &self.accepted,
            "unknown_beacon" => &self.unknown_beacon,
            "stale" => &self.stale,
            "impossible_travel" => &self.impossible_travel,
            _ => &self.implausible_rssi,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().asin()
}

/// A store as a beacon names it.
struct BeaconStore {
    id: String,
    lat: Option<f64>,
    lon: Option<f64>,
    zones: Vec<String>,
}

type StoreRow = (String, Option<f64>, Option<f64>, Option<String>);

async fn store_by_major(store: &AnyStore, major: u16) -> DomainResult<Option<BeaconStore>> {
    let row: Option<StoreRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, lat, lon, layout FROM stores WHERE beacon_major = $1",
    )
    .bind(i32::from(major))
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(|(id, lat, lon, layout)| {
        let zones = layout
            .and_then(|l| serde_json::from_str::<dwell_shared::wire::StoreConfig>(&l).ok())
            .map(|c| c.zones.into_iter().map(|z| z.id).collect())
            .unwrap_or_default();
        BeaconStore {
            id,
            lat,
            lon,
            zones,
        }
    }))
}

/// Checks one report against the rules; on acceptance stores it and returns its id, store and
/// zone.
pub async fn check_and_store(
    store: &AnyStore,
    retailer_uuid: &str,
    shopper: &str,
    s: &AppSighting,
    now_ms: i64,
    stats: &SightingStats,
) -> DomainResult<(SightingResult, Option<String>)> {
    let reject = |outcome: &'static str| {
        stats.count(outcome);
        Ok((
            SightingResult {
                outcome,
                store: None,
                zone: None,
            },
            None,
        ))
    };
    if !(-127..=0).contains(&s.rssi) {
        return reject("implausible_rssi");
    }
    if s.ts_ms < now_ms - MAX_AGE_MS || s.ts_ms > now_ms + MAX_FUTURE_MS {
        return reject("stale");
    }
    if !s.uuid.trim().eq_ignore_ascii_case(retailer_uuid) {
        return reject("unknown_beacon");
    }
    let Some(bs) = store_by_major(store, s.major).await? else {
        return reject("unknown_beacon");
    };
    let zone = match s.minor {
        0 => None,
        m => match bs.zones.get(usize::from(m) - 1) {
            Some(z) => Some(z.clone()),
            None => return reject("unknown_beacon"),
        },
    };
    // The previous accepted sighting in another store.
    let prev: Option<(i64, Option<f64>, Option<f64>)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT a.ts_ms, s.lat, s.lon FROM app_sightings a JOIN stores s ON s.id = a.store \
         WHERE a.shopper = $1 AND a.store <> $2 ORDER BY abs(a.ts_ms - $3) LIMIT 1",
    )
    .bind(shopper)
    .bind(&bs.id)
    .bind(s.ts_ms)
    .fetch_optional(pool)
    .await)?;
    if let (Some((t, Some(plat), Some(plon))), Some(lat), Some(lon)) = (prev, bs.lat, bs.lon) {
        let km = distance_km((plat, plon), (lat, lon));
        let hours = ((s.ts_ms - t).abs() as f64 / 3_600_000.0).max(1.0 / 3600.0);
        if km / hours > MAX_SPEED_KMH {
            return reject("impossible_travel");
        }
    }
    let id = crate::profiles::shoppers::new_id("app-");
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO app_sightings (id, shopper, store, zone, ts_ms, rssi, received_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(shopper)
    .bind(&bs.id)
    .bind(&zone)
    .bind(s.ts_ms)
    .bind(i32::from(s.rssi))
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|_| ()))
    .map_err(DomainError::from)?;
    stats.count("accepted");
    Ok((
        SightingResult {
            outcome: "accepted",
            store: Some(bs.id),
            zone,
        },
        Some(id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_to_beijing_is_about_1070_km() {
        let d = distance_km((31.22222, 121.45806), (39.9075, 116.39723));
        assert!((d - 1068.0).abs() < 15.0, "{d}");
        assert!(distance_km((1.0, 2.0), (1.0, 2.0)) < 1e-9);
    }
}
