//! Regional expansion from the outside: point-in-region against an independent tool (shapely),
//! and `dwell-cloud expansion` run as analysts run it, on the fixtures in
//! `tests/fixtures/expansion/` (their README lists what each holds).
//!
//! The shapely check needs `python3` with shapely (`pip install shapely`). Without it the test
//! prints `SKIP: …` and passes — unless `CI` is set, then it fails.

use dwell_cloud::expansion::places::world_cities;
use dwell_cloud::expansion::{Boundaries, BuiltinBoundaries};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/expansion")
}

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/geo")
}

/// Great-circle distance written out independently (haversine, R = 6,371.0088 km).
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371.008_8;
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let (dp, dl) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

fn shapely_available() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import shapely"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "python3 cannot import shapely: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Err(format!("no python3: {e}")),
    }
}

/// Every 17th world city plus every 2nd Chinese one: about 3,000 real places, a third of them
/// in China, many near coasts and borders.
fn sample() -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut cn = 0;
    for (i, c) in world_cities().iter().enumerate() {
        let in_china = c.country == "CN";
        if in_china {
            cn += 1;
        }
        if i % 17 == 0 || (in_china && cn % 2 == 0) {
            out.push((c.lat, c.lon));
        }
    }
    out
}

#[test]
fn point_in_region_agrees_with_shapely_on_real_cities() {
    if let Err(why) = shapely_available() {
        if std::env::var_os("CI").is_some() {
            panic!("{why}: CI must install it (pip install shapely)");
        }
        println!("SKIP: point-in-region check against shapely: {why} (pip install shapely)");
        return;
    }
    let points = sample();
    assert!(points.len() > 2_500, "{}", points.len());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("points.csv");
    let mut text = String::from("lat,lon\n");
    for (lat, lon) in &points {
        text.push_str(&format!("{lat},{lon}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expansion_check.py");

    for (which, file) in [
        (
            BuiltinBoundaries::ChinaProvinces,
            "china_provinces_echarts4.geojson",
        ),
        (
            BuiltinBoundaries::WorldCountries,
            "world_countries_110m.geojson",
        ),
    ] {
        let out = Command::new("python3")
            .arg(&script)
            .arg(assets().join(file))
            .arg(&csv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<(String, f64)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (id, dist) = l.rsplit_once(',').unwrap();
                (id.to_owned(), dist.parse().unwrap())
            })
            .collect();
        assert_eq!(theirs.len(), points.len());

        let boundaries = Boundaries::builtin(which).unwrap();
        let (mut agree, mut inside, mut on_border) = (0, 0, Vec::new());
        for (&(lat, lon), (their_id, border_deg)) in points.iter().zip(&theirs) {
            let ours = boundaries
                .locate(lat, lon)
                .map_or("", |r| boundaries.regions()[r].id.as_str());
            if ours == their_id {
                agree += 1;
                inside += usize::from(!ours.is_empty());
                continue;
            }
            // A disagreement is allowed only on a border itself: within 5 m (1° ≈ 111 km).
            let metres = border_deg * 111_195.0;
            assert!(
                metres < 5.0,
                "{which}: ({lat}, {lon}) is in '{ours}' for Dwell but '{their_id}' for shapely, {metres:.0} m from a border"
            );
            on_border.push((lat, lon));
        }
        println!(
            "{which}: {agree} of {} cities agree with shapely ({inside} inside a region), {} on a border",
            points.len(),
            on_border.len()
        );
        assert!(on_border.len() <= 3, "{which}: {on_border:?}");
        assert!(
            inside > 900,
            "{which}: only {inside} points inside a region"
        );
    }
}

fn expansion(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dwell-cloud"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .arg("expansion")
        .args(args)
        .output()
        .unwrap()
}

/// (lat, lon) of each customer in the fixture (first row per id; rows without lat/lon skipped).
fn fixture_customers() -> HashMap<String, (f64, f64)> {
    let text = std::fs::read_to_string(fixtures().join("customers.csv")).unwrap();
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let (Ok(lat), Ok(lon)) = (f[1].parse::<f64>(), f[2].parse::<f64>())
            && !f[0].starts_with("bad")
        {
            out.entry(f[0].to_owned()).or_insert((lat, lon));
        }
    }
    out
}

fn by_kind<'a>(json: &'a Value, kind: &str) -> Vec<&'a Value> {
    json["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["kind"] == kind)
        .collect()
}

#[test]
fn cli_writes_regions_stores_candidates_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("result.geojson");
    let csv_path = dir.path().join("regions.csv");
    let out = expansion(&[
        "--stores",
        fixtures().join("stores.csv").to_str().unwrap(),
        "--customers",
        fixtures().join("customers.csv").to_str().unwrap(),
        "--currency",
        "¥",
        "--out",
        out_path.to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary: counts, the chosen boundaries with their provenance, the rejected rows.
    assert!(
        stdout.contains("3 stores, 89 customers (91 orders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("boundaries: china-provinces (34 regions, 2 suppressed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ECharts 5 for unclear provenance"),
        "{stdout}"
    );
    for line in [
        "line 5: lat 'abc'",
        "line 93: date '2024-13-01'",
        "line 94: amount -5",
        "line 95: city 'Nowhere-on-Sea'",
        "line 96: lat 'abc'",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }

    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    assert_eq!(json["type"], "FeatureCollection");
    assert!(json["attribution"].as_str().unwrap().contains("ECharts"));
    assert_eq!(json["rejected"]["customers"]["total"], 4);

    // One region feature per province, each with the boundary file's own id.
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(assets().join("china_provinces_echarts4.geojson")).unwrap(),
    )
    .unwrap();
    let want_ids: BTreeSet<String> = shipped["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let regions = by_kind(&json, "region");
    let got_ids: BTreeSet<String> = regions
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got_ids, want_ids);
    let region = |id: &str| regions.iter().find(|f| f["id"] == id).unwrap()["properties"].clone();

    // Shanghai: 25 customers, one of them with three orders, all within 4 km of the store.
    let sh = region("310000");
    assert_eq!(
        (sh["customers"].as_u64(), sh["orders"].as_u64()),
        (Some(25), Some(27))
    );
    assert_eq!(sh["revenue"].as_f64(), Some(25.0 * 58.5 + 20.0 + 21.5));
    assert_eq!(sh["unserved_share"].as_f64(), Some(0.0));
    assert!(sh["nearest_store_km"].as_f64().unwrap() < 4.0);
    assert_eq!(
        (sh["stores"].as_u64(), sh["visits"].as_u64()),
        (Some(1), Some(12_000))
    );

    // Sichuan: 30 customers, all unserved; the median distance to the nearest store, worked
    // out here from the fixture's coordinates.
    let stores = [(31.23, 121.47), (30.27, 120.15), (23.13, 113.26)];
    let mut chengdu: Vec<f64> = fixture_customers()
        .values()
        .filter(|&&(lat, lon)| (lat - 30.66).abs() < 0.1 && (lon - 104.07).abs() < 0.1)
        .map(|&p| {
            stores
                .iter()
                .map(|&s| haversine_km(p, s))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    assert_eq!(chengdu.len(), 30);
    chengdu.sort_by(f64::total_cmp);
    let median = (chengdu[14] + chengdu[15]) / 2.0;
    let sc = region("510000");
    assert_eq!(
        (sc["customers"].as_u64(), sc["unserved_share"].as_f64()),
        (Some(30), Some(1.0))
    );
    assert!(
        (sc["nearest_store_km"].as_f64().unwrap() - median).abs() < 0.01,
        "{sc} vs {median}"
    );

    // Beijing: 10 customers by city name and 10 by adcode.
    let bj = region("110000");
    assert_eq!(
        (bj["customers"].as_u64(), bj["unserved_share"].as_f64()),
        (Some(20), Some(1.0))
    );

    // Tibet (3 customers) is suppressed, and Hubei (11, the next smallest) with it.
    for id in ["540000", "420000"] {
        let r = region(id);
        assert_eq!(r["suppressed"], true, "{id}");
        assert!(
            r["customers"].is_null() && r["revenue"].is_null() && r["unserved_share"].is_null(),
            "{r}"
        );
    }
    // A province with a store and no customers shows zeros.
    let gd = region("440000");
    assert_eq!(
        (
            gd["suppressed"].as_bool(),
            gd["customers"].as_u64(),
            gd["stores"].as_u64()
        ),
        (Some(false), Some(0), Some(1))
    );

    // Stores: the three good rows.
    let store_ids: BTreeSet<&str> = by_kind(&json, "store")
        .iter()
        .map(|f| f["properties"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(store_ids, BTreeSet::from(["sh1", "hz1", "gz1"]));

    // Candidates: Sichuan's 30, Beijing's 20, Hubei's 11 — never Shanghai (served) nor Tibet (3).
    let candidates = by_kind(&json, "candidate");
    let picked: Vec<(u64, String, f64)> = candidates
        .iter()
        .map(|c| {
            let p = &c["properties"];
            (
                p["rank"].as_u64().unwrap(),
                p["region_id"].as_str().unwrap().to_owned(),
                p["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        picked,
        [
            (1, "510000".to_owned(), 30.0),
            (2, "110000".to_owned(), 20.0),
            (3, "420000".to_owned(), 11.0)
        ]
    );
    let first = &candidates[0]["properties"];
    assert_eq!(first["name"], "Chengdu");
    let reason = first["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("30 customers (¥3k) live within 30 km and are 1,"),
        "{reason}"
    );
    assert_eq!(candidates[0]["geometry"]["type"], "Point");

    // Hexagons, each with at least k = 10 customers.
    for h in by_kind(&json, "hex") {
        assert!(h["properties"]["customers"].as_u64().unwrap() >= 10, "{h}");
        assert_eq!(h["geometry"]["type"], "Polygon");
    }

    // The CSV: header + one row per province.
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 35);
    assert!(
        csv.lines()
            .any(|l| l.starts_with("510000,四川,false,30,30,3000.0,")),
        "{csv}"
    );
    assert!(
        csv.lines().any(|l| l == "540000,西藏,true,,,,,,,0,0"),
        "{csv}"
    );
}

#[test]
fn cli_accepts_a_users_own_regions() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("own.geojson");
    let out = expansion(&[
        "--stores",
        fixtures().join("stores.csv").to_str().unwrap(),
        "--customers",
        fixtures().join("customers.csv").to_str().unwrap(),
        "--regions",
        fixtures().join("regions.geojson").to_str().unwrap(),
        "--k",
        "5",
        "--no-hexes",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let regions = by_kind(&json, "region");
    // ids as the file has them: numbers stay numbers; the third comes from properties.adcode
    let ids: Vec<&Value> = regions.iter().map(|f| &f["id"]).collect();
    assert_eq!(
        ids,
        [&Value::from(101), &Value::from(202), &Value::from("north")]
    );
    let p = |i: usize| &regions[i]["properties"];
    // East holds Shanghai's 25 (Hangzhou's store too); West Chengdu's 30; North Beijing's 20.
    assert_eq!(
        (p(0)["customers"].as_u64(), p(0)["stores"].as_u64()),
        (Some(25), Some(2))
    );
    assert_eq!(p(1)["customers"].as_u64(), Some(30));
    assert_eq!(p(2)["customers"].as_u64(), Some(20));
    assert_eq!(p(2)["name"], "North");
    assert!(by_kind(&json, "hex").is_empty());
    assert!(json["attribution"].as_str().unwrap().contains("GeoNames"));
    assert!(!json["attribution"].as_str().unwrap().contains("ECharts"));
}

#[test]
fn cli_errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,amount,date\n1,2,2024-01-01\n").unwrap();
    let out_path = dir.path().join("x.geojson");
    let stores = fixtures().join("stores.csv");
    let run = |customers: &Path, extra: &[&str]| {
        let mut args = vec![
            "--stores",
            stores.to_str().unwrap(),
            "--customers",
            customers.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = expansion(&args);
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let e = run(&bad, &[]);
    assert!(
        e.contains("bad.csv") && e.contains("no 'lat' column") && e.contains("city"),
        "{e}"
    );
    let e = run(&dir.path().join("missing.csv"), &[]);
    assert!(
        e.contains("cannot read") && e.contains("missing.csv"),
        "{e}"
    );
    let good = fixtures().join("customers.csv");
    let e = run(&good, &["--boundaries", "mars"]);
    assert!(
        e.contains("china-provinces, china-cities or world-countries"),
        "{e}"
    );
    let e = run(&good, &["--h3-resolution", "16"]);
    assert!(e.contains("0..=15"), "{e}");
    assert!(!out_path.exists(), "nothing written on error");
}
