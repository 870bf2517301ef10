-- lockhier: a table (striped by client) of a random application, one class, exclusive.
-- Ids: apps applications, tables tables per application, field ids striped by client
-- (stripe >= the most clients), so no two clients ever lock the same node: pgbench 15 would
-- abort a client on a 55P03 error. Conflicts are measured by bench/conflict.py instead.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
\set t 1 + :client_id + :stripe * random(0, :tables / :stripe - 1)
SELECT lockhier.lock_table(:a, :t, 'field__deletion');
