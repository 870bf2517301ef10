-- A lease table: take the lease unless someone holds a fresh one (commit), then delete it in a
-- second transaction when the operation is done, as such code does.
-- Ids: apps applications, tables tables per application, field ids striped by client
-- (stripe >= the most clients), so no two clients ever lock the same node: pgbench 15 would
-- abort a client on a 55P03 error. Conflicts are measured by bench/conflict.py instead.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
INSERT INTO bench_lease AS l (resource, holder, last_renewed_ts)
VALUES ('field:' || :a || ':' || :t || ':' || :f, 'worker-' || pg_backend_pid(), now())
ON CONFLICT (resource) DO UPDATE
   SET holder = excluded.holder, last_renewed_ts = excluded.last_renewed_ts
 WHERE l.last_renewed_ts < now() - interval '5 minutes'
RETURNING holder;
DELETE FROM bench_lease
 WHERE resource = 'field:' || :a || ':' || :t || ':' || :f AND holder = 'worker-' || pg_backend_pid();
