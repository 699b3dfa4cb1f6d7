-- When each account entered the campaign (issue 14: the reports' bucket at entry). Rows added
-- before this column: the campaign's creation, the best that is known of them.
ALTER TABLE targets ADD COLUMN added_at TEXT NOT NULL DEFAULT '';
UPDATE targets SET added_at = (SELECT created_at FROM campaigns c WHERE c.id = targets.campaign_id);

-- The reports' passes over a campaign's calls and texts (dialer/store/reports.py): read from these
-- alone, in account order then step (a funnel per account streams, per step too, with no sort),
-- never from the wide rows. With 10,000,000 calls the funnel's pass over them took 27 s through
-- attempts_account and the table, 7 s through this index.
CREATE INDEX attempts_report ON attempts (campaign_id, account_pk, step, disposition, outcome, decided_at);
CREATE INDEX messages_report ON messages (campaign_id, account_pk, step, purpose, state, decided_at);
