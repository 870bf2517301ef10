"""Check 5: a plain role can use the advisory API; the row helper runs with the caller's rights."""

from .harness import ROLE, connect, error_of, one, rows, sqlstate, describe_error, close_quietly, advisory_count

SETUP = f"""
CREATE ROLE "{ROLE}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE TABLE priv_ok (id int PRIMARY KEY);
CREATE TABLE priv_noupdate (id int PRIMARY KEY);
CREATE TABLE priv_noselect (id int PRIMARY KEY);
CREATE TABLE priv_none (id int PRIMARY KEY);
CREATE TABLE priv_colpriv (id int PRIMARY KEY, secret int);
CREATE TABLE priv_rls (id int PRIMARY KEY, owner name NOT NULL);
CREATE SCHEMA priv_hidden;
CREATE TABLE priv_hidden.t (id int PRIMARY KEY);
INSERT INTO priv_ok SELECT generate_series(1, 3);
INSERT INTO priv_noupdate SELECT generate_series(1, 3);
INSERT INTO priv_noselect SELECT generate_series(1, 3);
INSERT INTO priv_none SELECT generate_series(1, 3);
INSERT INTO priv_colpriv SELECT g, g FROM generate_series(1, 3) g;
INSERT INTO priv_hidden.t SELECT generate_series(1, 3);
INSERT INTO priv_rls VALUES (1, '{ROLE}'), (2, 'someone_else'), (3, '{ROLE}'), (4, 'someone_else');
ALTER TABLE priv_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON priv_rls USING (owner = current_user);
GRANT SELECT, UPDATE ON priv_ok, priv_rls, priv_hidden.t TO "{ROLE}";
GRANT SELECT ON priv_noupdate TO "{ROLE}";
GRANT UPDATE ON priv_noselect TO "{ROLE}";
GRANT SELECT (id), UPDATE ON priv_colpriv TO "{ROLE}";
"""


# Every function that takes or gives back an advisory lock on a bigint key: lockhier's key space.
ADVISORY_BIGINT_FUNCTIONS = (
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
    "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_shared",
)


def run(res):
    su = connect("rel-priv-superuser")
    su.execute(SETUP)
    try:   # over TCP to 127.0.0.1 when the server listens there, else as the caller's PGHOST says
        user, transport = connect("rel-priv-user", user=ROLE, host="127.0.0.1"), "127.0.0.1"
    except Exception:  # noqa: BLE001
        user, transport = connect("rel-priv-user", user=ROLE), "PGHOST"
    su2 = connect("rel-priv-superuser-2")
    try:
        is_super, who = user.execute("SELECT rolsuper, current_user FROM pg_roles WHERE rolname = current_user").fetchone()
        res.check(f"privileges: the suite's role {who} is a plain LOGIN role (not superuser), "
                  f"connected through {transport}",
                  who == ROLE and is_super is False, f"rolsuper={is_super}")
        secdef = one(su, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'lockhier'::regnamespace AND prosecdef")
        res.check("privileges: no lockhier function is SECURITY DEFINER", secdef == 0, f"{secdef} are")

        # --- the advisory API as a plain role --------------------------------------------
        problems = []
        user.execute("BEGIN")
        user.execute("SELECT lockhier.lock_field(5, 1, 1, 'field__update')")
        if one(user, "SELECT lockhier.try_lock_table(5, 1, ARRAY['import', 'field__deletion'], 'share')") is not True:
            problems.append("try_lock_table returned false")
        held = rows(user, "SELECT held_for, scope, mode FROM lockhier.held() ORDER BY scope")
        if len(held) != 2:
            problems.append(f"held() in the transaction: {held}")
        user.execute("COMMIT")
        user.execute("SELECT lockhier.session_lock_application(5, 'snapshot', 'share')")
        if one(user, "SELECT lockhier.try_session_lock_global('app_task', 'share', '10 ms')") is not True:
            problems.append("try_session_lock_global returned false")
        held = rows(user, "SELECT held_for, level FROM lockhier.held() ORDER BY level")
        if held != [("session", "application"), ("session", "global")]:
            problems.append(f"held() with session locks: {held}")
        if one(user, "SELECT lockhier.session_unlock_application(5, 'snapshot', 'share')") is not True:
            problems.append("session_unlock_application returned false")
        if one(user, "SELECT lockhier.session_unlock_all()") != 1:
            problems.append("session_unlock_all did not release the one remaining request")
        plan = one(user, "SELECT count(*) FROM lockhier.plan_field(5, 1, 1, 'field__update')")
        if plan != 8:
            problems.append(f"plan_field has {plan} steps, not 8")
        key = one(user, "SELECT lockhier.key('{7}')")
        if key != 340827997704438321:
            problems.append(f"key('{{7}}') = {key}")
        left = advisory_count(su, pid=one(user, "SELECT pg_backend_pid()"))
        if left:
            problems.append(f"{left} advisory locks left")
        res.check("privileges: a plain role can lock, try, session-lock, unlock, list held(), "
                  "plan and compute keys", not problems, "; ".join(problems))

        # a superuser's lock is in the way of the plain role, and blockers_*() shows it
        su_pid = one(su, "SELECT pg_backend_pid()")
        su.execute("BEGIN")
        su.execute("SELECT lockhier.lock_application(6)")
        exc, _ = error_of(user, "SELECT lockhier.lock_field(6, 1, 1, 'field__update')")
        tried = one(user, "SELECT lockhier.try_lock_field(6, 1, 1, 'field__update', 'share', '20 ms')")
        blockers = rows(user, "SELECT pid, granted, client_addr, xact_start FROM lockhier.blockers_field(6, 1, 1, 'field__update')")
        detail = exc.diag.message_detail if exc is not None else ""
        su.execute("ROLLBACK")
        after = rows(user, "SELECT pid FROM lockhier.blockers_field(6, 1, 1, 'field__update')")
        res.check("privileges: a plain role is refused by a superuser's conflicting lock (55P03 "
                  "naming its pid; try -> false) and blockers_*() lists it, then nothing",
                  sqlstate(exc) == "55P03" and f"process {su_pid}" in (detail or "")
                  and tried is False and len(blockers) == 1 and blockers[0][0] == su_pid
                  and blockers[0][1] is True and after == [],
                  f"error {describe_error(exc)}, DETAIL {detail!r}, try {tried}, blockers {blockers}, after {after}")
        # the other way round: the superuser sees the plain role in the way
        user.execute("SELECT lockhier.session_lock_table(6, 2, 'import', 'share')")
        user_pid = one(user, "SELECT pg_backend_pid()")
        seen = rows(su, "SELECT pid, granted, application_name, host(client_addr) FROM lockhier.blockers_table(6, 2)")
        addr = "127.0.0.1" if transport == "127.0.0.1" else one(su, "SELECT host(client_addr) FROM pg_stat_activity WHERE pid = %s", [user_pid])
        freed = one(user, "SELECT lockhier.session_unlock_table(6, 2, 'import', 'share')")
        res.check("privileges: the plain role's session lock is in the superuser's way and named",
                  seen == [(user_pid, True, "rel-priv-user", addr)] and freed is True, f"{seen}")

        # --- the row helper runs with the caller's rights --------------------------------
        def user_rows(sql):
            user.execute("BEGIN")
            exc, got = error_of(user, sql)
            user.execute("ROLLBACK")
            return exc, got

        exc, got = user_rows("SELECT lockhier.lock_rows('priv_ok', ARRAY[1, 2])")
        res.check("lock_rows as a plain role with SELECT and UPDATE: locks the rows",
                  exc is None and got == [(2,)], f"{describe_error(exc)} {got}")
        for table, why in [("priv_noupdate", "SELECT but no UPDATE"),
                           ("priv_noselect", "UPDATE but no SELECT"),
                           ("priv_none", "no privilege at all"),
                           ("priv_hidden.t", "privileges on the table but no USAGE on its schema")]:
            results = []
            for fn in ("lock_rows", "try_lock_rows"):
                for mode in ("update", "key share"):
                    exc, got = user_rows(f"SELECT lockhier.{fn}('{table}', ARRAY[1], '{mode}')")
                    results.append((fn, mode, sqlstate(exc), describe_error(exc) if exc else got))
            res.check(f"lock_rows/try_lock_rows as a plain role with {why} ({table}): PostgreSQL's "
                      "permission error 42501 for every strength",
                      all(r[2] == "42501" for r in results),
                      "; ".join(f"{r[0]} {r[1]}: {r[3]}" for r in results if r[2] != "42501")
                      or results[0][3])
        exc, got = user_rows("SELECT lockhier.lock_rows('priv_colpriv', ARRAY[1], key_column => 'secret')")
        exc2, got2 = user_rows("SELECT lockhier.lock_rows('priv_colpriv', ARRAY[1])")
        res.check("lock_rows: a key_column the role may not SELECT gives 42501; the column it may "
                  "read works", sqlstate(exc) == "42501" and exc2 is None and got2 == [(1,)],
                  f"secret: {describe_error(exc)}; id: {describe_error(exc2)} {got2}")

        # row-level security: the role locks only the rows it can see
        user.execute("BEGIN")
        n = one(user, "SELECT lockhier.lock_rows('priv_rls', ARRAY[1, 2, 3, 4])")
        su2.execute("BEGIN")
        su2.execute("SET LOCAL lock_timeout = '100ms'")
        exc_hidden, got_hidden = error_of(su2, "SELECT id FROM priv_rls WHERE id IN (2, 4) ORDER BY id FOR UPDATE NOWAIT")
        su2.execute("ROLLBACK")
        su2.execute("BEGIN")
        exc_seen, _ = error_of(su2, "SELECT id FROM priv_rls WHERE id = 1 FOR UPDATE NOWAIT")
        su2.execute("ROLLBACK")
        user.execute("ROLLBACK")
        res.check("lock_rows with row-level security: counts and locks only the rows the role can "
                  "see (2 of 4); the others stay free for other transactions",
                  n == 2 and exc_hidden is None and got_hidden == [(2,), (4,)] and sqlstate(exc_seen) == "55P03",
                  f"count {n}; hidden rows: {describe_error(exc_hidden) if exc_hidden else got_hidden}; "
                  f"visible row: {describe_error(exc_seen)}")
        user.execute("BEGIN")
        n_try = one(user, "SELECT lockhier.try_lock_rows('priv_rls', ARRAY[2, 4])")
        n_cnt = one(user, "SELECT lockhier.lock_rows('priv_rls', ARRAY[2, 4])")
        user.execute("ROLLBACK")
        res.check("lock_rows with row-level security: rows the role cannot see count 0 (not an error)",
                  n_try is True and n_cnt == 0, f"try {n_try}, count {n_cnt}")

        # --- keeping a role out of lockhier: USAGE alone is not enough ---------------------
        # lockhier's keys are published, so a role allowed pg_advisory_*(bigint) takes them
        # without lockhier. The README says to revoke both; this is that combination.
        key = one(su, "SELECT lockhier.key('{9}')")
        advisory = ", ".join(f"pg_catalog.{fn}(bigint)" for fn in ADVISORY_BIGINT_FUNCTIONS)
        su.execute("REVOKE USAGE ON SCHEMA lockhier FROM PUBLIC")
        try:
            user.execute("BEGIN")
            exc_schema, _ = error_of(user, "SELECT lockhier.try_lock_application(9)")
            user.execute("ROLLBACK")
            user.execute("BEGIN")
            raw_before = one(user, f"SELECT pg_try_advisory_xact_lock({key})")
            user.execute("ROLLBACK")
            su.execute(f"REVOKE EXECUTE ON FUNCTION {advisory} FROM PUBLIC")
            try:
                raw_after = []
                for fn in ADVISORY_BIGINT_FUNCTIONS:
                    user.execute("BEGIN")
                    raw_after.append((fn, sqlstate(error_of(user, f"SELECT {fn}({key})")[0])))
                    user.execute("ROLLBACK")
            finally:
                su.execute(f"GRANT EXECUTE ON FUNCTION {advisory} TO PUBLIC")
        finally:
            su.execute("GRANT USAGE ON SCHEMA lockhier TO PUBLIC")
        res.check("privileges: with USAGE on lockhier revoked the role is refused lockhier (42501) "
                  "but still takes its published key with pg_advisory_xact_lock(bigint); with EXECUTE "
                  "on the ten pg_advisory_*(bigint) functions revoked too, every way in is 42501",
                  sqlstate(exc_schema) == "42501" and raw_before is True
                  and all(state == "42501" for _, state in raw_after),
                  f"schema: {describe_error(exc_schema)}; raw before: {raw_before}; after: {raw_after}")
    finally:
        close_quietly(user, su, su2)
