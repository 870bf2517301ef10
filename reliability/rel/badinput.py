"""Check 4: bad input from a client gets its SQLSTATE and takes nothing.

Table-driven over every lock function family x scope level x argument rule. After each call
the same session must show an empty lockhier.held() and no advisory lock in pg_locks: for the
session_* families that is the real test (a session lock would survive the error's abort).
"""


from .harness import connect, error_of, one, sqlstate, describe_error, close_quietly, advisory_count

IDS = {"global": [], "application": ["application_id"], "table": ["application_id", "table_id"],
       "field": ["application_id", "table_id", "field_id"]}
LOCK_FAMILIES = ["lock_", "try_lock_", "session_lock_", "try_session_lock_"]
WAITLESS = {"session_unlock_", "plan_"}
ALL_FAMILIES = LOCK_FAMILIES + ["session_unlock_", "plan_", "blockers_"]


def call(family, level, ids=None, cls="'import'", mode="'exclusive'", wait="'0'"):
    ids = ids if ids is not None else [str(i + 1) for i in range(len(IDS[level]))]
    args = list(ids) + [cls, mode]
    if family not in WAITLESS:
        args.append(wait)
    prefix = "SELECT * FROM" if family in ("plan_", "blockers_") else "SELECT"
    return f"{prefix} lockhier.{family}{level}({', '.join(args)})"


def rules():
    """(rule, sqlstate, message fragment, [sql...])"""
    out = []

    def per_call(rule, state, fragment, make, families=ALL_FAMILIES, levels=IDS):
        sqls = []
        for fam in families:
            for lvl in levels:
                sqls.extend(make(fam, lvl))
        out.append((rule, state, fragment, sqls))

    def null_ids(fam, lvl):
        for i, name in enumerate(IDS[lvl]):
            ids = [str(j + 1) for j in range(len(IDS[lvl]))]
            ids[i] = "NULL::bigint"
            yield call(fam, lvl, ids=ids)

    per_call('NULL id -> 22004', "22004", "must not be null", null_ids)
    per_call('NULL class -> 22004', "22004", 'argument "class" must not be null',
             lambda f, l: [call(f, l, cls="NULL::text")])
    per_call('NULL classes array -> 22004', "22004", 'argument "classes" must not be null',
             lambda f, l: [call(f, l, cls="NULL::text[]")])
    per_call('NULL mode -> 22004', "22004", 'argument "mode" must not be null',
             lambda f, l: [call(f, l, mode="NULL::text"), call(f, l, cls="ARRAY['import']", mode="NULL")])
    per_call('unknown mode -> 22023', "22023", "unknown lock mode",
             lambda f, l: [call(f, l, mode="'shared'"), call(f, l, mode="''"),
                           call(f, l, mode="'exclusive '")])
    bad_classes = ["''", "repeat('x', 64)", "'field update'", "'a/b'", "'a''b'", "'é'",
                   "'ａ'", "'snapshot' || chr(8232)", "'x' || repeat('é', 31)"]
    per_call('malformed class name (empty, 64 bytes, bad or non-ASCII characters) -> 22023',
             "22023", "invalid class name",
             lambda f, l: [call(f, l, cls=f"{c}::text") for c in bad_classes]
             + [call(f, l, cls=f"ARRAY['import', {c}]") for c in bad_classes[:3]])
    per_call('empty classes array -> 22023', "22023", "classes must not be empty",
             lambda f, l: [call(f, l, cls="ARRAY[]::text[]"), call(f, l, cls="'{}'::text[]")])
    per_call('NULL element in classes -> 22004 (a NULL anywhere is 22004)', "22004", "classes must not contain NULL",
             lambda f, l: [call(f, l, cls="ARRAY['import', NULL]"), call(f, l, cls="ARRAY[NULL]::text[]")])
    per_call('65 distinct classes, or 200,000 of them -> 22023', "22023", "too many classes: more than 64",
             lambda f, l: [call(f, l, cls="(SELECT array_agg('c' || g) FROM generate_series(1, 65) g)"),
                           call(f, l, cls="(SELECT array_agg('c' || g) FROM generate_series(1, 200000) g)")])
    per_call('negative wait -> 22023', "22023", "wait must not be negative",
             lambda f, l: [call(f, l, wait="'-1 s'"), call(f, l, wait="'-1 ms'"),
                           call(f, l, wait="'-1 microsecond'")],
             families=[f for f in ALL_FAMILIES if f not in WAITLESS])
    non_global = {k: v for k, v in IDS.items() if k != "global"}
    per_call('id that is not a number -> 22P02', "22P02", "invalid input syntax",
             lambda f, l: [call(f, l, ids=["'abc'"] + ["1"] * (len(IDS[l]) - 1)),
                           call(f, l, ids=["1"] * (len(IDS[l]) - 1) + ["'1.5'"])],
             levels=non_global)
    per_call('id of a type with no implicit cast to bigint (numeric 1.5, text) -> 42883', "42883",
             "does not exist",
             lambda f, l: [call(f, l, ids=["1.5"] + ["1"] * (len(IDS[l]) - 1)),
                           call(f, l, ids=["1"] * (len(IDS[l]) - 1) + ["'7'::text"])],
             levels=non_global)
    out.append(("key()/marker_key(): NULL path or NULL in it -> 22004", "22004", "null",
                ["SELECT lockhier.key(NULL)", "SELECT lockhier.key('{1,NULL}')",
                 "SELECT lockhier.marker_key(NULL, 'share')", "SELECT lockhier.marker_key('{1}', NULL)"]))
    out.append(("key()/marker_key(): 4 ids, bad class or mode -> 22023", "22023", "",
                ["SELECT lockhier.key('{1,2,3,4}')", "SELECT lockhier.key('{1}', 'a b')",
                 "SELECT lockhier.marker_key('{1}', 'shared')"]))
    return out


ROW_TABLES = """
CREATE TABLE rows_t (id int PRIMARY KEY, grp int NOT NULL);
INSERT INTO rows_t SELECT g, g % 3 FROM generate_series(1, 9) g;
CREATE TABLE nopk (id int);
INSERT INTO nopk VALUES (1);
CREATE TABLE twopk (a int, b int, PRIMARY KEY (a, b));
INSERT INTO twopk VALUES (1, 1);
CREATE SCHEMA "My App";
CREATE TABLE "My App"."Field Rows" ("Row Id" int PRIMARY KEY, "Table Id" int NOT NULL, label text);
INSERT INTO "My App"."Field Rows" SELECT g, g % 3, 'row ' || g FROM generate_series(1, 9) g;
CREATE TABLE canary (x int);
CREATE TABLE "My App"."we""ird; DROP TABLE canary; --" ("i""d" bigint PRIMARY KEY);
INSERT INTO "My App"."we""ird; DROP TABLE canary; --" VALUES (1), (2), (3);
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (200);
INSERT INTO parted VALUES (1), (2), (150);
"""

WEIRD = "'\"My App\".\"we\"\"ird; DROP TABLE canary; --\"'"
FIELD_ROWS = "'\"My App\".\"Field Rows\"'"


def row_rules():
    lr = ["lock_rows", "try_lock_rows"]
    out = [
        ("lock_rows: NULL rel / ids / mode -> 22004", "22004", "must not be null",
         [f"SELECT lockhier.{f}({a})" for f in lr for a in
          ["NULL, ARRAY[1]", "'rows_t', NULL::int[]", "'rows_t', ARRAY[1], NULL",
           "'rows_t', ARRAY[1], 'update', '0', NULL"][:3]]),
        ("lock_rows: unknown row lock mode -> 22023", "22023", "unknown row lock mode",
         [f"SELECT lockhier.{f}('rows_t', ARRAY[1], {m})" for f in lr
          for m in ["'exclusive'", "'nokey update'", "''", "'for update'"]]),
        ("lock_rows: negative wait -> 22023", "22023", "wait must not be negative",
         [f"SELECT lockhier.{f}('rows_t', ARRAY[1], wait => '-1 s')" for f in lr]),
        ("lock_rows: no primary key / composite primary key -> 22023", "22023", "primary key",
         [f"SELECT lockhier.{f}({t}, ARRAY[1])" for f in lr for t in ["'nopk'", "'twopk'"]]),
        ("lock_rows: unknown key_column -> 42703", "42703", "does not exist",
         [f"SELECT lockhier.{f}('rows_t', ARRAY[1], key_column => {c})" for f in lr
          for c in ["'nope'", "'ID'", "'ctid'", "'........pg.dropped.1........'"]]),
        ("lock_rows: ids whose type cannot be compared with the key -> 42804", "42804", "cannot be compared",
         [f"SELECT lockhier.{f}('rows_t', {ids})" for f in lr
          for ids in ["ARRAY['a']", "ARRAY[now()]", "ARRAY[true]"]]),
        ("lock_rows: a relation OID that does not exist -> 42P01", "42P01", "does not exist",
         [f"SELECT lockhier.{f}(4000000000::oid::regclass, ARRAY[1])" for f in lr]),
    ]
    return out


def no_lock_left(conn):
    held, locks = conn.execute(
        "SELECT (SELECT count(*) FROM lockhier.held()), "
        "(SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')").fetchone()
    return held, locks


def run_rules(res, conn, table):
    for rule, state, fragment, sqls in table:
        wrong = []
        for sql in sqls:
            exc, _ = error_of(conn, sql)
            msg = describe_error(exc)
            held, locks = no_lock_left(conn)
            if sqlstate(exc) != state or fragment.lower() not in msg.lower():
                wrong.append(f"{sql}: got {msg}")
            if held or locks:
                wrong.append(f"{sql}: left {held} held() rows and {locks} advisory locks")
                conn.execute("SELECT lockhier.session_unlock_all()")
        res.check(f"bad input: {rule}, and no lock taken", not wrong,
                  f"{len(sqls)} calls" if not wrong else f"{len(wrong)} wrong of {len(sqls)}:\n  "
                  + "\n  ".join(wrong[:8]))


def run(res):
    conn = connect("rel-badinput")
    other = connect("rel-badinput-other")
    try:
        run_rules(res, conn, rules())

        # Positive controls at the edges: these must be accepted (and are given back).
        ok_calls = [
            ("63-byte class", "SELECT lockhier.session_lock_field(1, 2, 3, repeat('x', 63))",
             "SELECT lockhier.session_unlock_field(1, 2, 3, repeat('x', 63))"),
            ("every allowed character, any case", "SELECT lockhier.session_lock_table(1, 2, 'Az09_.:-', 'SHARE')",
             "SELECT lockhier.session_unlock_table(1, 2, 'az09_.:-', 'share')"),
            ("64 classes", "SELECT lockhier.session_lock_application(1, (SELECT array_agg('c' || g) FROM generate_series(1, 64) g))",
             "SELECT lockhier.session_unlock_application(1, (SELECT array_agg('c' || g) FROM generate_series(64, 1, -1) g))"),
            ("negative and extreme ids", "SELECT lockhier.session_lock_field(-1, 9223372036854775807, -9223372036854775808, 'x')",
             "SELECT lockhier.session_unlock_field(-1, 9223372036854775807, -9223372036854775808, 'x')"),
            ("wait '1 microsecond'", "SELECT lockhier.session_lock_global('x', 'share', '1 microsecond')",
             "SELECT lockhier.session_unlock_global('x', 'share')"),
        ]
        wrong = []
        for label, lock_sql, unlock_sql in ok_calls:
            exc, _ = error_of(conn, lock_sql)
            if exc is not None:
                wrong.append(f"{label}: {describe_error(exc)}")
                continue
            exc, got = error_of(conn, unlock_sql)
            if exc is not None or got != [(True,)]:
                wrong.append(f"{label}: unlock gave {describe_error(exc) if exc else got}")
            if any(no_lock_left(conn)):
                wrong.append(f"{label}: something left after the unlock")
                conn.execute("SELECT lockhier.session_unlock_all()")
        res.check("bad input: the edges of each rule are accepted (63-byte class, all allowed "
                  "characters in any case, 64 classes, extreme ids, 1 microsecond wait)",
                  not wrong, "; ".join(wrong))

        # Unlocking what is not held: false and a WARNING, and it takes nothing either.
        conn.notices.clear()
        got = one(conn, "SELECT lockhier.session_unlock_application(7, 'snapshot', 'share')")
        warned = [n for n in conn.notices if n.sqlstate == "01000"
                  and (n.message_primary or "").startswith("lockhier session lock not held")]
        res.check("bad input: session_unlock of a request not held returns false with WARNING 01000",
                  got is False and warned and not any(no_lock_left(conn)),
                  f"returned {got}, notices {[n.message_primary for n in conn.notices]}")

        # Row helper
        conn.execute(ROW_TABLES)
        run_rules(res, conn, row_rules())

        got = one(conn, "SELECT lockhier.lock_rows('rows_t', ARRAY[]::int[])")
        res.check("lock_rows: an empty array locks nothing and returns 0", got == 0, f"returned {got}")

        # Odd names: schema and table with spaces and capitals, a name with a double quote
        # and SQL in it, a column that needs quoting; the keys still travel as a parameter.
        conn.execute("BEGIN")
        n1 = one(conn, f"SELECT lockhier.lock_rows({FIELD_ROWS}, ARRAY[1, 2, 99])")
        n2 = one(conn, f"SELECT lockhier.lock_rows({FIELD_ROWS}, ARRAY[2], 'Key   Share', key_column => 'Table Id')")
        n3 = one(conn, f"SELECT lockhier.lock_rows({WEIRD}, ARRAY[1, 3]::bigint[], 'no key update')")
        n4 = one(conn, "SELECT lockhier.lock_rows('parted', ARRAY[2, 150])")
        other.execute("BEGIN")
        try_other = one(other, f"SELECT lockhier.try_lock_rows({FIELD_ROWS}, ARRAY[1])")
        free_other = one(other, f"SELECT lockhier.lock_rows({FIELD_ROWS}, ARRAY[3])")
        exc, _ = error_of(other, f"SELECT lockhier.lock_rows({WEIRD}, ARRAY[3]::bigint[])")
        other.execute("ROLLBACK")
        other.execute("BEGIN")
        exc2, _ = error_of(other, "SELECT lockhier.lock_rows('parted', ARRAY[150])")
        other.execute("ROLLBACK")
        conn.execute("ROLLBACK")
        canary = one(conn, "SELECT to_regclass('canary') IS NOT NULL")
        res.check("lock_rows: tables whose names need quoting work: \"My App\".\"Field Rows\" by "
                  "primary key and by key_column \"Table Id\", a name containing a double quote "
                  "and SQL, a partitioned table",
                  (n1, n2, n3, n4) == (2, 3, 2, 2) and canary,
                  f"counts {(n1, n2, n3, n4)} (want (2, 3, 2, 2)), canary table {'still there' if canary else 'GONE'}")
        res.check("lock_rows: on those tables another transaction is refused on locked rows "
                  "(try -> false, lock -> 55P03 naming the table) and free rows stay free",
                  try_other is False and free_other == 1 and sqlstate(exc) == "55P03"
                  and "we\"\"ird" in describe_error(exc) and sqlstate(exc2) == "55P03",
                  f"try {try_other}, free row {free_other}, error {describe_error(exc)!r}, "
                  f"partitioned {describe_error(exc2)!r}")
        left = advisory_count(conn)
        res.check("bad input: no advisory lock left in the database", left == 0, f"{left} left")
    finally:
        close_quietly(conn, other)
