-- The psql session of the README, run as written.
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__update');
SELECT held_for, scope, classes, mode FROM lockhier.held();
SELECT step, role, lock_mode, scope, key_kind, class FROM lockhier.plan_field(7, 12, 99, 'field__update');
-- The README's pg_locks query (its pid column changes from run to run, so its rows are
-- checked by the query after it).
\o /dev/null
SELECT l.pid, l.mode, l.granted, p.scope, p.key_kind, p.class
  FROM pg_locks l
  JOIN lockhier.plan_field(7, 12, 99, 'field__update') p
    ON l.locktype = 'advisory' AND l.objsubid = 1 AND (l.classid, l.objid) = (p.classid, p.objid);
\o
SELECT l.pid = pg_backend_pid() AS mine, l.mode, l.granted, p.scope, p.key_kind, p.class
  FROM pg_locks l
  JOIN lockhier.plan_field(7, 12, 99, 'field__update') p
    ON l.locktype = 'advisory' AND l.objsubid = 1 AND (l.classid, l.objid) = (p.classid, p.objid)
 ORDER BY p.step;
COMMIT;
SELECT lockhier.session_lock_application(7, 'snapshot', 'share');
SELECT lockhier.session_unlock_application(7, 'snapshot', 'share');
SELECT lockhier.key('{7,12,99}', 'field__update');
