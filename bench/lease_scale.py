"""Leases at scale, on a cluster of their own (scripts/bench.sh makes it with lockhier.max_leases
and a lock table large enough): one lease cycle's latency with none, some and many leases held,
and the restore of the many after an immediate shutdown.

    python bench/lease_scale.py --db bench --levels 10000 100000 --samples 2000 \\
        --data "$HOME_MAIN-scale/data" --server-log "$HOME_MAIN-scale/server.log" --bindir "$PGBIN" \\
        --restore-timeout 900 --out bench/results/lease_scale.json

A cycle is `lockhier.lease_field` then `lockhier.release_lease`, prepared statements in
autocommit timed from this client (as bench/leases.py times them), on fields of their own in the
applications and tables the held leases are in. The levels are visited there and back
(0; 10,000, a restart, 10,000; 100,000, a restart, 100,000; then 10,000 and 0 again), a block of
cycles at each visit, so that drift in the machine's speed falls on every level alike; a level's
figures pool its blocks.

The held leases are field leases on distinct fields spread over 997 applications and 89 tables
(at a level of lockhier.max_leases, one fewer: the cycle's own lease makes the level),
taken by a few connections at once (`count(lockhier.lease_field(...))` over generate_series),
each level's under an owner of its own, released at once with `release_leases(owner)`.

The restore, at each level: CHECKPOINT (so that WAL replay is short and the time is the leases'), then
`pg_ctl stop -m immediate`, then `pg_ctl start` without waiting; from the start command, this
client tries to connect, then calls `lockhier.lock_field` until one succeeds (a lockhier call
waits up to 10 s for the restore, then fails with 55000, and is tried again). The server log's
lines from the restart are kept. The PG* environment points at the cluster.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conflict import summary  # noqa: E402

CLASS = "field__update"
LEASE = "SELECT lockhier.lease_field(%s::bigint, %s::bigint, %s::bigint, %s::text, %s::text, ttl => '1 min')"
RELEASE = "SELECT lockhier.release_lease(%s::bigint)"
CYCLE_OWNER = "bench scale cycle"
HELD_FIELD_BASE = 90_000_000  # the held leases' fields: HELD_FIELD_BASE + i
CYCLE_FIELD_BASE = 92_000_000  # the timed cycles' fields, never held
PROBE_FIELD = 94_000_000  # the restore's first lockhier call
TAKERS = 4  # connections taking the held leases at once
CHUNK = 1000  # leases a statement
HELD_TTL = "2 h"
SETTINGS = ["lockhier.max_leases", "max_locks_per_transaction", "max_connections", "max_prepared_transactions",
            "autovacuum_max_workers", "max_worker_processes", "max_wal_senders", "shared_buffers",
            "shared_memory_size", "shared_memory_size_in_huge_pages", "huge_pages", "fsync", "synchronous_commit"]


def ids(i):
    return 1 + i % 997, 1 + i % 89


def connect(db, **kw):
    return psycopg.connect(dbname=db, autocommit=True, application_name="bench lease scale", **kw)


def block(db, level, n, start):
    """n cycles, each timed; returns (microseconds per cycle, not as expected)."""
    out, unexpected = [], 0
    with connect(db) as conn:
        cur = conn.cursor()
        for j in range(start, start + n + 20):
            a, t = ids(j)
            t0 = time.perf_counter_ns()
            cur.execute(LEASE, (a, t, CYCLE_FIELD_BASE + j, CYCLE_OWNER, CLASS), prepare=True)
            (token,) = cur.fetchone()
            cur.execute(RELEASE, (token,), prepare=True)
            (released,) = cur.fetchone()
            us = (time.perf_counter_ns() - t0) / 1000
            if j >= start + 20:  # the first few warm the connection up
                out.append(us)
                unexpected += released is not True
    return out, unexpected


def take_held(db, owner, first, count):
    """Take `count` field leases for `owner`, fields first .. first + count - 1."""
    sql = ("SELECT count(lockhier.lease_field(1 + i %% 997, 1 + i %% 89, %s::bigint + i, %s::text, %s::text, "
           "ttl => %s::interval)) FROM generate_series(%s::bigint, %s::bigint) AS i")
    errors = []

    def worker(k):
        try:
            with connect(db) as conn:
                for lo in range(first + k * CHUNK, first + count, TAKERS * CHUNK):
                    hi = min(lo + CHUNK, first + count) - 1
                    conn.execute(sql, (HELD_FIELD_BASE, owner, CLASS, HELD_TTL, lo, hi))
        except psycopg.Error as e:
            errors.append(f"{type(e).__name__}: {e}")

    began = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(TAKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"taking {count} leases for {owner!r} failed: {errors[0]}")
    return time.monotonic() - began


def keeper_info(conn):
    pid = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'").fetchone()
    if pid is None:
        return {}
    pid = pid[0]
    info = {"pid": pid}
    info["lock_table_entries"] = conn.execute("SELECT count(*) FROM pg_locks WHERE pid = %s", (pid,)).fetchone()[0]
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        info["rss"] = next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        pass
    return info


def as_owner(cmd):
    """PostgreSQL's tools run as the clusters' owner, postgres, when this runs as root."""
    return ["sudo", "-u", "postgres", *cmd] if os.geteuid() == 0 else cmd


def restore(args, count):
    pg_ctl = str(Path(args.bindir) / "pg_ctl")
    with connect(args.db) as conn:
        conn.execute("CHECKPOINT")
        held = conn.execute("SELECT count(*) FROM lockhier.leases").fetchone()[0]
    journal = args.data / "lockhier" / "leases.journal"
    out = {"leases_before": held, "expected": count}
    try:
        out["journal_bytes"] = journal.stat().st_size
        out["journal_records"] = journal.read_bytes().split(b"\0", 1)[0].count(b"\n")
    except OSError:
        pass
    offset = args.server_log.stat().st_size
    subprocess.run(as_owner([pg_ctl, "-D", str(args.data), "-m", "immediate", "-w", "stop"]), check=True,
                   capture_output=True)
    began = time.monotonic()
    subprocess.run(as_owner([pg_ctl, "-D", str(args.data), "-l", str(args.server_log), "-W", "start"]), check=True,
                   capture_output=True)
    conn, failures, last_error = None, 0, ""
    deadline = began + args.restore_timeout
    while time.monotonic() < deadline:
        try:
            if conn is None:
                conn = psycopg.connect(dbname=args.db, application_name="bench restore probe", connect_timeout=5)
                out.setdefault("connected_s", time.monotonic() - began)
            # In a transaction: a transaction lock taken in autocommit warns (25P01).
            conn.execute("SELECT lockhier.lock_field(1, 1, %s::bigint, %s::text)", (PROBE_FIELD, CLASS))
            out["served_s"] = time.monotonic() - began
            conn.commit()
            break
        except psycopg.Error as e:
            last_error = (f"{e.sqlstate}: " if e.sqlstate else "") + (str(e).strip().splitlines() or [""])[0]
            if conn is not None and conn.closed:
                conn = None
            elif conn is not None:
                failures += 1  # a lockhier call refused: not restored yet (55000)
                conn.rollback()
        time.sleep(0.05)
    out["lockhier_calls_failed"] = failures
    out["last_error"] = last_error
    if "served_s" in out:
        out["leases_after"] = conn.execute("SELECT count(*) FROM lockhier.leases").fetchone()[0]
        conn.commit()
    else:
        out["not_served_within_s"] = args.restore_timeout
        # Where the time goes while it is still restoring: the processes' CPU time.
        out["processes"] = subprocess.run(["ps", "-u", "postgres", "-o", "pid,etime,time,args"],
                                          capture_output=True, text=True).stdout.splitlines()
    if conn is not None:
        conn.close()
    with args.server_log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    # This client's own attempts (refused connections while the server starts, lockhier calls
    # refused while the leases are restored) are counted, not kept.
    ours = {line for line in lines if "bench restore probe" in line or "[unknown] FATAL:  the database system is" in line
            or "DETAIL:  Consistent recovery state has not been yet reached" in line}
    out["server_log_probe_lines"] = sum(line in ours for line in lines)
    out["server_log"] = [line for line in lines if line not in ours][:200]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="bench")
    ap.add_argument("--levels", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--samples", type=int, default=2000, help="timed cycles per block")
    ap.add_argument("--data", type=Path, required=True, help="the cluster's data directory")
    ap.add_argument("--server-log", type=Path, required=True)
    ap.add_argument("--bindir", required=True, help="the PostgreSQL bin directory whose pg_ctl to run")
    ap.add_argument("--restore-timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    levels = sorted(set(args.levels))
    result = {"levels": [0, *levels], "samples_per_block": args.samples, "blocks": [], "taking": []}
    samples = {}
    cycle = [0]

    def measure(level, when):
        us, unexpected = block(args.db, level, args.samples, cycle[0])
        cycle[0] += args.samples + 20
        samples.setdefault(level, []).extend(us)
        s = summary(us)
        result["blocks"].append({"level": level, "when": when, "unexpected": unexpected, **s})
        print(f"level {level:>7} ({when}): cycle median {s['median_us']:7.0f} us  p99 {s['p99_us']:7.0f} us  "
              f"unexpected {unexpected}", flush=True)

    with connect(args.db) as conn:
        result["settings"] = {name: conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()[0]
                              for name in SETTINGS}
        result["server"] = conn.execute("SHOW server_version").fetchone()[0]
        # The shared lock table's entries: max_locks_per_transaction x (MaxBackends + prepared).
        s = {k: int(v) for k, v in result["settings"].items()
             if k in ("max_locks_per_transaction", "max_connections", "max_prepared_transactions",
                      "autovacuum_max_workers", "max_worker_processes", "max_wal_senders")}
        backends = (s["max_connections"] + s["autovacuum_max_workers"] + 1 + s["max_worker_processes"]
                    + s["max_wal_senders"])
        result["lock_table"] = {"max_backends": backends, "slots": backends + s["max_prepared_transactions"],
                                "entries": s["max_locks_per_transaction"] * (backends + s["max_prepared_transactions"])}

    measure(0, "before")
    owners, held, restores = [], 0, []
    result["restores"] = restores
    # A cycle takes one lease more: at lockhier.max_leases' ceiling (100,000) the level counts it.
    cap = int(result["settings"]["lockhier.max_leases"])
    result["held_at"] = {}
    for level in levels:
        owner = f"bench held {level}"
        count = min(level, cap - 1)
        result["held_at"][str(level)] = count
        took = take_held(args.db, owner, held, count - held)
        result["taking"].append({"owner": owner, "leases": count - held, "seconds": took,
                                 "per_second": (count - held) / took if took else None})
        print(f"took {count - held} leases in {took:.1f} s ({(count - held) / took:,.0f}/s)", flush=True)
        owners.append(owner)
        held = count
        measure(level, "before")
        if level == levels[-1]:
            with connect(args.db) as conn:
                result["keeper_at_most"] = keeper_info(conn)
            print(f"keeper with {held} leases: {result['keeper_at_most']}", flush=True)
        r = restore(args, held)
        restores.append(r)
        if "served_s" not in r:
            print(f"restore of {r['leases_before']} leases: no lockhier call served within "
                  f"{args.restore_timeout:.0f} s ({r['last_error']})", flush=True)
            break
        print(f"restore of {r['leases_before']} leases: connected after {r.get('connected_s', 0):.2f} s, first "
              f"lockhier call served after {r['served_s']:.2f} s, {r['leases_after']} leases held", flush=True)
        measure(level, "after a restart")
    result["restore"] = r = restores[-1]
    if "served_s" in r:
        for level, owner in zip(reversed([0, *levels[:-1]]), reversed(owners)):
            with connect(args.db) as conn:
                began = time.monotonic()
                conn.execute("SELECT lockhier.release_leases(%s)", (owner,))
                result["taking"].append({"released": owner, "seconds": time.monotonic() - began})
            measure(level, "after")

    result["cycles"] = {}
    for level in [0, *levels]:
        if samples.get(level):
            result["cycles"][str(level)] = summary(samples[level])
    base = result["cycles"].get("0", {}).get("median_us")
    for level, s in result["cycles"].items():
        s["ratio_to_none"] = s["median_us"] / base if base else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    bad = sum(b["unexpected"] for b in result["blocks"])
    if bad or "served_s" not in r:
        print(f"{bad} cycles not as expected; restore served: {'served_s' in r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
