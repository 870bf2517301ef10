-- lockhier: four lock_field calls in one transaction (four round trips), the side lock_many_4.sql
-- is compared with (bench/paired.py, tag "paths"). The field id is striped by client as in
-- lock_field.sql, so no two clients ever lock the same field; the four tables vary.
\set a random(1, :apps)
\set t1 random(1, :tables)
\set t2 random(1, :tables)
\set t3 random(1, :tables)
\set t4 random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
BEGIN;
SELECT lockhier.lock_field(:a, :t1, :f, 'field__update');
SELECT lockhier.lock_field(:a, :t2, :f, 'field__update');
SELECT lockhier.lock_field(:a, :t3, :f, 'field__update');
SELECT lockhier.lock_field(:a, :t4, :f, 'field__update');
COMMIT;
