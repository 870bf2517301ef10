-- Every object of the lockhier extension, as text, one line each, sorted: what an upgraded
-- installation and a fresh one must agree on. Run with psql -XAt.
WITH ext AS (
    SELECT e.oid, e.extversion, e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'lockhier'
), members AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = ext.oid
       AND d.deptype = 'e'
)
SELECT line FROM (
    SELECT 'extension lockhier ' || ext.extversion || ' in schema ' || ext.extnamespace::regnamespace AS line
      FROM ext
    UNION ALL
    SELECT format('schema %s owner-is-superuser %s acl %s comment %s', n.nspname,
                  (SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = n.nspowner),
                  n.nspacl, pg_catalog.obj_description(n.oid, 'pg_namespace'))
      FROM pg_catalog.pg_namespace n, ext WHERE n.oid = ext.extnamespace
    UNION ALL
    SELECT format('function %s(%s) returns %s | kind %s volatility %s strict %s parallel %s secdef %s leakproof %s | language %s symbol %s bin %s | defaults %s | acl %s | comment %s',
                  p.oid::regproc, pg_catalog.pg_get_function_arguments(p.oid),
                  pg_catalog.pg_get_function_result(p.oid), p.prokind, p.provolatile, p.proisstrict,
                  p.proparallel, p.prosecdef, p.proleakproof, l.lanname, p.prosrc, p.probin,
                  pg_catalog.pg_get_expr(p.proargdefaults, 0), p.proacl,
                  pg_catalog.obj_description(p.oid, 'pg_proc'))
      FROM members m JOIN pg_catalog.pg_proc p ON p.oid = m.objid
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
     WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION ALL
    SELECT format('relation %s kind %s acl %s comment %s | %s', c.oid::regclass, c.relkind, c.relacl,
                  pg_catalog.obj_description(c.oid, 'pg_class'),
                  CASE c.relkind WHEN 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END)
      FROM members m JOIN pg_catalog.pg_class c ON c.oid = m.objid
     WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
    UNION ALL
    SELECT format('column %s.%s %s not null %s', c.oid::regclass, a.attname,
                  pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull)
      FROM members m JOIN pg_catalog.pg_class c ON c.oid = m.objid
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
    UNION ALL
    SELECT format('member %s', pg_catalog.pg_describe_object(m.classid, m.objid, 0))
      FROM members m
     WHERE m.classid NOT IN ('pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_class'::pg_catalog.regclass)
) objects
ORDER BY line;
