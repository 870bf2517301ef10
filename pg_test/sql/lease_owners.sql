-- Owners with tasks under them, and release or renewal by the right owner (docs/leases.md,
-- "Owners with tasks under them"). Tokens differ from run to run: kept in psql variables and
-- masked in messages, never printed.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
CREATE FUNCTION show_owner_error(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM show_error(statement);
EXCEPTION WHEN OTHERS THEN
    DECLARE state text; message text; detail text; hint text;
    BEGIN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        message := regexp_replace(message, 'lease \d+', 'lease N', 'g');
        IF detail = '' THEN
            RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, HINT = hint;
        END IF;
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, HINT = hint,
            DETAIL = regexp_replace(detail, 'Lease \d+', 'Lease N', 'g');
    END;
END $$;
-- The example of docs/leases.md, word for word: two tasks of one worker.
SELECT lockhier.lease_field(7, 12, 1, 'worker9/task-1', 'field__update') AS task1 \gset
SELECT lockhier.lease_field(7, 12, 2, 'worker9/task-2', 'field__update') AS task2 \gset
SELECT lockhier.renew_lease(:task1, owner => 'worker9/task-1');    -- true: task 1's own lease
SELECT lockhier.release_leases('worker9');                          -- 2: every task of the worker
-- Another task's lease: refused with the real owner named, and nothing released or renewed.
SELECT lockhier.lease_field(7, 12, 1, 'worker9/task-1', 'field__update') AS task1 \gset
SELECT lockhier.lease_field(7, 12, 2, 'worker90/task-1', 'field__update') AS neighbour \gset
SELECT show_owner_error(format('SELECT lockhier.release_lease(%s, owner => %L)', :task1, 'worker9/task-2'));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_owner_error(format('SELECT lockhier.renew_lease(%s, owner => %L)', :task1, 'worker90'));
SELECT show_owner_error(format('SELECT lockhier.release_lease(%s, owner => %L)', :task1, 'worker'));
SELECT owner, renewed_at = acquired_at AS never_renewed FROM lockhier.leases ORDER BY owner;
-- A worker covers its tasks, not a worker whose name starts the same way.
SELECT lockhier.renew_lease(:task1, owner => 'worker9');
SELECT lockhier.release_leases('worker9') AS released, (SELECT count(*) FROM lockhier.leases) AS left;
-- The owner passed is checked as a lease function checks it; a lease already gone is false.
SELECT show_owner_error(format('SELECT lockhier.release_lease(%s, owner => %L)', :neighbour, ''));
SELECT lockhier.release_lease(:neighbour, owner => 'worker90/task-1');
SET client_min_messages = error;  -- the WARNING names the token (pinned in lease_messages.sql)
SELECT lockhier.release_lease(:neighbour, owner => 'worker90/task-1');
RESET client_min_messages;
-- An owner of 1,024 bytes (a room id of 255 bytes under a worker's name fits).
SELECT lockhier.lease_field(7, 12, 3, repeat('r', 1024), 'field__update') IS NOT NULL AS taken;
SELECT lockhier.release_leases(repeat('r', 1024));
DROP FUNCTION show_owner_error(text);
