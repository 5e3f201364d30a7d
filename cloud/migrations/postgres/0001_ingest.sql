-- Ingest foundation (PostgreSQL): registered gateways and their status, events stored exactly
-- once per (gateway, seq), and dead letters for everything ingest refused.
-- Times are unix milliseconds UTC. Keep in step with ../sqlite/0001_ingest.sql.

CREATE TABLE gateways (
    gateway       TEXT    NOT NULL PRIMARY KEY,
    store         TEXT    NOT NULL,
    -- true: listed in the config's [[gateways]] (or registered by an operator);
    -- false: claimed on first message under `allow_unknown_gateways` (demo only)
    registered    BOOLEAN NOT NULL DEFAULT false,
    first_seen_ms BIGINT,
    last_seen_ms  BIGINT,
    -- NULL until the first status arrives
    online        BOOLEAN,
    backlog       BIGINT,
    version       TEXT,
    -- ts_ms of the status applied last: an older (re)delivered status never overwrites a newer one
    status_ms     BIGINT
);

CREATE TABLE events (
    gateway     TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    store       TEXT   NOT NULL,
    ts_ms       BIGINT NOT NULL,
    type        TEXT   NOT NULL,
    device      TEXT,
    zone        TEXT,
    -- the event's JSON as the gateway sent it (fields this build doesn't know included)
    payload     JSONB  NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (gateway, seq)
);

CREATE INDEX events_store_ts ON events (store, ts_ms);

CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    topic       TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    detail      TEXT   NOT NULL,
    payload     BYTEA  NOT NULL
);

CREATE INDEX dead_letters_reason ON dead_letters (reason, received_ms);
