-- Owners with tasks under them, and release or renewal by the right owner (docs/leases.md,
-- "Owners with tasks under them"). Tokens differ from run to run: kept in psql variables and
-- masked in messages (masked.psql), never printed.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
-- The example of docs/leases.md, word for word: two tasks of one worker.
SELECT lockhier.lease_field(7, 12, 1, 'worker9/task-1', 'field__update') AS task1 \gset
SELECT lockhier.lease_field(7, 12, 2, 'worker9/task-2', 'field__update') AS task2 \gset
SELECT lockhier.renew_lease(:task1, owner => 'worker9/task-1');    -- true: task 1's own lease
SELECT lockhier.release_leases('worker9');                          -- 2: every task of the worker
-- Another task's lease: refused with the real owner named, and nothing released or renewed.
SELECT lockhier.lease_field(7, 12, 1, 'worker9/task-1', 'field__update') AS task1 \gset
SELECT lockhier.lease_field(7, 12, 2, 'worker90/task-1', 'field__update') AS neighbour \gset
SELECT show_error(format('SELECT lockhier.release_lease(%s, owner => %L)', :task1, 'worker9/task-2'));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_error(format('SELECT lockhier.renew_lease(%s, owner => %L)', :task1, 'worker90'));
SELECT show_error(format('SELECT lockhier.release_lease(%s, owner => %L)', :task1, 'worker'));
SELECT owner, renewed_at = acquired_at AS never_renewed FROM lockhier.leases ORDER BY owner;
-- A worker covers its tasks, not a worker whose name starts the same way.
SELECT lockhier.renew_lease(:task1, owner => 'worker9');
SELECT lockhier.release_leases('worker9') AS released, (SELECT count(*) FROM lockhier.leases) AS left;
-- The owner passed is checked as a lease function checks it; a lease already gone is false.
SELECT lockhier.release_lease(:neighbour, owner => '');
SELECT lockhier.release_lease(:neighbour, owner => 'worker90/task-1');
SET client_min_messages = error;  -- the WARNING names the token (pinned in lease_messages.sql)
SELECT lockhier.release_lease(:neighbour, owner => 'worker90/task-1');
RESET client_min_messages;
-- An owner of 1,024 bytes (a room id of 255 bytes under a worker's name fits).
SELECT lockhier.lease_field(7, 12, 3, repeat('r', 1024), 'field__update') IS NOT NULL AS taken;
SELECT lockhier.release_leases(repeat('r', 1024));
-- A lease is named by its own scope, whatever key of it is in the way: a lease on application
-- 42 in the way of a maintenance lock on the global scope names application 42.
SELECT lockhier.lease_application(42, 'nightly backup 42') IS NOT NULL AS leased;
BEGIN;
SELECT show_error($$SELECT lockhier.lock_global()$$);
ROLLBACK;
SELECT lockhier.release_leases('nightly backup 42');
-- When this session itself is in the way of a lease, no wait can help: refused at once, and the
-- HINT does not suggest waiting.
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__deletion');
SELECT show_error($$SELECT lockhier.lease_field(7, 12, 99, 'editor 4', 'field__deletion', wait => '1 min')$$);
ROLLBACK;
