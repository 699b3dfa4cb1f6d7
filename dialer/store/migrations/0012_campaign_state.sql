-- Whether a campaign makes new contacts: new (never started), running, paused (issue 14).
-- Campaigns created before this have run (or could have): they are running.
ALTER TABLE campaigns ADD COLUMN state TEXT NOT NULL DEFAULT 'new'
    CHECK (state IN ('new', 'running', 'paused'));
UPDATE campaigns SET state = 'running';
-- The operations page's live read of a campaign (dialer/store/live.py): its texts in flight, of
-- the last minute and by state; its calls by disposition (a scan of this index, not of the table).
CREATE INDEX IF NOT EXISTS messages_campaign_live ON messages (campaign_id, state, decided_at);
CREATE INDEX IF NOT EXISTS attempts_campaign_disposition ON attempts (campaign_id, disposition);
