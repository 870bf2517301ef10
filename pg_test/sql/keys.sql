-- The published key test vectors (README, "Keys"): any client must compute the same.
SELECT path, kind, class, key
  FROM (VALUES ('{}'::bigint[], 'all', NULL, lockhier.key('{}')),
               ('{}', 'class', 'full_backup', lockhier.key('{}', 'full_backup')),
               ('{7}', 'all', NULL, lockhier.key('{7}')),
               ('{7}', 'share marker', NULL, lockhier.marker_key('{7}', 'share')),
               ('{7}', 'exclusive marker', NULL, lockhier.marker_key('{7}', 'exclusive')),
               ('{7,12}', 'class', 'field__deletion', lockhier.key('{7,12}', 'field__deletion')),
               ('{7,12,99}', 'class', 'field__update', lockhier.key('{7,12,99}', 'field__update')),
               ('{-1,9223372036854775807,-9223372036854775808}', 'all', NULL,
                lockhier.key('{-1,9223372036854775807,-9223372036854775808}'))
       ) AS v(path, kind, class, key);
