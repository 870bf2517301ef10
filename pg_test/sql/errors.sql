-- The exact messages users see: bad input, conflicts (message, DETAIL, HINT), warnings.
-- Conflicting locks are held by other sessions, opened with dblink (helpers.psql).
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
-- Bad input: each argument rule, with its SQLSTATE.
\set VERBOSITY default
SELECT lockhier.lock_field(NULL, 12, 99, 'field__update');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_table(7, 12, NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, classes => NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, 'import', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, 'import', 'shared');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, 'field update');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, '');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, repeat('x', 64));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, ARRAY[]::text[]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, ARRAY['import', NULL]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_application(7, wait => '-5 s');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.key('{1,2,3,4}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Unlocking what is not held: false, and a WARNING.
SELECT lockhier.session_unlock_application(7, 'snapshot', 'share');
-- A snapshot of application 7 is running...
SELECT open_session('snapshot', 'snapshot #7');
SELECT dblink_exec('snapshot', 'BEGIN');
SELECT * FROM dblink('snapshot', $$SELECT lockhier.lock_application(7, mode => 'share')::text$$) AS t(x text);
-- ...so a field update in it fails at once,
SELECT show_error($$SELECT lockhier.lock_field(7, 12, 99, 'field__update')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- or after a bounded wait,
SELECT show_error($$SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => '100 ms')$$);
-- and so does a migration, which is exclusive,
SELECT show_error($$SELECT lockhier.lock_application(7)$$);
-- while a second snapshot runs beside it, and try_ says false without an error.
BEGIN;
SELECT lockhier.lock_application(7, mode => 'share');
SELECT lockhier.try_lock_field(7, 12, 99, 'field__update');
COMMIT;
-- Two snapshots in the way of a migration: both are named.
SELECT open_session('snapshot2', 'snapshot #7');
SELECT dblink_exec('snapshot2', 'BEGIN');
SELECT * FROM dblink('snapshot2', $$SELECT lockhier.lock_application(7, mode => 'share')::text$$) AS t(x text);
SELECT show_error($$SELECT lockhier.lock_application(7, wait => '50 ms')$$);
SELECT dblink_exec('snapshot2', 'COMMIT');
SELECT dblink_exec('snapshot', 'COMMIT');
-- An import into table 12 blocks deleting its fields, not renaming them.
SELECT open_session('import', 'csv-import #55');
SELECT dblink_exec('import', 'BEGIN');
SELECT * FROM dblink('import', $$SELECT lockhier.lock_table(7, 12,
    ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update'], 'share')::text$$) AS t(x text);
SELECT show_error($$SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')$$);
SELECT show_error($$SELECT lockhier.lock_table(7, 12)$$);
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__rename');
COMMIT;
-- Who is in the way of a deletion (the same words as the error's DETAIL):
SELECT application_name, conflict, lock_mode, granted, state
  FROM lockhier.blockers_field(7, 12, 99, 'field__deletion');
-- A request queued behind a waiting one: the waiter is named as queued ahead.
SELECT open_session('migration', 'migration 7');
SELECT dblink_send_query('migration', $$SELECT lockhier.lock_application(7, wait => '30 s')$$);
SELECT wait_until_queued('migration 7');
SELECT show_error($$SELECT lockhier.lock_field(7, 12, 98, 'field__rename')$$);
SELECT dblink_exec('import', 'COMMIT');
SELECT * FROM dblink_get_result('migration') AS t(x text);
-- An idle session holding a session lock (say, a backup job between its steps).
SELECT open_session('backup', 'nightly backup');
SELECT * FROM dblink('backup', $$SELECT lockhier.session_lock_global('full_backup')::text$$) AS t(x text);
SELECT show_error($$SELECT lockhier.lock_global('full_backup')$$);
SELECT show_error($$SELECT lockhier.session_lock_global(ARRAY['full_backup', 'app_task'], 'share')$$);
-- A job holding a session lock that happens to be in a transaction: which of its locks is in
-- the way cannot be told, and the DETAIL does not pretend it can.
SELECT dblink_exec('backup', 'BEGIN');
SELECT show_error($$SELECT lockhier.lock_global('full_backup')$$);
SELECT dblink_exec('backup', 'COMMIT');
SELECT dblink_disconnect(name) FROM unnest(dblink_get_connections()) AS name ORDER BY 1;
-- Naming a connection is how a job shows up in the conflicts it causes:
SET application_name = 'csv-import #55';
SHOW application_name;
