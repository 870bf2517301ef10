#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{error_of, my_locks, one, run};
    use pgrx::prelude::*;

    #[pg_test]
    fn every_lock_function_exists_in_both_overloads_and_is_not_strict() {
        let counted: i64 = one("SELECT count(*) FROM pg_proc
              WHERE pronamespace = 'lockhier'::regnamespace
                AND proname ~ '^(try_)?(session_)?(lock|unlock)_(global|application|table|field)$'
                AND NOT proisstrict AND provolatile = 'v' AND proparallel = 'u'");
        // 4 levels x (lock, try_lock, session_lock, try_session_lock, session_unlock) x 2.
        assert_eq!(counted, 40);
        let strict: i64 = one("SELECT count(*) FROM pg_proc
              WHERE pronamespace = 'lockhier'::regnamespace AND proisstrict AND pronargs > 0");
        assert_eq!(strict, 0, "no lockhier function with arguments may be STRICT");
    }

    #[pg_test]
    fn overloads_resolve_as_documented() {
        run("SELECT lockhier.lock_application(101)");
        run("SELECT lockhier.lock_application(101, 'import')");
        run("SELECT lockhier.lock_application(101, ARRAY['b', 'a', 'B'])");
        run("SELECT lockhier.lock_application(101, classes => ARRAY['c'], mode => 'share')");
        let held: Vec<String> = one("SELECT array_agg(c ORDER BY c)
               FROM (SELECT array_to_string(classes, '+') || ' ' || mode AS c FROM lockhier.held()) h");
        assert_eq!(held, ["a+b exclusive", "all exclusive", "c share", "import exclusive"]);
    }

    #[pg_test]
    fn transaction_locks_are_listed_and_reentrant() {
        run("SELECT lockhier.lock_field(102, 12, 99, 'field__update')");
        run("SELECT lockhier.lock_field(102, 12, 99, 'Field__Update', 'EXCLUSIVE')");
        run("SELECT lockhier.lock_table(102, 12, ARRAY['field__deletion', 'field__type_update'], 'share')");
        let rows: Vec<String> =
            one("SELECT array_agg(concat_ws(' ', held_for, level, application_id, table_id, field_id,
                                        array_to_string(classes, ','), mode, count, scope) ORDER BY scope)
               FROM lockhier.held()");
        assert_eq!(
            rows,
            [
                "transaction field 102 12 99 field__update exclusive 2 field 99 (table 12, application 102)",
                "transaction table 102 12 field__deletion,field__type_update share 1 table 12 (application 102)",
            ]
        );
    }

    #[pg_test]
    fn try_lock_takes_a_free_lock() {
        assert!(one::<bool>("SELECT lockhier.try_lock_table(103, 1, 'import', 'share')"));
        assert!(one::<bool>("SELECT lockhier.try_lock_global(ARRAY['app_task', 'app_backup'])"));
        assert!(one::<bool>("SELECT lockhier.try_session_lock_field(103, 1, 2)"));
        assert_eq!(one::<i32>("SELECT lockhier.session_unlock_all()"), 1);
    }

    #[pg_test]
    fn session_locks_need_one_unlock_per_lock() {
        run("SELECT lockhier.session_lock_application(104, 'snapshot', 'share')");
        run("SELECT lockhier.session_lock_application(104, 'snapshot', 'share')");
        let held = my_locks();
        assert_eq!(one::<i32>("SELECT count FROM lockhier.held()"), 2);
        assert!(one::<bool>("SELECT lockhier.session_unlock_application(104, 'snapshot', 'share')"));
        assert_eq!(my_locks(), held, "still held once");
        assert!(one::<bool>("SELECT lockhier.session_unlock_application(104, 'SNAPSHOT', 'Share')"));
        assert!(my_locks().is_empty());
        // A third unlock finds nothing: false, with a WARNING.
        assert!(!one::<bool>("SELECT lockhier.session_unlock_application(104, 'snapshot', 'share')"));
    }

    #[pg_test]
    fn session_unlock_must_name_the_same_request() {
        run("SELECT lockhier.session_lock_table(105, 1, ARRAY['a', 'b'])");
        assert!(!one::<bool>("SELECT lockhier.session_unlock_table(105, 1, 'a')"));
        assert!(!one::<bool>("SELECT lockhier.session_unlock_table(105, 1, ARRAY['a', 'b'], 'share')"));
        assert!(one::<bool>("SELECT lockhier.session_unlock_table(105, 1, ARRAY['b', 'a', 'a'])"));
        assert!(my_locks().is_empty());
    }

    #[pg_test]
    fn session_unlock_all_releases_lockhier_locks_only() {
        run("SELECT pg_advisory_lock(4242)");
        run("SELECT lockhier.session_lock_field(106, 1, 1, 'x')");
        run("SELECT lockhier.session_lock_field(106, 1, 1, 'x')");
        run("SELECT lockhier.session_lock_global('backup', 'share')");
        run("SELECT lockhier.lock_application(106)");
        assert_eq!(one::<i32>("SELECT lockhier.session_unlock_all()"), 3);
        assert_eq!(one::<i32>("SELECT lockhier.session_unlock_all()"), 0);
        let rows: Vec<String> = one("SELECT array_agg(held_for || ' ' || scope) FROM lockhier.held()");
        assert_eq!(rows, ["transaction application 106"], "the transaction lock stays");
        let user_lock: i64 =
            one("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
                AND classid = 0 AND objid = 4242 AND objsubid = 1");
        assert_eq!(user_lock, 1, "the caller's own advisory lock is not lockhier's to release");
        run("SELECT pg_advisory_unlock(4242)");
    }

    #[pg_test]
    fn keys_match_the_published_test_vectors() {
        assert_eq!(one::<i64>("SELECT lockhier.key('{7,12,99}', 'field__update')"), 6848398145110134603);
        assert_eq!(one::<i64>("SELECT lockhier.key('{7,12,99}', 'Field__Update')"), 6848398145110134603);
        assert_eq!(one::<i64>("SELECT lockhier.key('{}')"), -5771409078701419346);
        assert_eq!(one::<i64>("SELECT lockhier.key(ARRAY[7], 'all')"), 340827997704438321);
        assert_eq!(one::<i64>("SELECT lockhier.marker_key('{7}', 'share')"), 6670205928103592947);
        assert_eq!(one::<i64>("SELECT lockhier.marker_key('{7}', 'exclusive')"), -7176058769553974328);
        assert_eq!(
            error_of("SELECT lockhier.key('{1,2,3,4}')"),
            "22023 a path has at most 3 ids (application, table, field), not 4"
        );
        assert_eq!(error_of("SELECT lockhier.key('{1,NULL}')"), "22004 path must not contain NULL");
        assert_eq!(error_of("SELECT lockhier.key(NULL)"), "22004 argument \"path\" must not be null");
        assert_eq!(
            error_of("SELECT lockhier.key('{1}', 'no spaces')").split(':').next().unwrap(),
            "22023 invalid class name \"no spaces\""
        );
        assert_eq!(
            error_of("SELECT lockhier.marker_key('{1}', NULL)"),
            "22004 argument \"mode\" must not be null"
        );
    }

    #[pg_test]
    fn plans_list_keys_modes_and_meaning() {
        let rows: Vec<String> = one(
            "SELECT array_agg(concat_ws(' ', step, role, lock_mode, scope, key_kind, class) ORDER BY step)
               FROM lockhier.plan_table(7, 12, 'import', 'share')",
        );
        assert_eq!(
            rows,
            [
                "1 IS RowShareLock the global scope all",
                "2 IS RowShareLock the global scope class import",
                "3 IS RowShareLock application 7 all",
                "4 IS RowShareLock application 7 class import",
                "5 IS RowShareLock table 12 (application 7) all",
                "6 S ShareLock table 12 (application 7) share marker",
                "7 S ShareLock table 12 (application 7) class import",
            ]
        );
        let keys: Vec<i64> =
            one("SELECT array_agg(key ORDER BY step) FROM lockhier.plan_field(7, 12, 99, 'field__update')");
        assert_eq!(keys[0], one::<i64>("SELECT lockhier.key('{}')"));
        assert_eq!(keys[5], one::<i64>("SELECT lockhier.key('{7,12}', 'field__update')"));
        assert_eq!(keys[7], 6848398145110134603);
        let split_right: bool = one(
            "SELECT bool_and(classid = ((key >> 32) & 4294967295)::oid AND objid = (key & 4294967295)::oid)
               FROM lockhier.plan_field(-1, 2, 3)",
        );
        assert!(split_right, "classid/objid are the pg_locks halves of the key");
        assert_eq!(one::<i64>("SELECT count(*) FROM lockhier.plan_field(1, 2, 3)"), 10);
        // all (IX), exclusive marker (S), then each class (X).
        assert_eq!(
            one::<i64>("SELECT count(*) FROM lockhier.plan_global(ARRAY['app_task', 'app_backup'])"),
            4
        );
    }

    #[pg_test]
    fn lock_calls_need_no_search_path_and_no_transaction_id() {
        let xid =
            || Spi::get_one::<String>("SELECT pg_catalog.pg_current_xact_id_if_assigned()::text").unwrap();
        let before = xid();
        run("SET LOCAL search_path = ''");
        run("SET LOCAL transaction_read_only = on");
        run("SELECT lockhier.lock_field(107, 1, 1, 'x')");
        run("SELECT lockhier.session_lock_field(107, 1, 1, 'x', wait => '1 s')");
        assert_eq!(xid(), before, "advisory locks need no transaction id");
        run("SELECT lockhier.session_unlock_all()");
    }

    #[pg_test]
    fn a_rolled_back_subtransaction_takes_its_transaction_locks_along() {
        run("SELECT lockhier.lock_application(108, 'outer')");
        run("DO $$ BEGIN
                 PERFORM lockhier.lock_table(108, 1, 'inner');
                 PERFORM lockhier.session_lock_table(108, 1, 'kept');
                 RAISE EXCEPTION 'roll back the block';
             EXCEPTION WHEN raise_exception THEN NULL;
             END $$");
        let held: Vec<String> = one("SELECT array_agg(held_for || ' ' || scope || ' ' || classes[1] ORDER BY held_for) FROM lockhier.held()");
        assert_eq!(held, ["session table 1 (application 108) kept", "transaction application 108 outer"]);
        let inner_locked: i64 = one(
            "SELECT count(*) FROM lockhier.advisory_locks WHERE pid = pg_backend_pid() AND key = lockhier.key('{108,1}', 'inner')",
        );
        assert_eq!(inner_locked, 0, "the server released the block's lock, and held() agrees");
        run("SELECT lockhier.session_unlock_all()");
    }

    #[pg_test]
    fn pg_advisory_unlock_all_is_noticed_and_shared_keys_stay_held() {
        run("SELECT lockhier.session_lock_application(109, mode => 'share')");
        run("SELECT pg_advisory_unlock_all()");
        run("SELECT lockhier.session_lock_application(110, mode => 'share')");
        let still_held = my_locks();
        // The record of application 109 is gone with its locks: unlocking it releases nothing.
        assert!(!one::<bool>("SELECT lockhier.session_unlock_application(109, mode => 'share')"));
        assert_eq!(my_locks(), still_held);
        let held: Vec<String> = one("SELECT array_agg(scope) FROM lockhier.held()");
        assert_eq!(held, ["application 110"]);
        assert_eq!(one::<i32>("SELECT lockhier.session_unlock_all()"), 1);
        assert!(my_locks().is_empty(), "the sentinel goes with the last session request");
    }
}
