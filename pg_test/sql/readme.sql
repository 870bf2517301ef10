-- The psql session of the README, run as written.
BEGIN;
SELECT lockhier.lock_field(7, 12, 99, 'field__update');
SELECT held_for, scope, classes, mode FROM lockhier.held();
SELECT step, role, lock_mode, scope, key_kind, class FROM lockhier.plan_field(7, 12, 99, 'field__update');
COMMIT;
SELECT lockhier.session_lock_application(7, 'snapshot', 'share');
SELECT lockhier.session_unlock_application(7, 'snapshot', 'share');
SELECT lockhier.key('{7,12,99}', 'field__update');
