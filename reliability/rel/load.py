"""Check 1: the lock model's invariant, exhaustively on pairs and then under concurrent load,
with leases mixed into the load (taken, re-taken, renewed racing their expiry, validated,
released from other connections and by owner, left to expire)."""

import json
import os
import random
import re
import threading
import time

import psycopg

from . import history, lease_history, oracle
from .harness import advisory_count, connect, now, one, close_quietly

LEVELS = ["global", "application", "table", "field"]
NAMED = ["snapshot", "import", "field__update"]
LOAD_LOCK_TIMEOUT = "60ms"   # the session lock_timeout of load connections (bounds wait => NULL)


def is_named(path):
    """A path of names (lock_path & co.) rather than ids: the load mixes both (oracle.py)."""
    return bool(path) and isinstance(path[0], str)


def scope_name(path):
    """The suffix of the SQL functions of a scope: a level, or `path`."""
    return "path" if is_named(path) else LEVELS[len(path)]


def scope_args(path):
    """The placeholders of a scope's SQL parameters, and their values."""
    if is_named(path):
        return ["%s::text[]"], [list(path)]
    return ["%s::bigint"] * len(path), list(path)


def call_sql(function, path, classes, with_wait=True):
    """SELECT lockhier.<function><scope>(ids... | path, class|classes, mode[, wait]) with parameters
    (the scope's values first: scope_args)."""
    args = scope_args(path)[0]
    args.append("%s::text[]" if isinstance(classes, list) else "%s::text")
    args.append("%s::text")
    if with_wait:
        args.append("%s::interval")
    return f"SELECT lockhier.{function}{scope_name(path)}({', '.join(args)})"


def literal_call(function, path, classes, mode):
    """The same call as SQL text (for statements that make many calls at once); names of paths
    here are plain words."""
    if is_named(path):
        ids = ["ARRAY[" + ", ".join(f"'{n}'" for n in path) + "]"]
    else:
        ids = [str(i) for i in path]
    if isinstance(classes, list):
        cls = "ARRAY[" + ", ".join(f"'{c}'" for c in classes) + "]"
    else:
        cls = f"'{classes}'"
    return f"lockhier.{function}{scope_name(path)}({', '.join(ids + [cls, repr(mode)])})"


def many_object(path, classes, mode):
    """One request of lock_many's JSON array (docs/many.md)."""
    if is_named(path):
        scope = {"path": list(path)}
    elif path:
        scope = dict(zip(["application", "table", "field"], path))
    else:
        scope = {"global": True}
    return {**scope, ("classes" if isinstance(classes, list) else "class"): classes, "mode": mode}


REFUSED_REQUEST = re.compile(r"\(requests\[(\d+)\] of (\d+)\)$")


# Names of the load's paths: one with a slash inside a name (not a separator), one with spaces,
# colon and '!' (a room id), and plain ones; depths 1 to 4, so paths nest deeper than fields.
PATH_NAMES = ["r", "s", "a/b", "!room 1:x"]


def random_path(rng, weights):
    depth = rng.choices([1, 2, 3, 4], weights=weights)[0]
    return tuple(rng.choice(PATH_NAMES[:2]) if i else rng.choice(PATH_NAMES) for i in range(depth))


# --- exhaustive pairs: the server against the oracle, one pair at a time ----------------------

def universe():
    nodes = [()]
    for a in (1, 2):
        nodes.append((a,))
        for t in (1, 2):
            nodes.append((a, t))
            for f in (1, 2):
                nodes.append((a, t, f))
    # Paths of names beside them: nested, siblings, a slash inside a name.
    nodes += [("r",), ("r", "s"), ("r", "s", "r", "s"), ("s",), ("a/b",)]
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
                a_conn.execute(call_sql("session_lock_", path, cls), [*scope_args(path)[1], cls, mode, "0"])
            else:
                a_conn.execute("BEGIN")
                a_conn.execute(call_sql("lock_", path, cls), [*scope_args(path)[1], cls, mode, "0"])
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
    res.check(f"exhaustive pairs: {len(reqs)} requests (15 nodes and 5 paths of names x 5 class sets x 2 modes), "
              f"{n} ordered pairs, server == oracle", not mismatches,
              f"{len(mismatches)} mismatches, first: {mismatches[:3]}" if mismatches
              else f"{now() - t0:.1f} s")
    res.check("exhaustive pairs: no advisory lock left afterwards", leftover == 0, f"{leftover} left")


# --- the load --------------------------------------------------------------------------------

def record_failed_call(rec, exc, variant, wait, problem):
    """Records a lock or lease call that raised: a conflict, a deadlock (a lease's wait queues
    in the calling backend too) or anything else, which is a problem."""
    rec.t_call1 = now()
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        rec.outcome = "refused"
        rec.error = exc.diag.message_primary or ""
        rec.detail_pids = history.pids_in_detail(exc.diag.message_detail)
        rec.detail_leases = history.leases_in_detail(exc.diag.message_detail)
        if variant != "raise" or not rec.error.startswith("operation in progress: cannot lock"):
            problem(f"{rec.fn}: unexpected 55P03 {rec.error!r}")
    elif isinstance(exc, psycopg.errors.DeadlockDetected):
        rec.outcome = "deadlock"
        rec.error = str(exc)
    else:
        rec.outcome = "error"
        rec.error = f"{exc.sqlstate} {exc}"
        problem(f"{rec.fn}{rec.req} wait={wait!r}: unexpected error {rec.error}")


def random_request(rng):
    level = rng.choices([0, 1, 2, 3], weights=[1, 2, 3, 4])[0]
    path = tuple(rng.randint(1, 2) for _ in range(level))
    if level and rng.random() < 0.3:
        path = random_path(rng, [2, 3, 3, 2])
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
        rec = history.Rec(self.idx, self.pid, len(self.recs), scope, function + scope_name(path),
                          oracle.make(path, classes, mode), wait, nested=nested)
        rec.args = (path, classes, mode)
        rec.variant = variant
        sql = call_sql(function, path, classes)
        rec.t_call0 = now()
        try:
            value = self.conn.execute(sql, [*scope_args(path)[1], classes, mode, wait]).fetchone()[0]
            rec.t_call1 = now()
            if variant == "raise":
                rec.outcome = "granted"
            else:
                rec.outcome = "granted" if value is True else "refused"
        except psycopg.Error as exc:
            record_failed_call(rec, exc, variant, wait, self.problem)
        if rec.granted and wait != "0" and rec.t_call1 - rec.t_call0 > 0.004:
            self.waited_grants += 1
        self.recs.append(rec)
        return rec

    def attempt_many(self, nested=False):
        """lock_many of 2 or 3 random requests in one call: every one granted, or none. Granted,
        each is recorded as held from the call on. Refused, the request its error names is
        recorded as refused (the checker then proves a holder was in its way), and the others as
        "withdrawn": not held after the call, but in flight during it (a prefix of them may have
        been taken while it waited), so they may explain another connection's refusal. Returns
        the records, the one to look at first."""
        requests = [random_request(self.rng) for _ in range(self.rng.randint(2, 3))]
        wait = requests[0][3]
        recs = [history.Rec(self.idx, self.pid, len(self.recs) + i, "xact", "lock_many",
                            oracle.make(path, classes, mode), wait, nested=nested)
                for i, (path, classes, mode, _) in enumerate(requests)]
        for rec, (path, classes, mode, _) in zip(recs, requests):
            rec.args = (path, classes, mode)
        body = json.dumps([many_object(path, classes, mode) for path, classes, mode, _ in requests])
        for rec in recs:
            rec.variant = "raise"
            rec.t_call0 = now()
        try:
            self.conn.execute("SELECT lockhier.lock_many(%s::jsonb, %s::interval)", [body, wait])
            t_call1 = now()
            for rec in recs:
                rec.t_call1, rec.outcome = t_call1, "granted"
        except psycopg.Error as exc:
            named = REFUSED_REQUEST.search(exc.diag.message_primary or "")
            index = int(named.group(1)) if named else 0
            if isinstance(exc, psycopg.errors.LockNotAvailable) and (
                    not named or int(named.group(2)) != len(recs) or index >= len(recs)):
                self.problem(f"lock_many of {len(recs)} requests refused, naming "
                             f"{named.group(0) if named else 'none of them'}: {exc.diag.message_primary!r}")
                index = 0
            record_failed_call(recs[index], exc, "raise", wait, self.problem)
            for rec in recs:
                if rec is not recs[index]:
                    rec.t_call1, rec.outcome = recs[index].t_call1, "withdrawn"
            recs.insert(0, recs.pop(index))
        if recs[0].granted and wait != "0" and recs[0].t_call1 - recs[0].t_call0 > 0.004:
            self.waited_grants += 1
        self.recs.extend(recs)
        return recs

    def hold(self):
        time.sleep(self.rng.uniform(0.0005, 0.006))

    def transaction(self, nested=False):
        self.conn.execute("BEGIN")
        held, failed_at = [], None
        for _ in range(1 if self.rng.random() < 0.8 else 2):
            if self.rng.random() < 0.15:
                recs = self.attempt_many(nested)
                if recs[0].granted:
                    held.extend(recs)
                    continue
                failed_at = recs[0].t_call0
                break
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
                     [*scope_args(path)[1], classes, mode])
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


# --- leases in the load ------------------------------------------------------------------------
#
# Lease workers take leases on the same tree as the lock workers, through connection a, and
# renew, validate and release them through either connection (release always through b, the
# connection that did not take it). They share the owners below, so a request of one may come
# back as another's lease (re-entrant) and release_leases(owner) ends leases other threads
# renew. A janitor releases recent tokens of anyone from its own connection, and a monitor
# snapshots lockhier.leases (with the server's clock) all along. Each lease is renewed by one
# worker only, one renewal after the other (rel/lease_history.py relies on it).

OWNERS = ["job-1", "Job-1", "csv-import #55", "snapshot \u00e9", "backup"]   # "Job-1" is not "job-1"
TTLS = [0.5, 0.8, 1.0, 1.5, 2.0, 3.0]      # seconds: most leases of the load expire by themselves
MAX_MANAGED = 3                           # leases a worker keeps (renews) at a time
LEASE_CONN_BASE = 100                     # connection ids of lease threads (lock workers: 0..N-1)


def ms(seconds):
    return f"{round(seconds * 1000)} ms"


def lease_request(rng):
    """A random lease request on the load's tree: finer on average than a lock worker's, since
    a lease lasts up to seconds."""
    level = rng.choices([0, 1, 2, 3], weights=[1, 2, 4, 8])[0]
    path = tuple(rng.randint(1, 2) for _ in range(level))
    if level and rng.random() < 0.3:
        path = random_path(rng, [1, 2, 4, 4])
    p = rng.random()
    if p < 0.2:
        classes = rng.choice(["all", "ALL"])
    elif p < 0.8:
        classes = rng.choice(NAMED)
    else:
        classes = rng.sample(NAMED, rng.randint(2, 3))
    mode = "share" if rng.random() < 0.6 else "exclusive"
    return path, classes, mode


def respelled(args, rng):
    """The same request written differently: classes in another order or case, mode in capitals."""
    path, classes, mode = args
    if isinstance(classes, list):
        classes = rng.sample(classes, len(classes))
        if rng.random() < 0.5:
            classes[0] = classes[0].upper()
    elif rng.random() < 0.5:
        classes = classes.upper()
    return path, classes, mode.upper() if rng.random() < 0.5 else mode


def random_wait(rng):
    p = rng.random()
    if p < 0.5:
        return "0"
    if p < 0.85:
        return f"{rng.randint(5, 30)} ms"
    return None


def lease_sql(function, path, classes):
    """SELECT lockhier.<function><scope>(ids... | path, owner, class|classes, mode, ttl, wait)."""
    args = scope_args(path)[0] + ["%s::text"]
    args.append("%s::text[]" if isinstance(classes, list) else "%s::text")
    args += ["%s::text", "%s::interval", "%s::interval"]
    return f"SELECT lockhier.{function}{scope_name(path)}({', '.join(args)})"


def not_held_warning(conn, before, token):
    return any((n.message_primary or "").startswith(f"lockhier lease {token} is not held")
               for n in conn.notices[before:])


class LeaseBook:
    """What the lease threads share: every lease call and observation, and the tokens known."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []       # history.Rec, kind "lease-call"
        self.obs = []         # lease_history.Obs
        self.snaps = []       # lease_history.Snap
        self.tokens = {}      # token -> owner, in the order first returned
        self.stop = threading.Event()

    def register(self, token, owner):
        """True when the token is new: the caller then renews it (one renewer per lease)."""
        with self.lock:
            if token in self.tokens:
                return False
            self.tokens[token] = owner
            return True

    def recent(self, n):
        with self.lock:
            return list(self.tokens)[-n:]


class LeaseWorker:
    def __init__(self, idx, seed, deadline, book):
        self.idx = idx
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.book = book
        self.recs = []             # its lock requests (probes), kind "lock", on connection b
        self.problems = []
        self.managed = {}          # token -> dict(owner, args, ttl, until): the leases it renews
        self.a = connect(f"rel-lease-{idx}a")
        self.b = connect(f"rel-lease-{idx}b")
        # a's lease calls wait as the lock workers' requests do (wait => NULL: lock_timeout).
        # b releases, and a release waits for the transactions that validated the lease (their
        # fence), which a lock_timeout would cut short (55P03, after release_leases may already
        # have released some): b has none, and only try_lock_*(wait => 0) among its requests.
        self.a.execute(f"SET lock_timeout = '{LOAD_LOCK_TIMEOUT}'")
        for c in (self.a, self.b):
            c.execute("SET statement_timeout = '10s'")   # a safety net, never expected to fire
        self.a_id, self.b_id = LEASE_CONN_BASE + 2 * idx, LEASE_CONN_BASE + 2 * idx + 1
        self.a_pid = one(self.a, "SELECT pg_backend_pid()")
        self.b_pid = one(self.b, "SELECT pg_backend_pid()")
        self.waited_grants = 0

    def problem(self, text):
        if len(self.problems) < 50:
            self.problems.append(f"lease worker {self.idx} (pids {self.a_pid}/{self.b_pid}): {text}")

    def pick(self):
        return self.rng.choice(sorted(self.managed))

    def soonest(self, within):
        """The lease it renews that expires first, if that is within `within` seconds."""
        token = min(self.managed, key=lambda t: self.managed[t]["until"])
        return token if self.managed[token]["until"] - time.time() <= within else None

    def drop(self, token):
        self.managed.pop(token, None)

    def hold(self):
        time.sleep(self.rng.uniform(0.0005, 0.006))

    # -- the actions -----------------------------------------------------------------------

    def take(self, reentrant=False):
        if reentrant and self.managed:
            m = self.managed[self.pick()]
            owner = m["owner"]
            path, classes, mode = respelled(m["args"], self.rng)
        else:
            owner = self.rng.choice(OWNERS)
            path, classes, mode = lease_request(self.rng)
        ttl = self.rng.choice(TTLS)
        wait = random_wait(self.rng)
        variant = self.rng.choice(["raise", "try"])
        fn = ("lease_" if variant == "raise" else "try_lease_")
        rec = history.Rec(self.a_id, self.a_pid, len(self.book.calls), "lease", fn + scope_name(path),
                          oracle.make(path, classes, mode), wait, kind="lease-call", owner=owner, ttl=ttl)
        rec.variant = variant
        rec.t_call0 = now()
        try:
            value = self.a.execute(lease_sql(fn, path, classes),
                                   [*scope_args(path)[1], owner, classes, mode, ms(ttl), wait]).fetchone()[0]
            rec.t_call1 = now()
            rec.token = value
            rec.outcome = "granted" if value is not None else "refused"
            if value is None and variant == "raise":
                self.problem(f"{rec.fn} returned NULL")
        except psycopg.Error as exc:
            record_failed_call(rec, exc, variant, wait, self.problem)
        self.book.calls.append(rec)
        if rec.granted and wait != "0" and rec.t_call1 - rec.t_call0 > 0.004:
            self.waited_grants += 1
        if rec.token is not None:
            if self.book.register(rec.token, owner):
                self.managed[rec.token] = dict(owner=owner, args=(path, classes, mode), ttl=ttl,
                                               until=time.time() + ttl)
            elif rec.token in self.managed:
                m = self.managed[rec.token]
                m["until"] = max(m["until"], time.time() + ttl)

    def expiry_of(self, token):
        """Its expires_at (epoch seconds) read from lockhier.leases on b, or None if not listed."""
        t0 = now()
        row = self.b.execute("SELECT extract(epoch FROM expires_at)::float8 FROM lockhier.leases "
                             "WHERE token = %s", [token]).fetchone()
        t1 = now()
        self.book.obs.append(lease_history.Obs("listed", self.b_id, t0, t1, token=token,
                                               result=row is not None))
        if row is None:
            self.drop(token)
        return row[0] if row else None

    def renew(self, racing, token=None, conn=None, known_expiry=None, fenced=False):
        """renew_lease on a or b, with its own ttl or another; racing: right around its
        expires_at (read just before), when the keeper may or may not have released it yet."""
        token = token if token is not None else (self.soonest(1.2) if racing else None)
        if token is None:
            token, racing = self.pick(), False
        m = self.managed[token]
        late, expiry = None, known_expiry
        if racing:
            expiry = self.expiry_of(token)
            if expiry is None:
                return None
            delay = expiry - time.time() + self.rng.uniform(-0.012, 0.012)
            if delay > 1.5:
                racing = False
            elif delay > 0:
                time.sleep(delay)
        ttl = None if self.rng.random() < 0.5 else self.rng.choice(TTLS)
        conn, cid = conn or self.rng.choice([(self.a, self.a_id), (self.b, self.b_id)])
        before = len(conn.notices)
        if expiry is not None:
            late = time.time() - expiry
        t0 = now()
        try:
            result = one(conn, "SELECT lockhier.renew_lease(%s, %s::interval)",
                         [token, None if ttl is None else ms(ttl)])
            error = ""
        except psycopg.Error as exc:
            result, error = None, f"{exc.sqlstate} {exc}"
            self.problem(f"renew_lease({token}): unexpected error {error}")
        t1 = now()
        if result is not None and (result is False) != not_held_warning(conn, before, token):
            self.problem(f"renew_lease({token}) returned {result} with warnings "
                         f"{[n.message_primary for n in conn.notices[before:]]}")
        self.book.obs.append(lease_history.Obs("renew", cid, t0, t1, token=token, ttl=ttl, result=result,
                                               error=error, late=late, fenced=fenced))
        if result:
            m["until"] = time.time() + (ttl if ttl is not None else m["ttl"])
        else:
            self.drop(token)
        return result

    def release(self):
        token = self.pick()
        before = len(self.b.notices)
        t0 = now()
        try:
            result, error = one(self.b, "SELECT lockhier.release_lease(%s)", [token]), ""
        except psycopg.Error as exc:
            result, error = None, f"{exc.sqlstate} {exc}"
            self.problem(f"release_lease({token}): unexpected error {error}")
        t1 = now()
        if result is not None and (result is False) != not_held_warning(self.b, before, token):
            self.problem(f"release_lease({token}) returned {result} with warnings "
                         f"{[n.message_primary for n in self.b.notices[before:]]}")
        self.book.obs.append(lease_history.Obs("release", self.b_id, t0, t1, token=token, result=result,
                                               error=error))
        self.drop(token)

    def release_owner(self):
        if self.managed and self.rng.random() < 0.7:
            owner = self.managed[self.pick()]["owner"]
        else:
            owner = self.rng.choice(OWNERS)
        t0 = now()
        try:
            result, error = one(self.b, "SELECT lockhier.release_leases(%s)", [owner]), ""
        except psycopg.Error as exc:
            result, error = None, f"{exc.sqlstate} {exc}"
            self.problem(f"release_leases({owner!r}): unexpected error {error}")
        t1 = now()
        self.book.obs.append(lease_history.Obs("owner", self.b_id, t0, t1, owner=owner, result=result,
                                               error=error))
        for token in [t for t, m in self.managed.items() if m["owner"] == owner]:
            self.drop(token)

    def validate(self):
        """lease_valid in a transaction on a; sometimes kept open past the lease's expires_at
        (the keeper must keep it meanwhile), while b sees it still listed, is refused a
        conflicting request, and renews it: a renewal after expires_at that must win, since the
        lease was never released."""
        token = self.soonest(1.5) if self.rng.random() < 0.6 else None
        expiry = None
        if token is not None:
            expiry = self.expiry_of(token)
            if expiry is None:
                return
            if expiry - time.time() > 1.5:
                expiry = None
        else:
            token = self.pick()
        past_expiry = False
        # Sometimes inside a savepoint that is then rolled back: the fence belongs to the top
        # transaction and must stay (docs/leases.md), which the checks see if it does not.
        savepoint = self.rng.random() < 0.3
        self.a.execute("BEGIN")
        if savepoint:
            self.a.execute("SAVEPOINT v")
        t0 = now()
        try:
            result, error = one(self.a, "SELECT lockhier.lease_valid(%s)", [token]), ""
        except psycopg.Error as exc:
            result, error = None, f"{exc.sqlstate} {exc}"
            # a's lock_timeout bounds lease_valid's wait behind a release queued for the lease's
            # fence; lease_checks requires such a release in flight (lease_history).
            if exc.sqlstate != "55P03":
                self.problem(f"lease_valid({token}): unexpected error {error}")
        t1 = now()
        if savepoint and error == "":
            self.a.execute("ROLLBACK TO SAVEPOINT v")
        if result and expiry is not None:
            delay = expiry - time.time() + 0.03
            if delay > 0:
                time.sleep(delay)
            q0 = now()
            row = self.b.execute("SELECT clock_timestamp() > expires_at FROM lockhier.leases "
                                 "WHERE token = %s", [token]).fetchone()
            q1 = now()
            self.book.obs.append(lease_history.Obs("listed", self.b_id, q0, q1, token=token,
                                                   result=row is not None))
            past_expiry = bool(row and row[0])
            self.probe(token)
            if past_expiry:
                self.renew(racing=False, token=token, conn=(self.b, self.b_id), known_expiry=expiry,
                           fenced=True)
        elif result:
            self.hold()
        t_end = now()
        self.a.execute(self.rng.choice(["COMMIT", "ROLLBACK"]) if error == "" else "ROLLBACK")
        self.book.obs.append(lease_history.Obs("valid", self.a_id, t0, t1, token=token, result=result,
                                               error=error, held_until=t_end if result else None,
                                               past_expiry=past_expiry))
        if result is False:
            self.drop(token)

    def probe(self, token=None, timed=False):
        """On b, in a transaction: try_lock_* of the exclusive form of one of its leases'
        requests (which conflicts with it), sometimes timed right around its expires_at. A lock
        request like the lock workers' for checks (a) and (b)."""
        if token is None:
            token = (self.soonest(1.2) if timed else None) or self.pick()
        path, classes, _ = self.managed[token]["args"] if token in self.managed else lease_request(self.rng)
        if timed:
            expiry = self.expiry_of(token)
            if expiry is not None:
                delay = expiry - time.time() + self.rng.uniform(-0.010, 0.010)
                if 0 < delay < 3.5:
                    time.sleep(delay)
        fn = "try_lock_" + scope_name(path)
        rec = history.Rec(self.b_id, self.b_pid, len(self.recs), "xact", fn,
                          oracle.make(path, classes, "exclusive"), "0")
        rec.args = (path, classes, "exclusive")
        rec.variant = "try"
        self.b.execute("BEGIN")
        rec.t_call0 = now()
        try:
            value = one(self.b, call_sql("try_lock_", path, classes), [*scope_args(path)[1], classes, "exclusive", "0"])
            rec.t_call1 = now()
            rec.outcome = "granted" if value is True else "refused"
        except psycopg.Error as exc:
            rec.t_call1 = now()
            rec.outcome = "error"
            rec.error = f"{exc.sqlstate} {exc}"
            self.problem(f"{fn}{rec.req}: unexpected error {rec.error}")
        if rec.granted:
            time.sleep(0.001)
        t_rel0 = now()
        self.b.execute("ROLLBACK")
        if rec.granted:
            rec.t_rel0, rec.t_rel1 = t_rel0, now()
        self.recs.append(rec)

    def run(self):
        try:
            while now() < self.deadline:
                for token in [t for t, m in self.managed.items() if time.time() > m["until"] + 0.5]:
                    self.drop(token)     # not renewed: it expires by itself
                p = self.rng.random()
                if not self.managed or (len(self.managed) < MAX_MANAGED and p < 0.25):
                    self.take()
                elif p < 0.32:
                    self.take(reentrant=True)
                elif p < 0.45:
                    self.renew(racing=False)
                elif p < 0.58:
                    self.renew(racing=True)
                elif p < 0.64:
                    self.release()
                elif p < 0.66:
                    self.release_owner()
                elif p < 0.76:
                    self.validate()
                elif p < 0.82:
                    self.probe()
                elif p < 0.90:
                    self.probe(timed=True)
                else:
                    time.sleep(self.rng.uniform(0.01, 0.08))
                time.sleep(self.rng.uniform(0.002, 0.015))
        except Exception as exc:  # noqa: BLE001 - becomes a failed check
            self.problem(f"worker died: {type(exc).__name__}: {exc}")


class Janitor:
    """Releases recent tokens of anyone (most already gone), calls release_leases, validates,
    all from a connection of its own."""

    def __init__(self, seed, deadline, book):
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.book = book
        self.problems = []
        self.conn = connect("rel-lease-janitor")
        self.conn.execute("SET statement_timeout = '10s'")
        self.id = LEASE_CONN_BASE + 98

    def run(self):
        c = self.conn
        try:
            while now() < self.deadline:
                time.sleep(self.rng.uniform(0.05, 0.25))
                tokens = self.book.recent(12)
                p = self.rng.random()
                if tokens and p < 0.65:
                    token = self.rng.choice(tokens)
                    before = len(c.notices)
                    t0 = now()
                    result = one(c, "SELECT lockhier.release_lease(%s)", [token])
                    t1 = now()
                    if (result is False) != not_held_warning(c, before, token):
                        self.problems.append(f"janitor: release_lease({token}) returned {result} with "
                                             f"warnings {[n.message_primary for n in c.notices[before:]]}")
                    self.book.obs.append(lease_history.Obs("release", self.id, t0, t1, token=token,
                                                           result=result))
                elif p < 0.8:
                    owner = self.rng.choice(OWNERS)
                    t0 = now()
                    result = one(c, "SELECT lockhier.release_leases(%s)", [owner])
                    self.book.obs.append(lease_history.Obs("owner", self.id, t0, now(), owner=owner,
                                                           result=result))
                elif tokens:
                    token = self.rng.choice(tokens)
                    c.execute("BEGIN")
                    t0 = now()
                    result = one(c, "SELECT lockhier.lease_valid(%s)", [token])
                    t1 = now()
                    t_end = now()
                    c.execute("COMMIT")
                    self.book.obs.append(lease_history.Obs("valid", self.id, t0, t1, token=token,
                                                           result=result,
                                                           held_until=t_end if result else None))
        except Exception as exc:  # noqa: BLE001 - becomes a failed check
            self.problems.append(f"janitor died: {type(exc).__name__}: {exc}")


class Monitor:
    """Snapshots of lockhier.leases with the server's clock, until told to stop."""

    def __init__(self, book):
        self.book = book
        self.problems = []
        self.conn = connect("rel-lease-monitor")

    def snapshot(self):
        t0 = now()
        wall, tokens, expiries = self.conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8, "
            "coalesce(array_agg(token ORDER BY token), '{}'), "
            "coalesce(array_agg(extract(epoch FROM expires_at)::float8 ORDER BY token), '{}') "
            "FROM lockhier.leases").fetchone()
        snap = lease_history.Snap(t0, now(), wall, frozenset(tokens), dict(zip(tokens, expiries)))
        self.book.snaps.append(snap)
        return snap

    def run(self):
        try:
            while not self.book.stop.is_set():
                self.snapshot()
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - becomes a failed check
            self.problems.append(f"monitor died: {type(exc).__name__}: {exc}")


def leases_available(conn):
    return one(conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'") > 0


def end_of_leases(res, book, monitor):
    """After the load: nothing renews the leases any more, so each must expire by itself. Wait
    for lockhier.leases to be empty (the monitor keeps snapshotting), up to 10 s after the last
    expires_at it listed; then stop the monitor. Returns whether it emptied by itself."""
    t_stop = now()
    emptied, last = False, None
    while True:
        time.sleep(0.02)
        snaps = [s for s in book.snaps[-5:] if s.t0 > t_stop]
        if monitor.problems:
            break
        if not snaps:
            if now() - t_stop > 30:
                break
            continue
        last = snaps[-1]
        if not last.tokens:
            emptied = True
            break
        if last.wall > max(last.expiry.values()) + 10:
            break
    book.stop.set()
    late = ""
    if not emptied and last is not None:
        late = "; ".join(f"lease {t} expires_at {last.wall - e:+.1f} s" for t, e in sorted(last.expiry.items())[:5])
    res.check("leases: once the load stopped renewing them, every lease was released by the keeper "
              "on its own (lockhier.leases empty before 10 s past the last expires_at listed)",
              emptied, f"{(now() - t_stop):.1f} s after the load" if emptied else
              f"still listed: {late or 'no snapshot'} {'; '.join(monitor.problems)}")
    if not emptied:
        with connect("rel-lease-cleanup") as c:
            for owner in OWNERS:
                c.execute("SELECT lockhier.release_leases(%s)", [owner])
    return emptied


def load(res, connections=6, seconds=None, seed=None, lease_workers=4):
    seconds = float(seconds or os.environ.get("LOCKHIER_REL_LOAD_SECONDS", "25"))
    seed = int(seed if seed is not None else os.environ.get("LOCKHIER_REL_SEED", random.randrange(1 << 30)))
    with connect("rel-load-setup") as c:
        with_leases = leases_available(c)
    if not res.check("leases: the lease keeper runs (lockhier in shared_preload_libraries), so the "
                     "load mixes leases in", with_leases):
        lease_workers = 0
    res.note(f"{connections} connections of lock requests and {lease_workers} lease workers (2 "
             f"connections each, plus a janitor and a monitor) for {seconds:.0f} s, seed {seed} "
             f"(set LOCKHIER_REL_SEED to replay the same choices)")
    deadline = now() + seconds
    workers = [Worker(i, seed * 1000 + i, deadline) for i in range(connections)]
    book = LeaseBook()
    lworkers = [LeaseWorker(i, seed * 1000 + 500 + i, deadline, book) for i in range(lease_workers)]
    janitor = Janitor(seed * 1000 + 999, deadline, book) if lease_workers else None
    monitor = Monitor(book) if lease_workers else None
    runners = workers + lworkers + ([janitor, monitor] if lease_workers else [])
    threads = [threading.Thread(target=w.run, daemon=True) for w in runners]
    for t in threads:
        t.start()
    for t in threads[:-1] if lease_workers else threads:
        t.join(seconds + 60)
    alive = [t for t in (threads[:-1] if lease_workers else threads) if t.is_alive()]
    res.check("load: every connection finished in time", not alive, f"{len(alive)} still running")
    if lease_workers:
        end_of_leases(res, book, monitor)
        threads[-1].join(30)

    recs = [r for w in workers for r in w.recs]
    problems = [p for w in workers for p in w.problems]
    mon = connect("rel-load-monitor")
    leftover = advisory_count(mon)
    mon.close()
    for w in workers:
        close_quietly(w.conn)
    for w in lworkers:
        close_quietly(w.a, w.b)
    if lease_workers:
        close_quietly(janitor.conn, monitor.conn)

    granted = sum(r.granted for r in recs)
    by = lambda pred: sum(1 for r in recs if pred(r))  # noqa: E731
    res.note(f"{len(recs)} requests of the lock workers: {granted} granted "
             f"({by(lambda r: r.granted and r.scope == 'session')} session, "
             f"{by(lambda r: r.granted and r.nested)} transaction requests beside a session lock, "
             f"{sum(w.waited_grants for w in workers)} granted after waiting), "
             f"{by(lambda r: r.outcome == 'refused')} refused "
             f"({by(lambda r: r.outcome == 'refused' and r.variant == 'try')} by try_*, "
             f"{by(lambda r: r.outcome == 'refused' and r.wait != '0')} after a wait), "
             f"{by(lambda r: r.outcome == 'deadlock')} deadlock victims, "
             f"{by(lambda r: r.outcome == 'error')} errors; "
             f"{by(lambda r: r.fn == 'lock_many')} in lock_many calls "
             f"({by(lambda r: r.fn == 'lock_many' and r.granted)} granted, "
             f"{by(lambda r: r.fn == 'lock_many' and r.outcome == 'refused')} refused, "
             f"{by(lambda r: r.outcome == 'withdrawn')} withdrawn with them); "
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

    everything = list(recs)
    if lease_workers:
        everything += lease_checks(res, book, lworkers, janitor, monitor)

    rep = history.check_no_conflicting_overlap(everything)
    res.check("invariant (a): no two conflicting holders (connections, leases) held their requests "
              "at the same time", not rep.violations,
              (f"{rep.holds} holds ({rep.lease_holds} leases); {rep.overlapping_pairs} pairs of "
               f"different holders held at the same time, all checked against the oracle "
               f"({rep.overlapping_scope_pairs} of them on overlapping scopes; {rep.lease_lock_pairs} "
               f"a lease and a lock request, {rep.lease_lease_pairs} two leases); {rep.near_misses} "
               f"conflicting pairs held < 2 ms apart ({rep.lease_near_misses} with a lease)")
              if not rep.violations else
              f"{len(rep.violations)} violations, e.g.\n  " +
              "\n  ".join(f"{q}\n  {r}" for q, r in rep.violations[:3]))
    if lease_workers:
        res.check("invariant (a'): never two leases of one owner for the same request at the same "
                  "time (the second request gets the first one's token)", not rep.reentry_violations,
                  "\n  ".join(f"{q}\n  {r}" for q, r in rep.reentry_violations[:3]))
    ref = history.check_refusals_justified(everything)
    res.check("invariant (b): every refusal had a conflicting request or lease of another holder in "
              "the way", not ref.unexplained,
              (f"{ref.refusals} refusals ({ref.lease_refusals} of leases) + {ref.deadlocks} deadlock "
               f"victims: {ref.by_granted} with a conflicting holder present ({ref.by_lease} a lease), "
               f"{ref.by_in_flight_only} only with conflicting requests in flight (queued or being "
               f"refused themselves)")
              if not ref.unexplained else
              f"{len(ref.unexplained)} unexplained, e.g.\n  " +
              "\n  ".join(str(r) for r in ref.unexplained[:5]))
    res.check("invariant (b'): every process a conflict DETAIL names had a conflicting request "
              "in flight", not ref.detail_pids_wrong,
              f"{ref.detail_pids_checked} named processes checked" if not ref.detail_pids_wrong else
              "\n  ".join(f"{r} names pid {pid}" for r, pid in ref.detail_pids_wrong[:5]))
    if lease_workers:
        res.check("invariant (b''): every lease a conflict DETAIL names (token and owner) conflicted "
                  "and may have been held during the call", not ref.detail_leases_wrong,
                  f"{ref.detail_leases_checked} named leases checked" if not ref.detail_leases_wrong else
                  "\n  ".join(f"{r} names lease {t}" for r, t in ref.detail_leases_wrong[:5]))
    return recs


def lease_checks(res, book, lworkers, janitor, monitor):
    """The lease part of the load's checks; returns the records to add to (a) and (b)."""
    problems = [p for w in lworkers for p in w.problems] + janitor.problems + monitor.problems
    timeouts, unexplained = lease_history.valid_timeouts_unexplained(book.calls, book.obs)
    problems += [f"{v}: a lock timeout with no release of that lease in flight" for v in unexplained]
    probes = [r for w in lworkers for r in w.recs]
    leases, rep = lease_history.analyse(book.calls, book.obs, book.snaps)
    if rep.calib is None:
        res.note("the snapshots bracket no single offset between the server's wall clock and this "
                 "process's monotonic clock (a clock step?): lease expiries are not used, only "
                 "observations")
    else:
        res.note(f"clock offset bracketed by {len(book.snaps)} snapshots within "
                 f"{(rep.calib[1] - rep.calib[0]) * 1e3:.2f} ms")
    res.note(f"leases: {rep.calls} lease calls: {rep.new_grants} leases granted, "
             f"{rep.reentrant_returns} re-entrant returns of a held token, {rep.refused} refused "
             f"({sum(w.waited_grants for w in lworkers)} granted after waiting); renewals "
             f"{rep.renew_true} true, {rep.renew_false} false (sent after expires_at: "
             f"{rep.renew_after_expiry_won} won ({rep.renew_after_expiry_fenced} while a "
             f"transaction that validated the lease held it), {rep.renew_after_expiry_lost} lost to "
             f"the keeper; "
             f"{rep.renew_before_expiry_racing} sent < 20 ms before it); release_lease from another "
             f"connection {rep.release_true} true, {rep.release_false} false; release_leases "
             f"{rep.owner_calls} calls releasing {rep.owner_released}; lease_valid {rep.valid_true} "
             f"true ({rep.valid_past_expiry} kept open and seen listed past expires_at), "
             f"{rep.valid_false} false; {rep.expired_on_their_own} expired on their own "
             f"({rep.lateness_note()}); {len(book.snaps)} snapshots; {len(probes)} conflicting "
             f"probes ({sum(r.granted for r in probes)} granted); {rep.never_surely_held} leases "
             f"never surely held (ended before their grant was seen)")
    res.check("leases in the load: no unexpected error, warning or result (false <=> WARNING "
              "'lease N is not held'; lease_valid's lock timeout only while a release of that lease "
              "waited for its fence)", not problems,
              "\n".join(problems[:10]) or f"{timeouts} lease_valid calls ran out of lock_timeout behind a "
              "release, each with one in flight")
    res.check("leases in the load: enough happened to mean something (>= 60 leases, >= 20 "
              "re-entrant returns, >= 40 refused, >= 40 renewals true and >= 10 false, >= 5 sent after "
              "expires_at and >= 1 of them won, >= 20 releases true from another connection, >= 5 "
              "leases released by release_leases, >= 15 validations true and >= 1 kept open past "
              "expires_at, >= 10 expired on their own)",
              rep.new_grants >= 60 and rep.reentrant_returns >= 20 and rep.refused >= 40
              and rep.renew_true >= 40 and rep.renew_false >= 10
              and rep.renew_after_expiry_won + rep.renew_after_expiry_lost >= 5
              and rep.renew_after_expiry_won >= 1 and rep.release_true >= 20
              and rep.owner_released >= 5 and rep.valid_true >= 15 and rep.valid_past_expiry >= 1
              and rep.expired_on_their_own >= 10)
    res.check("leases L1: once seen gone, a lease is never seen held again (returned, renewed, "
              "released, validated or listed)", not rep.l1, "\n  ".join(rep.l1[:5]))
    res.check("leases L2: a lease is never seen gone while surely held (renew/release/lease_valid "
              "false, missing from lockhier.leases), and release_leases counts every lease of the "
              "owner surely held and no more than may have been", not rep.l2, "\n  ".join(rep.l2[:5]))
    res.check("leases L3: re-entrant: the owner of a lease surely held asking for the same request "
              "(spelled differently) gets its token back; a token belongs to one owner and request",
              not rep.l3, "\n  ".join(rep.l3[:5]))
    res.check("leases L4: tokens grow: each new token is larger than every token returned before "
              "its call was sent", not rep.l4, "\n  ".join(rep.l4[:5]))
    return probes + book.calls + leases
