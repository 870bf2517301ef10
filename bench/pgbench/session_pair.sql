-- lockhier session lock, then unlock: two statements (two transactions) per pgbench transaction.
-- Ids: apps applications, tables tables per application, field ids striped by client
-- (stripe >= the most clients), so no two clients ever lock the same node: pgbench 15 would
-- abort a client on a 55P03 error. Conflicts are measured by bench/conflict.py instead.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
SELECT lockhier.session_lock_field(:a, :t, :f, 'field__update');
SELECT lockhier.session_unlock_field(:a, :t, :f, 'field__update');
