"""Leases from psycopg 3 and psycopg_pool: the worker-fleet lock of recipe_lease_worker.py.

Its own database (clients/run.sh makes it): a lease outlives the test that took it."""
import os
import time
from datetime import timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from recipe_lease_worker import LeaseBusy, LeaseLost, WorkerLease

DB = os.environ.get("LOCKHIER_CLIENTS_LEASES_DB", "lockhier_clients_py_leases")
IMPORT = {"classes": ["field__deletion", "field__type_update"], "mode": "exclusive"}


@pytest.fixture
def observer():
    with psycopg.connect(dbname=DB, application_name="observer", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS work_done (worker text NOT NULL, item int NOT NULL)")
        conn.execute("TRUNCATE work_done")
        yield conn
        conn.execute("SELECT lockhier.release_lease(token) FROM lockhier.leases")


@pytest.fixture
def pool():
    """pool(): a pool of its own for each worker of the fleet, as if in processes of their own."""
    pools = []

    def make():
        pools.append(ConnectionPool(kwargs={"dbname": DB, "application_name": "worker"},
                                    min_size=1, max_size=3, open=True))
        return pools[-1]

    yield make
    for p in pools:
        p.close()


def lease_of(observer, token):
    return observer.execute("SELECT owner, acquired_at, renewed_at, expires_at, now() FROM lockhier.leases"
                            " WHERE token = %s", (token,)).fetchone()


def work_done(observer):
    return observer.execute("SELECT worker, item FROM work_done ORDER BY worker, item").fetchall()


def wait_for(what, check, timeout=60):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"not seen within {timeout} s: {what}")


def stop_renewing(worker):
    """The worker stops renewing, as a process paused (a long GC pause, a network partition)."""
    worker._stop.set()
    worker._renewer.join()


def write(worker, item):
    with worker.transaction() as conn:
        conn.execute("INSERT INTO work_done VALUES (%s, %s)", (worker.owner, item))


def test_a_second_worker_is_refused_with_the_first_named(pool, observer):
    with WorkerLease(pool(), "worker-1", 7, 12, **IMPORT) as first:
        with pytest.raises(LeaseBusy) as busy:
            with WorkerLease(pool(), "worker-2", 7, 12, **IMPORT):
                pytest.fail("two workers held the lease")
        message, detail = busy.value.args
        assert message == 'operation in progress: cannot lock table 12 (application 7) for "field__deletion", "field__type_update"'
        assert detail.startswith('Blocked by an exclusive lock on "field__deletion", "field__type_update" for table 12 (application 7),'
                                 f' held by lease {first.token} of owner "worker-1", acquired '), detail
        write(first, 1)
        assert observer.execute("SELECT owner FROM lockhier.leases").fetchall() == [("worker-1",)]
    # Released at exit: the second worker gets it now, with a new, greater token.
    assert observer.execute("SELECT count(*) FROM lockhier.leases").fetchone()[0] == 0
    with WorkerLease(pool(), "worker-2", 7, 12, **IMPORT) as second:
        assert second.token > first.token
        write(second, 2)
    assert work_done(observer) == [("worker-1", 1), ("worker-2", 2)]


def test_renewal_keeps_the_lease_past_its_ttl(pool, observer):
    # Renewed every 1.67 s: lost only if no renewal landed for 3.33 s.
    ttl = timedelta(seconds=5)
    with WorkerLease(pool(), "worker-1", 7, 12, **IMPORT, ttl=ttl) as worker:
        _, acquired_at, _, first_expiry, _ = lease_of(observer, worker.token)
        assert first_expiry == acquired_at + ttl
        # Past the first expiry, by the server's clock, the lease is still held, renewed.
        wait_for("past the first expiry", lambda: lease_of(observer, worker.token)[4] > first_expiry + timedelta(seconds=0.5))
        owner, _, renewed_at, expires_at, now = lease_of(observer, worker.token)
        assert owner == "worker-1" and now > first_expiry
        assert renewed_at > acquired_at and expires_at > now
        write(worker, 1)
    assert work_done(observer) == [("worker-1", 1)]


def test_a_worker_that_stops_renewing_loses_the_lease_and_writes_nothing(pool, observer):
    paused = WorkerLease(pool(), "worker-1", 7, 12, **IMPORT, ttl=timedelta(seconds=1))
    with paused:
        stop_renewing(paused)
        wait_for("the lease expired", lambda: lease_of(observer, paused.token) is None)
        # Another worker takes over, and works.
        with WorkerLease(pool(), "worker-2", 7, 12, **IMPORT) as successor:
            write(successor, 1)
            # The paused worker comes back: its next write does not happen.
            with pytest.raises(LeaseLost):
                write(paused, 2)
            write(successor, 3)
    assert work_done(observer) == [("worker-2", 1), ("worker-2", 3)]


def test_a_lease_checked_by_a_writing_transaction_outlives_its_ttl_until_that_commits(pool, observer):
    with WorkerLease(pool(), "worker-1", 7, 12, **IMPORT) as worker:
        stop_renewing(worker)
        with worker.transaction() as conn:  # lease_valid(): true
            conn.execute("INSERT INTO work_done VALUES ('worker-1', 1)")
            # Its ttl runs out in 1 s now (a renewal from any connection sets it).
            assert observer.execute("SELECT lockhier.renew_lease(%s, '1 s')", (worker.token,)).fetchone()[0] is True
            _, _, _, expires_at, _ = lease_of(observer, worker.token)
            # Past its expiry (the keeper expires a lease within milliseconds), the lease is still
            # held: no other worker gets it...
            wait_for("half a second past the expiry", lambda: observer.execute(
                "SELECT now() > %s + interval '0.5 s'", (expires_at,)).fetchone()[0])
            assert lease_of(observer, worker.token) is not None
            with pytest.raises(LeaseBusy):
                with WorkerLease(pool(), "worker-2", 7, 12, **IMPORT):
                    pytest.fail("two workers held the lease")
            conn.execute("INSERT INTO work_done VALUES ('worker-1', 2)")
        # ...until the transaction that checked it commits, its writes made under the lease.
        wait_for("the lease expired", lambda: lease_of(observer, worker.token) is None)
        with pytest.raises(LeaseLost):
            write(worker, 3)
    assert work_done(observer) == [("worker-1", 1), ("worker-1", 2)]
