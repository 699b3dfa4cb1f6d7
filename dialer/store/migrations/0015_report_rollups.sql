-- The reports' rollups (issue 14: a funnel over 1,000,000 accounts in seconds). Each account's
-- counts per campaign, over all steps (kind '', k '') and per step or segment (kind 'step' or
-- 'segment', k the step or segment), are kept in report_accounts; the calls and texts per UTC day,
-- account zones and UTC quarter hour in report_hours. The triggers below only mark what a write
-- changed (report_dirty: the account; report_dirty_days: the UTC day); the store recomputes those
-- from the base tables when a report is asked for (dialer/store/reports.py). A campaign not in
-- report_built has no rollup yet: its first refresh computes everything once. The triggers' inserts
-- are upserts (ON CONFLICT DO NOTHING): an outer statement's conflict policy (an accounts upsert's)
-- would override an INSERT OR IGNORE's.
CREATE TABLE report_built (campaign_id INTEGER PRIMARY KEY);
CREATE TABLE report_dirty (
    campaign_id INTEGER NOT NULL, account_pk INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, account_pk)) WITHOUT ROWID;
CREATE TABLE report_dirty_days (
    campaign_id INTEGER NOT NULL, day TEXT NOT NULL,
    PRIMARY KEY (campaign_id, day)) WITHOUT ROWID;
CREATE TABLE report_accounts (
    campaign_id INTEGER NOT NULL, kind TEXT NOT NULL, k TEXT NOT NULL, account_pk INTEGER NOT NULL,
    placed INTEGER NOT NULL,         -- calls placed
    contacted INTEGER NOT NULL,      -- 1: a person answered one
    right_party_calls INTEGER NOT NULL,
    call_promised INTEGER NOT NULL,  -- 1: promised on a call
    sent INTEGER NOT NULL,           -- reminders handed to the gateway
    delivered INTEGER NOT NULL,
    replied INTEGER NOT NULL, stop INTEGER NOT NULL,
    text_promised INTEGER NOT NULL,  -- 1: promised by a text's answer
    first_at TEXT,                   -- the first call or text placed
    PRIMARY KEY (campaign_id, kind, k, account_pk)) WITHOUT ROWID;
CREATE INDEX report_accounts_account ON report_accounts (campaign_id, account_pk);
CREATE TABLE report_hours (
    campaign_id INTEGER NOT NULL, day TEXT NOT NULL, zones TEXT NOT NULL, slot TEXT NOT NULL,
    calls INTEGER NOT NULL, contacted INTEGER NOT NULL, right_party INTEGER NOT NULL, texts INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, day, zones, slot)) WITHOUT ROWID;
-- A day's calls and texts, read from the index alone.
CREATE INDEX attempts_campaign_time ON attempts (campaign_id, decided_at, disposition, outcome, account_pk);
CREATE INDEX messages_campaign_time ON messages (campaign_id, decided_at, purpose, state, account_pk);

CREATE TRIGGER report_attempt_new AFTER INSERT ON attempts BEGIN
    INSERT INTO report_dirty VALUES (new.campaign_id, new.account_pk)
        ON CONFLICT DO NOTHING;
    INSERT INTO report_dirty_days VALUES (new.campaign_id, substr(new.decided_at, 1, 10))
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_attempt_set
AFTER UPDATE OF disposition, outcome, step, decided_at, account_pk, campaign_id ON attempts BEGIN
    INSERT INTO report_dirty VALUES (new.campaign_id, new.account_pk), (old.campaign_id, old.account_pk)
        ON CONFLICT DO NOTHING;
    INSERT INTO report_dirty_days VALUES
        (new.campaign_id, substr(new.decided_at, 1, 10)), (old.campaign_id, substr(old.decided_at, 1, 10))
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_outcome_new AFTER INSERT ON outcomes BEGIN
    INSERT INTO report_dirty SELECT campaign_id, account_pk FROM attempts WHERE id = new.attempt_id
        ON CONFLICT DO NOTHING;
    INSERT INTO report_dirty_days
        SELECT campaign_id, substr(decided_at, 1, 10) FROM attempts WHERE id = new.attempt_id
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_outcome_set AFTER UPDATE OF detail, attempt_id ON outcomes BEGIN
    INSERT INTO report_dirty
        SELECT campaign_id, account_pk FROM attempts WHERE id IN (new.attempt_id, old.attempt_id)
        ON CONFLICT DO NOTHING;
    INSERT INTO report_dirty_days
        SELECT campaign_id, substr(decided_at, 1, 10) FROM attempts WHERE id IN (new.attempt_id, old.attempt_id)
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_message_new AFTER INSERT ON messages WHEN new.campaign_id IS NOT NULL BEGIN
    INSERT INTO report_dirty VALUES (new.campaign_id, new.account_pk)
        ON CONFLICT DO NOTHING;
    INSERT INTO report_dirty_days VALUES (new.campaign_id, substr(new.decided_at, 1, 10))
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_message_set
AFTER UPDATE OF state, purpose, step, decided_at, account_pk, campaign_id ON messages BEGIN
    INSERT INTO report_dirty SELECT new.campaign_id, new.account_pk WHERE new.campaign_id IS NOT NULL
        UNION ALL SELECT old.campaign_id, old.account_pk WHERE old.campaign_id IS NOT NULL
        ON CONFLICT DO NOTHING;
    INSERT INTO report_dirty_days
        SELECT new.campaign_id, substr(new.decided_at, 1, 10) WHERE new.campaign_id IS NOT NULL
        UNION ALL SELECT old.campaign_id, substr(old.decided_at, 1, 10) WHERE old.campaign_id IS NOT NULL
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_inbound_new AFTER INSERT ON inbound_messages WHEN new.account_pk IS NOT NULL BEGIN
    INSERT INTO report_dirty
        SELECT campaign_id, new.account_pk FROM messages WHERE id = new.message_id AND campaign_id IS NOT NULL
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_inbound_set AFTER UPDATE OF kind, outcome, account_pk, message_id ON inbound_messages BEGIN
    INSERT INTO report_dirty
        SELECT campaign_id, new.account_pk FROM messages
        WHERE id = new.message_id AND campaign_id IS NOT NULL AND new.account_pk IS NOT NULL
        UNION ALL SELECT campaign_id, old.account_pk FROM messages
        WHERE id = old.message_id AND campaign_id IS NOT NULL AND old.account_pk IS NOT NULL
        ON CONFLICT DO NOTHING;
END;
-- The hours are the account's zones': a change of zones changes the days it was called or texted.
CREATE TRIGGER report_zones_set AFTER UPDATE OF time_zones ON accounts BEGIN
    INSERT INTO report_dirty_days
        SELECT campaign_id, substr(decided_at, 1, 10) FROM attempts WHERE account_pk = new.id
        UNION SELECT campaign_id, substr(decided_at, 1, 10) FROM messages
        WHERE account_pk = new.id AND campaign_id IS NOT NULL
        ON CONFLICT DO NOTHING;
END;
