"""The faults themselves, shared by the groups that inject them (rel/lease_worst_day.py,
rel/journal_damage.py, rel/nemesis_load.py): stopping a process, filling the shared lock table,
editing the lease journal while the server is down, putting `<data>/lockhier` on a small tmpfs
and filling it.

Every fault here is undone by the same helper that made it (SIGCONT after SIGSTOP, the lock
table's filler frees its locks, a damaged byte is put back, the tmpfs is unmounted with the
journal copied back), so that a group can leave the cluster as it found it.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile

from .harness import close_quietly, connect, error_of, sqlstate, wait_for_server, wait_until
from .lease_faults import flat


def proc_state(pid):
    """The process's state letter from /proc (T: stopped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


# Session advisory locks in a loop until the lock table has no room (53200): what any role can
# do. Locks of a session survive the error that ends the loop, so the table stays full until
# they are given back. Keys already held are taken again without a new entry, so filling again
# after room was made starts from 1.
FILL = "DO $$ BEGIN FOR i IN 1..10000000 LOOP PERFORM pg_advisory_lock(i); END LOOP; END $$"


class Filler:
    """The session that fills the shared lock table (see rel/limits.py for what fits)."""

    def __init__(self):
        self.conn = connect("rel-wd-filler")

    def fill(self):
        """Fill the table; the sqlstate the loop ended with (53200 when it is full)."""
        exc, _ = error_of(self.conn, FILL)
        return sqlstate(exc)

    def free(self):
        self.conn.execute("SELECT pg_advisory_unlock_all()")

    def close(self):
        close_quietly(self.conn)


def table_full(probe):
    """A new lock-table entry is refused with 53200 (a transaction lock on a key of its own,
    given back at once if it was granted)."""
    return sqlstate(error_of(probe, "SELECT pg_try_advisory_xact_lock(-4242424242)")[0]) == "53200"


class Stopped:
    """The keeper stopped with SIGSTOP for the length of a `with`; always continued after."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        wait_until(lambda: proc_state(self.pid) == "T", 5)
        return self

    def __exit__(self, *exc):
        signal_process(self.pid, signal.SIGCONT)   # it may have been killed meanwhile
        return False


class Log:
    """The server's log file from a mark on."""

    def __init__(self, path):
        self.path = path
        self.at = 0
        self.mark()

    def size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def mark(self):
        self.at = self.size()

    def since(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.at)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Damage:
    """One byte of one journal line changed: enough to put it back."""

    def __init__(self, what, number, last, original, damaged):
        self.what, self.number, self.last = what, number, last
        self.original, self.damaged = original, damaged

    def __repr__(self):
        return f"{self.what} (line {self.number}{', the last' if self.last else ''})"


class Journal:
    """`lockhier/leases.journal` of the data directory: lines of `<16 hex digits> <JSON>`. Edited
    only while the server is stopped, in place (same inode, owner and length)."""

    def __init__(self, data):
        self.path = os.path.join(data, "lockhier", "leases.journal")

    def read(self):
        with open(self.path, "rb") as f:
            return f.read()

    def lines(self):
        """(offset, line with its newline) of every line."""
        text, out, start = self.read(), [], 0
        while start < len(text):
            end = text.find(b"\n", start)
            end = len(text) if end < 0 else end + 1
            out.append((start, text[start:end]))
            start = end
        return out

    @staticmethod
    def record(line):
        _, _, body = line.rstrip(b"\n").partition(b" ")
        try:
            record = json.loads(body)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def damage(self, op, token, where):
        """Change one byte of the last line that is a record `op` naming `token`: its checksum's
        first hex digit (`where` = "checksum"), or a letter of its JSON's owner ("owner"), which
        leaves the JSON whole. Returns the Damage, or None if no line is that record."""
        lines = self.lines()
        found = None
        for number, (offset, line) in enumerate(lines, 1):
            record = self.record(line)
            if record is not None and record.get("op") == op and record.get("token") == token:
                found = (number, offset, line)
        if found is None:
            return None
        number, offset, line = found
        if where == "checksum":
            at = 0
            new = b"1" if line[:1] == b"0" else b"0"
        else:
            key = b'"owner":"'
            at = line.index(key) + len(key)
            new = bytes([line[at] ^ 0x20])  # the first letter of the owner, its case changed
        damaged = line[:at] + new + line[at + 1:]
        with open(self.path, "r+b") as f:
            f.seek(offset + at)
            f.write(new)
        return Damage(f"the {op} record of lease {token}", number, number == len(lines), line, damaged)

    def restore(self, damage):
        """Put a damaged line back as it was; False if it is no longer in the file (the keeper cut
        it off as a torn last line, or compacted the journal)."""
        for offset, line in self.lines():
            if line == damage.damaged:
                with open(self.path, "r+b") as f:
                    f.seek(offset)
                    f.write(damage.original)
                return True
        return False


def restart(server, log, edit=None):
    """Stop the server (fast), call edit() while it is down, start it again and wait until it
    accepts connections; the log is marked at the start. Returns (ok, what edit returned,
    details)."""
    rc1, out1 = server.pg_ctl_run("-m", "fast", "-w", "-t", "90", "stop")
    edited = None
    try:
        if edit is not None:
            edited = edit()
    finally:
        log.mark()
        rc2, out2 = server.start()
        back = wait_for_server(120)
    # No wait for the keeper here: a lease call made before it has started waits for it (the
    # window once failed with 55000; keeper_asks (c) tests the wait).
    ok = rc1 == 0 and rc2 == 0 and back is not None
    return ok, edited, "" if ok else f"stop exit {rc1}: {flat(out1)}; start exit {rc2}: {flat(out2)}"


def fill(path):
    """Append zeros to path until the file system says ENOSPC (no block left); returns the bytes
    written. Called again after anything that may have given blocks back."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunk = b"\0" * 65536
    total = 0
    try:
        while True:
            try:
                total += os.write(fd, chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    return total
                raise
    finally:
        os.close(fd)


def mounted_on(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def copy_files(src, dst, owner, skip=()):
    for name in os.listdir(src):
        if name in skip or not os.path.isfile(os.path.join(src, name)):
            continue
        shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
        os.chown(os.path.join(dst, name), owner.st_uid, owner.st_gid)


class JournalTmpfs:
    """`<data>/lockhier` on a tmpfs of its own, made and unmade while the server is stopped (the
    keeper keeps its journal open): the journal is copied onto it and back. Root only."""

    def __init__(self, server, log, extra_k=4096):
        self.server, self.log, self.extra_k = server, log, extra_k
        self.jdir = os.path.join(server.data, "lockhier")
        self.journal = Journal(server.data)
        self.owner = os.stat(server.data)
        self.fill_path = os.path.join(self.jdir, "fill")
        self.mounted = False
        self.size_k = 0

    def on(self, edit=None):
        """Restart the server with the journal on the tmpfs (edit() too while it is down).
        Returns (ok, details)."""
        saved = tempfile.mkdtemp(prefix="lockhier-rel-journal-", dir="/var/tmp")

        def onto():
            copy_files(self.jdir, saved, self.owner)
            # Room for the journal, for what the keeper keeps ahead of it, and for what follows.
            size_k = 2 * os.path.getsize(self.journal.path) // 1024 + self.extra_k
            done = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                   f"size={size_k}k,mode=0700,uid={self.owner.st_uid},gid={self.owner.st_gid}",
                                   "lockhier-rel-journal", self.jdir], capture_output=True, text=True)
            if done.returncode != 0:
                return f"mount -t tmpfs failed: {flat(done.stdout + done.stderr)}"
            self.mounted, self.size_k = True, size_k
            copy_files(saved, self.jdir, self.owner)
            if edit is not None:
                edit()
            return None

        try:
            ok, why, details = restart(self.server, self.log, onto)
        finally:
            shutil.rmtree(saved, ignore_errors=True)
        return ok and why is None, f"{why or ''} {details}".strip()

    def fill(self):
        """Fill the tmpfs to ENOSPC; the bytes written."""
        return fill(self.fill_path)

    def free(self):
        if os.path.exists(self.fill_path):
            os.remove(self.fill_path)

    def off(self, edit=None):
        """Restart the server with the journal back in the data directory (edit() too while it is
        down). Returns (ok, details)."""
        back = tempfile.mkdtemp(prefix="lockhier-rel-journal-", dir="/var/tmp")

        def off_tmpfs():
            self.free()
            if self.mounted:
                copy_files(self.jdir, back, self.owner)
                done = subprocess.run(["umount", self.jdir], capture_output=True, text=True)
                if done.returncode != 0:
                    done = subprocess.run(["umount", "-l", self.jdir], capture_output=True, text=True)
                if done.returncode != 0:
                    return f"umount failed: {flat(done.stdout + done.stderr)}"
                self.mounted = False
                for name in os.listdir(self.jdir):
                    if name not in os.listdir(back):
                        os.remove(os.path.join(self.jdir, name))
                copy_files(back, self.jdir, self.owner)
            if edit is not None:
                edit()
            return None

        try:
            ok, why, details = restart(self.server, self.log, off_tmpfs)
        finally:
            shutil.rmtree(back, ignore_errors=True)
        return ok and why is None, f"{why or ''} {details}".strip()


def signal_process(pid, sig):
    """Send sig to pid; False if there is no such process (it exited meanwhile)."""
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, TypeError):
        return False
