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

    def release_once_waited_on(self, at_least=0.0):
        """Commit in a thread once another backend waits for one of lockhier's locks (seen in
        pg_locks) and at least `at_least` seconds have passed; self.waiters then holds the
        waiters' application_name. Gives up (and commits) after 60 s."""
        return release_once_waited_on(self.dbname, self.release, self.waiters, at_least)


def lockhier_waiters(conn):
    """application_name of every backend queued for one of lockhier's locks in this database."""
    return [row[0] for row in conn.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND NOT l.granted"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")]


def release_once_waited_on(dbname, release, waiters_seen, at_least=0.0):
    """Call release() in a thread once some backend is queued for one of lockhier's locks (state
    read from pg_locks, not a sleep) and `at_least` seconds have passed; the waiters'
    application_names are appended to waiters_seen. Gives up (and releases) after 60 s."""

    def watch():
        start = time.monotonic()
        with psycopg.connect(dbname=dbname, application_name="observer", autocommit=True) as obs:
            while time.monotonic() - start < 60:
                waiters = lockhier_waiters(obs)
                if waiters and time.monotonic() - start >= at_least:
                    waiters_seen.extend(waiters)
                    break
                time.sleep(0.05)
        release()

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
