-- The leases held in this database (src/api/leases.rs). Qualified, as every object of
-- lockhier: nothing on the search_path it is created with can stand in for lease_list().
CREATE VIEW lockhier.leases AS
SELECT l.token, l.owner, l.scope, l.classes, l.mode, l.acquired_at, l.renewed_at, l.expires_at, l.taken_by,
       l.held
  FROM lockhier.lease_list() AS l;

GRANT SELECT ON lockhier.leases TO PUBLIC;

COMMENT ON VIEW lockhier.leases IS
  'The leases held in this database: token, owner, scope, classes, mode, when acquired, renewed and expiring, the role that took each, and whether its locks are held (false while a lease of the journal waits to be held again after a restart)';
