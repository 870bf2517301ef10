-- The stock two-mode emulation of the hierarchy: share locks on the ancestors' keys
-- (application, table), an exclusive lock on the field's key. No classes, no global scope.
-- Ids: apps applications, tables tables per application, field ids striped by client
-- (stripe >= the most clients), so no two clients ever lock the same node: pgbench 15 would
-- abort a client on a 55P03 error. Conflicts are measured by bench/conflict.py instead.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
SELECT pg_advisory_xact_lock_shared(:a),
       pg_advisory_xact_lock_shared(1000000000 + :a * 10000 + :t),
       pg_advisory_xact_lock(2000000000000 + :f);
