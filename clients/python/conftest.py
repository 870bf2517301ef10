"""Shared helpers of the Python suites: a holder process (a snapshot or import job in another
connection) and an observer connection that asks lockhier who is in the way."""
import os
import threading

import psycopg
import pytest

DB = os.environ.get("LOCKHIER_CLIENTS_DB", "lockhier_clients_py")
IMPORT_CLASSES = "ARRAY['field__deletion', 'field__type_update', 'field__incompatible_update']"


class Holder:
    """Another process's open transaction holding a lockhier lock."""

    def __init__(self, sql, application_name, dbname=DB):
        self.conn = psycopg.connect(dbname=dbname, application_name=application_name)
        self.pid = self.conn.info.backend_pid
        self.application_name = application_name
        self.conn.execute(sql)  # opens the transaction; the lock is held until commit

    def release(self):
        self.conn.commit()

    def release_after(self, seconds):
        timer = threading.Timer(seconds, self.release)
        timer.start()
        return timer


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
