-- Dialer leases (issue 15: several dialer machines on one campaign). Each dialer running a
-- campaign renews its row every quarter of its lease; `beat` counts the renewals. Another dialer
-- takes a dialer for dead when its beat has not moved for a whole lease on the observer's own
-- clock (dialer/campaign/engine.py), so the machines' clocks are never compared; it then closes
-- that dialer's open attempts (never dialling them again). renewed_at is for people (UTC).
-- holder: the running process's token; another token in between two of one's renewals means a
-- second dialer runs with the same id (both stop: docs/postgres.md).
CREATE TABLE dialer_leases (
    dialer_id      TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    beat           INTEGER NOT NULL,
    renewed_at     TEXT NOT NULL,
    lease_seconds  REAL NOT NULL
);
-- A dialer's open attempts, its own on restart and a dead one's for whoever takes over.
CREATE INDEX attempts_open ON attempts (campaign_id, dialer_id) WHERE state = 'decided';
