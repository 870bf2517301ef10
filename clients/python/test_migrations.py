"""Schema migrations that must not run beside live field edits: a Django migration and a plain
SQL file run by psql, each starting with lockhier.lock_application(7, wait => '30 s')."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import psycopg
import pytest

HERE = pathlib.Path(__file__).resolve().parent
DJANGO_PROJECT = HERE / "django_project"
SQL_MIGRATION = HERE.parent / "sql" / "0002_field_description.sql"
DJANGO_DB = "lockhier_clients_django_migrate"
SQL_DB = "lockhier_clients_sql_migrate"
FIELD_EDIT = "SELECT lockhier.lock_field(7, 12, 99, 'field__update')"


def waited_seconds(detail_line):
    """How long a conflict DETAIL says the request waited: '... Waited 1.2 s.' -> 1.2."""
    match = re.search(r"Waited (\d+(?:\.\d+)?) s\.$", detail_line)
    return float(match.group(1)) if match else -1.0


def columns(dbname):
    with psycopg.connect(dbname=dbname, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'database_field'")}


def with_short_wait(source: pathlib.Path, target: pathlib.Path):
    """The same migration with wait => '1 s' instead of '30 s', to outlast it in a test."""
    text = source.read_text()
    assert text.count("wait => '30 s'") == 1
    target.write_text(text.replace("wait => '30 s'", "wait => '1 s'"))


# ---------------------------------------------------------------- Django


def manage(project, *args):
    env = dict(os.environ, LOCKHIER_DJANGO_DB=DJANGO_DB, DJANGO_SETTINGS_MODULE="builderproject.settings",
               LOCKHIER_DJANGO_APPLICATION_NAME="django migrate")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - start


@pytest.fixture
def django_at_0001():
    done, _ = manage(DJANGO_PROJECT, "migrate", "builder", "0001", "--no-input")
    assert done.returncode == 0, done.stderr
    assert "description" not in columns(DJANGO_DB)


def applied(name):
    with psycopg.connect(dbname=DJANGO_DB, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM django_migrations WHERE app = 'builder' AND name = %s",
                            (name,)).fetchone()[0] == 1


def test_django_migration_waits_for_a_field_edit_then_completes(django_at_0001, hold):
    editor = hold(FIELD_EDIT, "field editor", dbname=DJANGO_DB)
    watcher = editor.release_once_waited_on(at_least=1.0)
    done, took = manage(DJANGO_PROJECT, "migrate", "builder", "--no-input")
    watcher.join()
    assert done.returncode == 0, done.stderr
    assert "Applying builder.0002_field_description... OK" in done.stdout
    assert editor.waiters == ["django migrate"]  # it waited for the field edit to end
    assert took > 1, took
    assert "description" in columns(DJANGO_DB) and applied("0002_field_description")


def test_django_migration_fails_clearly_when_the_holder_outlasts_its_wait(django_at_0001, hold, tmp_path):
    project = tmp_path / "django_project"
    shutil.copytree(DJANGO_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    migration = project / "builder" / "migrations" / "0002_field_description.py"
    with_short_wait(migration, migration)
    editor = hold(FIELD_EDIT, "field editor", dbname=DJANGO_DB)  # and it does not commit
    done, took = manage(project, "migrate", "builder", "--no-input")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-3:]
    assert last[0] == "django.db.utils.OperationalError: operation in progress: cannot lock application 7 for all classes", done.stderr
    assert last[1].startswith(f'DETAIL:  Blocked by an exclusive lock within application 7, held by process {editor.pid} '
                              '(application_name "field editor") in a transaction running for '), last
    assert waited_seconds(last[1]) >= 1.0, last
    assert took >= 1
    assert "description" not in columns(DJANGO_DB) and not applied("0002_field_description")


# ---------------------------------------------------------------- psql


def psql_migrate(migration):
    start = time.monotonic()
    done = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-f", migration.name], cwd=migration.parent,
                          env=dict(os.environ, PGDATABASE=SQL_DB, PGAPPNAME="psql migrate"),
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - start


@pytest.fixture
def sql_before_0002():
    with psycopg.connect(dbname=SQL_DB, autocommit=True) as conn:
        conn.execute("ALTER TABLE database_field DROP COLUMN IF EXISTS description")


def test_psql_migration_waits_for_a_field_edit_then_completes(sql_before_0002, hold):
    editor = hold(FIELD_EDIT, "field editor", dbname=SQL_DB)
    watcher = editor.release_once_waited_on(at_least=1.0)
    done, took = psql_migrate(SQL_MIGRATION)
    watcher.join()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "COMMIT"
    assert editor.waiters == ["psql migrate"]  # it waited for the field edit to end
    assert took > 1, took
    assert "description" in columns(SQL_DB)


def test_psql_migration_stops_with_exit_code_3_applying_nothing(sql_before_0002, hold, tmp_path):
    migration = tmp_path / SQL_MIGRATION.name
    with_short_wait(SQL_MIGRATION, migration)
    editor = hold(FIELD_EDIT, "field editor", dbname=SQL_DB)
    done, took = psql_migrate(migration)
    assert done.returncode == 3, (done.returncode, done.stderr)
    errors = done.stderr.splitlines()
    assert errors[0] == (f"psql:{migration.name}:7: ERROR:  operation in progress: "
                         "cannot lock application 7 for all classes"), errors
    assert errors[1].startswith(f'DETAIL:  Blocked by an exclusive lock within application 7, held by process {editor.pid} '
                                '(application_name "field editor") in a transaction running for '), errors
    assert waited_seconds(errors[1]) >= 1.0, errors
    assert errors[2].startswith("HINT:  Retry when the operation in progress has finished"), errors
    assert "ALTER TABLE" not in done.stdout and "COMMIT" not in done.stdout
    assert took >= 1
    assert "description" not in columns(SQL_DB)
