//! Where a simulated person is at any moment: a piecewise-linear trajectory of waypoints.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn dist(self, o: Point) -> f64 {
        (self.x - o.x).hypot(self.y - o.y)
    }
}

/// Axis-aligned bounding box (min, max) of a polygon.
pub fn bbox(poly: &[[f64; 2]]) -> (Point, Point) {
    let mut min = Point {
        x: f64::INFINITY,
        y: f64::INFINITY,
    };
    let mut max = Point {
        x: f64::NEG_INFINITY,
        y: f64::NEG_INFINITY,
    };
    for [x, y] in poly {
        min.x = min.x.min(*x);
        min.y = min.y.min(*y);
        max.x = max.x.max(*x);
        max.y = max.y.max(*y);
    }
    (min, max)
}

/// Vertex average: good enough as "somewhere in the middle" for convex zones.
pub fn centroid(poly: &[[f64; 2]]) -> Point {
    let n = poly.len().max(1) as f64;
    let (sx, sy) = poly
        .iter()
        .fold((0.0, 0.0), |(a, b), [x, y]| (a + x, b + y));
    Point {
        x: sx / n,
        y: sy / n,
    }
}

/// Waypoints `(t_ms, position)` in time order; between them the person moves in a straight line.
#[derive(Clone, Debug, Default)]
pub struct Trajectory {
    points: Vec<(i64, Point)>,
}

impl Trajectory {
    pub fn start(&mut self, t: i64, at: Point) {
        self.points.clear();
        self.points.push((t, at));
    }

    fn last(&self) -> (i64, Point) {
        // `start` is always called first by the simulator; an empty trajectory stays at origin.
        self.points
            .last()
            .copied()
            .unwrap_or((0, Point { x: 0.0, y: 0.0 }))
    }

    /// Walks to `to` at `speed` m/s; returns the arrival time.
    pub fn walk_to(&mut self, to: Point, speed: f64) -> i64 {
        let (t, at) = self.last();
        let arrive = t + (at.dist(to) / speed * 1000.0).round() as i64;
        self.points.push((arrive, to));
        arrive
    }

    /// Stands still for `ms`; returns the time it ends.
    pub fn wait(&mut self, ms: i64) -> i64 {
        let (t, at) = self.last();
        self.points.push((t + ms, at));
        t + ms
    }

    pub fn start_ms(&self) -> i64 {
        self.points.first().map_or(0, |p| p.0)
    }

    pub fn end_ms(&self) -> i64 {
        self.last().0
    }

    /// Position at time `t` (clamped to the trajectory's ends).
    pub fn at(&self, t: i64) -> Point {
        let i = self.points.partition_point(|(pt, _)| *pt <= t);
        match (
            i.checked_sub(1).and_then(|j| self.points.get(j)),
            self.points.get(i),
        ) {
            (Some(&(t0, p0)), Some(&(t1, p1))) if t1 > t0 => {
                let f = (t - t0) as f64 / (t1 - t0) as f64;
                Point {
                    x: p0.x + (p1.x - p0.x) * f,
                    y: p0.y + (p1.y - p0.y) * f,
                }
            }
            (Some(&(_, p)), _) | (None, Some(&(_, p))) => p,
            (None, None) => Point { x: 0.0, y: 0.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_clamps() {
        let mut t = Trajectory::default();
        t.start(0, Point { x: 0.0, y: 0.0 });
        assert_eq!(t.walk_to(Point { x: 10.0, y: 0.0 }, 1.0), 10_000);
        assert_eq!(t.wait(5_000), 15_000);
        assert_eq!(t.at(5_000), Point { x: 5.0, y: 0.0 });
        assert_eq!(t.at(12_000), Point { x: 10.0, y: 0.0 });
        assert_eq!(t.at(-1), Point { x: 0.0, y: 0.0 });
        assert_eq!(t.at(99_000), Point { x: 10.0, y: 0.0 });
    }
}
