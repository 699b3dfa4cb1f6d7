-- SQLite's JSON functions the audit page's searches use (audit/texts.py, audit/search.py), so that
-- their SQL is written once. Only the paths the audit writes: '$' or '$.key.key' (no array index).

-- json_extract(doc, path): the value at `path` as text: a string unquoted, an object or array as
-- its JSON text, NULL for a missing key or a JSON null (SQLite gives numbers as numbers, and 1 or
-- 0 for true or false: the audit compares only strings).
CREATE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT IMMUTABLE LANGUAGE sql AS $f$
    SELECT CAST(doc AS jsonb) #>> string_to_array(substr(path, 3), '.')
$f$;

-- json_each(doc, path): one row per element of the array at `path`, its `value` as json_extract
-- gives it; no rows when there is no array there (SQLite also walks an object's members).
CREATE FUNCTION json_each(doc TEXT, path TEXT) RETURNS TABLE (value TEXT) IMMUTABLE LANGUAGE sql AS $f$
    SELECT e #>> '{}' FROM (SELECT CAST(doc AS jsonb) #> string_to_array(substr(path, 3), '.') AS v) s,
        jsonb_array_elements(CASE WHEN jsonb_typeof(s.v) = 'array' THEN s.v END) e
$f$;
