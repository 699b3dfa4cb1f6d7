-- The lender's own columns of each account (issue 13: strategy segments and arms use them), as
-- imported: a JSON object of text values, {"product": "card", "risk_band": "B"}. An import
-- replaces an account's object with its row's; an empty cell is no key.
ALTER TABLE accounts ADD COLUMN columns TEXT NOT NULL DEFAULT '{}';
