"""Throughput rounds: every design at every client count, briefly, in a new order each round.

    python bench/run.py --db bench --clients 1 2 4 --rounds 4 --seconds 3 --bindir "$PGBIN" --out bench/results

Appends one CSV row per pgbench run to OUT/throughput.csv. The PG* environment points at the
cluster. A run that fails (pgbench aborts a client on any error) is recorded with status
`failed` and its output kept in OUT/failed-*.log; the report shows it.
"""

import argparse
import csv
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from designs import DESIGNS, BY_NAME  # noqa: E402

HERE = Path(__file__).resolve().parent
FIELDS = 200_000
APPLICATIONS = 1_000
TABLES = 1_000
CSV_NAME = "throughput.csv"
COLUMNS = ["round", "position", "design", "clients", "seconds", "tps", "transactions",
           "latency_ms", "failed", "status", "started"]


def pgbench_bin(bindir: str = "") -> str:
    """The pgbench of the PostgreSQL under test: bindir's, else that of the pg_config on PATH."""
    if not bindir:
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(bindir, "pgbench")


def pgbench(design, clients: int, seconds: int, db: str, stripe: int, *, transactions: int = 0,
            bindir: str = "", cluster: dict | None = None):
    """One pgbench run of a design; `cluster` (PGHOST, PGPORT) points it at another cluster than
    the environment's."""
    d = BY_NAME[design]
    return pgbench_script(HERE / "pgbench" / f"{d.script}.sql", clients, seconds, db, stripe,
                          transactions=transactions, bindir=bindir, cluster=cluster, pgoptions=d.pgoptions,
                          appname=f"bench {design}")


def pgbench_script(script: Path, clients: int, seconds: int, db: str, stripe: int, *, transactions: int = 0,
                   bindir: str = "", cluster: dict | None = None, pgoptions: str = "", appname: str = "bench",
                   defines: dict | None = None):
    """One pgbench run of any script, with the ids every script of bench/pgbench/ reads and
    `defines` (more -D variables)."""
    cmd = [pgbench_bin(bindir), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
           "-D", f"apps={APPLICATIONS}", "-D", f"tables={TABLES}", "-D", f"fields={FIELDS}",
           "-D", f"stripe={stripe}"]
    for name, value in (defines or {}).items():
        cmd += ["-D", f"{name}={value}"]
    cmd += ["-f", str(script)]
    cmd += ["-t", str(transactions)] if transactions else ["-T", str(seconds)]
    cmd.append(db)
    env = dict(os.environ, **(cluster or {}))
    env.pop("PGOPTIONS", None)
    if pgoptions:
        env["PGOPTIONS"] = pgoptions
    env["PGAPPNAME"] = appname
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return proc, cmd


def parse(out: str) -> dict:
    def grab(pattern, cast=float, default=None):
        m = re.search(pattern, out, re.M)
        return cast(m.group(1)) if m else default

    return {
        "tps": grab(r"^tps = ([0-9.]+) \(without initial connection time\)"),
        "transactions": grab(r"^number of transactions actually processed: (\d+)", int, 0),
        "latency_ms": grab(r"^latency average = ([0-9.]+) ms"),
        "failed": grab(r"^number of failed transactions: (\d+)", int, 0),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="bench")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--designs", nargs="*", default=[d.name for d in DESIGNS])
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--bindir", default="", help="the PostgreSQL bin directory whose pgbench to run")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stripe = max(4, max(args.clients))  # ids are striped by client: no two clients meet

    # Warm-up, not recorded: every script once per client count, so the first measured run of
    # a design does not pay for loading lockhier's library, catalog caches or cold pages.
    for design in args.designs:
        for clients in args.clients:
            proc, cmd = pgbench(design, clients, 0, args.db, stripe, transactions=200, bindir=args.bindir)
            if proc.returncode != 0:
                print(f"warm-up of {design} with {clients} clients failed:\n{' '.join(cmd)}\n"
                      f"{proc.stdout}{proc.stderr}", file=sys.stderr)
                return 1

    path = args.out / CSV_NAME
    new = not path.exists()
    rng = random.Random(args.seed)
    cells = [(d, c) for d in args.designs for c in args.clients]
    total = len(cells) * args.rounds
    done = 0
    began = time.monotonic()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for rnd in range(1, args.rounds + 1):
            order = cells[:]
            rng.shuffle(order)  # a new order each round: drift hits every design alike
            for position, (design, clients) in enumerate(order, 1):
                started = time.strftime("%H:%M:%S")
                proc, cmd = pgbench(design, clients, args.seconds, args.db, stripe, bindir=args.bindir)
                row = parse(proc.stdout)
                status = "ok"
                if proc.returncode != 0 or row["tps"] is None or row["failed"]:
                    status = "failed"
                    log = args.out / f"failed-{design}-c{clients}-r{rnd}.log"
                    log.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
                writer.writerow({"round": rnd, "position": position, "design": design,
                                 "clients": clients, "seconds": args.seconds, "status": status,
                                 "started": started, **row})
                f.flush()
                done += 1
                tps = f"{row['tps']:10.0f}" if row["tps"] is not None else "    FAILED"
                print(f"round {rnd}/{args.rounds} [{done:3d}/{total}] {design:<22} c={clients} "
                      f"tps {tps}   ({time.monotonic() - began:5.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
