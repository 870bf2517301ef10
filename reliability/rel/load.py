"""Check 1: the lock model's invariant, exhaustively on pairs and then under concurrent load."""

import os
import random
import threading
import time

import psycopg

from . import history, oracle
from .harness import advisory_count, connect, now, one, close_quietly

LEVELS = ["global", "application", "table", "field"]
NAMED = ["snapshot", "import", "field__update"]
LOAD_LOCK_TIMEOUT = "60ms"   # the session lock_timeout of load connections (bounds wait => NULL)


def call_sql(function, path, classes, with_wait=True):
    """SELECT lockhier.<function><level>(ids..., class|classes, mode[, wait]) with parameters."""
    args = ["%s::bigint"] * len(path)
    args.append("%s::text[]" if isinstance(classes, list) else "%s::text")
    args.append("%s::text")
    if with_wait:
        args.append("%s::interval")
    return f"SELECT lockhier.{function}{LEVELS[len(path)]}({', '.join(args)})"


def literal_call(function, path, classes, mode):
    """The same call as SQL text (for statements that make many calls at once)."""
    ids = [str(i) for i in path]
    if isinstance(classes, list):
        cls = "ARRAY[" + ", ".join(f"'{c}'" for c in classes) + "]"
    else:
        cls = f"'{classes}'"
    return f"lockhier.{function}{LEVELS[len(path)]}({', '.join(ids + [cls, repr(mode)])})"


# --- exhaustive pairs: the server against the oracle, one pair at a time ----------------------

def universe():
    nodes = [()]
    for a in (1, 2):
        nodes.append((a,))
        for t in (1, 2):
            nodes.append((a, t))
            for f in (1, 2):
                nodes.append((a, t, f))
    classes = ["all", "a", "b", ["a", "b"], ["b", "c"]]
    return [(n, c, m) for n in nodes for c in classes for m in ("share", "exclusive")]


def exhaustive_pairs(res):
    """Session 1 holds request A; session 2 tries every request B with NOWAIT in one statement.
    B must be refused exactly when the oracle says A and B conflict. A is held as a transaction
    lock in even rounds and as a session lock in odd rounds."""
    reqs = universe()
    a_conn = connect("rel-pairs-holder")
    b_conn = connect("rel-pairs-prober")
    probe = "SELECT ARRAY[" + ", ".join(literal_call("try_lock_", *r) for r in reqs) + "]"
    mismatches = []
    t0 = now()
    try:
        for i, (path, cls, mode) in enumerate(reqs):
            session = i % 2 == 1
            if session:
                a_conn.execute(call_sql("session_lock_", path, cls), [*path, cls, mode, "0"])
            else:
                a_conn.execute("BEGIN")
                a_conn.execute(call_sql("lock_", path, cls), [*path, cls, mode, "0"])
            b_conn.execute("BEGIN")
            got = b_conn.execute(probe).fetchone()[0]
            b_conn.execute("ROLLBACK")
            if session:
                released = one(a_conn, "SELECT lockhier.session_unlock_all()")
                if released != 1:
                    mismatches.append(f"session_unlock_all() released {released}, not 1")
            else:
                a_conn.execute("ROLLBACK")
            a = oracle.make(path, cls, mode)
            for (bp, bc, bm), granted in zip(reqs, got):
                b = oracle.make(bp, bc, bm)
                if granted == oracle.conflicts(a, b):
                    mismatches.append(f"A={a} held, B={b}: B {'granted' if granted else 'refused'}")
        leftover = advisory_count(a_conn)
    finally:
        close_quietly(a_conn, b_conn)
    n = len(reqs) ** 2
    res.check(f"exhaustive pairs: {len(reqs)} requests (15 nodes x 5 class sets x 2 modes), "
              f"{n} ordered pairs, server == oracle", not mismatches,
              f"{len(mismatches)} mismatches, first: {mismatches[:3]}" if mismatches
              else f"{now() - t0:.1f} s")
    res.check("exhaustive pairs: no advisory lock left afterwards", leftover == 0, f"{leftover} left")


# --- the load --------------------------------------------------------------------------------

def random_request(rng):
    level = rng.choices([0, 1, 2, 3], weights=[1, 2, 3, 4])[0]
    path = tuple(rng.randint(1, 2) for _ in range(level))
    p = rng.random()
    if p < 0.25:
        classes = rng.choice(["all", "all", "ALL"])
    elif p < 0.80:
        classes = rng.choice(NAMED)
        if rng.random() < 0.1:
            classes = classes.upper()
    else:
        classes = rng.sample(NAMED, rng.randint(2, 3))
        if rng.random() < 0.2:
            classes.append(classes[0].upper())        # a duplicate in another case: merges
        if rng.random() < 0.1:
            classes.append("all")                     # 'all' among others means all
    mode = "share" if rng.random() < 0.55 else "exclusive"
    if rng.random() < 0.1:
        mode = mode.upper()
    p = rng.random()
    if p < 0.5:
        wait = "0"
    elif p < 0.85:
        wait = f"{rng.randint(5, 30)} ms"
    else:
        wait = None   # no limit of lockhier's own: the session's lock_timeout bounds it
    return path, classes, mode, wait


class Worker:
    def __init__(self, idx, seed, deadline):
        self.idx = idx
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.recs = []
        self.problems = []          # unexpected behaviour, each a string
        self.waited_grants = 0
        self.periodic_checks = 0
        self.conn = connect(f"rel-load-{idx}")
        self.conn.execute(f"SET lock_timeout = '{LOAD_LOCK_TIMEOUT}'")
        self.conn.execute("SET statement_timeout = '10s'")   # a safety net, never expected to fire
        self.pid = one(self.conn, "SELECT pg_backend_pid()")

    def problem(self, text):
        if len(self.problems) < 50:
            self.problems.append(f"conn {self.idx} (pid {self.pid}): {text}")

    def attempt(self, scope, nested=False):
        path, classes, mode, wait = random_request(self.rng)
        variant = self.rng.choice(["raise", "try"])
        function = {("xact", "raise"): "lock_", ("xact", "try"): "try_lock_",
                    ("session", "raise"): "session_lock_",
                    ("session", "try"): "try_session_lock_"}[(scope, variant)]
        rec = history.Rec(self.idx, self.pid, len(self.recs), scope, function + LEVELS[len(path)],
                          oracle.make(path, classes, mode), wait, nested=nested)
        rec.args = (path, classes, mode)
        rec.variant = variant
        sql = call_sql(function, path, classes)
        rec.t_call0 = now()
        try:
            value = self.conn.execute(sql, [*path, classes, mode, wait]).fetchone()[0]
            rec.t_call1 = now()
            if variant == "raise":
                rec.outcome = "granted"
            else:
                rec.outcome = "granted" if value is True else "refused"
        except psycopg.errors.LockNotAvailable as exc:
            rec.t_call1 = now()
            rec.outcome = "refused"
            rec.error = exc.diag.message_primary or ""
            rec.detail_pids = history.pids_in_detail(exc.diag.message_detail)
            if variant != "raise" or not rec.error.startswith("operation in progress: cannot lock"):
                self.problem(f"{rec.fn}: unexpected 55P03 {rec.error!r}")
        except psycopg.errors.DeadlockDetected as exc:
            rec.t_call1 = now()
            rec.outcome = "deadlock"
            rec.error = str(exc)
        except psycopg.Error as exc:
            rec.t_call1 = now()
            rec.outcome = "error"
            rec.error = f"{exc.sqlstate} {exc}"
            self.problem(f"{rec.fn}{rec.req} wait={wait!r}: unexpected error {rec.error}")
        if rec.granted and wait != "0" and rec.t_call1 - rec.t_call0 > 0.004:
            self.waited_grants += 1
        self.recs.append(rec)
        return rec

    def hold(self):
        time.sleep(self.rng.uniform(0.0005, 0.006))

    def transaction(self, nested=False):
        self.conn.execute("BEGIN")
        held, failed_at = [], None
        for _ in range(1 if self.rng.random() < 0.8 else 2):
            rec = self.attempt("xact", nested)
            if rec.granted:
                held.append(rec)
            elif rec.outcome != "refused" or rec.variant == "raise":
                # The error aborted the transaction there and then, releasing its locks while
                # the failing call ran: they were surely held only until that call was sent.
                failed_at = rec.t_call0
                break
        if held and failed_at is None:
            self.hold()
        end = "ROLLBACK" if failed_at is not None else self.rng.choice(["COMMIT", "COMMIT", "ROLLBACK"])
        t_rel0 = now()
        self.conn.execute(end)
        t_rel1 = now()
        for rec in held:
            rec.t_rel0 = failed_at if failed_at is not None else t_rel0
            rec.t_rel1 = t_rel1

    def session(self):
        # Sometimes the session lock is taken inside a transaction that then ends (commit or
        # rollback): a session lock outlives it either way.
        wrapped = self.rng.random() < 0.2
        if wrapped:
            self.conn.execute("BEGIN")
        rec = self.attempt("session")
        if wrapped:
            ok = rec.granted or (rec.outcome == "refused" and rec.variant == "try")
            self.conn.execute(self.rng.choice(["COMMIT", "ROLLBACK"]) if ok else "ROLLBACK")
        if not rec.granted:
            return
        if self.rng.random() < 0.3:
            self.transaction(nested=True)     # transaction locks beside the session lock
        else:
            self.hold()
        path, classes, mode = rec.args
        before = len(self.conn.notices)
        if self.rng.random() < 0.2:
            rec.t_rel0 = now()
            released = one(self.conn, "SELECT lockhier.session_unlock_all()")
            rec.t_rel1 = now()
            if released != 1:
                self.problem(f"session_unlock_all() after {rec.req} returned {released}, not 1")
        else:
            rec.t_rel0 = now()
            ok = one(self.conn, call_sql("session_unlock_", path, classes, with_wait=False),
                     [*path, classes, mode])
            rec.t_rel1 = now()
            if ok is not True:
                self.problem(f"session_unlock of {rec.req} returned {ok}")
        if len(self.conn.notices) > before:
            self.problem(f"unlock of {rec.req} warned: {self.conn.notices[-1].message_primary}")

    def periodic_check(self):
        """Between actions nothing is held: lockhier.held() is empty, pg_locks has no advisory
        lock of this backend (not even the session sentinel) and lock_timeout is the session's."""
        self.periodic_checks += 1
        lt, held, locks = self.conn.execute(
            "SELECT current_setting('lock_timeout'), (SELECT count(*) FROM lockhier.held()), "
            "(SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')"
        ).fetchone()
        if lt != LOAD_LOCK_TIMEOUT or held or locks:
            self.problem(f"between actions: lock_timeout={lt}, held() rows={held}, advisory locks={locks}")
            # start clean so one leak is reported once, not on every later check
            self.conn.execute("SELECT lockhier.session_unlock_all()")
            self.conn.execute(f"SET lock_timeout = '{LOAD_LOCK_TIMEOUT}'")

    def run(self):
        try:
            i = 0
            while now() < self.deadline:
                if self.rng.random() < 0.55:
                    self.transaction()
                else:
                    self.session()
                i += 1
                if i % 15 == 0:
                    self.periodic_check()
            self.periodic_check()
        except Exception as exc:  # noqa: BLE001 - becomes a failed check
            self.problem(f"worker died: {type(exc).__name__}: {exc}")


def load(res, connections=6, seconds=None, seed=None):
    seconds = float(seconds or os.environ.get("LOCKHIER_REL_LOAD_SECONDS", "25"))
    seed = int(seed if seed is not None else os.environ.get("LOCKHIER_REL_SEED", random.randrange(1 << 30)))
    res.note(f"{connections} connections for {seconds:.0f} s, seed {seed} "
             f"(set LOCKHIER_REL_SEED to replay the same choices)")
    deadline = now() + seconds
    workers = [Worker(i, seed * 1000 + i, deadline) for i in range(connections)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    alive = [t for t in threads if t.is_alive()]
    res.check("load: every connection finished in time", not alive, f"{len(alive)} still running")

    recs = [r for w in workers for r in w.recs]
    problems = [p for w in workers for p in w.problems]
    mon = connect("rel-load-monitor")
    leftover = advisory_count(mon)
    mon.close()
    for w in workers:
        close_quietly(w.conn)

    granted = sum(r.granted for r in recs)
    by = lambda pred: sum(1 for r in recs if pred(r))  # noqa: E731
    res.note(f"{len(recs)} requests: {granted} granted "
             f"({by(lambda r: r.granted and r.scope == 'session')} session, "
             f"{by(lambda r: r.granted and r.nested)} transaction requests beside a session lock, "
             f"{sum(w.waited_grants for w in workers)} granted after waiting), "
             f"{by(lambda r: r.outcome == 'refused')} refused "
             f"({by(lambda r: r.outcome == 'refused' and r.variant == 'try')} by try_*, "
             f"{by(lambda r: r.outcome == 'refused' and r.wait != '0')} after a wait), "
             f"{by(lambda r: r.outcome == 'deadlock')} deadlock victims, "
             f"{by(lambda r: r.outcome == 'error')} errors; "
             f"{by(lambda r: isinstance(r.args[1], list))} multi-class; "
             f"{sum(w.periodic_checks for w in workers)} between-action checks")
    res.check("load: no unexpected error, unlock result, warning or leak between actions",
              not problems, "\n".join(problems[:10]))
    res.check("load: enough happened to mean something (>= 1000 requests, >= 100 granted and "
              ">= 100 refused, some granted after waiting)",
              len(recs) >= 1000 and granted >= 100 and by(lambda r: r.outcome == "refused") >= 100
              and sum(w.waited_grants for w in workers) > 0,
              f"{len(recs)} requests, {granted} granted")
    res.check("load: no advisory lock left in the database after the run", leftover == 0,
              f"{leftover} left")

    rep = history.check_no_conflicting_overlap(recs)
    res.check("invariant (a): no two conflicting requests of different connections were held at "
              "the same time", not rep.violations,
              (f"{rep.holds} holds; {rep.overlapping_pairs} cross-connection pairs held at the "
               f"same time, all checked against the oracle ({rep.overlapping_scope_pairs} of them "
               f"on overlapping scopes); {rep.near_misses} conflicting pairs held < 2 ms apart")
              if not rep.violations else
              f"{len(rep.violations)} violations, e.g.\n  " +
              "\n  ".join(f"{q}\n  {r}" for q, r in rep.violations[:3]))
    ref = history.check_refusals_justified(recs)
    res.check("invariant (b): every refusal had a conflicting request of another connection in "
              "the way", not ref.unexplained,
              (f"{ref.refusals} refusals + {ref.deadlocks} deadlock victims: {ref.by_granted} with a "
               f"conflicting granted request present, {ref.by_in_flight_only} only with conflicting "
               f"requests in flight (queued or being refused themselves)")
              if not ref.unexplained else
              f"{len(ref.unexplained)} unexplained, e.g.\n  " +
              "\n  ".join(str(r) for r in ref.unexplained[:5]))
    res.check("invariant (b'): every process a conflict DETAIL names had a conflicting request "
              "in flight", not ref.detail_pids_wrong,
              f"{ref.detail_pids_checked} named processes checked" if not ref.detail_pids_wrong else
              "\n  ".join(f"{r} names pid {pid}" for r, pid in ref.detail_pids_wrong[:5]))
    return recs
