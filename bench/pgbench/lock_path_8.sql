-- lockhier: a path of 8 names, an archive's directory tree (as in docs/recipes.md) with three
-- UUIDs in it, varied per transaction as lock_path_3.sql varies them (the last one striped by
-- client: no two clients ever lock the same path). After BEGIN, as lock_field_tx.sql.
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
BEGIN;
SELECT lockhier.lock_path(ARRAY['archive', 'srv', 'photos',
                                'c0a8f5e2-9b1d-4a7e-8f00-' || lpad(:a::text, 12, '0'),
                                '7d3e9a41-2c5b-4f60-9e1d-' || lpad(:t::text, 12, '0'),
                                '2026', '05',
                                '5f3c1a9e-0d2b-4c6f-9e8a-' || lpad(:f::text, 12, '0')], 'field__update');
COMMIT;
