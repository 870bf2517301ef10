"""lockhier from psycopg 3 (and psycopg_pool)."""

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import ConnectionPool

from conftest import DB, IMPORT_CLASSES, assert_names_holder, blocker_pids
from recipe_psycopg import FieldBusy, update_field


@pytest.fixture
def conn():
    with psycopg.connect(dbname=DB, application_name="field editor") as conn:
        yield conn


def field_name(conn, field_id):
    with conn.transaction():
        return conn.execute("SELECT name FROM database_field WHERE id = %s", (field_id,)).fetchone()[0]


def test_snapshot_makes_field_update_fail_with_who_is_in_the_way(conn, hold):
    before = field_name(conn, 99)
    snapshot = hold("SELECT lockhier.lock_application(7, mode => 'share')", "snapshot #7")
    with pytest.raises(FieldBusy) as busy:
        update_field(conn, 7, 12, 99, "renamed during snapshot")
    message, detail = busy.value.args
    assert message == 'operation in progress: cannot lock field 99 (table 12, application 7) for "field__update"'
    assert detail.startswith("Blocked by a share lock on all classes for application 7, held by process")
    assert_names_holder(detail, snapshot)
    cause = busy.value.__cause__
    assert isinstance(cause, errors.LockNotAvailable) and cause.sqlstate == "55P03"
    assert "wait =>" in cause.diag.message_hint
    assert field_name(conn, 99) == before  # nothing was changed
    # Once the snapshot has ended, the same call goes through.
    snapshot.release()
    update_field(conn, 7, 12, 99, "renamed after snapshot")
    assert field_name(conn, 99) == "renamed after snapshot"


def test_import_blocks_field_deletion_but_not_rename(conn, hold):
    csv_import = hold(f"SELECT lockhier.lock_table(7, 12, {IMPORT_CLASSES}, 'share')", "import #7/12")
    with conn.transaction():
        conn.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__rename')")
        conn.execute("UPDATE database_field SET name = 'renamed during import' WHERE id = 99")
    with pytest.raises(errors.LockNotAvailable) as e:
        with conn.transaction():
            conn.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')")
            conn.execute("DELETE FROM database_field WHERE id = 99")
    assert e.value.sqlstate == "55P03"
    assert e.value.diag.message_primary.endswith('field 99 (table 12, application 7) for "field__deletion"')
    assert '"field__deletion" for table 12 (application 7)' in e.value.diag.message_detail
    assert_names_holder(e.value.diag.message_detail, csv_import)
    assert field_name(conn, 99) == "renamed during import"


def test_try_lock_returns_false_and_transaction_stays_usable(conn, hold, observer):
    hold("SELECT lockhier.lock_field(7, 12, 99, 'field__update')", "field editor 2")
    with conn.transaction():
        conn.execute("UPDATE database_field SET name = 'first' WHERE id = 100")
        got = conn.execute("SELECT lockhier.try_lock_field(7, 12, 99, 'field__update')").fetchone()[0]
        assert got is False
        assert conn.execute("SELECT count(*) FROM lockhier.held()").fetchone()[0] == 0
        conn.execute("UPDATE database_field SET name = 'second' WHERE id = 101")
    names = observer.execute("SELECT name FROM database_field WHERE id IN (100, 101) ORDER BY id").fetchall()
    assert names == [("first",), ("second",)]


def test_bounded_wait_succeeds_when_holder_commits_in_time(conn, hold):
    editor = hold("SELECT lockhier.lock_field(7, 12, 99, 'field__update')", "field editor 2")
    watcher = editor.release_once_waited_on()
    with conn.transaction():
        conn.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__update', wait => '30 s')")
        held = conn.execute("SELECT held_for, scope, classes, mode FROM lockhier.held()").fetchall()
    watcher.join()
    # It was seen queued, and granted when the editor committed (before its wait ran out).
    assert editor.waiters == [conn.info.parameter_status("application_name")], editor.waiters
    assert held == [("transaction", "field 99 (table 12, application 7)", ["field__update"], "exclusive")]


def test_session_lock_outlives_the_transaction_in_a_pooled_connection(observer):
    backup = "blockers_application(7, 'app_backup')"
    with ConnectionPool(kwargs={"dbname": DB, "application_name": "backup worker"},
                        min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn:  # commits and goes back to the pool at the end
            conn.execute("SELECT lockhier.session_lock_application(7, 'app_backup')")
            pid = conn.info.backend_pid
        assert blocker_pids(observer, backup) == {pid}  # still held, by the pooled backend
        with pool.connection() as conn:
            assert conn.info.backend_pid == pid
            assert conn.execute("SELECT held_for FROM lockhier.held()").fetchall() == [("session",)]
            assert conn.execute("SELECT lockhier.session_unlock_application(7, 'app_backup')").fetchone()[0] is True
        assert blocker_pids(observer, backup) == set()


def test_row_lock_helper_conflict_names_table_key_and_holder(conn, hold):
    editor = hold("SELECT lockhier.lock_rows('database_field', ARRAY[99])", "field editor 2")
    with pytest.raises(errors.LockNotAvailable) as e:
        with conn.transaction():
            conn.execute("SELECT lockhier.lock_rows('database_field', ARRAY[99])")
    assert e.value.diag.message_primary == "operation in progress: cannot lock database_field rows with id 99 for update"
    assert e.value.diag.message_detail.startswith("1 row with id 99 is locked by process")
    assert_names_holder(e.value.diag.message_detail, editor)
    with conn.transaction():
        assert conn.execute("SELECT lockhier.try_lock_rows('database_field', ARRAY[99])").fetchone()[0] is False
        # Other rows are free, and the transaction is still usable.
        assert conn.execute("SELECT lockhier.lock_rows('database_field', ARRAY[100, 101])").fetchone()[0] == 2
