"""Leases under a random load mixed with faults (issue 17, "Nemeses, each in the random load"),
and the guarded table's checks (rel/guarded.py) after the run.

Four lease workers, each with a connection of its own (reconnecting after any fault), take
exclusive leases on the fields of one table and share or exclusive leases on the table itself
(about a third of them on the same table and fields named as a path of names),
with ttls of 0.8 to 3 s, append rows to a guarded table in the documented fencing pattern,
renew, release, let leases expire, and sometimes write again under a lease they know is gone (a
client paused past its ttl, or one that released it): that write must be refused. A nemesis
thread, seeded by LOCKHIER_REL_SEED (printed), applies faults at random meanwhile, from
rel/nemeses.py where they are shared with the fault groups:

  pause        a worker stops (as a client paused by a garbage collection) past its lease's ttl,
               then writes under lease_valid
  keeper-kill  SIGKILL, SIGTERM or SIGINT on the lease keeper while a session waits in the
  keeper-term  server's queue behind a lease and lease calls are in flight (SIGKILL and a
  keeper-int   killed backend make the postmaster restart every backend)
  backend-kill SIGKILL on a worker's backend in the middle of a call
  immediate    pg_ctl stop -m immediate, then start
  lock-table   the shared lock table filled with pg_advisory_lock in a loop, then freed
  journal-full <data>/lockhier on a small tmpfs, filled to ENOSPC for a while, then freed and
               moved back
  damage       the release record of a released lease damaged while the server is down

A call that fails because of a fault is recorded as failed; a write whose COMMIT never answered
is unknown (its row may or may not be there), as Jepsen records them. The checks read the rows
that are in the table.

Standby promotion is not among the nemeses: pg_test/standby proves tokens after a promotion
(make sql), and a standby of the suite's cluster would double its set-up time.

    LOCKHIER_REL_NEMESIS_SECONDS=S   length of the run (default 30; make soak sets more)
    LOCKHIER_REL_NEMESES=a,b         only these nemeses (names above; default all)
    LOCKHIER_REL_NEMESIS_GAP=S       seconds of plain load between two faults (default 1.5)
"""

import os
import random
import signal
import threading
import time

import psycopg

from . import guarded, oracle
from .harness import (Bg, Server, close_quietly, connect, keeper_pid, now, one, rows, wait_for_server,
                      wait_until)
from .nemeses import Filler, Journal, JournalTmpfs, Log, restart, signal_process, table_full

NEMESES = ["pause", "keeper-kill", "keeper-term", "keeper-int", "backend-kill", "immediate", "lock-table",
           "journal-full", "damage"]
APP, TABLE = 60, 1
FIELDS = (1, 2, 3, 4)
TTLS = ["800 ms", "1200 ms", "2 s", "3 s"]
SAFETY = "SET statement_timeout = '20s'"   # nothing here may hang the suite


def secs(ttl):
    value, unit = ttl.split()
    return float(value) / (1000 if unit == "ms" else 1)


def setup_tables():
    with connect("rel-nem-setup") as c:
        c.execute("DROP TABLE IF EXISTS rel_guarded, rel_guard_counter")
        c.execute("CREATE TABLE rel_guarded (n bigint PRIMARY KEY, token bigint NOT NULL, "
                  "worker int NOT NULL, seq int NOT NULL)")
        c.execute("CREATE TABLE rel_guard_counter (id int PRIMARY KEY, n bigint NOT NULL)")
        c.execute("INSERT INTO rel_guard_counter VALUES (1, 0)")


class Book:
    """What the workers saw, shared with the nemesis and the checks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.grants, self.gones, self.writes = [], [], []
        self.failed = []               # lease calls that failed: their outcome is unknown
        self.may_return = set()        # tokens whose release a restart may undo (see guarded.py)
        self.released = []             # (token, t1) of releases answered true
        self.journal_full = False
        self.stop = threading.Event()
        self.errors = {}               # sqlstate or class -> count
        self.problems = []

    def error(self, exc):
        key = getattr(exc, "sqlstate", None) or type(exc).__name__
        with self.lock:
            self.errors[key] = self.errors.get(key, 0) + 1

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 30:
                self.problems.append(text)


class Worker:
    def __init__(self, idx, seed, book):
        self.idx, self.rng, self.book = idx, random.Random(seed), book
        self.owner = f"nemesis worker {idx}"
        self.conn, self.pid = None, None
        self.lease = None              # (token, req, args, ttl)
        self.seq = 0
        self.pause_next = threading.Event()
        self.stale_rejected = self.stale_tries = self.paused = 0

    def connect(self):
        close_quietly(self.conn)
        self.conn = None
        while not self.book.stop.is_set():
            try:
                self.conn = connect(f"rel-nem-{self.idx}")
                self.conn.execute(SAFETY)
                self.pid = one(self.conn, "SELECT pg_backend_pid()")
                return True
            except psycopg.Error:
                close_quietly(self.conn)
                self.conn = None
                time.sleep(0.2)
        return False

    def call(self, sql, params=None):
        """One statement; (value, None) or (None, the error), reconnecting after a lost one."""
        try:
            return one(self.conn, sql, params), None
        except psycopg.Error as exc:
            self.book.error(exc)
            if self.conn.closed or self.conn.broken:
                self.connect()
            else:
                try:
                    self.conn.execute("ROLLBACK")
                except psycopg.Error:
                    self.connect()
            return None, exc

    def take(self):
        if self.rng.random() < 0.75:
            args = ((APP, TABLE, self.rng.choice(FIELDS)), "exclusive")
        else:
            args = ((APP, TABLE), self.rng.choice(["share", "exclusive"]))
        if self.rng.random() < 0.3:
            # The same table and fields named as a path: leases on paths under the same faults
            # (they never meet the numeric ones, which the oracle knows).
            ids, mode = args
            args = (("guard", f"table {ids[1]}") + tuple(f"field {f}" for f in ids[2:]), mode)
        path, mode = args
        ttl = self.rng.choice(TTLS)
        wait = self.rng.choice(["0", "100 ms", "400 ms"])
        t0 = now()
        if isinstance(path[0], str):
            scope, params = "try_lease_path(%s::text[], ", [list(path)]
        else:
            level = "field" if len(path) == 3 else "table"
            scope, params = f"try_lease_{level}({', '.join(str(i) for i in path)}, ", []
        token, exc = self.call(f"SELECT lockhier.{scope}%s, 'guard', %s, %s::interval, %s::interval)",
                               [*params, self.owner, mode, ttl, wait])
        t1 = now()
        req = oracle.make(path, "guard", mode)
        if exc is not None:
            with self.book.lock:
                self.book.failed.append(guarded.Asked(self.idx, req, t0, secs(ttl)))
        if token is not None:
            with self.book.lock:
                self.book.grants.append(guarded.Grant(self.idx, token, req, t0, t1))
            self.lease = (token, req, args, ttl)

    def write(self, token, stale=""):
        """The documented fencing pattern: BEGIN; lease_valid; the writes; COMMIT."""
        self.seq += 1
        w = guarded.Write(self.idx, self.seq, token, now(), stale=stale)
        with self.book.lock:
            self.book.writes.append(w)
        c = self.conn
        valid = None
        try:
            c.execute("BEGIN")
            valid = one(c, "SELECT lockhier.lease_valid(%s)", [token])
            if not valid:
                c.execute("ROLLBACK")
                w.outcome = "rejected"
                with self.book.lock:
                    self.book.gones.append(guarded.Gone(token, now(), f"lease_valid({token}) -> false"))
                return False
            n = one(c, "UPDATE rel_guard_counter SET n = n + 1 WHERE id = 1 RETURNING n")
            c.execute("INSERT INTO rel_guarded VALUES (%s, %s, %s, %s)", [n, token, self.idx, self.seq])
            c.execute("COMMIT")
            w.outcome = "committed"
            return True
        except psycopg.Error as exc:
            self.book.error(exc)
            w.outcome = "unknown" if valid else "failed"
            if c.closed or c.broken:
                self.connect()
            else:
                try:
                    c.execute("ROLLBACK")
                except psycopg.Error:
                    self.connect()
            return None

    def gone(self, token, how):
        with self.book.lock:
            self.book.gones.append(guarded.Gone(token, now(), how))

    def step(self):
        if self.lease is None:
            self.take()
            if self.lease is None:
                time.sleep(self.rng.uniform(0.005, 0.03))
            return
        token, _, _, ttl = self.lease
        if self.pause_next.is_set():
            # a client paused past its ttl (a long GC, a partition): then it writes all the same
            self.pause_next.clear()
            self.paused += 1
            time.sleep(secs(ttl) + 0.4)
            self.stale_tries += 1
            if self.write(token, stale="paused past its ttl") is False:
                self.stale_rejected += 1
            self.lease = None
            return
        p = self.rng.random()
        if p < 0.55:
            if self.write(token) is False:
                self.lease = None
        elif p < 0.75:
            ok, exc = self.call("SELECT lockhier.renew_lease(%s)", [token])
            if ok is False:
                self.gone(token, f"renew_lease({token}) -> false")
                self.lease = None
        elif p < 0.87:
            t0 = now()
            ok, exc = self.call("SELECT lockhier.release_lease(%s)", [token])
            if exc is None:
                self.gone(token, f"release_lease({token}) -> {ok}")
                if self.book.journal_full:
                    self.book.may_return.add(token)
                if ok:
                    with self.book.lock:
                        self.book.released.append((token, t0))
                self.lease = None
                if self.rng.random() < 0.3:      # a holder that released, writing again: refused
                    self.stale_tries += 1
                    if self.write(token, stale="released") is False:
                        self.stale_rejected += 1
        elif p < 0.93:
            # left to expire: no renewal, then one more write, which must be refused
            time.sleep(secs(ttl) + 0.3)
            self.stale_tries += 1
            if self.write(token, stale="left to expire") is False:
                self.stale_rejected += 1
            self.lease = None
        else:
            time.sleep(self.rng.uniform(0.01, 0.05))

    def run(self):
        try:
            self.connect()
            while not self.book.stop.is_set():
                self.step()
                time.sleep(self.rng.uniform(0.002, 0.01))
        except Exception as exc:  # noqa: BLE001 - becomes a failed check
            self.book.problem(f"worker {self.idx} died: {type(exc).__name__}: {exc}")


class Nemesis:
    """Faults at random, one at a time, with plain load between them."""

    def __init__(self, seed, book, workers, kinds, gap):
        self.rng, self.book, self.workers = random.Random(seed), book, workers
        self.kinds, self.gap = kinds, gap
        self.server = Server()
        self.log = Log(self.server.log)
        self.journal = Journal(self.server.data)
        self.tmpfs = JournalTmpfs(self.server, self.log)
        self.applied = []            # (kind, ok, details)
        self.damages = []
        self.root = os.geteuid() == 0

    def order(self, deadline):
        """Every kind once in a shuffled order first (the short run covers them all), then at
        random until the deadline."""
        first = self.rng.sample(self.kinds, len(self.kinds))
        while first:
            yield first.pop()
        while now() < deadline:
            yield self.rng.choice(self.kinds)

    def run(self, deadline):
        try:
            for kind in self.order(deadline):
                if now() >= deadline and len(self.applied) >= len(self.kinds):
                    break
                time.sleep(self.gap * self.rng.uniform(0.5, 1.5))
                t0 = now()
                try:
                    ok, details = getattr(self, kind.replace("-", "_"))()
                except Exception as exc:  # noqa: BLE001 - a failed fault is a failed check
                    ok, details = False, f"{type(exc).__name__}: {exc}"
                    wait_for_server(120)
                self.applied.append((kind, ok, f"{details} ({now() - t0:.1f} s)"))
        finally:
            if self.tmpfs.mounted:
                self.undo_tmpfs()

    # -- helpers ---------------------------------------------------------------------------------

    def mon(self):
        for _ in range(600):
            try:
                return connect("rel-nem-nemesis")
            except psycopg.Error:
                time.sleep(0.2)
        raise RuntimeError("the server did not come back")

    def keeper_back(self, old):
        """A keeper other than old answers lockhier calls again."""
        def answered():
            try:
                with connect("rel-nem-probe") as c:
                    c.execute(SAFETY)
                    pid = keeper_pid(c)
                    return pid not in (None, old) and one(c, "SELECT lockhier.lease_valid(0)") is False
            except psycopg.Error:
                return False
        return wait_until(answered, 60, 0.1)

    # -- the nemeses ---------------------------------------------------------------------------

    def pause(self):
        busy = [w for w in self.workers if w.lease is not None] or self.workers
        w = self.rng.choice(busy)
        w.pause_next.set()
        return True, f"worker {w.idx} pauses past its lease's ttl"

    def keeper_signal(self, sig):
        """sig on the keeper with a session queued in the server's queue behind a lease (a
        lock_* on a worker's scope, given back at once if granted) and lease calls in flight."""
        with self.mon() as mon:
            kpid = keeper_pid(mon)
            fields = [(w.lease[0], w.lease[2][0][2]) for w in self.workers
                      if w.lease is not None and len(w.lease[2][0]) == 3]
            held = fields[:1]
            queued = None
            qc = None
            if held:
                field = held[0][1]
                qc = connect("rel-nem-queued")
                qc.execute(SAFETY)
                qpid = one(qc, "SELECT pg_backend_pid()")
                queued = Bg(qc, f"SELECT lockhier.lock_field({APP}, {TABLE}, %s, 'guard', 'exclusive', "
                                "wait => '3 s')", [field])
                wait_until(lambda: one(mon, "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted",
                                       [qpid]) > 0, 2)
            sent = signal_process(kpid, sig)
        if queued is not None:
            queued.join(30)
            close_quietly(qc)
        if sig == signal.SIGINT:
            time.sleep(0.2)
            with self.mon() as mon:
                same = keeper_pid(mon) == kpid
            return sent and same, f"SIGINT on keeper {kpid}: still running {same}"
        back = self.keeper_back(kpid)
        return sent and back, (f"{signal.Signals(sig).name} on keeper {kpid} (a session queued behind lease "
                               f"{held[0][0] if held else '-'}): a new keeper answers {back}")

    def keeper_kill(self):
        return self.keeper_signal(signal.SIGKILL)

    def keeper_term(self):
        return self.keeper_signal(signal.SIGTERM)

    def keeper_int(self):
        return self.keeper_signal(signal.SIGINT)

    def backend_kill(self):
        """SIGKILL on a worker's backend while it is in a call (active)."""
        with self.mon() as mon:
            pids = [w.pid for w in self.workers if w.pid]
            active = wait_until(lambda: one(mon, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) "
                                                 "AND state = 'active'", [pids]) > 0, 3, 0.001)
            got = rows(mon, "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s) AND state = 'active'", [pids])
            kpid = keeper_pid(mon)
        pid = got[0][0] if got else self.rng.choice(pids)
        sent = signal_process(pid, signal.SIGKILL)
        back = self.keeper_back(kpid)
        return sent and back, f"SIGKILL on backend {pid} (active: {active}); the server back {back}"

    def immediate(self):
        with self.mon() as mon:
            kpid = keeper_pid(mon)
        rc1, out1 = self.server.stop_immediate()
        rc2, out2 = self.server.start()
        back = self.keeper_back(kpid)
        return rc1 == 0 and rc2 == 0 and back, f"stop -m immediate {rc1}, start {rc2}, keeper back {back}"

    def lock_table(self):
        filler = Filler()
        probe = connect("rel-nem-probe-full")
        try:
            state = filler.fill()
            full = table_full(probe)
            time.sleep(self.rng.uniform(0.5, 1.5))
        finally:
            filler.free()
            filler.close()
            close_quietly(probe)
        # The loop ended because the table had no room left; a probe just after may find an entry
        # freed meanwhile by the load (a transaction ending), so it is shown, not required.
        return state == "53200", f"lock table filled ({state}), a new entry refused just after: {full}, then freed"

    def journal_full(self):
        if not self.root:
            return True, "not applied: mounting a tmpfs needs root"
        ok, details = self.tmpfs.on()
        if not ok:
            return False, f"tmpfs: {details}"
        self.keeper_back(None)
        # Releases while the journal cannot take their records may come back after a restart:
        # they are marked as such from the moment the tmpfs is filled until it is gone (and the
        # journal back on the data directory's file system, where nothing fills it).
        self.book.journal_full = True
        try:
            written = self.tmpfs.fill()
            time.sleep(self.rng.uniform(1.0, 2.0))
            self.tmpfs.free()
            ok, details = self.tmpfs.off()
            self.keeper_back(None)
        finally:
            self.book.journal_full = False
        return ok, f"tmpfs of {self.tmpfs.size_k} kB filled ({written} bytes), then freed and unmounted {details}"

    def undo_tmpfs(self):
        ok, details = self.tmpfs.off()
        self.keeper_back(None)
        self.applied.append(("journal-full (unmounted)", ok, details))

    def damage(self):
        """The release record of the latest released lease damaged while the server is down; that
        lease may then come back until its ttl (guarded.py: unless a conflicting later lease was
        granted, which replay keeps)."""
        with self.book.lock:
            candidates = list(self.book.released[-5:])
        if not candidates:
            return True, "no released lease yet"
        token = candidates[-1][0]
        self.book.may_return.add(token)

        def edit():
            d = self.journal.damage("release", token, "checksum")
            if d is not None:
                self.damages.append(d)
            return d

        ok, d, details = restart(self.server, self.log, edit)
        back = self.keeper_back(None)
        return ok and back, f"damaged {d!r}; restarted {ok} {details}; keeper back {back}"

    def put_back(self):
        """Put every damaged byte back (the server stopped once more); False if a restart failed."""
        if not self.damages:
            return True, "nothing damaged"

        def edit():
            return [self.journal.restore(d) for d in self.damages]

        ok, put, details = restart(self.server, self.log, edit)
        self.keeper_back(None)
        return ok, f"put back {put} {details}"


def run(res):
    seconds = float(os.environ.get("LOCKHIER_REL_NEMESIS_SECONDS", "30"))
    seed = int(os.environ.get("LOCKHIER_REL_SEED", random.randrange(1 << 30)))
    kinds = [k for k in os.environ.get("LOCKHIER_REL_NEMESES", ",".join(NEMESES)).split(",") if k]
    gap = float(os.environ.get("LOCKHIER_REL_NEMESIS_GAP", "1.5"))
    unknown = [k for k in kinds if k not in NEMESES]
    if not res.check("nemeses: the names asked for are known", not unknown, f"unknown: {unknown}"):
        return
    res.note(f"4 lease workers and a nemesis ({', '.join(kinds)}) for {seconds:.0f} s at least, seed {seed} "
             f"(set LOCKHIER_REL_SEED to replay the nemesis's and the workers' choices)")
    setup_tables()
    book = Book()
    workers = [Worker(i, seed * 1000 + 700 + i, book) for i in range(4)]
    nemesis = Nemesis(seed * 1000 + 799, book, workers, kinds, gap)
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    t_start = now()
    nemesis.run(t_start + seconds)
    time.sleep(1.0)                     # plain load once more after the last fault
    book.stop.set()
    for t in threads:
        t.join(60)
    alive = sum(t.is_alive() for t in threads)
    put_ok, put = nemesis.put_back()
    wait_for_server(120)
    with connect("rel-nem-after") as c:
        c.execute(SAFETY)
        one(c, "SELECT lockhier.lease_valid(0)")     # waits for the restore
        for w in workers:
            c.execute("SELECT lockhier.release_leases(%s)", [w.owner])
        table = [guarded.Row(*r) for r in rows(c, "SELECT n, token, worker, seq FROM rel_guarded ORDER BY n")]
        left = rows(c, "SELECT token FROM lockhier.leases WHERE owner LIKE 'nemesis worker %%'")
        c.execute("DROP TABLE rel_guarded, rel_guard_counter")
    for w in workers:
        close_quietly(w.conn)

    failed = [f"{k}: {d}" for k, ok, d in nemesis.applied if not ok]
    kinds_done = {k for k, ok, _ in nemesis.applied}
    res.note("faults: " + "; ".join(f"{k} {'ok' if ok else 'FAILED'}: {d}" for k, ok, d in nemesis.applied))
    res.check("nemeses: every fault was applied and the server and keeper came back after each (the "
              "damaged journal bytes put back afterwards)",
              not failed and set(kinds) <= kinds_done and put_ok, "\n".join(failed) + f"; {put}")
    res.check("nemeses: the workers survived every fault (reconnecting) and finished",
              alive == 0 and not book.problems, "; ".join(book.problems[:5]) + f" {alive} still running")
    rep = guarded.check(book.grants, book.gones, book.writes, table, frozenset(book.may_return), book.failed)
    outcomes = {}
    for w in book.writes:
        outcomes[w.outcome] = outcomes.get(w.outcome, 0) + 1
    stale = [w for w in book.writes if w.stale]
    stale_accepted = [w for w in stale if w.outcome == "committed"]
    res.note(f"{len(book.grants)} leases granted, {len(book.writes)} guarded writes {outcomes}, "
             f"{len(table)} rows; {rep.conflicting_pairs} pairs of conflicting leases with rows; "
             f"{len(stale)} writes under a lease the client knew gone or paused past "
             f"({sum(w.paused for w in workers)} pauses), {len(stale_accepted)} of them accepted; "
             f"{rep.exempt} rows under a lease whose release a restart undid (damaged or not journaled), "
             f"written after its client had seen it released; errors seen by the workers: "
             f"{dict(sorted(book.errors.items()))}")
    res.check("nemeses: enough happened to mean something (>= 30 leases, >= 100 rows, >= 10 pairs of "
              "conflicting leases with rows, >= 5 writes under a lease known gone)",
              len(book.grants) >= 30 and len(table) >= 100 and rep.conflicting_pairs >= 10 and len(stale) >= 5)
    res.check("guarded table G1: rows written under conflicting leases never overlap in commit order "
              "(every row of the smaller token first)", not rep.g1, "\n  ".join(rep.g1[:5]))
    res.check("guarded table G2: no write was accepted under a lease its client had seen gone (expired, "
              "released, or a conflicting lease granted), but for a release the journal may not keep",
              not rep.g2, "\n  ".join(rep.g2[:5]))
    res.check("guarded table G3: tokens grow across every restart (each new token above every token "
              "returned before its call was sent)", not rep.g3, "\n  ".join(rep.g3[:5]))
    res.check("guarded table: every row was written by a write of the workers", not rep.orphans,
              "\n  ".join(rep.orphans[:5]))
    res.check("nemeses: no lease of the workers left after release_leases", not left, f"{left}")
