//! H3 hexagon density of customers (`h3o`), with small cells left out.
//!
//! Hexagons are the same size everywhere (unlike regions), so a density map doesn't make a large
//! empty province look busy. A hexagon with fewer than k customers is not output at all — not even
//! as "suppressed" — because its mere presence would say that someone lives there; the report
//! counts how many were left out and how many customers they held.

use super::input::Customer;
use h3o::{CellIndex, LatLng, Resolution};
use serde::Serialize;
use std::collections::HashMap;

/// Customers, orders, revenue and unserved customers of one hexagon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hex {
    /// The H3 index, e.g. `85309a0bfffffff`.
    #[serde(serialize_with = "serialize_cell")]
    pub cell: CellIndex,
    pub customers: u64,
    pub orders: u64,
    pub revenue: f64,
    /// Customers farther than the radius from any store.
    pub unserved: u64,
}

fn serialize_cell<S: serde::Serializer>(cell: &CellIndex, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(cell)
}

/// Hexagons at `resolution` with at least `k` customers (sorted by cell), and the number of
/// hexagons and customers left out for having fewer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Density {
    pub resolution: u8,
    pub hexes: Vec<Hex>,
    pub suppressed_hexes: u64,
    pub suppressed_customers: u64,
}

/// The H3 cell of each customer (computed in parallel by the caller).
pub fn cell_of(c: &Customer, resolution: Resolution) -> CellIndex {
    // Cannot fail: input validation keeps lat in -90..=90 and lon in -180..=180, finite.
    LatLng::new(c.lat, c.lon)
        .map(|ll| ll.to_cell(resolution))
        .unwrap_or_else(|_| LatLng::new(0.0, 0.0).expect("origin").to_cell(resolution))
}

/// Sums customers into their cells and drops cells under `k`.
pub fn density(
    customers: &[Customer],
    cells: &[CellIndex],
    unserved: &[bool],
    resolution: Resolution,
    k: u64,
) -> Density {
    let mut acc: HashMap<CellIndex, Hex> = HashMap::new();
    for ((c, &cell), &far) in customers.iter().zip(cells).zip(unserved) {
        let hex = acc.entry(cell).or_insert_with(|| Hex {
            cell,
            customers: 0,
            orders: 0,
            revenue: 0.0,
            unserved: 0,
        });
        hex.customers += 1;
        hex.orders += u64::from(c.orders);
        hex.revenue += c.revenue;
        hex.unserved += u64::from(far);
    }
    let mut out = Density {
        resolution: u8::from(resolution),
        ..Density::default()
    };
    for hex in acc.into_values() {
        if hex.customers >= k {
            out.hexes.push(hex);
        } else {
            out.suppressed_hexes += 1;
            out.suppressed_customers += hex.customers;
        }
    }
    out.hexes.sort_by_key(|h| h.cell);
    out
}

/// The hexagon's outline as a closed GeoJSON ring of [lon, lat].
pub fn outline(cell: CellIndex) -> Vec<[f64; 2]> {
    let boundary = cell.boundary();
    let mut ring: Vec<[f64; 2]> = boundary.iter().map(|ll| [ll.lng(), ll.lat()]).collect();
    if let Some(&first) = ring.first() {
        ring.push(first);
    }
    ring
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Customer {
        Customer {
            lat,
            lon,
            orders: 2,
            revenue: 10.0,
        }
    }

    #[test]
    fn small_hexes_are_left_out_and_counted() {
        let res = Resolution::Five;
        // 12 customers at one spot in Chengdu, 3 in Lhasa: with k = 10 only Chengdu's hex shows.
        let mut customers: Vec<Customer> = (0..12).map(|_| at(30.66, 104.07)).collect();
        customers.extend((0..3).map(|_| at(29.65, 91.1)));
        let cells: Vec<CellIndex> = customers.iter().map(|c| cell_of(c, res)).collect();
        let unserved: Vec<bool> = (0..15).map(|i| i % 3 == 0).collect();
        let d = density(&customers, &cells, &unserved, res, 10);
        assert_eq!(d.hexes.len(), 1);
        let h = &d.hexes[0];
        assert_eq!(h.cell, cells[0]);
        assert_eq!((h.customers, h.orders, h.unserved), (12, 24, 4));
        assert!((h.revenue - 120.0).abs() < 1e-9);
        assert_eq!((d.suppressed_hexes, d.suppressed_customers), (1, 3));
        // k = 3: both show
        assert_eq!(
            density(&customers, &cells, &unserved, res, 3).hexes.len(),
            2
        );
    }

    #[test]
    fn outline_is_a_closed_hexagon_around_the_point() {
        let cell = cell_of(&at(30.66, 104.07), Resolution::Five);
        let ring = outline(cell);
        assert_eq!(ring.len(), 7);
        assert_eq!(ring.first(), ring.last());
        // resolution 5 hexagons are about 8.5 km across an edge: the corners are within 0.2°
        for p in &ring {
            assert!(
                (p[0] - 104.07).abs() < 0.2 && (p[1] - 30.66).abs() < 0.2,
                "{p:?}"
            );
        }
    }
}
