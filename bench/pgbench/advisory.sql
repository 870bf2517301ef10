-- The stock single advisory lock on a random key: the baseline of every ratio.
-- (It draws the same ids as the lockhier scripts, so the client does the same work.)
-- Ids: apps applications, tables tables per application, field ids striped by client
-- (stripe >= the most clients), so no two clients ever lock the same node: pgbench 15 would
-- abort a client on a 55P03 error. Conflicts are measured by bench/conflict.py instead.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
\set k 1 + :client_id + :stripe * random(0, 1000000000000)
SELECT pg_advisory_xact_lock(:k);
