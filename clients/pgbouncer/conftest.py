"""Connections through the PgBouncer that run.sh started, and one straight to the server.

Every test starts from the same rows and with no lease held in the database (a lease outlives
the connections and the test that took it: the last test's are released here)."""
import os
import time

import psycopg
import pytest

DB = os.environ.get("LOCKHIER_CLIENTS_PGBOUNCER_DB", "lockhier_clients_pgbouncer")
# Two pools in transaction pooling lead to DB: two server connections, and one.
POOLED, SINGLE = DB, f"{DB}_single"
BOUNCER = {"host": os.environ.get("LOCKHIER_PGBOUNCER_HOST", "127.0.0.1"),
           "port": os.environ.get("LOCKHIER_PGBOUNCER_PORT", "6472")}
BOUNCER_URL = f"postgresql+psycopg://{os.environ.get('PGUSER', 'postgres')}@{BOUNCER['host']}:{BOUNCER['port']}"


def connect_through_bouncer(application_name, dbname=POOLED):
    # Autocommit, with explicit transactions: outside one, PgBouncer may hand the next statement
    # to another server connection. No prepared statements: they would stay on the server
    # connection they were prepared on.
    return psycopg.connect(**BOUNCER, dbname=dbname, application_name=application_name,
                           autocommit=True, prepare_threshold=None)


@pytest.fixture
def bouncer():
    """bouncer(application_name, dbname=POOLED): a client of PgBouncer, closed after the test."""
    opened = []

    def make(application_name, dbname=POOLED):
        opened.append(connect_through_bouncer(application_name, dbname))
        return opened[-1]

    yield make
    for conn in opened:
        conn.close()


@pytest.fixture
def direct():
    """A connection straight to the server (PGHOST/PGPORT), for watching pg_locks and the leases."""
    with psycopg.connect(dbname=DB, application_name="observer", autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def fresh_rows():
    with psycopg.connect(dbname=DB, autocommit=True) as conn:
        conn.execute("SELECT lockhier.release_lease(token) FROM lockhier.leases")
        conn.execute("CREATE TABLE IF NOT EXISTS imported_row (table_id bigint NOT NULL, value text NOT NULL)")
        conn.execute("TRUNCATE imported_row, database_field")
        conn.execute("INSERT INTO database_field SELECT id, 12, 'field ' || id FROM generate_series(95, 104) AS id"
                     " UNION ALL SELECT id, 13, 'field ' || id FROM generate_series(200, 204) AS id")
    yield
    with psycopg.connect(dbname=DB, autocommit=True) as conn:
        conn.execute("SELECT lockhier.release_lease(token) FROM lockhier.leases")


def wait_for(what, check, timeout=60):
    """Poll check() (every 50 ms) until it returns something true, and return that; fail after
    `timeout` seconds, a bound that only a broken server reaches."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"not seen within {timeout} s: {what}")
