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

-- Leases (docs/leases.md): the functions, as the install script creates them, and the view.
CREATE FUNCTION lockhier."lease_application"(
	"application_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_application_classes_wrapper';

CREATE FUNCTION lockhier."lease_application"(
	"application_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_application_wrapper';

CREATE FUNCTION lockhier."lease_field"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"field_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_field_classes_wrapper';

CREATE FUNCTION lockhier."lease_field"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"field_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_field_wrapper';

CREATE FUNCTION lockhier."lease_global"(
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_global_classes_wrapper';

CREATE FUNCTION lockhier."lease_global"(
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_global_wrapper';

CREATE FUNCTION lockhier."lease_list"() RETURNS TABLE (
	"token" bigint,  /* i64 */
	"owner" TEXT,  /* String */
	"scope" TEXT,  /* String */
	"classes" TEXT[],  /* Vec < String > */
	"mode" TEXT,  /* String */
	"acquired_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"renewed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"expires_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"taken_by" TEXT  /* Option < String > */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_list_wrapper';

CREATE FUNCTION lockhier."lease_table"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_table_classes_wrapper';

CREATE FUNCTION lockhier."lease_table"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_table_wrapper';

CREATE FUNCTION lockhier."lease_valid"(
	"token" bigint /* Option < i64 > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_valid_wrapper';

CREATE FUNCTION lockhier."release_lease"(
	"token" bigint /* Option < i64 > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'release_lease_wrapper';

CREATE FUNCTION lockhier."release_leases"(
	"owner" TEXT /* Option < & str > */
) RETURNS INT /* i32 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'release_leases_wrapper';

CREATE FUNCTION lockhier."renew_lease"(
	"token" bigint, /* Option < i64 > */
	"ttl" interval DEFAULT NULL /* Option < Interval > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'renew_lease_wrapper';

CREATE FUNCTION lockhier."try_lease_application"(
	"application_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_application_classes_wrapper';

CREATE FUNCTION lockhier."try_lease_application"(
	"application_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_application_wrapper';

CREATE FUNCTION lockhier."try_lease_field"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"field_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_field_classes_wrapper';

CREATE FUNCTION lockhier."try_lease_field"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"field_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_field_wrapper';

CREATE FUNCTION lockhier."try_lease_global"(
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_global_classes_wrapper';

CREATE FUNCTION lockhier."try_lease_global"(
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_global_wrapper';

CREATE FUNCTION lockhier."try_lease_table"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_table_classes_wrapper';

CREATE FUNCTION lockhier."try_lease_table"(
	"application_id" bigint, /* Option < i64 > */
	"table_id" bigint, /* Option < i64 > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_table_wrapper';

-- The leases held in this database (src/api/leases.rs). Qualified, as every object of
-- lockhier: nothing on the search_path it is created with can stand in for lease_list().
CREATE VIEW lockhier.leases AS
SELECT l.token, l.owner, l.scope, l.classes, l.mode, l.acquired_at, l.renewed_at, l.expires_at, l.taken_by
  FROM lockhier.lease_list() AS l;

GRANT SELECT ON lockhier.leases TO PUBLIC;

COMMENT ON VIEW lockhier.leases IS
  'The leases held in this database: token, owner, scope, classes, mode, when acquired, renewed and expiring, and the role that took each';
