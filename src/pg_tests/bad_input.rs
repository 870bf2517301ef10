#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{error_of, full_error_of, my_locks, one, other, run};
    use pgrx::prelude::*;

    /// (arguments after the ids, the error), for every argument rule of the API.
    const RULES: &[(&str, &str)] = &[
        ("NULL", "22004 argument \"class\" must not be null"),
        ("'x', NULL", "22004 argument \"mode\" must not be null"),
        ("classes => NULL", "22004 argument \"classes\" must not be null"),
        ("'x', 'shared'", "22023 unknown lock mode \"shared\": expected share or exclusive"),
        ("'x', ''", "22023 unknown lock mode \"\": expected share or exclusive"),
        ("''", "22023 invalid class name \"\": it is empty"),
        ("'field update'", "22023 invalid class name \"field update\": only a-z, 0-9, '_', '.', ':' and '-' are allowed"),
        ("'naïve'", "22023 invalid class name \"naïve\": only a-z, 0-9, '_', '.', ':' and '-' are allowed"),
        ("repeat('x', 64)", "22023 invalid class name \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": it is longer than 63 bytes"),
        ("ARRAY[]::text[]", "22023 classes must not be empty"),
        ("ARRAY['a', NULL]", "22004 classes must not contain NULL"),
        ("ARRAY['a', 'b c']", "22023 invalid class name \"b c\": only a-z, 0-9, '_', '.', ':' and '-' are allowed"),
        ("(SELECT array_agg('c' || i) FROM generate_series(1, 65) i)", "22023 too many classes: more than 64 distinct names in one request"),
        ("'x', wait => '-1 s'", "22023 wait must not be negative: \"-00:00:01\""),
        ("'x', wait => '1 day -25 hours'", "22023 wait must not be negative: \"1 day -25:00:00\""),
    ];

    #[pg_test]
    fn every_bad_argument_gets_its_error_and_takes_nothing() {
        for (level, ids) in
            [("global", ""), ("application", "1, "), ("table", "1, 2, "), ("field", "1, 2, 3, ")]
        {
            for (args, expected) in RULES {
                for verb in ["lock", "try_lock", "session_lock", "try_session_lock"] {
                    let call = format!("SELECT lockhier.{verb}_{level}({ids}{args})");
                    assert_eq!(&error_of(&call), expected, "{call}");
                    assert!(my_locks().is_empty(), "{call} took a lock");
                }
                if !args.contains("wait") {
                    let call = format!("SELECT lockhier.session_unlock_{level}({ids}{args})");
                    assert_eq!(&error_of(&call), expected, "{call}");
                }
            }
        }
    }

    #[pg_test]
    fn null_ids_are_refused_by_name() {
        for (call, argument) in [
            ("lock_application(NULL)", "application_id"),
            ("try_lock_table(1, NULL)", "table_id"),
            ("session_lock_table(NULL, 2, 'x')", "application_id"),
            ("try_session_lock_field(1, 2, NULL)", "field_id"),
            ("session_unlock_field(1, NULL, 3)", "table_id"),
            ("lock_field(NULL, NULL, NULL, NULL, NULL, NULL)", "application_id"),
            ("plan_field(1, 2, NULL)", "field_id"),
            ("blockers_table(NULL, 1)", "application_id"),
        ] {
            let call = format!("SELECT lockhier.{call}");
            assert_eq!(error_of(&call), format!("22004 argument \"{argument}\" must not be null"), "{call}");
            assert!(my_locks().is_empty());
        }
    }

    #[pg_test]
    fn wrong_id_types_are_refused_by_postgres() {
        assert_eq!(
            error_of("SELECT lockhier.lock_application('seven')"),
            "22P02 invalid input syntax for type bigint: \"seven\""
        );
        assert!(error_of("SELECT lockhier.lock_application(7.5)")
            .starts_with("42883 function lockhier.lock_application(numeric) does not exist"));
        assert!(error_of("SELECT lockhier.lock_field(1, 2)").starts_with("42883"));
    }

    /// `wait => NULL`, the one NULL argument accepted, waits with no limit of lockhier's own:
    /// with the session's lock_timeout off, the request stays queued in the lock manager until
    /// the holder lets go, and is then granted. Refused, or treated as '0', it would fail at once
    /// and never be seen waiting. (The session's lock_timeout bounding it: conflicts.rs.)
    #[pg_test]
    fn null_wait_is_accepted_and_waits_until_the_holder_lets_go() {
        run("SELECT lockhier.session_lock_field(330, 1, 1, 'x')");
        let waiter = one::<i32>("SELECT tests.other_pid()");
        other("SET lock_timeout = 0");
        other("BEGIN");
        run("SELECT public.dblink_send_query('other', \
             $$SELECT lockhier.lock_field(330, 1, 1, 'x', wait => NULL)::text$$)");
        let queued = format!(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = {waiter} AND locktype = 'advisory' AND NOT granted)"
        );
        // State, not a sleep, says it waits: at most 30 s for it to show in pg_locks.
        let mut polls = 0;
        while !one::<bool>(&queued) {
            polls += 1;
            assert!(polls < 3000, "the call with wait => NULL never queued behind the holder");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        run("SELECT lockhier.session_unlock_field(330, 1, 1, 'x')");
        // Granted once the holder let go: the call returns (its void as ''), no error.
        let answer = "SELECT coalesce(string_agg(x, ','), 'no row') FROM public.dblink_get_result('other') AS t(x text)";
        assert_eq!(one::<String>(answer), "");
        assert_eq!(one::<String>(answer), "no row", "the asynchronous query is over");
        other("ROLLBACK");
    }

    #[pg_test]
    fn errors_carry_hints() {
        assert_eq!(
            full_error_of("SELECT lockhier.lock_field(NULL, 12, 99)"),
            "22004\nargument \"application_id\" must not be null\nHINT: A NULL id would lock nothing; pass the id of the node to lock."
        );
        assert_eq!(
            full_error_of("SELECT lockhier.lock_field(7, 12, 99, 'a b')"),
            "22023\ninvalid class name \"a b\": only a-z, 0-9, '_', '.', ':' and '-' are allowed\nHINT: Class names are names such as field__update or app.backup; case is ignored."
        );
    }
}
