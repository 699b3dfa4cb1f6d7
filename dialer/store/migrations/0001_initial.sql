-- A random id for this database: it prefixes the keys of calls in Asterisk, so two
-- databases (a test, a demo) sharing one Asterisk never read each other's calls.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('instance', lower(hex(randomblob(4))));

-- Times are UTC, ISO 8601 text with microseconds and a 'Z' suffix (sortable as text).
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    account_id    TEXT NOT NULL UNIQUE,
    debt_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    phone_e164    TEXT NOT NULL,
    region        TEXT NOT NULL,
    time_zones    TEXT NOT NULL,          -- JSON array of IANA names
    tz_derived    INTEGER NOT NULL,       -- 1 when derived from the number, not stated
    amount_minor  INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    due_date      TEXT NOT NULL,
    language      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX accounts_phone ON accounts (phone_e164);

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    file        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    rows        INTEGER NOT NULL DEFAULT 0,
    inserted    INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE import_rejects (
    id          INTEGER PRIMARY KEY,
    import_id   INTEGER NOT NULL REFERENCES imports (id),
    row_number  INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL
);

-- Opt-outs are per phone number and channel: the most protective key.
CREATE TABLE opt_outs (
    phone_e164  TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('voice', 'sms')),
    at          TEXT NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (phone_e164, channel)
);

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE targets (
    campaign_id      INTEGER NOT NULL REFERENCES campaigns (id),
    account_pk       INTEGER NOT NULL REFERENCES accounts (id),
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          TEXT NOT NULL,
    last_disposition TEXT,
    note             TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (campaign_id, account_pk)
);
CREATE INDEX targets_due ON targets (campaign_id, state, next_at);

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id),
    account_pk      INTEGER NOT NULL REFERENCES accounts (id),
    phone_e164      TEXT NOT NULL,
    attempt_no      INTEGER NOT NULL,
    state           TEXT NOT NULL,
    decided_at      TEXT NOT NULL,
    policy_reasons  TEXT NOT NULL DEFAULT '[]',   -- JSON: why the gate allowed it
    answered_at     TEXT,
    ended_at        TEXT,
    disposition     TEXT,
    dial_status     TEXT NOT NULL DEFAULT '',
    cause           TEXT NOT NULL DEFAULT '',
    ivr_stage       TEXT NOT NULL DEFAULT '',
    amd_status      TEXT NOT NULL DEFAULT '',
    digits          TEXT NOT NULL DEFAULT '',
    note            TEXT NOT NULL DEFAULT '',
    recording_path  TEXT NOT NULL DEFAULT '',
    dialer_id       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_phone_time ON attempts (phone_e164, decided_at);
CREATE INDEX attempts_campaign ON attempts (campaign_id, state);

CREATE TABLE call_events (
    id          INTEGER PRIMARY KEY,
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX call_events_attempt ON call_events (attempt_id);

-- What the borrower said or chose on an answered call (the IVR fills this).
CREATE TABLE outcomes (
    attempt_id             INTEGER PRIMARY KEY REFERENCES attempts (id),
    outcome                TEXT NOT NULL,
    promised_date          TEXT,
    promised_amount_minor  INTEGER,
    detail                 TEXT NOT NULL DEFAULT '',
    at                     TEXT NOT NULL
);
