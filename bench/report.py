"""BENCHMARKS.md and bench/throughput.png from the raw results of scripts/bench.sh.

    python bench/report.py --results bench/results --markdown BENCHMARKS.md --plot bench/throughput.png
    python bench/report.py --results bench/results --only paths     the paths section and its targets,
                                                                     printed (BENCH_ONLY=paths)
    python bench/report.py --results bench/results --only leases    leases under load and their targets,
                                                                     printed (BENCH_ONLY=leases)
"""

import argparse
import csv
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from designs import BASELINE, BY_NAME, DESIGNS  # noqa: E402

REPLACED = ["row_nowait", "lease", "blob"]
PRELOAD_CLIENTS = [1, 2]  # scripts/bench.sh runs the lease-support comparison at these
VERSION_CLIENTS = 2  # and lock_field beside the stock lock on each major at this
MAJORS = ["15", "16", "17", "18"]
PATHS_TAG = "paths"  # bench/paired.py's tag for lock_path beside lock_field, and its sides:
PATH_SIDES = [("path_3", "3 names", 0.95), ("path_8", "8 names", 0.85)]  # with the targets of issue 19
MANY_FLOOR = 1.5  # lock_many of 4 fields beside 4 lock_field calls (sides many_4 and field_x4): issue 19


def read_kv(path: Path) -> dict:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def fmt_tps(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


def fmt_us(us):
    if us is None:
        return "—"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


class Results:
    def __init__(self, path: Path):
        self.tps = defaultdict(dict)  # (design, clients) -> {round: tps}
        self.failed = []
        with path.open() as f:
            for row in csv.DictReader(f):
                key = (row["design"], int(row["clients"]))
                if row["status"] == "ok":
                    self.tps[key][int(row["round"])] = float(row["tps"])
                else:
                    self.failed.append(row)
        self.clients = sorted({c for (_, c) in self.tps} | {int(r["clients"]) for r in self.failed})
        self.rounds = sorted({r for v in self.tps.values() for r in v})

    def median(self, design, clients):
        v = list(self.tps.get((design, clients), {}).values())
        return statistics.median(v) if v else None

    def spread(self, design, clients):
        v = list(self.tps.get((design, clients), {}).values())
        return (min(v), max(v)) if v else (None, None)

    def ratios(self, a, b, clients):
        """tps(a) / tps(b) in each round."""
        ta, tb = self.tps.get((a, clients), {}), self.tps.get((b, clients), {})
        return [ta[k] / tb[k] for k in ta if k in tb and tb[k] > 0]

    def ratio(self, a, b, clients):
        """Median over rounds of tps(a) / tps(b) in the same round (paired: drift cancels)."""
        ta, tb = self.tps.get((a, clients), {}), self.tps.get((b, clients), {})
        r = [ta[k] / tb[k] for k in ta if k in tb and tb[k] > 0]
        return statistics.median(r) if r else None


class Paired:
    """bench/paired.py's rows: two sides run one right after the other in each round."""

    def __init__(self, path: Path):
        self.tps = defaultdict(dict)  # (tag, clients, side) -> {round: tps}
        self.failed = []
        if not path.exists():
            return
        with path.open() as f:
            for row in csv.DictReader(f):
                if row["status"] == "ok":
                    self.tps[(row["tag"], int(row["clients"]), row["side"])][int(row["round"])] = float(row["tps"])
                else:
                    self.failed.append(row)

    def median(self, tag, clients, side):
        v = list(self.tps.get((tag, clients, side), {}).values())
        return statistics.median(v) if v else None

    def ratios(self, tag, clients, a, b):
        """tps(a) / tps(b) in each round."""
        ta, tb = self.tps.get((tag, clients, a), {}), self.tps.get((tag, clients, b), {})
        return [ta[k] / tb[k] for k in sorted(ta) if k in tb and tb[k] > 0]

    def ratio(self, tag, clients, a, b):
        """Median over rounds of the per-round ratio (paired: drift cancels)."""
        r = self.ratios(tag, clients, a, b)
        return statistics.median(r) if r else None


def fsync_rate(text: str):
    """fdatasync of one 8 kB write, from pg_test_fsync's first comparison."""
    m = re.search(r"^\s*fdatasync\s+([0-9.]+) ops/sec\s+([0-9.]+) usecs/op", text, re.M)
    return (float(m.group(1)), float(m.group(2))) if m else None


def plot(res: Results, path: Path, title: str):
    designs = [d for d in DESIGNS if any((d.name, c) in res.tps for c in res.clients)]
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"]
    n = len(res.clients)
    height = 0.8 / max(1, n)
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(designs) * max(1, n) ** 0.5 + 2))
    group_color = {"floor": "#777777", "stock": "#1f4e79", "lockhier": "#2e7d32", "replaced": "#a0522d"}
    for i, c in enumerate(res.clients):
        ys, xs, lo, hi = [], [], [], []
        for j, d in enumerate(designs):
            m = res.median(d.name, c)
            if m is None:
                continue
            a, b = res.spread(d.name, c)
            ys.append(j + (i - (n - 1) / 2) * height)
            xs.append(m)
            lo.append(m - a)
            hi.append(b - m)
        ax.barh(ys, xs, height=height, color=colors[i % len(colors)], label=f"{c} client{'s' if c > 1 else ''}",
                xerr=[lo, hi] if len(res.rounds) > 1 else None, error_kw={"elinewidth": 0.8, "capsize": 2})
        for y, x in zip(ys, xs):
            ax.text(x, y, f" {x / 1000:.1f}k", va="center", fontsize=7)
    ax.set_yticks(range(len(designs)))
    ax.set_yticklabels([d.label for d in designs])
    for tick, d in zip(ax.get_yticklabels(), designs):
        tick.set_color(group_color[d.group])
    ax.invert_yaxis()
    ax.set_xlabel("transactions per second (median across rounds; bars: min–max)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_leases(w, preload: Paired, preload_status: str, leases: dict, pg: str, machine: dict,
                 load: Paired, warnings: dict, scale: dict, scale_status: str):
    w("## Leases")
    w("")
    w("### Lease support loaded")
    w("")
    w(f"`lock_field` on two clusters of PostgreSQL {pg} in the same run: the main one, with lockhier in "
      "`shared_preload_libraries` (its shared memory and lease keeper there, no lease held), and a second "
      "without it (`LOCKHIER_PRELOAD=0` in `scripts/cluster.sh`). With lease support loaded every lock call "
      "first reads whether the leases are restored (one atomic read). Each round runs `lock_field` on one "
      f"cluster then on the other, in alternating order, {machine.get('pair_seconds', '?')} s a run, "
      f"{machine.get('pair_rounds', '?')} rounds.")
    w("")
    if preload_status != "measured":
        w(f"**Not measured**: {preload_status.removeprefix('failed: ')}.")
        w("")
    if preload.tps:
        w("| clients | tps, loaded (median) | tps, not loaded (median) | loaded ÷ not loaded | per-round range |")
        w("|---:|---:|---:|---:|---:|")
        for c in PRELOAD_CLIENTS:
            r = preload.ratios(pg, c, "preloaded", "not_preloaded")
            w(f"| {c} | {fmt_tps(preload.median(pg, c, 'preloaded'))} "
              f"| {fmt_tps(preload.median(pg, c, 'not_preloaded'))} "
              f"| {fmt_ratio(preload.ratio(pg, c, 'preloaded', 'not_preloaded'))} "
              f"| {f'{min(r):.2f}× – {max(r):.2f}×' if r else '—'} |")
        w("")
    write_failed(w, preload)

    pairs = leases.get("pairs", {})
    w("### Taking and releasing a lease")
    w("")
    w("A lease taken and released with durable commits, timed from a psycopg 3 client "
      "(`bench/leases.py`): `lockhier.lease_field` returns once the keeper has written the grant to its "
      "journal and flushed it (`fdatasync`), and `lockhier.release_lease` once the release is flushed, "
      "as the lease table's statements return once their commit's WAL is flushed. The two designs' "
      "pairs alternate in one loop, each on field ids of its own (nothing ever conflicts), "
      f"{machine.get('lease_samples', '?')} pairs each.")
    w("")
    if pairs:
        w("| pair | what | median | p90 | p99 | max | take (median) | release (median) | not as expected |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, v in pairs.items():
            nm = f"**{name}**" if name == "lease_field" else name
            w(f"| {nm} | {v['what']} | {fmt_us(v['median_us'])} | {fmt_us(v['p90_us'])} | {fmt_us(v['p99_us'])} | "
              f"{fmt_us(v['max_us'])} | {fmt_us(v['take_median_us'])} | {fmt_us(v['release_median_us'])} | "
              f"{v['unexpected']} |")
    else:
        w("(not measured: see the log of `make bench`)")
    w("")
    lf, lt = pairs.get("lease_field"), pairs.get("lease_table")
    if lf and lt:
        w(f"The pair through lockhier takes {lf['median_us'] / lt['median_us']:.2f}× the lease table's time "
          "(ratio of medians), and unlike the table's lease it is a lock in the server's queue: a request "
          "in its way waits for it, or fails naming it, and it ends at its ttl without anyone polling.")
        w("")

    e = leases.get("expiry", {})
    w("### Expiry")
    w("")
    w("From a lease's `expires_at` to a transaction queued behind it being granted, both read from the "
      "server's clock. Each sample takes a lease on a field of its own with a 1 h ttl; a second connection "
      "asks for a conflicting `lockhier.lock_field` on that field with `wait => '30 s'` and, once granted, "
      "reads `clock_timestamp()` (a round trip later); when `pg_blocking_pids` shows it queued behind the "
      "lease keeper (state, not sleeps, orders the steps), `lockhier.renew_lease(token, ttl => '300 ms')` "
      "moves the expiry close and `expires_at` is read from `lockhier.leases`; latency = the waiter's "
      "`clock_timestamp()` − `expires_at`. A sample whose lease was gone before `expires_at` was read "
      "is discarded and counted.")
    w("")
    if e.get("n"):
        w("| samples | median | p90 | p99 | max | min | discarded | failed |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|")
        w(f"| {e['n']} | {fmt_us(e['median_us'])} | {fmt_us(e['p90_us'])} | {fmt_us(e['p99_us'])} | "
          f"{fmt_us(e['max_us'])} | {fmt_us(e['min_us'])} | {e['discarded']} | {e['failed']} |")
        w("")
        w("The requirement is a release within 1 s of `expires_at`; the keeper sleeps until the next expiry "
          "(at most 1 s at a time) and releases the lease's locks in the lock manager, which wakes the waiter.")
    else:
        w("(not measured)")
    for failure in e.get("failures", []):
        w(f"- failed sample: {failure}")
    w("")
    write_lease_load(w, load, warnings, machine)
    write_lease_scale(w, scale, scale_status, machine)


LOAD_TESTS = {
    "cycle": ("lease cycle", "`lockhier.lease_field(a, t, f, owner, 'field__update', ttl => '1 min') AS token \\gset`, "
              "then `lockhier.release_lease(:token)` (`bench/pgbench/lease_cycle.sql`)",
              "the seed design's upsert-with-takeover, then `DELETE` (`bench/pgbench/lease.sql`)"),
    "renew": ("renewal", "`lockhier.renew_lease(token)` of a lease the client holds (`bench/pgbench/lease_renew.sql`)",
              "`UPDATE bench_lease SET last_renewed_ts = now()` of the row the client holds "
              "(`bench/pgbench/lease_table_renew.sql`)"),
}


def load_ratios(load: Paired, test: str):
    """[(clients, median ratio, per-round ratios)] of lockhier's side over the table's."""
    counts = sorted({c for (tag, c, _) in load.tps if tag == test})
    return [(c, load.ratio(test, c, "lease", "table"), load.ratios(test, c, "lease", "table")) for c in counts]


def lease_load_targets(target, load: Paired):
    cycle = [(c, v) for c, v, _ in load_ratios(load, "cycle") if v is not None]
    target("lease cycle ≥ 1.0× the lease table's cycle, at every client count (durable)", None,
           all(v >= 1.0 for _, v in cycle) if cycle else None,
           ", ".join(f"{v:.2f}× ({c} cl.)" for c, v in cycle) or "not measured")
    at8 = [v for c, v in cycle if c == 8]
    target("lease cycle ≥ 1.5× the lease table's cycle at 8 clients", None, at8[0] >= 1.5 if at8 else None,
           f"{at8[0]:.2f}×" if at8 else "not measured")
    renew = [(c, v) for c, v, _ in load_ratios(load, "renew") if v is not None]
    target("renewal ≥ 1.0× the lease table's (`UPDATE` of `last_renewed_ts`), 1 and 8 clients", None,
           all(v >= 1.0 for _, v in renew) if renew else None,
           ", ".join(f"{v:.2f}× ({c} cl.)" for c, v in renew) or "not measured")


def write_lease_load(w, load: Paired, warnings: dict, machine: dict):
    w("### Leases under load, beside the lease table")
    w("")
    w("Leases replace a lease table; here both run under `pgbench -M prepared` on the same cluster, durable "
      "commits on both sides (`fsync` and `synchronous_commit` on: the keeper flushes its journal before it "
      "answers, the table's commits wait for their WAL flush). Each round runs, at each client count in a new "
      "shuffled order, lockhier's script and the table's one right after the other (the first side first in odd "
      "rounds, second in even ones); the ratio is the median over rounds of lockhier's tps ÷ the table's in the "
      f"same round. {machine.get('lease_rounds', '?')} round(s) of {machine.get('lease_seconds', '?')} s runs "
      "(`bench/lease_load.py`). A cycle counts as one pgbench transaction of two statements. Field ids are "
      "striped by client, so nothing is ever refused.")
    w("")
    for test, (name, ours, theirs) in LOAD_TESTS.items():
        w(f"- {name}: lockhier's is {ours}; the lease table's is {theirs}")
    w("")
    if not load.tps:
        w("(not measured: see the log of `make bench`)")
        w("")
    else:
        w("| test | clients | lockhier tps (median) | lease table tps (median) | lockhier ÷ table | per-round range |")
        w("|---|---:|---:|---:|---:|---:|")
        for test, (name, _, _) in LOAD_TESTS.items():
            for c, ratio, r in load_ratios(load, test):
                w(f"| {name} | {c} | {fmt_tps(load.median(test, c, 'lease'))} | {fmt_tps(load.median(test, c, 'table'))} "
                  f"| {fmt_ratio(ratio)} | {f'{min(r):.2f}× – {max(r):.2f}×' if r else '—'} |")
        w("")
    write_failed(w, load)
    scripts = warnings.get("scripts", {})
    if scripts:
        quiet = all(v["client_warnings"] == 0 and v["server_log_warnings"] == 0 for v in scripts.values())
        w("Warnings: the bench database sets `client_min_messages` and `log_min_messages` to `error` (for the "
          "lock calls' `25P01`, see Method). Before the rounds, each lockhier script above runs 100 transactions "
          f"a client at 2 clients with both set back to `warning` (`PGOPTIONS='{warnings.get('pgoptions', '')}'`): "
          + "; ".join(f"`{name}`: {v['transactions']} transactions, {v['client_warnings']} warning(s) to the client, "
                      f"{v['server_log_warnings']} in the server log ({v['server_log_bytes_added']} bytes added)"
                      for name, v in scripts.items())
          + (". Lease calls in autocommit do not warn, so the setting changes nothing for them." if quiet else
             ". **Lease calls warn**: the figures above are with those warnings silenced by the database's "
             "settings."))
        w("")


def write_lease_scale(w, scale: dict, status: str, machine: dict):
    w("### Many leases held")
    w("")
    levels = scale.get("levels", [])
    w("One lease cycle (`lease_field` then `release_lease`, timed from a psycopg 3 client as above) while other "
      "leases are held, in a cluster of its own sized for them (below): "
      + ", ".join(f"{lv:,}" for lv in levels) + " field leases on distinct fields spread over 997 applications and "
      "89 tables, the timed cycles on fields of their own in the same applications and tables. The levels are "
      "visited there and back (none, then more, a restart, then fewer again), "
      f"{scale.get('samples_per_block', '?')} cycles a visit; a level's figures pool its visits "
      "(`bench/lease_scale.py`).")
    w("")
    if status != "measured":
        w(f"**Not fully measured**: {status.removeprefix('failed: ')}.")
        w("")
    cycles = scale.get("cycles", {})
    if cycles:
        w("| leases held | cycles | median | p90 | p99 | max | median ÷ none held |")
        w("|---:|---:|---:|---:|---:|---:|---:|")
        held_at = scale.get("held_at", {})
        for level, c in cycles.items():
            held = held_at.get(level, int(level))
            shown = f"{int(level):,}" if held == int(level) else f"{int(level):,} ({held:,} + the cycle's own)"
            w(f"| {shown} | {c['n']:,} | {fmt_us(c['median_us'])} | {fmt_us(c['p90_us'])} | {fmt_us(c['p99_us'])} "
              f"| {fmt_us(c['max_us'])} | {fmt_ratio(c.get('ratio_to_none'))} |")
        w("")
        w("Each visit: " + "; ".join(f"{b['level']:,} held ({b['when']}): {fmt_us(b['median_us'])}"
                                     for b in scale.get("blocks", [])) + ".")
        w("")
    st, lt = scale.get("settings", {}), scale.get("lock_table", {})
    if st:
        most = max(levels) if levels else 0
        keeper = scale.get("keeper_at_most", {})
        w(f"Settings for {most:,} leases (in `postgresql.conf`; both need a restart):")
        w("")
        w(f"- `lockhier.max_leases = {st.get('lockhier.max_leases')}`: about 7.1 kB of shared memory a lease (docs/operating.md).")
        w(f"- `max_locks_per_transaction = {st.get('max_locks_per_transaction')}`: the shared lock table has "
          "`max_locks_per_transaction` × (`max_connections` + `autovacuum_max_workers` + 1 + "
          "`max_worker_processes` + `max_wal_senders` + `max_prepared_transactions`) entries, here "
          f"{st.get('max_locks_per_transaction')} × {lt.get('slots', '?')} = {lt.get('entries', 0):,}. A field "
          "lease holds 8 locks (its plan) and its fence; locks on the same key (the global scope, a shared "
          "application or table) are one entry."
          + (f" With {most:,} leases held the keeper held {keeper['lock_table_entries']:,} entries "
             f"(`pg_locks`), {keeper['lock_table_entries'] / most:.1f} a lease." if keeper.get("lock_table_entries")
             else ""))
        w(f"- Shared memory with these settings: `shared_memory_size` = {st.get('shared_memory_size')} "
          f"(`shared_buffers` {st.get('shared_buffers')}), on a machine of {machine.get('ram', '?')}."
          + (f" The keeper's resident memory with {most:,} leases: {keeper['rss']}." if keeper.get("rss") else ""))
        taking = [t for t in scale.get("taking", []) if "leases" in t]
        if taking:
            w("- Taking them: " + "; ".join(f"{t['leases']:,} in {t['seconds']:.1f} s ({t['per_second']:,.0f} a second, "
                                           "4 connections)" for t in taking) + ".")
        w("")
    r = scale.get("restore")
    if r:
        restores = scale.get("restores") or [r]
        w("### Restore after an immediate shutdown")
        w("")
        w("At each level, with the leases held: `CHECKPOINT` (so that WAL replay is short), "
          "`pg_ctl stop -m immediate`, then `pg_ctl start`; from the start command a client connects as soon as "
          "it can and calls `lockhier.lock_field` until one succeeds (a lockhier call waits up to 10 s for the "
          "restore, then fails with `55000`, and is tried again 50 ms later).")
        w("")
        w("| leases | journal | first connection | first lockhier call served | lockhier calls refused meanwhile "
          "| leases held after |")
        w("|---:|---:|---:|---:|---:|---:|")
        for x in restores:
            served = f"**{x['served_s']:.2f} s**" if "served_s" in x else \
                f"**not within {x.get('not_served_within_s', 0):.0f} s**"
            connected = f"{x['connected_s']:.2f} s" if "connected_s" in x else "none"
            after = f"{x['leases_after']:,}" if "leases_after" in x else "—"
            w(f"| {x.get('leases_before', 0):,} | {x.get('journal_records', 0):,} records, "
              f"{x.get('journal_bytes', 0) / 1e6:.1f} MB | {connected} | {served} | "
              f"{x.get('lockhier_calls_failed', 0)} | {after} |")
        w("")
        if "served_s" not in r:
            w(f"Last error: `{r.get('last_error', '')}`. The server's processes when the wait ended:")
            w("")
            w("```")
            for line in r.get("processes", []):
                w(line)
            w("```")
            w("")
        w(f"The server log from the restart with {r.get('leases_before', 0):,} leases (less this client's "
          f"{r.get('server_log_probe_lines', 0)} lines: connections refused while the server started, lockhier "
          "calls refused while the leases were restored):")
        w("")
        w("```")
        for line in r.get("server_log", []):
            w(line)
        w("```")
        w("")


def write_versions(w, versions: Paired, notes: dict, machine: dict):
    w("## PostgreSQL versions")
    w("")
    w(f"`lock_field` beside the stock `pg_advisory_xact_lock` at {VERSION_CLIENTS} clients on each major, "
      "each in a fresh cluster of its own (lockhier preloaded, durable commits, the bench schema), one "
      f"major after another in the same run: {machine.get('pair_rounds', '?')} rounds of one "
      f"{machine.get('pair_seconds', '?')} s run of each script, in alternating order. The ratio is the "
      "median over rounds of the per-round ratio.")
    w("")
    w("| major | server | `lock_field` ÷ `pg_advisory_xact_lock` | per-round range | tps, advisory "
      "| tps, lock_field |")
    w("|---|---|---:|---:|---:|---:|")
    for v in MAJORS:
        status = notes.get(f"{v}.status", "not run")
        if status != "measured":
            w(f"| {v} | {notes.get(f'{v}.postgres', '—')} | {status} | | | |")
            continue
        r = versions.ratios(v, VERSION_CLIENTS, "lock_field", "advisory")
        w(f"| {v} | {notes.get(f'{v}.postgres', '?')} | "
          f"{fmt_ratio(versions.ratio(v, VERSION_CLIENTS, 'lock_field', 'advisory'))} | "
          f"{f'{min(r):.2f}× – {max(r):.2f}×' if r else '—'} | "
          f"{fmt_tps(versions.median(v, VERSION_CLIENTS, 'advisory'))} | "
          f"{fmt_tps(versions.median(v, VERSION_CLIENTS, 'lock_field'))} |")
    w("")
    write_failed(w, versions)


def path_ratios(paths: Paired, side: str):
    """(clients, median ratio of side to lock_field, per-round ratios) at each client count measured."""
    counts = sorted({c for (tag, c, _) in paths.tps if tag == PATHS_TAG})
    return [(c, paths.ratio(PATHS_TAG, c, side, "lock_field"), paths.ratios(PATHS_TAG, c, side, "lock_field"))
            for c in counts]


def path_targets(target, paths: Paired):
    for side, names, floor in PATH_SIDES:
        vals = [(c, v) for c, v, _ in path_ratios(paths, side) if v is not None]
        target(f"`lock_path` with {names} ≥ {floor:.2f}× `lock_field` (side by side, in a transaction)", None,
               all(v >= floor for _, v in vals) if vals else None,
               ", ".join(f"{v:.2f}× ({c} cl.)" for c, v in vals) or "not measured")
    vals = [(c, v) for c, v, _ in many_ratios(paths) if v is not None]
    target(f"`lock_many` of 4 field requests ≥ {MANY_FLOOR}× four `lock_field` calls in one transaction", None,
           all(v >= MANY_FLOOR for _, v in vals) if vals else None,
           ", ".join(f"{v:.2f}× ({c} cl.)" for c, v in vals) or "not measured")


def many_ratios(paths: Paired):
    """(clients, median ratio of lock_many of 4 to 4 lock_field calls, per-round ratios)."""
    counts = sorted({c for (tag, c, side) in paths.tps if tag == PATHS_TAG and side == "many_4"})
    return [(c, paths.ratio(PATHS_TAG, c, "many_4", "field_x4"), paths.ratios(PATHS_TAG, c, "many_4", "field_x4"))
            for c in counts]


def write_paths(w, paths: Paired, status: str, machine: dict):
    w("## Paths")
    w("")
    w("`lock_path` beside `lock_field` on the main cluster, side by side in the same run: a path of 3 names "
      "(three UUIDs, 36 bytes each), one of 8 (`archive/srv/photos/<uuid>/<uuid>/2026/05/<uuid>`) and "
      "`lock_field(a, t, f)`, the ids and UUIDs varied per transaction and the last one striped by client "
      "(no two clients meet). Each is one call wrapped in a transaction, `BEGIN; SELECT ...; COMMIT` (three "
      "statements: the round trips weigh on all three alike), as the calls are used "
      "(`bench/pgbench/lock_field_tx.sql`, `lock_path_3.sql`, `lock_path_8.sql`). Each round runs the three "
      "one after the other, the order turning by one each round, "
      f"{machine.get('pair_seconds', '?')} s a run, {machine.get('pair_rounds', '?')} rounds; a ratio is the "
      "median over rounds of the per-round ratio.")
    w("")
    if status != "measured":
        w(f"**Not measured**: {status.removeprefix('failed: ')}.")
        w("")
    rows = {side: {c: (v, r) for c, v, r in path_ratios(paths, side)} for side, _, _ in PATH_SIDES}
    counts = sorted({c for (tag, c, _) in paths.tps if tag == PATHS_TAG})
    if counts:
        w("| clients | tps, `lock_field` | tps, 3 names | tps, 8 names | 3 names ÷ `lock_field` (range) "
          "| 8 names ÷ `lock_field` (range) |")
        w("|---:|---:|---:|---:|---:|---:|")
        for c in counts:
            cells = []
            for side, _, _ in PATH_SIDES:
                v, r = rows[side].get(c, (None, []))
                cells.append(f"{fmt_ratio(v)} ({min(r):.2f}× – {max(r):.2f}×)" if r else "—")
            w(f"| {c} | {fmt_tps(paths.median(PATHS_TAG, c, 'lock_field'))} "
              f"| {fmt_tps(paths.median(PATHS_TAG, c, 'path_3'))} | {fmt_tps(paths.median(PATHS_TAG, c, 'path_8'))} "
              f"| {cells[0]} | {cells[1]} |")
        w("")
    many = many_ratios(paths)
    w("In the same rounds, four field locks in one transaction: four `lock_field` calls (four round trips, "
      "`bench/pgbench/lock_field_x4.sql`) beside one `lock_many` of the same four requests, sent as JSON text "
      "(`lock_many_4.sql`).")
    w("")
    if many:
        w("| clients | tps, 4 × `lock_field` | tps, `lock_many` of 4 | `lock_many` ÷ 4 × `lock_field` (range) |")
        w("|---:|---:|---:|---:|")
        for c, v, r in many:
            w(f"| {c} | {fmt_tps(paths.median(PATHS_TAG, c, 'field_x4'))} | {fmt_tps(paths.median(PATHS_TAG, c, 'many_4'))} "
              f"| {fmt_ratio(v)} ({min(r):.2f}× – {max(r):.2f}×) |" if r else f"| {c} | — | — | — |")
        w("")
    write_failed(w, paths)


def only_section(R: Path, section: str):
    """BENCH_ONLY=paths or leases: that section and its targets, printed."""
    machine = read_kv(R / "machine.txt")
    md, targets = [], []

    def target(name, _value, ok, shown):
        targets.append((name, shown, "—" if ok is None else ("met" if ok else "not met")))

    if section == "paths":
        paths = Paired(R / "paths.csv")
        write_paths(md.append, paths, read_kv(R / "paths.txt").get("status", "not run"), machine)
        path_targets(target, paths)
    else:
        load = Paired(R / "lease_load.csv")
        warnings = json.loads((R / "lease_warnings.json").read_text()) if (R / "lease_warnings.json").exists() else {}
        write_lease_load(md.append, load, warnings, machine)
        lease_load_targets(target, load)
    print("\n".join(md))
    print(f"load average before the run: {machine.get('load_before', '?')}, after: {machine.get('load_after', '?')}")
    for name, shown, verdict in targets:
        print(f"  {verdict:<8} {name}: {shown}")


def write_failed(w, paired: Paired):
    if paired.failed:
        w(f"**{len(paired.failed)} pgbench run(s) failed** and are left out: "
          + ", ".join(f"{r['side']} ({r['tag']}, {r['clients']} cl., round {r['round']})" for r in paired.failed)
          + "; their output is in `failed-*.log` beside the raw results.")
        w("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--only", choices=["paths", "leases"], help="print one section and its targets (BENCH_ONLY)")
    args = ap.parse_args()
    R = args.results
    if args.only:
        only_section(R, args.only)
        return
    if not args.markdown or not args.plot:
        ap.error("--markdown and --plot are required")
    machine = read_kv(R / "machine.txt")
    settings = read_kv(R / "settings.txt")
    res = Results(R / "throughput.csv")
    conflict = json.loads((R / "conflict.json").read_text())
    timing = (R / "plan_timing.txt").read_text().rstrip().splitlines() if (R / "plan_timing.txt").exists() else []
    fsync = fsync_rate((R / "pg_test_fsync.txt").read_text()) if (R / "pg_test_fsync.txt").exists() else None
    preload = Paired(R / "preload.csv")
    preload_status = read_kv(R / "preload.txt").get("status", "not run")
    versions = Paired(R / "versions.csv")
    paths = Paired(R / "paths.csv")
    paths_status = read_kv(R / "paths.txt").get("status", "not run")
    version_notes = read_kv(R / "versions.txt")
    leases = json.loads((R / "leases.json").read_text()) if (R / "leases.json").exists() else {}
    load = Paired(R / "lease_load.csv")
    warnings = json.loads((R / "lease_warnings.json").read_text()) if (R / "lease_warnings.json").exists() else {}
    scale = json.loads((R / "lease_scale.json").read_text()) if (R / "lease_scale.json").exists() else {}
    scale_status = read_kv(R / "lease_scale.txt").get("status", "not run")
    smoke = machine.get("quick") == "1"
    rounds = len(res.rounds)
    pg = machine.get("pg", "?")

    title = (f"{'SMOKE RUN (not a measurement)' + chr(10) if smoke else ''}pgbench -M prepared, "
             f"{machine.get('cpus', '?')} CPUs, PostgreSQL {machine.get('postgres', '?')}, "
             f"{rounds} round(s) × {machine.get('seconds_per_run', '?')} s")
    plot(res, args.plot, title)

    md = []
    w = md.append
    w("# Benchmarks")
    w("")
    w("<!-- Generated by scripts/bench.sh (make bench) with bench/report.py; do not edit by hand. -->")
    w("")
    if smoke:
        w("> **SMOKE RUN — these figures are not a measurement.** They come from `BENCH_QUICK=1` "
          f"({rounds} round(s) of {machine.get('seconds_per_run', '?')} s runs) on a machine that may have been "
          "busy with other work. Run `make bench` on a quiet "
          "machine for the real figures.")
        w("")
    # The load before the run is the machine's; after it, it is mostly the run's own.
    before = machine.get("load_before", "").split()
    if before and float(before[0]) >= 1.0:
        w(f"> **Measured on a loaded machine**: the load average was {machine['load_before']} (1, 5 and 15 "
          "minutes) as the run started (other work shared the 2 CPUs and the disk), so every figure here is "
          "noisier and slower than on a quiet machine; ratios of runs made side by side suffer least."
          + (f" {machine['note']}" if machine.get("note") else ""))
        w("")
    elif machine.get("note"):
        w(f"> {machine['note']}")
        w("")
    w(f"lockhier's lock calls beside the stock advisory lock they are built on and the designs they "
      f"replace, all through `pgbench -M prepared` against one local PostgreSQL {pg} cluster; "
      f"the conflict path timed from a client; leases: what loading lease support costs a lock call, "
      f"a lease taken and released, how soon an expired lease lets a waiter in, leases under load beside "
      f"the lease table they replace, a lease's latency with many held, and their restore after an "
      f"immediate shutdown; `lock_field` beside "
      f"the stock lock on each PostgreSQL major; the planner timed in release mode. All in one run "
      f"(`make bench`), measured {machine.get('date', '?')} at commit `{machine.get('git', '?')}`.")
    w("")

    # ---------------------------------------------------------------- targets
    targets = []
    c1, c2 = 1, 2

    def target(name, value, ok, shown):
        targets.append((name, shown, "—" if ok is None else ("**met**" if ok else "**not met**")))

    r1 = res.ratio("lock_field", BASELINE, c1)
    target("`lock_field` ≥ 0.90× the stock single advisory lock, 1 client", r1, None if r1 is None else r1 >= 0.90,
           fmt_ratio(r1))
    r2 = res.ratio("lock_field", BASELINE, c2)
    target("`lock_field` ≥ 0.70× the stock single advisory lock, 2 clients", r2, None if r2 is None else r2 >= 0.70,
           fmt_ratio(r2))
    for d in REPLACED:
        vals = [(c, res.ratio("lock_field", d, c)) for c in res.clients]
        vals = [(c, v) for c, v in vals if v is not None]
        shown = ", ".join(f"{v:.1f}× ({c} cl.)" for c, v in vals) or "—"
        ok = all(v >= 10 for _, v in vals) if vals else None
        target(f"`lock_field` ≥ 10× {BY_NAME[d].label} (synchronous_commit on)", None, ok, shown)
    # Not targets: the writing designs at their fastest, shown under the table.
    async_rows = []
    for d in REPLACED:
        vals = [(c, res.ratio("lock_field", d + "_async", c)) for c in res.clients]
        shown = ", ".join(f"{v:.1f}× ({c} cl.)" for c, v in vals if v is not None) or "—"
        async_rows.append((BY_NAME[d].label, shown))
    hot = [(c, res.ratio("lock_field_hot", "lock_field", c)) for c in res.clients if c >= 2]
    hot = [(c, v) for c, v in hot if v is not None]
    target("hot spot (one application) ≥ 0.8× spread (random applications), ≥ 2 clients", None,
           all(v >= 0.8 for _, v in hot) if hot else None,
           ", ".join(f"{v:.2f}× ({c} cl.)" for c, v in hot) or "—")
    cf = conflict["variants"].get("lock_field_error", {})
    target("conflict error: median < 1 ms", None, None if not cf else cf["median_us"] < 1000, fmt_us(cf.get("median_us")))
    target("conflict error: p99 < 5 ms", None, None if not cf else cf["p99_us"] < 5000, fmt_us(cf.get("p99_us")))
    loaded = [(c, preload.ratio(pg, c, "preloaded", "not_preloaded")) for c in PRELOAD_CLIENTS]
    loaded = [(c, v) for c, v in loaded if v is not None]
    target("`lock_field` with lease support loaded ≥ 0.97× without", None,
           all(v >= 0.97 for _, v in loaded) if loaded else None,
           ", ".join(f"{v:.2f}× ({c} cl.)" for c, v in loaded) or "not measured (see Leases)")
    pair = leases.get("pairs", {}).get("lease_field", {})
    target("`lease_field` + `release_lease` median ≤ 2 ms (durable)", None,
           None if not pair else pair["median_us"] <= 2000, fmt_us(pair.get("median_us")))
    exp = leases.get("expiry", {})
    target("expiry: waiter granted within 1 s of `expires_at` (p99)", None,
           None if not exp.get("n") else exp["p99_us"] <= 1_000_000, fmt_us(exp.get("p99_us")))
    lease_load_targets(target, load)
    for level, c in scale.get("cycles", {}).items():
        if level != "0" and c.get("ratio_to_none") is not None:
            target(f"a lease cycle with {int(level):,} leases held ≤ 1.2× none held (median)", None,
                   c["ratio_to_none"] <= 1.2,
                   f"{c['ratio_to_none']:.2f}× ({fmt_us(c['median_us'])} vs {fmt_us(scale['cycles']['0']['median_us'])})")
    path_targets(target, paths)
    rs = scale.get("restore")
    if rs:
        target(f"restore of {rs.get('leases_before', 0):,} leases after an immediate shutdown: first lockhier call "
               "served (no target: measured)", None, None,
               f"{rs['served_s']:.2f} s" if "served_s" in rs else f"not within {rs.get('not_served_within_s', 0):.0f} s")

    w("## Targets")
    w("")
    w("Ratios are medians over rounds of the ratio within a round (each round runs every design, so "
      "drift in the machine's speed cancels out).")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    for name, shown, verdict in targets:
        w(f"| {name} | {shown} | {verdict} |")
    w("")
    per_round = res.ratios("lock_field", BASELINE, c1)
    if per_round:
        w(f"At 1 client the figures are mostly round-trip noise on this virtual machine: the ratio of "
          f"`lock_field` to the stock lock ranged {min(per_round):.2f}×–{max(per_round):.2f}× from round "
          "to round, and a median above 1 means noise, not a lock call faster than the one it adds "
          "seven to. The steadier measure is the cost per call inside the server (below).")
        w("")
    floor_row = [(c, res.ratio("select1", "row_nowait", c)) for c in res.clients]
    floor_shown = ", ".join(f"{v:.1f}× ({c} cl.)" for c, v in floor_row if v is not None) or "—"
    w("Where a 10× target is missed, the floor is the reason: `SELECT 1`, the round trip with no lock "
      f"at all, is only {floor_shown} faster than the row-lock design, whose commit waits for a "
      "flush of its WAL (this disk flushes in about "
      f"{f'{fsync[1]:,.0f}' if fsync else '?'} µs; cloud volumes commonly take 1 ms or more). No lock call "
      "can beat the round trip it travels in, so on this machine lockhier's margin over the row "
      "lock is bounded by the floor's; at 4 clients the 2 CPUs are also saturated, which costs "
      "`lock_field` its 8 locks' worth of CPU.")
    w("")
    w("Not targets, for information: the designs lockhier replaces at their fastest, with "
      "`synchronous_commit = off` (a crash may then lose a lease or a blob entry that its holder "
      "already acted on), against `lock_field`:")
    w("")
    w("| design, synchronous_commit off | `lock_field` is |")
    w("|---|---|")
    for label, shown in async_rows:
        w(f"| {label} | {shown} |")
    w("")
    if res.failed:
        w(f"**{len(res.failed)} pgbench run(s) failed** and are left out: "
          + ", ".join(f"{r['design']} ({r['clients']} cl., round {r['round']})" for r in res.failed)
          + f"; their output is in `{R.name}/failed-*.log`.")
        w("")

    # ---------------------------------------------------------------- reproduce
    w("## Reproduce")
    w("")
    w("```")
    w("make bench           # PostgreSQL 15")
    w("make bench PG=18     # or another major: 15, 16, 17, 18")
    w("```")
    w("")
    measured = [v for v in MAJORS if version_notes.get(f"{v}.status") == "measured"]
    w(f"This run, on PostgreSQL {pg}: {rounds} round(s); each round runs every design at each client count "
      f"({machine.get('clients', '?')}) for {machine.get('seconds_per_run', '?')} s, in a new shuffled order; "
      f"{conflict.get('samples_per_variant', '?')} timed calls per conflict-path variant; the side-by-side "
      f"comparisons {machine.get('pair_rounds', '?')} rounds of {machine.get('pair_seconds', '?')} s runs; "
      f"{machine.get('lease_samples', '?')} lease pairs per design and {machine.get('expiry_samples', '?')} "
      f"expiries; leases under load {machine.get('lease_rounds', '?')} rounds of {machine.get('lease_seconds', '?')} s "
      f"runs (cycles at {machine.get('lease_clients', '?')} clients, renewals at {machine.get('renew_clients', '?')}); "
      f"a cycle timed with 0 and {machine.get('held', '?')} leases held, {machine.get('scale_samples', '?')} cycles a "
      f"visit; lock_field beside the stock lock on PostgreSQL {', '.join(measured) or 'none'}; "
      f"{int(machine.get('duration_s', 0)) // 60} min in all.")
    w("")
    w("`make bench` takes about 45 minutes on 2 cores (11 for the pgbench rounds and the conflict path, "
      "3 for leases timed from a client, 7 for leases under load, 20 for leases at scale, nearly all of them "
      "the restore of 100,000 leases, about 1 per PostgreSQL major), plus a minute or so per major whose package "
      "build of lockhier (the `dist` profile, fat LTO) is out of date (several for the first build). It "
      "installs what it needs (`scripts/setup.sh` installs PostgreSQL 15 to 18; `LOCKHIER_PG_VERSIONS` "
      "picks which, and a major left out is reported as skipped) and the package build of lockhier into "
      "each major where the "
      "installed one is missing, not this checkout's package build, or older than its sources. "
      "Settings, all optional: `PG` (the major measured in full, default 15), `BENCH_SECONDS` (seconds of "
      "pgbench measurement in all, default 600, split evenly over the runs), `BENCH_ROUNDS` (default 4), "
      "`BENCH_CLIENTS` (default `1 2 4`), `BENCH_SAMPLES` (conflict-path calls per variant, default 4000), "
      "`BENCH_PAIR_ROUNDS` and `BENCH_PAIR_SECONDS` (the side-by-side comparisons: rounds, default 10, and "
      "seconds a run, default 3), `BENCH_LEASE_SAMPLES` (timed pairs per lease design, default 2000), "
      "`BENCH_EXPIRY_SAMPLES` (expiries timed, default 100), `BENCH_LEASE_ROUNDS` and `BENCH_LEASE_SECONDS` "
      "(leases under load: rounds, default 6, and seconds a run, default 5), `BENCH_LEASE_CLIENTS` (default "
      "`1 2 4 8`) and `BENCH_RENEW_CLIENTS` (default `1 8`), `BENCH_HELD` (leases held while a cycle is timed, "
      "default `10000 100000`), `BENCH_SCALE_SAMPLES` (cycles a visit, default 2000), `BENCH_RESTORE_TIMEOUT` "
      "(default 1800 s), `BENCH_INSTALL=1` to rebuild and reinstall "
      "lockhier first (`0`: only where it is missing), `BENCH_QUICK=1` for a smoke run of about 3 minutes "
      "(labelled as such here), `BENCH_ONLY=paths` for the paths and `lock_many` comparison alone (about 7 minutes, printed "
      "with its targets, its raw results in `bench/results-paths/`, this page left as it is). Raw results "
      "land in `bench/results/` (`throughput.csv`, `conflict.json`, "
      "`preload.csv`, `paths.csv`, `leases.json`, `lease_load.csv`, `lease_warnings.json`, `lease_scale.json`, "
      "`versions.csv`, `versions.txt`, `plan_timing.txt`, `machine.txt`, `settings.txt`).")
    w("")

    # ---------------------------------------------------------------- machine
    w("## Machine and cluster")
    w("")
    w(f"- CPU: {machine.get('cpu', '?')}, {machine.get('cpus', '?')} CPUs "
      f"({machine.get('cores_per_socket', '?')} cores per socket, {machine.get('threads_per_core', '?')} "
      f"thread(s) per core){', ' + machine['hypervisor'] + ' guest' if machine.get('hypervisor') else ''}; "
      f"RAM {machine.get('ram', '?')}")
    w(f"- {machine.get('os', '?')}, Linux {machine.get('kernel', '?')}; load average before/after: "
      f"{machine.get('load_before', '?')} / {machine.get('load_after', '?')}")
    w(f"- PostgreSQL {machine.get('postgres', '?')} ({machine.get('pgbench', '?')}); lockhier "
      f"{machine.get('lockhier', '?')}, release build installed {machine.get('lockhier_so', '?')}; {machine.get('rustc', '')}")
    if fsync:
        w(f"- Disk: `pg_test_fsync` fdatasync of one 8 kB write: {fsync[0]:,.0f} ops/s ({fsync[1]:,.0f} µs each) — "
          f"what a durable commit waits for")
    w("- pgbench and the server share the machine: `-c N -j N` over the Unix socket, so at 2 clients "
      "the two client threads and two backends share 2 CPUs")
    w("")
    w("Cluster: a fresh `initdb` each run (`scripts/cluster.sh`), with lockhier in "
      "`shared_preload_libraries` (its lease keeper running), then PostgreSQL's defaults for "
      "durability put back: `fsync = on`, `full_page_writes = on`, `synchronous_commit = on`. "
      "The other clusters of the run (one without lease support; one per PostgreSQL major) are made "
      "the same way, one at a time beside it or after it. "
      "That is the fair setting: the lease table, the JSON blob and the row lock write and WAL-log "
      "rows, and in production they wait for a durable commit (a lease that can vanish in a crash "
      "while its holder runs on is no lock); lockhier's and the stock advisory locks write no WAL at all, so "
      "the setting does not touch them. Because that makes the writing designs' figures depend on "
      "this disk, the `*_async` rows run the same scripts with `synchronous_commit = off` for their "
      "sessions (`PGOPTIONS`), the designs at their fastest, and the targets are checked against both.")
    w("")
    w("| setting | value |")
    w("|---|---|")
    for k, v in settings.items():
        w(f"| `{k}` | `{v}` |")
    w("")

    # ---------------------------------------------------------------- throughput
    w("## Throughput")
    w("")
    w(f"![throughput per design]({args.plot.relative_to(args.markdown.parent) if args.plot.is_relative_to(args.markdown.parent) else args.plot})")
    w("")
    w("Each pgbench transaction is one lock taken and released, as the design does it: lock-only "
      "designs are one autocommit statement (the lock is released at its commit), the session pairs and "
      "the lease and blob designs two (take, then release in a second transaction). "
      "No two clients ever ask for the same node (ids are striped by client), since pgbench 15 aborts a client "
      "on an error; the conflict path is timed separately below.")
    w("")
    for c in res.clients:
        w(f"### {c} client{'s' if c > 1 else ''}")
        w("")
        w("| design | what | tps (median) | min – max | × stock advisory lock |")
        w("|---|---|---:|---:|---:|")
        for d in DESIGNS:
            m = res.median(d.name, c)
            if m is None and not any(r["design"] == d.name and int(r["clients"]) == c for r in res.failed):
                continue
            a, b = res.spread(d.name, c)
            ratio = res.ratio(d.name, BASELINE, c)
            name = f"**{d.name}**" if d.name in ("lock_field", BASELINE) else d.name
            w(f"| {name} | {d.what} | {fmt_tps(m)} | {fmt_tps(a)} – {fmt_tps(b)} | {fmt_ratio(ratio)} |")
        w("")

    # ---------------------------------------------------------------- conflict path
    w("## Conflict path")
    w("")
    w("From the call to the error (or `false`) while another session holds the lock, timed in a "
      "psycopg 3 client (`bench/conflict.py`): prepared statements in autocommit over the Unix socket, "
      "so each figure includes the round trip and the client's own work. lockhier's error names the "
      "holder, which costs a read of the lock table and the backend status array; the `false` of "
      "`try_lock_field` and the success-path rows show what that lookup adds. "
      f"{conflict.get('samples_per_variant', '?')} calls per variant, spread over {conflict.get('rounds', '?')} "
      "round(s) in shuffled order. Every error is also written to the server log with its statement "
      "(`log_min_error_statement = error`, the default), as in production.")
    w("")
    w("| variant | what | median | p90 | p99 | max | not as expected |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for name, v in conflict["variants"].items():
        nm = f"**{name}**" if name == "lock_field_error" else name
        w(f"| {nm} | {v['what']} | {fmt_us(v['median_us'])} | {fmt_us(v['p90_us'])} | {fmt_us(v['p99_us'])} | "
          f"{fmt_us(v['max_us'])} | {v['unexpected']} |")
    w("")
    ex = conflict["variants"].get("lock_field_error", {}).get("example")
    if ex:
        w("The error the client got (`lock_field_error`):")
        w("")
        w("```")
        w(f"ERROR:  {ex}")
        w("```")
        w("")

    ins = conflict.get("in_server")
    if ins:
        w("## Cost per call inside the server")
        w("")
        w("pgbench's tps is mostly round trip. Here many calls run in one statement (`SELECT count(f(i)) FROM "
          "generate_series(...)`), net of the same statement without the lock; transaction locks: 400 calls a "
          "statement, released at its commit (included); session pairs: 2,000 a statement. Median of "
          f"{conflict.get('in_server_repeats', '?')} statements each. (Transaction locks in one statement take the "
          "global scope's two keys once and then only count them again in the backend, which a one-call "
          "transaction does not enjoy.)")
        w("")
        w("| calls | µs per call |")
        w("|---|---:|")
        for name, v in ins.items():
            w(f"| {v['what']} | {v['us_per_call']:.2f} |")
        w("")
        lf, a8, a1 = (ins.get(k, {}).get("us_per_call") for k in ("lock_field_xact", "advisory8_xact", "advisory_xact"))
        if lf and a8 and a1:
            w(f"`lock_field` costs {lf / a1:.1f}× one stock lock and {lf / a8:.2f}× eight stock lock calls "
              f"({lf - a8:+.2f} µs): its cost is mostly the lock manager's, one acquisition and release per "
              f"step of its plan; the rest is its own work (arguments, plan, registry) less the seven extra "
              f"SQL function calls the stock row makes.")
            w("")

    write_paths(w, paths, paths_status, machine)
    write_leases(w, preload, preload_status, leases, pg, machine, load, warnings, scale, scale_status)
    write_versions(w, versions, version_notes, machine)

    # ---------------------------------------------------------------- planner
    w("## Planner and keys")
    w("")
    w("`src/core/benches/plan_timing.rs`, a bench target that `make bench` runs in release mode "
      "(`cargo bench --profile dist -p lockhier-core --bench plan_timing`): the pure Rust planner "
      "(`Plan::of`) and key function, ids varied per call, best and median of 7 rounds of 200,000 "
      "calls. It fails if a field plan costs 1 µs or more.")
    w("")
    if timing:
        w("```")
        for line in timing:
            w(line)
        w("```")
    else:
        w("(not run)")
    w("")

    # ---------------------------------------------------------------- method
    w("## Method")
    w("")
    w("- Scripts: `bench/pgbench/*.sql`, one per design; the tables of the replaced designs: "
      "`bench/schema.sql` (200,000 field rows, 1,000 applications). Application ids are drawn from "
      "1,000, table ids from 1,000, field ids from 200,000, striped by pgbench's `client_id`.")
    w("- Every run: `pgbench -n -M prepared -c N -j N -T S`. Before the rounds every script runs "
      "200 transactions per client count, unrecorded (library load, caches).")
    w("- The baseline of every ratio is `advisory`: one stock `pg_advisory_xact_lock` on a random key. "
      "`lock_field` takes 8 locks (intention locks on the global scope, the application and the "
      "table, for `all` and for its class, then the field's own), so the ratio tells what the hierarchy, "
      "the classes and the error costs over the bare lock.")
    w("- `advisory_tree` is the stock emulation of the hierarchy in two modes: share locks on the "
      "application's and the table's keys, an exclusive lock on the field's: no classes, no global "
      "scope, no markers.")
    w("- The designs lockhier replaces take the same field ids: the row lock a `bench_field` row; the lease "
      "table one row per locked field (`resource` text key), deleted in a second transaction; the JSON "
      "blob one row per application, an entry added (unless the application or the field is taken) and "
      "removed in two transactions. Each is the cheapest faithful form: one statement a transaction, "
      "no `BEGIN`/`COMMIT` round trips.")
    w("- What the durable commit means for each: a lease or a blob entry must be committed before the "
      "operation starts (or no one else sees it), so its flush is part of the design's cost however it is used. "
      "A row lock only sets the row's `xmax`, but that too is WAL-logged and makes its transaction wait for a "
      "flush at commit; inside a transaction that writes anyway the flush is shared, and the row design's "
      "marginal cost is nearer its `row_nowait_async` figure. Lock-only transactions (lockhier, the stock advisory "
      "locks) write no WAL and wait for no flush.")
    w("- Autovacuum runs as usual (the lease and blob designs churn rows).")
    w("- lockhier warns (`25P01`) when a transaction lock is taken in autocommit, as each one-statement "
      "transaction here takes it; in use the lock is taken after `BEGIN`, where it does not warn. So the "
      "bench database sets `client_min_messages` and `log_min_messages` to `error`: the figures leave out "
      "the delivery of a warning per call (to the client and to the server log), not the lock's work. "
      "Errors are still logged and sent.")
    w("- Side-by-side comparisons (`bench/paired.py`: lease support loaded or not, `lock_path` beside "
      "`lock_field`, and each major's `lock_field` beside its stock lock): each round runs one side and then "
      "the other (or the others), the order turning by one side each round (with two sides: the first side "
      "first in odd rounds and second in even ones), at each client count; the ratio is the median over "
      "rounds of the per-round ratio, so drift in the machine's speed between rounds cancels out.")
    w("- Leases (`bench/leases.py`) are timed in a psycopg 3 client like the conflict path: prepared "
      "statements in autocommit, one call a transaction, each figure including its round trips.")
    w("- Leases under load (`bench/lease_load.py`) are pgbench runs like the throughput rounds, paired as the "
      "side-by-side comparisons are; leases at scale (`bench/lease_scale.py`) run in a cluster of their own, "
      "made like the others and then given `lockhier.max_leases` and `max_locks_per_transaction` for the most "
      "leases held (see Many leases held).")
    w("")

    # ---------------------------------------------------------------- raw
    w("## Raw throughput per round")
    w("")
    w("| design | clients | " + " | ".join(f"round {r}" for r in res.rounds) + " |")
    w("|---|---:|" + "---:|" * len(res.rounds))
    for d in DESIGNS:
        for c in res.clients:
            t = res.tps.get((d.name, c))
            if not t:
                continue
            w(f"| {d.name} | {c} | " + " | ".join(fmt_tps(t.get(r)) for r in res.rounds) + " |")
    w("")
    args.markdown.write_text("\n".join(md))
    print(f"wrote {args.markdown} and {args.plot}")
    for name, shown, verdict in targets:
        print(f"  {verdict.strip('*'):<8} {name}: {shown}")


if __name__ == "__main__":
    main()
