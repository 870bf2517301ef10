"""Recipe: a chat server's named worker locks on rooms, with lockhier leases on paths (psycopg 3).

It replaces a table of worker locks (lock_name, lock_key, instance_name, token,
last_renewed_ts) that each instance upserts, renews every 30 s and deletes at shutdown: the room
is a path, ARRAY['rooms', room_id], with the room id as it is (spaces, `:`, `!`); each task of an
instance is an owner of its own under the instance's name, `chat-1/worker-3`, so a task releases
only its own leases and the instance releases all of its tasks' at shutdown in one call.
"""
from contextlib import contextmanager
from datetime import timedelta

from psycopg import errors
from psycopg_pool import ConnectionPool


class RoomBusy(Exception):
    """Another task holds the room: args are (message, detail), the detail naming its owner."""


class RoomLost(Exception):
    """The room's lease expired or was released: nothing was written."""


class RoomWorker:
    """A task of a chat server instance, `chat-1/worker-3`: holds rooms by token."""

    def __init__(self, pool: ConnectionPool, instance: str, k: int):
        self.pool, self.owner = pool, f"{instance}/worker-{k}"

    def claim(self, room_id: str, ttl=timedelta(minutes=2)) -> int:
        """The room's lease token, or RoomBusy naming the task that holds it."""
        try:
            with self.pool.connection() as conn:
                return conn.execute("SELECT lockhier.lease_path(ARRAY['rooms', %s], %s, 'room_worker', ttl => %s)",
                                    (room_id, self.owner, ttl)).fetchone()[0]
        except errors.LockNotAvailable as e:  # 55P03: cannot lock "rooms/!abc:example.org" ...
            raise RoomBusy(e.diag.message_primary, e.diag.message_detail) from e

    def renew(self, token: int) -> bool:
        """False once the lease is gone; 55000 (ObjectNotInPrerequisiteState) if it is another task's."""
        with self.pool.connection() as conn:
            return conn.execute("SELECT lockhier.renew_lease(%s, owner => %s)", (token, self.owner)).fetchone()[0]

    @contextmanager
    def writing(self, token: int):
        """A transaction whose writes commit only if the room stays this task's until COMMIT."""
        with self.pool.connection() as conn, conn.transaction():
            # True: the lease can neither expire nor be released before this transaction ends.
            if not conn.execute("SELECT lockhier.lease_valid(%s)", (token,)).fetchone()[0]:
                raise RoomLost(f"lease {token} of {self.owner!r} is no longer held")
            yield conn

    def release(self, token: int) -> bool:
        """Only this task's own lease: another task's is refused with 55000 and stays held."""
        with self.pool.connection() as conn:
            return conn.execute("SELECT lockhier.release_lease(%s, owner => %s)", (token, self.owner)).fetchone()[0]


def shut_down(pool: ConnectionPool, instance: str) -> int:
    """At the instance's shutdown: every lease of every task `<instance>/...`; how many."""
    with pool.connection() as conn:
        return conn.execute("SELECT lockhier.release_leases(%s)", (instance,)).fetchone()[0]
