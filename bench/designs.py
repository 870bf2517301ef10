"""The designs `make bench` compares, in the order the report lists them.

Each is a pgbench script of bench/pgbench/ run with `-M prepared`, optionally with PGOPTIONS
(the `*_async` variants run the write designs with synchronous_commit=off for their session).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Design:
    name: str
    script: str
    label: str  # short, for the plot
    what: str  # one line, for the tables
    group: str  # "floor", "stock", "lockhier", "replaced"
    pgoptions: str = ""


ASYNC = "-c synchronous_commit=off"

DESIGNS = [
    Design("select1", "select1", "SELECT 1", "`SELECT 1`: the round-trip floor", "floor"),
    Design("advisory", "advisory", "stock advisory lock",
           "`pg_advisory_xact_lock(random key)`: the stock single lock, **the baseline**", "stock"),
    Design("advisory_tree", "advisory_tree", "stock 2-mode hierarchy",
           "`pg_advisory_xact_lock_shared` on application and table keys, `pg_advisory_xact_lock` on the field key",
           "stock"),
    Design("lock_field", "lock_field", "lockhier lock_field",
           "`lockhier.lock_field(a, t, f, 'field__update')`, random application (spread), 8 locks", "lockhier"),
    Design("lock_field_hot", "lock_field_hot", "lockhier lock_field, hot app",
           "the same, every client in application 1 (hot spot)", "lockhier"),
    Design("lock_table", "lock_table", "lockhier lock_table",
           "`lockhier.lock_table(a, t, 'field__deletion')`, 7 locks", "lockhier"),
    Design("lock_application", "lock_application", "lockhier lock_application",
           "`lockhier.lock_application(a, 'app_task')`, 5 locks", "lockhier"),
    Design("session_pair", "session_pair", "lockhier session lock+unlock",
           "`lockhier.session_lock_field` then `lockhier.session_unlock_field` (2 statements)", "lockhier"),
    Design("advisory_session_pair", "advisory_session_pair", "stock session lock+unlock",
           "`pg_advisory_lock` then `pg_advisory_unlock` (2 statements)", "stock"),
    Design("row_nowait", "row_nowait", "row FOR UPDATE NOWAIT",
           "`SELECT id FROM bench_field WHERE id = f FOR UPDATE NOWAIT` (one-statement transaction)", "replaced"),
    Design("lease", "lease", "lease table",
           "lease table: `INSERT ... ON CONFLICT DO UPDATE ... WHERE last_renewed_ts < now() - '5 min'`, "
           "then `DELETE` (2 transactions)", "replaced"),
    Design("blob", "blob", "JSON blob",
           "JSON blob row per application: `UPDATE` to add the entry, `UPDATE` to remove it (2 transactions)",
           "replaced"),
    Design("lock_rows_async", "lock_rows", "lockhier lock_rows, sync. commit off",
           "`lockhier.lock_rows('bench_field', ARRAY[f])`: the same row lock through lockhier's helper, "
           "`synchronous_commit = off` (compare with `row_nowait_async`)", "lockhier", ASYNC),
    Design("row_nowait_async", "row_nowait", "row NOWAIT, sync. commit off",
           "row lock as above, `synchronous_commit = off`", "replaced", ASYNC),
    Design("lease_async", "lease", "lease table, sync. commit off",
           "lease table as above, `synchronous_commit = off`", "replaced", ASYNC),
    Design("blob_async", "blob", "JSON blob, sync. commit off",
           "JSON blob as above, `synchronous_commit = off`", "replaced", ASYNC),
]

# Run only side by side (bench/paired.py, tag "paths"), not in the throughput rounds: each is one
# lock call after BEGIN, as it is used, so that the three compare like for like; and four field
# locks, as four calls or one lock_many, in one transaction.
PATH_DESIGNS = [
    Design("lock_field_tx", "lock_field_tx", "lockhier lock_field, in a transaction",
           "`BEGIN; lockhier.lock_field(a, t, f, 'field__update'); COMMIT`", "lockhier"),
    Design("lock_path_3", "lock_path_3", "lockhier lock_path, 3 names",
           "`BEGIN; lockhier.lock_path(ARRAY[3 UUIDs], 'field__update'); COMMIT`", "lockhier"),
    Design("lock_path_8", "lock_path_8", "lockhier lock_path, 8 names",
           "`BEGIN; lockhier.lock_path(ARRAY['archive', 'srv', 'photos', 3 UUIDs, '2026', '05'], "
           "'field__update'); COMMIT`", "lockhier"),
    Design("lock_field_x4", "lock_field_x4", "lockhier lock_field x 4, in a transaction",
           "`BEGIN; 4 x lockhier.lock_field(a, t, f, 'field__update'); COMMIT` (4 round trips for the locks)",
           "lockhier"),
    Design("lock_many_4", "lock_many_4", "lockhier lock_many of 4 fields",
           "`BEGIN; lockhier.lock_many('[4 field requests]'); COMMIT` (one round trip for the locks)", "lockhier"),
]

BY_NAME = {d.name: d for d in DESIGNS + PATH_DESIGNS}
BASELINE = "advisory"
