-- The tables the "designs lockhier replaces" work on. Loaded by scripts/bench.sh into a fresh
-- database; psql variables: fields (rows of bench_field), applications (lease/blob rows).
CREATE EXTENSION IF NOT EXISTS lockhier;

-- A field table like a no-code builder's: what SELECT ... FOR UPDATE NOWAIT locks a row of.
CREATE TABLE bench_field (
    id          bigint PRIMARY KEY,
    table_id    bigint NOT NULL,
    name        text   NOT NULL,
    type        text   NOT NULL,
    description text
);
INSERT INTO bench_field (id, table_id, name, type, description)
SELECT i, 1 + i / 20, 'field ' || i, 'text', repeat('x', 40)
  FROM generate_series(1, :fields) AS i;

-- A lease table: one row per locked resource while it is held, taken over once stale.
CREATE TABLE bench_lease (
    resource        text        PRIMARY KEY,
    holder          text        NOT NULL,
    last_renewed_ts timestamptz NOT NULL
);

-- One JSON blob of "operations in progress" per application.
CREATE TABLE bench_app_locks (
    application_id bigint PRIMARY KEY,
    locks          jsonb  NOT NULL DEFAULT '{}'
);
INSERT INTO bench_app_locks (application_id) SELECT generate_series(1, :applications);

VACUUM ANALYZE;
CHECKPOINT;
