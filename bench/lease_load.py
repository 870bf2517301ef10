"""Leases under load, side by side with the lease table they replace: pgbench -M prepared runs
of a lockhier lease script and of the lease table's, one right after the other in alternating
order, at each client count, in rounds (bench/paired.py's method, on one cluster).

- cycle: `lockhier.lease_field` then `lockhier.release_lease` (bench/pgbench/lease_cycle.sql)
  beside the lease table's upsert-with-takeover then delete (bench/pgbench/lease.sql);
- renew: `lockhier.renew_lease` of a lease the client holds (bench/pgbench/lease_renew.sql)
  beside the lease table's `UPDATE` of `last_renewed_ts` (bench/pgbench/lease_table_renew.sql).

    python bench/lease_load.py --db bench --cycle-clients 1 2 4 8 --renew-clients 1 8 --rounds 6 \\
        --seconds 5 --bindir "$PGBIN" --server-log "$HOME_MAIN/server.log" --out bench/results

Appends one CSV row per pgbench run to OUT/lease_load.csv (the test in column `tag`, as
bench/paired.py's rows have it); the report takes, per test and client count, the median over rounds of lockhier's tps / the table's tps in the same round. Before the
rounds it checks that lease calls in autocommit warn nowhere (OUT/lease_warnings.json): the
bench database silences warnings (client_min_messages and log_min_messages = error, for the
lock calls' 25P01), so the check runs each lockhier script with both set back to warning.
The PG* environment points at the cluster.
"""

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import parse, pgbench_script  # noqa: E402

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "pgbench"
CSV_NAME = "lease_load.csv"
COLUMNS = ["tag", "round", "clients", "position", "side", "seconds", "tps", "transactions", "latency_ms",
           "failed", "status", "started"]
MAX_CLIENTS = 8  # lease_renew.sql has a token variable for clients 0 to 7
RENEW_OWNER = "bench renewer"
RENEW_FIELD_BASE = 80_000_000  # field ids no other part of the bench uses
# What lease_renew.sql renews: one field lease per client, held through the whole run.
RENEW_TAKE = ("SELECT lockhier.lease_field(1, 1, %s::bigint, %s::text, 'field__update', ttl => '1 h')")

# test -> (lockhier's side, the lease table's side), each (label, script)
TESTS = {
    "cycle": (("lease", "lease_cycle.sql"), ("table", "lease.sql")),
    "renew": (("lease", "lease_renew.sql"), ("table", "lease_table_renew.sql")),
}


def setup_renewals(conn, clients):
    """One held lease and one lease-table row per client slot; the leases' tokens by slot."""
    tokens = {}
    for slot in range(clients):
        (token,) = conn.execute(RENEW_TAKE, (RENEW_FIELD_BASE + slot, RENEW_OWNER)).fetchone()
        tokens[f"tok{slot}"] = token
        conn.execute("INSERT INTO bench_lease (resource, holder, last_renewed_ts) VALUES (%s, %s, now()) "
                     "ON CONFLICT (resource) DO UPDATE SET holder = excluded.holder",
                     (f"renew:{slot}", f"renewer-{slot}"))
    # Unused slots of lease_renew.sql still need a value; they are never renewed.
    for slot in range(clients, MAX_CLIENTS):
        tokens[f"tok{slot}"] = tokens["tok0"]
    return tokens


def log_size(path):
    return path.stat().st_size if path and path.exists() else None


def warnings_check(args, stripe, tokens):
    """Run each lockhier script briefly with warnings delivered and logged; count what came."""
    out = {"pgoptions": "-c client_min_messages=warning -c log_min_messages=warning", "scripts": {}}
    for script in ("lease_cycle.sql", "lease_renew.sql"):
        before = log_size(args.server_log)
        proc, cmd = pgbench_script(SCRIPTS / script, 2, 0, args.db, stripe, transactions=100, bindir=args.bindir,
                                   pgoptions=out["pgoptions"], appname="bench lease warnings", defines=tokens)
        after = log_size(args.server_log)
        added = ""
        if before is not None and after is not None and after > before:
            with args.server_log.open("rb") as f:
                f.seek(before)
                added = f.read(after - before).decode(errors="replace")
        out["scripts"][script] = {
            "transactions": parse(proc.stdout)["transactions"],
            "status": "ok" if proc.returncode == 0 else "failed",
            "client_warnings": (proc.stdout + proc.stderr).count("WARNING"),
            "server_log_bytes_added": None if before is None else (after or 0) - before,
            "server_log_warnings": added.count("WARNING"),
            "server_log_sample": added.splitlines()[:5],
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="bench")
    ap.add_argument("--cycle-clients", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--renew-clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--bindir", default="", help="the PostgreSQL bin directory whose pgbench to run")
    ap.add_argument("--server-log", type=Path, help="the cluster's server log, for the warnings check")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    every = args.cycle_clients + args.renew_clients
    if max(every) > MAX_CLIENTS:
        raise SystemExit(f"at most {MAX_CLIENTS} clients (bench/pgbench/lease_renew.sql's token variables)")
    stripe = max(4, max(every))  # field ids are striped by client: no two clients meet

    with psycopg.connect(dbname=args.db, autocommit=True, application_name="bench lease load") as conn:
        tokens = setup_renewals(conn, max(args.renew_clients))
        try:
            warnings = warnings_check(args, stripe, tokens)
            (args.out / "lease_warnings.json").write_text(json.dumps(warnings, indent=2))
            for script, w in warnings["scripts"].items():
                print(f"warnings check {script}: {w['transactions']} transactions, {w['client_warnings']} "
                      f"warning(s) to the client, {w['server_log_warnings']} in the server log "
                      f"({w['server_log_bytes_added']} bytes added)", flush=True)

            cells = [("cycle", c) for c in args.cycle_clients] + [("renew", c) for c in args.renew_clients]
            # Warm-up, unrecorded: every script once per client count.
            for test, clients in cells:
                for label, script in TESTS[test]:
                    proc, cmd = pgbench_script(SCRIPTS / script, clients, 0, args.db, stripe, transactions=200,
                                               bindir=args.bindir, appname=f"bench {test} {label}", defines=tokens)
                    if proc.returncode != 0:
                        raise SystemExit(f"warm-up of {test} {label} with {clients} clients failed:\n"
                                         f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}")

            path = args.out / CSV_NAME
            new = not path.exists()
            rng = random.Random(args.seed)
            began = time.monotonic()
            with path.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                if new:
                    writer.writeheader()
                for rnd in range(1, args.rounds + 1):
                    order = cells[:]
                    rng.shuffle(order)  # a new order of cells each round
                    for test, clients in order:
                        # Each side goes first in every other round.
                        sides = TESTS[test] if rnd % 2 else TESTS[test][::-1]
                        for position, (label, script) in enumerate(sides, 1):
                            started = time.strftime("%H:%M:%S")
                            proc, cmd = pgbench_script(SCRIPTS / script, clients, args.seconds, args.db, stripe,
                                                       bindir=args.bindir, appname=f"bench {test} {label}",
                                                       defines=tokens)
                            row = parse(proc.stdout)
                            status = "ok"
                            if proc.returncode != 0 or row["tps"] is None or row["failed"]:
                                status = "failed"
                                log = args.out / f"failed-lease_load-{test}-{label}-c{clients}-r{rnd}.log"
                                log.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
                            writer.writerow({"tag": test, "round": rnd, "clients": clients, "position": position,
                                             "side": label, "seconds": args.seconds, "status": status,
                                             "started": started, **row})
                            f.flush()
                            tps = f"{row['tps']:10.0f}" if row["tps"] is not None else "    FAILED"
                            print(f"round {rnd}/{args.rounds} {test:<6} {label:<6} c={clients} tps {tps}   "
                                  f"({time.monotonic() - began:4.0f} s)", flush=True)
        finally:
            conn.execute("SELECT lockhier.release_leases(%s)", (RENEW_OWNER,))
            conn.execute("DELETE FROM bench_lease WHERE resource LIKE 'renew:%'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
