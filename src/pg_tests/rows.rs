#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{error_of, full_error_of, one, other, run, waited};
    use pgrx::prelude::*;

    fn fields_table() {
        run("CREATE TABLE database_field (id bigint PRIMARY KEY, table_id bigint NOT NULL, name text)");
        run("INSERT INTO database_field SELECT i, i / 10, 'field ' || i FROM generate_series(1, 200) i");
    }

    #[pg_test]
    fn locks_rows_by_primary_key_or_a_key_column_and_counts_them() {
        fields_table();
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('database_field', ARRAY[99])"), 1);
        assert_eq!(
            one::<i64>(
                "SELECT lockhier.lock_rows('database_field', ARRAY[12], 'share', key_column => 'table_id')"
            ),
            10
        );
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('database_field', ARRAY[1, 2, 2, 999])"), 2);
        assert_eq!(
            one::<i64>("SELECT lockhier.lock_rows('database_field', ARRAY[]::bigint[])"),
            0,
            "empty array"
        );
        assert_eq!(
            one::<i64>("SELECT lockhier.lock_rows('database_field', ARRAY[5]::int[])"),
            1,
            "int[] against bigint"
        );
        assert!(one::<bool>("SELECT lockhier.try_lock_rows('database_field', ARRAY[7], 'KEY SHARE')"));
    }

    #[pg_test]
    fn every_mode_takes_its_row_lock_strength() {
        // Made by the other session, so that it can see them (this test's transaction is not
        // committed); left in place, as this session keeps the table locked.
        other("CREATE EXTENSION IF NOT EXISTS pgrowlocks");
        other("CREATE TABLE IF NOT EXISTS mode_rows (id bigint PRIMARY KEY)");
        other("INSERT INTO mode_rows SELECT generate_series(1, 4) ON CONFLICT DO NOTHING");
        for (mode, id, shown) in [
            ("update", 1, "{\"For Update\"}"),
            ("No Key  Update", 2, "{\"For No Key Update\"}"),
            ("SHARE", 3, "{\"For Share\"}"),
            ("key share", 4, "{\"For Key Share\"}"),
        ] {
            assert_eq!(
                one::<i64>(&format!("SELECT lockhier.lock_rows('mode_rows', ARRAY[{id}], '{mode}')")),
                1
            );
            // Another session sees the lock on the row.
            let modes = other(&format!(
                "SELECT modes::text FROM pgrowlocks('mode_rows') WHERE locked_row = (SELECT ctid FROM mode_rows WHERE id = {id})"
            ));
            assert_eq!(modes, shown, "{mode}");
        }
    }

    #[pg_test]
    fn bad_arguments_get_clear_errors() {
        fields_table();
        run("CREATE TABLE no_key (a int)");
        run("CREATE TABLE two_keys (a int, b int, PRIMARY KEY (a, b))");
        for (call, expected) in [
            ("lock_rows(NULL, ARRAY[1])", "22004 argument \"rel\" must not be null"),
            ("lock_rows('database_field', NULL::int[])", "22004 argument \"ids\" must not be null"),
            ("lock_rows('database_field', ARRAY[NULL, 6]::bigint[])", "22004 ids must not contain NULL"),
            ("lock_rows('database_field', ARRAY[1], NULL)", "22004 argument \"mode\" must not be null"),
            ("lock_rows('database_field', ARRAY[1], 'exclusive')", "22023 unknown row lock mode \"exclusive\": expected update, no key update, share or key share"),
            ("lock_rows('database_field', ARRAY[1], wait => '-1 s')", "22023 wait must not be negative: \"-00:00:01\""),
            ("lock_rows('database_field', ARRAY[1], key_column => 'nope')", "42703 column \"nope\" of relation database_field does not exist"),
            ("lock_rows('no_key', ARRAY[1])", "22023 table no_key has no primary key"),
            ("lock_rows('two_keys', ARRAY[1])", "22023 the primary key of table two_keys has 2 columns (a, b)"),
            ("lock_rows('database_field', ARRAY['a'])", "42804 ids of type text[] cannot be compared with column \"id\" (bigint) of table database_field"),
            ("lock_rows('database_field', ARRAY[now()])", "42804 ids of type timestamp with time zone[] cannot be compared with column \"id\" (bigint) of table database_field"),
            ("try_lock_rows('database_field', ARRAY[1], 'exclusive')", "22023 unknown row lock mode \"exclusive\": expected update, no key update, share or key share"),
            ("lock_rows(12345678::oid::regclass, ARRAY[1])", "42P01 relation with OID 12345678 does not exist"),
            ("lock_rows('missing_table', ARRAY[1])", "42P01 relation \"missing_table\" does not exist"),
        ] {
            assert_eq!(error_of(&format!("SELECT lockhier.{call}")), expected, "{call}");
        }
        assert_eq!(
            full_error_of("SELECT lockhier.lock_rows('two_keys', ARRAY[1])"),
            "22023\nthe primary key of table two_keys has 2 columns (a, b)\nHINT: Pass key_column => 'column' to say which column the ids are in."
        );
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('two_keys', ARRAY[1], key_column => 'b')"), 0);
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('database_field', ARRAY[1], wait => NULL)"), 1);
    }

    #[pg_test]
    fn names_that_need_quoting_and_values_that_look_like_sql_are_safe() {
        run(r#"CREATE SCHEMA "My App""#);
        run(r#"CREATE TABLE "My App"."Field Rows" ("Key Col" text PRIMARY KEY, "select" int)"#);
        run(
            r#"INSERT INTO "My App"."Field Rows" VALUES ('a', 1), ('x''); DROP TABLE "My App"."Field Rows"; --', 2)"#,
        );
        assert_eq!(one::<i64>(r#"SELECT lockhier.lock_rows('"My App"."Field Rows"', ARRAY['a', 'b'])"#), 1);
        assert_eq!(
            one::<i64>(
                r#"SELECT lockhier.lock_rows('"My App"."Field Rows"', ARRAY['x''); DROP TABLE "My App"."Field Rows"; --'])"#
            ),
            1
        );
        assert_eq!(
            one::<i64>(
                r#"SELECT lockhier.lock_rows('"My App"."Field Rows"', ARRAY[2], key_column => 'select')"#
            ),
            1
        );
        assert_eq!(one::<i64>(r#"SELECT count(*) FROM "My App"."Field Rows""#), 2);
    }

    #[pg_test]
    fn partitioned_tables_lock_rows_in_every_partition() {
        run("CREATE TABLE events (id bigint, tenant int, PRIMARY KEY (id, tenant)) PARTITION BY LIST (tenant)");
        run("CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1)");
        run("CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2)");
        run("INSERT INTO events SELECT i, 1 + i % 2 FROM generate_series(1, 10) i");
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('events', ARRAY[1, 2, 3], key_column => 'id')"), 3);
        run("CREATE TABLE parts (id int PRIMARY KEY) PARTITION BY RANGE (id)");
        run("CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (100)");
        run("CREATE TABLE parts_high PARTITION OF parts FOR VALUES FROM (100) TO (200)");
        run("INSERT INTO parts VALUES (5), (150)");
        assert_eq!(
            one::<i64>("SELECT lockhier.lock_rows('parts', ARRAY[5, 150])"),
            2,
            "the partitioned table's own primary key"
        );
    }

    #[pg_test]
    fn the_statement_runs_with_the_callers_privileges() {
        fields_table();
        run("CREATE ROLE lockhier_reader NOLOGIN");
        run("GRANT USAGE ON SCHEMA tests TO lockhier_reader");
        run("GRANT SELECT ON database_field TO lockhier_reader");
        run("SET LOCAL ROLE lockhier_reader");
        assert_eq!(
            error_of("SELECT lockhier.lock_rows('database_field', ARRAY[1], 'share')"),
            "42501 permission denied for table database_field"
        );
        run("RESET ROLE");
        run("GRANT UPDATE ON database_field TO lockhier_reader");
        run("ALTER TABLE database_field ENABLE ROW LEVEL SECURITY");
        run("CREATE POLICY only_table_1 ON database_field USING (table_id = 1)");
        run("SET LOCAL ROLE lockhier_reader");
        // Row security applies: rows the caller cannot see are not locked.
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('database_field', ARRAY[5, 10, 11])"), 2);
        run("RESET ROLE");
    }

    #[pg_test]
    fn a_conflict_names_the_rows_and_the_holder_and_try_leaves_the_transaction_usable() {
        // Made and filled by the other session, outside this test's transaction (which it
        // would otherwise wait for); left in place, as this session keeps it locked.
        other("CREATE TABLE IF NOT EXISTS shared_rows (id int PRIMARY KEY)");
        other("INSERT INTO shared_rows SELECT generate_series(1, 5) ON CONFLICT DO NOTHING");
        other("BEGIN");
        other("SELECT lockhier.lock_rows('shared_rows', ARRAY[2, 3])::text");
        let pid = one::<i32>("SELECT tests.other_pid()");
        run("SET lock_timeout = '3s'");
        let error =
            full_error_of("SELECT lockhier.lock_rows('shared_rows', ARRAY[1, 2, 3, 4], wait => '100 ms')");
        assert!(
            error.starts_with(
                "55P03\noperation in progress: cannot lock shared_rows rows with id 2, 3 for update\n"
            ),
            "{error}"
        );
        assert!(
            error.contains(&format!("DETAIL: 2 rows with id 2, 3 are locked by process {pid} (application_name \"other\") in a transaction running for ")),
            "{error}"
        );
        assert!(waited(&error) >= Some(std::time::Duration::from_millis(100)), "{error}");
        assert_eq!(one::<String>("SHOW lock_timeout"), "3s", "lock_timeout restored");
        assert!(!one::<bool>("SELECT lockhier.try_lock_rows('shared_rows', ARRAY[3])"));
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('shared_rows', ARRAY[1, 4, 5])"), 3, "still usable");
        other("ROLLBACK");
    }

    #[pg_test]
    fn what_the_session_remembers_follows_ddl() {
        run("CREATE SCHEMA builder");
        run("CREATE TABLE builder.fields (id int PRIMARY KEY, table_id int)");
        run("INSERT INTO builder.fields SELECT i, i % 3 FROM generate_series(1, 9) i");
        assert_eq!(one::<i64>("SELECT lockhier.lock_rows('builder.fields', ARRAY[1, 2])"), 2);
        run("ALTER TABLE builder.fields RENAME COLUMN id TO field_id");
        assert_eq!(
            one::<i64>("SELECT lockhier.lock_rows('builder.fields', ARRAY[1, 2])"),
            2,
            "the renamed primary key"
        );
        run("ALTER SCHEMA builder RENAME TO app_builder");
        assert_eq!(
            one::<i64>("SELECT lockhier.lock_rows('app_builder.fields', ARRAY[3])"),
            1,
            "the renamed schema"
        );
        run("ALTER TABLE app_builder.fields DROP CONSTRAINT fields_pkey");
        assert_eq!(
            error_of("SELECT lockhier.lock_rows('app_builder.fields', ARRAY[3])"),
            "22023 table app_builder.fields has no primary key"
        );
        run("ALTER TABLE app_builder.fields ADD PRIMARY KEY (table_id, field_id)");
        assert_eq!(
            error_of("SELECT lockhier.lock_rows('app_builder.fields', ARRAY[3])"),
            "22023 the primary key of table app_builder.fields has 2 columns (table_id, field_id)"
        );
        run("ALTER TABLE app_builder.fields ALTER COLUMN table_id TYPE text");
        assert_eq!(
            one::<i64>(
                "SELECT lockhier.lock_rows('app_builder.fields', ARRAY['0'], key_column => 'table_id')"
            ),
            3
        );
        assert_eq!(
            error_of("SELECT lockhier.lock_rows('app_builder.fields', ARRAY[0], key_column => 'table_id')"),
            "42804 ids of type integer[] cannot be compared with column \"table_id\" (text) of table app_builder.fields"
        );
    }
}
