-- Paths of names (docs/paths.md): the examples of the page, word for word; bad input with its
-- SQLSTATE; conflicts named as users wrote the path, escaped where text could spoof it; the
-- global scope over paths; held(), plan_path, blockers_path; the published path keys.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
-- docs/paths.md: a backup of one site of an app platform, and a chat server's room.
BEGIN;
SELECT lockhier.lock_path(ARRAY['sites', 'c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b', 'backups'], 'backup');
SELECT lockhier.try_lock_path(ARRAY['rooms', '!abc:example.org'], 'typing', 'share');
SELECT scope, level, classes, mode FROM lockhier.held();
COMMIT;
-- Bad input: each rule of a path, with its SQLSTATE.
SELECT lockhier.lock_path(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY['sites', NULL]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY[]::text[]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY['sites', '']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY[repeat('x', 256)]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY['a', E'b\tc']);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT lockhier.lock_path(ARRAY['sites'], 'Not A Class');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A million names cost no more than nine: the count is read from the array's header.
SELECT lockhier.try_lock_path(array_fill('a'::text, ARRAY[1000000]));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Eight names of 255 bytes, the longest path, is a path like any other.
BEGIN;
SELECT lockhier.try_lock_path(array_fill(repeat('n', 255), ARRAY[8]), 'backup');
SELECT level, length(scope) FROM lockhier.held();
COMMIT;
-- A backup of a site is running in another session...
SELECT open_session('backup', 'backup of c0a8f5e2');
SELECT dblink_exec('backup', 'BEGIN');
SELECT * FROM dblink('backup', $$SELECT lockhier.lock_path(ARRAY['sites', 'c0a8f5e2', 'backups'], 'backup')::text$$) AS t(x text);
-- ...so a second backup of it fails at once, naming the path as it was written,
SELECT show_error($$SELECT lockhier.lock_path(ARRAY['sites', 'c0a8f5e2', 'backups'], 'backup')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- and so does an exclusive lock on the whole site (a path covers what is under it),
SELECT show_error($$SELECT lockhier.lock_path(ARRAY['sites', 'c0a8f5e2'])$$);
-- and a maintenance lock on the global scope (which covers paths too);
SELECT show_error($$SELECT lockhier.lock_global()$$);
-- other sites, other classes, and every numeric scope go ahead.
BEGIN;
SELECT lockhier.lock_path(ARRAY['sites', 'c0a8f5e3', 'backups'], 'backup');
SELECT lockhier.lock_path(ARRAY['sites', 'c0a8f5e2', 'backups'], 'app_task');
SELECT lockhier.lock_application(7);
COMMIT;
SELECT pid IS NOT NULL AS has_pid, application_name, conflict, lock_mode, granted
  FROM lockhier.blockers_path(ARRAY['sites', 'c0a8f5e2'], ARRAY['backup', 'app_task']);
SELECT dblink_exec('backup', 'COMMIT');
-- Names that could pass for other paths are shown escaped: a slash inside a name, a quote, a
-- backslash, a bidirectional override.
SELECT dblink_exec('backup', 'BEGIN');
SELECT * FROM dblink('backup', $$SELECT lockhier.lock_path(ARRAY['a/b', 'say "hi"', E'back\\slash', E'job-1\u202E2-boj'])::text$$) AS t(x text);
SELECT show_error($$SELECT lockhier.lock_path(ARRAY['a/b', 'say "hi"', E'back\\slash', E'job-1\u202E2-boj'])$$);
SELECT dblink_exec('backup', 'COMMIT');
-- A path and a numeric scope never share a key, whatever the names.
SELECT lockhier.path_key(ARRAY['7']) <> lockhier.key('{7}') AS distinct_keys;
-- Session locks on paths: taken, listed, released.
SELECT lockhier.session_lock_path(ARRAY['archive', 'srv', 'photos'], 'archive', 'share');
SELECT held_for, scope, classes, mode, count FROM lockhier.held();
SELECT lockhier.session_unlock_path(ARRAY['archive', 'srv', 'photos'], 'archive', 'share');
SELECT lockhier.session_unlock_path(ARRAY['archive', 'srv', 'photos'], 'archive', 'share');
-- The plan of a request on a path: a node's plan, with the path's prefixes as ancestors.
SELECT step, role, lock_mode, scope, key_kind, class
  FROM lockhier.plan_path(ARRAY['sites', 'c0a8f5e2', 'backups'], 'backup');
-- The published path key test vectors (docs/plans-and-keys.md): any client must compute the same.
SELECT path, kind, class, key
  FROM (VALUES (ARRAY['sites'], 'all', NULL, lockhier.path_key(ARRAY['sites'])),
               (ARRAY['sites', 'c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b'], 'share marker', NULL,
                lockhier.path_marker_key(ARRAY['sites', 'c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b'], 'share')),
               (ARRAY['sites', 'c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b', 'backups'], 'class', 'backup',
                lockhier.path_key(ARRAY['sites', 'c0a8f5e2-9b1d-4a7e-8f00-1c2d3e4f5a6b', 'backups'], 'backup')),
               (ARRAY['!abc:example.org'], 'class', 'typing', lockhier.path_key(ARRAY['!abc:example.org'], 'typing')),
               (ARRAY['é', 'a/b'], 'exclusive marker', NULL, lockhier.path_marker_key(ARRAY['é', 'a/b'], 'exclusive'))
       ) AS v(path, kind, class, key);
-- Leases on paths: a chat server's worker holds a room; the room is named in the view and in
-- the error; the same owner gets its lease back, another is refused; the worker's shutdown
-- releases its tasks' leases.
SELECT lockhier.lease_path(ARRAY['rooms', '!abc:example.org'], 'chat-1/worker-3', 'room_worker', ttl => '1 min') AS room \gset
SELECT owner, scope, classes, mode FROM lockhier.leases;
SELECT show_error($$SELECT lockhier.lock_path(ARRAY['rooms', '!abc:example.org'], 'room_worker')$$);
SELECT lockhier.try_lease_path(ARRAY['rooms', '!abc:example.org'], 'chat-2/worker-1', 'room_worker') IS NULL AS refused;
SELECT lockhier.lease_path(ARRAY['rooms', '!abc:example.org'], 'chat-1/worker-3', 'room_worker', ttl => '1 min') = :room AS same_token;
SELECT lockhier.release_leases('chat-1');
SELECT dblink_disconnect('backup');
