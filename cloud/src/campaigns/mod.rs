//! Campaigns: rules that decide which shopper gets which coupon, and [`holdout`], the
//! deterministic random split that keeps some qualifying shoppers unsent so lift can be measured.
//!
//! - [`spec`] — the rule (where, when, who, what, how often) and its checks;
//! - [`catalog`] — campaigns in the database and the active list the engine matches against;
//! - [`decide`] — one trigger → holdout, capped, over budget, or a coupon, in one transaction.

pub mod catalog;
pub mod decide;
pub mod holdout;
pub mod spec;
