//! Building the engine from the config, and keeping it current while it runs.
//!
//! - **Secrets**: the coupon signing key and the holdout salt are files in `[engine] secrets_dir`
//!   (`coupon.key`: 64 hex digits; `holdout.salt`: 64 hex digits), created with mode 0600 on first
//!   start. Every worker of a deployment must read the same files.
//! - **Coupon delivery**: one MQTT connection per process publishes coupons (QoS 1); its event loop
//!   runs as a task.
//! - **Maintenance** ([`maintain`]): the EID table is rebuilt every `refresh_s` on a blocking
//!   thread; shoppers registered, opted out or back in on other workers are picked up every
//!   [`SYNC_INTERVAL`] (by `updated_ms`), with a full reload every [`FULL_RELOAD_INTERVAL`]
//!   (erasures elsewhere); campaigns are re-read every [`SYNC_INTERVAL`]. Changes made through this
//!   process's API take effect at once.

use super::{Engine, EngineParts};
use crate::campaigns::catalog::Catalog;
use crate::config::{BrokerConfig, Config};
use crate::coupons::code::CouponKey;
use crate::coupons::delivery::{CouponSink, MqttSink};
use crate::error::DomainResult;
use crate::identity::resolver::{RegisteredKey, Resolver, ResolverConfig};
use crate::ingest::now_ms;
use crate::on_pool;
use crate::profiles::shoppers;
use crate::store::AnyStore;
use anyhow::Context;
use dwell_shared::definitions::VisitDefinitions;
use dwell_shared::hex;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often other workers' shopper and campaign changes are picked up.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How often every key is re-read (catches erasures made on other workers).
pub const FULL_RELOAD_INTERVAL: Duration = Duration::from_secs(600);

/// The deployment's secrets.
pub struct Secrets {
    pub coupon_key: CouponKey,
    pub holdout_salt: Vec<u8>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

fn read_or_create(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode_array::<32>(text.trim()).map_err(|e| {
            anyhow::anyhow!(
                "{}: must hold 64 hex digits ({e}); restore it from the other workers, or delete it to \
                 start over (codes already issued will no longer verify)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(&b)).as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "created a new secret");
            Ok(b)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads (or creates) `coupon.key` and `holdout.salt` in `dir`.
pub fn secrets(dir: &Path) -> anyhow::Result<Secrets> {
    let key = read_or_create(&dir.join("coupon.key")).context("engine.secrets_dir")?;
    let salt = read_or_create(&dir.join("holdout.salt")).context("engine.secrets_dir")?;
    Ok(Secrets {
        coupon_key: CouponKey::from_bytes(key),
        holdout_salt: salt.to_vec(),
    })
}

/// An MQTT connection that publishes coupons, with its event loop running until `shutdown`.
pub fn mqtt_sink(
    broker: &BrokerConfig,
    shutdown: CancellationToken,
) -> (MqttSink, tokio::task::JoinHandle<()>) {
    let mut opts = rumqttc::MqttOptions::new(
        format!("{}-coupons", broker.client_id),
        broker.host.clone(),
        broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(broker.keep_alive_s.max(5)));
    // As the ingest workers log in: a username without a password sends an empty one.
    if let Some(u) = &broker.username {
        opts.set_credentials(u.clone(), broker.password.clone().unwrap_or_default());
    }
    // mqtts://: the same TLS set-up as the ingest workers (ring provider, `ca_file` only).
    if let Some(tls) = &broker.tls {
        opts.set_transport(tls.transport());
    }
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 1024);
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                ev = eventloop.poll() => match ev {
                    Ok(_) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures.is_multiple_of(30) {
                            tracing::warn!(error = %e, "coupon publisher: broker connection failed; retrying");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    });
    (MqttSink::new(client), task)
}

/// Builds the engine: loads every opted-in shopper's key into the resolver and the active
/// campaigns.
pub async fn build(
    store: &AnyStore,
    config: &Config,
    secrets: Secrets,
    sink: Arc<dyn CouponSink>,
    event_clock: bool,
) -> DomainResult<Arc<Engine>> {
    let resolver = Arc::new(Resolver::new(ResolverConfig {
        drift_s: config.engine.eid_drift_s,
        lookback_s: config.engine.eid_lookback_s,
        ..ResolverConfig::default()
    }));
    let keys = shoppers::registered_keys(store).await?;
    let n = keys.len();
    let r = resolver.clone();
    let now = now_ms().div_euclid(1000);
    tokio::task::spawn_blocking(move || r.load(keys, now))
        .await
        .map_err(|e| crate::error::DomainError::Invalid(format!("loading EID keys: {e}")))?;
    let catalog = Arc::new(Catalog::default());
    let campaigns = catalog.reload(store).await?;
    tracing::info!(shoppers = n, campaigns, "engine ready");
    Ok(Arc::new(Engine::new(
        store.clone(),
        EngineParts {
            resolver,
            catalog,
            coupon_key: secrets.coupon_key,
            holdout_salt: secrets.holdout_salt,
            sink,
            definitions: VisitDefinitions::DEFAULT,
            tag_rules: config.tag_rules.clone(),
            beacon_uuid: config.engine.beacon_uuid.clone(),
            event_clock,
        },
    )))
}

/// Shoppers whose row changed since `since_ms`: `(key or None if opted out / no app key, updated)`.
async fn changed_since(
    store: &AnyStore,
    since_ms: i64,
) -> DomainResult<Vec<(String, Option<RegisteredKey>, i64)>> {
    type Row = (String, Option<String>, Option<i32>, i64, bool, i64);
    let rows: Vec<Row> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, identity_key, exponent, clock_offset_s, opted_out, updated_ms FROM shoppers \
         WHERE updated_ms > $1 ORDER BY updated_ms",
    )
    .bind(since_ms)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(id, key, exp, off, out, updated)| {
            let k = match (key, exp, out) {
                (Some(k), Some(e), false) => {
                    hex::decode_array::<16>(&k).ok().map(|key| RegisteredKey {
                        shopper: Arc::from(id.as_str()),
                        key,
                        exponent: e.clamp(0, 15) as u8,
                        clock_offset_s: off,
                    })
                }
                _ => None,
            };
            (id, k, updated)
        })
        .collect())
}

/// Keeps the engine current until `shutdown` (see the module doc).
pub async fn maintain(engine: Arc<Engine>, store: AnyStore, shutdown: CancellationToken) {
    let refresh = Duration::from_secs(u64::from(engine.resolver().config().refresh_s.max(1)));
    let mut rebuild = tokio::time::interval(refresh);
    let mut sync = tokio::time::interval(SYNC_INTERVAL);
    let mut full = tokio::time::interval(FULL_RELOAD_INTERVAL);
    rebuild.tick().await;
    sync.tick().await;
    full.tick().await;
    let mut since = now_ms() - 5_000;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = rebuild.tick() => {
                let r = engine.resolver().clone();
                let now = now_ms().div_euclid(1000);
                let _ = tokio::task::spawn_blocking(move || r.refresh(now)).await;
            }
            _ = sync.tick() => {
                match changed_since(&store, since).await {
                    Ok(rows) => {
                        for (id, key, updated) in rows {
                            since = since.max(updated);
                            match key {
                                Some(k) => engine.resolver().register(k),
                                None => {
                                    engine.resolver().remove(&id);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "shopper sync failed; retrying"),
                }
                if let Err(e) = engine.catalog().reload(&store).await {
                    tracing::warn!(error = %e, "campaign reload failed; retrying");
                }
            }
            _ = full.tick() => {
                match shoppers::registered_keys(&store).await {
                    Ok(keys) => {
                        let r = engine.resolver().clone();
                        let now = now_ms().div_euclid(1000);
                        let _ = tokio::task::spawn_blocking(move || r.load(keys, now)).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "full shopper reload failed; retrying"),
                }
            }
        }
    }
}
