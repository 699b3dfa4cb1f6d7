-- The promises' verdicts, judged once (issue 14: promise-kept rates over 1,000,000 accounts in
-- seconds). report_promises holds each of a campaign's promises with its groups and its verdict
-- on every known fact (dialer/store/promise_rollup.py): a verdict changes only when a fact does,
-- and a report on day D reads it as the verdict on D when final_from <= D, else as pending. The
-- triggers below mark the accounts whose facts changed, in each campaign they count in; those are
-- judged again when a report asks. A promise made (or changed) marks every campaign of its account,
-- as a call's promise dates the texts' promises of any campaign; a payment, an account's amount,
-- due date or zones and an arm mark only the campaigns where the account has promises judged
-- (one not judged yet is marked by its promise). A campaign not in report_promises_built is judged
-- whole the first time.
CREATE TABLE report_promises_built (campaign_id INTEGER PRIMARY KEY);
CREATE TABLE report_promise_dirty (
    campaign_id INTEGER NOT NULL, account_pk INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, account_pk)) WITHOUT ROWID;
CREATE TABLE report_promises (
    campaign_id INTEGER NOT NULL, account_pk INTEGER NOT NULL,
    source TEXT NOT NULL, ref INTEGER NOT NULL,  -- 'call' (outcomes.attempt_id) or 'sms' (inbound_messages.id)
    zones TEXT NOT NULL,       -- the account's zones as stored, and the decision zone judged in
    zone TEXT NOT NULL,
    arm TEXT NOT NULL, step TEXT NOT NULL, segment TEXT NOT NULL,
    bucket TEXT NOT NULL,      -- the account's bucket at the start of the day it was made
    week TEXT NOT NULL,        -- the ISO week it was made in
    state TEXT NOT NULL,       -- kept, partially_kept or broken, on every payment known
    final_from TEXT NOT NULL,  -- the first day that verdict holds ('' always: nothing was owed)
    PRIMARY KEY (campaign_id, account_pk, source, ref)) WITHOUT ROWID;
CREATE INDEX report_promises_account ON report_promises (account_pk, campaign_id);
-- An account's campaigns, for the triggers.
CREATE INDEX targets_account ON targets (account_pk, campaign_id);

CREATE TRIGGER report_promise_attempt_new AFTER INSERT ON attempts
WHEN new.outcome = 'promise_to_pay' BEGIN
    INSERT INTO report_promise_dirty SELECT campaign_id, account_pk FROM targets
        WHERE account_pk = new.account_pk ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_attempt_set AFTER UPDATE OF outcome, step, account_pk, campaign_id ON attempts
WHEN new.outcome = 'promise_to_pay' OR old.outcome = 'promise_to_pay' BEGIN
    INSERT INTO report_promise_dirty SELECT campaign_id, account_pk FROM targets
        WHERE account_pk IN (new.account_pk, old.account_pk) ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_outcome_new AFTER INSERT ON outcomes BEGIN
    INSERT INTO report_promise_dirty SELECT g.campaign_id, g.account_pk FROM attempts t
        JOIN targets g ON g.account_pk = t.account_pk
        WHERE t.id = new.attempt_id AND t.outcome = 'promise_to_pay' ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_outcome_set
AFTER UPDATE OF attempt_id, at, promised_date, promised_amount_minor ON outcomes BEGIN
    INSERT INTO report_promise_dirty SELECT g.campaign_id, g.account_pk FROM attempts t
        JOIN targets g ON g.account_pk = t.account_pk
        WHERE t.id IN (new.attempt_id, old.attempt_id) AND t.outcome = 'promise_to_pay'
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_inbound_new AFTER INSERT ON inbound_messages
WHEN new.outcome = 'promise_to_pay' BEGIN
    INSERT INTO report_promise_dirty SELECT campaign_id, account_pk FROM targets
        WHERE account_pk = new.account_pk ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_inbound_set
AFTER UPDATE OF outcome, account_pk, message_id, received_at ON inbound_messages
WHEN new.outcome = 'promise_to_pay' OR old.outcome = 'promise_to_pay' BEGIN
    INSERT INTO report_promise_dirty SELECT campaign_id, account_pk FROM targets
        WHERE account_pk IN (new.account_pk, old.account_pk) ON CONFLICT DO NOTHING;
END;
-- A text's step and campaign are its reminder's.
CREATE TRIGGER report_promise_message_set AFTER UPDATE OF step, campaign_id ON messages BEGIN
    INSERT INTO report_promise_dirty SELECT g.campaign_id, g.account_pk FROM inbound_messages i
        JOIN targets g ON g.account_pk = i.account_pk
        WHERE i.message_id = new.id AND i.outcome = 'promise_to_pay' ON CONFLICT DO NOTHING;
END;
-- The rest: only where the account has promises judged.
CREATE TRIGGER report_promise_payment_new AFTER INSERT ON payments BEGIN
    INSERT INTO report_promise_dirty SELECT DISTINCT campaign_id, account_pk FROM report_promises WHERE account_pk = new.account_pk
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_payment_set
AFTER UPDATE OF account_pk, amount_minor, currency, paid_at, paid_on ON payments BEGIN
    INSERT INTO report_promise_dirty SELECT DISTINCT campaign_id, account_pk FROM report_promises WHERE account_pk IN (new.account_pk, old.account_pk)
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_payment_gone AFTER DELETE ON payments BEGIN
    INSERT INTO report_promise_dirty SELECT DISTINCT campaign_id, account_pk FROM report_promises WHERE account_pk = old.account_pk
        ON CONFLICT DO NOTHING;
END;
-- An import sets every column of a known account: only a change of these counts.
CREATE TRIGGER report_promise_account_set AFTER UPDATE OF amount_minor, due_date, time_zones ON accounts
WHEN new.amount_minor IS NOT old.amount_minor OR new.due_date IS NOT old.due_date
    OR new.time_zones IS NOT old.time_zones BEGIN
    INSERT INTO report_promise_dirty SELECT DISTINCT campaign_id, account_pk FROM report_promises WHERE account_pk = new.id
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_arm_new AFTER INSERT ON arm_assignments BEGIN
    INSERT INTO report_promise_dirty SELECT DISTINCT campaign_id, account_pk FROM report_promises WHERE account_pk = new.account_pk AND campaign_id = new.campaign_id
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_arm_set AFTER UPDATE OF arm ON arm_assignments BEGIN
    INSERT INTO report_promise_dirty SELECT DISTINCT campaign_id, account_pk FROM report_promises WHERE account_pk = new.account_pk AND campaign_id = new.campaign_id
        ON CONFLICT DO NOTHING;
END;
CREATE TRIGGER report_promise_target_gone AFTER DELETE ON targets BEGIN
    INSERT INTO report_promise_dirty VALUES (old.campaign_id, old.account_pk) ON CONFLICT DO NOTHING;
END;
-- Migration 0015's trigger marked every day of an account's calls and texts whenever an import
-- wrote its zones, changed or not (each daily import of the accounts, all their days).
DROP TRIGGER report_zones_set;
CREATE TRIGGER report_zones_set AFTER UPDATE OF time_zones ON accounts
WHEN new.time_zones IS NOT old.time_zones BEGIN
    INSERT INTO report_dirty_days
        SELECT campaign_id, substr(decided_at, 1, 10) FROM attempts WHERE account_pk = new.id
        UNION SELECT campaign_id, substr(decided_at, 1, 10) FROM messages
        WHERE account_pk = new.id AND campaign_id IS NOT NULL
        ON CONFLICT DO NOTHING;
END;
