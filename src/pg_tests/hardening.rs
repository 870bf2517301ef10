//! What a hostile role or an unusual setup must not get out of lockhier: planted look-alikes on
//! the search path, tables locked under a bounded wait, views and foreign tables, errors that
//! keep their cause, huge arrays, session locks worded as transaction locks.
#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{error_of, full_error_of, one, other, quote, run, waited};
    use pgrx::prelude::*;
    use std::time::Duration;

    /// Plants, in schema `planted`, a look-alike of every function, operator, aggregate and
    /// type lockhier's statements use, each with the exact argument types those statements
    /// pass, so that it would win over pg_catalog's (variadic, polymorphic or cast) candidate.
    /// Each one counts that it ran in a sequence (which no rollback undoes, so an error path
    /// that swallows errors cannot hide it), then raises.
    fn plant_look_alikes() {
        run("CREATE SCHEMA planted");
        run("CREATE SEQUENCE planted.runs");
        run("CREATE FUNCTION planted.ran(what text) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pg_catalog.nextval('planted.runs');
                 RAISE EXCEPTION 'planted % ran', what;
             END $$");
        for (name, args, returns) in [
            ("format", "text, name, name", "text"),
            ("quote_ident", "name", "text"),
            ("format_type", "oid, integer", "text"),
            ("cardinality", "text[]", "integer"),
            ("unnest", "int2vector", "SETOF smallint"),
            ("current_database", "", "name"),
        ] {
            let params = if args.is_empty() { String::new() } else { args.to_string() };
            run(&format!(
                "CREATE FUNCTION planted.{name}({params}) RETURNS {returns} LANGUAGE plpgsql AS $$
                 BEGIN PERFORM planted.ran('{name}({args})'); END $$"
            ));
        }
        for (op, left, right) in [
            ("=", "oid", "oid"),
            ("=", "smallint", "smallint"),
            ("=", "name", "name"),
            ("=", "integer", "integer"),
            ("=", "bigint", "bigint"),
            ("=", "bigint", "integer"),
            (">", "smallint", "integer"),
        ] {
            let function = format!("planted.op_{}_{}", left.replace(' ', "_"), right.replace(' ', "_"));
            run(&format!(
                "CREATE FUNCTION {function}({left}, {right}) RETURNS boolean LANGUAGE plpgsql AS $$
                 BEGIN RETURN planted.ran('{left} {op} {right}'); END $$"
            ));
            run(&format!(
                "CREATE OPERATOR planted.{op} (LEFTARG = {left}, RIGHTARG = {right}, FUNCTION = {function})"
            ));
        }
        for aggregate in ["count(*)", "array_agg(text)"] {
            let (name, arg) = aggregate.split_once('(').unwrap();
            let arg = arg.trim_end_matches(')');
            let state_arg = if arg == "*" { String::new() } else { format!(", {arg}") };
            run(&format!(
                "CREATE FUNCTION planted.{name}_step(bigint{state_arg}) RETURNS bigint LANGUAGE plpgsql AS $$
                 BEGIN PERFORM planted.ran('{aggregate}'); RETURN 0; END $$"
            ));
            run(&format!(
                "CREATE AGGREGATE planted.{aggregate} (SFUNC = planted.{name}_step, STYPE = bigint)"
            ));
        }
        for domain in ["text", "name", "int8", "regclass"] {
            run(&format!(
                "CREATE DOMAIN planted.{domain} AS pg_catalog.{domain} CHECK (planted.ran('{domain} domain'))"
            ));
        }
    }

    /// Whether any look-alike ran, even inside a call that caught its error.
    fn any_look_alike_ran() -> bool {
        run("RESET search_path");
        one("SELECT is_called FROM planted.runs")
    }

    #[pg_test]
    fn look_alikes_on_the_search_path_never_run() {
        // Made by the other session (committed) so that it can hold rows of it.
        other("CREATE TABLE IF NOT EXISTS planted_rows (id bigint PRIMARY KEY, table_id int)");
        other(
            "INSERT INTO planted_rows SELECT i, i / 10 FROM generate_series(1, 50) i ON CONFLICT DO NOTHING",
        );
        other("BEGIN");
        other("SELECT lockhier.lock_rows('planted_rows', ARRAY[40])::text");
        plant_look_alikes();
        // The look-alikes' schema comes first, before pg_catalog itself.
        run("SET search_path = planted, pg_catalog, public");
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('planted_rows', ARRAY[1, 2])"), 2);
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('planted_rows', ARRAY[3]::int[], 'share')"), 1);
        assert_eq!(
            one::<i64>("SELECT lockhier.lock_rows('planted_rows', ARRAY[1], key_column => 'table_id')"),
            10
        );
        assert!(one::<bool>("SELECT lockhier.try_lock_rows('planted_rows', ARRAY[4], 'key share')"));
        // The error paths: rows held by the other session, and ids of the wrong type.
        let conflict = error_of("SELECT lockhier.lock_rows('planted_rows', ARRAY[40, 41])");
        assert!(
            conflict.starts_with("55P03 operation in progress: cannot lock planted_rows rows with id 40"),
            "{conflict}"
        );
        assert!(!one::<bool>("SELECT lockhier.try_lock_rows('planted_rows', ARRAY[40])"));
        let mismatch = error_of("SELECT lockhier.lock_rows('planted_rows', ARRAY['a'])");
        // With a look-alike `text` earlier on the path, format_type qualifies the real one.
        assert!(mismatch.starts_with("42804 ids of type pg_catalog.text[] cannot be compared"), "{mismatch}");
        // The advisory API and the view.
        run("SELECT lockhier.lock_field(1, 2, 3, 'x')");
        let mine = "SELECT pg_catalog.count(*) FROM lockhier.advisory_locks
                     WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()";
        assert!(one::<i64>(mine) > 0);
        assert!(!any_look_alike_ran());
        other("ROLLBACK");
    }

    fn hold_table_locked() {
        other("CREATE TABLE IF NOT EXISTS busy_rows (id int PRIMARY KEY)");
        other("INSERT INTO busy_rows SELECT generate_series(1, 5) ON CONFLICT DO NOTHING");
        other("BEGIN");
        other("LOCK TABLE busy_rows IN ACCESS EXCLUSIVE MODE");
    }

    fn masked(text: &str) -> String {
        one(&format!("SELECT tests.masked({})", quote(text)))
    }

    #[pg_test]
    fn a_locked_table_is_a_conflict_within_the_wait() {
        hold_table_locked();
        // Were the table lock waited for outside the call's bound, the session's lock_timeout
        // would end that wait (statement_timeout would not: a test is one statement).
        run("SET lock_timeout = '30s'");
        let pid = one::<i32>("SELECT tests.other_pid()");
        let at_once = full_error_of("SELECT lockhier.lock_rows('busy_rows', ARRAY[1])");
        assert!(at_once.contains(&format!("process {pid} ")), "{at_once}");
        assert_eq!(
            masked(&at_once),
            "55P03\noperation in progress: cannot lock busy_rows rows for update: the table is locked\n\
             DETAIL: busy_rows is locked in AccessExclusiveLock mode by process N (application_name \"other\") in a transaction running for T.\n\
             HINT: Retry when the operation in progress has finished, or pass wait => '10 s' to wait for it."
        );
        let bounded =
            full_error_of("SELECT lockhier.lock_rows('busy_rows', ARRAY[1], 'key share', wait => '200 ms')");
        assert!(
            bounded.starts_with(
                "55P03\noperation in progress: cannot lock busy_rows rows for key share: the table is locked"
            ),
            "{bounded}"
        );
        assert!(waited(&bounded) >= Some(Duration::from_millis(200)), "{bounded}");
        assert!(!one::<bool>("SELECT lockhier.try_lock_rows('busy_rows', ARRAY[1], wait => '50 ms')"));
        assert_eq!(one::<String>("SHOW lock_timeout"), "30s");
        // A refused call keeps no lock on the table, and the transaction is still usable.
        let kept: i64 = one(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'busy_rows'::regclass",
        );
        assert_eq!(kept, 0);
        other("ROLLBACK");
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('busy_rows', ARRAY[1, 2])"), 2);
    }

    #[pg_test]
    fn a_locked_partition_is_named() {
        other("CREATE TABLE IF NOT EXISTS busy_parts (id int PRIMARY KEY) PARTITION BY RANGE (id)");
        other(
            "CREATE TABLE IF NOT EXISTS busy_parts_low PARTITION OF busy_parts FOR VALUES FROM (0) TO (100)",
        );
        other("CREATE TABLE IF NOT EXISTS busy_parts_high PARTITION OF busy_parts FOR VALUES FROM (100) TO (200)");
        other("INSERT INTO busy_parts VALUES (5), (150) ON CONFLICT DO NOTHING");
        other("BEGIN");
        other("LOCK TABLE busy_parts_high IN ACCESS EXCLUSIVE MODE");
        run("SET lock_timeout = '30s'");
        let error = error_of("SELECT lockhier.lock_rows('busy_parts', ARRAY[5], wait => '100 ms')");
        assert_eq!(
            error,
            "55P03 operation in progress: cannot lock busy_parts rows for update: its partition busy_parts_high is locked"
        );
        other("ROLLBACK");
    }

    #[pg_test]
    fn views_and_other_relations_are_refused_up_front() {
        run("CREATE TABLE plain (id int PRIMARY KEY)");
        run("CREATE VIEW plain_view AS SELECT * FROM plain");
        run("CREATE MATERIALIZED VIEW plain_matview AS SELECT * FROM plain");
        run("CREATE SEQUENCE plain_seq");
        for (call, expected) in [
            (
                "lock_rows('plain_view', ARRAY[1])",
                "42809 cannot lock rows of plain_view: it is a view, not a table",
            ),
            (
                "try_lock_rows('plain_view', ARRAY[1])",
                "42809 cannot lock rows of plain_view: it is a view, not a table",
            ),
            (
                "lock_rows('plain_matview', ARRAY[1], key_column => 'id')",
                "42809 cannot lock rows of plain_matview: it is a materialized view, not a table",
            ),
            (
                "lock_rows('plain_seq', ARRAY[1], key_column => 'last_value')",
                "42809 cannot lock rows of plain_seq: it is a sequence, not a table",
            ),
        ] {
            assert_eq!(error_of(&format!("SELECT lockhier.{call}")), expected, "{call}");
        }
        assert_eq!(
            full_error_of("SELECT lockhier.lock_rows('plain_view', ARRAY[1])"),
            "42809\ncannot lock rows of plain_view: it is a view, not a table\nHINT: Lock the rows of the tables the view reads."
        );
    }

    #[pg_test]
    fn foreign_tables_are_refused_as_the_wait_cannot_be_honoured() {
        // A wrapper with no handler is enough: the refusal comes before any remote access.
        run("CREATE FOREIGN DATA WRAPPER lockhier_test_fdw");
        run("CREATE SERVER lockhier_test_server FOREIGN DATA WRAPPER lockhier_test_fdw");
        run("CREATE FOREIGN TABLE remote_rows (id int) SERVER lockhier_test_server");
        for wait in ["0", "500 ms"] {
            assert_eq!(
                error_of(&format!("SELECT lockhier.lock_rows('remote_rows', ARRAY[1], key_column => 'id', wait => '{wait}')")),
                "0A000 cannot lock rows of foreign table remote_rows within a bounded wait"
            );
        }
    }

    #[pg_test]
    fn an_error_raised_while_locking_keeps_its_own_sqlstate_and_message() {
        run("CREATE TABLE guarded (id int PRIMARY KEY)");
        run("INSERT INTO guarded SELECT generate_series(1, 3)");
        // A row security policy whose function calls a function that does not exist.
        run("CREATE FUNCTION guarded_policy(id int) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN RETURN no_such_function(id); END $$");
        run("ALTER TABLE guarded ENABLE ROW LEVEL SECURITY");
        run("ALTER TABLE guarded FORCE ROW LEVEL SECURITY");
        run("CREATE POLICY guard ON guarded USING (guarded_policy(id))");
        run("CREATE ROLE lockhier_guarded NOLOGIN");
        run("GRANT SELECT, UPDATE ON guarded TO lockhier_guarded");
        run("GRANT USAGE ON SCHEMA tests TO lockhier_guarded");
        run("SET LOCAL ROLE lockhier_guarded");
        assert_eq!(
            error_of("SELECT lockhier.lock_rows('guarded', ARRAY[1])"),
            "42883 function no_such_function(integer) does not exist"
        );
        run("RESET ROLE");
    }

    /// Peak resident memory of this backend, from the kernel.
    fn peak_memory_kb() -> i64 {
        one("SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+) kB'))[1]::bigint")
    }

    #[pg_test]
    fn a_huge_classes_array_costs_no_memory_of_its_own() {
        // 6,000,000 times the same name (48 MB as an array). Built by the other session, so that
        // building it does not count in this backend's peak.
        other("CREATE TABLE IF NOT EXISTS huge_classes AS SELECT array_fill('import'::text, ARRAY[6000000]) AS a");
        let before = peak_memory_kb();
        run("SELECT lockhier.lock_field(1, 2, 3, (SELECT a FROM huge_classes))");
        let grown_mb = (peak_memory_kb() - before) / 1024;
        // The array itself, detoasted, and the buffers read are ~100 MB at most; copying each
        // element into Rust memory cost 6,000,000 x 64 bytes = 384 MB more.
        assert!(grown_mb < 200, "the backend's peak grew by {grown_mb} MB");
        let held: Vec<String> = one("SELECT classes FROM lockhier.held()");
        assert_eq!(held, ["import"]);
    }

    #[pg_test]
    fn a_session_lock_holder_in_a_transaction_is_not_called_a_transaction() {
        other("SELECT lockhier.session_lock_application(310, 'import')::text");
        other("BEGIN");
        let error = full_error_of("SELECT lockhier.lock_application(310, 'import')");
        let pid = one::<i32>("SELECT tests.other_pid()");
        assert!(
            error.contains(&format!(
                "DETAIL: Blocked by an exclusive lock on \"import\" for application 310, held by process {pid} (application_name \"other\") as a session lock or in its current transaction, running for "
            )),
            "{error}"
        );
        other("ROLLBACK");
        other("SELECT lockhier.session_unlock_all()::text");
        // A holder with no session lock: its lock is one of its transaction's.
        other("BEGIN");
        other("SELECT lockhier.lock_application(310, 'import')::text");
        let error = full_error_of("SELECT lockhier.lock_application(310, 'import')");
        assert!(error.contains("(application_name \"other\") in a transaction running for "), "{error}");
        other("ROLLBACK");
    }

    #[pg_test]
    fn naming_a_holder_leaves_the_callers_pg_stat_activity_snapshot_alone() {
        // The caller's transaction has read pg_stat_activity: that snapshot is its own.
        assert_eq!(
            one::<i64>("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'late arrival'"),
            0
        );
        other("SET application_name = 'late arrival'");
        other("BEGIN");
        other("SELECT lockhier.lock_table(311, 1)::text");
        let error = error_of("SELECT lockhier.lock_table(311, 1)");
        let detail = full_error_of("SELECT lockhier.lock_table(311, 1)");
        assert!(error.starts_with("55P03"), "{error}");
        assert!(detail.contains("(application_name \"late arrival\")"), "named from a fresh read: {detail}");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'late arrival'"),
            0,
            "the caller's snapshot was kept"
        );
        other("ROLLBACK");
        other("SET application_name = 'other'");
    }

    #[pg_test]
    fn the_error_path_of_lock_rows_keeps_no_lock() {
        other("CREATE TABLE IF NOT EXISTS probe_rows (id int PRIMARY KEY)");
        other("INSERT INTO probe_rows SELECT generate_series(1, 3) ON CONFLICT DO NOTHING");
        other("BEGIN");
        other("SELECT lockhier.lock_rows('probe_rows', ARRAY[2])::text");
        assert!(!one::<bool>("SELECT lockhier.try_lock_rows('probe_rows', ARRAY[1, 2])"));
        // Naming the holder read the table; neither that read nor the refused call keeps a lock.
        let kept: i64 = one(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'probe_rows'::regclass",
        );
        assert_eq!(kept, 0);
        other("ROLLBACK");
    }

    #[pg_test]
    fn lockhiers_conflict_table_is_postgresqls() {
        for a in 1..=8u8 {
            for b in 1..=8u8 {
                let server = crate::pg::lockmgr::server_modes_conflict(a, b);
                assert_eq!(lockhier_core::lockmode::modes_conflict(a, b), server, "modes {a} and {b}");
            }
        }
    }
}
