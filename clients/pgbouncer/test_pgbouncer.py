"""lockhier behind PgBouncer in transaction pooling, with psycopg 3.

Each client's transactions land on whichever server connection is free, and several clients
take turns on the same ones. A lease belongs to its owner, not to a connection: it keeps
conflicting requests out whatever connection they come on, and is renewed and released from
any. A session lock belongs to a server connection, which the pooler hands to the next client."""
import threading

import pytest
from psycopg import errors

from conftest import SINGLE, wait_for

IMPORT_LEASE = ("SELECT lockhier.lease_table(7, 12, %s, ARRAY['field__deletion', 'field__type_update'], 'share'),"
                " pg_backend_pid()")


def backend_pid(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def lease_rows(direct):
    return direct.execute("SELECT token, owner, mode FROM lockhier.leases ORDER BY token").fetchall()


def open_on(clients, pid):
    """Open a transaction on each client in turn until one sits on server connection `pid`, and
    return that client, its transaction open; the others' are ended. The pool has two server
    connections: by the second client, one sits on each."""
    opened = []
    for client in clients:
        client.execute("BEGIN")
        opened.append(client)
        if backend_pid(client) == pid:
            for other in opened[:-1]:
                other.execute("COMMIT")
            return client
    pytest.fail(f"no client landed on server connection {pid}")


def test_a_lease_keeps_field_deletions_out_of_a_job_running_on_pooled_connections(bouncer, direct):
    job = bouncer("csv-import #55")
    editors = [bouncer("field editor 1"), bouncer("field editor 2")]
    with job.transaction():
        token, last = job.execute(IMPORT_LEASE, ("csv-import #55",)).fetchone()
    job_pids, editor_pids, details = [], set(), []
    for chunk in range(20):
        field_id = 95 + chunk % 10
        # An editor renames a field, its transaction open on the server connection the job's last
        # transaction ran on...
        renaming = open_on(editors, last)
        editor_pids.add(last)
        renaming.execute("SELECT lockhier.lock_field(7, 12, %s, 'field__rename')", (field_id,))
        renaming.execute("UPDATE database_field SET name = %s WHERE id = %s", (f"renamed during chunk {chunk}", field_id))
        # ...so this chunk of the import, a transaction of its own, runs on the other one.
        with job.transaction():
            last = backend_pid(job)
            job_pids.append(last)
            assert job.execute("SELECT lockhier.lease_valid(%s)", (token,)).fetchone()[0] is True
            job.execute("INSERT INTO imported_row SELECT 12, %s::text || '/' || n FROM generate_series(1, 50) AS n",
                        (chunk,))
            assert job.execute("SELECT lockhier.renew_lease(%s)", (token,)).fetchone()[0] is True
        renaming.execute("COMMIT")  # the rename went through
        # Between two chunks, an editor deletes a field: refused, naming the lease and its owner.
        editor = editors[chunk % 2]
        with pytest.raises(errors.LockNotAvailable) as refused:
            with editor.transaction():
                editor_pids.add(backend_pid(editor))
                editor.execute("SELECT lockhier.lock_field(7, 12, %s, 'field__deletion')", (field_id,))
                editor.execute("DELETE FROM database_field WHERE id = %s", (field_id,))
        assert refused.value.diag.message_primary == (
            f'operation in progress: cannot lock field {field_id} (table 12, application 7) for "field__deletion"')
        details.append(refused.value.diag.message_detail)

    for detail in details:
        assert detail.startswith('Blocked by a share lock on "field__deletion", "field__type_update" for table 12 (application 7),'
                                 f' held by lease {token} of owner "csv-import #55", acquired '), detail
    # The job's chunks ran on the pool's two server connections in turn, and the editors' refused
    # deletions and renames ran on those same two: three clients took turns on two server
    # connections, and the lease kept every deletion out all the same.
    assert len(set(job_pids)) == 2 and all(a != b for a, b in zip(job_pids, job_pids[1:])), job_pids
    assert editor_pids == set(job_pids), (editor_pids, job_pids)
    rows = direct.execute("SELECT count(*), count(*) FILTER (WHERE name LIKE 'renamed during chunk %')"
                          " FROM database_field WHERE table_id = 12").fetchone()
    assert rows == (10, 10)  # no field deleted, every one renamed
    assert direct.execute("SELECT count(*) FROM imported_row").fetchone()[0] == 20 * 50
    assert lease_rows(direct) == [(token, "csv-import #55", "share")]


def test_the_job_releases_its_lease_from_another_server_connection(bouncer, direct):
    job = bouncer("csv-import #55")
    with job.transaction():
        token, taken_on = job.execute(IMPORT_LEASE, ("csv-import #55",)).fetchone()
    # Another client's transaction sits on the server connection the lease was taken on: the job's
    # next transaction runs on the other one.
    sitting = open_on([bouncer("field editor 1"), bouncer("field editor 2")], taken_on)
    with job.transaction():
        released, released_on = job.execute("SELECT lockhier.release_lease(%s), pg_backend_pid()", (token,)).fetchone()
    sitting.execute("COMMIT")
    assert released_on != taken_on
    assert released is True
    assert lease_rows(direct) == []
    # The deletion the lease kept out now goes through, from any client.
    editor = bouncer("field editor")
    with editor.transaction():
        editor.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')")
        editor.execute("DELETE FROM database_field WHERE id = 99")
    assert direct.execute("SELECT count(*) FROM database_field WHERE id = 99").fetchone()[0] == 0


def test_a_crashed_jobs_lease_expires_and_the_waiting_editor_is_granted(bouncer, direct):
    job = bouncer("csv-import #57")
    with job.transaction():
        token, _ = job.execute(IMPORT_LEASE, ("csv-import #57",)).fetchone()
    editor = bouncer("field editor")
    outcome = {}

    def delete_field():
        try:
            with editor.transaction():
                outcome["pid"] = backend_pid(editor)  # the server connection this transaction is on
                editor.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion', wait => '30 s')")
                outcome["granted_at"] = editor.execute("SELECT clock_timestamp()").fetchone()[0]
                editor.execute("DELETE FROM database_field WHERE id = 99")
        except Exception as e:  # reported by the assertions below
            outcome["error"] = e

    thread = threading.Thread(target=delete_field)
    thread.start()
    # The editor queues in the server's lock queue behind the lease.
    wait_for("the editor queued behind the lease", lambda: "pid" in outcome and direct.execute(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted)",
        (outcome["pid"],)).fetchone()[0])
    # The job's last renewal, with a short ttl, and it dies: no release. (Renewing with '2 s' here,
    # rather than taking the lease with it, keeps the test from depending on how soon the editor
    # queued.)
    assert job.execute("SELECT lockhier.renew_lease(%s, '2 s')", (token,)).fetchone()[0] is True
    expires_at = direct.execute("SELECT expires_at FROM lockhier.leases WHERE token = %s", (token,)).fetchone()[0]
    job.close()
    thread.join(60)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["granted_at"] >= expires_at  # granted when the lease expired, not before
    assert lease_rows(direct) == []
    assert direct.execute("SELECT count(*) FROM database_field WHERE id = 99").fetchone()[0] == 0


def test_a_session_lock_taken_through_the_transaction_pooler_does_not_protect(bouncer, direct):
    # The pool of one server connection: every client lands on the same one.
    job = bouncer("csv-import #58", dbname=SINGLE)
    editor = bouncer("field editor", dbname=SINGLE)
    job_pid = job.execute("SELECT pg_backend_pid() FROM lockhier.session_lock_table(7, 12,"
                          " ARRAY['field__deletion', 'field__type_update'], 'share')").fetchone()[0]
    try:
        # The lock is held: a client straight to the server is refused...
        with pytest.raises(errors.LockNotAvailable) as refused:
            with direct.transaction():
                direct.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')")
        assert f"held by process {job_pid} " in refused.value.diag.message_detail
        # ...but it is held by the server connection, and the pooler hands that to the editor:
        # its deletion goes through, in the middle of the job.
        with editor.transaction():
            editor_pid = backend_pid(editor)
            editor.execute("SELECT lockhier.lock_field(7, 12, 99, 'field__deletion')")
            editor.execute("DELETE FROM database_field WHERE id = 99")
        assert editor_pid == job_pid
        assert direct.execute("SELECT count(*) FROM database_field WHERE id = 99").fetchone()[0] == 0
    finally:
        # Lands on the same server connection, the one holding the lock.
        assert job.execute("SELECT lockhier.session_unlock_all()").fetchone()[0] == 1
