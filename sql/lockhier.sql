-- Anyone may take advisory locks with pg_advisory_lock(); lockhier is the same power with
-- names and hierarchy, so every role may use it. Revoke USAGE to restrict it.
GRANT USAGE ON SCHEMA lockhier TO PUBLIC;

COMMENT ON SCHEMA lockhier IS
  'Hierarchical, classed, shareable locks on PostgreSQL advisory locks; see the lockhier README';

-- Advisory locks in the key space lockhier uses (that of pg_advisory_xact_lock(bigint)), with
-- the key put back together so it can be matched against lockhier.key() and lockhier.plan_*().
-- Operators, functions and types are qualified with pg_catalog, as in every statement lockhier
-- runs: nothing here may resolve to a look-alike on the search_path it is created with.
CREATE VIEW lockhier.advisory_locks AS
SELECT (CASE WHEN l.classid::pg_catalog.int8 OPERATOR(pg_catalog.>=) 2147483648
             THEN l.classid::pg_catalog.int8 OPERATOR(pg_catalog.-) 4294967296
             ELSE l.classid::pg_catalog.int8 END)
         OPERATOR(pg_catalog.*) 4294967296 OPERATOR(pg_catalog.+) l.objid::pg_catalog.int8 AS key,
       l.pid,
       l.mode,
       l.granted,
       l.waitstart,
       a.application_name,
       a.xact_start
  FROM pg_catalog.pg_locks l
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
 WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
   AND l.objsubid OPERATOR(pg_catalog.=) 1
   AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                           WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database());

GRANT SELECT ON lockhier.advisory_locks TO PUBLIC;
