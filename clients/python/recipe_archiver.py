"""Recipe: an archiver's directory locks, with lockhier locks on paths (psycopg 3).

A directory is a path, /srv/photos/2026 -> ARRAY['archive', 'srv', 'photos', '2026'], of any
depth up to 8 names: a lock on a directory covers everything under it, as a lockfile on each
file under it would. Readers of a subtree share it; a writer (a repack, a prune) holds its
subtree exclusive, for the length of its session rather than one transaction.
"""
from contextlib import contextmanager
from pathlib import PurePosixPath

import psycopg
from psycopg import errors


class DirectoryBusy(Exception):
    """Another job holds the directory or one above or under it: args are (message, detail)."""


def archive_path(directory: str) -> list[str]:
    """'/srv/photos/2026' -> ['archive', 'srv', 'photos', '2026']"""
    return ["archive", *PurePosixPath(directory).parts[1:]]


@contextmanager
def writing(conn: psycopg.Connection, directory: str, wait: str = "0"):
    """Holds the directory and everything under it for this session, across its transactions."""
    path = archive_path(directory)
    try:
        conn.execute("SELECT lockhier.session_lock_path(%s::text[], 'archive', 'exclusive', %s)", (path, wait))
    except errors.LockNotAvailable as e:  # 55P03: cannot lock "archive/srv/photos" for "archive"
        raise DirectoryBusy(e.diag.message_primary, e.diag.message_detail) from e
    try:
        yield
    finally:
        conn.execute("SELECT lockhier.session_unlock_path(%s::text[], 'archive', 'exclusive')", (path,))


@contextmanager
def reading(conn: psycopg.Connection, directory: str, wait: str = "0"):
    """A transaction in which no writer of the directory, above it or under it runs."""
    try:
        with conn.transaction():
            conn.execute("SELECT lockhier.lock_path(%s::text[], 'archive', 'share', %s)", (archive_path(directory), wait))
            yield
    except errors.LockNotAvailable as e:
        raise DirectoryBusy(e.diag.message_primary, e.diag.message_detail) from e
