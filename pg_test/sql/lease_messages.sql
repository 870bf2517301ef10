-- Leases as users see them: the error that names a lease, the warnings, the leases view;
-- what a lease does not hold back (VACUUM); lease_valid across a savepoint; the leases of a
-- dropped database; owner names that would not show as they are. Tokens differ from run to
-- run: they are kept in psql variables, never printed.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
-- The walk-through of docs/leases.md, word for word: a CSV import leases table 12 for
-- "field__deletion" and "field__type_update", and renews it.
CREATE TABLE database_field (id int PRIMARY KEY, table_id int NOT NULL, type text NOT NULL);
INSERT INTO database_field VALUES (99, 12, 'number');
SELECT lockhier.lease_table(7, 12, 'csv-import #55', ARRAY['field__deletion', 'field__type_update'],
                            'share', ttl => '2 min') AS token \gset
SELECT lockhier.renew_lease(:token);     -- true: the lease is held until now() + 2 min
-- The lease is the owner's: this very session is refused a field deletion, with the lease named.
SELECT show_error($$SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Fencing: the check and the writes it guards commit together.
BEGIN;
SELECT lockhier.lease_valid(:token);          -- true, or stop here
UPDATE database_field SET type = 'text' WHERE table_id = 12;
COMMIT;
SELECT lockhier.release_lease(:token);   -- true: released
SELECT lockhier.release_leases('task 101');
DROP TABLE database_field;
SELECT lockhier.lease_table(7, 12, 'csv-import #55', ARRAY['field__deletion', 'field__type_update'], 'share', ttl => '10 min') AS import \gset
-- Renames go ahead; try_lease_* answers NULL where lease_* raises.
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__name_update');
COMMIT;
SELECT lockhier.try_lease_field(7, 12, 99, 'editor 4', 'field__deletion') IS NULL AS refused;
SELECT owner, scope, classes, mode, expires_at - acquired_at AS ttl, renewed_at = acquired_at AS never_renewed,
       taken_by = current_user AS taken_by_me, held
  FROM lockhier.leases WHERE token = :import;
SELECT lockhier.renew_lease(:import, '1 h');
SELECT expires_at - renewed_at AS ttl FROM lockhier.leases WHERE token = :import;
SELECT lockhier.release_lease(:import);
-- A lease no longer held: false, and a WARNING.
SELECT lockhier.release_lease(-1);
SELECT lockhier.renew_lease(-1);
SELECT lockhier.lease_valid(-1);
SELECT lockhier.release_leases('csv-import #55');
-- Holding a lease for minutes holds back nothing: the keeper has no transaction and no
-- snapshot, and a VACUUM meanwhile removes every dead row (a prepared transaction would keep
-- them all).
CREATE TABLE lease_vacuum_probe (id int);
INSERT INTO lease_vacuum_probe SELECT pg_catalog.generate_series(1, 10000);
SELECT lockhier.lease_application(7, 'backup', ttl => '10 min') AS backup \gset
DELETE FROM lease_vacuum_probe;
VACUUM lease_vacuum_probe;
SELECT pg_relation_size('lease_vacuum_probe') AS bytes_left;
SELECT backend_xid, backend_xmin, xact_start FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper';
SELECT lockhier.release_lease(:backup);
DROP TABLE lease_vacuum_probe;
-- lease_valid keeps the lease until the transaction ends, even when the savepoint it was
-- called in rolls back (as a nested atomic block of an ORM does on an error).
SELECT lockhier.lease_field(7, 12, 99, 'worker 1') AS worker \gset
BEGIN;
SAVEPOINT guarded;
SELECT lockhier.lease_valid(:worker);
ROLLBACK TO guarded;
SELECT count(*) AS fences_held FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid = 3 AND granted;
COMMIT;
SELECT count(*) AS fences_held FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid = 3;
SELECT lockhier.release_lease(:worker);
-- Dropping a database lets go of its leases at once: they guard nothing any more, and
-- nobody could connect to it to release them.
CREATE DATABASE lockhier_dropped_probe;
SELECT oid AS dropped_oid FROM pg_database WHERE datname = 'lockhier_dropped_probe' \gset
SELECT dblink_connect('doomed', format('host=%s port=%s dbname=lockhier_dropped_probe user=%s',
    current_setting('unix_socket_directories'), current_setting('port'), current_user));
SELECT dblink_exec('doomed', 'CREATE EXTENSION lockhier');
SELECT x IS NOT NULL AS leased
  FROM dblink('doomed', $$SELECT lockhier.lease_application(7, 'doomed', ttl => '10 min')::text$$) AS t(x text);
SELECT count(*) > 0 AS keeper_holds_its_locks FROM pg_locks WHERE database = :dropped_oid;
SELECT dblink_disconnect('doomed');
DO $$
BEGIN
    WHILE EXISTS (SELECT FROM pg_stat_activity WHERE datname = 'lockhier_dropped_probe') LOOP
        PERFORM pg_sleep(0.01);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
END $$;
DROP DATABASE lockhier_dropped_probe;
-- The keeper is told once the drop commits, and acts at once: wait for that (up to 30 s).
CREATE TEMP TABLE dropped_database AS SELECT :dropped_oid::oid AS oid;
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    WHILE EXISTS (SELECT FROM pg_locks l JOIN dropped_database d ON l.database = d.oid)
          AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
SELECT count(*) AS locks_left FROM pg_locks WHERE database = :dropped_oid;
-- An owner name is shown in the leases view and in errors as it is: characters that are
-- invisible or reorder the text around them are refused, and the error shows them escaped
-- ("job-1" followed by a right-to-left override would show as "job-1job-2").
SELECT lockhier.lease_application(7, E'job-1\u202E2-boj');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lease_application(7, ' ');
SELECT lockhier.lease_application(7, 'импорт 導入 🔒') AS kept \gset
SELECT owner = 'импорт 導入 🔒' AS kept_as_written FROM lockhier.leases WHERE token = :kept;
SELECT lockhier.release_lease(:kept);
