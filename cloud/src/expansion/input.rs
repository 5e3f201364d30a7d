//! Importing stores and customers (or online orders) from CSV, row by row.
//!
//! - Stores: header `id,name,lat,lon,opened` (`name`, `opened` and an optional `visits` column —
//!   in-store visits per store — may be empty or absent).
//! - Customers / orders: header `id,lat,lon,amount,date`, where a `city` name or an `adcode`
//!   column may stand instead of (or beside, as a fallback to) `lat,lon`. Several rows may share a
//!   customer id: customers = distinct ids, orders = rows, revenue = sum of `amount`. A customer
//!   is placed where their first row puts them.
//!
//! Header names are matched case-insensitively and trimmed; extra columns are ignored; a UTF-8
//! BOM is skipped. A header without the needed columns is an [`InputError`] that says what to
//! add. A bad row never stops the import and is never dropped silently: it becomes a
//! [`Rejection`] with its line number and reason, counted in [`Rejections`].

use super::places;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;

/// At most this many rejected rows are kept with their reasons (all are counted): a wholly wrong
/// file of a million rows must not become a million-line report.
pub const MAX_LISTED_REJECTIONS: usize = 1_000;

/// A store of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// Opening date as given (`YYYY-MM-DD`), if any.
    pub opened: Option<String>,
}

/// One customer, at one point, with their orders summed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    pub lat: f64,
    pub lon: f64,
    pub orders: u32,
    pub revenue: f64,
}

/// Distinct customers with their orders. Built through [`CustomersBuilder`], which validates
/// every coordinate and amount, so the analysis never meets a NaN.
#[derive(Debug, Clone, Default)]
pub struct Customers {
    list: Vec<Customer>,
    orders: u64,
}

impl Customers {
    pub fn as_slice(&self) -> &[Customer] {
        &self.list
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Number of order rows accepted.
    pub fn orders(&self) -> u64 {
        self.orders
    }
    pub fn revenue(&self) -> f64 {
        self.list.iter().map(|c| c.revenue).sum()
    }
}

/// A customer id up to 15 bytes long (most are), packed with its length into 16 bytes: kept
/// inline in the hash table, so a million customers don't mean a million small allocations, a
/// pointer chase per lookup and a table of fat keys.
type ShortId = [u8; 16];

fn short_id(id: &str) -> Option<ShortId> {
    let bytes = id.as_bytes();
    (bytes.len() < 16).then(|| {
        let mut key = [0u8; 16];
        key[0] = bytes.len() as u8;
        key[1..=bytes.len()].copy_from_slice(bytes);
        key
    })
}

/// Collects orders into distinct customers.
#[derive(Debug, Default)]
pub struct CustomersBuilder {
    short: HashMap<ShortId, u32>,
    long: HashMap<Box<str>, u32>,
    /// The previous row's customer: order exports are often grouped by customer, and a repeat
    /// then needs no hash lookup.
    last: Option<(String, u32)>,
    customers: Customers,
}

impl CustomersBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one order of customer `id` at (`lat`, `lon`). The customer's position is that of
    /// their first order; later orders add to their count and revenue.
    pub fn add_order(&mut self, id: &str, lat: f64, lon: f64, amount: f64) -> Result<(), String> {
        let id = id.trim();
        if id.is_empty() {
            return Err("id is empty".into());
        }
        check_lat_lon(lat, lon)?;
        check_amount(amount)?;
        let list = &mut self.customers.list;
        let short = short_id(id);
        let known = match (&self.last, &short) {
            (Some((last, i)), _) if last == id => Some(*i),
            (_, Some(key)) => self.short.get(key).copied(),
            (_, None) => self.long.get(id).copied(),
        };
        let i = match known {
            Some(i) => {
                let c = &mut list[i as usize];
                c.orders = c.orders.saturating_add(1);
                c.revenue += amount;
                i
            }
            None => {
                let i = u32::try_from(list.len())
                    .map_err(|_| "more than 4,294,967,295 customers".to_string())?;
                match short {
                    Some(key) => self.short.insert(key, i),
                    None => self.long.insert(id.into(), i),
                };
                list.push(Customer {
                    lat,
                    lon,
                    orders: 1,
                    revenue: amount,
                });
                i
            }
        };
        match &mut self.last {
            Some((last, j)) => {
                last.clear();
                last.push_str(id);
                *j = i;
            }
            None => self.last = Some((id.to_owned(), i)),
        }
        self.customers.orders += 1;
        Ok(())
    }

    pub fn finish(self) -> Customers {
        self.customers
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// Rejected rows of one file: all counted, the first [`MAX_LISTED_REJECTIONS`] listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejections {
    pub total: u64,
    pub listed: Vec<Rejection>,
}

impl Rejections {
    pub fn push(&mut self, line: u64, reason: impl Into<String>) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED_REJECTIONS {
            self.listed.push(Rejection {
                line,
                reason: reason.into(),
            });
        }
    }
}

/// A file that cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: {source}")]
    Csv {
        file: &'static str,
        #[source]
        source: csv::Error,
    },
    #[error("{file}: the header has no '{column}' column (found: {found}); {hint}")]
    MissingColumn {
        file: &'static str,
        column: &'static str,
        found: String,
        hint: &'static str,
    },
    #[error("{file}: column '{column}' appears more than once in the header; keep one")]
    DuplicateColumn { file: &'static str, column: String },
}

/// One accepted order row (the customers file), as [`for_each_order`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow<'a> {
    pub line: u64,
    pub customer_id: &'a str,
    pub lat: f64,
    pub lon: f64,
    pub amount: f64,
    pub date: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawOrder<'a> {
    id: &'a str,
    #[serde(default)]
    lat: Option<&'a str>,
    #[serde(default)]
    lon: Option<&'a str>,
    #[serde(default)]
    city: Option<&'a str>,
    #[serde(default)]
    adcode: Option<&'a str>,
    #[serde(default)]
    amount: Option<&'a str>,
    #[serde(default)]
    date: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawStore<'a> {
    id: &'a str,
    #[serde(default)]
    name: Option<&'a str>,
    lat: &'a str,
    lon: &'a str,
    #[serde(default)]
    opened: Option<&'a str>,
    #[serde(default)]
    visits: Option<&'a str>,
}

/// Reads a customers/orders CSV, calling `accept` for each valid row; invalid rows go to the
/// returned [`Rejections`].
pub fn for_each_order<R: Read>(
    input: R,
    mut accept: impl FnMut(&OrderRow<'_>) -> Result<(), String>,
) -> Result<Rejections, InputError> {
    const FILE: &str = "customers CSV";
    let (mut reader, headers) = open(input, FILE)?;
    let has = |c: &str| headers.iter().any(|h| h == c.as_bytes());
    if !has("id") {
        return Err(missing(
            FILE,
            "id",
            &headers,
            "the customers file needs id,lat,lon,amount,date (or city / adcode instead of lat,lon)",
        ));
    }
    let has_coordinates = has("lat") && has("lon");
    if !has_coordinates && !has("city") && !has("adcode") {
        let column = if has("lat") { "lon" } else { "lat" };
        return Err(missing(
            FILE,
            column,
            &headers,
            "give each customer's position as lat,lon columns, or a city (name) or adcode column",
        ));
    }
    let mut rejections = Rejections::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(InputError::Csv {
                        file: FILE,
                        source: e,
                    });
                }
                rejections.push(line, format!("unreadable row: {e}"));
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != headers.len() {
            rejections.push(
                line,
                format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            );
            continue;
        }
        let raw: RawOrder<'_> = match record.deserialize(Some(&headers)) {
            Ok(raw) => raw,
            Err(e) => {
                rejections.push(line, describe_deserialize_error(&e));
                continue;
            }
        };
        match parse_order(line, &raw).and_then(|row| accept(&row)) {
            Ok(()) => {}
            Err(reason) => rejections.push(line, reason),
        }
    }
    Ok(rejections)
}

/// Reads a customers/orders CSV into distinct customers.
pub fn read_customers<R: Read>(input: R) -> Result<(Customers, Rejections), InputError> {
    let mut builder = CustomersBuilder::new();
    let rejections = for_each_order(input, |row| {
        builder.add_order(row.customer_id, row.lat, row.lon, row.amount)
    })?;
    Ok((builder.finish(), rejections))
}

/// Stores and, if the file has a `visits` column, their in-store visit counts.
#[derive(Debug, Clone, Default)]
pub struct StoresFile {
    pub stores: Vec<Store>,
    pub visits: HashMap<String, u64>,
    pub rejections: Rejections,
}

/// Reads a stores CSV (`id,name,lat,lon,opened`, optional `visits`).
pub fn read_stores<R: Read>(input: R) -> Result<StoresFile, InputError> {
    const FILE: &str = "stores CSV";
    const HINT: &str = "the stores file needs id,name,lat,lon,opened";
    let (mut reader, headers) = open(input, FILE)?;
    for column in ["id", "lat", "lon"] {
        if !headers.iter().any(|h| h == column.as_bytes()) {
            return Err(missing(FILE, column, &headers, HINT));
        }
    }
    let mut out = StoresFile::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(InputError::Csv {
                        file: FILE,
                        source: e,
                    });
                }
                out.rejections.push(line, format!("unreadable row: {e}"));
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != headers.len() {
            out.rejections.push(
                line,
                format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            );
            continue;
        }
        let raw: RawStore<'_> = match record.deserialize(Some(&headers)) {
            Ok(raw) => raw,
            Err(e) => {
                out.rejections.push(line, describe_deserialize_error(&e));
                continue;
            }
        };
        let parsed = (|| {
            let id = raw.id.trim();
            if id.is_empty() {
                return Err("id is empty".to_string());
            }
            if let Some(first) = seen.get(id) {
                return Err(format!("store id '{id}' already appears on line {first}"));
            }
            let lat = parse_number("lat", raw.lat)?;
            let lon = parse_number("lon", raw.lon)?;
            check_lat_lon(lat, lon)?;
            let opened = non_empty(raw.opened).map(check_date).transpose()?;
            let visits = match non_empty(raw.visits) {
                None => None,
                Some(v) => Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("visits '{}' is not a whole number ≥ 0", clip(v)))?,
                ),
            };
            let name = non_empty(raw.name).unwrap_or(id);
            Ok((
                Store {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    lat,
                    lon,
                    opened: opened.map(str::to_owned),
                },
                visits,
            ))
        })();
        match parsed {
            Ok((store, visits)) => {
                seen.insert(store.id.clone(), line);
                if let Some(v) = visits {
                    out.visits.insert(store.id.clone(), v);
                }
                out.stores.push(store);
            }
            Err(reason) => out.rejections.push(line, reason),
        }
    }
    Ok(out)
}

/// Opens a CSV with normalised (trimmed, lower-case) header names.
fn open<R: Read>(
    input: R,
    file: &'static str,
) -> Result<(csv::Reader<R>, csv::ByteRecord), InputError> {
    // No csv-level trimming: every value is trimmed where it is read (cheaper on a million rows).
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader
        .byte_headers()
        .map_err(|source| InputError::Csv { file, source })?;
    let headers: csv::ByteRecord = headers
        .iter()
        .map(|h| h.trim_ascii().to_ascii_lowercase())
        .collect();
    for (i, h) in headers.iter().enumerate() {
        if headers.iter().skip(i + 1).any(|other| other == h) && !h.is_empty() {
            return Err(InputError::DuplicateColumn {
                file,
                column: String::from_utf8_lossy(h).into_owned(),
            });
        }
    }
    reader.set_byte_headers(headers.clone());
    Ok((reader, headers))
}

fn missing(
    file: &'static str,
    column: &'static str,
    headers: &csv::ByteRecord,
    hint: &'static str,
) -> InputError {
    let found: Vec<String> = headers
        .iter()
        .take(20)
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    InputError::MissingColumn {
        file,
        column,
        found: if found.is_empty() {
            "nothing: the file is empty".into()
        } else {
            found.join(",")
        },
        hint,
    }
}

fn describe_deserialize_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.kind() {
            csv::DeserializeErrorKind::InvalidUtf8(_) => {
                let field = err.field().map_or(String::new(), |f| format!(" {}", f + 1));
                format!("field{field} is not valid UTF-8")
            }
            _ => format!("cannot read row: {err}"),
        },
        _ => format!("cannot read row: {e}"),
    }
}

fn parse_order<'a>(line: u64, raw: &RawOrder<'a>) -> Result<OrderRow<'a>, String> {
    let id = raw.id.trim();
    if id.is_empty() {
        return Err("id is empty".into());
    }
    let (lat, lon) = match (non_empty(raw.lat), non_empty(raw.lon)) {
        (Some(lat), Some(lon)) => {
            let (lat, lon) = (parse_number("lat", lat)?, parse_number("lon", lon)?);
            check_lat_lon(lat, lon)?;
            (lat, lon)
        }
        (Some(_), None) => return Err("lat is given but lon is empty".into()),
        (None, Some(_)) => return Err("lon is given but lat is empty".into()),
        (None, None) => {
            if let Some(city) = non_empty(raw.city) {
                places::resolve_city(city).ok_or_else(|| {
                    format!(
                        "city '{}' is not in the shipped world cities (population ≥ 15,000) or Chinese adcode tables; give lat,lon instead",
                        clip(city)
                    )
                })?
            } else if let Some(code) = non_empty(raw.adcode) {
                places::resolve_adcode(code).map_err(|e| e.to_string())?
            } else {
                return Err("no position: lat,lon, city and adcode are all empty".into());
            }
        }
    };
    let amount = match non_empty(raw.amount) {
        None => 0.0,
        Some(a) => parse_number("amount", a)?,
    };
    check_amount(amount)?;
    let date = non_empty(raw.date).map(check_date).transpose()?;
    Ok(OrderRow {
        line,
        customer_id: id,
        lat,
        lon,
        amount,
        date,
    })
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// At most 40 characters of a bad value, for messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn parse_number(column: &str, s: &str) -> Result<f64, String> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{column} '{}' is not a number", clip(s))),
    }
}

fn check_lat_lon(lat: f64, lon: f64) -> Result<(), String> {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(format!(
            "lat {lat} is outside -90..90 (are lat and lon swapped?)"
        ));
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        return Err(format!("lon {lon} is outside -180..180"));
    }
    Ok(())
}

fn check_amount(amount: f64) -> Result<(), String> {
    if !amount.is_finite() || amount < 0.0 {
        return Err(format!(
            "amount {amount} must be a number ≥ 0 (refunds are not orders)"
        ));
    }
    Ok(())
}

/// Accepts `YYYY-MM-DD`, optionally followed by a time (`T…` or ` …`), with a real calendar day.
pub fn check_date(s: &str) -> Result<&str, String> {
    let bad = || format!("date '{}' is not YYYY-MM-DD", clip(s));
    let b = s.as_bytes();
    if b.len() < 10
        || b[4] != b'-'
        || b[7] != b'-'
        || (b.len() > 10 && !matches!(b[10], b'T' | b' '))
    {
        return Err(bad());
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[r];
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        } else {
            None
        }
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days {
        return Err(bad());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn customers(csv: &str) -> (Customers, Rejections) {
        read_customers(csv.as_bytes()).unwrap()
    }

    #[test]
    fn orders_group_into_customers() {
        let (c, r) = customers(
            "id,lat,lon,amount,date\n\
             a,31.2,121.4,10.5,2024-01-02\n\
             b,39.9,116.4,3,2024-02-29\n\
             a,40.0,100.0,4.5,2024-03-01\n",
        );
        assert_eq!(r.total, 0, "{r:?}");
        assert_eq!(c.len(), 2);
        assert_eq!(c.orders(), 3);
        assert!((c.revenue() - 18.0).abs() < 1e-9);
        // customer a stays where the first order put them, with both orders
        let a = c.as_slice()[0];
        assert_eq!((a.lat, a.lon, a.orders), (31.2, 121.4, 2));
        assert!((a.revenue - 15.0).abs() < 1e-9);
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_reason() {
        let (c, r) = customers(
            "ID , Lat,LON,amount,date\n\
             ok,1,2,3,2024-01-01\n\
             ,1,2,3,2024-01-01\n\
             x,abc,2,3,2024-01-01\n\
             x,91,2,3,2024-01-01\n\
             x,1,2,-3,2024-01-01\n\
             x,1,2,3,2023-02-29\n\
             x,1,2\n\
             x,1,,3,2024-01-01\n\
             x,1,2,NaN,2024-01-01\n\
             ok2,1,2,,\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(r.total, 8);
        let lines: Vec<u64> = r.listed.iter().map(|x| x.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9, 10]);
        let reasons: Vec<&str> = r.listed.iter().map(|x| x.reason.as_str()).collect();
        assert!(reasons[0].contains("id is empty"));
        assert!(reasons[1].contains("lat 'abc' is not a number"));
        assert!(reasons[2].contains("outside -90..90"));
        assert!(reasons[3].contains("amount -3"));
        assert!(reasons[4].contains("2023-02-29"));
        assert!(reasons[5].contains("has 3 fields, the header has 5"));
        assert!(reasons[6].contains("lon is empty"));
        assert!(reasons[7].contains("amount 'NaN'"));
    }

    #[test]
    fn city_and_adcode_stand_in_for_coordinates() {
        let (c, r) = customers(
            "id,city,adcode,amount,date\n\
             1,Chengdu,,5,2024-01-01\n\
             2,,330100,5,2024-01-01\n\
             3,Atlantis-under-the-Sea,,5,2024-01-01\n\
             4,,999999,5,2024-01-01\n\
             5,,,5,2024-01-01\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(r.total, 3);
        assert!(r.listed[0].reason.contains("Atlantis"));
        assert!(r.listed[1].reason.contains("999999"));
        assert!(r.listed[2].reason.contains("no position"));
        assert!((c.as_slice()[0].lat - 30.66).abs() < 0.2);
        assert!((c.as_slice()[1].lon - 120.15).abs() < 0.3);
    }

    #[test]
    fn headers_without_a_position_say_what_to_add() {
        let e = read_customers("id,amount,date\n1,2,2024-01-01\n".as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("'lat'") && msg.contains("city") && msg.contains("id,amount,date"),
            "{msg}"
        );
        let e = read_customers("".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = read_customers("id,lat,lat,lon\n".as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("'lat' appears more than once"),
            "{e}"
        );
    }

    #[test]
    fn stores_parse_with_duplicates_and_visits() {
        let f = read_stores(
            "id,name,lat,lon,opened,visits\n\
             s1,First,31.2,121.4,2020-05-01,1200\n\
             s2,,39.9,116.4,,\n\
             s1,Again,1,1,,\n\
             s3,Bad,1,1,yesterday,\n\
             s4,Bad,1,1,,many\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(f.stores.len(), 2);
        assert_eq!(f.stores[1].name, "s2", "an empty name falls back to the id");
        assert_eq!(f.stores[0].opened.as_deref(), Some("2020-05-01"));
        assert_eq!(f.visits.get("s1"), Some(&1200));
        assert_eq!(f.visits.get("s2"), None);
        assert_eq!(f.rejections.total, 3);
        assert!(
            f.rejections.listed[0]
                .reason
                .contains("already appears on line 2")
        );
        assert!(f.rejections.listed[1].reason.contains("yesterday"));
        assert!(f.rejections.listed[2].reason.contains("many"));
    }

    #[test]
    fn bom_upper_case_headers_and_quoted_fields() {
        let text = "\u{feff}ID,City,Adcode,Amount,Date\n\"a, b\",成都,,12.5,2024-02-29\n\"q\"\"uote\",,330100,1e3,2024-01-01T10:00:00\n";
        let mut ids = Vec::new();
        let r = for_each_order(text.as_bytes(), |row| {
            ids.push((
                row.customer_id.to_owned(),
                row.amount,
                row.date.map(str::to_owned),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(r.total, 0, "{r:?}");
        assert_eq!(
            ids,
            [
                ("a, b".to_owned(), 12.5, Some("2024-02-29".to_owned())),
                (
                    "q\"uote".to_owned(),
                    1000.0,
                    Some("2024-01-01T10:00:00".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_a_rejected_row_not_an_error() {
        let mut bytes = b"id,lat,lon,amount,date\na,1,2,3,2024-01-01\n".to_vec();
        bytes.extend_from_slice(b"\xff\xfe,1,2,3,2024-01-01\nb,1,2,3,2024-01-01\n");
        let (c, r) = read_customers(&bytes[..]).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(r.total, 1);
        assert_eq!(r.listed[0].line, 3);
        assert!(r.listed[0].reason.contains("UTF-8"), "{:?}", r.listed[0]);
    }

    #[test]
    fn rejections_are_counted_beyond_the_listed_cap() {
        let mut csv = String::from("id,lat,lon,amount,date\n");
        for _ in 0..(MAX_LISTED_REJECTIONS + 5) {
            csv.push_str("x,100,0,1,2024-01-01\n");
        }
        let (_, r) = customers(&csv);
        assert_eq!(r.total, (MAX_LISTED_REJECTIONS + 5) as u64);
        assert_eq!(r.listed.len(), MAX_LISTED_REJECTIONS);
    }

    fn date() -> impl Strategy<Value = String> {
        (1900u32..2100, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut with_header = b"id,lat,lon,city,adcode,amount,date\n".to_vec();
            with_header.extend_from_slice(&bytes);
            if let Ok((c, r)) = read_customers(&with_header[..]) {
                // every row is either accepted or rejected
                prop_assert!(c.orders() + r.total <= with_header.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64 + 1);
            }
            let _ = read_customers(&bytes[..]);
            let _ = read_stores(&bytes[..]);
        }

        #[test]
        fn valid_rows_round_trip(rows in proptest::collection::vec(
            ("[A-Za-z0-9 _\",\u{4e00}-\u{4e10}]{1,12}", -90.0f64..=90.0, -180.0f64..=180.0, 0.0f64..1e7, date()),
            1..40,
        )) {
            // ids as the parser sees them: trimmed, and never empty
            prop_assume!(rows.iter().all(|r| !r.0.trim().is_empty()));
            let mut w = csv::Writer::from_writer(vec![]);
            w.write_record(["id", "lat", "lon", "amount", "date"]).unwrap();
            for (id, lat, lon, amount, date) in &rows {
                w.write_record([id.clone(), lat.to_string(), lon.to_string(), amount.to_string(), date.clone()]).unwrap();
            }
            let bytes = w.into_inner().unwrap();
            let mut got = Vec::new();
            let rejections = for_each_order(&bytes[..], |row| {
                got.push((row.customer_id.to_owned(), row.lat, row.lon, row.amount, row.date.map(str::to_owned)));
                Ok(())
            }).unwrap();
            prop_assert_eq!(rejections.total, 0, "{:?}", rejections);
            let want: Vec<_> = rows.iter()
                .map(|(id, lat, lon, amount, date)| (id.trim().to_owned(), *lat, *lon, *amount, Some(date.clone())))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
