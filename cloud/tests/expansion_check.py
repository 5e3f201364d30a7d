#!/usr/bin/env python3
"""Independent point-in-region check for cloud/tests/expansion.rs, with shapely.

Usage: expansion_check.py BOUNDARIES.geojson POINTS.csv
POINTS.csv has a header `lat,lon`. Prints one line per point: `region_id,boundary_distance_deg`
where region_id is the first feature (in file order) containing the point (empty if none), taken
the same way Dwell takes it (feature id, else properties.id / adcode / name, else feature-<i>),
and boundary_distance_deg the distance in degrees from the point to the nearest region border
(used to excuse disagreements on the border itself).
"""
import csv
import json
import sys

from shapely.geometry import Point, shape
from shapely.prepared import prep

# Works with shapely 1.8 (Debian's python3-shapely) and 2.x (pip).


def region_id(feature, index):
    fid = feature.get("id")
    if isinstance(fid, str) and fid.strip():
        return fid
    if isinstance(fid, (int, float)) and not isinstance(fid, bool):
        return json.dumps(fid)
    props = feature.get("properties") or {}
    for key in ("id", "adcode", "name"):
        v = props.get(key)
        if isinstance(v, str) and v.strip():
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return json.dumps(v)
    return f"feature-{index}"


def main():
    boundaries_path, points_path = sys.argv[1], sys.argv[2]
    with open(boundaries_path, encoding="utf-8") as f:
        features = json.load(f)["features"]
    ids = [region_id(feat, i) for i, feat in enumerate(features)]
    geoms = [shape(feat["geometry"]) for feat in features]
    prepared = [prep(g) for g in geoms]
    bounds = [g.bounds for g in geoms]
    borders = [g.boundary for g in geoms]
    out = sys.stdout
    with open(points_path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lat, lon = float(row["lat"]), float(row["lon"])
            p = Point(lon, lat)
            near = [
                i
                for i, (x0, y0, x1, y1) in enumerate(bounds)
                if x0 - 0.05 <= lon <= x1 + 0.05 and y0 - 0.05 <= lat <= y1 + 0.05
            ]
            hits = [i for i in near if prepared[i].contains(p)]
            found = ids[hits[0]] if hits else ""
            dist = min((borders[i].distance(p) for i in near), default=1e9)
            out.write(f"{found},{dist:.9f}\n")


if __name__ == "__main__":
    main()
