-- lockhier 0.1.0 -> 0.2.0 (ALTER EXTENSION lockhier UPDATE). The objects this leaves must be
-- exactly those of a fresh 0.2.0: pg_test/upgrade/run.sh compares every one of them.
\echo Use "ALTER EXTENSION lockhier UPDATE" to load this file. \quit

-- The view, with every operator, function and type qualified with pg_catalog, so that nothing
-- on the search_path it is created with can stand in for them.
CREATE OR REPLACE VIEW lockhier.advisory_locks AS
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
