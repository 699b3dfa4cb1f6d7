-- SQLite's functions the reports' SQL uses (dialer/store/reports.py, outcomes.py), so that it is
-- written once, each giving SQLite's result (tests/unit/test_report_pg_functions.py).

-- julianday(d) of a date 'YYYY-MM-DD', by SQLite's own arithmetic (computeJD in its date.c:
-- proleptic Gregorian, C's truncating division, as PostgreSQL's integer division). Out of range
-- (month not 01-12, day not 01-31) it is NULL as in SQLite, and a day past the month's end runs
-- into the next month as in SQLite ('2026-02-30' is March 2). The store passes only dates: any
-- other text (a time, 'now', a number, which SQLite reads too) is an error, never another answer.
CREATE FUNCTION report_not_a_date(d TEXT) RETURNS DOUBLE PRECISION IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN
    RAISE EXCEPTION 'julianday(%): only a date YYYY-MM-DD is read here', quote_literal(d);
END $f$;
CREATE FUNCTION report_julian(y INTEGER, m INTEGER, d INTEGER) RETURNS DOUBLE PRECISION IMMUTABLE
LANGUAGE sql AS $f$
    SELECT CASE WHEN m BETWEEN 1 AND 12 AND d BETWEEN 1 AND 31 THEN
        CAST(36525 * (yy + 4716) / 100 + 306001 * (mm + 1) / 10000 + d + 2 - yy / 100 + yy / 100 / 4
            AS DOUBLE PRECISION) - 1524.5
    END
    FROM (SELECT CASE WHEN m <= 2 THEN y - 1 ELSE y END AS yy, CASE WHEN m <= 2 THEN m + 12 ELSE m END AS mm) s
$f$;
CREATE FUNCTION julianday(d TEXT) RETURNS DOUBLE PRECISION IMMUTABLE LANGUAGE sql AS $f$
    SELECT CASE
        WHEN d IS NULL THEN NULL
        WHEN d ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN report_julian(
            CAST(substr(d, 1, 4) AS INTEGER), CAST(substr(d, 6, 2) AS INTEGER), CAST(substr(d, 9, 2) AS INTEGER))
        ELSE report_not_a_date(d)
    END
$f$;

-- instr(a, b): where b first starts in a, from 1 (0 if nowhere), in characters: PostgreSQL's strpos.
CREATE FUNCTION instr(a TEXT, b TEXT) RETURNS INTEGER IMMUTABLE LANGUAGE sql AS 'SELECT strpos(a, b)';

-- max(a, b) and min(a, b) of sums (PostgreSQL's sum of BIGINT is NUMERIC); NULL if either is, as
-- in SQLite. Exact, as a BIGINT argument becomes NUMERIC exactly.
CREATE FUNCTION max(a NUMERIC, b NUMERIC) RETURNS NUMERIC IMMUTABLE LANGUAGE sql
AS 'SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE greatest(a, b) END';
CREATE FUNCTION min(a NUMERIC, b NUMERIC) RETURNS NUMERIC IMMUTABLE LANGUAGE sql
AS 'SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE least(a, b) END';

-- The baseline's max(a, b) and min(a, b) of BIGINT and TEXT, made NULL if either is, as SQLite's
-- (greatest and least skip a NULL).
CREATE OR REPLACE FUNCTION max(a BIGINT, b BIGINT) RETURNS BIGINT IMMUTABLE LANGUAGE sql
AS 'SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE greatest(a, b) END';
CREATE OR REPLACE FUNCTION min(a BIGINT, b BIGINT) RETURNS BIGINT IMMUTABLE LANGUAGE sql
AS 'SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE least(a, b) END';
CREATE OR REPLACE FUNCTION max(a TEXT, b TEXT) RETURNS TEXT IMMUTABLE LANGUAGE sql
AS 'SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE greatest(a, b) END';
CREATE OR REPLACE FUNCTION min(a TEXT, b TEXT) RETURNS TEXT IMMUTABLE LANGUAGE sql
AS 'SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE least(a, b) END';
