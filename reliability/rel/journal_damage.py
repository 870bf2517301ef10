"""The lease journal damaged, and its file system full (issue 17, items 5, 6 and 7).

(1) A damaged release record: lease A is taken and released, then B, which conflicts with A, is
    granted; with the server stopped, one byte of A's release line is changed (its checksum
    fails). After the start, B is held and A is not: the journal itself proves A was released,
    since the keeper never grants a lease that conflicts with one it holds (before 0.3.0: A was
    held again and B dropped).
(2) A damaged grant record: lease C is taken; with the server stopped, one byte of C's grant
    line (and of no other) is changed. After the start, the next lease's token is above C's and
    `lease_valid(C)` is false (before 0.3.0: C's token was handed out again, and `lease_valid`
    said true for the old holder).
(3) A full disk: `<data>/lockhier` on a small tmpfs, filled to ENOSPC. The journal still takes
    records into the blocks its file already has (zeros the keeper keeps ahead of its records,
    the rest of its last block): bulky leases (about 4.7 kB of record each) use up the first,
    releases one at a time the second, until a record is refused. Then new leases and renewals
    fail with 58030; a release is made all the same (logged), and a lease's ttl still ends it at
    its time (before 0.3.0: the release failed, and the lease stayed held past its expiry). A
    restart with the disk still full brings the keeper back with its leases. Once there is room
    again, leases are granted again.

The server is stopped (fast) and started around each change of the journal, as the lease faults
do (`harness.Server`, as root or as the server's OS user; (3) needs root, for mount). Steps are
ordered by what lockhier.leases, pg_locks, the journal file and the server log show, never by
sleeping; the only wait on the clock is for the 3 s ttl, followed by a look at the server's
clock. The journal is left as it was found: every damaged byte is put back (or its line was cut
off by the keeper as a torn last line), the journal is back on the data directory's file system,
and every lease taken here is released, with its record written.
"""

import os

from .harness import (Server, advisory_count, close_quietly, connect, describe_error, error_of, keeper_pid,
                      now, one, rows, sqlstate, wait_for_server, wait_until)
from .lease_faults import Lease, expiry_of, flat, keeper_locks, lease_view, release_all, server_clock
from .nemeses import Journal, JournalTmpfs, Log, fill, mounted_on, restart

# The keeper's log lines these checks read (src/engine/keeper.rs).
SKIPPED = "lockhier lease journal: damaged record skipped"
RELEASE_NOT_JOURNALED = "cannot journal a lease release"
EXPIRY_NOT_JOURNALED = "cannot journal the expiry of a lease"
JOURNAL_ERROR = "could not write lockhier's lease journal"


def superseded_line(token, by):
    return (f"lease {token} was released before lease {by} was granted (its release record is missing); "
            "it is not held again")


# --- the server log and the journal file ---------------------------------------------------

def refused_naming(conn, sql, lease):
    """sql (a conflicting lock_*) in a transaction: refused with 55P03 naming lease's token and
    owner in the DETAIL?"""
    conn.execute("BEGIN")
    exc, _ = error_of(conn, sql)
    conn.execute("ROLLBACK")
    detail = (exc.diag.message_detail or "") if exc is not None else ""
    ok = sqlstate(exc) == "55P03" and f'held by lease {lease.token} of owner "{lease.owner}"' in detail
    return ok, f"{describe_error(exc)} DETAIL {detail!r}"


# --- (1) a damaged release record; (2) a damaged grant record -------------------------------

def damaged_records(res, server, log):
    journal = Journal(server.data)
    a = Lease((48, 1, 5), "import", "exclusive", "2 min", "journal (1) A")
    b = Lease((48, 1), "import", "exclusive", "2 min", "journal (1) B")
    c = Lease((49,), "migration", "exclusive", "2 min", "journal (2) C")
    d = Lease((50,), "migration", "exclusive", "2 min", "journal (2) D")
    everything = [a, b, c, d]
    damages = []
    conn = connect("rel-jd-setup")
    try:
        # --- (1)
        a.token = a.take(conn)
        b_while_a = b.take(conn, fn="try_lease_")  # NULL: they conflict
        released_a = one(conn, "SELECT lockhier.release_lease(%s)", [a.token])
        b.token = b.take(conn)
        seen = one(conn, "SELECT coalesce(max(token), 0) FROM lockhier.leases")
        res.check("journal (1): lease A (field 48/1/5, exclusive) taken; B (table 48/1, exclusive, "
                  "another owner) refused while A is held; A released; B then granted",
                  a.token is not None and b_while_a is None and released_a is True and b.token is not None
                  and b.token > a.token and [r[0] for r in lease_view(conn, [a, b])] == [b.token],
                  f"A {a.token}, B while A held {b_while_a}, release of A {released_a}, B {b.token}")
        close_quietly(conn)

        def damage_release_of_a():
            damage = journal.damage("release", a.token, "checksum")
            if damage is not None:
                damages.append(damage)
            return damage

        ok, damage, why = restart(server, log, damage_release_of_a)
        conn = connect("rel-jd-1")
        # The first lockhier call after the start: a lease function, which waits for the restore.
        valid_a = one(conn, "SELECT lockhier.lease_valid(%s)", [a.token])
        valid_b = one(conn, "SELECT lockhier.lease_valid(%s)", [b.token])
        listed = [r[0] for r in lease_view(conn, [a, b])]
        kpid = keeper_pid(conn)
        holds_b = kpid is not None and set(rows(conn, b.plan())) <= keeper_locks(conn, kpid)
        refused, refusal = refused_naming(conn, b.conflicting_lock(), b)
        a_again = a.take(conn, fn="try_lease_")
        res.check("journal (1): stopped, one byte of A's release record changed (its checksum fails), "
                  "started: lockhier.leases lists B and not A, the keeper holds B's plan, a conflicting "
                  "lock_table is refused naming lease B, A's owner asking again is refused; "
                  "lease_valid(A) false, lease_valid(B) true",
                  ok and damage is not None and not damage.last and listed == [b.token] and holds_b
                  and refused and a_again is None and valid_a is False and valid_b is True,
                  f"{damage}; {why}listed {listed} (A {a.token}, B {b.token}); keeper {kpid} holds B's "
                  f"plan: {holds_b}; conflicting lock_table: {refusal}; A again: {a_again}; "
                  f"lease_valid A {valid_a}, B {valid_b}")
        text = log.since()
        wanted = superseded_line(a.token, b.token)
        skipped = damage is not None and f"{SKIPPED} (line {damage.number}: checksum mismatch)" in text
        res.check("journal (1): the server log says the damaged line was skipped, and: "
                  f"\"{superseded_line('A', 'B')}\"",
                  skipped and wanted in text,
                  f"skipped line logged: {skipped}; supersession logged: {wanted in text}; log: "
                  + flat("\n".join(line for line in text.splitlines() if "lockhier" in line), 600))
        released_b = one(conn, "SELECT lockhier.release_lease(%s)", [b.token])

        # --- (2)
        c.token = c.take(conn)
        seen = max(seen, one(conn, "SELECT coalesce(max(token), 0) FROM lockhier.leases"), c.token)
        res.check("journal (2): B released; lease C taken", released_b is True and c.token is not None
                  and [r[0] for r in lease_view(conn, [c])] == [c.token], f"release of B {released_b}, C {c.token}")
        close_quietly(conn)

        def restore_a_and_damage_grant_of_c():
            for damage in list(damages):
                journal.restore(damage)
                damages.remove(damage)
            damage = journal.damage("grant", c.token, "owner")
            if damage is not None:
                damages.append(damage)
            return damage

        ok, damage, why = restart(server, log, restore_a_and_damage_grant_of_c)
        conn = connect("rel-jd-2")
        valid_c = one(conn, "SELECT lockhier.lease_valid(%s)", [c.token])
        listed_c = [r[0] for r in lease_view(conn, [c])]
        d.token = d.take(conn)
        valid_c_after = one(conn, "SELECT lockhier.lease_valid(%s)", [c.token])
        released_c = one(conn, "SELECT lockhier.release_lease(%s)", [c.token])
        listed_d = [r[0] for r in lease_view(conn, [d])]
        valid_d = one(conn, "SELECT lockhier.lease_valid(%s)", [d.token])
        res.check("journal (2): stopped, one byte of C's grant record (only it) changed, started: "
                  "C is not held; the next lease D gets a token above C's and above every token "
                  "before; lease_valid(C) is false; release_lease(C) returns false and D stays "
                  "held; lease_valid(D) true",
                  ok and damage is not None and listed_c == [] and d.token is not None and d.token > c.token
                  and d.token > seen and valid_c is False and valid_c_after is False and released_c is False
                  and listed_d == [d.token] and valid_d is True,
                  f"{damage}; {why}C {c.token} listed {listed_c}; D {d.token} (largest before: {seen}); "
                  f"lease_valid(C) {valid_c}, after D {valid_c_after}; release_lease(C) {released_c}; "
                  f"D listed {listed_d}, lease_valid(D) {valid_d}")
        one(conn, "SELECT lockhier.release_lease(%s)", [d.token])
        close_quietly(conn)
    finally:
        close_quietly(conn)
        # Put back every byte changed (a grant put back holds its lease again until released,
        # below), so that later starts read a journal without damage.
        restored = []
        present = journal.read()
        if any(damage.damaged in present for damage in damages):
            ok, _, why = restart(server, log,
                                 lambda: [restored.append((damage, journal.restore(damage))) for damage in damages])
        else:  # every damaged line was cut off by the keeper: nothing to put back
            ok, why = True, ""
            log.mark()
        conn = connect("rel-jd-cleanup")
        try:
            one(conn, "SELECT lockhier.lease_valid(0)")  # waits for the restore
            text = log.since()
            back = release_all(conn, everything)
            left = lease_view(conn, everything)
            locks = advisory_count(conn)
            res.check("journal (1), (2): the damaged bytes put back (a line the keeper cut off as a "
                      "torn last line is gone) and the server restarted if any was: no damaged line or "
                      "supersession logged; the leases of (1) and (2) released; nothing left in "
                      "lockhier.leases or pg_locks",
                      ok and SKIPPED not in text and "was released before lease" not in text
                      and left == [] and locks == 0,
                      f"{why}put back: {restored}; released after the restart: {back}; left {left}, "
                      f"{locks} advisory locks; log: "
                      + flat("\n".join(line for line in text.splitlines() if "lockhier" in line), 400))
        finally:
            close_quietly(conn)


# --- (3) the journal's file system full ------------------------------------------------------

def is_listed(conn, lease):
    return rows(conn, "SELECT token FROM lockhier.leases WHERE token = %s", [lease.token]) != []


def locks_left(conn, lease, leases):
    """The locks of lease's plan the keeper still holds, but for those another lease of leases
    still listed needs too (leases on one application share its intention locks)."""
    kpid = keeper_pid(conn)
    if kpid is None:
        return {"no keeper"}
    held = keeper_locks(conn, kpid)
    tokens = {r[0] for r in rows(conn, "SELECT token FROM lockhier.leases")}
    needed = set()
    for other in leases:
        if other is not lease and other.token in tokens:
            needed |= set(rows(conn, other.plan()))
    return (set(rows(conn, lease.plan())) & held) - needed


def records_of(journal):
    """The journal's records: its text up to the first zero byte (the keeper may keep the file
    zero-filled ahead of its records)."""
    text = journal.read()
    end = text.find(b"\0")
    return text if end < 0 else text[:end]


def room(journal):
    """Bytes the journal can still take without a new block from its file system: the blocks
    its file has, past its records (zeros kept ahead, and the rest of its last block)."""
    return os.stat(journal.path).st_blocks * 512 - len(records_of(journal))


def journaled_release(journal, lease):
    return b'{"op":"release","token":%d}' % lease.token in records_of(journal)


# The largest record a lease call writes: an owner of 1,024 bytes and 64 classes of 63 bytes
# (about 5.5 kB): what uses up the room a journal keeps ahead of its records quickly.
BULKY_OWNER = ("journal (3) bulky " + "x" * 1024)[:1024]
BULKY_CLASSES = [f"c{i}".ljust(63, "x") for i in range(1, 65)]
SHORT_WHEN_ROOM_BELOW = 12 * 1024


def full_disk(res, server, log):
    if os.geteuid() != 0:
        res.check("journal (3): full disk -- not exercised: mounting a tmpfs needs root", True)
        return
    jdir = os.path.join(server.data, "lockhier")
    journal = Journal(server.data)
    tmpfs = JournalTmpfs(server, log)
    # More release records than the last block of the journal can hold (4 kB; about 60 bytes each).
    fillers = [Lease((47, i), "snapshot", "share", "2 min", "journal (3) filler") for i in range(1, 161)]
    renewed = Lease((47, 900), "snapshot", "exclusive", "2 min", "journal (3) renewed")
    released = Lease((47, 901), "snapshot", "exclusive", "2 min", "journal (3) released")
    short = Lease((47, 902), "snapshot", "exclusive", "3 s", "journal (3) ttl 3 s")
    refused = Lease((47, 903), "snapshot", "exclusive", "2 min", "journal (3) refused")
    after = Lease((47, 904), "snapshot", "exclusive", "2 min", "journal (3) after")
    bulky = Lease((47, 905), BULKY_CLASSES, "exclusive", "2 min", BULKY_OWNER)
    everything = fillers + [renewed, released, short, refused, after, bulky]
    fill_path = tmpfs.fill_path
    conn = mon = None

    def take_short():
        short.token = short.take(conn)
        return expiry_of(mon, short)

    def try_take(lease):
        """(error, token) of lease's lease_* call."""
        exc, got = error_of(conn, f"SELECT lockhier.lease_{lease.level}({lease.ids()}%s, {lease.cls()}, %s, "
                                  "%s::interval)", [lease.owner, lease.mode, lease.ttl])
        return exc, (got[0][0] if got else None)

    try:
        # Room for the journal, for what the keeper keeps ahead of it, and for the leases below.
        ok, details = tmpfs.on()
        if not ok:
            res.check("journal (3): <data>/lockhier on a tmpfs (mount -t tmpfs), the server restarted on it",
                      False, details)
            return
        conn = connect("rel-jd-disk")
        mon = connect("rel-jd-disk-monitor")
        one(conn, "SELECT lockhier.lease_valid(0)")  # waits for the restore
        for lease in fillers + [renewed, released]:
            lease.token = lease.take(conn)
        ahead = room(journal)
        e_short = None
        # Without room kept ahead, the 3 s lease is taken before the disk is full; with it, once
        # the bulky leases below have used most of that room, so that its ttl runs out after.
        if ahead < SHORT_WHEN_ROOM_BELOW:
            e_short = take_short()
        e_renewed = expiry_of(mon, renewed)
        res.check(f"journal (3): <data>/lockhier on a tmpfs of {tmpfs.size_k} kB, the server restarted "
                  f"on it: {len(fillers)} filler leases, one to renew and one to release taken",
                  mounted_on(jdir) and all(lease.token for lease in fillers + [renewed, released]),
                  f"tokens up to {renewed.token}; the journal keeps {ahead} bytes of room ahead of its records")

        # Fill the file system. The journal still takes records into the blocks it has: use up
        # the room it keeps ahead with bulky leases (taken and released), then the rest of its
        # last block with releases, one at a time, until one is not in the journal.
        log.mark()
        filled = fill(fill_path)
        pairs, bulky_error, t0 = 0, None, now()
        while pairs < 2000:
            if e_short is None and room(journal) < SHORT_WHEN_ROOM_BELOW:
                e_short = take_short()
            bulky_error, token = try_take(bulky)
            if bulky_error is not None:
                break
            bulky.token = token
            one(conn, "SELECT lockhier.release_lease(%s)", [token])
            pairs += 1
        if e_short is None:  # the room ran out before it came below the mark
            e_short = take_short()
        filled += fill(fill_path)  # blocks a failed write gave back (the keeper cuts the file back)
        journaled, first_unjournaled, bad = 0, None, []
        for lease in fillers:
            exc, got = error_of(conn, "SELECT lockhier.release_lease(%s)", [lease.token])
            if exc is not None or got != [(True,)]:
                bad.append(f"{lease.token}: {describe_error(exc) if exc else got}")
            if not journaled_release(journal, lease):
                first_unjournaled = lease
                break
            journaled += 1
        filled += fill(fill_path)
        free = os.statvfs(jdir).f_bavail
        full_at = server_clock(mon)
        text = log.since()
        gone = first_unjournaled is not None and not is_listed(mon, first_unjournaled)
        free_scope = first_unjournaled is not None and one(conn, first_unjournaled.try_conflicting_lock()) is True
        res.check("journal (3): the tmpfs filled until ENOSPC; the journal still took records into the "
                  "blocks it had (bulky leases into the room kept ahead, until one failed with 58030; "
                  "releases into its last block); then a release that could not be journaled still "
                  "returns true, the lease is gone (lockhier.leases, its scope free), and the server "
                  "log says it could not be journaled",
                  free == 0 and first_unjournaled is not None and not bad and gone and free_scope
                  and sqlstate(bulky_error) == "58030" and RELEASE_NOT_JOURNALED in text,
                  f"{filled} bytes written, {free} blocks free; {pairs} bulky leases taken and released "
                  f"({ahead} bytes kept ahead) in {now() - t0:.2f} s, then {describe_error(bulky_error)}; "
                  f"{journaled} releases still journaled; then {first_unjournaled}: gone {gone}, scope free "
                  f"{free_scope}; release_lease not true: {bad}; logged: {RELEASE_NOT_JOURNALED in text}")

        exc, got = try_take(refused)
        taken = lease_view(mon, [refused])
        scope_free = one(conn, refused.try_conflicting_lock())
        res.check("journal (3): with the journal's file system full, a new lease fails with 58030 "
                  f"(\"{JOURNAL_ERROR}: ...\") and takes nothing (not listed, its scope free)",
                  sqlstate(exc) == "58030" and JOURNAL_ERROR in str(exc) and taken == [] and scope_free is True,
                  f"{describe_error(exc) if exc else got}; listed {taken}; conflicting try_lock {scope_free}")

        exc, got = error_of(conn, "SELECT lockhier.renew_lease(%s)", [renewed.token])
        res.check("journal (3): renew_lease fails with 58030; the lease keeps its expires_at",
                  sqlstate(exc) == "58030" and expiry_of(mon, renewed) == e_renewed,
                  f"{describe_error(exc) if exc else got}; expires_at {e_renewed} -> {expiry_of(mon, renewed)}")

        exc, got = error_of(conn, "SELECT lockhier.release_lease(%s)", [released.token])
        got = describe_error(exc) if exc else got[0][0]
        still = is_listed(mon, released)
        held = locks_left(mon, released, everything)
        free_scope = one(conn, released.try_conflicting_lock())
        res.check("journal (3): release_lease of another lease returns true: gone from lockhier.leases, "
                  "its locks from pg_locks, its scope free",
                  got is True and not still and not held and free_scope is True,
                  f"release_lease {got}; still listed {still}; the keeper still holds {held or 'none'} of "
                  f"its locks; conflicting try_lock {free_scope}")

        # The 3 s lease: listed while the disk was full, gone at its expires_at all the same.
        before_expiry = e_short is not None and full_at < e_short
        listed_then = before_expiry and is_listed(mon, short)
        seen_gone = wait_until(lambda: expiry_of(mon, short) is None,
                               max(0.0, (e_short or 0) - server_clock(mon)) + 15)
        gone_at = server_clock(mon)
        held = locks_left(mon, short, everything)
        free_scope = one(conn, short.try_conflicting_lock())
        text = log.since()
        if not before_expiry:
            res.check("journal (3): a 3 s lease expires at its time with the journal full -- not exercised: "
                      f"the disk was full only {full_at - (e_short or full_at):.2f} s after its expires_at", True)
        else:
            res.check("journal (3): the lease of ttl 3 s, still listed once the disk was full, is gone "
                      "from lockhier.leases within 1.5 s of its expires_at (server clock), its locks gone "
                      "from pg_locks, its scope free; the server log says its expiry could not be journaled",
                      listed_then and seen_gone and gone_at - e_short <= 1.5 and not held
                      and free_scope is True and EXPIRY_NOT_JOURNALED in text,
                      f"full {e_short - full_at:.2f} s before its expires_at; seen gone {seen_gone}, "
                      f"{gone_at - e_short:+.3f} s from its expires_at; the keeper still holds {held or 'none'} "
                      f"of its locks; conflicting try_lock {free_scope}; expiry failure logged "
                      f"{EXPIRY_NOT_JOURNALED in text}")

        # A restart with the disk still full (PostgreSQL restarts after a crash whatever the
        # disk): the keeper must still start, hold its leases again and answer.
        close_quietly(conn, mon)
        ok, _, why = restart(server, log)
        conn = connect("rel-jd-disk-restarted")
        mon = connect("rel-jd-disk-restarted-monitor")
        t0 = now()
        exc, got = error_of(conn, "SELECT lockhier.lease_valid(%s)", [renewed.token])
        waited = now() - t0
        kpid = keeper_pid(mon)
        holds = kpid is not None and set(rows(mon, renewed.plan())) <= keeper_locks(mon, kpid)
        exc2, got2 = try_take(refused)
        text = log.since()
        res.check("journal (3): restarted with the journal's file system still full: the keeper starts, "
                  "holds the renewed lease again (lease_valid true, its plan in pg_locks), and a new lease "
                  "fails with 58030",
                  ok and os.statvfs(jdir).f_bavail == 0 and exc is None and got == [(True,)] and holds
                  and sqlstate(exc2) == "58030",
                  f"{why}lease_valid: {describe_error(exc) if exc else got} after {waited:.2f} s; keeper "
                  f"{kpid} holds its plan {holds}; new lease: {describe_error(exc2) if exc2 else got2}; log: "
                  + flat("\n".join(line for line in text.splitlines() if "lockhier" in line), 400))

        os.remove(fill_path)
        # (If the keeper could not start on the full disk, the postmaster starts it again a
        # second later: wait until lockhier calls are answered again.)
        keeper_back = wait_until(lambda: error_of(mon, "SELECT lockhier.lease_valid(0)")[0] is None, 15)
        exc, token = try_take(after)
        after.token = token
        exc2, renewed_now = error_of(conn, "SELECT lockhier.renew_lease(%s)", [renewed.token])
        released_now = after.token is not None and one(conn, "SELECT lockhier.release_lease(%s)", [after.token])
        largest = max(lease.token for lease in everything if lease.token is not None and lease is not after)
        res.check("journal (3): space freed: a new lease is granted (its token above every earlier one), "
                  "renew_lease and release_lease work",
                  keeper_back and exc is None and after.token is not None and after.token > largest
                  and renewed_now == [(True,)] and released_now is True,
                  f"keeper running {keeper_back}; new lease {describe_error(exc) if exc else after.token} (largest "
                  f"before {largest}); renew {describe_error(exc2) if exc2 else renewed_now}; release {released_now}")
        release_all(conn, everything)
    finally:
        close_quietly(conn, mon)
        if tmpfs.mounted:
            ok, details = tmpfs.off()
            conn = connect("rel-jd-disk-after")
            try:
                one(conn, "SELECT lockhier.lease_valid(0)")  # waits for the restore
                # A release that could not be journaled may bring its lease back until its ttl
                # (docs/leases.md): release what came back, so that its record is written.
                back_again = [r[0] for r in lease_view(conn, everything)]
                release_all(conn, everything)
                left = lease_view(conn, everything)
                locks = advisory_count(conn)
                res.check("journal (3): the tmpfs unmounted, the journal back in the data directory, the "
                          "server restarted; the leases released while the disk was full that came back "
                          "(until their ttl, as documented) released again; nothing left",
                          ok and not mounted_on(jdir) and left == [] and locks == 0,
                          f"{details}; back after the restart: {back_again}; left {left}, "
                          f"{locks} advisory locks")
            finally:
                close_quietly(conn)


def run(res):
    server = Server()
    log = Log(server.log)
    for name, fn in [("journal (1), (2)", damaged_records), ("journal (3)", full_disk)]:
        try:
            fn(res, server, log)
        except Exception as exc:  # noqa: BLE001 - one part's crash must not hide the other
            res.crash(name, exc)
            if wait_for_server(20) is None:
                server.start()
                wait_for_server(120)
