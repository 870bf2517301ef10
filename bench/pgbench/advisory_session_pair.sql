-- The stock session advisory lock, then unlock: two statements per pgbench transaction.
\set k 1 + :client_id + :stripe * random(0, 1000000000000)
SELECT pg_advisory_lock(:k);
SELECT pg_advisory_unlock(:k);
