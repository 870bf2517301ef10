//! What this backend holds through lockhier, for `session_unlock_*()`, `session_unlock_all()` and
//! `held()`. The lock manager counts the locks; this remembers which requests they belong to.
//!
//! Session requests are kept until unlocked (or the backend exits, taking the record with it).
//! While there are any, the session also holds lockhier's sentinel lock: when
//! `pg_advisory_unlock_all()` or `DISCARD ALL` releases every session advisory lock, the
//! sentinel goes too, and the record of session requests is dropped with it instead of being
//! trusted (it would otherwise release counts that other requests share).
//! Transaction requests are kept per subtransaction and dropped when it aborts or the
//! transaction ends, following the locks themselves.

use crate::pg::lockmgr::{self, Hold};
use crate::pg::xact::{self, SubTransactionId};
use lockhier_core::scope::Scope;
use lockhier_core::Request;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Registry {
    /// Request -> how many times it is held (requests are re-entrant).
    session: HashMap<Request, u32>,
    /// One entry per transaction-scoped acquisition, with the subtransaction that made it.
    transaction: Vec<(Request, SubTransactionId)>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Remember a request that was just taken.
pub fn record(request: Request, hold: Hold) {
    match hold {
        Hold::Session => {
            REGISTRY.with_borrow_mut(|r| *r.session.entry(request).or_default() += 1);
        }
        Hold::Transaction => {
            let subxact = xact::current_subtransaction();
            REGISTRY.with_borrow_mut(|r| r.transaction.push((request, subxact)));
        }
    }
}

/// Called before a session request is taken: the sentinel must be held before any lock of the
/// request, so that a full lock table refuses the sentinel while nothing else is taken yet.
pub fn before_session_lock() {
    forget_session_requests_released_behind_our_back();
    if !lockmgr::sentinel_held() {
        lockmgr::take_sentinel();
    }
}

/// Called when a session request was refused: no session request, no sentinel.
pub fn after_refused_session_lock() {
    if REGISTRY.with_borrow(|r| r.session.is_empty()) {
        lockmgr::drop_sentinel();
    }
}

/// Forget one hold of a session request; false if it was not held.
pub fn forget_session(request: &Request) -> bool {
    forget_session_requests_released_behind_our_back();
    let (found, now_empty) = REGISTRY.with_borrow_mut(|r| {
        let found = match r.session.get_mut(request) {
            None => false,
            Some(1) => r.session.remove(request).is_some(),
            Some(count) => {
                *count -= 1;
                true
            }
        };
        (found, r.session.is_empty())
    });
    if found && now_empty {
        lockmgr::drop_sentinel();
    }
    found
}

/// The session requests held, each with how many times.
pub fn session_requests() -> Vec<(Request, u32)> {
    forget_session_requests_released_behind_our_back();
    REGISTRY.with_borrow(|r| r.session.iter().map(|(request, &count)| (request.clone(), count)).collect())
}

/// Forget every hold of a session request.
pub fn forget_session_entirely(request: &Request) {
    let now_empty = REGISTRY.with_borrow_mut(|r| {
        r.session.remove(request);
        r.session.is_empty()
    });
    if now_empty {
        lockmgr::drop_sentinel();
    }
}

fn forget_session_requests_released_behind_our_back() {
    if REGISTRY.with_borrow(|r| !r.session.is_empty()) && !lockmgr::sentinel_held() {
        REGISTRY.with_borrow_mut(|r| r.session.clear());
    }
}

/// A request held through lockhier and how many times.
pub struct Held {
    pub request: Request,
    pub hold: Hold,
    pub count: u32,
}

/// Everything held now: transaction requests first, each kind in a stable order.
pub fn held() -> Vec<Held> {
    forget_session_requests_released_behind_our_back();
    REGISTRY.with_borrow(|r| {
        let mut transaction: HashMap<&Request, u32> = HashMap::new();
        for (request, _) in &r.transaction {
            *transaction.entry(request).or_default() += 1;
        }
        let mut all: Vec<Held> = transaction
            .into_iter()
            .map(|(request, count)| Held { request: request.clone(), hold: Hold::Transaction, count })
            .chain(r.session.iter().map(|(request, &count)| Held {
                request: request.clone(),
                hold: Hold::Session,
                count,
            }))
            .collect();
        all.sort_by_cached_key(|h| (h.hold, order_of(&h.request.scope), h.request.to_string()));
        all
    })
}

/// Transaction requests follow their locks: gone when the transaction ends, or when the
/// subtransaction that took them aborts; passed to the parent when it commits.
fn on_transaction_end() {
    REGISTRY.with_borrow_mut(|r| r.transaction.clear());
    super::lease::backend::transaction_ended();
}

fn on_subtransaction_abort(subxact: SubTransactionId) {
    REGISTRY.with_borrow_mut(|r| r.transaction.retain(|(_, s)| *s != subxact));
}

fn on_subtransaction_commit(subxact: SubTransactionId, parent: SubTransactionId) {
    REGISTRY.with_borrow_mut(|r| {
        for (_, s) in r.transaction.iter_mut().filter(|(_, s)| *s == subxact) {
            *s = parent;
        }
    });
}

/// Called once from `_PG_init`.
pub fn install_callbacks() {
    xact::register(xact::Callbacks {
        transaction_end: on_transaction_end,
        subtransaction_abort: on_subtransaction_abort,
        subtransaction_commit: on_subtransaction_commit,
        before_prepare: super::lease::backend::refuse_prepare_while_fenced,
    });
}

/// Numeric scopes by their ids (an application's tables before the next application), then
/// paths by their names.
fn order_of(scope: &Scope) -> (Vec<i64>, Vec<String>) {
    match scope {
        Scope::Tree(node) => (node.path().to_vec(), Vec::new()),
        Scope::Path(path) => (vec![i64::MAX; 4], path.names().to_vec()),
    }
}
