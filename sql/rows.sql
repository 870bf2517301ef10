-- Row-lock helpers (src/rows.rs). Declared here because their argument types (regclass,
-- anyarray, name) read best as SQL. Not STRICT: a NULL argument is an error, not a no-op.
-- SECURITY INVOKER: the locking statement runs with the caller's privileges.

CREATE FUNCTION lockhier.lock_rows(
    rel regclass,
    ids anyarray,
    mode text DEFAULT 'update',
    wait interval DEFAULT '0',
    key_column name DEFAULT NULL
) RETURNS bigint
VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT SECURITY INVOKER
LANGUAGE c AS 'MODULE_PATHNAME', 'lock_rows_wrapper';

COMMENT ON FUNCTION lockhier.lock_rows(regclass, anyarray, text, interval, name) IS
  'Lock the rows of rel whose key_column (default: the primary key) is in ids, FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE; returns how many; 55P03 "operation in progress" on a conflict';

CREATE FUNCTION lockhier.try_lock_rows(
    rel regclass,
    ids anyarray,
    mode text DEFAULT 'update',
    wait interval DEFAULT '0',
    key_column name DEFAULT NULL
) RETURNS boolean
VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT SECURITY INVOKER
LANGUAGE c AS 'MODULE_PATHNAME', 'try_lock_rows_wrapper';

COMMENT ON FUNCTION lockhier.try_lock_rows(regclass, anyarray, text, interval, name) IS
  'Like lock_rows, but false instead of the conflict error';
