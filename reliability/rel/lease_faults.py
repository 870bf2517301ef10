"""Lease faults: the client that took (or validated) a lease terminated; a lease call waiting in
the queue cancelled or terminated; the lease keeper killed with SIGKILL; a fast restart; an
immediate shutdown, with a lease whose ttl runs out while the server is down and one whose ttl
covers the downtime.

A lease belongs to its owner, not to a connection, and is journaled: after each fault the
leases not yet expired must be held again, with the same tokens, owners, requests and times
(lockhier.leases), by the new keeper (pg_locks: its locks are exactly their plans), refusing
conflicting requests with the lease named in the DETAIL; the leases released, released by
owner or expired before the fault (or while the server was down) must stay gone; re-entrance
must still return the same token; and tokens must keep growing. Steps are ordered by what
pg_locks, pg_stat_activity and lockhier.leases show, never by sleeping; the only waits on the
clock are for a ttl to run out, and they are followed by a look at the server's clock.

The first lockhier call after each restart is a lease function: it waits for the keeper to have
restored the leases (docs/leases.md). lock_* and session_lock_* are documented to wait too, but
do not (see the report that came with these tests); until they do, checking a conflicting
lock_* first would only race the keeper.
"""

import os
import signal
import time

from .harness import (Bg, Server, advisory_count, backend_alive, close_quietly, connect, describe_error,
                      error_of, is_waiting, keeper_pid, now, one, rows, sqlstate, wait_for_server,
                      wait_until)

LEVELS = ["global", "application", "table", "field"]
SAFETY = "SET statement_timeout = '60s'"
VIEW = ("SELECT token, owner, scope, classes, mode, acquired_at, renewed_at, expires_at, taken_by "
        "FROM lockhier.leases WHERE owner = ANY(%s) ORDER BY token")
THIS_DB = "(SELECT oid FROM pg_database WHERE datname = current_database())"


class Lease:
    """One lease of a fault scenario: its request, ttl and owner, and its token once taken."""

    def __init__(self, path, classes, mode, ttl, owner):
        self.path, self.classes, self.mode, self.ttl, self.owner = path, classes, mode, ttl, owner
        self.token = None

    @property
    def level(self):
        return LEVELS[len(self.path)]

    def cls(self, classes=None):
        classes = self.classes if classes is None else classes
        if isinstance(classes, list):
            return "ARRAY[" + ", ".join(f"'{c}'" for c in classes) + "]"
        return f"'{classes}'"

    def ids(self):
        return "".join(f"{i}, " for i in self.path)

    def take(self, conn, owner=None, classes=None, fn="lease_"):
        """Its lease_* call (the token, or None from try_lease_*)."""
        return one(conn, f"SELECT lockhier.{fn}{self.level}({self.ids()}%s, {self.cls(classes)}, %s, "
                         f"%s::interval)", [owner or self.owner, self.mode, self.ttl])

    def conflicting_lock(self):
        """A transaction request that conflicts with it: its own, exclusive."""
        return f"SELECT lockhier.lock_{self.level}({self.ids()}{self.cls()}, 'exclusive')"

    def try_conflicting_lock(self):
        return f"SELECT lockhier.try_lock_{self.level}({self.ids()}{self.cls()}, 'exclusive')"

    def plan(self):
        return f"SELECT classid::bigint, objid::bigint, lock_mode FROM lockhier.plan_{self.level}({self.ids()}{self.cls()}, '{self.mode}')"

    def __repr__(self):
        return f"lease {self.token} {self.level} {self.path} {self.classes} {self.mode} of {self.owner!r}"


def flat(text, keep=200):
    return " ".join(text.split())[-keep:]


def lease_view(conn, leases):
    return rows(conn, VIEW, [[lease.owner for lease in leases]])


def expiry_of(conn, lease):
    got = rows(conn, "SELECT extract(epoch FROM expires_at)::float8 FROM lockhier.leases WHERE token = %s",
               [lease.token])
    return got[0][0] if got else None


def server_clock(conn):
    return one(conn, "SELECT extract(epoch FROM clock_timestamp())::float8")


def max_token(conn):
    """The largest token this run has seen so far (lockhier.leases only lists those held)."""
    return one(conn, "SELECT coalesce(max(token), 0) FROM lockhier.leases")


def keeper_locks(conn, pid):
    return set(rows(conn, "SELECT classid::bigint, objid::bigint, mode FROM pg_locks WHERE pid = %s "
                          f"AND locktype = 'advisory' AND objsubid = 1 AND database = {THIS_DB}", [pid]))


def fences(conn):
    """Fences held by validating transactions or releases: the keeper's own hold on each lease's
    fence (AccessShareLock, from the grant to the lease's end: docs/leases.md) is not one."""
    return one(conn, f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 3 "
                     f"AND mode <> 'AccessShareLock' AND database = {THIS_DB}")


def release_all(conn, leases):
    released = 0
    for owner in sorted({lease.owner for lease in leases}):
        released += one(conn, "SELECT lockhier.release_leases(%s)", [owner])
    return released


# --- the scenario common to the server faults ------------------------------------------------

class Scenario:
    """Leases taken before a server fault: five live ones of every level (one renewed before the
    fault, two share leases of different owners on one table), and three gone before the fault
    (released, released by owner, expired) that must not come back."""

    def __init__(self, res, letter, title, app, extra_live=()):
        self.res, self.label, self.app = res, f"{letter} {title}", app
        self.tag = tag = f"fault {letter}"
        self.live = [Lease((), ["full_backup"], "share", "2 min", f"{tag} backup"),
                     Lease((app,), "migration", "exclusive", "2 min", f"{tag} migration"),
                     Lease((app, 1), ["import", "field__deletion"], "share", "2 min", f"{tag} import"),
                     Lease((app, 1), ["field__deletion", "import"], "share", "2 min", f"{tag} import 2"),
                     Lease((app, 2, 7), "field__update", "exclusive", "30 s", f"{tag} editor")]
        self.live += list(extra_live)
        self.gone = [Lease((app, 3), "snapshot", "share", "2 min", f"{tag} released"),
                     Lease((app, 4), "snapshot", "share", "2 min", f"{tag} released by owner"),
                     Lease((app, 5), "snapshot", "share", "300 ms", f"{tag} expired")]
        self.everything = self.live + self.gone

    def setup(self, conn):
        """Take the leases; returns (the view rows of the live ones, the largest token seen, the
        keeper's pid)."""
        for lease in self.everything:
            lease.token = lease.take(conn)
        problems = []
        editor = self.live[4]
        if one(conn, "SELECT lockhier.renew_lease(%s, '40 s')", [editor.token]) is not True:
            problems.append("renewal of the editor's lease failed")
        released, by_owner, expired = self.gone
        if one(conn, "SELECT lockhier.release_lease(%s)", [released.token]) is not True:
            problems.append("release_lease failed")
        if one(conn, "SELECT lockhier.release_leases(%s)", [by_owner.owner]) != 1:
            problems.append("release_leases did not release 1")
        if not wait_until(lambda: expiry_of(conn, expired) is None, 15):
            problems.append("the 300 ms lease did not expire within 15 s")
        view = lease_view(conn, self.everything)
        tokens = [lease.token for lease in self.everything]
        ok = (not problems and [r[0] for r in view] == sorted(lease.token for lease in self.live)
              and len(set(tokens)) == len(tokens))
        self.res.check(f"lease fault {self.label}: setup: {len(self.live)} live leases of every level, "
                       "a renewed one, two share leases of different owners on one table; 3 gone "
                       "before the fault (released, released by owner, expired)", ok,
                       f"tokens {sorted(tokens)}" if ok else "; ".join(problems) + f"; view {view}")
        return view, max(tokens), keeper_pid(conn)

    def verify(self, conn, view_before, max_before, keeper_before, gone=(), ignore=()):
        """Everything that must hold after the fault: the scenario's live leases (but `ignore`)
        held again, its gone ones and `gone` not."""
        label = self.label
        live = [lease for lease in self.live if lease not in ignore]
        gone = list(self.gone) + list(gone)
        # The first lockhier call after the fault: a lease function, which waits for the restore.
        t0 = now()
        exc, got = error_of(conn, "SELECT lockhier.lease_valid(%s)", [gone[0].token])
        waited = now() - t0
        kpid = keeper_pid(conn)
        view = [r for r in lease_view(conn, self.everything + gone) if r[0] not in {i.token for i in ignore}]
        want = [r for r in view_before if r[0] in {lease.token for lease in live}]
        self.res.check(f"lease fault {label}: the first lease call waits for the restore; then "
                       f"lockhier.leases lists the {len(live)} live leases exactly as before (token, "
                       "owner, scope, classes, mode, acquired_at, renewed_at, expires_at, taken_by) "
                       f"and none of the {len(gone)} gone ones; a new keeper holds them",
                       exc is None and got == [(False,)] and view == want and kpid is not None
                       and kpid != keeper_before,
                       f"lease_valid of a gone lease: {describe_error(exc) if exc else got} after "
                       f"{waited:.2f} s; keeper {keeper_before} -> {kpid}"
                       + ("" if view == want else f"; view {view}, want {want}"))
        # The keeper's locks are the plans of the listed leases; no fence is held.
        plans = set()
        for lease in live:
            plans |= set(rows(conn, lease.plan()))
        held = keeper_locks(conn, kpid) if kpid else set()
        n_fences = fences(conn)
        refused = []
        for lease in live:
            conn.execute("BEGIN")
            exc, _ = error_of(conn, lease.conflicting_lock())
            conn.execute("ROLLBACK")
            detail = (exc.diag.message_detail or "") if exc is not None else ""
            if sqlstate(exc) != "55P03" or f'held by lease {lease.token} of owner "{lease.owner}"' not in detail:
                refused.append(f"{lease}: {describe_error(exc)} DETAIL {detail!r}")
        self.res.check(f"lease fault {label}: pg_locks: the keeper holds exactly the plans of the "
                       f"listed leases ({len(plans)} locks) and no fence; a conflicting lock_* is "
                       "refused (55P03) naming each lease's token and owner",
                       held == plans and n_fences == 0 and not refused,
                       f"keeper holds {len(held)} locks, plans {len(plans)}, missing {len(plans - held)}, "
                       f"extra {len(held - plans)}; fences {n_fences}; " + "; ".join(refused[:3]))
        # Re-entrance survives the fault; other owners are still refused; tokens keep growing.
        same = live[2]
        again = same.take(conn, classes=list(reversed(same.classes)))
        other = Lease(same.path, "import", "exclusive", "1 min", f"{self.tag} intruder").take(conn, fn="try_lease_")
        new = Lease((self.app, 9), "snapshot", "share", "1 min", f"{self.tag} after")
        new.token = new.take(conn)
        released_new = one(conn, "SELECT lockhier.release_lease(%s)", [new.token])
        self.res.check(f"lease fault {label}: the owner of a live lease asking again gets its token "
                       "back, another owner's conflicting lease is refused, and a new lease's token "
                       f"is larger than every token before the fault",
                       again == same.token and other is None and new.token > max_before and released_new,
                       f"again {again} (want {same.token}), intruder {other}, new token {new.token} "
                       f"(before: max {max_before})")

    def cleanup(self, conn, extra=()):
        released = release_all(conn, self.everything + list(extra))
        left_view = lease_view(conn, self.everything + list(extra))
        left = advisory_count(conn)
        self.res.check(f"lease fault {self.label}: released by owner from a new connection "
                       f"({released} leases); nothing left in lockhier.leases or pg_locks",
                       left_view == [] and left == 0, f"view {left_view}, {left} advisory locks")


# --- (e) the client that took the lease, and one that validated it, terminated ---------------

def client_terminated(res):
    mon = connect("rel-lf-monitor")
    taker = connect("rel-lf-taker")
    validator = connect("rel-lf-validator")
    releaser = connect("rel-lf-releaser")
    probe = connect("rel-lf-probe")
    try:
        releaser.execute(SAFETY)
        lease = Lease((41, 1), ["import", "field__deletion"], "exclusive", "2 min", "fault (e) job")
        tpid = one(taker, "SELECT pg_backend_pid()")
        lease.token = lease.take(taker)
        terminated = one(mon, "SELECT pg_terminate_backend(%s)", [tpid])
        gone = wait_until(lambda: not backend_alive(mon, tpid), 10)
        view = lease_view(probe, [lease])
        probe.execute("BEGIN")
        exc, _ = error_of(probe, lease.conflicting_lock())
        probe.execute("ROLLBACK")
        detail = (exc.diag.message_detail or "") if exc is not None else ""
        kpid = keeper_pid(mon)
        plan = set(rows(mon, lease.plan()))
        res.check("lease fault (e): pg_terminate_backend on the client that took a lease: the lease "
                  "stays (it is its owner's): listed, its plan held by the keeper, a conflicting "
                  "lock_* refused naming it",
                  terminated and gone and len(view) == 1 and view[0][0] == lease.token
                  and sqlstate(exc) == "55P03" and f'held by lease {lease.token} of owner "{lease.owner}"' in detail
                  and plan <= keeper_locks(mon, kpid),
                  f"terminated {terminated}, gone {gone}, listed {[r[:2] for r in view]}, conflicting: {describe_error(exc)} "
                  f"DETAIL {detail!r}")
        # Another client validates it and stays in its transaction: a release from a third one
        # waits for that transaction (the fence); terminating the validator lets it through.
        vpid = one(validator, "SELECT pg_backend_pid()")
        rpid = one(releaser, "SELECT pg_backend_pid()")
        validator.execute("BEGIN")
        valid = one(validator, "SELECT lockhier.lease_valid(%s)", [lease.token])
        rel = Bg(releaser, "SELECT lockhier.release_lease(%s)", [lease.token])
        waiting = wait_until(lambda: is_waiting(mon, rpid), 10)
        still = len(lease_view(probe, [lease]))
        terminated = one(mon, "SELECT pg_terminate_backend(%s)", [vpid])
        done = rel.join(15)
        view = lease_view(probe, [lease])
        probe.execute("BEGIN")
        exc, got = error_of(probe, lease.conflicting_lock())
        probe.execute("ROLLBACK")
        left = advisory_count(mon)
        res.check("lease fault (e): a release from another connection waits for a transaction that "
                  "validated the lease (lease_valid true, fence held); terminating that client lets "
                  "the release through (true); the lease is then gone and its scope free",
                  valid is True and waiting and still == 1 and terminated and done and rel.error is None
                  and rel.result == [(True,)] and view == [] and exc is None and left == 0,
                  f"valid {valid}, release waited {waiting} (lease still listed: {still}), release "
                  f"{describe_error(rel.error) if rel.error else rel.result}, view {view}, conflicting "
                  f"lock: {describe_error(exc)}, {left} advisory locks left")
    finally:
        close_quietly(mon, taker, validator, releaser, probe)


# --- (f) a lease call waiting in the queue, cancelled or terminated ----------------------------

def waiting_call_stopped(res):
    mon = connect("rel-lf-monitor")
    holder = connect("rel-lf-holder")
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT lockhier.lock_field(42, 1, 1, 'c')")
        outcomes = []
        for stop in ("cancel", "terminate", "granted"):
            w = connect(f"rel-lf-waiter-{stop}")
            w.execute(SAFETY)
            wpid = one(w, "SELECT pg_backend_pid()")
            owner = f"fault (f) {stop}"
            bg = Bg(w, "SELECT lockhier.lease_field(42, 1, 1, %s, 'c', 'exclusive', '2 min', '30 s')", [owner])
            waiting = wait_until(lambda: is_waiting(mon, wpid), 10)
            if stop == "cancel":
                one(mon, "SELECT pg_cancel_backend(%s)", [wpid])
            elif stop == "terminate":
                one(mon, "SELECT pg_terminate_backend(%s)", [wpid])
            else:
                holder.execute("COMMIT")
            finished = bg.join(15)
            listed = rows(mon, "SELECT token FROM lockhier.leases WHERE owner = %s", [owner])
            own_locks = advisory_count(mon, pid=wpid)
            outcomes.append((stop, waiting, finished, sqlstate(bg.error) if bg.error else bg.result,
                             listed, own_locks))
            if stop == "granted" and listed:
                one(mon, "SELECT lockhier.release_lease(%s)", [listed[0][0]])
            close_quietly(w)
        ok = (len(outcomes) == 3
              and outcomes[0][:4] == ("cancel", True, True, "57014") and outcomes[0][4:] == ([], 0)
              and outcomes[1][:3] == ("terminate", True, True) and outcomes[1][3] in ("57P01", None)
              and outcomes[1][4:] == ([], 0)
              and outcomes[2][:3] == ("granted", True, True) and len(outcomes[2][4]) == 1
              and outcomes[2][3] == [(outcomes[2][4][0][0],)] and outcomes[2][5] == 0)
        left = advisory_count(mon)
        res.check("lease fault (f): a lease_field call waiting (wait => '30 s') behind a transaction "
                  "lock: cancelled -> 57014, terminated -> connection lost, both leaving no lease and "
                  "no lock; when the holder commits, the waiting call gets its lease",
                  ok and left == 0,
                  f"(stop, waited, finished, outcome, leases listed, locks of the waiter): {outcomes}; "
                  f"{left} advisory locks left")
    finally:
        close_quietly(mon, holder)


# --- (a) SIGKILL on the lease keeper ---------------------------------------------------------

def kill_keeper(res):
    conn = connect("rel-lf-kill")
    sc = Scenario(res, "(a)", "SIGKILL on the lease keeper", 43)
    view, max_before, kpid = sc.setup(conn)
    try:
        os.kill(kpid, signal.SIGKILL)
        sent = "sent"
    except (OSError, TypeError) as exc:
        sent = f"could not signal the keeper (pid {kpid}): {exc}"
    # the postmaster restarts every backend: wait until this connection is gone, then for the server
    lost = wait_until(lambda: error_of(conn, "SELECT 1")[0] is not None, 30)
    back = wait_for_server(120)
    res.check("lease fault (a): SIGKILL on the lease keeper: the postmaster restarts every backend "
              "(our connection is lost) and the server accepts connections again",
              sent == "sent" and lost and back is not None,
              f"signal {sent}; connection lost {lost}; server back: {back is not None}")
    close_quietly(conn)
    conn = connect("rel-lf-kill-after")
    try:
        sc.verify(conn, view, max_before, kpid)
        sc.cleanup(conn)
    finally:
        close_quietly(conn)


# --- (b) a fast restart ------------------------------------------------------------------------

def fast_restart(res, server):
    conn = connect("rel-lf-restart")
    sc = Scenario(res, "(b)", "pg_ctl restart -m fast", 44)
    view, max_before, kpid = sc.setup(conn)
    close_quietly(conn)
    rc, out = server.restart_fast()
    back = wait_for_server(120)
    res.check("lease fault (b): pg_ctl restart -m fast (as the cluster's OS user) restarts the server",
              rc == 0 and back is not None, f"pg_ctl exit {rc}: {flat(out)}")
    conn = connect("rel-lf-restart-after")
    try:
        sc.verify(conn, view, max_before, kpid)
        sc.cleanup(conn)
    finally:
        close_quietly(conn)


# --- (c), (d) an immediate shutdown; ttls running while the server is down ---------------------

def immediate_shutdown(res, server):
    conn = connect("rel-lf-immediate")
    covers = Lease((45, 7, 1), "field__update", "exclusive", "6 s", "fault (d) covers the downtime")
    short = Lease((45, 6), "snapshot", "exclusive", "1500 ms", "fault (d) runs out while down")
    sc = Scenario(res, "(c)", "pg_ctl stop -m immediate, then start", 45, extra_live=[covers])
    view, max_before, kpid = sc.setup(conn)
    short.token = short.take(conn)
    max_before = max(max_before, short.token)
    e_short, e_covers = expiry_of(conn, short), expiry_of(conn, covers)
    close_quietly(conn)
    rc1, out1 = server.stop_immediate()
    down = not server.running()
    # Down until the short lease's ttl has run out (the server's clock is this machine's).
    time.sleep(max(0.0, (e_short or 0) + 0.3 - time.time()))
    rc2, out2 = server.start()
    back = wait_for_server(120)
    res.check("lease fault (c): pg_ctl stop -m immediate (no shutdown of the keeper, a crash for "
              "the server), then pg_ctl start: the server comes back",
              rc1 == 0 and down and rc2 == 0 and back is not None,
              f"stop exit {rc1}, down {down}, start exit {rc2}: {flat(out1)}; {flat(out2)}")
    conn = connect("rel-lf-immediate-after")
    mon = connect("rel-lf-immediate-monitor")
    waiter = connect("rel-lf-immediate-waiter")
    try:
        waiter.execute(SAFETY)
        at = server_clock(conn)
        # If the machine was too slow for the ttl to cover the downtime and these checks, the
        # lease is left out of them rather than raced.
        slow = at >= e_covers - 1.0
        sc.verify(conn, view, max_before, kpid, gone=[short], ignore=[covers] if slow else [])
        free = one(conn, short.try_conflicting_lock())
        res.check("lease fault (d): a lease whose ttl ran out while the server was down is gone after "
                  "the restart (not listed, its scope free)",
                  short.token not in [r[0] for r in lease_view(conn, [short])] and free is True,
                  f"server clock {at - e_short:+.2f} s past its expires_at; conflicting try_lock {free}")
        if slow:
            res.check("lease fault (d): a lease whose ttl covers the downtime is held until its "
                      "expires_at -- not exercised: the restart left less than 1 s of its 6 s ttl", True)
            return
        # It is held until its own expires_at, not a new one: a waiter is granted then, not before.
        wpid = one(waiter, "SELECT pg_backend_pid()")
        waiter.execute("BEGIN")
        bg = Bg(waiter, "SELECT lockhier.lock_field(45, 7, 1, 'field__update', wait => '30 s')")
        queued = wait_until(lambda: is_waiting(mon, wpid) or bg.done, 10)
        early, seen_at = None, None
        deadline = now() + 40
        while now() < deadline:
            done = bg.done
            clock = server_clock(mon)
            if done:
                seen_at = clock
                early = clock < e_covers
                break
            time.sleep(0.02)
        bg.join(5)
        waiter.execute("ROLLBACK")
        listed = lease_view(mon, [covers])
        res.check("lease fault (d): a lease whose ttl covers the downtime is held after the restart "
                  "with the same expires_at (its ttl kept running), until then: a waiting "
                  "lock_field is granted at its expires_at, not before, and the lease is then gone",
                  queued and bg.error is None and early is False and listed == [],
                  f"waiter queued {queued}, {describe_error(bg.error) if bg.error else 'granted'}, "
                  + (f"seen granted {seen_at - e_covers:+.3f} s from its expires_at" if seen_at else "never granted")
                  + f"; listed afterwards {listed}")
    finally:
        try:
            sc.cleanup(conn, extra=[short])
        finally:
            close_quietly(conn, mon, waiter)


# --- (h) releases answered just before a crash ----------------------------------------------------

def release_then_crash(res, server):
    """A release is answered once its record is written to the journal, before the record is
    flushed (docs/leases.md, "What a release costs"): a crash of the server right after the
    answers must not bring the released leases back. Only an operating-system crash could lose
    such a record, which no test here can make."""
    conn = connect("rel-lf-release-crash")
    leases = [Lease((56, i), "snapshot", "exclusive", "60 s", f"fault (h) {i}") for i in range(1, 21)]
    for lease in leases:
        lease.token = lease.take(conn)
    released = [one(conn, "SELECT lockhier.release_lease(%s)", [lease.token]) for lease in leases]
    # At once, so that no later grant's flush (nor the keeper's own, 10 ms on) can cover them.
    rc1, out1 = server.stop_immediate()
    close_quietly(conn)
    rc2, out2 = server.start()
    back = wait_for_server(120)
    conn = connect("rel-lf-release-crash-after")
    try:
        # A lease function first: it waits for the keeper's restore (see the module's note).
        valid = [one(conn, "SELECT lockhier.lease_valid(%s)", [lease.token]) for lease in leases]
        listed = lease_view(conn, leases)
        free = [one(conn, lease.try_conflicting_lock()) for lease in leases]
        res.check("lease fault (h): 20 releases answered just before pg_ctl stop -m immediate stay "
                  "released after the restart (not listed, lease_valid false, their scopes free)",
                  rc1 == 0 and rc2 == 0 and back is not None and all(released)
                  and listed == [] and not any(valid) and all(free),
                  f"stop {rc1}, start {rc2}; released {released.count(True)}/20; still listed "
                  f"{len(listed)}; valid {valid.count(True)}; free {free.count(True)}/20")
    finally:
        close_quietly(conn)


def run(res):
    """The lease faults, in an order that leaves the server up: the client faults first, then
    those that restart it."""
    for name, fn in [("lease fault (e)", client_terminated), ("lease fault (f)", waiting_call_stopped),
                     ("lease fault (g)", keeper_terminated)]:
        try:
            fn(res)
        except Exception as exc:  # noqa: BLE001 - one fault's crash must not hide the others
            res.crash(name, exc)
    try:
        kill_keeper(res)
    except Exception as exc:  # noqa: BLE001
        res.crash("lease fault (a)", exc)
        wait_for_server(120)
    try:
        server = Server()
    except Exception as exc:  # noqa: BLE001
        res.check("lease faults (b), (c), (d): pg_ctl of the cluster found (run the suite as root or "
                  "as the server's OS user, on the server's machine)", False, f"{type(exc).__name__}: {exc}")
        return
    for name, fn in [("lease fault (b)", fast_restart), ("lease fault (c)", immediate_shutdown),
                     ("lease fault (h)", release_then_crash)]:
        try:
            fn(res, server)
        except Exception as exc:  # noqa: BLE001
            res.crash(name, exc)
            if wait_for_server(20) is None:
                server.start()
                wait_for_server(120)


# --- (g) pg_terminate_backend on the lease keeper ---------------------------------------------

def keeper_terminated(res):
    """SIGTERM (pg_terminate_backend, as a superuser may send to any backend) on the lease
    keeper: it is restarted a second later and holds the lease again, and every lockhier call
    meanwhile waits for that (docs/leases.md) instead of being granted against the lease. A
    conflicting lock_* sent the moment the keeper is told to stop is refused, not granted.
    (Until this was fixed the keeper exited with status 0, which the postmaster takes for
    "done", and lock_* did not wait for the restore.) It restarts the server afterwards if it
    must."""
    server = Server()
    conn = connect("rel-lf-sigterm")
    lease = Lease((46, 1, 1), "c", "exclusive", "2 min", "fault (g) job")
    back = False
    try:
        lease.token = lease.take(conn)
        kpid = keeper_pid(conn)
        terminated = one(conn, "SELECT pg_terminate_backend(%s)", [kpid])
        # At once, while the keeper exits or is not back yet: waits for the restore, then refused.
        conn.execute("BEGIN")
        early, _ = error_of(conn, lease.conflicting_lock())
        conn.execute("ROLLBACK")
        exited = wait_until(lambda: keeper_pid(conn) != kpid, 10)
        back = wait_until(lambda: keeper_pid(conn) not in (None, kpid), 10)
        listed = len(lease_view(conn, [lease]))
        # The new keeper's pid shows before its restore has taken the lease's locks again.
        held = back and wait_until(lambda: set(rows(conn, lease.plan())) <= keeper_locks(conn, keeper_pid(conn)), 10)
        conn.execute("BEGIN")
        t0 = now()
        exc, _ = error_of(conn, lease.conflicting_lock())
        took = now() - t0
        conn.execute("ROLLBACK")
        res.check("lease fault (g): pg_terminate_backend on the lease keeper: a new keeper starts within "
                  "10 s and holds the lease again (its plan in pg_locks); a conflicting lock_* is never "
                  "granted meanwhile (refused naming the lease, or 55000 while not restored)",
                  terminated and exited and back and held and sqlstate(exc) in ("55P03", "55000")
                  and sqlstate(early) in ("55P03", "55000"),
                  f"keeper {kpid} exited {exited}, new keeper: {keeper_pid(conn)}; lease listed {listed}, "
                  f"conflicting lock_field at once: {describe_error(early) if early else 'GRANTED'}; "
                  f"its plan held by a keeper {held}; conflicting lock_field: "
                  f"{describe_error(exc) if exc else 'GRANTED'} after {took:.2f} s")
    finally:
        if not back:
            close_quietly(conn)
            server.restart_fast()
            wait_for_server(120)
            conn = connect("rel-lf-sigterm-after")
        release_all(conn, [lease])
        close_quietly(conn)
