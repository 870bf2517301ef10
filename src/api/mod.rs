//! The SQL surface, thin: each function parses its arguments, hands over to the engine (or to
//! the row helpers), and reports what comes back through the one mapping of errors to SQLSTATE,
//! message, DETAIL and HINT (`errors`). It may use the engine, the row helpers and
//! lockhier-core, never the pg layer directly.

/// Calls `$make!(level(ids))` for each level of the tree, with the id parameters of its SQL
/// functions: the one list from which every per-level function (`lock_field`,
/// `plan_application`, `try_lease_global`, ...) is generated. The level is also the name of
/// the `args` function that makes its node.
macro_rules! for_each_level {
    ($make:ident) => {
        $make!(global());
        $make!(application(application_id));
        $make!(table(application_id, table_id));
        $make!(field(application_id, table_id, field_id));
    };
}

/// Both overloads of the SQL function `<prefix>_<level>`: with `class text` (default `'all'`),
/// and with `classes text[]`. `$make!(rust_name, (extra pg_extern arguments), (ids), level,
/// (class parameter), parse, rest...)` writes one; `$make` wraps what it writes in
/// `pastey::paste!`, which joins the `name = ...` tokens into the SQL name. The Rust names
/// differ (they name the C symbols): `lock_field` and `lock_field_classes`.
macro_rules! overloads {
    ($make:ident, $prefix:ident, $level:ident ($($id:ident),*) $(, $($rest:tt)*)?) => {
        pastey::paste! {
            $make!(
                [<$prefix _ $level>], (), ($($id),*), $level,
                (class: default!(Option<&str>, "'all'")), one_class(class) $(, $($rest)*)?
            );
            $make!(
                [<$prefix _ $level _classes>], (, name = $prefix "_" $level), ($($id),*), $level,
                (classes: Option<Array<&str>>), many_classes(classes) $(, $($rest)*)?
            );
        }
    };
}

mod args;
mod errors;
mod inspect;
pub mod leases;
mod locks;
mod paths;
mod rows;
