-- lockhier: lock_field.sql as it is used, after BEGIN (no 25P01 warning to deliver): the
-- side the path scripts are compared with (bench/paired.py, tag "paths").
\set a random(1, :apps)
\set t random(1, :tables)
\set f 1 + :client_id + :stripe * random(0, :fields / :stripe - 1)
BEGIN;
SELECT lockhier.lock_field(:a, :t, :f, 'field__update');
COMMIT;
