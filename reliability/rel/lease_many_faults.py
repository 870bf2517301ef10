"""Several leases at once (lease_many) under faults: a group is granted all or none, whatever
happens to the keeper or to the caller (docs/leases.md, "Several leases at once").

(a) The keeper ended (SIGTERM, SIGKILL) while groups are asked and being decided: three backends
    loop lease_many of GROUP requests for an owner of their own, then release_leases, against a
    keeper that flushes its journal; the keeper is stopped until it is caught in its flush
    (questions taken, their grant records written, not answered), then signalled. Every call
    ends with its tokens or a clear error (55000, 57P01, or a lost connection when the
    postmaster restarts every backend after SIGKILL), and once a new keeper has restored the
    journal, every owner holds all of its group's leases or none, never some: a group that is
    held is found again whole by its owner's identical call (the same tokens).
    Once more with the question not taken (the keeper stopped asleep): SIGKILL, and afterwards
    nothing is held.
(b) A caller cancelled (pg_cancel_backend) while its group waits: in the server's queue behind
    another session's transaction lock (wait => '1 min'), and for a stopped keeper that has not
    taken the question. The call ends with 57014, and nothing of the group is held, after the
    keeper answers and after what was in the way is gone.
(c) A caller terminated (pg_terminate_backend) while it holds a group slot: the keeper stopped,
    64 single lease calls fill every question slot, and then 4 lease_many calls each claim one of
    the 4 group slots and wait for a question slot. Terminated there, a backend exits without
    running Rust's destructors (FATAL); its exit callback must free the group slot, or no
    lease_many would go through again until the server restarts. Once the keeper answers, later
    groups go through, one after the other.
"""

import signal

from .harness import (Bg, close_quietly, connect, describe_error, keeper_pid, now, one, rows, sqlstate,
                      wait_for_crash_restart, wait_for_server, wait_until)
from .keeper_asks import keeper_answers
from .lease_worst_day import DurableKeeper, signal_in_flush, wait_kind, waiting_for_keeper
from .nemeses import Stopped, proc_state, signal_process

SAFETY = "SET statement_timeout = '30s'"
GROUP = 4
ROUNDS = 30      # tries to catch the keeper in its flush; the first that does is used
CANCEL_BOUND = 2.0      # seconds: a cancelled call ends within this


def group_of(app):
    """A lease_many's requests: GROUP requests, numeric and path scopes mixed."""
    parts = []
    for i in range(GROUP):
        if i % 2:
            parts.append(f'{{"path": ["many", "{app}", "{i}"], "class": "typing"}}')
        else:
            parts.append(f'{{"application": {app}, "table": {i}, "class": "snapshot"}}')
    return "[" + ", ".join(parts) + "]"


# Each backend takes groups, each on scopes of its own for an owner of its own, until it is
# cancelled (or its connection ends), or has taken LOOPS of them. They are not released in the
# loop: release_leases asks the keeper once per lease, and a keeper ended in the middle of it
# would leave a group partly released, which says nothing of how it was granted.
GROUP_SQL = """
CREATE OR REPLACE FUNCTION rel_many_group(app int, i int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(CASE WHEN n % 2 = 1
                        THEN jsonb_build_object('path', ARRAY['many', app::text, i::text, n::text], 'class', 'typing')
                        ELSE jsonb_build_object('application', app * 1000 + i, 'table', n, 'class', 'snapshot') END)
    FROM generate_series(0, {group} - 1) AS n
$$""".format(group=GROUP)
LOOPS = 60      # 3 backends x 60 groups x 4 leases: within lockhier.max_leases (1024)
BUSY = """
DO $$
BEGIN
  FOR i IN 1..{loops} LOOP
    PERFORM lockhier.lease_many(rel_many_group({app}, i), '{prefix} ' || i, ttl => '1 min');
  END LOOP;
END $$"""
APPS = (81, 82, 83)


def groups_left(prefix):
    """For every owner of `prefix` holding leases: (owner, count, whether the identical call finds
    the same tokens again). Each is released afterwards."""
    found = []
    with connect("rel-many-after") as c:
        c.execute(SAFETY)
        for owner, count, tokens in rows(c, "SELECT owner, count(*), array_agg(token ORDER BY token) FROM "
                                            "lockhier.leases WHERE owner LIKE %s GROUP BY owner", [prefix + " %"]):
            app, i = int(owner.split()[-2]), int(owner.split()[-1])
            again = one(c, "SELECT lockhier.try_lease_many(rel_many_group(%s, %s), %s)", [app, i, owner])
            one(c, "SELECT lockhier.release_leases(%s)", [owner])
            found.append((owner, count, sorted(again or []) == list(tokens)))
    return found


def caught_in_flush(sig):
    """Busy group loops against a flushing keeper, stopped until caught in its flush, then sig.
    Returns (ok, detail), or (None, detail) when the keeper was never caught in its flush."""
    name = signal.Signals(sig).name
    outcome = None
    dmon = connect("rel-many-durable")
    try:
        dmon.execute(GROUP_SQL)
        with DurableKeeper(dmon) as durable:
            for r in range(ROUNDS if durable.ready else 0):
                mon = connect("rel-many-busy-monitor")
                conns = [connect(f"rel-many-busy-{a}") for a in APPS]
                try:
                    for c in conns:
                        c.execute(SAFETY)
                    pids = [one(c, "SELECT pg_backend_pid()") for c in conns]
                    prefix = f"many {name} r{r}"
                    bgs = [Bg(c, BUSY.format(loops=LOOPS, app=a, prefix=f"{prefix} {a}")) for c, a in zip(conns, APPS)]
                    wait_until(lambda: all(wait_kind(mon, p) is not None for p in pids), 10)
                    kpid, t_sig = signal_in_flush(mon, pids, sig)
                    if t_sig is None:
                        for b in bgs:
                            b.join(30)
                        groups_left(prefix)
                        continue
                    if sig == signal.SIGKILL:
                        # The postmaster ended every backend: fsync is set back on a new connection.
                        wait_for_crash_restart(mon)
                        durable.conn = connect("rel-many-durable-again")
                    back = keeper_answers(kpid)
                    if sig != signal.SIGKILL:
                        with connect("rel-many-cancel") as c:
                            for p in pids:
                                one(c, "SELECT pg_cancel_backend(%s)", [p])
                    ended = all(b.join(30) for b in bgs)
                    errors = [(sqlstate(b.error), describe_error(b.error)[:60], round((b.t1 or now()) - t_sig, 1))
                              for b in bgs]
                    outcome = (prefix, ended, errors, back)
                    break
                finally:
                    close_quietly(mon, *conns)
            extra = durable.conn if durable.conn is not dmon else None
        close_quietly(extra)
    finally:
        close_quietly(dmon)
        if outcome is None:
            # An unexpected error: nothing of this test may stay held for the groups after it.
            wait_for_server(120)
            groups_left(f"many {name}")
    if outcome is None:
        return None, "the keeper was never caught in its flush"
    prefix, ended, errors, back = outcome
    left = groups_left(prefix)
    whole = bool(left) and all(count == GROUP and same for _, count, same in left)
    # SIGTERM: 55000 (the keeper stopped before answering) or 57014 (cancelled once a new keeper
    # answers); SIGKILL: the postmaster ends every backend (a lost connection, 57P01)
    clear = all(e[0] in ("55000", "57014", "57P01", "57P02", None) for e in errors)
    ok = ended and back and clear and whole
    bad = [g for g in left if g[1] != GROUP or not g[2]]
    return ok, (f"loops ended {ended} with {errors}; a new keeper answers {back}; {len(left) - len(bad)} groups "
                f"held whole afterwards and found again whole; partly held or not found again: {bad}")


def not_taken_then_killed():
    """The keeper stopped asleep, a group asked (its question not taken), then SIGKILL."""
    owner = "many killed queued"
    asker, mon = connect("rel-many-asker"), connect("rel-many-monitor")
    try:
        asker.execute(SAFETY)
        kpid, apid = keeper_pid(mon), one(asker, "SELECT pg_backend_pid()")
        with Stopped(kpid):
            bg = Bg(asker, "SELECT lockhier.lease_many(%s, %s)", [group_of(84), owner])
            asking = wait_until(lambda: waiting_for_keeper(mon, apid, "lease_many"), 10)
            signal_process(kpid, signal.SIGKILL)
        ended = bg.join(40)
        close_quietly(mon)
        wait_for_server(120)
        back = keeper_answers(kpid)
        with connect("rel-many-after") as c:
            held = one(c, "SELECT count(*) FROM lockhier.leases WHERE owner = %s", [owner])
            one(c, "SELECT lockhier.release_leases(%s)", [owner])
        got = bg.result[0][0] if bg.result else describe_error(bg.error)
        ok = asking and ended and back and held == 0 and bg.result is None
        return ok, f"queued {asking}; the asker: {got if ended else 'still waiting'}; a new keeper answers {back}; held afterwards {held}"
    finally:
        close_quietly(mon, asker)


def keeper_ended(res):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        name = signal.Signals(sig).name
        ok, detail = caught_in_flush(sig)
        wait_for_server(120)
        res.check(f"lease many (a): {name} on the keeper caught in its journal flush (groups taken, their "
                  f"records written, not answered) under three looping lease_many callers of {GROUP} requests: "
                  "every call ends with its tokens or a clear error, a new keeper answers, and every owner "
                  "holds all of its group's leases or none (a group held is found again whole by the "
                  "identical call)", ok is True, detail)
    ok, detail = not_taken_then_killed()
    res.check("lease many (a): SIGKILL on the keeper (stopped asleep) while a lease_many's question waits to "
              "be taken: the call ends with an error (a lost connection), and afterwards none of the group "
              "is held", ok, detail)


def cancelled_in_queue(res):
    owner = "many cancelled in queue"
    holder, asker, mon = connect("rel-many-holder"), connect("rel-many-waiter"), connect("rel-many-monitor")
    try:
        asker.execute(SAFETY)
        apid = one(asker, "SELECT pg_backend_pid()")
        holder.execute("BEGIN")
        one(holder, "SELECT lockhier.lock_path(ARRAY['many', '85', '3'], 'typing')::text")
        bg = Bg(asker, "SELECT lockhier.lease_many(%s, %s, wait => '1 min')", [group_of(85), owner])
        queued = wait_until(lambda: bool(rows(mon, "SELECT FROM pg_locks WHERE pid = %s AND NOT granted", [apid])), 10)
        held_meanwhile = one(mon, "SELECT count(*) FROM lockhier.leases WHERE owner = %s", [owner])
        t0 = now()
        one(mon, "SELECT pg_cancel_backend(%s)", [apid])
        ended = bg.join(CANCEL_BOUND)
        took = now() - t0
        holder.execute("COMMIT")
        answered = keeper_answers(None)
        held_after = one(mon, "SELECT count(*) FROM lockhier.leases WHERE owner = %s", [owner])
        ok = queued and held_meanwhile == 0 and ended and sqlstate(bg.error) == "57014" and held_after == 0
        res.check("lease many (b): a lease_many waiting in the server's queue (wait => '1 min') behind another "
                  "session's transaction lock, cancelled: 57014 at once, and none of the group is held, "
                  "before or after the lock is released", ok,
                  f"queued {queued}; held while waiting {held_meanwhile}; "
                  f"{describe_error(bg.error) if ended else 'still waiting'} after {took:.2f} s; "
                  f"a keeper answers {answered}; held afterwards {held_after}")
        one(mon, "SELECT lockhier.release_leases(%s)", [owner])
    finally:
        close_quietly(holder, asker, mon)


def cancelled_waiting_for_keeper(res):
    owner = "many cancelled stopped keeper"
    asker, mon = connect("rel-many-asker"), connect("rel-many-monitor")
    try:
        asker.execute(SAFETY)
        kpid, apid = keeper_pid(mon), one(asker, "SELECT pg_backend_pid()")
        with Stopped(kpid):
            stopped = proc_state(kpid) == "T"
            bg = Bg(asker, "SELECT lockhier.lease_many(%s, %s)", [group_of(86), owner])
            asking = wait_until(lambda: waiting_for_keeper(mon, apid, "lease_many"), 10)
            t0 = now()
            one(mon, "SELECT pg_cancel_backend(%s)", [apid])
            ended = bg.join(CANCEL_BOUND)
            took = now() - t0
            still_stopped = proc_state(kpid) == "T"
        answered = keeper_answers(None)
        # The group slot it used is free again: more groups than there are group slots go through.
        after = connect("rel-many-after")
        try:
            others = [one(after, "SELECT cardinality(lockhier.lease_many(%s, %s))", [group_of(100 + i), f"many after {i}"])
                      for i in range(6)]
            for i in range(6):
                one(after, "SELECT lockhier.release_leases(%s)", [f"many after {i}"])
        finally:
            close_quietly(after)
        held = one(mon, "SELECT count(*) FROM lockhier.leases WHERE owner = %s", [owner])
        ok = (stopped and asking and ended and sqlstate(bg.error) == "57014" and still_stopped and answered
              and held == 0 and others == [GROUP] * 6)
        res.check("lease many (b): a lease_many waiting for a stopped keeper (its question not taken), "
                  f"cancelled: 57014 within {CANCEL_BOUND:.0f} s, the keeper still stopped; once the keeper "
                  "answers, none of the group is held, and later groups go through", ok,
                  f"waiting for the keeper {asking}; {describe_error(bg.error) if ended else 'still waiting'} "
                  f"after {took:.2f} s; keeper still stopped {still_stopped}; answers {answered}; held afterwards "
                  f"{held}; later groups granted {others}")
        one(mon, "SELECT lockhier.release_leases(%s)", [owner])
    finally:
        close_quietly(asker, mon)


ASK_SLOTS = 64          # src/pg/lease_area/asks.rs
GROUP_SLOTS = 4         # src/pg/lease_area/groups.rs


def terminated_holding_a_group_slot(res):
    owner = "many terminated"
    mon = connect("rel-many-monitor")
    fillers, holders = [], []
    try:
        mon.execute(SAFETY)   # a group slot left taken would make a later lease_many wait forever
        kpid = keeper_pid(mon)
        with Stopped(kpid):
            for i in range(ASK_SLOTS):
                conn = connect(f"rel-many-filler-{i}")
                conn.execute(SAFETY)
                fillers.append((conn, one(conn, "SELECT pg_backend_pid()"),
                                Bg(conn, "SELECT lockhier.lease_application(%s, %s, 'snapshot')", [9000 + i, owner])))
            filled = wait_until(lambda: all(waiting_for_keeper(mon, pid, "lease_application") for _, pid, _ in fillers), 30)
            for i in range(GROUP_SLOTS):
                conn = connect(f"rel-many-holder-{i}")
                conn.execute(SAFETY)
                holders.append((conn, one(conn, "SELECT pg_backend_pid()"),
                                Bg(conn, "SELECT lockhier.lease_many(%s, %s)", [group_of(120 + i), f"{owner} {i}"])))
            waiting = wait_until(lambda: all(waiting_for_keeper(mon, pid, "lease_many") for _, pid, _ in holders), 10)
            for _, pid, _ in holders:
                one(mon, "SELECT pg_terminate_backend(%s)", [pid])
            ended = all(bg.join(CANCEL_BOUND) for _, _, bg in holders)
            terminated = [sqlstate(bg.error) for _, _, bg in holders]
        answered = all(bg.join(30) for _, _, bg in fillers) and keeper_answers(None)
        granted = sum(1 for _, _, bg in fillers if bg.error is None)
        one(mon, "SELECT lockhier.release_leases(%s)", [owner])
        later = []
        for i in range(GROUP_SLOTS + 2):
            try:
                later.append(one(mon, "SELECT cardinality(lockhier.lease_many(%s, %s))", [group_of(130 + i), f"{owner} later {i}"]))
            except Exception as exc:  # noqa: BLE001 - reported below
                later.append(describe_error(exc))
                break
        one(mon, "SELECT lockhier.release_leases(%s)", [owner])
        for i in range(GROUP_SLOTS + 2):
            one(mon, "SELECT lockhier.release_leases(%s)", [f"{owner} later {i}"])
        held = one(mon, "SELECT count(*) FROM lockhier.leases WHERE owner LIKE %s", [owner + "%"])
        ok = (filled and waiting and ended and answered and granted == ASK_SLOTS
              and later == [GROUP] * (GROUP_SLOTS + 2) and held == 0)
        res.check(f"lease many (c): {GROUP_SLOTS} lease_many calls terminated while each holds a group slot (the "
                  f"keeper stopped, its {ASK_SLOTS} question slots full): the slots are freed as they exit, and "
                  "later groups go through", ok,
                  f"question slots filled {filled}; holders waiting {waiting}; ended {ended} ({terminated}); "
                  f"the keeper answers {answered}, {granted} single leases granted; later groups {later}; "
                  f"held afterwards {held}")
    finally:
        close_quietly(mon, *[conn for conn, _, _ in fillers + holders])


def run(res):
    for name, fn in [("lease many (b) queue", cancelled_in_queue), ("lease many (b) keeper", cancelled_waiting_for_keeper),
                     ("lease many (c)", terminated_holding_a_group_slot), ("lease many (a)", keeper_ended)]:
        try:
            fn(res)
        except Exception as exc:  # noqa: BLE001 - one part's crash must not hide the other
            res.crash(name, exc)
            wait_for_server(120)
