//! Campaigns in the database, and the in-memory list the engine matches triggers against.

use super::spec::{Campaign, CampaignSpec};
use crate::error::{DomainError, DomainResult};
use crate::on_pool;
use crate::store::AnyStore;
use serde::Serialize;
use std::sync::{Arc, RwLock};

/// A campaign with its counters, as the API lists it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CampaignRow {
    pub spec: CampaignSpec,
    pub active: bool,
    pub issued: i64,
    pub created_ms: i64,
}

/// Creates a campaign; an existing id is a conflict.
pub async fn create(store: &AnyStore, spec: CampaignSpec, now_ms: i64) -> DomainResult<Campaign> {
    let c = Campaign::new(spec)?;
    let json = serde_json::to_string(&c.spec).map_err(crate::store::StoreError::from)?;
    let budget = c.spec.budget.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    let n = on_pool!(store, pool => sqlx::query(
        "INSERT INTO campaigns (id, name, spec, active, budget, issued, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&c.spec.id)
    .bind(&c.spec.name)
    .bind(&json)
    .bind(true)
    .bind(budget)
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(DomainError::Conflict(format!(
            "campaign {} exists already",
            c.spec.id
        )));
    }
    Ok(c)
}

/// Turns a campaign on or off.
pub async fn set_active(store: &AnyStore, id: &str, active: bool) -> DomainResult<()> {
    let n = on_pool!(store, pool => sqlx::query("UPDATE campaigns SET active = $2 WHERE id = $1")
        .bind(id)
        .bind(active)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(DomainError::NotFound(format!("campaign {id}")));
    }
    Ok(())
}

pub async fn list(store: &AnyStore) -> DomainResult<Vec<CampaignRow>> {
    let rows: Vec<(String, bool, i64, i64)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT spec, active, issued, created_ms FROM campaigns ORDER BY created_ms, id",
    )
    .fetch_all(pool)
    .await)?;
    rows.into_iter()
        .map(|(spec, active, issued, created_ms)| {
            Ok(CampaignRow {
                spec: serde_json::from_str(&spec).map_err(crate::store::StoreError::from)?,
                active,
                issued,
                created_ms,
            })
        })
        .collect()
}

pub async fn get(store: &AnyStore, id: &str) -> DomainResult<CampaignRow> {
    list(store)
        .await?
        .into_iter()
        .find(|c| c.spec.id == id)
        .ok_or_else(|| DomainError::NotFound(format!("campaign {id}")))
}

/// The active campaigns, shared by the engine's workers; [`Catalog::reload`] re-reads them (the
/// engine does so periodically, and the API after a change, so every worker converges).
#[derive(Debug, Default)]
pub struct Catalog {
    active: RwLock<Arc<Vec<Campaign>>>,
}

impl Catalog {
    pub async fn reload(&self, store: &AnyStore) -> DomainResult<usize> {
        let mut v = Vec::new();
        for row in list(store).await? {
            if row.active {
                match Campaign::new(row.spec) {
                    Ok(c) => v.push(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "stored campaign no longer validates; skipped")
                    }
                }
            }
        }
        let n = v.len();
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(v);
        Ok(n)
    }

    pub fn active(&self) -> Arc<Vec<Campaign>> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
