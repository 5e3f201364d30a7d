//! `dwell-cloud`: the aggregator that joins consented visits to shoppers and fires coupons.
//!
//! # Layout
//! - [`config`] — `dwell-cloud.toml`: one typed, validated [`config::Config`].
//! - [`ingest`] — MQTT → database: shared subscription, manual acks after commit, dead letters.
//! - [`store`] — the SQL database behind a small [`store::Store`] trait: SQLite (embedded
//!   default) and PostgreSQL, with one set of migrations each.
//! - [`identity`] — Eddystone-EID identity keys: computing and resolving the EIDs opted-in
//!   shoppers' apps advertise.
#![forbid(unsafe_code)]

pub mod config;
pub mod identity;
pub mod ingest;
pub mod store;
