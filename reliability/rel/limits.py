"""Check 3: limits. Lock-table entries per request shape, and what happens when one
transaction (or session) asks for more locks than the shared lock table holds."""

import psycopg

from .harness import connect, one, rows, error_of, sqlstate, describe_error, close_quietly, advisory_count

LEVELS = ["global", "application", "table", "field"]
PATHS = {"global": "", "application": "1, ", "table": "1, 1, ", "field": "1, 1, 1, "}
CLASS_SHAPES = [("one class", "'snapshot'"), ("all", "'all'"),
                ("3 classes", "ARRAY['snapshot', 'import', 'field__update']")]
MANY = 20000


def my_advisory_locks(conn):
    return rows(conn, "SELECT classid::bigint, objid::bigint, mode FROM pg_locks "
                      "WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid = 1 "
                      "ORDER BY 1, 2, 3")


def shapes(res, conn):
    """Each request shape's pg_locks rows, compared with its plan_*() (key and mode per step)."""
    table = {}
    wrong = []
    for level in reversed(LEVELS):
        for label, cls in CLASS_SHAPES:
            for mode in ("share", "exclusive"):
                args = f"{PATHS[level]}{cls}, '{mode}'"
                conn.execute("BEGIN")
                conn.execute(f"SELECT lockhier.lock_{level}({args})")
                got = my_advisory_locks(conn)
                conn.execute("ROLLBACK")
                plan = rows(conn, f"SELECT classid::bigint, objid::bigint, lock_mode FROM lockhier.plan_{level}({args}) ORDER BY 1, 2, 3")
                table[(level, label, mode)] = len(got)
                if got != plan:
                    wrong.append(f"{level} {label} {mode}: pg_locks {len(got)} rows != plan {len(plan)} steps")
    header = f"{'':12}" + "".join(f"{label + ' ' + mode:>22}" for label, _ in CLASS_SHAPES for mode in ("share", "exclusive"))
    lines = [header] + [f"{level:12}" + "".join(f"{table[(level, label, mode)]:>22}" for label, _ in CLASS_SHAPES
                                                 for mode in ("share", "exclusive")) for level in reversed(LEVELS)]
    res.note("lock-table entries (pg_locks rows) of one request, by shape:")
    res.note("\n".join(lines))
    single = [n for (lvl, label, mode), n in table.items() if label != "3 classes"]
    res.check("limits: each request shape holds exactly its plan_*() steps in pg_locks (key and mode)",
              not wrong, "; ".join(wrong[:5]))
    res.check("limits: a one-class or 'all' request takes at most 10 lock-table entries (README)",
              max(single) <= 10, f"max {max(single)}")
    # a session request adds lockhier's sentinel lock (one entry per session, not per request)
    conn.execute("SELECT lockhier.session_lock_field(1, 1, 1, 'snapshot')")
    first = len(my_advisory_locks(conn))
    conn.execute("SELECT lockhier.session_lock_field(1, 1, 2, 'snapshot')")
    second = len(my_advisory_locks(conn))
    released = one(conn, "SELECT lockhier.session_unlock_all()")
    left = len(my_advisory_locks(conn))
    res.check("limits: a session request holds its plan plus one sentinel entry per session; a second "
              "field request in the same table adds 2 entries",
              first == table[("field", "one class", "exclusive")] + 1 and second == first + 2
              and released == 2 and left == 0,
              f"first {first}, second {second}, released {released}, left {left}")
    return table


def nominal_lock_table(conn):
    s = dict(rows(conn, "SELECT name, setting::int FROM pg_settings WHERE name IN ('max_locks_per_transaction', "
                        "'max_connections', 'autovacuum_max_workers', 'max_worker_processes', "
                        "'max_wal_senders', 'max_prepared_transactions')"))
    backends = (s["max_connections"] + s["autovacuum_max_workers"] + 1 + s["max_worker_processes"]
                + s["max_wal_senders"])
    return s, s["max_locks_per_transaction"] * (backends + s["max_prepared_transactions"])


def healthy(other, conn):
    """Another session can lock and unlock, both sessions answer, nothing is left behind."""
    problems = []
    try:
        other.execute("BEGIN")
        other.execute("SELECT lockhier.lock_field(1, 1, 1, 'x')")
        other.execute("COMMIT")
        other.execute("SELECT lockhier.session_lock_application(1)")
        if one(other, "SELECT lockhier.session_unlock_application(1)") is not True:
            problems.append("session_unlock_application returned false")
        if one(other, "SELECT 1") != 1 or one(conn, "SELECT 1") != 1:
            problems.append("SELECT 1 failed")
        conn.execute("BEGIN")
        conn.execute("SELECT lockhier.lock_table(1, 1, 'x')")
        conn.execute("COMMIT")
        with connect("rel-limits-new") as fresh:
            if one(fresh, "SELECT count(*) FROM pg_stat_activity") < 1:
                problems.append("a new connection sees no activity")
        left = advisory_count(other)
        if left:
            problems.append(f"{left} advisory locks left")
    except psycopg.Error as exc:
        problems.append(describe_error(exc))
    return problems


def run(res):
    conn = connect("rel-limits")
    other = connect("rel-limits-other")
    try:
        table = shapes(res, conn)
        settings, nominal = nominal_lock_table(conn)
        res.note(f"max_locks_per_transaction {settings['max_locks_per_transaction']}, max_connections "
                 f"{settings['max_connections']}: nominal shared lock table {nominal} entries")

        # One transaction asks for MANY field requests at once.
        conn.execute("BEGIN")
        exc, _ = error_of(conn, f"SELECT count(lockhier.lock_field(1, 1, f, 'x')) FROM generate_series(1, {MANY}) f")
        conn.execute("ROLLBACK")
        hint = exc.diag.message_hint if exc is not None else ""
        ended = ("succeeded" if exc is None else f"failed with {describe_error(exc)} (HINT: {hint})")
        res.note(f"a transaction locking {MANY} fields {ended}")
        res.check(f"limits: a transaction locking {MANY} fields succeeds or fails with PostgreSQL's own "
                  "53200 out of shared memory, HINT max_locks_per_transaction",
                  exc is None or (sqlstate(exc) == "53200" and "out of shared memory" in str(exc)
                                  and "max_locks_per_transaction" in (hint or "")), ended)
        problems = healthy(other, conn)
        res.check("limits: afterwards the server and other sessions are healthy (lock/unlock in "
                  "another session and this one, SELECT 1, new connection, nothing left)",
                  not problems, "; ".join(problems))

        # How many field requests fit: count in PL/pgSQL until the error (variables survive it).
        conn.notices.clear()
        conn.execute(f"""
            DO $$
            DECLARE n int := 0;
            BEGIN
              BEGIN
                FOR f IN 1..{MANY} LOOP
                  PERFORM lockhier.lock_field(1, 1, f, 'x');
                  n := n + 1;
                END LOOP;
              EXCEPTION WHEN out_of_memory THEN
                RAISE NOTICE 'rel-fit % %', n, SQLERRM;
              END;
              RAISE NOTICE 'rel-fit-done %', n;
            END $$""")
        fit = [int(n.message_primary.split()[1]) for n in conn.notices
               if (n.message_primary or "").startswith("rel-fit-done")]
        fit = fit[0] if fit else None
        field_entries = table[("field", "one class", "exclusive")]
        if fit is not None:
            entries = field_entries + 2 * (fit - 1)
            res.note(f"{fit} field requests fit in one transaction "
                     f"({entries} lock-table entries: the first field request {field_entries}, each "
                     f"further field of the same table 2), i.e. {entries / nominal:.2f} x the nominal table")
        res.check("limits: the number of field requests that fit is measured and bounded "
                  "(0 < n <= 20000)", fit is not None and 0 < fit <= MANY, f"{fit}")
        problems = healthy(other, conn)
        res.check("limits: healthy again after the measurement", not problems, "; ".join(problems))

        # The same with session locks in one statement: the calls that succeeded before the
        # error keep their session locks (each call is its own request, and an abort does not
        # release session locks); held() must agree with the lock manager, and
        # session_unlock_all() must give every one of them back.
        exc, _ = error_of(conn, f"SELECT count(lockhier.session_lock_field(1, 1, f, 'x')) FROM generate_series(1, {MANY}) f")
        held_requests = one(conn, "SELECT coalesce(sum(count), 0)::int FROM lockhier.held()")
        entries = len(my_advisory_locks(conn))
        expected_entries = (field_entries + 2 * (held_requests - 1) + 1) if held_requests else 0
        released = one(conn, "SELECT lockhier.session_unlock_all()")
        left = len(my_advisory_locks(conn))
        res.note(f"session_lock_field x {MANY} in one statement: "
                 f"{describe_error(exc) if exc else 'succeeded'}; afterwards held() lists "
                 f"{held_requests} session requests in {entries} lock-table entries")
        res.check("limits: session variant: the statement ends like the transaction one, held() agrees "
                  "with pg_locks about what stayed held, session_unlock_all() releases all of it",
                  (exc is None or sqlstate(exc) == "53200") and held_requests > 0
                  and entries == expected_entries and released == held_requests and left == 0
                  and (fit is None or abs(held_requests - fit) <= 2),
                  f"{held_requests} held (fit {fit}), {entries} entries (want {expected_entries}), "
                  f"released {released}, left {left}")
        problems = healthy(other, conn)
        res.check("limits: healthy again after the session variant", not problems, "; ".join(problems))

        boundary(res)
        problems = healthy(other, conn)
        res.check("limits: healthy again after the boundary scan", not problems, "; ".join(problems))
    finally:
        close_quietly(conn, other)


def boundary(res):
    """A session request (or several in one session_lock_many) refused for lack of lock-table
    space takes nothing, even at the exact boundary. Another transaction fills the lock table with plain advisory locks (one entry
    each) to k entries, for k going down one at a time from the most that fit, and a fresh
    session then asks for one session request; every refusal (53200) must leave that session
    with no advisory lock and an empty held(). Going down one entry at a time makes the scan
    pass the point where the request's plan fits but nothing more does."""
    filler = connect("rel-limits-filler")
    try:
        filler.notices.clear()
        filler.execute("BEGIN")
        filler.execute("""
            DO $$
            DECLARE n int := 0;
            BEGIN
              BEGIN
                FOR i IN 1..200000 LOOP PERFORM pg_advisory_xact_lock(i); n := n + 1; END LOOP;
              EXCEPTION WHEN out_of_memory THEN
              END;
              RAISE NOTICE 'rel-kmax %', n;
            END $$""")
        filler.execute("ROLLBACK")
        kmax = int(filler.notices[-1].message_primary.split()[1])
        calls = [("session_lock_field", "SELECT lockhier.session_lock_field(5, 5, 5, 'y')"),
                 ("try_session_lock_field", "SELECT lockhier.try_session_lock_field(5, 5, 5, 'y')"),
                 # four requests in one plan: a refusal in its middle must give back the first ones
                 ("session_lock_many", "SELECT lockhier.session_lock_many('[" + ", ".join(
                     f'{{"application": 5, "table": {t}, "field": 5, "class": "y"}}' for t in range(1, 5))
                  + "]')")]
        for fn, call in calls:
            leaks, refusals, granted_at, odd = [], 0, None, []
            for k in range(kmax, kmax - 100, -1):
                victim = connect("rel-limits-boundary")     # connecting needs lock-table space too
                try:
                    one(victim, "SELECT count(*) FROM lockhier.held()")
                    one(victim, "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()")
                    filler.execute("BEGIN")
                    exc, _ = error_of(filler, f"SELECT count(pg_advisory_xact_lock(i)) FROM generate_series(1, {k}) i")
                    if exc is not None:
                        filler.execute("ROLLBACK")
                        continue
                    exc, got = error_of(victim, call)
                    filler.execute("ROLLBACK")
                    locks = one(victim, "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'")
                    held = one(victim, "SELECT count(*) FROM lockhier.held()")
                    # lock functions return void ('' here), try functions true or false
                    if exc is None and (got == [(True,)] or not fn.startswith("try_")):
                        granted_at = k
                        one(victim, "SELECT lockhier.session_unlock_all()")
                        break
                    refusals += 1
                    if sqlstate(exc) != "53200":
                        odd.append(f"k={k}: {describe_error(exc) if exc else got}")
                    if locks or held:
                        leaks.append(f"k={k}: {describe_error(exc) if exc else got}, yet {locks} advisory "
                                     f"locks held, held() {held} rows, session_unlock_all() "
                                     f"{one(victim, 'SELECT lockhier.session_unlock_all()')}")
                        victim.execute("SELECT pg_advisory_unlock_all()")
                finally:
                    close_quietly(victim)
            res.check(f"limits: {fn} refused with 53200 at the lock-table boundary takes nothing "
                      "(another transaction holds k plain advisory locks, k going down one at a time)",
                      granted_at is not None and refusals > 0 and not leaks and not odd,
                      (f"{refusals} refusals from k={kmax} down, granted at k={granted_at}"
                       if granted_at is not None else "never granted")
                      + ("" if not (leaks or odd) else ": " + "; ".join((leaks + odd)[:3])))
    finally:
        close_quietly(filler)
