"""lockhier reliability suite: invariants under load, faults, limits, bad input, privileges.

Run through run.sh, which provides the virtualenv. Needs PGHOST/PGPORT/PGUSER of a running
cluster (superuser) where the extension is installed, on this machine (the SIGKILL fault sends
a signal to a backend process). Prints one line per check and ends with `RESULT <passed> <failed>`.

    LOCKHIER_REL_ONLY=load,faults   run only some groups (names below; the OPT_IN ones only so)
    LOCKHIER_REL_SEED=N             replay the load's random choices
    LOCKHIER_REL_LOAD_SECONDS=S     length of the load (default 25)
    LOCKHIER_REL_KEEP=1             keep the database and role afterwards
    LOCKHIER_REL_REFUSALS=N         refused lease calls of the keeper's memory check (default 100000)
    LOCKHIER_REL_NEMESIS_SECONDS=S  length of the mixed-nemesis run (default 30)
    LOCKHIER_REL_NEMESES=a,b        only these nemeses (rel/nemesis_load.py)
    LOCKHIER_REL_NEMESIS_GAP=S      plain load between two faults (default 1.5)
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rel import (badinput, faults, guarded, harness, history, journal_damage, lease_history,  # noqa: E402
                 keeper_asks, lease_many_faults, lease_turn, lease_worst_day, limits, load, nemesis_load,
                 privileges)


def selftest(res):
    for description, ok in history.self_test() + lease_history.self_test() + guarded.self_test():
        res.check(f"checker self-test: {description}", ok)


GROUPS = [
    ("selftest", "Checker and oracle self-test", selftest),
    ("pairs", "Invariant: every pair of requests, server against oracle", load.exhaustive_pairs),
    ("load", "Invariant under load", load.load),
    ("badinput", "Bad input from a client", badinput.run),
    ("privileges", "Privileges", privileges.run),
    ("limits", "Limits", limits.run),
    ("turn", "A lease that waits keeps its turn under a stream of short transactions", lease_turn.run),
    # restarts the server: damages the lease journal, fills its file system (a tmpfs)
    ("journal", "Lease journal damaged, its file system full", journal_damage.run),
    # restarts the server, signals the keeper, fills the lock table and the journal's tmpfs
    ("nemesis", "Leases and a guarded table under a random load mixed with faults", nemesis_load.run),
    # signals the keeper mid-question, drops more databases than it has drop slots
    ("asks", "The keeper ended between a question and its answer; drops beyond the drop slots",
     keeper_asks.run),
    # signals the keeper (SIGKILL restarts every backend) while groups of leases are asked
    ("many", "Several leases at once under faults: all or none held, whatever ends the keeper or the caller",
     lease_many_faults.run),
    ("worstday", "A lease's worst day: the keeper cancelled, stopped, restarted; a full lock table",
     lease_worst_day.run),   # signals the keeper; before faults, whose SIGKILL restarts every backend
    ("faults", "Faults", faults.run),   # last: its SIGKILL restarts every backend
]


def main():
    res = harness.Results()
    only = [g for g in os.environ.get("LOCKHIER_REL_ONLY", "").split(",") if g]
    skip = [g for g in os.environ.get("LOCKHIER_REL_SKIP", "").split(",") if g]
    start = time.monotonic()
    print(f"lockhier reliability suite: PGHOST={os.environ.get('PGHOST', '')} "
          f"PGPORT={os.environ.get('PGPORT', '')} PGUSER={os.environ.get('PGUSER', '')} "
          f"database {harness.DB}", flush=True)
    try:
        version = harness.setup_database()
        res.check(f"setup: database {harness.DB} with CREATE EXTENSION lockhier ({version})", True)
    except Exception as exc:  # noqa: BLE001
        res.crash("setup", exc)
        print(f"RESULT {res.passed} {res.failed}", flush=True)
        return 1
    for name, title, fn in GROUPS:
        if (only and name not in only) or name in skip:
            print(f"\n== {title}: not run here (LOCKHIER_REL_ONLY / LOCKHIER_REL_SKIP)", flush=True)
            continue
        res.section(title)
        t0 = time.monotonic()
        try:
            fn(res)
        except Exception as exc:  # noqa: BLE001 - a crashed group is a failed check
            res.crash(name, exc)
            # whatever it was doing, make sure the server is usable for the next group
            harness.wait_for_server(60)
        res.note(f"({title}: {time.monotonic() - t0:.1f} s)")
    if os.environ.get("LOCKHIER_REL_KEEP") != "1":
        try:
            harness.drop_database()
        except Exception as exc:  # noqa: BLE001
            res.crash("teardown", exc)
    print(f"\n{res.passed} checks passed, {res.failed} failed in {time.monotonic() - start:.0f} s"
          + (": " + "; ".join(res.failures) if res.failures else ""), flush=True)
    print(f"RESULT {res.passed} {res.failed}", flush=True)
    return 0 if res.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
