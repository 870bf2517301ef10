-- The exact messages of the row-lock helpers. A second session (dblink) holds row locks.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
CREATE TABLE database_field (id bigint PRIMARY KEY, table_id bigint NOT NULL, name text);
INSERT INTO database_field SELECT i, i / 10, 'field ' || i FROM generate_series(1, 200) i;
CREATE SCHEMA "My App";
CREATE TABLE "My App"."Field Rows" (id int PRIMARY KEY, name text);
INSERT INTO "My App"."Field Rows" VALUES (1, 'a'), (2, 'b');
-- The README's calls: a field update's row, and every field of table 12 as an import would.
BEGIN;
SELECT lockhier.lock_rows('database_field', ARRAY[99]);
SELECT lockhier.lock_rows('database_field', ARRAY[12], 'share', key_column => 'table_id');
COMMIT;
-- Another session holds rows.
SELECT open_session('holder', 'field editor');
SELECT dblink_exec('holder', 'BEGIN');
SELECT * FROM dblink('holder', $$SELECT lockhier.lock_rows('database_field', ARRAY[99, 100])::text$$) AS t(x text);
SELECT * FROM dblink('holder', $$SELECT lockhier.lock_rows('"My App"."Field Rows"', ARRAY[2], 'key share')::text$$) AS t(x text);
SELECT show_error($$SELECT lockhier.lock_rows('database_field', ARRAY[99])$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_error($$SELECT lockhier.lock_rows('database_field', ARRAY[10], 'share', key_column => 'table_id', wait => '100 ms')$$);
SELECT show_error($$SELECT lockhier.lock_rows('"My App"."Field Rows"', ARRAY[1, 2])$$);
BEGIN;
SELECT lockhier.lock_rows('"My App"."Field Rows"', ARRAY[1, 2], 'no key update');
COMMIT;
SELECT lockhier.try_lock_rows('database_field', ARRAY[100]);
SELECT dblink_exec('holder', 'COMMIT');
SELECT dblink_disconnect('holder');
-- Bad input.
SELECT lockhier.lock_rows(NULL, ARRAY[1]);
SELECT lockhier.lock_rows('database_field', NULL::int[]);
SELECT lockhier.lock_rows('database_field', ARRAY[1], 'exclusive');
SELECT lockhier.lock_rows('database_field', ARRAY[1], key_column => 'field_id');
CREATE TABLE no_key (a int);
SELECT lockhier.lock_rows('no_key', ARRAY[1]);
CREATE TABLE two_keys (a int, b int, PRIMARY KEY (a, b));
SELECT lockhier.lock_rows('two_keys', ARRAY[1]);
SELECT lockhier.lock_rows('database_field', ARRAY['99']);
BEGIN;
SELECT lockhier.lock_rows('database_field', ARRAY[]::bigint[]);
COMMIT;
SELECT lockhier.lock_rows('database_field', ARRAY[1, NULL]);
-- Relations whose rows lockhier cannot lock within its wait, refused up front.
CREATE VIEW field_view AS SELECT * FROM database_field;
SELECT lockhier.lock_rows('field_view', ARRAY[1]);
SELECT lockhier.try_lock_rows('field_view', ARRAY[1]);
CREATE FOREIGN DATA WRAPPER row_errors_fdw;
CREATE SERVER row_errors_server FOREIGN DATA WRAPPER row_errors_fdw;
CREATE FOREIGN TABLE remote_field (id bigint) SERVER row_errors_server;
SELECT lockhier.lock_rows('remote_field', ARRAY[1], key_column => 'id');
-- A table locked by another transaction (LOCK TABLE): the wait bounds that lock too, and the
-- error says the table is locked, and by whom. (The session's lock_timeout is only a safety net:
-- were the table lock waited for outside the call's bound, a regression ends in 30 s, not never.)
SET lock_timeout = '30s';
SELECT open_session('migration', 'migration');
SELECT dblink_exec('migration', 'BEGIN');
SELECT dblink_exec('migration', 'LOCK TABLE database_field IN ACCESS EXCLUSIVE MODE');
SELECT show_error($$SELECT lockhier.lock_rows('database_field', ARRAY[99])$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_error($$SELECT lockhier.lock_rows('database_field', ARRAY[99], 'share', wait => '100 ms')$$);
SELECT lockhier.try_lock_rows('database_field', ARRAY[99]);
SELECT dblink_exec('migration', 'ROLLBACK');
SELECT dblink_disconnect('migration');
