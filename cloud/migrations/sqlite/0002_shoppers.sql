-- Stores, shoppers and their identities, stitched visits, campaigns and coupons (SQLite).
-- Times are unix milliseconds UTC; JSON is kept as TEXT so one SQL text serves both backends.
-- Keep in step with ../postgres/0002_shoppers.sql.

-- The chain's stores: where they are and their IANA time zone (hours and days are local time).
CREATE TABLE stores (
    id      TEXT NOT NULL PRIMARY KEY,
    name    TEXT NOT NULL,
    tz      TEXT NOT NULL DEFAULT 'UTC',
    lat     REAL,
    lon     REAL,
    region  TEXT,
    -- the day it opened, YYYY-MM-DD
    opened  TEXT,
    -- the floor plan: StoreConfig JSON (receivers, zones in metres)
    layout  TEXT,
    -- the store's iBeacon major (its gateways advertise retailer uuid / major / minor = zone
    -- number): how app-reported sightings name the store
    beacon_major INTEGER UNIQUE
);

-- Shopper profiles. The identity key is the AES-128 key of the app's Eddystone-EID (a secret),
-- set when the shopper opts in through the app; a profile imported from the CRM has none yet.
CREATE TABLE shoppers (
    id               TEXT    NOT NULL PRIMARY KEY,
    identity_key     TEXT    UNIQUE,
    exponent         INTEGER,
    -- the app's beacon time minus unix seconds, at registration
    clock_offset_s   INTEGER  NOT NULL DEFAULT 0,
    -- consent to profiling (personalised offers); without it only non-personalised campaigns
    profiling        INTEGER NOT NULL,
    -- opted out: no coupons at all, and EIDs are no longer resolved
    opted_out        INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER  NOT NULL,
    updated_ms       INTEGER  NOT NULL,
    home_city        TEXT,
    home_lat         REAL,
    home_lon         REAL
);

-- Other identities linked to a profile: member card, phone (hashed), app user id, social ids,
-- wallet pass serial. One identity belongs to one profile.
CREATE TABLE identities (
    kind     TEXT NOT NULL,
    value    TEXT NOT NULL,
    shopper  TEXT NOT NULL REFERENCES shoppers (id) ON DELETE CASCADE,
    added_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_shopper ON identities (shopper);

-- Tags: set by rules ('rule'), through the API ('api') or by import ('import').
CREATE TABLE shopper_tags (
    shopper TEXT NOT NULL REFERENCES shoppers (id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    source  TEXT NOT NULL,
    set_ms  INTEGER NOT NULL,
    PRIMARY KEY (shopper, tag)
);
CREATE INDEX shopper_tags_tag ON shopper_tags (tag);

-- Segments: a name for a tag expression ("cosmetics-lover & !staff | vip").
CREATE TABLE segments (
    id         TEXT NOT NULL PRIMARY KEY,
    expression TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Visits of resolved shoppers, stitched across EID rotation: the parts (visit_end events of
-- rotating EIDs, app-reported sightings) of one shopper in one store that overlap or are less than
-- the session timeout apart are one visit. id = the first part's '<gateway>:<seq>'.
CREATE TABLE visits (
    id        TEXT   NOT NULL PRIMARY KEY,
    store     TEXT   NOT NULL,
    -- NULL once the shopper is erased (the visit stays, de-linked, for footfall)
    shopper   TEXT   REFERENCES shoppers (id) ON DELETE SET NULL,
    start_ms  INTEGER NOT NULL,
    end_ms    INTEGER NOT NULL,
    class     TEXT   NOT NULL,
    -- [{"zone","enter_ms","exit_ms"}], merged and in time order
    path      TEXT   NOT NULL,
    parts     INTEGER NOT NULL
);
CREATE INDEX visits_shopper ON visits (shopper, start_ms);
CREATE INDEX visits_store ON visits (store, start_ms);

-- Which part went into which visit: applying a part twice is a no-op.
CREATE TABLE visit_parts (
    part  TEXT NOT NULL PRIMARY KEY,
    visit TEXT NOT NULL REFERENCES visits (id) ON DELETE CASCADE
);
CREATE INDEX visit_parts_visit ON visit_parts (visit);

-- Store beacons the shopper app heard (POST /api/v1/shoppers/{id}/sightings), accepted ones.
CREATE TABLE app_sightings (
    id       TEXT    NOT NULL PRIMARY KEY,
    shopper  TEXT    NOT NULL REFERENCES shoppers (id) ON DELETE CASCADE,
    store    TEXT    NOT NULL,
    zone     TEXT,
    ts_ms    INTEGER  NOT NULL,
    rssi     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX app_sightings_shopper ON app_sightings (shopper, ts_ms);

-- Campaigns: the rule as JSON (where, when, who, what, how often), the budget and what was spent.
CREATE TABLE campaigns (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    budget      INTEGER,
    issued      INTEGER  NOT NULL DEFAULT 0,
    created_ms  INTEGER  NOT NULL
);

-- Per-shopper frequency cap: coupons of one campaign to one shopper in one cap window.
CREATE TABLE campaign_caps (
    campaign TEXT   NOT NULL,
    shopper  TEXT   NOT NULL,
    window_start_ms INTEGER NOT NULL,
    sent     INTEGER NOT NULL,
    PRIMARY KEY (campaign, shopper, window_start_ms)
);

-- Every qualified trigger and what became of it: 'sent', 'holdout', 'capped', 'budget'.
-- One row per (campaign, shopper, trigger): a redelivered trigger decides nothing twice.
CREATE TABLE campaign_decisions (
    campaign   TEXT   NOT NULL,
    shopper    TEXT   NOT NULL,
    trigger_key TEXT  NOT NULL,
    outcome    TEXT   NOT NULL,
    store      TEXT   NOT NULL,
    ts_ms      INTEGER NOT NULL,
    coupon     TEXT,
    PRIMARY KEY (campaign, shopper, trigger_key)
);
CREATE INDEX campaign_decisions_campaign ON campaign_decisions (campaign, outcome);

-- Issued coupons. The code is signed (HMAC) so a till can verify it offline.
CREATE TABLE coupons (
    code          TEXT   NOT NULL PRIMARY KEY,
    campaign      TEXT   NOT NULL,
    shopper       TEXT   REFERENCES shoppers (id) ON DELETE SET NULL,
    store         TEXT   NOT NULL,
    zone          TEXT,
    -- the trigger: '<gateway>:<seq>' of the dwell milestone, or 'app:<sighting id>'
    trigger_key   TEXT   NOT NULL,
    trigger_ts_ms INTEGER NOT NULL,
    issued_ms     INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    -- the offer as sent (title, text, discount)
    offer         TEXT   NOT NULL,
    delivered_ms  INTEGER,
    redeemed_ms   INTEGER,
    redeemed_store TEXT,
    amount_cents  INTEGER,
    -- the visit the trigger belonged to (attribution)
    visit         TEXT
);
CREATE INDEX coupons_shopper ON coupons (shopper, issued_ms);
CREATE INDEX coupons_campaign ON coupons (campaign, issued_ms);

-- API tokens: only a SHA-256 of each token is kept. role: hq, manager (one store), pos, shopper.
CREATE TABLE api_tokens (
    token_sha256 TEXT NOT NULL PRIMARY KEY,
    role         TEXT NOT NULL,
    store        TEXT,
    shopper      TEXT REFERENCES shoppers (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    created_ms   INTEGER NOT NULL
);
