//! Region boundaries (GeoJSON) and fast point-in-region lookup.
//!
//! Shipped defaults (embedded, so the binary works offline; origin and licence in
//! `cloud/assets/geo/README.md`): China's provinces and prefecture cities (ECharts 4 maps —
//! Apache dropped them from ECharts 5 for unclear provenance: fine as defaults, and every export
//! says so) and the world's countries (Natural Earth 110m). Users can supply their own: a
//! FeatureCollection of Polygon / MultiPolygon features in WGS84 longitude/latitude.
//!
//! A region's id is the feature's `id` (string or number, as a string), else `properties.id`,
//! else `properties.adcode`, else `properties.name`, else `feature-<index>`; ids must be unique.
//! Its name is `properties.name` (else the id).
//!
//! Lookup: every polygon part's bounding box sits in an R*-tree; a part's rings are cut into
//! horizontal bands, each listing the edges that cross it, so the even-odd ray test of a point
//! looks at a handful of edges instead of thousands. Overlapping regions: the first in file order
//! wins. Points exactly on a border may go either way.

use geo::{BoundingRect, Coord, LineString, MultiPolygon, Polygon};
use geojson::{GeoJson, Geometry, GeometryValue, feature::Id};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

const CHINA_PROVINCES: &str = include_str!("../../assets/geo/china_provinces_echarts4.geojson");
const CHINA_CITIES: &str =
    include_str!("../../assets/geo/china_prefecture_cities_echarts4_simplified.geojson");
const WORLD_COUNTRIES: &str = include_str!("../../assets/geo/world_countries_110m.geojson");

/// The boundary sets shipped with the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinBoundaries {
    /// China's 34 provincial-level divisions (`id` = 6-digit adcode).
    ChinaProvinces,
    /// China's 367 prefecture-level cities (`id` = 6-digit adcode), simplified at 0.002°.
    ChinaCities,
    /// The world's countries, Natural Earth 1:110m (`id` = ISO 3166-1 numeric).
    WorldCountries,
}

impl BuiltinBoundaries {
    pub const ALL: [BuiltinBoundaries; 3] = [
        BuiltinBoundaries::ChinaProvinces,
        BuiltinBoundaries::ChinaCities,
        BuiltinBoundaries::WorldCountries,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinBoundaries::ChinaProvinces => "china-provinces",
            BuiltinBoundaries::ChinaCities => "china-cities",
            BuiltinBoundaries::WorldCountries => "world-countries",
        }
    }

    /// Where the boundaries come from, to be shown wherever they are.
    pub fn attribution(self) -> &'static str {
        match self {
            BuiltinBoundaries::ChinaProvinces => {
                "China provinces: ECharts 4 map, decoded from npm echarts@4.9.0 map JSON (Apache-2.0 package); Apache dropped these maps from ECharts 5 for unclear provenance: fine as defaults, supply your own boundaries for anything official"
            }
            BuiltinBoundaries::ChinaCities => {
                "China prefecture cities: ECharts 4 map (simplified at 0.002°), decoded from npm echarts@4.9.0 map JSON (Apache-2.0 package); Apache dropped these maps from ECharts 5 for unclear provenance: fine as defaults, supply your own boundaries for anything official"
            }
            BuiltinBoundaries::WorldCountries => {
                "World countries: Natural Earth 1:110m admin-0 (public domain) via npm world-atlas@2.0.2 (ISC)"
            }
        }
    }

    fn text(self) -> &'static str {
        match self {
            BuiltinBoundaries::ChinaProvinces => CHINA_PROVINCES,
            BuiltinBoundaries::ChinaCities => CHINA_CITIES,
            BuiltinBoundaries::WorldCountries => WORLD_COUNTRIES,
        }
    }
}

impl fmt::Display for BuiltinBoundaries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BuiltinBoundaries {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BuiltinBoundaries::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown boundaries '{s}': use china-provinces, china-cities or world-countries (or --regions with your own GeoJSON)"
                )
            })
    }
}

/// A boundary file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    #[error("{source_name}: not valid GeoJSON: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error(
        "{source_name}: expected a FeatureCollection of Polygon/MultiPolygon features, found {found}"
    )]
    NotFeatures { source_name: String, found: String },
    #[error("{source_name}: feature {index} (id {id}): {problem}")]
    Feature {
        source_name: String,
        index: usize,
        id: String,
        problem: String,
    },
    #[error(
        "{source_name}: region id '{id}' is used by features {first} and {second}; region ids must be unique (set each feature's \"id\")"
    )]
    DuplicateId {
        source_name: String,
        id: String,
        first: usize,
        second: usize,
    },
    #[error("{source_name}: the FeatureCollection has no features")]
    Empty { source_name: String },
}

/// One region: its id and name from the boundary file, its geometry for export.
#[derive(Debug, Clone)]
pub struct Region {
    /// The id as a string (what the analysis and CSV use).
    pub id: String,
    /// The id as the file had it (string or number), for the GeoJSON export.
    pub json_id: Id,
    pub name: String,
    /// The feature's geometry, unchanged, for the GeoJSON export.
    pub geometry: Geometry,
    /// The same geometry as `geo` types.
    pub shape: MultiPolygon<f64>,
}

/// A set of regions with a point-in-region index.
#[derive(Debug)]
pub struct Boundaries {
    name: String,
    attribution: Option<String>,
    regions: Vec<Region>,
    parts: Vec<PartIndex>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    /// Region of each shipped world city, computed on first use (candidate filtering).
    city_regions: OnceLock<Vec<Option<u32>>>,
}

impl Boundaries {
    /// Parses one of the shipped boundary sets.
    pub fn builtin(which: BuiltinBoundaries) -> Result<Boundaries, BoundaryError> {
        let mut b = Boundaries::from_geojson_str(which.text(), which.name())?;
        b.attribution = Some(which.attribution().to_owned());
        Ok(b)
    }

    /// Parses a user's GeoJSON FeatureCollection (or single Feature). `source_name` names the
    /// file in errors and in the report.
    pub fn from_geojson_str(text: &str, source_name: &str) -> Result<Boundaries, BoundaryError> {
        let err_source = || source_name.to_owned();
        let geojson: GeoJson = text
            .parse()
            .map_err(|e: geojson::Error| BoundaryError::Parse {
                source_name: err_source(),
                message: e.to_string(),
            })?;
        let features = match geojson {
            GeoJson::FeatureCollection(fc) => fc.features,
            GeoJson::Feature(f) => vec![f],
            GeoJson::Geometry(g) => {
                return Err(BoundaryError::NotFeatures {
                    source_name: err_source(),
                    found: format!(
                        "a bare {} geometry (wrap it in a Feature with an id)",
                        g.value.type_name()
                    ),
                });
            }
        };
        if features.is_empty() {
            return Err(BoundaryError::Empty {
                source_name: err_source(),
            });
        }
        let mut regions = Vec::with_capacity(features.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, feature) in features.into_iter().enumerate() {
            let prop = |key: &str| feature.properties.as_ref().and_then(|p| p.get(key));
            let as_id = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Some(Id::String(s.clone())),
                serde_json::Value::Number(n) => Some(Id::Number(n.clone())),
                _ => None,
            };
            let json_id = feature
                .id
                .clone()
                .filter(|id| !matches!(id, Id::String(s) if s.trim().is_empty()))
                .or_else(|| prop("id").and_then(as_id))
                .or_else(|| prop("adcode").and_then(as_id))
                .or_else(|| prop("name").and_then(as_id))
                .unwrap_or_else(|| Id::String(format!("feature-{index}")));
            let id = match &json_id {
                Id::String(s) => s.clone(),
                Id::Number(n) => n.to_string(),
            };
            let name = match prop("name") {
                Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                _ => id.clone(),
            };
            let feature_err = |problem: String| BoundaryError::Feature {
                source_name: err_source(),
                index,
                id: id.clone(),
                problem,
            };
            let Some(geometry) = feature.geometry else {
                return Err(feature_err(
                    "has no geometry; every region needs a Polygon or MultiPolygon".into(),
                ));
            };
            let shape = to_multipolygon(&geometry.value).map_err(feature_err)?;
            if let Some(first) = seen.insert(id.clone(), index) {
                return Err(BoundaryError::DuplicateId {
                    source_name: err_source(),
                    id,
                    first,
                    second: index,
                });
            }
            regions.push(Region {
                id,
                json_id,
                name,
                geometry,
                shape,
            });
        }
        Ok(Boundaries::index(source_name.to_owned(), regions))
    }

    fn index(name: String, regions: Vec<Region>) -> Boundaries {
        let mut parts = Vec::new();
        let mut entries = Vec::new();
        for (r, region) in regions.iter().enumerate() {
            for polygon in &region.shape.0 {
                let Some(rect) = polygon.bounding_rect() else {
                    continue;
                };
                let part = PartIndex::new(r as u32, polygon);
                entries.push(GeomWithData::new(
                    Rectangle::from_corners(
                        [rect.min().x, rect.min().y],
                        [rect.max().x, rect.max().y],
                    ),
                    parts.len() as u32,
                ));
                parts.push(part);
            }
        }
        Boundaries {
            name,
            attribution: None,
            regions,
            parts,
            tree: RTree::bulk_load(entries),
            city_regions: OnceLock::new(),
        }
    }

    /// The cached region of each shipped world city (see `places::world_cities`).
    pub(crate) fn city_regions(
        &self,
        compute: impl FnOnce() -> Vec<Option<u32>>,
    ) -> &[Option<u32>] {
        self.city_regions.get_or_init(compute)
    }

    /// The boundary set's name (`china-provinces`, or the user's file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the boundaries come from, for the shipped sets.
    pub fn attribution(&self) -> Option<&str> {
        self.attribution.as_deref()
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The index of the (first, in file order) region containing (lat, lon), if any.
    pub fn locate(&self, lat: f64, lon: f64) -> Option<usize> {
        let mut best: Option<u32> = None;
        for entry in self.tree.locate_all_at_point(&[lon, lat]) {
            let part = &self.parts[entry.data as usize];
            if best.is_some_and(|b| b <= part.region) {
                continue;
            }
            if part.contains(lon, lat) {
                best = Some(part.region);
            }
        }
        best.map(|r| r as usize)
    }
}

fn to_multipolygon(value: &GeometryValue) -> Result<MultiPolygon<f64>, String> {
    match value {
        GeometryValue::Polygon { coordinates } => Ok(MultiPolygon(vec![to_polygon(coordinates)?])),
        GeometryValue::MultiPolygon { coordinates } => Ok(MultiPolygon(
            coordinates
                .iter()
                .map(|p| to_polygon(p))
                .collect::<Result<_, _>>()?,
        )),
        GeometryValue::GeometryCollection { geometries } => {
            let mut all = Vec::new();
            for g in geometries {
                all.extend(to_multipolygon(&g.value)?.0);
            }
            Ok(MultiPolygon(all))
        }
        other => Err(format!(
            "geometry is a {}, not a Polygon or MultiPolygon",
            other.type_name()
        )),
    }
}

fn to_polygon(rings: &[Vec<geojson::Position>]) -> Result<Polygon<f64>, String> {
    let mut converted = Vec::with_capacity(rings.len());
    for ring in rings {
        let mut coords = Vec::with_capacity(ring.len());
        for p in ring {
            let s = p.as_slice();
            if s.len() < 2 {
                return Err("a position has fewer than 2 coordinates".into());
            }
            let (x, y) = (s[0], s[1]);
            if !(x.is_finite()
                && y.is_finite()
                && (-180.0..=180.0).contains(&x)
                && (-90.0..=90.0).contains(&y))
            {
                return Err(format!(
                    "coordinate [{x}, {y}] is not WGS84 longitude/latitude; reproject the file to EPSG:4326"
                ));
            }
            coords.push(Coord { x, y });
        }
        converted.push(LineString(coords));
    }
    let mut rings = converted.into_iter();
    let exterior = rings.next().unwrap_or_else(|| LineString(vec![]));
    Ok(Polygon::new(exterior, rings.collect()))
}

/// One polygon (exterior + holes) prepared for the even-odd ray test.
#[derive(Debug)]
struct PartIndex {
    region: u32,
    min_y: f64,
    band_height: f64,
    /// `band_starts[b]..band_starts[b + 1]` indexes `band_edges` for band `b`.
    band_starts: Vec<u32>,
    band_edges: Vec<u32>,
    /// (x0, y0, x1, y1), non-horizontal edges only.
    edges: Vec<[f64; 4]>,
}

/// Aim for about this many edges per band (edges spanning several bands are listed in each).
const EDGES_PER_BAND: usize = 4;
const MAX_BANDS: usize = 1 << 16;

impl PartIndex {
    fn new(region: u32, polygon: &Polygon<f64>) -> PartIndex {
        let mut edges = Vec::new();
        let (mut min_y, mut max_y) = (f64::INFINITY, f64::NEG_INFINITY);
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            let c = &ring.0;
            if c.len() < 2 {
                continue;
            }
            // GeoJSON rings are closed; close an unclosed one rather than leak a gap.
            let n = c.len();
            for i in 0..n {
                let (a, b) = (c[i], c[(i + 1) % n]);
                if a == b || a.y == b.y {
                    continue;
                }
                min_y = min_y.min(a.y.min(b.y));
                max_y = max_y.max(a.y.max(b.y));
                edges.push([a.x, a.y, b.x, b.y]);
            }
        }
        if edges.is_empty() {
            return PartIndex {
                region,
                min_y: 0.0,
                band_height: 1.0,
                band_starts: vec![0, 0],
                band_edges: vec![],
                edges,
            };
        }
        let bands = (edges.len() / EDGES_PER_BAND).clamp(1, MAX_BANDS);
        let band_height = ((max_y - min_y) / bands as f64).max(f64::MIN_POSITIVE);
        let band_of = |y: f64| (((y - min_y) / band_height) as usize).min(bands - 1);
        let mut counts = vec![0u32; bands + 1];
        for e in &edges {
            for b in band_of(e[1].min(e[3]))..=band_of(e[1].max(e[3])) {
                counts[b + 1] += 1;
            }
        }
        for b in 0..bands {
            counts[b + 1] += counts[b];
        }
        let mut fill = counts.clone();
        let mut band_edges = vec![0u32; counts[bands] as usize];
        for (i, e) in edges.iter().enumerate() {
            for b in band_of(e[1].min(e[3]))..=band_of(e[1].max(e[3])) {
                band_edges[fill[b] as usize] = i as u32;
                fill[b] += 1;
            }
        }
        PartIndex {
            region,
            min_y,
            band_height,
            band_starts: counts,
            band_edges,
            edges,
        }
    }

    /// Even-odd rule: a horizontal ray from (x, y) towards +x crosses the rings an odd number
    /// of times iff the point is inside (holes included).
    fn contains(&self, x: f64, y: f64) -> bool {
        let bands = self.band_starts.len() - 1;
        if self.band_edges.is_empty() || y < self.min_y {
            return false;
        }
        let b = ((y - self.min_y) / self.band_height) as usize;
        if b >= bands && y > self.min_y + self.band_height * bands as f64 {
            return false;
        }
        let b = b.min(bands - 1);
        let mut inside = false;
        let range = self.band_starts[b] as usize..self.band_starts[b + 1] as usize;
        for &i in &self.band_edges[range] {
            let [x0, y0, x1, y1] = self.edges[i as usize];
            if (y0 > y) != (y1 > y) && x < x0 + (y - y0) / (y1 - y0) * (x1 - x0) {
                inside = !inside;
            }
        }
        inside
    }
}

/// The share of `points` (lat, lon) that fall in some region (0 for no points).
pub fn share_inside(boundaries: &Boundaries, points: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut n, mut inside) = (0u64, 0u64);
    for (lat, lon) in points {
        n += 1;
        if boundaries.locate(lat, lon).is_some() {
            inside += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        inside as f64 / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Contains;
    use proptest::prelude::*;

    const SQUARES: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","id":7,"properties":{"name":"Seven"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}},
      {"type":"Feature","properties":{"adcode":"110000","name":"Beijing-ish"},
       "geometry":{"type":"MultiPolygon","coordinates":[[[[20,0],[30,0],[30,10],[20,10],[20,0]]],[[[40,0],[50,0],[45,10],[40,0]]]]}},
      {"type":"Feature","properties":{"name":"Overlap"},
       "geometry":{"type":"Polygon","coordinates":[[[5,5],[25,5],[25,8],[5,8],[5,5]]]}}
    ]}"#;

    #[test]
    fn ids_names_and_lookup_on_constructed_polygons() {
        let b = Boundaries::from_geojson_str(SQUARES, "squares.geojson").unwrap();
        let ids: Vec<&str> = b.regions().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["7", "110000", "Overlap"]);
        assert!(matches!(b.regions()[0].json_id, Id::Number(_)));
        assert_eq!(b.regions()[0].name, "Seven");
        assert_eq!(b.regions()[2].name, "Overlap");
        // (lat, lon) order
        assert_eq!(b.locate(1.0, 1.0), Some(0));
        assert_eq!(
            b.locate(5.0, 4.5),
            None,
            "inside the hole of region 0, outside the others"
        );
        assert_eq!(
            b.locate(5.5, 5.5),
            Some(2),
            "in the hole but inside the overlapping region"
        );
        assert_eq!(
            b.locate(6.0, 9.0),
            Some(0),
            "in both 0 and 2: the first in file order wins"
        );
        assert_eq!(b.locate(2.0, 25.0), Some(1));
        assert_eq!(
            b.locate(2.0, 45.0),
            Some(1),
            "the second part of the MultiPolygon"
        );
        assert_eq!(b.locate(9.0, 41.0), None, "beside the triangle");
        assert_eq!(b.locate(-1.0, 5.0), None);
    }

    #[test]
    fn bad_boundary_files_say_what_to_fix() {
        let e = Boundaries::from_geojson_str("{", "x.geojson").unwrap_err();
        assert!(
            e.to_string().starts_with("x.geojson: not valid GeoJSON"),
            "{e}"
        );
        let line = r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"a","properties":{},"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}]}"#;
        let e = Boundaries::from_geojson_str(line, "x").unwrap_err();
        assert!(
            e.to_string()
                .contains("feature 0 (id a): geometry is a LineString"),
            "{e}"
        );
        let projected = r#"{"type":"Feature","id":"a","properties":{},"geometry":{"type":"Polygon","coordinates":[[[500000,4000000],[500100,4000000],[500000,4000100],[500000,4000000]]]}}"#;
        let e = Boundaries::from_geojson_str(projected, "x").unwrap_err();
        assert!(e.to_string().contains("EPSG:4326"), "{e}");
        let dup = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","id":"a","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,1],[0,0]]]}},
          {"type":"Feature","id":"a","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,1],[0,0]]]}}]}"#;
        let e = Boundaries::from_geojson_str(dup, "x").unwrap_err();
        assert!(
            e.to_string().contains("'a' is used by features 0 and 1"),
            "{e}"
        );
        let e = Boundaries::from_geojson_str(r#"{"type":"FeatureCollection","features":[]}"#, "x")
            .unwrap_err();
        assert!(e.to_string().contains("no features"), "{e}");
    }

    #[test]
    fn shipped_boundaries_parse_with_their_ids() {
        let provinces = Boundaries::builtin(BuiltinBoundaries::ChinaProvinces).unwrap();
        assert_eq!(provinces.regions().len(), 34);
        assert!(provinces.attribution().unwrap().contains("ECharts 5"));
        let sichuan = provinces
            .regions()
            .iter()
            .position(|r| r.id == "510000")
            .unwrap();
        assert_eq!(provinces.regions()[sichuan].name, "四川");
        assert_eq!(
            provinces.locate(30.66, 104.07),
            Some(sichuan),
            "Chengdu is in Sichuan"
        );
        assert_eq!(
            Boundaries::builtin(BuiltinBoundaries::ChinaCities)
                .unwrap()
                .regions()
                .len(),
            367
        );
        let world = Boundaries::builtin(BuiltinBoundaries::WorldCountries).unwrap();
        assert_eq!(world.regions().len(), 177);
        // three Natural Earth features have no id: they are named by their name
        assert!(world.regions().iter().any(|r| r.id == "Kosovo"));
        let france = world
            .locate(48.85, 2.35)
            .map(|i| world.regions()[i].id.clone());
        assert_eq!(
            france.as_deref(),
            Some("250"),
            "Paris is in France (ISO 250)"
        );
        assert_eq!(world.locate(0.0, -30.0), None, "the middle of the Atlantic");
    }

    #[test]
    fn banded_lookup_agrees_with_geo_contains_on_real_provinces() {
        // Every 0.37° over China's bounding box: the fast index must say what geo's exact
        // Contains says, except on a border itself (none of these points are).
        let b = Boundaries::builtin(BuiltinBoundaries::ChinaProvinces).unwrap();
        let (mut checked, mut inside) = (0, 0);
        let mut lat = 18.0;
        while lat < 54.0 {
            let mut lon = 73.0;
            while lon < 135.0 {
                let p = geo::Point::new(lon, lat);
                let want = b.regions().iter().position(|r| r.shape.contains(&p));
                assert_eq!(b.locate(lat, lon), want, "at ({lat}, {lon})");
                checked += 1;
                inside += usize::from(want.is_some());
                lon += 0.37;
            }
            lat += 0.37;
        }
        assert!(checked > 15_000 && inside > 5_000, "{checked} {inside}");
    }

    proptest! {
        #[test]
        fn banded_lookup_agrees_with_geo_contains_on_random_polygons(
            ring in proptest::collection::vec((-50.0f64..50.0, -50.0f64..50.0), 3..40),
            points in proptest::collection::vec((-60.0f64..60.0, -60.0f64..60.0), 50),
        ) {
            // A star-shaped polygon around the origin from random radii (simple, so geo and the
            // even-odd rule define the same interior).
            let n = ring.len();
            let mut coords: Vec<[f64; 2]> = ring.iter().enumerate().map(|(i, &(r, _))| {
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                let r = 5.0 + r.abs();
                [r * a.cos(), r * a.sin()]
            }).collect();
            coords.push(coords[0]);
            let text = serde_json::json!({"type":"Feature","id":"p","properties":{},
                "geometry":{"type":"Polygon","coordinates":[coords]}}).to_string();
            let b = Boundaries::from_geojson_str(&text, "p").unwrap();
            for (x, y) in points {
                let want = b.regions()[0].shape.contains(&geo::Point::new(x, y));
                prop_assert_eq!(b.locate(y, x).is_some(), want, "at ({}, {})", x, y);
            }
        }
    }
}
