//! `dwell-cloud`: the aggregator that joins consented visits to shoppers and fires coupons.
//!
//! # Layout
//! - [`identity`] — Eddystone-EID identity keys: computing and resolving the EIDs opted-in
//!   shoppers' apps advertise.
#![forbid(unsafe_code)]

pub mod identity;
