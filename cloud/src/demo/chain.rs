//! The demo chain: stores, opted-in shoppers, campaigns, and each pilot store's gateway config.

use super::DemoOptions;
use crate::campaigns::catalog;
use crate::campaigns::spec::CampaignSpec;
use crate::on_pool;
use crate::profiles::shoppers::{self, IdentityLink, Registration};
use crate::store::{AnyStore, Store};
use anyhow::Context;
use dwell_shared::hex;
use std::path::Path;

/// The floor plan every demo store uses (receivers and zones in metres).
pub const EXAMPLE_STORE: &str = include_str!("../../../deploy/edge/example-store.toml");

/// A store of the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoStore {
    pub id: String,
    pub name: String,
    pub city: String,
    /// The province's name (footfall by region).
    pub region: String,
    pub lat: f64,
    pub lon: f64,
    pub opened: Option<String>,
    /// The gateway id (pilot stores only run one).
    pub gateway: String,
    /// The store's iBeacon major (app-reported sightings name the store by it).
    pub beacon_major: i32,
}

/// Stores in the demo chain (the expansion map's chain, generated from real city positions).
pub const CHAIN_STORES: usize = 120;
/// Online customers of the demo chain (the expansion map's demand).
pub const ONLINE_CUSTOMERS: usize = 100_000;

/// Everything the demo installs.
#[derive(Debug)]
pub struct Chain {
    pub all_stores: Vec<DemoStore>,
    /// The stores with a live simulated gateway (and history): the first stores of distinct
    /// cities.
    pub pilots: Vec<DemoStore>,
    pub layout: dwell_shared::wire::StoreConfig,
    pub app_shoppers: u32,
    pub seed: u64,
    /// The chain, its in-store visits and online orders, for the expansion map.
    pub expansion: Option<std::sync::Arc<crate::expansion::Dataset>>,
}

impl Chain {
    pub fn new(opts: &DemoOptions) -> anyhow::Result<Chain> {
        use crate::expansion::regions::{Boundaries, BuiltinBoundaries};
        let generated = crate::expansion::demo::generate(&crate::expansion::demo::DemoOptions {
            seed: opts.seed,
            stores: CHAIN_STORES,
            customers: ONLINE_CUSTOMERS,
        });
        let provinces = Boundaries::builtin(BuiltinBoundaries::ChinaProvinces)
            .context("the shipped province boundaries")?;
        let all_stores: Vec<DemoStore> = generated
            .stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let region = provinces
                    .locate(s.lat, s.lon)
                    .map(|r| provinces.regions()[r].name.clone())
                    .unwrap_or_else(|| "?".into());
                DemoStore {
                    id: s.id.clone(),
                    name: format!("Dwell Mart {}", s.name),
                    city: s.name.split(" #").next().unwrap_or(&s.name).to_owned(),
                    region,
                    lat: s.lat,
                    lon: s.lon,
                    opened: s.opened.clone(),
                    gateway: format!("gw-{}", s.id.to_lowercase()),
                    beacon_major: i as i32 + 1,
                }
            })
            .collect();
        let mut pilots: Vec<DemoStore> = Vec::new();
        for s in &all_stores {
            if pilots.len() < opts.stores as usize && !pilots.iter().any(|p| p.city == s.city) {
                pilots.push(s.clone());
            }
        }
        let example =
            dwell_edge::config::Config::from_toml_str(EXAMPLE_STORE, "example-store.toml")
                .context("the example store layout")?;
        Ok(Chain {
            all_stores,
            pilots,
            layout: example.store_layout().clone(),
            app_shoppers: opts.app_shoppers,
            seed: opts.seed,
            expansion: Some(std::sync::Arc::new(generated.dataset())),
        })
    }

    /// Stores, gateways, shoppers and campaigns into the database (idempotent: a second start on
    /// the same data directory keeps what is there).
    pub async fn install(&self, store: &AnyStore) -> anyhow::Result<()> {
        let layout = serde_json::to_string(&self.layout)?;
        for s in &self.all_stores {
            on_pool!(store, pool => sqlx::query(
                "INSERT INTO stores (id, name, tz, lat, lon, region, opened, layout, beacon_major) \
                 VALUES ($1, $2, 'Asia/Shanghai', $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&s.id)
            .bind(&s.name)
            .bind(s.lat)
            .bind(s.lon)
            .bind(&s.region)
            .bind(&s.opened)
            .bind(&layout)
            .bind(s.beacon_major)
            .execute(pool)
            .await
            .map(|_| ()))?;
        }
        for p in &self.pilots {
            store.register_gateway(&p.id, &p.gateway).await?;
        }
        let registered: i64 = on_pool!(store, pool => sqlx::query_scalar(
            "SELECT count(*) FROM shoppers",
        )
        .fetch_one(pool)
        .await)?;
        if registered == 0 {
            let now = crate::ingest::now_ms();
            for i in 0..self.app_shoppers {
                let key = dwell_edge::simulate::pool_key(self.seed, i);
                let home = &self.pilots[i as usize % self.pilots.len()];
                let jitter = |k: u32| {
                    ((i.wrapping_mul(2_654_435_761).wrapping_add(k) % 1000) as f64 - 500.0) / 5000.0
                };
                let mut identities = vec![IdentityLink {
                    kind: "member".into(),
                    value: format!("M{:06}", 100_000 + i),
                }];
                if i % 3 == 0 {
                    identities.push(IdentityLink {
                        kind: "wechat_openid".into(),
                        value: format!("o{}", hex::encode(&key[..6])),
                    });
                }
                let reg = Registration {
                    identity_key: Some(hex::encode(&key)),
                    exponent: Some(10),
                    // Most opted-in shoppers also allow profiling; some refuse it (they still get
                    // the non-personalised offers).
                    profiling: Some(i % 7 != 0),
                    identities,
                    home_city: Some(home.city.clone()),
                    home_lat: Some(home.lat + jitter(1)),
                    home_lon: Some(home.lon + jitter(2)),
                    ..Registration::default()
                };
                shoppers::register(store, &reg, now).await?;
            }
        }
        // Segments of the tags the demo's rules give (campaign results are broken down by them).
        for (id, expression) in [
            ("cosmetics-lovers", "cosmetics-lover"),
            ("snackers", "snacker"),
        ] {
            let now = crate::ingest::now_ms();
            match crate::profiles::segment::define(store, id, expression, now).await {
                Ok(_) | Err(crate::error::DomainError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for spec in campaigns() {
            match catalog::create(store, spec, crate::ingest::now_ms()).await {
                Ok(_) | Err(crate::error::DomainError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// An HQ token for the dashboard: `token` if given, else a new random one.
    pub async fn hq_token(
        &self,
        store: &AnyStore,
        token: Option<String>,
    ) -> anyhow::Result<String> {
        match token {
            None => Ok(crate::api::auth::create_token(
                store,
                crate::api::Role::Hq,
                None,
                None,
                "dwell-cloud demo",
            )
            .await?),
            Some(t) => {
                anyhow::ensure!(t.len() >= 16, "--token must be at least 16 characters");
                let hash = crate::api::auth::token_hash(&t);
                on_pool!(store, pool => sqlx::query(
                    "INSERT INTO api_tokens (token_sha256, role, store, shopper, label, created_ms) \
                     VALUES ($1, 'hq', NULL, NULL, 'dwell-cloud demo', $2) ON CONFLICT (token_sha256) DO NOTHING",
                )
                .bind(&hash)
                .bind(crate::ingest::now_ms())
                .execute(pool)
                .await
                .map(|_| ()))?;
                Ok(t)
            }
        }
    }

    /// The gateway config of pilot `i`: the example floor plan, the simulator as its radio, the
    /// embedded broker, an outbox in the data directory, no /metrics port.
    pub fn gateway_config(
        &self,
        pilot: &DemoStore,
        i: usize,
        broker_port: u16,
        dir: &Path,
        opts: &DemoOptions,
    ) -> anyhow::Result<dwell_edge::config::Config> {
        let text = EXAMPLE_STORE.replacen(
            "[gateway]\nid = \"gw-1\"\nstore = \"store-042\"\ntimezone = \"Europe/Paris\"",
            &format!(
                "[gateway]\nid = \"{}\"\nstore = \"{}\"\ntimezone = \"Asia/Shanghai\"",
                pilot.gateway, pilot.id
            ),
            1,
        );
        anyhow::ensure!(
            text != EXAMPLE_STORE,
            "example-store.toml's [gateway] section changed"
        );
        let text = format!(
            "{text}\n[broker]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\n\n[outbox]\npath = \"{}\"\n\n[metrics]\nlisten = \"\"\n\n[[sources]]\nkind = \"simulator\"\nshoppers = {}\nseed = {}\napp_key_pool = {}\napp_key_seed = {}\n",
            dir.join(format!("outbox-{}", pilot.gateway)).display(),
            opts.shoppers_per_hour,
            opts.seed * 1000 + i as u64,
            self.app_shoppers,
            self.seed,
        );
        Ok(dwell_edge::config::Config::from_toml_str(
            &text,
            &pilot.gateway,
        )?)
    }
}

/// The sample campaigns.
pub fn campaigns() -> Vec<CampaignSpec> {
    let specs = [
        r#"{"id":"hello-today","name":"Hello: 10% off for today's visit",
            "trigger":{"kind":"entry"},
            "offer":{"title":"10% off your basket today","expires_after_s":14400},
            "cap":{"per_shopper":1,"window_s":86400},"holdout_permille":100}"#,
        r#"{"id":"drinks-30s","name":"Drinks: 30 seconds at the fridges",
            "zones":["drinks"],"trigger":{"kind":"dwell","seconds":30},
            "offer":{"title":"Two cold drinks for the price of one","expires_after_s":3600},
            "cap":{"per_shopper":1,"window_s":86400},"budget":50000,"holdout_permille":150}"#,
        r#"{"id":"skincare-2min","name":"Skincare: 2 minutes at the cosmetics wall",
            "zones":["cosmetics"],"trigger":{"kind":"dwell","seconds":120},
            "offer":{"title":"15% off skincare, today","text":"Show this code at the till.","expires_after_s":7200},
            "cap":{"per_shopper":1,"window_s":86400},"budget":20000,"holdout_permille":150}"#,
        r#"{"id":"snacker-bogo","name":"Snackers: buy two, get one",
            "zones":["snacks"],"trigger":{"kind":"dwell","seconds":60},
            "audience":{"segment":"snacker"},
            "offer":{"title":"Buy 2 bags of chips, get 1 free","expires_after_s":3600},
            "cap":{"per_shopper":1,"window_s":86400},"holdout_permille":200}"#,
        r#"{"id":"welcome-back","name":"Welcome back on the second visit",
            "trigger":{"kind":"visit","number":2},
            "offer":{"title":"Welcome back: a free coffee","expires_after_s":10800},
            "cap":{"per_shopper":1,"window_s":2592000},"holdout_permille":100}"#,
        r#"{"id":"beauty-vip","name":"Cosmetics lovers: 5 minutes at the counter",
            "zones":["cosmetics"],"trigger":{"kind":"dwell","seconds":300},
            "audience":{"segment":"cosmetics-lover"},
            "schedule":{"from":"09:00","to":"22:00"},
            "offer":{"title":"A free sample kit with any lipstick","expires_after_s":7200},
            "cap":{"per_shopper":1,"window_s":604800},"budget":2000,"holdout_permille":150}"#,
    ];
    specs
        .iter()
        .map(|s| serde_json::from_str(s).expect("the demo's campaign specs are valid JSON"))
        .collect()
}
