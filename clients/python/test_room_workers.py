"""Leases on paths from psycopg 3: the chat server's room workers of recipe_room_workers.py.

Each instance has a pool of its own, as if in a process of its own. The leases database
(clients/run.sh makes it): a lease outlives the test that took it."""
import os
import threading
import time

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import ConnectionPool

from recipe_room_workers import RoomBusy, RoomLost, RoomWorker, shut_down

DB = os.environ.get("LOCKHIER_CLIENTS_LEASES_DB", "lockhier_clients_py_leases")
ROOM = "!abc def:example.org"  # a space, a colon and a `!`, as room ids have


@pytest.fixture
def observer():
    with psycopg.connect(dbname=DB, application_name="observer", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS room_event (room text NOT NULL, worker text NOT NULL, body text NOT NULL)")
        conn.execute("TRUNCATE room_event")
        conn.execute("SELECT lockhier.release_lease(token) FROM lockhier.leases")
        yield conn
        conn.execute("SELECT lockhier.release_lease(token) FROM lockhier.leases")


@pytest.fixture
def instance():
    """instance(name) -> its pool; closed after the test."""
    pools = []

    def make(name):
        pools.append(ConnectionPool(kwargs={"dbname": DB, "application_name": name}, min_size=1, max_size=3, open=True))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def leases(observer):
    return observer.execute("SELECT token, owner, scope FROM lockhier.leases ORDER BY token").fetchall()


def events(observer):
    return observer.execute("SELECT room, worker, body FROM room_event ORDER BY body").fetchall()


def post(worker, token, room, body):
    with worker.writing(token) as conn:
        conn.execute("INSERT INTO room_event VALUES (%s, %s, %s)", (room, worker.owner, body))


def test_a_room_is_held_by_one_task_and_the_refusal_names_room_and_task(instance, observer):
    chat1 = instance("chat-1")
    worker3, worker4 = RoomWorker(chat1, "chat-1", 3), RoomWorker(chat1, "chat-1", 4)
    token = worker3.claim(ROOM)
    assert leases(observer) == [(token, "chat-1/worker-3", '"rooms/!abc def:example.org"')]
    # Another task of the same instance is another owner: refused, the room and the task named.
    with pytest.raises(RoomBusy) as busy:
        worker4.claim(ROOM)
    message, detail = busy.value.args
    assert message == 'operation in progress: cannot lock "rooms/!abc def:example.org" for "room_worker"'
    assert detail.startswith('Blocked by an exclusive lock on "room_worker" for "rooms/!abc def:example.org",'
                             f' held by lease {token} of owner "chat-1/worker-3", acquired '), detail
    # So is a task of another instance; room ids differing only in case are other rooms.
    with pytest.raises(RoomBusy):
        RoomWorker(instance("chat-2"), "chat-2", 1).claim(ROOM)
    other = worker4.claim("!ABC def:example.org")
    # The same task asking again gets its own lease back.
    assert worker3.claim(ROOM) == token
    assert [owner for _, owner, _ in leases(observer)] == ["chat-1/worker-3", "chat-1/worker-4"]
    assert other != token


def test_a_task_renews_and_releases_only_its_own_room(instance, observer):
    chat1 = instance("chat-1")
    worker3, worker4 = RoomWorker(chat1, "chat-1", 3), RoomWorker(chat1, "chat-1", 4)
    token = worker3.claim(ROOM)
    expires = observer.execute("SELECT expires_at FROM lockhier.leases WHERE token = %s", (token,)).fetchone()[0]
    assert worker3.renew(token) is True
    assert observer.execute("SELECT expires_at FROM lockhier.leases WHERE token = %s", (token,)).fetchone()[0] > expires
    # Task 4 given task 3's token (a mixed-up token, a stale record): refused, nothing done.
    for call in (worker4.release, worker4.renew):
        with pytest.raises(errors.ObjectNotInPrerequisiteState) as refused:  # 55000
            call(token)
        assert refused.value.diag.message_primary == f"lease {token} belongs to another owner"
        assert '"chat-1/worker-3"' in refused.value.diag.message_detail, refused.value.diag.message_detail
    assert leases(observer) == [(token, "chat-1/worker-3", '"rooms/!abc def:example.org"')]
    # Its own task releases it; then task 4 takes the room.
    assert worker3.release(token) is True
    assert leases(observer) == []
    worker4.claim(ROOM)


def test_writes_are_fenced_by_the_lease_even_across_a_shutdown(instance, observer):
    chat1 = instance("chat-1")
    worker3 = RoomWorker(chat1, "chat-1", 3)
    token = worker3.claim(ROOM)
    post(worker3, token, ROOM, "1 hello")
    released = []
    with worker3.writing(token) as conn:
        # The instance shuts down while a write is in flight: the release waits for the writing
        # transaction (queued on the lease's fence, objsubid 3 in pg_locks)...
        shutdown = threading.Thread(target=lambda: released.append(shut_down(instance("chat-1 shutdown"), "chat-1")))
        shutdown.start()
        start = time.monotonic()
        while not observer.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 3"
                                   " AND NOT granted").fetchone()[0]:
            assert time.monotonic() - start < 60, "the shutdown's release never queued behind the write"
            time.sleep(0.05)
        # ...so the write made while the lease was held commits.
        conn.execute("INSERT INTO room_event VALUES (%s, %s, %s)", (ROOM, worker3.owner, "2 in flight"))
    shutdown.join()
    assert released == [1]
    # After it, the task's next write does not happen.
    with pytest.raises(RoomLost):
        post(worker3, token, ROOM, "3 after the shutdown")
    assert events(observer) == [(ROOM, "chat-1/worker-3", "1 hello"), (ROOM, "chat-1/worker-3", "2 in flight")]


def test_shutdown_releases_every_task_of_the_instance_and_nothing_else(instance, observer):
    chat1, chat10 = instance("chat-1"), instance("chat-10")
    RoomWorker(chat1, "chat-1", 3).claim(ROOM)
    RoomWorker(chat1, "chat-1", 3).claim("!room2:example.org")
    RoomWorker(chat1, "chat-1", 4).claim("!room3:example.org")
    kept = RoomWorker(chat10, "chat-10", 1).claim("!room4:example.org")  # not under chat-1
    assert shut_down(chat1, "chat-1") == 3
    assert leases(observer) == [(kept, "chat-10/worker-1", '"rooms/!room4:example.org"')]
    # The rooms are free for the next instance at once, not after a ttl.
    RoomWorker(instance("chat-2"), "chat-2", 1).claim(ROOM)
