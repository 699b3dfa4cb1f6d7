-- The audit trail: an append-only hash chain. Each row's hash covers its own fields and the
-- previous row's hash (audit/chain.py), so changing, removing or reordering any row breaks
-- every later link. Rows are never updated or deleted, not even by a purge.
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY,   -- 1, 2, 3, ... without gaps
    at           TEXT NOT NULL,         -- when it happened (UTC)
    kind         TEXT NOT NULL,         -- attempt.decided, call.answer, ivr.key, recording.stored, ...
    actor        TEXT NOT NULL,         -- dialer:<host>, ivr, operator:<user>, auditor:<name>
    campaign_id  INTEGER,
    attempt_id   INTEGER,
    account_id   TEXT,                  -- the lender's account id
    data         TEXT NOT NULL,         -- canonical JSON: sorted keys, no spaces, UTF-8
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_events_attempt ON audit_events (attempt_id, seq);
CREATE INDEX audit_events_kind ON audit_events (kind, at);
CREATE INDEX audit_events_account ON audit_events (account_id, seq);

-- Every recording file of a call, with what it was when it was stored. The chain holds the
-- same facts (recording.stored), and `duecall audit verify` trusts the chain, not this table.
CREATE TABLE recordings (
    attempt_id   INTEGER NOT NULL REFERENCES attempts (id),
    path         TEXT NOT NULL,         -- absolute path of the file
    kind         TEXT NOT NULL CHECK (kind IN ('call', 'reply')),
    sha256       TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    stored_at    TEXT NOT NULL,
    purged_at    TEXT,
    PRIMARY KEY (attempt_id, path)
);
CREATE INDEX recordings_stored ON recordings (purged_at, stored_at);

-- Policy facts about an attempt an auditor filters on (consent, multi-zone, cap-reached,
-- opt-out, wrong-party, reconciled, ...).
CREATE TABLE attempt_flags (
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id),
    flag        TEXT NOT NULL,
    PRIMARY KEY (attempt_id, flag)
);
CREATE INDEX attempt_flags_flag ON attempt_flags (flag, attempt_id);

-- People who sign in to the audit web page.
CREATE TABLE auditors (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('auditor', 'admin')),
    password_hash  TEXT NOT NULL,       -- argon2id (PHC string)
    created_at     TEXT NOT NULL,
    disabled_at    TEXT
);

CREATE INDEX attempts_decided ON attempts (decided_at);
CREATE INDEX attempts_account ON attempts (account_pk, decided_at);
CREATE INDEX attempts_outcome ON attempts (outcome, decided_at);
CREATE INDEX attempts_disposition ON attempts (disposition, decided_at);
