//! The lease functions: `lease_*` and `try_lease_*` at each level in both overloads,
//! `renew_lease`, `release_lease`, `release_leases`, `lease_valid`, and the rows of the
//! `leases` view. See `docs/leases.md`.
//!
//! None is STRICT: a NULL is refused by name. All are VOLATILE and PARALLEL UNSAFE.

use super::args::{self, many_classes, one_class, request, Parsed};
use super::errors::{self, or_report};
use crate::engine::lease::{backend, drop_guard, keeper, table};
use lockhier_core::lease::in_use::Dropping;
use lockhier_core::lease::{ttl_from_micros, Owner};
use lockhier_core::request::required;
use lockhier_core::scope::Scope;
use lockhier_core::Request;
use pgrx::prelude::*;
use std::time::Duration;

/// `lockhier.max_leases`: leases held at once, in all databases (sizes shared memory).
pub static MAX_LEASES: pgrx::GucSetting<i32> = pgrx::GucSetting::<i32>::new(1024);

/// Called from `_PG_init`: the setting, and when lockhier is preloaded, the shared memory and
/// the keeper.
pub fn init() {
    // A setting that needs a restart can only be defined as the server starts (PostgreSQL
    // ends the backend otherwise): without shared_preload_libraries there are no leases, and
    // no setting for them.
    if !backend::preloading() {
        return;
    }
    pgrx::GucRegistry::define_int_guc(
        c"lockhier.max_leases",
        c"How many lockhier leases can be held at once, in all databases.",
        c"Sizes the shared memory leases are kept in (about 7.1 kB each); needs a restart.",
        &MAX_LEASES,
        1,
        100_000,
        pgrx::GucContext::Postmaster,
        pgrx::GucFlags::default(),
    );
    pgrx::GucRegistry::define_int_guc(
        c"lockhier.fence_timeout",
        c"How long past its expiry a lease may be kept by a transaction that validated it.",
        c"Past the lease's expiry plus this, the lease keeper terminates the backends whose open transactions validated the lease (lease_valid), and the lease expires.",
        &keeper::FENCE_TIMEOUT,
        1,
        24 * 60 * 60,
        pgrx::GucContext::Sighup,
        pgrx::GucFlags::UNIT_S,
    );
    backend::install(MAX_LEASES.get() as usize);
    drop_guard::install(refuse_drop);
}

/// Called as lockhier or a role is about to be dropped: raises the refusal when leases are in
/// the way (`DROP EXTENSION`, `DROP ROLE`; see `docs/leases.md`).
fn refuse_drop(dropping: Dropping) {
    or_report(drop_guard::check(dropping));
}

pub(super) fn owner(owner: Option<&str>) -> Parsed<Owner> {
    Ok(Owner::parse(required(owner, "owner")?)?)
}

pub(super) fn ttl(ttl: Option<Interval>) -> Parsed<Duration> {
    let ttl = required(ttl, "ttl")?;
    Ok(ttl_from_micros(ttl.as_micros(), || ttl.to_string())?)
}

/// The body of every `lease_*` and `try_lease_*`: the token, or NULL for a refused `try_`.
/// Arguments are checked in the order they are written: ids, owner, class(es), mode, ttl, wait.
#[allow(clippy::too_many_arguments)]
pub(super) fn take(
    scope: Parsed<Scope>,
    owner_arg: Option<&str>,
    classes: Parsed<lockhier_core::Classes>,
    mode: Option<&str>,
    ttl_arg: Option<Interval>,
    wait: Option<Interval>,
    refusal_is_an_error: bool,
) -> Option<i64> {
    let scope = or_report(scope);
    let owner = or_report(owner(owner_arg));
    let request: Request = or_report(request(Ok(scope), classes, mode));
    let ttl = or_report(ttl(ttl_arg));
    let wait = or_report(args::wait(wait));
    or_report(backend::take(request, owner, ttl, wait, refusal_is_an_error))
}

/// One `lease_*` or `try_lease_*` function; `$refusal_is_an_error` tells which.
macro_rules! lease_fn {
    ($name:tt, ($($sql:tt)*), ($($id:ident : $ty:ty),*), $node:ident, ($($classes:tt)*), $parse:expr, $refusal_is_an_error:expr) => { pastey::paste! {
        // The SQL function's own parameters: the level's ids, owner, class(es), mode, ttl, wait.
        #[allow(clippy::too_many_arguments)]
        #[pg_extern(volatile, parallel_unsafe $($sql)*)]
        fn $name(
            $($id: $ty,)*
            owner: Option<&str>,
            $($classes)*,
            mode: default!(Option<&str>, "'exclusive'"),
            ttl: default!(Option<Interval>, "'2 min'"),
            wait: default!(Option<Interval>, "'0'"),
        ) -> Option<i64> {
            take(args::$node($($id),*), owner, $parse, mode, ttl, wait, $refusal_is_an_error)
        }
    }};
}

/// Every lease function of one level, in both overloads.
macro_rules! lease_functions {
    ($level:ident $ids:tt) => {
        overloads!(lease_fn, lease, $level $ids, true);
        overloads!(lease_fn, try_lease, $level $ids, false);
    };
}

for_each_scope!(lease_functions);

fn token(token: Option<i64>) -> i64 {
    or_report(required(token, "token"))
}

/// `owner`, when given, must be the lease's owner or one above it (`55000` otherwise).
fn checked_owner(owner: Option<&str>) -> Option<Owner> {
    owner.map(|owner| or_report(Owner::parse(owner)))
}

/// True with the lease's expiry moved to now + `ttl` (its own ttl when NULL); false, with a
/// WARNING, when it is no longer held.
#[pg_extern(volatile, parallel_unsafe)]
fn renew_lease(
    token: Option<i64>,
    ttl: default!(Option<Interval>, "NULL"),
    owner: default!(Option<&str>, "NULL"),
) -> bool {
    let token = self::token(token);
    let ttl = ttl.map(|t| or_report(ttl_from_micros(t.as_micros(), || t.to_string())));
    let renewed = or_report(backend::renew(token, ttl, checked_owner(owner)));
    if !renewed {
        errors::warn_lease_not_held(token);
    }
    renewed
}

/// True if the lease was held (it is released); false, with a WARNING, if not.
#[pg_extern(volatile, parallel_unsafe)]
fn release_lease(token: Option<i64>, owner: default!(Option<&str>, "NULL")) -> bool {
    let token = self::token(token);
    let released = or_report(backend::release(token, checked_owner(owner)));
    if !released {
        errors::warn_lease_not_held(token);
    }
    released
}

/// Releases every lease `owner` (or an owner under it: `worker9/task-3` for `worker9`) holds
/// in this database; returns how many.
#[pg_extern(volatile, parallel_unsafe)]
fn release_leases(owner: Option<&str>) -> i32 {
    let owner = or_report(self::owner(owner));
    or_report(backend::release_all(owner))
}

/// True if the lease is held now; it then stays held until the calling transaction ends.
#[pg_extern(volatile, parallel_unsafe)]
fn lease_valid(token: Option<i64>) -> bool {
    or_report(backend::valid(self::token(token)))
}

/// The rows of the `leases` view: the leases of this database. `held` is false for a lease of
/// the journal the keeper could not take again after a restart and waits to hold (docs/leases.md).
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_restricted)]
fn lease_list() -> TableIterator<
    'static,
    (
        name!(token, i64),
        name!(owner, String),
        name!(scope, String),
        name!(classes, Vec<String>),
        name!(mode, String),
        name!(acquired_at, Option<TimestampWithTimeZone>),
        name!(renewed_at, Option<TimestampWithTimeZone>),
        name!(expires_at, Option<TimestampWithTimeZone>),
        name!(taken_by, Option<String>),
        name!(held, bool),
    ),
> {
    let at = |t: i64| TimestampWithTimeZone::try_from(t).ok();
    TableIterator::new(table::list().into_iter().map(move |lease| {
        let request = lease.request.request();
        let classes = request.classes.listed();
        (
            lease.token,
            lease.owner.as_str().to_string(),
            request.scope.place().to_string(),
            classes,
            request.mode.name().to_string(),
            at(lease.acquired_at),
            at(lease.renewed_at),
            at(lease.expires_at),
            backend::role_name(lease.role),
            lease.held,
        )
    }))
}

extension_sql_file!("../../sql/leases.sql", name = "leases_view", requires = [lease_list]);
