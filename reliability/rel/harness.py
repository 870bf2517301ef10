"""Shared plumbing: result lines, connections, background calls, pg_locks probes.

Every connection is opened in autocommit mode; transactions are written out as explicit
BEGIN / COMMIT / ROLLBACK statements so that each one is a separate, timed round trip.
Connection parameters (PGHOST, PGPORT, PGUSER, ...) come from the environment through libpq.
"""

import os
import threading
import time
import traceback
from typing import NamedTuple, Optional

import psycopg

DB = os.environ.get("LOCKHIER_REL_DB", "lockhier_rel")
ROLE = os.environ.get("LOCKHIER_REL_ROLE", "lockhier_rel_user")
ADMIN_DB = os.environ.get("LOCKHIER_REL_ADMIN_DB", "postgres")


def now():
    """One monotonic clock for every thread of the process."""
    return time.monotonic()


class Results:
    """Counts checks and prints one line per check."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self._lock = threading.Lock()

    def check(self, name, ok, detail=""):
        ok = bool(ok)
        with self._lock:
            if ok:
                self.passed += 1
            else:
                self.failed += 1
                self.failures.append(name)
            tag = "ok  " if ok else "FAIL"
            print(f"{tag} {name}" + (f" -- {detail}" if detail else ""), flush=True)
        return ok

    def crash(self, name, exc):
        """A check group died of an unexpected exception: that is a failure, never a skip."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
        self.check(f"{name}: finished without an unexpected exception", False,
                   f"{type(exc).__name__}: {exc}\n{tb.rstrip()}")

    @staticmethod
    def note(text):
        for line in str(text).splitlines():
            print(f"     {line}", flush=True)

    @staticmethod
    def section(title):
        print(f"\n== {title}", flush=True)


class Notice(NamedTuple):
    sqlstate: Optional[str]
    severity: Optional[str]
    message_primary: Optional[str]
    message_detail: Optional[str]
    message_hint: Optional[str]


def connect(app, dbname=None, user=None, autocommit=True, **kwargs):
    """A connection to the suite's database; notices are kept in conn.notices."""
    conn = psycopg.connect(dbname=dbname or DB, user=user, application_name=app,
                           autocommit=autocommit, connect_timeout=10, **kwargs)
    conn.notices = []

    def keep(diag):
        # a Diagnostic is only valid during the callback: copy what the checks read
        conn.notices.append(Notice(diag.sqlstate, diag.severity, diag.message_primary,
                                   diag.message_detail, diag.message_hint))

    conn.add_notice_handler(keep)
    return conn


def one(conn, sql, params=None):
    """First column of the first row."""
    return conn.execute(sql, params).fetchone()[0]


def rows(conn, sql, params=None):
    return conn.execute(sql, params).fetchall()


def error_of(conn, sql, params=None):
    """Run sql, return the psycopg.Error it raised, or None (and the rows) if it did not."""
    try:
        cur = conn.execute(sql, params)
        return None, (cur.fetchall() if cur.description else None)
    except psycopg.Error as exc:
        return exc, None


def sqlstate(exc):
    return getattr(exc, "sqlstate", None) if exc is not None else None


def describe_error(exc):
    if exc is None:
        return "no error"
    diag = getattr(exc, "diag", None)
    msg = diag.message_primary if diag is not None and diag.message_primary else str(exc).strip()
    return " ".join(f"{sqlstate(exc)} {msg}".split())


def wait_until(predicate, timeout, interval=0.02):
    """Poll predicate until true or timeout; returns whether it became true."""
    deadline = now() + timeout
    while True:
        if predicate():
            return True
        if now() >= deadline:
            return False
        time.sleep(interval)


class Bg:
    """One SQL statement run on its own connection in a background thread."""

    def __init__(self, conn, sql, params=None):
        self.conn, self.sql, self.params = conn, sql, params
        self.result = None
        self.error = None
        self.t0 = self.t1 = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.t0 = now()
        try:
            cur = self.conn.execute(self.sql, self.params)
            self.result = cur.fetchall() if cur.description else None
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
        self.t1 = now()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    @property
    def done(self):
        return not self.thread.is_alive()


DB_FILTER = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"


def advisory_count(mon, pid=None, granted=None):
    """Advisory locks (held or awaited) in this database, optionally of one backend."""
    sql = f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND {DB_FILTER}"
    params = []
    if pid is not None:
        sql += " AND pid = %s"
        params.append(pid)
    if granted is not None:
        sql += " AND granted = %s"
        params.append(granted)
    return one(mon, sql, params)


def is_waiting(mon, pid):
    """The backend waits for an advisory lock (a not-granted row in pg_locks)."""
    return advisory_count(mon, pid=pid, granted=False) > 0


def backend_alive(mon, pid):
    return one(mon, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]) > 0


def wait_for_server(timeout=90):
    """Wait until the server accepts connections and answers SELECT 1; returns seconds waited
    or None if it never did."""
    start = now()
    while now() - start < timeout:
        try:
            with psycopg.connect(dbname=ADMIN_DB, autocommit=True, connect_timeout=3,
                                 application_name="rel-wait-for-server") as conn:
                if conn.execute("SELECT 1").fetchone()[0] == 1:
                    return now() - start
        except psycopg.Error:
            time.sleep(0.2)
    return None


def wait_for_crash_restart(conn, timeout=120):
    """After a child of the postmaster was killed: wait until the postmaster's crash cycle has
    ended `conn` (a connection made before the kill), then until the server accepts connections
    again. Waiting for the server alone can connect before the postmaster has even noticed the
    death, and that connection is then ended by the cycle."""
    start = now()
    while now() - start < timeout:
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            break
        time.sleep(0.1)
    close_quietly(conn)
    return wait_for_server(max(1, timeout - (now() - start)))


def setup_database():
    """A fresh database with the extension, and no leftover role from an earlier run."""
    with psycopg.connect(dbname=ADMIN_DB, autocommit=True, application_name="rel-setup") as adm:
        adm.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        adm.execute(f'DROP ROLE IF EXISTS "{ROLE}"')
        adm.execute(f'CREATE DATABASE "{DB}"')
    with connect("rel-setup") as conn:
        conn.execute("CREATE EXTENSION lockhier")
        return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'lockhier'").fetchone()[0]


def drop_database():
    with psycopg.connect(dbname=ADMIN_DB, autocommit=True, application_name="rel-teardown") as adm:
        adm.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        adm.execute(f'DROP ROLE IF EXISTS "{ROLE}"')


def close_quietly(*conns):
    for conn in conns:
        try:
            if conn is not None:
                conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass


# --- the server itself: stopping and starting it (lease faults) -------------------------------

def keeper_pid(conn):
    """The lease keeper's process id, or None when it is not running."""
    got = rows(conn, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'")
    return got[0][0] if got else None


class Server:
    """The cluster the suite runs against, seen from this machine: its data directory, its
    pg_ctl (that of `pg_config --bindir`, PG_CONFIG first, checked against the server's major
    version; else the directory of the running postmaster's executable), the OS user that owns
    it (pg_ctl runs as that user, through sudo when the suite runs as root) and the log file its
    postmaster writes to (pg_ctl start needs one, or the server would write into our output)."""

    def __init__(self):
        import pwd
        import shutil
        import subprocess
        with psycopg.connect(dbname=ADMIN_DB, autocommit=True, application_name="rel-server") as c:
            self.data = c.execute("SHOW data_directory").fetchone()[0]
            major = int(c.execute("SHOW server_version_num").fetchone()[0]) // 10000
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            pid = int(f.readline())
        self.owner = pwd.getpwuid(os.stat(self.data).st_uid).pw_name
        candidates = []
        pg_config = os.environ.get("PG_CONFIG") or shutil.which("pg_config")
        if pg_config:
            try:
                bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                        timeout=30).stdout.strip()
                candidates.append(os.path.join(bindir, "pg_ctl"))
            except (OSError, subprocess.SubprocessError):
                pass
        try:
            candidates.append(os.path.join(os.path.dirname(os.readlink(f"/proc/{pid}/exe")), "pg_ctl"))
        except OSError:
            pass
        self.pg_ctl = None
        for path in candidates:
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if out.split()[-1].split(".")[0] == str(major):
                self.pg_ctl = path
                break
        if self.pg_ctl is None:
            raise RuntimeError(f"no pg_ctl of PostgreSQL {major} found among {candidates}")
        try:
            log = os.readlink(f"/proc/{pid}/fd/2")
        except OSError:
            log = ""
        self.log = log if os.path.isfile(log) else os.path.join("/tmp", f"lockhier-rel-server-{major}.log")

    def pg_ctl_run(self, *args, timeout=120):
        """pg_ctl -D <data> args..., as the cluster's OS user; returns (exit status, output)."""
        import subprocess
        env_cmd = ["env", "-u", "RUST_BACKTRACE", "-u", "RUST_LIB_BACKTRACE"]
        cmd = env_cmd + [self.pg_ctl, "-D", self.data, *args]
        if os.geteuid() == 0 and self.owner != "root":
            cmd = ["sudo", "-u", self.owner] + cmd
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        return done.returncode, (done.stdout + done.stderr).strip()

    def restart_fast(self):
        return self.pg_ctl_run("-m", "fast", "-w", "-t", "90", "-l", self.log, "restart")

    def stop_immediate(self):
        return self.pg_ctl_run("-m", "immediate", "-w", "-t", "90", "stop")

    def start(self):
        return self.pg_ctl_run("-w", "-t", "90", "-l", self.log, "start")

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def running(self):
        return self.pg_ctl_run("status")[0] == 0
