-- Texts. One row per text DueCall decided to send, written (and so counted toward the caps)
-- before the gateway is asked; its state follows the gateway's answer and delivery reports.
-- Rows are never deleted: the policy's history, the batch's memory and the auditors' list.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,     -- DueCall's own id: delivery reports carry it
    campaign_id    INTEGER REFERENCES campaigns (id),
    account_pk     INTEGER REFERENCES accounts (id),
    phone_e164     TEXT NOT NULL,
    batch          TEXT NOT NULL,           -- one text per account per batch
    purpose        TEXT NOT NULL CHECK (purpose IN ('reminder', 'confirmation')),
    template       TEXT NOT NULL,           -- <file>#<message key>
    text           TEXT NOT NULL,
    coding         TEXT NOT NULL CHECK (coding IN ('gsm-7', 'ucs-2')),
    segments       INTEGER NOT NULL,
    gateway        TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'submitted', 'accepted', 'delivered',
                                                  'failed', 'expired', 'not_sent', 'unknown')),
    reason         TEXT NOT NULL DEFAULT '', -- the gateway's words for the latest state
    gateway_id     TEXT NOT NULL DEFAULT '', -- kept for people; reports are matched by id
    policy_reasons TEXT NOT NULL,           -- JSON, as attempts.policy_reasons
    decided_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    dialer_id      TEXT NOT NULL
);
CREATE INDEX messages_phone ON messages (phone_e164, decided_at);
CREATE INDEX messages_state ON messages (state, decided_at);
CREATE INDEX messages_batch ON messages (batch, account_pk);
CREATE INDEX messages_account ON messages (account_pk, decided_at);

-- Texts from borrowers' handsets, written the moment they arrive.
CREATE TABLE inbound_messages (
    id           INTEGER PRIMARY KEY,
    received_at  TEXT NOT NULL,
    phone_e164   TEXT NOT NULL,             -- the sender
    to_number    TEXT NOT NULL,
    text         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('opt_out', 'answer', 'for_person')),
    outcome      TEXT,                      -- for an answer: the Outcome it records
    keyword      TEXT NOT NULL DEFAULT '',
    account_pk   INTEGER REFERENCES accounts (id),
    message_id   INTEGER REFERENCES messages (id), -- the last text sent to the number
    gateway_ref  TEXT NOT NULL DEFAULT '',
    handled_at   TEXT,                      -- a person dealt with it
    handled_by   TEXT
);
CREATE UNIQUE INDEX inbound_gateway_ref ON inbound_messages (phone_e164, gateway_ref) WHERE gateway_ref != '';
CREATE INDEX inbound_phone ON inbound_messages (phone_e164, received_at);
CREATE INDEX inbound_kind ON inbound_messages (kind, handled_at);
