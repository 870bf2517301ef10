-- The lease table's renewal: its holder moves last_renewed_ts of the row it holds, one durable
-- commit (bench/lease_load.py inserts one row per client first, holder 'renewer-N').
UPDATE bench_lease SET last_renewed_ts = now()
 WHERE resource = 'renew:' || :client_id AND holder = 'renewer-' || :client_id;
