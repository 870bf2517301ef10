"""Locks on paths from psycopg 3: the archiver's directory locks of recipe_archiver.py.

Each job is a connection of its own (autocommit: the writer's lock is a session lock); the order
of a waiting job and the one it waits for is read from pg_locks, never from a sleep."""
import threading
import time

import psycopg
import pytest

from conftest import DB, lockhier_waiters
from recipe_archiver import DirectoryBusy, archive_path, reading, writing

DEEP_FILE = "/srv/photos/2026/05/17/IMG_0001.jpg"  # 7 names: 4 under /srv/photos


@pytest.fixture
def job():
    """job(application_name) -> an autocommit connection, closed (its locks gone) after the test."""
    conns = []

    def make(application_name):
        conns.append(psycopg.connect(dbname=DB, application_name=application_name, autocommit=True))
        return conns[-1]

    yield make
    for conn in conns:
        conn.close()


def queued_in_pg_locks(observer, application_name):
    start = time.monotonic()
    while application_name not in lockhier_waiters(observer):
        assert time.monotonic() - start < 60, f"{application_name} never queued for its lock"
        time.sleep(0.05)


def held(conn):
    return conn.execute("SELECT scope, mode FROM lockhier.held() ORDER BY scope").fetchall()


def test_archive_path():
    assert archive_path("/srv/photos/2026") == ["archive", "srv", "photos", "2026"]
    assert archive_path(DEEP_FILE) == ["archive", "srv", "photos", "2026", "05", "17", "IMG_0001.jpg"]


def test_a_writer_of_a_directory_holds_everything_under_it_across_transactions(job):
    repack, reader = job("repack /srv/photos"), job("thumbnailer")
    with writing(repack, "/srv/photos"):
        repack.execute("SELECT 1")  # transactions of its own come and go: the session lock stays
        assert held(repack) == [('"archive/srv/photos"', "exclusive")]
        # A file 5 levels under the directory is covered; the refusal names the directory held.
        with pytest.raises(DirectoryBusy) as busy:
            with reading(reader, DEEP_FILE):
                pytest.fail("read a file under a directory being repacked")
        message, detail = busy.value.args
        assert message == 'operation in progress: cannot lock "archive/srv/photos/2026/05/17/IMG_0001.jpg" for "archive" in share mode'
        assert detail.startswith('Blocked by an exclusive lock on "archive" for "archive/srv/photos", held by process'
                                 f' {repack.info.backend_pid} (application_name "repack /srv/photos")'), detail
        # So is a writer of the whole archive above it; a sibling tree goes ahead.
        with pytest.raises(DirectoryBusy):
            with writing(reader, "/srv"):
                pytest.fail("wrote /srv while /srv/photos was being repacked")
        with reading(reader, "/srv/music/2026"):
            pass
    assert held(repack) == []
    with reading(reader, DEEP_FILE):
        pass


def test_readers_of_a_subtree_share_it_and_a_writer_waits_for_them(job):
    reader1, reader2, pruner = job("reader 1"), job("reader 2"), job("pruner")
    with reading(reader1, "/srv/photos/2026"), reading(reader2, "/srv/photos/2026/05"):
        # Two readers at once, one under the other; a writer under them is refused...
        with pytest.raises(DirectoryBusy) as busy:
            with writing(pruner, "/srv/photos/2026/05/17"):
                pytest.fail("pruned a directory being read")
        assert "a share lock" in busy.value.args[1], busy.value.args[1]
        # ...while a writer of another year goes ahead.
        with writing(pruner, "/srv/photos/2025"):
            pass
    # A writer that waits is granted once the reader has committed, not before.
    done = []

    def prune():
        with writing(pruner, "/srv/photos/2026/05/17", wait="30 s"):
            done.append(held(pruner))

    writer = threading.Thread(target=prune)
    with reading(reader1, "/srv/photos/2026"):
        writer.start()
        queued_in_pg_locks(reader2, "pruner")
        assert done == []
    writer.join()
    assert done == [[('"archive/srv/photos/2026/05/17"', "exclusive")]]


def test_depth_beyond_three_nests(job):
    a, b = job("a"), job("b")
    depth5, depth8 = "/srv/photos/2026/05", "/srv/photos/2026/05/17/raw/IMG_0001.cr2"
    assert len(archive_path(depth5)) == 5 and len(archive_path(depth8)) == 8
    with writing(a, depth8):
        # The 8th name's lock keeps out a writer of any directory above it, at depth 4 and 5...
        for above in ("/srv/photos/2026", depth5):
            with pytest.raises(DirectoryBusy):
                with writing(b, above):
                    pytest.fail(f"wrote {above} above a file being written")
        # ...but not one of a sibling at depth 8, nor a reader of a sibling directory.
        with writing(b, "/srv/photos/2026/05/17/raw/IMG_0002.cr2"):
            pass
        with reading(b, "/srv/photos/2026/05/17/jpg"):
            pass
    with writing(a, depth5):
        with pytest.raises(DirectoryBusy):
            with reading(b, depth8):
                pytest.fail(f"read {depth8} under a directory being written")
    # A ninth name is refused (22023, naming it), not silently cut.
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        with writing(b, depth8 + "/more"):
            pass
