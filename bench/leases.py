"""Leases timed from a client, on a cluster with lockhier in shared_preload_libraries and
durable commits (fsync and synchronous_commit on):

- the pair `lockhier.lease_field` + `lockhier.release_lease`, interleaved in one loop with the
  lease table's pair (bench/pgbench/lease.sql: the upsert, then the delete), each pair on field
  ids of its own, so nothing ever conflicts;
- expiry: from a lease's `expires_at` to a transaction queued behind it being granted.

    python bench/leases.py --db bench --samples 2000 --expiry-samples 100 --out bench/results/leases.json

Every statement is a prepared statement in autocommit (one call, one transaction), timed with
perf_counter_ns around execute + fetch, as bench/conflict.py does.
"""

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conflict import summary  # noqa: E402

OWNER = "bench lease"
CLASS = "field__update"
LEASE = "SELECT lockhier.lease_field(%s::bigint, %s::bigint, %s::bigint, %s::text, %s::text, ttl => %s::interval)"
RELEASE = "SELECT lockhier.release_lease(%s::bigint)"
# bench/pgbench/lease.sql with the field's resource name as a parameter.
TABLE_TAKE = """INSERT INTO bench_lease AS l (resource, holder, last_renewed_ts)
VALUES (%s::text, 'worker-' || pg_backend_pid(), now())
ON CONFLICT (resource) DO UPDATE
   SET holder = excluded.holder, last_renewed_ts = excluded.last_renewed_ts
 WHERE l.last_renewed_ts < now() - interval '5 minutes'
RETURNING holder"""
TABLE_GIVE_BACK = "DELETE FROM bench_lease WHERE resource = %s::text AND holder = 'worker-' || pg_backend_pid()"

PAIRS = {
    "lease_field": "`lockhier.lease_field(a, t, f, owner, 'field__update', ttl => '1 min')`, then "
                   "`lockhier.release_lease(token)`: the keeper writes and flushes its journal for each",
    "lease_table": "the lease table's pair (`bench/pgbench/lease.sql`): the `INSERT ... ON CONFLICT DO UPDATE`, "
                   "then the `DELETE`, two durable commits",
}
# Field ids no other part of the bench uses, one range per design: every pair has its own.
FIELD_BASE = {"lease_field": 50_000_000, "lease_table": 60_000_000, "expiry": 70_000_000}


def ids(design, i):
    return 1 + i % 997, 1 + i % 89, FIELD_BASE[design] + i


def timed(cur, sql, params):
    """(microseconds, first row) of one prepared statement, its fetch included."""
    t0 = time.perf_counter_ns()
    cur.execute(sql, params, prepare=True)
    row = cur.fetchone()
    return (time.perf_counter_ns() - t0) / 1000, row


def lease_field_pair(cur, i):
    a, t, f = ids("lease_field", i)
    took, (token,) = timed(cur, LEASE, (a, t, f, OWNER, CLASS, "1 min"))
    gave, (released,) = timed(cur, RELEASE, (token,))
    return took, gave, released is True


def lease_table_pair(cur, i):
    a, t, f = ids("lease_table", i)
    resource = f"field:{a}:{t}:{f}"
    took, row = timed(cur, TABLE_TAKE, (resource,))
    t0 = time.perf_counter_ns()
    cur.execute(TABLE_GIVE_BACK, (resource,), prepare=True)
    gave = (time.perf_counter_ns() - t0) / 1000
    return took, gave, row is not None and cur.rowcount == 1


def pairs(db, n, warmup, rng):
    """Both designs' pairs, alternately in a shuffled order per iteration (drift hits both)."""
    run = {"lease_field": lease_field_pair, "lease_table": lease_table_pair}
    out = {name: {"pair": [], "take": [], "release": [], "unexpected": 0} for name in run}
    with psycopg.connect(dbname=db, autocommit=True, application_name="bench lease pairs") as conn:
        cur = conn.cursor()
        try:
            for i in range(warmup + n):
                names = list(run)
                rng.shuffle(names)
                for name in names:
                    took, gave, ok = run[name](cur, i)
                    if i >= warmup:
                        r = out[name]
                        r["pair"].append(took + gave)
                        r["take"].append(took)
                        r["release"].append(gave)
                        r["unexpected"] += not ok
        finally:
            # Whatever happened, leave no lease of ours behind.
            cur.execute("SELECT lockhier.release_leases(%s)", (OWNER,))
    return {name: {"what": PAIRS[name], "unexpected": r["unexpected"],
                   "take_median_us": summary(r["take"])["median_us"],
                   "release_median_us": summary(r["release"])["median_us"], **summary(r["pair"])}
            for name, r in out.items()}


def keeper_pid(cur):
    row = cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'").fetchone()
    if row is None:
        raise SystemExit("no lease keeper: is lockhier in shared_preload_libraries?")
    return row[0]


def wait_for_lock(conn, a, t, f, result):
    """In a thread: queue for the field behind the lease, note the server's time once granted,
    commit (which releases the lock)."""
    try:
        conn.execute("SELECT lockhier.lock_field(%s::bigint, %s::bigint, %s::bigint, %s::text, wait => '30 s')",
                     (a, t, f, CLASS))
        result["granted_at"] = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        conn.commit()
    except psycopg.Error as e:
        result["error"] = f"{type(e).__name__}: {e}"
        conn.rollback()


def wait_until_queued(cur, waiter, keeper, timeout=10.0):
    """State, not sleeps, orders the steps: return once `waiter` waits for the keeper's lock."""
    deadline = time.monotonic() + timeout
    while not cur.execute("SELECT %s::int = ANY (pg_blocking_pids(%s::int))", (keeper, waiter)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise SystemExit(f"process {waiter} never queued behind the lease keeper ({keeper})")
        time.sleep(0.001)


def expiry_sample(holder, poll, waiter, keeper, i):
    """One lease expiring under a queued waiter: microseconds from expires_at to the grant, or
    a string saying why the sample was not taken."""
    a, t, f = ids("expiry", i)
    (token,) = holder.execute(LEASE, (a, t, f, OWNER, CLASS, "1 h")).fetchone()
    result = {}
    thread = threading.Thread(target=wait_for_lock, args=(waiter, a, t, f, result))
    thread.start()
    try:
        wait_until_queued(poll, waiter.info.backend_pid, keeper)
        (renewed,) = holder.execute("SELECT lockhier.renew_lease(%s::bigint, ttl => '300 ms')", (token,)).fetchone()
        row = holder.execute("SELECT expires_at FROM lockhier.leases WHERE token = %s::bigint", (token,)).fetchone()
    finally:
        thread.join(timeout=40)
    if not renewed or "error" in result or "granted_at" not in result:
        holder.execute(RELEASE, (token,))
        return f"failed: renewed={renewed}, {result.get('error', 'no grant')}"
    if row is None:
        # Already expired when read: its expires_at is unknown, so is the latency.
        return "discarded"
    return (result["granted_at"] - row[0]).total_seconds() * 1e6


def expiry(db, n):
    samples, discarded, failures = [], 0, []
    kw = {"dbname": db, "application_name": "bench expiry"}
    with psycopg.connect(autocommit=True, **kw) as holder, psycopg.connect(autocommit=True, **kw) as poll, \
            psycopg.connect(**kw) as waiter:
        keeper = keeper_pid(poll)
        try:
            for i in range(n):
                got = expiry_sample(holder, poll, waiter, keeper, i)
                if got == "discarded":
                    discarded += 1
                elif isinstance(got, str):
                    failures.append(got)
                else:
                    samples.append(got)
        finally:
            holder.execute("SELECT lockhier.release_leases(%s)", (OWNER,))
    out = {"discarded": discarded, "failed": len(failures), "failures": failures[:5], "n": len(samples)}
    if samples:
        out.update(summary(samples), min_us=min(samples))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="bench")
    ap.add_argument("--samples", type=int, default=2000, help="timed pairs per design")
    ap.add_argument("--expiry-samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    result = {"pairs": pairs(args.db, args.samples, warmup=50, rng=random.Random(args.seed))}
    for name, s in result["pairs"].items():
        print(f"{name:<12} pair median {s['median_us']:8.1f} us  p99 {s['p99_us']:8.1f} us  "
              f"max {s['max_us']:8.1f} us  unexpected {s['unexpected']}", flush=True)
    result["expiry"] = expiry(args.db, args.expiry_samples)
    e = result["expiry"]
    if e["n"]:
        print(f"expiry       median {e['median_us'] / 1000:8.2f} ms  p99 {e['p99_us'] / 1000:8.2f} ms  "
              f"max {e['max_us'] / 1000:8.2f} ms  n {e['n']}  discarded {e['discarded']}  failed {e['failed']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    bad = sum(s["unexpected"] for s in result["pairs"].values()) + e["failed"]
    if bad:
        print(f"{bad} lease calls did not end as expected", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
