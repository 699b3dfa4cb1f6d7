-- The strategy's step or rule that asked for each call and text ('' for campaigns without a
-- strategy): what the reports group by (issue 14).
ALTER TABLE attempts ADD COLUMN step TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN step TEXT NOT NULL DEFAULT '';
