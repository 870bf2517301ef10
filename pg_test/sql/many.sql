-- Several requests in one call (docs/many.md): taken all or nothing, also after a wait; the
-- error names the request refused; bad input refused with 22023 naming the element, before
-- anything is taken, and read with bounded memory whatever its size; session requests given
-- back with session_unlock_many.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
-- docs/many.md: an import of table 12 and a chat server's typing lock on a room, in one call.
BEGIN;
SELECT lockhier.lock_many('[
  {"application": 7, "table": 12, "classes": ["field__deletion", "field__type_update"], "mode": "share"},
  {"path": ["rooms", "!abc:example.org"], "classes": ["typing"], "mode": "share"},
  {"global": true, "class": "full_backup", "mode": "share"}
]');
SELECT held_for, scope, classes, mode FROM lockhier.held();
COMMIT;
-- A field of table 12 is being deleted in another session...
SELECT open_session('deletion', 'field deletion');
SELECT dblink_exec('deletion', 'BEGIN');
SELECT * FROM dblink('deletion', $$SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')::text$$) AS t(x text);
-- ...so a call that needs it takes nothing at all, and says which of its requests was refused.
BEGIN;
SELECT show_error($$SELECT lockhier.lock_many('[
  {"application": 7, "table": 11, "class": "field__deletion"},
  {"application": 7, "table": 12, "class": "field__deletion", "mode": "share"},
  {"path": ["rooms", "r1"], "class": "typing"}
]')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS held_after_the_refusal FROM lockhier.held();
SELECT count(*) AS advisory_locks_left FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- The same for session requests: nothing is kept (a transaction abort would not give them back).
SELECT show_error($$SELECT lockhier.session_lock_many('[
  {"application": 7, "table": 11, "class": "field__deletion"},
  {"application": 7, "table": 12, "field": 99, "class": "field__deletion"}
]', wait => '0')$$);
SELECT count(*) AS held_after_the_refusal FROM lockhier.held();
SELECT count(*) AS advisory_locks_left FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- With a wait: it waits in the server's queue for the request in the way, then takes them all.
SELECT open_session('import', 'csv import');
SELECT dblink_exec('import', 'BEGIN');
SELECT dblink_send_query('import', $$SELECT lockhier.lock_many('[
  {"application": 7, "table": 11, "class": "field__deletion", "mode": "share"},
  {"application": 7, "table": 12, "class": "field__deletion", "mode": "share"}
]', wait => '5 min')$$);
SELECT wait_until_queued('csv import');
SELECT dblink_exec('deletion', 'COMMIT');
SELECT * FROM dblink_get_result('import') AS t(x text);
SELECT * FROM dblink('import', $$SELECT scope || ' ' || mode FROM lockhier.held()$$) AS t(x text);
SELECT dblink_exec('import', 'COMMIT');
-- Session requests, given back together; one not held is warned about and not counted.
SELECT lockhier.session_lock_many('[{"path": ["archive", "2026"], "class": "all"}, {"application": 8, "class": "app_task"}]');
SELECT held_for, scope FROM lockhier.held();
SELECT lockhier.session_unlock_many('[{"path": ["archive", "2026"], "class": "all"}, {"application": 9, "class": "app_task"}]');
SELECT lockhier.session_unlock_many('[{"application": 8, "class": "app_task"}]');
SELECT count(*) AS held_at_the_end FROM lockhier.held();
-- Bad input: the element named, SQLSTATE 22023 (22004 for a NULL argument), nothing taken.
SELECT lockhier.lock_many(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('{"application": 7, "class": "x"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('7');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('"[]"');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "class": "x"}, "field 9"]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "tabel": 12, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"table": 12, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "path": ["a"], "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": "7", "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7.5, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "class": "Field Update"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "classes": ["a", null]}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "class": "x", "mode": "shared"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"path": ["rooms", ""], "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"global": false, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 7, "class": "x"}]', wait => '-1 s');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Bounded whatever the input: more than 64 requests, more than 256 kB, nesting deeper than a
-- request does, and numbers that would print as 131,072 digits each: refused without reading
-- them as text.
SELECT lockhier.lock_many(('[' || repeat('{"application": 1, "class": "x"},', 64) || '{"application": 1, "class": "x"}]')::jsonb);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many(('[{"path": ["' || repeat('n', 300000) || '"], "class": "x"}]')::jsonb);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"path": [["rooms"]], "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many(('[{"application": 1e131071, "class": "x"}' || repeat(', 1e131071', 60) || ']')::jsonb);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- The outer array is read no further than its 65th element: what follows is not looked at.
SELECT lockhier.lock_many(('[' || repeat('{"application": 1, "class": "x"},', 64) || '[[[["too deep"]]]]]')::jsonb);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- 64 requests with 200 such numbers each (12,800 numbers of 131,072 digits: 1.7 GB as text),
-- refused at once, well within the statement_timeout.
SET statement_timeout = '10s';
SELECT lockhier.lock_many((SELECT jsonb_agg(jsonb_build_object('application', 1, 'class', 'x', 'ids',
  (SELECT jsonb_agg('1e131071'::jsonb) FROM generate_series(1, 200)))) FROM generate_series(1, 64)));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET statement_timeout;
-- Ids are decided with numeric arithmetic, not through a double: 2.9999999999999999999 is not
-- application 3, nor 1e-400 application 0; a number too large to print is described.
SELECT lockhier.lock_many('[{"application": 2.9999999999999999999, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 1e-400, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 1e131071, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": 9223372036854775808, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_many('[{"application": -0.5, "class": "x"}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS held_after_the_bad_numbers FROM lockhier.held();
-- The extremes of bigint are ids like any other; 12.0 is the number 12.
SELECT lockhier.lock_many('[{"application": 9223372036854775807, "table": -9223372036854775808, "class": "x"}]');
BEGIN;
SELECT lockhier.lock_many('[{"application": 7, "table": 12.0, "class": "x"}]');
SELECT scope FROM lockhier.held();
COMMIT;
SELECT count(*) AS held_at_the_end FROM lockhier.held();
