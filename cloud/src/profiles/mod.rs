//! Shopper profiles: what the cloud knows about opted-in shoppers, and [`segment`] expressions
//! over their tags that say which shoppers a campaign is for.
//!
//! - [`shoppers`] — registration (opt-in), identities, consent, merge, erase, tags;
//! - [`visits`] — resolved shoppers' visits stitched across EID rotation, zone affinity, loyalty;
//! - [`rules`] — behavioural tags derived from visits;
//! - [`sightings`] — store beacons the shopper's app reported, checked for plausibility;
//! - [`import`] — bulk import of a CRM export.

pub mod import;
pub mod rules;
pub mod segment;
pub mod shoppers;
pub mod sightings;
pub mod visits;
