-- Footfall roll-ups of regions and of the whole chain (PostgreSQL): the sums of footfall_hour / day / week
-- over the stores of each scope, so a region's or the chain's year by day reads 365 rows, not one
-- per store and day. `scope` is 'chain' or 'region:' || stores.region.
--
-- Maintained by ingest beside the store rows, in the same transaction and from the same deltas,
-- with the store's region at that moment; recomputed from the store tables by analytics::rebuild
-- (and so after a store's region changes). The counters mean what they mean in 0003. Hours are
-- keyed by hour_ms and the local hour: stores in different zones share a UTC hour but not a local
-- one, so in a chain spanning time zones one local hour has a row per zone offset, and queries of
-- such a scope group by (day, hour).
-- Keep in step with ../sqlite/0006_footfall_scopes.sql.

CREATE TABLE footfall_scope_hour (
    scope             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    hour_ms           BIGINT  NOT NULL,
    hour              BIGINT  NOT NULL,
    visits            BIGINT NOT NULL DEFAULT 0,
    visitors          BIGINT NOT NULL DEFAULT 0,
    passersby         BIGINT NOT NULL DEFAULT 0,
    engaged           BIGINT NOT NULL DEFAULT 0,
    dwell_ms          BIGINT NOT NULL DEFAULT 0,
    dwell_lt_5m       BIGINT NOT NULL DEFAULT 0,
    dwell_5_20m       BIGINT NOT NULL DEFAULT 0,
    dwell_20_60m      BIGINT NOT NULL DEFAULT 0,
    dwell_1_6h        BIGINT NOT NULL DEFAULT 0,
    dwell_6h_plus     BIGINT NOT NULL DEFAULT 0,
    consented_visits  BIGINT NOT NULL DEFAULT 0,
    static_visits     BIGINT NOT NULL DEFAULT 0,
    randomized_visits BIGINT NOT NULL DEFAULT 0,
    traffic_dev_s     BIGINT NOT NULL DEFAULT 0,
    traffic_s         BIGINT NOT NULL DEFAULT 0,
    app_dev_s         BIGINT NOT NULL DEFAULT 0,
    door_in           BIGINT NOT NULL DEFAULT 0,
    door_out          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, day, hour_ms, hour)
);

CREATE TABLE footfall_scope_day (
    scope             TEXT    NOT NULL,
    day               TEXT    NOT NULL,
    week              TEXT    NOT NULL,
    visits            BIGINT NOT NULL DEFAULT 0,
    visitors          BIGINT NOT NULL DEFAULT 0,
    passersby         BIGINT NOT NULL DEFAULT 0,
    engaged           BIGINT NOT NULL DEFAULT 0,
    dwell_ms          BIGINT NOT NULL DEFAULT 0,
    dwell_lt_5m       BIGINT NOT NULL DEFAULT 0,
    dwell_5_20m       BIGINT NOT NULL DEFAULT 0,
    dwell_20_60m      BIGINT NOT NULL DEFAULT 0,
    dwell_1_6h        BIGINT NOT NULL DEFAULT 0,
    dwell_6h_plus     BIGINT NOT NULL DEFAULT 0,
    consented_visits  BIGINT NOT NULL DEFAULT 0,
    static_visits     BIGINT NOT NULL DEFAULT 0,
    randomized_visits BIGINT NOT NULL DEFAULT 0,
    traffic_dev_s     BIGINT NOT NULL DEFAULT 0,
    traffic_s         BIGINT NOT NULL DEFAULT 0,
    app_dev_s         BIGINT NOT NULL DEFAULT 0,
    door_in           BIGINT NOT NULL DEFAULT 0,
    door_out          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, day)
);

CREATE TABLE footfall_scope_week (
    scope             TEXT    NOT NULL,
    week              TEXT    NOT NULL,
    visits            BIGINT NOT NULL DEFAULT 0,
    visitors          BIGINT NOT NULL DEFAULT 0,
    passersby         BIGINT NOT NULL DEFAULT 0,
    engaged           BIGINT NOT NULL DEFAULT 0,
    dwell_ms          BIGINT NOT NULL DEFAULT 0,
    dwell_lt_5m       BIGINT NOT NULL DEFAULT 0,
    dwell_5_20m       BIGINT NOT NULL DEFAULT 0,
    dwell_20_60m      BIGINT NOT NULL DEFAULT 0,
    dwell_1_6h        BIGINT NOT NULL DEFAULT 0,
    dwell_6h_plus     BIGINT NOT NULL DEFAULT 0,
    consented_visits  BIGINT NOT NULL DEFAULT 0,
    static_visits     BIGINT NOT NULL DEFAULT 0,
    randomized_visits BIGINT NOT NULL DEFAULT 0,
    traffic_dev_s     BIGINT NOT NULL DEFAULT 0,
    traffic_s         BIGINT NOT NULL DEFAULT 0,
    app_dev_s         BIGINT NOT NULL DEFAULT 0,
    door_in           BIGINT NOT NULL DEFAULT 0,
    door_out          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, week)
);

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
