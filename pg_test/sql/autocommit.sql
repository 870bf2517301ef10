-- A transaction lock taken outside a transaction block (in autocommit) is released when its
-- statement ends: lockhier warns, with SQLSTATE 25P01 as SET LOCAL does. No warning inside a
-- transaction block, an implicit one (statements sent together) or a subtransaction, nor for
-- session locks, which are meant to outlive the statement.
\set VERBOSITY default
SELECT lockhier.lock_field(7, 12, 99, 'field__update');
SELECT lockhier.try_lock_table(7, 12, 'import', 'share');
\set VERBOSITY sqlstate
SELECT lockhier.lock_application(7);
\set VERBOSITY default
CREATE TABLE autocommit_rows (id int PRIMARY KEY);
INSERT INTO autocommit_rows VALUES (1), (2);
SELECT lockhier.lock_rows('autocommit_rows', ARRAY[1]);
SELECT lockhier.try_lock_rows('autocommit_rows', ARRAY[2], 'share');
-- No warning:
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__update');
SELECT lockhier.lock_rows('autocommit_rows', ARRAY[1]);
COMMIT;
SELECT lockhier.lock_field(7, 12, 99, 'field__update') \; SELECT 'the lock lasts to the end of both' AS implicit_block;
DO $$
BEGIN
    PERFORM lockhier.lock_field(7, 12, 99, 'field__update');
EXCEPTION WHEN OTHERS THEN RAISE;
END $$;
SELECT lockhier.session_lock_field(7, 12, 99);
SELECT lockhier.session_unlock_field(7, 12, 99);
DROP TABLE autocommit_rows;
