//! Points on the Earth's sphere, indexed for "nearest" and "within r km" searches.
//!
//! Each (lat, lon) becomes a unit vector in 3-D, kept in an R*-tree (`rstar`, the version `geo`
//! uses). The straight-line (chord) distance between unit vectors grows monotonically with the
//! great-circle distance, so the nearest point by chord is the nearest point on the sphere —
//! exactly, with no special case at the antimeridian or the poles. Reported distances are
//! great-circle distances from `geo`'s haversine (mean Earth radius 6,371.0088 km).

use geo::{Distance, Haversine, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;

/// Earth's mean radius in km, as `geo::Haversine` uses it.
pub fn earth_radius_km() -> f64 {
    Haversine.radius() / 1000.0
}

/// Great-circle distance in km between two (lat, lon) points, through `geo`'s haversine.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    Haversine.distance(Point::new(a.1, a.0), Point::new(b.1, b.0)) / 1000.0
}

fn unit_vector(lat: f64, lon: f64) -> [f64; 3] {
    let (lat, lon) = (lat.to_radians(), lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Squared chord length on the unit sphere for a great-circle distance, slightly widened so the
/// exact haversine filter that follows decides the boundary cases.
fn chord2_for_km(km: f64) -> f64 {
    let angle = (km / earth_radius_km()).min(std::f64::consts::PI);
    let chord = 2.0 * (angle / 2.0).sin();
    (chord * (1.0 + 1e-9) + 1e-12).powi(2)
}

type Entry = GeomWithData<[f64; 3], u32>;

/// An immutable index of (lat, lon) points; results are indices into the slice it was built from.
#[derive(Debug)]
pub struct SphereIndex {
    tree: RTree<Entry>,
    points: Vec<(f64, f64)>,
}

impl SphereIndex {
    /// Bulk-loads the points (O(n log n)).
    pub fn new(points: Vec<(f64, f64)>) -> Self {
        let entries = points
            .iter()
            .enumerate()
            .map(|(i, &(lat, lon))| Entry::new(unit_vector(lat, lon), i as u32))
            .collect();
        SphereIndex {
            tree: RTree::bulk_load(entries),
            points,
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn point(&self, i: usize) -> (f64, f64) {
        self.points[i]
    }

    /// The nearest point and its great-circle distance in km; `None` when the index is empty.
    pub fn nearest(&self, lat: f64, lon: f64) -> Option<(usize, f64)> {
        let found = self.tree.nearest_neighbor(&unit_vector(lat, lon))?;
        let i = found.data as usize;
        Some((i, distance_km((lat, lon), self.points[i])))
    }

    /// Indices of the points within `km` (great-circle) of (lat, lon), decided on the chord
    /// (exactly equivalent, up to rounding at the boundary itself), without computing each
    /// distance: the fast path for counting catchments.
    pub fn within_ids(&self, lat: f64, lon: f64, km: f64) -> impl Iterator<Item = usize> + '_ {
        let angle = (km / earth_radius_km()).min(std::f64::consts::PI);
        let chord = 2.0 * (angle / 2.0).sin();
        self.tree
            .locate_within_distance(unit_vector(lat, lon), chord * chord)
            .map(|e| e.data as usize)
    }

    /// Every point within `km` (great-circle, inclusive) of (lat, lon), with its distance.
    pub fn within(&self, lat: f64, lon: f64, km: f64) -> impl Iterator<Item = (usize, f64)> + '_ {
        let at = (lat, lon);
        self.tree
            .locate_within_distance(unit_vector(lat, lon), chord2_for_km(km))
            .filter_map(move |e| {
                let i = e.data as usize;
                let d = distance_km(at, self.points[i]);
                (d <= km).then_some((i, d))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude on a 6,371.0088 km sphere: 2πR/360.
        let one_degree = 2.0 * std::f64::consts::PI * earth_radius_km() / 360.0;
        assert!((distance_km((10.0, 20.0), (11.0, 20.0)) - one_degree).abs() < 1e-9);
        // A quarter of the equator.
        let quarter = std::f64::consts::PI * earth_radius_km() / 2.0;
        assert!((distance_km((0.0, 0.0), (0.0, 90.0)) - quarter).abs() < 1e-6);
        // Across the antimeridian: 179.5°E to 179.5°W on the equator is one degree.
        assert!((distance_km((0.0, 179.5), (0.0, -179.5)) - one_degree).abs() < 1e-6);
    }

    #[test]
    fn nearest_agrees_with_brute_force_including_the_antimeridian() {
        let stores = vec![
            (0.0, 179.9),
            (0.0, -170.0),
            (45.0, 10.0),
            (-33.9, 151.2),
            (89.9, 0.0),
        ];
        let index = SphereIndex::new(stores.clone());
        let queries = [
            (0.0, -179.9),
            (44.0, 11.0),
            (-34.0, 150.0),
            (89.0, 180.0),
            (10.0, -100.0),
        ];
        for q in queries {
            let (i, d) = index.nearest(q.0, q.1).unwrap();
            let (bi, bd) = stores
                .iter()
                .enumerate()
                .map(|(i, &s)| (i, distance_km(q, s)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            assert_eq!(i, bi, "query {q:?}");
            assert!((d - bd).abs() < 1e-9);
        }
        // (0, -179.9) is 0.2° from (0, 179.9) across the antimeridian, not 359.8°.
        let (i, d) = index.nearest(0.0, -179.9).unwrap();
        assert_eq!(i, 0);
        assert!((d - 0.2 * 2.0 * std::f64::consts::PI * earth_radius_km() / 360.0).abs() < 1e-6);
        assert!(SphereIndex::new(vec![]).nearest(0.0, 0.0).is_none());
    }

    #[test]
    fn within_is_inclusive_and_exact() {
        // Points every 0.1° of latitude north of the equator: 0.1° ≈ 11.12 km.
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i) * 0.1, 0.0)).collect();
        let index = SphereIndex::new(pts.clone());
        let km = 30.0;
        let mut got: Vec<usize> = index.within(0.0, 0.0, km).map(|(i, _)| i).collect();
        got.sort_unstable();
        let want: Vec<usize> = (0..100)
            .filter(|&i| distance_km((0.0, 0.0), pts[i]) <= km)
            .collect();
        assert_eq!(got, want);
        assert_eq!(want, vec![0, 1, 2], "0.3° is 33.4 km, beyond 30 km");
        // exactly at the radius: included
        let d = distance_km((0.0, 0.0), pts[2]);
        assert_eq!(index.within(0.0, 0.0, d).count(), 3);
        // the chord-only variant finds the same points
        let mut fast: Vec<usize> = index.within_ids(0.0, 0.0, km).collect();
        fast.sort_unstable();
        assert_eq!(fast, want);
        for km in [0.5, 5.0, 11.0, 11.5, 100.0, 250.0] {
            let mut fast: Vec<usize> = index.within_ids(0.05, 0.0, km).collect();
            let mut exact: Vec<usize> = index.within(0.05, 0.0, km).map(|(i, _)| i).collect();
            fast.sort_unstable();
            exact.sort_unstable();
            assert_eq!(fast, exact, "{km} km");
        }
    }
}
