-- Drops that would strand leases are refused while the leases are held: DROP EXTENSION lockhier
-- in a database where leases are held (they would stay held, still blocking their keys, with no
-- view to see them and no function to release them), and DROP ROLE of a role that holds leases
-- in any database (they would have no role left that may renew or release them). Once the
-- leases are released, both drops work. Tokens differ from run to run: they are kept in psql
-- variables, and masked in the DETAIL.
\set ECHO none
\i pg_test/sql/helpers.psql
\set ECHO all
\set VERBOSITY default
-- A second database with lockhier, reached through dblink.
CREATE DATABASE lockhier_drop_probe;
SELECT dblink_connect('probe', format('host=%s port=%s dbname=lockhier_drop_probe user=%s',
    current_setting('unix_socket_directories'), current_setting('port'), current_user));
SELECT dblink_exec('probe', 'CREATE EXTENSION lockhier');

-- DROP EXTENSION while two leases of this database are held: refused, and both stay held.
SELECT lockhier.lease_application(7, 'csv-import #55', ttl => '10 min') AS import \gset
SELECT lockhier.lease_table(8, 3, 'nightly', ttl => '10 min') AS nightly \gset
SELECT show_error('DROP EXTENSION lockhier');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- However it comes to be dropped: here by dependency, with its schema.
SET client_min_messages = warning;
SELECT show_error('DROP SCHEMA lockhier CASCADE');
RESET client_min_messages;
SELECT count(*) AS still_held FROM lockhier.leases WHERE token IN (:import, :nightly);
SELECT lockhier.release_leases('csv-import #55');
SELECT show_error('DROP EXTENSION lockhier');
SELECT lockhier.release_leases('nightly');

-- Another database's leases are not in the way, nor this one's in another database's: in the
-- probe database a lease is refused the drop, and once released the drop works while this
-- database holds one.
SELECT lockhier.lease_application(7, 'backup', ttl => '10 min') AS backup \gset
SELECT x IS NOT NULL AS leased
  FROM dblink('probe', $$SELECT lockhier.lease_application(9, 'probe job', ttl => '10 min')::text$$) AS t(x text);
SELECT show_error($$SELECT dblink_exec('probe', 'DROP EXTENSION lockhier')$$);
SELECT * FROM dblink('probe', $$SELECT lockhier.release_leases('probe job')::text$$) AS t(released text);
SELECT dblink_exec('probe', 'DROP EXTENSION lockhier');
SELECT * FROM dblink('probe', $$SELECT count(*)::text FROM pg_extension WHERE extname = 'lockhier'$$) AS t(installed text);
SELECT dblink_exec('probe', 'CREATE EXTENSION lockhier');
SELECT lockhier.release_lease(:backup);

-- DROP ROLE of a role that holds leases, here and in the probe database: refused, naming them
-- and their databases.
CREATE ROLE lockhier_drop_probe_role NOLOGIN;
SET ROLE lockhier_drop_probe_role;
SELECT lockhier.lease_application(10, 'role job', ttl => '10 min') AS role_job \gset
RESET ROLE;
SELECT dblink_exec('probe', 'SET ROLE lockhier_drop_probe_role');
SELECT x IS NOT NULL AS leased
  FROM dblink('probe', $$SELECT lockhier.lease_application(11, 'role job', ttl => '10 min')::text$$) AS t(x text);
SELECT dblink_exec('probe', 'RESET ROLE');
SELECT show_error('DROP ROLE lockhier_drop_probe_role');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Released here (a superuser releases every role's leases of an owner), it still holds one in
-- the probe database.
SELECT lockhier.release_leases('role job');
SELECT show_error('DROP ROLE lockhier_drop_probe_role');
SELECT * FROM dblink('probe', $$SELECT lockhier.release_leases('role job')::text$$) AS t(released text);
DROP ROLE lockhier_drop_probe_role;

-- A dropped database's leases strand nothing: the role that took them can be dropped at once,
-- even before the keeper has let them go.
CREATE ROLE lockhier_drop_probe_role2 NOLOGIN;
SELECT dblink_exec('probe', 'SET ROLE lockhier_drop_probe_role2');
SELECT x IS NOT NULL AS leased
  FROM dblink('probe', $$SELECT lockhier.lease_application(12, 'doomed', ttl => '10 min')::text$$) AS t(x text);
SELECT dblink_disconnect('probe');
DO $$
BEGIN
    WHILE EXISTS (SELECT FROM pg_stat_activity WHERE datname = 'lockhier_drop_probe') LOOP
        PERFORM pg_sleep(0.01);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
END $$;
DROP DATABASE lockhier_drop_probe;
DROP ROLE lockhier_drop_probe_role2;
