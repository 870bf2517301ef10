"""Two sides (or more) measured side by side: short pgbench runs of each, one right after the
other, in an order that changes every round, for a ratio that the machine's drift does not skew.

    python bench/paired.py --tag 15 --clients 2 --rounds 10 --seconds 3 --bindir "$PGBIN" \\
        --side advisory advisory /var/tmp/lockhier-bench-pg15/run 5484 \\
        --side lock_field lock_field /var/tmp/lockhier-bench-pg15/run 5484 --out bench/results/versions.csv

A side is a label, a design of bench/designs.py and the cluster to run it on (socket directory
and port): the same cluster with two designs (lock_field beside the stock lock on each
PostgreSQL major), or one design on two clusters (lock_field with and without lease support
loaded), or three designs on one cluster (lock_path with 3 and 8 names beside lock_field).
Appends one CSV row per pgbench run to OUT, tagged, so that several invocations share a file;
the report takes, per tag and client count, the median over rounds of one side / another.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from designs import BY_NAME  # noqa: E402
from run import parse, pgbench  # noqa: E402

COLUMNS = ["tag", "round", "clients", "position", "side", "design", "seconds", "tps", "transactions",
           "latency_ms", "failed", "status", "started"]


def side(spec):
    label, design, host, port = spec
    if design not in BY_NAME:
        raise SystemExit(f"unknown design {design!r}")
    return {"label": label, "design": design, "cluster": {"PGHOST": host, "PGPORT": port}}


def warm_up(sides, clients, db, stripe, bindir):
    """Every side once per client count, unrecorded: library load, caches, cold pages."""
    for s in sides:
        for c in clients:
            proc, cmd = pgbench(s["design"], c, 0, db, stripe, transactions=200, bindir=bindir,
                                cluster=s["cluster"])
            if proc.returncode != 0:
                raise SystemExit(f"warm-up of {s['label']} with {c} clients failed:\n{' '.join(cmd)}\n"
                                 f"{proc.stdout}{proc.stderr}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True, help="what this comparison is of, e.g. the PostgreSQL major")
    ap.add_argument("--side", nargs=4, action="append", required=True, metavar=("LABEL", "DESIGN", "HOST", "PORT"))
    ap.add_argument("--db", default="bench")
    ap.add_argument("--clients", type=int, nargs="+", default=[2])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--bindir", default="", help="the PostgreSQL bin directory whose pgbench to run")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sides = [side(s) for s in args.side]
    if len(sides) < 2:
        raise SystemExit("give at least two --side")
    stripe = max(4, max(args.clients))  # ids are striped by client: no two clients meet
    warm_up(sides, args.clients, args.db, stripe, args.bindir)

    new = not args.out.exists()
    began = time.monotonic()
    with args.out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for rnd in range(1, args.rounds + 1):
            # The order turns by one side each round (two sides: each goes first in every other
            # round), so no side always runs on a machine another has just warmed (or left busy).
            turn = (rnd - 1) % len(sides)
            order = sides[turn:] + sides[:turn]
            for clients in args.clients:
                for position, s in enumerate(order, 1):
                    started = time.strftime("%H:%M:%S")
                    proc, cmd = pgbench(s["design"], clients, args.seconds, args.db, stripe, bindir=args.bindir,
                                        cluster=s["cluster"])
                    row = parse(proc.stdout)
                    status = "ok"
                    if proc.returncode != 0 or row["tps"] is None or row["failed"]:
                        status = "failed"
                        log = args.out.parent / f"failed-{args.tag}-{s['label']}-c{clients}-r{rnd}.log"
                        log.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
                    writer.writerow({"tag": args.tag, "round": rnd, "clients": clients, "position": position,
                                     "side": s["label"], "design": s["design"], "seconds": args.seconds,
                                     "status": status, "started": started, **row})
                    f.flush()
                    tps = f"{row['tps']:10.0f}" if row["tps"] is not None else "    FAILED"
                    print(f"{args.tag} round {rnd}/{args.rounds} {s['label']:<14} c={clients} tps {tps}   "
                          f"({time.monotonic() - began:4.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
