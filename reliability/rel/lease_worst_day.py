"""A lease's worst day: the faults of issue 17 that 0.3.0's keeper answers (docs/leases.md, "Under
faults and under load: the keeper of 0.3.0"), each against the old behaviour it must not show.

(1) release_leases(owner) acts on the caller's own leases: another role using the same owner name
    is not in the way. [0.2.0: 42501, and the caller's lease stayed held]
(2) pg_cancel_backend on the keeper does nothing. [0.2.0: the keeper exited, letting a queued
    session in while a transaction that validated the lease was still open]
(3) A full lock table stops neither an expiry nor a release, and the keeper does not flood the
    log. [0.2.0: held past its expiry, release_lease failed with 53200, a WARNING 10 times a second]
(4) The keeper's memory stays flat over many refused requests. [0.2.0: 2.1 MB per 12,000]
(5) A call waiting for a stopped keeper (SIGSTOP) is cancelled at once, whether the keeper has
    taken its question or not. [0.2.0: deaf to the cancel once the keeper had taken the question]
    A lone asker, which polls for its answer before it sleeps, ends up asleep on its latch, and
    is cancelled at once too.
(6) lockhier.fence_timeout ends a transaction that validated a lease and hangs; a prepared one
    must not keep the lease either. [0.2.0: the lease was kept as long as the transaction was]
(7) A lease the restarted keeper cannot take again waits, and everything else proceeds.
    [0.2.0: every lockhier call failed with 55000 until that lease's ttl ran out]

Steps are ordered by what pg_locks, pg_stat_activity and lockhier.leases show, never by
sleeping; the only waits on the clock are for a ttl to run out, bounded, and each bound is
checked on the server's clock. The keeper is signalled (SIGSTOP, SIGCONT; pg_cancel_backend,
pg_terminate_backend) and its /proc files read, so the suite must run on the server's machine as
root or as the server's OS user. (5) and (6) change settings for a few seconds (fsync,
lockhier.fence_timeout: ALTER SYSTEM, reset afterwards).

    LOCKHIER_REL_REFUSALS=N   refused lease calls of (4) (default 100000, a few seconds; more for a soak)
"""

import os
import threading

import psycopg

from .harness import (Bg, advisory_count, backend_alive, close_quietly, connect, describe_error,
                      error_of, is_waiting, keeper_pid, now, one, rows, sqlstate, wait_for_server,
                      wait_until)
from .lease_faults import server_clock
from .nemeses import Filler, Stopped, proc_state, signal_process, table_full

SAFETY = "SET statement_timeout = '60s'"   # nothing here may hang the suite
ROLE_A, ROLE_B = "lockhier_rel_wd_a", "lockhier_rel_wd_b"
REFUSALS = int(os.environ.get("LOCKHIER_REL_REFUSALS", "100000"))
WARM_UP = 2000            # refused calls before the keeper's memory is first read
REFUSERS = 3              # connections making the refused calls at once
MEMORY_BOUND_KB = 1024    # 0.2.0 grew about 2.1 MB per 12,000 refused calls
CANCEL_BOUND = 5.0        # seconds for a cancelled call waiting for the keeper to end
MID_TURN_ROUNDS = 8       # at most this many stops of a busy keeper, in (5)


# --- small probes --------------------------------------------------------------------------------

def listed(conn, token):
    return one(conn, "SELECT count(*) FROM lockhier.leases WHERE token = %s", [token]) > 0


def expiry(conn, token):
    """The lease's expires_at as a Unix time (the server's clock), or None if it is not listed."""
    got = rows(conn, "SELECT extract(epoch FROM expires_at)::float8 FROM lockhier.leases WHERE token = %s",
               [token])
    return got[0][0] if got else None


def plan(conn, call):
    """The (classid, objid, mode) of each step of a plan_*() call, as pg_locks shows them."""
    return set(rows(conn, f"SELECT classid::bigint, objid::bigint, lock_mode FROM lockhier.{call}"))


# On a full lock table a query can take no lock on a shared catalog (pg_database, pg_authid:
# their locks never take a backend's fast path), so these probes take the database's oid and
# the keeper's pid from the caller; pg_stat_activity (which joins both) is read before.

def database_oid(conn):
    return one(conn, "SELECT oid FROM pg_database WHERE datname = current_database()")


def keys_held(conn, pid, db):
    """The lockhier keys (advisory, objsubid 1) a process holds in the database, as
    (classid, objid, mode), the columns of plan()."""
    return set(rows(conn, "SELECT classid::bigint, objid::bigint, mode FROM pg_locks WHERE pid = %s "
                          "AND locktype = 'advisory' AND objsubid = 1 AND granted AND database = %s", [pid, db]))


def fence_held(conn, token, db):
    """Whether anyone holds the lease's fence (objsubid 3, the token split as a lock tag's
    classid and objid): the keeper keeps it in AccessShareLock from the grant to the end."""
    return one(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 3 "
                     "AND classid::bigint = %s AND objid::bigint = %s AND database = %s",
               [token >> 32, token & 0xFFFFFFFF, db]) > 0


def gone(conn, token, own_keys, kpid, db):
    """The lease is unlisted, and the keeper holds neither its own keys nor its fence."""
    return not listed(conn, token) and not (own_keys & keys_held(conn, kpid, db)) and not fence_held(conn, token, db)


def waiting_for_keeper(conn, pid, call):
    """The backend is in `call` and waits on its latch for the keeper (wait event Extension)."""
    got = rows(conn, "SELECT state, wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [pid])
    return bool(got) and got[0][0] == "active" and got[0][1] == "Extension" and call in got[0][2]


# System call numbers, by machine: the keeper sleeps in epoll (WaitLatch) between turns, and
# flushes its journal (fsync, fdatasync) in a turn, after taking questions and before answering.
SYSCALLS = {"x86_64": {"232": "sleep", "281": "sleep", "74": "flush", "75": "flush"},
            "aarch64": {"22": "sleep", "82": "flush", "83": "flush"}}


def stopped_in(pid):
    """Where a stopped process stopped: 'sleep', 'flush', another system call's number, or
    'user' (outside any); None when /proc/<pid>/syscall cannot be read."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            number = f.read().split()[0]
    except (OSError, IndexError):
        return None
    if number == "-1":
        return "user"
    return SYSCALLS.get(os.uname().machine, {}).get(number, number)


def signal_in_flush(mon, pids, sig):
    """Stop the keeper; if it was caught in its journal flush, send it `sig`. Returns the
    keeper's pid and when the signal was sent; None for the time when the keeper was elsewhere,
    and then the busy callers `pids` are cancelled, for the caller to try another round."""
    kpid = keeper_pid(mon)
    with Stopped(kpid):
        if stopped_in(kpid) == "flush":
            signal_process(kpid, sig)
            return kpid, now()
    for p in pids:
        one(mon, "SELECT pg_cancel_backend(%s)", [p])
    return kpid, None


def rss_anon_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError(f"no RssAnon in /proc/{pid}/status")


def keeper_round_trip(conn, owner):
    """A lease taken and released: two questions the keeper answers in turns after every
    question asked before them. True if both went through."""
    token = one(conn, "SELECT lockhier.lease_application(93, %s, 'snapshot', 'exclusive', '1 min')", [owner])
    return one(conn, "SELECT lockhier.release_lease(%s)", [token]) is True


def seen_by_a_new_backend(setting):
    """The setting as a backend started now sees it (None if there is no such setting): once it
    shows a reloaded value, the postmaster has reloaded and signalled every process, the keeper
    included."""
    with connect("rel-wd-setting") as conn:
        return one(conn, "SELECT current_setting(%s, true)", [setting])


class ServerLog:
    """The server's log file (where its postmaster's stderr goes), read from where a check
    began. `lines()` is None when it cannot be read (run as root or the server's OS user)."""

    def __init__(self, conn):
        self.path, self.start = None, 0
        try:
            data = one(conn, "SHOW data_directory")
            with open(os.path.join(data, "postmaster.pid")) as f:
                postmaster = int(f.readline())
            path = os.readlink(f"/proc/{postmaster}/fd/2")
            self.start, self.path = os.path.getsize(path), path
        except (OSError, ValueError):
            pass

    def lines(self):
        if self.path is None:
            return None
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.start)
                return f.read().splitlines()
        except OSError:
            return None

    def of_process(self, pid, severity="WARNING"):
        """The lines a process logged at a severity since the check began (log_line_prefix
        '%m [%p] ...', as scripts/cluster.sh sets it), or None."""
        lines = self.lines()
        return None if lines is None else [line for line in lines if f"[{pid}]" in line and f"{severity}:" in line]


# --- a full lock table ----------------------------------------------------------------------------

def warm_up(conn, *sqls):
    """Run each statement once before the table is filled: the first run of a statement loads
    catalog entries, locking catalogs (shared ones never on the fast path)."""
    for sql in sqls:
        error_of(conn, sql)


# --- (1) release_leases by owner, with another role using the name -------------------------------

def release_by_owner(res):
    su = connect("rel-wd-superuser")
    a = connect("rel-wd-role-a", user=ROLE_A)
    b = connect("rel-wd-role-b", user=ROLE_B)
    try:
        take = "SELECT lockhier.lease_application(%s, 'job-1', 'import', 'exclusive', '2 min')"
        ta, tb = one(a, take, [80]), one(b, take, [81])
        exc, got = error_of(a, "SELECT lockhier.release_leases('job-1')")
        a_gone = not listed(su, ta) and one(su, "SELECT lockhier.try_lock_application(80, 'import')") is True
        b_held = listed(su, tb) and one(su, "SELECT lockhier.try_lock_application(81, 'import')") is False
        # A superuser's call, as before: every role's leases of that name.
        ta2 = one(a, take, [80]) if a_gone else ta
        by_su = one(su, "SELECT lockhier.release_leases('job-1')")
        left = [t for t in (ta2, tb) if listed(su, t)]
        res.check("lease worst day (1): role A's release_leases('job-1') returns 1 and releases A's "
                  "lease only, though role B took one under the same name (another owner): B's is still "
                  "listed and in the way; a superuser's call then releases both roles' leases of that "
                  "name [0.2.0: A's call failed with 42501 and A's lease stayed held]",
                  exc is None and got == [(1,)] and a_gone and b_held and by_su == 2 and not left,
                  f"A's call: {describe_error(exc) if exc else got}; A's lease gone {a_gone}; B's lease "
                  f"held {b_held}; the superuser's call released {by_su}, left {left}")
    finally:
        close_quietly(su, a, b)


# --- (2) pg_cancel_backend on the keeper ---------------------------------------------------------

def cancel_keeper(res):
    mon = connect("rel-wd-monitor")
    taker = connect("rel-wd-taker")
    validator = connect("rel-wd-validator")
    waiter = connect("rel-wd-waiter")
    token = None
    try:
        waiter.execute(SAFETY)
        token = one(taker, "SELECT lockhier.lease_table(82, 1, 'wd cancelled keeper', 'import', 'exclusive', '2 min')")
        kpid = keeper_pid(mon)
        validator.execute("BEGIN")
        valid = one(validator, "SELECT lockhier.lease_valid(%s)", [token])
        wpid = one(waiter, "SELECT pg_backend_pid()")
        waiter.execute("BEGIN")
        bg = Bg(waiter, "SELECT lockhier.lock_table(82, 1, 'import', 'exclusive', wait => '50 s')")
        queued = wait_until(lambda: is_waiting(mon, wpid), 10)
        cancelled = one(mon, "SELECT pg_cancel_backend(%s)", [kpid])
        # The keeper is signalled before this question is asked, so it takes the signal no later
        # than the question: a keeper that a cancel ends never answers it.
        exc, renewed = error_of(taker, "SELECT lockhier.renew_lease(%s)", [token])
        after = keeper_pid(mon)
        still = is_waiting(mon, wpid) and not bg.done
        exc_valid, valid_again = error_of(validator, "SELECT lockhier.lease_valid(%s)", [token])
        res.check("lease worst day (2): pg_cancel_backend on the keeper does nothing: with a lease "
                  "validated by an open transaction and a conflicting lock_table queued behind it, a "
                  "renewal then answers true, the keeper's pid is unchanged and the queued session "
                  "still waits [0.2.0: the keeper exited and the queued session was granted]",
                  valid is True and queued and cancelled is True and exc is None and renewed == [(True,)]
                  and after == kpid and still and valid_again == [(True,)],
                  f"validated {valid}, queued {queued}, signal sent {cancelled}; renewal "
                  f"{describe_error(exc) if exc else renewed}; keeper {kpid} -> {after}; queued session "
                  f"still waiting {still} ({describe_error(bg.error) if bg.error else bg.result}); "
                  f"lease_valid again {describe_error(exc_valid) if exc_valid else valid_again}")
        validator.execute("ROLLBACK" if exc_valid else "COMMIT")
        waits_for_lease = is_waiting(mon, wpid) and not bg.done
        exc, released = error_of(taker, "SELECT lockhier.release_lease(%s)", [token])
        released = released == [(True,)]
        granted = bg.join(15) and bg.error is None
        waiter.execute("ROLLBACK")
        token = None if released else token
        res.check("lease worst day (2): the queued session waits until the validating transaction "
                  "and the lease have ended, and is granted then [0.2.0: granted as the keeper exited]",
                  waits_for_lease and released and granted,
                  f"waits once the validator committed {waits_for_lease}, release "
                  f"{describe_error(exc) if exc else released}, then "
                  f"{describe_error(bg.error) if bg.error else ('granted' if granted else 'still waiting')}")
    finally:
        if token is not None:
            error_of(mon, "SELECT lockhier.release_lease(%s)", [token])
        close_quietly(mon, taker, validator, waiter)


# --- (3) a full lock table: expiry, release, the log ---------------------------------------------

def full_lock_table(res):
    mon = connect("rel-wd-monitor")
    taker = connect("rel-wd-taker")
    releaser = connect("rel-wd-releaser")
    probe = connect("rel-wd-probe")
    filler = Filler()
    short = long = None
    try:
        short = one(taker, "SELECT lockhier.lease_application(83, 'wd full short', 'snapshot', 'exclusive', '3 s')")
        long = one(taker, "SELECT lockhier.lease_application(84, 'wd full long', 'snapshot', 'exclusive', '2 min')")
        plan_short = plan(mon, "plan_application(83, 'snapshot', 'exclusive')")
        plan_long = plan(mon, "plan_application(84, 'snapshot', 'exclusive')")
        # Their keys of their own: the global scope's keys are shared by both.
        own_short, own_long = plan_short - plan_long, plan_long - plan_short
        kpid, db = keeper_pid(mon), database_oid(mon)
        held_before = own_short | own_long <= keys_held(mon, kpid, db)
        gone(mon, short, own_short, kpid, db)   # the monitor's queries, once while there is room
        warm_up(releaser, "SELECT lockhier.release_lease(-1)")
        warm_up(probe, "SELECT pg_try_advisory_xact_lock(-4242424242)")
        log = ServerLog(mon)
        ended = filler.fill()
        full = table_full(probe)
        expires = expiry(mon, short)
        # Bounded by the ttl: until 3 s past the lease's expires_at on the server's clock.
        bound = 3.0
        out = wait_until(lambda: gone(mon, short, own_short, kpid, db),
                         max(0.0, expires + bound + 1.0 - server_clock(mon)))
        seen_at = server_clock(mon)
        res.check("lease worst day (3): with the lock table full (pg_advisory_lock in a loop until "
                  "53200), a 3 s lease expires on time: unlisted, its locks and fence gone from "
                  f"pg_locks within {bound:.0f} s of its expires_at [0.2.0: held past its expiry]",
                  held_before and ended == "53200" and full and out and seen_at <= expires + bound,
                  f"filled: {ended}, a new entry refused {full}; "
                  + (f"seen gone {seen_at - expires:+.2f} s from its expires_at" if out
                     else f"still there {seen_at - expires:+.2f} s past its expires_at: listed "
                          f"{listed(mon, short)}, fence {fence_held(mon, short, db)}"))
        # The expiry gave entries back: fill the table again before the release.
        ended = filler.fill()
        full = table_full(probe)
        exc, got = error_of(releaser, "SELECT lockhier.release_lease(%s)", [long])
        out = gone(mon, long, own_long, kpid, db)
        long = None if got == [(True,)] else long
        res.check("lease worst day (3): release_lease returns true while the lock table is full, and "
                  "the lease is then gone (unlisted, no lock or fence left) [0.2.0: 53200]",
                  ended == "53200" and full and exc is None and got == [(True,)] and out,
                  f"filled again: {ended}, a new entry refused {full}; release: "
                  f"{describe_error(exc) if exc else got}; gone {out}")
        filler.free()
        warnings = log.of_process(kpid)
        if warnings is None:
            res.note("lease worst day (3): the server log cannot be read here: its check is skipped")
        else:
            res.check("lease worst day (3): the keeper does not flood the log while the table is full "
                      "(at most 2 WARNINGs) [0.2.0: a WARNING 10 times a second]", len(warnings) <= 2,
                      f"{len(warnings)} WARNINGs of the keeper"
                      + (f", the first: {warnings[0][-160:]}" if warnings else ""))
    finally:
        filler.close()
        for token in (short, long):
            if token is not None:
                error_of(mon, "SELECT lockhier.release_lease(%s)", [token])
        close_quietly(mon, taker, releaser, probe)


# --- (4) the keeper's memory over many refused requests ------------------------------------------

# Lease calls the keeper refuses with 53200 (no room for the lease's locks), half through
# lease_table, half through try_lease_table. Each call's scope is a table of its own, so that a
# call granted in a moment of room would conflict with no later one: every call reaches the
# keeper's lock taking, the path whose caught error 0.2.0 leaked.
REFUSE = """
DO $$
DECLARE refused int := 0; other int := 0;
BEGIN
  FOR i IN {first}..{last} LOOP
    BEGIN
      IF i % 2 = 0 THEN
        PERFORM lockhier.lease_table({app}, i, 'wd refused', 'snapshot', 'exclusive', '1 min');
      ELSE
        PERFORM lockhier.try_lease_table({app}, i, 'wd refused', 'snapshot', 'exclusive', '1 min');
      END IF;
      other := other + 1;
    EXCEPTION WHEN out_of_memory THEN
      refused := refused + 1;
    END;
  END LOOP;
  RAISE NOTICE 'rel-refused % %', refused, other;
END $$"""
BATCH = 1000


class Refusers:
    """REFUSERS connections making refused lease calls at once, in batches."""

    def __init__(self):
        self.conns = [connect(f"rel-wd-refused-{w}") for w in range(REFUSERS)]
        self.next = [0] * REFUSERS   # each connection's last table id: every call a scope of its own
        self.refused = self.other = 0
        self.errors = []
        self.lock = threading.Lock()

    def _run(self, w, n):
        conn = self.conns[w]
        done = 0
        while done < n:
            size = min(BATCH, n - done)
            first = self.next[w] + 1
            self.next[w] += size
            conn.notices.clear()
            exc, _ = error_of(conn, REFUSE.format(first=first, last=first + size - 1, app=100 + w))
            if exc is not None:
                self.errors.append(describe_error(exc))
                return
            refused, other = map(int, conn.notices[-1].message_primary.split()[1:3])
            with self.lock:
                self.refused += refused
                self.other += other
            done += size

    def make(self, n):
        """n calls spread over the connections; returns (refused with 53200, other outcomes)."""
        self.refused = self.other = 0
        shares = [n // REFUSERS + (1 if w < n % REFUSERS else 0) for w in range(REFUSERS)]
        threads = [threading.Thread(target=self._run, args=(w, shares[w]), daemon=True) for w in range(REFUSERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        return self.refused, self.other

    def close(self):
        close_quietly(*self.conns)


def memory_flat(res):
    mon = connect("rel-wd-monitor")
    probe = connect("rel-wd-probe")
    refusers = Refusers()
    filler = Filler()
    try:
        for w in range(REFUSERS):   # the calls' catalog entries, loaded while there is room
            warm_up(refusers.conns[w], f"SELECT lockhier.try_lease_table({100 + w}, 0, 'wd refused warm-up', "
                                       "'snapshot', 'exclusive', '1 min')")
        one(mon, "SELECT count(lockhier.release_lease(token)) FROM lockhier.leases WHERE owner = 'wd refused warm-up'")
        warm_up(probe, "SELECT pg_try_advisory_xact_lock(-4242424242)")
        kpid = keeper_pid(mon)
        ended = filler.fill()
        full = table_full(probe)
        warm = refusers.make(WARM_UP)
        before = rss_anon_kb(kpid)
        t0 = now()
        refused, other = refusers.make(REFUSALS)
        took = now() - t0
        after = rss_anon_kb(kpid)
        filler.free()
        same = keeper_pid(mon) == kpid
        res.note(f"{refused} refused lease calls in {took:.1f} s ({refused / max(took, 1e-9):.0f}/s) "
                 f"on {REFUSERS} connections; the keeper's RssAnon {before} kB -> {after} kB")
        res.check(f"lease worst day (4): the keeper's memory stays flat over {REFUSALS} lease calls it "
                  f"refuses with 53200 on a full lock table: RssAnon grows less than {MEMORY_BOUND_KB} kB "
                  "(after a warm-up of 2,000) [0.2.0: 2.1 MB per 12,000]",
                  ended == "53200" and full and warm[0] == WARM_UP and refused == REFUSALS and other == 0
                  and not refusers.errors and same and after - before < MEMORY_BOUND_KB,
                  f"filled: {ended}, a new entry refused {full}; warm-up {warm}; refused {refused}, "
                  f"other outcomes {other}, errors {refusers.errors[:2]}; keeper pid unchanged {same}; "
                  f"RssAnon {before} -> {after} kB ({after - before:+d} kB)")
    finally:
        filler.close()
        refusers.close()
        error_of(mon, "SELECT count(lockhier.release_lease(token)) FROM lockhier.leases WHERE owner = 'wd refused'")
        close_quietly(mon, probe)


# --- (5) a backend waiting for a stopped keeper, cancelled -----------------------------------------

def same_token_again(conn, owner, token, take):
    """A lease the keeper granted to a call that was cancelled: the same owner's identical request
    finds it again (same token); then it is released."""
    again = one(conn, take, [owner])
    one(conn, "SELECT lockhier.release_lease(%s)", [token])
    return again == token


def cancelled_waiting_for_keeper(res):
    """A cancel ends a call waiting for a stopped keeper, whether the keeper took its question
    (stopped in a turn) or not (stopped asleep). 0.2.0 withdrew a question not taken yet, but
    waited, deaf to the cancel, for the answer to one taken."""
    mon = connect("rel-wd-monitor")
    try:
        not_taken_ok, not_taken = question_not_taken(mon)
        taken_ok, taken = questions_taken(mon)
        lone_ok, lone = questions_taken(mon, apps=BUSY_APPS[:1], rounds=LONE_ROUNDS, need_flush=False)
        res.check("lease worst day (5): a lease call waiting for a stopped keeper (SIGSTOP) ends with "
                  f"57014 within {CANCEL_BOUND:.0f} s of pg_cancel_backend, the keeper still stopped: a "
                  "question not taken yet (the keeper stopped asleep), and questions taken and not "
                  "answered (three backends looping lease calls, the keeper stopped in its journal flush); "
                  "a lease granted to a cancelled call is found again by its owner's identical request "
                  "[0.2.0: deaf to the cancel once the keeper had taken the question]",
                  not_taken_ok and taken_ok, f"not taken: {not_taken}; taken: {taken}")
        res.check("lease worst day (5): a lone asker looping lease calls (it polls for its answer before "
                  "sleeping) against a keeper stopped at a random point of its loop settles asleep on its "
                  f"latch (wait event Extension) and ends with 57014 within {CANCEL_BOUND:.0f} s of "
                  "pg_cancel_backend; a lease granted to it is found again by its owner's identical request",
                  lone_ok, lone)
    finally:
        close_quietly(mon)


def question_not_taken(mon):
    """The keeper stopped before the call asks: its question waits to be taken, and the cancel
    withdraws it. Returns (ok, what was seen)."""
    asker = connect("rel-wd-asker")
    owner = "wd stopped keeper"
    take = "SELECT lockhier.lease_application(86, %s, 'snapshot', 'exclusive', '2 min')"
    try:
        asker.execute(SAFETY)
        kpid, apid = keeper_pid(mon), one(asker, "SELECT pg_backend_pid()")
        with Stopped(kpid):
            stopped = proc_state(kpid) == "T"
            bg = Bg(asker, take, [owner])
            asking = wait_until(lambda: waiting_for_keeper(mon, apid, "lease_application"), 10)
            t0 = now()
            one(mon, "SELECT pg_cancel_backend(%s)", [apid])
            ended = bg.join(CANCEL_BOUND)
            took = now() - t0
            still_stopped = proc_state(kpid) == "T"
        through = keeper_round_trip(mon, "wd barrier")
        got = rows(mon, "SELECT token FROM lockhier.leases WHERE owner = %s", [owner])
        found = not got or same_token_again(mon, owner, got[0][0], take)
        ok = (stopped and asking and ended and sqlstate(bg.error) == "57014" and still_stopped
              and through and found)
        return ok, (f"the call waited for the stopped keeper {asking}, "
                    f"{describe_error(bg.error) if ended else 'still waiting'} after {took:.2f} s, "
                    f"keeper still stopped {still_stopped}; it answers after SIGCONT {through}; lease "
                    f"listed afterwards {got}, found again {found}")
    finally:
        close_quietly(asker)


# Three backends make the keeper work without pause: each takes a lease for an owner of its own
# and releases it, in a loop, until it is cancelled; `{each}` is a statement run every turn
# (keeper_asks counts turns with it).
BUSY = """
DO $$
BEGIN
  FOR i IN 1..1000000000 LOOP
    PERFORM lockhier.release_lease(
      lockhier.lease_application({app}, '{prefix} ' || i, 'snapshot', 'exclusive', '1 min'));
    {each}
  END LOOP;
END $$"""
BUSY_APPS = (87, 88, 89)
LONE_ROUNDS = 3           # stops of a keeper busy with one asker, in (5)


def restart_keeper(conn):
    """pg_terminate_backend on the keeper (no lease held): true once a new one answers."""
    kpid = keeper_pid(conn)
    one(conn, "SELECT pg_terminate_backend(%s)", [kpid])
    return (wait_until(lambda: keeper_pid(conn) not in (None, kpid), 10)
            and keeper_round_trip(conn, "wd barrier"))


class DurableKeeper:
    """A keeper that flushes its journal (fsync on), for the length of a `with`. It flushes in
    every turn between taking its questions and answering them: milliseconds on a disk, against
    microseconds for the rest of a turn, so that a busy keeper stopped at a random instant is
    almost always holding questions it took and has not answered. The keeper reads fsync when it
    starts, so it is restarted on the way in and out (the suite's clusters run with fsync off)."""

    def __init__(self, conn):
        self.conn, self.was, self.ready = conn, None, True

    def __enter__(self):
        self.was = one(self.conn, "SHOW fsync")
        if self.was == "off":
            self.ready = self.set("ALTER SYSTEM SET fsync = on", "on")
        return self

    def __exit__(self, *exc):
        if self.was == "off":
            self.set("ALTER SYSTEM RESET fsync", self.was)
        return False

    def set(self, sql, value):
        try:
            self.conn.execute(sql)
        except psycopg.OperationalError:
            # The connection was ended by a fault of the test (a crash restart): set it back on
            # a new one, or fsync stays as the test left it for the groups after it.
            wait_for_server(120)
            self.conn = connect("rel-durable-again")
            self.conn.execute(sql)
        self.conn.execute("SELECT pg_reload_conf()")
        return wait_until(lambda: seen_by_a_new_backend("fsync") == value, 10) and restart_keeper(self.conn)


def questions_taken(mon, apps=BUSY_APPS, rounds=MID_TURN_ROUNDS, need_flush=True):
    """A keeper kept busy by looping backends (one per app of `apps`, three by default) and
    flushing its journal is stopped, in rounds, until it was stopped in its flush (questions
    taken, not answered) 3 times. Returns (ok, what was seen). With `need_flush` false, the
    rounds count wherever the keeper stopped (with a lone asker, it spends much of its time out
    of its flush, polling for the next question).

    A round in which the keeper was stopped holding an LWLock that a backend waits for is void:
    PostgreSQL's LWLock waits do not take interrupts, whoever holds them."""
    outcomes, caught, void, leftovers = [], 0, 0, []
    with DurableKeeper(mon) as durable:
        kpid = keeper_pid(mon)
        for r in range(rounds if durable.ready else 0):
            outcome = one_busy_round(mon, kpid, r, apps)
            leftovers += found_again(mon, r)
            if outcome is None:
                void += 1
                continue
            outcomes.append(outcome)
            caught += outcome[-1] == "flush"
            if caught >= 3:
                break
    slow = [o for o in outcomes if not o[0]]
    lost = [f"{owner}: {token} -> {again}" for owner, token, again in leftovers if again != token]
    ok = durable.ready and (caught > 0 or not need_flush) and bool(outcomes) and not slow and not lost
    return ok, (f"keeper flushing its journal {durable.ready}; {len(outcomes)} rounds (and {void} "
                f"void), stopped in its flush in {caught}; (every call ended in time with 57014, "
                f"outcomes, slowest s, where the keeper stopped): {outcomes}; {len(leftovers)} leases "
                f"of cancelled calls listed, not found again: {lost}")


def wait_kind(conn, pid):
    """What an active backend waits for: 'keeper' (its latch, in a lease call), 'lwlock', or
    something else."""
    got = rows(conn, "SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
    if not got or got[0][0] != "active":
        return None
    return {"Extension": "keeper", "LWLock": "lwlock"}.get(got[0][1], got[0][1])


def one_busy_round(mon, kpid, r, apps=BUSY_APPS):
    """One stop of the busy keeper: (every call ended in time with 57014, the outcomes, the
    slowest end in seconds, where the keeper stopped); None for a void round."""
    conns = [connect(f"rel-wd-busy-{w}") for w in range(len(apps))]
    try:
        for c in conns:
            c.execute(SAFETY)
        pids = [one(c, "SELECT pg_backend_pid()") for c in conns]
        bgs = [Bg(c, BUSY.format(app=app, prefix=f"wd busy {app} r{r}", each="")) for c, app in zip(conns, apps)]
        looping = wait_until(lambda: all(wait_kind(mon, p) is not None for p in pids), 10)
        with Stopped(kpid):
            where = stopped_in(kpid)
            # Stopped, the keeper answers nothing: every loop ends up waiting for it.
            settled = wait_until(lambda: all(wait_kind(mon, p) in ("keeper", "lwlock") for p in pids), 10)
            void = "lwlock" in [wait_kind(mon, p) for p in pids]
            if not void:
                t0 = now()
                for p in pids:
                    one(mon, "SELECT pg_cancel_backend(%s)", [p])
                ended = all(b.join(max(0.0, CANCEL_BOUND - (now() - t0))) for b in bgs)
                slowest = max((b.t1 or now()) - t0 for b in bgs)
                still_stopped = proc_state(kpid) == "T"
        if void:   # continued now: end the loops
            for p in pids:
                one(mon, "SELECT pg_cancel_backend(%s)", [p])
        for b in bgs:
            b.join(30)
        if void:
            return None
        states = [sqlstate(b.error) if b.error else "no error" for b in bgs]
        ok = looping and settled and ended and still_stopped and all(s == "57014" for s in states)
        return ok, states, round(slowest, 2), where
    finally:
        close_quietly(*conns)


def found_again(mon, r):
    """The leases of round r's cancelled calls still listed (a grant the keeper made, or a
    release it never got, for a call that was cancelled): (owner, token, the token the owner's
    identical request gets). Each is then released."""
    keeper_round_trip(mon, "wd barrier")
    found = []
    listed_now = rows(mon, "SELECT token, owner FROM lockhier.leases WHERE owner LIKE %s", [f"wd busy % r{r} %"])
    for token, owner in listed_now:
        app = int(owner.split()[2])
        again = one(mon, "SELECT lockhier.lease_application(%s, %s, 'snapshot', 'exclusive', '1 min')", [app, owner])
        one(mon, "SELECT lockhier.release_lease(%s)", [token])
        found.append((owner, token, again))
    return found


# --- (6) lockhier.fence_timeout --------------------------------------------------------------------

class FenceTimeout:
    """lockhier.fence_timeout set for the length of a `with` (ALTER SYSTEM and a reload), reset
    after. `applied`: a backend started after the reload sees it; None when the setting does not
    exist (`error` says why)."""

    def __init__(self, conn, value):
        self.conn, self.value = conn, value
        self.default = self.applied = self.error = None

    def __enter__(self):
        self.default = seen_by_a_new_backend("lockhier.fence_timeout")
        exc, _ = error_of(self.conn, f"ALTER SYSTEM SET lockhier.fence_timeout = '{self.value}'")
        if exc is not None:
            self.error = describe_error(exc)
            return self
        self.conn.execute("SELECT pg_reload_conf()")
        self.applied = wait_until(lambda: seen_by_a_new_backend("lockhier.fence_timeout") == self.value, 10)
        return self

    def __exit__(self, *exc):
        if self.error is None:
            self.conn.execute("ALTER SYSTEM RESET lockhier.fence_timeout")
            self.conn.execute("SELECT pg_reload_conf()")
            wait_until(lambda: seen_by_a_new_backend("lockhier.fence_timeout") == self.default, 10)
        return False


def fence_timeout(res):
    su = connect("rel-wd-superuser")
    taker = connect("rel-wd-taker")
    validator = connect("rel-wd-validator")
    token = None
    try:
        log = ServerLog(su)
        with FenceTimeout(su, "1s") as setting:
            if setting.error:
                res.check("lease worst day (6): lockhier.fence_timeout can be set (ALTER SYSTEM)", False,
                          setting.error)
                return
            token = one(taker, "SELECT lockhier.lease_table(90, 1, 'wd hung validator', 'import', 'exclusive', '2 s')")
            expires = expiry(su, token)
            vpid = one(validator, "SELECT pg_backend_pid()")
            validator.execute("BEGIN")
            valid = one(validator, "SELECT lockhier.lease_valid(%s)", [token])
            # Bounded by the ttl: until 4 s past expires_at + fence_timeout on the server's clock.
            bound = 4.0
            seen = {"listed past expiry": False}

            def ended():
                alive = backend_alive(su, vpid)
                if alive and listed(su, token) and server_clock(su) > expires:
                    seen["listed past expiry"] = True
                return not alive

            out = wait_until(ended, max(0.0, expires + 1.0 + bound + 1.0 - server_clock(su)), interval=0.05)
            seen_at = server_clock(su)
            unlisted = wait_until(lambda: not listed(su, token), 5)
        exc, _ = error_of(validator, "SELECT 1")
        token = None if unlisted else token
        warnings = log.of_process(keeper_pid(su))
        logged = None if warnings is None else any(f"terminating process {vpid}" in w for w in warnings)
        res.check("lease worst day (6): lockhier.fence_timeout = 1s (ALTER SYSTEM, reload): a "
                  "transaction that validated a 2 s lease and stays idle keeps it past its expiry, and is "
                  f"terminated at its expires_at + 1 s (within {bound:.0f} s of it, not before): its "
                  "client gets an error, the keeper logs a WARNING naming it, the lease is gone "
                  "[0.2.0: kept as long as the transaction stayed open]",
                  setting.applied and valid is True and out and expires + 1.0 <= seen_at <= expires + 1.0 + bound
                  and seen["listed past expiry"] and unlisted and exc is not None and logged is not False,
                  f"setting applied {setting.applied} (was {setting.default}), validated {valid}; kept past "
                  f"its expiry {seen['listed past expiry']}; validator "
                  + (f"seen gone {seen_at - expires:+.2f} s from expires_at" if out
                     else f"still there {seen_at - expires:+.2f} s from expires_at")
                  + f"; lease unlisted {unlisted}; its client: {describe_error(exc)}; WARNING logged "
                  + ("(log not readable)" if logged is None else str(logged)))
    finally:
        if token is not None:
            error_of(su, "SELECT lockhier.release_lease(%s)", [token])
        close_quietly(su, taker, validator)


def fence_prepared(res):
    """A prepared transaction that validated a lease: no backend is behind it to terminate
    (pg_locks shows its locks with no pid), so either PREPARE TRANSACTION is refused while the
    transaction holds a fence, or the lease must still expire by expires_at + fence_timeout."""
    su = connect("rel-wd-superuser")
    taker = connect("rel-wd-taker")
    validator = connect("rel-wd-validator")
    gid, token, prepared = "lockhier_rel_wd_fence", None, None
    try:
        with FenceTimeout(su, "1s") as setting:
            if setting.error:
                res.check("lease worst day (6): lockhier.fence_timeout can be set (ALTER SYSTEM)", False,
                          setting.error)
                return
            token = one(taker, "SELECT lockhier.lease_table(90, 2, 'wd prepared validator', 'import', "
                               "'exclusive', '2 s')")
            expires = expiry(su, token)
            validator.execute("BEGIN")
            valid = one(validator, "SELECT lockhier.lease_valid(%s)", [token])
            exc, _ = error_of(validator, f"PREPARE TRANSACTION '{gid}'")
            prepared = exc is None and one(su, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = %s", [gid]) == 1
            if not prepared:
                error_of(validator, "ROLLBACK")
            bound = 4.0
            # Bounded by the ttl: until 4 s past expires_at + fence_timeout on the server's clock.
            unlisted = wait_until(lambda: not listed(su, token),
                                  max(0.0, expires + 1.0 + bound - server_clock(su)), interval=0.05)
            seen_at = server_clock(su)
        res.check("lease worst day (6): a transaction that validated a lease and was then prepared "
                  "(PREPARE TRANSACTION) cannot keep the lease past its expires_at + fence_timeout: "
                  "either the PREPARE is refused, or the lease expires by then",
                  valid is True and (not prepared or unlisted),
                  f"validated {valid}; PREPARE TRANSACTION: "
                  + (describe_error(exc) if exc else "prepared") + "; lease "
                  + (f"gone, seen {seen_at - expires:+.2f} s from its expires_at" if unlisted
                     else f"still listed {seen_at - expires:+.2f} s past its expires_at, its fence held by "
                          "the prepared transaction (pid NULL in pg_locks)"))
    finally:
        if prepared:
            error_of(su, f"ROLLBACK PREPARED '{gid}'")
        if token is not None:
            error_of(su, "SELECT lockhier.release_lease(%s)", [token])
        close_quietly(su, taker, validator)


# --- (7) a lease the restarted keeper cannot take again ---------------------------------------------

def restore_cannot_take(res):
    """The keeper restarted while a plain role queued for a key of a lease: the role is granted
    as the keeper exits (unavoidable, documented), so the new keeper cannot take the lease again.
    Its restore must end all the same, the lease stay a promise (listed, refusing conflicting
    leases, not valid), and be held again once the key is free."""
    mon = connect("rel-wd-monitor")
    taker = connect("rel-wd-taker")
    probe = connect("rel-wd-probe")
    other = connect("rel-wd-plain-role", user=ROLE_B)
    token = None
    try:
        other.execute(SAFETY)
        token = one(taker, "SELECT lockhier.lease_application(91, 'wd restore', 'migration', 'exclusive', '60 s')")
        lease_plan = plan(mon, "plan_application(91, 'migration', 'exclusive')")
        # The key the lease holds in exclusive mode: pg_advisory_lock conflicts with it.
        key = one(mon, "SELECT key FROM lockhier.plan_application(91, 'migration', 'exclusive') "
                       "WHERE lock_mode = 'ExclusiveLock'")
        db = database_oid(mon)
        log = ServerLog(mon)
        restart = keeper_restarted_under(mon, other, key)
        new = restart["new keeper"]
        # While the lease cannot be held again.
        probe.execute("BEGIN")
        t0 = now()
        exc, _ = error_of(probe, "SELECT lockhier.lock_table(92, 1, 'x')")
        took = now() - t0
        probe.execute("ROLLBACK")
        intruder = ("SELECT lockhier.try_lease_application(91, 'wd restore intruder', 'migration', "
                    "'exclusive', '1 min')")
        promise = {"lock_table": describe_error(exc) if exc else f"granted after {took:.2f} s",
                   "another owner's conflicting lease": answer(probe, intruder),
                   "lease_valid": validity(probe, token), "listed": listed(mon, token)}
        # Once the other session lets go.
        unlocked = one(other, "SELECT pg_advisory_unlock(%s)", [key])
        held = wait_until(lambda: lease_plan <= keys_held(mon, new, db), 5)
        again = {"plan held by the keeper within 5 s": held, "lease_valid": validity(probe, token),
                 "conflicting try_lock": answer(probe, "SELECT lockhier.try_lock_application(91, 'migration')")}
        warnings = log.of_process(new)
        told = None if warnings is None else sum(f"lease {token} " in w for w in warnings)
        res.check("lease worst day (7): a plain role queued pg_advisory_lock on a key of a 60 s lease; "
                  "pg_terminate_backend on the keeper lets it in (unavoidable, documented); the new "
                  "keeper cannot take the lease, and yet its restore ends: an unrelated lock_table "
                  "succeeds within 10 s, while the lease stays a promise (listed, a conflicting lease of "
                  "another owner refused, lease_valid false); once the role unlocks, the keeper holds "
                  "the lease again within 5 s (its plan in pg_locks, lease_valid true, a conflicting "
                  "try_lock refused) and logged the wait once "
                  "[0.2.0: every lockhier call failed with 55000 until the lease's ttl ran out]",
                  all(restart[k] for k in ("queued", "terminated", "let in")) and new is not None
                  and exc is None and took < 10
                  and promise["another owner's conflicting lease"] == "NULL" and promise["lease_valid"] == "false"
                  and promise["listed"] and unlocked is True and held and again["lease_valid"] == "true"
                  and again["conflicting try_lock"] == "false" and told in (None, 1),
                  f"{restart}; meanwhile {promise}; unlocked {unlocked}, then {again}; the keeper's "
                  "WARNINGs about the lease: " + ("(log not readable)" if told is None else str(told)))
    finally:
        if token is not None:
            error_of(mon, "SELECT lockhier.release_lease(%s)", [token])
        close_quietly(mon, taker, probe, other)


def keeper_restarted_under(mon, other, key):
    """`other` queues pg_advisory_lock(key) behind the keeper, then the keeper is terminated;
    what was seen, with the new keeper's pid."""
    opid = one(other, "SELECT pg_backend_pid()")
    bg = Bg(other, "SELECT pg_advisory_lock(%s)", [key])
    queued = wait_until(lambda: is_waiting(mon, opid), 10)
    kpid = keeper_pid(mon)
    terminated = one(mon, "SELECT pg_terminate_backend(%s)", [kpid])
    # The keeper's exit gives its locks back: the queued session is granted.
    let_in = bg.join(10) and bg.error is None
    back = wait_until(lambda: keeper_pid(mon) not in (None, kpid), 10)
    return {"queued": queued, "terminated": terminated, "let in": let_in,
            "new keeper": keeper_pid(mon) if back else None}


def answer(conn, sql):
    """A one-value call's answer as text ('NULL', 'true', ...), or its error."""
    exc, got = error_of(conn, sql)
    if exc is not None:
        return describe_error(exc)
    value = got[0][0]
    return "NULL" if value is None else str(value).lower()


def validity(conn, token):
    """lease_valid(token) in a transaction of its own, as answer() gives it."""
    conn.execute("BEGIN")
    try:
        return answer(conn, f"SELECT lockhier.lease_valid({int(token)})")
    finally:
        conn.execute("ROLLBACK")


# --- the group ----------------------------------------------------------------------------------------

def make_roles():
    with connect("rel-wd-roles") as su:
        for role in (ROLE_A, ROLE_B):
            su.execute(f'DROP ROLE IF EXISTS "{role}"')
            su.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')


def drop_roles():
    with connect("rel-wd-roles") as su:
        su.execute("SELECT count(lockhier.release_lease(token)) FROM lockhier.leases WHERE taken_by = ANY(%s)",
                   [[ROLE_A, ROLE_B]])
        for role in (ROLE_A, ROLE_B):
            su.execute(f'DROP ROLE IF EXISTS "{role}"')


def run(res):
    """Each fault on its own; one's crash must not hide the others. The ones that signal the
    keeper come first, those that fill the lock table next, the keeper's restart last."""
    make_roles()
    try:
        for name, fn in [("(1) release by owner", release_by_owner),
                         ("(2) keeper cancelled", cancel_keeper),
                         ("(6) fence_timeout", fence_timeout),
                         ("(6) fence_timeout, a prepared transaction", fence_prepared),
                         ("(5) keeper stopped", cancelled_waiting_for_keeper),
                         ("(3) full lock table", full_lock_table),
                         ("(4) keeper's memory", memory_flat),
                         ("(7) restore", restore_cannot_take)]:
            try:
                fn(res)
            except Exception as exc:  # noqa: BLE001
                res.crash(f"lease worst day {name}", exc)
            left, locks = leftovers()
            if left or locks:
                res.note(f"after {name}: leases left {left}, {locks} advisory locks")
    finally:
        drop_roles()


def leftovers():
    """Leases and advisory locks a fault left in the suite's database: the next one starts from
    a clean slate only without them."""
    with connect("rel-wd-leftovers") as conn:
        return rows(conn, "SELECT token, owner FROM lockhier.leases"), advisory_count(conn)
