-- lockhier: a path of 3 names of a UUID's length (36 bytes), varied per transaction as
-- lock_field.sql varies its ids: application, table and field as UUIDs, the field id striped by
-- client so no two clients ever lock the same path. After BEGIN, as lock_field_tx.sql.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
BEGIN;
SELECT lockhier.lock_path(ARRAY['c0a8f5e2-9b1d-4a7e-8f00-' || lpad(:a::text, 12, '0'),
                                '7d3e9a41-2c5b-4f60-9e1d-' || lpad(:t::text, 12, '0'),
                                '5f3c1a9e-0d2b-4c6f-9e8a-' || lpad(:f::text, 12, '0')], 'field__update');
COMMIT;
