-- Champion/challenger arms (issue 13): each account's arm in a campaign, drawn once before its first
-- contact and never changed (rows are only ever inserted; an existing one is kept as it is).
CREATE TABLE arm_assignments (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    account_pk   INTEGER NOT NULL REFERENCES accounts (id),
    arm          TEXT NOT NULL,
    stratum      TEXT NOT NULL,   -- JSON array: the account's values of the arms' stratify columns
    seed         INTEGER NOT NULL,
    assigned_at  TEXT NOT NULL,   -- UTC
    PRIMARY KEY (campaign_id, account_pk)
) WITHOUT ROWID;
