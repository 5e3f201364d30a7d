//! Shopper profiles: opt-in registration, linked identities, tags, consent, merge and erase.
//!
//! A profile is created when a shopper opts in through the retailer's app (the cloud issues the
//! Eddystone-EID identity key the app will advertise with, or accepts the app's own), or imported
//! from the CRM ([`super::import`]) before the shopper has the app; registering with a member card
//! or phone that an imported profile already holds attaches the key to that profile.
//!
//! Identities (`kind`, `value`): `member`, `phone` (kept only as a SHA-256 of its digits),
//! `app_user`, `email` (lower-cased), `wallet_serial`, and social ids as `wechat_openid` or
//! `social:<network>`. An identity belongs to one profile; linking it to a second is a conflict,
//! resolved by merging the two profiles.
//!
//! Consent: `profiling = false` means the shopper refused profiling (PIPL art. 24): no
//! tags by rules, no segment targeting, only non-personalised offers. `opted_out` stops every
//! coupon at once and removes the key from EID resolution. Erase deletes the profile, its
//! identities and tags; its visits stay for footfall, de-linked (`shopper = NULL`).

use crate::error::{DomainError, DomainResult};
use crate::identity::resolver::RegisteredKey;
use crate::on_pool;
use crate::store::{AnyStore, BeginWrite};
use dwell_shared::eid::{IdentityKey, MAX_EXPONENT};
use dwell_shared::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::Arc;

/// Inserts identities and tags of profile `$id` inside the open transaction `$tx` (either
/// backend; used inside [`on_pool!`]); existing ones are kept.
macro_rules! link_in_tx {
    ($tx:ident, $id:expr, $identities:expr, $tags:expr, $source:expr, $now:expr) => {
        for idn in $identities {
            sqlx::query(
                "INSERT INTO identities (kind, value, shopper, added_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, value) DO NOTHING",
            )
            .bind(&idn.kind)
            .bind(&idn.value)
            .bind($id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        for t in $tags {
            sqlx::query(
                "INSERT INTO shopper_tags (shopper, tag, source, set_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (shopper, tag) DO NOTHING",
            )
            .bind($id)
            .bind(t)
            .bind($source)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    };
}
pub(crate) use link_in_tx;

/// Rotation exponent given to apps that don't ask for one: the EID changes every 1,024 s.
pub const DEFAULT_EXPONENT: u8 = 10;

/// Identity kinds besides `social:<network>`.
pub const IDENTITY_KINDS: &[&str] = &[
    "member",
    "phone",
    "app_user",
    "email",
    "wallet_serial",
    "wechat_openid",
];

/// An identity to link, as given (phones and e-mails are normalised before they are stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityLink {
    /// `member`, `phone`, `app_user`, `email`, `wallet_serial`, `wechat_openid` or
    /// `social:<network>`.
    pub kind: String,
    pub value: String,
}

/// `POST /api/v1/shoppers`: an opt-in from the app.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The app's own identity key (32 hex digits); omitted: the cloud issues one.
    #[serde(default)]
    pub identity_key: Option<String>,
    /// EID rotation exponent K (0..=15); default 10 (every 1,024 s).
    #[serde(default)]
    pub exponent: Option<u8>,
    /// The app's beacon time counter now, if it doesn't use Unix time.
    #[serde(default)]
    pub beacon_time: Option<u32>,
    /// Consent to profiling (personalised offers). Default: true (the app asked).
    #[serde(default)]
    pub profiling: Option<bool>,
    #[serde(default)]
    pub identities: Vec<IdentityLink>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub home_city: Option<String>,
    #[serde(default)]
    pub home_lat: Option<f64>,
    #[serde(default)]
    pub home_lon: Option<f64>,
}

/// What the app keeps after registering: its EID parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Registered {
    pub shopper: String,
    /// 32 hex digits: the key the app advertises its Eddystone-EID with.
    pub identity_key: String,
    pub exponent: u8,
    /// Beacon time minus Unix seconds (0 for apps that count in Unix time).
    pub clock_offset_s: i64,
    /// Whether an existing (CRM-imported) profile was taken over by this opt-in.
    pub existing_profile: bool,
}

/// A tag on a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tag {
    pub tag: String,
    /// `rule`, `api` or `import`.
    pub source: String,
    pub set_ms: i64,
}

/// A profile as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub id: String,
    /// Whether the app has opted in (an EID key is registered).
    pub app: bool,
    pub profiling: bool,
    pub opted_out: bool,
    pub created_ms: i64,
    pub home_city: Option<String>,
    pub home_lat: Option<f64>,
    pub home_lon: Option<f64>,
    pub identities: Vec<IdentityLink>,
    pub tags: Vec<Tag>,
}

/// Checks and normalises an identity: phones become `sha256:<hex>` of their digits (a leading
/// `+` kept), e-mails are lower-cased; kinds are checked.
pub fn normalise_identity(link: &IdentityLink) -> DomainResult<IdentityLink> {
    let kind = link.kind.trim().to_ascii_lowercase();
    let value = link.value.trim();
    let kind_ok = IDENTITY_KINDS.contains(&kind.as_str())
        || kind.strip_prefix("social:").is_some_and(|n| {
            !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !kind_ok {
        return Err(DomainError::Invalid(format!(
            "identity kind {kind:?} is not one of {} or social:<network>",
            IDENTITY_KINDS.join(", ")
        )));
    }
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!(
            "identity {kind} must be 1–256 printable characters"
        )));
    }
    let value = match kind.as_str() {
        "phone" => hash_phone(value)?,
        "email" => value.to_lowercase(),
        _ => value.to_owned(),
    };
    Ok(IdentityLink { kind, value })
}

/// `sha256:<hex>` of a phone number's digits (with a leading `+`): the number itself is never
/// stored. Spaces, dashes, dots and parentheses are ignored.
pub fn hash_phone(phone: &str) -> DomainResult<String> {
    if phone.starts_with("sha256:") && phone.len() == 71 {
        return Ok(phone.to_owned()); // already hashed (CRM exports may carry hashes)
    }
    let plus = phone.starts_with('+');
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let rest_ok = phone
        .chars()
        .skip(usize::from(plus))
        .all(|c| c.is_ascii_digit() || " -.()".contains(c));
    if !rest_ok || !(5..=15).contains(&digits.len()) {
        return Err(DomainError::Invalid(
            "phone must be 5–15 digits, optionally with a leading + and spaces, dashes, dots or parentheses".into(),
        ));
    }
    let norm = if plus { format!("+{digits}") } else { digits };
    Ok(format!(
        "sha256:{}",
        hex::encode(&Sha256::digest(norm.as_bytes()))
    ))
}

/// Tags are lowercase `[a-z0-9][a-z0-9_:.-]*`, at most 64 characters (the segment grammar's).
pub fn check_tag(tag: &str) -> DomainResult<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && tag.as_bytes()[0].is_ascii_alphanumeric()
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_:.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "tag {tag:?} must be lowercase letters, digits and _ : . - (starting with a letter or digit), at most 64"
        )))
    }
}

/// A fresh random id with a prefix: `shp-` + 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    format!("{prefix}{}", hex::encode(&b))
}

fn random_key() -> IdentityKey {
    let mut k = [0u8; 16];
    getrandom::fill(&mut k).expect("the operating system's random source failed");
    k
}

/// Registers an opt-in. If one of the given identities already belongs to a profile without an
/// app key (a CRM import), that profile is taken over; if it belongs to a profile that has a key
/// already, it is a conflict.
pub async fn register(
    store: &AnyStore,
    reg: &Registration,
    now_ms: i64,
) -> DomainResult<Registered> {
    let exponent = reg.exponent.unwrap_or(DEFAULT_EXPONENT);
    if exponent > MAX_EXPONENT {
        return Err(DomainError::Invalid(format!(
            "exponent must be 0..={MAX_EXPONENT} (the EID rotates every 2^K seconds)"
        )));
    }
    let key = match &reg.identity_key {
        Some(k) => hex::decode_array::<16>(k.trim()).map_err(|e| {
            DomainError::Invalid(format!("identity_key must be 32 hex digits: {e}"))
        })?,
        None => random_key(),
    };
    let clock_offset_s = reg
        .beacon_time
        .map_or(0, |bt| i64::from(bt) - now_ms.div_euclid(1000));
    let identities = reg
        .identities
        .iter()
        .map(normalise_identity)
        .collect::<DomainResult<Vec<_>>>()?;
    for t in &reg.tags {
        check_tag(t)?;
    }
    if let (Some(lat), Some(lon)) = (reg.home_lat, reg.home_lon)
        && !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
    {
        return Err(DomainError::Invalid(
            "home_lat/home_lon out of range".into(),
        ));
    }
    let key_hex = hex::encode(&key);
    let profiling = reg.profiling.unwrap_or(true);
    let (id, existing) = on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        // An imported profile that one of the identities points to?
        let mut existing: Option<(String, Option<String>)> = None;
        for idn in &identities {
            let row = sqlx::query(
                "SELECT s.id, s.identity_key FROM identities i JOIN shoppers s ON s.id = i.shopper \
                 WHERE i.kind = $1 AND i.value = $2",
            )
            .bind(&idn.kind)
            .bind(&idn.value)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let found: (String, Option<String>) = (row.try_get(0)?, row.try_get(1)?);
                match &existing {
                    Some((id, _)) if *id != found.0 => {
                        return Err(DomainError::Conflict(
                            "the identities given belong to two different profiles: merge them first".into(),
                        ));
                    }
                    _ => existing = Some(found),
                }
            }
        }
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM shoppers WHERE identity_key = $1")
                .bind(&key_hex)
                .fetch_optional(&mut *tx)
                .await?;
        if taken.is_some() {
            return Err(DomainError::Conflict("this identity key is registered already".into()));
        }
        let (id, was_existing) = match existing {
            Some((_, Some(_))) => {
                return Err(DomainError::Conflict(
                    "a profile with these identities has opted in with an app already".into(),
                ));
            }
            Some((id, None)) => {
                sqlx::query(
                    "UPDATE shoppers SET identity_key = $2, exponent = $3, clock_offset_s = $4, \
                     profiling = $5, opted_out = $6, updated_ms = $7 WHERE id = $1",
                )
                .bind(&id)
                .bind(&key_hex)
                .bind(i32::from(exponent))
                .bind(clock_offset_s)
                .bind(profiling)
                .bind(false)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                (id, true)
            }
            None => {
                let id = new_id("shp-");
                sqlx::query(
                    "INSERT INTO shoppers (id, identity_key, exponent, clock_offset_s, profiling, \
                     opted_out, created_ms, updated_ms, home_city, home_lat, home_lon) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10)",
                )
                .bind(&id)
                .bind(&key_hex)
                .bind(i32::from(exponent))
                .bind(clock_offset_s)
                .bind(profiling)
                .bind(false)
                .bind(now_ms)
                .bind(&reg.home_city)
                .bind(reg.home_lat)
                .bind(reg.home_lon)
                .execute(&mut *tx)
                .await?;
                (id, false)
            }
        };
        link_in_tx!(tx, &id, &identities, &reg.tags, "api", now_ms);
        tx.commit().await?;
        Ok::<_, DomainError>((id, was_existing))
    })?;
    Ok(Registered {
        shopper: id,
        identity_key: key_hex,
        exponent,
        clock_offset_s,
        existing_profile: existing,
    })
}

/// Every opted-in shopper's EID parameters, for the resolver.
pub async fn registered_keys(store: &AnyStore) -> DomainResult<Vec<RegisteredKey>> {
    keys_where(store, None).await
}

/// The registered key of one shopper (None if they have no app key or opted out).
pub async fn registered_key(store: &AnyStore, id: &str) -> DomainResult<Option<RegisteredKey>> {
    Ok(keys_where(store, Some(id)).await?.pop())
}

async fn keys_where(store: &AnyStore, id: Option<&str>) -> DomainResult<Vec<RegisteredKey>> {
    let rows: Vec<(String, String, i32, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, identity_key, exponent, clock_offset_s FROM shoppers \
         WHERE ($1 IS NULL OR id = $1) AND identity_key IS NOT NULL AND exponent IS NOT NULL \
         AND opted_out = $2 ORDER BY id",
    )
    .bind(id)
    .bind(false)
    .fetch_all(pool)
    .await)?;
    rows.into_iter()
        .map(|(id, key, exp, off)| {
            Ok(RegisteredKey {
                shopper: Arc::from(id),
                key: hex::decode_array::<16>(&key).map_err(|e| {
                    DomainError::Invalid(format!("stored identity key is not hex: {e}"))
                })?,
                exponent: exp.clamp(0, i32::from(MAX_EXPONENT)) as u8,
                clock_offset_s: off,
            })
        })
        .collect()
}

/// One profile with its identities and tags.
pub async fn get(store: &AnyStore, id: &str) -> DomainResult<Profile> {
    type Row = (
        String,
        Option<String>,
        bool,
        bool,
        i64,
        Option<String>,
        Option<f64>,
        Option<f64>,
    );
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, identity_key, profiling, opted_out, created_ms, home_city, home_lat, home_lon \
         FROM shoppers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    let Some((id, key, profiling, opted_out, created_ms, home_city, home_lat, home_lon)) = row
    else {
        return Err(DomainError::NotFound(format!("shopper {id}")));
    };
    let identities: Vec<(String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT kind, value FROM identities WHERE shopper = $1 ORDER BY kind, value",
    )
    .bind(&id)
    .fetch_all(pool)
    .await)?;
    Ok(Profile {
        tags: tags(store, &id).await?,
        id,
        app: key.is_some(),
        profiling,
        opted_out,
        created_ms,
        home_city,
        home_lat,
        home_lon,
        identities: identities
            .into_iter()
            .map(|(kind, value)| IdentityLink { kind, value })
            .collect(),
    })
}

pub async fn exists(store: &AnyStore, id: &str) -> DomainResult<bool> {
    let n: i64 = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT count(*) FROM shoppers WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await)?;
    Ok(n > 0)
}

/// Consent flags of a shopper: `(profiling, opted_out)`, None if there is no such profile.
pub async fn consent(store: &AnyStore, id: &str) -> DomainResult<Option<(bool, bool)>> {
    Ok(on_pool!(store, pool => sqlx::query_as(
        "SELECT profiling, opted_out FROM shoppers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?)
}

/// Opt out (true) or back in (false); also sets profiling consent when given.
pub async fn set_consent(
    store: &AnyStore,
    id: &str,
    opted_out: Option<bool>,
    profiling: Option<bool>,
    now_ms: i64,
) -> DomainResult<()> {
    let n = on_pool!(store, pool => sqlx::query(
        "UPDATE shoppers SET opted_out = COALESCE($2, opted_out), \
         profiling = COALESCE($3, profiling), updated_ms = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(opted_out)
    .bind(profiling)
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(DomainError::NotFound(format!("shopper {id}")));
    }
    if profiling == Some(false) {
        // Refusing profiling removes what profiling produced.
        on_pool!(store, pool => sqlx::query(
            "DELETE FROM shopper_tags WHERE shopper = $1 AND source = 'rule'",
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Erases a profile: identities, tags, tokens and sightings go with it; visits and coupons stay,
/// de-linked, for footfall and campaign totals.
pub async fn erase(store: &AnyStore, id: &str) -> DomainResult<()> {
    let n = on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE visits SET shopper = NULL WHERE shopper = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE coupons SET shopper = NULL WHERE shopper = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM identities WHERE shopper = $1",
            "DELETE FROM shopper_tags WHERE shopper = $1",
            "DELETE FROM app_sightings WHERE shopper = $1",
            "DELETE FROM api_tokens WHERE shopper = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let n = sqlx::query("DELETE FROM shoppers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok::<_, DomainError>(n)
    })?;
    if n == 0 {
        return Err(DomainError::NotFound(format!("shopper {id}")));
    }
    Ok(())
}

/// Links an identity; linking one that belongs to another profile is a conflict (merge instead).
pub async fn link_identity(
    store: &AnyStore,
    id: &str,
    link: &IdentityLink,
    now_ms: i64,
) -> DomainResult<IdentityLink> {
    let link = normalise_identity(link)?;
    if !exists(store, id).await? {
        return Err(DomainError::NotFound(format!("shopper {id}")));
    }
    let owner: Option<String> = on_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO identities (kind, value, shopper, added_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(&link.kind)
        .bind(&link.value)
        .bind(id)
        .bind(now_ms)
        .execute(pool)
        .await?;
        sqlx::query_scalar("SELECT shopper FROM identities WHERE kind = $1 AND value = $2")
            .bind(&link.kind)
            .bind(&link.value)
            .fetch_optional(pool)
            .await
    })?;
    match owner {
        Some(o) if o == id => Ok(link),
        Some(o) => Err(DomainError::Conflict(format!(
            "this {} belongs to profile {o}: merge the profiles to combine them",
            link.kind
        ))),
        None => Err(DomainError::Conflict(
            "the identity was removed concurrently".into(),
        )),
    }
}

/// Merges profile `from` into `into`: identities, tags, visits, coupons and sightings move; `from`
/// is deleted. If only `from` has an app key, `into` takes it.
pub async fn merge(store: &AnyStore, into: &str, from: &str, now_ms: i64) -> DomainResult<()> {
    if into == from {
        return Err(DomainError::Invalid(
            "cannot merge a profile into itself".into(),
        ));
    }
    for id in [into, from] {
        if !exists(store, id).await? {
            return Err(DomainError::NotFound(format!("shopper {id}")));
        }
    }
    on_pool!(store, pool => {
        let mut tx = pool.begin_write().await?;
        let keys: Vec<(String, Option<String>, Option<i32>, i64)> = sqlx::query_as(
            "SELECT id, identity_key, exponent, clock_offset_s FROM shoppers WHERE id = $1 OR id = $2",
        )
        .bind(into)
        .bind(from)
        .fetch_all(&mut *tx)
        .await?;
        let into_has_key = keys.iter().any(|k| k.0 == into && k.1.is_some());
        let from_key = keys.iter().find(|k| k.0 == from).cloned();
        for sql in [
            "UPDATE identities SET shopper = $1 WHERE shopper = $2",
            "UPDATE visits SET shopper = $1 WHERE shopper = $2",
            "UPDATE coupons SET shopper = $1 WHERE shopper = $2",
            "UPDATE app_sightings SET shopper = $1 WHERE shopper = $2",
            "UPDATE api_tokens SET shopper = $1 WHERE shopper = $2",
        ] {
            sqlx::query(sql).bind(into).bind(from).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO shopper_tags (shopper, tag, source, set_ms) \
             SELECT $1, tag, source, set_ms FROM shopper_tags WHERE shopper = $2 \
             ON CONFLICT (shopper, tag) DO NOTHING",
        )
        .bind(into)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM shopper_tags WHERE shopper = $1")
            .bind(from)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM shoppers WHERE id = $1")
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if let Some((_, Some(key), exp, off)) = from_key
            && !into_has_key
        {
            sqlx::query(
                "UPDATE shoppers SET identity_key = $2, exponent = $3, clock_offset_s = $4 WHERE id = $1",
            )
            .bind(into)
            .bind(key)
            .bind(exp)
            .bind(off)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE shoppers SET updated_ms = $2 WHERE id = $1")
            .bind(into)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, DomainError>(())
    })
}

pub async fn tags(store: &AnyStore, id: &str) -> DomainResult<Vec<Tag>> {
    let rows: Vec<(String, String, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT tag, source, set_ms FROM shopper_tags WHERE shopper = $1 ORDER BY tag",
    )
    .bind(id)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(tag, source, set_ms)| Tag {
            tag,
            source,
            set_ms,
        })
        .collect())
}

/// Sets a tag (`source`: `api`, `rule` or `import`); an existing tag keeps its first source.
pub async fn set_tag(
    store: &AnyStore,
    id: &str,
    tag: &str,
    source: &str,
    now_ms: i64,
) -> DomainResult<()> {
    check_tag(tag)?;
    if !exists(store, id).await? {
        return Err(DomainError::NotFound(format!("shopper {id}")));
    }
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO shopper_tags (shopper, tag, source, set_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (shopper, tag) DO NOTHING",
    )
    .bind(id)
    .bind(tag)
    .bind(source)
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn remove_tag(store: &AnyStore, id: &str, tag: &str) -> DomainResult<bool> {
    let n = on_pool!(store, pool => sqlx::query(
        "DELETE FROM shopper_tags WHERE shopper = $1 AND tag = $2",
    )
    .bind(id)
    .bind(tag)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_hashed_by_their_digits() {
        let a = hash_phone("+86 138-0013-8000").unwrap();
        let b = hash_phone("+8613800138000").unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == 71);
        assert_ne!(a, hash_phone("8613800138000").unwrap(), "+ is significant");
        assert!(!a.contains("13800138000"));
        assert!(hash_phone("call me").is_err());
        assert!(hash_phone("1234").is_err());
        assert_eq!(hash_phone(&a).unwrap(), a, "a hash stays a hash");
    }

    #[test]
    fn identities_are_checked_and_normalised() {
        let l = |k: &str, v: &str| IdentityLink {
            kind: k.into(),
            value: v.into(),
        };
        assert_eq!(
            normalise_identity(&l("EMAIL", " Ann@Example.COM ")).unwrap(),
            l("email", "ann@example.com")
        );
        assert!(normalise_identity(&l("social:weibo", "u1")).is_ok());
        assert!(normalise_identity(&l("social:", "u1")).is_err());
        assert!(normalise_identity(&l("passport", "X1")).is_err());
        assert!(normalise_identity(&l("member", "")).is_err());
        assert!(normalise_identity(&l("member", "a\u{0}b")).is_err());
    }

    #[test]
    fn tags_follow_the_segment_grammar() {
        for ok in ["vip", "cosmetics-lover", "tier:gold", "a.b_c"] {
            check_tag(ok).unwrap();
        }
        for bad in ["", "VIP", "-x", "a b", &"x".repeat(65)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
