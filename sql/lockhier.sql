-- Anyone may take advisory locks with pg_advisory_lock(); lockhier is the same power with
-- names and hierarchy, so every role may use it. Revoke USAGE to restrict it.
GRANT USAGE ON SCHEMA lockhier TO PUBLIC;

COMMENT ON SCHEMA lockhier IS
  'Hierarchical, classed, shareable locks on PostgreSQL advisory locks; see the lockhier README';

-- Advisory locks in the key space lockhier uses (that of pg_advisory_xact_lock(bigint)), with
-- the key put back together so it can be matched against lockhier.key() and lockhier.plan_*().
CREATE VIEW lockhier.advisory_locks AS
SELECT (CASE WHEN l.classid::int8 >= 2147483648 THEN l.classid::int8 - 4294967296
             ELSE l.classid::int8 END) * 4294967296 + l.objid::int8 AS key,
       l.pid,
       l.mode,
       l.granted,
       l.waitstart,
       a.application_name,
       a.xact_start
  FROM pg_catalog.pg_locks l
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory'
   AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database());

GRANT SELECT ON lockhier.advisory_locks TO PUBLIC;
