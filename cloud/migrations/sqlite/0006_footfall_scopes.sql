-- Footfall roll-ups of regions and of the whole chain (SQLite): the sums of footfall_hour / day / week
-- over the stores of each scope, so a region's or the chain's year by day reads 365 rows, not one
-- per store and day. `scope` is 'chain' or 'region:' || stores.region.
--
-- Maintained by ingest beside the store rows, in the same transaction and from the same deltas,
-- with the store's region at that moment; recomputed from the store tables by analytics::rebuild
-- (and so after a store's region changes). The counters mean what they mean in 0003. Hours are
-- keyed by hour_ms and the local hour: stores in different zones share a UTC hour but not a local
-- one, so in a chain spanning time zones one local hour has a row per zone offset, and queries of
-- such a scope group by (day, hour).
-- Keep in step with ../postgres/0006_footfall_scopes.sql.

CREATE TABLE footfall_scope_hour (
    scope             TEXT    NOT NULL,
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
    PRIMARY KEY (scope, day, hour_ms, hour)
) WITHOUT ROWID;

CREATE TABLE footfall_scope_day (
    scope             TEXT    NOT NULL,
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
    PRIMARY KEY (scope, day)
) WITHOUT ROWID;

CREATE TABLE footfall_scope_week (
    scope             TEXT    NOT NULL,
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
    PRIMARY KEY (scope, week)
) WITHOUT ROWID;

-- Fill from what the store tables hold already.
INSERT INTO footfall_scope_hour (scope, day, hour_ms, hour, visits, visitors, passersby, engaged, dwell_ms, dwell_lt_5m, dwell_5_20m, dwell_20_60m, dwell_1_6h, dwell_6h_plus, consented_visits, static_visits, randomized_visits, traffic_dev_s, traffic_s, app_dev_s, door_in, door_out)
SELECT 'chain', f.day, f.hour_ms, f.hour, SUM(f.visits), SUM(f.visitors), SUM(f.passersby), SUM(f.engaged), SUM(f.dwell_ms), SUM(f.dwell_lt_5m), SUM(f.dwell_5_20m), SUM(f.dwell_20_60m), SUM(f.dwell_1_6h), SUM(f.dwell_6h_plus), SUM(f.consented_visits), SUM(f.static_visits), SUM(f.randomized_visits), SUM(f.traffic_dev_s), SUM(f.traffic_s), SUM(f.app_dev_s), SUM(f.door_in), SUM(f.door_out)
FROM footfall_hour f GROUP BY f.day, f.hour_ms, f.hour;
INSERT INTO footfall_scope_hour (scope, day, hour_ms, hour, visits, visitors, passersby, engaged, dwell_ms, dwell_lt_5m, dwell_5_20m, dwell_20_60m, dwell_1_6h, dwell_6h_plus, consented_visits, static_visits, randomized_visits, traffic_dev_s, traffic_s, app_dev_s, door_in, door_out)
SELECT 'region:' || s.region, f.day, f.hour_ms, f.hour, SUM(f.visits), SUM(f.visitors), SUM(f.passersby), SUM(f.engaged), SUM(f.dwell_ms), SUM(f.dwell_lt_5m), SUM(f.dwell_5_20m), SUM(f.dwell_20_60m), SUM(f.dwell_1_6h), SUM(f.dwell_6h_plus), SUM(f.consented_visits), SUM(f.static_visits), SUM(f.randomized_visits), SUM(f.traffic_dev_s), SUM(f.traffic_s), SUM(f.app_dev_s), SUM(f.door_in), SUM(f.door_out)
FROM footfall_hour f JOIN stores s ON s.id = f.store WHERE s.region IS NOT NULL
GROUP BY s.region, f.day, f.hour_ms, f.hour;
INSERT INTO footfall_scope_day (scope, day, week, visits, visitors, passersby, engaged, dwell_ms, dwell_lt_5m, dwell_5_20m, dwell_20_60m, dwell_1_6h, dwell_6h_plus, consented_visits, static_visits, randomized_visits, traffic_dev_s, traffic_s, app_dev_s, door_in, door_out)
SELECT 'chain', f.day, MIN(f.week), SUM(f.visits), SUM(f.visitors), SUM(f.passersby), SUM(f.engaged), SUM(f.dwell_ms), SUM(f.dwell_lt_5m), SUM(f.dwell_5_20m), SUM(f.dwell_20_60m), SUM(f.dwell_1_6h), SUM(f.dwell_6h_plus), SUM(f.consented_visits), SUM(f.static_visits), SUM(f.randomized_visits), SUM(f.traffic_dev_s), SUM(f.traffic_s), SUM(f.app_dev_s), SUM(f.door_in), SUM(f.door_out)
FROM footfall_day f GROUP BY f.day;
INSERT INTO footfall_scope_day (scope, day, week, visits, visitors, passersby, engaged, dwell_ms, dwell_lt_5m, dwell_5_20m, dwell_20_60m, dwell_1_6h, dwell_6h_plus, consented_visits, static_visits, randomized_visits, traffic_dev_s, traffic_s, app_dev_s, door_in, door_out)
SELECT 'region:' || s.region, f.day, MIN(f.week), SUM(f.visits), SUM(f.visitors), SUM(f.passersby), SUM(f.engaged), SUM(f.dwell_ms), SUM(f.dwell_lt_5m), SUM(f.dwell_5_20m), SUM(f.dwell_20_60m), SUM(f.dwell_1_6h), SUM(f.dwell_6h_plus), SUM(f.consented_visits), SUM(f.static_visits), SUM(f.randomized_visits), SUM(f.traffic_dev_s), SUM(f.traffic_s), SUM(f.app_dev_s), SUM(f.door_in), SUM(f.door_out)
FROM footfall_day f JOIN stores s ON s.id = f.store WHERE s.region IS NOT NULL
GROUP BY s.region, f.day;
INSERT INTO footfall_scope_week (scope, week, visits, visitors, passersby, engaged, dwell_ms, dwell_lt_5m, dwell_5_20m, dwell_20_60m, dwell_1_6h, dwell_6h_plus, consented_visits, static_visits, randomized_visits, traffic_dev_s, traffic_s, app_dev_s, door_in, door_out)
SELECT 'chain', f.week, SUM(f.visits), SUM(f.visitors), SUM(f.passersby), SUM(f.engaged), SUM(f.dwell_ms), SUM(f.dwell_lt_5m), SUM(f.dwell_5_20m), SUM(f.dwell_20_60m), SUM(f.dwell_1_6h), SUM(f.dwell_6h_plus), SUM(f.consented_visits), SUM(f.static_visits), SUM(f.randomized_visits), SUM(f.traffic_dev_s), SUM(f.traffic_s), SUM(f.app_dev_s), SUM(f.door_in), SUM(f.door_out)
FROM footfall_week f GROUP BY f.week;
INSERT INTO footfall_scope_week (scope, week, visits, visitors, passersby, engaged, dwell_ms, dwell_lt_5m, dwell_5_20m, dwell_20_60m, dwell_1_6h, dwell_6h_plus, consented_visits, static_visits, randomized_visits, traffic_dev_s, traffic_s, app_dev_s, door_in, door_out)
SELECT 'region:' || s.region, f.week, SUM(f.visits), SUM(f.visitors), SUM(f.passersby), SUM(f.engaged), SUM(f.dwell_ms), SUM(f.dwell_lt_5m), SUM(f.dwell_5_20m), SUM(f.dwell_20_60m), SUM(f.dwell_1_6h), SUM(f.dwell_6h_plus), SUM(f.consented_visits), SUM(f.static_visits), SUM(f.randomized_visits), SUM(f.traffic_dev_s), SUM(f.traffic_s), SUM(f.app_dev_s), SUM(f.door_in), SUM(f.door_out)
FROM footfall_week f JOIN stores s ON s.id = f.store WHERE s.region IS NOT NULL
GROUP BY s.region, f.week;
