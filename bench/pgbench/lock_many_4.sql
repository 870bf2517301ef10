-- lockhier: the same four field requests as lock_field_x4.sql in one lock_many call (one round
-- trip), the array sent as JSON text, as a client sends it.
\set a random(1, :apps)
\set t1 random(1, :tables)
\set t2 random(1, :tables)
\set t3 random(1, :tables)
\set t4 random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
BEGIN;
SELECT lockhier.lock_many(pg_catalog.format('[{"application": %s, "table": %s, "field": %s, "class": "field__update"}, {"application": %s, "table": %s, "field": %s, "class": "field__update"}, {"application": %s, "table": %s, "field": %s, "class": "field__update"}, {"application": %s, "table": %s, "field": %s, "class": "field__update"}]', :a::int8, :t1::int8, :f::int8, :a::int8, :t2::int8, :f::int8, :a::int8, :t3::int8, :f::int8, :a::int8, :t4::int8, :f::int8)::jsonb);
COMMIT;
