-- Several leases at once (docs/leases.md, "Several leases at once"): one token per request, in
-- the order of the requests, granted all or none; a conflict names the request refused and
-- leaves nothing held; the owner's own leases come back (re-entrant); bad input refused before
-- anything is asked. Tokens differ from run to run: kept in psql variables and masked in
-- messages (masked.psql), never printed.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
-- docs/leases.md: an import takes its table in share mode and a chat room's typing lock, together.
SELECT lockhier.lease_many('[
  {"application": 7, "table": 12, "classes": ["field__deletion", "field__type_update"], "mode": "share"},
  {"path": ["rooms", "!abc:example.org"], "classes": ["typing"]}
]', 'csv-import #55', ttl => '2 min') AS tokens \gset
-- One ordinary lease per request, listed in the leases view, the tokens in the order asked.
SELECT n, l.owner, l.scope, l.classes, l.mode, l.expires_at - l.acquired_at AS ttl
  FROM unnest(:'tokens'::bigint[]) WITH ORDINALITY AS t(token, n) JOIN lockhier.leases l USING (token)
 ORDER BY n;
SELECT (:'tokens'::bigint[])[1] < (:'tokens'::bigint[])[2] AS tokens_grow;
-- Each grant record of the group names the group in the journal (its first token and how many
-- grants it has), so that replay never holds part of it again (docs/leases.md).
SELECT (length(journal) - length(replace(journal, mark, ''))) / length(mark) AS grants_marked
  FROM (SELECT encode(pg_read_binary_file('lockhier/leases.journal'), 'escape') AS journal,
               format('"group":{"first":%s,"grants":2}', (:'tokens'::bigint[])[1]) AS mark) AS j;
-- Each is renewed, validated and released by its own token.
SELECT lockhier.renew_lease((:'tokens'::bigint[])[1]) AS renewed;
BEGIN;
SELECT bool_and(lockhier.lease_valid(t)) AS valid FROM unnest(:'tokens'::bigint[]) AS t;
COMMIT;
-- A request of another owner's conflicts with a lease of the group, as with any lease.
SELECT show_error($$SELECT lockhier.lease_field(7, 12, 99, 'editor', 'field__deletion')$$);
-- The same owner asking again gets the leases it holds back (their tokens), beside new ones.
SELECT lockhier.lease_many('[
  {"path": ["rooms", "!abc:example.org"], "classes": ["typing"]},
  {"application": 8, "class": "full_backup", "mode": "share"},
  {"application": 7, "table": 12, "classes": ["field__type_update", "field__deletion"], "mode": "share"}
]', 'csv-import #55') AS again \gset
SELECT (:'again'::bigint[])[1] = (:'tokens'::bigint[])[2] AS room_again,
       (:'again'::bigint[])[3] = (:'tokens'::bigint[])[1] AS table_again,
       (:'again'::bigint[])[2] <> ALL (:'tokens'::bigint[]) AS backup_new,
       (SELECT count(*) FROM lockhier.leases) AS leases;
-- The same request twice in one call is one lease: the same token twice.
SELECT lockhier.lease_many('[{"path": ["rooms", "r9"], "class": "typing"}, {"path": ["rooms", "r9"], "class": "typing"}]',
                           'chat worker 1') AS twice \gset
SELECT (:'twice'::bigint[])[1] = (:'twice'::bigint[])[2] AS same_token,
       (SELECT count(*) FROM lockhier.leases WHERE owner = 'chat worker 1') AS leases;
SELECT lockhier.release_leases('chat worker 1');
-- A room held by another chat worker: a group that needs it takes nothing at all, and says
-- which of its requests was refused.
SELECT lockhier.lease_path(ARRAY['rooms', 'r1'], 'chat worker 2', 'typing') AS r1 \gset
SELECT show_error($$SELECT lockhier.lease_many('[
  {"application": 7, "table": 11, "class": "field__deletion"},
  {"application": 9, "class": "all", "mode": "share"},
  {"path": ["rooms", "r1"], "class": "typing"}
]', 'chat worker 1')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS held_by_chat_worker_1 FROM lockhier.leases WHERE owner = 'chat worker 1';
-- try_lease_many returns NULL instead, and takes nothing either.
SELECT lockhier.try_lease_many('[
  {"application": 7, "table": 11, "class": "field__deletion"},
  {"path": ["rooms", "r1"], "class": "typing"}
]', 'chat worker 1') IS NULL AS refused;
SELECT count(*) AS held_by_chat_worker_1 FROM lockhier.leases WHERE owner = 'chat worker 1';
-- With a wait, still refused once the wait runs out (the HINT says so), and nothing held.
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 7, "table": 11, "class": "field__deletion"},
  {"path": ["rooms", "r1"], "class": "typing"}]', 'chat worker 1', wait => '50 ms')$$);
SELECT count(*) AS held_by_chat_worker_1 FROM lockhier.leases WHERE owner = 'chat worker 1';
-- Once the room is released, the group is granted.
SELECT lockhier.release_lease(:r1);
SELECT cardinality(lockhier.try_lease_many('[
  {"application": 7, "table": 11, "class": "field__deletion"},
  {"path": ["rooms", "r1"], "class": "typing"}
]', 'chat worker 1')) AS granted;
SELECT lockhier.release_leases('chat worker 1');
-- The keeper refuses a group at its first request in the way (application 92, another owner's
-- lease); the wait then runs out on another (application 91, a transaction lock, taken first
-- in the canonical order). The error names the request the wait ran out on, and its holder.
SELECT lockhier.lease_application(92, 'chat worker 2', 'x') AS a92 \gset
SELECT open_session('txn91', 'migration 91');
SELECT dblink_exec('txn91', 'BEGIN');
SELECT * FROM dblink('txn91', $$SELECT lockhier.lock_application(91, 'x')::text$$) AS t(x text);
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 92, "class": "x"}, {"application": 91, "class": "x"}]',
                                               'chat worker 1', wait => '100 ms')$$);
SELECT dblink_exec('txn91', 'COMMIT');
SELECT dblink_disconnect('txn91');
SELECT lockhier.release_lease(:a92);
SELECT count(*) AS held_by_chat_worker_1 FROM lockhier.leases WHERE owner = 'chat worker 1';
-- This session in the way of a group: refused at once whatever the wait, and the HINT does not
-- suggest waiting.
BEGIN;
SELECT lockhier.lock_path(ARRAY['rooms', 'r2'], 'typing');
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 3, "class": "x"}, {"path": ["rooms", "r2"], "class": "typing"}]',
                                               'chat worker 1', wait => '1 min')$$);
ROLLBACK;
-- Two requests of one group that conflict with each other could never be granted (one owner's
-- leases never conflict): refused before anything is asked, naming both.
SELECT show_error($$SELECT lockhier.lease_many('[
  {"application": 7, "table": 12, "class": "field__deletion"},
  {"path": ["rooms", "r3"], "class": "typing"},
  {"application": 7, "table": 12, "field": 99, "class": "field__deletion"}
]', 'editor')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Bad input: 22023 naming the element, 22004 for a NULL; nothing is asked.
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 1, "class": "x"}, {"table": 2, "class": "x"}]', 'editor')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_error($$SELECT lockhier.lease_many('{"application": 1, "class": "x"}', 'editor')$$);
SELECT show_error($$SELECT lockhier.lease_many('[]', 'editor')$$);
SELECT show_error($$SELECT lockhier.lease_many(NULL, 'editor')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 1, "class": "x"}]', NULL)$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 1, "class": "x"}]', 'editor ')$$);
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 1, "class": "x"}]', 'editor', ttl => '0')$$);
SELECT show_error($$SELECT lockhier.try_lease_many('[{"application": 1, "class": "x", "mode": "shared"}]', 'editor')$$);
SELECT show_error(format('SELECT lockhier.lease_many(%L, %L)',
  (SELECT jsonb_agg(jsonb_build_object('application', i, 'class', 'x')) FROM generate_series(1, 65) AS i), 'editor'));
-- The largest group there is: 64 requests, one lease each.
SELECT cardinality(lockhier.lease_many(
  (SELECT jsonb_agg(jsonb_build_object('path', jsonb_build_array('big', i::text), 'class', 'x')) FROM generate_series(1, 64) AS i),
  'bulk')) AS granted;
SELECT lockhier.release_leases('bulk');
SELECT count(*) AS leases_of_editor FROM lockhier.leases WHERE owner = 'editor';
-- A group counts against lockhier.max_leases whole: with room for one lease left, a group of two
-- is refused (53400) and takes nothing. (Leases are counted in every database: the table is
-- filled until it is full, whatever else holds leases.)
CREATE TEMP TABLE fillers (token bigint);
DO $$
DECLARE token bigint;
BEGIN
  FOR i IN 1..100000 LOOP
    BEGIN
      token := lockhier.lease_path(ARRAY['filler', i::text], 'filler');
    EXCEPTION WHEN configuration_limit_exceeded THEN
      EXIT;
    END;
    INSERT INTO fillers VALUES (token);
  END LOOP;
END $$;
SELECT count(*) > 0 AS filled FROM fillers;
SELECT lockhier.release_lease(max(token)) FROM fillers;
SELECT show_error($$SELECT lockhier.lease_many('[{"application": 5, "class": "x"}, {"application": 6, "class": "x"}]', 'editor')$$);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS leases_of_editor FROM lockhier.leases WHERE owner = 'editor';
SELECT cardinality(lockhier.lease_many('[{"application": 5, "class": "x"}]', 'editor')) AS one_fits;
SELECT lockhier.release_leases('editor') + lockhier.release_leases('filler') > 0 AS released;
-- Every lease of the groups is released by its token.
SELECT bool_and(lockhier.release_lease(t)) AS released FROM unnest(:'again'::bigint[]) AS t;
SELECT count(*) AS leases_left FROM lockhier.leases;
