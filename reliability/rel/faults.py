"""Check 2: faults. Terminated and killed holders, cancelled and timed-out waiters, deadlocks;
then the lease faults of rel/lease_faults.py (terminated clients, the keeper killed, restarts).

Waiting calls run in background threads (harness.Bg) on their own connections; the main
thread watches pg_locks through a monitor connection to know when a waiter really waits.
"""

import os
import signal
import time

from . import lease_faults
from .harness import (Bg, advisory_count, backend_alive, close_quietly, connect, describe_error,
                      error_of, is_waiting, keeper_pid, now, one, rows, sqlstate, wait_for_server,
                      wait_until)

SAFETY = "SET statement_timeout = '60s'"   # nothing here may hang the suite


def pid_of(conn):
    return one(conn, "SELECT pg_backend_pid()")


def all_free(conn, calls):
    """Each call (a try_lock_* of an exclusive request) returns true in a fresh transaction."""
    got = []
    conn.execute("BEGIN")
    for sql in calls:
        got.append(one(conn, sql))
    conn.execute("ROLLBACK")
    return all(g is True for g in got), got


# --- (a) pg_terminate_backend on a holder ----------------------------------------------------

def terminate_holder(res):
    mon = connect("rel-fault-monitor")
    holder = connect("rel-fault-holder")
    w_xact = connect("rel-fault-waiter-xact")
    w_sess = connect("rel-fault-waiter-session")
    probe = connect("rel-fault-probe")
    try:
        for c in (w_xact, w_sess):
            c.execute(SAFETY)
        hpid = pid_of(holder)
        holder.execute("SELECT lockhier.session_lock_table(2, 1, 'import')")
        holder.execute("SELECT lockhier.session_lock_application(3, 'snapshot', 'share')")
        holder.execute("BEGIN")
        holder.execute("SELECT lockhier.lock_field(1, 1, 1, 'field__update')")
        holder.execute("SELECT lockhier.lock_global('full_backup', 'share')")
        held_before = advisory_count(mon, pid=hpid)
        held_rows = rows(holder, "SELECT held_for FROM lockhier.held() ORDER BY 1")
        wx_pid, ws_pid = pid_of(w_xact), pid_of(w_sess)
        w_xact.execute("BEGIN")
        wx = Bg(w_xact, "SELECT lockhier.lock_field(1, 1, 1, 'field__update', wait => NULL)")
        ws = Bg(w_sess, "SELECT lockhier.session_lock_table(2, 1, 'import', 'share', wait => '30 s')")
        waiting = wait_until(lambda: is_waiting(mon, wx_pid) and is_waiting(mon, ws_pid), 10)
        res.check("fault (a): setup: the holder holds 2 transaction and 2 session requests, two "
                  "sessions wait for them (wait => NULL and wait => '30 s')",
                  held_before > 0 and held_rows == [("session",), ("session",), ("transaction",), ("transaction",)]
                  and waiting and not wx.done and not ws.done,
                  f"holder has {held_before} advisory locks, held() {held_rows}, waiters waiting: {waiting}")
        t_kill = now()
        terminated = one(mon, "SELECT pg_terminate_backend(%s)", [hpid])
        gone = wait_until(lambda: not backend_alive(mon, hpid), 10)
        both = wx.join(10) and ws.join(10)
        res.check("fault (a): pg_terminate_backend ends the holder and both waiters then get their "
                  "locks", terminated and gone and both and wx.error is None and ws.error is None,
                  f"terminated {terminated}, gone {gone}, xact waiter: "
                  f"{describe_error(wx.error) if wx.error else 'granted'} after "
                  f"{(wx.t1 or now()) - t_kill:.2f} s, session waiter: "
                  f"{describe_error(ws.error) if ws.error else 'granted'} after {(ws.t1 or now()) - t_kill:.2f} s")
        left = advisory_count(mon, pid=hpid)
        w_xact.execute("COMMIT")
        one(w_sess, "SELECT lockhier.session_unlock_all()")
        free, got = all_free(probe, [
            "SELECT lockhier.try_lock_field(1, 1, 1, 'field__update')",
            "SELECT lockhier.try_lock_global('full_backup')",
            "SELECT lockhier.try_lock_table(2, 1, 'import')",
            "SELECT lockhier.try_lock_application(3, 'snapshot')",
            "SELECT lockhier.try_lock_global()"])
        res.check("fault (a): afterwards every lock of the terminated backend is free (pg_locks has "
                  "none of its pid; exclusive requests on each of its scopes succeed)",
                  left == 0 and free and advisory_count(mon) == 0, f"{left} locks of pid {hpid}, probes {got}")
        exc, _ = error_of(holder, "SELECT 1")
        res.check("fault (a): the terminated client is told so (57P01 admin shutdown or a closed connection)",
                  exc is not None and (sqlstate(exc) in ("57P01", None)), describe_error(exc))
    finally:
        close_quietly(mon, holder, w_xact, w_sess, probe)


# --- (b) SIGKILL on a holder: the postmaster restarts every backend ---------------------------

def kill_holder(res):
    mon = connect("rel-kill-monitor")
    holder = connect("rel-kill-holder")
    waiter = connect("rel-kill-waiter")
    try:
        waiter.execute(SAFETY)
        hpid = pid_of(holder)
        holder.execute("SELECT lockhier.session_lock_application(1)")
        holder.execute("SELECT lockhier.session_lock_table(2, 2, ARRAY['import', 'snapshot'], 'share')")
        holder.execute("BEGIN")
        holder.execute("SELECT lockhier.lock_field(2, 2, 2, 'field__update')")
        before = advisory_count(mon, pid=hpid)
        wpid = pid_of(waiter)
        wb = Bg(waiter, "SELECT lockhier.lock_application(1, wait => NULL)")
        waiting = wait_until(lambda: is_waiting(mon, wpid), 10)
        res.check("fault (b): setup: the holder holds transaction and session requests "
                  f"({before} lock-table entries), a session waits for them", before > 0 and waiting)
        try:
            os.kill(hpid, signal.SIGKILL)
            sent = "sent"
        except OSError as exc:
            sent = f"could not signal pid {hpid}: {exc}"
        t_kill = now()
        dropped = wb.join(30)
        back = wait_for_server(120)
        res.check("fault (b): SIGKILL on the holder's backend: the server restarts every backend "
                  "(the waiter's connection is lost) and accepts connections again",
                  sent == "sent" and dropped and wb.error is not None and back is not None,
                  f"signal {sent}; waiter: {describe_error(wb.error) if wb.error else 'granted?!'}; "
                  f"server back {now() - t_kill:.1f} s after the kill" if back is not None else "server not back")
        close_quietly(mon, holder, waiter)
        mon = connect("rel-kill-monitor-2")
        probe = connect("rel-kill-probe")
        left_all = advisory_count(mon)
        free, got = all_free(probe, [
            "SELECT lockhier.try_lock_application(1)",
            "SELECT lockhier.try_lock_table(2, 2, ARRAY['import', 'snapshot'])",
            "SELECT lockhier.try_lock_field(2, 2, 2, 'field__update')",
            "SELECT lockhier.try_lock_global()"])
        held = rows(probe, "SELECT * FROM lockhier.held()")
        res.check("fault (b): after the restart all locks are free (no advisory lock in pg_locks, "
                  "exclusive requests on every scope the killed backend held succeed)",
                  left_all == 0 and free and held == [], f"{left_all} advisory locks, probes {got}, held {held}")
        probe.close()
    finally:
        close_quietly(mon, holder, waiter)


# --- (c) a cancelled waiter and a timed-out waiter leave nothing behind ----------------------

OLD_LOCK_TIMEOUT = "700ms"


def waiter_case(res, label, mon, waiter, wpid, sql, stop, in_transaction=False):
    """Run `sql` (which must wait on the held field) on `waiter`, stop it with `stop`
    ('cancel' or a statement_timeout), then check what it left."""
    if in_transaction:
        waiter.execute("BEGIN")
    if stop != "cancel":
        waiter.execute(f"SET statement_timeout = '{stop}'")
    bg = Bg(waiter, sql)
    waiting = wait_until(lambda: is_waiting(mon, wpid), 10)
    taken_while_waiting = advisory_count(mon, pid=wpid, granted=True)
    if stop == "cancel":
        one(mon, "SELECT pg_cancel_backend(%s)", [wpid])
    finished = bg.join(15)
    if in_transaction:
        waiter.execute("ROLLBACK")
    if stop != "cancel":
        waiter.execute("SET statement_timeout = '60s'")
    left = advisory_count(mon, pid=wpid)
    held = rows(waiter, "SELECT * FROM lockhier.held()")
    lt = one(waiter, "SHOW lock_timeout")
    unlocked = one(waiter, "SELECT lockhier.session_unlock_all()")
    res.check(f"fault (c): {label}: 57014, nothing left in pg_locks or held(), lock_timeout back "
              f"to {OLD_LOCK_TIMEOUT}",
              waiting and finished and sqlstate(bg.error) == "57014" and left == 0 and held == []
              and lt == OLD_LOCK_TIMEOUT and unlocked == 0,
              f"waited: {waiting} holding {taken_while_waiting} plan steps already; ended: "
              f"{describe_error(bg.error)} after {(bg.t1 or now()) - bg.t0:.2f} s; left {left} locks, "
              f"held() {held}, lock_timeout {lt}, session_unlock_all() {unlocked}")
    return taken_while_waiting


# The field request waits for the holder's field; application 2's comes first in the canonical
# order, so it is held while the call waits.
MANY_WAITING = ("SELECT lockhier.{fn}('[{{\"application\": 3, \"table\": 1, \"field\": 1, "
                "\"class\": \"field__update\", \"mode\": \"share\"}}, {{\"application\": 2, "
                "\"class\": \"field__update\"}}]', {wait})")


def cancel_and_timeout(res):
    mon = connect("rel-cancel-monitor")
    holder = connect("rel-cancel-holder")
    waiter = connect("rel-cancel-waiter")
    try:
        wpid = pid_of(waiter)
        waiter.execute(SAFETY)
        waiter.execute(f"SET lock_timeout = '{OLD_LOCK_TIMEOUT}'")
        waiter.execute("CREATE TABLE IF NOT EXISTS fault_rows (id int PRIMARY KEY)")
        waiter.execute("INSERT INTO fault_rows VALUES (1), (2) ON CONFLICT DO NOTHING")
        # The holder holds the leaf class key only, so a waiter for the same field first takes
        # its intention locks on every ancestor and then waits on the last step: the cases below
        # must give those back, for session requests too.
        holder.execute("BEGIN")
        holder.execute("SELECT lockhier.lock_field(3, 1, 1, 'field__update')")
        steps = [
            waiter_case(res, "pg_cancel_backend on session_lock_field(wait => '30 s')", mon, waiter, wpid,
                        "SELECT lockhier.session_lock_field(3, 1, 1, 'field__update', 'share', '30 s')", "cancel"),
            waiter_case(res, "pg_cancel_backend on try_session_lock_field(wait => NULL)", mon, waiter, wpid,
                        "SELECT lockhier.try_session_lock_field(3, 1, 1, 'field__update', 'share', NULL)", "cancel"),
            waiter_case(res, "pg_cancel_backend on lock_field(wait => '30 s') in a transaction", mon, waiter, wpid,
                        "SELECT lockhier.lock_field(3, 1, 1, 'field__update', 'share', '30 s')", "cancel",
                        in_transaction=True),
            waiter_case(res, "statement_timeout 300ms on session_lock_field(wait => '30 s')", mon, waiter, wpid,
                        "SELECT lockhier.session_lock_field(3, 1, 1, 'field__update', 'share', '30 s')", "300ms"),
            waiter_case(res, "statement_timeout 300ms on try_session_lock_field(wait => '30 s')", mon, waiter, wpid,
                        "SELECT lockhier.try_session_lock_field(3, 1, 1, 'field__update', 'share', '30 s')", "300ms"),
            waiter_case(res, "statement_timeout 300ms on lock_field(wait => NULL) in a transaction", mon, waiter, wpid,
                        "SELECT lockhier.lock_field(3, 1, 1, 'field__update', 'share', NULL)", "300ms",
                        in_transaction=True),
            # Several requests: application 2's is taken first (the canonical order), then the
            # field's waits; both stops must give back the first request too.
            waiter_case(res, "pg_cancel_backend on session_lock_many(wait => '30 s')", mon, waiter, wpid,
                        MANY_WAITING.format(wait="'30 s'", fn="session_lock_many"), "cancel"),
            waiter_case(res, "statement_timeout 300ms on lock_many(wait => NULL) in a transaction", mon, waiter,
                        wpid, MANY_WAITING.format(wait="NULL", fn="lock_many"), "300ms", in_transaction=True),
        ]
        res.check("fault (c): the stopped waits had taken their earlier plan steps (so giving them "
                  "back was tested)", all(s >= 7 for s in steps), f"steps held while waiting: {steps}")
        # The restored lock_timeout is the one in force, not only the one SHOW prints.
        t0 = now()
        exc, _ = error_of(waiter, "SELECT lockhier.session_lock_field(3, 1, 1, 'field__update', 'share', NULL)")
        took = now() - t0
        res.check(f"fault (c): afterwards a wait => NULL request is bounded by the restored lock_timeout "
                  f"({OLD_LOCK_TIMEOUT}): the conflict error after ~0.7 s, not after the 30 s of the "
                  f"waits before it",
                  sqlstate(exc) == "55P03" and 0.5 <= took < 25 and advisory_count(mon, pid=wpid) == 0,
                  f"{describe_error(exc)} after {took:.2f} s")
        # The row helper's waits: lock_timeout is set for its statement only and put back.
        holder.execute("SELECT lockhier.lock_rows('fault_rows', ARRAY[1])")
        rows_out = []
        for stop in ("cancel", "300ms"):
            waiter.execute("BEGIN")
            if stop != "cancel":
                waiter.execute(f"SET LOCAL statement_timeout = '{stop}'")
            bg = Bg(waiter, "SELECT lockhier.lock_rows('fault_rows', ARRAY[2, 1], wait => '30 s')")
            waiting = wait_until(lambda: one(mon, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                                             [wpid]) == "Lock", 10)
            if stop == "cancel":
                one(mon, "SELECT pg_cancel_backend(%s)", [wpid])
            bg.join(15)
            waiter.execute("ROLLBACK")
            rows_out.append((stop, waiting, sqlstate(bg.error), one(waiter, "SHOW lock_timeout")))
        waiter.execute("BEGIN")
        row2_free = one(mon, "SELECT count(*) FROM (SELECT FROM fault_rows WHERE id = 2 FOR UPDATE NOWAIT) x") == 1
        waiter.execute("ROLLBACK")
        res.check("fault (c): lock_rows waiting with wait => '30 s' stopped by pg_cancel_backend and by "
                  f"statement_timeout: 57014, lock_timeout back to {OLD_LOCK_TIMEOUT}, no row kept",
                  all(r[1:] == (True, "57014", OLD_LOCK_TIMEOUT) for r in rows_out) and row2_free,
                  f"(stop, waited, sqlstate, lock_timeout): {rows_out}; other row free: {row2_free}")
        holder.execute("ROLLBACK")
        ok = one(waiter, "SELECT lockhier.try_session_lock_field(3, 1, 1, 'field__update', 'share')")
        count = one(waiter, "SELECT count(*) FROM lockhier.held()")
        released = one(waiter, "SELECT lockhier.session_unlock_all()")
        res.check("fault (c): the session is still usable: the same request succeeds once the holder is gone",
                  ok is True and count == 1 and released == 1 and advisory_count(mon) == 0,
                  f"try {ok}, held {count}, released {released}")
    finally:
        close_quietly(mon, holder, waiter)


# --- (d) a deadlock between two lockhier requests --------------------------------------------

def deadlock(res, session):
    kind = "session" if session else "transaction"
    fn = "session_lock_field" if session else "lock_field"
    app = 4 if not session else 5
    mon = connect("rel-deadlock-monitor")
    a = connect("rel-deadlock-a")
    b = connect("rel-deadlock-b")
    try:
        apid, bpid = pid_of(a), pid_of(b)
        for c in (a, b):
            c.execute(SAFETY)
            c.execute("SET deadlock_timeout = '100ms'")
            if not session:
                c.execute("BEGIN")
        a.execute(f"SELECT lockhier.{fn}({app}, 1, 1, 'x', wait => NULL)")
        b.execute(f"SELECT lockhier.{fn}({app}, 1, 2, 'x', wait => NULL)")
        ta = Bg(a, f"SELECT lockhier.{fn}({app}, 1, 2, 'x', wait => NULL)")
        wait_until(lambda: is_waiting(mon, apid), 10)
        tb = Bg(b, f"SELECT lockhier.{fn}({app}, 1, 1, 'x', wait => NULL)")
        wait_until(lambda: (ta.done or tb.done), 20)
        if session:
            # The victim's failed request is given back, but its first session lock stays until
            # unlocked (an abort does not end session locks), so the survivor still waits.
            time.sleep(0.3)
        victims = [(name, t, c, pid) for name, t, c, pid in (("A", ta, a, apid), ("B", tb, b, bpid))
                   if t.done and sqlstate(t.error) == "40P01"]
        if len(victims) != 1:
            ta.join(5)
            tb.join(5)
            res.check(f"fault (d): {kind} deadlock: exactly one of the two requests gets 40P01", False,
                      f"A: {describe_error(ta.error) if ta.done else 'still waiting'}, "
                      f"B: {describe_error(tb.error) if tb.done else 'still waiting'}")
            return
        vname, vt, vc, vpid = victims[0]
        st, sc = (tb, b) if vname == "A" else (ta, a)
        if session:
            still_waiting = not st.done
            vheld = rows(vc, "SELECT field_id, held_for, count FROM lockhier.held()")
            vlocks = advisory_count(mon, pid=vpid)
            plan = one(vc, f"SELECT count(*) FROM lockhier.plan_field({app}, 1, 1, 'x')")
            first_field = 1 if vname == "A" else 2
            res.check("fault (d): session deadlock: the victim's failed request took nothing (held() "
                      "lists only its first request, pg_locks only that plan + sentinel) and the "
                      "survivor keeps waiting for the victim's session lock",
                      still_waiting and vheld == [(first_field, "session", 1)] and vlocks == plan + 1,
                      f"survivor waiting: {still_waiting}, victim held() {vheld}, victim locks {vlocks} (plan {plan})")
            one(vc, f"SELECT lockhier.session_unlock_field({app}, 1, {first_field}, 'x')")
        else:
            vc.execute("ROLLBACK")
        done = st.join(10)
        sheld = rows(sc, "SELECT field_id FROM lockhier.held() ORDER BY 1") if done and st.error is None else None
        res.check(f"fault (d): {kind} deadlock: the server breaks it with 40P01 for one ({vname}) and the "
                  "survivor completes holding both fields",
                  done and st.error is None and sheld == [(1,), (2,)],
                  f"victim: {describe_error(vt.error)} after {vt.t1 - vt.t0:.2f} s; survivor: "
                  f"{describe_error(st.error) if st.done else 'still waiting'}, holds fields {sheld}")
        if session:
            one(sc, "SELECT lockhier.session_unlock_all()")
        else:
            sc.execute("COMMIT")
        left = advisory_count(mon)
        res.check(f"fault (d): {kind} deadlock: nothing left afterwards", left == 0, f"{left} advisory locks")
    finally:
        close_quietly(mon, a, b)


# --- (e) a lock granted after a wait belongs to the caller's (sub)transaction ------------------

def savepoint_after_wait(res):
    """lockhier waits inside an internal subtransaction and then moves the granted lock to the
    caller's resource owner. ROLLBACK TO SAVEPOINT (and a PL/pgSQL EXCEPTION block) must then
    release it exactly as they release a lock granted at once; a session lock must survive."""
    mon = connect("rel-sp-monitor")
    holder = connect("rel-sp-holder")
    w = connect("rel-sp-waiter")
    probe = connect("rel-sp-probe")
    try:
        w.execute(SAFETY)
        wpid = pid_of(w)
        out = {}

        def after_wait(sql, setup_sp=True):
            holder.execute("BEGIN")
            holder.execute("SELECT lockhier.lock_field(6, 1, 1, 'c')")
            w.execute("BEGIN")
            if setup_sp:
                w.execute("SAVEPOINT s")
            bg = Bg(w, sql)
            waited = wait_until(lambda: is_waiting(mon, wpid), 10)
            time.sleep(0.1)
            holder.execute("COMMIT")
            bg.join(10)
            return waited, bg

        waited, bg = after_wait("SELECT lockhier.lock_field(6, 1, 1, 'c', wait => '10 s')")
        held_in = len(rows(w, "SELECT * FROM lockhier.held()"))
        w.execute("ROLLBACK TO SAVEPOINT s")
        out["savepoint"] = (waited, describe_error(bg.error) if bg.error else "granted", held_in,
                            len(rows(w, "SELECT * FROM lockhier.held()")), advisory_count(mon, pid=wpid),
                            one(probe, "SELECT lockhier.try_lock_field(6, 1, 1, 'c')"))
        w.execute("ROLLBACK")
        waited, bg = after_wait("""DO $$ BEGIN
              BEGIN PERFORM lockhier.lock_field(6, 1, 1, 'c', wait => '10 s'); RAISE EXCEPTION 'undo';
              EXCEPTION WHEN raise_exception THEN NULL; END; END $$""", setup_sp=False)
        out["plpgsql"] = (waited, describe_error(bg.error) if bg.error else "granted", 1,
                          len(rows(w, "SELECT * FROM lockhier.held()")), advisory_count(mon, pid=wpid),
                          one(probe, "SELECT lockhier.try_lock_field(6, 1, 1, 'c')"))
        w.execute("ROLLBACK")
        waited, bg = after_wait("SELECT lockhier.session_lock_field(6, 1, 1, 'c', wait => '10 s')")
        w.execute("ROLLBACK TO SAVEPOINT s")
        w.execute("ROLLBACK")
        sess = (waited, describe_error(bg.error) if bg.error else "granted",
                len(rows(w, "SELECT * FROM lockhier.held()")),
                one(probe, "SELECT lockhier.try_lock_field(6, 1, 1, 'c')"),
                one(w, "SELECT lockhier.session_unlock_field(6, 1, 1, 'c')"), advisory_count(mon, pid=wpid))
        want = (True, "granted", 1, 0, 0, True)
        res.check("fault (e): a transaction lock granted after a wait is released by ROLLBACK TO "
                  "SAVEPOINT and by a PL/pgSQL EXCEPTION block (held() agrees); a session lock "
                  "granted after a wait survives both rollbacks until unlocked",
                  out["savepoint"] == want and out["plpgsql"] == want
                  and sess == (True, "granted", 1, False, True, 0),
                  f"(waited, outcome, held inside, held after, locks after, other session can lock): "
                  f"savepoint {out['savepoint']}, plpgsql {out['plpgsql']}; session "
                  f"(waited, outcome, held, other can lock, unlock, locks after) {sess}")
    finally:
        close_quietly(mon, holder, w, probe)


# --- (f) a bounded wait bounds the whole request, across several waits -----------------------

def wait_is_total(res):
    """wait => '800 ms' is the limit for the whole request: the request first waits for one
    holder (on an ancestor step), which leaves after 700 ms, then for another (on the leaf
    step); it must give up about 800 ms after it started, not 700 + 800."""
    h1 = connect("rel-total-h1")
    h2 = connect("rel-total-h2")
    w = connect("rel-total-waiter")
    mon = connect("rel-total-monitor")
    try:
        w.execute(SAFETY)
        wpid = pid_of(w)
        h1.execute("BEGIN")
        h1.execute("SELECT lockhier.lock_application(7, 'c', 'share')")      # in the way at application 7
        h2.execute("BEGIN")
        h2.execute("SELECT lockhier.lock_field(7, 1, 1, 'c', 'share')")      # in the way at the field
        # Bounded as a whole, it gives up ~3 s after the call; bounded per wait, it would wait
        # 2.5 s for the first holder and 3 s more for the second. The margin between the two is
        # seconds, so a loaded machine cannot blur them.
        bg = Bg(w, "SELECT lockhier.lock_field(7, 1, 1, 'c', wait => '3 s')")
        wait_until(lambda: is_waiting(mon, wpid), 5)
        time.sleep(max(0.0, 2.5 - (now() - bg.t0)))
        h1.execute("COMMIT")
        bg.join(10)
        took = (bg.t1 or now()) - bg.t0
        detail = bg.error.diag.message_detail if bg.error is not None else ""
        h2.execute("COMMIT")
        left = advisory_count(mon, pid=wpid)
        res.check("fault (f): wait => '3 s' across two successive waits gives up ~3 s after "
                  "the call (not 2.5 + 3), with the conflict error naming the second holder and nothing left",
                  sqlstate(bg.error) == "55P03" and 2.95 <= took < 5 and "waited" in (detail or "").lower()
                  and f"process {pid_of(h2)}" in (detail or "") and left == 0,
                  f"{describe_error(bg.error)} after {took:.2f} s; DETAIL {detail!r}; {left} locks left")
    finally:
        close_quietly(h1, h2, w, mon)


def run(res):
    for name, fn in [("fault (a)", terminate_holder), ("fault (c)", cancel_and_timeout),
                     ("fault (d) transaction", lambda r: deadlock(r, session=False)),
                     ("fault (d) session", lambda r: deadlock(r, session=True)),
                     ("fault (e)", savepoint_after_wait), ("fault (f)", wait_is_total),
                     ("fault (b)", kill_holder)]:
        try:
            fn(res)
        except Exception as exc:  # noqa: BLE001 - one fault's crash must not hide the others
            res.crash(name, exc)
            wait_for_server(120)
    # Leases: the client that took one terminated, a waiting lease call stopped, the keeper
    # killed, a fast restart, an immediate shutdown (rel/lease_faults.py). Last: they restart
    # the server.
    with connect("rel-fault-leases") as conn:
        keeper = keeper_pid(conn)
    if res.check("lease faults: the lease keeper runs (lockhier in shared_preload_libraries)",
                 keeper is not None):
        lease_faults.run(res)
