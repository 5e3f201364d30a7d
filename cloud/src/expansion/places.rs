//! Places shipped with the binary: GeoNames' world cities (population ≥ 15,000) and China's
//! administrative codes with centroids (cpca). They resolve a customer file's `city` and `adcode`
//! columns to coordinates, supply the candidate cities for new stores, and seed the demo.
//!
//! Both tables are embedded (`include_str!`, origin and licence in `cloud/assets/geo/README.md`)
//! and parsed once, on first use.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

const WORLD_CITIES_CSV: &str = include_str!("../../assets/geo/world_cities15000.csv");
const CHINA_ADCODES_CSV: &str = include_str!("../../assets/geo/china_adcodes_cpca.csv");

/// A city from GeoNames' `cities15000` (CC BY 4.0).
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    pub geonameid: u32,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// ISO 3166-1 alpha-2, e.g. `CN`.
    pub country: String,
    pub population: u64,
}

/// A Chinese administrative division with its centroid (cpca, MIT).
#[derive(Debug, Clone, PartialEq)]
pub struct Division {
    /// The 12-digit code, e.g. `330100000000` for 杭州市.
    pub adcode: u64,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

impl Division {
    /// 0 = province, 1 = prefecture, 2 = district (from the code's zero digits).
    pub fn level(&self) -> u8 {
        if self.adcode.is_multiple_of(10_000_000_000) {
            0
        } else if self.adcode.is_multiple_of(100_000_000) {
            1
        } else {
            2
        }
    }
}

#[derive(Deserialize)]
struct CityRow<'a> {
    geonameid: u32,
    name: &'a str,
    latitude: f64,
    longitude: f64,
    country_code: &'a str,
    population: u64,
}

#[derive(Deserialize)]
struct DivisionRow<'a> {
    adcode: u64,
    name: &'a str,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// All 34,006 cities, in the file's order (largest first within the file's own ordering).
pub fn world_cities() -> &'static [City] {
    static CITIES: OnceLock<Vec<City>> = OnceLock::new();
    CITIES.get_or_init(|| {
        let mut reader = csv::Reader::from_reader(WORLD_CITIES_CSV.as_bytes());
        let headers = reader.byte_headers().cloned().unwrap_or_default();
        let mut record = csv::ByteRecord::new();
        let mut cities = Vec::with_capacity(34_006);
        // The shipped file is checked by `tests::tables_parse_completely`; a row that didn't
        // parse would be skipped here rather than take the service down.
        while reader.read_byte_record(&mut record).unwrap_or(false) {
            if let Ok(row) = record.deserialize::<CityRow<'_>>(Some(&headers)) {
                cities.push(City {
                    geonameid: row.geonameid,
                    name: row.name.to_owned(),
                    lat: row.latitude,
                    lon: row.longitude,
                    country: row.country_code.to_owned(),
                    population: row.population,
                });
            }
        }
        cities
    })
}

/// The 3,218 divisions of `china_adcodes_cpca.csv` that have a centroid, in code order.
pub fn china_divisions() -> &'static [Division] {
    static DIVISIONS: OnceLock<Vec<Division>> = OnceLock::new();
    DIVISIONS.get_or_init(|| {
        let mut reader = csv::Reader::from_reader(CHINA_ADCODES_CSV.as_bytes());
        let headers = reader.byte_headers().cloned().unwrap_or_default();
        let mut record = csv::ByteRecord::new();
        let mut divisions = Vec::with_capacity(3_511);
        while reader.read_byte_record(&mut record).unwrap_or(false) {
            if let Ok(row) = record.deserialize::<DivisionRow<'_>>(Some(&headers))
                && let (Some(lat), Some(lon)) = (row.latitude, row.longitude)
            {
                divisions.push(Division {
                    adcode: row.adcode,
                    name: row.name.to_owned(),
                    lat,
                    lon,
                });
            }
        }
        divisions.sort_by_key(|d| d.adcode);
        divisions
    })
}

/// Why an `adcode` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdcodeError {
    #[error("adcode '{0}' is not a 6- or 12-digit Chinese administrative code")]
    Malformed(String),
    #[error(
        "adcode '{0}' is not in the shipped table (china_adcodes_cpca.csv), nor its prefecture or province"
    )]
    Unknown(String),
}

/// Coordinates (lat, lon) of an adcode's centroid. Six-digit codes (`330106`) and twelve-digit
/// codes (`330106000000`) are accepted; a code missing from the table (codes change) falls back
/// to its prefecture, then its province.
pub fn resolve_adcode(code: &str) -> Result<(f64, f64), AdcodeError> {
    let code = code.trim();
    if !(code.len() == 6 || code.len() == 12) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdcodeError::Malformed(code.to_owned()));
    }
    // Cannot fail: at most 12 ASCII digits fit in a u64.
    let mut value: u64 = code
        .parse()
        .map_err(|_| AdcodeError::Malformed(code.to_owned()))?;
    if code.len() == 6 {
        value *= 1_000_000;
    }
    let divisions = china_divisions();
    let find = |v: u64| {
        divisions
            .binary_search_by_key(&v, |d| d.adcode)
            .ok()
            .map(|i| (divisions[i].lat, divisions[i].lon))
    };
    find(value)
        .or_else(|| find(value / 100_000_000 * 100_000_000))
        .or_else(|| find(value / 10_000_000_000 * 10_000_000_000))
        .ok_or_else(|| AdcodeError::Unknown(code.to_owned()))
}

/// Suffixes of Chinese division names that people often leave out ("杭州" for "杭州市").
const CHINESE_SUFFIXES: &[&str] = &[
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "地区",
    "省",
    "市",
    "区",
    "县",
    "盟",
];

/// Coordinates (lat, lon) of a place name.
///
/// Chinese names are looked up among the adcode divisions first (exact names before names
/// without their suffix, prefectures before provinces before districts: "吉林" is the city,
/// "朝阳区" the first district of that name by code); other names among the world cities,
/// case-insensitively, the most populous city of that name winning ("Springfield" is the
/// largest Springfield).
pub fn resolve_city(name: &str) -> Option<(f64, f64)> {
    static INDEX: OnceLock<HashMap<String, (f64, f64)>> = OnceLock::new();
    let index = INDEX.get_or_init(build_city_index);
    let key = name.trim().to_lowercase();
    if key.is_empty() {
        return None;
    }
    index.get(&key).copied()
}

fn build_city_index() -> HashMap<String, (f64, f64)> {
    // rank: lower wins. Chinese divisions (0..) before world cities so "北京" never hits a
    // foreign city; world cities rank by descending population.
    type Rank = (u8, u8, u64);
    let mut best: HashMap<String, (Rank, (f64, f64))> = HashMap::new();
    let mut offer = |key: String, rank: Rank, at: (f64, f64)| {
        if key.is_empty() {
            return;
        }
        match best.get(&key) {
            Some((r, _)) if *r <= rank => {}
            _ => {
                best.insert(key, (rank, at));
            }
        }
    };
    for d in china_divisions() {
        let level = [1u8, 0, 2][d.level() as usize]; // prefecture, province, district
        offer(d.name.to_lowercase(), (0, level, d.adcode), (d.lat, d.lon));
        for suffix in CHINESE_SUFFIXES {
            if let Some(short) = d.name.strip_suffix(suffix)
                && short.chars().count() >= 2
            {
                offer(short.to_lowercase(), (1, level, d.adcode), (d.lat, d.lon));
                break;
            }
        }
    }
    for c in world_cities() {
        offer(
            c.name.to_lowercase(),
            (2, 0, u64::MAX - c.population),
            (c.lat, c.lon),
        );
    }
    best.into_iter().map(|(k, (_, at))| (k, at)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_completely() {
        // Every data row of the shipped files is read (34,006 cities; 3,511 divisions of which
        // 293 lack a centroid).
        assert_eq!(world_cities().len(), WORLD_CITIES_CSV.lines().count() - 1);
        let with_centroid = CHINA_ADCODES_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.ends_with(",,"))
            .count();
        assert_eq!(china_divisions().len(), with_centroid);
        assert!(china_divisions().len() > 3_000);
    }

    #[test]
    fn adcodes_resolve_with_fallback_to_parents() {
        let hangzhou = resolve_adcode("330100").unwrap();
        assert!((hangzhou.0 - 30.27).abs() < 0.3 && (hangzhou.1 - 120.15).abs() < 0.3);
        assert_eq!(resolve_adcode("330100000000").unwrap(), hangzhou);
        // 330199 is not a real district: falls back to Hangzhou's prefecture centroid.
        assert_eq!(resolve_adcode("330199").unwrap(), hangzhou);
        assert!(matches!(
            resolve_adcode("33010"),
            Err(AdcodeError::Malformed(_))
        ));
        assert!(matches!(
            resolve_adcode("99xx00"),
            Err(AdcodeError::Malformed(_))
        ));
        assert!(matches!(
            resolve_adcode("990100"),
            Err(AdcodeError::Unknown(_))
        ));
    }

    #[test]
    fn city_names_resolve_in_both_scripts() {
        let (lat, lon) = resolve_city("Chengdu").unwrap();
        assert!((lat - 30.66).abs() < 0.2 && (lon - 104.07).abs() < 0.2);
        let (lat, lon) = resolve_city("  成都市 ").unwrap();
        assert!((lat - 30.66).abs() < 0.5 && (lon - 104.07).abs() < 0.5);
        assert_eq!(resolve_city("成都"), resolve_city("成都市"));
        // "吉林" is the prefecture city 吉林市, not the province 吉林省.
        let jilin_city = china_divisions()
            .iter()
            .find(|d| d.name == "吉林市")
            .unwrap();
        assert_eq!(resolve_city("吉林"), Some((jilin_city.lat, jilin_city.lon)));
        // The most populous "London" is the British one.
        let (lat, _) = resolve_city("london").unwrap();
        assert!(lat > 51.0);
        assert_eq!(resolve_city("Nowhere-on-Sea"), None);
        assert_eq!(resolve_city(""), None);
    }
}
