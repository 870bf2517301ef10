"""Shared helpers of the Python suites: a holder process (a snapshot or import job in another
connection) and an observer connection that asks lockhier who is in the way."""
import os
import threading
import time

import psycopg
import pytest

DB = os.environ.get("LOCKHIER_CLIENTS_DB", "lockhier_clients_py")
IMPORT_CLASSES = "ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update']"


class Holder:
    """Another process's open transaction holding a lockhier lock."""

    def __init__(self, sql, application_name, dbname=DB):
        self.dbname = dbname
        self.conn = psycopg.connect(dbname=dbname, application_name=application_name)
        self.waiters = []
        self.pid = self.conn.info.backend_pid
        self.application_name = application_name
        self.conn.execute(sql)  # opens the transaction; the lock is held until commit

    def release(self):
        self.conn.commit()

    def release_after(self, seconds):
        timer = threading.Timer(seconds, self.release)
        timer.start()
        return timer

    def release_once_waited_on(self, at_least):
        """Commit in a thread once another backend waits for one of lockhier's locks (seen in
        pg_locks) and at least `at_least` seconds have passed; self.waiters then holds the
        waiters' application_name. Gives up (and commits) after 20 s."""

        def watch():
            start = time.monotonic()
            with psycopg.connect(dbname=self.dbname, application_name="observer", autocommit=True) as obs:
                while time.monotonic() - start < 20:
                    waiters = [row[0] for row in obs.execute(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                        " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND NOT l.granted"
                        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")]
                    if waiters and time.monotonic() - start >= at_least:
                        self.waiters = waiters
                        break
                    time.sleep(0.05)
            self.release()

        thread = threading.Thread(target=watch)
        thread.start()
        return thread


@pytest.fixture
def hold():
    """hold(sql, application_name) -> Holder; closed (so released) after the test."""
    holders = []

    def make(sql, application_name="snapshot #7", dbname=DB):
        holders.append(Holder(sql, application_name, dbname))
        return holders[-1]

    yield make
    for holder in holders:
        holder.conn.close()


@pytest.fixture
def observer():
    with psycopg.connect(dbname=DB, application_name="observer", autocommit=True) as conn:
        yield conn


def blocker_pids(conn, blockers_call):
    """pids that lockhier.blockers_*() says would refuse the request right now."""
    return {row[0] for row in conn.execute(f"SELECT pid FROM lockhier.{blockers_call}")}


def assert_names_holder(detail, holder):
    assert f"process {holder.pid} " in detail, detail
    assert f'application_name "{holder.application_name}"' in detail, detail
