//! `dwell-cloud`: the aggregator that joins consented visits to shoppers and fires coupons.
//!
//! # Layout
//! - [`config`] — `dwell-cloud.toml`: one typed, validated [`config::Config`].
//! - [`ingest`] — MQTT → database: shared subscription, manual acks after commit, dead letters.
//! - [`store`] — the SQL database behind a small [`store::Store`] trait: SQLite (embedded
//!   default) and PostgreSQL, with one set of migrations each.
//! - [`identity`] — Eddystone-EID identity keys: computing and resolving the EIDs opted-in
//!   shoppers' apps advertise.
//! - [`profiles`] — shopper profiles; [`profiles::segment`] tag expressions (`vip | a & !b`).
//! - [`campaigns`] — campaign rules; [`campaigns::holdout`] the deterministic randomized holdout.
//! - [`coupons`] — coupons; [`coupons::code`] HMAC-signed codes a till verifies offline.
//! - [`demo`] — `dwell-cloud demo`: embedded broker, SQLite, simulated stores, the dashboard.
//! - [`engine`] — what a committed event sets off: resolve, stitch visits, tag, fire campaigns.
//! - [`error`] — [`error::DomainError`], the error of domain operations.
//! - [`api`] — the HTTP API (axum, OpenAPI at `/api/v1/openapi.json`), tokens and roles,
//!   `/metrics`.
//! - [`dashboard`] — the headquarters web UI (`cloud/web/`, embedded), served at `/`.
//! - [`run`] — `dwell-cloud run`: ingest and the API in one process.
//! - [`retention`] — `[retention]`: raw and personal data deleted once older than its limit,
//!   periodically, in bounded chunks; anonymous roll-ups kept.
//! - [`analytics`] — footfall by store / region / chain and local hour / day / week, zone dwell,
//!   paths and funnels, campaign results with lift; roll-ups kept by ingest, rebuildable.
//! - [`expansion`] — regional expansion: customers vs stores per region, H3 density, candidate
//!   cities for new stores (`dwell-cloud expansion`).
#![forbid(unsafe_code)]

pub mod analytics;
pub mod api;
pub mod campaigns;
pub mod config;
pub mod coupons;
pub mod dashboard;
pub mod demo;
pub mod engine;
pub mod error;
pub mod expansion;
pub mod identity;
pub mod ingest;
pub mod profiles;
pub mod retention;
pub mod run;
pub mod store;
