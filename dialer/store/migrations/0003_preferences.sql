-- What a consumer told us about when they may be called (Reg F 1006.6(b)(1)): times that are
-- inconvenient for them (local, daily) and windows in which they consented to be called.
CREATE TABLE contact_preferences (
    phone_e164    TEXT PRIMARY KEY,
    inconvenient  TEXT NOT NULL DEFAULT '[]',  -- [["HH:MM", "HH:MM"], ...]
    consents      TEXT NOT NULL DEFAULT '[]',  -- [["from", "to"], ...] UTC times as stored
    updated_at    TEXT NOT NULL
);
