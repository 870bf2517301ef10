"""Recipe: one worker of a fleet at a time on a table, with a lockhier lease (psycopg 3, psycopg_pool).

The lease belongs to the worker's name, not to a connection: any connection of the pool takes,
renews, checks and releases it. A thread renews it every ttl/3; every transaction that writes
checks it first, so its writes commit only if the lease was held until they did (fencing).
"""
import threading
from contextlib import contextmanager
from datetime import timedelta

import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool


class LeaseBusy(Exception):
    """Another worker holds the lease: args are (message, detail), the detail naming its owner."""


class LeaseLost(Exception):
    """The lease expired or was released (this worker stopped renewing it): nothing was written."""


class WorkerLease:
    def __init__(self, pool: ConnectionPool, owner: str, app_id: int, table_id: int,
                 classes=("all",), mode="exclusive", ttl=timedelta(seconds=30)):
        self.pool, self.owner, self.ttl = pool, owner, ttl
        self.scope = (app_id, table_id, owner, list(classes), mode, ttl)
        self.token = None
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_every_third_of_ttl, daemon=True)

    def __enter__(self):
        try:
            with self.pool.connection() as conn:
                # ::text[]: a Python list is sent untyped, and would pick the one-class overload
                self.token = conn.execute("SELECT lockhier.lease_table(%s, %s, %s, %s::text[], %s, ttl => %s)",
                                          self.scope).fetchone()[0]
        except errors.LockNotAvailable as e:  # SQLSTATE 55P03: held by lease 17 of owner "worker-1"...
            raise LeaseBusy(e.diag.message_primary, e.diag.message_detail) from e
        self._renewer.start()
        return self

    @contextmanager
    def transaction(self):
        """A transaction of the pool whose writes commit only if the lease is held until COMMIT."""
        with self.pool.connection() as conn, conn.transaction():
            # True: the lease can neither expire nor be released before this transaction ends.
            if not conn.execute("SELECT lockhier.lease_valid(%s)", (self.token,)).fetchone()[0]:
                raise LeaseLost(f"lease {self.token} of {self.owner!r} is no longer held")
            yield conn

    def _renew_every_third_of_ttl(self):
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            try:
                with self.pool.connection() as conn:
                    if not conn.execute("SELECT lockhier.renew_lease(%s)", (self.token,)).fetchone()[0]:
                        return  # lost: the next transaction() says so, before writing anything
            except psycopg.Error:
                pass  # the server or the pool is away: try again at the next third of the ttl

    def __exit__(self, *exc):
        self._stop.set()
        self._renewer.join()
        with self.pool.connection() as conn:
            conn.execute("SELECT lockhier.release_lease(%s)", (self.token,))
