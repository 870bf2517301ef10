-- A lockhier lease taken and released: lease_field, then release_lease with the token \gset
-- kept, two autocommit statements, each answered once the keeper has flushed its journal
-- record (compare with lease.sql, the lease table's upsert then delete, two durable commits).
-- Ids: as in lease.sql, field ids striped by client (stripe >= the most clients), so no two
-- clients ever ask for the same field and nothing is refused; owners are one per client.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
SELECT lockhier.lease_field(:a, :t, :f, 'bench cycle ' || :client_id, 'field__update', ttl => '1 min') AS token \gset
SELECT lockhier.release_lease(:token);
