-- A lockhier lease renewed: renew_lease of a lease the client holds (bench/lease_load.py takes
-- one per client first, passing their tokens as tok0 .. tok7), one autocommit statement,
-- answered once the keeper has flushed the renewal (compare with lease_table_renew.sql).
\set token CASE WHEN :client_id = 0 THEN :tok0 WHEN :client_id = 1 THEN :tok1 WHEN :client_id = 2 THEN :tok2 WHEN :client_id = 3 THEN :tok3 WHEN :client_id = 4 THEN :tok4 WHEN :client_id = 5 THEN :tok5 WHEN :client_id = 6 THEN :tok6 ELSE :tok7 END
SELECT lockhier.renew_lease(:token);
