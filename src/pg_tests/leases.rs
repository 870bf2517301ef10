//! Leases: the API, the rules and bad input. Leases outlive the test's transaction (that is
//! the point of them), so every test uses owners and scopes of its own and releases them.
#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{error_of, full_error_of, one, other, quote, run};
    use pgrx::prelude::*;

    /// The error text with what changes from run to run masked: process ids and transaction
    /// ages (`tests.masked`), lease tokens, and how long ago a lease was taken or expires in.
    fn masked(text: &str) -> String {
        one(&format!(
            "SELECT regexp_replace(regexp_replace(tests.masked({}), 'lease \\d+', 'lease N', 'g'),
                    '(acquired|ran out|expires in) (less than 1 ms|\\d+ ms|[\\d.]+ s|\\d+ min( \\d+ s)?|\\d+ h( \\d+ min)?)',
                    '\\1 T', 'g')",
            quote(text)
        ))
    }

    fn release(owner: &str) {
        run(&format!("SELECT lockhier.release_leases({})", quote(owner)));
    }

    #[pg_test]
    fn every_lease_function_exists_and_none_is_strict() {
        let counted: i64 = one("SELECT count(*) FROM pg_proc
              WHERE pronamespace = 'lockhier'::regnamespace
                AND proname ~ '^(try_)?lease_(global|application|table|field)$'
                AND NOT proisstrict AND provolatile = 'v' AND proparallel = 'u'");
        assert_eq!(counted, 16, "4 levels x lease/try_lease x class/classes");
        let others: i64 = one("SELECT count(*) FROM pg_proc WHERE pronamespace = 'lockhier'::regnamespace
                AND proname IN ('renew_lease', 'release_lease', 'release_leases', 'lease_valid')
                AND NOT proisstrict AND provolatile = 'v'");
        assert_eq!(others, 4);
        let secdef: i64 =
            one("SELECT count(*) FROM pg_proc WHERE pronamespace = 'lockhier'::regnamespace AND prosecdef");
        assert_eq!(secdef, 0);
    }

    #[pg_test]
    fn a_lease_is_a_lock_held_by_its_owner_whoever_asks() {
        let token: i64 = one("SELECT lockhier.lease_table(401, 12, 'csv-import #55', ARRAY['field__deletion', 'field__type_update'], 'share')");
        // This very session is refused too: the lease is the owner's, not the connection's.
        let error = full_error_of("SELECT lockhier.lock_field(401, 12, 99, 'field__deletion')");
        assert_eq!(
            masked(&error),
            "55P03\noperation in progress: cannot lock field 99 (table 12, application 401) for \"field__deletion\"\n\
             DETAIL: Blocked by a share lock on \"field__deletion\", \"field__type_update\" for table 12 (application 401), held by lease N of owner \"csv-import #55\", acquired T ago, expires in T.\n\
             HINT: Retry when the operation in progress has finished, or pass wait => '10 s' to wait for it."
        );
        assert!(error.contains(&format!("held by lease {token} of owner")), "{error}");
        // An import does not block a rename; a session lock is refused like a transaction lock.
        run("SELECT lockhier.lock_field(401, 12, 99, 'field__rename')");
        assert!(!one::<bool>("SELECT lockhier.try_session_lock_table(401, 12)"));
        // blockers_*() lists the lease: no pid, owner and token in the description.
        let row: String = one(
            "SELECT concat_ws('|', pid IS NULL, application_name IS NULL, granted, lock_mode, description)
               FROM lockhier.blockers_field(401, 12, 99, 'field__deletion')",
        );
        assert_eq!(
            masked(&row),
            "t|t|t|ShareLock|a share lock on \"field__deletion\", \"field__type_update\" for table 12 (application 401), held by lease N of owner \"csv-import #55\", acquired T ago, expires in T"
        );
        assert!(one::<bool>(&format!("SELECT lockhier.release_lease({token})")));
        assert!(one::<bool>("SELECT lockhier.try_lock_field(401, 12, 99, 'field__deletion')"));
    }

    #[pg_test]
    fn leases_follow_the_oracle_among_themselves() {
        let import = "SELECT lockhier.lease_table(402, 12, 'import A', ARRAY['field__deletion'], 'share')";
        let first: i64 = one(import);
        // The same owner asking for the same request gets the same lease back.
        assert_eq!(one::<i64>(import), first);
        // Another owner's share lease runs beside it; tokens only grow.
        let second: i64 =
            one("SELECT lockhier.lease_table(402, 12, 'import B', ARRAY['field__deletion'], 'share')");
        assert!(second > first);
        // A conflicting lease is refused, whoever asks: another owner, or the same owner
        // asking for something else.
        for owner in ["editor", "import A"] {
            let call =
                format!("SELECT lockhier.lease_field(402, 12, 99, {}, 'field__deletion')", quote(owner));
            assert!(
                error_of(&call).starts_with("55P03 operation in progress: cannot lock field 99"),
                "{owner}"
            );
            let tried = format!(
                "SELECT lockhier.try_lease_field(402, 12, 99, {}, 'field__deletion') IS NULL",
                quote(owner)
            );
            assert!(one::<bool>(&tried), "{owner}");
        }
        let rename: i64 = one("SELECT lockhier.lease_field(402, 12, 99, 'editor', 'field__rename')");
        assert!(rename > second);
        let listed: Vec<String> = one(
            "SELECT array_agg(owner || ' ' || scope || ' ' || array_to_string(classes, ',') || ' ' || mode ORDER BY token)
               FROM lockhier.leases WHERE owner IN ('import A', 'import B', 'editor')",
        );
        assert_eq!(
            listed,
            [
                "import A table 12 (application 402) field__deletion share",
                "import B table 12 (application 402) field__deletion share",
                "editor field 99 (table 12, application 402) field__rename exclusive",
            ]
        );
        assert_eq!(one::<i32>("SELECT lockhier.release_leases('import A')"), 1);
        release("import B");
        release("editor");
    }

    #[pg_test]
    fn a_lease_and_this_sessions_own_locks_are_different_holders() {
        run("SELECT lockhier.session_lock_application(403, 'backup')");
        let error = full_error_of("SELECT lockhier.lease_application(403, 'backup job', 'backup')");
        assert!(error.contains("held by this session's process "), "{error}");
        run("SELECT lockhier.session_unlock_all()");
        let token: i64 = one("SELECT lockhier.lease_application(403, 'backup job', 'backup')");
        release("backup job");
        assert!(token > 0);
    }

    #[pg_test]
    fn renew_release_and_validate() {
        let token: i64 = one("SELECT lockhier.lease_field(404, 1, 1, 'worker 1', ttl => '1 min')");
        assert!(one::<bool>(&format!("SELECT lockhier.renew_lease({token}, '10 min')")));
        let left: bool =
            one(&format!("SELECT expires_at - now() > '9 min' FROM lockhier.leases WHERE token = {token}"));
        assert!(left, "renewed for 10 min");
        assert!(one::<bool>(&format!("SELECT lockhier.renew_lease({token})")));
        let left: bool =
            one(&format!("SELECT expires_at - now() < '2 min' FROM lockhier.leases WHERE token = {token}"));
        assert!(left, "renewed for its own ttl, 1 min");
        // Valid: and its fence is held to the end of this transaction.
        assert!(one::<bool>(&format!("SELECT lockhier.lease_valid({token})")));
        let fence: i64 = one(&format!(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
                AND objsubid = 3 AND mode = 'ShareLock' AND objid = ({token} & 4294967295)::oid"
        ));
        assert_eq!(fence, 1);
        assert!(one::<bool>(&format!("SELECT lockhier.release_lease({token})")));
        for call in ["renew_lease", "release_lease", "lease_valid"] {
            assert!(!one::<bool>(&format!("SELECT lockhier.{call}({token})")), "{call} of a released lease");
        }
        assert_eq!(one::<i32>("SELECT lockhier.release_leases('worker 1')"), 0);
    }

    #[pg_test]
    fn bad_arguments_are_refused_and_take_nothing() {
        let before: i64 = one("SELECT count(*) FROM lockhier.leases");
        for (call, expected) in [
            ("lease_field(1, 2, 3, NULL)", "22004 argument \"owner\" must not be null"),
            ("lease_field(NULL, 2, 3, 'x')", "22004 argument \"application_id\" must not be null"),
            ("lease_field(1, 2, 3, 'x', NULL)", "22004 argument \"class\" must not be null"),
            ("lease_field(1, 2, 3, 'x', ARRAY['a', NULL])", "22004 classes must not contain NULL"),
            ("lease_field(1, 2, 3, 'x', mode => NULL)", "22004 argument \"mode\" must not be null"),
            ("lease_field(1, 2, 3, 'x', ttl => NULL)", "22004 argument \"ttl\" must not be null"),
            ("lease_field(1, 2, 3, '')", "22023 invalid lease owner \"\": it is empty"),
            ("lease_field(1, 2, 3, repeat('é', 513))", "22023 invalid lease owner \"éééééééééééééééééééééééééééééééééééééééé...\": it is longer than 1024 bytes"),
            ("lease_field(1, 2, 3, E'a\\nb')", "22023 invalid lease owner \"a\\u000Ab\": it contains a control character"),
            ("lease_field(1, 2, 3, E'job-1\\u202E2-boj')", "22023 invalid lease owner \"job-1\\u202E2-boj\": it contains U+202E, a bidirectional control character"),
            ("lease_field(1, 2, 3, E'job\\u200B')", "22023 invalid lease owner \"job\\u200B\": it contains U+200B, a zero-width character"),
            ("lease_field(1, 2, 3, E'a\\u2029b')", "22023 invalid lease owner \"a\\u2029b\": it contains U+2029, a line or paragraph separator"),
            ("lease_field(1, 2, 3, ' ')", "22023 invalid lease owner \" \": it is blank"),
            ("lease_field(1, 2, 3, 'job ')", "22023 invalid lease owner \"job \": it starts or ends with white space"),
            ("lease_field(1, 2, 3, 'x', ttl => '0')", "22023 ttl must be positive and at most 24 h: \"00:00:00\""),
            ("lease_field(1, 2, 3, 'x', ttl => '-1 s')", "22023 ttl must be positive and at most 24 h: \"-00:00:01\""),
            ("lease_field(1, 2, 3, 'x', ttl => '1 day 1 s')", "22023 ttl must be positive and at most 24 h: \"1 day 00:00:01\""),
            ("lease_field(1, 2, 3, 'x', wait => '-1 s')", "22023 wait must not be negative: \"-00:00:01\""),
            ("lease_field(1, 2, 3, 'x', 'bad class')", "22023 invalid class name \"bad class\": only a-z, 0-9, '_', '.', ':' and '-' are allowed"),
            ("lease_field(1, 2, 3, 'x', mode => 'shared')", "22023 unknown lock mode \"shared\": expected share or exclusive"),
            ("try_lease_global(NULL)", "22004 argument \"owner\" must not be null"),
            ("renew_lease(NULL)", "22004 argument \"token\" must not be null"),
            ("renew_lease(1, '0')", "22023 ttl must be positive and at most 24 h: \"00:00:00\""),
            ("release_lease(NULL)", "22004 argument \"token\" must not be null"),
            ("release_leases(NULL)", "22004 argument \"owner\" must not be null"),
            ("release_leases('')", "22023 invalid lease owner \"\": it is empty"),
            ("release_leases(' ')", "22023 invalid lease owner \" \": it is blank"),
            ("lease_valid(NULL)", "22004 argument \"token\" must not be null"),
        ] {
            assert_eq!(error_of(&format!("SELECT lockhier.{call}")), expected, "{call}");
        }
        assert_eq!(one::<i64>("SELECT count(*) FROM lockhier.leases"), before, "nothing taken");
    }

    #[pg_test]
    fn another_role_may_not_end_a_lease() {
        let token: i64 = one("SELECT lockhier.lease_application(405, 'admin job')");
        run("CREATE ROLE lockhier_lease_stranger NOLOGIN");
        run("GRANT USAGE ON SCHEMA tests TO lockhier_lease_stranger");
        run("SET LOCAL ROLE lockhier_lease_stranger");
        for call in [
            format!("renew_lease({token})"),
            format!("release_lease({token})"),
            format!("lease_valid({token})"),
        ] {
            assert_eq!(
                error_of(&format!("SELECT lockhier.{call}")),
                format!("42501 permission denied for lease {token} of owner \"admin job\""),
                "{call}"
            );
        }
        // Release by owner acts on the caller's own leases: the name under another role is
        // another owner, neither released nor in the way.
        assert_eq!(one::<i32>("SELECT lockhier.release_leases('admin job')"), 0);
        let stranger_token: i64 = one("SELECT lockhier.lease_application(406, 'admin job')");
        assert_eq!(one::<i32>("SELECT lockhier.release_leases('admin job')"), 1, "its own, only");
        assert_eq!(
            one::<i64>(&format!(
                "SELECT count(*) FROM lockhier.leases WHERE token IN ({token}, {stranger_token})"
            )),
            1,
            "the first role's lease is still held"
        );
        // The owner's name under another role is another owner: asking for the identical
        // request neither returns the lease's token nor extends it; it is refused.
        assert!(
            error_of("SELECT lockhier.lease_application(405, 'admin job', ttl => '1 h')")
                .starts_with("55P03"),
            "re-entrant acquire needs the role that took the lease"
        );
        // It sees the lease, as pg_locks shows every lock.
        assert_eq!(
            one::<String>("SELECT taken_by FROM lockhier.leases WHERE owner = 'admin job'"),
            "postgres"
        );
        run("RESET ROLE");
        let left: bool =
            one(&format!("SELECT expires_at - now() < '3 min' FROM lockhier.leases WHERE token = {token}"));
        assert!(left, "not extended to 1 h");
        release("admin job");
    }

    #[pg_test]
    fn the_keeper_holds_no_transaction_and_no_snapshot() {
        let keeper: String = one(
            "SELECT concat_ws('|', backend_type, datname IS NULL, backend_xid IS NULL, backend_xmin IS NULL, xact_start IS NULL)
               FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'",
        );
        assert_eq!(keeper, "lockhier lease keeper|t|t|t|t");
        other("SELECT lockhier.lease_application(407, 'vacuum check')::text");
        let still: String = one("SELECT concat_ws('|', backend_xid IS NULL, backend_xmin IS NULL)
               FROM pg_stat_activity WHERE backend_type = 'lockhier lease keeper'");
        assert_eq!(still, "t|t", "holding a lease keeps nothing open");
        release("vacuum check");
    }

    #[pg_test]
    fn a_bounded_wait_for_a_lease_gives_up_at_its_bound() {
        other("BEGIN");
        other("SELECT lockhier.lock_table(406, 1)::text");
        run("SET lock_timeout = '30s'");
        let error = full_error_of("SELECT lockhier.lease_field(406, 1, 2, 'waiter', wait => '200 ms')");
        assert!(
            error.starts_with("55P03\noperation in progress: cannot lock field 2 (table 1, application 406)"),
            "{error}"
        );
        assert!(
            crate::pg_tests::tests::waited(&error) >= Some(std::time::Duration::from_millis(200)),
            "{error}"
        );
        assert!(error.contains("(application_name \"other\") in a transaction running for "), "{error}");
        assert_eq!(one::<String>("SHOW lock_timeout"), "30s");
        other("ROLLBACK");
        assert!(one::<i64>("SELECT lockhier.lease_field(406, 1, 2, 'waiter', wait => '200 ms')") > 0);
        release("waiter");
    }
}
