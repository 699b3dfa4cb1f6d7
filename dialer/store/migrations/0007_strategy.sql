-- A campaign can run a contact strategy (issue 13): the file it was created with, its digest when
-- last read, and the seed its champion/challenger arms were drawn with.
ALTER TABLE campaigns ADD COLUMN strategy_file TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN strategy_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN seed INTEGER;

-- The lane a due target waits in: 'voice' or 'sms' (the strategy proposed that channel), or NULL
-- (to be decided by the strategy). Campaigns without a strategy only ever call.
ALTER TABLE targets ADD COLUMN channel TEXT CHECK (channel IN ('voice', 'sms'));
UPDATE targets SET channel='voice';
CREATE INDEX targets_lane ON targets (campaign_id, state, channel, next_at);
