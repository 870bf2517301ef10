-- lockhier 0.2.0 -> 0.3.0 (ALTER EXTENSION lockhier UPDATE). The objects this leaves must be
-- exactly those of a fresh 0.3.0: pg_test/upgrade/run.sh compares every one of them.
\echo Use "ALTER EXTENSION lockhier UPDATE" to load this file. \quit

-- The leases view gains a last column, held: false for a lease of the journal that waits to be
-- held again after a restart (docs/leases.md). lease_list() returns it, and a function's result
-- type cannot be changed in place: the view and the function are dropped and created again as
-- a fresh install creates them, with the view's grant and comment. (A view of yours built on
-- lockhier.leases makes the drop fail, and the update with it: drop it first, create it after.)
DROP VIEW lockhier.leases;
DROP FUNCTION lockhier.lease_list();

CREATE FUNCTION lockhier."lease_list"() RETURNS TABLE (
	"token" bigint,  /* i64 */
	"owner" TEXT,  /* String */
	"scope" TEXT,  /* String */
	"classes" TEXT[],  /* Vec < String > */
	"mode" TEXT,  /* String */
	"acquired_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"renewed_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"expires_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"taken_by" TEXT,  /* Option < String > */
	"held" bool  /* bool */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_list_wrapper';

-- The leases held in this database (src/api/leases.rs). Qualified, as every object of
-- lockhier: nothing on the search_path it is created with can stand in for lease_list().
CREATE VIEW lockhier.leases AS
SELECT l.token, l.owner, l.scope, l.classes, l.mode, l.acquired_at, l.renewed_at, l.expires_at, l.taken_by,
       l.held
  FROM lockhier.lease_list() AS l;

GRANT SELECT ON lockhier.leases TO PUBLIC;

COMMENT ON VIEW lockhier.leases IS
  'The leases held in this database: token, owner, scope, classes, mode, when acquired, renewed and expiring, the role that took each, and whether its locks are held (false while a lease of the journal waits to be held again after a restart)';

-- release_lease and renew_lease gain an optional owner (the lease must be that owner's or
-- under it: docs/leases.md). A default cannot be added to a function in place, so each is
-- dropped and created again as a fresh install creates it. (A function of yours that calls
-- them keeps working: it names them by name, not by oid.)
DROP FUNCTION lockhier.release_lease(bigint);
DROP FUNCTION lockhier.renew_lease(bigint, interval);

CREATE FUNCTION lockhier."release_lease"(
	"token" bigint, /* Option < i64 > */
	"owner" TEXT DEFAULT NULL /* Option < &str > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'release_lease_wrapper';

CREATE FUNCTION lockhier."renew_lease"(
	"token" bigint, /* Option < i64 > */
	"ttl" interval DEFAULT NULL, /* Option < Interval > */
	"owner" TEXT DEFAULT NULL /* Option < &str > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'renew_lease_wrapper';

-- Paths of names (docs/paths.md): the lock, lease, inspection and key functions on paths, as a
-- fresh install creates them.

CREATE FUNCTION lockhier."lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lock_path_wrapper';

CREATE FUNCTION lockhier."lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lock_path_classes_wrapper';

CREATE FUNCTION lockhier."try_lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lock_path_wrapper';

CREATE FUNCTION lockhier."try_lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lock_path_classes_wrapper';

CREATE FUNCTION lockhier."session_lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_lock_path_wrapper';

CREATE FUNCTION lockhier."session_lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_lock_path_classes_wrapper';

CREATE FUNCTION lockhier."try_session_lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_session_lock_path_wrapper';

CREATE FUNCTION lockhier."try_session_lock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_session_lock_path_classes_wrapper';

CREATE FUNCTION lockhier."session_unlock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive' /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_unlock_path_wrapper';

CREATE FUNCTION lockhier."session_unlock_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive' /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_unlock_path_classes_wrapper';

CREATE FUNCTION lockhier."plan_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive' /* Option < & str > */
) RETURNS TABLE (
	"step" INT,  /* i32 */
	"key" bigint,  /* i64 */
	"lock_mode" TEXT,  /* String */
	"role" TEXT,  /* String */
	"scope" TEXT,  /* String */
	"key_kind" TEXT,  /* String */
	"class" TEXT,  /* Option < String > */
	"classid" oid,  /* pg_sys :: Oid */
	"objid" oid  /* pg_sys :: Oid */
)
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'plan_path_wrapper';

CREATE FUNCTION lockhier."plan_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive' /* Option < & str > */
) RETURNS TABLE (
	"step" INT,  /* i32 */
	"key" bigint,  /* i64 */
	"lock_mode" TEXT,  /* String */
	"role" TEXT,  /* String */
	"scope" TEXT,  /* String */
	"key_kind" TEXT,  /* String */
	"class" TEXT,  /* Option < String > */
	"classid" oid,  /* pg_sys :: Oid */
	"objid" oid  /* pg_sys :: Oid */
)
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'plan_path_classes_wrapper';

CREATE FUNCTION lockhier."blockers_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS TABLE (
	"pid" INT,  /* Option < i32 > */
	"application_name" TEXT,  /* Option < String > */
	"client_addr" inet,  /* Option < Inet > */
	"conflict" TEXT,  /* String */
	"lock_mode" TEXT,  /* String */
	"key" bigint,  /* i64 */
	"granted" bool,  /* bool */
	"xact_start" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"xact_age" interval,  /* Option < Interval > */
	"state" TEXT,  /* Option < String > */
	"description" TEXT  /* String */
)
VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'blockers_path_wrapper';

CREATE FUNCTION lockhier."blockers_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS TABLE (
	"pid" INT,  /* Option < i32 > */
	"application_name" TEXT,  /* Option < String > */
	"client_addr" inet,  /* Option < Inet > */
	"conflict" TEXT,  /* String */
	"lock_mode" TEXT,  /* String */
	"key" bigint,  /* i64 */
	"granted" bool,  /* bool */
	"xact_start" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"xact_age" interval,  /* Option < Interval > */
	"state" TEXT,  /* Option < String > */
	"description" TEXT  /* String */
)
VOLATILE PARALLEL RESTRICTED 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'blockers_path_classes_wrapper';

CREATE FUNCTION lockhier."lease_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_path_wrapper';

CREATE FUNCTION lockhier."lease_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_path_classes_wrapper';

CREATE FUNCTION lockhier."try_lease_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"owner" TEXT, /* Option < & str > */
	"class" TEXT DEFAULT 'all', /* Option < & str > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_path_wrapper';

CREATE FUNCTION lockhier."try_lease_path"(
	"path" TEXT[], /* Option < Array < & str > > */
	"owner" TEXT, /* Option < & str > */
	"classes" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT DEFAULT 'exclusive', /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint /* Option < i64 > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_path_classes_wrapper';

CREATE FUNCTION lockhier."path_key"(
	"path" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"class" TEXT DEFAULT 'all' /* Option < & str > */
) RETURNS bigint /* i64 */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'path_key_wrapper';

CREATE FUNCTION lockhier."path_marker_key"(
	"path" TEXT[], /* :: std :: option :: Option < Array < & str > > */
	"mode" TEXT /* Option < & str > */
) RETURNS bigint /* i64 */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'path_marker_key_wrapper';

-- Several requests in one call, all or nothing (docs/many.md).

CREATE FUNCTION lockhier."lock_many"(
	"requests" jsonb, /* Option < JsonbArg > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lock_many_wrapper';

CREATE FUNCTION lockhier."session_lock_many"(
	"requests" jsonb, /* Option < JsonbArg > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_lock_many_wrapper';

CREATE FUNCTION lockhier."session_unlock_many"(
	"requests" jsonb /* Option < JsonbArg > */
) RETURNS INT /* i32 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_unlock_many_wrapper';

-- lease_many, try_lease_many: several leases for one owner, granted all or none, one token per
-- request (src/api/many.rs).
CREATE FUNCTION lockhier."lease_many"(
	"requests" jsonb, /* Option < JsonbArg > */
	"owner" TEXT, /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint[] /* :: std :: option :: Option < Vec < i64 > > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'lease_many_wrapper';

CREATE FUNCTION lockhier."try_lease_many"(
	"requests" jsonb, /* Option < JsonbArg > */
	"owner" TEXT, /* Option < & str > */
	"ttl" interval DEFAULT '2 min', /* Option < Interval > */
	"wait" interval DEFAULT '0' /* Option < Interval > */
) RETURNS bigint[] /* :: std :: option :: Option < Vec < i64 > > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'try_lease_many_wrapper';
