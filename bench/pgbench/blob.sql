-- One JSON blob of operations in progress per application: add an entry unless the field or the
-- whole application is taken (commit), then remove it in a second transaction.
-- Ids: apps applications, tables tables per application, field ids striped by client
-- (stripe >= the most clients), so no two clients ever lock the same node: pgbench 15 would
-- abort a client on a 55P03 error. Conflicts are measured by bench/conflict.py instead.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
UPDATE bench_app_locks
   SET locks = locks || jsonb_build_object('field:' || :t || ':' || :f,
                                           jsonb_build_object('pid', pg_backend_pid(), 'since', now()))
 WHERE application_id = :a
   AND NOT locks ? 'application'
   AND NOT locks ? ('field:' || :t || ':' || :f)
RETURNING application_id;
UPDATE bench_app_locks SET locks = locks - ('field:' || :t || ':' || :f) WHERE application_id = :a;
