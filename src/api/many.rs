//! Several requests in one call, all or nothing: `lock_many`, `session_lock_many`,
//! `session_unlock_many`, `lease_many` and `try_lease_many`, each taking a jsonb array of
//! request objects (`lockhier_core::many` says what a request object may hold). Every request
//! is checked before anything is taken.
//!
//! None is STRICT: a NULL is refused by name. All are VOLATILE and PARALLEL UNSAFE: they take
//! locks for this backend.

use super::args::{self, Parsed};
use super::errors::{self, or_report};
use super::leases;
use crate::engine::lease::backend;
use crate::engine::lock;
use crate::engine::many::{self, JsonbArg};
use lockhier_core::request::required;
use lockhier_core::{Hold, Request};
use pgrx::prelude::*;

fn requests(requests: Option<JsonbArg>) -> Parsed<Vec<Request>> {
    Ok(many::read(required(requests, "requests")?)?)
}

fn take_many(requests_arg: Option<JsonbArg>, wait: Option<Interval>, hold: Hold) {
    let requests = or_report(requests(requests_arg));
    let wait = or_report(args::wait(wait));
    or_report(lock::lock_many(requests, wait, hold));
    if hold == Hold::Transaction && !lock::in_transaction_block() {
        errors::warn_outside_transaction_block();
    }
}

/// Take every request of `requests` until the transaction ends, or none: a conflict with any
/// raises `55P03` naming it (`requests[i] of n`), with nothing taken.
#[pg_extern(volatile, parallel_unsafe)]
fn lock_many(requests: Option<JsonbArg>, wait: default!(Option<Interval>, "'0'")) {
    take_many(requests, wait, Hold::Transaction)
}

/// `lock_many` for the session: each request is held until `session_unlock_*` (or
/// `session_unlock_many`) gives it back, or the session ends.
#[pg_extern(volatile, parallel_unsafe)]
fn session_lock_many(requests: Option<JsonbArg>, wait: default!(Option<Interval>, "'0'")) {
    take_many(requests, wait, Hold::Session)
}

/// Give back one hold of each session request of `requests`; returns how many were held. Each
/// request not held gets the WARNING `session_unlock_*` gives.
#[pg_extern(volatile, parallel_unsafe)]
fn session_unlock_many(requests: Option<JsonbArg>) -> i32 {
    let requests = or_report(self::requests(requests));
    let released = lock::session_unlock_many(&requests);
    for (request, _) in requests.iter().zip(&released).filter(|(_, &held)| !held) {
        errors::warn_not_held(request);
    }
    released.iter().filter(|&&held| held).count() as i32
}

/// The body of `lease_many` and `try_lease_many`: the tokens, or NULL for a refused `try_`.
/// Arguments are checked in the order they are written: requests, owner, ttl, wait.
fn lease_group(
    requests_arg: Option<JsonbArg>,
    owner: Option<&str>,
    ttl: Option<Interval>,
    wait: Option<Interval>,
    refusal_is_an_error: bool,
) -> Option<Vec<i64>> {
    let requests = or_report(requests(requests_arg));
    let owner = or_report(leases::owner(owner));
    let ttl = or_report(leases::ttl(ttl));
    let wait = or_report(args::wait(wait));
    or_report(backend::take_many(requests, owner, ttl, wait, refusal_is_an_error))
}

/// One lease per request of `requests` for `owner`, all or none: their tokens, in the order of
/// `requests`. Each is an ordinary lease afterwards (renewed, released and validated by its
/// token). A conflict with any raises `55P03` naming it (`requests[i] of n`), with none taken.
#[pg_extern(volatile, parallel_unsafe)]
fn lease_many(
    requests: Option<JsonbArg>,
    owner: Option<&str>,
    ttl: default!(Option<Interval>, "'2 min'"),
    wait: default!(Option<Interval>, "'0'"),
) -> Option<Vec<i64>> {
    lease_group(requests, owner, ttl, wait, true)
}

/// `lease_many`, but NULL instead of the conflict error (other errors are raised).
#[pg_extern(volatile, parallel_unsafe)]
fn try_lease_many(
    requests: Option<JsonbArg>,
    owner: Option<&str>,
    ttl: default!(Option<Interval>, "'2 min'"),
    wait: default!(Option<Interval>, "'0'"),
) -> Option<Vec<i64>> {
    lease_group(requests, owner, ttl, wait, false)
}
