//! Analytics for headquarters: footfall per store, region and chain by local hour, day and week;
//! zone dwell, paths, transitions and funnels; campaign results with lift against the holdout.
//!
//! # How figures are kept
//! Footfall and zone figures are **roll-ups**: counters per store and local hour (and day and
//! week), and per store and local day for zones and paths (migration `0003_analytics.sql`). Ingest
//! maintains them in the same transaction that stores the events ([`crate::store`]'s `write`):
//! the events insert reports which rows were new (`ON CONFLICT DO NOTHING RETURNING`), and only
//! those rows' deltas ([`rollup::Rollup`], pure code) are added with upserts
//! (`n = n + excluded.n`). A redelivered event is not new and adds nothing; a failed transaction
//! takes its deltas with it: every event counts exactly once. [`rebuild()`] recomputes the same
//! rows from `events` with the same code, so incremental and rebuilt roll-ups are equal (tested on
//! a generated year, on both backends). Queries read a year of a thousand stores from the day and
//! week tables (~365 k and ~52 k rows), not from events.
//!
//! Loyalty and campaign results are read at query time from the stitched `visits` of resolved
//! shoppers, `campaign_decisions` and `coupons` (written by the engine, outside ingest's
//! transaction, and small next to footfall).
//!
//! # Definitions (PRODUCT.md, "Visit semantics")
//! - **Local time.** Every store has an IANA time zone (`stores.tz`; a store not listed there is
//!   UTC). Hours, days and weeks are the store's local ones, through DST (a spring-forward day has
//!   23 hourly buckets, a fall-back day 25); a week starts on Monday. The tz database is bundled
//!   ([`local`]). Changing a store's `tz` moves its past hours only after a `rebuild(Some(store))`.
//! - **Attribution.** A visit belongs to the local hour (and day, week) it **started** in: a visit
//!   from 23:50 to 00:10 is one visit of the first day, lasting 20 minutes. A windowed count
//!   (`traffic`, `door`, `app_presence`, `presence`), stamped at its window's end, belongs to the
//!   hour its window started in.
//! - **Visits** are `visit_end` events (a visit ends after the session timeout, so its end event
//!   carries everything: class, start, end, path). `visit_start`, `zone_*` events add nothing (the
//!   `visit_end` covers them). Who counts:
//!   - people — anonymous (hashed, not randomized), consented (EID) and untiered devices: their
//!     visits are **visits**, split by the gateway's class into **visitors** (lasted the minimum
//!     visit time, 2 min by default) and **passers-by**;
//!   - randomized addresses (`randomized: true`) are **not** visits: they rotate, so one phone
//!     would be several visitors. They feed the **traffic index** (below) and
//!     `randomized_visits`;
//!   - static ids (staff badges, trolley tags, shelf beacons) are not people: only
//!     `static_visits`, and no zone figures;
//!   - a consented phone's EID rotates every 2^K s, so a long visit can reach the cloud as several
//!     parts; footfall counts each part (`consented_visits` shows how many of `visits` these are);
//!     the engine stitches them into one visit in `visits`, which loyalty and campaigns use.
//! - **Visitors per period are visits, not distinct devices**: anonymous ids are re-salted daily
//!   (every minute in the strict mode), so distinct devices can't be counted across days, and
//!   distinct counts would not add up over hours, stores or regions. Counting visits keeps every
//!   figure a sum. A device that passed by twice and came in once in a day is 2 passer-by visits and
//!   1 visitor visit: capture rate 1/3 (each pass was a chance to capture it).
//! - **Capture rate** = visitors / (visitors + passers-by), null when both are 0.
//! - **Dwell** is of visitor visits: duration = `end_ms − start_ms` (the last sighting inside),
//!   whole seconds, in the buckets <5 min, 5–20, 20–60 min, 1–6 h, 6 h+ with exclusive upper bounds
//!   (exactly 5 min is 5–20; `dwell_shared::definitions::dwell_bucket`); the buckets sum to
//!   visitors. **Engaged** = a visitor visit of at least 10 min (exactly 10 min is engaged).
//! - **Traffic index** = randomized device-minutes: Σ over `traffic` events of `count × window_s`
//!   / 60. A phone seen for ten one-minute windows is 10 whether or not its address rotated, so the
//!   index does not inflate the way unique counts of rotating addresses do; it is a sum over the
//!   store's gateways (compare a store with itself over time, not stores with each other).
//! - **Loyalty** (of visitor visits of resolved, opted-in shoppers: anonymous ids are re-salted
//!   daily and static ids are not people), per store, from the stitched `visits` at query time:
//!   *first time* — the shopper's first visit to that store; *daily* — visits on ≥ 5 of the last 7
//!   local days (the visit's day included); *weekly* — visits in ≥ 2 of the last 4 weeks (7-day
//!   spans ending on the visit's day); *occasional* — anyone else. Counted per visit, like
//!   footfall. [`footfall::loyalty_class`] is the rule.
//! - **Zones** come from `visit_end` paths (zone, enter, exit) of people and randomized addresses
//!   (an address change can cut a path, but adds no time and invents no transition), by the
//!   visit's start day: stays, dwell (Σ stay durations), visits reaching each zone; transitions
//!   between consecutive zones (repeats collapsed); paths (the zone sequence, cut after 12 zones);
//!   funnels from the entrance (the layout's `entrance`, else the most common first zone). Presence
//!   counts add device-minutes per zone (works in the strict privacy mode too).
//! - **Campaign lift**: see [`campaigns`].
//!
//! # Layout
//! - [`local`] — store local time: hours, days, weeks, the bundled tz database.
//! - [`rollup`] — pure: events → roll-up deltas.
//! - `upsert` — deltas → roll-up tables, in ingest's transaction (both backends).
//! - [`footfall`] — footfall queries (and loyalty).
//! - [`zones`] — zone dwell, funnels, transitions, top paths.
//! - [`campaigns`] — campaign results and lift.
//! - [`rebuild`](mod@rebuild) — rebuild from events, and snapshots to compare.
//! - [`generate`] — a deterministic synthetic history for tests and benchmarks.

pub mod campaigns;
pub mod footfall;
pub mod generate;
pub mod local;
pub mod rebuild;
pub mod rollup;
pub(crate) mod upsert;
pub mod zones;

pub use campaigns::{CampaignQuery, CampaignResults, campaign_results};
pub use footfall::{Footfall, FootfallParams, FootfallQuery, Granularity, Scope, footfall};
pub use rebuild::{RebuildReport, Snapshot, rebuild, refresh_scopes, snapshot};
pub use zones::{Paths, ZoneParams, ZoneQuery, Zones, paths, zones};
