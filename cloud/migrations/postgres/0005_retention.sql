-- Indexes for data retention (PostgreSQL; cloud/src/retention.rs): each periodic delete finds
-- what is older than its limit through an index instead of scanning a large table. Tables that
-- already have a usable index are deleted per store, reason or campaign through it: events
-- (store, ts_ms), visits (store, start_ms), coupons (campaign, issued_ms), dead_letters
-- (reason, received_ms).
-- Keep in step with ../sqlite/0005_retention.sql.

-- App sightings by time (the existing index starts with the shopper).
CREATE INDEX app_sightings_ts ON app_sightings (ts_ms);

-- Campaign decisions by time (the primary key and the existing index don't reach ts_ms).
CREATE INDEX campaign_decisions_ts ON campaign_decisions (ts_ms);

-- Frequency-cap windows by campaign and window start (the primary key has the shopper between).
CREATE INDEX campaign_caps_window ON campaign_caps (campaign, window_start_ms);

-- Coupons by the visit they were attributed to: a deleted visit is unlinked from its coupons (and
-- stitching re-points coupons when it merges two visits).
CREATE INDEX coupons_visit ON coupons (visit);
