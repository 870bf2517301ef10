"""lockhier from Django: raw SQL through connection.cursor() inside transaction.atomic()."""
import os
import threading
import time

import pytest

from conftest import DB, IMPORT_CLASSES, assert_names_holder, blocker_pids

os.environ["LOCKHIER_DJANGO_DB"] = DB
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "builderproject.settings")
import django  # noqa: E402

django.setup()
from django.db import OperationalError, connection, connections, transaction  # noqa: E402

from builder.models import DatabaseField  # noqa: E402
from builder.recipes import FieldBusy, update_field  # noqa: E402


@pytest.fixture(autouse=True)
def close_connections():
    yield
    connections.close_all()


class Job:
    """The other connection (alias "jobs") holding a lock: the pid and name its DETAIL gives."""

    application_name = "snapshot #7"

    def __init__(self, cursor):
        cursor.execute("SELECT pg_backend_pid()")
        self.pid = cursor.fetchone()[0]


def field_name(field_id):
    return DatabaseField.objects.values_list("name", flat=True).get(id=field_id)


def test_snapshot_makes_field_update_fail_with_who_is_in_the_way():
    before = field_name(99)
    with transaction.atomic(using="jobs"), connections["jobs"].cursor() as job:
        job.execute("SELECT lockhier.lock_application(7, mode => 'share')")
        snapshot = Job(job)
        with pytest.raises(FieldBusy) as busy:
            update_field(7, 12, 99, "renamed during snapshot")
    message, detail = busy.value.args
    assert message == 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"'
    assert detail.startswith("Blocked by a share lock on all classes for application 7")
    assert_names_holder(detail, snapshot)
    error = busy.value.__cause__
    assert isinstance(error, OperationalError) and error.__cause__.sqlstate == "55P03"
    assert field_name(99) == before
    update_field(7, 12, 99, "renamed after snapshot")  # the snapshot's transaction has ended
    assert field_name(99) == "renamed after snapshot"


def test_import_blocks_field_deletion_but_not_rename():
    with transaction.atomic(using="jobs"), connections["jobs"].cursor() as job:
        job.execute(f"SELECT lockhier.lock_table(7, 12, {IMPORT_CLASSES}, 'share')")
        csv_import = Job(job)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__rename')")
            DatabaseField.objects.filter(id=99).update(name="renamed during import")
        with pytest.raises(OperationalError) as e:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')")
                DatabaseField.objects.filter(id=99).delete()
    assert e.value.__cause__.sqlstate == "55P03"
    assert e.value.__cause__.diag.message_primary.endswith('for "field__deletion"')
    assert_names_holder(e.value.__cause__.diag.message_detail, csv_import)
    assert field_name(99) == "renamed during import"


def test_try_lock_returns_false_and_transaction_stays_usable():
    with transaction.atomic(using="jobs"), connections["jobs"].cursor() as job:
        job.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")
        with transaction.atomic(), connection.cursor() as cursor:
            DatabaseField.objects.filter(id=100).update(name="first")
            cursor.execute("SELECT lockhier.try_lock_field(7, 12, 99, 'field__update')")
            assert cursor.fetchone()[0] is False
            DatabaseField.objects.filter(id=101).update(name="second")
    assert (field_name(100), field_name(101)) == ("first", "second")


def test_bounded_wait_succeeds_when_holder_commits_in_time():
    started = threading.Event()
    seen_waiting = threading.Event()

    def other_editor():  # its own thread, so its own connection
        try:
            with transaction.atomic(using="jobs"), connections["jobs"].cursor() as job:
                job.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")
                started.set()
                # Commits once the request below is seen queued behind this lock (in pg_locks).
                while not seen_waiting.is_set():
                    job.execute("SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)")
                    if job.fetchone()[0]:
                        seen_waiting.set()
                    else:
                        time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_editor)
    thread.start()
    assert started.wait(10)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => %s)", ["30 s"])
        DatabaseField.objects.filter(id=99).update(name="after waiting")
    thread.join()
    assert seen_waiting.is_set()  # it queued, and was granted when the other editor committed
    assert field_name(99) == "after waiting"


def test_session_lock_outlives_the_transaction_in_a_pooled_connection(observer):
    pooled = connections["pooled"]
    backup = "blockers_application(7, 'app_backup')"
    with transaction.atomic(using="pooled"), pooled.cursor() as cursor:
        cursor.execute("SELECT lockhier.session_lock_application(7, 'app_backup')")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    pooled.close()  # end of the request: the connection goes back to the pool
    assert pooled.connection is None and pooled.pool.get_stats()["pool_available"] == 1
    assert blocker_pids(observer, backup) == {pid}
    with pooled.cursor() as cursor:  # the next request gets the same connection
        cursor.execute("SELECT pg_backend_pid(), lockhier.session_unlock_all()")
        assert cursor.fetchone() == (pid, 1)
    pooled.close()
    assert blocker_pids(observer, backup) == set()


def test_row_lock_helper_conflict_names_table_key_and_holder():
    with transaction.atomic(using="jobs"), connections["jobs"].cursor() as job:
        job.execute("SELECT lockhier.lock_rows('database_field', ARRAY[99])")
        editor = Job(job)
        with pytest.raises(OperationalError) as e:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT lockhier.lock_rows('database_field', ARRAY[99])")
        error = e.value.__cause__
        assert error.sqlstate == "55P03"
        assert error.diag.message_primary == "operation in progress: cannot lock database_field rows with id 99 for update"
        assert_names_holder(error.diag.message_detail, editor)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT lockhier.try_lock_rows('database_field', %s)", [[99]])
            assert cursor.fetchone()[0] is False
            cursor.execute("SELECT lockhier.lock_rows('database_field', %s)", [[100, 101]])
            assert cursor.fetchone()[0] == 2
