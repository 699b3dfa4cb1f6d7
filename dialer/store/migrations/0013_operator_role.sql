-- The operations team signs in to the same web page as the auditors: a third role, `operator`
-- (docs/operations.md). SQLite cannot change a CHECK constraint in place, so the table is copied;
-- nothing references it.
CREATE TABLE auditors_with_operators (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('auditor', 'admin', 'operator')),
    password_hash  TEXT NOT NULL,       -- argon2id (PHC string)
    created_at     TEXT NOT NULL,
    disabled_at    TEXT
);
INSERT INTO auditors_with_operators (name, role, password_hash, created_at, disabled_at)
    SELECT name, role, password_hash, created_at, disabled_at FROM auditors;
DROP TABLE auditors;
ALTER TABLE auditors_with_operators RENAME TO auditors;
