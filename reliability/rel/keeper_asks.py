"""The keeper's request slots under faults (src/pg/shmem/asks.rs): the keeper ended between a
question and its answer, and more databases dropped at once than there are drop slots.

(a) A lease call is waiting for the keeper when the keeper is terminated (SIGTERM) or killed
    (SIGKILL): once with its question not taken yet (the keeper stopped asleep with SIGSTOP, so
    the question is queued deterministically: the caller waits on its latch, wait event
    Extension), once with questions taken and not answered (three backends loop lease calls
    against a keeper that flushes its journal, stopped until it is caught in its flush, as in
    lease_worst_day (5)). The asker must end with its token or a clear error (55000 "the lease
    keeper stopped before answering", 57P01 or a lost connection when the postmaster restarts
    every backend after SIGKILL), never wait without end; afterwards a lease is held by at most
    one owner, and a lease listed for an asker that got an error is its owner's: the identical
    request gets that token back (docs/leases.md, "a backend cancelled while it waits").
(c) A lease call made while no keeper runs (none is held, so no restore holds the call back): the
    postmaster is stopped with SIGSTOP, so it cannot start the next keeper, and the keeper is
    terminated; the call must wait for the next keeper (on its latch, wait event Extension) and
    be answered once the postmaster goes on, not fail at once with 55000 "lockhier's lease
    keeper is not running" (0.3.0 before its fix: that failure, in the moment after every start
    with no live lease and in the second after a keeper exits).
(b) DROP_SLOTS + 2 databases, each holding a lease, are dropped while no keeper runs, so more
    drops are told than there are drop slots. (Not while the keeper is stopped with SIGSTOP:
    DROP DATABASE waits until every process, the keeper too, has absorbed its ProcSignalBarrier,
    so a stopped keeper holds up every drop of the cluster, as any stopped backend would.) Once
    the keeper runs again, the leases of every dropped database must be let go (at once, or at
    the latest at their expiry, which the server log announces for the drops that found no
    slot), and the lease of the database that was not dropped must stay held.
"""

import os
import signal

import psycopg

from .harness import (Bg, Server, close_quietly, connect, describe_error, keeper_pid, now, one, rows, sqlstate,
                      wait_for_server, wait_until)
from .lease_worst_day import BUSY, DurableKeeper, signal_in_flush, wait_kind, waiting_for_keeper
from .nemeses import Log, Stopped, proc_state, signal_process

SAFETY = "SET statement_timeout = '30s'"
DROP_SLOTS = 64                       # src/pg/shmem/asks.rs
DROPPED_TTL = 6.0                     # seconds: the lease of each dropped database
KEPT_LINE = "are kept until they expire: too many databases were dropped at once"


def keeper_answers(old):
    def answered():
        try:
            with connect("rel-ka-probe") as c:
                c.execute(SAFETY)
                return keeper_pid(c) not in (None, old) and one(c, "SELECT lockhier.lease_valid(0)") is False
        except psycopg.Error:
            return False
    return wait_until(answered, 60, 0.1)


def after_the_fault(owners_calls):
    """For each (owner, the take SQL, what the asker got): the lease listed for that owner now,
    and whether the identical request gets it back; the problems found."""
    problems, seen = [], []
    with connect("rel-ka-after") as c:
        c.execute(SAFETY)
        for owner, take, got in owners_calls:
            listed = [r[0] for r in rows(c, "SELECT token FROM lockhier.leases WHERE owner = %s", [owner])]
            if len(listed) > 1:
                problems.append(f"{owner}: {len(listed)} leases listed {listed}")
            again = one(c, take, [owner]) if listed else None
            if listed and again != listed[0]:
                problems.append(f"{owner}: lease {listed[0]} listed, the identical request got {again}")
            if isinstance(got, int) and listed and got != listed[0]:
                problems.append(f"{owner}: the asker got token {got}, but {listed[0]} is listed")
            one(c, "SELECT lockhier.release_leases(%s)", [owner])
            seen.append((owner, got, listed))
    return problems, seen


def question_not_taken(sig):
    owner = f"ka queued {signal.Signals(sig).name}"
    take = "SELECT lockhier.lease_application(91, %s, 'snapshot', 'exclusive', '1 min')"
    mon = connect("rel-ka-monitor")
    asker = connect("rel-ka-asker")
    try:
        asker.execute(SAFETY)
        kpid, apid = keeper_pid(mon), one(asker, "SELECT pg_backend_pid()")
        with Stopped(kpid):
            bg = Bg(asker, take, [owner])
            asking = wait_until(lambda: waiting_for_keeper(mon, apid, "lease_application"), 10)
            signal_process(kpid, sig)
        ended = bg.join(40)
        close_quietly(mon)
        back = keeper_answers(kpid)
        got = bg.result[0][0] if bg.result else describe_error(bg.error)
        problems, seen = after_the_fault([(owner, take, got)])
        ok = asking and ended and back and not problems and (bg.error is None or sqlstate(bg.error) in
                                                             ("55000", "57P01", None))
        return ok, (f"queued {asking}; the asker: {got if ended else 'still waiting'}; a new keeper answers "
                    f"{back}; afterwards {seen}; {problems}")
    finally:
        close_quietly(mon, asker)




def turns(conn, app):
    return one(conn, f"SELECT last_value FROM rel_ka_turns_{app}")


def questions_taken(sig, rounds=30):
    """Busy loops against a flushing keeper, stopped until caught in its flush, then sig."""
    apps = (96, 97, 98)   # not 93: lease_worst_day's round trip uses it
    outcome = None
    with connect("rel-ka-durable") as dmon:
        for a in apps:
            dmon.execute(f"DROP SEQUENCE IF EXISTS rel_ka_turns_{a}")
            dmon.execute(f"CREATE SEQUENCE rel_ka_turns_{a}")
        with DurableKeeper(dmon) as durable:
            for r in range(rounds if durable.ready else 0):
                mon = connect("rel-ka-busy-monitor")
                conns = [connect(f"rel-ka-busy-{a}") for a in apps]
                try:
                    for c in conns:
                        c.execute(SAFETY)
                    pids = [one(c, "SELECT pg_backend_pid()") for c in conns]
                    prefix = f"ka {signal.Signals(sig).name} r{r}"
                    # Each counts its turns in a sequence, which other sessions see at once.
                    turn = "PERFORM pg_catalog.nextval('rel_ka_turns_{}');"
                    bgs = [Bg(c, BUSY.format(app=a, prefix=f"{prefix} {a}", each=turn.format(a))) for c, a in zip(conns, apps)]
                    wait_until(lambda: all(wait_kind(mon, p) is not None for p in pids), 10)
                    kpid, t_sig = signal_in_flush(mon, pids, sig)
                    if t_sig is None:
                        for b in bgs:
                            b.join(30)
                        # a cancelled call's grant stays listed: let it go, or the next round's
                        # loop on that application is refused
                        for (owner,) in rows(mon, "SELECT DISTINCT owner FROM lockhier.leases WHERE owner "
                                                  "LIKE %s", [prefix + " %"]):
                            one(mon, "SELECT lockhier.release_leases(%s)", [owner])
                        continue
                    # each loop either ends with a clear error, or goes on once a new keeper answers
                    back = keeper_answers(kpid)
                    before = [turns(mon, a) for a in apps]
                    wait_until(lambda: all(b.done or turns(mon, a) > n for b, a, n in zip(bgs, apps, before)), 10)
                    going = [not b.done and turns(mon, a) > n for b, a, n in zip(bgs, apps, before)]
                    for p, b in zip(pids, bgs):
                        if not b.done:
                            one(mon, "SELECT pg_cancel_backend(%s)", [p])
                    ended = all(b.join(30) for b in bgs)
                    errors = [("going on" if g else sqlstate(b.error), describe_error(b.error)[:60],
                               round((b.t1 or now()) - t_sig, 1)) for b, g in zip(bgs, going)]
                    outcome = (ended, errors, back)
                    break
                finally:
                    close_quietly(mon, *conns)
    if outcome is None:
        return None, "the keeper was never caught in its flush"
    ended, errors, back = outcome
    # each loop's last asked lease may be listed: its owner's identical request must get it back
    calls = []
    with connect("rel-ka-owners") as c:
        for (owner,) in rows(c, "SELECT DISTINCT owner FROM lockhier.leases WHERE owner LIKE %s",
                             [f"ka {signal.Signals(sig).name} r%"]):
            app = int(owner.split()[-2])
            calls.append((owner, f"SELECT lockhier.lease_application({app}, %s, 'snapshot', 'exclusive', '1 min')",
                          "error"))
    problems, seen = after_the_fault(calls)
    with connect("rel-ka-sequences") as c:
        for a in apps:
            c.execute(f"DROP SEQUENCE IF EXISTS rel_ka_turns_{a}")
    # SIGTERM: the loops get 55000 (the keeper stopped before answering) or go on with the next
    # keeper; SIGKILL: the postmaster ends every backend (a lost connection)
    clear = all(e[0] == "going on" or (e[0] in ("55000", "57P01") and e[2] < 15) for e in errors)
    ok = ended and back and clear and not problems
    return ok, f"loops ended {ended} with {errors}; a new keeper answers {back}; leases left {seen}; {problems}"


def keeper_ended_mid_question(res):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        name = signal.Signals(sig).name
        ok, detail = question_not_taken(sig)
        wait_for_server(120)
        res.check(f"keeper asks (a): {name} on the keeper (stopped) while a lease call's question waits "
                  "to be taken: the call ends with its token or a clear error, and afterwards the lease is "
                  "its owner's alone (listed once, found again by the identical request)", ok, detail)
        if sig == signal.SIGKILL:
            continue    # the postmaster ends every backend: no asker is left to wait
        ok, detail = questions_taken(sig)
        wait_for_server(120)
        res.check(f"keeper asks (a): {name} on the keeper caught in its journal flush (questions taken, "
                  "not answered) under three looping lease callers: every call ends with an answer or a "
                  "clear error (never waits without end), a new keeper answers, and every lease left is "
                  "its owner's alone", ok is True, detail)


def call_while_no_keeper(res):
    server = Server()
    conn, mon = connect("rel-asks-nokeeper"), connect("rel-asks-nokeeper-monitor")
    bg = None
    try:
        conn.execute(SAFETY)
        pid = one(conn, "SELECT pg_backend_pid()")
        old = keeper_pid(mon)
        held = one(mon, "SELECT count(*) FROM lockhier.leases")
        call = "SELECT lockhier.try_lease_application(57, 'keeper asks (c)', ttl => '1 min')"
        with Stopped(server.postmaster_pid()):
            os.kill(old, signal.SIGTERM)
            # Its parent stopped, the exited keeper stays a zombie: no keeper runs.
            gone = wait_until(lambda: proc_state(old) in ("Z", None), 10)
            bg = Bg(conn, call)
            waits = wait_until(lambda: bg.done or waiting_for_keeper(mon, pid, "try_lease_application"), 10)
            still = not bg.done
        answered = bg.join(30)
        new = keeper_pid(mon)
        token = bg.result[0][0] if bg.result else None
        res.check("keeper asks (c): a lease call made while no keeper runs (none held; the postmaster "
                  "stopped, the keeper terminated) waits for the next keeper instead of failing with "
                  "55000, and is answered with its token once the postmaster goes on",
                  held == 0 and gone and waits and still and answered and bg.error is None
                  and token is not None and new not in (None, old),
                  f"leases held before {held}; keeper {old} gone {gone}; the call waiting on its latch "
                  f"{waits and still}; answered {answered}: "
                  f"{describe_error(bg.error) if bg.error else token}; new keeper {new}")
    finally:
        if bg is not None:
            bg.join(30)
        try:
            mon.execute("SELECT lockhier.release_leases('keeper asks (c)')")
        finally:
            close_quietly(conn, mon)


def drops_beyond_the_slots(res):
    server = Server()
    log = Log(server.log)
    n = DROP_SLOTS + 2
    names = [f"lockhier_rel_drop_{i}" for i in range(n)]
    adm = psycopg.connect(dbname="postgres", autocommit=True, application_name="rel-ka-drops")
    mon = connect("rel-ka-drops-monitor")
    stay = None
    try:
        adm.execute("DROP DATABASE IF EXISTS lockhier_rel_drop_tmpl")
        adm.execute("CREATE DATABASE lockhier_rel_drop_tmpl")
        with psycopg.connect(dbname="lockhier_rel_drop_tmpl", autocommit=True) as t:
            t.execute("CREATE EXTENSION lockhier")
        oids = {}
        for name in names:
            adm.execute(f'DROP DATABASE IF EXISTS "{name}"')
            adm.execute(f'CREATE DATABASE "{name}" TEMPLATE lockhier_rel_drop_tmpl STRATEGY FILE_COPY')
        for name in names:     # the leases only once every database is there: none expires early
            with psycopg.connect(dbname=name, autocommit=True) as c:
                c.execute("SELECT lockhier.lease_application(95, 'ka drop', 'snapshot', 'exclusive', %s::interval)",
                          [f"{DROPPED_TTL} s"])
                oids[name] = one(c, "SELECT oid FROM pg_database WHERE datname = current_database()")
        stay = one(mon, "SELECT lockhier.lease_application(95, 'ka stays', 'snapshot', 'exclusive', '1 min')")
        kpid = keeper_pid(mon)

        def kept_databases():
            return {r[0] for r in rows(mon, "SELECT DISTINCT database FROM pg_locks WHERE pid = %s AND "
                                            "locktype = 'advisory' AND database <> 0", [kpid])}

        before = kept_databases()
        log.mark()
        t0 = now()
        # A stopped keeper cannot be dropped around: DROP DATABASE waits until every process has
        # absorbed its ProcSignalBarrier, the keeper too. So the keeper is terminated while the
        # postmaster is stopped (it cannot start the next one), and the drops are made while no
        # keeper runs; their slots are read by the next keeper, after it has restored the leases
        # of its journal (those of the dropped databases among them).
        postmaster = server.postmaster_pid()
        with Stopped(postmaster):
            signal_process(kpid, signal.SIGTERM)
            # (a child of the stopped postmaster stays a zombie until it is reaped)
            exited = wait_until(lambda: proc_state(kpid) in (None, "Z"), 10)
            for name in names:
                adm.execute(f'DROP DATABASE "{name}"')
        kpid = None
        back = keeper_answers(None)
        with connect("rel-ka-drops-monitor-2") as m2:
            kpid = keeper_pid(m2)
        close_quietly(mon)
        mon = connect("rel-ka-drops-monitor-3")
        dropped = set(oids.values())
        # let go at once for the drops that found a slot, at the expiry for the others
        at_once = wait_until(lambda: len(kept_databases() & dropped) <= n - DROP_SLOTS, 10)
        left_at_once = kept_databases() & dropped
        all_gone = wait_until(lambda: not (kept_databases() & dropped), DROPPED_TTL + 10)
        took = now() - t0
        mine = one(mon, "SELECT lockhier.lease_valid(%s)", [stay])
        text = log.since()
        kept_logged = text.count(KEPT_LINE)
        res.check(f"keeper asks (b): {n} databases holding a lease dropped while no keeper runs (terminated, "
                  f"the postmaster stopped so that none starts), more than its {DROP_SLOTS} drop slots: "
                  "afterwards the keeper lets go of the leases of the drops that "
                  "found a slot at once, of the others at their expiry (logged), of every one in the end; "
                  "the lease of the database not dropped stays held",
                  before >= dropped and exited and back and at_once and all_gone and mine is True
                  and (kept_logged > 0 or not left_at_once),
                  f"the keeper held leases of {len(before & dropped)} of them; {len(left_at_once)} still held "
                  f"once the keeper ran again ({kept_logged} logged as kept until they expire); all let go "
                  f"{all_gone} after {took:.1f} s; the lease of this database still valid: {mine}")
    finally:
        for name in names + ["lockhier_rel_drop_tmpl"]:
            adm.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if stay is not None:
            mon.execute("SELECT lockhier.release_lease(%s)", [stay])
        close_quietly(mon, adm)


def run(res):
    for name, fn in [("keeper asks (a)", keeper_ended_mid_question), ("keeper asks (c)", call_while_no_keeper),
                     ("keeper asks (b)", drops_beyond_the_slots)]:
        try:
            fn(res)
        except Exception as exc:  # noqa: BLE001 - one part's crash must not hide the other
            res.crash(name, exc)
            wait_for_server(120)
