"""A lease that waits keeps its turn (issue 17, item 11; "A lease that waits" in docs/leases.md).

Ten sessions loop short field-deletion transactions on one table, each on a field of its own
(BEGIN; lock_field(7, 12, <its field>, 'field__deletion', wait => '1 s'); ~50 ms; COMMIT), a
steady stream in which some field of the table is nearly always locked. Meanwhile a chunked
import asks 20 times for a share lease on the table with wait => '1 s', releasing it after each
grant and letting the stream run again between tries; and, as the comparison, the same request
20 times as a transaction lock (BEGIN; lock_table(..., wait => '1 s'); COMMIT). Tries alternate
(lease, transaction, lease, ...), so both meet the same stream on the same machine at the same
load.

(1) The lease is granted within its wait at least 19 times of 20. [0.2.0: refused 2 times of 4,
    at 1003 ms, in the issue; 19 times of 20 in this test: a waiting lease gave its locks back
    before the keeper took them, and a field deletion queued behind it was granted in that
    instant.]
(2) Its grant time is within 200 ms of the transaction lock's. Compared on the median, and on
    the 95th percentile (nearest rank, the 19th of 20: one outlier of either side is
    ignored); a refused try counts at the time it took (its whole wait). The medians measure
    the handoff itself (a few ms for the keeper's answer); the 95th percentiles show the lease
    waits no more often than the transaction lock does. On a loaded 2-core machine a stall of the
    lease's backend or of the keeper (hundreds of ms) can hit any one try, so one is allowed;
    two in twenty tries of the lease and none in the transaction lock's is a failure.

Every statement has a statement_timeout, every thread is joined with a bound, and the streams
and the lease are stopped and released in finally blocks. Measured figures are printed in the
checks' lines.
"""

import threading
import time

import psycopg

from .harness import close_quietly, connect, describe_error, now, one, sqlstate

APP, TABLE, CLASS = 7, 12, "field__deletion"
OWNER = "chunked import"
STREAM_SESSIONS = 10
STREAM_HOLD = 0.05          # seconds each stream transaction holds its field
TRIES = 20                  # of the lease, and of the transaction lock
GRANTED_AT_LEAST = 19       # of the lease's TRIES
BOUND_MS = 200              # the lease's grant time against the transaction lock's
BETWEEN_TRIES = 10          # stream commits between two tries (the stream runs again)
BETWEEN_TRIES_LIMIT = 3.0   # seconds: at most this long for them
SAFETY = "SET statement_timeout = '10s'"   # nothing here may hang the suite
LIMIT = 90.0                # seconds for the tries (each at most 1 s + 3 s between)


class Stream:
    """Sessions looping short field-deletion transactions, each on a field of its own."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.commits = 0
        self.by_session = [0] * STREAM_SESSIONS
        self.refused = 0
        self.errors = []
        self.conns = []
        self.threads = []

    def start(self):
        for i in range(STREAM_SESSIONS):
            conn = connect(f"rel-turn-stream-{i}")
            conn.execute(SAFETY)
            self.conns.append(conn)
        for i, conn in enumerate(self.conns):
            thread = threading.Thread(target=self._loop, args=(conn, i), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self, conn, session):
        field = 1000 + session
        while not self.stop.is_set():
            try:
                conn.execute("BEGIN")
                conn.execute("SELECT lockhier.lock_field(%s, %s, %s, %s, wait => '1 s')",
                              [APP, TABLE, field, CLASS])
                conn.execute("SELECT pg_sleep(%s)", [STREAM_HOLD])
                conn.execute("COMMIT")
                with self.lock:
                    self.commits += 1
                    self.by_session[session] += 1
            except psycopg.Error as exc:
                with self.lock:
                    if sqlstate(exc) == "55P03":
                        self.refused += 1
                    else:
                        self.errors.append(describe_error(exc))
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    return
                if len(self.errors) > 20:
                    return

    def committed(self):
        with self.lock:
            return self.commits

    def running(self, limit):
        """Until every session has committed twice (at most limit seconds)."""
        deadline = now() + limit
        while now() < deadline:
            with self.lock:
                if min(self.by_session) >= 2:
                    return True
            time.sleep(0.005)
        return False

    def wait_for_commits(self, n, limit):
        """Until n more stream transactions have committed (at most limit seconds)."""
        target = self.committed() + n
        deadline = now() + limit
        while self.committed() < target and now() < deadline:
            time.sleep(0.005)
        return self.committed() >= target

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        alive = sum(thread.is_alive() for thread in self.threads)
        close_quietly(*self.conns)
        return alive


def lease_try(conn):
    """(granted, milliseconds) of one lease_table(..., wait => '1 s'); a grant is released at once."""
    t0 = now()
    try:
        token = one(conn, "SELECT lockhier.lease_table(%s, %s, %s, %s, 'share', wait => '1 s')",
                    [APP, TABLE, OWNER, CLASS])
        elapsed = (now() - t0) * 1000
    except psycopg.Error as exc:
        elapsed = (now() - t0) * 1000
        if sqlstate(exc) != "55P03":
            raise
        return False, elapsed
    one(conn, "SELECT lockhier.release_lease(%s)", [token])
    return True, elapsed


def transaction_try(conn):
    """(granted, milliseconds) of one lock_table(..., wait => '1 s') in a transaction."""
    conn.execute("BEGIN")
    t0 = now()
    try:
        conn.execute("SELECT lockhier.lock_table(%s, %s, %s, 'share', wait => '1 s')", [APP, TABLE, CLASS])
        elapsed = (now() - t0) * 1000
        granted = True
    except psycopg.Error as exc:
        elapsed = (now() - t0) * 1000
        if sqlstate(exc) != "55P03":
            conn.execute("ROLLBACK")
            raise
        granted = False
    conn.execute("ROLLBACK" if not granted else "COMMIT")
    return granted, elapsed


def nearest_rank(values, fraction):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))   # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


def figures(tries):
    times = [ms for _, ms in tries]
    return {
        "granted": sum(1 for granted, _ in tries if granted),
        "median": nearest_rank(times, 0.5),
        "p95": nearest_rank(times, 0.95),
        "max": max(times),
        "refused_at": [round(ms) for granted, ms in tries if not granted],
    }


def run(res):
    stream = Stream()
    lease_conn = txn_conn = None
    started = now()
    lease_tries, txn_tries = [], []
    stream_alive = 0
    try:
        lease_conn = connect("rel-turn-import")
        txn_conn = connect("rel-turn-transaction")
        for conn in (lease_conn, txn_conn):
            conn.execute(SAFETY)
        lease_conn.execute("SELECT lockhier.release_leases(%s)", [OWNER])
        stream.start()
        warm = stream.running(10.0)
        res.check(f"lease turn: a stream of {STREAM_SESSIONS} sessions deleting fields of table {TABLE} "
                  f"runs (each session committed twice; {stream.committed()} transactions)",
                  warm and not stream.errors,
                  "; ".join(stream.errors[:3]))
        for _ in range(TRIES):
            if now() - started > LIMIT:
                break
            lease_tries.append(lease_try(lease_conn))
            stream.wait_for_commits(BETWEEN_TRIES, BETWEEN_TRIES_LIMIT)
            txn_tries.append(transaction_try(txn_conn))
            stream.wait_for_commits(BETWEEN_TRIES, BETWEEN_TRIES_LIMIT)
        seconds = now() - started
        commits, refused = stream.committed(), stream.refused
    finally:
        stream_alive = stream.finish()
        if lease_conn is not None:
            try:
                lease_conn.execute("SELECT lockhier.release_leases(%s)", [OWNER])
            except psycopg.Error:
                pass
        close_quietly(lease_conn, txn_conn)

    res.check("lease turn: every try ran, and the stream stopped",
              len(lease_tries) == TRIES and len(txn_tries) == TRIES and stream_alive == 0
              and not stream.errors,
              f"{len(lease_tries)} lease and {len(txn_tries)} transaction tries in {seconds:.1f} s; "
              f"{stream_alive} stream threads still running; stream errors: {stream.errors[:3]}")
    if not lease_tries or not txn_tries:
        return
    lease, txn = figures(lease_tries), figures(txn_tries)
    stream_line = (f"stream: {commits} transactions in {seconds:.1f} s ({commits / seconds:.0f}/s), "
                   f"{refused} refused after their 1 s wait")
    res.check(f"lease turn: lease_table(7, 12, '{OWNER}', '{CLASS}', 'share', wait => '1 s') under the stream "
              f"is granted at least {GRANTED_AT_LEAST} times of {TRIES}",
              lease["granted"] >= GRANTED_AT_LEAST,
              f"{lease['granted']} of {len(lease_tries)} granted (refused at {lease['refused_at']} ms); "
              f"lock_table in a transaction: {txn['granted']} of {len(txn_tries)} "
              f"(refused at {txn['refused_at']} ms); {stream_line}")
    res.check(f"lease turn: the lease's grant time is within {BOUND_MS} ms of the transaction lock's "
              f"(median and 95th percentile)",
              lease["median"] <= txn["median"] + BOUND_MS and lease["p95"] <= txn["p95"] + BOUND_MS,
              f"lease median {lease['median']:.0f} ms, p95 {lease['p95']:.0f} ms, max {lease['max']:.0f} ms; "
              f"transaction lock median {txn['median']:.0f} ms, p95 {txn['p95']:.0f} ms, "
              f"max {txn['max']:.0f} ms; differences: median {lease['median'] - txn['median']:+.0f} ms, "
              f"p95 {lease['p95'] - txn['p95']:+.0f} ms")
    res.note("grant times (! refused):")
    res.note("lease ms:       " + " ".join(f"{ms:.0f}{'' if g else '!'}" for g, ms in lease_tries))
    res.note("transaction ms: " + " ".join(f"{ms:.0f}{'' if g else '!'}" for g, ms in txn_tries))
