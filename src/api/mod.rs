//! The SQL surface, thin: each function parses its arguments, hands over to the engine (or to
//! the row helpers), and reports what comes back through the one mapping of errors to SQLSTATE,
//! message, DETAIL and HINT (`errors`). It may use the engine, the row helpers and
//! lockhier-core, never the pg layer directly.

/// Calls `$make!(scope(parameters))` for each level of the tree and for paths, with the
/// parameters that name the scope in its SQL functions: the one list from which every
/// per-scope function (`lock_field`, `plan_application`, `try_lease_global`, `lock_path`, ...)
/// is generated. The scope's name is also the name of the `args` function that makes it.
macro_rules! for_each_scope {
    ($make:ident) => {
        $make!(global());
        $make!(application(application_id: Option<i64>));
        $make!(table(application_id: Option<i64>, table_id: Option<i64>));
        $make!(field(application_id: Option<i64>, table_id: Option<i64>, field_id: Option<i64>));
        $make!(path(path: Option<Array<&str>>));
    };
}

/// Both overloads of the SQL function `<prefix>_<level>`: with `class text` (default `'all'`),
/// and with `classes text[]`. `$make!(rust_name, (extra pg_extern arguments), (scope parameters), scope,
/// (class parameter), parse, rest...)` writes one; `$make` wraps what it writes in
/// `pastey::paste!`, which joins the `name = ...` tokens into the SQL name. The Rust names
/// differ (they name the C symbols): `lock_field` and `lock_field_classes`.
macro_rules! overloads {
    ($make:ident, $prefix:ident, $level:ident ($($id:ident : $ty:ty),*) $(, $($rest:tt)*)?) => {
        pastey::paste! {
            $make!(
                [<$prefix _ $level>], (), ($($id: $ty),*), $level,
                (class: default!(Option<&str>, "'all'")), one_class(class) $(, $($rest)*)?
            );
            $make!(
                [<$prefix _ $level _classes>], (, name = $prefix "_" $level), ($($id: $ty),*), $level,
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
mod many;
mod rows;
