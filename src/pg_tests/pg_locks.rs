#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::tests::{my_locks, one, run};
    use pgrx::prelude::*;

    /// The plan of a call, as sorted "key mode" strings comparable with `my_locks()`.
    fn planned(plan_call: &str) -> Vec<String> {
        one(&format!(
            "SELECT array_agg(key || ' ' || lock_mode ORDER BY key, lock_mode) FROM lockhier.{plan_call}"
        ))
    }

    const SCOPES: [(&str, &str); 4] =
        [("global", ""), ("application", "201, "), ("table", "201, 5, "), ("field", "201, 5, 9, ")];
    const CLASSES: [&str; 4] =
        ["'all'", "'import'", "ARRAY['field__deletion', 'field__type_update']", "ARRAY['x', 'all']"];

    #[pg_test]
    fn session_locks_show_in_pg_locks_exactly_as_planned() {
        for (level, ids) in SCOPES {
            for classes in CLASSES {
                for mode in ["share", "exclusive"] {
                    let args = format!("{ids}{classes}, '{mode}'");
                    run(&format!("SELECT lockhier.session_lock_{level}({args})"));
                    assert_eq!(my_locks(), planned(&format!("plan_{level}({args})")), "{level}({args})");
                    assert!(one::<bool>(&format!("SELECT lockhier.session_unlock_{level}({args})")));
                    assert!(my_locks().is_empty(), "unlock released {level}({args})");
                }
            }
        }
    }

    #[pg_test]
    fn a_field_lock_on_all_classes_takes_ten_locks_until_the_transaction_ends() {
        run("SELECT lockhier.lock_field(202, 5, 9)");
        let locks = my_locks();
        assert_eq!(locks.len(), 10);
        assert_eq!(locks, planned("plan_field(202, 5, 9)"));
    }

    #[pg_test]
    fn transaction_locks_use_the_advisory_key_space_of_pg_advisory_xact_lock() {
        run("SELECT lockhier.lock_table(203, 5, 'import')");
        // The leaf key, taken in ExclusiveLock, is exactly pg_advisory_xact_lock(key)'s lock.
        let same_row: i64 = one("SELECT count(*) FROM pg_locks l
               JOIN lockhier.plan_table(203, 5, 'import') p ON p.step = 7
              WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory' AND l.objsubid = 1
                AND l.classid = p.classid AND l.objid = p.objid AND l.mode = 'ExclusiveLock'");
        assert_eq!(same_row, 1);
        run("SELECT pg_advisory_xact_lock(lockhier.key('{203,5}', 'import'))");
        assert_eq!(my_locks().len(), 7, "re-entrant: the same lock, not a new one");
    }
}
