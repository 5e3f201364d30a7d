//! Bulk import of an existing CRM export into profiles and identities.
//!
//! CSV with a header; `member_id` is required, the other columns optional and in any order:
//! `member_id, phone, email, wechat_openid, app_user, tags, home_city, lat, lon, profiling`.
//! `tags` are separated by `;` or `|`; `profiling` is `true/false/yes/no/1/0` (default false: a
//! CRM export is not consent to profiling). Phones are hashed before they are stored.
//!
//! A row whose `member_id` is already known updates that profile (identities and tags are added;
//! nothing is removed), so an import can be re-run. Every row that can't be used is reported with
//! its line number and reason and the rest goes on; rows are written in transactions of
//! [`CHUNK`] rows.

use super::shoppers::{IdentityLink, check_tag, link_in_tx, new_id, normalise_identity};
use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::store::{AnyStore, BeginWrite};
use serde::Serialize;

/// Rows per transaction.
pub const CHUNK: usize = 1_000;
/// Rejections described individually in the report (all are counted).
pub const REPORTED: usize = 100;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
    /// The first rejected rows: line number (1 = the header) and why.
    pub rejections: Vec<Rejection>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

/// One usable row.
#[derive(Clone, Debug, PartialEq)]
pub struct CrmRow {
    pub member_id: String,
    pub identities: Vec<IdentityLink>,
    pub tags: Vec<String>,
    pub home_city: Option<String>,
    pub home: Option<(f64, f64)>,
    pub profiling: bool,
}

/// Parses one record against the header; errors say what is wrong with the row.
pub fn parse_row(header: &csv::StringRecord, rec: &csv::StringRecord) -> Result<CrmRow, String> {
    let get = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .and_then(|i| rec.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let member_id = get("member_id").ok_or("member_id is empty")?.to_owned();
    let mut identities = vec![IdentityLink {
        kind: "member".into(),
        value: member_id.clone(),
    }];
    for kind in ["phone", "email", "wechat_openid", "app_user"] {
        if let Some(v) = get(kind) {
            identities.push(IdentityLink {
                kind: kind.into(),
                value: v.into(),
            });
        }
    }
    let identities = identities
        .iter()
        .map(|l| normalise_identity(l).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let tags: Vec<String> = get("tags")
        .map(|t| {
            t.split([';', '|'])
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for t in &tags {
        check_tag(t).map_err(|e| e.to_string())?;
    }
    let num = |name: &str| -> Result<Option<f64>, String> {
        get(name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| format!("{name} {v:?} is not a number"))
            })
            .transpose()
    };
    let home = match (num("lat")?, num("lon")?) {
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Some((lat, lon))
        }
        (Some(_), Some(_)) => return Err("lat/lon out of range".into()),
        (None, None) => None,
        _ => return Err("lat and lon go together".into()),
    };
    let profiling = match get("profiling").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "no" | "0") => false,
        Some("true" | "yes" | "1") => true,
        Some(v) => return Err(format!("profiling {v:?} is not true or false")),
    };
    Ok(CrmRow {
        member_id,
        identities,
        tags,
        home_city: get("home_city").map(str::to_owned),
        home,
        profiling,
    })
}

/// Imports CSV from `input`; `progress` is called with the rows read so far after each chunk.
pub async fn import(
    store: &AnyStore,
    input: impl std::io::Read,
    now_ms: i64,
    mut progress: impl FnMut(u64),
) -> DomainResult<ImportReport> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| DomainError::Invalid(format!("the CSV header can't be read: {e}")))?
        .clone();
    if !header.iter().any(|h| h.eq_ignore_ascii_case("member_id")) {
        return Err(DomainError::Invalid(
            "the CSV header must have a member_id column (and optionally phone, email, wechat_openid, app_user, tags, home_city, lat, lon, profiling)".into(),
        ));
    }
    let mut report = ImportReport::default();
    let mut chunk: Vec<CrmRow> = Vec::with_capacity(CHUNK);
    let reject = |report: &mut ImportReport, line: u64, reason: String| {
        report.rejected += 1;
        if report.rejections.len() < REPORTED {
            report.rejections.push(Rejection { line, reason });
        }
    };
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 2;
        report.rows += 1;
        match rec {
            Err(e) => reject(&mut report, line, format!("not CSV: {e}")),
            Ok(rec) => match parse_row(&header, &rec) {
                Ok(row) => chunk.push(row),
                Err(reason) => reject(&mut report, line, reason),
            },
        }
        if chunk.len() == CHUNK {
            write_chunk(store, &chunk, now_ms, &mut report).await?;
            chunk.clear();
            progress(report.rows);
        }
    }
    write_chunk(store, &chunk, now_ms, &mut report).await?;
    progress(report.rows);
    Ok(report)
}

async fn write_chunk(
    store: &AnyStore,
    rows: &[CrmRow],
    now_ms: i64,
    report: &mut ImportReport,
) -> DomainResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (created, updated) = on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        let (mut created, mut updated) = (0u64, 0u64);
        for r in rows {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT shopper FROM identities WHERE kind = 'member' AND value = $1",
            )
            .bind(&r.member_id)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match existing {
                Some(id) => {
                    updated += 1;
                    id
                }
                None => {
                    let id = new_id("shp-");
                    sqlx::query(
                        "INSERT INTO shoppers (id, profiling, opted_out, created_ms, updated_ms, \
                         home_city, home_lat, home_lon) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
                    )
                    .bind(&id)
                    .bind(r.profiling)
                    .bind(false)
                    .bind(now_ms)
                    .bind(&r.home_city)
                    .bind(r.home.map(|h| h.0))
                    .bind(r.home.map(|h| h.1))
                    .execute(&mut *tx)
                    .await?;
                    created += 1;
                    id
                }
            };
            link_in_tx!(tx, &id, &r.identities, &r.tags, "import", now_ms);
        }
        tx.commit().await?;
        Ok::<_, DomainError>((created, updated))
    })?;
    report.created += created;
    report.updated += updated;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(header: &str, line: &str) -> Result<CrmRow, String> {
        let h = csv::StringRecord::from(header.split(',').collect::<Vec<_>>());
        let r = csv::StringRecord::from(line.split(',').collect::<Vec<_>>());
        parse_row(&h, &r)
    }

    #[test]
    fn rows_parse_with_columns_in_any_order() {
        let r = row(
            "tags,member_id,phone,lat,lon,profiling",
            "VIP;snacker,M1,+86 138 0013 8000,31.2,121.4,yes",
        )
        .unwrap();
        assert_eq!(r.member_id, "M1");
        assert_eq!(r.tags, vec!["vip", "snacker"]);
        assert_eq!(r.home, Some((31.2, 121.4)));
        assert!(r.profiling);
        let phone = r.identities.iter().find(|i| i.kind == "phone").unwrap();
        assert!(phone.value.starts_with("sha256:"), "phones are hashed");
    }

    #[test]
    fn bad_rows_say_why() {
        assert!(
            row("member_id,phone", ",123456")
                .unwrap_err()
                .contains("member_id")
        );
        assert!(
            row("member_id,phone", "M1,call me")
                .unwrap_err()
                .contains("phone")
        );
        assert!(
            row("member_id,lat", "M1,31")
                .unwrap_err()
                .contains("together")
        );
        assert!(
            row("member_id,lat,lon", "M1,91,0")
                .unwrap_err()
                .contains("range")
        );
        assert!(
            row("member_id,tags", "M1,Bad Tag")
                .unwrap_err()
                .contains("tag")
        );
        assert!(
            row("member_id,profiling", "M1,maybe")
                .unwrap_err()
                .contains("profiling")
        );
    }
}
