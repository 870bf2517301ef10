//! SQL behaviour, run inside PostgreSQL by `cargo pgrx test`. Every file holds a
//! `#[pg_schema] mod tests`: pgrx's runner calls each test as `tests.<name>()` in a fresh
//! session, inside a transaction it rolls back. Tests run one at a time (the test command sets
//! RUST_TEST_THREADS=1) because locks on the global scope conflict across sessions.
mod api;
mod bad_input;
mod conflicts;
mod hardening;
mod leases;
mod pg_locks;
mod rows;

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    pgrx::extension_sql!(
        r#"
-- 'ok', or the SQLSTATE and message of the error the statement raised (in a subtransaction,
-- which releases transaction locks but not session locks).
CREATE FUNCTION tests.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;

-- The full text a client would see: SQLSTATE, message, DETAIL and HINT.
CREATE FUNCTION tests.full_error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; message text; detail text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN concat_ws(E'\n', state, message, 'DETAIL: ' || nullif(detail, ''), 'HINT: ' || nullif(hint, ''));
END $$;

-- This session's advisory locks in lockhier's key space, as (key, mode) text sorted; without
-- the sentinel lock a session holds while it holds session requests.
CREATE FUNCTION tests.my_locks() RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(key || ' ' || mode ORDER BY key, mode), '{}')
      FROM lockhier.advisory_locks WHERE pid = pg_backend_pid() AND key <> -9174082678278515691
$$;

-- Run a statement in a second session of the same database (a dblink connection named
-- 'other' that lives as long as this test's session) and return its first column as text
-- (for a SELECT) or its command tag.
CREATE FUNCTION tests.other(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;
    IF NOT 'other' = ANY (coalesce(public.dblink_get_connections(), '{}')) THEN
        PERFORM public.dblink_connect('other', format(
            'host=localhost port=%s dbname=%s user=%s application_name=other',
            current_setting('port'), current_database(), current_user));
    END IF;
    IF statement ~* '^\s*select' THEN
        SELECT x INTO result FROM public.dblink('other', statement) AS t(x text);
    ELSE
        result := public.dblink_exec('other', statement);
    END IF;
    RETURN result;
END $$;

-- An error text with what changes from run to run (process ids, durations) masked.
CREATE FUNCTION tests.masked(message text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(message, 'process \d+', 'process N', 'g'),
        '(running for|Waited) (less than 1 ms|\d+ ms|[\d.]+ s|\d+ min \d+ s|\d+ h \d+ min|\d+ d \d+ h)',
        '\1 T', 'g')
$$;

CREATE FUNCTION tests.other_pid() RETURNS int LANGUAGE sql AS $$
    SELECT tests.other('SELECT pg_backend_pid()::text')::int
$$;
"#,
        name = "test_helpers",
        finalize,
    );

    /// Run SQL that returns one value.
    pub fn one<T: FromDatum + IntoDatum>(sql: &str) -> T {
        Spi::get_one::<T>(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: NULL"))
    }

    pub fn run(sql: &str) {
        Spi::run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The SQLSTATE and message a statement raises, or "ok".
    pub fn error_of(sql: &str) -> String {
        one(&format!("SELECT tests.error_of({})", quote(sql)))
    }

    pub fn full_error_of(sql: &str) -> String {
        one(&format!("SELECT tests.full_error_of({})", quote(sql)))
    }

    pub fn other(sql: &str) -> String {
        Spi::get_one::<String>(&format!("SELECT tests.other({})", quote(sql)))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_default()
    }

    /// This session's advisory locks in lockhier's key space.
    pub fn my_locks() -> Vec<String> {
        one::<Vec<String>>("SELECT tests.my_locks()")
    }

    pub fn quote(text: &str) -> String {
        format!("'{}'", text.replace('\'', "''"))
    }

    /// How long an error's DETAIL says the request waited: `Waited 250 ms.`, `Waited 1.2 s.`,
    /// `Waited 2 min 5 s.` (minutes and hours count whole), or `None` if it does not say.
    pub fn waited(error: &str) -> Option<std::time::Duration> {
        let mut words = error.split(" Waited ").nth(1)?.split_whitespace();
        let number: f64 = words.next()?.parse().ok()?;
        let seconds = match words.next()?.trim_end_matches('.') {
            "ms" => number / 1000.0,
            "s" => number,
            "min" => number * 60.0,
            "h" => number * 3600.0,
            _ => return None,
        };
        Some(std::time::Duration::from_secs_f64(seconds))
    }
}
