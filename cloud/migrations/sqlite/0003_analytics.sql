-- Analytics roll-ups (SQLite): footfall per store and local hour / day / week, zone
-- dwell, transitions, reach from the first zone, and paths per store and local day.
--
-- Maintained by ingest in the transaction that stores the events, from the rows that were new in
-- it (so each event counts once), and rebuildable from `events` (analytics::rebuild), which gives
-- the same rows. Every counter is a sum, so upserts add: n = n + excluded.n. Days and weeks are the
-- store's local time (stores.tz); `day` and `week` are local dates 'YYYY-MM-DD' (a week is named
-- by its Monday). What each counter means: cloud/src/analytics/mod.rs.
-- Keep in step with ../postgres/0003_analytics.sql.

-- Footfall counters, one set per row of the three tables below:
--   visits, visitors, passersby  visits of people (visit_end, not randomized, not static ids),
--                                 by the gateway's class; visits = visitors + passersby
--   engaged, dwell_*             visitor visits: >= 10 min; duration sum (ms); duration buckets
--   consented_visits             of visits, those of consented (EID) devices
--   static_visits                visits of static ids (badges, tags): not in visits
--   randomized_visits            visits of randomized addresses: traffic, not in visits
--   traffic_dev_s, traffic_s     traffic events: sum of count * window_s; sum of window_s
--   app_dev_s                    app_presence: sum of count * window_s
--   door_in, door_out            door counts
-- A visit belongs to the local hour it started in; a windowed count to the hour its window started.

-- hour_ms: UTC ms of the local hour's start (the two 02:00 hours of a fall-back day differ);
-- hour: the local hour of day 0..23.
CREATE TABLE footfall_hour (
    store             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    hour_ms           INTEGER NOT NULL,
    hour              INTEGER NOT NULL,
    visits            INTEGER NOT NULL DEFAULT 0,
    visitors          INTEGER NOT NULL DEFAULT 0,
    passersby         INTEGER NOT NULL DEFAULT 0,
    engaged           INTEGER NOT NULL DEFAULT 0,
    dwell_ms          INTEGER NOT NULL DEFAULT 0,
    dwell_lt_5m       INTEGER NOT NULL DEFAULT 0,
    dwell_5_20m       INTEGER NOT NULL DEFAULT 0,
    dwell_20_60m      INTEGER NOT NULL DEFAULT 0,
    dwell_1_6h        INTEGER NOT NULL DEFAULT 0,
    dwell_6h_plus     INTEGER NOT NULL DEFAULT 0,
    consented_visits  INTEGER NOT NULL DEFAULT 0,
    static_visits     INTEGER NOT NULL DEFAULT 0,
    randomized_visits INTEGER NOT NULL DEFAULT 0,
    traffic_dev_s     INTEGER NOT NULL DEFAULT 0,
    traffic_s         INTEGER NOT NULL DEFAULT 0,
    app_dev_s         INTEGER NOT NULL DEFAULT 0,
    door_in           INTEGER NOT NULL DEFAULT 0,
    door_out          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, day, hour_ms)
) WITHOUT ROWID;
CREATE INDEX footfall_hour_day ON footfall_hour (day);

CREATE TABLE footfall_day (
    store             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    week              TEXT    NOT NULL,
    visits            INTEGER NOT NULL DEFAULT 0,
    visitors          INTEGER NOT NULL DEFAULT 0,
    passersby         INTEGER NOT NULL DEFAULT 0,
    engaged           INTEGER NOT NULL DEFAULT 0,
    dwell_ms          INTEGER NOT NULL DEFAULT 0,
    dwell_lt_5m       INTEGER NOT NULL DEFAULT 0,
    dwell_5_20m       INTEGER NOT NULL DEFAULT 0,
    dwell_20_60m      INTEGER NOT NULL DEFAULT 0,
    dwell_1_6h        INTEGER NOT NULL DEFAULT 0,
    dwell_6h_plus     INTEGER NOT NULL DEFAULT 0,
    consented_visits  INTEGER NOT NULL DEFAULT 0,
    static_visits     INTEGER NOT NULL DEFAULT 0,
    randomized_visits INTEGER NOT NULL DEFAULT 0,
    traffic_dev_s     INTEGER NOT NULL DEFAULT 0,
    traffic_s         INTEGER NOT NULL DEFAULT 0,
    app_dev_s         INTEGER NOT NULL DEFAULT 0,
    door_in           INTEGER NOT NULL DEFAULT 0,
    door_out          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, day)
) WITHOUT ROWID;
CREATE INDEX footfall_day_day ON footfall_day (day);

CREATE TABLE footfall_week (
    store             TEXT    NOT NULL,
    week              TEXT    NOT NULL,
    visits            INTEGER NOT NULL DEFAULT 0,
    visitors          INTEGER NOT NULL DEFAULT 0,
    passersby         INTEGER NOT NULL DEFAULT 0,
    engaged           INTEGER NOT NULL DEFAULT 0,
    dwell_ms          INTEGER NOT NULL DEFAULT 0,
    dwell_lt_5m       INTEGER NOT NULL DEFAULT 0,
    dwell_5_20m       INTEGER NOT NULL DEFAULT 0,
    dwell_20_60m      INTEGER NOT NULL DEFAULT 0,
    dwell_1_6h        INTEGER NOT NULL DEFAULT 0,
    dwell_6h_plus     INTEGER NOT NULL DEFAULT 0,
    consented_visits  INTEGER NOT NULL DEFAULT 0,
    static_visits     INTEGER NOT NULL DEFAULT 0,
    randomized_visits INTEGER NOT NULL DEFAULT 0,
    traffic_dev_s     INTEGER NOT NULL DEFAULT 0,
    traffic_s         INTEGER NOT NULL DEFAULT 0,
    app_dev_s         INTEGER NOT NULL DEFAULT 0,
    door_in           INTEGER NOT NULL DEFAULT 0,
    door_out          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, week)
) WITHOUT ROWID;
CREATE INDEX footfall_week_week ON footfall_week (week);

-- Zones, from visit_end paths (people and randomized addresses; not static ids) by the visit's
-- local start day: stays, the sum of their durations (ms), visits whose path includes the zone;
-- and from presence events: device-seconds placed in the zone (sum of count * window_s).
CREATE TABLE zone_day (
    store             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    zone              TEXT    NOT NULL,
    stays             INTEGER NOT NULL DEFAULT 0,
    dwell_ms          INTEGER NOT NULL DEFAULT 0,
    visits            INTEGER NOT NULL DEFAULT 0,
    presence_dev_s    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, day, zone)
) WITHOUT ROWID;

-- Zone to zone moves within a visit's path (repeats of the same zone collapsed).
CREATE TABLE zone_transition_day (
    store             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    source            TEXT    NOT NULL,
    target            TEXT    NOT NULL,
    n                 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, day, source, target)
) WITHOUT ROWID;

-- Funnels: visits whose path starts in first_zone that went on to zone (zone = first_zone: every
-- visit starting there), and the sum of ms from the first stay's start to the zone's first entry.
CREATE TABLE zone_reach_day (
    store             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    first_zone        TEXT    NOT NULL,
    zone              TEXT    NOT NULL,
    visits            INTEGER NOT NULL DEFAULT 0,
    to_reach_ms       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, day, first_zone, zone)
) WITHOUT ROWID;

-- Paths: the zone sequence as a JSON array (repeats collapsed; cut after 12 zones with a trailing
-- null; '[]' for a visit placed in no zone) and how many visits took it.
CREATE TABLE path_day (
    store             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    path              TEXT    NOT NULL,
    visits            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, day, path)
) WITHOUT ROWID;
