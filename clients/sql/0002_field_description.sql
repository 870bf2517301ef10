-- Migration 0002: adds a column; must not run beside live field edits of application 7.
--   psql -v ON_ERROR_STOP=1 -f 0002_field_description.sql
-- On a conflict psql stops with exit code 3 and "operation in progress: ...", applying nothing.
BEGIN;
-- Wait up to 30 s for the field edits, imports and snapshots of application 7 in progress,
-- then keep new ones out until COMMIT.
SELECT lockhier.lock_application(7, wait => '30 s');
ALTER TABLE database_field ADD COLUMN description text NOT NULL DEFAULT '';
COMMIT;
