-- Payments received on accounts (issue 13), imported from the lender's files.
CREATE TABLE payment_imports (
    id          INTEGER PRIMARY KEY,
    file        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    rows        INTEGER NOT NULL DEFAULT 0,
    inserted    INTEGER NOT NULL DEFAULT 0,
    duplicates  INTEGER NOT NULL DEFAULT 0,   -- already imported, with the same values: not counted again
    rejected    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE payment_rejects (
    id          INTEGER PRIMARY KEY,
    import_id   INTEGER NOT NULL REFERENCES payment_imports (id),
    row_number  INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL
);
CREATE INDEX payment_rejects_import ON payment_rejects (import_id, id);

-- One row per payment, keyed by the lender's reference: importing a file again adds nothing.
-- Rows are never changed or deleted (a reversal is not supported yet).
CREATE TABLE payments (
    id            INTEGER PRIMARY KEY,
    payment_id    TEXT NOT NULL UNIQUE,
    account_pk    INTEGER NOT NULL REFERENCES accounts (id),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    paid_at       TEXT NOT NULL,          -- UTC; a date-only value: the start of that local day
    paid_on       TEXT,                   -- the date as the file gave it, when it gave no time
    import_id     INTEGER NOT NULL REFERENCES payment_imports (id),
    row_number    INTEGER NOT NULL,
    imported_at   TEXT NOT NULL
);
CREATE INDEX payments_account ON payments (account_pk, paid_at);

-- Promises are read by account: from the call outcomes (attempts_account, 0004) and the texts' answers.
CREATE INDEX inbound_account ON inbound_messages (account_pk, outcome);
