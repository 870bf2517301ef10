"""The conflict path, timed from a client: how long from the call to the 55P03 error while another
session holds the lock (the holder lookup for the error's DETAIL included), beside the stock
ways to fail fast and the success path. Also the in-server cost of a lock call (many calls in
one statement, so no round trip), which pgbench's tps dilutes with the round trip.

    python bench/conflict.py --db bench --samples 3000 --rounds 4 --out bench/results/conflict.json

pgbench 15 aborts a client on an error, hence this psycopg 3 client. Every call is a prepared
statement in autocommit (one call, one transaction), timed with perf_counter_ns around
execute + fetch, so a figure includes the round trip over the Unix socket and psycopg's own
work (raising the exception included).
"""

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import errors

FIELD = "SELECT lockhier.lock_field(%s::bigint, %s::bigint, %s::bigint, %s::text)"
TRY_FIELD = "SELECT lockhier.try_lock_field(%s::bigint, %s::bigint, %s::bigint, %s::text)"
ARGS = (7, 12, 99, "field__update")
HOLD_FIELD = ["SELECT lockhier.lock_field(7, 12, 99, 'field__update')"]


@dataclass
class Variant:
    name: str
    what: str
    probe: str
    params: tuple
    expect: str  # "55P03", "false" or "ok"
    holder: list = field(default_factory=list)  # statements a second session runs in a transaction
    crowd: int = 0  # advisory locks a third session holds meanwhile (a busier lock table)
    vary: bool = False  # probe a different field each call (success path)


VARIANTS = [
    Variant("lock_field_error", "`lockhier.lock_field` on a field another transaction holds (same class): "
            "55P03, holder named", FIELD, ARGS, "55P03", HOLD_FIELD),
    Variant("lock_field_error_snapshot", "the same call while another transaction holds a share lock on the "
            "whole application (a snapshot)", FIELD, ARGS, "55P03",
            ["SELECT lockhier.lock_application(7, mode => 'share')"]),
    Variant("lock_field_error_crowded", "as `lock_field_error`, while a third session holds 2,000 unrelated "
            "advisory locks (the holder lookup reads the whole lock table)", FIELD, ARGS, "55P03", HOLD_FIELD, 2000),
    Variant("try_lock_field_false", "`lockhier.try_lock_field` on the held field: `false`, no holder lookup",
            TRY_FIELD, ARGS, "false", HOLD_FIELD),
    Variant("advisory_try_false", "stock `pg_try_advisory_xact_lock(k)` on a held key: `false`",
            "SELECT pg_try_advisory_xact_lock(%s::bigint)", (424242,), "false",
            ["SELECT pg_advisory_xact_lock(424242)"]),
    Variant("row_nowait_error", "stock `SELECT ... FOR UPDATE NOWAIT` on a locked row: 55P03 "
            "(`could not obtain lock on row`, names nobody)",
            "SELECT id FROM bench_field WHERE id = %s::bigint FOR UPDATE NOWAIT", (99,), "55P03",
            ["SELECT id FROM bench_field WHERE id = 99 FOR UPDATE"]),
    Variant("lock_rows_error", "`lockhier.lock_rows('bench_field', ARRAY[99])` on a locked row: 55P03, "
            "holder named", "SELECT lockhier.lock_rows('bench_field', ARRAY[%s::bigint])", (99,), "55P03",
            ["SELECT id FROM bench_field WHERE id = 99 FOR UPDATE"]),
    Variant("lock_field_ok", "success path for comparison: `lockhier.lock_field` on a free field",
            FIELD, ARGS, "ok", vary=True),
    Variant("advisory_ok", "success path for comparison: stock `pg_advisory_xact_lock` on a free key",
            "SELECT pg_advisory_xact_lock(%s::bigint)", (1,), "ok", vary=True),
]


def percentile(sorted_values, p):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def summary(us):
    s = sorted(us)
    return {"n": len(s), "median_us": statistics.median(s), "p90_us": percentile(s, 90),
            "p99_us": percentile(s, 99), "max_us": s[-1], "mean_us": statistics.fmean(s)}


class Probe:
    def __init__(self, db):
        self.conn = psycopg.connect(dbname=db, autocommit=True, application_name="bench probe")
        self.cur = self.conn.cursor()
        self.counter = 0

    def call(self, v: Variant):
        """One timed call; returns (microseconds, outcome, error or None)."""
        params = v.params
        if v.vary:
            self.counter += 1
            params = (self.counter,) if len(params) == 1 else (1000 + self.counter % 997, 1 + self.counter % 89,
                                                               self.counter, params[3])
        t0 = time.perf_counter_ns()
        try:
            self.cur.execute(v.probe, params, prepare=True)
            row = self.cur.fetchone()
            t1 = time.perf_counter_ns()
            outcome = "false" if row and row[0] is False else "ok"
            return (t1 - t0) / 1000, outcome, None
        except errors.LockNotAvailable as e:
            t1 = time.perf_counter_ns()
            return (t1 - t0) / 1000, "55P03", e


def run_variant(db, probe: Probe, v: Variant, n: int, warmup: int):
    holder = crowd = None
    try:
        if v.holder:
            holder = psycopg.connect(dbname=db, application_name="bench holder")
            for sql in v.holder:
                holder.execute(sql)
        if v.crowd:
            crowd = psycopg.connect(dbname=db, application_name="bench crowd")
            crowd.execute("SELECT count(pg_advisory_xact_lock(k)) FROM generate_series(5000000, 5000000 + %s - 1) k",
                          (v.crowd,))
        holder_pid = holder.info.backend_pid if holder else None
        times, unexpected, example = [], 0, None
        for i in range(warmup + n):
            us, outcome, err = probe.call(v)
            ok = outcome == v.expect
            if ok and err is not None and v.name.startswith(("lock_field", "lock_rows")):
                # lockhier's error must name the holder: that is the lookup being timed.
                ok = (err.diag.message_primary or "").startswith("operation in progress") and \
                    f"process {holder_pid}" in (err.diag.message_detail or "")
            if err is not None and example is None:
                example = f"{err.diag.message_primary}\nDETAIL:  {err.diag.message_detail}"
            if i >= warmup:
                times.append(us)
                unexpected += not ok
        return times, unexpected, example
    finally:
        for c in (holder, crowd):
            if c is not None:
                c.rollback()
                c.close()


IN_SERVER = {
    # name: (what, statement over generate_series(%s, %s) i); names end in _xact or _pair
    "base_xact": ("no lock (the statement's own cost)", "SELECT count(int8abs(i)) FROM generate_series(%s::bigint, %s::bigint) i"),
    "advisory_xact": ("`pg_advisory_xact_lock(i)`", "SELECT count(pg_advisory_xact_lock(i)) FROM generate_series(%s::bigint, %s::bigint) i"),
    "advisory8_xact": ("8 stock advisory locks (2 keys shared by every call, 6 of its own), as many as the "
                       "plan of `lock_field` takes",
                       "SELECT count(pg_advisory_xact_lock_shared(-1)) + count(pg_advisory_xact_lock_shared(-2))"
                       + "".join(f" + count(pg_advisory_xact_lock_shared(i * 8 + {k}))" for k in range(5))
                       + " + count(pg_advisory_xact_lock(i * 8 + 7)) FROM generate_series(%s::bigint, %s::bigint) i"),
    "lock_field_xact": ("`lockhier.lock_field(i, i, i, 'field__update')`",
                        "SELECT count(lockhier.lock_field(i, i, i, 'field__update')) FROM generate_series(%s::bigint, %s::bigint) i"),
    "base_pair": ("no lock (the statement's own cost)",
                  "SELECT count(int8abs(i)) + count(int8abs(i)) FROM generate_series(%s::bigint, %s::bigint) i"),
    "advisory_pair": ("`pg_advisory_lock(i)` + `pg_advisory_unlock(i)`",
                      "SELECT count(pg_advisory_lock(i)) + count(pg_advisory_unlock(i)) FROM generate_series(%s::bigint, %s::bigint) i"),
    "session_pair": ("`lockhier.session_lock_field(i, i, i, c)` + `lockhier.session_unlock_field(i, i, i, c)`",
                     "SELECT count(lockhier.session_lock_field(i, i, i, 'field__update'))"
                     " + count(lockhier.session_unlock_field(i, i, i, 'field__update')) FROM generate_series(%s::bigint, %s::bigint) i"),
}


def in_server(db, repeats, rng):
    """Microseconds per call (per pair), net of the same statement without the lock: median of
    `repeats` statements. Transaction locks: 400 calls per statement (lock table room), all
    released at its commit, which is included; session pairs: 2,000 per statement."""
    per = {"xact": 400, "pair": 2000}
    out = {}
    with psycopg.connect(dbname=db, autocommit=True, application_name="bench in-server") as conn:
        cur = conn.cursor()
        names = list(IN_SERVER)
        raw = {n: [] for n in names}
        start = 10_000_000
        for _ in range(repeats):
            rng.shuffle(names)
            for name in names:
                calls = per[name.rsplit("_", 1)[1]]
                start += calls
                t0 = time.perf_counter_ns()
                cur.execute(IN_SERVER[name][1], (start, start + calls - 1), prepare=True)
                cur.fetchone()
                raw[name].append((time.perf_counter_ns() - t0) / 1000 / calls)
        left = cur.execute("SELECT count(*) FROM lockhier.held()").fetchone()[0]
        if left:
            raise SystemExit(f"in-server session pairs left {left} requests held")
    med = {n: statistics.median(v) for n, v in raw.items()}
    for name, (what, _) in IN_SERVER.items():
        if name.startswith("base"):
            continue
        base = med["base_" + name.rsplit("_", 1)[1]]
        out[name] = {"what": what, "us_per_call": med[name] - base, "gross_us_per_call": med[name]}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="bench")
    ap.add_argument("--samples", type=int, default=3000, help="timed calls per variant, over all rounds")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--in-server-repeats", type=int, default=30)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    per_round = max(1, args.samples // args.rounds)
    probe = Probe(args.db)
    times = {v.name: [] for v in VARIANTS}
    unexpected = {v.name: 0 for v in VARIANTS}
    examples = {}
    for rnd in range(args.rounds):
        order = VARIANTS[:]
        rng.shuffle(order)
        for v in order:
            t, bad, example = run_variant(args.db, probe, v, per_round, warmup=50 if rnd == 0 else 10)
            times[v.name] += t
            unexpected[v.name] += bad
            if example and v.name not in examples:
                examples[v.name] = example
        print(f"conflict round {rnd + 1}/{args.rounds} done", flush=True)
    result = {"samples_per_variant": per_round * args.rounds, "rounds": args.rounds, "variants": {}}
    for v in VARIANTS:
        result["variants"][v.name] = {"what": v.what, "expect": v.expect, "unexpected": unexpected[v.name],
                                      "example": examples.get(v.name), **summary(times[v.name])}
        s = result["variants"][v.name]
        print(f"{v.name:<26} median {s['median_us']:8.1f} us  p99 {s['p99_us']:8.1f} us  "
              f"max {s['max_us']:8.1f} us  unexpected {s['unexpected']}")
    result["in_server"] = in_server(args.db, args.in_server_repeats, rng)
    result["in_server_repeats"] = args.in_server_repeats
    for name, s in result["in_server"].items():
        print(f"in-server {name:<16} {s['us_per_call']:6.2f} us per call (gross {s['gross_us_per_call']:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    bad = sum(unexpected.values())
    if bad:
        print(f"{bad} calls did not end as expected", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
