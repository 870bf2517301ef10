//! Two sessions: the test's own and a second one reached through dblink (`tests.other`).
#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{error_of, full_error_of, my_locks, one, other, run, waited};
    use pgrx::prelude::*;

    fn masked(text: &str) -> String {
        one(&format!("SELECT tests.masked({})", crate::pg_tests::tests::quote(text)))
    }

    #[pg_test]
    fn a_conflict_raises_55p03_naming_request_and_holder() {
        other("SET application_name = 'snapshot #7'");
        other("BEGIN");
        other("SELECT lockhier.lock_application(301, mode => 'share')");
        let error = full_error_of("SELECT lockhier.lock_field(301, 12, 99, 'field__update')");
        let pid = one::<i32>("SELECT tests.other_pid()");
        assert!(error.contains(&format!("process {pid} (application_name \"snapshot #7\")")), "{error}");
        assert_eq!(
            masked(&error),
            "55P03\noperation in progress: cannot lock field 99 (table 12, application 301) for \"field__update\"\n\
             DETAIL: Blocked by a share lock on all classes for application 301, held by process N (application_name \"snapshot #7\") in a transaction running for T.\n\
             HINT: Retry when the operation in progress has finished, or pass wait => '10 s' to wait for it."
        );
        other("ROLLBACK");
    }

    #[pg_test]
    fn try_lock_returns_false_and_leaves_the_transaction_usable() {
        other("BEGIN");
        other("SELECT lockhier.lock_table(302, 1, 'import', 'share')");
        assert!(!one::<bool>("SELECT lockhier.try_lock_field(302, 1, 5, 'import')"));
        assert!(!one::<bool>("SELECT lockhier.try_session_lock_table(302, 1)"));
        assert!(my_locks().is_empty(), "a refused try takes nothing");
        // An import does not block a rename: still usable, and another class goes through.
        assert!(one::<bool>("SELECT lockhier.try_lock_field(302, 1, 5, 'field__rename')"));
        other("ROLLBACK");
    }

    #[pg_test]
    fn a_session_request_refused_on_its_last_key_keeps_none_of_the_others() {
        other("SELECT lockhier.session_lock_field(303, 1, 2, 'x', 'share')");
        let plan_len: i64 = one("SELECT count(*) FROM lockhier.plan_field(303, 1, 2, 'x')");
        // Every key but the last (the field's own "x" key, X against S) is compatible.
        let blocked_at: Vec<i64> =
            one("SELECT array_agg(b.key) FROM lockhier.blockers_field(303, 1, 2, 'x') b");
        let last_key: i64 =
            one(&format!("SELECT key FROM lockhier.plan_field(303, 1, 2, 'x') WHERE step = {plan_len}"));
        assert_eq!(blocked_at, [last_key]);
        for call in [
            "SELECT lockhier.session_lock_field(303, 1, 2, 'x')",
            "SELECT lockhier.try_session_lock_field(303, 1, 2, 'x')",
            "SELECT lockhier.session_lock_field(303, 1, 2, 'x', wait => '50 ms')",
            "SELECT lockhier.try_session_lock_field(303, 1, 2, 'x', wait => '50 ms')",
        ] {
            let outcome = error_of(call);
            if call.contains("try_") {
                assert!(!one::<bool>(call), "{call}");
            } else {
                assert!(outcome.starts_with("55P03 operation in progress"), "{call}: {outcome}");
            }
            assert!(my_locks().is_empty(), "{call} kept locks: {:?}", my_locks());
            assert_eq!(one::<i64>("SELECT count(*) FROM lockhier.held()"), 0);
        }
        other("SELECT lockhier.session_unlock_all()::text");
        run("SELECT lockhier.session_lock_field(303, 1, 2, 'x')");
    }

    #[pg_test]
    fn a_bounded_wait_fails_after_it_and_restores_lock_timeout() {
        // The session's own limit is an hour: only the request's bound can end the wait.
        run("SET lock_timeout = '1h'");
        other("BEGIN");
        other("SELECT lockhier.lock_global('full_backup')");
        let started = std::time::Instant::now();
        let error = full_error_of("SELECT lockhier.lock_global('full_backup', wait => '200 ms')");
        let took = started.elapsed();
        // Bounds, not windows: the wait lasts at least what was asked, however loaded the
        // machine, and far less than the session's hour.
        assert!(took >= std::time::Duration::from_millis(200), "{took:?}");
        assert!(took < std::time::Duration::from_secs(600), "{took:?}");
        assert!(waited(&error) >= Some(std::time::Duration::from_millis(200)), "{error}");
        assert!(
            error
                .ends_with("HINT: Retry when the operation in progress has finished, or pass a longer wait."),
            "{error}"
        );
        assert_eq!(one::<String>("SHOW lock_timeout"), "1h");
        assert!(!one::<bool>("SELECT lockhier.try_session_lock_global('full_backup', wait => '100 ms')"));
        assert_eq!(one::<String>("SHOW lock_timeout"), "1h");
        assert!(my_locks().is_empty());
        other("ROLLBACK");
        assert!(one::<bool>("SELECT lockhier.try_session_lock_global('full_backup', wait => '100 ms')"));
    }

    #[pg_test]
    fn the_session_lock_timeout_bounds_a_wait_with_no_limit_of_its_own() {
        run("SET lock_timeout = '150ms'");
        other("SELECT lockhier.session_lock_table(304, 1)");
        let error = error_of("SELECT lockhier.lock_table(304, 1, 'x', wait => NULL)");
        assert!(
            error.starts_with("55P03 operation in progress: cannot lock table 1 (application 304) for \"x\""),
            "{error}"
        );
        assert_eq!(one::<String>("SHOW lock_timeout"), "150ms");
        other("SELECT lockhier.session_unlock_all()::text");
    }

    #[pg_test]
    fn an_idle_session_holding_a_session_lock_is_named() {
        other("SELECT lockhier.session_lock_application(305, 'app_task')");
        let error = full_error_of("SELECT lockhier.lock_global(ARRAY['app_task', 'app_backup'])");
        let pid = one::<i32>("SELECT tests.other_pid()");
        assert!(
            error.contains(&format!(
                "DETAIL: Blocked by an exclusive lock on \"app_task\" within the global scope, held by process {pid} (application_name \"other\") as a session lock, outside any transaction."
            )),
            "{error}"
        );
    }

    #[pg_test]
    fn blockers_word_the_conflict_as_the_error_does() {
        other("BEGIN");
        other("SELECT lockhier.lock_table(306, 12, ARRAY['field__deletion', 'field__type_update'], 'share')");
        let description: String =
            one("SELECT description FROM lockhier.blockers_field(306, 12, 99, 'field__deletion')");
        let error = full_error_of("SELECT lockhier.lock_field(306, 12, 99, 'field__deletion')");
        assert!(
            masked(&error).contains(&format!("DETAIL: Blocked by {}.", masked(&description))),
            "{error} / {description}"
        );
        let row: String = one(
            "SELECT concat_ws('|', pid = tests.other_pid(), application_name, conflict, lock_mode, granted, state, xact_start IS NOT NULL, xact_age >= '0')
               FROM lockhier.blockers_field(306, 12, 99, 'field__deletion')",
        );
        assert_eq!(row, "t|other|a share lock on \"field__deletion\" for table 12 (application 306)|ShareLock|t|idle in transaction|t|t");
        // No conflict, no rows: a rename is not blocked by an import.
        assert_eq!(
            one::<i64>("SELECT count(*) FROM lockhier.blockers_field(306, 12, 99, 'field__rename')"),
            0
        );
        other("ROLLBACK");
    }
}
