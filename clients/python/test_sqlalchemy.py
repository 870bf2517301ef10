"""lockhier from SQLAlchemy 2 (text() calls on the psycopg 3 dialect, QueuePool)."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from conftest import DB, IMPORT_CLASSES, assert_names_holder, blocker_pids, release_once_waited_on
from recipe_sqlalchemy import FieldBusy, update_field

FIELD_UPDATE = text("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")


def make_engine(application_name, **pool):
    # No host: libpq takes PGHOST/PGPORT/PGUSER from the environment.
    return create_engine(f"postgresql+psycopg:///{DB}", connect_args={"application_name": application_name}, **pool)


@pytest.fixture(scope="module")
def engine():
    engine = make_engine("field editor")
    yield engine
    engine.dispose()


@pytest.fixture
def snapshot_job():
    """Another process: its own engine, holding a lock in an open transaction until released."""
    engine = make_engine("snapshot #7")
    conn = engine.connect()
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    class Job:
        application_name = "snapshot #7"

        def __init__(self):
            self.pid = pid

        def take(self, sql):
            conn.execute(text(sql))  # autobegins; held until commit
            return self

        def release(self):
            conn.commit()

    yield Job()
    conn.close()
    engine.dispose()


def field_name(engine, field_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT name FROM database_field WHERE id = :id"), {"id": field_id}).scalar()


def test_snapshot_makes_field_update_fail_with_who_is_in_the_way(engine, snapshot_job):
    before = field_name(engine, 99)
    snapshot_job.take("SELECT lockhier.lock_application(7, mode => 'share')")
    with pytest.raises(FieldBusy) as busy:
        update_field(engine, 7, 12, 99, "renamed during snapshot")
    message, detail = busy.value.args
    assert message == 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"'
    assert detail.startswith("Blocked by a share lock on all classes for application 7")
    assert_names_holder(detail, snapshot_job)
    error = busy.value.__cause__
    assert isinstance(error, OperationalError) and error.orig.sqlstate == "55P03"
    assert field_name(engine, 99) == before
    snapshot_job.release()
    update_field(engine, 7, 12, 99, "renamed after snapshot")
    assert field_name(engine, 99) == "renamed after snapshot"


def test_import_blocks_field_deletion_but_not_rename(engine, snapshot_job):
    csv_import = snapshot_job.take(f"SELECT lockhier.lock_table(7, 12, {IMPORT_CLASSES}, 'share')")
    with engine.begin() as conn:
        conn.execute(text("SELECT lockhier.lock_field(7, 12, 99, 'field__rename')"))
        conn.execute(text("UPDATE database_field SET name = 'renamed during import' WHERE id = 99"))
    with pytest.raises(OperationalError) as e:
        with engine.begin() as conn:
            conn.execute(text("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')"))
            conn.execute(text("DELETE FROM database_field WHERE id = 99"))
    assert e.value.orig.sqlstate == "55P03"
    assert e.value.orig.diag.message_primary.endswith('for "field__deletion"')
    assert_names_holder(e.value.orig.diag.message_detail, csv_import)
    assert field_name(engine, 99) == "renamed during import"


def test_try_lock_returns_false_and_transaction_stays_usable(engine, snapshot_job):
    snapshot_job.take("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")
    with engine.begin() as conn:
        conn.execute(text("UPDATE database_field SET name = 'first' WHERE id = 100"))
        assert conn.execute(text("SELECT lockhier.try_lock_field(7, 12, 99, 'field__update')")).scalar() is False
        conn.execute(text("UPDATE database_field SET name = 'second' WHERE id = 101"))
    assert (field_name(engine, 100), field_name(engine, 101)) == ("first", "second")


def test_bounded_wait_succeeds_when_holder_commits_in_time(engine, snapshot_job):
    snapshot_job.take("SELECT lockhier.lock_field(7, 12, 99, 'field__update')")
    waiters = []
    watcher = release_once_waited_on(DB, snapshot_job.release, waiters)
    with engine.begin() as conn:
        conn.execute(text("SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => :wait)"), {"wait": "30 s"})
        assert conn.execute(text("SELECT count(*) FROM lockhier.held()")).scalar() == 1
    watcher.join()
    # It was seen queued, and granted when the snapshot committed (before its wait ran out).
    assert waiters == ["field editor"], waiters


def test_session_lock_outlives_the_transaction_in_a_pooled_connection(observer):
    pooled = make_engine("backup worker", pool_size=1, max_overflow=0)
    backup = "blockers_application(7, 'app_backup')"
    try:
        with pooled.begin() as conn:  # commit, then the connection goes back to the pool
            conn.execute(text("SELECT lockhier.session_lock_application(7, 'app_backup')"))
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert pooled.pool.checkedin() == 1
        assert blocker_pids(observer, backup) == {pid}  # the pool's reset (a rollback) kept it
        with pooled.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid
            assert conn.execute(text("SELECT lockhier.session_unlock_all()")).scalar() == 1
            conn.commit()
        assert blocker_pids(observer, backup) == set()
    finally:
        pooled.dispose()


def test_row_lock_helper_conflict_names_table_key_and_holder(engine, snapshot_job):
    editor = snapshot_job.take("SELECT lockhier.lock_rows('database_field', ARRAY[99])")
    with pytest.raises(OperationalError) as e:
        with engine.begin() as conn:
            conn.execute(text("SELECT lockhier.lock_rows('database_field', ARRAY[99])"))
    assert e.value.orig.sqlstate == "55P03"
    assert e.value.orig.diag.message_primary == \
        "operation in progress: cannot lock database_field rows with id 99 for update"
    assert_names_holder(e.value.orig.diag.message_detail, editor)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT lockhier.try_lock_rows('database_field', :ids)"), {"ids": [99]}).scalar() is False
        assert conn.execute(text("SELECT lockhier.lock_rows('database_field', :ids)"), {"ids": [100, 101]}).scalar() == 2
