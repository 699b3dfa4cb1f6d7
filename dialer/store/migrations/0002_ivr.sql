-- What happened inside each answered call: every node, prompt, key and utterance.
CREATE TABLE ivr_steps (
    id          INTEGER PRIMARY KEY,
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id),
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    node        TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- prompt, key, speech, no_input, no_match, outcome
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX ivr_steps_attempt ON ivr_steps (attempt_id, seq);

ALTER TABLE attempts ADD COLUMN outcome TEXT;
ALTER TABLE attempts ADD COLUMN script TEXT NOT NULL DEFAULT '';
