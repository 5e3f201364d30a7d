-- Ingest foundation (SQLite): registered gateways and their status, events stored exactly once
-- per (gateway, seq), and dead letters for everything ingest refused.
-- Times are unix milliseconds UTC. Keep in step with ../postgres/0001_ingest.sql.

CREATE TABLE gateways (
    gateway       TEXT    NOT NULL PRIMARY KEY,
    store         TEXT    NOT NULL,
    -- 1: listed in the config's [[gateways]] (or registered by an operator);
    -- 0: claimed on first message under `allow_unknown_gateways` (demo only)
    registered    INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER,
    last_seen_ms  INTEGER,
    -- NULL until the first status arrives
    online        INTEGER,
    backlog       INTEGER,
    version       TEXT,
    -- ts_ms of the status applied last: an older (re)delivered status never overwrites a newer one
    status_ms     INTEGER
);

CREATE TABLE events (
    gateway     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    store       TEXT    NOT NULL,
    ts_ms       INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    device      TEXT,
    zone        TEXT,
    -- the event's JSON exactly as the gateway sent it (fields this build doesn't know included)
    payload     TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (gateway, seq)
) WITHOUT ROWID;

CREATE INDEX events_store_ts ON events (store, ts_ms);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL
);

CREATE INDEX dead_letters_reason ON dead_letters (reason, received_ms);
