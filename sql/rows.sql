-- Row-lock helpers (src/api/rows.rs, src/rows/). Declared here because their argument types
-- (regclass, anyarray, name) read best as SQL. Not STRICT: a NULL argument is an error, not a
-- no-op. SECURITY INVOKER: the locking statement runs with the caller's privileges.
-- The two share one parameter list, written twice: SQL has no way to declare it once.

CREATE FUNCTION lockhier.lock_rows(
    rel pg_catalog.regclass,
    ids pg_catalog.anyarray,
    mode pg_catalog.text DEFAULT 'update',
    wait pg_catalog.interval DEFAULT '0',
    key_column pg_catalog.name DEFAULT NULL
) RETURNS pg_catalog.int8
VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT SECURITY INVOKER
LANGUAGE c AS 'MODULE_PATHNAME', 'lock_rows_wrapper';

COMMENT ON FUNCTION lockhier.lock_rows(regclass, anyarray, text, interval, name) IS
  'Lock the rows of rel whose key_column (default: the primary key) is in ids, FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE; returns how many; 55P03 "operation in progress" on a conflict';

CREATE FUNCTION lockhier.try_lock_rows(
    rel pg_catalog.regclass,
    ids pg_catalog.anyarray,
    mode pg_catalog.text DEFAULT 'update',
    wait pg_catalog.interval DEFAULT '0',
    key_column pg_catalog.name DEFAULT NULL
) RETURNS pg_catalog.bool
VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT SECURITY INVOKER
LANGUAGE c AS 'MODULE_PATHNAME', 'try_lock_rows_wrapper';

COMMENT ON FUNCTION lockhier.try_lock_rows(regclass, anyarray, text, interval, name) IS
  'Like lock_rows, but false instead of the conflict error';
